//! Network and server faults while a job streams its log: nothing lost, nothing duplicated.

use crate::fake_server::{FakeServer, Script};
use crate::proxy::Proxy;
use crate::reporting::{COUNT_SCRIPT, counted_lines};
use crate::{assignment, repo, run, start_agent, step_logs, wait_finished, wait_step_started};
use gantry_protocol::Conclusion;
use gantry_test_support::SmallDisk;
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
        // At least the first ~6 KiB of the ~72 KiB log go through `/logs` (a finish request
        // carries at most 64 KiB): the rewind happens there.
        rewind_at: Some(4_000),
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
    // About 70 KiB, more than a finish request carries (64 KiB): what went through `/logs`
    // took at least one call per 1000 bytes; the rest went with the result.
    assert!(record.log.len() > 66_000, "{} bytes", record.log.len());
    let tail = record.finishes[0]
        .log_tail
        .as_ref()
        .map_or(0, |tail| tail.text.len());
    assert!(
        tail <= 64 * 1024,
        "a {tail}-byte tail in the finish request"
    );
    let needed = (record.log.len() - tail).div_ceil(1000);
    assert!(
        needed >= 2,
        "{tail} of {} bytes went with the result",
        record.log.len()
    );
    assert!(
        server.calls("logs").len() >= needed,
        "{} calls for {} bytes",
        server.calls("logs").len(),
        record.log.len() - tail
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_work_dir_loses_log_bytes_but_never_the_job_result() {
    // A7: the agent's work directory fills up while a step prints. This needs a small
    // filesystem: a tmpfs, which only root can mount (CI runs as root).
    let Some(disk) = SmallDisk::mount(2) else {
        return;
    };
    let server = FakeServer::start(Script {
        poll_hold: Duration::from_millis(200),
        ..Script::default()
    })
    .await;
    let repo = repo();
    // 6 MB of output into a 2 MiB filesystem, while the step's own work also needs the disk:
    // the step fails when it cannot write its file, the next step reports it.
    server.enqueue(assignment(
        "job_full",
        &repo,
        vec![
            run(
                "Flood",
                "for i in $(seq 1 60000); do echo \"flood line $i of a step that prints a lot\"; done",
            ),
            run(
                "Write",
                "head -c 3000000 /dev/zero > big.bin && echo wrote || { echo 'no space'; exit 7; }",
            ),
        ],
    ));
    let work = disk.path().join("work");
    let agent = start_agent(&server.url(), |c| {
        c.work_dir = work.clone();
        // The whole filesystem is smaller than the default minimum: this job is let in.
        c.min_free_space = 0;
    });
    wait_finished(&server, "job_full", Duration::from_secs(60)).await;
    let record = server.job("job_full");
    // The result is the steps' own: the flood succeeded, the write failed for lack of space.
    assert_eq!(record.finishes[0].conclusion, Conclusion::Failure);
    let log = String::from_utf8_lossy(&record.log).into_owned();
    assert!(log.starts_with("flood line 1 of"), "{:.200}", log);
    // What arrived is what the step printed, with the loss said where it happened: no hole,
    // no NUL byte, every line whole.
    assert!(!log.contains('\0'), "NUL bytes in the log");
    // The loss is said: in the log where a later write succeeded, and by a warning annotation
    // when the disk never recovered before the job ended.
    let said_in_log = log
        .lines()
        .any(|l| l.starts_with("[gantry agent] ") && l.contains("byte(s) of this log were lost"));
    let said_in_events = record.events.values().any(|e| match &e.kind {
        gantry_protocol::agent::JobEventKind::Annotation { annotation, .. } => {
            annotation.message.contains("of this job's log were lost")
        }
        _ => false,
    });
    assert!(
        said_in_log || said_in_events,
        "the loss is not said: {:.300}",
        &log[log.len().saturating_sub(300)..]
    );
    for line in log.lines() {
        assert!(
            line.starts_with("flood line ")
                || line.starts_with("[gantry agent] ")
                || line == "wrote"
                || line == "no space"
                || line.contains("No space left on device")
                || line.starts_with("##[error]"),
            "unexpected line {line:?}"
        );
    }
    assert!(
        log.len() < 6_000_000,
        "a 2 MiB disk cannot have spooled the whole flood ({} bytes arrived)",
        log.len()
    );
    let events: Vec<_> = record.events.values().cloned().collect();
    let finished: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            gantry_protocol::agent::JobEventKind::StepFinished {
                name, conclusion, ..
            } => Some((name.clone(), *conclusion)),
            _ => None,
        })
        .collect();
    assert_eq!(
        finished,
        vec![
            ("Flood".to_owned(), Conclusion::Success),
            ("Write".to_owned(), Conclusion::Failure)
        ],
        "{log:.300}"
    );

    // The slot was emptied: the next job has the whole disk again and its whole log arrives.
    server.enqueue(assignment(
        "job_after",
        &repo,
        vec![run("Small", "echo fine")],
    ));
    wait_finished(&server, "job_after", Duration::from_secs(30)).await;
    let after = server.job("job_after");
    assert_eq!(after.finishes[0].conclusion, Conclusion::Success);
    assert_eq!(String::from_utf8_lossy(&after.log), "fine\n");
    agent.shutdown.drain();
    let (result, _) = agent.join(Duration::from_secs(10)).await;
    result.expect("drained cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_short_of_disk_space_takes_no_job_until_space_is_freed() {
    // A7: a job that would fail for want of space waits; a tmpfs needs root (CI runs as root).
    let Some(disk) = SmallDisk::mount(2) else {
        return;
    };
    let filler = disk.path().join("filler");
    std::fs::write(&filler, vec![7u8; 1536 * 1024]).expect("fill the disk");
    let server = FakeServer::start(Script {
        poll_hold: Duration::from_millis(200),
        ..Script::default()
    })
    .await;
    let repo = repo();
    server.enqueue(assignment(
        "job_space",
        &repo,
        vec![run("Hello", "echo hello")],
    ));
    let work = disk.path().join("work");
    let agent = start_agent(&server.url(), |c| {
        c.work_dir = work.clone();
        c.min_free_space = 1024 * 1024;
        c.free_space_recheck = Duration::from_millis(100);
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        server.calls("poll").is_empty(),
        "the agent asked for work with less than 1 MiB free"
    );
    assert!(server.job("job_space").finishes.is_empty());

    std::fs::remove_file(&filler).expect("free the space");
    wait_finished(&server, "job_space", Duration::from_secs(20)).await;
    let record = server.job("job_space");
    assert_eq!(record.finishes[0].conclusion, Conclusion::Success);
    assert_eq!(
        step_logs(&record),
        [("Hello".to_owned(), "hello\n".to_owned())]
    );
    agent.shutdown.drain();
    let (result, _) = agent.join(Duration::from_secs(5)).await;
    result.expect("drained cleanly");
}
