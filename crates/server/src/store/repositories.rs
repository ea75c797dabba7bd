//! `repositories`: the repositories Gantry builds. Webhook secrets and status tokens arrive
//! sealed (by `secret.rs`) and are returned sealed.

use super::column::{RowExt, flag};
use super::{Db, RepositoryId, StoreError};
use crate::forge::Forge;
use sqlx::any::AnyRow;

/// A registered repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    pub id: RepositoryId,
    /// `owner/repo` (for GitLab the project path); unique.
    pub name: String,
    pub clone_url: String,
    pub forge: Forge,
    /// The webhook secret, sealed. `None` refuses unsigned deliveries unless `allow_unsigned`.
    pub webhook_secret: Option<Vec<u8>>,
    pub allow_unsigned: bool,
    /// The forge API base for commit statuses (`https://api.github.com`).
    pub status_url: Option<String>,
    /// The token for commit statuses, sealed.
    pub status_token: Option<Vec<u8>>,
    pub created_ms: i64,
}

/// A repository to register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewRepository {
    pub name: String,
    pub clone_url: String,
    pub forge: Forge,
    pub webhook_secret: Option<Vec<u8>>,
    pub allow_unsigned: bool,
    pub status_url: Option<String>,
    pub status_token: Option<Vec<u8>>,
}

/// Changes to a repository; `None` leaves a field as it is. The `Option<Option<_>>` fields set
/// (`Some(Some(v))`) or clear (`Some(None)`) a nullable column.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepositoryUpdate {
    pub clone_url: Option<String>,
    pub webhook_secret: Option<Option<Vec<u8>>>,
    pub allow_unsigned: Option<bool>,
    pub status_url: Option<Option<String>>,
    pub status_token: Option<Option<Vec<u8>>>,
}

const COLUMNS: &str = "id, name, clone_url, forge, webhook_secret, allow_unsigned, status_url, \
                       status_token, created_ms";

fn decode(row: &AnyRow) -> Result<Repository, StoreError> {
    let forge = row.text("forge")?;
    Ok(Repository {
        id: RepositoryId::from(row.text("id")?),
        name: row.text("name")?,
        clone_url: row.text("clone_url")?,
        forge: forge
            .parse()
            .map_err(|_| StoreError::corrupt("forge", &forge))?,
        webhook_secret: row.opt_bytes("webhook_secret")?,
        allow_unsigned: row.flag("allow_unsigned")?,
        status_url: row.opt_text("status_url")?,
        status_token: row.opt_bytes("status_token")?,
        created_ms: row.int("created_ms")?,
    })
}

impl Db {
    /// Registers a repository. `Conflict` when the name is taken.
    pub async fn insert_repository(
        &self,
        new: &NewRepository,
        now_ms: i64,
    ) -> Result<Repository, StoreError> {
        let id = RepositoryId::generate();
        write_tx!(self, "insert_repository", |conn| {
            sqlx::query(
                "INSERT INTO repositories (id, name, clone_url, forge, webhook_secret, \
                 allow_unsigned, status_url, status_token, created_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(id.as_str())
            .bind(new.name.as_str())
            .bind(new.clone_url.as_str())
            .bind(new.forge.as_str())
            .bind(new.webhook_secret.as_deref())
            .bind(flag(new.allow_unsigned))
            .bind(new.status_url.as_deref())
            .bind(new.status_token.as_deref())
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })?;
        Ok(Repository {
            id,
            name: new.name.clone(),
            clone_url: new.clone_url.clone(),
            forge: new.forge,
            webhook_secret: new.webhook_secret.clone(),
            allow_unsigned: new.allow_unsigned,
            status_url: new.status_url.clone(),
            status_token: new.status_token.clone(),
            created_ms: now_ms,
        })
    }

    pub async fn find_repository(
        &self,
        id: &RepositoryId,
    ) -> Result<Option<Repository>, StoreError> {
        read_conn!(self, "find_repository", |conn| {
            let sql =
                sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM repositories WHERE id = $1"));
            let row = sqlx::query(sql)
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            row.as_ref().map(decode).transpose()
        })
    }

    pub async fn get_repository(&self, id: &RepositoryId) -> Result<Repository, StoreError> {
        self.find_repository(id)
            .await?
            .ok_or_else(|| StoreError::not_found("repository", id))
    }

    /// The repository named `owner/repo` (exact match).
    pub async fn find_repository_by_name(
        &self,
        name: &str,
    ) -> Result<Option<Repository>, StoreError> {
        read_conn!(self, "find_repository_by_name", |conn| {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM repositories WHERE name = $1"
            ));
            let row = sqlx::query(sql)
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// All repositories, by name.
    pub async fn list_repositories(&self) -> Result<Vec<Repository>, StoreError> {
        read_conn!(self, "list_repositories", |conn| {
            let sql =
                sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM repositories ORDER BY name"));
            let rows = sqlx::query(sql).fetch_all(&mut *conn).await?;
            rows.iter().map(decode).collect()
        })
    }

    /// Applies `update` and returns the repository as stored. `NotFound` when absent.
    pub async fn update_repository(
        &self,
        id: &RepositoryId,
        update: &RepositoryUpdate,
    ) -> Result<Repository, StoreError> {
        write_tx!(self, "update_repository", |conn| {
            let sql = sqlx::AssertSqlSafe(format!(
                "UPDATE repositories SET \
                 clone_url = CASE WHEN $2 = 1 THEN $3 ELSE clone_url END, \
                 webhook_secret = CASE WHEN $4 = 1 THEN $5 ELSE webhook_secret END, \
                 allow_unsigned = CASE WHEN $6 = 1 THEN $7 ELSE allow_unsigned END, \
                 status_url = CASE WHEN $8 = 1 THEN $9 ELSE status_url END, \
                 status_token = CASE WHEN $10 = 1 THEN $11 ELSE status_token END \
                 WHERE id = $1 RETURNING {COLUMNS}"
            ));
            let row = sqlx::query(sql)
                .bind(id.as_str())
                .bind(flag(update.clone_url.is_some()))
                .bind(update.clone_url.as_deref().unwrap_or_default())
                .bind(flag(update.webhook_secret.is_some()))
                .bind(update.webhook_secret.clone().flatten())
                .bind(flag(update.allow_unsigned.is_some()))
                .bind(flag(update.allow_unsigned.unwrap_or_default()))
                .bind(flag(update.status_url.is_some()))
                .bind(update.status_url.clone().flatten())
                .bind(flag(update.status_token.is_some()))
                .bind(update.status_token.clone().flatten())
                .fetch_optional(&mut *conn)
                .await?;
            match row {
                Some(row) => decode(&row),
                None => Err(StoreError::not_found("repository", id)),
            }
        })
    }

    /// Deletes a repository with everything that belongs to it (deliveries, runs, jobs, logs,
    /// secrets, slots, statuses). `NotFound` when absent.
    pub async fn delete_repository(&self, id: &RepositoryId) -> Result<(), StoreError> {
        write_tx!(self, "delete_repository", |conn| {
            let done = sqlx::query("DELETE FROM repositories WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("repository", id));
            }
            Ok(())
        })
    }
}
