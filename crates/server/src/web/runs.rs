//! Run pages: the list of recent runs (all repositories or one), with filters and pages, and
//! one run with its jobs.
//!
//! A run's jobs are shown in the order of its plan (needs order), rebuilt from the run's stored
//! context and workflow files; each job lists its matrix legs (the latest attempt of each,
//! with links to earlier ones) and the jobs it needs. Jobs that never ran (skipped, failed
//! before starting) are shown with the reason the run graph noted (`runs.graph`). When the
//! plan cannot be rebuilt, jobs appear in the order they were created.

use super::auth::Reader;
use super::display::{
    Badge, When, elapsed, query_string, reason_text, ref_name, repository_path, short_sha,
};
use super::{Layout, PageError};
use crate::app::{AppState, now_ms};
use crate::run_state::{self, GraphDoc, JobNote, Sources};
use crate::store::{Job, RepositoryId, Run, RunCursor, RunFilter, RunId, RunStatus, RunSummary};
use askama::Template;
use askama_web::WebTemplate;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use gantry_workflow::plan::{PlannedJob, PlannedJobKind, RunContext};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Runs per page unless `?limit=` says otherwise (at most [`MAX_LIMIT`]).
const PAGE_SIZE: u32 = 30;
const MAX_LIMIT: u32 = 200;

/// The filters of a run list, as the query string gives them.
#[derive(Debug, Default, Deserialize)]
pub struct RunsQuery {
    #[serde(default)]
    repo: String,
    #[serde(default)]
    branch: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    before: String,
    #[serde(default)]
    limit: String,
}

/// A run in a list.
pub struct RunRow {
    pub url: String,
    pub repository: String,
    pub repository_url: String,
    pub number: i64,
    pub workflow: String,
    pub title: String,
    pub ref_name: String,
    pub git_ref: String,
    pub sha: String,
    pub event: String,
    pub badge: Badge,
    pub duration: String,
    pub created: When,
}

impl RunRow {
    fn new(run: &RunSummary, now: i64) -> RunRow {
        RunRow {
            url: format!("/runs/{}", run.id),
            repository: run.repository_name.clone(),
            repository_url: repository_path(&run.repository_name),
            number: run.number,
            workflow: if run.workflow_name.is_empty() {
                run.workflow_file.clone()
            } else {
                run.workflow_name.clone()
            },
            title: run.title.clone(),
            ref_name: ref_name(&run.git_ref),
            git_ref: run.git_ref.clone(),
            sha: short_sha(&run.sha).to_owned(),
            event: run.event.clone(),
            badge: Badge::run(run.status, run.conclusion),
            duration: elapsed(run.started_ms, run.finished_ms, now),
            created: When::new(run.created_ms, now),
        }
    }
}

/// An entry of the repository filter.
pub struct RepositoryOption {
    pub name: String,
    pub selected: bool,
}

/// An entry of the status filter.
pub struct StatusOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "runs.html")]
struct RunsPage {
    layout: Layout,
    heading: String,
    /// Where the filter form goes.
    action: String,
    /// The repository filter is offered (the all-repositories list).
    repository_filter: bool,
    repositories: Vec<RepositoryOption>,
    branch: String,
    statuses: Vec<StatusOption>,
    runs: Vec<RunRow>,
    /// A sentence when nothing matched.
    empty: String,
    older_url: Option<String>,
    newest_url: Option<String>,
}

/// The store filter from the query, or why it is not one.
fn run_filter(query: &RunsQuery) -> Result<RunFilter, PageError> {
    let status = match query.status.as_str() {
        "" => None,
        "queued" => Some(RunStatus::Queued),
        "in_progress" => Some(RunStatus::InProgress),
        "completed" => Some(RunStatus::Completed),
        _ => {
            return Err(PageError::BadRequest(
                "status is one of queued, in_progress, completed".to_owned(),
            ));
        }
    };
    let before = match query.before.as_str() {
        "" => None,
        text => Some(text.parse::<RunCursor>().map_err(|_| {
            PageError::BadRequest("this page position (before=) is not valid".to_owned())
        })?),
    };
    let limit = match query.limit.as_str() {
        "" => PAGE_SIZE,
        text => text
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| PageError::BadRequest("limit is a positive number".to_owned()))?
            .min(MAX_LIMIT),
    };
    Ok(RunFilter {
        branch: (!query.branch.trim().is_empty()).then(|| query.branch.trim().to_owned()),
        status,
        before,
        limit,
        ..RunFilter::default()
    })
}

fn status_options(selected: &str) -> Vec<StatusOption> {
    [
        ("", "Any status"),
        ("queued", "Queued"),
        ("in_progress", "In progress"),
        ("completed", "Completed"),
    ]
    .into_iter()
    .map(|(value, label)| StatusOption {
        value,
        label,
        selected: value == selected,
    })
    .collect()
}

