//! Runs: numbers per repository, a run with its first jobs, run graph steps, lists.

use super::fixture::{Fixture, NOW, new_job, new_run, repository};
use gantry_protocol::Conclusion;
use gantry_server::forge::status::CommitState;
use gantry_server::store::{
    JobProgress, JobStatus, NewJob, NewStatus, RunFilter, RunGraphUpdate, RunStatus, StoreError,
};

async fn run_numbers_count_per_repository_under_concurrent_inserts(fx: Fixture) {
    let db = fx.db().await;
    let app = repository(&db, "app").await;
    let lib = repository(&db, "lib").await;
    let mut tasks = Vec::new();
    for i in 0..30 {
        let db = db.clone();
        let repo = if i % 3 == 0 { lib.clone() } else { app.clone() };
        tasks.push(tokio::spawn(async move {
            db.insert_run_with_jobs(&new_run(&repo), &[new_job("build", &[])], &[], NOW + i)
                .await
        }));
    }
    let mut app_numbers = Vec::new();
    let mut lib_numbers = Vec::new();
    for task in tasks {
        let (run, jobs) = task.await.expect("task").expect("insert run");
        assert_eq!(jobs.len(), 1, "a run is stored with its jobs");
        if run.repository_id == app.id {
            app_numbers.push(run.number);
        } else {
            lib_numbers.push(run.number);
        }
    }
    app_numbers.sort();
    lib_numbers.sort();
    assert_eq!(app_numbers, (1..=20).collect::<Vec<i64>>());
    assert_eq!(lib_numbers, (1..=10).collect::<Vec<i64>>());
    let run = db
        .find_run_by_number(&lib.id, 7)
        .await
        .expect("find")
        .expect("run 7");
    assert_eq!(run.repository_id, lib.id);
}

async fn a_run_graph_step_is_stored_whole_or_not_at_all(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    let waiting = NewJob {
        status: JobStatus::Waiting,
        ..new_job("deploy", &[])
    };
    let (run, jobs) = db
        .insert_run_with_jobs(&new_run(&repo), &[new_job("build", &[]), waiting], &[], NOW)
        .await
        .expect("run");
    assert_eq!(run.graph_version, 0);
    assert_eq!(jobs[1].queued_ms, None);
    let agent = super::fixture::agent(&db, "a", &[]).await;
    let claimed = db
        .claim_job(&agent.id, &[], 30_000, NOW)
        .await
        .expect("claim")
        .expect("build");
    assert_eq!(claimed.job.id, jobs[0].id, "a waiting job is not claimable");
    super::leases::finish_successfully(&db, &claimed).await;

    let status = NewStatus {
        state: CommitState::Running,
        context: "gantry/ci.yml".into(),
        description: None,
        target_url: Some("https://gantry.example/runs/1".into()),
    };
    let step = RunGraphUpdate {
        expected_version: 0,
        graph: r#"{"state":1}"#.into(),
        status: RunStatus::InProgress,
        conclusion: None,
        new_jobs: vec![new_job("test", &[])],
        queue_jobs: vec![jobs[1].id.clone()],
        cancel_jobs: vec![],
        applied_jobs: vec![jobs[0].id.clone()],
        statuses: vec![status.clone()],
    };
    let updated = db
        .update_run_graph(&run.id, &step, NOW + 600)
        .await
        .expect("step");
    assert_eq!(updated.run.graph_version, 1);
    assert_eq!(updated.run.graph, r#"{"state":1}"#);
    assert_eq!(updated.new_jobs.len(), 1);
    assert_eq!(updated.new_jobs[0].status, JobStatus::Queued);
    let deploy = db.get_job(&jobs[1].id).await.expect("deploy");
    assert_eq!(
        (deploy.status, deploy.queued_ms),
        (JobStatus::Queued, Some(NOW + 600))
    );
    assert!(
        db.list_unapplied_jobs(10)
            .await
            .expect("unapplied")
            .is_empty()
    );
    assert_eq!(db.list_statuses(&run.id).await.expect("statuses").len(), 1);

    // A second scheduler step computed from the old version is refused, and stores nothing.
    let stale = RunGraphUpdate {
        new_jobs: vec![new_job("extra", &[])],
        ..step.clone()
    };
    let refused = db.update_run_graph(&run.id, &stale, NOW + 700).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    let jobs_now = db.list_jobs(&run.id).await.expect("jobs");
    assert_eq!(jobs_now.len(), 3);
    // The scheduler's light listing says the same of each job, in the same order.
    let expected: Vec<JobProgress> = jobs_now
        .iter()
        .map(|j| JobProgress {
            id: j.id.clone(),
            key: j.key.clone(),
            leg: j.leg,
            attempt: j.attempt,
            status: j.status,
            conclusion: j.conclusion,
            outputs: j.outputs.clone(),
            started_ms: j.started_ms,
            finished_ms: j.finished_ms,
            graph_applied: j.graph_applied,
        })
        .collect();
    assert_eq!(
        db.list_job_progress(&run.id).await.expect("progress"),
        expected
    );
    assert_eq!(db.list_statuses(&run.id).await.expect("statuses").len(), 1);

    // A step that names another run's job fails as a whole.
    let other_run = db
        .insert_run_with_jobs(&new_run(&repo), &[new_job("x", &[])], &[], NOW)
        .await
        .expect("other");
    let wrong = RunGraphUpdate {
        expected_version: 1,
        new_jobs: vec![],
        queue_jobs: vec![],
        cancel_jobs: vec![other_run.1[0].id.clone()],
        applied_jobs: vec![],
        statuses: vec![status.clone()],
        ..step.clone()
    };
    let refused = db.update_run_graph(&run.id, &wrong, NOW + 800).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound { .. })),
        "{refused:?}"
    );
    assert_eq!(db.get_run(&run.id).await.expect("run").graph_version, 1);

    // The last step: cancel what is left, complete the run.
    let done = RunGraphUpdate {
        expected_version: 1,
        graph: r#"{"state":2}"#.into(),
        status: RunStatus::Completed,
        conclusion: Some(Conclusion::Cancelled),
        new_jobs: vec![],
        queue_jobs: vec![],
        cancel_jobs: vec![jobs[1].id.clone(), updated.new_jobs[0].id.clone()],
        applied_jobs: vec![],
        statuses: vec![NewStatus {
            state: CommitState::Canceled,
            ..status
        }],
    };
    let finished = db
        .update_run_graph(&run.id, &done, NOW + 900)
        .await
        .expect("last step");
    assert_eq!(finished.cancelled.completed.len(), 2);
    assert_eq!(finished.run.status, RunStatus::Completed);
    assert_eq!(finished.run.conclusion, Some(Conclusion::Cancelled));
    assert_eq!(finished.run.started_ms, Some(NOW));
    assert_eq!(finished.run.finished_ms, Some(NOW + 900));
    let seqs: Vec<i64> = db
        .list_statuses(&run.id)
        .await
        .expect("statuses")
        .iter()
        .map(|s| s.seq)
        .collect();
    assert_eq!(seqs, [1, 2]);
}

