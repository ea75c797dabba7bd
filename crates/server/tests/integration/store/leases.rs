//! Leases: heartbeats, stale leases refused, expiry (agent lost) and the next attempt, finish
//! idempotence, cancellation seen by the agent (A1, C4, S2).

use super::fixture::{Fixture, NOW, agent, claimed_job, new_job, new_run, repository};
use gantry_protocol::{Conclusion, FailureReason};
use gantry_server::store::{
    CancelTarget, ClaimedJob, Db, FinalReport, FinishError, FinishOutcome, JobFinish, JobStatus,
    LeaseId, LogAppendError, NewJobEvent, Step, StepStatus, StoreError,
};
use indexmap::IndexMap;

/// Finishes a claimed job as a success with the log size the store has.
pub async fn finish_successfully(db: &Db, claimed: &ClaimedJob) -> FinishOutcome {
    let log_size = db.get_job(&claimed.job.id).await.expect("job").log_size;
    let finish = JobFinish {
        conclusion: Conclusion::Success,
        reason: None,
        outputs: IndexMap::new(),
        log_size,
    };
    db.finish_job(&claimed.job.id, &claimed.lease_id, &finish, NOW + 500)
        .await
        .expect("finish")
}

async fn a_heartbeat_extends_the_lease_and_a_stale_lease_is_refused(fx: Fixture) {
    let db = fx.db().await;
    let claimed = claimed_job(&db, "build").await;
    let state = db
        .renew_lease(&claimed.job.id, &claimed.lease_id, 30_000, NOW + 10_000)
        .await
        .expect("renew");
    assert_eq!(state.expires_ms, NOW + 40_000);
    assert!(!state.cancel_requested);
    let agent = db
        .get_agent(claimed.job.agent_id.as_ref().expect("agent"))
        .await
        .expect("agent");
    assert_eq!(agent.last_seen_ms, NOW + 10_000);

    let forged = LeaseId::generate();
    let stale = db.renew_lease(&claimed.job.id, &forged, 30_000, NOW).await;
    assert!(matches!(stale, Err(StoreError::Gone(_))), "{stale:?}");
    let append = db.append_log_chunk(&claimed.job.id, &forged, 0, b"x").await;
    assert!(
        matches!(append, Err(LogAppendError::StaleLease)),
        "{append:?}"
    );
    let events = db
        .insert_job_events(&claimed.job.id, &forged, &[], NOW)
        .await;
    assert!(matches!(events, Err(StoreError::Gone(_))), "{events:?}");
    let missing = db
        .renew_lease(&"job_missing".into(), &claimed.lease_id, 30_000, NOW)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

async fn an_expired_lease_fails_the_job_as_agent_lost_and_a_retry_is_queued(fx: Fixture) {
    let db = fx.db().await;
    let claimed = claimed_job(&db, "build").await;
    db.append_log_chunk(&claimed.job.id, &claimed.lease_id, 0, b"started\n")
        .await
        .expect("log");
    assert!(
        db.expire_leases(NOW + 30_000)
            .await
            .expect("sweep")
            .is_empty(),
        "not yet"
    );

    let expired = db.expire_leases(NOW + 30_001).await.expect("sweep");
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].job_id, claimed.job.id);
    assert_eq!(expired[0].attempt, 1);
    let job = db.get_job(&claimed.job.id).await.expect("job");
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.conclusion, Some(Conclusion::Failure));
    assert_eq!(job.reason, Some(FailureReason::AgentLost));
    assert_eq!(job.finished_ms, Some(NOW + 30_001));
    assert!(
        db.expire_leases(NOW + 60_000)
            .await
            .expect("sweep")
            .is_empty(),
        "once"
    );

    // The lost agent comes back: its writes and its finish are refused.
    let renew = db
        .renew_lease(&job.id, &claimed.lease_id, 30_000, NOW + 31_000)
        .await;
    assert!(matches!(renew, Err(StoreError::Gone(_))), "{renew:?}");
    let finish = JobFinish {
        conclusion: Conclusion::Success,
        reason: None,
        outputs: IndexMap::new(),
        log_size: 8,
    };
    let late = db
        .finish_job(&job.id, &claimed.lease_id, &finish, NOW + 31_000)
        .await;
    assert!(matches!(late, Err(FinishError::StaleLease)), "{late:?}");

    // The scheduler retries: a second attempt, queued, for another agent; logs of the first stay.
    let unapplied = db.list_unapplied_jobs(10).await.expect("unapplied");
    assert_eq!(
        unapplied.iter().map(|j| &j.id).collect::<Vec<_>>(),
        [&job.id]
    );
    let retry = db
        .insert_retry_attempt(&job.id, NOW + 31_000)
        .await
        .expect("retry");
    assert_eq!(retry.attempt, 2);
    assert_eq!(retry.status, JobStatus::Queued);
    assert_eq!((retry.key.as_str(), retry.leg), (job.key.as_str(), job.leg));
    let again = db
        .insert_retry_attempt(&job.id, NOW + 32_000)
        .await
        .expect("retry again");
    assert_eq!(again.id, retry.id, "idempotent");
    assert!(
        db.list_unapplied_jobs(10)
            .await
            .expect("unapplied")
            .is_empty()
    );
    assert_eq!(
        db.read_log(&job.id, 0..100).await.expect("log"),
        b"started\n"
    );
    let other = agent(&db, "other", &[]).await;
    let second = db
        .claim_job(&other.id, &[], 30_000, NOW + 33_000)
        .await
        .expect("claim")
        .expect("the retry");
    assert_eq!(second.job.id, retry.id);
    assert_ne!(second.lease_id, claimed.lease_id);
    let not_done = db.insert_retry_attempt(&retry.id, NOW + 34_000).await;
    assert!(
        matches!(not_done, Err(StoreError::Conflict(_))),
        "{not_done:?}"
    );
}

