//! Webhook deliveries: stored once per forge delivery id, processed oldest first, and turned
//! into runs in one transaction (C3, S1).

use super::fixture::{Fixture, NOW, new_job, new_run, repository};
use gantry_server::forge::Forge;
use gantry_server::forge::status::CommitState;
use gantry_server::store::{
    Db, DeliveryInsert, DeliveryOutcome, NewDelivery, NewRunWithJobs, NewStatus, Repository,
};
use std::collections::HashSet;

fn delivery(repo: &Repository, delivery_id: &str) -> NewDelivery {
    NewDelivery {
        forge: Forge::GitHub,
        delivery_id: delivery_id.into(),
        repository_id: repo.id.clone(),
        event: "push".into(),
        payload: format!(r#"{{"delivery":"{delivery_id}","bytes":"\u00e9"}}"#).into_bytes(),
    }
}

async fn a_redelivered_webhook_is_stored_once(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    let first = db
        .insert_delivery(&delivery(&repo, "d-1"), NOW)
        .await
        .expect("insert");
    let again = db
        .insert_delivery(&delivery(&repo, "d-1"), NOW + 5)
        .await
        .expect("again");
    let DeliveryInsert::Inserted(id) = &first else {
        panic!("first insert: {first:?}");
    };
    assert_eq!(again, DeliveryInsert::Duplicate(id.clone()));
    // The same id from another forge is another delivery.
    let gitlab = NewDelivery {
        forge: Forge::GitLab,
        ..delivery(&repo, "d-1")
    };
    assert!(matches!(
        db.insert_delivery(&gitlab, NOW).await.expect("gitlab"),
        DeliveryInsert::Inserted(_)
    ));
    let todo = db
        .list_unprocessed_deliveries(NOW + 10, 10)
        .await
        .expect("list");
    assert_eq!(todo.len(), 2);
    let stored = db.get_delivery(id).await.expect("get");
    assert_eq!(stored.payload, delivery(&repo, "d-1").payload);
    assert_eq!(stored.received_ms, NOW);
}

async fn unprocessed_deliveries_come_oldest_first_and_leave_when_processed(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    let mut ids = Vec::new();
    for (i, name) in ["c", "a", "b"].iter().enumerate() {
        let inserted = db
            .insert_delivery(&delivery(&repo, name), NOW + i as i64)
            .await
            .expect("insert");
        ids.push(inserted.id().clone());
    }
    let todo = db
        .list_unprocessed_deliveries(NOW + 10, 10)
        .await
        .expect("list");
    let order: Vec<_> = todo.iter().map(|d| d.id.clone()).collect();
    assert_eq!(order, ids);

    db.mark_delivery_processed(&ids[0], &DeliveryOutcome::Runs(vec![]), NOW + 20)
        .await
        .expect("processed");
    db.mark_delivery_processed(
        &ids[1],
        &DeliveryOutcome::Failed("no workflows".into()),
        NOW + 20,
    )
    .await
    .expect("failed");
    // A failed attempt waits for its retry time.
    let attempts = db
        .record_delivery_attempt_failed(&ids[2], "mirror fetch failed", NOW + 1_000)
        .await
        .expect("attempt failed");
    assert_eq!(attempts, 1);
    assert!(
        db.list_unprocessed_deliveries(NOW + 999, 10)
            .await
            .expect("list")
            .is_empty()
    );
    let retry = db
        .list_unprocessed_deliveries(NOW + 1_000, 10)
        .await
        .expect("list");
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].error.as_deref(), Some("mirror fetch failed"));
    let failed = db.get_delivery(&ids[1]).await.expect("get");
    assert_eq!(failed.processed_ms, Some(NOW + 20));
    assert_eq!(failed.error.as_deref(), Some("no workflows"));
}

