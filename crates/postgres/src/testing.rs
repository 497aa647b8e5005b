//! Support for tests that need a real PostgreSQL: the test server, and a scratch
//! schema per test so tests run in parallel without seeing each other's tasks.
//!
//! The server comes from [`SERVER_VAR`] (a URL or `key=value` string; `scripts/test`
//! starts a throwaway server and sets it). Without it, tests skip with a note — except
//! under `CI=true`, where a missing server is a failure: CI must never pass by
//! skipping.

use std::sync::atomic::{AtomicU32, Ordering};

use postgres::{Client, NoTls};

/// The variable naming the test server.
pub const SERVER_VAR: &str = "TASKLEASE_TEST_PG";

/// The test server's connection string, or `None` (after a note on stderr) when
/// [`SERVER_VAR`] is unset.
///
/// # Panics
/// When [`SERVER_VAR`] is unset and `CI` is `true`.
pub fn server() -> Option<String> {
    match std::env::var(SERVER_VAR) {
        Ok(s) if !s.trim().is_empty() => Some(s),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "{SERVER_VAR} is not set, and CI=true: the PostgreSQL tests must run in CI \
             (scripts/test starts a server and sets it)"
        ),
        _ => {
            eprintln!(
                "note: skipping a PostgreSQL test: {SERVER_VAR} is not set (scripts/test \
                 starts a throwaway server and sets it)"
            );
            record_skip();
            None
        }
    }
}

/// The variable naming a file where a skipped test appends its name, so the run's
/// summary can count what did not run (`scripts/test` sets it): a test runner reports
/// a test that returned early as passed.
pub const SKIP_LOG_VAR: &str = "TASKLEASE_SKIP_LOG";

/// Notes on stderr that a test is skipped and why, and records it for the run's
/// summary (see [`SKIP_LOG_VAR`]).
pub fn skip(why: &str) {
    eprintln!("note: skipping a test: {why}");
    record_skip();
}

fn record_skip() {
    use std::io::Write;
    let Some(path) = std::env::var_os(SKIP_LOG_VAR) else {
        return;
    };
    // libtest and nextest name the test's thread after the test.
    let current = std::thread::current();
    let name = current.name().unwrap_or("unnamed test");
    // One short append per line is atomic enough for parallel tests (O_APPEND).
    let line = format!("{name}\n");
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = appended {
        eprintln!(
            "note: cannot record the skip in {}: {e}",
            path.to_string_lossy()
        );
    }
}

/// A schema of its own on the test server, dropped with everything in it when this
/// value is dropped.
pub struct Scratch {
    /// The server, as given.
    server: String,
    /// The schema's name.
    schema: String,
    /// The server with `search_path` set to the schema.
    conn: String,
}

impl Scratch {
    /// Creates a fresh schema on `server`.
    ///
    /// # Panics
    /// When the server cannot be reached or the schema cannot be created.
    pub fn new(server: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let schema = format!(
            "tl_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        admin(server)
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .unwrap_or_else(|e| panic!("create test schema {schema}: {e}"));
        let conn = with_search_path(server, &schema);
        Scratch {
            server: server.to_owned(),
            schema,
            conn,
        }
    }

    /// A connection string for the server with `search_path` set to this schema.
    pub fn conn(&self) -> &str {
        &self.conn
    }

    /// The schema's name.
    pub fn schema(&self) -> &str {
        &self.schema
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Ok(mut c) = Client::connect(&self.server, NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

fn admin(server: &str) -> Client {
    Client::connect(server, NoTls)
        .unwrap_or_else(|e| panic!("connect to the test server ({SERVER_VAR}): {e}"))
}

/// `server` with `options=-c search_path=<schema>` added, in its own syntax.
pub fn with_search_path(server: &str, schema: &str) -> String {
    if server.contains("://") {
        let sep = if server.contains('?') { '&' } else { '?' };
        format!("{server}{sep}options=-c%20search_path%3D{schema}")
    } else {
        format!("{server} options='-c search_path={schema}'")
    }
}
