//! Secrets (sealed bytes in, the same bytes out) and schedule slots (one run per slot).

use super::fixture::{Fixture, NOW, repository};
use gantry_server::store::StoreError;

async fn sealed_secrets_come_back_byte_for_byte(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    let sealed: Vec<u8> = (0..=255u8).rev().chain([0, 0, 255]).collect();
    let meta = db
        .upsert_secret(Some(&repo.id), "DEPLOY_KEY", &sealed, NOW)
        .await
        .expect("insert");
    let stored = db
        .find_secret(Some(&repo.id), "DEPLOY_KEY")
        .await
        .expect("find")
        .expect("the secret");
    assert_eq!(stored.sealed, sealed);
    assert_eq!(stored.id, meta.id);
    let debug = format!("{stored:?}");
    assert!(
        debug.contains("<259 bytes>") && !debug.contains("255, 254"),
        "Debug shows no bytes: {debug}"
    );

    // Replacing keeps the id and the creation time.
    let replaced = db
        .upsert_secret(Some(&repo.id), "DEPLOY_KEY", b"v2", NOW + 10)
        .await
        .expect("replace");
    assert_eq!(
        (replaced.id, replaced.created_ms, replaced.updated_ms),
        (meta.id.clone(), NOW, NOW + 10)
    );
    assert_eq!(
        db.find_secret(Some(&repo.id), "DEPLOY_KEY")
            .await
            .expect("find")
            .expect("secret")
            .sealed,
        b"v2"
    );

    // Global secrets: one per name; a repository's own secret hides the global one.
    db.upsert_secret(None, "DEPLOY_KEY", b"global", NOW)
        .await
        .expect("global");
    db.upsert_secret(None, "DEPLOY_KEY", b"global2", NOW + 1)
        .await
        .expect("global again");
    db.upsert_secret(None, "NPM_TOKEN", b"npm", NOW)
        .await
        .expect("global npm");
    assert_eq!(db.list_secrets(None).await.expect("globals").len(), 2);
    assert!(
        db.find_secret(None, "NPM_TOKEN")
            .await
            .expect("find")
            .is_some()
    );
    let visible = db
        .list_secrets_for_repository(&repo.id)
        .await
        .expect("visible");
    let pairs: Vec<_> = visible
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.sealed.as_slice(),
                s.repository_id.is_some(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("DEPLOY_KEY", b"v2".as_slice(), true),
            ("NPM_TOKEN", b"npm".as_slice(), false)
        ]
    );
    assert_eq!(
        db.list_secrets(Some(&repo.id)).await.expect("list").len(),
        1
    );

    db.delete_secret(Some(&repo.id), "DEPLOY_KEY")
        .await
        .expect("delete");
    assert!(
        db.find_secret(Some(&repo.id), "DEPLOY_KEY")
            .await
            .expect("find")
            .is_none()
    );
    let missing = db.delete_secret(Some(&repo.id), "DEPLOY_KEY").await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

async fn a_schedule_slot_is_claimed_once(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    let slot = NOW - NOW % 3_600_000;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let db = db.clone();
        let repo = repo.id.clone();
        tasks.push(tokio::spawn(async move {
            db.claim_schedule_slot(&repo, ".github/workflows/nightly.yml", slot, NOW + i)
                .await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        if task.await.expect("task").expect("claim") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    // Another workflow, or the next slot, is another claim.
    assert!(
        db.claim_schedule_slot(&repo.id, ".github/workflows/ci.yml", slot, NOW)
            .await
            .expect("claim")
    );
    assert!(
        db.claim_schedule_slot(
            &repo.id,
            ".github/workflows/nightly.yml",
            slot + 3_600_000,
            NOW
        )
        .await
        .expect("claim")
    );
    let last = db
        .find_last_schedule_slot(&repo.id, ".github/workflows/nightly.yml")
        .await
        .expect("last");
    assert_eq!(last, Some(slot + 3_600_000));
    assert_eq!(
        db.delete_schedule_slots_before(slot + 1)
            .await
            .expect("delete"),
        2
    );
}

store_tests!(
    sealed_secrets_come_back_byte_for_byte,
    a_schedule_slot_is_claimed_once
);
