//! The queue says why each job waits; agents are listed and revoked.

use super::TestServer;
use axum::http::StatusCode;
use gantry_server::store::AgentStatus;
use serde_json::{Value, json};

const GPU: &str =
    "on: push\njobs:\n  train:\n    runs-on: [self-hosted, gpu]\n    steps: [run: train]\n";
const LINUX: &str = "on: push\njobs:\n  build:\n    runs-on: linux\n    steps: [run: make]\n";
const GROUPED: &str = "\
on: push
jobs:
  deploy:
    runs-on: linux
    concurrency: production
    steps: [run: deploy]
";

async fn reasons(server: &TestServer) -> Vec<(String, String)> {
    let queue: Value = server.get("/api/v1/queue", None).await.json();
    queue["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap_or("").to_owned(),
                j["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn queued_jobs_say_why_they_wait() {
    let server = TestServer::new().await;
    let repo = server.repository("queue").await;
    server.planned_run(&repo, "main", GPU).await;
    assert_eq!(
        reasons(&server).await,
        vec![("train".to_owned(), "no agent has labels gpu".to_owned())]
    );

    let busy = server.agent("gpu-1", &["gpu", "linux"]).await;
    server
        .state
        .db
        .touch_agent(&busy.id, AgentStatus::Busy, super::now())
        .await
        .expect("touch");
    assert_eq!(reasons(&server).await[0].1, "all 1 matching agent is busy");

    // Two deploys of one concurrency group: one runs, the other waits for it.
    server.planned_run(&repo, "main", GROUPED).await;
    server.planned_run(&repo, "main", GROUPED).await;
    let linux = server.agent("linux-1", &["linux"]).await;
    let (running, _) = server.claim(&linux).await.expect("the first deploy starts");
    assert_eq!(running.name, "deploy");
    let reasons = reasons(&server).await;
    let deploy = reasons
        .iter()
        .find(|(name, _)| name == "deploy")
        .expect("queued");
    assert_eq!(
        deploy.1,
        format!("concurrency group production (held by job {})", running.id)
    );
}

#[tokio::test]
async fn agents_are_listed_and_revoking_one_retries_its_job() {
    let server = TestServer::new().await;
    let repo = server.repository("agents").await;
    server.planned_run(&repo, "main", LINUX).await;
    let agent = server.agent("builder-1", &["linux", "x64"]).await;
    let (job, _) = server.claim(&agent).await.expect("claims");

    let list = server.get("/api/v1/agents", None).await;
    list.expect(StatusCode::OK);
    let listed = &list.json()["agents"][0];
    assert_eq!(listed["name"], "builder-1");
    assert_eq!(listed["labels"], json!(["linux", "x64"]));
    assert_eq!(listed["running"], json!([job.id.to_string()]));
    assert_eq!(listed["status"], "idle");
    assert!(listed["last_seen_ms"].as_i64().is_some());

    let uri = format!("/api/v1/agents/{}/revoke", agent.id);
    server
        .post(&uri, Some(&server.write), json!({}))
        .await
        .expect(StatusCode::FORBIDDEN);
    let answer = server.post(&uri, Some(&server.admin), json!({})).await;
    answer.expect(StatusCode::OK);
    let answer = answer.json();
    assert_eq!(answer["lost_jobs"], json!([job.id.to_string()]));
    assert_eq!(answer["retried_jobs"].as_array().map(Vec::len), Some(1));

    let listed = &server.get("/api/v1/agents", None).await.json()["agents"][0];
    assert_eq!(listed["status"], "offline");
    assert_eq!(listed["revoked"], true);
    // The retry waits in the queue for another agent.
    let queue = server.get("/api/v1/queue", None).await.json();
    assert_eq!(
        queue["jobs"][0]["reason"],
        "the only agent with labels linux is offline"
    );
}

/// A6: a job no agent takes within the queue timeout fails, saying which labels no agent
/// offered, and its run ends instead of waiting forever.
#[tokio::test]
async fn a_job_no_agent_takes_fails_at_the_queue_timeout_naming_its_labels() {
    let server = TestServer::with(|c| c.queue_timeout = std::time::Duration::from_secs(1)).await;
    let repo = server.repository("stuck").await;
    let run = server.planned_run(&repo, "main", GPU).await;
    gantry_server::scheduler::round(&server.state)
        .await
        .expect("round");
    let jobs = server.state.db.list_jobs(&run.id).await.expect("jobs");
    assert_eq!(
        jobs[0].status.as_str(),
        "queued",
        "still within the timeout"
    );

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    gantry_server::scheduler::round(&server.state)
        .await
        .expect("round");
    let detail = server
        .get(&format!("/api/v1/runs/{}", run.id), None)
        .await
        .json();
    assert_eq!(detail["run"]["status"], "completed", "{detail:#}");
    assert_eq!(detail["run"]["conclusion"], "failure");
    let job = &detail["jobs"][0];
    assert_eq!(job["conclusion"], "failure");
    let reason = job["reason"].to_string();
    assert!(
        reason.contains("no agent took this job within 1s (the queue timeout)")
            && reason.contains("it needs labels [gpu]"),
        "{reason}"
    );
    assert!(reasons(&server).await.is_empty(), "nothing waits any more");
}

/// A5/C4: a running job is cancelled, then its agent is revoked before it stops: the job ends
/// `cancelled` and is not tried again on another agent.
#[tokio::test]
async fn a_cancelled_job_whose_agent_is_revoked_is_not_retried() {
    let server = TestServer::new().await;
    let repo = server.repository("cancelled").await;
    let run = server.planned_run(&repo, "main", LINUX).await;
    let agent = server.agent("builder-1", &["linux"]).await;
    let (job, _) = server.claim(&agent).await.expect("claims");
    server
        .post(
            &format!("/api/v1/runs/{}/cancel", run.id),
            Some(&server.write),
            json!({}),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let answer = server
        .post(
            &format!("/api/v1/agents/{}/revoke", agent.id),
            Some(&server.admin),
            json!({}),
        )
        .await;
    answer.expect(StatusCode::OK);
    let answer = answer.json();
    assert_eq!(answer["lost_jobs"], json!([job.id.to_string()]));
    assert_eq!(
        answer["retried_jobs"],
        json!([]),
        "a cancelled job is not retried"
    );
    gantry_server::scheduler::round(&server.state)
        .await
        .expect("round");
    let jobs = server.state.db.list_jobs(&run.id).await.expect("jobs");
    assert_eq!(jobs.len(), 1, "no second attempt: {jobs:?}");
    assert_eq!(
        jobs[0].conclusion,
        Some(gantry_protocol::Conclusion::Cancelled)
    );
    let detail = server
        .get(&format!("/api/v1/runs/{}", run.id), None)
        .await
        .json();
    assert_eq!(detail["run"]["conclusion"], "cancelled", "{detail:#}");
}
