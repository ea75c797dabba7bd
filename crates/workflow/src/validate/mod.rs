//! Checks of a workflow beyond its shape: `needs` naming unknown jobs or forming a cycle, ids
//! GitHub rejects, duplicate step ids, invalid cron patterns and filter globs, matrices over
//! the leg limit, `workflow_dispatch` defaults that do not fit their type, container images
//! missing, and so on. Each problem is a [`Diagnostic`] with a stable code.
//!
//! [`crate::parse::parse_workflow`] runs these checks (and the schema check of
//! [`structure`]); call [`validate_workflow`] directly only for a model built otherwise.

pub mod call;
pub mod expression;
pub mod structure;

use std::collections::{HashMap, HashSet};

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::model::*;
use crate::span::{Span, Spanned};
use crate::yaml::Node;

/// Most legs a matrix may expand to (GitHub's limit).
pub const MAX_MATRIX_LEGS: usize = 256;
/// Longest job or step id GitHub accepts, exclusive.
pub const MAX_ID_LENGTH: usize = 100;

/// Runs the semantic checks on a converted workflow. `source` is the file text (used to point
/// inside values).
pub fn validate_workflow(workflow: &Workflow, source: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let lines = crate::yaml::LineIndex::new(source);
    check_filters(workflow, &lines, &mut out);
    check_jobs_present(workflow, &mut out);
    check_job_ids(workflow, &mut out);
    check_needs(workflow, &mut out);
    for job in &workflow.jobs {
        check_steps(job, &mut out);
        check_job_shape(job, &mut out);
        check_runs_on(job, &mut out);
        check_containers(job, &mut out);
        check_matrix(job, &mut out);
    }
    check_schedule(workflow, &mut out);
    check_inputs(workflow, &mut out);
    out
}

fn check_jobs_present(workflow: &Workflow, out: &mut Vec<Diagnostic>) {
    // A missing `jobs:` is reported by the schema check; an empty one here.
    if let Some(span) = workflow.jobs_span
        && workflow.jobs.is_empty()
    {
        out.push(
            Diagnostic::error("no-jobs", "the workflow has no jobs", span)
                .with_label(span, "no job here")
                .with_help("add at least one job under `jobs:`"),
        );
    }
}

