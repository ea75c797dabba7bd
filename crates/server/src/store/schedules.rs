//! `schedule_slots`: at most one run per cron slot. Several servers (or a restarted one) may
//! reach the same slot of a `schedule:` trigger; the one that claims the slot starts the run.

use super::{Db, RepositoryId, StoreError};

impl Db {
    /// Claims the slot at `slot_ms` of a workflow's schedule. True for exactly one caller per
    /// (repository, workflow file, slot), however many race; false for the others.
    pub async fn claim_schedule_slot(
        &self,
        repository_id: &RepositoryId,
        workflow_file: &str,
        slot_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        write_tx!(self, "claim_schedule_slot", |conn| {
            let done = sqlx::query(
                "INSERT INTO schedule_slots (repository_id, workflow_file, slot_ms, claimed_ms) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (repository_id, workflow_file, slot_ms) DO NOTHING",
            )
            .bind(repository_id.as_str())
            .bind(workflow_file)
            .bind(slot_ms)
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// The latest claimed slot of a workflow's schedule (where to resume after a restart).
    pub async fn find_last_schedule_slot(
        &self,
        repository_id: &RepositoryId,
        workflow_file: &str,
    ) -> Result<Option<i64>, StoreError> {
        read_conn!(self, "find_last_schedule_slot", |conn| {
            let last: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(slot_ms) FROM schedule_slots WHERE repository_id = $1 \
                 AND workflow_file = $2",
            )
            .bind(repository_id.as_str())
            .bind(workflow_file)
            .fetch_one(&mut *conn)
            .await?;
            Ok(last)
        })
    }

    /// Forgets slots older than `before_ms`.
    pub async fn delete_schedule_slots_before(&self, before_ms: i64) -> Result<u64, StoreError> {
        write_tx!(self, "delete_schedule_slots_before", |conn| {
            let done = sqlx::query("DELETE FROM schedule_slots WHERE slot_ms < $1")
                .bind(before_ms)
                .execute(&mut *conn)
                .await?;
            Ok(done.rows_affected())
        })
    }
}
