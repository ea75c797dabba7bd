//! `log_chunks`: a job's log, appended by its agent in chunks at byte offsets and read back by
//! range (HTTP Range, server-sent events resuming from an offset).
//!
//! The agent's offsets count every byte it sent (`jobs.log_size`, the next offset expected).
//! Up to the cap ([`StoreConfig::log_cap_bytes`](super::StoreConfig::log_cap_bytes)) the
//! stored log is those bytes at the same offsets; when a chunk crosses the cap, the bytes below
//! it are stored, then [`TRUNCATION_MARKER`] once, and later bytes are acknowledged but dropped
//! (`jobs.log_stored` stops growing, `jobs.log_truncated` is set). The job's status is never
//! affected by the cap (B3). A chunk and the job's sizes are written in one transaction, so the
//! stored log always matches `log_stored` (S4).

use super::column::{RowExt, flag, size};
use super::jobs::LeasedJob;
use super::{Db, JobId, LeaseId, LogAppendError, StoreError};
use sqlx::AnyConnection;
use std::ops::Range;

/// The line stored once when a job's log reaches the cap.
pub const TRUNCATION_MARKER: &str =
    "\n[gantry] The log reached its size limit: the rest of this job's output was not stored.\n";

/// Answer to [`Db::append_log_chunk`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogAppended {
    /// The offset the agent's next chunk starts at.
    pub next_offset: u64,
    /// The log reached the cap; later bytes are dropped.
    pub truncated: bool,
    /// A cancel was requested for the job.
    pub cancel_requested: bool,
}

/// A job's log as stored, for readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogState {
    /// Bytes stored: the end for [`Db::read_log`].
    pub size: u64,
    pub truncated: bool,
    /// The job completed: the log will not grow any more.
    pub complete: bool,
}