/// The run list of `repository` (or all), with links to the next page and back.
async fn runs_page(
    state: &AppState,
    access: &Reader,
    query: RunsQuery,
    repository: Option<(RepositoryId, String)>,
) -> Result<RunsPage, PageError> {
    let mut filter = run_filter(&query)?;
    let now = now_ms();
    let all_repositories = repository.is_none();
    let mut repositories = Vec::new();
    let mut unknown_repository = false;
    if all_repositories {
        let stored = state.db.list_repositories().await?;
        let wanted = query.repo.trim();
        if !wanted.is_empty() {
            match stored.iter().find(|r| r.name == wanted) {
                Some(r) => filter.repository_id = Some(r.id.clone()),
                None => unknown_repository = true,
            }
        }
        repositories = stored
            .into_iter()
            .map(|r| RepositoryOption {
                selected: r.name == wanted,
                name: r.name,
            })
            .collect();
    }
    let (action, heading) = match &repository {
        Some((id, name)) => {
            filter.repository_id = Some(id.clone());
            (repository_path(name), name.clone())
        }
        None => ("/".to_owned(), "Recent runs".to_owned()),
    };
    let page = if unknown_repository {
        crate::store::RunPage {
            runs: Vec::new(),
            next: None,
        }
    } else {
        state.db.list_runs(&filter).await?
    };
    let repo_param = if all_repositories {
        query.repo.trim()
    } else {
        ""
    };
    let limit_param = if query.limit.is_empty() {
        String::new()
    } else {
        filter.limit.to_string()
    };
    let base = [
        ("repo", repo_param),
        ("branch", query.branch.trim()),
        ("status", query.status.as_str()),
        ("limit", limit_param.as_str()),
    ];
    let older_url = page.next.as_ref().map(|cursor| {
        let cursor = cursor.to_string();
        let mut pairs = base.to_vec();
        pairs.push(("before", cursor.as_str()));
        format!("{action}{}", query_string(&pairs))
    });
    let newest_url = filter
        .before
        .is_some()
        .then(|| format!("{action}{}", query_string(&base)));
    let empty = if unknown_repository {
        format!("There is no repository named {}.", query.repo.trim())
    } else if filter.before.is_some() {
        "No older runs.".to_owned()
    } else {
        "No runs match.".to_owned()
    };
    Ok(RunsPage {
        layout: Layout::page(heading.clone(), "runs", access),
        heading,
        action,
        repository_filter: all_repositories,
        repositories,
        branch: query.branch.trim().to_owned(),
        statuses: status_options(&query.status),
        runs: page.runs.iter().map(|run| RunRow::new(run, now)).collect(),
        empty,
        older_url,
        newest_url,
    })
}

fn query_or_bad_request<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, PageError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| PageError::BadRequest(e.body_text()))
}

/// `GET /`: recent runs of every repository.
pub async fn list_runs(
    State(state): State<Arc<AppState>>,
    access: Reader,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let query = query_or_bad_request(query)?;
    Ok(runs_page(&state, &access, query, None)
        .await?
        .into_response())
}

/// `GET /repos/{owner}/{name}`: runs of one repository.
pub async fn list_repository_runs(
    State(state): State<Arc<AppState>>,
    access: Reader,
    Path(name): Path<String>,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let query = query_or_bad_request(query)?;
    let name = name.trim_matches('/');
    let Some(repository) = state.db.find_repository_by_name(name).await? else {
        return Err(PageError::NotFound(format!(
            "There is no repository named {name}."
        )));
    };
    Ok(runs_page(
        &state,
        &access,
        query,
        Some((repository.id, repository.name)),
    )
    .await?
    .into_response())
}

/// `GET /repositories/{id}`: the repository's page under its name.
pub async fn redirect_repository(
    State(state): State<Arc<AppState>>,
    _access: Reader,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let repository = state.db.get_repository(&RepositoryId::from(id)).await?;
    Ok(Redirect::to(&repository_path(&repository.name)).into_response())
}

/// The run's header.
pub struct RunHeader {
    pub repository: String,
    pub repository_url: String,
    pub number: i64,
    pub workflow_name: String,
    pub workflow_file: String,
    pub title: String,
    pub event: String,
    pub ref_name: String,
    pub git_ref: String,
    pub sha: String,
    pub sha_short: String,
    pub badge: Badge,
    pub duration: String,
    pub created: When,
    pub started: Option<When>,
    pub finished: Option<When>,
    pub trusted: bool,
    pub cancel_requested: bool,
    pub attempt: u32,
}

