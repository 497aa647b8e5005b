//! The one connection a store holds: how it is made, kept alive, and how its errors
//! become the core's [`Error`].
//!
//! # Reconnecting, and which operations are retried
//!
//! Before an operation on a connection that sat idle for a while, the connection is
//! polled without a round trip; if the server has gone away meanwhile (a restart,
//! `pg_terminate_backend`, an idle timeout), a new connection replaces it before
//! anything is sent. That covers the common case — a long-lived process (the MCP
//! server, `tasklease run`) whose connection died between calls — at no cost on the
//! hot path, where connections are never idle.
//!
//! If the connection breaks *during* an operation, whether the server committed it
//! cannot be known from here: the statement may have run and only the reply been
//! lost. So:
//!
//! - **Reads** (`show`, `list`, `log`, `now`) reconnect and run once more: running
//!   them twice changes nothing.
//! - **Writes are never re-sent after a break.** A claim re-sent after its first
//!   attempt committed would be a second claim: a new token, the first one silently
//!   orphaned as a lease held by nobody who knows its token. `done`, `release`,
//!   `reap` and `add` would report a refusal (or an empty list) for work that
//!   succeeded. Instead the caller gets an error saying the outcome is unknown and how
//!   to find out; the next operation reconnects.
//! - **Deadlocks and serialization failures** are the exception: the server reports
//!   them only after rolling the statement back, so the write is re-run (a few
//!   times). Single-row claims cannot deadlock; a batch's fallback, `reap` and the
//!   waiting_on trigger lock several rows and, rarely, might.

use std::collections::HashMap;
use std::error::Error as _;
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::{Client, Config, NoTls, Row, Statement, types::ToSql};
use tasklease_core::{Error, Result};

/// Parameters of one statement.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A live connection and the statements prepared on it.
pub(crate) struct Conn {
    /// The connection; replaced when it is found closed.
    client: Client,
    /// Prepared statements by SQL text: after the first use, each operation is one
    /// Bind/Execute round trip with no Parse. Emptied on reconnect (statements belong
    /// to the server session).
    prepared: HashMap<&'static str, Statement>,
    /// When the connection last carried an operation; a connection idle for longer
    /// than [`IDLE_CHECK`] is checked before use.
    last_used: Instant,
}

/// How long a connection may sit idle before it is checked for having been closed by
/// the server. The check costs up to a millisecond (a timer tick), so busy
/// connections skip it.
const IDLE_CHECK: Duration = Duration::from_millis(250);

/// How a store reaches its server: the parsed configuration with our defaults
/// applied, and a printable description without credentials.
pub(crate) struct Target {
    pub(crate) config: Config,
    pub(crate) display: String,
}

impl Target {
    pub(crate) fn connect(&self) -> Result<Conn> {
        let client = self.config.connect(NoTls).map_err(|e| {
            let hint = if self.config.get_ssl_mode() == postgres::config::SslMode::Require {
                "; this build speaks PostgreSQL without TLS: use a unix socket, a private \
                 network or a tunnel, and drop sslmode=require"
            } else {
                ""
            };
            Error::store(
                format!("cannot connect to PostgreSQL at {}{hint}", self.display),
                full(&e),
            )
        })?;
        Ok(Conn {
            client,
            prepared: HashMap::new(),
            last_used: Instant::now(),
        })
    }
}

/// What to do with an operation when the connection breaks under it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Running it twice changes nothing: reconnect and run again.
    Read,
    /// Never re-send after a break (see the module docs).
    Write,
}

impl Conn {
    /// Whether the server closed the connection while it was idle, found without
    /// sending anything. A server that ended the session has sent an error or end of
    /// stream that sits unread on the socket; the client only learns of socket
    /// readiness when its runtime turns the I/O driver, which a zero-length wait for
    /// notifications does (a timer tick, no round trip).
    fn closed(&mut self) -> bool {
        let polled = postgres::fallible_iterator::FallibleIterator::next(
            &mut self.client.notifications().timeout_iter(Duration::ZERO),
        );
        polled.is_err() || self.client.is_closed()
    }

    fn statement(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.prepared.insert(sql, s.clone());
        Ok(s)
    }

