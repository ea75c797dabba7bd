//! `agents`: registered agents. An agent registers with a registration token and receives a
//! credential; only the credential's sha256 is stored ([`hash_token`](super::hash_token)).

use super::column::{RowExt, from_json, to_json};
use super::jobs::ExpiredJob;
use super::{AgentId, Db, StoreError};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What an agent is doing, as it reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AgentStatus {
    Idle,
    Busy,
    /// Finishing its jobs, taking no new ones.
    Draining,
    Offline,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Idle => "idle",
            AgentStatus::Busy => "busy",
            AgentStatus::Draining => "draining",
            AgentStatus::Offline => "offline",
        }
    }

    fn parse(text: &str) -> Result<AgentStatus, StoreError> {
        match text {
            "idle" => Ok(AgentStatus::Idle),
            "busy" => Ok(AgentStatus::Busy),
            "draining" => Ok(AgentStatus::Draining),
            "offline" => Ok(AgentStatus::Offline),
            other => Err(StoreError::corrupt("agent status", other)),
        }
    }
}

/// A registered agent (its credential hash stays in the database).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub id: AgentId,
    pub name: String,
    pub labels: Vec<String>,
    pub version: String,
    pub status: AgentStatus,
    pub created_ms: i64,
    pub last_seen_ms: i64,
    pub revoked: bool,
}

/// An agent to register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAgent {
    pub name: String,
    pub labels: Vec<String>,
    pub version: String,
    /// sha256 hex of the credential given to the agent.
    pub credential_hash: String,
}

const COLUMNS: &str = "id, name, labels, version, status, created_ms, last_seen_ms, revoked";

fn decode(row: &AnyRow) -> Result<Agent, StoreError> {
    Ok(Agent {
        id: AgentId::from(row.text("id")?),
        name: row.text("name")?,
        labels: from_json("agent labels", &row.text("labels")?)?,
        version: row.text("version")?,
        status: AgentStatus::parse(&row.text("status")?)?,
        created_ms: row.int("created_ms")?,
        last_seen_ms: row.int("last_seen_ms")?,
        revoked: row.flag("revoked")?,
    })
}

async fn insert_agent_row(
    conn: &mut AnyConnection,
    new: &NewAgent,
    now_ms: i64,
) -> Result<Agent, StoreError> {
    let id = AgentId::generate();
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO agents (id, name, labels, credential_hash, version, status, created_ms, \
         last_seen_ms) VALUES ($1, $2, $3, $4, $5, 'idle', $6, $6) RETURNING {COLUMNS}"
    ));
    let row = sqlx::query(sql)
        .bind(id.as_str())
        .bind(new.name.as_str())
        .bind(to_json("agent labels", &new.labels)?)
        .bind(new.credential_hash.as_str())
        .bind(new.version.as_str())
        .bind(now_ms)
        .fetch_one(&mut *conn)
        .await?;
    decode(&row)
}

impl Db {
    /// Registers an agent directly (an operator's command). `Conflict` if the credential hash
    /// is taken.
    pub async fn insert_agent(&self, new: &NewAgent, now_ms: i64) -> Result<Agent, StoreError> {
        write_tx!(self, "insert_agent", |conn| {
            insert_agent_row(conn, new, now_ms).await
        })
    }

    /// Registers an agent that presents a registration token, in one transaction: the token
    /// (by its hash) must exist, not be revoked and not be expired at `now`; otherwise
    /// `NotFound` (the handler answers 401 without saying which). Tokens can be used by several
    /// agents until they expire or are revoked.
    pub async fn register_agent(
        &self,
        registration_token_hash: &str,
        new: &NewAgent,
        now_ms: i64,
    ) -> Result<Agent, StoreError> {
        write_tx!(self, "register_agent", |conn| {
            let valid: Option<String> = sqlx::query_scalar(
                "SELECT id FROM registration_tokens WHERE token_hash = $1 AND revoked = 0 \
                 AND (expires_ms IS NULL OR expires_ms > $2)",
            )
            .bind(registration_token_hash)
            .bind(now_ms)
            .fetch_optional(&mut *conn)
            .await?;
            if valid.is_none() {
                return Err(StoreError::not_found("registration token", "(presented)"));
            }
            insert_agent_row(conn, new, now_ms).await
        })
    }

    pub async fn find_agent(&self, id: &AgentId) -> Result<Option<Agent>, StoreError> {
        read_conn!(self, "find_agent", |conn| {
            let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM agents WHERE id = $1"));
            let row = sqlx::query(sql)
                .bind(id.as_str())
                .fetch_optional(&mut *conn)
                .await?;
            row.as_ref().map(decode).transpose()
        })
    }

    pub async fn get_agent(&self, id: &AgentId) -> Result<Agent, StoreError> {
        self.find_agent(id)
            .await?
            .ok_or_else(|| StoreError::not_found("agent", id))
    }

