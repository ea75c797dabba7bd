//! Databases for the store suite, and the rows most tests start from.

use futures::FutureExt;
use gantry_server::forge::Forge;
use gantry_server::store::{
    Agent, Backend, Db, JobStatus, NewAgent, NewJob, NewRepository, NewRun, Repository, RunStatus,
    StoreConfig, hash_token,
};
use sqlx::{AnyConnection, AssertSqlSafe, Connection, Executor};
use std::future::Future;
use std::panic::AssertUnwindSafe;

/// A fixed "now" for tests (2026-01-01T00:00:00Z); tests add to it to move time.
pub const NOW: i64 = 1_767_225_600_000;

/// A database for one test: a fresh SQLite file or a fresh PostgreSQL schema.
pub struct Fixture {
    pub backend: Backend,
    url: String,
    /// PostgreSQL: the server's URL and the test's schema (also its application name).
    admin: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    /// Connects (applying the migrations), as the server does at start.
    pub async fn db(&self) -> Db {
        self.db_with(StoreConfig::default()).await
    }

    /// PostgreSQL: closes every connection of this test from the server side, as a restart or
    /// a failover does; returns how many. SQLite: nothing to do (0).
    pub async fn drop_connections(&self) -> usize {
        let Some((base, schema)) = &self.admin else {
            return 0;
        };
        let mut admin = AnyConnection::connect(base)
            .await
            .expect("admin connection");
        let killed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
        )
        .bind(schema.as_str())
        .fetch_all(&mut admin)
        .await
        .expect("terminate the test's connections");
        killed.into_iter().filter(|k| *k).count()
    }

    /// The URL the store connects to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connects with `config`; on PostgreSQL with at most 4 connections unless it says
    /// otherwise, since many tests run at once against one server.
    pub async fn db_with(&self, mut config: StoreConfig) -> Db {
        if self.backend == Backend::Postgres && config.max_connections.is_none() {
            config.max_connections = Some(4);
        }
        match Db::connect_with(&self.url, config).await {
            Ok(db) => db,
            Err(error) => panic!("cannot open the {:?} test database: {error}", self.backend),
        }
    }
}

pub async fn with_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Fixture) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("gantry.db").display());
    test(Fixture {
        backend: Backend::Sqlite,
        url,
        admin: None,
        _dir: Some(dir),
    })
    .await;
}

pub async fn with_postgres<F, Fut>(test: F)
where
    F: FnOnce(Fixture) -> Fut,
    Fut: Future<Output = ()>,
{
    let Ok(base) = std::env::var("GANTRY_TEST_POSTGRES_URL") else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "GANTRY_TEST_POSTGRES_URL is not set: in CI the PostgreSQL store tests must run \
                 (.ci/setup starts PostgreSQL and .ci/run exports the URL)"
            );
        }
        eprintln!(
            "skipped: GANTRY_TEST_POSTGRES_URL is not set (run .ci/setup and export the URL it \
             writes to /var/cache/gantry-ci/postgres-url to run the PostgreSQL store tests)"
        );
        return;
    };
    sqlx::any::install_default_drivers();
    let schema = format!("gantry_test_{}", hex::encode(rand::random::<[u8; 8]>()));
    let mut admin = admin_connection(&base).await;
    admin
        .execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .await
        .expect("create the test schema");
    let separator = if base.contains('?') { '&' } else { '?' };
    // The application name tells this test's connections apart from other tests' (see
    // `Fixture::drop_connections`).
    let url =
        format!("{base}{separator}options=-c%20search_path%3D{schema}&application_name={schema}");
    let outcome = AssertUnwindSafe(test(Fixture {
        backend: Backend::Postgres,
        url,
        admin: Some((base.clone(), schema.clone())),
        _dir: None,
    }))
    .catch_unwind()
    .await;
    let dropped = admin
        .execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    dropped.expect("drop the test schema");
}

/// A connection to the test server outside the store, tried a few times (the server may be
/// busy with other tests' connections).
async fn admin_connection(url: &str) -> AnyConnection {
    let mut attempt = 0;
    loop {
        match AnyConnection::connect(url).await {
            Ok(conn) => return conn,
            Err(error) if attempt < 10 => {
                eprintln!("connecting to GANTRY_TEST_POSTGRES_URL: {error}; trying again");
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(error) => panic!("cannot connect to GANTRY_TEST_POSTGRES_URL: {error}"),
        }
    }
}

/// A registered repository `owner/<name>`.
pub async fn repository(db: &Db, name: &str) -> Repository {
    db.insert_repository(
        &NewRepository {
            name: format!("owner/{name}"),
            clone_url: format!("https://example.invalid/owner/{name}.git"),
            forge: Forge::GitHub,
            webhook_secret: Some(b"sealed-secret".to_vec()),
            allow_unsigned: false,
            status_url: None,
            status_token: None,
        },
        NOW,
    )
    .await
    .expect("insert a repository")
}

/// A push run of `.github/workflows/ci.yml` on main.
pub fn new_run(repository: &Repository) -> NewRun {
    NewRun {
        repository_id: repository.id.clone(),
        workflow_file: ".github/workflows/ci.yml".into(),
        workflow_name: "CI".into(),
        title: "Fix the build".into(),
        event: "push".into(),
        git_ref: "refs/heads/main".into(),
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        context: r#"{"event_name":"push"}"#.into(),
        sources: "{}".into(),
        graph: r#"{"state":0}"#.into(),
        status: RunStatus::Queued,
        conclusion: None,
        trusted: true,
        concurrency_group: None,
        cancel_in_progress: false,
        attempt: 1,
        delivery_id: None,
    }
}

/// A queued job `key` needing `labels`.
pub fn new_job(key: &str, labels: &[&str]) -> NewJob {
    NewJob {
        key: key.into(),
        leg: 0,
        attempt: 1,
        name: key.into(),
        spec: format!(r#"{{"key":"{key}"}}"#),
        secret_scope: "{}".into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        status: JobStatus::Queued,
        concurrency_group: None,
        timeout_ms: None,
    }
}

/// A registered agent with `labels`.
pub async fn agent(db: &Db, name: &str, labels: &[&str]) -> Agent {
    db.insert_agent(
        &NewAgent {
            name: name.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            version: "0.1.0".into(),
            credential_hash: hash_token(&format!("credential of {name}")),
        },
        NOW,
    )
    .await
    .expect("insert an agent")
}

/// A run of one job `key` in a new repository `owner/<key>`, claimed by a new agent `key`.
pub async fn claimed_job(db: &Db, key: &str) -> gantry_server::store::ClaimedJob {
    let repo = repository(db, key).await;
    db.insert_run_with_jobs(&new_run(&repo), &[new_job(key, &[])], &[], NOW)
        .await
        .expect("run");
    let agent = agent(db, key, &[]).await;
    db.claim_job(&agent.id, &[], 30_000, NOW)
        .await
        .expect("claim")
        .expect("a job")
}
