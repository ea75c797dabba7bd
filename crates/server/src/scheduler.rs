//! The scheduler: moves runs forward. Each round it expires lost leases (retrying the job on
//! another agent once, by default), cancels jobs past their timeout, feeds finished jobs and
//! cancel requests to their run graphs, stores what the graphs decide (next jobs, cancels,
//! results, commit statuses) in one transaction per run, and lets waiting runs of a
//! concurrency group go when the group is free.

use crate::app::{AppState, now_ms};
use crate::ingest::final_status;
use crate::run_state::{self, JobNote};
use crate::store::{
    CancelTarget, Job, JobProgress, JobStatus, Run, RunGraphUpdate, RunId, RunStatus, StoreError,
};
use gantry_protocol::FailureReason;
use gantry_workflow::plan::{GraphInput, JobKey};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// How long a woken scheduler lets more wake-ups gather before its round: under load, jobs
/// finish and are claimed hundreds of times a second, and one round takes them all in.
const GATHER: Duration = Duration::from_millis(2);

/// Runs forever: a round when woken, and every second.
pub async fn run_scheduler(state: Arc<AppState>) {
    let mut timers_due = tokio::time::Instant::now();
    loop {
        let woken = state.wake.scheduler.notified();
        // Finished jobs wake the scheduler up to hundreds of times a second; the clock's
        // work (expired leases, queue timeouts, job timeouts) is done at most every 100 ms.
        let now = tokio::time::Instant::now();
        let result = if now >= timers_due {
            timers_due = now + TIMERS_EVERY;
            round(&state).await
        } else {
            advance_runs(&state).await
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "scheduler round failed; retrying");
        }
        tokio::select! {
            _ = woken => tokio::time::sleep(GATHER).await,
            _ = tokio::time::sleep(Duration::from_millis(1000)) => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}

/// Whether leases may be expired at `now`. Agents cannot renew a lease while the server is
/// down, so after a start (a restart after a crash or an upgrade) every agent gets one whole
/// lease to come back and renew before its jobs count as lost; those whose agents died too
/// expire when that grace ends.
fn leases_can_expire(state: &AppState, now: i64) -> bool {
    let lease_ms = i64::try_from(state.config.lease.as_millis()).unwrap_or(i64::MAX);
    now >= state.started_ms.saturating_add(lease_ms)
}

/// How often the scheduler looks at the clock's work when job results keep waking it.
const TIMERS_EVERY: Duration = Duration::from_millis(100);

/// One round of the scheduler: expired leases, queue and job timeouts, then
/// [`advance_runs`].
pub async fn round(state: &AppState) -> Result<(), StoreError> {
    let now = now_ms();
    let expired = if leases_can_expire(state, now) {
        state.db.expire_leases(now).await?
    } else {
        Vec::new()
    };
    for expired in expired {
        if expired.cancelled {
            tracing::warn!(job = %expired.job_id, agent = ?expired.agent_id,
                "agent lost while cancelling: the job is cancelled");
        } else {
            tracing::warn!(job = %expired.job_id, agent = ?expired.agent_id, "agent lost: lease expired");
        }
        if expired.retryable(state.config.lost_job_retries) {
            state.db.insert_retry_attempt(&expired.job_id, now).await?;
            state.wake.jobs.notify_waiters();
        }
    }
    let queue_ms = i64::try_from(state.config.queue_timeout.as_millis()).unwrap_or(i64::MAX);
    let queue_timeout = state.config.queue_timeout;
    for job in state
        .db
        .expire_queued_jobs(now.saturating_sub(queue_ms), now, |job| {
            queue_timeout_reason(job, queue_timeout)
        })
        .await?
    {
        tracing::warn!(job = %job.id, labels = ?job.labels, "no agent took the job: queue timeout");
        crate::web::notify_log(&job.id);
    }
    for job in state.db.list_timed_out_jobs(now).await? {
        tracing::warn!(job = %job.id, "job past its timeout: cancelling");
        state
            .db
            .request_cancel(&CancelTarget::Job(job.id.clone()), now)
            .await?;
        state.wake.cancels.notify_waiters();
    }
    advance_runs(state).await
}

/// The part of a round that follows jobs' results: feeds them to their runs' graphs, and
/// releases concurrency groups.
pub async fn advance_runs(state: &AppState) -> Result<(), StoreError> {
    let mut runs: BTreeSet<RunId> = state
        .db
        .list_unapplied_jobs(1000)
        .await?
        .into_iter()
        .map(|j| j.run_id)
        .collect();
    let active = state.db.list_active_runs().await?;
    for run in &active {
        if run.cancel_requested {
            runs.insert(run.id.clone());
        }
    }
    for run_id in runs {
        if let Err(e) = advance_run(state, &run_id).await {
            tracing::warn!(run = %run_id, error = %e, "could not advance the run");
        }
    }
    release_groups(state).await?;
    Ok(())
}

/// Feeds a run's graph what happened since its last step and stores the outcome.
pub async fn advance_run(state: &AppState, run_id: &RunId) -> Result<(), StoreError> {
    for _ in 0..5 {
        // The run's head and its unapplied results are enough while its graph is cached; the
        // whole run (its documents) and all its jobs are read only when they are needed.
        let run = state.db.get_run_head(run_id).await?;
        let mut unapplied = state.db.list_unapplied_progress(run_id).await?;
        unapplied
            .sort_by(|a, b| (a.finished_ms, a.id.as_str()).cmp(&(b.finished_ms, b.id.as_str())));
        let loaded = match state.graphs.take(run_id, run.graph_version) {
            Some(loaded) => loaded,
            None => {
                let full = state.db.get_run(run_id).await?;
                match run_state::load(&full) {
                    Ok(loaded) => loaded,
                    Err(message) => {
                        tracing::error!(run = %run.id, %message, "cannot rebuild the run graph");
                        let jobs = state.db.list_job_progress(run_id).await?;
                        return fail_broken_run(state, &full, &jobs, message).await;
                    }
                }
            }
        };
        let already_cancelled = loaded.doc.journal.contains(&GraphInput::CancelRun);
        let nothing_to_do = unapplied.is_empty()
            && (run.status == RunStatus::Completed || !run.cancel_requested || already_cancelled);
        if nothing_to_do {
            if run.status != RunStatus::Completed {
                state.graphs.put(run_id, run.graph_version, loaded);
            }
            return Ok(());
        }
        let run_state::LoadedRun {
            mut graph,
            mut doc,
            workflows,
            context,
        } = loaded;

        let mut actions = Vec::new();
        if run.cancel_requested && !already_cancelled {
            graph.apply(&GraphInput::CancelRun);
            doc.journal.push(GraphInput::CancelRun);
            actions.extend(graph.next_actions());
        }
        for job in &unapplied {
            let input = GraphInput::Finish {
                key: JobKey::new(job.key.clone()),
                leg: job.leg as usize,
                conclusion: job
                    .conclusion
                    .unwrap_or(gantry_protocol::Conclusion::Failure),
                outputs: job.outputs.clone().unwrap_or_default(),
            };
            graph.apply(&input);
            doc.journal.push(input);
            actions.extend(graph.next_actions());
        }
        let effects = run_state::effects(actions, &state.config, &workflows);
        doc.notes.extend(effects.notes);
        let jobs = if effects.cancel.is_empty() {
            Vec::new()
        } else {
            state.db.list_job_progress(run_id).await?
        };
        let cancel_jobs = effects
            .cancel
            .iter()
            .filter_map(|(key, leg)| {
                jobs.iter()
                    .filter(|j| &j.key == key && j.leg == *leg && j.status != JobStatus::Completed)
                    .max_by_key(|j| j.attempt)
                    .map(|j| j.id.clone())
            })
            .collect();
        let finished = graph.is_finished();
        let conclusion = if finished { graph.conclusion() } else { None };
        // A claim marks its run in progress in the same transaction as the job's start.
        let started =
            run.status == RunStatus::InProgress || unapplied.iter().any(|j| j.started_ms.is_some());
        let status = if finished {
            RunStatus::Completed
        } else if started {
            RunStatus::InProgress
        } else {
            run.status
        };
        let mut statuses = Vec::new();
        if finished {
            statuses.push(final_status(
                &format!("gantry/{}", run.workflow_name),
                conclusion,
            ));
        }
        let update = RunGraphUpdate {
            expected_version: run.graph_version,
            graph: serde_json::to_string(&doc).unwrap_or_default(),
            status,
            conclusion,
            new_jobs: effects.new_jobs,
            queue_jobs: Vec::new(),
            cancel_jobs,
            applied_jobs: unapplied.iter().map(|j| j.id.clone()).collect(),
            statuses,
        };
        match state.db.update_run_graph(run_id, &update, now_ms()).await {
            Ok(updated) => {
                if !finished {
                    let loaded = run_state::LoadedRun {
                        graph,
                        doc,
                        workflows,
                        context,
                    };
                    state.graphs.put(run_id, run.graph_version + 1, loaded);
                }
                if !updated.new_jobs.is_empty() {
                    state.wake.jobs.notify_waiters();
                }
                if !updated.cancelled.signalled.is_empty() {
                    state.wake.cancels.notify_waiters();
                }
                if !updated.cancelled.completed.is_empty() {
                    // Jobs cancelled before they ran are results for the graph too.
                    state.wake.scheduler.notify_one();
                }
                state.wake.statuses.notify_one();
                return Ok(());
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict(format!(
        "run {run_id} kept changing while the scheduler advanced it"
    )))
}

/// A run whose graph cannot be rebuilt (a bug or a corrupt row) ends as failed, loudly,
/// instead of staying in progress forever.
async fn fail_broken_run(
    state: &AppState,
    run: &Run,
    jobs: &[JobProgress],
    message: String,
) -> Result<(), StoreError> {
    let doc = run_state::GraphDoc {
        journal: Vec::new(),
        notes: vec![JobNote {
            key: String::new(),
            name: run.workflow_name.clone(),
            conclusion: gantry_protocol::Conclusion::Failure,
            reason: Some(format!("internal error: {message}")),
        }],
    };
    let update = RunGraphUpdate {
        expected_version: run.graph_version,
        graph: serde_json::to_string(&doc).unwrap_or_default(),
        status: RunStatus::Completed,
        conclusion: Some(gantry_protocol::Conclusion::Failure),
        new_jobs: Vec::new(),
        queue_jobs: Vec::new(),
        cancel_jobs: jobs
            .iter()
            .filter(|j| j.status != JobStatus::Completed)
            .map(|j| j.id.clone())
            .collect(),
        applied_jobs: jobs
            .iter()
            .filter(|j| j.status == JobStatus::Completed && !j.graph_applied)
            .map(|j| j.id.clone())
            .collect(),
        statuses: vec![final_status(&format!("gantry/{}", run.workflow_name), None)],
    };
    state
        .db
        .update_run_graph(&run.id, &update, now_ms())
        .await?;
    Ok(())
}

/// Workflow-level concurrency without cancel-in-progress: the oldest active run of a group
/// runs, the newest other one waits, and any run in between is cancelled (GitHub keeps at most
/// one pending run per group).
async fn release_groups(state: &AppState) -> Result<(), StoreError> {
    let active = state.db.list_active_runs().await?;
    let mut groups: Vec<String> = active
        .iter()
        .filter_map(|r| r.concurrency_group.clone())
        .collect();
    groups.sort();
    groups.dedup();
    for group in groups {
        let mut runs: Vec<_> = active
            .iter()
            .filter(|r| {
                r.concurrency_group.as_deref() == Some(group.as_str()) && !r.cancel_requested
            })
            .collect();
        runs.sort_by_key(|r| (r.created_ms, r.id.as_str().to_owned()));
        let Some(first) = runs.first() else { continue };
        // Pending runs between the first and the newest are superseded.
        if runs.len() > 2 {
            for superseded in &runs[1..runs.len() - 1] {
                state
                    .db
                    .request_cancel(&CancelTarget::Run(superseded.id.clone()), now_ms())
                    .await?;
                state.wake.scheduler.notify_one();
            }
        }
        let jobs = state.db.list_job_progress(&first.id).await?;
        let waiting: Vec<_> = jobs
            .iter()
            .filter(|j| j.status == JobStatus::Waiting)
            .map(|j| j.id.clone())
            .collect();
        if waiting.is_empty() {
            continue;
        }
        let run = state.db.get_run(&first.id).await?;
        let update = RunGraphUpdate {
            expected_version: run.graph_version,
            graph: run.graph.clone(),
            status: run.status,
            conclusion: run.conclusion,
            new_jobs: Vec::new(),
            queue_jobs: waiting,
            cancel_jobs: Vec::new(),
            applied_jobs: Vec::new(),
            statuses: Vec::new(),
        };
        match state.db.update_run_graph(&run.id, &update, now_ms()).await {
            Ok(_) => state.wake.jobs.notify_waiters(),
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Why a job no agent took within the queue timeout failed, naming what it needs.
fn queue_timeout_reason(job: &Job, waited: Duration) -> FailureReason {
    let labels = if job.labels.is_empty() {
        "no labels".to_owned()
    } else {
        format!("labels [{}]", job.labels.join(", "))
    };
    FailureReason::SetupFailed(format!(
        "no agent took this job within {} (the queue timeout); it needs {labels}: start an \
         agent with them (`gantry agent --labels ...`) or map them with --label-map",
        humantime_short(waited)
    ))
}

/// A duration as people write it: `24h`, `90s`, `1h 30m`, `250ms`.
fn humantime_short(d: Duration) -> String {
    let total = d.as_secs();
    if total == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0 {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}