/// GitHub's rule for job and step ids: a letter or `_` first, then letters, digits, `-` and
/// `_`; shorter than 100 characters; not starting with `__` (reserved for generated ids).
pub fn id_problem(id: &str) -> Option<String> {
    let mut chars = id.chars();
    let valid = match chars.next() {
        Some(first) => {
            (first.is_ascii_alphabetic() || first == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
        None => false,
    };
    if !valid || id.chars().count() >= MAX_ID_LENGTH {
        return Some(format!(
            "`{id}` is not a valid id: ids start with a letter or `_`, contain only letters, digits, `-` and `_`, and are shorter than {MAX_ID_LENGTH} characters"
        ));
    }
    if id.starts_with("__") {
        return Some(format!(
            "`{id}` is not a valid id: ids starting with `__` are reserved for the ids GitHub generates"
        ));
    }
    None
}

fn id_help(id: &str, kind: &str) -> String {
    let fixed: String = id
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let fixed = fixed.trim_start_matches(['-', '_']).to_owned();
    let fixed = if fixed.starts_with(|c: char| c.is_ascii_digit()) {
        format!("{kind}-{fixed}")
    } else {
        fixed
    };
    if !fixed.is_empty() && id_problem(&fixed).is_none() {
        format!("rename it, for example to `{fixed}`")
    } else {
        "rename it with letters, digits, `-` and `_` only, starting with a letter".to_owned()
    }
}

fn check_job_ids(workflow: &Workflow, out: &mut Vec<Diagnostic>) {
    for job in &workflow.jobs {
        if job.id.value.is_empty() {
            continue; // reported by the schema check
        }
        if let Some(problem) = id_problem(&job.id.value) {
            out.push(
                Diagnostic::error(
                    "invalid-id",
                    format!("invalid job id: {problem}"),
                    job.id.span,
                )
                .with_label(job.id.span, "invalid job id")
                .with_help(id_help(&job.id.value, "job")),
            );
        }
    }
}

fn check_needs(workflow: &Workflow, out: &mut Vec<Diagnostic>) {
    let first_needs_diagnostic = out.len();
    let ids: Vec<&str> = workflow.jobs.iter().map(|j| j.id.value.as_str()).collect();
    let known: HashSet<&str> = ids.iter().copied().collect();
    for job in &workflow.jobs {
        let mut seen = HashSet::new();
        for need in &job.needs {
            if !known.contains(need.value.as_str()) {
                let help = did_you_mean(&need.value, ids.iter().copied()).unwrap_or_else(|| {
                    format!("the jobs of this workflow are: {}", ids.join(", "))
                });
                out.push(
                    Diagnostic::error(
                        "unknown-needs",
                        format!(
                            "job `{}` needs `{}`, which is not a job of this workflow",
                            job.id.value, need.value
                        ),
                        need.span,
                    )
                    .with_label(need.span, "unknown job")
                    .with_help(help),
                );
            } else if need.value == job.id.value {
                out.push(
                    Diagnostic::error(
                        "needs-cycle",
                        format!("job `{}` needs itself", job.id.value),
                        need.span,
                    )
                    .with_label(need.span, "a job cannot wait for itself")
                    .with_help("remove this entry from `needs`"),
                );
            } else if !seen.insert(need.value.as_str()) {
                out.push(
                    Diagnostic::warning(
                        "duplicate-needs",
                        format!(
                            "job `{}` lists `{}` twice in `needs`",
                            job.id.value, need.value
                        ),
                        need.span,
                    )
                    .with_help("remove the repeated entry"),
                );
            }
        }
    }
    let no_start = !workflow.jobs.is_empty() && workflow.jobs.iter().all(|j| !j.needs.is_empty());
    for cycle in find_cycles(workflow) {
        let path: Vec<&str> = cycle.iter().map(|(job, _)| job.as_str()).collect();
        let first = &cycle[0].0;
        let text = format!("{} -> {first}", path.join(" -> "));
        let Some(primary) = cycle[0].1 else { continue };
        let mut d = Diagnostic::error(
            "needs-cycle",
            format!("the jobs' `needs` form a cycle: {text}"),
            primary,
        )
        .with_label(
            primary,
            format!("`{}` needs `{}`", cycle[0].0, next_in(&cycle, 0)),
        )
        .with_help("remove one of these `needs` entries so that some job can start first");
        for (i, (job, span)) in cycle.iter().enumerate().skip(1) {
            if let Some(span) = span {
                d = d.with_label(*span, format!("`{job}` needs `{}`", next_in(&cycle, i)));
            }
        }
        out.push(d);
    }
    // When every job needs another one, no job can start: say so at the first job, on the
    // first `needs` problem (an unknown job or a cycle is always the cause).
    if no_start {
        let label = (
            workflow.jobs[0].id.span,
            "no job of this workflow can start first".to_owned(),
        );
        match out[first_needs_diagnostic..]
            .iter_mut()
            .find(|d| matches!(d.code, "unknown-needs" | "needs-cycle"))
        {
            Some(d) => d.labels.push(label),
            None => out.push(
                Diagnostic::error(
                    "needs-cycle",
                    "every job needs another job, so no job can start",
                    label.0,
                )
                .with_help("remove `needs` from the job that should run first"),
            ),
        }
    }
}

fn next_in(cycle: &[(String, Option<Span>)], i: usize) -> &str {
    &cycle[(i + 1) % cycle.len()].0
}

/// Cycles among `needs` (self-needs excluded, reported separately): for each, the jobs in
/// order and the span of the `needs` entry leading to the next one.
fn find_cycles(workflow: &Workflow) -> Vec<Vec<(String, Option<Span>)>> {
    let index: HashMap<&str, usize> = workflow
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.id.value.as_str(), i))
        .collect();
    let edges: Vec<Vec<(usize, Span)>> = workflow
        .jobs
        .iter()
        .map(|j| {
            j.needs
                .iter()
                .filter_map(|n| index.get(n.value.as_str()).map(|&t| (t, n.span)))
                .filter(|(t, _)| workflow.jobs[*t].id.value != j.id.value)
                .collect()
        })
        .collect();
    // Iterative DFS with colors; each back edge closes a cycle. Report each set of jobs once.
    let n = workflow.jobs.len();
    let mut color = vec![0u8; n];
    let mut cycles = Vec::new();
    let mut reported: HashSet<Vec<usize>> = HashSet::new();
    for root in 0..n {
        if color[root] != 0 {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        let mut path: Vec<usize> = vec![root];
        color[root] = 1;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if *next < edges[node].len() {
                let (target, _) = edges[node][*next];
                *next += 1;
                match color[target] {
                    0 => {
                        color[target] = 1;
                        stack.push((target, 0));
                        path.push(target);
                    }
                    1 => {
                        if let Some(pos) = path.iter().position(|&p| p == target) {
                            let members: Vec<usize> = path[pos..].to_vec();
                            let mut key = members.clone();
                            key.sort_unstable();
                            if reported.insert(key) {
                                let cycle = members
                                    .iter()
                                    .enumerate()
                                    .map(|(i, &m)| {
                                        let to = members[(i + 1) % members.len()];
                                        let span = edges[m]
                                            .iter()
                                            .find(|(t, _)| *t == to)
                                            .map(|(_, s)| *s);
                                        (workflow.jobs[m].id.value.clone(), span)
                                    })
                                    .collect();
                                cycles.push(cycle);
                            }
                        }
                    }
                    _ => {}
                }
            } else {
                color[node] = 2;
                stack.pop();
                path.pop();
            }
        }
    }
    cycles
}

