//! Listing runs (filters, pages), a run's jobs and notes, cancelling, running again.

use super::{TestServer, outputs};
use axum::http::StatusCode;
use gantry_protocol::Conclusion;
use gantry_server::store::{JobStatus, RunStatus};
use indexmap::IndexMap;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const ONE_JOB: &str = "on: push\njobs:\n  build:\n    runs-on: linux\n    steps: [run: make]\n";

/// build (sets an output) and a two-leg test matrix, then deploy needing both and reading the
/// output; lint is skipped.
const PIPELINE: &str = "\
on: push
jobs:
  build:
    runs-on: linux
    outputs:
      version: ${{ steps.v.outputs.version }}
    steps: [run: make]
  test:
    strategy:
      matrix:
        n: [1, 2]
    runs-on: linux
    steps: [run: test]
  lint:
    if: false
    runs-on: linux
    steps: [run: lint]
  deploy:
    needs: [build, test]
    runs-on: linux
    steps: [run: 'echo ${{ needs.build.outputs.version }}']
";

fn ids(list: &Value) -> Vec<String> {
    list["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn runs_are_listed_newest_first_with_filters_and_pages() {
    let server = TestServer::new().await;
    let web = server.repository("web").await;
    let api = server.repository("api").await;
    let mut made = Vec::new();
    for (repo, branch) in [
        (&web, "main"),
        (&web, "dev"),
        (&api, "main"),
        (&web, "main"),
        (&api, "dev"),
    ] {
        made.push(server.planned_run(repo, branch, ONE_JOB).await);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let newest_first: Vec<String> = made.iter().rev().map(|r| r.id.to_string()).collect();

    // Pages of two, following `next`, give every run once, newest first.
    let mut seen = Vec::new();
    let mut uri = "/api/v1/runs?limit=2".to_owned();
    loop {
        let page = server.get(&uri, None).await;
        page.expect(StatusCode::OK);
        let page = page.json();
        seen.extend(ids(&page));
        match page["next"].as_str() {
            Some(next) => uri = format!("/api/v1/runs?limit=2&before={next}"),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);

    let web_main = server
        .get("/api/v1/runs?repository=owner/web&branch=main", None)
        .await
        .json();
    assert_eq!(
        ids(&web_main),
        vec![made[3].id.to_string(), made[0].id.to_string()]
    );
    assert_eq!(web_main["runs"][0]["repository"], "owner/web");
    assert_eq!(web_main["runs"][0]["status"], "queued");
    let by_id = server
        .get(
            &format!("/api/v1/runs?repository={}&event=push", api.id),
            None,
        )
        .await
        .json();
    assert_eq!(ids(&by_id).len(), 2);
    let completed = server
        .get("/api/v1/runs?status=completed", None)
        .await
        .json();
    assert!(ids(&completed).is_empty());

    for bad in [
        "/api/v1/runs?status=done",
        "/api/v1/runs?before=nonsense",
        "/api/v1/runs?limit=x",
    ] {
        server.get(bad, None).await.expect(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn a_run_shows_its_jobs_and_the_jobs_that_never_ran() {
    let server = TestServer::new().await;
    let repo = server.repository("detail").await;
    let run = server.planned_run(&repo, "main", PIPELINE).await;
    let detail = server.get(&format!("/api/v1/runs/{}", run.id), None).await;
    detail.expect(StatusCode::OK);
    let detail = detail.json();
    assert_eq!(detail["run"]["workflow_file"], ".github/workflows/ci.yml");
    let jobs: BTreeSet<(String, u64)> = detail["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["key"].as_str().expect("key").to_owned(),
                j["leg"].as_u64().expect("leg"),
            )
        })
        .collect();
    assert_eq!(
        jobs,
        BTreeSet::from([("build".into(), 0), ("test".into(), 0), ("test".into(), 1)])
    );
    assert_eq!(detail["jobs"][0]["status"], "queued");
    assert_eq!(detail["jobs"][0]["labels"], json!(["linux"]));
    let lint = detail["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .find(|n| n["key"] == "lint")
        .expect("the skipped job is noted");
    assert_eq!(lint["conclusion"], "skipped");
    assert!(lint["reason"].as_str().is_some());

    let job = &detail["jobs"][0];
    let job_detail = server
        .get(
            &format!("/api/v1/jobs/{}", job["id"].as_str().expect("id")),
            None,
        )
        .await;
    job_detail.expect(StatusCode::OK);
    let job_detail = job_detail.json();
    assert_eq!(job_detail["run"]["id"], run.id.to_string());
    assert_eq!(job_detail["run"]["repository"], "owner/detail");
    assert_eq!(job_detail["steps"], json!([]));
}

#[tokio::test]
async fn cancelling_a_run_cancels_its_queued_jobs_and_ends_it() {
    let server = TestServer::new().await;
    let repo = server.repository("cancel").await;
    let run = server.planned_run(&repo, "main", PIPELINE).await;
    let agent = server.agent("a", &["linux"]).await;
    let (running, _lease) = server.claim(&agent).await.expect("a job starts");

    let answer = server
        .post(
            &format!("/api/v1/runs/{}/cancel", run.id),
            Some(&server.write),
            json!({}),
        )
        .await;
    answer.expect(StatusCode::ACCEPTED);
    let answer = answer.json();
    assert_eq!(answer["cancelled"].as_array().expect("list").len(), 2);
    assert_eq!(answer["stopping"], json!([running.id.to_string()]));
    let job = server.state.db.get_job(&running.id).await.expect("job");
    assert!(
        job.cancel_requested,
        "the agent is told at its next heartbeat"
    );

    gantry_server::scheduler::round(&server.state)
        .await
        .expect("round");
    let detail = server
        .get(&format!("/api/v1/runs/{}", run.id), None)
        .await
        .json();
    assert_eq!(detail["run"]["cancel_requested"], true);
    assert_eq!(
        detail["run"]["status"], "in_progress",
        "waits for the running job"
    );
}

#[tokio::test]
async fn cancelling_something_that_ended_is_a_conflict() {
    let server = TestServer::new().await;
    let repo = server.repository("ended").await;
    let run = server.planned_run(&repo, "main", ONE_JOB).await;
    let run = server
        .run_to_end(&run, |_| (Conclusion::Success, IndexMap::new()))
        .await;
    assert_eq!(run.conclusion, Some(Conclusion::Success));
    let job = server
        .state
        .db
        .list_jobs(&run.id)
        .await
        .expect("jobs")
        .remove(0);
    server
        .post(
            &format!("/api/v1/runs/{}/cancel", run.id),
            Some(&server.write),
            json!({}),
        )
        .await
        .expect(StatusCode::CONFLICT);
    server
        .post(
            &format!("/api/v1/jobs/{}/cancel", job.id),
            Some(&server.write),
            json!({}),
        )
        .await
        .expect(StatusCode::CONFLICT);
}

#[tokio::test]
async fn cancelling_a_queued_job_completes_it_as_cancelled() {
    let server = TestServer::new().await;
    let repo = server.repository("jobcancel").await;
    let run = server.planned_run(&repo, "main", ONE_JOB).await;
    let job = server.queued_jobs(&run).await.remove(0);
    let answer = server
        .post(
            &format!("/api/v1/jobs/{}/cancel", job.id),
            Some(&server.write),
            json!({}),
        )
        .await;
    answer.expect(StatusCode::ACCEPTED);
    assert_eq!(answer.json()["cancelled"], json!([job.id.to_string()]));
    gantry_server::scheduler::round(&server.state)
        .await
        .expect("round");
    let run = server.state.db.get_run(&run.id).await.expect("run");
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.conclusion, Some(Conclusion::Cancelled));
}

/// test leg 1 (n = 2) fails the first time; everything else succeeds, build sets version.
fn first_attempt(job: &gantry_server::store::Job) -> (Conclusion, IndexMap<String, String>) {
    match (job.key.as_str(), job.leg) {
        ("build", _) => (Conclusion::Success, outputs(&[("version", "1.4.2")])),
        ("test", 1) => (Conclusion::Failure, IndexMap::new()),
        _ => (Conclusion::Success, IndexMap::new()),
    }
}

#[tokio::test]
async fn rerunning_failed_jobs_keeps_successful_legs_and_their_outputs() {
    let server = TestServer::new().await;
    let repo = server.repository("rerun").await;
    let run = server.planned_run(&repo, "main", PIPELINE).await;
    let run = server.run_to_end(&run, first_attempt).await;
    assert_eq!(run.conclusion, Some(Conclusion::Failure));

    let answer = server
        .post(
            &format!("/api/v1/runs/{}/rerun", run.id),
            Some(&server.write),
            json!({"failed_only": true}),
        )
        .await;
    answer.expect(StatusCode::CREATED);
    let detail = answer.json();
    assert_eq!(detail["run"]["attempt"], 2);
    assert_ne!(detail["run"]["id"], run.id.to_string());
    // Only the failed leg runs again.
    let jobs: Vec<(String, u64)> = detail["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["key"].as_str().expect("key").to_owned(),
                j["leg"].as_u64().expect("leg"),
            )
        })
        .collect();
    assert_eq!(jobs, vec![("test".to_owned(), 1)]);
    let kept = detail["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .find(|n| n["key"] == "build")
        .expect("build is noted as kept");
    assert_eq!(kept["conclusion"], "success");
    assert!(
        kept["reason"]
            .as_str()
            .unwrap_or("")
            .contains("kept from attempt 1"),
        "{kept}"
    );

    // The new run's graph journal starts with the kept results and rebuilds.
    let new_id = gantry_server::store::RunId::from(detail["run"]["id"].as_str().expect("id"));
    let new_run = server.state.db.get_run(&new_id).await.expect("new run");
    let loaded = gantry_server::run_state::load(&new_run).expect("the journal replays");
    assert_eq!(loaded.doc.journal.len(), 2, "build and test leg 0 were fed");

    // This time the leg passes: deploy starts and sees build's kept output.
    let agent = server.agent("b", &["linux"]).await;
    let (job, lease) = server.claim(&agent).await.expect("test leg 1");
    assert_eq!((job.key.as_str(), job.leg), ("test", 1));
    server
        .state
        .db
        .finish_job(
            &job.id,
            &lease,
            &gantry_server::store::JobFinish {
                conclusion: Conclusion::Success,
                reason: None,
                outputs: IndexMap::new(),
                log_size: 0,
            },
            super::now(),
        )
        .await
        .expect("finish");
    gantry_server::scheduler::round(&server.state)
        .await
        .expect("round");
    let deploy = server
        .queued_jobs(&new_run)
        .await
        .into_iter()
        .find(|j| j.key == "deploy")
        .expect("deploy is queued");
    let spec: Value = serde_json::from_str(&deploy.spec).expect("spec");
    assert_eq!(spec["needs"]["build"]["outputs"]["version"], "1.4.2");
    let finished = server
        .run_to_end(&new_run, |_| (Conclusion::Success, IndexMap::new()))
        .await;
    assert_eq!(finished.conclusion, Some(Conclusion::Success));
}

#[tokio::test]
async fn a_full_rerun_runs_everything_again() {
    let server = TestServer::new().await;
    let repo = server.repository("full").await;
    let run = server.planned_run(&repo, "main", PIPELINE).await;
    let run = server.run_to_end(&run, first_attempt).await;
    let answer = server
        .post(
            &format!("/api/v1/runs/{}/rerun", run.id),
            Some(&server.write),
            json!({}),
        )
        .await;
    answer.expect(StatusCode::CREATED);
    let detail = answer.json();
    assert_eq!(detail["run"]["attempt"], 2);
    assert_eq!(detail["run"]["status"], "queued");
    assert_eq!(detail["jobs"].as_array().expect("jobs").len(), 3);
    assert!(
        detail["jobs"]
            .as_array()
            .expect("jobs")
            .iter()
            .all(|j| j["status"] == JobStatus::Queued.as_str())
    );
    // An empty body is a full re-run too, and a run of a successful run is allowed.
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(format!("/api/v1/runs/{}/rerun", run.id))
        .header("authorization", format!("Bearer {}", server.write))
        .body(axum::body::Body::empty())
        .expect("request");
    server.send(request).await.expect(StatusCode::CREATED);
}

#[tokio::test]
async fn runs_that_have_not_ended_or_have_nothing_failed_are_not_rerun() {
    let server = TestServer::new().await;
    let repo = server.repository("busy").await;
    let running = server.planned_run(&repo, "main", ONE_JOB).await;
    let answer = server
        .post(
            &format!("/api/v1/runs/{}/rerun", running.id),
            Some(&server.write),
            json!({}),
        )
        .await;
    answer.expect(StatusCode::CONFLICT);
    assert!(
        answer.json()["message"]
            .as_str()
            .unwrap_or("")
            .contains("queued")
    );

    let done = server.planned_run(&repo, "main", ONE_JOB).await;
    let done = server
        .run_to_end(&done, |_| (Conclusion::Success, IndexMap::new()))
        .await;
    server
        .post(
            &format!("/api/v1/runs/{}/rerun", done.id),
            Some(&server.write),
            json!({"failed_only": true}),
        )
        .await
        .expect(StatusCode::CONFLICT);
    server
        .post(
            &format!("/api/v1/runs/{}/rerun", done.id),
            Some(&server.read),
            json!({}),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
}
