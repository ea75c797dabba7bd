//! `deliveries`: every webhook accepted, stored before the forge gets its 2xx, processed later
//! by the ingester (oldest first). A forge's delivery id is stored once: a redelivery or a
//! replay is recognised as a duplicate (C3).

use super::column::RowExt;
use super::runs::{NewRunWithJobs, Run};
use super::{Db, DeliveryId, RepositoryId, RunId, StoreError};
use crate::forge::Forge;
use sqlx::any::AnyRow;

/// A stored webhook delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub forge: Forge,
    /// The forge's delivery id (`X-GitHub-Delivery`, ...); unique per forge.
    pub delivery_id: String,
    pub repository_id: RepositoryId,
    /// The forge's event name (`push`, `pull_request`, `Push Hook`...).
    pub event: String,
    /// The raw body, byte for byte as received (and as signed).
    pub payload: Vec<u8>,
    pub received_ms: i64,
    /// When the ingester finished with it; `None`: still to do.
    pub processed_ms: Option<i64>,
    /// The last processing error (with `processed_ms` set: given up).
    pub error: Option<String>,
    /// Failed processing attempts so far.
    pub attempts: i64,
    /// Not offered to the ingester before this time (backoff after a failed attempt).
    pub next_attempt_ms: i64,
}

/// A delivery to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    pub forge: Forge,
    pub delivery_id: String,
    pub repository_id: RepositoryId,
    pub event: String,
    pub payload: Vec<u8>,
}

/// What [`Db::insert_delivery`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryInsert {
    /// Stored now, under this id.
    Inserted(DeliveryId),
    /// The forge's delivery id was stored before, under this id; nothing changed.
    Duplicate(DeliveryId),
}

impl DeliveryInsert {
    pub fn id(&self) -> &DeliveryId {
        match self {
            DeliveryInsert::Inserted(id) | DeliveryInsert::Duplicate(id) => id,
        }
    }
}

/// How the ingester finished with a delivery ([`Db::mark_delivery_processed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Processed; these runs came from it (possibly none: nothing was triggered). The runs
    /// themselves point at the delivery (`runs.delivery_id`).
    Runs(Vec<RunId>),
    /// Given up: the error is kept for the operator.
    Failed(String),
}

const COLUMNS: &str = "id, forge, delivery_id, repository_id, event, payload, received_ms, \
                       processed_ms, error, attempts, next_attempt_ms";

fn decode(row: &AnyRow) -> Result<Delivery, StoreError> {
    let forge = row.text("forge")?;
    Ok(Delivery {
        id: DeliveryId::from(row.text("id")?),
        forge: forge
            .parse()
            .map_err(|_| StoreError::corrupt("forge", &forge))?,
        delivery_id: row.text("delivery_id")?,
        repository_id: RepositoryId::from(row.text("repository_id")?),
        event: row.text("event")?,
        payload: row.bytes("payload")?,
        received_ms: row.int("received_ms")?,
        processed_ms: row.opt_int("processed_ms")?,
        error: row.opt_text("error")?,
        attempts: row.int("attempts")?,
        next_attempt_ms: row.int("next_attempt_ms")?,
    })
}

impl Db {
    /// Stores a delivery unless its forge delivery id is already stored. A duplicate is not an
    /// error: the webhook handler answers 2xx for it too, and nothing is processed twice.
    /// Concurrent inserts of the same delivery id store it once.
    pub async fn insert_delivery(
        &self,
        new: &NewDelivery,
        now_ms: i64,
    ) -> Result<DeliveryInsert, StoreError> {
        let id = DeliveryId::generate();
        write_tx!(self, "insert_delivery", |conn| {
            let done = sqlx::query(
                "INSERT INTO deliveries (id, forge, delivery_id, repository_id, event, payload, \
                 received_ms, next_attempt_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (forge, delivery_id) DO NOTHING",
            )
            .bind(id.as_str())
            .bind(new.forge.as_str())
            .bind(new.delivery_id.as_str())
            .bind(new.repository_id.as_str())
            .bind(new.event.as_str())
            .bind(new.payload.as_slice())
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
            if done.rows_affected() == 1 {
                return Ok(DeliveryInsert::Inserted(id.clone()));
            }
            let existing: String = sqlx::query_scalar(
                "SELECT id FROM deliveries WHERE forge = $1 AND delivery_id = $2",
            )
            .bind(new.forge.as_str())
            .bind(new.delivery_id.as_str())
            .fetch_one(&mut *conn)
            .await?;
            Ok(DeliveryInsert::Duplicate(DeliveryId::from(existing)))
        })
    }

    pub async fn find_delivery(&self, id: &DeliveryId) -> Result<Option<Delivery>, StoreError> {
        read_conn!(self, "find_delivery", |conn| {
            let sql =
                sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM deliveries WHERE id = $1"));
            let row = sqlx::query(sql)
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            row.as_ref().map(decode).transpose()
        })
    }

    pub async fn get_delivery(&self, id: &DeliveryId) -> Result<Delivery, StoreError> {
        self.find_delivery(id)
            .await?
            .ok_or_else(|| StoreError::not_found("delivery", id))
    }