fn check_steps(job: &Job, out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<String, Span> = HashMap::new();
    for step in &job.steps {
        let Some(id) = &step.user_id else { continue };
        if let Some(problem) = id_problem(&id.value) {
            out.push(
                Diagnostic::error("invalid-id", format!("invalid step id: {problem}"), id.span)
                    .with_label(id.span, "invalid step id")
                    .with_help(id_help(&id.value, "step")),
            );
            continue;
        }
        match seen.get(&id.value.to_lowercase()) {
            Some(first) => out.push(
                Diagnostic::error(
                    "duplicate-step-id",
                    format!(
                        "job `{}` has two steps with the id `{}`",
                        job.id.value, id.value
                    ),
                    id.span,
                )
                .with_label(id.span, "second use")
                .with_label(*first, "first use")
                .with_help(
                    "step ids must be unique within a job (case does not matter); rename one",
                ),
            ),
            None => {
                seen.insert(id.value.to_lowercase(), id.span);
            }
        }
    }
}

fn check_job_shape(job: &Job, out: &mut Vec<Diagnostic>) {
    if let Some(call) = &job.call {
        let uses = &call.uses;
        if !uses.value.contains("${{") && !is_reusable_workflow_ref(&uses.value) {
            out.push(
                Diagnostic::error(
                    "invalid-uses",
                    format!("`{}` is not a reusable workflow reference", uses.value),
                    uses.span,
                )
                .with_label(uses.span, "not a workflow file")
                .with_help("use `owner/repo/.github/workflows/file.yml@ref` or `./.github/workflows/file.yml`; to run an action, put `uses:` in a step"),
            );
        }
    }
    for step in &job.steps {
        if let Some(uses) = step.uses()
            && !uses.value.contains("${{")
            && let Some(problem) = action_ref_problem(&uses.value)
        {
            out.push(
                Diagnostic::error("invalid-uses", problem, uses.span)
                    .with_label(uses.span, "invalid action reference")
                    .with_help("use `owner/repo@ref`, `owner/repo/path@ref`, `./path/to/action` or `docker://image`"),
            );
        }
    }
}

/// `owner/repo/.github/workflows/file.yml@ref` or `./.github/workflows/file.yml`.
fn is_reusable_workflow_ref(uses: &str) -> bool {
    if let Some(local) = uses.strip_prefix("./") {
        return local.starts_with(".github/workflows/")
            && (local.ends_with(".yml") || local.ends_with(".yaml"));
    }
    let Some((path, git_ref)) = uses.split_once('@') else {
        return false;
    };
    let parts: Vec<&str> = path.split('/').collect();
    !git_ref.is_empty()
        && parts.len() >= 5
        && parts.iter().all(|p| !p.is_empty())
        && parts[2] == ".github"
        && parts[3] == "workflows"
        && (path.ends_with(".yml") || path.ends_with(".yaml"))
}