async fn a_finish_is_recorded_once_and_checks_the_log_size(fx: Fixture) {
    let db = fx.db().await;
    let claimed = claimed_job(&db, "build").await;
    let (job_id, lease) = (&claimed.job.id, &claimed.lease_id);
    db.append_log_chunk(job_id, lease, 0, b"hello\n")
        .await
        .expect("log");
    let mut outputs = IndexMap::new();
    outputs.insert("version".to_string(), "1.2.3".to_string());
    let finish = JobFinish {
        conclusion: Conclusion::Failure,
        reason: Some(FailureReason::StepFailed),
        outputs,
        log_size: 10,
    };

    // The agent thinks it sent 10 bytes; the store has 6: it sends the rest, then finishes.
    let short = db.finish_job(job_id, lease, &finish, NOW + 100).await;
    assert!(
        matches!(
            short,
            Err(FinishError::LogSizeMismatch {
                stored: 6,
                reported: 10
            })
        ),
        "{short:?}"
    );
    assert_eq!(
        db.get_job(job_id).await.expect("job").status,
        JobStatus::Running
    );
    db.append_log_chunk(job_id, lease, 6, b"bye\n")
        .await
        .expect("rest of the log");

    let recorded = db
        .finish_job(job_id, lease, &finish, NOW + 200)
        .await
        .expect("finish");
    let FinishOutcome::Recorded(job) = &recorded else {
        panic!("{recorded:?}");
    };
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.conclusion, Some(Conclusion::Failure));
    assert_eq!(job.reason, Some(FailureReason::StepFailed));
    assert_eq!(
        job.outputs
            .as_ref()
            .and_then(|o| o.get("version"))
            .map(String::as_str),
        Some("1.2.3")
    );
    assert_eq!(job.finished_ms, Some(NOW + 200));

    // The answer was lost; the agent finishes again (even with another conclusion): the first
    // stays.
    let success = JobFinish {
        conclusion: Conclusion::Success,
        ..finish.clone()
    };
    let repeat = db
        .finish_job(job_id, lease, &success, NOW + 300)
        .await
        .expect("repeat");
    assert_eq!(repeat, FinishOutcome::AlreadyRecorded(job.clone()));
    let other = db
        .finish_job(job_id, &LeaseId::generate(), &finish, NOW + 300)
        .await;
    assert!(matches!(other, Err(FinishError::StaleLease)), "{other:?}");
    // Nothing more is accepted under the finished lease.
    let append = db.append_log_chunk(job_id, lease, 10, b"late").await;
    assert!(
        matches!(append, Err(LogAppendError::StaleLease)),
        "{append:?}"
    );
    let unapplied = db.list_unapplied_jobs(10).await.expect("unapplied");
    assert_eq!(unapplied.len(), 1);
}

