//! A real `gantry agent` stopped with real signals (A4): SIGTERM drains (the running job
//! finishes and is reported, then the agent exits 0), SIGQUIT cancels the running job, reports
//! it, exits, and the server tries the job again on another agent.

use super::harness::{Agent, Server, StepProcesses, jobs_of, process_alive, wait_agents, wait_for};
use serde_json::json;
use std::time::Duration;

/// Prints `begin`, works for a while, prints `end`.
const DRAIN: &str = r#"name: drain
on: push
jobs:
  work:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo $$ > "$E2E_PIDS/work.pid"
          echo begin
          sleep 5
          echo end
"#;

/// The first attempt prints `begin` and sleeps until stopped; a later one prints `again`.
const QUIT: &str = r#"name: quit
on: push
jobs:
  work:
    runs-on: ubuntu-latest
    steps:
      - run: |
          if [ ! -e "$E2E_PIDS/first-attempt" ]; then
            touch "$E2E_PIDS/first-attempt"
            echo $$ > "$E2E_PIDS/first.pid"
            echo begin
            sleep 1000
          fi
          echo again
"#;

/// Pushes `workflow` and waits until the log of its only job holds `begin`; the run id.
async fn push_and_wait_for_begin(server: &Server, name: &str, workflow: &str) -> String {
    let run_id = server.run_workflow(name, workflow).await;
    server.wait_log_of(&run_id, "work", "begin\n").await;
    run_id
}

/// Attempt 1 of the run's job ended as stopped by its agent.
async fn assert_first_attempt_cancelled(server: &Server, run_id: &str) {
    let detail = server.run(run_id).await;
    let first = jobs_of(&detail, "work")
        .into_iter()
        .find(|j| j["attempt"] == 1)
        .expect("attempt 1");
    assert_eq!(first["status"], "completed", "{first:#}");
    assert_eq!(first["reason"], json!({"kind": "cancelled"}), "{first:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_running_job_finish_and_report_then_the_agent_exits_cleanly() {
    let server = Server::start().await;
    let steps = StepProcesses::new();
    let mut agent = Agent::start(&server, "drainer", &steps, &[]);
    wait_agents(&server, 1).await;
    let run_id = push_and_wait_for_begin(&server, "drain", DRAIN).await;

    agent.signal("TERM");
    // The next heartbeat (every second here) tells the server, which shows the agent draining.
    wait_for(
        "the agent to show as draining",
        Duration::from_secs(5),
        || async {
            let agents = server.get("/api/v1/agents").await;
            let list = agents["agents"].as_array().cloned().unwrap_or_default();
            list.iter()
                .any(|a| a["name"] == "drainer" && a["status"] == "draining")
                .then_some(())
        },
    )
    .await;
    let code = agent.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(code, Some(0), "a drained agent exits 0");
    // It signed off: the server shows it offline at once, not after its silence.
    let agents = server.get("/api/v1/agents").await;
    let drainer = agents["agents"]
        .as_array()
        .and_then(|list| list.iter().find(|a| a["name"] == "drainer"))
        .cloned()
        .expect("the agent is listed");
    assert_eq!(drainer["status"], "offline", "{drainer:#}");

    // The job was not interrupted: it printed its last line and succeeded, and it was reported
    // before the agent exited.
    let detail = server
        .wait_run_completed(&run_id, Duration::from_secs(5))
        .await;
    assert_eq!(detail["run"]["conclusion"], "success", "{detail:#}");
    let jobs = jobs_of(&detail, "work");
    assert_eq!(jobs.len(), 1, "no second attempt: {detail:#}");
    let log = server.log(jobs[0]["id"].as_str().expect("job id")).await;
    assert!(log.contains("begin\n") && log.contains("end\n"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigquit_cancels_the_running_job_and_the_server_runs_it_again_elsewhere() {
    let server = Server::start().await;
    let steps = StepProcesses::new();
    let mut quitter = Agent::start(&server, "quitter", &steps, &[]);
    wait_agents(&server, 1).await;
    let run_id = push_and_wait_for_begin(&server, "quit", QUIT).await;
    let step_pid = steps.pid("first").expect("the step wrote its pid");

    quitter.signal("QUIT");
    quitter.wait_exit(Duration::from_secs(20)).await;
    assert!(!process_alive(step_pid), "the step outlived its agent");

    // Attempt 1 was reported as stopped by its agent, and attempt 2 waits for an agent.
    assert_first_attempt_cancelled(&server, &run_id).await;
    let detail = server.run(&run_id).await;
    assert_eq!(jobs_of(&detail, "work").len(), 2, "{detail:#}");

    // Another agent takes attempt 2, and the run succeeds.
    let _other = Agent::start(&server, "other", &steps, &[]);
    let detail = server
        .wait_run_completed(&run_id, Duration::from_secs(30))
        .await;
    assert_eq!(detail["run"]["conclusion"], "success", "{detail:#}");
    let second = jobs_of(&detail, "work")
        .into_iter()
        .find(|j| j["attempt"] == 2)
        .expect("attempt 2");
    assert_eq!(second["agent_name"], "other");
    let log = server.log(second["id"].as_str().expect("job id")).await;
    assert!(log.contains("again\n"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_stops_a_draining_agent_at_once() {
    let server = Server::start().await;
    let steps = StepProcesses::new();
    let mut agent = Agent::start(&server, "impatient", &steps, &[]);
    wait_agents(&server, 1).await;
    let run_id = push_and_wait_for_begin(&server, "twice", QUIT).await;
    let step_pid = steps.pid("first").expect("the step wrote its pid");

    agent.signal("TERM");
    // Draining: the step (sleep 1000) keeps running.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(process_alive(step_pid), "the first SIGTERM only drains");
    agent.signal("TERM");
    agent.wait_exit(Duration::from_secs(20)).await;
    assert!(!process_alive(step_pid), "the step outlived its agent");
    assert_first_attempt_cancelled(&server, &run_id).await;
}
