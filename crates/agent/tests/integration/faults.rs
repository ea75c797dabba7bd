//! Network and server faults while a job streams its log: nothing lost, nothing duplicated.

use crate::fake_server::{FakeServer, Script};
use crate::proxy::Proxy;
use crate::reporting::{COUNT_SCRIPT, counted_lines};
use crate::{assignment, repo, run, start_agent, step_logs, wait_finished, wait_step_started};
use gantry_protocol::Conclusion;
use std::collections::HashMap;
use std::time::Duration;

/// A step printing 400 lines over about 2 s.
const TICKS_SCRIPT: &str =
    "for i in $(seq 1 40); do for j in $(seq 1 10); do echo \"tick $i.$j\"; done; sleep 0.05; done";

fn ticks() -> String {
    (1..=40)
        .flat_map(|i| (1..=10).map(move |j| format!("tick {i}.{j}\n")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_a_cut_network_lose_and_duplicate_nothing() {
    let mut fail_next = HashMap::new();
    for (kind, n) in [
        ("poll", 2),
        ("heartbeat", 3),
        ("logs", 3),
        ("events", 2),
        ("finish", 2),
    ] {
        fail_next.insert(kind, n);
    }
    let server = FakeServer::start(Script {
        fail_next,
        poll_hold: Duration::from_millis(200),
        ..Script::default()
    })
    .await;
    let proxy = Proxy::start(server.addr).await;
    let repo = repo();
    server.enqueue(assignment(
        "job_net",
        &repo,
        vec![run("Ticks", TICKS_SCRIPT)],
    ));
    let agent = start_agent(&proxy.url(), |_| {});

    wait_step_started(&server, "job_net").await;
    server
        .wait_for("some log", Duration::from_secs(10), |s| {
            s.jobs.get("job_net").is_some_and(|j| j.log.len() > 500)
        })
        .await;
    proxy.set_down(true);
    let logged_before = server.job("job_net").log.len();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    proxy.set_down(false);

    wait_finished(&server, "job_net", Duration::from_secs(20)).await;
    let record = server.job("job_net");
    assert_eq!(step_logs(&record), [("Ticks".to_owned(), ticks())]);
    assert!(record.violations.is_empty(), "{:?}", record.violations);
    assert!(
        record.log.len() > logged_before + 1000,
        "the job went on while the network was down"
    );
    // Every scripted 503 was answered, and retried.
    for kind in ["poll", "heartbeat", "logs", "events", "finish"] {
        let failed = server
            .calls(kind)
            .iter()
            .filter(|c| c.status == 503)
            .count();
        assert!(failed >= 2, "{kind}: {failed} failures");
    }
    let finish = &record.finishes[0];
    assert_eq!(finish.conclusion, Conclusion::Success);
    assert_eq!(finish.log_size, record.log.len() as u64);
    assert!(record.finishes.iter().all(|f| f == finish));
    agent.shutdown.drain();
    let (result, _) = agent.join(Duration::from_secs(5)).await;
    result.expect("drained cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_rewinds_to_the_servers_offset() {
    let server = FakeServer::start(Script {
        rewind_at: Some(20_000),
        lose_tail_before_finish: Some(100),
        poll_hold: Duration::from_millis(200),
        ..Script::default()
    })
    .await;
    let repo = repo();
    server.enqueue(assignment(
        "job_409",
        &repo,
        vec![run("Count", COUNT_SCRIPT)],
    ));
    let agent = start_agent(&server.url(), |_| {});
    wait_finished(&server, "job_409", Duration::from_secs(20)).await;
    let record = server.job("job_409");
    assert_eq!(step_logs(&record), [("Count".to_owned(), counted_lines())]);
    assert!(record.violations.is_empty(), "{:?}", record.violations);
    assert!(server.calls("logs").iter().any(|c| c.status == 409));
    assert!(server.calls("finish").iter().any(|c| c.status == 409));
    assert_eq!(record.finishes.len(), 1);
    assert_eq!(record.finishes[0].log_size, record.log.len() as u64);
    agent.shutdown.drain();
    let (result, _) = agent.join(Duration::from_secs(5)).await;
    result.expect("drained cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partly_accepted_chunk_is_resent_from_where_the_server_stopped() {
    let server = FakeServer::start(Script {
        accept_at_most: Some(1000),
        poll_hold: Duration::from_millis(200),
        ..Script::default()
    })
    .await;
    let repo = repo();
    server.enqueue(assignment(
        "job_part",
        &repo,
        vec![run("Count", COUNT_SCRIPT)],
    ));
    let agent = start_agent(&server.url(), |_| {});
    wait_finished(&server, "job_part", Duration::from_secs(20)).await;
    let record = server.job("job_part");
    assert_eq!(step_logs(&record), [("Count".to_owned(), counted_lines())]);
    assert!(record.violations.is_empty(), "{:?}", record.violations);
    // About 70 KiB, at most 1000 bytes accepted per call: at least one call per 1000 bytes.
    let needed = record.log.len().div_ceil(1000);
    assert!(record.log.len() > 60_000, "{} bytes", record.log.len());
    assert!(
        server.calls("logs").len() >= needed,
        "{} calls for {} bytes",
        server.calls("logs").len(),
        record.log.len()
    );
    assert_eq!(record.finishes[0].log_size, record.log.len() as u64);
    agent.shutdown.drain();
    let (result, _) = agent.join(Duration::from_secs(5)).await;
    result.expect("drained cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_log_never_holds_back_the_result() {
    let server = FakeServer::start(Script {
        refuse_logs: true,
        poll_hold: Duration::from_millis(200),
        ..Script::default()
    })
    .await;
    let repo = repo();
    server.enqueue(assignment(
        "job_nolog",
        &repo,
        vec![run("Count", COUNT_SCRIPT)],
    ));
    let agent = start_agent(&server.url(), |_| {});
    wait_finished(&server, "job_nolog", Duration::from_secs(20)).await;
    let record = server.job("job_nolog");
    // Refused once, never retried; the result states the log the server has.
    assert_eq!(server.calls("logs").len(), 1);
    assert_eq!(record.finishes.len(), 1);
    assert_eq!(record.finishes[0].conclusion, Conclusion::Success);
    assert_eq!(record.finishes[0].log_size, 0);
    // Events still went, with the offsets of the agent's own log.
    assert_eq!(record.events.len(), 2);
    assert!(record.events[&1].log_offset > 60_000);
    agent.shutdown.drain();
    let (result, _) = agent.join(Duration::from_secs(5)).await;
    result.expect("drained cleanly");
}
