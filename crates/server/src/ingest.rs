//! The ingester: turns stored webhook deliveries (and manual dispatches, and cron slots) into
//! runs. For each delivery, oldest first: fetch the commit into the mirror, read the workflow
//! files at that commit, compute the changed paths, plan, and store every run with its first
//! jobs and commit statuses in one transaction that also marks the delivery processed. A
//! delivery stored but not processed when the server stopped is processed after the restart.

use crate::app::{AppState, now_ms};
use crate::forge::status::CommitState;
use crate::forge::{EventKind, ForgeEvent, parse_webhook_value};
use crate::run_state::{self, GraphDoc, JobNote, Sources};
use crate::store::{
    CancelTarget, Delivery, DeliveryOutcome, JobStatus, NewRun, NewRunWithJobs, NewStatus,
    Repository, RunStatus, StoreError,
};
use gantry_protocol::Conclusion;
use gantry_workflow::parse_workflow;
use gantry_workflow::plan::{RunContext, RunGraph, plan_run};
use gantry_workflow::trigger::Event;
use std::sync::Arc;
use std::time::Duration;

/// Attempts before a delivery that keeps failing is given up (its error stays visible).
const MAX_ATTEMPTS: i64 = 5;

/// What starts runs, whatever its origin (webhook, dispatch, schedule).
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub event: Event,
    /// `github.event`.
    pub payload: serde_json::Value,
    pub sha: String,
    pub actor: String,
    /// False for fork pull requests: no secrets.
    pub trusted: bool,
    /// A title for run lists (commit message, pull request title).
    pub title: String,
    /// `workflow_dispatch` inputs.
    pub inputs: Vec<(String, String)>,
    /// Only this workflow file (dispatch, schedule).
    pub only_workflow: Option<String>,
    /// A fork's clone URL holding `sha`.
    pub fork_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Worth trying again later (git fetch failed, database unavailable).
    #[error("{0}")]
    Transient(String),
    /// Trying again would give the same answer.
    #[error("{0}")]
    Permanent(String),
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            IngestError::Transient(e.to_string())
        } else {
            IngestError::Permanent(e.to_string())
        }
    }
}

