//! The commit status outbox: statuses come out in the order they were written, and leave once
//! sent or abandoned.

use super::fixture::{Fixture, NOW, new_run, repository};
use gantry_server::forge::status::CommitState;
use gantry_server::store::{NewStatus, StoreError};

fn status(state: CommitState, context: &str) -> NewStatus {
    NewStatus {
        state,
        context: context.into(),
        description: Some(format!("{state:?}")),
        target_url: None,
    }
}

async fn statuses_are_sent_in_order_and_retried_later(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    let (first, _) = db
        .insert_run_with_jobs(
            &new_run(&repo),
            &[],
            &[status(CommitState::Pending, "gantry/ci")],
            NOW,
        )
        .await
        .expect("run");
    let (second, _) = db
        .insert_run_with_jobs(
            &new_run(&repo),
            &[],
            &[status(CommitState::Pending, "gantry/ci")],
            NOW + 1,
        )
        .await
        .expect("run");
    db.insert_status(
        &first.id,
        &status(CommitState::Running, "gantry/ci"),
        NOW + 2,
    )
    .await
    .expect("status");
    db.insert_status(
        &first.id,
        &status(CommitState::Success, "gantry/ci"),
        NOW + 3,
    )
    .await
    .expect("status");

    let unsent = db.list_unsent_statuses(NOW + 10, 10).await.expect("unsent");
    let order: Vec<_> = unsent
        .iter()
        .map(|s| (s.run_id.clone(), s.seq, s.state))
        .collect();
    assert_eq!(
        order,
        [
            (first.id.clone(), 1, CommitState::Pending),
            (second.id.clone(), 1, CommitState::Pending),
            (first.id.clone(), 2, CommitState::Running),
            (first.id.clone(), 3, CommitState::Success),
        ]
    );
    assert_eq!(unsent[0].sha, first.sha);
    assert_eq!(unsent[0].repository_id, repo.id);

    db.mark_status_sent(&unsent[0].id, NOW + 11)
        .await
        .expect("sent");
    db.mark_status_attempt_failed(&unsent[1].id, "HTTP 502", Some(NOW + 60_000))
        .await
        .expect("failed");
    db.mark_status_attempt_failed(&unsent[2].id, "HTTP 422", None)
        .await
        .expect("abandoned");
    let now: Vec<_> = db
        .list_unsent_statuses(NOW + 12, 10)
        .await
        .expect("unsent")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(now, [unsent[3].id.clone()]);
    let later = db
        .list_unsent_statuses(NOW + 60_000, 10)
        .await
        .expect("unsent");
    assert_eq!(later.len(), 2);
    assert_eq!(later[0].id, unsent[1].id);
    assert_eq!(
        (later[0].attempts, later[0].last_error.as_deref()),
        (1, Some("HTTP 502"))
    );

    let missing = db
        .insert_status(&"run_missing".into(), &status(CommitState::Error, "x"), NOW)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

store_tests!(statuses_are_sent_in_order_and_retried_later);
