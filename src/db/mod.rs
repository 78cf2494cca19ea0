//! The database: a connection pool over SQLite (embedded default) or PostgreSQL, and on SQLite
//! a smaller second pool of the same file for runs of reads (see [`Store::reads`]).
//!
//! Both backends run the same SQL through sqlx's `Any` driver: ids are `TEXT`, credits and
//! times are `BIGINT`, and every query sticks to what both databases accept. Where they differ
//! (connection settings, the append-only triggers in the migrations) this module chooses.
//! Correctness under concurrency comes from the database: every ledger movement first locks
//! its workspace's account row with an `UPDATE`, which on PostgreSQL takes a row lock and on
//! SQLite takes the database's write lock, before it reads anything it will change.

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

mod checkpoint;
mod ids;
mod retry;
mod writes;
use checkpoint::{Checkpointer, WRITERS_CHECKPOINT_AT};
pub use ids::{new_id, new_ordered_id};
pub(crate) use retry::pause_before_retry;
pub use retry::Retryable;
pub use writes::{Guard, Value, Writes};

/// Whether the connection talks to PostgreSQL (else SQLite).
pub fn is_postgres(conn: &AnyConnection) -> bool {
    conn.backend_name().starts_with("Postgre")
}

/// `$first, $first + 1, …` for `count` parameters (an `IN (…)` list).
pub fn param_list(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, $2, …), ($n, …)` for `rows` rows of `columns` parameters (a multi-row `VALUES`).
pub fn param_rows(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", param_list(r * columns + 1, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which database is behind the pool.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Pool and timeout settings (see the configuration table in docs/DEPLOY.md).
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// PostgreSQL `statement_timeout`; SQLite waits up to this long for the write lock.
    pub statement_timeout: Duration,
    /// A PostgreSQL connection idle longer than this is pinged before it is handed out (a
    /// server restart or a proxy's idle cut would otherwise fail the first statement on it).
    /// Busy connections are not: a ping per checkout is one more round trip per query.
    pub idle_check_after: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(10),
            idle_check_after: Duration::from_secs(5),
        }
    }
}

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error("unexpected data in the database: {0}")]
    Corrupt(String),
    #[error("DATABASE_URL: {0}")]
    BadUrl(String),
}

impl StoreError {
    /// Lock contention a transaction can simply run again: SQLite busy or locked, PostgreSQL
    /// serialization failure or deadlock.
    pub fn is_retryable(&self) -> bool {
        let StoreError::Database(sqlx::Error::Database(db)) = self else {
            return false;
        };
        let code = db.code();
        matches!(
            code.as_deref(),
            Some("5" | "6" | "261" | "262" | "517" | "40001" | "40P01")
        ) || db.message().contains("database is locked")
    }
}

/// The shared pool plus what it talks to.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    /// Where [`Store::reads`] takes its connections: on SQLite a smaller pool of the same
    /// database, elsewhere `pool` itself.
    reads: AnyPool,
    backend: Backend,
    /// On an SQLite file, the task that checkpoints its log.
    checkpointer: Option<Arc<Checkpointer>>,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Opens a pool for `url` (`sqlite:…` or `postgres://…`). For SQLite the file and its
    /// folder are created when missing, and the connection uses WAL with a busy timeout.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise_url(url)?;
        let connect = AnyConnectOptions::from_str(&url)?;
        // One direct connection first: a pool would retry until its timeout and then report
        // only that it timed out, hiding the real cause (refused, unknown database, auth).
        sqlx::AnyConnection::connect_with(&connect)
            .await?
            .close()
            .await?;
        let pool = open_pool(connect.clone(), options, options.max_connections, backend).await?;
        // Each SQLite connection is a thread of its own that every statement is handed to and
        // back from; pages' runs of reads on a few of them keep those threads busy instead of
        // waking a dozen on two cores. WAL lets them read beside the writers, which keep the
        // whole pool. An in-memory database is one per connection, so it keeps one pool.
        let file = backend == Backend::Sqlite && !url.contains(":memory:");
        let reads = if file {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
            let size = (cores * READ_CONNECTIONS_PER_CORE).min(options.max_connections);
            open_pool(connect.clone(), options, size, backend).await?
        } else {
            pool.clone()
        };
        let checkpointer = if file {
            Some(Arc::new(Checkpointer::start(&connect).await?))
        } else {
            None
        };
        Ok(Store {
            pool,
            reads,
            backend,
            checkpointer,
        })
    }

    /// Applies pending migrations. Safe from several instances at once: on PostgreSQL the
    /// migrator holds an advisory lock, on SQLite the write lock serialises them.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Is the database answering?
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Where a read on its own that every page makes (the session's) runs: the pool runs of
    /// reads take their connections from (see [`Store::reads`]).
    pub fn read_pool(&self) -> &AnyPool {
        &self.reads
    }

    /// One connection for reads, held for several in a row (see [`Reads`]).
    pub async fn reads(&self) -> Result<Reads, StoreError> {
        Ok(Reads {
            conn: self.reads.acquire().await?,
        })
    }

    /// How many connections runs of reads ([`Store::reads`]) share.
    pub fn read_connections(&self) -> u32 {
        self.reads.options().get_max_connections()
    }

    /// Closes every connection (tests drop their database afterwards).
    pub async fn close(&self) {
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.stop().await;
        }
        self.reads.close().await;
        self.pool.close().await;
    }
}