/// Runs forever: processes deliveries when woken, and every few seconds (backoff retries).
pub async fn run_ingester(state: Arc<AppState>) {
    loop {
        let woken = state.wake.deliveries.notified();
        match state.db.list_unprocessed_deliveries(now_ms(), 20).await {
            Ok(deliveries) => {
                for delivery in deliveries {
                    process_delivery(&state, &delivery).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list deliveries"),
        }
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}

/// Processes one delivery; errors are recorded on it, never lost.
pub async fn process_delivery(state: &AppState, delivery: &Delivery) {
    let outcome = plan_delivery(state, delivery).await;
    let now = now_ms();
    match outcome {
        Ok(runs) => match state
            .db
            .insert_runs_for_delivery(&delivery.id, &runs, now)
            .await
        {
            Ok(stored) => {
                after_insert(state, &stored).await;
                tracing::info!(delivery = %delivery.id, runs = stored.len(), "delivery processed");
            }
            Err(e) => record_failure(state, delivery, &IngestError::from(e)).await,
        },
        Err(e) => record_failure(state, delivery, &e).await,
    }
}

async fn record_failure(state: &AppState, delivery: &Delivery, error: &IngestError) {
    let now = now_ms();
    let message = error.to_string();
    tracing::warn!(delivery = %delivery.id, error = %message, "delivery failed");
    let give_up = match error {
        IngestError::Permanent(_) => true,
        IngestError::Transient(_) => delivery.attempts + 1 >= MAX_ATTEMPTS,
    };
    let result = if give_up {
        state
            .db
            .mark_delivery_processed(&delivery.id, &DeliveryOutcome::Failed(message), now)
            .await
    } else {
        let backoff = 2_000i64 << delivery.attempts.clamp(0, 6);
        state
            .db
            .record_delivery_attempt_failed(&delivery.id, &message, now + backoff)
            .await
            .map(|_| ())
    };
    if let Err(e) = result {
        tracing::error!(delivery = %delivery.id, error = %e, "could not record the failure");
    }
}

/// What to do with a delivery: the runs to create (possibly none).
async fn plan_delivery(
    state: &AppState,
    delivery: &Delivery,
) -> Result<Vec<NewRunWithJobs>, IngestError> {
    let repo = state.db.get_repository(&delivery.repository_id).await?;
    let raw: serde_json::Value = serde_json::from_slice(&delivery.payload)
        .map_err(|e| IngestError::Permanent(format!("the payload is not JSON: {e}")))?;
    let event = parse_webhook_value(delivery.forge, &delivery.event, &raw)
        .map_err(|e| IngestError::Permanent(e.to_string()))?;
    let Some(request) = request_for(&event, &raw) else {
        return Ok(Vec::new());
    };
    plan_request(state, &repo, request, Some(&event)).await
}

/// The run request of a webhook event; `None` for events that start nothing.
fn request_for(event: &ForgeEvent, raw: &serde_json::Value) -> Option<RunRequest> {
    let sha = event.head_sha()?.to_owned();
    let mut trigger = event.to_trigger_event();
    let (trusted, title, fork_url) = match &event.kind {
        EventKind::PullRequest(pr) => {
            trigger.base_ref = Some(pr.base.git_ref.clone());
            (
                !pr.from_fork,
                pr.title.clone(),
                if pr.from_fork {
                    pr.head.clone_url.clone()
                } else {
                    None
                },
            )
        }
        EventKind::Push(push) | EventKind::TagPush(push) => {
            let message = raw
                .pointer("/head_commit/message")
                .and_then(|m| m.as_str())
                .or_else(|| raw.pointer("/commits/0/message").and_then(|m| m.as_str()))
                .unwrap_or(&push.git_ref);
            (
                true,
                message.lines().next().unwrap_or_default().to_owned(),
                None,
            )
        }
        _ => return None,
    };
    Some(RunRequest {
        event: trigger,
        payload: event.github_payload(raw),
        sha,
        actor: event.sender.clone().unwrap_or_else(|| "unknown".to_owned()),
        trusted,
        title,
        inputs: Vec::new(),
        only_workflow: None,
        fork_url,
    })
}

/// Fetches, reads the workflows at the commit, computes changed paths and plans: the runs to
/// insert (each with its first jobs and statuses).
pub async fn plan_request(
    state: &AppState,
    repo: &Repository,
    mut request: RunRequest,
    event: Option<&ForgeEvent>,
) -> Result<Vec<NewRunWithJobs>, IngestError> {
    // One fetch of the repository's branches and tags (which makes sure the commit is there,
    // unless it is a fork's); a fork's commit comes from the fork.
    let mirrors = &state.mirrors;
    let own_sha = request.fork_url.is_none().then_some(request.sha.as_str());
    mirrors
        .fetch(repo.id.as_str(), &repo.clone_url, own_sha)
        .await
        .map_err(|e| IngestError::Transient(format!("fetching {}: {e}", repo.clone_url)))?;
    if let Some(fork) = &request.fork_url {
        mirrors
            .fetch_from(repo.id.as_str(), fork, &request.sha)
            .await
            .map_err(|e| IngestError::Transient(format!("fetching the fork {fork}: {e}")))?;
    }
    let sources: Sources = mirrors
        .read_workflows(repo.id.as_str(), &request.sha)
        .await
        .map_err(|e| IngestError::Transient(e.to_string()))?;
    let parsed: Vec<_> = sources
        .iter()
        .map(|(file, text)| parse_workflow(file, text))
        .collect();
    // Changed paths matter only to workflows that filter on them.
    let filters_paths = parsed
        .iter()
        .any(|p| !p.has_errors() && p.workflow.as_ref().is_some_and(|w| w.on.filters_paths()));
    if request.event.changed_paths.is_none() && filters_paths {
        request.event.changed_paths = changed_paths(state, repo, &request, event).await;
    }

    let mut context = RunContext::new(request.event.clone());
    context.payload = request.payload.clone();
    context.sha = request.sha.clone();
    context.repository = repo.name.clone();
    context.actor = request.actor.clone();
    context.server_url = server_url(&repo.clone_url);
    context.inputs = request.inputs.clone();
    if request.trusted {
        context.secret_names = secret_names(state, repo).await?;
    }

    let mut workflows = Vec::new();
    let mut runs = Vec::new();
    for ((file, text), parsed) in sources.iter().zip(parsed) {
        if parsed.has_errors() {
            // A broken file is reported like GitHub does: a failed run naming the problems,
            // when the event would plausibly have started it.
            let wanted = request.only_workflow.as_deref().is_none_or(|w| w == file);
            if wanted && mentions_event(text, &request.event.name) {
                let problems: Vec<String> = parsed
                    .errors()
                    .map(|d| {
                        let at = d
                            .line_column()
                            .map(|(l, c)| format!("{l}:{c}: "))
                            .unwrap_or_default();
                        format!("{at}{}", d.message)
                    })
                    .collect();
                runs.push(invalid_run(
                    state, repo, &request, &context, &sources, file, &problems,
                ));
            }
            continue;
        }
        if let Some(workflow) = parsed.workflow {
            workflows.push(workflow);
        }
    }

    let plan = plan_run(&workflows, &context);
    for workflow_plan in &plan.workflows {
        if request
            .only_workflow
            .as_deref()
            .is_some_and(|only| only != workflow_plan.file)
        {
            continue;
        }
        let Some(workflow) = workflows.iter().find(|w| w.file == workflow_plan.file) else {
            continue;
        };
        let context_json =
            serde_json::to_string(&context).map_err(|e| IngestError::Permanent(e.to_string()))?;
        let sources_json =
            serde_json::to_string(&sources).map_err(|e| IngestError::Permanent(e.to_string()))?;
        let status_context = format!("gantry/{}", workflow_plan.name);
        let base_run = NewRun {
            repository_id: repo.id.clone(),
            workflow_file: workflow_plan.file.clone(),
            workflow_name: workflow_plan.name.clone(),
            title: if workflow_plan.run_name != workflow_plan.name {
                workflow_plan.run_name.clone()
            } else {
                request.title.clone()
            },
            event: request.event.name.clone(),
            git_ref: request.event.git_ref.clone().unwrap_or_default(),
            sha: request.sha.clone(),
            context: context_json,
            sources: sources_json,
            graph: String::new(),
            status: RunStatus::Queued,
            conclusion: None,
            trusted: request.trusted,
            concurrency_group: None,
            cancel_in_progress: false,
            attempt: 1,
            delivery_id: None,
        };
        if !workflow_plan.triggered {
            // Path filters: report success so required checks never hang.
            let has_trigger = workflow.on.trigger(&request.event.name).is_some();
            if has_trigger && workflow_plan.reason.contains("path") {
                let doc = GraphDoc {
                    journal: Vec::new(),
                    notes: vec![JobNote {
                        key: String::new(),
                        name: workflow_plan.name.clone(),
                        conclusion: Conclusion::Skipped,
                        reason: Some(workflow_plan.reason.clone()),
                    }],
                };
                runs.push(NewRunWithJobs {
                    run: NewRun {
                        graph: serde_json::to_string(&doc).unwrap_or_default(),
                        status: RunStatus::Completed,
                        conclusion: Some(Conclusion::Skipped),
                        ..base_run
                    },
                    jobs: Vec::new(),
                    statuses: vec![NewStatus {
                        state: CommitState::Success,
                        context: status_context,
                        description: Some(
                            "skipped: no changed path matches the workflow's path filters"
                                .to_owned(),
                        ),
                        target_url: None,
                    }],
                });
            }
            continue;
        }
        if !workflow_plan.errors.is_empty() {
            runs.push(invalid_run(
                state,
                repo,
                &request,
                &context,
                &sources,
                &workflow_plan.file,
                &workflow_plan.errors,
            ));
            continue;
        }
        let mut graph = RunGraph::new(workflow_plan, &workflows)
            .map_err(|e| IngestError::Permanent(e.to_string()))?;
        let effects = run_state::effects(graph.next_actions(), &state.config, &workflows);
        let concurrency = run_state::workflow_concurrency(workflow_plan, workflow);
        let mut jobs = effects.new_jobs;
        if let Some((group, false)) = &concurrency {
            // Another run of the group is active: this one waits its turn.
            let busy = !state.db.list_active_runs_in_group(group).await?.is_empty();
            if busy {
                for job in &mut jobs {
                    job.status = JobStatus::Waiting;
                }
            }
        }
        let finished = graph.is_finished();
        let conclusion = graph.conclusion();
        let doc = GraphDoc {
            journal: Vec::new(),
            notes: effects.notes,
        };
        let mut statuses = vec![NewStatus {
            state: CommitState::Pending,
            context: status_context.clone(),
            description: Some("queued".to_owned()),
            target_url: None,
        }];
        if finished {
            statuses.push(final_status(&status_context, conclusion));
        }
        runs.push(NewRunWithJobs {
            run: NewRun {
                graph: serde_json::to_string(&doc).unwrap_or_default(),
                status: if finished {
                    RunStatus::Completed
                } else {
                    RunStatus::Queued
                },
                conclusion: if finished { conclusion } else { None },
                concurrency_group: concurrency.as_ref().map(|(g, _)| g.clone()),
                cancel_in_progress: concurrency.as_ref().is_some_and(|(_, c)| *c),
                ..base_run
            },
            jobs,
            statuses,
        });
    }
    Ok(runs)
}

/// The commit status a finished run reports.
pub fn final_status(context: &str, conclusion: Option<Conclusion>) -> NewStatus {
    let (state, description) = match conclusion {
        Some(Conclusion::Success) => (CommitState::Success, "succeeded"),
        Some(Conclusion::Skipped) => (CommitState::Success, "skipped"),
        Some(Conclusion::Cancelled) => (CommitState::Canceled, "cancelled"),
        Some(Conclusion::Failure) => (CommitState::Failure, "failed"),
        None => (CommitState::Error, "ended without a result"),
    };
    NewStatus {
        state,
        context: context.to_owned(),
        description: Some(description.to_owned()),
        target_url: None,
    }
}

/// A completed, failed run for a workflow that cannot run (invalid file, bad inputs).
fn invalid_run(
    _state: &AppState,
    repo: &Repository,
    request: &RunRequest,
    context: &RunContext,
    sources: &Sources,
    file: &str,
    problems: &[String],
) -> NewRunWithJobs {
    let doc = GraphDoc {
        journal: Vec::new(),
        notes: vec![JobNote {
            key: String::new(),
            name: file.to_owned(),
            conclusion: Conclusion::Failure,
            reason: Some(format!("the workflow cannot run: {}", problems.join("; "))),
        }],
    };
    NewRunWithJobs {
        run: NewRun {
            repository_id: repo.id.clone(),
            workflow_file: file.to_owned(),
            workflow_name: file.to_owned(),
            title: request.title.clone(),
            event: request.event.name.clone(),
            git_ref: request.event.git_ref.clone().unwrap_or_default(),
            sha: request.sha.clone(),
            context: serde_json::to_string(context).unwrap_or_default(),
            sources: serde_json::to_string(sources).unwrap_or_default(),
            graph: serde_json::to_string(&doc).unwrap_or_default(),
            status: RunStatus::Completed,
            conclusion: Some(Conclusion::Failure),
            trusted: request.trusted,
            concurrency_group: None,
            cancel_in_progress: false,
            attempt: 1,
            delivery_id: None,
        },
        jobs: Vec::new(),
        statuses: vec![NewStatus {
            state: CommitState::Error,
            context: format!("gantry/{file}"),
            description: Some("the workflow file is invalid".to_owned()),
            target_url: None,
        }],
    }
}

/// Whether a (broken) workflow text names the event, so an error run is worth reporting.
fn mentions_event(text: &str, event: &str) -> bool {
    text.contains(event)
}

/// Paths changed by the event: a push compares `before` with the pushed commit (everything,
/// for a new branch); a pull request compares the merge base with its head.
async fn changed_paths(
    state: &AppState,
    repo: &Repository,
    request: &RunRequest,
    event: Option<&ForgeEvent>,
) -> Option<Vec<String>> {
    let id = repo.id.as_str();
    match event.map(|e| &e.kind) {
        Some(EventKind::Push(push)) | Some(EventKind::TagPush(push)) => {
            let new_ref = push.before.chars().all(|c| c == '0');
            if !new_ref && state.mirrors.has_commit(id, &push.before).await {
                state
                    .mirrors
                    .changed_paths(id, &push.before, &request.sha)
                    .await
                    .ok()
            } else {
                state.mirrors.all_paths(id, &request.sha).await.ok()
            }
        }
        Some(EventKind::PullRequest(pr)) => {
            let base_sha = match &pr.base.sha {
                Some(sha) => Some(sha.clone()),
                None => state
                    .mirrors
                    .resolve(id, &format!("refs/heads/{}", pr.base.git_ref))
                    .await
                    .ok(),
            }?;
            let merge_base = state
                .mirrors
                .merge_base(id, &base_sha, &request.sha)
                .await?;
            state
                .mirrors
                .changed_paths(id, &merge_base, &request.sha)
                .await
                .ok()
        }
        _ => None,
    }
}

/// The names of the secrets a trusted run of `repo` can read (repository over global).
async fn secret_names(state: &AppState, repo: &Repository) -> Result<Vec<String>, IngestError> {
    let mut names: Vec<String> = state
        .db
        .list_secrets(None)
        .await?
        .into_iter()
        .map(|s| s.name)
        .collect();
    for secret in state.db.list_secrets(Some(&repo.id)).await? {
        if !names.contains(&secret.name) {
            names.push(secret.name);
        }
    }
    Ok(names)
}

/// `https://host` of a clone URL, for `github.server_url`.
fn server_url(clone_url: &str) -> String {
    if let Some(rest) = clone_url
        .strip_prefix("https://")
        .or_else(|| clone_url.strip_prefix("http://"))
    {
        let scheme = if clone_url.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        let host = rest.split('/').next().unwrap_or(rest);
        return format!("{scheme}://{host}");
    }
    "https://github.com".to_owned()
}

/// After runs are stored: cancel older runs of a cancel-in-progress group, wake the
/// scheduler and the agents waiting for work.
pub async fn after_insert(state: &AppState, runs: &[crate::store::Run]) {
    for run in runs {
        if let (Some(group), true) = (&run.concurrency_group, run.cancel_in_progress) {
            match state.db.list_active_runs_in_group(group).await {
                Ok(active) => {
                    for other in active
                        .iter()
                        .filter(|r| r.id != run.id && r.created_ms <= run.created_ms)
                    {
                        if let Err(e) = state
                            .db
                            .request_cancel(&CancelTarget::Run(other.id.clone()), now_ms())
                            .await
                        {
                            tracing::warn!(run = %other.id, error = %e, "could not cancel an older run of the group");
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not list the concurrency group"),
            }
        }
    }
    state.wake.scheduler.notify_one();
    state.wake.jobs.notify_waiters();
    state.wake.statuses.notify_one();
}