/// Why a step's `uses:` is not an action reference GitHub accepts.
fn action_ref_problem(uses: &str) -> Option<String> {
    if uses.starts_with("docker://") {
        return (uses.len() == "docker://".len())
            .then(|| "`docker://` needs an image name".to_owned());
    }
    if uses.starts_with("./") || uses.starts_with(".\\") {
        return None;
    }
    let valid = match uses.split_once('@') {
        Some((path, git_ref)) => {
            let parts: Vec<&str> = path.split('/').collect();
            !git_ref.is_empty() && parts.len() >= 2 && parts.iter().all(|p| !p.is_empty())
        }
        None => false,
    };
    (!valid)
        .then(|| format!("`{uses}` is not an action reference: expected `owner/repo[/path]@ref`"))
}

fn check_runs_on(job: &Job, out: &mut Vec<Diagnostic>) {
    let Some(runs_on) = &job.runs_on else { return };
    let Some(literal) = &runs_on.literal else {
        return;
    };
    if let Some(group) = &literal.group {
        let parts: Vec<&str> = group.value.split('/').collect();
        let problem = match parts.as_slice() {
            [_] => None,
            [prefix, name] => {
                if !matches!(*prefix, "org" | "organization" | "ent" | "enterprise") {
                    Some(format!(
                        "`{}` has an unknown prefix `{prefix}/`",
                        group.value
                    ))
                } else if name.is_empty() {
                    Some(format!(
                        "`{}` has no group name after the prefix",
                        group.value
                    ))
                } else {
                    None
                }
            }
            _ => Some(format!("`{}` has too many `/`", group.value)),
        };
        if let Some(problem) = problem {
            out.push(
                Diagnostic::error("invalid-runner-group", format!("invalid runner group: {problem}"), group.span)
                    .with_label(group.span, "invalid group name")
                    .with_help("write the group name alone, or `organization/<name>` or `enterprise/<name>` to pick the level"),
            );
        }
    }
    if literal.labels.is_empty() && literal.group.is_none() {
        let span = runs_on.span();
        out.push(
            Diagnostic::error(
                "missing-runs-on",
                format!("job `{}` has an empty `runs-on`", job.id.value),
                span,
            )
            .with_help("give at least one runner label, for example `ubuntu-latest`"),
        );
    }
}

fn check_containers(job: &Job, out: &mut Vec<Diagnostic>) {
    let mut check = |container: &Dynamic<Container>, what: String| {
        if container.is_expression() {
            return;
        }
        let empty = match &container.literal {
            Some(c) => c.image.value.trim().is_empty(),
            None => matches!(
                container.raw.value,
                Node::Map(_) | Node::String(_) | Node::Null
            ),
        };
        if empty {
            let span = structure::head_span(&container.raw);
            out.push(
                Diagnostic::error("missing-image", format!("{what} has no image"), span)
                    .with_label(span, "this container has no `image`")
                    .with_help("add `image:` with a Docker image, for example `image: node:20`"),
            );
        }
    };
    if let Some(container) = &job.container {
        check(
            container,
            format!("the container of job `{}`", job.id.value),
        );
    }
    for service in &job.services {
        check(
            &service.container,
            format!(
                "the service `{}` of job `{}`",
                service.name.value, job.id.value
            ),
        );
    }
}

