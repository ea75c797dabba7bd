//! `secrets`: sealed secret values, per repository or global (`repository_id` NULL). The store
//! never sees a plaintext: `secret.rs` seals before [`Db::upsert_secret`] and opens what
//! [`Db::find_secret`] and [`Db::list_secrets_for_repository`] return. Names are stored as given;
//! callers normalise them (GitHub compares secret names without case).

use super::column::RowExt;
use super::{Db, RepositoryId, SecretId, StoreError};
use sqlx::any::AnyRow;

/// A secret with its sealed value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    pub id: SecretId,
    /// `None`: a global secret, visible to every repository.
    pub repository_id: Option<RepositoryId>,
    pub name: String,
    /// Key version byte, nonce and ciphertext, as `secret.rs` sealed it.
    pub sealed: Vec<u8>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("id", &self.id)
            .field("repository_id", &self.repository_id)
            .field("name", &self.name)
            .field("sealed", &format_args!("<{} bytes>", self.sealed.len()))
            .finish_non_exhaustive()
    }
}

/// A secret without its value (what lists and the API show).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretMeta {
    pub id: SecretId,
    pub repository_id: Option<RepositoryId>,
    pub name: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

fn decode(row: &AnyRow) -> Result<Secret, StoreError> {
    Ok(Secret {
        id: SecretId::from(row.text("id")?),
        repository_id: row.opt_text("repository_id")?.map(RepositoryId::from),
        name: row.text("name")?,
        sealed: row.bytes("sealed")?,
        created_ms: row.int("created_ms")?,
        updated_ms: row.int("updated_ms")?,
    })
}

fn decode_meta(row: &AnyRow) -> Result<SecretMeta, StoreError> {
    Ok(SecretMeta {
        id: SecretId::from(row.text("id")?),
        repository_id: row.opt_text("repository_id")?.map(RepositoryId::from),
        name: row.text("name")?,
        created_ms: row.int("created_ms")?,
        updated_ms: row.int("updated_ms")?,
    })
}

impl Db {
    /// Stores a sealed secret for a repository (or globally with `None`), replacing the value
    /// of a secret of the same name there (its id and creation time stay). `NotFound` (as a
    /// backend error) if the repository does not exist.
    pub async fn upsert_secret(
        &self,
        repository_id: Option<&RepositoryId>,
        name: &str,
        sealed: &[u8],
        now_ms: i64,
    ) -> Result<SecretMeta, StoreError> {
        let id = SecretId::generate();
        write_tx!(self, "upsert_secret", |conn| {
            let sql = match repository_id {
                Some(_) => {
                    "INSERT INTO secrets (id, repository_id, name, sealed, created_ms, updated_ms) \
                     VALUES ($1, $2, $3, $4, $5, $5) \
                     ON CONFLICT (repository_id, name) WHERE repository_id IS NOT NULL \
                     DO UPDATE SET sealed = excluded.sealed, updated_ms = excluded.updated_ms \
                     RETURNING id, repository_id, name, created_ms, updated_ms"
                }
                None => {
                    "INSERT INTO secrets (id, repository_id, name, sealed, created_ms, updated_ms) \
                     VALUES ($1, $2, $3, $4, $5, $5) \
                     ON CONFLICT (name) WHERE repository_id IS NULL \
                     DO UPDATE SET sealed = excluded.sealed, updated_ms = excluded.updated_ms \
                     RETURNING id, repository_id, name, created_ms, updated_ms"
                }
            };
            let row = sqlx::query(sql)
                .bind(id.as_str())
                .bind(repository_id.map(RepositoryId::as_str))
                .bind(name)
                .bind(sealed)
                .bind(now_ms)
                .fetch_one(&mut *conn)
                .await?;
            decode_meta(&row)
        })
    }

