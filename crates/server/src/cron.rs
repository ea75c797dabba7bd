//! `on.schedule`: the server evaluates every repository's cron schedules on its default branch
//! and starts at most one run per scheduled slot, across restarts too (the slot is claimed in
//! the store before the run is created). Missed slots older than a few minutes are not
//! replayed after downtime, as GitHub does not replay them either.

use crate::app::{AppState, now_ms};
use crate::ingest::{RunRequest, after_insert, plan_request};
use crate::store::Repository;
use chrono::{TimeZone, Utc};
use gantry_workflow::parse_workflow;
use gantry_workflow::trigger::Event;
use std::sync::Arc;
use std::time::Duration;

/// How far back a slot is still started (the server may have been busy or restarting).
const CATCH_UP_MS: i64 = 5 * 60 * 1000;

pub async fn run_cron(state: Arc<AppState>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = state.shutdown.cancelled() => return,
        }
        match state.db.list_repositories().await {
            Ok(repos) => {
                for repo in repos {
                    if let Err(e) = check_repository(&state, &repo).await {
                        tracing::warn!(repository = %repo.name, error = %e, "schedules not checked");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list repositories for schedules"),
        }
    }
}

/// Starts the runs of `repo`'s schedules whose latest slot has come and is not claimed.
pub async fn check_repository(state: &AppState, repo: &Repository) -> anyhow::Result<()> {
    state
        .mirrors
        .fetch(repo.id.as_str(), &repo.clone_url, None)
        .await?;
    let mut branch = None;
    for name in ["refs/heads/main", "refs/heads/master"] {
        if let Ok(sha) = state.mirrors.resolve(repo.id.as_str(), name).await {
            branch = Some((name.to_owned(), sha));
            break;
        }
    }
    let Some((git_ref, sha)) = branch else {
        return Ok(());
    };
    let now = now_ms();
    for (file, text) in state.mirrors.read_workflows(repo.id.as_str(), &sha).await? {
        let parsed = parse_workflow(&file, &text);
        let Some(workflow) = parsed.valid_workflow() else {
            continue;
        };
        for schedule in &workflow.on.schedule {
            let Some(slot) = latest_slot(&schedule.cron.value, now) else {
                continue;
            };
            if now - slot > CATCH_UP_MS {
                continue;
            }
            if !state
                .db
                .claim_schedule_slot(&repo.id, &file, slot, now)
                .await?
            {
                continue;
            }
            let request = RunRequest {
                event: Event {
                    name: "schedule".to_owned(),
                    git_ref: Some(git_ref.clone()),
                    ..Event::default()
                },
                payload: serde_json::json!({ "schedule": schedule.cron.value }),
                sha: sha.clone(),
                actor: "gantry".to_owned(),
                trusted: true,
                title: format!("Scheduled: {}", schedule.cron.value),
                inputs: Vec::new(),
                only_workflow: Some(file.clone()),
                fork_url: None,
            };
            let runs = plan_request(state, repo, request, None).await?;
            let mut stored = Vec::new();
            for new in &runs {
                let (run, _) = state
                    .db
                    .insert_run_with_jobs(&new.run, &new.jobs, &new.statuses, now_ms())
                    .await?;
                stored.push(run);
            }
            after_insert(state, &stored).await;
            tracing::info!(repository = %repo.name, %file, slot, "scheduled run started");
        }
    }
    Ok(())
}

/// The most recent time at or before `now_ms` that `pattern` (5-field POSIX, UTC) matches.
pub fn latest_slot(pattern: &str, now_ms: i64) -> Option<i64> {
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(pattern)
        .ok()?;
    let now = Utc.timestamp_millis_opt(now_ms).single()?;
    let slot = cron.find_previous_occurrence(&now, true).ok()?;
    Some(slot.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_slot_is_at_or_before_now() {
        // 2026-11-22T10:07:30Z
        let now = Utc
            .with_ymd_and_hms(2026, 11, 22, 10, 7, 30)
            .single()
            .expect("time")
            .timestamp_millis();
        let every_five = latest_slot("*/5 * * * *", now).expect("slot");
        assert_eq!(
            every_five,
            Utc.with_ymd_and_hms(2026, 11, 22, 10, 5, 0)
                .single()
                .expect("time")
                .timestamp_millis()
        );
        let daily = latest_slot("0 3 * * *", now).expect("slot");
        assert_eq!(
            daily,
            Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, 0)
                .single()
                .expect("time")
                .timestamp_millis()
        );
        assert_eq!(latest_slot("not a cron", now), None);
    }
}
