//! One connection of a store's pool: how it is made, kept alive, and how its errors
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
//!
//! # Why no call can hang
//!
//! A server can stop answering without closing anything: a frozen postmaster, a
//! stalled proxy or VM, a half-open TCP connection. The kernel keeps acknowledging (or
//! nobody ever sends a reset), so neither TCP keepalives nor `tcp_user_timeout` ever
//! fire, and the sync `postgres` client would wait for ever. So the store drives
//! tokio-postgres on its own current-thread runtime and bounds every wait itself:
//!
//! - **Opening** — TCP connect, start-up and authentication, and the schema version
//!   check — must finish within the connect timeout (10 s, or the connection
//!   string's `connect_timeout`). tokio-postgres's own `connect_timeout` covers only
//!   the TCP connect, not a server that accepts and then says nothing.
//! - **Every statement** must be answered within the statement timeout plus
//!   [`ANSWER_SLACK`]. The server cancels a statement at its `statement_timeout` and
//!   says so, a definite answer; the slack lets that answer arrive first, so the
//!   client-side bound fires only when the server is truly silent.
//!
//! A statement that got no answer leaves the connection in an unknown state: it is
//! dropped and the next call connects afresh. A read that got no answer fails
//! (running it again would likely wait as long again); a write is
//! [`Error::OutcomeUnknown`], like a write whose connection broke.
//!
//! The runtime is current-thread and runs only while a call waits on it, on the
//! caller's thread, exactly as the sync `postgres` client did. A store must therefore
//! not be *called* from inside an async task (`tasklease::asynchronous` runs stores
//! on a thread of their own); dropping one anywhere is safe.

use std::collections::HashMap;
use std::error::Error as _;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tasklease_core::{Error, Result};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls, Row, Statement, types::ToSql};

/// Parameters of one statement.
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// How much longer than the statement timeout the client waits for an answer, so
/// that the server's own cancellation (a definite "not done") arrives first.
pub(crate) const ANSWER_SLACK: Duration = Duration::from_secs(2);

/// The runtime that drives a store's connections: current-thread, so I/O happens
/// only while a call waits, on the caller's thread.
pub(crate) struct Rt(Option<Runtime>);