/// Reads stored bytes `[start, end)` of a job's log (clamped to what is stored).
async fn read_stored(
    conn: &mut AnyConnection,
    job_id: &JobId,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, StoreError> {
    if start >= end {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT byte_offset, data FROM log_chunks WHERE job_id = $1 \
         AND byte_offset >= (SELECT COALESCE(MAX(byte_offset), 0) FROM log_chunks \
         WHERE job_id = $1 AND byte_offset <= $2) \
         AND byte_offset < $3 ORDER BY byte_offset",
    )
    .bind(job_id.as_str())
    .bind(size(start))
    .bind(size(end))
    .fetch_all(&mut *conn)
    .await?;
    let capacity = usize::try_from(end - start)
        .unwrap_or(0)
        .min(16 * 1024 * 1024);
    let mut out = Vec::with_capacity(capacity);
    for row in &rows {
        let chunk_start = row.unsigned("byte_offset")?;
        let data = row.bytes("data")?;
        let chunk_end = chunk_start + data.len() as u64;
        let from = start.max(chunk_start);
        let to = end.min(chunk_end);
        if from >= to {
            continue;
        }
        if from != start + out.len() as u64 {
            return Err(StoreError::corrupt(
                "log chunks",
                format!(
                    "job {job_id}: no bytes stored at offset {}",
                    start + out.len() as u64
                ),
            ));
        }
        let lo =
            usize::try_from(from - chunk_start).map_err(|e| StoreError::corrupt("log chunk", e))?;
        let hi =
            usize::try_from(to - chunk_start).map_err(|e| StoreError::corrupt("log chunk", e))?;
        out.extend_from_slice(&data[lo..hi]);
    }
    Ok(out)
}

async fn insert_chunk(
    conn: &mut AnyConnection,
    job_id: &JobId,
    offset: u64,
    data: &[u8],
) -> Result<(), StoreError> {
    if data.is_empty() {
        return Ok(());
    }
    sqlx::query("INSERT INTO log_chunks (job_id, byte_offset, data) VALUES ($1, $2, $3)")
        .bind(job_id.as_str())
        .bind(size(offset))
        .bind(data)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A job's log sizes after an append: `jobs.log_size`, `log_stored`, `log_truncated`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LogSizes {
    pub size: u64,
    pub stored: u64,
    pub truncated: bool,
}

/// Writes a job's log sizes to its row.
pub(crate) async fn store_log_sizes(
    conn: &mut AnyConnection,
    job_id: &JobId,
    sizes: LogSizes,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE jobs SET log_size = $2, log_stored = $3, log_truncated = $4 WHERE id = $1")
        .bind(job_id.as_str())
        .bind(size(sizes.size))
        .bind(size(sizes.stored))
        .bind(flag(sizes.truncated))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Stores what is new in a chunk and answers the new sizes, when they changed, for the caller
/// to write to the job's row in the same transaction.
pub(crate) async fn store_chunk(
    conn: &mut AnyConnection,
    job_id: &JobId,
    job: LeasedJob,
    offset: u64,
    bytes: &[u8],
    cap: u64,
) -> Result<Result<(LogAppended, Option<LogSizes>), LogAppendError>, StoreError> {
    let received = job.log_size;
    let answer = |next_offset, truncated| LogAppended {
        next_offset,
        truncated,
        cancel_requested: job.cancel_requested,
    };
    if offset > received {
        return Ok(Err(LogAppendError::Gap { expected: received }));
    }
    let end = offset + bytes.len() as u64;
    // Bytes already received are compared with the stored ones (those below the cap; beyond it
    // nothing was kept to compare with).
    let check_end = end
        .min(received)
        .min(if job.log_truncated { cap } else { received });
    if offset < check_end {
        let stored = read_stored(conn, job_id, offset, check_end).await?;
        let sent = &bytes[..stored.len()];
        if let Some(at) = stored.iter().zip(sent).position(|(a, b)| a != b) {
            return Ok(Err(LogAppendError::Conflict {
                offset: offset + at as u64,
            }));
        }
        if (stored.len() as u64) < check_end - offset {
            return Err(StoreError::corrupt(
                "log chunks",
                format!("job {job_id}: fewer bytes stored than its log size"),
            ));
        }
    }
    if end <= received {
        return Ok(Ok((answer(received, job.log_truncated), None)));
    }
    // The new tail: [received, end).
    let tail = &bytes
        [usize::try_from(received - offset).map_err(|e| StoreError::corrupt("log offset", e))?..];
    let mut stored = job.log_stored;
    let mut truncated = job.log_truncated;
    if !truncated {
        let room = cap.saturating_sub(received);
        let keep = usize::try_from(room).unwrap_or(usize::MAX).min(tail.len());
        insert_chunk(conn, job_id, received, &tail[..keep]).await?;
        stored = received + keep as u64;
        if keep < tail.len() {
            insert_chunk(conn, job_id, stored, TRUNCATION_MARKER.as_bytes()).await?;
            stored += TRUNCATION_MARKER.len() as u64;
            truncated = true;
        }
    }
    let sizes = LogSizes {
        size: end,
        stored,
        truncated,
    };
    Ok(Ok((answer(end, truncated), Some(sizes))))
}

impl Db {
    /// Appends the agent's bytes at `offset` of the job's log, under its lease.
    ///
    /// - `offset` equal to the received size: stored; the answer's `next_offset` is the end.
    /// - A chunk covering bytes already received (a retry after a lost answer): accepted; only
    ///   the part past the received size is stored. If the bytes it repeats differ from the
    ///   stored ones: `Conflict` at the first differing offset, and nothing is stored.
    /// - `offset` past the received size: `Gap { expected }`; nothing is stored.
    /// - Past the cap: the bytes are accepted and dropped (see the module docs); `truncated`.
    /// - `StaleLease` when the lease is not current; `Store(NotFound)` for an unknown job.
    ///
    /// The answer carries the job's cancel flag.
    pub async fn append_log_chunk(
        &self,
        job_id: &JobId,
        lease_id: &LeaseId,
        offset: u64,
        bytes: &[u8],
    ) -> Result<LogAppended, LogAppendError> {
        let cap = self.config().log_cap_bytes;
        let outcome = lease_tx!(self, "append_log_chunk", job_id, lease_id, |conn, job| {
            let appended = store_chunk(conn, job_id, job, offset, bytes, cap).await?;
            if let Ok((_, Some(sizes))) = &appended {
                store_log_sizes(conn, job_id, *sizes).await?;
            }
            Ok(appended.map(|(answer, _)| answer))
        })?;
        match outcome {
            Some(result) => result,
            None => Err(LogAppendError::StaleLease),
        }
    }

    /// Stored bytes `range` of a job's log, clamped to the stored size (so a range past the end
    /// is empty). Reads can run while the job still writes: they see whole chunks only.
    /// `NotFound` when the job does not exist.
    pub async fn read_log(&self, job_id: &JobId, range: Range<u64>) -> Result<Vec<u8>, StoreError> {
        read_conn!(self, "read_log", |conn| {
            let stored: Option<i64> =
                sqlx::query_scalar("SELECT log_stored FROM jobs WHERE id = $1")
                    .bind(job_id.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
            let Some(stored) = stored else {
                return Err(StoreError::not_found("job", job_id));
            };
            let stored =
                u64::try_from(stored).map_err(|_| StoreError::corrupt("log_stored", stored))?;
            read_stored(conn, job_id, range.start, range.end.min(stored)).await
        })
    }

    /// Bytes stored for a job's log. `NotFound` when the job does not exist.
    pub async fn log_size(&self, job_id: &JobId) -> Result<u64, StoreError> {
        Ok(self.log_state(job_id).await?.size)
    }

    /// A job's log size, truncation and whether it is complete, in one read (for live logs:
    /// read to `size`, stop once `complete`).
    pub async fn log_state(&self, job_id: &JobId) -> Result<LogState, StoreError> {
        read_conn!(self, "log_state", |conn| {
            let row =
                sqlx::query("SELECT log_stored, log_truncated, status FROM jobs WHERE id = $1")
                    .bind(job_id.as_str())
                    .fetch_optional(&mut *conn)
                    .await?;
            let Some(row) = row else {
                return Err(StoreError::not_found("job", job_id));
            };
            Ok(LogState {
                size: row.unsigned("log_stored")?,
                truncated: row.flag("log_truncated")?,
                complete: row.text("status")? == "completed",
            })
        })
    }
}
