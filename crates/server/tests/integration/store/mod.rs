//! The store's suite. Every test is written once, as `async fn test(fx: Fixture)`, and runs
//! against SQLite (a temporary file) and PostgreSQL (a fresh schema in the database named by
//! `GANTRY_TEST_POSTGRES_URL`, which `.ci/setup` starts and `.ci/run` exports). Without that
//! variable the PostgreSQL tests fail when `CI` is set and are skipped, saying so, otherwise.

/// Instantiates the listed tests for both databases: `<area>::sqlite::<test>` and
/// `<area>::postgres::<test>`.
macro_rules! store_tests {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    $crate::store::fixture::with_sqlite(super::$test).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    $crate::store::fixture::with_postgres(super::$test).await;
                }
            )*
        }
    };
}

mod fixture;

mod agents;
mod claim;
mod deliveries;
mod faults;
mod leases;
mod logs;
mod migrations;
mod outbox;
mod runs;
mod secrets;