impl Rt {
    pub(crate) fn new() -> Result<Rt> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|r| Rt(Some(r)))
            .map_err(|e| Error::store("cannot start the PostgreSQL client's runtime", e))
    }

    /// Runs `f` to completion, or gives up after `bound`.
    fn within<T>(&self, bound: Duration, f: impl Future<Output = T>) -> Option<T> {
        let rt = self.0.as_ref()?;
        // The timer must be made inside the runtime.
        rt.block_on(async { tokio::time::timeout(bound, f).await })
            .ok()
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        // A plain drop waits for the runtime's tasks and panics inside an async
        // context; nothing here needs waiting for, so the store may be dropped anywhere.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// A live connection and the statements prepared on it.
pub(crate) struct Conn {
    /// The connection; replaced when it is found closed.
    client: Client,
    /// The task that drives the connection's socket; aborted with the connection.
    driver: JoinHandle<()>,
    /// Runs the connection's futures: one runtime per connection, so threads using
    /// different connections of a store's pool never wait on each other's I/O.
    rt: Arc<Rt>,
    /// How long a statement may go unanswered.
    answer_within: Duration,
    /// A tighter end for the calls made while opening (see [`Conn::until`]).
    deadline: Option<Instant>,
    /// Prepared statements by SQL text: after the first use, each operation is one
    /// Bind/Execute round trip with no Parse. Emptied on reconnect (statements belong
    /// to the server session).
    prepared: HashMap<&'static str, Statement>,
    /// When the connection last carried an operation; a connection idle for longer
    /// than [`IDLE_CHECK`] is checked before use.
    last_used: Instant,
    /// A statement went unanswered: the session's state is unknown, so the next call
    /// connects afresh rather than send anything more on it.
    broken: bool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// How long a connection may sit idle before it is checked for having been closed by
/// the server. The check costs up to a millisecond (a timer tick), so busy
/// connections skip it.
const IDLE_CHECK: Duration = Duration::from_millis(250);

/// How a store reaches its server: the parsed configuration with our defaults
/// applied, a printable description without credentials, and the bounds.
pub(crate) struct Target {
    pub(crate) config: Config,
    pub(crate) display: String,
    /// How long opening a connection may take, start-up and first queries included.
    pub(crate) connect_within: Duration,
    /// How long a statement may go unanswered.
    pub(crate) answer_within: Duration,
}

impl Target {
    /// Connects, with the whole start-up bounded by the connect timeout.
    pub(crate) fn connect(&self) -> Result<Conn> {
        let mut c = self.connect_until(Instant::now() + self.connect_within)?;
        c.deadline = None;
        Ok(c)
    }

    /// Connects by `deadline`, which stays set on the connection: the caller's first
    /// queries count against it too, until it clears it.
    pub(crate) fn connect_until(&self, deadline: Instant) -> Result<Conn> {
        let bound = deadline.saturating_duration_since(Instant::now());
        let rt = Arc::new(Rt::new()?);
        let connecting = async {
            let (client, connection) = self.config.connect(NoTls).await?;
            let driver = tokio::spawn(async move {
                let _ = connection.await;
            });
            Ok::<_, tokio_postgres::Error>((client, driver))
        };
        let Some(made) = rt.within(bound, connecting) else {
            return Err(Error::unavailable(
                format!("cannot connect to PostgreSQL at {}", self.display),
                self.no_answer("connect", bound, CONNECT_BOUND),
            ));
        };
        let (client, driver) = made.map_err(|e| {
            let hint = if self.config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
                "; this build speaks PostgreSQL without TLS: use a unix socket, a private \
                 network or a tunnel, and drop sslmode=require"
            } else {
                ""
            };
            let context = format!("cannot connect to PostgreSQL at {}{hint}", self.display);
            // The server answering with an error (authentication, no such database)
            // will answer the same again; a refused or dropped connection may not.
            if e.code().is_some() {
                Error::store(context, full(&e))
            } else {
                Error::unavailable(context, full(&e))
            }
        })?;
        Ok(Conn {
            client,
            driver,
            rt,
            answer_within: self.answer_within,
            deadline: Some(deadline),
            prepared: HashMap::new(),
            last_used: Instant::now(),
            broken: false,
        })
    }

    /// The error for a call that got no answer: what was waited for, and how long.
    /// `bound` says which bound that was.
    pub(crate) fn no_answer(&self, what: &str, waited: Duration, bound: &str) -> String {
        format!(
            "no answer from the PostgreSQL server at {} within {} while trying to {what} \
             ({bound}; the server is frozen, overloaded or unreachable)",
            self.display,
            secs(waited),
        )
    }

    /// `f` as an error, for calls made outside [`run`] (opening, migrating); `bound`
    /// says which bound an unanswered call ran into ([`CONNECT_BOUND`] or
    /// [`ANSWER_BOUND`]).
    pub(crate) fn failed(&self, what: &str, f: Failure, bound: &str) -> Error {
        match f {
            Failure::Db(e) => translate(what, e),
            Failure::Task(e) => e,
            Failure::NoAnswer(waited) => Error::store(
                format!("could not {what}"),
                self.no_answer(what, waited, bound),
            ),
        }
    }
}

/// What the connect timeout covers, for messages.
pub(crate) const CONNECT_BOUND: &str = "the connect timeout, which covers the TCP connect, start-up, \
                             authentication and the schema check; connect_timeout= in the \
                             connection string sets it";

/// What a statement's bound is, for messages.
pub(crate) const ANSWER_BOUND: &str = "the busy timeout plus 2s";

/// `30s`, or `1.5s`, to a tenth of a second (a remaining bound is a hair short).
pub(crate) fn secs(d: Duration) -> String {
    let s = format!("{:.1}", d.as_secs_f64());
    format!("{}s", s.strip_suffix(".0").unwrap_or(&s))
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
    /// stream that sits unread on the socket; the driver task only sees it when the
    /// runtime turns its I/O driver, which a one-millisecond sleep does.
    fn closed(&mut self) -> bool {
        if !self.broken && !self.driver.is_finished() && !self.client.is_closed() {
            self.rt.within(IDLE_CHECK, async {
                tokio::time::sleep(Duration::from_millis(1)).await;
            });
        }
        self.broken || self.driver.is_finished() || self.client.is_closed()
    }

    /// Sets when the calls made while opening must be done by; `None` returns to the
    /// per-statement bound.
    pub(crate) fn until(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// How long the next call may wait for its answer.
    fn bound(&self) -> Duration {
        match self.deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => self.answer_within,
        }
    }

    /// A call's result, given `None` when it went unanswered for `bound`: that marks
    /// the connection broken.
    fn answered<T>(
        &mut self,
        got: Option<Result<T, tokio_postgres::Error>>,
        bound: Duration,
    ) -> Result<T, Failure> {
        match got {
            Some(r) => Ok(r?),
            None => {
                self.broken = true;
                Err(Failure::NoAnswer(bound))
            }
        }
    }

    fn statement(&mut self, sql: &'static str) -> Result<Statement, Failure> {
        if let Some(s) = self.prepared.get(sql) {
            return Ok(s.clone());
        }
        let bound = self.bound();
        let got = self.rt.within(bound, self.client.prepare(sql));
        let s = self.answered(got, bound)?;
        self.prepared.insert(sql, s.clone());
        Ok(s)
    }

    pub(crate) fn query(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, Failure> {
        let s = self.statement(sql)?;
        let bound = self.bound();
        let got = self.rt.within(bound, self.client.query(&s, params));
        self.answered(got, bound)
    }

    pub(crate) fn query_one(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Row, Failure> {
        let s = self.statement(sql)?;
        let bound = self.bound();
        let got = self.rt.within(bound, self.client.query_one(&s, params));
        self.answered(got, bound)
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Option<Row>, Failure> {
        let s = self.statement(sql)?;
        let bound = self.bound();
        let got = self.rt.within(bound, self.client.query_opt(&s, params));
        self.answered(got, bound)
    }

    pub(crate) fn execute(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<u64, Failure> {
        let s = self.statement(sql)?;
        let bound = self.bound();
        let got = self.rt.within(bound, self.client.execute(&s, params));
        self.answered(got, bound)
    }

    /// Runs `sql` (several statements allowed) with the simple query protocol.
    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), Failure> {
        let bound = self.bound();
        let got = self.rt.within(bound, self.client.batch_execute(sql));
        self.answered(got, bound)
    }

    /// Runs `f` between `BEGIN` and `COMMIT`, or rolls back if it fails. Only for
    /// operations that need several statements (`add`, migrations); lease operations
    /// are single statements and need no transaction round trips.
    pub(crate) fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> Result<T, Failure>,
    ) -> Result<T, Failure> {
        self.batch_execute("BEGIN")?;
        match f(self) {
            Ok(v) => {
                self.batch_execute("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                // A broken connection has rolled back already; nothing to add, and an
                // unanswered one must not be waited on again.
                if !self.broken {
                    let _ = self.batch_execute("ROLLBACK");
                }
                Err(e)
            }
        }
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
    if conn.broken || (conn.last_used.elapsed() > IDLE_CHECK && conn.closed()) {
        *conn = target.connect()?;
    }
    conn.last_used = Instant::now();
    let started = conn.last_used;
    let mut rerun = 0;
    loop {
        let e = match op(conn) {
            Ok(v) => return Ok(v),
            Err(Failure::Task(e)) => return Err(e),
            Err(Failure::NoAnswer(waited)) => {
                // Not reconnecting now: a silent server would make this call wait a
                // connect timeout longer. The next call connects afresh.
                let why = target.no_answer(what, waited, ANSWER_BOUND);
                return Err(match retry {
                    Retry::Read => Error::store(format!("could not {what}"), why),
                    Retry::Write => Error::outcome_unknown(format!("could not {what}"), why),
                });
            }
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
            match fresh {
                Ok(c) => *conn = c,
                Err(_) => conn.broken = true,
            }
            return Err(Error::outcome_unknown(
                format!(
                    "the connection to PostgreSQL at {} broke while trying to {what}",
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
        if e.code() == Some(&SqlState::QUERY_CANCELED) {
            // The server ended the statement at its statement timeout and said so: a
            // definite "not done", like a wait for SQLite's writer turn that ran out.
            return Err(Error::Busy {
                what: format!(
                    "PostgreSQL to {what} (the server's statement timeout ended the \
                     wait: the database is overloaded, or another session holds the rows \
                     for long)"
                ),
                waited: started.elapsed(),
                holder: Some("another PostgreSQL session (pg_stat_activity shows which)".into()),
            });
        }
        return Err(translate(what, e));
    }
}

/// Why an operation stopped: a database failure (subject to the retry policy) or a
/// finished answer in task terms.
pub(crate) enum Failure {
    Db(tokio_postgres::Error),
    Task(Error),
    /// The server did not answer within this bound.
    NoAnswer(Duration),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
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
fn is_lost(e: &tokio_postgres::Error) -> bool {
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
pub(crate) fn translate(what: &str, e: tokio_postgres::Error) -> Error {
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
fn full(e: &tokio_postgres::Error) -> String {
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