fn check_matrix(job: &Job, out: &mut Vec<Diagnostic>) {
    use crate::matrix::{MatrixError, check_input, count_legs, matrix_input_from_json};
    let Some(matrix) = job.strategy.as_ref().and_then(|s| s.matrix.as_ref()) else {
        return;
    };
    let Some(literal) = &matrix.literal else {
        return;
    };
    // Only a matrix whose structure is literal can be checked now; `${{ }}` in place of a
    // vector or of `include`/`exclude` is evaluated at run time.
    let structural = |d: &Option<MatrixValues>| d.as_ref().is_none_or(|v| v.literal.is_some());
    if literal.dimensions.iter().any(|(_, v)| v.literal.is_none())
        || !structural(&literal.include)
        || !structural(&literal.exclude)
    {
        return;
    }
    let Ok(input) = matrix_input_from_json(&matrix.raw.value.to_json()) else {
        return; // wrong shapes are reported by the schema check
    };
    let head = structure::head_span(&matrix.raw);
    let entry_span = |list: &Option<MatrixValues>, index: usize| -> Span {
        list.as_ref()
            .and_then(|l| l.literal.as_ref())
            .and_then(|items| items.get(index))
            .map_or(head, structure::head_span)
    };
    let dimension = |name: &str| literal.dimensions.iter().find(|(k, _)| k.value == name);
    for error in check_input(&input) {
        let message = match &error {
            MatrixError::EmptyVector { name } => {
                format!("the matrix vector `{name}` has no values")
            }
            MatrixError::DuplicateVector { name, first } => format!(
                "the matrix vectors `{first}` and `{name}` are the same key (matrix keys are case-insensitive)"
            ),
            MatrixError::NoVector => "the matrix has no vector and no `include`".to_owned(),
            MatrixError::EmptyInclude { index } => {
                format!("`include` entry {} is empty", index + 1)
            }
            MatrixError::EmptyExclude { index } => {
                format!("`exclude` entry {} is empty", index + 1)
            }
            MatrixError::UnknownExcludeKey { key, .. } => {
                format!("the `exclude` key `{key}` is not a vector of the matrix")
            }
            other => other.to_string(),
        };
        let (code, span, help) = match &error {
            MatrixError::EmptyVector { name } => (
                "empty-matrix-dimension",
                dimension(name).map_or(head, |(_, v)| structure::head_span(&v.raw)),
                "give the vector at least one value, or remove it".to_owned(),
            ),
            MatrixError::DuplicateVector { name, .. } => (
                "invalid-matrix",
                dimension(name).map_or(head, |(k, _)| k.span),
                "matrix keys are case-insensitive; rename or merge the two vectors".to_owned(),
            ),
            MatrixError::NoVector => (
                "invalid-matrix",
                head,
                "add a vector (`os: [ubuntu-latest, windows-latest]`) or an `include:` list"
                    .to_owned(),
            ),
            MatrixError::EmptyInclude { index } => (
                "invalid-matrix",
                entry_span(&literal.include, *index),
                "remove the empty entry, or give it at least one key".to_owned(),
            ),
            MatrixError::EmptyExclude { index } => (
                "invalid-matrix",
                entry_span(&literal.exclude, *index),
                "remove the empty entry, or give it at least one key".to_owned(),
            ),
            MatrixError::UnknownExcludeKey { index, key } => {
                let known: Vec<&str> = literal
                    .dimensions
                    .iter()
                    .map(|(k, _)| k.value.as_str())
                    .collect();
                let span = literal
                    .exclude
                    .as_ref()
                    .and_then(|l| l.literal.as_ref())
                    .and_then(|items| items.get(*index))
                    .and_then(|entry| entry.value.as_map())
                    .and_then(|m| m.iter().find(|(k, _)| &k.value == key))
                    .map_or_else(|| entry_span(&literal.exclude, *index), |(k, _)| k.span);
                (
                    "invalid-matrix",
                    span,
                    did_you_mean(key, known.iter().copied()).unwrap_or_else(|| {
                        format!(
                            "`exclude` may only use the matrix vectors: {}",
                            known.join(", ")
                        )
                    }),
                )
            }
            _ => continue,
        };
        let label = match &error {
            MatrixError::EmptyVector { .. } => "no values",
            MatrixError::UnknownExcludeKey { .. } => "not a vector",
            MatrixError::EmptyInclude { .. } | MatrixError::EmptyExclude { .. } => "empty entry",
            _ => "here",
        };
        out.push(
            Diagnostic::error(code, message, span)
                .with_label(span, label)
                .with_help(help),
        );
    }
    let sizes: Vec<usize> = literal
        .dimensions
        .iter()
        .map(|(_, v)| v.literal.as_ref().map_or(0, Vec::len))
        .collect();
    if let Ok(count) = count_legs(&input)
        && count > MAX_MATRIX_LEGS as u128
    {
        out.push(
            Diagnostic::error(
                "matrix-too-large",
                format!(
                    "the matrix of job `{}` expands to {count} jobs, more than the limit of {MAX_MATRIX_LEGS}",
                    job.id.value
                ),
                head,
            )
            .with_label(
                head,
                if literal.include.is_none() && literal.exclude.is_none() && sizes.len() > 1 {
                    format!(
                        "{} = {count} combinations",
                        sizes.iter().map(ToString::to_string).collect::<Vec<_>>().join(" × ")
                    )
                } else {
                    format!("{count} combinations")
                },
            )
            .with_help("reduce the number of values, exclude combinations, or split the job"),
        );
    }
}

