//! Which events start a workflow: `on:` triggers, their activity types and their branch, tag
//! and path filters, evaluated with GitHub's rules.
//!
//! [`check_trigger`] answers "does this event start this workflow, and if not, why": the
//! decision carries a sentence a user can act on. [`filter_problems`] lists the mistakes in an
//! event's filters (for validation). Pattern matching itself lives in `filter`.
//!
//! GitHub's rules, as applied here:
//! - The workflow must have an `on.<event>` entry for the event.
//! - Activity types: the event's type must be listed in `types`; without `types`,
//!   `pull_request` and `pull_request_target` run for `opened`, `synchronize` and `reopened`
//!   only, every other event for all of its types.
//! - `push`: `branches`/`branches-ignore` apply to `refs/heads/*`, `tags`/`tags-ignore` to
//!   `refs/tags/*`. Defining only branch filters means tag pushes never run, and vice versa;
//!   defining neither means both run.
//! - `pull_request`/`pull_request_target`: `branches`/`branches-ignore` apply to the **base**
//!   branch. `workflow_run`: `workflows` must match the triggering workflow's name (names are
//!   filter patterns too) and `branches`/`branches-ignore` apply to the branch it ran on.
//! - `paths` runs when at least one changed path matches; `paths-ignore` skips only when every
//!   changed path matches; with no changed path at all a path-filtered workflow does not run.
//!   Path filters are not evaluated for tag pushes. Ref and path filters must both pass.
//! - When the changed paths are unknown ([`Event::changed_paths`] is `None`, e.g. a local plan
//!   without a base commit), path filters are assumed to pass and the decision says so
//!   ([`TriggerDecision::RunsAssuming`]): hiding a workflow on a guess would be worse.

use std::fmt;

use crate::filter::{FilterError, PatternList, parse_pattern, write_flow_scalar};
use crate::span::{Span, Spanned};

/// One event under `on:` and its filters, as written in the workflow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trigger {
    /// The event name (`push`, `pull_request`, ...).
    pub event: Spanned<String>,
    pub filters: EventFilters,
}

/// The filters of one `on.<event>` entry. `None` means the key is absent.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventFilters {
    pub types: Option<Vec<Spanned<String>>>,
    pub branches: Option<Vec<Spanned<String>>>,
    pub branches_ignore: Option<Vec<Spanned<String>>>,
    pub tags: Option<Vec<Spanned<String>>>,
    pub tags_ignore: Option<Vec<Spanned<String>>>,
    pub paths: Option<Vec<Spanned<String>>>,
    pub paths_ignore: Option<Vec<Spanned<String>>>,
    /// `workflow_run.workflows`.
    pub workflows: Option<Vec<Spanned<String>>>,
}

/// An event that may start workflows. Serializable, so that a run's event can be stored with the
/// run (missing fields read as their defaults).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Event {
    /// `push`, `pull_request`, `workflow_dispatch`, ...
    pub name: String,
    /// The activity type (`opened`, `synchronize`, ...) for events that have one. `None`:
    /// `types` is not checked.
    pub action: Option<String>,
    /// The full ref: `refs/heads/main`, `refs/tags/v1`, `refs/pull/1/merge`. For
    /// `workflow_run`, the ref the triggering workflow ran on (its `branches` filters apply to
    /// it).
    pub git_ref: Option<String>,
    /// For pull requests: the base branch (`main` or `refs/heads/main`).
    pub base_ref: Option<String>,
    /// Paths changed by the event, relative to the repository root. `None` = unknown.
    pub changed_paths: Option<Vec<String>>,
    /// For `workflow_run`: the name of the workflow that ran.
    pub workflow_name: Option<String>,
}

/// Whether an event starts a workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TriggerDecision {
    /// Every filter passed.
    Runs,
    /// Runs, but a filter could not be evaluated; the string says which and why (the changed
    /// paths were unknown, so the path filters were assumed to pass).
    RunsAssuming(String),
    Skipped(SkipReason),
}

impl TriggerDecision {
    /// Whether the workflow starts (also when a filter was assumed to pass).
    pub fn runs(&self) -> bool {
        !matches!(self, TriggerDecision::Skipped(_))
    }
}

