//! `registration_tokens` and `api_tokens`. Tokens are random strings given once to a person or
//! an agent; the store keeps only their sha256 (hex), so a copy of the database lets nobody in.

use super::column::RowExt;
use super::ids::random_hex;
use super::{ApiTokenId, Db, RegistrationTokenId, StoreError};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;

/// The sha256 of a token, in lowercase hex: the only form in which tokens and agent credentials
/// are stored and looked up.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new random token: `prefix` then 64 hex digits (256 bits), e.g. `gantry_reg_…`.
pub fn generate_token(prefix: &str) -> String {
    format!("{prefix}{}{}", random_hex(), random_hex())
}

/// An agent registration token (without its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationToken {
    pub id: RegistrationTokenId,
    pub description: String,
    pub created_ms: i64,
    /// `None`: valid until revoked.
    pub expires_ms: Option<i64>,
    pub revoked: bool,
}

/// What an API token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiRole {
    Read,
    Write,
    Admin,
}

impl ApiRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiRole::Read => "read",
            ApiRole::Write => "write",
            ApiRole::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<ApiRole> {
        match text {
            "read" => Some(ApiRole::Read),
            "write" => Some(ApiRole::Write),
            "admin" => Some(ApiRole::Admin),
            _ => None,
        }
    }
}

/// An API token (without its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub name: String,
    pub role: ApiRole,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
}

fn decode_registration(row: &AnyRow) -> Result<RegistrationToken, StoreError> {
    Ok(RegistrationToken {
        id: RegistrationTokenId::from(row.text("id")?),
        description: row.text("description")?,
        created_ms: row.int("created_ms")?,
        expires_ms: row.opt_int("expires_ms")?,
        revoked: row.flag("revoked")?,
    })
}

fn decode_api(row: &AnyRow) -> Result<ApiToken, StoreError> {
    let role = row.text("role")?;
    Ok(ApiToken {
        id: ApiTokenId::from(row.text("id")?),
        name: row.text("name")?,
        role: ApiRole::parse(&role).ok_or_else(|| StoreError::corrupt("api token role", &role))?,
        created_ms: row.int("created_ms")?,
        last_used_ms: row.opt_int("last_used_ms")?,
    })
}

impl Db {
    /// Stores a registration token by its hash. `Conflict` if the hash is taken.
    pub async fn insert_registration_token(
        &self,
        token_hash: &str,
        description: &str,
        expires_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<RegistrationToken, StoreError> {
        let id = RegistrationTokenId::generate();
        write_tx!(self, "insert_registration_token", |conn| {
            sqlx::query(
                "INSERT INTO registration_tokens (id, token_hash, description, created_ms, \
                 expires_ms) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id.as_str())
            .bind(token_hash)
            .bind(description)
            .bind(now_ms)
            .bind(expires_ms)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })?;
        Ok(RegistrationToken {
            id,
            description: description.to_owned(),
            created_ms: now_ms,
            expires_ms,
            revoked: false,
        })
    }

    /// All registration tokens, newest first.
    pub async fn list_registration_tokens(&self) -> Result<Vec<RegistrationToken>, StoreError> {
        read_conn!(self, "list_registration_tokens", |conn| {
            let rows = sqlx::query(
                "SELECT id, description, created_ms, expires_ms, revoked FROM registration_tokens \
                 ORDER BY created_ms DESC, id",
            )
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(decode_registration).collect()
        })
    }

    /// Revokes a registration token (agents registered with it keep working). `NotFound` when
    /// absent.
    pub async fn revoke_registration_token(
        &self,
        id: &RegistrationTokenId,
    ) -> Result<(), StoreError> {
        write_tx!(self, "revoke_registration_token", |conn| {
            let done = sqlx::query("UPDATE registration_tokens SET revoked = 1 WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("registration token", id));
            }
            Ok(())
        })
    }

    /// Stores an API token by its hash. `Conflict` if the hash is taken.
    pub async fn insert_api_token(
        &self,
        name: &str,
        token_hash: &str,
        role: ApiRole,
        now_ms: i64,
    ) -> Result<ApiToken, StoreError> {
        let id = ApiTokenId::generate();
        write_tx!(self, "insert_api_token", |conn| {
            sqlx::query(
                "INSERT INTO api_tokens (id, name, token_hash, role, created_ms) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(id.as_str())
            .bind(name)
            .bind(token_hash)
            .bind(role.as_str())
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
            Ok(())
        })?;
        Ok(ApiToken {
            id,
            name: name.to_owned(),
            role,
            created_ms: now_ms,
            last_used_ms: None,
        })
    }

    /// The API token with this hash: the REST API's authentication.
    pub async fn find_api_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<ApiToken>, StoreError> {
        read_conn!(self, "find_api_token_by_hash", |conn| {
            let row = sqlx::query(
                "SELECT id, name, role, created_ms, last_used_ms FROM api_tokens \
                 WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(&mut *conn)
            .await?;
            row.as_ref().map(decode_api).transpose()
        })
    }

    /// All API tokens, by name.
    pub async fn list_api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        read_conn!(self, "list_api_tokens", |conn| {
            let rows = sqlx::query(
                "SELECT id, name, role, created_ms, last_used_ms FROM api_tokens ORDER BY name, id",
            )
            .fetch_all(&mut *conn)
            .await?;
            rows.iter().map(decode_api).collect()
        })
    }

    /// Records the token's use (callers may do this at most once a minute per token).
    pub async fn touch_api_token(&self, id: &ApiTokenId, now_ms: i64) -> Result<(), StoreError> {
        write_tx!(self, "touch_api_token", |conn| {
            sqlx::query("UPDATE api_tokens SET last_used_ms = $2 WHERE id = $1")
                .bind(id.as_str())
                .bind(now_ms)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
    }

    /// Deletes an API token; it stops working at once. `NotFound` when absent.
    pub async fn delete_api_token(&self, id: &ApiTokenId) -> Result<(), StoreError> {
        write_tx!(self, "delete_api_token", |conn| {
            let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1")
                .bind(id.as_str())
                .execute(&mut *conn)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("api token", id));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_hash_to_sha256_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let token = generate_token("gantry_reg_");
        assert!(token.starts_with("gantry_reg_"));
        assert_eq!(token.len(), "gantry_reg_".len() + 64);
    }
}
