//! Queries only the REST API needs (`crate::api`).
//!
//! [`Db::insert_repository_with_id`]: the API seals a new repository's webhook secret and
//! status token with associated data naming the repository's id, so it picks the id before the
//! insert; the row and its sealed columns are then written in one transaction.

use super::column::flag;
use super::{Db, NewRepository, Repository, RepositoryId, StoreError};

impl Db {
    /// Registers a repository under an id chosen by the caller (see the module docs).
    /// `Conflict` when the name (or the id) is taken.
    pub async fn insert_repository_with_id(
        &self,
        id: &RepositoryId,
        new: &NewRepository,
        now_ms: i64,
    ) -> Result<Repository, StoreError> {
        write_tx!(self, "insert_repository_with_id", |conn| {
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
            id: id.clone(),
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
}