fn check_filters(
    workflow: &Workflow,
    lines: &crate::yaml::LineIndex<'_>,
    out: &mut Vec<Diagnostic>,
) {
    for trigger in &workflow.on.triggers {
        let event = &trigger.event.value;
        let f = &trigger.filters;
        let pairs = [
            (
                "branches",
                &f.branches,
                "branches-ignore",
                &f.branches_ignore,
            ),
            ("tags", &f.tags, "tags-ignore", &f.tags_ignore),
            ("paths", &f.paths, "paths-ignore", &f.paths_ignore),
        ];
        for (name, list, ignore_name, ignore_list) in pairs {
            if let (Some(list), Some(ignore)) = (list, ignore_list) {
                let span = ignore.first().map_or(trigger.event.span, |p| p.span);
                let first = list.first().map_or(trigger.event.span, |p| p.span);
                out.push(
                    Diagnostic::error(
                        "conflicting-filters",
                        format!("`on.{event}` has both `{name}` and `{ignore_name}`"),
                        span,
                    )
                    .with_label(span, format!("`{ignore_name}` here"))
                    .with_label(first, format!("`{name}` here"))
                    .with_help(format!(
                        "GitHub does not allow both for one event; use `{name}` with `!pattern` entries to exclude"
                    )),
                );
            }
            for (filter, patterns) in [(name, list), (ignore_name, ignore_list)] {
                for pattern in patterns.iter().flatten() {
                    if pattern.value.contains("${{") {
                        continue;
                    }
                    if let Err(e) = crate::filter::parse_pattern(&pattern.value) {
                        let span = value_span(lines, pattern, e.offset, 1);
                        out.push(
                            Diagnostic::error(
                                "invalid-glob",
                                format!("invalid pattern `{}` in `on.{event}.{filter}`: {}", pattern.value, e.kind),
                                span,
                            )
                            .with_label(span, "here")
                            .with_help("GitHub filter patterns use `*`, `**`, `?`, `+`, `[a-z]` and a leading `!`; escape other special characters with `\\`"),
                        );
                    }
                }
            }
        }
    }
}

/// The span of bytes `offset..offset + len` inside the string value `value`, when the value
/// is written on one line; otherwise the value's span.
fn value_span(
    lines: &crate::yaml::LineIndex<'_>,
    value: &Spanned<String>,
    offset: usize,
    len: usize,
) -> Span {
    match crate::yaml::value_text_offset(lines.source, value.span, &value.value) {
        Some(base) => {
            let start = (base + offset).min(base + value.value.len());
            let end = (start + len).min(base + value.value.len()).max(start);
            Span::new(lines.pos(start), lines.pos(end))
        }
        None => value.span,
    }
}

fn check_schedule(workflow: &Workflow, out: &mut Vec<Diagnostic>) {
    for schedule in &workflow.on.schedule {
        if cron_problem(&schedule.cron.value).is_ok()
            && let Some(minute) = schedule.cron.value.split_whitespace().next()
            && let Some(interval) = minute_interval(minute)
            && interval < 5
        {
            out.push(
                Diagnostic::warning(
                    "schedule-too-frequent",
                    format!(
                        "the schedule `{}` asks for a run every {interval} minute(s), but GitHub runs schedules at most every 5 minutes",
                        schedule.cron.value
                    ),
                    schedule.cron.span,
                )
                .with_label(schedule.cron.span, "too frequent")
                .with_help("use an interval of 5 minutes or more, for example `*/5 * * * *`"),
            );
        }
        if let Err(problem) = cron_problem(&schedule.cron.value) {
            out.push(
                Diagnostic::error(
                    "invalid-cron",
                    format!("invalid cron schedule `{}`: {problem}", schedule.cron.value),
                    schedule.cron.span,
                )
                .with_label(schedule.cron.span, "invalid cron")
                .with_help("use 5 fields: minute hour day-of-month month day-of-week, for example `30 5 * * 1-5`"),
            );
        }
    }
}

