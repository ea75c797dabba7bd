//! Registering repositories: secrets sealed for the right row and never returned.

use super::TestServer;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use gantry_server::secret::repository_field_aad;
use gantry_server::store::RepositoryId;
use hmac::{KeyInit, Mac};
use serde_json::json;

const WEBHOOK_SECRET: &str = "whsec-4f9d2c7e1b";
const STATUS_TOKEN: &str = "ghp_statusTokenValue123";

#[tokio::test]
async fn secrets_are_sealed_for_the_repository_and_never_returned() {
    let server = TestServer::new().await;
    let created = server
        .post(
            "/api/v1/repositories",
            Some(&server.admin),
            json!({
                "clone_url": "https://github.com/Codertocat/Hello-World.git",
                "forge": "github",
                "webhook_secret": WEBHOOK_SECRET,
                "status_url": "https://api.github.com/",
                "status_token": STATUS_TOKEN,
            }),
        )
        .await;
    created.expect(StatusCode::CREATED);
    let repo = created.json();
    assert_eq!(repo["name"], "Codertocat/Hello-World");
    assert_eq!(repo["has_webhook_secret"], true);
    assert_eq!(repo["has_status_token"], true);
    assert_eq!(repo["status_url"], "https://api.github.com");
    assert_eq!(repo["webhook_url"], "https://ci.example.com/hooks/github");
    let id = repo["id"].as_str().expect("id").to_owned();

    let mut answers = vec![created.body.clone()];
    answers.push(server.get("/api/v1/repositories", None).await.body);
    answers.push(
        server
            .get(&format!("/api/v1/repositories/{id}"), None)
            .await
            .body,
    );
    answers.push(
        server
            .get(
                "/api/v1/repositories?name=Codertocat/Hello-World",
                Some(&server.read),
            )
            .await
            .body,
    );
    for body in &answers {
        assert!(
            !body.contains(WEBHOOK_SECRET),
            "webhook secret leaked: {body}"
        );
        assert!(!body.contains(STATUS_TOKEN), "status token leaked: {body}");
    }

    // Sealed for this row and column: the webhook intake and the status sender can open them.
    let stored = server
        .state
        .db
        .get_repository(&RepositoryId::from(id.as_str()))
        .await
        .expect("stored");
    let sealed = stored.status_token.expect("sealed token");
    assert!(!String::from_utf8_lossy(&sealed).contains(STATUS_TOKEN));
    let opened = server
        .state
        .keys
        .open(&repository_field_aad(&id, "status_token"), &sealed)
        .expect("opens with its own associated data");
    assert_eq!(opened, STATUS_TOKEN.as_bytes());

    // A delivery signed with the secret is accepted; one signed with another is not.
    let payload = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/fixtures/webhooks/github/push.branch-created.json"),
    )
    .expect("fixture");
    let delivery = |secret: &str, id: &str| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(&payload);
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        Request::builder()
            .method(Method::POST)
            .uri("/hooks/github")
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", id)
            .header("x-hub-signature-256", signature)
            .body(Body::from(payload.clone()))
            .expect("request")
    };
    server
        .send(delivery(WEBHOOK_SECRET, "d-1"))
        .await
        .expect(StatusCode::ACCEPTED);
    server
        .send(delivery("another-secret", "d-2"))
        .await
        .expect(StatusCode::UNAUTHORIZED);

    // S2: with the database gone (closed here), a delivery is not acknowledged: 503, so the
    // forge knows it was not taken, never a 2xx for something not stored.
    server.state.db.close().await;
    let answer = server.send(delivery(WEBHOOK_SECRET, "d-3")).await;
    answer.expect(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        answer.body.contains("temporarily unavailable"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn repositories_are_updated_listed_and_deleted() {
    let server = TestServer::new().await;
    let created = server
        .post(
            "/api/v1/repositories",
            Some(&server.admin),
            json!({
                "clone_url": "https://gitlab.example.com/group/sub/app.git",
                "forge": "gitlab",
                "webhook_secret": WEBHOOK_SECRET,
            }),
        )
        .await;
    created.expect(StatusCode::CREATED);
    let repo = created.json();
    assert_eq!(repo["name"], "group/sub/app");
    assert_eq!(repo["webhook_url"], "https://ci.example.com/hooks/gitlab");
    let uri = format!("/api/v1/repositories/{}", repo["id"].as_str().expect("id"));

    // The same name again is a conflict.
    server
        .post(
            "/api/v1/repositories",
            Some(&server.admin),
            json!({"clone_url": "https://gitlab.example.com/group/sub/app.git", "forge": "gitlab"}),
        )
        .await
        .expect(StatusCode::CONFLICT);

    // null clears a secret; absent fields stay.
    let updated = server
        .call(
            Method::PATCH,
            &uri,
            Some(&server.admin),
            Some(json!({"webhook_secret": null, "allow_unsigned": true})),
        )
        .await;
    updated.expect(StatusCode::OK);
    let repo = updated.json();
    assert_eq!(repo["has_webhook_secret"], false);
    assert_eq!(repo["allow_unsigned"], true);
    assert_eq!(repo["forge"], "gitlab");

    server
        .call(Method::DELETE, &uri, Some(&server.write), None)
        .await
        .expect(StatusCode::FORBIDDEN);
    server
        .call(Method::DELETE, &uri, Some(&server.admin), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    server.get(&uri, None).await.expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_repositories_are_refused_with_a_reason() {
    let server = TestServer::new().await;
    for (body, says) in [
        (json!({"clone_url": "--upload-pack=evil"}), "must not start"),
        (
            json!({"clone_url": "https://example.com/solo"}),
            "pass name",
        ),
        (
            json!({"clone_url": "https://example.com/a/b.git", "forge": "bitbucket"}),
            "unknown forge",
        ),
        (
            json!({"clone_url": "https://example.com/a/b.git", "webhook_secret": ""}),
            "empty",
        ),
        (
            json!({"clone_url": "https://example.com/a/b.git", "colour": 1}),
            "unknown field",
        ),
    ] {
        let answer = server
            .post("/api/v1/repositories", Some(&server.admin), body.clone())
            .await;
        answer.expect(StatusCode::BAD_REQUEST);
        let message = answer.json()["message"].as_str().unwrap_or("").to_owned();
        assert!(message.contains(says), "{body}: {message}");
    }
}

#[tokio::test]
async fn unknown_objects_are_404() {
    let server = TestServer::new().await;
    for uri in [
        "/api/v1/repositories/repo_0000",
        "/api/v1/runs/run_0000",
        "/api/v1/jobs/job_0000",
        "/api/v1/jobs/job_0000/logs",
        "/api/v1/jobs/job_0000/logs/live",
        "/api/v1/runs?repository=nobody/nothing",
    ] {
        let answer = server.get(uri, Some(&server.read)).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{uri}: {}",
            answer.body
        );
        assert_eq!(answer.json()["error"], "not_found", "{uri}");
    }
    for (uri, body) in [
        ("/api/v1/runs/run_0000/cancel", json!({})),
        ("/api/v1/runs/run_0000/rerun", json!({"failed_only": true})),
        ("/api/v1/jobs/job_0000/cancel", json!({})),
        (
            "/api/v1/repositories/repo_0000/dispatch",
            json!({"workflow": "ci.yml"}),
        ),
    ] {
        let answer = server.post(uri, Some(&server.write), body).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{uri}: {}",
            answer.body
        );
    }
    server
        .post(
            "/api/v1/agents/agt_0000/revoke",
            Some(&server.admin),
            json!({}),
        )
        .await
        .expect(StatusCode::NOT_FOUND);
}

/// H1: a repository registered without a webhook secret (and not opted in to unsigned
/// deliveries) refuses every delivery, signed or not, and stores nothing.
#[tokio::test]
async fn a_repository_without_a_secret_refuses_deliveries_and_stores_none() {
    let server = TestServer::new().await;
    let repo = server
        .state
        .db
        .insert_repository(
            &gantry_server::store::NewRepository {
                name: "Codertocat/Hello-World".to_owned(),
                clone_url: "https://github.com/Codertocat/Hello-World.git".to_owned(),
                forge: gantry_server::forge::Forge::GitHub,
                webhook_secret: None,
                allow_unsigned: false,
                status_url: None,
                status_token: None,
            },
            super::now(),
        )
        .await
        .expect("repository stored");
    let payload = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/fixtures/webhooks/github/push.branch-created.json"),
    )
    .expect("fixture");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"anything").expect("key");
    mac.update(&payload);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    for (id, signature) in [("u-1", None), ("u-2", Some(signature))] {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/hooks/github")
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", id);
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        let request = request.body(Body::from(payload.clone())).expect("request");
        server.send(request).await.expect(StatusCode::UNAUTHORIZED);
    }
    let stored = server
        .state
        .db
        .list_deliveries(&repo.id, 10)
        .await
        .expect("deliveries");
    assert!(stored.is_empty(), "nothing stored: {stored:?}");
}
