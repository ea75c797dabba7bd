//! Cancelling: a job whose step ignores SIGINT and SIGTERM (A5), and a run superseded by a
//! newer push in a cancel-in-progress concurrency group.

use super::harness::{
    Agent, GitRepo, Server, StepProcesses, ZERO_SHA, delivery_id, jobs_of, lines_with,
    process_alive, wait_agents, wait_for,
};
use serde_json::json;
use std::time::{Duration, Instant};

/// The agent's cancel grace in these tests: how long a cancelled job may go on before its
/// processes are killed.
const GRACE_SECONDS: u64 = 2;

const STUBBORN: &str = r#"name: stubborn
on: push
jobs:
  stubborn:
    runs-on: ubuntu-latest
    steps:
      - run: |
          trap '' TERM INT
          echo $$ > "$E2E_PIDS/step.pid"
          sleep 1000 &
          echo $! > "$E2E_PIDS/child.pid"
          echo "out started"
          wait
          echo "out never"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_step_ignoring_sigterm_is_killed_after_the_grace_with_nothing_left() {
    let server = Server::start().await;
    let steps = StepProcesses::new();
    let grace = GRACE_SECONDS.to_string();
    let _agent = Agent::start(&server, "only", &steps, &["--cancel-grace", &grace]);
    wait_agents(&server, 1).await;

    let repo = GitRepo::new("stubborn");
    repo.write(".github/workflows/stubborn.yml", STUBBORN);
    let sha = repo.commit("stubborn");
    let repo_id = server.register(&repo, json!({})).await;
    let status = server
        .post_webhook(
            "push",
            &delivery_id("stubborn"),
            &repo.push_payload(ZERO_SHA, &sha),
        )
        .await;
    assert_eq!(status, 202);
    let run = server
        .wait_run_of(&repo_id, &sha, Duration::from_secs(30))
        .await;
    let run_id = run["id"].as_str().expect("run id").to_owned();
    let job_id = wait_for("the step to start", Duration::from_secs(30), || {
        let server = &server;
        let run_id = &run_id;
        let steps = &steps;
        async move {
            let detail = server.run(run_id).await;
            let id = jobs_of(&detail, "stubborn").first()?["id"]
                .as_str()?
                .to_owned();
            let log = server.log(&id).await;
            (log.contains("out started\n") && steps.pid("child").is_some()).then_some(id)
        }
    })
    .await;
    let step_pid = steps.pid("step").expect("the step's pid");
    let child_pid = steps.pid("child").expect("the child's pid");
    assert!(process_alive(step_pid) && process_alive(child_pid));

    let cancelled_at = Instant::now();
    let answer = server
        .post(&format!("/api/v1/jobs/{job_id}/cancel"), json!({}))
        .await;
    assert!(answer.is_object(), "{answer}");

    // The agent hears of it through its held heartbeat, at once.
    wait_for(
        "the agent to hear of the cancel",
        Duration::from_secs(10),
        || {
            let server = &server;
            let job_id = &job_id;
            async move {
                let log = server.log(job_id).await;
                log.contains("Cancellation requested").then_some(())
            }
        },
    )
    .await;
    let heard_after = cancelled_at.elapsed();
    // A second for the heartbeat, the log upload's linger (0.5 s), and slack for a busy host.
    assert!(
        heard_after <= Duration::from_millis(2_500),
        "the agent heard of the cancel {heard_after:?} later"
    );

    // The step ignores SIGINT and SIGTERM: it is killed when the grace ends.
    let job = wait_for("the job to end", Duration::from_secs(30), || {
        let server = &server;
        let job_id = &job_id;
        async move {
            let job = server.job(job_id).await["job"].clone();
            (job["status"] == "completed").then_some(job)
        }
    })
    .await;
    let ended_after = cancelled_at.elapsed();
    assert_eq!(job["conclusion"], "cancelled", "{job:#}");
    assert!(
        ended_after >= Duration::from_secs(GRACE_SECONDS) - Duration::from_millis(500),
        "the step was not given its grace ({ended_after:?})"
    );
    assert!(
        ended_after <= Duration::from_secs(GRACE_SECONDS + 5),
        "the job ended {ended_after:?} after the cancel (grace {GRACE_SECONDS} s)"
    );
    assert!(!process_alive(step_pid), "the step's shell survived");
    assert!(!process_alive(child_pid), "the step's child survived");
    let log = server.log(&job_id).await;
    assert_eq!(lines_with(&log, "out "), ["out started"]);
    let detail = server
        .wait_run_completed(&run_id, Duration::from_secs(15))
        .await;
    assert_eq!(detail["run"]["conclusion"], "cancelled");
}

/// The workflow of the first push waits; the second push's finishes at once.
fn grouped(wait: bool) -> String {
    format!(
        r#"name: grouped
on: push
concurrency:
  group: g
  cancel-in-progress: true
jobs:
  work:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo $$ > "$E2E_PIDS/work-$(date +%s%N).pid"
          echo "out working"
          {}
"#,
        if wait { "sleep 1000" } else { "true" }
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_push_cancels_the_run_in_progress_of_its_concurrency_group() {
    let server = Server::start().await;
    let steps = StepProcesses::new();
    let grace = GRACE_SECONDS.to_string();
    let _agent = Agent::start(&server, "only", &steps, &["--cancel-grace", &grace]);
    wait_agents(&server, 1).await;

    let repo = GitRepo::new("grouped");
    repo.write(".github/workflows/grouped.yml", &grouped(true));
    let first = repo.commit("first");
    let repo_id = server.register(&repo, json!({})).await;
    let first_id = server.push_run(&repo, &repo_id, &first, "g1").await;
    server.wait_log_of(&first_id, "work", "out working\n").await;

    repo.write(".github/workflows/grouped.yml", &grouped(false));
    let second = repo.commit("second");
    let status = server
        .post_webhook(
            "push",
            &delivery_id("g2"),
            &repo.push_payload(&first, &second),
        )
        .await;
    assert_eq!(status, 202);

    let first_detail = server
        .wait_run_completed(&first_id, Duration::from_secs(30))
        .await;
    assert_eq!(
        first_detail["run"]["conclusion"], "cancelled",
        "{first_detail:#}"
    );
    let second_run = server
        .wait_run_of(&repo_id, &second, Duration::from_secs(30))
        .await;
    let second_detail = server
        .wait_run_completed(
            second_run["id"].as_str().expect("id"),
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        second_detail["run"]["conclusion"], "success",
        "{second_detail:#}"
    );
}