impl fmt::Display for TriggerDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TriggerDecision::Runs => f.write_str("runs"),
            TriggerDecision::RunsAssuming(why) => write!(f, "runs ({why})"),
            TriggerDecision::Skipped(reason) => write!(f, "skipped: {reason}"),
        }
    }
}

/// Why an event does not start a workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkipReason {
    pub kind: SkipKind,
    /// A sentence for the user, e.g. "no changed path matches paths [src/**]".
    pub message: String,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Which rule skipped the workflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipKind {
    /// No `on.<event>` entry for the event.
    NoTrigger,
    /// The activity type is not in `types` (or not a default type).
    ActivityType,
    /// `workflow_run`: the triggering workflow is not in `workflows`.
    Workflow,
    /// The branch fails `branches`/`branches-ignore`.
    Branch,
    /// The tag fails `tags`/`tags-ignore`.
    Tag,
    /// Only branch filters for a tag push, only tag filters for a branch push, or a ref that
    /// is neither a branch nor a tag while ref filters are defined.
    RefKind,
    /// Ref filters are defined but the event's ref (or base branch) is unknown.
    UnknownRef,
    /// No changed path matches `paths`.
    Paths,
    /// Every changed path matches `paths-ignore`.
    PathsIgnore,
    /// Path filters are defined and nothing changed.
    NoChangedPaths,
    /// A filter pattern is invalid (validation reports it too).
    InvalidFilter,
}

fn skip(kind: SkipKind, message: String) -> TriggerDecision {
    TriggerDecision::Skipped(SkipReason { kind, message })
}

/// Activity types an event runs for when its trigger lists no `types`. `None`: all types.
pub fn default_activity_types(event: &str) -> Option<&'static [&'static str]> {
    match event {
        "pull_request" | "pull_request_target" => Some(&["opened", "synchronize", "reopened"]),
        _ => None,
    }
}

/// Decides whether `event` starts a workflow with these `triggers` (its `on:` entries).
pub fn check_trigger(triggers: &[Trigger], event: &Event) -> TriggerDecision {
    match triggers.iter().find(|t| t.event.value == event.name) {
        Some(trigger) => check_filters(&trigger.filters, event),
        None => skip(
            SkipKind::NoTrigger,
            format!("no `on: {}` trigger", event.name),
        ),
    }
}

/// Decides whether `event` passes the filters of its `on.<event>` entry.
pub fn check_filters(filters: &EventFilters, event: &Event) -> TriggerDecision {
    evaluate(filters, event).unwrap_or_else(|skipped| skipped)
}

/// The checks in order; `Err` carries the first failing decision.
fn evaluate(filters: &EventFilters, event: &Event) -> Result<TriggerDecision, TriggerDecision> {
    check_activity_type(filters, event)?;
    if event.name == "workflow_run" {
        check_workflow_name(filters, event)?;
    }
    let is_tag_push = check_ref(filters, event)?;
    let path_filtered = matches!(
        event.name.as_str(),
        "push" | "pull_request" | "pull_request_target"
    );
    if path_filtered && !is_tag_push {
        return check_paths(filters, event);
    }
    Ok(TriggerDecision::Runs)
}

fn check_activity_type(filters: &EventFilters, event: &Event) -> Result<(), TriggerDecision> {
    let Some(action) = event.action.as_deref() else {
        return Ok(());
    };
    match &filters.types {
        Some(types) => {
            if types.iter().any(|t| t.value == action) {
                return Ok(());
            }
            let list = FlowList(types.iter().map(|t| t.value.as_str()).collect());
            Err(skip(
                SkipKind::ActivityType,
                format!("activity type `{action}` not in types {list}"),
            ))
        }
        None => match default_activity_types(&event.name) {
            Some(defaults) if !defaults.contains(&action) => Err(skip(
                SkipKind::ActivityType,
                format!(
                    "activity type `{action}` is not one of the default types of `{}` {}; list it under `types` to run for it",
                    event.name,
                    FlowList(defaults.to_vec())
                ),
            )),
            _ => Ok(()),
        },
    }
}

