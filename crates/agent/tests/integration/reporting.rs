//! A job from assignment to finish: every log byte in order, events by seq with step offsets,
//! outputs, secrets masked, the workspace emptied, the credential kept.

use crate::fake_server::{self, FakeServer, Script};
use crate::{
    SECRET, assignment, checkout_step, repo, run, slot_leftovers, start_agent, start_agent_in,
    step_logs, wait_finished,
};
use gantry_protocol::agent::JobEventKind;
use gantry_protocol::{AnnotationLevel, Conclusion};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// The output of the first step: 3,000 numbered lines (about 70 KiB, many chunks).
pub fn counted_lines() -> String {
    (1..=3000)
        .map(|i| format!("line {i} of the build\n"))
        .collect()
}

pub const COUNT_SCRIPT: &str = "for i in $(seq 1 3000); do echo \"line $i of the build\"; done";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_run_and_reported_completely() {
    let server = FakeServer::start(Script {
        poll_hold: Duration::from_millis(200),
        ..Script::default()
    })
    .await;
    let repo = repo();
    let mut greet = run(
        "Greet",
        "echo \"greeting=hello world\" >> \"$GITHUB_OUTPUT\"\n\
         echo \"::warning title=Heads up::careful now\"\n\
         echo \"::group::Details\"\necho inside\necho \"::endgroup::\"\n\
         echo '## Done' >> \"$GITHUB_STEP_SUMMARY\"\n\
         cat README",
    );
    greet.id = "greet".into();
    greet.explicit_id = true;
    let mut secret = run(
        "Secret",
        "echo \"token=${{ secrets.API_TOKEN }}\"\necho \"env: $FROM_ENV\"",
    );
    secret
        .env
        .insert("FROM_ENV".into(), "${{ secrets.API_TOKEN }}".into());
    let mut job = assignment(
        "job_1",
        &repo,
        vec![
            run(
                "Empty",
                "test -z \"$(ls -A)\" && echo 'the workspace starts empty'",
            ),
            checkout_step(),
            run("Count", COUNT_SCRIPT),
            secret,
            greet,
        ],
    );
    job.spec.outputs.insert(
        "greeting".into(),
        "${{ steps.greet.outputs.greeting }}".into(),
    );
    server.enqueue(job);

    let agent = start_agent(&server.url(), |_| {});
    wait_finished(&server, "job_1", Duration::from_secs(20)).await;
    let record = server.job("job_1");

    // The log: an empty workspace, the checkout's lines, then exactly what each step printed,
    // masked.
    let logs = step_logs(&record);
    assert_eq!(logs.len(), 5, "{logs:?}");
    assert_eq!(
        logs[0],
        (
            "Empty".to_owned(),
            "the workspace starts empty\n".to_owned()
        )
    );
    assert!(logs[1].1.contains("[command]git init"), "{:?}", logs[1]);
    assert_eq!(
        logs[2..],
        [
            ("Count".to_owned(), counted_lines()),
            ("Secret".to_owned(), "token=***\nenv: ***\n".to_owned()),
            ("Greet".to_owned(), "inside\nhello\n".to_owned()),
        ]
    );
    let log = String::from_utf8(record.log.clone()).expect("utf-8");
    assert!(log.ends_with("inside\nhello\n"));
    assert!(record.violations.is_empty(), "{:?}", record.violations);

    // Events: seq 0.. without gaps, in the order things happened.
    let seqs: Vec<u64> = record.events.keys().copied().collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    let kinds: Vec<String> = record
        .events
        .values()
        .map(|e| match &e.kind {
            JobEventKind::StepStarted { name, .. } => format!("start {name}"),
            JobEventKind::StepFinished {
                name, conclusion, ..
            } => format!("finish {name} {conclusion}"),
            JobEventKind::Annotation { annotation, .. } => {
                format!("{:?} {}", annotation.level, annotation.message)
            }
            JobEventKind::GroupStarted { title, .. } => format!("group {title}"),
            JobEventKind::GroupEnded { .. } => "endgroup".to_owned(),
            JobEventKind::StepSummary { markdown, .. } => format!("summary {}", markdown.trim()),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "start Empty",
            "finish Empty success",
            "start Run actions/checkout@v4",
            "finish Run actions/checkout@v4 success",
            "start Count",
            "finish Count success",
            "start Secret",
            "finish Secret success",
            "start Greet",
            &format!("{:?} careful now", AnnotationLevel::Warning),
            "group Details",
            "endgroup",
            "summary ## Done",
            "finish Greet success",
        ]
    );
    let offsets: Vec<u64> = record.events.values().map(|e| e.log_offset).collect();
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{offsets:?}");

    // The result.
    assert_eq!(record.finishes.len(), 1);
    let finish = &record.finishes[0];
    assert_eq!(finish.conclusion, Conclusion::Success);
    assert_eq!(finish.reason, None);
    assert!(!finish.agent_stop);
    assert_eq!(finish.log_size, record.log.len() as u64);
    assert_eq!(
        finish.outputs.get("greeting").map(String::as_str),
        Some("hello world")
    );

    // No byte the agent sent holds the secret.
    let bodies = server.state.lock().bodies.clone();
    for body in &bodies {
        let text = String::from_utf8_lossy(body);
        assert!(!text.contains(SECRET), "secret leaked in {text:.200}");
    }

    // Registration: once, with the agent's labels; the credential is private.
    let registrations = server.state.lock().registrations.clone();
    assert_eq!(registrations.len(), 1);
    assert_eq!(registrations[0].labels, ["linux", "x64"]);
    let credential = agent.state_dir().join("credential.json");
    let mode = std::fs::metadata(&credential)
        .expect("credential file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The job's slot is emptied once the job is reported.
    let work = agent.work_dir();
    server
        .wait_for("the agent to poll again", Duration::from_secs(5), |s| {
            s.calls.iter().filter(|c| c.kind == "poll_start").count() >= 2
        })
        .await;
    assert!(work.join("slot_0/workspace").is_dir());
    assert_eq!(slot_leftovers(&work), Vec::<String>::new());

    // Restarted without a token, the agent reuses its credential.
    agent.shutdown.drain();
    let (result, dirs) = agent.join(Duration::from_secs(5)).await;
    result.expect("drained cleanly");
    let polls_before = server.calls("poll_start").len();
    let agent = start_agent_in(&server.url(), dirs, |c| c.registration_token = None);
    server
        .wait_for("a poll after the restart", Duration::from_secs(5), |s| {
            s.calls.iter().filter(|c| c.kind == "poll_start").count() > polls_before
        })
        .await;
    agent.shutdown.drain();
    let (result, _) = agent.join(Duration::from_secs(5)).await;
    result.expect("drained cleanly");
    assert_eq!(server.state.lock().registrations.len(), 1);
    assert!(
        server
            .calls("poll")
            .iter()
            .all(|c| c.status == 200 || c.status == 204)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_slot_gives_the_next_job_nothing_of_the_previous_one() {
    let server = FakeServer::start(Script {
        poll_hold: Duration::from_millis(200),
        ..Script::default()
    })
    .await;
    let repo = repo();
    let outside = tempfile::tempdir().expect("temp dir");
    let kept = outside.path().join("precious");
    std::fs::write(&kept, "keep me").expect("write");
    // The first job leaves files, a read-only tree, links to outside and file-command content.
    server.enqueue(assignment(
        "job_first",
        &repo,
        vec![
            run(
                "Litter",
                &format!(
                    "mkdir -p build/deep && echo x > build/deep/file && chmod -R a-w build\n\
                     ln -s {kept} link-in-workspace\n\
                     mkdir -p \"$RUNNER_TEMP/cache\" && echo y > \"$RUNNER_TEMP/cache/item\"\n\
                     ln -s {kept} \"$RUNNER_TEMP/link-in-temp\"\n\
                     echo LEAK=1 >> \"$GITHUB_ENV\"; echo '# one' >> \"$GITHUB_STEP_SUMMARY\"\n\
                     rm -f \"$GITHUB_PATH\" && ln -s {kept} \"$GITHUB_PATH\"",
                    kept = kept.display()
                ),
            ),
            run("Background", "(sleep 30 >/dev/null 2>&1 &); echo started"),
        ],
    ));
    let agent = start_agent(&server.url(), |c| c.concurrency = 1);
    wait_finished(&server, "job_first", Duration::from_secs(15)).await;
    assert_eq!(
        server.job("job_first").finishes[0].conclusion,
        Conclusion::Success
    );
    server.enqueue(assignment(
        "job_second",
        &repo,
        vec![run(
            "Look",
            "test -z \"$(ls -A)\" && echo 'empty workspace'\n\
             find \"$RUNNER_TEMP\" -mindepth 1 ! -type d ! -name 'step_*.sh' ! -name '*_cmd_*' \
               ! -name event.json -printf 'temp holds %P\\n'\n\
             for f in \"$GITHUB_ENV\" \"$GITHUB_PATH\" \"$GITHUB_STEP_SUMMARY\"; do test -f \"$f\" -a ! -L \"$f\" -a ! -s \"$f\" || echo \"not fresh: $f\"; done\n\
             echo \"LEAK=${LEAK:-unset}\"\n\
             grep -q '\"event_name\"\\|\"ref\"' \"$GITHUB_EVENT_PATH\" && echo 'event file written'",
        )],
    ));
    wait_finished(&server, "job_second", Duration::from_secs(15)).await;
    let record = server.job("job_second");
    assert_eq!(record.finishes[0].conclusion, Conclusion::Success);
    let log = String::from_utf8_lossy(&record.log).into_owned();
    assert_eq!(
        log, "empty workspace\nLEAK=unset\nevent file written\n",
        "the second job saw what the first left"
    );
    assert_eq!(std::fs::read_to_string(&kept).expect("read"), "keep me");
    server
        .wait_for("the agent to poll again", Duration::from_secs(5), |s| {
            s.calls.iter().filter(|c| c.kind == "poll_start").count() >= 3
        })
        .await;
    assert_eq!(slot_leftovers(&agent.work_dir()), Vec::<String>::new());
    assert!(
        !agent.work_dir().join("slot_1").exists(),
        "one slot served both jobs"
    );
    agent.shutdown.drain();
    let (result, _) = agent.join(Duration::from_secs(5)).await;
    result.expect("drained cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_side_by_side_up_to_the_concurrency() {
    let server = FakeServer::start(Script {
        poll_hold: Duration::from_millis(200),
        ..Script::default()
    })
    .await;
    let repo = repo();
    for id in ["job_a", "job_b"] {
        server.enqueue(assignment(
            id,
            &repo,
            vec![run("Wait", "sleep 1; echo done")],
        ));
    }
    let agent = start_agent(&server.url(), |c| c.concurrency = 2);
    wait_finished(&server, "job_a", Duration::from_secs(15)).await;
    wait_finished(&server, "job_b", Duration::from_secs(15)).await;
    let calls = server.state.lock().calls.clone();
    let first = |kind: &str, job: &str| {
        calls
            .iter()
            .find(|c| c.kind == kind && c.job_id.as_deref() == Some(job) && c.status == 200)
            .map(|c| c.at)
            .expect("call")
    };
    // Each job was running (heartbeating) before the other one finished.
    assert!(first("heartbeat", "job_b") < first("finish", "job_a"));
    assert!(first("heartbeat", "job_a") < first("finish", "job_b"));
    agent.shutdown.drain();
    let (result, _) = agent.join(Duration::from_secs(5)).await;
    result.expect("drained cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_cannot_be_checked_out_fails_the_checkout_step_with_the_reason() {
    let server = FakeServer::start(Script {
        poll_hold: Duration::from_millis(200),
        ..Script::default()
    })
    .await;
    let repo = repo();
    let mut job = assignment(
        "job_bad",
        &repo,
        vec![checkout_step(), run("Never", "echo never")],
    );
    job.source.sha = "0123456789012345678901234567890123456789".into();
    server.enqueue(job);
    let agent = start_agent(&server.url(), |_| {});
    wait_finished(&server, "job_bad", Duration::from_secs(15)).await;
    let record = server.job("job_bad");
    let finish = &record.finishes[0];
    assert_eq!(finish.conclusion, Conclusion::Failure);
    assert_eq!(
        finish.reason,
        Some(gantry_protocol::FailureReason::StepFailed)
    );
    // The checkout step fails naming the commit; the next step never runs.
    let log = String::from_utf8_lossy(&record.log);
    assert!(
        log.contains("0123456789012345678901234567890123456789"),
        "{log}"
    );
    assert!(!log.contains("never\n"), "{log}");
    assert!(record.events.values().any(|e| matches!(
        &e.kind,
        JobEventKind::StepFinished { name, conclusion, .. }
            if name == "Run actions/checkout@v4" && *conclusion == Conclusion::Failure
    )));
    assert!(record.events.values().any(|e| matches!(
        &e.kind,
        JobEventKind::Annotation { annotation, .. } if annotation.level == AnnotationLevel::Error
    )));
    agent.shutdown.drain();
    let (result, _) = agent.join(Duration::from_secs(5)).await;
    result.expect("drained cleanly");
}

/// One step, `echo`: the agent is given all the time it wants to let output gather.
async fn short_job(server: &FakeServer, id: &str, script: &str) -> fake_server::JobRecord {
    let repo = repo();
    server.enqueue(assignment(id, &repo, vec![run("Say", script)]));
    let agent = start_agent(&server.url(), |config| {
        config.log_linger = Duration::from_secs(30);
    });
    wait_finished(server, id, Duration::from_secs(20)).await;
    agent.shutdown.drain();
    let (result, _) = agent.join(Duration::from_secs(5)).await;
    result.expect("drained cleanly");
    server.job(id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_job_is_reported_in_one_request_after_its_claim() {
    let server = FakeServer::start(Script {
        poll_hold: Duration::from_millis(200),
        ..Script::default()
    })
    .await;
    let record = short_job(&server, "job_short", "echo 'all done'").await;
    assert_eq!(
        step_logs(&record),
        [("Say".to_owned(), "all done\n".to_owned())]
    );
    assert!(record.violations.is_empty(), "{:?}", record.violations);
    // The log, the step's start and end and the result: one finish request.
    assert!(
        server.calls("logs").is_empty(),
        "{:?}",
        server.calls("logs")
    );
    assert!(
        server.calls("events").is_empty(),
        "{:?}",
        server.calls("events")
    );
    assert_eq!(record.finishes.len(), 1);
    assert_eq!(record.tails, 1);
    assert_eq!(record.finishes[0].log_size, record.log.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_too_large_with_the_logs_end_sends_it_separately() {
    let server = FakeServer::start(Script {
        poll_hold: Duration::from_millis(200),
        refuse_large_finish: true,
        ..Script::default()
    })
    .await;
    let record = short_job(&server, "job_413", "echo 'all done'").await;
    assert_eq!(
        step_logs(&record),
        [("Say".to_owned(), "all done\n".to_owned())]
    );
    let finishes: Vec<u16> = server.calls("finish").iter().map(|c| c.status).collect();
    assert_eq!(finishes, [413, 200]);
    assert!(!server.calls("logs").is_empty());
    assert!(!server.calls("events").is_empty());
    assert_eq!(record.finishes[0].log_tail, None);
}