    pub(crate) fn query(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query(&s, params)
    }

    pub(crate) fn query_one(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Row, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_one(&s, params)
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Option<Row>, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.query_opt(&s, params)
    }

    pub(crate) fn execute(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<u64, postgres::Error> {
        let s = self.statement(sql)?;
        self.client.execute(&s, params)
    }

    /// Runs `f` between `BEGIN` and `COMMIT`, or rolls back if it fails. Only for
    /// operations that need several statements (`add`); lease operations are single
    /// statements and need no transaction round trips.
    pub(crate) fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        self.client.batch_execute("BEGIN")?;
        match f(self) {
            Ok(v) => {
                self.client.batch_execute("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                // A broken connection has rolled back already; nothing to add.
                let _ = self.client.batch_execute("ROLLBACK");
                Err(e)
            }
        }
    }

    pub(crate) fn client(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// Runs `op` on `conn`, reconnecting first if the server closed it, and applying the
/// [`Retry`] policy. `what` names the operation for errors ("claim the task").
pub(crate) fn run<T>(
    conn: &mut Conn,
    target: &Target,
    what: &str,
    retry: Retry,
    mut op: impl FnMut(&mut Conn) -> Result<T, Failure>,
) -> Result<T> {
    if conn.last_used.elapsed() > IDLE_CHECK && conn.closed() {
        *conn = target.connect()?;
    }
    conn.last_used = Instant::now();
    let mut rerun = 0;
    loop {
        let e = match op(conn) {
            Ok(v) => return Ok(v),
            Err(Failure::Task(e)) => return Err(e),
            Err(Failure::Db(e)) => e,
        };
        let lost = is_lost(&e) || conn.closed();
        if lost {
            // Leave a working connection for the next call, whatever happens now.
            let fresh = target.connect();
            if retry == Retry::Read && rerun == 0 {
                *conn = fresh?;
                rerun += 1;
                continue;
            }
            if let Ok(c) = fresh {
                *conn = c;
            }
            return Err(Error::store(
                format!(
                    "the connection to PostgreSQL at {} broke while trying to {what}; whether \
                     it took effect is unknown — look (tasklease show / list) before retrying",
                    target.display
                ),
                full(&e),
            ));
        }
        let rolled_back = e.code().is_some_and(|c| {
            *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
        });
        if rolled_back && rerun < 3 {
            rerun += 1;
            continue;
        }
        return Err(translate(what, e));
    }
}

/// Why an operation stopped: a database failure (subject to the retry policy) or a
/// finished answer in task terms.
pub(crate) enum Failure {
    Db(postgres::Error),
    Task(Error),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Task(e)
    }
}

/// Whether the error means the connection is gone (as opposed to the statement
/// failing on a live connection).
fn is_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if e.source().is_some_and(|s| s.is::<std::io::Error>()) {
        return true;
    }
    e.code().is_some_and(|c| {
        let c = c.code();
        // 08: connection exception; 57P01-57P03: the server is shutting down or
        // terminated this session.
        c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03")
    })
}

/// A database error on a live connection, in task-model terms.
pub(crate) fn translate(what: &str, e: postgres::Error) -> Error {
    if e.code() == Some(&SqlState::QUERY_CANCELED) {
        return Error::store(
            format!(
                "could not {what}: the statement ran past the statement timeout (the \
                 database is overloaded, or another session holds a lock for long)"
            ),
            full(&e),
        );
    }
    if e.code() == Some(&SqlState::UNDEFINED_TABLE)
        || e.code() == Some(&SqlState::UNDEFINED_FUNCTION)
    {
        return Error::store(
            format!(
                "could not {what}: the tasklease tables are missing from this schema \
                 (were they dropped, or does search_path point elsewhere?)"
            ),
            full(&e),
        );
    }
    Error::store(format!("could not {what}"), full(&e))
}

/// The error with its causes: tokio-postgres's own `Display` says only "db error" or
/// "error connecting to server" and keeps the server's message in the source.
fn full(e: &postgres::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// The statement timeout as the server option that sets it.
pub(crate) fn statement_timeout_option(t: Duration) -> String {
    format!("-c statement_timeout={}", t.as_millis().max(1))
}
