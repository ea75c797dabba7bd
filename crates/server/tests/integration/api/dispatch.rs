//! Running a workflow by hand: inputs typed and checked by the planner, refusals as 400s.

use super::TestServer;
use axum::http::StatusCode;
use gantry_server::forge::Forge;
use gantry_server::store::NewRepository;
use serde_json::json;
use std::path::Path;
use std::process::Command;

const DEPLOY: &str = "\
name: Deploy
on:
  workflow_dispatch:
    inputs:
      environment:
        type: choice
        options: [staging, production]
        required: true
      dry-run:
        type: boolean
        default: true
jobs:
  deploy:
    runs-on: linux
    steps:
      - run: echo deploying to ${{ inputs.environment }} dry=${{ inputs.dry-run }}
";

const CI: &str = "on: push\njobs:\n  build:\n    runs-on: linux\n    steps: [run: make]\n";

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// A git repository with the two workflows on `main` and a tag `v1`, registered.
async fn repository(server: &TestServer) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("acme/app");
    std::fs::create_dir_all(root.join(".github/workflows")).expect("mkdir");
    std::fs::write(root.join(".github/workflows/deploy.yml"), DEPLOY).expect("write");
    std::fs::write(root.join(".github/workflows/ci.yml"), CI).expect("write");
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "workflows"]);
    git(&root, &["tag", "v1"]);
    let repo = server
        .state
        .db
        .insert_repository(
            &NewRepository {
                name: "acme/app".into(),
                clone_url: root.display().to_string(),
                forge: Forge::GitHub,
                webhook_secret: None,
                allow_unsigned: true,
                status_url: None,
                status_token: None,
            },
            super::now(),
        )
        .await
        .expect("repository");
    (dir, format!("/api/v1/repositories/{}/dispatch", repo.id))
}

#[tokio::test]
async fn a_dispatch_starts_a_run_with_typed_inputs() {
    let server = TestServer::new().await;
    let (_dir, uri) = repository(&server).await;
    let answer = server
        .post(
            &uri,
            Some(&server.write),
            json!({"workflow": "deploy.yml", "ref": "main", "inputs": {"environment": "staging", "dry-run": false}}),
        )
        .await;
    answer.expect(StatusCode::CREATED);
    let run = &answer.json()["runs"][0];
    assert_eq!(run["event"], "workflow_dispatch");
    assert_eq!(run["workflow_name"], "Deploy");
    assert_eq!(run["git_ref"], "refs/heads/main");
    assert_eq!(run["status"], "queued");
    let detail = server
        .get(
            &format!("/api/v1/runs/{}", run["id"].as_str().expect("id")),
            None,
        )
        .await
        .json();
    let job = &detail["jobs"][0];
    let stored = server
        .state
        .db
        .get_job(&gantry_server::store::JobId::from(
            job["id"].as_str().expect("id"),
        ))
        .await
        .expect("job");
    let spec: serde_json::Value = serde_json::from_str(&stored.spec).expect("spec");
    assert_eq!(spec["inputs"]["environment"], "staging");
    assert_eq!(spec["inputs"]["dry-run"], false);

    // By name, at a tag, with the default for dry-run.
    let answer = server
        .post(
            &uri,
            Some(&server.write),
            json!({"workflow": "Deploy", "ref": "v1", "inputs": {"environment": "production"}}),
        )
        .await;
    answer.expect(StatusCode::CREATED);
    assert_eq!(answer.json()["runs"][0]["git_ref"], "refs/tags/v1");
}

#[tokio::test]
async fn bad_dispatches_say_what_is_wrong() {
    let server = TestServer::new().await;
    let (_dir, uri) = repository(&server).await;
    let check = async |body: serde_json::Value, status: StatusCode, says: &str| {
        let answer = server.post(&uri, Some(&server.write), body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        let message = answer.json()["message"].as_str().unwrap_or("").to_owned();
        assert!(message.contains(says), "{body}: {message}");
    };
    check(
        json!({"workflow": "deploy.yml", "inputs": {"environment": "moon"}}),
        StatusCode::BAD_REQUEST,
        "moon",
    )
    .await;
    check(
        json!({"workflow": "deploy.yml", "inputs": {}}),
        StatusCode::BAD_REQUEST,
        "environment",
    )
    .await;
    check(
        json!({"workflow": "deploy.yml", "inputs": {"environment": "staging", "dry-run": "maybe"}}),
        StatusCode::BAD_REQUEST,
        "dry-run",
    )
    .await;
    check(
        json!({"workflow": "ci.yml"}),
        StatusCode::BAD_REQUEST,
        "workflow_dispatch",
    )
    .await;
    check(
        json!({"workflow": "release.yml"}),
        StatusCode::NOT_FOUND,
        "deploy.yml",
    )
    .await;
    check(
        json!({"workflow": "deploy.yml", "ref": "nope", "inputs": {"environment": "staging"}}),
        StatusCode::BAD_REQUEST,
        "nope",
    )
    .await;
    check(
        json!({"workflow": "deploy.yml", "ref": "--upload-pack=x"}),
        StatusCode::BAD_REQUEST,
        "not a valid",
    )
    .await;
    // Nothing was created by the refusals.
    let runs = server.get("/api/v1/runs", None).await.json();
    assert_eq!(runs["runs"], json!([]));
    // Dispatching needs write.
    server
        .post(&uri, Some(&server.read), json!({"workflow": "deploy.yml"}))
        .await
        .expect(StatusCode::FORBIDDEN);
}