    /// The agent holding this credential (by its sha256 hex), unless revoked: the agent API's
    /// authentication.
    pub async fn find_agent_by_credential_hash(
        &self,
        credential_hash: &str,
    ) -> Result<Option<Agent>, StoreError> {
        read_conn!(self, "find_agent_by_credential_hash", |conn| {
            let sql = sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM agents WHERE credential_hash = $1 AND revoked = 0"
            ));
            let row = sqlx::query(sql)
                .bind(credential_hash)
                .fetch_optional(&mut *conn)
                .await?;
            row.as_ref().map(decode).transpose()
        })
    }

    /// [`Db::find_agent_by_credential_hash`] for the agent API, which asks for every request
    /// of every agent: an answer is reused for up to two seconds (its `status` and
    /// `last_seen_ms` may be that old). Revoking an agent through this `Db` forgets it at
    /// once; what a revoked agent could still try is refused anyway: its leases end with the
    /// revocation and a claim reads `revoked` in its own transaction.
    pub async fn authenticate_agent(
        &self,
        credential_hash: &str,
    ) -> Result<Option<Agent>, StoreError> {
        let cache = &self.inner.agents;
        if let Some(agent) = cache.get(credential_hash) {
            return Ok(Some(agent));
        }
        let found = self.find_agent_by_credential_hash(credential_hash).await?;
        if let Some(agent) = &found {
            cache.put(credential_hash, agent);
        }
        Ok(found)
    }

    /// All agents, revoked ones included, by name.
    pub async fn list_agents(&self) -> Result<Vec<Agent>, StoreError> {
        read_conn!(self, "list_agents", |conn| {
            let sql =
                sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM agents ORDER BY name, id"));
            let rows = sqlx::query(sql).fetch_all(&mut *conn).await?;
            rows.iter().map(decode).collect()
        })
    }

    /// Records that the agent was heard from, with its status. `NotFound` when absent.
    pub async fn touch_agent(
        &self,
        id: &AgentId,
        status: AgentStatus,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        write_tx!(self, "touch_agent", |conn| {
            let done =
                sqlx::query("UPDATE agents SET last_seen_ms = $2, status = $3 WHERE id = $1")
                    .bind(id.as_str())
                    .bind(now_ms)
                    .bind(status.as_str())
                    .execute(&mut *conn)
                    .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("agent", id));
            }
            Ok(())
        })
    }

    /// Updates what an agent says about itself when it starts again. `NotFound` when absent.
    pub async fn update_agent(
        &self,
        id: &AgentId,
        labels: &[String],
        version: &str,
    ) -> Result<Agent, StoreError> {
        write_tx!(self, "update_agent", |conn| {
            let sql = sqlx::AssertSqlSafe(format!(
                "UPDATE agents SET labels = $2, version = $3 WHERE id = $1 RETURNING {COLUMNS}"
            ));
            let row = sqlx::query(sql)
                .bind(id.as_str())
                .bind(to_json("agent labels", &labels)?)
                .bind(version)
                .fetch_optional(&mut *conn)
                .await?;
            match row {
                Some(row) => decode(&row),
                None => Err(StoreError::not_found("agent", id)),
            }
        })
    }

    /// Revokes an agent: its credential stops working at once and its running jobs end now as
    /// if their leases had expired (`failure`, reason `agent_lost`, or `cancelled` when a cancel
    /// had been asked for; leases cleared), returned for the caller's retry decision. Repeating
    /// it is harmless. `NotFound` when absent.
    pub async fn revoke_agent(
        &self,
        id: &AgentId,
        now_ms: i64,
    ) -> Result<Vec<ExpiredJob>, StoreError> {
        let ended = write_tx!(self, "revoke_agent", |conn| {
            let done =
                sqlx::query("UPDATE agents SET revoked = 1, status = 'offline' WHERE id = $1")
                    .bind(id.as_str())
                    .execute(&mut *conn)
                    .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::not_found("agent", id));
            }
            super::jobs::end_lost_jobs(conn, super::jobs::LostAgent::Revoked(id), now_ms).await
        });
        self.inner.agents.forget(id);
        ended
    }
}

/// Recently authenticated agents by credential hash ([`Db::authenticate_agent`]).
#[derive(Default)]
pub(crate) struct CredentialCache {
    entries: std::sync::Mutex<HashMap<String, (Agent, Instant)>>,
}

impl CredentialCache {
    /// How long an entry is used.
    const TTL: Duration = Duration::from_secs(2);
    /// More entries than this (agents polling within two seconds) and the cache starts over.
    const MAX: usize = 4096;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Agent, Instant)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, credential_hash: &str) -> Option<Agent> {
        let entries = self.lock();
        let (agent, at) = entries.get(credential_hash)?;
        (at.elapsed() < Self::TTL).then(|| agent.clone())
    }

    fn put(&self, credential_hash: &str, agent: &Agent) {
        let mut entries = self.lock();
        if entries.len() >= Self::MAX {
            entries.retain(|_, (_, at)| at.elapsed() < Self::TTL);
            if entries.len() >= Self::MAX {
                entries.clear();
            }
        }
        entries.insert(credential_hash.to_owned(), (agent.clone(), Instant::now()));
    }

    fn forget(&self, id: &AgentId) {
        self.lock().retain(|_, (agent, _)| &agent.id != id);
    }
}