async fn a_delivery_becomes_its_runs_in_one_idempotent_transaction(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    let id = db
        .insert_delivery(&delivery(&repo, "d-1"), NOW)
        .await
        .expect("insert")
        .id()
        .clone();
    let status = NewStatus {
        state: CommitState::Pending,
        context: "gantry/ci.yml".into(),
        description: Some("queued".into()),
        target_url: None,
    };
    let runs = vec![
        NewRunWithJobs {
            run: new_run(&repo),
            jobs: vec![new_job("build", &[]), new_job("lint", &[])],
            statuses: vec![status.clone()],
        },
        NewRunWithJobs {
            run: new_run(&repo),
            jobs: vec![new_job("docs", &[])],
            statuses: vec![status],
        },
    ];
    let stored = db
        .insert_runs_for_delivery(&id, &runs, NOW + 1)
        .await
        .expect("ingest");
    assert_eq!(stored.iter().map(|r| r.number).collect::<Vec<_>>(), [1, 2]);
    assert!(stored.iter().all(|r| r.delivery_id.as_ref() == Some(&id)));
    assert_eq!(db.list_jobs(&stored[0].id).await.expect("jobs").len(), 2);
    assert!(
        db.list_unprocessed_deliveries(NOW + 10, 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        db.list_unsent_statuses(NOW + 10, 10)
            .await
            .expect("statuses")
            .len(),
        2
    );

    // The ingester runs again (a lost answer, a restart): nothing new, the same runs.
    let again = db
        .insert_runs_for_delivery(&id, &runs, NOW + 2)
        .await
        .expect("again");
    assert_eq!(again, stored);
    let page = db.list_runs(&Default::default()).await.expect("runs");
    assert_eq!(page.runs.len(), 2);
}

/// S1: a burst of webhooks (200, half of them duplicates) while agents stream logs; on SQLite
/// no request may fail with "database is locked".
async fn a_burst_of_deliveries_with_duplicates_all_succeed(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    let agent = super::fixture::agent(&db, "streamer", &[]).await;
    let (_, jobs) = db
        .insert_run_with_jobs(
            &new_run(&repo),
            &(0..5)
                .map(|i| new_job(&format!("job{i}"), &[]))
                .collect::<Vec<_>>(),
            &[],
            NOW,
        )
        .await
        .expect("run");
    let mut leases = Vec::new();
    for _ in &jobs {
        let claimed = db
            .claim_job(&agent.id, &[], 60_000, NOW)
            .await
            .expect("claim")
            .expect("a job");
        leases.push((claimed.job.id, claimed.lease_id));
    }

    let mut tasks = Vec::new();
    for i in 0..200 {
        let db = db.clone();
        let new = delivery(&repo, &format!("burst-{}", i % 100));
        tasks.push(tokio::spawn(async move {
            db.insert_delivery(&new, NOW + i).await
        }));
    }
    let mut streams = Vec::new();
    for (job_id, lease_id) in leases {
        let db = db.clone();
        streams.push(tokio::spawn(async move {
            let mut offset = 0;
            for line in 0..40 {
                let bytes = format!("line {line} of the log\n").into_bytes();
                let appended = db
                    .append_log_chunk(&job_id, &lease_id, offset, &bytes)
                    .await?;
                offset = appended.next_offset;
            }
            Ok::<u64, gantry_server::store::LogAppendError>(offset)
        }));
    }
    let mut inserted = HashSet::new();
    let mut duplicates = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(DeliveryInsert::Inserted(id)) => {
                inserted.insert(id);
            }
            Ok(DeliveryInsert::Duplicate(_)) => duplicates += 1,
            Err(error) => panic!("a webhook insert failed: {error}"),
        }
    }
    for stream in streams {
        let size = stream
            .await
            .expect("task")
            .unwrap_or_else(|e| panic!("log append failed: {e}"));
        assert!(size > 0);
    }
    assert_eq!(inserted.len(), 100);
    assert_eq!(duplicates, 100);
    assert_eq!(
        db.list_unprocessed_deliveries(NOW + 1_000, 500)
            .await
            .expect("list")
            .len(),
        100
    );
    let _: &Db = &db;
}

store_tests!(
    a_redelivered_webhook_is_stored_once,
    unprocessed_deliveries_come_oldest_first_and_leave_when_processed,
    a_delivery_becomes_its_runs_in_one_idempotent_transaction,
    a_burst_of_deliveries_with_duplicates_all_succeed,
);
