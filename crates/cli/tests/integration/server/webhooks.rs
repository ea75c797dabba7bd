//! Webhook intake under load and under attack: a burst with duplicate deliveries (C3, S1), and
//! forged, misaddressed, malformed and oversized deliveries (H1, B-section limits).

use super::harness::{
    Agent, GitRepo, Server, StepProcesses, WEBHOOK_SECRET, ZERO_SHA, delivery_id, sign,
    wait_agents, wait_for,
};
use gantry_server::config::ServerConfig;
use gantry_server::store::{Db, RepositoryId};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

const QUICK: &str = r#"name: quick
on: push
jobs:
  one:
    runs-on: ubuntu-latest
    steps:
      - run: echo "out ${{ github.sha }}"
"#;

/// The server's store, opened beside it (SQLite in WAL mode allows readers), for what the API
/// does not show: the deliveries.
async fn open_store(server: &Server) -> Db {
    let url = ServerConfig::new(server.data_dir()).database_url;
    Db::connect(&url)
        .await
        .expect("the server's database opens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_webhooks_with_duplicates_makes_exactly_one_run_per_delivery() {
    const UNIQUE: usize = 120;
    const TOTAL: usize = 200;
    let server = Arc::new(Server::start().await);
    let steps = StepProcesses::new();
    // Agents take jobs while the burst is ingested: their claims and log writes compete with
    // the ingester's transactions.
    let _agents = [
        Agent::start(&server, "one", &steps, &[]),
        Agent::start(&server, "two", &steps, &[]),
    ];
    wait_agents(&server, 2).await;

    let repo = GitRepo::new("burst");
    repo.write(".github/workflows/quick.yml", QUICK);
    let mut shas = vec![repo.commit("first")];
    for i in 1..UNIQUE {
        shas.push(repo.commit(&format!("commit {i}")));
    }
    let repo_id = server.register(&repo, json!({})).await;

    // 120 distinct deliveries (one per commit) and 80 repeats of some of them, interleaved,
    // sent at 100 per second without waiting for each other.
    let deliveries: Vec<(String, Vec<u8>)> = shas
        .iter()
        .enumerate()
        .map(|(i, sha)| {
            let before = if i == 0 {
                ZERO_SHA
            } else {
                shas[i - 1].as_str()
            };
            let body = serde_json::to_vec(&repo.push_payload(before, sha)).expect("json");
            (delivery_id("burst"), body)
        })
        .collect();
    let mut order: Vec<usize> = (0..UNIQUE).collect();
    order.extend((0..TOTAL - UNIQUE).map(|i| (i * 7) % UNIQUE));
    // A fixed shuffle: the repeats land among the originals, some before them.
    for i in 0..order.len() {
        let j = (i * 31 + 17) % order.len();
        order.swap(i, j);
    }
    let mut tasks = Vec::new();
    for (n, index) in order.into_iter().enumerate() {
        let server = server.clone();
        let (id, body) = deliveries[index].clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10 * n as u64)).await;
            let signature = sign(WEBHOOK_SECRET, &body);
            server
                .post_webhook_signed("push", &id, &body, Some(&signature))
                .await
        }));
    }
    let mut answers: BTreeMap<u16, usize> = BTreeMap::new();
    for task in tasks {
        let status = task.await.expect("webhook task");
        *answers.entry(status.as_u16()).or_default() += 1;
    }
    assert_eq!(answers, BTreeMap::from([(202, TOTAL)]), "answers by status");

    // Exactly one run per delivery, each of its own commit.
    let runs = wait_for("a run per delivery", Duration::from_secs(90), || {
        let server = &server;
        let repo_id = &repo_id;
        async move {
            let runs = server.runs(repo_id).await;
            (runs.len() >= UNIQUE).then_some(runs)
        }
    })
    .await;
    let store = open_store(&server).await;
    let stored = store
        .list_deliveries(&RepositoryId::from(repo_id.clone()), 1000)
        .await
        .expect("deliveries");
    assert_eq!(stored.len(), UNIQUE, "deliveries stored");
    assert!(
        stored
            .iter()
            .all(|d| d.processed_ms.is_some() && d.error.is_none()),
        "a delivery is unprocessed or failed"
    );
    let runs = server.runs(&repo_id).await.len().max(runs.len());
    assert_eq!(runs, UNIQUE, "runs");
    let run_shas: BTreeSet<String> = server
        .runs(&repo_id)
        .await
        .iter()
        .filter_map(|r| r["sha"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(run_shas, shas.iter().cloned().collect::<BTreeSet<_>>());

    let stderr = server.stderr().to_ascii_lowercase();
    assert!(
        !stderr.contains("database is locked"),
        "the server met a locked database"
    );
    assert!(
        !stderr.contains("delivery failed"),
        "a delivery failed during the burst"
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_misaddressed_malformed_and_oversized_webhooks_are_refused_and_leave_nothing() {
    let server = Server::start().await;
    let repo = GitRepo::new("guarded");
    repo.write(".github/workflows/quick.yml", QUICK);
    let sha = repo.commit("guarded");
    let repo_id = server.register(&repo, json!({})).await;
    let body = serde_json::to_vec(&repo.push_payload(ZERO_SHA, &sha)).expect("json");

    let post = |body: Vec<u8>, signature: Option<String>| {
        let server = &server;
        async move {
            server
                .post_webhook_signed("push", &delivery_id("bad"), &body, signature.as_deref())
                .await
        }
    };
    // No signature; a signature made with another secret; the right secret over another body;
    // a malformed header.
    assert_eq!(post(body.clone(), None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        post(body.clone(), Some(sign("another-secret", &body))).await,
        StatusCode::UNAUTHORIZED
    );
    let mut altered = body.clone();
    altered.extend_from_slice(b" ");
    assert_eq!(
        post(altered, Some(sign(WEBHOOK_SECRET, &body))).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(body.clone(), Some("sha256=zz".to_owned())).await,
        StatusCode::UNAUTHORIZED
    );
    // A repository nobody registered, correctly signed with the secret of this one.
    let mut stranger = repo.push_payload(ZERO_SHA, &sha);
    stranger["repository"]["full_name"] = json!("owner/unknown");
    let stranger = serde_json::to_vec(&stranger).expect("json");
    assert_eq!(
        post(stranger.clone(), Some(sign(WEBHOOK_SECRET, &stranger))).await,
        StatusCode::NOT_FOUND
    );
    // Not JSON; JSON that is not a push, both correctly signed.
    let garbage = b"{\"ref\": \"refs/heads/main\", \"repository\": ".to_vec();
    assert_eq!(
        post(garbage.clone(), Some(sign(WEBHOOK_SECRET, &garbage))).await,
        StatusCode::BAD_REQUEST
    );
    let mut shapeless = repo.push_payload(ZERO_SHA, &sha);
    shapeless["after"] = json!(42);
    let shapeless = serde_json::to_vec(&shapeless).expect("json");
    assert_eq!(
        post(shapeless.clone(), Some(sign(WEBHOOK_SECRET, &shapeless))).await,
        StatusCode::BAD_REQUEST
    );
    // 30 MiB, over the 25 MiB limit, correctly signed.
    let mut huge = repo.push_payload(ZERO_SHA, &sha);
    huge["padding"] = json!("x".repeat(30 * 1024 * 1024));
    let huge = serde_json::to_vec(&huge).expect("json");
    assert_eq!(
        post(huge.clone(), Some(sign(WEBHOOK_SECRET, &huge))).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // Nothing was stored: no delivery, no run.
    let store = open_store(&server).await;
    let repo_key = RepositoryId::from(repo_id.clone());
    assert!(
        store
            .list_deliveries(&repo_key, 100)
            .await
            .expect("deliveries")
            .is_empty(),
        "a refused webhook was stored"
    );
    assert_eq!(server.get("/api/v1/runs").await["runs"], json!([]));

    // The genuine delivery goes through, and is the only thing stored.
    assert_eq!(
        post(body.clone(), Some(sign(WEBHOOK_SECRET, &body))).await,
        StatusCode::ACCEPTED
    );
    server
        .wait_run_of(&repo_id, &sha, Duration::from_secs(30))
        .await;
    assert_eq!(
        store
            .list_deliveries(&repo_key, 100)
            .await
            .expect("deliveries")
            .len(),
        1
    );
    assert_eq!(
        server.get("/api/v1/runs").await["runs"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    store.close().await;
}
