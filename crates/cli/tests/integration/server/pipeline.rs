//! A push runs a whole workflow: a needs graph over a matrix, every job's log as the steps
//! printed it, and commit statuses at the forge in order.

use super::harness::{
    Agent, GitRepo, Server, StepProcesses, jobs_of, lines_with, wait_agents, wait_for,
};
use serde_json::{Value, json};
use std::time::Duration;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Lines a `build` leg prints: enough to need several log chunks.
const BUILD_LINES: usize = 20_000;

const GRAPH: &str = r#"name: graph
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        part: [a, b]
    steps:
      - name: print
        run: for i in $(seq 1 20000); do echo "out build-${{ matrix.part }} $i"; done
      - run: echo "out build-${{ matrix.part }} done"
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: |
          printf 'out test partial-'
          sleep 0.7
          printf 'line\n'
          echo "out test done"
  deploy:
    needs: [build, test]
    runs-on: ubuntu-latest
    steps:
      - run: echo "out deploy done"
"#;

/// What each step of a job printed, by job key and leg.
fn printed_by_steps(key: &str, leg: u64) -> Vec<String> {
    let lines = |lines: Vec<String>| lines.iter().map(|l| format!("{l}\n")).collect::<String>();
    match (key, leg) {
        ("build", leg) => {
            let part = if leg == 0 { "a" } else { "b" };
            vec![
                lines(
                    (1..=BUILD_LINES)
                        .map(|i| format!("out build-{part} {i}"))
                        .collect(),
                ),
                lines(vec![format!("out build-{part} done")]),
            ]
        }
        ("test", 0) => vec![lines(vec![
            "out test partial-line".into(),
            "out test done".into(),
        ])],
        ("deploy", 0) => vec![lines(vec!["out deploy done".into()])],
        other => panic!("unexpected job {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_matrix_graph_succeeds_with_complete_logs_and_statuses_in_order() {
    let forge = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/repos/owner/graph/statuses/[0-9a-f]{40}$"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": 1})))
        .mount(&forge)
        .await;

    let server = Server::start().await;
    let steps = StepProcesses::new();
    let _agents = [
        Agent::start(&server, "one", &steps, &[]),
        Agent::start(&server, "two", &steps, &[]),
    ];
    wait_agents(&server, 2).await;

    let repo = GitRepo::new("graph");
    repo.write(".github/workflows/graph.yml", GRAPH);
    let sha = repo.commit("the graph");
    let repo_id = server
        .register(
            &repo,
            json!({"status_url": forge.uri(), "status_token": "forge-token"}),
        )
        .await;
    let run_id = server.push_run(&repo, &repo_id, &sha, "graph").await;
    let detail = server
        .wait_run_completed(&run_id, Duration::from_secs(90))
        .await;
    assert_eq!(detail["run"]["conclusion"], "success", "{detail:#}");

    // Every job ran once and succeeded: two build legs, then test, then deploy.
    let jobs = detail["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 4, "{detail:#}");
    for job in jobs {
        assert_eq!(job["conclusion"], "success", "{job:#}");
        assert_eq!(job["attempt"], 1, "{job:#}");
    }
    let finished = |key: &str| -> Vec<i64> {
        jobs_of(&detail, key)
            .iter()
            .map(|j| j["finished_ms"].as_i64().expect("finished"))
            .collect()
    };
    let started = |key: &str| {
        jobs_of(&detail, key)[0]["started_ms"]
            .as_i64()
            .expect("started")
    };
    let build_end = finished("build").into_iter().max().expect("build legs");
    assert!(
        started("test") >= build_end,
        "test started before build ended"
    );
    assert!(
        started("deploy") >= finished("test")[0],
        "deploy started before test ended"
    );

    // Each step's part of its job's log is exactly what the step printed; nothing else in the
    // log looks like step output (no line lost, repeated or moved); the size is the job's.
    for job in jobs {
        let id = job["id"].as_str().expect("job id");
        let name = job["name"].as_str().unwrap_or("?");
        let log = server.log(id).await;
        assert_eq!(
            job["log_size"].as_u64(),
            Some(log.len() as u64),
            "log size of {name}"
        );
        let key = job["key"].as_str().expect("key");
        let leg = job["leg"].as_u64().expect("leg");
        let expected = printed_by_steps(key, leg);
        let steps = server.job(id).await["steps"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(steps.len(), expected.len(), "steps of {name}: {steps:#?}");
        for (step, printed) in steps.iter().zip(&expected) {
            let start = step["log_start"].as_u64().expect("log_start") as usize;
            let end = step["log_end"].as_u64().expect("log_end") as usize;
            assert!(
                &log[start..end] == printed.as_str(),
                "step {} of {name} logged something else than it printed",
                step["number"]
            );
        }
        let all: String = expected.concat();
        assert_eq!(
            lines_with(&log, "out "),
            all.lines().collect::<Vec<_>>(),
            "the log of {name}"
        );
    }

    // The forge got pending first and success last, for the run's commit, nothing after.
    let statuses = wait_for("the final commit status", Duration::from_secs(30), || {
        let forge = &forge;
        async move {
            let requests = forge.received_requests().await.unwrap_or_default();
            let states: Vec<(String, Value)> = requests
                .iter()
                .map(|r| {
                    let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                    (r.url.path().to_owned(), body)
                })
                .collect();
            states
                .iter()
                .any(|(_, b)| b["state"] == "success")
                .then_some(states)
        }
    })
    .await;
    for (path, body) in &statuses {
        assert!(path.ends_with(&sha), "status for another commit: {path}");
        assert_eq!(body["context"], "gantry/graph", "{body}");
    }
    let states: Vec<&str> = statuses
        .iter()
        .map(|(_, b)| b["state"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(states.first(), Some(&"pending"), "{states:?}");
    assert_eq!(states.last(), Some(&"success"), "{states:?}");
    assert!(
        states[..states.len() - 1].iter().all(|s| *s == "pending"),
        "statuses out of order: {states:?}"
    );
}
