//! Processes killed with SIGKILL: an agent in the middle of a job (A1), the server in the middle
//! of a run with a webhook it accepted but had not processed yet (C1, C2); the database
//! dropping the server's connections during a run (S2).

use super::harness::{
    Agent, GitRepo, Server, ServerOptions, StepProcesses, ZERO_SHA, delivery_id, jobs_of,
    lines_with, wait_agents, wait_for,
};
use gantry_test_support::SmallDisk;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The first attempt prints its lines and sleeps until killed; a later one finishes.
const LOST: &str = r#"name: lost
on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo $$ > "$E2E_PIDS/slow-$(date +%s%N).pid"
          for i in 1 2 3 4 5; do echo "out line $i"; done
          echo "out marker"
          if [ ! -e "$E2E_PIDS/first-attempt" ]; then
            touch "$E2E_PIDS/first-attempt"
            sleep 1000
          fi
          echo "out finished"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_of_a_killed_agent_is_lost_at_lease_expiry_and_retried_on_another_agent() {
    let server = Server::start().await;
    let steps = StepProcesses::new();
    let mut agents = [
        Agent::start(&server, "one", &steps, &[]),
        Agent::start(&server, "two", &steps, &[]),
    ];
    wait_agents(&server, 2).await;

    let run_id = server.run_workflow("lost", LOST).await;

    // Attempt 1 is running and its marker is stored: its agent is killed.
    let first = server.wait_log_of(&run_id, "slow", "out marker\n").await;
    let victim = first["agent_name"].as_str().expect("agent name").to_owned();
    let killed_at = Instant::now();
    agents
        .iter_mut()
        .find(|a| a.name == victim)
        .expect("the job's agent")
        .kill();

    // Within the lease (3 s) plus a sweep and a margin, attempt 1 is lost.
    let first_id = first["id"].as_str().expect("job id").to_owned();
    let lost = wait_for("attempt 1 to be lost", Duration::from_secs(15), || {
        let server = &server;
        let first_id = &first_id;
        async move {
            let job = server.job(first_id).await["job"].clone();
            (job["status"] == "completed").then_some(job)
        }
    })
    .await;
    let lost_after = killed_at.elapsed();
    assert_eq!(lost["conclusion"], "failure", "{lost:#}");
    assert_eq!(lost["reason"], json!({"kind": "agent_lost"}), "{lost:#}");
    assert!(
        lost_after <= Duration::from_millis(3_000 + 3_000),
        "the lost job was noticed {lost_after:?} after the kill (lease 3 s)"
    );

    // Attempt 2 runs on the other agent and the run succeeds.
    let detail = server
        .wait_run_completed(&run_id, Duration::from_secs(30))
        .await;
    assert_eq!(detail["run"]["conclusion"], "success", "{detail:#}");
    let attempts = jobs_of(&detail, "slow");
    assert_eq!(attempts.len(), 2, "{detail:#}");
    let second = attempts[1];
    assert_eq!(second["attempt"], 2);
    assert_eq!(second["conclusion"], "success");
    assert_ne!(second["agent_name"].as_str(), Some(victim.as_str()));

    // Attempt 1's log is kept, up to the marker; neither log repeats a line.
    let first_log = server.log(&first_id).await;
    assert_eq!(
        lines_with(&first_log, "out "),
        [
            "out line 1",
            "out line 2",
            "out line 3",
            "out line 4",
            "out line 5",
            "out marker"
        ]
    );
    let second_log = server.log(second["id"].as_str().expect("id")).await;
    assert_eq!(
        lines_with(&second_log, "out "),
        [
            "out line 1",
            "out line 2",
            "out line 3",
            "out line 4",
            "out line 5",
            "out marker",
            "out finished"
        ]
    );
}

/// Three independent jobs for one agent: one runs while the others wait in the queue. Each
/// step also writes what it prints to a file, to compare with the stored log.
const RESTART: &str = r#"name: restart
on: push
jobs:
  j1:
    runs-on: ubuntu-latest
    steps:
      - run: for i in $(seq 1 50); do echo "out j1 $i" | tee -a "$E2E_PIDS/j1.printed"; sleep 0.1; done
  j2:
    runs-on: ubuntu-latest
    steps:
      - run: for i in $(seq 1 50); do echo "out j2 $i" | tee -a "$E2E_PIDS/j2.printed"; sleep 0.1; done
  j3:
    runs-on: ubuntu-latest
    steps:
      - run: for i in $(seq 1 50); do echo "out j3 $i" | tee -a "$E2E_PIDS/j3.printed"; sleep 0.1; done
"#;