fn check_workflow_name(filters: &EventFilters, event: &Event) -> Result<(), TriggerDecision> {
    let Some(workflows) = &filters.workflows else {
        return Ok(());
    };
    let list = compile("workflows", workflows)?;
    match event.workflow_name.as_deref() {
        Some(name) if list.matches(name) => Ok(()),
        Some(name) => Err(skip(
            SkipKind::Workflow,
            format!("workflow `{name}` does not match workflows {list}"),
        )),
        None => Err(skip(
            SkipKind::Workflow,
            format!("the triggering workflow's name is unknown, and workflows {list} is defined"),
        )),
    }
}

/// The ref an event's branch/tag filters apply to.
enum RefName<'a> {
    Branch(&'a str),
    Tag(&'a str),
    Other(&'a str),
}

fn classify_ref(git_ref: &str) -> RefName<'_> {
    if let Some(branch) = git_ref.strip_prefix("refs/heads/") {
        RefName::Branch(branch)
    } else if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        RefName::Tag(tag)
    } else if git_ref.starts_with("refs/") {
        RefName::Other(git_ref)
    } else {
        RefName::Branch(git_ref)
    }
}

/// Checks branch and tag filters. `Ok(true)` for a tag push (path filters are then skipped).
fn check_ref(filters: &EventFilters, event: &Event) -> Result<bool, TriggerDecision> {
    let has_branch_filters = filters.branches.is_some() || filters.branches_ignore.is_some();
    let has_tag_filters = filters.tags.is_some() || filters.tags_ignore.is_some();
    match event.name.as_str() {
        "push" => {
            let Some(git_ref) = event.git_ref.as_deref() else {
                if has_branch_filters || has_tag_filters {
                    return Err(skip(
                        SkipKind::UnknownRef,
                        "the pushed ref is unknown, and branch or tag filters are defined".into(),
                    ));
                }
                return Ok(false);
            };
            match classify_ref(git_ref) {
                RefName::Branch(branch) => {
                    if has_branch_filters {
                        check_branch(filters, "branch", branch)?;
                    } else if has_tag_filters {
                        return Err(skip(
                            SkipKind::RefKind,
                            "branch push but only tag filters are defined".into(),
                        ));
                    }
                    Ok(false)
                }
                RefName::Tag(tag) => {
                    if has_tag_filters {
                        check_tag(filters, tag)?;
                    } else if has_branch_filters {
                        return Err(skip(
                            SkipKind::RefKind,
                            "tag push but only branch filters are defined".into(),
                        ));
                    }
                    Ok(true)
                }
                RefName::Other(other) => {
                    if has_branch_filters || has_tag_filters {
                        return Err(skip(
                            SkipKind::RefKind,
                            format!(
                                "`{other}` is neither a branch nor a tag, and ref filters are defined"
                            ),
                        ));
                    }
                    Ok(false)
                }
            }
        }
        "pull_request" | "pull_request_target" => {
            if has_branch_filters {
                let Some(base) = event.base_ref.as_deref() else {
                    return Err(skip(
                        SkipKind::UnknownRef,
                        "the pull request's base branch is unknown, and branch filters are defined"
                            .into(),
                    ));
                };
                let base = base.strip_prefix("refs/heads/").unwrap_or(base);
                check_branch(filters, "base branch", base)?;
            }
            Ok(false)
        }
        "workflow_run" => {
            if has_branch_filters {
                let branch = match event.git_ref.as_deref().map(classify_ref) {
                    Some(RefName::Branch(branch)) => branch,
                    _ => {
                        return Err(skip(
                            SkipKind::UnknownRef,
                            "the triggering run's branch is unknown, and branch filters are defined"
                                .into(),
                        ));
                    }
                };
                check_branch(filters, "branch", branch)?;
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

fn check_branch(filters: &EventFilters, what: &str, branch: &str) -> Result<(), TriggerDecision> {
    if let Some(branches) = &filters.branches {
        let list = compile("branches", branches)?;
        if !list.matches(branch) {
            return Err(skip(
                SkipKind::Branch,
                format!("{what} `{branch}` does not match branches {list}"),
            ));
        }
    }
    if let Some(ignored) = &filters.branches_ignore {
        let list = compile("branches-ignore", ignored)?;
        if list.matches(branch) {
            return Err(skip(
                SkipKind::Branch,
                format!("{what} `{branch}` matches branches-ignore {list}"),
            ));
        }
    }
    Ok(())
}

fn check_tag(filters: &EventFilters, tag: &str) -> Result<(), TriggerDecision> {
    if let Some(tags) = &filters.tags {
        let list = compile("tags", tags)?;
        if !list.matches(tag) {
            return Err(skip(
                SkipKind::Tag,
                format!("tag `{tag}` does not match tags {list}"),
            ));
        }
    }
    if let Some(ignored) = &filters.tags_ignore {
        let list = compile("tags-ignore", ignored)?;
        if list.matches(tag) {
            return Err(skip(
                SkipKind::Tag,
                format!("tag `{tag}` matches tags-ignore {list}"),
            ));
        }
    }
    Ok(())
}

fn check_paths(filters: &EventFilters, event: &Event) -> Result<TriggerDecision, TriggerDecision> {
    let paths = filters
        .paths
        .as_ref()
        .map(|p| compile("paths", p))
        .transpose()?;
    let ignored = filters
        .paths_ignore
        .as_ref()
        .map(|p| compile("paths-ignore", p))
        .transpose()?;
    if paths.is_none() && ignored.is_none() {
        return Ok(TriggerDecision::Runs);
    }
    let described = describe_path_filters(paths.as_ref(), ignored.as_ref());
    let Some(changed) = &event.changed_paths else {
        return Ok(TriggerDecision::RunsAssuming(format!(
            "changed paths unknown; assumed to pass {described}"
        )));
    };
    if changed.is_empty() {
        return Err(skip(
            SkipKind::NoChangedPaths,
            format!("no changed paths, and {described} is defined"),
        ));
    }
    if let Some(list) = &paths
        && !list.matches_any(changed)
    {
        return Err(skip(
            SkipKind::Paths,
            format!("no changed path matches paths {list}"),
        ));
    }
    if let Some(list) = &ignored
        && list.matches_all(changed)
    {
        return Err(skip(
            SkipKind::PathsIgnore,
            format!("all changed paths match paths-ignore {list}"),
        ));
    }
    Ok(TriggerDecision::Runs)
}

fn describe_path_filters(paths: Option<&PatternList>, ignored: Option<&PatternList>) -> String {
    match (paths, ignored) {
        (Some(p), Some(i)) => format!("paths {p} and paths-ignore {i}"),
        (Some(p), None) => format!("paths {p}"),
        (None, Some(i)) => format!("paths-ignore {i}"),
        (None, None) => String::new(),
    }
}

fn compile(key: &str, patterns: &[Spanned<String>]) -> Result<PatternList, TriggerDecision> {
    let values: Vec<&str> = patterns.iter().map(|p| p.value.as_str()).collect();
    PatternList::new(&values).map_err(|(_, error)| {
        skip(
            SkipKind::InvalidFilter,
            format!("`{key}` has an invalid pattern: {error}"),
        )
    })
}

/// A list of names shown as a YAML flow sequence: `[opened, synchronize]`.
struct FlowList<'a>(Vec<&'a str>);

impl fmt::Display for FlowList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write_flow_scalar(f, item)?;
        }
        f.write_str("]")
    }
}

