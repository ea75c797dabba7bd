//! Storage faults the store must survive (S1, S2): another process holding SQLite's write
//! lock, PostgreSQL dropping every connection. A transient failure is retried inside the store;
//! when it outlasts the retries the caller gets `Unavailable`, never another answer, and nothing
//! half-done is stored.

use super::fixture::{Fixture, NOW, claimed_job, repository};
use gantry_server::forge::Forge;
use gantry_server::store::{
    Backend, Db, DeliveryInsert, LogAppendError, NewDelivery, StoreConfig, StoreError,
};
use gantry_test_support::SmallDisk;
use sqlx::{AnyConnection, Connection, Executor};
use std::time::Duration;

fn delivery(repository_id: &gantry_server::store::RepositoryId, id: &str) -> NewDelivery {
    NewDelivery {
        forge: Forge::GitHub,
        delivery_id: id.into(),
        repository_id: repository_id.clone(),
        event: "push".into(),
        payload: b"{}".to_vec(),
    }
}

/// The write lock of the SQLite file, taken by another connection (as another process would)
/// and held for `hold`.
async fn hold_sqlite_write_lock(fx: &Fixture, hold: Duration) -> tokio::task::JoinHandle<()> {
    let mut other = AnyConnection::connect(fx.url())
        .await
        .expect("second connection");
    other
        .execute("BEGIN IMMEDIATE")
        .await
        .expect("take the write lock");
    tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        other
            .execute("COMMIT")
            .await
            .expect("release the write lock");
    })
}

async fn a_write_waits_out_another_process_holding_the_sqlite_lock(fx: Fixture) {
    if fx.backend != Backend::Sqlite {
        return;
    }
    // A busy timeout far shorter than the lock is held: the store's retries bridge the gap.
    let db = fx
        .db_with(StoreConfig {
            busy_timeout: Duration::from_millis(20),
            ..StoreConfig::default()
        })
        .await;
    let repo = repository(&db, "app").await;
    let holder = hold_sqlite_write_lock(&fx, Duration::from_millis(300)).await;
    let inserted = db.insert_delivery(&delivery(&repo.id, "d-1"), NOW).await;
    assert!(
        matches!(inserted, Ok(DeliveryInsert::Inserted(_))),
        "{inserted:?}"
    );
    holder.await.expect("holder");
}

async fn a_lock_held_past_the_retries_is_unavailable_and_changes_nothing(fx: Fixture) {
    if fx.backend != Backend::Sqlite {
        return;
    }
    let db = fx
        .db_with(StoreConfig {
            busy_timeout: Duration::from_millis(10),
            max_retries: 1,
            ..StoreConfig::default()
        })
        .await;
    let repo = repository(&db, "app").await;
    let holder = hold_sqlite_write_lock(&fx, Duration::from_millis(600)).await;
    let refused = db.insert_delivery(&delivery(&repo.id, "d-1"), NOW).await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(refused.is_err_and(|e| e.is_transient()));
    holder.await.expect("holder");
    // Reads were never blocked (WAL), and the refused write left nothing behind.
    assert!(
        db.list_unprocessed_deliveries(NOW, 10)
            .await
            .expect("list")
            .is_empty()
    );
    let later = db.insert_delivery(&delivery(&repo.id, "d-1"), NOW).await;
    assert!(
        matches!(later, Ok(DeliveryInsert::Inserted(_))),
        "{later:?}"
    );
}