/// A link to an earlier attempt of a leg.
pub struct AttemptLink {
    pub url: String,
    pub attempt: u32,
    pub badge: Badge,
}

/// One matrix leg of a job (its latest attempt).
pub struct LegRow {
    pub url: String,
    pub name: String,
    pub badge: Badge,
    pub duration: String,
    pub agent: Option<(String, String)>,
    /// Why it ended as it did, or what it waits for.
    pub detail: String,
    pub attempt: u32,
    pub earlier: Vec<AttemptLink>,
}

/// A job of the run with its legs, or the reason it never ran.
pub struct JobGroup {
    pub anchor: String,
    pub name: String,
    /// The jobs it needs: (name, anchor).
    pub needs: Vec<(String, String)>,
    pub legs: Vec<LegRow>,
    /// The job's own badge when no leg ran.
    pub badge: Option<Badge>,
    /// Why no leg ran, or what the job is (a call of a reusable workflow).
    pub note: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "run.html")]
struct RunPage {
    layout: Layout,
    run: RunHeader,
    groups: Vec<JobGroup>,
    /// The plan could not be rebuilt: jobs are in creation order, needs unknown.
    plan_missing: bool,
}

/// The run's plan, when its stored context and workflow files still give one.
fn planned_jobs(run: &Run) -> Option<Vec<PlannedJob>> {
    let context: RunContext = serde_json::from_str(&run.context).ok()?;
    let sources: Sources = serde_json::from_str(&run.sources).ok()?;
    let workflows = run_state::parse_sources(&sources);
    let plan = run_state::find_plan(&workflows, &context, &run.workflow_file).ok()?;
    Some(plan.jobs)
}

/// Legs of one job key, from its rows: the latest attempt of each leg, with the earlier ones.
fn leg_rows(jobs: &[&Job], agents: &HashMap<String, String>, now: i64) -> Vec<LegRow> {
    let mut by_leg: Vec<(u32, Vec<&Job>)> = Vec::new();
    for job in jobs {
        match by_leg.iter_mut().find(|(leg, _)| *leg == job.leg) {
            Some((_, attempts)) => attempts.push(job),
            None => by_leg.push((job.leg, vec![job])),
        }
    }
    by_leg.sort_by_key(|(leg, _)| *leg);
    by_leg
        .into_iter()
        .filter_map(|(_, mut attempts)| {
            attempts.sort_by_key(|job| job.attempt);
            let latest = attempts.pop()?;
            Some(LegRow {
                url: format!("/jobs/{}", latest.id),
                name: latest.name.clone(),
                badge: Badge::job(latest.status, latest.conclusion),
                duration: elapsed(latest.started_ms, latest.finished_ms, now),
                agent: latest.agent_id.as_ref().map(|id| {
                    let name = agents
                        .get(id.as_str())
                        .cloned()
                        .unwrap_or_else(|| id.to_string());
                    (name, format!("/agents#{id}"))
                }),
                detail: job_detail(latest),
                attempt: latest.attempt,
                earlier: attempts
                    .iter()
                    .map(|job| AttemptLink {
                        url: format!("/jobs/{}", job.id),
                        attempt: job.attempt,
                        badge: Badge::job(job.status, job.conclusion),
                    })
                    .collect(),
            })
        })
        .collect()
}

/// A job's reason, or what it waits for.
pub fn job_detail(job: &Job) -> String {
    use crate::store::JobStatus;
    match job.status {
        JobStatus::Completed => match &job.reason {
            Some(gantry_protocol::FailureReason::StepFailed) | None => String::new(),
            Some(reason) => reason_text(reason),
        },
        JobStatus::Queued if job.labels.is_empty() => "waiting for an agent".to_owned(),
        JobStatus::Queued => format!("waiting for an agent with {}", job.labels.join(", ")),
        JobStatus::Waiting => "held back (max-parallel or a concurrency group)".to_owned(),
        JobStatus::Running if job.cancel_requested => "cancelling".to_owned(),
        JobStatus::Running => String::new(),
    }
}