/// SQLite connections for runs of reads ([`Store::reads`]) per core, at most the pool's size.
const READ_CONNECTIONS_PER_CORE: u32 = 2;

/// A pool of up to `size` connections with Tally's settings.
async fn open_pool(
    connect: AnyConnectOptions,
    options: &StoreOptions,
    size: u32,
    backend: Backend,
) -> Result<AnyPool, StoreError> {
    let timeout_ms = options.statement_timeout.as_millis();
    let idle_check_after = options.idle_check_after;
    let pool = AnyPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(options.acquire_timeout)
        // sqlx pings every connection it hands out by default: on SQLite a hand-off to the
        // connection's thread and on PostgreSQL a network round trip, before every query.
        // An in-process SQLite connection cannot be lost; a PostgreSQL one is checked only
        // after it sat idle (see `idle_check_after`).
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if backend == Backend::Postgres && meta.idle_for >= idle_check_after {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                match backend {
                    Backend::Sqlite => {
                        // The busy timeout first: switching to WAL briefly needs the
                        // database to itself, and new connections may race for it.
                        conn.execute(format!("PRAGMA busy_timeout = {timeout_ms}").as_str())
                            .await?;
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        // The store's own task checkpoints (see `checkpoint`).
                        conn.execute(
                            format!("PRAGMA wal_autocheckpoint = {WRITERS_CHECKPOINT_AT}").as_str(),
                        )
                        .await?;
                    }
                    Backend::Postgres => {
                        conn.execute(format!("SET statement_timeout = {timeout_ms}").as_str())
                            .await?;
                    }
                }
                Ok(())
            })
        })
        .connect_with(connect)
        .await?;
    Ok(pool)
}

/// A connection of the pool held for a run of reads, such as one page's.
///
/// The pool checks every connection it takes back with a round trip to it (on SQLite a
/// hand-off to the connection's thread and back, on PostgreSQL a message to the server):
/// statements run straight on the pool pay that after each one, reads on one `Reads` once,
/// when it is dropped. The reads used elsewhere too are also on [`Store`], where each takes a
/// connection for itself. For reads only: a write on the pool while this is held would need a
/// second connection, and enough such requests at once would wait on each other.
pub struct Reads {
    conn: PoolConnection<Any>,
}

impl Reads {
    /// The held connection, for one statement.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

/// Prepared statements kept per PostgreSQL connection (sqlx keeps 100 by default).
const STATEMENT_CACHE: usize = 1_024;

/// Checks the scheme, and for SQLite makes sure the folder exists and the file is created.
fn normalise_url(url: &str) -> Result<(Backend, String), StoreError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // The gate's batches write with multi-row statements whose text depends on the batch
        // size: a larger statement cache keeps them prepared instead of parsing one per batch.
        if url.contains("statement-cache-capacity=") {
            return Ok((Backend::Postgres, url.to_owned()));
        }
        let separator = if url.contains('?') { '&' } else { '?' };
        return Ok((
            Backend::Postgres,
            format!("{url}{separator}statement-cache-capacity={STATEMENT_CACHE}"),
        ));
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        let scheme = url.split(':').next().unwrap_or_default();
        return Err(StoreError::BadUrl(format!(
            "'{scheme}:' is not supported; use sqlite:PATH or postgres://…"
        )));
    };
    let path = rest.trim_start_matches("//");
    let (file, query) = path.split_once('?').unwrap_or((path, ""));
    if file != ":memory:" && !file.is_empty() {
        if let Some(dir) = std::path::Path::new(file).parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::BadUrl(format!("cannot create the folder {}: {e}", dir.display()))
                })?;
            }
        }
    }
    let query = if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        query.to_owned()
    };
    Ok((Backend::Sqlite, format!("sqlite://{file}?{query}")))
}