/// The shortest gap in minutes between two runs allowed by a valid minute field, when it is
/// under an hour (`*` -> 1, `*/2` -> 2, `0,3` -> 3, `0-4` -> 1).
fn minute_interval(field: &str) -> Option<u32> {
    let mut minutes: Vec<u32> = Vec::new();
    for item in field.split(',') {
        let (range, step) = item
            .split_once('/')
            .map_or((item, 1), |(r, s)| (r, s.parse().unwrap_or(1)));
        let (from, to) = match range {
            "*" => (0, 59),
            r => match r.split_once('-') {
                Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                None => {
                    let n: u32 = r.parse().ok()?;
                    (n, if step > 1 { 59 } else { n })
                }
            },
        };
        minutes.extend((from..=to).step_by(usize::try_from(step.max(1)).unwrap_or(1)));
    }
    minutes.sort_unstable();
    minutes.dedup();
    if minutes.len() < 2 {
        return None;
    }
    let mut gap = 60 + minutes[0] - minutes[minutes.len() - 1];
    for pair in minutes.windows(2) {
        gap = gap.min(pair[1] - pair[0]);
    }
    Some(gap)
}

/// Checks a 5-field POSIX cron pattern as GitHub's `schedule` uses it: minute (0-59), hour
/// (0-23), day of month (1-31), month (1-12 or `JAN`-`DEC`), day of week (0-6 or
/// `SUN`-`SAT`); each field `*`, a value, a range `a-b`, a step `x/n` or a list `a,b`.
pub fn cron_problem(pattern: &str) -> Result<(), String> {
    let fields: Vec<&str> = pattern.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!("expected 5 fields, found {}", fields.len()));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let specs: [(&str, u32, u32, &[&str], u32); 5] = [
        ("minute", 0, 59, &[], 0),
        ("hour", 0, 23, &[], 0),
        ("day of month", 1, 31, &[], 0),
        ("month", 1, 12, MONTHS, 1),
        ("day of week", 0, 6, DAYS, 0),
    ];
    for (field, (name, min, max, names, first)) in fields.iter().zip(specs) {
        cron_field(field, name, min, max, names, first)?;
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(pattern)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// One cron field: `*`, `n`, `a-b`, `x/n` or a comma-separated list of those. `names` are
/// accepted for values (`first` is the value of the first name).
fn cron_field(
    field: &str,
    name: &str,
    min: u32,
    max: u32,
    names: &[&str],
    first: u32,
) -> Result<(), String> {
    let value = |text: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(first + u32::try_from(i).unwrap_or(0));
        }
        let n: u32 = text
            .parse()
            .map_err(|_| format!("the {name} `{text}` is not a number"))?;
        if n < min || n > max {
            return Err(format!("the {name} `{n}` is outside {min}-{max}"));
        }
        Ok(n)
    };
    for item in field.split(',') {
        if item.is_empty() {
            return Err(format!("the {name} field `{field}` has an empty list item"));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        if let Some(step) = step {
            let n: u32 = step
                .parse()
                .map_err(|_| format!("the {name} step `{step}` is not a number"))?;
            if n == 0 || n > max {
                return Err(format!("the {name} step `{n}` is outside 1-{max}"));
            }
        }
        if range == "*" {
            continue;
        }
        match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (value(a)?, value(b)?);
                if b < a {
                    return Err(format!("the {name} range `{range}` goes backwards"));
                }
            }
            None => {
                value(range)?;
            }
        }
    }
    Ok(())
}

fn check_inputs(workflow: &Workflow, out: &mut Vec<Diagnostic>) {
    if let Some(dispatch) = &workflow.on.workflow_dispatch {
        for input in &dispatch.inputs {
            check_input(input, "workflow_dispatch", out);
        }
    }
    if let Some(call) = &workflow.on.workflow_call {
        for input in &call.inputs {
            check_input(input, "workflow_call", out);
        }
    }
}