/// A mistake in the filters of one `on.<event>` entry, located at the value it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterProblem {
    pub kind: FilterProblemKind,
    pub message: String,
    /// The pattern (or the first pattern of the list) the problem concerns; may be unknown.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterProblemKind {
    /// A filter and its `-ignore` twin are both defined.
    Conflict,
    /// `branches`, `tags` or `paths` holds only `!` patterns: it can never match.
    OnlyNegative,
    /// A pattern does not parse.
    InvalidPattern(FilterError),
}

/// The filter conflicts of one `on.<event>` entry, as messages: a filter used together with its
/// `-ignore` twin (GitHub rejects the workflow), and `branches`/`tags`/`paths` lists made only
/// of `!` patterns. [`filter_problems`] gives the same with locations, plus invalid patterns.
pub fn filter_conflicts(filters: &EventFilters) -> Vec<String> {
    filter_problems(filters)
        .into_iter()
        .filter(|p| !matches!(p.kind, FilterProblemKind::InvalidPattern(_)))
        .map(|p| p.message)
        .collect()
}

/// Every mistake in the filters of one `on.<event>` entry, each located: conflicting
/// filters, lists of only `!` patterns, and invalid patterns (one problem per pattern).
pub fn filter_problems(filters: &EventFilters) -> Vec<FilterProblem> {
    let mut problems = Vec::new();
    let pairs = [
        (
            "branches",
            &filters.branches,
            "branches-ignore",
            &filters.branches_ignore,
        ),
        ("tags", &filters.tags, "tags-ignore", &filters.tags_ignore),
        (
            "paths",
            &filters.paths,
            "paths-ignore",
            &filters.paths_ignore,
        ),
    ];
    for (key, list, ignore_key, ignore_list) in pairs {
        if let (Some(_), Some(ignored)) = (list, ignore_list) {
            problems.push(FilterProblem {
                kind: FilterProblemKind::Conflict,
                message: format!(
                    "`{key}` and `{ignore_key}` cannot both be used for the same event; use `{key}` with `!` patterns to exclude"
                ),
                span: first_span(ignored),
            });
        }
        if let Some(list) = list
            && !list.is_empty()
            && list.iter().all(|p| p.value.starts_with('!'))
        {
            problems.push(FilterProblem {
                kind: FilterProblemKind::OnlyNegative,
                message: format!(
                    "every pattern in `{key}` starts with `!`, so nothing can match; add a pattern without `!` (such as '**') or use `{ignore_key}`"
                ),
                span: first_span(list),
            });
        }
    }
    let lists = [
        &filters.branches,
        &filters.branches_ignore,
        &filters.tags,
        &filters.tags_ignore,
        &filters.paths,
        &filters.paths_ignore,
        &filters.workflows,
    ];
    for pattern in lists.into_iter().flatten().flatten() {
        if let Err(error) = parse_pattern(&pattern.value) {
            problems.push(FilterProblem {
                message: error.to_string(),
                kind: FilterProblemKind::InvalidPattern(error),
                span: pattern.span,
            });
        }
    }
    problems
}