async fn a_cancel_reaches_the_agent_through_heartbeats_logs_and_events(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    let (run, jobs) = db
        .insert_run_with_jobs(
            &new_run(&repo),
            &[
                new_job("running", &[]),
                new_job("queued", &["nobody-has-this"]),
            ],
            &[],
            NOW,
        )
        .await
        .expect("run");
    let agent = agent(&db, "a", &[]).await;
    let claimed = db
        .claim_job(&agent.id, &[], 30_000, NOW)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(claimed.job.id, jobs[0].id);

    let outcome = db
        .request_cancel(&CancelTarget::Run(run.id.clone()), NOW + 1)
        .await
        .expect("cancel");
    assert_eq!(outcome.signalled, [jobs[0].id.clone()]);
    assert_eq!(outcome.completed, [jobs[1].id.clone()]);
    assert!(db.get_run(&run.id).await.expect("run").cancel_requested);
    let queued = db.get_job(&jobs[1].id).await.expect("job");
    assert_eq!(queued.status, JobStatus::Completed);
    assert_eq!(queued.conclusion, Some(Conclusion::Cancelled));
    assert_eq!(queued.reason, Some(FailureReason::Cancelled));

    let (job_id, lease) = (&claimed.job.id, &claimed.lease_id);
    assert!(
        db.renew_lease(job_id, lease, 30_000, NOW + 2)
            .await
            .expect("renew")
            .cancel_requested
    );
    let appended = db
        .append_log_chunk(job_id, lease, 0, b"stopping\n")
        .await
        .expect("log");
    assert!(appended.cancel_requested);
    let events = db
        .insert_job_events(
            job_id,
            lease,
            &[NewJobEvent {
                seq: 0,
                event: "{}".into(),
            }],
            NOW + 3,
        )
        .await
        .expect("events");
    assert!(events.cancel_requested);
    // Cancelling again changes nothing.
    let again = db
        .request_cancel(&CancelTarget::Job(job_id.clone()), NOW + 4)
        .await
        .expect("again");
    assert_eq!(again.signalled, std::slice::from_ref(job_id));
    assert!(again.completed.is_empty());
    let missing = db
        .request_cancel(&CancelTarget::Run("run_missing".into()), NOW)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

async fn events_are_stored_once_by_sequence_and_steps_are_upserted(fx: Fixture) {
    let db = fx.db().await;
    let claimed = claimed_job(&db, "build").await;
    let (job_id, lease) = (&claimed.job.id, &claimed.lease_id);
    let event = |seq: u64, text: &str| NewJobEvent {
        seq,
        event: format!(r#"{{"text":"{text}"}}"#),
    };
    let first = db
        .insert_job_events(job_id, lease, &[event(0, "a"), event(1, "b")], NOW)
        .await
        .expect("events");
    assert_eq!(first.next_seq, 2);
    // A resend overlapping the stored ones: the stored text stays, the new one is added.
    let second = db
        .insert_job_events(job_id, lease, &[event(1, "B"), event(2, "c")], NOW + 1)
        .await
        .expect("events");
    assert_eq!(second.next_seq, 3);
    let stored = db.list_job_events(job_id, 0, 10).await.expect("list");
    let texts: Vec<_> = stored.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        texts,
        [r#"{"text":"a"}"#, r#"{"text":"b"}"#, r#"{"text":"c"}"#]
    );
    assert_eq!(
        db.list_job_events(job_id, 2, 10).await.expect("list").len(),
        1
    );

    let mut step = Step {
        number: 1,
        name: "Build".into(),
        status: StepStatus::Running,
        outcome: None,
        conclusion: None,
        log_start: Some(0),
        log_end: None,
        started_ms: Some(NOW),
        finished_ms: None,
    };
    db.upsert_step(job_id, lease, &step).await.expect("step");
    step.status = StepStatus::Completed;
    step.outcome = Some(Conclusion::Failure);
    step.conclusion = Some(Conclusion::Success);
    step.log_end = Some(42);
    step.finished_ms = Some(NOW + 5);
    db.upsert_step(job_id, lease, &step)
        .await
        .expect("step again");
    assert_eq!(db.list_steps(job_id).await.expect("steps"), [step.clone()]);
    // The end reported on its own (no start fields) keeps the start.
    let end_only = Step {
        log_start: None,
        started_ms: None,
        ..step.clone()
    };
    db.upsert_step(job_id, lease, &end_only)
        .await
        .expect("end only");
    assert_eq!(db.list_steps(job_id).await.expect("steps"), [step.clone()]);
    let stale = db.upsert_step(job_id, &LeaseId::generate(), &step).await;
    assert!(matches!(stale, Err(StoreError::Gone(_))), "{stale:?}");

    // A short step's start and end in one request: one row with both.
    let started = Step {
        number: 2,
        name: "Test".into(),
        status: StepStatus::Running,
        outcome: None,
        conclusion: None,
        log_start: Some(42),
        log_end: None,
        started_ms: Some(NOW + 6),
        finished_ms: None,
    };
    let ended = Step {
        status: StepStatus::Completed,
        outcome: Some(Conclusion::Success),
        conclusion: Some(Conclusion::Success),
        log_start: None,
        log_end: Some(50),
        started_ms: Some(NOW + 6),
        finished_ms: Some(NOW + 8),
        ..started.clone()
    };
    let answer = db
        .record_job_events(
            job_id,
            lease,
            &[event(3, "d"), event(4, "e")],
            &[started, ended.clone()],
            NOW + 8,
        )
        .await
        .expect("events with steps");
    assert_eq!(answer.next_seq, 5);
    let both = Step {
        log_start: Some(42),
        ..ended
    };
    assert_eq!(db.list_steps(job_id).await.expect("steps"), [step, both]);
}

async fn revoking_an_agent_ends_its_leases(fx: Fixture) {
    let db = fx.db().await;
    let claimed = claimed_job(&db, "build").await;
    let agent_id = claimed.job.agent_id.clone().expect("agent");
    let ended = db.revoke_agent(&agent_id, NOW + 5).await.expect("revoke");
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].job_id, claimed.job.id);
    let job = db.get_job(&claimed.job.id).await.expect("job");
    assert_eq!(job.reason, Some(FailureReason::AgentLost));
    let renew = db
        .renew_lease(&job.id, &claimed.lease_id, 30_000, NOW + 6)
        .await;
    assert!(matches!(renew, Err(StoreError::Gone(_))), "{renew:?}");
}

