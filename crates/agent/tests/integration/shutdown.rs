//! Stopping jobs: a cancel from the server, a lease taken away, and the agent's own drain and
//! forced stop.

use crate::fake_server::{FakeServer, Script};
use crate::{
    assignment, process_gone, repo, run, slot_leftovers, start_agent, wait_finished,
    wait_step_started,
};
use gantry_protocol::{Conclusion, FailureReason};
use std::path::Path;
use std::time::{Duration, Instant};

fn server_script() -> Script {
    Script {
        poll_hold: Duration::from_millis(200),
        ..Script::default()
    }
}

/// A step that writes its shell's pid to `pid_file`, then sleeps.
fn sleeper(pid_file: &Path) -> String {
    format!(
        "echo $$ > '{}'\necho begin\nsleep 30\necho never",
        pid_file.display()
    )
}

async fn read_pid(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(pid) = std::fs::read_to_string(path)
            && !pid.trim().is_empty()
        {
            return pid.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "the step never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_gone(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !process_gone(pid) {
        assert!(
            Instant::now() < deadline,
            "the step's process {pid} still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_in_a_heartbeat_interrupts_the_step_and_the_job_ends_cancelled() {
    let server = FakeServer::start(server_script()).await;
    let repo = repo();
    let scratch = tempfile::tempdir().expect("tempdir");
    let pid_file = scratch.path().join("pid");
    let mut cleanup = run("Cleanup", "echo cleaning up");
    cleanup.condition = "always()".into();
    server.enqueue(assignment(
        "job_cancel",
        &repo,
        vec![run("Sleep", &sleeper(&pid_file)), cleanup],
    ));
    let agent = start_agent(&server.url(), |_| {});
    wait_step_started(&server, "job_cancel").await;
    let pid = read_pid(&pid_file).await;

    let asked = Instant::now();
    server.update_job("job_cancel", |j| j.cancel = true);
    wait_finished(&server, "job_cancel", Duration::from_secs(10)).await;
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    wait_gone(&pid).await;

    let record = server.job("job_cancel");
    let finish = &record.finishes[0];
    assert_eq!(finish.conclusion, Conclusion::Cancelled);
    assert_eq!(finish.reason, Some(FailureReason::Cancelled));
    assert!(!finish.agent_stop);
    let log = String::from_utf8_lossy(&record.log);
    assert!(log.contains("begin\n"));
    assert!(!log.contains("never"));
    // always() steps still run after a cancel.
    assert!(log.contains("cleaning up\n"), "{log}");
    assert!(log.contains("Cancellation requested"));
    agent.shutdown.drain();
    let (result, _) = agent.join(Duration::from_secs(5)).await;
    result.expect("drained cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_gone_on_heartbeat_stops_the_job_without_finishing_it() {
    let server = FakeServer::start(server_script()).await;
    let repo = repo();
    let scratch = tempfile::tempdir().expect("tempdir");
    let pid_file = scratch.path().join("pid");
    server.enqueue(assignment(
        "job_gone",
        &repo,
        vec![
            run("Mark", "touch marker"),
            run("Sleep", &sleeper(&pid_file)),
        ],
    ));
    let agent = start_agent(&server.url(), |_| {});
    wait_step_started(&server, "job_gone").await;
    let pid = read_pid(&pid_file).await;

    server.update_job("job_gone", |j| j.heartbeat_gone = true);
    wait_gone(&pid).await;
    let work = agent.work_dir();
    let deadline = Instant::now() + Duration::from_secs(5);
    while work.join("slot_0/workspace/marker").exists() || !slot_leftovers(&work).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the job's slot is not emptied: {:?}",
            slot_leftovers(&work)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Draining returns at once: no job is left running.
    agent.shutdown.drain();
    let (result, _) = agent.join(Duration::from_secs(3)).await;
    result.expect("drained cleanly");
    assert!(server.calls("finish").is_empty());
    assert!(server.job("job_gone").finishes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_finishes_the_running_job_heartbeating_and_polls_no_more() {
    let server = FakeServer::start(server_script()).await;
    let repo = repo();
    server.enqueue(assignment(
        "job_drain",
        &repo,
        vec![run("Work", "echo begin; sleep 1.5; echo end")],
    ));
    // Two slots: the agent is polling while the job runs.
    let agent = start_agent(&server.url(), |c| c.concurrency = 2);
    wait_step_started(&server, "job_drain").await;
    let drained_at = Instant::now();
    agent.shutdown.drain();
    let (result, _) = agent.join(Duration::from_secs(10)).await;
    result.expect("drained cleanly");

    let record = server.job("job_drain");
    assert_eq!(record.finishes.len(), 1);
    assert_eq!(record.finishes[0].conclusion, Conclusion::Success);
    assert!(String::from_utf8_lossy(&record.log).ends_with("begin\nend\n"));
    assert!(
        record.draining_heartbeats >= 3,
        "{}",
        record.draining_heartbeats
    );
    let late_polls = server
        .calls("poll_start")
        .iter()
        .filter(|c| c.at > drained_at)
        .count();
    assert_eq!(late_polls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_stop_cancels_the_job_and_reports_it_stopped_by_the_agent() {
    let server = FakeServer::start(server_script()).await;
    let repo = repo();
    let scratch = tempfile::tempdir().expect("tempdir");
    let pid_file = scratch.path().join("pid");
    server.enqueue(assignment(
        "job_quit",
        &repo,
        vec![run("Sleep", &sleeper(&pid_file))],
    ));
    let agent = start_agent(&server.url(), |_| {});
    wait_step_started(&server, "job_quit").await;
    let pid = read_pid(&pid_file).await;

    let stopped = Instant::now();
    agent.shutdown.cancel();
    let (result, _) = agent.join(Duration::from_secs(10)).await;
    result.expect("stopped cleanly");
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopped.elapsed()
    );
    wait_gone(&pid).await;

    let record = server.job("job_quit");
    assert_eq!(record.finishes.len(), 1);
    let finish = &record.finishes[0];
    assert_eq!(finish.conclusion, Conclusion::Cancelled);
    assert_eq!(finish.reason, Some(FailureReason::Cancelled));
    assert!(finish.agent_stop);
    assert!(String::from_utf8_lossy(&record.log).contains("The agent is stopping"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_stop_with_the_server_down_still_exits() {
    let server = FakeServer::start(server_script()).await;
    let proxy = crate::proxy::Proxy::start(server.addr).await;
    let repo = repo();
    let scratch = tempfile::tempdir().expect("tempdir");
    let pid_file = scratch.path().join("pid");
    server.enqueue(assignment(
        "job_down",
        &repo,
        vec![run("Sleep", &sleeper(&pid_file))],
    ));
    let agent = start_agent(&proxy.url(), |c| {
        c.stop_report_timeout = Duration::from_millis(500);
    });
    wait_step_started(&server, "job_down").await;
    let pid = read_pid(&pid_file).await;
    proxy.set_down(true);
    agent.shutdown.cancel();
    let (result, _) = agent.join(Duration::from_secs(8)).await;
    result.expect("stopped");
    wait_gone(&pid).await;
    assert!(server.job("job_down").finishes.is_empty());
}
