//! Agents and tokens: registration with a token, credentials found by their hash only,
//! revocation, API tokens (Z1).

use super::fixture::{Fixture, NOW};
use gantry_server::store::{
    AgentStatus, ApiRole, NewAgent, StoreError, generate_token, hash_token,
};

fn new_agent(name: &str, credential: &str) -> NewAgent {
    NewAgent {
        name: name.into(),
        labels: vec!["linux".into(), "x64".into()],
        version: "0.1.0".into(),
        credential_hash: hash_token(credential),
    }
}

async fn an_agent_registers_with_a_valid_token_and_is_found_by_its_credential(fx: Fixture) {
    let db = fx.db().await;
    let token = generate_token("gantry_reg_");
    let stored = db
        .insert_registration_token(&hash_token(&token), "ci hosts", Some(NOW + 60_000), NOW)
        .await
        .expect("token");
    assert_eq!(
        db.list_registration_tokens().await.expect("list"),
        std::slice::from_ref(&stored)
    );

    let credential = generate_token("gantry_agent_");
    let agent = db
        .register_agent(
            &hash_token(&token),
            &new_agent("builder-1", &credential),
            NOW + 1,
        )
        .await
        .expect("register");
    assert_eq!(agent.status, AgentStatus::Idle);
    assert_eq!(agent.labels, ["linux", "x64"]);
    let found = db
        .find_agent_by_credential_hash(&hash_token(&credential))
        .await
        .expect("find")
        .expect("the agent");
    assert_eq!(found.id, agent.id);
    assert!(
        db.find_agent_by_credential_hash(&credential)
            .await
            .expect("find")
            .is_none()
    );

    // Expired, revoked and unknown tokens register nobody.
    let late = db
        .register_agent(&hash_token(&token), &new_agent("late", "c2"), NOW + 60_000)
        .await;
    assert!(matches!(late, Err(StoreError::NotFound { .. })), "{late:?}");
    db.revoke_registration_token(&stored.id)
        .await
        .expect("revoke");
    let revoked = db
        .register_agent(&hash_token(&token), &new_agent("after", "c3"), NOW + 2)
        .await;
    assert!(
        matches!(revoked, Err(StoreError::NotFound { .. })),
        "{revoked:?}"
    );
    let unknown = db
        .register_agent(&hash_token("guess"), &new_agent("x", "c4"), NOW)
        .await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { .. })),
        "{unknown:?}"
    );
    assert_eq!(db.list_agents().await.expect("agents").len(), 1);

    db.touch_agent(&agent.id, AgentStatus::Busy, NOW + 10)
        .await
        .expect("touch");
    let updated = db
        .update_agent(&agent.id, &["linux".to_string()], "0.2.0")
        .await
        .expect("update");
    assert_eq!(
        (updated.status, updated.last_seen_ms),
        (AgentStatus::Busy, NOW + 10)
    );
    assert_eq!(
        (updated.labels.len(), updated.version.as_str()),
        (1, "0.2.0")
    );

    // A poll's claim records the agent as seen, also when nothing is queued for it.
    let claimed = db
        .poll_claim(
            &agent.id,
            &updated.labels,
            Some(AgentStatus::Idle),
            30_000,
            NOW + 15,
        )
        .await
        .expect("poll");
    assert!(claimed.is_none());
    let polled = db.get_agent(&agent.id).await.expect("get");
    assert_eq!(
        (polled.status, polled.last_seen_ms),
        (AgentStatus::Idle, NOW + 15)
    );

    // A revoked agent's credential stops working at once.
    db.revoke_agent(&agent.id, NOW + 20).await.expect("revoke");
    assert!(
        db.find_agent_by_credential_hash(&hash_token(&credential))
            .await
            .expect("find")
            .is_none()
    );
    assert!(db.get_agent(&agent.id).await.expect("get").revoked);
}

async fn two_agents_cannot_share_a_credential(fx: Fixture) {
    let db = fx.db().await;
    db.insert_agent(&new_agent("a", "same"), NOW)
        .await
        .expect("first");
    let second = db.insert_agent(&new_agent("b", "same"), NOW).await;
    assert!(matches!(second, Err(StoreError::Conflict(_))), "{second:?}");
}

async fn api_tokens_are_found_by_hash_and_deleted(fx: Fixture) {
    let db = fx.db().await;
    let token = generate_token("gantry_");
    let stored = db
        .insert_api_token("deploy bot", &hash_token(&token), ApiRole::Write, NOW)
        .await
        .expect("insert");
    let found = db
        .find_api_token_by_hash(&hash_token(&token))
        .await
        .expect("find")
        .expect("the token");
    assert_eq!(found, stored);
    db.touch_api_token(&stored.id, NOW + 5)
        .await
        .expect("touch");
    assert_eq!(
        db.list_api_tokens().await.expect("list")[0].last_used_ms,
        Some(NOW + 5)
    );
    db.delete_api_token(&stored.id).await.expect("delete");
    assert!(
        db.find_api_token_by_hash(&hash_token(&token))
            .await
            .expect("find")
            .is_none()
    );
    let again = db.delete_api_token(&stored.id).await;
    assert!(
        matches!(again, Err(StoreError::NotFound { .. })),
        "{again:?}"
    );
}

store_tests!(
    an_agent_registers_with_a_valid_token_and_is_found_by_its_credential,
    two_agents_cannot_share_a_credential,
    api_tokens_are_found_by_hash_and_deleted,
);
