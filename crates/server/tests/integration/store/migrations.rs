//! Opening the database: migrations, restarts, the SQLite settings the store relies on.

use super::fixture::{Fixture, NOW, new_job, new_run, repository};
use gantry_server::store::{Backend, StoreError};
use sqlx::{AnyConnection, Connection};

async fn migrations_apply_again_without_harm_after_a_restart(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    db.close().await;

    // The server starts again (twice, at the same time): the schema is there, the data too.
    let (first, second) = tokio::join!(fx.db(), fx.db());
    let stored = first
        .get_repository(&repo.id)
        .await
        .expect("repository after restart");
    assert_eq!(stored, repo);
    assert_eq!(second.list_repositories().await.expect("list").len(), 1);
    first.ping().await.expect("ping");
}

async fn unknown_rows_are_not_found(fx: Fixture) {
    let db = fx.db().await;
    let missing = db.get_repository(&"repo_missing".into()).await;
    assert!(
        matches!(
            missing,
            Err(StoreError::NotFound {
                entity: "repository",
                ..
            })
        ),
        "{missing:?}"
    );
    assert!(
        db.find_run(&"run_missing".into())
            .await
            .expect("find")
            .is_none()
    );
    let orphan = db
        .insert_run_with_jobs(&new_run(&repository(&db, "app").await), &[], &[], NOW)
        .await;
    assert!(orphan.is_ok(), "{orphan:?}");
}

async fn deleting_a_repository_deletes_its_runs_and_jobs(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    let (run, jobs) = db
        .insert_run_with_jobs(&new_run(&repo), &[new_job("build", &[])], &[], NOW)
        .await
        .expect("insert run");
    db.delete_repository(&repo.id).await.expect("delete");
    assert!(db.find_run(&run.id).await.expect("find run").is_none());
    assert!(db.find_job(&jobs[0].id).await.expect("find job").is_none());
    // A run of a repository that is gone is refused, not stored.
    let orphan = db
        .insert_run_with_jobs(&new_run(&repo), &[], &[], NOW)
        .await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound { .. })),
        "{orphan:?}"
    );
}

async fn sqlite_database_file_is_in_wal_mode(fx: Fixture) {
    if fx.backend != Backend::Sqlite {
        return;
    }
    let _db = fx.db().await;
    let mut conn = AnyConnection::connect(fx.url())
        .await
        .expect("open the file");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("journal mode");
    assert_eq!(mode, "wal");
}

store_tests!(
    migrations_apply_again_without_harm_after_a_restart,
    unknown_rows_are_not_found,
    deleting_a_repository_deletes_its_runs_and_jobs,
    sqlite_database_file_is_in_wal_mode,
);
