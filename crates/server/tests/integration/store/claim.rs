//! Handing jobs to agents: oldest first, labels, concurrency groups, exactly once (C6).

use super::fixture::{Fixture, NOW, agent, new_job, new_run, repository};
use gantry_server::store::{JobStatus, NewJob, RunStatus, StoreError};
use std::collections::HashSet;

fn labels(labels: &[&str]) -> Vec<String> {
    labels.iter().map(|l| l.to_string()).collect()
}

async fn twenty_concurrent_claimers_take_ten_jobs_exactly_once(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    let jobs: Vec<NewJob> = (0..10)
        .map(|i| new_job(&format!("job{i}"), &["linux"]))
        .collect();
    let (_, stored) = db
        .insert_run_with_jobs(&new_run(&repo), &jobs, &[], NOW)
        .await
        .expect("run");
    let mut agents = Vec::new();
    for i in 0..20 {
        agents.push(agent(&db, &format!("agent{i}"), &["linux"]).await);
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(agents.len()));
    let mut tasks = Vec::new();
    for agent in agents {
        let db = db.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut mine = Vec::new();
            while let Some(claimed) = db
                .claim_job(&agent.id, &labels(&["linux"]), 30_000, NOW + 1)
                .await
                .expect("claim")
            {
                assert_eq!(claimed.job.agent_id.as_ref(), Some(&agent.id));
                mine.push((claimed.job.id, claimed.lease_id));
            }
            mine
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.expect("claimer"));
    }
    let ids: HashSet<_> = claimed.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(claimed.len(), 10, "every job claimed once: {claimed:?}");
    assert_eq!(ids, stored.iter().map(|j| j.id.clone()).collect());
    let leases: HashSet<_> = claimed.iter().map(|(_, lease)| lease.clone()).collect();
    assert_eq!(leases.len(), 10, "a fresh lease per claim");
    for job in db.list_jobs(&stored[0].run_id).await.expect("jobs") {
        assert_eq!(job.status, JobStatus::Running);
        assert_eq!(job.lease_expires_ms, Some(NOW + 1 + 30_000));
    }
}

async fn an_agent_gets_the_oldest_job_whose_labels_it_has(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    let (_, first) = db
        .insert_run_with_jobs(
            &new_run(&repo),
            &[new_job("gpu", &["linux", "gpu"])],
            &[],
            NOW,
        )
        .await
        .expect("run 1");
    let (run2, second) = db
        .insert_run_with_jobs(
            &new_run(&repo),
            &[new_job("build", &["Linux"])],
            &[],
            NOW + 1,
        )
        .await
        .expect("run 2");
    let (_, third) = db
        .insert_run_with_jobs(&new_run(&repo), &[new_job("any", &[])], &[], NOW + 2)
        .await
        .expect("run 3");
    let windows = agent(&db, "windows", &["windows"]).await;
    let linux = agent(&db, "linux", &["linux", "x64"]).await;
    let gpu = agent(&db, "gpu", &["LINUX", "GPU"]).await;

    // Labels compare without case; a job without labels fits anyone.
    let claimed = db
        .claim_job(&linux.id, &linux.labels, 30_000, NOW + 10)
        .await
        .expect("claim")
        .expect("a job for linux");
    assert_eq!(
        claimed.job.id, second[0].id,
        "the gpu job is older but needs a gpu"
    );
    assert_eq!(claimed.source.repository_name, "owner/app");
    assert_eq!(claimed.source.git_ref, "refs/heads/main");
    assert!(claimed.source.trusted);
    let run = db.get_run(&run2.id).await.expect("run");
    assert_eq!(run.status, RunStatus::InProgress);
    assert_eq!(run.started_ms, Some(NOW + 10));
    assert_eq!(
        db.get_agent(&linux.id).await.expect("agent").last_seen_ms,
        NOW + 10
    );

    let windows_job = db
        .claim_job(&windows.id, &windows.labels, 30_000, NOW + 11)
        .await
        .expect("claim");
    assert_eq!(windows_job.map(|c| c.job.id), Some(third[0].id.clone()));
    let gpu_job = db
        .claim_job(&gpu.id, &gpu.labels, 30_000, NOW + 12)
        .await
        .expect("claim");
    assert_eq!(gpu_job.map(|c| c.job.id), Some(first[0].id.clone()));
    assert!(
        db.claim_job(&gpu.id, &gpu.labels, 30_000, NOW + 13)
            .await
            .expect("claim")
            .is_none()
    );
}