    /// Deliveries still to process whose backoff has passed, oldest first (by receipt). A
    /// delivery stored before a crash is offered again after the restart.
    pub async fn list_unprocessed_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        read_conn!(self, "list_unprocessed_deliveries", |conn| {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM deliveries WHERE processed_ms IS NULL \
                 AND next_attempt_ms <= $1 ORDER BY received_ms, id LIMIT $2"
            ));
            let rows = sqlx::query(sql)
                .bind(now_ms)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(decode).collect()
        })
    }

    /// Recent deliveries of a repository, newest first (for the operator's view).
    pub async fn list_deliveries(
        &self,
        repository_id: &RepositoryId,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        read_conn!(self, "list_deliveries", |conn| {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM deliveries WHERE repository_id = $1 \
                 ORDER BY received_ms DESC, id DESC LIMIT $2"
            ));
            let rows = sqlx::query(sql)
                .bind(repository_id.as_str())
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(decode).collect()
        })
    }

    /// Marks a delivery processed: with its runs, or given up with an error. Marking it again
    /// overwrites the outcome. `NotFound` when absent.
    pub async fn mark_delivery_processed(
        &self,
        id: &DeliveryId,
        outcome: &DeliveryOutcome,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let error = match outcome {
            DeliveryOutcome::Runs(_) => None,
            DeliveryOutcome::Failed(error) => Some(error.as_str()),
        };
        write_tx!(self, "mark_delivery_processed", |conn| {
            let done =
                sqlx::query("UPDATE deliveries SET processed_ms = $2, error = $3 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(now_ms)
                    .bind(error)
                    .execute(&mut *conn)
                    .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("delivery", id));
            }
            Ok(())
        })
    }

    /// Records a failed processing attempt that is worth retrying: the delivery stays
    /// unprocessed, and is not offered again before `retry_at_ms`. Returns the attempts so far,
    /// so the ingester can give up ([`DeliveryOutcome::Failed`]) after a few.
    pub async fn record_delivery_attempt_failed(
        &self,
        id: &DeliveryId,
        error: &str,
        retry_at_ms: i64,
    ) -> Result<i64, StoreError> {
        write_tx!(self, "record_delivery_attempt_failed", |conn| {
            let attempts: Option<i64> = sqlx::query_scalar(
                "UPDATE deliveries SET attempts = attempts + 1, error = $2, next_attempt_ms = $3 \
                 WHERE id = $1 RETURNING attempts",
            )
            .bind(id.as_str())
            .bind(error)
            .bind(retry_at_ms)
            .fetch_optional(&mut *conn)
            .await?;
            attempts.ok_or_else(|| StoreError::not_found("delivery", id))
        })
    }

    /// The ingester's one transaction per delivery: inserts every run with its first jobs and
    /// statuses, and marks the delivery processed. Either all of it is stored or none.
    ///
    /// Idempotent: when the delivery is already processed (a retry after a lost answer, or a
    /// second ingester), nothing is inserted and the runs stored the first time are returned.
    pub async fn insert_runs_for_delivery(
        &self,
        delivery_id: &DeliveryId,
        runs: &[NewRunWithJobs],
        now_ms: i64,
    ) -> Result<Vec<Run>, StoreError> {
        let backend = self.backend();
        write_tx!(self, "insert_runs_for_delivery", |conn| {
            let lock = match backend {
                super::Backend::Sqlite => "SELECT processed_ms FROM deliveries WHERE id = $1",
                super::Backend::Postgres => {
                    "SELECT processed_ms FROM deliveries WHERE id = $1 FOR UPDATE"
                }
            };
            let processed: Option<Option<i64>> = sqlx::query_scalar(lock)
                .bind(delivery_id.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            match processed {
                None => return Err(StoreError::not_found("delivery", delivery_id)),
                Some(Some(_)) => {
                    return super::runs::select_runs_of_delivery(conn, delivery_id).await;
                }
                Some(None) => {}
            }
            let mut stored = Vec::with_capacity(runs.len());
            for new in runs {
                let mut run = new.run.clone();
                run.delivery_id = Some(delivery_id.clone());
                let (row, _jobs) =
                    super::runs::insert_run_rows(conn, &run, &new.jobs, &new.statuses, now_ms)
                        .await?;
                stored.push(row);
            }
            sqlx::query("UPDATE deliveries SET processed_ms = $2, error = NULL WHERE id = $1")
                .bind(delivery_id.as_str())
                .bind(now_ms)
                .execute(&mut *conn)
                .await?;
            Ok(stored)
        })
    }

    /// Forgets processed deliveries older than `before_ms` (their runs stay). Keep them at least
    /// as long as a forge may redeliver (GitHub: 3 days) so duplicates are still recognised.
    pub async fn delete_deliveries_processed_before(
        &self,
        before_ms: i64,
    ) -> Result<u64, StoreError> {
        write_tx!(self, "delete_deliveries_processed_before", |conn| {
            let done = sqlx::query(
                "DELETE FROM deliveries WHERE processed_ms IS NOT NULL AND received_ms < $1",
            )
            .bind(before_ms)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected())
        })
    }
}
