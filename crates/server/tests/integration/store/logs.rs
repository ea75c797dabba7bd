//! Job logs: appended by offset, idempotent, gaps and mismatches refused, capped with a marker
//! (A3, B3, S4).

use super::fixture::{Fixture, NOW, claimed_job};
use gantry_protocol::Conclusion;
use gantry_server::store::{
    FinishOutcome, JobFinish, LogAppendError, StoreConfig, TRUNCATION_MARKER,
};
use indexmap::IndexMap;

async fn a_resent_chunk_is_accepted_without_storing_it_twice(fx: Fixture) {
    let db = fx.db().await;
    let claimed = claimed_job(&db, "build").await;
    let (job_id, lease) = (&claimed.job.id, &claimed.lease_id);
    let first = db
        .append_log_chunk(job_id, lease, 0, b"hello ")
        .await
        .expect("append");
    assert_eq!(first.next_offset, 6);
    assert!(!first.truncated && !first.cancel_requested);
    // The same chunk again (its answer was lost).
    let again = db
        .append_log_chunk(job_id, lease, 0, b"hello ")
        .await
        .expect("again");
    assert_eq!(again.next_offset, 6);
    // A chunk repeating part of the log and adding more: only the new tail is stored.
    let overlap = db
        .append_log_chunk(job_id, lease, 3, b"lo world\n")
        .await
        .expect("overlap");
    assert_eq!(overlap.next_offset, 12);
    // An empty chunk at the end.
    assert_eq!(
        db.append_log_chunk(job_id, lease, 12, b"")
            .await
            .expect("empty")
            .next_offset,
        12
    );

    assert_eq!(
        db.read_log(job_id, 0..u64::MAX).await.expect("read"),
        b"hello world\n"
    );
    assert_eq!(db.log_size(job_id).await.expect("size"), 12);
    // Ranges, as HTTP Range and a live log resuming from an offset read them.
    assert_eq!(db.read_log(job_id, 6..11).await.expect("range"), b"world");
    assert_eq!(
        db.read_log(job_id, 4..7).await.expect("across chunks"),
        b"o w"
    );
    assert!(
        db.read_log(job_id, 12..20)
            .await
            .expect("past the end")
            .is_empty()
    );
    let state = db.log_state(job_id).await.expect("state");
    assert_eq!(
        (state.size, state.truncated, state.complete),
        (12, false, false)
    );
}

async fn a_gap_is_refused_with_the_expected_offset(fx: Fixture) {
    let db = fx.db().await;
    let claimed = claimed_job(&db, "build").await;
    let (job_id, lease) = (&claimed.job.id, &claimed.lease_id);
    db.append_log_chunk(job_id, lease, 0, b"abc")
        .await
        .expect("append");
    let gap = db.append_log_chunk(job_id, lease, 5, b"fgh").await;
    assert!(
        matches!(gap, Err(LogAppendError::Gap { expected: 3 })),
        "{gap:?}"
    );
    assert_eq!(db.log_size(job_id).await.expect("size"), 3);
}

async fn a_chunk_that_contradicts_the_stored_log_is_refused(fx: Fixture) {
    let db = fx.db().await;
    let claimed = claimed_job(&db, "build").await;
    let (job_id, lease) = (&claimed.job.id, &claimed.lease_id);
    db.append_log_chunk(job_id, lease, 0, b"abcdef")
        .await
        .expect("append");
    let mismatch = db.append_log_chunk(job_id, lease, 2, b"cdXfgh").await;
    assert!(
        matches!(mismatch, Err(LogAppendError::Conflict { offset: 4 })),
        "{mismatch:?}"
    );
    // Nothing of the refused chunk was stored, not even its new tail.
    assert_eq!(db.read_log(job_id, 0..100).await.expect("read"), b"abcdef");
}

async fn a_log_past_the_cap_ends_with_one_marker_and_the_job_still_finishes(fx: Fixture) {
    let config = StoreConfig {
        log_cap_bytes: 10,
        ..StoreConfig::default()
    };
    let db = fx.db_with(config).await;
    let claimed = claimed_job(&db, "build").await;
    let (job_id, lease) = (&claimed.job.id, &claimed.lease_id);
    let below = db
        .append_log_chunk(job_id, lease, 0, b"0123456")
        .await
        .expect("append");
    assert!(!below.truncated);
    let crossing = db
        .append_log_chunk(job_id, lease, 7, b"789abcdef")
        .await
        .expect("cross");
    assert_eq!(crossing.next_offset, 16);
    assert!(crossing.truncated);
    // Later chunks are acknowledged (the agent moves on) but not stored; resends too.
    let past = db
        .append_log_chunk(job_id, lease, 16, b"more output")
        .await
        .expect("past");
    assert_eq!(past.next_offset, 27);
    assert!(past.truncated);
    let resend = db
        .append_log_chunk(job_id, lease, 5, b"56789abcdefmore")
        .await
        .expect("resend");
    assert_eq!(resend.next_offset, 27);
    let gap = db.append_log_chunk(job_id, lease, 30, b"x").await;
    assert!(
        matches!(gap, Err(LogAppendError::Gap { expected: 27 })),
        "{gap:?}"
    );

    let stored = db.read_log(job_id, 0..u64::MAX).await.expect("read");
    let expected = [b"0123456789".as_slice(), TRUNCATION_MARKER.as_bytes()].concat();
    assert_eq!(stored, expected, "{}", String::from_utf8_lossy(&stored));
    let state = db.log_state(job_id).await.expect("state");
    assert_eq!(state.size, expected.len() as u64);
    assert!(state.truncated);

    // The job's status is the agent's, whatever the cap did to its log.
    let finish = JobFinish {
        conclusion: Conclusion::Success,
        reason: None,
        outputs: IndexMap::new(),
        log_size: 27,
    };
    let outcome = db
        .finish_job(job_id, lease, &finish, NOW + 10)
        .await
        .expect("finish");
    let FinishOutcome::Recorded(job) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(job.conclusion, Some(Conclusion::Success));
    assert!(job.log_truncated);
    assert_eq!((job.log_size, job.log_stored), (27, expected.len() as u64));
    assert!(db.log_state(job_id).await.expect("state").complete);
}

async fn binary_log_bytes_come_back_unchanged(fx: Fixture) {
    let db = fx.db().await;
    let claimed = claimed_job(&db, "build").await;
    let (job_id, lease) = (&claimed.job.id, &claimed.lease_id);
    let bytes: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    let mut offset = 0;
    for chunk in bytes.chunks(100) {
        offset = db
            .append_log_chunk(job_id, lease, offset, chunk)
            .await
            .expect("append")
            .next_offset;
    }
    assert_eq!(db.read_log(job_id, 0..offset).await.expect("read"), bytes);
    let missing = db.read_log(&"job_missing".into(), 0..1).await;
    assert!(missing.is_err());
}

store_tests!(
    a_resent_chunk_is_accepted_without_storing_it_twice,
    a_gap_is_refused_with_the_expected_offset,
    a_chunk_that_contradicts_the_stored_log_is_refused,
    a_log_past_the_cap_ends_with_one_marker_and_the_job_still_finishes,
    binary_log_bytes_come_back_unchanged,
);