fn check_input(input: &Input, event: &str, out: &mut Vec<Diagnostic>) {
    let name = &input.name.value;
    let kind = input.kind();
    if let Some(default) = &input.default {
        let fits = match (&default.value, kind) {
            (Node::String(s), _) if s.contains("${{") => true,
            (Node::Bool(_), InputType::Boolean) => true,
            (Node::Number(_), InputType::Number) => true,
            (Node::String(_), InputType::String | InputType::Choice | InputType::Environment) => {
                true
            }
            (Node::String(s), InputType::Number) => s.trim().parse::<f64>().is_ok(),
            (Node::Number(_) | Node::Bool(_), InputType::String | InputType::Environment) => true,
            (Node::Null, _) => true,
            _ => false,
        };
        if !fits {
            out.push(
                Diagnostic::error(
                    "invalid-input-default",
                    format!(
                        "the default of the {event} input `{name}` is not a {}",
                        kind.as_str()
                    ),
                    default.span,
                )
                .with_label(default.span, format!("not a {}", kind.as_str()))
                .with_help(match kind {
                    InputType::Boolean => "write `true` or `false` without quotes".to_owned(),
                    InputType::Number => "write a number".to_owned(),
                    _ => "write a string".to_owned(),
                }),
            );
        }
        if kind == InputType::Choice
            && let Some(text) = default.value.scalar_to_string()
            && !input.options.is_empty()
            && !input.options.iter().any(|o| o.value == text)
        {
            let help = did_you_mean(&text, input.options.iter().map(|o| o.value.as_str()))
                .unwrap_or_else(|| {
                    format!(
                        "the options are: {}",
                        input
                            .options
                            .iter()
                            .map(|o| o.value.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
            out.push(
                Diagnostic::error(
                    "invalid-input-default",
                    format!("the default `{text}` of the choice input `{name}` is not one of its options"),
                    default.span,
                )
                .with_label(default.span, "not an option")
                .with_help(help),
            );
        }
    }
    if kind == InputType::Choice && input.options.is_empty() {
        let span = input
            .input_type
            .as_ref()
            .map_or(input.name.span, |t| t.span);
        out.push(
            Diagnostic::error(
                "missing-options",
                format!("the choice input `{name}` has no `options`"),
                span,
            )
            .with_label(span, "a choice without options")
            .with_help("add `options:` with the values to choose from"),
        );
    } else if kind != InputType::Choice && !input.options.is_empty() {
        let span = input.options.first().map_or(input.name.span, |o| o.span);
        out.push(
            Diagnostic::error(
                "unexpected-options",
                format!(
                    "the input `{name}` has `options` but its type is `{}`",
                    kind.as_str()
                ),
                span,
            )
            .with_help("set `type: choice`, or remove `options`"),
        );
    }
}

/// The `needs` entry spans of a job by target, for callers that point at one.
pub fn needs_span(job: &Job, target: &str) -> Option<Span> {
    job.needs
        .iter()
        .find(|n| n.value == target)
        .map(|n: &Spanned<String>| n.span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_github_rules() {
        assert!(id_problem("build").is_none());
        assert!(id_problem("_x-1").is_none());
        assert!(id_problem("my.job").is_some());
        assert!(id_problem("0job").is_some());
        assert!(id_problem("-job").is_some());
        assert!(id_problem("__a").is_some());
        assert!(id_problem("").is_some());
        assert!(id_problem(&"a".repeat(100)).is_some());
        assert!(id_problem(&"a".repeat(99)).is_none());
    }

    #[test]
    fn minute_intervals() {
        assert_eq!(minute_interval("*"), Some(1));
        assert_eq!(minute_interval("*/2"), Some(2));
        assert_eq!(minute_interval("*/15"), Some(15));
        assert_eq!(minute_interval("0,3"), Some(3));
        assert_eq!(minute_interval("0-4"), Some(1));
        assert_eq!(minute_interval("30"), None);
        assert_eq!(minute_interval("0,30"), Some(30));
    }

    #[test]
    fn cron_patterns() {
        assert!(cron_problem("0 */12 * * *").is_ok());
        assert!(cron_problem("30 5 * * 1-5").is_ok());
        assert!(cron_problem("0 0 * * MON").is_ok());
        assert!(cron_problem("* * *").is_err());
        assert!(cron_problem("61 * * * *").is_err());
        assert!(cron_problem("0 0 * * * *").is_err());
    }

    #[test]
    fn reusable_workflow_refs() {
        assert!(is_reusable_workflow_ref("o/r/.github/workflows/a.yml@v1"));
        assert!(is_reusable_workflow_ref("./.github/workflows/a.yaml"));
        assert!(!is_reusable_workflow_ref("actions/checkout@v4"));
        assert!(action_ref_problem("actions/checkout@v4").is_none());
        assert!(action_ref_problem("badrepo@invalid").is_some());
        assert!(action_ref_problem("$$docker://alpine:3.8").is_some());
    }
}