async fn dropped_connections_are_replaced_and_never_change_an_answer(fx: Fixture) {
    let db = fx.db().await;
    let repo = repository(&db, "app").await;
    assert!(db.list_repositories().await.expect("warm the pool").len() == 1);
    fx.drop_connections().await;
    // After a restart of the database the pool's connections are dead: the next calls get
    // fresh ones.
    let first = db
        .insert_delivery(&delivery(&repo.id, "after-restart"), NOW)
        .await;
    assert!(
        matches!(first, Ok(DeliveryInsert::Inserted(_))),
        "{first:?}"
    );
    assert_eq!(db.get_repository(&repo.id).await.expect("read"), repo);

    // Connections dropped again and again while webhooks arrive: a call either succeeds or
    // says `Unavailable` (the forge sends it again); no delivery is lost or stored twice.
    let killer = {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let fx = &fx;
        let kills = async move {
            let mut kills = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                kills += fx.drop_connections().await;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            kills
        };
        (stop, kills)
    };
    let (stop, kills) = killer;
    let senders = async {
        let mut unavailable = 0;
        for i in 0..20 {
            let new = delivery(&repo.id, &format!("d-{i}"));
            loop {
                match db.insert_delivery(&new, NOW + i).await {
                    Ok(_) => break,
                    Err(StoreError::Unavailable(_)) => unavailable += 1,
                    Err(other) => panic!("a dropped connection became {other:?}"),
                }
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        unavailable
    };
    let (unavailable, kills) = tokio::join!(senders, kills);
    eprintln!("{kills} connections dropped, {unavailable} calls answered Unavailable");
    if fx.backend == Backend::Postgres {
        assert!(kills > 0, "the test dropped no connection");
    }
    let stored = db
        .list_unprocessed_deliveries(NOW + 100, 500)
        .await
        .expect("list");
    assert_eq!(stored.len(), 21, "every delivery stored exactly once");
}

store_tests!(
    a_write_waits_out_another_process_holding_the_sqlite_lock,
    a_lock_held_past_the_retries_is_unavailable_and_changes_nothing,
    dropped_connections_are_replaced_and_never_change_an_answer,
);

/// S3: the server's disk fills up while an agent sends its log. No chunk is acknowledged that
/// is not stored: the store answers `Unavailable` (HTTP 503, which the agent retries) saying the
/// disk is full, the job's log stays what was acknowledged, and once space is freed the same
/// chunk is taken and the log is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_log_chunks_without_losing_acknowledged_ones() {
    let Some(disk) = SmallDisk::mount(2) else {
        return;
    };
    let url = format!("sqlite://{}", disk.path().join("gantry.db").display());
    let db = Db::connect_with(
        &url,
        StoreConfig {
            max_retries: 1,
            ..StoreConfig::default()
        },
    )
    .await
    .expect("open the store on the small disk");
    let claimed = claimed_job(&db, "build").await;
    let (job_id, lease) = (&claimed.job.id, &claimed.lease_id);

    let filler = disk.fill();

    let chunk: Vec<u8> = (0..64 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
    let mut acknowledged = 0u64;
    let refusal = loop {
        match db
            .append_log_chunk(job_id, lease, acknowledged, &chunk)
            .await
        {
            Ok(appended) => {
                acknowledged = appended.next_offset;
                assert!(acknowledged < 64 << 20, "the disk never filled up");
            }
            Err(error) => break error,
        }
    };
    match &refusal {
        LogAppendError::Store(error) => {
            assert!(error.is_transient(), "{error}");
            assert!(error.to_string().contains("full"), "{error}");
        }
        other => panic!("not a store error: {other:?}"),
    }
    assert_eq!(
        db.get_job(job_id).await.expect("job").log_size,
        acknowledged
    );

    std::fs::remove_file(&filler).expect("free the space");
    let resent = db
        .append_log_chunk(job_id, lease, acknowledged, &chunk)
        .await
        .expect("taken once there is room");
    assert_eq!(resent.next_offset, acknowledged + chunk.len() as u64);
    let log = db
        .read_log(job_id, 0..resent.next_offset)
        .await
        .expect("read the log");
    assert_eq!(log.len() as u64, resent.next_offset);
    assert!(
        log.chunks(chunk.len())
            .all(|piece| piece == &chunk[..piece.len()])
    );
    db.close().await;
    drop(disk);
}
