//! Secrets: sealed per scope, names and dates only in answers, roles per scope.

use super::TestServer;
use axum::http::{Method, StatusCode};
use gantry_server::secret::secret_aad;
use serde_json::json;

const VALUE: &str = "s3cr3t-deploy-key-value";

#[tokio::test]
async fn secrets_are_stored_sealed_and_never_returned() {
    let server = TestServer::new().await;
    let repo = server.repository("app").await;
    let mut bodies = Vec::new();

    let put = server
        .call(
            Method::PUT,
            "/api/v1/secrets/deploy_key?repository=owner/app",
            Some(&server.write),
            Some(json!({"value": VALUE})),
        )
        .await;
    put.expect(StatusCode::OK);
    let meta = put.json();
    assert_eq!(meta["name"], "DEPLOY_KEY");
    assert_eq!(meta["repository"], "owner/app");
    bodies.push(put.body.clone());

    let global = server
        .call(
            Method::PUT,
            "/api/v1/secrets/SHARED",
            Some(&server.admin),
            Some(json!({"value": VALUE})),
        )
        .await;
    global.expect(StatusCode::OK);
    bodies.push(global.body.clone());

    let listed = server
        .get(
            &format!("/api/v1/secrets?repository={}", repo.id),
            Some(&server.write),
        )
        .await;
    listed.expect(StatusCode::OK);
    assert_eq!(listed.json()["secrets"][0]["name"], "DEPLOY_KEY");
    bodies.push(listed.body.clone());
    let globals = server.get("/api/v1/secrets", Some(&server.write)).await;
    assert_eq!(globals.json()["secrets"][0]["name"], "SHARED");
    bodies.push(globals.body.clone());
    for body in &bodies {
        assert!(!body.contains(VALUE), "a secret value leaked: {body}");
    }

    // Sealed for its row: it opens with its own associated data only.
    let stored = server
        .state
        .db
        .find_secret(Some(&repo.id), "DEPLOY_KEY")
        .await
        .expect("read")
        .expect("stored");
    assert!(!String::from_utf8_lossy(&stored.sealed).contains(VALUE));
    let opened = server
        .state
        .keys
        .open(
            &secret_aad(Some(repo.id.as_str()), "DEPLOY_KEY"),
            &stored.sealed,
        )
        .expect("opens");
    assert_eq!(opened, VALUE.as_bytes());
    assert!(
        server
            .state
            .keys
            .open(&secret_aad(None, "DEPLOY_KEY"), &stored.sealed)
            .is_err()
    );

    // Deleting.
    let uri = "/api/v1/secrets/DEPLOY_KEY?repository=owner/app";
    server
        .call(Method::DELETE, uri, Some(&server.write), None)
        .await
        .expect(StatusCode::NO_CONTENT);
    server
        .call(Method::DELETE, uri, Some(&server.write), None)
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn secret_roles_and_values_are_checked() {
    let server = TestServer::new().await;
    server.repository("app").await;
    let put = async |uri: &str, token: Option<&str>, value: &str| {
        server
            .call(Method::PUT, uri, token, Some(json!({"value": value})))
            .await
    };
    // Global secrets need admin; repository secrets write; reading tokens may not even list.
    put("/api/v1/secrets/X_TOKEN", Some(&server.write), VALUE)
        .await
        .expect(StatusCode::FORBIDDEN);
    put(
        "/api/v1/secrets/X_TOKEN?repository=owner/app",
        Some(&server.read),
        VALUE,
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    put("/api/v1/secrets/X_TOKEN?repository=owner/app", None, VALUE)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    server
        .get("/api/v1/secrets", None)
        .await
        .expect(StatusCode::UNAUTHORIZED);
    server
        .get("/api/v1/secrets", Some(&server.read))
        .await
        .expect(StatusCode::FORBIDDEN);
    // Values too short to mask, bad names, unknown repositories.
    let short = put(
        "/api/v1/secrets/PIN?repository=owner/app",
        Some(&server.write),
        "123",
    )
    .await;
    short.expect(StatusCode::BAD_REQUEST);
    assert!(!short.body.contains("\"123\""));
    put(
        "/api/v1/secrets/GITHUB_TOKEN?repository=owner/app",
        Some(&server.write),
        VALUE,
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
    put(
        "/api/v1/secrets/X?repository=owner/nothing",
        Some(&server.write),
        VALUE,
    )
    .await
    .expect(StatusCode::NOT_FOUND);
}
