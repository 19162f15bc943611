//! A database of its own per test on the machine's PostgreSQL, dropped afterwards, so tests
//! running in parallel never see each other's rows. The server is the one
//! `MAILFLEET_TEST_POSTGRES` names (default `postgres://postgres@127.0.0.1:5432/test`, trust
//! auth, as `deploy/dev/install-deps.sh` sets it up); the database there is only used to
//! create and drop the test's own.

use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::{AssertSqlSafe, Connection, PgConnection};

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/test";

static CREATED: AtomicUsize = AtomicUsize::new(0);

/// `mf_test_<pid>_<n>` on the test server, dropped (with any connections still open to it)
/// when this is dropped — after a failed assertion too.
pub struct TestDatabase {
    server: String,
    name: String,
    url: String,
}

impl TestDatabase {
    pub async fn create() -> TestDatabase {
        let server = std::env::var("MAILFLEET_TEST_POSTGRES").unwrap_or(DEFAULT_SERVER.into());
        let name = format!(
            "mf_test_{}_{}",
            std::process::id(),
            CREATED.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {server}: {e}"));
        sqlx::raw_sql(drop_database(&name))
            .execute(&mut admin)
            .await
            .expect("drop a leftover test database");
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let mut url = url::Url::parse(&server).expect("MAILFLEET_TEST_POSTGRES is a URL");
        url.set_path(&name);
        TestDatabase {
            url: url.to_string(),
            server,
            name,
        }
    }

    /// The URL of the test's own database.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Names are ours (`mf_test_<pid>_<n>`), never input, so they are safe in a statement.
fn drop_database(name: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own
        // with a runtime of its own does the dropping, and is waited for.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&server).await?;
                sqlx::raw_sql(drop_database(&name))
                    .execute(&mut admin)
                    .await
                    .map(drop)
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("test database {} not dropped: {dropped:?}", self.name);
        }
    }
}