async fn concurrent_retries_of_an_attempt_queue_one_next_attempt(fx: Fixture) {
    let db = fx.db().await;
    let claimed = claimed_job(&db, "build").await;
    db.expire_leases(NOW + 60_000).await.expect("sweep");
    let mut tasks = Vec::new();
    for i in 0..5 {
        let db = db.clone();
        let job_id = claimed.job.id.clone();
        tasks.push(tokio::spawn(async move {
            db.insert_retry_attempt(&job_id, NOW + 60_000 + i).await
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let retry = task.await.expect("task").expect("retry");
        assert_eq!(retry.attempt, 2);
        ids.insert(retry.id);
    }
    assert_eq!(ids.len(), 1, "one next attempt: {ids:?}");
    assert_eq!(
        db.list_jobs(&claimed.job.run_id).await.expect("jobs").len(),
        2
    );
}

/// A4/C4: a job whose cancel was asked for and whose agent then vanishes ends as `cancelled`
/// at lease expiry: the user asked for it to stop, so it is not "agent lost" and not retried.
async fn a_cancelled_job_whose_agent_is_lost_ends_cancelled(fx: Fixture) {
    let db = fx.db().await;
    let claimed = claimed_job(&db, "build").await;
    let lost = claimed_job(&db, "test").await;
    db.request_cancel(&CancelTarget::Job(claimed.job.id.clone()), NOW + 1)
        .await
        .expect("cancel");
    let mut expired = db.expire_leases(NOW + 60_000).await.expect("sweep");
    expired.sort_by_key(|e| e.key.clone());
    assert_eq!(expired.len(), 2, "{expired:?}");
    assert_eq!(expired[0].job_id, claimed.job.id);
    assert!(
        expired[0].cancelled,
        "the cancelled job is reported as such"
    );
    assert_eq!(expired[1].job_id, lost.job.id);
    assert!(
        !expired[1].cancelled,
        "the other job is lost, not cancelled"
    );
    let job = db.get_job(&claimed.job.id).await.expect("job");
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.conclusion, Some(Conclusion::Cancelled));
    assert_eq!(job.reason, Some(FailureReason::Cancelled));
    let other = db.get_job(&lost.job.id).await.expect("job");
    assert_eq!(other.conclusion, Some(Conclusion::Failure));
    assert_eq!(other.reason, Some(FailureReason::AgentLost));
}

/// A short job's last log bytes and events arrive with its result: stored together, or not at
/// all when the log does not line up.
async fn a_finish_carrying_the_log_end_and_last_events_stores_them_with_the_result(fx: Fixture) {
    let db = fx.db().await;
    let claimed = claimed_job(&db, "build").await;
    let (job_id, lease) = (&claimed.job.id, &claimed.lease_id);
    db.append_log_chunk(job_id, lease, 0, b"hello ")
        .await
        .expect("first chunk");
    let step = Step {
        number: 1,
        name: "Greet".into(),
        status: StepStatus::Completed,
        outcome: Some(Conclusion::Success),
        conclusion: Some(Conclusion::Success),
        log_start: None,
        log_end: Some(12),
        started_ms: Some(NOW),
        finished_ms: Some(NOW + 3),
    };
    let report = |offset: u64, text: &str| FinalReport {
        log_tail: Some((offset, text.as_bytes().to_vec())),
        events: vec![NewJobEvent {
            seq: 0,
            event: r#"{"event":"step_finished"}"#.into(),
        }],
        steps: vec![step.clone()],
    };
    let finish = |log_size: u64| JobFinish {
        conclusion: Conclusion::Success,
        reason: None,
        outputs: IndexMap::new(),
        log_size,
    };

    // A tail that leaves a gap: the stored size comes back, and nothing of the report stays.
    let gap = db
        .finish_job_with(job_id, lease, &report(8, "world\n"), &finish(14), NOW + 5)
        .await;
    assert!(
        matches!(gap, Err(FinishError::LogSizeMismatch { stored: 6, .. })),
        "{gap:?}"
    );
    // A tail that says something else than the bytes stored: refused, nothing stored.
    let differs = db
        .finish_job_with(
            job_id,
            lease,
            &report(0, "HELLO world\n"),
            &finish(12),
            NOW + 5,
        )
        .await;
    assert!(
        matches!(differs, Err(FinishError::LogConflict { offset: 0 })),
        "{differs:?}"
    );
    assert!(
        db.list_job_events(job_id, 0, 10)
            .await
            .expect("events")
            .is_empty()
    );
    assert!(db.list_steps(job_id).await.expect("steps").is_empty());
    assert_eq!(
        db.get_job(job_id).await.expect("job").status,
        JobStatus::Running
    );

    // The tail from the stored end (repeating a stored byte is fine): all of it recorded.
    let outcome = db
        .finish_job_with(job_id, lease, &report(5, " world\n"), &finish(12), NOW + 5)
        .await
        .expect("finish");
    let FinishOutcome::Recorded(job) = outcome else {
        panic!("not recorded: {outcome:?}");
    };
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(job.log_size, 12);
    assert_eq!(
        db.read_log(job_id, 0..100).await.expect("log"),
        b"hello world\n"
    );
    let events = db.list_job_events(job_id, 0, 10).await.expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(
        db.list_steps(job_id).await.expect("steps"),
        std::slice::from_ref(&step)
    );

    // Sent again after a lost answer: acknowledged as recorded, the log not appended twice.
    let again = db
        .finish_job_with(job_id, lease, &report(6, "world\n"), &finish(12), NOW + 6)
        .await
        .expect("finish again");
    assert!(
        matches!(again, FinishOutcome::AlreadyRecorded(_)),
        "{again:?}"
    );
    assert_eq!(
        db.read_log(job_id, 0..100).await.expect("log"),
        b"hello world\n"
    );
}

store_tests!(
    a_finish_carrying_the_log_end_and_last_events_stores_them_with_the_result,
    a_cancelled_job_whose_agent_is_lost_ends_cancelled,
    a_heartbeat_extends_the_lease_and_a_stale_lease_is_refused,
    an_expired_lease_fails_the_job_as_agent_lost_and_a_retry_is_queued,
    a_finish_is_recorded_once_and_checks_the_log_size,
    a_cancel_reaches_the_agent_through_heartbeats_logs_and_events,
    events_are_stored_once_by_sequence_and_steps_are_upserted,
    revoking_an_agent_ends_its_leases,
    concurrent_retries_of_an_attempt_queue_one_next_attempt,
);