async fn runs_are_listed_newest_first_with_filters_and_pages(fx: Fixture) {
    let db = fx.db().await;
    let app = repository(&db, "app").await;
    let lib = repository(&db, "lib").await;
    for i in 0..7 {
        let mut run = new_run(&app);
        if i % 2 == 1 {
            run.git_ref = "refs/heads/feature".into();
        }
        db.insert_run_with_jobs(&run, &[], &[], NOW + i)
            .await
            .expect("run");
    }
    db.insert_run_with_jobs(&new_run(&lib), &[], &[], NOW + 100)
        .await
        .expect("lib run");

    let all = db.list_runs(&RunFilter::default()).await.expect("all");
    assert_eq!(all.runs.len(), 8);
    assert_eq!(all.runs[0].repository_name, "owner/lib");
    assert!(all.next.is_none());

    let mut filter = RunFilter {
        repository_id: Some(app.id.clone()),
        limit: 3,
        ..RunFilter::default()
    };
    let mut numbers = Vec::new();
    loop {
        let page = db.list_runs(&filter).await.expect("page");
        numbers.extend(page.runs.iter().map(|r| r.number));
        match page.next {
            Some(next) => {
                // The cursor survives a trip through a URL.
                filter.before = Some(next.to_string().parse().expect("cursor"));
            }
            None => break,
        }
    }
    assert_eq!(numbers, [7, 6, 5, 4, 3, 2, 1]);

    let feature = RunFilter {
        repository_id: Some(app.id.clone()),
        branch: Some("feature".into()),
        ..RunFilter::default()
    };
    let page = db.list_runs(&feature).await.expect("feature");
    assert_eq!(
        page.runs.iter().map(|r| r.number).collect::<Vec<_>>(),
        [6, 4, 2]
    );
    let completed = RunFilter {
        status: Some(RunStatus::Completed),
        ..RunFilter::default()
    };
    assert!(
        db.list_runs(&completed)
            .await
            .expect("completed")
            .runs
            .is_empty()
    );
    assert_eq!(db.list_active_runs().await.expect("active").len(), 8);
}

store_tests!(
    run_numbers_count_per_repository_under_concurrent_inserts,
    a_run_graph_step_is_stored_whole_or_not_at_all,
    runs_are_listed_newest_first_with_filters_and_pages,
);
