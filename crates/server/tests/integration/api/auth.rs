//! Roles, anonymous reading, unknown tokens, the first admin token, token management.

use super::TestServer;
use axum::http::{Method, StatusCode};
use gantry_server::api::ensure_initial_admin_token;
use serde_json::json;

#[tokio::test]
async fn anonymous_reading_follows_the_configuration() {
    let open = TestServer::new().await;
    open.get("/api/v1/runs", None).await.expect(StatusCode::OK);
    open.get("/api/v1/agents", None)
        .await
        .expect(StatusCode::OK);

    let closed = TestServer::with(|c| c.anonymous_read = false).await;
    let answer = closed.get("/api/v1/runs", None).await;
    answer.expect(StatusCode::UNAUTHORIZED);
    assert_eq!(answer.json()["error"], "unauthorized");
    closed
        .get("/api/v1/runs", Some(&closed.read))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_token_is_refused_even_where_none_is_needed() {
    let server = TestServer::new().await;
    server
        .get("/api/v1/runs", Some("gantry_api_not-a-token"))
        .await
        .expect(StatusCode::UNAUTHORIZED);
    let basic = axum::http::Request::builder()
        .uri("/api/v1/runs")
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(axum::body::Body::empty())
        .expect("request");
    server.send(basic).await.expect(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn each_role_may_do_what_the_matrix_says() {
    let server = TestServer::new().await;
    let repo = server.repository("roles").await;
    let run = server
        .planned_run(
            &repo,
            "main",
            "on: push\njobs:\n  a:\n    runs-on: linux\n    steps: [run: a]\n",
        )
        .await;
    let cancel = format!("/api/v1/runs/{}/cancel", run.id);
    let create_repo = json!({"clone_url": "https://github.com/acme/roles.git"});

    // Acting needs a token.
    server
        .post(&cancel, None, json!({}))
        .await
        .expect(StatusCode::UNAUTHORIZED);
    // read < write: 403 names the role needed.
    let refused = server.post(&cancel, Some(&server.read), json!({})).await;
    refused.expect(StatusCode::FORBIDDEN);
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("write")
    );
    // write < admin.
    server
        .post(
            "/api/v1/repositories",
            Some(&server.write),
            create_repo.clone(),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    server
        .get("/api/v1/tokens", Some(&server.write))
        .await
        .expect(StatusCode::FORBIDDEN);
    server
        .post("/api/v1/agent-tokens", Some(&server.write), json!({}))
        .await
        .expect(StatusCode::FORBIDDEN);
    // The right roles get through.
    server
        .post(&cancel, Some(&server.write), json!({}))
        .await
        .expect(StatusCode::ACCEPTED);
    server
        .post("/api/v1/repositories", Some(&server.admin), create_repo)
        .await
        .expect(StatusCode::CREATED);
}

#[tokio::test]
async fn the_first_admin_token_is_created_once_and_works() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = gantry_server::config::ServerConfig::new(dir.path());
    let (state, _) = gantry_server::app::AppState::open(config)
        .await
        .expect("state");
    let token = ensure_initial_admin_token(&state.db)
        .await
        .expect("store")
        .expect("a token on first start");
    assert!(token.starts_with("gantry_api_"));
    assert_eq!(
        ensure_initial_admin_token(&state.db).await.expect("store"),
        None,
        "not again once a token exists"
    );
    let answer = tower::ServiceExt::oneshot(
        gantry_server::app::router(state.clone()),
        axum::http::Request::builder()
            .uri("/api/v1/tokens")
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .expect("request"),
    )
    .await
    .expect("answer");
    assert_eq!(answer.status(), StatusCode::OK);
}

#[tokio::test]
async fn api_tokens_are_shown_once_and_stop_working_when_deleted() {
    let server = TestServer::new().await;
    let created = server
        .post(
            "/api/v1/tokens",
            Some(&server.admin),
            json!({"name": "ci-bot", "role": "write"}),
        )
        .await;
    created.expect(StatusCode::CREATED);
    let body = created.json();
    let token = body["token"].as_str().expect("token").to_owned();
    let id = body["id"].as_str().expect("id").to_owned();
    assert_eq!(body["role"], "write");

    let list = server.get("/api/v1/tokens", Some(&server.admin)).await;
    list.expect(StatusCode::OK);
    assert!(list.body.contains("ci-bot"));
    assert!(!list.body.contains(&token), "the list never shows a token");

    // It works with its role...
    let repo = server.repository("tok").await;
    let run = server
        .planned_run(
            &repo,
            "main",
            "on: push\njobs:\n  a:\n    runs-on: linux\n    steps: [run: a]\n",
        )
        .await;
    server
        .post(
            &format!("/api/v1/runs/{}/cancel", run.id),
            Some(&token),
            json!({}),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    // ...until deleted.
    server
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&server.admin),
            None,
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    server
        .get("/api/v1/runs", Some(&token))
        .await
        .expect(StatusCode::UNAUTHORIZED);
    server
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            Some(&server.admin),
            None,
        )
        .await
        .expect(StatusCode::NOT_FOUND);

    server
        .post(
            "/api/v1/tokens",
            Some(&server.admin),
            json!({"name": "x", "role": "owner"}),
        )
        .await
        .expect(StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn registration_tokens_register_agents_until_revoked() {
    let server = TestServer::new().await;
    let created = server
        .post(
            "/api/v1/agent-tokens",
            Some(&server.admin),
            json!({"description": "rack 4", "expires_in_hours": 2}),
        )
        .await;
    created.expect(StatusCode::CREATED);
    let body = created.json();
    let token = body["token"].as_str().expect("token").to_owned();
    let id = body["id"].as_str().expect("id").to_owned();
    assert!(token.starts_with("gantry_reg_"));
    let expires = body["expires_ms"].as_i64().expect("expiry");
    assert!(expires > super::now() + 3_500_000 && expires < super::now() + 7_300_000);

    let register = |token: String| json!({"token": token, "name": "a1", "labels": ["linux"], "version": "test"});
    server
        .post("/api/agent/register", None, register(token.clone()))
        .await
        .expect(StatusCode::OK);
    let list = server
        .get("/api/v1/agent-tokens", Some(&server.admin))
        .await;
    assert!(list.body.contains("rack 4") && !list.body.contains(&token));

    server
        .post(
            &format!("/api/v1/agent-tokens/{id}/revoke"),
            Some(&server.admin),
            json!({}),
        )
        .await
        .expect(StatusCode::NO_CONTENT);
    server
        .post("/api/agent/register", None, register(token))
        .await
        .expect(StatusCode::UNAUTHORIZED);
    server
        .post(
            "/api/v1/agent-tokens/reg_nope/revoke",
            Some(&server.admin),
            json!({}),
        )
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::with(|c| c.anonymous_read = false).await;
    server.get("/healthz", None).await.expect(StatusCode::OK);
    server.get("/readyz", None).await.expect(StatusCode::OK);
    server.state.db.close().await;
    let answer = server.get("/readyz", None).await;
    answer.expect(StatusCode::SERVICE_UNAVAILABLE);
    server.get("/healthz", None).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn an_agent_credential_writes_only_to_its_own_jobs_and_reaches_no_user_api() {
    let server = TestServer::with(|c| {
        c.poll_hold = std::time::Duration::from_millis(50);
        // A heartbeat is held for most of an interval.
        c.heartbeat = std::time::Duration::from_millis(100);
    })
    .await;
    let token = server
        .post("/api/v1/agent-tokens", Some(&server.admin), json!({}))
        .await
        .json()["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let mut credentials = Vec::new();
    for name in ["owner", "thief"] {
        let answer = server
            .post(
                "/api/agent/register",
                None,
                json!({"token": token, "name": name, "labels": ["linux"], "version": "test"}),
            )
            .await;
        answer.expect(StatusCode::OK);
        credentials.push(
            answer.json()["credential"]
                .as_str()
                .expect("credential")
                .to_owned(),
        );
    }
    let (owner, thief) = (&credentials[0], &credentials[1]);
    let repo = server.repository("widgets").await;
    server
        .planned_run(
            &repo,
            "main",
            "on: push\njobs:\n  build:\n    runs-on: linux\n    steps:\n      - run: \"true\"\n",
        )
        .await;
    let assignment = server
        .post("/api/agent/poll", Some(owner), json!({"running": 0}))
        .await;
    assignment.expect(StatusCode::OK);
    let assignment = assignment.json();
    let job = assignment["job_id"].as_str().expect("job").to_owned();
    let lease = assignment["lease_id"].as_str().expect("lease").to_owned();

    // The thief has the owner's job id and lease, but its own credential: every write is 403.
    let writes = [
        (
            format!("/api/agent/jobs/{job}/heartbeat"),
            json!({"lease_id": lease}),
        ),
        (
            format!("/api/agent/jobs/{job}/events"),
            json!({"lease_id": lease, "events": []}),
        ),
        (
            format!("/api/agent/jobs/{job}/finish"),
            json!({"lease_id": lease, "conclusion": "success", "log_size": 0}),
        ),
    ];
    for (uri, body) in &writes {
        server
            .post(uri, Some(thief), body.clone())
            .await
            .expect(StatusCode::FORBIDDEN);
    }
    server
        .call(
            Method::POST,
            &format!("/api/agent/jobs/{job}/logs?lease={lease}&offset=0"),
            Some(thief),
            None,
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    let stored = server
        .state
        .db
        .get_job(&gantry_server::store::JobId::from(job.clone()))
        .await
        .expect("job");
    assert_eq!(stored.status, gantry_server::store::JobStatus::Running);

    // The owner's own writes go through.
    server
        .post(&writes[0].0, Some(owner), writes[0].1.clone())
        .await
        .expect(StatusCode::OK);
    server
        .post(&writes[2].0, Some(owner), writes[2].1.clone())
        .await
        .expect(StatusCode::OK);

    // An agent credential is not an API token.
    server
        .get("/api/v1/runs", Some(thief))
        .await
        .expect(StatusCode::UNAUTHORIZED);
}