fn first_span(list: &[Spanned<String>]) -> Span {
    list.first().map(|p| p.span).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn strings(v: &Value) -> Option<Vec<Spanned<String>>> {
        v.as_array().map(|items| {
            items
                .iter()
                .map(|i| Spanned::new(i.as_str().unwrap().to_owned(), Span::default()))
                .collect()
        })
    }

    /// Builds triggers from a JSON transcription of `on:` (a mapping of events).
    fn triggers(on: &Value) -> Vec<Trigger> {
        on.as_object()
            .unwrap()
            .iter()
            .map(|(name, f)| Trigger {
                event: Spanned::new(name.clone(), Span::default()),
                filters: EventFilters {
                    types: strings(&f["types"]),
                    branches: strings(&f["branches"]),
                    branches_ignore: strings(&f["branches-ignore"]),
                    tags: strings(&f["tags"]),
                    tags_ignore: strings(&f["tags-ignore"]),
                    paths: strings(&f["paths"]),
                    paths_ignore: strings(&f["paths-ignore"]),
                    workflows: strings(&f["workflows"]),
                },
            })
            .collect()
    }

    fn push(git_ref: &str, changed: &[&str]) -> Event {
        Event {
            name: "push".into(),
            git_ref: Some(git_ref.into()),
            changed_paths: Some(changed.iter().map(|s| s.to_string()).collect()),
            ..Event::default()
        }
    }

    fn pull_request(action: &str, base: &str, changed: &[&str]) -> Event {
        Event {
            name: "pull_request".into(),
            action: Some(action.into()),
            git_ref: Some("refs/pull/7/merge".into()),
            base_ref: Some(base.into()),
            changed_paths: Some(changed.iter().map(|s| s.to_string()).collect()),
            ..Event::default()
        }
    }

    fn check(on: Value, event: &Event, expected: &str) {
        let decision = check_trigger(&triggers(&on), event);
        assert_eq!(decision.to_string(), expected, "on: {on}");
    }

    #[test]
    fn reasons_name_the_rule_that_skipped() {
        check(
            json!({"push": {}}),
            &pull_request("opened", "main", &[]),
            "skipped: no `on: pull_request` trigger",
        );
        check(
            json!({"pull_request": {"types": ["opened", "synchronize"]}}),
            &pull_request("closed", "main", &["a"]),
            "skipped: activity type `closed` not in types [opened, synchronize]",
        );
        check(
            json!({"pull_request": {}}),
            &pull_request("labeled", "main", &["a"]),
            "skipped: activity type `labeled` is not one of the default types of `pull_request` [opened, synchronize, reopened]; list it under `types` to run for it",
        );
        check(
            json!({"push": {"branches": ["main", "releases/**"]}}),
            &push("refs/heads/feature/x", &["a"]),
            "skipped: branch `feature/x` does not match branches [main, releases/**]",
        );
        check(
            json!({"push": {"branches-ignore": ["dev", "*-wip"]}}),
            &push("refs/heads/x-wip", &["a"]),
            "skipped: branch `x-wip` matches branches-ignore [dev, '*-wip']",
        );
        check(
            json!({"push": {"tags": ["v*"]}}),
            &push("refs/tags/1.0", &[]),
            "skipped: tag `1.0` does not match tags [v*]",
        );
        check(
            json!({"push": {"tags-ignore": ["v1.*"]}}),
            &push("refs/tags/v1.2", &[]),
            "skipped: tag `v1.2` matches tags-ignore [v1.*]",
        );
        check(
            json!({"push": {"branches": ["main"]}}),
            &push("refs/tags/v1", &[]),
            "skipped: tag push but only branch filters are defined",
        );
        check(
            json!({"push": {"tags": ["v*"]}}),
            &push("refs/heads/main", &["a"]),
            "skipped: branch push but only tag filters are defined",
        );
        check(
            json!({"push": {"paths-ignore": ["docs/**"]}}),
            &push("refs/heads/main", &["docs/a.md", "docs/b/c.md"]),
            "skipped: all changed paths match paths-ignore [docs/**]",
        );
        check(
            json!({"push": {"paths": ["src/**"]}}),
            &push("refs/heads/main", &["README.md"]),
            "skipped: no changed path matches paths [src/**]",
        );
        check(
            json!({"push": {"paths": ["src/**"]}}),
            &push("refs/heads/main", &[]),
            "skipped: no changed paths, and paths [src/**] is defined",
        );
        check(
            json!({"pull_request": {"branches": ["main"]}}),
            &pull_request("opened", "refs/heads/dev", &["a"]),
            "skipped: base branch `dev` does not match branches [main]",
        );
        check(
            json!({"push": {"branches": ["[x"]}}),
            &push("refs/heads/main", &[]),
            "skipped: `branches` has an invalid pattern: invalid filter pattern '[x' at column 1: '[' is never closed by ']'",
        );
    }

    #[test]
    fn events_that_pass_run() {
        check(json!({"push": {}}), &push("refs/heads/main", &[]), "runs");
        check(
            json!({"pull_request": {"branches": ["main"], "paths": ["src/**"]}}),
            &pull_request("synchronize", "main", &["src/a.rs"]),
            "runs",
        );
        check(
            json!({"pull_request": {"types": ["closed"]}}),
            &pull_request("closed", "main", &[]),
            "runs",
        );
        check(
            json!({"issues": {}}),
            &Event {
                name: "issues".into(),
                action: Some("labeled".into()),
                ..Event::default()
            },
            "runs",
        );
        check(
            json!({"push": {"tags": ["v*"], "paths": ["src/**"]}}),
            &push("refs/tags/v2", &["README.md"]),
            "runs",
        );
    }

    #[test]
    fn unknown_changed_paths_are_assumed_to_pass_and_said_so() {
        let mut event = push("refs/heads/main", &[]);
        event.changed_paths = None;
        let decision = check_trigger(&triggers(&json!({"push": {"paths": ["src/**"]}})), &event);
        assert!(decision.runs());
        assert_eq!(
            decision.to_string(),
            "runs (changed paths unknown; assumed to pass paths [src/**])"
        );
        // Without path filters nothing is assumed.
        let decision = check_trigger(&triggers(&json!({"push": {}})), &event);
        assert_eq!(decision, TriggerDecision::Runs);
    }

    #[test]
    fn workflow_run_matches_workflow_names_and_branches() {
        let on = json!({"workflow_run": {"workflows": ["Build", "Deploy *"], "types": ["completed"], "branches": ["releases/**", "!releases/**-alpha"]}});
        let event = |name: &str, git_ref: &str| Event {
            name: "workflow_run".into(),
            action: Some("completed".into()),
            git_ref: Some(git_ref.into()),
            workflow_name: Some(name.into()),
            ..Event::default()
        };
        check(
            on.clone(),
            &event("Build", "refs/heads/releases/10"),
            "runs",
        );
        check(
            on.clone(),
            &event("Deploy prod", "refs/heads/releases/beta/mona"),
            "runs",
        );
        check(
            on.clone(),
            &event("Lint", "refs/heads/releases/10"),
            "skipped: workflow `Lint` does not match workflows [Build, Deploy *]",
        );
        check(
            on,
            &event("Build", "refs/heads/releases/10-alpha"),
            "skipped: branch `releases/10-alpha` does not match branches [releases/**, '!releases/**-alpha']",
        );
    }

    #[test]
    fn conflicting_and_negative_only_filters_are_reported() {
        let on = json!({"push": {
            "branches": ["!main"], "branches-ignore": ["dev"],
            "paths": ["src/**"], "paths-ignore": ["docs/**"],
            "tags": ["v[1"],
        }});
        let filters = &triggers(&on)[0].filters;
        assert_eq!(
            filter_conflicts(filters),
            vec![
                "`branches` and `branches-ignore` cannot both be used for the same event; use `branches` with `!` patterns to exclude",
                "every pattern in `branches` starts with `!`, so nothing can match; add a pattern without `!` (such as '**') or use `branches-ignore`",
                "`paths` and `paths-ignore` cannot both be used for the same event; use `paths` with `!` patterns to exclude",
            ]
        );
        let problems = filter_problems(filters);
        assert_eq!(problems.len(), 4);
        assert!(matches!(
            &problems[3].kind,
            FilterProblemKind::InvalidPattern(e) if e.column() == 2
        ));
        assert!(filter_conflicts(&EventFilters::default()).is_empty());
    }

    /// Every `trigger_cases` entry of `testdata/oracles/filter-patterns.json`. For
    /// `pull_request`, the case's `ref` is the base branch.
    #[test]
    fn oracle_trigger_cases() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/oracles/filter-patterns.json"
        ))
        .unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        let cases = doc["trigger_cases"].as_array().unwrap();
        let mut failures = Vec::new();
        for case in cases {
            let name = case["event"].as_str().unwrap();
            let git_ref = case["ref"].as_str().unwrap();
            let changed = case["changed_files"].as_array().map(|files| {
                files
                    .iter()
                    .map(|f| f.as_str().unwrap().to_owned())
                    .collect()
            });
            let event = match name {
                "pull_request" => Event {
                    name: name.into(),
                    action: Some("opened".into()),
                    git_ref: Some("refs/pull/1/merge".into()),
                    base_ref: Some(git_ref.into()),
                    changed_paths: changed,
                    ..Event::default()
                },
                _ => Event {
                    name: name.into(),
                    git_ref: Some(git_ref.into()),
                    changed_paths: changed,
                    ..Event::default()
                },
            };
            let decision = check_trigger(&triggers(&case["on"]), &event);
            let expected = case["runs"].as_bool().unwrap();
            if decision.runs() != expected {
                failures.push(format!(
                    "{}: {decision}, expected runs={expected}",
                    case["id"]
                ));
            }
        }
        let passed = cases.len() - failures.len();
        println!(
            "filter-patterns.json trigger_cases: {passed}/{} pass ({:.1}%)",
            cases.len(),
            100.0 * passed as f64 / cases.len() as f64
        );
        for failure in &failures {
            println!("FAIL {failure}");
        }
        assert!(failures.is_empty(), "{} oracle failures", failures.len());
    }
}