/// SQLite's plan of `sql` over a freshly migrated database, one step per entry, with `$1`
/// bound to a workspace id and `$2` to zero: for tests that hold a hot statement to its index.
#[cfg(test)]
pub(crate) async fn sqlite_plan(sql: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/tally.db", dir.path().display());
    let store = Store::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
        .bind("ws_a")
        .bind(0_i64)
        .fetch_all(store.pool())
        .await
        .unwrap();
    store.close().await;
    plan.into_iter().map(|step| step.3).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_on_across_rows() {
        assert_eq!(param_list(3, 2), "$3, $4");
        assert_eq!(param_rows(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(param_rows(1, 1), "($1)");
    }

    /// A migration without its comments, cut where its backend's own part (the append-only
    /// triggers) begins; and that part.
    fn shared_and_own(sql: &str) -> (String, String) {
        let lines: Vec<&str> = sql
            .lines()
            .map(|l| l.split("--").next().unwrap_or("").trim_end())
            .filter(|l| !l.trim().is_empty())
            .collect();
        let cut = lines
            .iter()
            .position(|l| l.starts_with("CREATE TRIGGER") || l.starts_with("CREATE FUNCTION"))
            .unwrap_or(lines.len());
        (lines[..cut].join("\n"), lines[cut..].join("\n"))
    }

    /// The two backends' migrations are the same statements, but for the append-only
    /// triggers each writes in its own dialect and PostgreSQL's `tally_expect`: a change made
    /// to one folder only fails here.
    #[test]
    fn both_backends_migrate_to_the_same_schema_but_for_their_triggers() {
        let dir = |backend: &str| format!("{}/migrations/{backend}", env!("CARGO_MANIFEST_DIR"));
        let names = |backend: &str| {
            let mut names: Vec<String> = std::fs::read_dir(dir(backend))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        assert_eq!(
            names("sqlite"),
            names("postgres"),
            "the same migrations, by name"
        );
        for name in names("sqlite") {
            let read = |backend: &str| {
                std::fs::read_to_string(format!("{}/{name}", dir(backend))).unwrap()
            };
            // Generated columns are STORED on PostgreSQL, its only kind, and VIRTUAL on
            // SQLite, the only kind its ALTER TABLE adds: the one word allowed to differ.
            let (sqlite, sqlite_own) =
                shared_and_own(&read("sqlite").replace(") VIRTUAL;", ") GENERATED;"));
            let (postgres, postgres_own) =
                shared_and_own(&read("postgres").replace(") STORED;", ") GENERATED;"));
            assert_eq!(sqlite, postgres, "{name} differs between the backends");
            // Only the first migration has triggers of its own, on both journal tables, and
            // the one that copies the trace into a new table gives the copy its own again.
            if name.starts_with("0001") {
                for own in [&sqlite_own, &postgres_own] {
                    assert!(
                        own.contains("ON ledger_entries") && own.contains("ON ledger_entry_lots"),
                        "{name}: {own}"
                    );
                }
            } else if name.starts_with("0022") {
                for own in [&sqlite_own, &postgres_own] {
                    assert!(own.contains("ON ledger_entry_lots"), "{name}: {own}");
                }
            } else if name.starts_with("0023") {
                // The check that undoes the gate's unlocked batches, which run on PostgreSQL
                // only.
                assert!(sqlite_own.is_empty(), "{name}: {sqlite_own}");
                assert!(
                    postgres_own.contains("FUNCTION tally_expect"),
                    "{name}: {postgres_own}"
                );
            } else {
                assert!(
                    sqlite_own.is_empty() && postgres_own.is_empty(),
                    "{name} has triggers"
                );
            }
        }
    }

    #[test]
    fn unknown_database_schemes_are_refused_with_a_clear_message() {
        let err = normalise_url("mysql://localhost/tally").unwrap_err();
        assert!(
            err.to_string().contains("'mysql:' is not supported"),
            "{err}"
        );
    }

    #[test]
    fn postgres_urls_get_a_larger_statement_cache_unless_they_set_one() {
        let (backend, url) = normalise_url("postgres://db/tally").unwrap();
        assert_eq!(backend, Backend::Postgres);
        assert_eq!(url, "postgres://db/tally?statement-cache-capacity=1024");
        let (_, url) = normalise_url("postgres://db/tally?sslmode=disable").unwrap();
        assert_eq!(
            url,
            "postgres://db/tally?sslmode=disable&statement-cache-capacity=1024"
        );
        let (_, url) = normalise_url("postgres://db/tally?statement-cache-capacity=7").unwrap();
        assert_eq!(url, "postgres://db/tally?statement-cache-capacity=7");
    }

    #[test]
    fn sqlite_urls_create_the_file_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sub/tally.db", dir.path().display());
        let (backend, normalised) = normalise_url(&url).unwrap();
        assert_eq!(backend, Backend::Sqlite);
        assert!(normalised.ends_with("/sub/tally.db?mode=rwc"));
        assert!(dir.path().join("sub").is_dir());
    }
}