async fn a_concurrency_group_runs_one_job_at_a_time(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    let grouped = |key: &str| NewJob {
        concurrency_group: Some("deploy-prod".into()),
        ..new_job(key, &[])
    };
    let (_, jobs) = db
        .insert_run_with_jobs(
            &new_run(&repo),
            &[grouped("deploy1"), grouped("deploy2")],
            &[],
            NOW,
        )
        .await
        .expect("run");
    let (_, other) = db
        .insert_run_with_jobs(&new_run(&repo), &[new_job("test", &[])], &[], NOW + 1)
        .await
        .expect("run");
    let a = agent(&db, "a", &[]).await;
    let b = agent(&db, "b", &[]).await;
    let first = db
        .claim_job(&a.id, &[], 30_000, NOW + 2)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(first.job.id, jobs[0].id);
    let queue = db.list_queued_jobs(10).await.expect("queue");
    let blocked = queue
        .iter()
        .find(|q| q.job_id == jobs[1].id)
        .expect("deploy2 queued");
    assert_eq!(blocked.blocked_by.as_ref(), Some(&jobs[0].id));
    assert_eq!(blocked.concurrency_group.as_deref(), Some("deploy-prod"));

    // deploy2 waits for deploy1: b gets the younger, ungrouped job.
    let second = db
        .claim_job(&b.id, &[], 30_000, NOW + 3)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(second.job.id, other[0].id);
    assert!(
        db.claim_job(&b.id, &[], 30_000, NOW + 4)
            .await
            .expect("claim")
            .is_none()
    );

    super::leases::finish_successfully(&db, &first).await;
    let third = db
        .claim_job(&b.id, &[], 30_000, NOW + 5)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(third.job.id, jobs[1].id);
}

async fn concurrent_claimers_never_run_two_jobs_of_a_group(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    let jobs: Vec<NewJob> = (0..6)
        .map(|i| NewJob {
            concurrency_group: Some(format!("group{}", i % 2)),
            ..new_job(&format!("job{i}"), &[])
        })
        .collect();
    db.insert_run_with_jobs(&new_run(&repo), &jobs, &[], NOW)
        .await
        .expect("run");
    let mut tasks = Vec::new();
    for i in 0..12 {
        let db = db.clone();
        let agent = agent(&db, &format!("agent{i}"), &[]).await;
        tasks.push(tokio::spawn(async move {
            db.claim_job(&agent.id, &[], 30_000, NOW + 1)
                .await
                .expect("claim")
        }));
    }
    let mut groups = Vec::new();
    for task in tasks {
        if let Some(claimed) = task.await.expect("task") {
            groups.push(claimed.job.concurrency_group.expect("grouped"));
        }
    }
    groups.sort();
    assert_eq!(groups, ["group0", "group1"], "one running job per group");
}

async fn unknown_and_revoked_agents_cannot_claim(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    db.insert_run_with_jobs(&new_run(&repo), &[new_job("build", &[])], &[], NOW)
        .await
        .expect("run");
    let unknown = db.claim_job(&"agt_nobody".into(), &[], 30_000, NOW).await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { .. })),
        "{unknown:?}"
    );
    let revoked = agent(&db, "gone", &[]).await;
    db.revoke_agent(&revoked.id, NOW).await.expect("revoke");
    let claim = db.claim_job(&revoked.id, &[], 30_000, NOW).await;
    assert!(matches!(claim, Err(StoreError::Gone(_))), "{claim:?}");
    assert_eq!(db.list_queued_jobs(10).await.expect("queue").len(), 1);
}

store_tests!(
    twenty_concurrent_claimers_take_ten_jobs_exactly_once,
    an_agent_gets_the_oldest_job_whose_labels_it_has,
    a_concurrency_group_runs_one_job_at_a_time,
    concurrent_claimers_never_run_two_jobs_of_a_group,
    unknown_and_revoked_agents_cannot_claim,
);
