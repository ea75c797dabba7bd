//! Secrets (K1, K3): a job that prints its secret in several disguises leaves no trace of it in
//! the stored log, its events, the database or any API answer; a pull request from a fork gets
//! no secrets at all.

use super::harness::{Agent, GitRepo, Server, StepProcesses, delivery_id, jobs_of, wait_agents};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use std::time::Duration;

const SECRET: &str = "Sup3r-s3cret-Value-7f2c";

const LEAKY: &str = r#"name: leaky
on: push
jobs:
  leak:
    runs-on: ubuntu-latest
    env:
      TOKEN: ${{ secrets.TOKEN }}
    steps:
      - name: print it
        run: |
          echo "out plain ${{ secrets.TOKEN }}"
          echo "out env $TOKEN"
          echo "out base64 $(printf '%s' "$TOKEN" | base64 -w0)"
          echo "out basic $(printf 'user:%s' "$TOKEN" | base64 -w0)"
          printf 'out split %s' "${TOKEN:0:9}"
          sleep 0.8
          printf '%s end\n' "${TOKEN:9}"
          echo "::warning title=$TOKEN::warned about $TOKEN"
          echo "summary $TOKEN" >> "$GITHUB_STEP_SUMMARY"
          echo "value=$TOKEN" >> "$GITHUB_OUTPUT"
      - name: fail with it
        run: |
          echo "::error::failed with $TOKEN"
          exit 1
"#;

/// Everything the API says about a run and its jobs, and the live log stream of each job.
async fn api_text(server: &Server, repo_id: &str, run_id: &str) -> String {
    let mut text = String::new();
    text.push_str(&server.get("/api/v1/runs").await.to_string());
    text.push_str(&server.run(run_id).await.to_string());
    text.push_str(
        &server
            .get(&format!("/api/v1/repositories/{repo_id}"))
            .await
            .to_string(),
    );
    text.push_str(
        &server
            .get(&format!("/api/v1/secrets?repository={repo_id}"))
            .await
            .to_string(),
    );
    text.push_str(&server.get("/api/v1/queue").await.to_string());
    let detail = server.run(run_id).await;
    for job in detail["jobs"].as_array().cloned().unwrap_or_default() {
        let id = job["id"].as_str().expect("job id");
        text.push_str(&server.job(id).await.to_string());
        text.push_str(&server.log(id).await);
        let live = server
            .http()
            .get(format!(
                "{}/api/v1/jobs/{id}/logs/live?events=true",
                server.url
            ))
            .bearer_auth(&server.admin_token)
            .timeout(Duration::from_secs(20))
            .send()
            .await
            .expect("live log");
        text.push_str(&live.text().await.expect("live log of a finished job ends"));
    }
    text
}

/// Every file of the server's data directory (the database and its WAL included), as text.
fn data_dir_text(server: &Server) -> String {
    fn walk(dir: &std::path::Path, out: &mut Vec<u8>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.extend(bytes);
            }
        }
    }
    let mut bytes = Vec::new();
    walk(server.data_dir(), &mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_printed_secret_is_in_no_log_event_database_row_or_api_answer() {
    let mut server = Server::start().await;
    let steps = StepProcesses::new();
    let _agent = Agent::start(&server, "only", &steps, &[]);
    wait_agents(&server, 1).await;

    let repo = GitRepo::new("leaky");
    repo.write(".github/workflows/leaky.yml", LEAKY);
    let sha = repo.commit("leaky");
    let repo_id = server.register(&repo, json!({})).await;
    server.set_secret(&repo_id, "TOKEN", SECRET).await;
    let run_id = server.push_run(&repo, &repo_id, &sha, "leaky").await;
    let detail = server
        .wait_run_completed(&run_id, Duration::from_secs(60))
        .await;
    assert_eq!(detail["run"]["conclusion"], "failure", "{detail:#}");
    let job = jobs_of(&detail, "leak")[0].clone();
    let log = server.log(job["id"].as_str().expect("id")).await;

    // The step did print every form, masked.
    for line in ["out plain ***", "out env ***", "out split *** end"] {
        assert!(
            log.lines().any(|l| l == line),
            "no {line:?} in the log:\n{log}"
        );
    }
    assert!(log.lines().any(|l| l.starts_with("out base64 ")));
    assert!(log.lines().any(|l| l.starts_with("out basic ")));

    let encoded = BASE64.encode(SECRET);
    let basic = BASE64.encode(format!("user:{SECRET}"));
    let forms = [SECRET, encoded.as_str(), basic.as_str()];
    let everything = api_text(&server, &repo_id, &run_id).await;
    for form in forms {
        assert!(!log.contains(form), "the stored log holds {form:?}");
        assert!(!everything.contains(form), "an API answer holds {form:?}");
    }
    // The annotations reached the API (masked), so the check above saw them.
    assert!(
        everything.contains("warned about ***"),
        "no annotation in the API"
    );
    assert!(
        everything.contains("failed with ***"),
        "no error annotation in the API"
    );

    // Nor is it anywhere in the server's files: database, WAL, mirrors.
    server.kill();
    let files = data_dir_text(&server);
    assert!(
        files.contains("warned about ***"),
        "the events are not in the data dir"
    );
    for form in forms {
        assert!(!files.contains(form), "the data directory holds {form:?}");
    }
    assert!(
        !server.stderr().contains(SECRET),
        "the server logged the secret"
    );
}

const FORKED: &str = r#"name: forked
on: pull_request
jobs:
  show:
    runs-on: ubuntu-latest
    steps:
      - run: echo "out [${{ secrets.TOKEN }}]"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_from_a_fork_runs_without_secrets() {
    let server = Server::start().await;
    let steps = StepProcesses::new();
    let _agent = Agent::start(&server, "only", &steps, &[]);
    wait_agents(&server, 1).await;

    let repo = GitRepo::new("base");
    repo.write(".github/workflows/forked.yml", FORKED);
    repo.commit("base");
    let repo_id = server.register(&repo, json!({})).await;
    server.set_secret(&repo_id, "TOKEN", SECRET).await;

    let fork = GitRepo::fork(&repo, "stranger");
    fork.git(&["checkout", "-q", "-b", "feature"]);
    fork.write("README", "a change\n");
    let head = fork.commit("a change");
    let status = server
        .post_webhook(
            "pull_request",
            &delivery_id("fork"),
            &repo.pull_request_payload(&fork, "feature", &head),
        )
        .await;
    assert_eq!(status, 202);
    let run = server
        .wait_run_of(&repo_id, &head, Duration::from_secs(30))
        .await;
    assert_eq!(run["trusted"], false, "{run:#}");
    let detail = server
        .wait_run_completed(run["id"].as_str().expect("id"), Duration::from_secs(60))
        .await;
    assert_eq!(detail["run"]["conclusion"], "success", "{detail:#}");
    let job = jobs_of(&detail, "show")[0].clone();
    let log = server.log(job["id"].as_str().expect("id")).await;
    assert!(
        log.lines().any(|l| l == "out []"),
        "the fork's job saw a secret:\n{log}"
    );
}