const AFTER: &str = r#"name: after
on: push
jobs:
  later:
    runs-on: ubuntu-latest
    steps:
      - run: echo "out later"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_restarted_on_its_data_loses_no_job_log_or_accepted_webhook() {
    let mut server = Server::start().await;
    let steps = StepProcesses::new();
    let _agent = Agent::start(&server, "only", &steps, &[]);
    wait_agents(&server, 1).await;

    let repo = GitRepo::new("restart");
    repo.write(".github/workflows/restart.yml", RESTART);
    let first_sha = repo.commit("restart");
    let repo_id = server.register(&repo, json!({})).await;
    let status = server
        .post_webhook(
            "push",
            &delivery_id("restart"),
            &repo.push_payload(ZERO_SHA, &first_sha),
        )
        .await;
    assert_eq!(status, 202);
    let run = server
        .wait_run_of(&repo_id, &first_sha, Duration::from_secs(30))
        .await;
    let run_id = run["id"].as_str().expect("run id").to_owned();

    // One job is running and has printed a few lines; the two others are queued.
    let running = wait_for("a job to be running", Duration::from_secs(30), || {
        let server = &server;
        let run_id = &run_id;
        async move {
            let detail = server.run(run_id).await;
            let jobs = detail["jobs"].as_array()?.clone();
            let running = jobs.iter().find(|j| j["status"] == "running")?.clone();
            let log = server.log(running["id"].as_str()?).await;
            (lines_with(&log, "out ").len() >= 5).then_some((running, jobs))
        }
    })
    .await;
    let (running, jobs) = running;
    assert_eq!(
        jobs.iter().filter(|j| j["status"] == "queued").count(),
        2,
        "{jobs:#?}"
    );
    let running_key = running["key"].as_str().expect("key").to_owned();

    // A push whose commit the server cannot fetch yet (it is only in a clone): the webhook
    // is accepted (202), the ingester's fetch fails, and the delivery waits for a retry. That
    // is the state of a delivery accepted and not processed when the server dies; it does not
    // depend on killing the server within the milliseconds between 202 and processing.
    let clone = GitRepo::fork(&repo, "owner");
    clone.git(&["rm", "-q", ".github/workflows/restart.yml"]);
    clone.write(".github/workflows/after.yml", AFTER);
    let later_sha = clone.commit("after");
    let body = repo.push_payload(&first_sha, &later_sha);
    let answer = server
        .http()
        .post(format!("{}/hooks/github", server.url))
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", delivery_id("later"))
        .header(
            "X-Hub-Signature-256",
            super::harness::sign(super::harness::WEBHOOK_SECRET, body.to_string().as_bytes()),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("webhook");
    assert_eq!(answer.status(), 202);
    let accepted: Value = answer.json().await.expect("json");
    let delivery = accepted["delivery"]
        .as_str()
        .expect("delivery id")
        .to_owned();
    wait_for(
        "the ingester to try the delivery",
        Duration::from_secs(15),
        || {
            let server = &server;
            let delivery = &delivery;
            async move {
                let stderr = server.stderr();
                stderr
                    .lines()
                    .any(|l| l.contains("delivery failed") && l.contains(delivery.as_str()))
                    .then_some(())
            }
        },
    )
    .await;
    assert!(
        server
            .runs(&repo_id)
            .await
            .iter()
            .all(|r| r["sha"] != later_sha.as_str()),
        "the delivery was processed before the kill"
    );

    // kill -9; the server stays down longer than a lease; the commit reaches the repository.
    server.kill();
    repo.git(&["pull", "-q", "--ff-only", &clone.clone_url(), "main"]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    server.restart().await;

    // The first run ends with every job run once, successfully.
    let detail = server
        .wait_run_completed(&run_id, Duration::from_secs(60))
        .await;
    let jobs = detail["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 3, "a job ran twice: {detail:#}");
    for job in jobs {
        assert_eq!(job["conclusion"], "success", "{job:#}");
        assert_eq!(job["attempt"], 1, "{job:#}");
        // Each log holds exactly what the step printed, byte for byte.
        let key = job["key"].as_str().expect("key");
        let printed = std::fs::read_to_string(steps.dir().join(format!("{key}.printed")))
            .expect("what the step printed");
        assert_eq!(printed.lines().count(), 50);
        let log = server.log(job["id"].as_str().expect("id")).await;
        assert_eq!(
            log.matches(printed.as_str()).count(),
            1,
            "the log of {key}{} is not what it printed",
            if key == running_key {
                " (running while the server was down)"
            } else {
                ""
            }
        );
        assert_eq!(lines_with(&log, "out ").len(), 50, "{key}");
    }
    assert_eq!(detail["run"]["conclusion"], "success");

    // The delivery accepted before the kill became its run after the restart.
    let later = server
        .wait_run_of(&repo_id, &later_sha, Duration::from_secs(30))
        .await;
    let later = server
        .wait_run_completed(later["id"].as_str().expect("id"), Duration::from_secs(30))
        .await;
    assert_eq!(later["run"]["conclusion"], "success", "{later:#}");
    assert_eq!(server.runs(&repo_id).await.len(), 2);
}

/// Two jobs, one after the other, printing numbered lines for about three seconds each.
const STEADY: &str = r#"name: steady
on: push
jobs:
  first:
    runs-on: ubuntu-latest
    steps:
      - run: for i in $(seq 1 30); do echo "first $i"; sleep 0.1; done
  second:
    needs: first
    runs-on: ubuntu-latest
    steps:
      - run: for i in $(seq 1 30); do echo "second $i"; sleep 0.1; done
"#;

/// Runs `sql` with psql against the test server's PostgreSQL.
async fn psql(base: &str, sql: &str) -> String {
    let out = tokio::process::Command::new("psql")
        .args([base, "-qtAX", "-c", sql])
        .output()
        .await
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// S2: the database drops the server's connections again and again (a PostgreSQL restart, a
/// failover) while a run's jobs are claimed, stream their logs and finish. The store's retries
/// absorb it: the run succeeds, each job once (no lost agent, no retry), with every line once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_connections_dropped_during_a_run_change_no_result_and_lose_no_line() {
    let Ok(base) = std::env::var("GANTRY_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "GANTRY_TEST_POSTGRES_URL is not set: in CI this test must run"
        );
        eprintln!("skipped: GANTRY_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = format!("gantry_s2_{}", std::process::id());
    psql(
        &base,
        &format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"),
    )
    .await;
    let separator = if base.contains('?') { '&' } else { '?' };
    let url =
        format!("{base}{separator}options=-c%20search_path%3D{schema}&application_name={schema}");
    let server = Server::start_with(ServerOptions {
        extra_args: vec!["--database-url".into(), url],
        ..ServerOptions::default()
    })
    .await;
    let steps = StepProcesses::new();
    let _agent = Agent::start(&server, "steady", &steps, &[]);
    wait_agents(&server, 1).await;
    let run_id = server.run_workflow("steady", STEADY).await;
    server.wait_log_of(&run_id, "first", "first 1\n").await;

    // Every 250 ms, every connection of the server is closed by the database.
    let kill = format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = '{schema}'"
    );
    let mut dropped = 0u32;
    let detail = loop {
        dropped += psql(&base, &kill).await.trim().parse::<u32>().unwrap_or(0);
        let detail = server.run(&run_id).await;
        if detail["run"]["status"] == "completed" {
            break detail;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(dropped >= 10, "only {dropped} connections were dropped");
    assert_eq!(detail["run"]["conclusion"], "success", "{detail:#}");
    for key in ["first", "second"] {
        let attempts = jobs_of(&detail, key);
        assert_eq!(attempts.len(), 1, "{key} ran once: {detail:#}");
        assert_eq!(attempts[0]["conclusion"], "success", "{detail:#}");
        let log = server
            .log(attempts[0]["id"].as_str().expect("job id"))
            .await;
        let expected: Vec<String> = (1..=30).map(|i| format!("{key} {i}")).collect();
        assert_eq!(
            lines_with(&log, &format!("{key} ")),
            expected,
            "{key}: {log}"
        );
    }
    drop(server);
    psql(&base, &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
}

/// Prints 300 numbered lines over about three seconds.
const STREAM: &str = r#"name: stream
on: push
jobs:
  stream:
    runs-on: ubuntu-latest
    steps:
      - run: for i in $(seq 1 300); do echo "stream $i ........................................"; sleep 0.01; done
"#;

/// S3: the server's database disk fills up while a job streams its log. The writes it cannot
/// store are refused as unavailable (never acknowledged); the agent keeps the bytes and sends
/// them again; once space is freed the job ends as its step did, its log whole, every line once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_disk_delays_a_job_but_loses_no_line_and_changes_no_result() {
    let Some(disk) = SmallDisk::mount(8) else {
        return;
    };
    let database = format!("sqlite://{}", disk.path().join("gantry.db").display());
    let server = Server::start_with(ServerOptions {
        lease_seconds: 20.0,
        extra_args: vec!["--database-url".into(), database],
        ..ServerOptions::default()
    })
    .await;
    let steps = StepProcesses::new();
    let _agent = Agent::start(&server, "stream", &steps, &[]);
    wait_agents(&server, 1).await;
    let run_id = server.run_workflow("stream", STREAM).await;
    let job = server.wait_log_of(&run_id, "stream", "stream 10 ").await;
    let job_id = job["id"].as_str().expect("job id").to_owned();

    // The disk is full for four seconds while the step prints: longer than the store's own
    // retries, so the agent's requests are refused and sent again.
    let filler = disk.fill();
    let stored_then = server.job(&job_id).await["job"]["log_size"].clone();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stored_while_full = server.job(&job_id).await["job"]["log_size"].clone();
    std::fs::remove_file(&filler).expect("free the space");

    let detail = server
        .wait_run_completed(&run_id, Duration::from_secs(60))
        .await;
    assert_eq!(detail["run"]["conclusion"], "success", "{detail:#}");
    let attempts = jobs_of(&detail, "stream");
    assert_eq!(attempts.len(), 1, "{detail:#}");
    let log = server.log(&job_id).await;
    let expected: Vec<String> = (1..=300)
        .map(|i| format!("stream {i} ........................................"))
        .collect();
    assert_eq!(lines_with(&log, "stream "), expected);
    // Nothing could be stored while the disk was full (the log did not grow).
    assert_eq!(
        stored_then, stored_while_full,
        "the log grew on a full disk"
    );
    let stderr = server.stderr();
    assert!(
        stderr.contains("database or disk is full"),
        "the server never found its disk full: {stderr}"
    );
    drop(server);
    drop(disk);
}