/// The job groups of a run.
fn job_groups(
    planned: Option<&[PlannedJob]>,
    jobs: &[Job],
    notes: &[JobNote],
    agents: &HashMap<String, String>,
    now: i64,
) -> Vec<JobGroup> {
    let anchor = |key: &str| format!("job-{}", key.replace(|c: char| !c.is_alphanumeric(), "-"));
    let note_of = |key: &str| notes.iter().rev().find(|note| note.key == key);
    let rows_of = |key: &str| -> Vec<&Job> { jobs.iter().filter(|job| job.key == key).collect() };
    let mut groups = Vec::new();
    let mut shown: Vec<&str> = Vec::new();
    if let Some(planned) = planned {
        let names: HashMap<&str, &str> = planned
            .iter()
            .map(|job| (job.key.as_str(), job.name.as_str()))
            .collect();
        for job in planned {
            let key = job.key.as_str();
            shown.push(key);
            let rows = rows_of(key);
            let legs = leg_rows(&rows, agents, now);
            let (badge, note) = if !legs.is_empty() {
                (None, String::new())
            } else if let Some(note) = note_of(key) {
                (
                    Some(Badge::concluded(note.conclusion)),
                    note.reason.clone().unwrap_or_default(),
                )
            } else if let Some(reason) = &job.skipped_reason {
                (
                    Some(Badge::concluded(gantry_protocol::Conclusion::Skipped)),
                    reason.clone(),
                )
            } else if let PlannedJobKind::Call { uses } = &job.kind {
                (None, format!("calls {uses}; its jobs follow"))
            } else if job.needs.is_empty() {
                (Some(Badge::pending()), "not started yet".to_owned())
            } else {
                (
                    Some(Badge::pending()),
                    "waits for the jobs it needs".to_owned(),
                )
            };
            groups.push(JobGroup {
                anchor: anchor(key),
                name: job.name.clone(),
                needs: job
                    .needs
                    .iter()
                    .map(|need| {
                        let name = names.get(need.as_str()).copied().unwrap_or(need.as_str());
                        (name.to_owned(), anchor(need.as_str()))
                    })
                    .collect(),
                legs,
                badge,
                note,
            });
        }
    }
    // Jobs the plan does not name (or every job, without a plan), in creation order.
    let mut extra_keys: Vec<&str> = Vec::new();
    for job in jobs {
        if !shown.contains(&job.key.as_str()) && !extra_keys.contains(&job.key.as_str()) {
            extra_keys.push(&job.key);
        }
    }
    for key in extra_keys {
        let rows = rows_of(key);
        let name = rows.first().map(|job| job.name.clone()).unwrap_or_default();
        groups.push(JobGroup {
            anchor: anchor(key),
            name: if rows.len() > 1 { key.to_owned() } else { name },
            needs: Vec::new(),
            legs: leg_rows(&rows, agents, now),
            badge: None,
            note: String::new(),
        });
    }
    // Jobs that never had a row and the plan does not name (noted by the graph).
    if planned.is_none() {
        for note in notes {
            if jobs.iter().any(|job| job.key == note.key)
                || groups.iter().any(|g| g.anchor == anchor(&note.key))
            {
                continue;
            }
            groups.push(JobGroup {
                anchor: anchor(&note.key),
                name: note.name.clone(),
                needs: Vec::new(),
                legs: Vec::new(),
                badge: Some(Badge::concluded(note.conclusion)),
                note: note.reason.clone().unwrap_or_default(),
            });
        }
    }
    groups
}

/// `GET /runs/{id}`.
pub async fn show_run(
    State(state): State<Arc<AppState>>,
    access: Reader,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let run = state.db.get_run(&RunId::from(id)).await?;
    let repository = state.db.get_repository(&run.repository_id).await?;
    let jobs = state.db.list_jobs(&run.id).await?;
    let agents: HashMap<String, String> = state
        .db
        .list_agents()
        .await?
        .into_iter()
        .map(|agent| (agent.id.into_string(), agent.name))
        .collect();
    let doc: GraphDoc = serde_json::from_str(&run.graph).unwrap_or_default();
    let planned = planned_jobs(&run);
    let now = now_ms();
    let groups = job_groups(planned.as_deref(), &jobs, &doc.notes, &agents, now);
    let workflow_name = if run.workflow_name.is_empty() {
        run.workflow_file.clone()
    } else {
        run.workflow_name.clone()
    };
    let header = RunHeader {
        repository_url: repository_path(&repository.name),
        repository: repository.name,
        number: run.number,
        workflow_name: workflow_name.clone(),
        workflow_file: run.workflow_file.clone(),
        title: run.title.clone(),
        event: run.event.clone(),
        ref_name: ref_name(&run.git_ref),
        git_ref: run.git_ref.clone(),
        sha_short: short_sha(&run.sha).to_owned(),
        sha: run.sha.clone(),
        badge: Badge::run(run.status, run.conclusion),
        duration: elapsed(run.started_ms, run.finished_ms, now),
        created: When::new(run.created_ms, now),
        started: When::maybe(run.started_ms, now),
        finished: When::maybe(run.finished_ms, now),
        trusted: run.trusted,
        cancel_requested: run.cancel_requested,
        attempt: run.attempt,
    };
    let title = format!("{workflow_name} #{} · {}", run.number, header.repository);
    Ok(RunPage {
        layout: Layout::page(title, "runs", &access),
        run: header,
        groups,
        plan_missing: planned.is_none(),
    }
    .into_response())
}