    /// The secret `name` of a repository (or the global one with `None`), sealed. Only that
    /// scope is searched; see [`Db::list_secrets_for_repository`] for what a job receives.
    pub async fn find_secret(
        &self,
        repository_id: Option<&RepositoryId>,
        name: &str,
    ) -> Result<Option<Secret>, StoreError> {
        read_conn!(self, "find_secret", |conn| {
            let sql = match repository_id {
                Some(_) => {
                    "SELECT id, repository_id, name, sealed, created_ms, updated_ms FROM secrets \
                     WHERE repository_id = $1 AND name = $2"
                }
                None => {
                    "SELECT id, repository_id, name, sealed, created_ms, updated_ms FROM secrets \
                     WHERE repository_id IS NULL AND name = $2 AND $1 IS NULL"
                }
            };
            let row = sqlx::query(sql)
                .bind(repository_id.map(RepositoryId::as_str))
                .bind(name)
                .fetch_optional(&mut *conn)
                .await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// The secrets of a repository (or the global ones with `None`), without values, by name.
    pub async fn list_secrets(
        &self,
        repository_id: Option<&RepositoryId>,
    ) -> Result<Vec<SecretMeta>, StoreError> {
        read_conn!(self, "list_secrets", |conn| {
            let sql = match repository_id {
                Some(_) => {
                    "SELECT id, repository_id, name, created_ms, updated_ms FROM secrets \
                     WHERE repository_id = $1 ORDER BY name"
                }
                None => {
                    "SELECT id, repository_id, name, created_ms, updated_ms FROM secrets \
                     WHERE repository_id IS NULL AND $1 IS NULL ORDER BY name"
                }
            };
            let rows = sqlx::query(sql)
                .bind(repository_id.map(RepositoryId::as_str))
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(decode_meta).collect()
        })
    }

    /// The secrets a run of the repository can see, sealed: the repository's own and the global
    /// ones, a repository secret hiding a global one of the same name. By name.
    pub async fn list_secrets_for_repository(
        &self,
        repository_id: &RepositoryId,
    ) -> Result<Vec<Secret>, StoreError> {
        read_conn!(self, "list_secrets_for_repository", |conn| {
            let rows = sqlx::query(
                "SELECT id, repository_id, name, sealed, created_ms, updated_ms FROM secrets s \
                 WHERE s.repository_id = $1 OR (s.repository_id IS NULL AND NOT EXISTS \
                 (SELECT 1 FROM secrets o WHERE o.repository_id = $1 AND o.name = s.name)) \
                 ORDER BY name",
            )
            .bind(repository_id.as_str())
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(decode).collect()
        })
    }

    /// Deletes a secret. `NotFound` when absent.
    pub async fn delete_secret(
        &self,
        repository_id: Option<&RepositoryId>,
        name: &str,
    ) -> Result<(), StoreError> {
        write_tx!(self, "delete_secret", |conn| {
            let sql = match repository_id {
                Some(_) => "DELETE FROM secrets WHERE repository_id = $1 AND name = $2",
                None => {
                    "DELETE FROM secrets WHERE repository_id IS NULL AND name = $2 AND $1 IS NULL"
                }
            };
            let done = sqlx::query(sql)
                .bind(repository_id.map(RepositoryId::as_str))
                .bind(name)
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("secret", name));
            }
            Ok(())
        })
    }
}

/// Where a sealed value is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SealedAt {
    /// `secrets.sealed` of a secret (repository `None`: global).
    Secret {
        id: SecretId,
        repository_id: Option<RepositoryId>,
        name: String,
    },
    /// `repositories.webhook_secret`.
    WebhookSecret(RepositoryId),
    /// `repositories.status_token`.
    StatusToken(RepositoryId),
}

/// A sealed value and where it is ([`Db::list_sealed_values`]).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub at: SealedAt,
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for SealedValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedValue")
            .field("at", &self.at)
            .field("sealed", &format_args!("<{} bytes>", self.sealed.len()))
            .finish()
    }
}

impl Db {
    /// Every sealed value of the store: secrets, webhook secrets, status tokens.
    pub async fn list_sealed_values(&self) -> Result<Vec<SealedValue>, StoreError> {
        read_conn!(self, "list_sealed_values", |conn| {
            let mut values = Vec::new();
            let rows =
                sqlx::query("SELECT id, repository_id, name, sealed FROM secrets ORDER BY id")
                    .fetch_all(&mut *conn)
                    .await?;
            for row in &rows {
                values.push(SealedValue {
                    at: SealedAt::Secret {
                        id: SecretId::from(row.text("id")?),
                        repository_id: row.opt_text("repository_id")?.map(RepositoryId::from),
                        name: row.text("name")?,
                    },
                    sealed: row.bytes("sealed")?,
                });
            }
            let rows = sqlx::query(
                "SELECT id, webhook_secret, status_token FROM repositories ORDER BY id",
            )
            .fetch_all(&mut *conn)
            .await?;
            for row in &rows {
                let id = RepositoryId::from(row.text("id")?);
                if let Some(sealed) = row.opt_bytes("webhook_secret")? {
                    values.push(SealedValue {
                        at: SealedAt::WebhookSecret(id.clone()),
                        sealed,
                    });
                }
                if let Some(sealed) = row.opt_bytes("status_token")? {
                    values.push(SealedValue {
                        at: SealedAt::StatusToken(id),
                        sealed,
                    });
                }
            }
            Ok(values)
        })
    }

    /// Replaces sealed values (key rotation), all in one transaction: each `(value, new)` is
    /// written where `value` is, if it still holds `value.sealed` (a value changed meanwhile
    /// keeps its change). Answers how many were replaced.
    pub async fn replace_sealed_values(
        &self,
        changes: &[(SealedValue, Vec<u8>)],
    ) -> Result<usize, StoreError> {
        write_tx!(self, "replace_sealed_values", |conn| {
            let mut replaced = 0;
            for (value, new) in changes {
                let (sql, id) = match &value.at {
                    SealedAt::Secret { id, .. } => (
                        "UPDATE secrets SET sealed = $2 WHERE id = $1 AND sealed = $3",
                        id.as_str(),
                    ),
                    SealedAt::WebhookSecret(id) => (
                        "UPDATE repositories SET webhook_secret = $2 WHERE id = $1 \
                         AND webhook_secret = $3",
                        id.as_str(),
                    ),
                    SealedAt::StatusToken(id) => (
                        "UPDATE repositories SET status_token = $2 WHERE id = $1 \
                         AND status_token = $3",
                        id.as_str(),
                    ),
                };
                let done = sqlx::query(sql)
                    .bind(id)
                    .bind(new.as_slice())
                    .bind(value.sealed.as_slice())
                    .execute(&mut *conn)
                    .await?;
                replaced += usize::try_from(done.rows_affected()).unwrap_or(0);
            }
            Ok(replaced)
        })
    }
}
