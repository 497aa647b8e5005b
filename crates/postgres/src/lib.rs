//! The store for agents on several hosts: one PostgreSQL database (or one schema of
//! it) that every agent connects to.
//!
//! # Why every lease operation is one statement
//!
//! PostgreSQL lets many writers work at once, so the question is not how to take a
//! write lock but how to decide and act without a window between the two. Each lease
//! operation is a single autocommit statement built from data-modifying CTEs: it
//! locks the task row, changes it only if the condition still holds on the locked
//! (latest) version, writes the history row, and returns either the result or the
//! locked row's state so a refusal can be explained — one round trip, no
//! `BEGIN`/`COMMIT`, and nothing an agent decides on can be stale. Statements are
//! prepared once per connection, so the hot path is a single Bind/Execute.
//!
//! How rows are locked follows what the caller is asking:
//!
//! - `claim --next` and batch claims use `FOR UPDATE SKIP LOCKED`: a claimer never
//!   waits on a row another agent is claiming, it takes the next one. A batch that
//!   skipped a row tries again a few times (the other claim commits within
//!   microseconds), then waits for the lock once, so the answer is always definite;
//!   batches stay all or nothing.
//! - `claim ID`, renew, release and done use `FOR UPDATE`: the answer is about that
//!   one row, and after a concurrent writer commits, the refusal must name the holder
//!   that actually won.
//!
//! Leases are judged by the server's clock (`clock_timestamp()`, read once per
//! statement), never an agent's, so agents with skewed clocks agree. Tests inject a
//! [`Clock::Manual`] instant through the same parameter.
//!
//! Known limits: no TLS (connect over a unix socket, a private network or a tunnel);
//! `PG*` environment variables fill in only host, port, user, database and password,
//! and `~/.pgpass` is not read.

pub mod bench;
mod conn;
mod graph;
mod import;
mod listen;
mod migrate;
mod redact;
mod sql;
pub mod testing;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use tasklease_core::{
    AgentId, BatchOutcome, ClaimOutcome, Clock, Deleted, DepChange, Deps, DoneThenNext, Ended,
    Error, Event, EventKind, Lease, LeaseDuration, LeaseState, ListFilter, Millis, NewTask,
    Priority, Readiness, ReadySignal, Reaped, Reason, Refusal, ReleaseTo, RequestId, Result,
    Retention, Secret, Stamp, Status, Store, Tag, Task, TaskId, TaskPatch, Token, Version,
    retried_grant, validate_batch,
};
use tokio_postgres::{Config, Row};

use conn::{Conn, Failure, Retry, Target};
pub use migrate::{LATEST_VERSION, Migrated};
pub use redact::redact;

/// How to connect.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where "now" comes from; [`Clock::Database`] outside tests.
    pub clock: Clock,
    /// How long opening may take — TCP connect, start-up, authentication and the
    /// schema check together — unless the connection string sets `connect_timeout`.
    pub connect_timeout: Duration,
    /// The server aborts any statement running longer (`statement_timeout`), e.g. one
    /// stuck behind a lock that a crashed session's transaction holds. A connection
    /// string's own `options=-c statement_timeout=…` wins on the server. The client
    /// gives up on a statement that has had no answer for this long plus 2 s (a
    /// frozen or unreachable server), whatever the connection string says.
    pub statement_timeout: Duration,
    /// Create the tasklease tables in a schema that has none; otherwise such a schema
    /// is refused (an older schema is still migrated).
    pub create: bool,
    /// How many connections the store may open, so threads sharing it run their calls
    /// side by side (at least 1). They are opened as concurrent calls need them.
    pub pool_size: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: Clock::Database,
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
            create: true,
            pool_size: DEFAULT_POOL_SIZE,
        }
    }
}

/// [`Options::pool_size`] by default: enough for a few threads of one process to
/// claim and renew side by side, few enough that many agent processes on one server
/// stay well inside its `max_connections` (100 by default).
pub const DEFAULT_POOL_SIZE: usize = 4;

/// A task store in a PostgreSQL database.
///
/// A small pool of connections ([`Options::pool_size`], 4 by default): threads sharing
/// one store (`Arc<PgStore>`, `Arc<dyn Store>`) run their calls on different
/// connections — with as many connections as threads, sharing a store is as fast as
/// a store per thread (docs/library.md has figures) — and a call stuck
/// on the server (waiting for a row lock) holds up no other thread's renewal.
/// Connections beyond the first are opened when concurrent calls first need them; a
/// process that makes one call at a time uses one.
pub struct PgStore {
    /// The connections and their prepared statements; a slot is empty until a call
    /// needs it, and its connection is replaced when the server drops it. Each slot's
    /// mutex is held for one operation.
    pool: Vec<Mutex<Option<Conn>>>,
    /// Where a caller that finds every slot busy queues: spreads waiters over slots.
    next: AtomicUsize,
    /// How to reconnect, and how to name the server in messages (no credentials).
    target: Target,
    /// Source of the injected `now` parameter; [`Clock::Database`] sends NULL.
    clock: Clock,
    /// What opening did to the schema.
    migrated: Migrated,
}

impl PgStore {
    /// Connects to the server `conn` names — a `postgres://` URL or `key=value` pairs
    /// — and brings the schema up to date (in the first schema on `search_path`).
    ///
    /// # Errors
    /// [`Error::Invalid`] for a malformed connection string, a `search_path` with no
    /// existing schema, or (field `store`, without [`Options::create`]) a schema without
    /// the tasklease tables; [`Error::SchemaTooNew`]; [`Error::Store`] when the server
    /// cannot be reached, does not finish opening within the connect timeout, or the
    /// migration fails.
    pub fn open(conn: &str, opts: &Options) -> Result<PgStore> {
        let target = target(conn, opts)?;
        let mut c = target.connect_until(Instant::now() + target.connect_within)?;
        let migrated = migrate::migrate(&mut c, &target, opts.create)?;
        let mut pool = vec![Mutex::new(Some(c))];
        pool.extend((1..opts.pool_size.max(1)).map(|_| Mutex::new(None)));
        Ok(PgStore {
            pool,
            next: AtomicUsize::new(0),
            target,
            clock: opts.clock.clone(),
            migrated,
        })
    }

    /// What opening did to the schema.
    pub fn migrated(&self) -> &Migrated {
        &self.migrated
    }

    /// The server, for messages: hosts, port, database and user, never a password.
    pub fn display(&self) -> &str {
        &self.target.display
    }

    /// A free slot: a connected one if any is free, else an empty one (to connect),
    /// else the next slot in turn, waited for (each holds one operation, bounded by the
    /// statement timeout).
    fn slot(&self) -> MutexGuard<'_, Option<Conn>> {
        // A panic mid-operation left no transaction open (each is one statement, or
        // rolled back on drop); the connection itself is still sound.
        let mut empty = None;
        for slot in &self.pool {
            let guard = match slot.try_lock() {
                Ok(g) => g,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => continue,
            };
            if guard.is_some() {
                return guard;
            }
            empty.get_or_insert(guard);
        }
        if let Some(guard) = empty {
            return guard;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        self.pool[n].lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run<T>(
        &self,
        what: &str,
        retry: Retry,
        op: impl FnMut(&mut Conn) -> Result<T, Failure>,
    ) -> Result<T> {
        let mut slot = self.slot();
        let conn = match &mut *slot {
            Some(c) => c,
            None => slot.insert(self.target.connect()?),
        };
        conn::run(conn, &self.target, what, retry, op)
    }

    fn now_param(&self) -> Option<i64> {
        self.clock.injected()
    }

    /// Runs a claim under the claim key `request` in one transaction that first takes
    /// an advisory lock on the key, then looks for the leases an earlier attempt under
    /// the key granted (see prior.sql): `retry` answers from those, `claim` runs only
    /// when there are none. The lock makes a retry sent while the first attempt is still
    /// running on the server (its connection broke, the server has not noticed yet) wait
    /// for that attempt to commit or roll back, and then see what it did.
    fn keyed<T>(
        &self,
        what: &str,
        who: &AgentId,
        request: &RequestId,
        retry: impl Fn(Vec<Lease>) -> Result<T>,
        mut claim: impl FnMut(&mut Conn) -> Result<T, Failure>,
    ) -> Result<T> {
        let now = self.now_param();
        self.run(what, Retry::Write, |c| {
            c.transaction(|c| {
                c.execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                    &[&KEY_LOCK_CLASS, &request.as_str()],
                )?;
                let prior = c
                    .query(sql::PRIOR, &[&request.as_str(), &who.as_str(), &now])?
                    .iter()
                    .map(|r| lease(r, task_id(r.try_get("id")?)?, who.clone(), "fence"))
                    .collect::<Result<Vec<_>, Failure>>()?;
                if !prior.is_empty() {
                    return Ok(retry(prior)?);
                }
                claim(c)
            })
        })
    }

    /// `claim_next_keyed`, also notifying waiters when `wake_more` and another task is
    /// ready besides the one claimed (`claim_next_waking.sql`, see `sql.rs`).
    fn claim_next_waking(
        &self,
        who: &AgentId,
        lease_for: LeaseDuration,
        request: Option<&RequestId>,
        wake_more: bool,
    ) -> Result<Option<Lease>> {
        let key = request.map(RequestId::as_str);
        let now = self.now_param();
        let secret = Secret::random()?;
        let mut reruns: i64 = 0;
        let claim = |c: &mut Conn| {
            let got = c.query_opt(
                if wake_more {
                    *sql::CLAIM_NEXT_WAKING
                } else {
                    sql::CLAIM_NEXT
                },
                &[
                    &who.as_str(),
                    &now,
                    &lease_for.as_millis(),
                    &reruns,
                    &key,
                    &secret.as_str(),
                ],
            );
            reruns += 1;
            let Some(r) = got? else {
                return Ok(None);
            };
            let id = task_id(r.try_get("id")?)?;
            Ok(Some(lease(&r, id, who.clone(), "fence")?))
        };
        match request {
            Some(k) => self.keyed(
                "claim the next task",
                who,
                k,
                |prior| Ok(Some(retried_grant(k, prior, &[])?.remove(0))),
                claim,
            ),
            None => self.run("claim the next task", Retry::Write, claim),
        }
    }

    /// `done_with_reason`, notifying waiters at commit only when `wake` (`done.sql`).
    fn done_notifying(
        &self,
        id: &TaskId,
        token: &Token,
        who: &AgentId,
        reason: Option<&Reason>,
        wake: bool,
    ) -> Result<Ended> {
        let now = self.now_param();
        let reason = reason.map(Reason::as_str);
        let r = self.run("finish the task", Retry::Write, |c| {
            c.query_one(
                sql::DONE,
                &[
                    &id.as_str(),
                    &token.fence(),
                    &now,
                    &who.as_str(),
                    &token.secret(),
                    &reason,
                    &wake,
                ],
            )
        })?;
        match ended(&r)? {
            Some(task) => Ok(Ended {
                task,
                repeat: false,
            }),
            None => self.repeat_or_lost(&r, id, token, EventKind::Done, Status::Done),
        }
    }

    /// A done or release that matched nothing: a repeat of what `token` already did
    /// (the task as it is now, nothing changed), or why the token lost its lease.
    fn repeat_or_lost(
        &self,
        r: &Row,
        id: &TaskId,
        token: &Token,
        op: EventKind,
        to: Status,
    ) -> Result<Ended> {
        let now = Millis::from_millis(
            r.try_get("now")
                .map_err(|e| conn::translate("read the row", e))?,
        );
        let state = lease_state(r).map_err(plain)?;
        let Some(state) = state else {
            return Err(Error::NotFound(id.clone()));
        };
        if !state.repeat_of(token, op, to) {
            return Err(state.lost(id, token, now));
        }
        let task = self.show(id)?.ok_or_else(|| Error::NotFound(id.clone()))?;
        Ok(Ended { task, repeat: true })
    }
}

/// Parses a connection string and applies our defaults.
fn target(s: &str, opts: &Options) -> Result<Target> {
    if redact::ambiguous_at(s) {
        return Err(Error::invalid(
            "db",
            format!(
                "{} is not a PostgreSQL connection string: the URL holds more than one \
                 '@'; allowed: one '@' ending the user info, with any '@' in a user name \
                 or password percent-encoded as %40",
                redact::redact_unparsed(s)
            ),
        ));
    }
    let mut config: Config = s.parse().map_err(|e: postgres::Error| {
        Error::invalid(
            "db",
            format!(
                "{} is not a PostgreSQL connection string ({}); allowed: a URL such as \
                 postgres://agent@db.example:5432/tasks, or key=value pairs such as \
                 host=/run/postgresql dbname=tasks user=agent",
                redact::redact_unparsed(s),
                redact::driver_message(&e.to_string())
            ),
        )
    })?;
    fill_from_env(&mut config, |k| std::env::var(k).ok());
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(opts.connect_timeout);
    }
    let connect_within = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(opts.connect_timeout);
    let answer_within = opts.statement_timeout + conn::ANSWER_SLACK;
    if config.get_tcp_user_timeout().is_none() {
        // Unacknowledged data on a dead TCP link then fails the socket (a definite
        // error) before the client-side bound fires.
        config.tcp_user_timeout(answer_within);
    }
    if config.get_application_name().is_none() {
        config.application_name("tasklease");
    }
    let mut options = conn::statement_timeout_option(opts.statement_timeout);
    if let Some(theirs) = config.get_options() {
        options.push(' ');
        options.push_str(theirs);
    }
    config.options(&options);
    let display = describe(&config);
    Ok(Target {
        config,
        display,
        connect_within,
        answer_within,
    })
}

/// Fills what the connection string left out from libpq's `PGHOST`, `PGPORT`,
/// `PGUSER`, `PGDATABASE` and `PGPASSWORD`, then libpq's defaults for the host (the
/// local socket directory if it exists, else localhost).
fn fill_from_env(config: &mut Config, var: impl Fn(&str) -> Option<String>) {
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        match var("PGHOST") {
            Some(hosts) => {
                for h in hosts.split(',') {
                    config.host(h);
                }
            }
            None if std::path::Path::new("/var/run/postgresql").is_dir() => {
                config.host("/var/run/postgresql");
            }
            None => {
                config.host("localhost");
            }
        }
    }
    if config.get_ports().is_empty()
        && let Some(p) = var("PGPORT").and_then(|p| p.parse().ok())
    {
        config.port(p);
    }
    if config.get_user().is_none()
        && let Some(u) = var("PGUSER")
    {
        config.user(&u);
    }
    if config.get_dbname().is_none()
        && let Some(d) = var("PGDATABASE")
    {
        config.dbname(&d);
    }
    if config.get_password().is_none()
        && let Some(p) = var("PGPASSWORD")
    {
        config.password(p);
    }
}

/// `postgres://user@host:port/db`, built from the parsed configuration, so it can hold
/// no password whatever the user typed.
fn describe(config: &Config) -> String {
    use tokio_postgres::config::Host;
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .chain(config.get_hostaddrs().iter().map(ToString::to_string))
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    let mut s = String::from("postgres://");
    if let Some(u) = config.get_user() {
        s.push_str(u);
        s.push('@');
    }
    s.push_str(&hosts.join(","));
    if !ports.is_empty() {
        s.push(':');
        s.push_str(&ports.join(","));
    }
    if let Some(d) = config.get_dbname() {
        s.push('/');
        s.push_str(d);
    }
    s
}

// ----- reading rows ---------------------------------------------------------------

fn corrupt(what: &str, value: &str) -> Error {
    Error::store(
        format!("read {what}"),
        format!("the database holds {value:?}, which tasklease never writes"),
    )
}

fn task_id(s: String) -> Result<TaskId> {
    TaskId::new(&s).map_err(|_| corrupt("a task id", &s))
}

fn agent(s: String) -> Result<AgentId> {
    Ok(AgentId::from_stored(s))
}

fn status(s: String) -> Result<Status> {
    s.parse().map_err(|_| corrupt("a status", &s))
}

/// A task from a row holding `tasks.*` and `deps`.
fn task(r: &Row) -> Result<Task, Failure> {
    let priority: i64 = r.try_get("priority")?;
    let tags: Vec<String> = r.try_get("tags")?;
    let deps: Vec<String> = r.try_get("deps")?;
    Ok(Task {
        id: task_id(r.try_get("id")?)?,
        title: r.try_get("title")?,
        description: r.try_get("description")?,
        status: status(r.try_get("status")?)?,
        priority: Priority::from_rank(priority)
            .ok_or_else(|| corrupt("a priority", &priority.to_string()))?,
        tags: tags.into_iter().map(Tag::from_stored).collect(),
        deps: deps.into_iter().map(task_id).collect::<Result<_>>()?,
        parent: r
            .try_get::<_, Option<String>>("parent")?
            .map(task_id)
            .transpose()?,
        waiting_on: r.try_get("waiting_on")?,
        version: Version::new(r.try_get("version")?),
        assignee: r
            .try_get::<_, Option<String>>("assignee")?
            .map(agent)
            .transpose()?,
        assigned_at: r
            .try_get::<_, Option<i64>>("assigned_at")?
            .map(Millis::from_millis),
        lock_until: r
            .try_get::<_, Option<i64>>("lock_until")?
            .map(Millis::from_millis),
        attempts: r.try_get("attempts")?,
        created_at: Millis::from_millis(r.try_get("created_at")?),
        updated_at: Millis::from_millis(r.try_get("updated_at")?),
    })
}

/// The task `update.sql` returned, or why it changed nothing.
fn updated(
    r: &Row,
    id: &TaskId,
    expect_version: Version,
    token: Option<&Token>,
) -> Result<Task, Failure> {
    if r.try_get::<_, Option<i64>>("seq")?.is_some() {
        return task(r);
    }
    let now = Millis::from_millis(r.try_get("now")?);
    let Some(state) = lease_state(r)? else {
        return Err(Error::NotFound(id.clone()).into());
    };
    if let Some((holder, until)) = state.live_holder(now)
        && !token.is_some_and(|t| t.matches(state.fence, state.secret.as_deref()))
    {
        return Err(match token {
            None => Error::NotHolder {
                task: id.clone(),
                holder,
                until,
            },
            Some(t) => state.lost(id, t, now),
        }
        .into());
    }
    Err(Error::VersionConflict {
        task: id.clone(),
        expected: expect_version,
        current: Version::new(r.try_get("cur_version")?),
    }
    .into())
}

/// The locked row's lease state from the `cur_*` columns; `None` when there was no
/// row (no such task).
fn lease_state(r: &Row) -> Result<Option<LeaseState>, Failure> {
    let Some(st) = r.try_get::<_, Option<String>>("cur_status")? else {
        return Ok(None);
    };
    Ok(Some(LeaseState {
        status: status(st)?,
        assignee: r
            .try_get::<_, Option<String>>("cur_assignee")?
            .map(agent)
            .transpose()?,
        lock_until: r
            .try_get::<_, Option<i64>>("cur_lock_until")?
            .map(Millis::from_millis),
        fence: r.try_get("cur_fence")?,
        // Only the statements that check a token return it.
        secret: if has_column(r, "cur_secret") {
            r.try_get("cur_secret")?
        } else {
            None
        },
        waiting_on: r.try_get("cur_waiting_on")?,
        // Only done.sql and release.sql return it: the operations that can repeat.
        // ('updated' is no event kind: an update's end is nobody's repeat.)
        ended_by: if has_column(r, "cur_lease_end") {
            r.try_get::<_, Option<String>>("cur_lease_end")?
                .as_deref()
                .and_then(EventKind::parse)
        } else {
            None
        },
    }))
}

fn has_column(r: &Row, name: &str) -> bool {
    r.columns().iter().any(|c| c.name() == name)
}

/// Why a claim statement's row came back unclaimed.
fn refusal(r: &Row, id: &TaskId, now: Millis) -> Result<Refusal, Failure> {
    let Some(state) = lease_state(r)? else {
        return Ok(Refusal::NotFound);
    };
    let waiting = || -> Result<Vec<TaskId>> {
        let ids: Option<Vec<String>> = r
            .try_get("cur_waiting")
            .map_err(|e| conn::translate("read the dependencies", e))?;
        ids.unwrap_or_default().into_iter().map(task_id).collect()
    };
    Ok(state.refusal(id, now, waiting)?)
}

/// A failure reading a row that already came back, in task terms.
fn plain(f: Failure) -> Error {
    match f {
        Failure::Db(e) => conn::translate("read the row", e),
        Failure::Task(e) => e,
        // Reading a row that came back waits on nothing; kept for completeness.
        Failure::NoAnswer(waited) => Error::store(
            "read the row",
            format!(
                "no answer within {}",
                tasklease_core::human_duration(waited)
            ),
        ),
    }
}

/// The task a lease-ending statement returns; `None` when it ended nothing.
fn ended(r: &Row) -> Result<Option<Task>> {
    if r.try_get::<_, Option<i64>>("seq")
        .map_err(|e| conn::translate("read the task", e))?
        .is_none()
    {
        return Ok(None);
    }
    task(r).map(Some).map_err(plain)
}

fn lease(r: &Row, task: TaskId, agent: AgentId, fence_col: &str) -> Result<Lease, Failure> {
    Ok(Lease {
        task,
        agent,
        token: Token::from_parts(
            r.try_get(fence_col)?,
            r.try_get::<_, Option<&str>>("secret")?,
        )?,
        assigned_at: Millis::from_millis(r.try_get("assigned_at")?),
        lock_until: Millis::from_millis(r.try_get("lock_until")?),
        version: Version::new(r.try_get("version")?),
    })
}

/// How many times a batch claim that skipped locked rows is tried again before it
/// waits for the locks instead.
const BATCH_SKIP_TRIES: u32 = 4;

/// First key of the advisory lock a keyed claim takes ("tk"); the second is a hash of
/// the claim key. (Migrations use "tl".)
const KEY_LOCK_CLASS: i32 = 0x746b;

/// One try of a batch claim.
enum BatchTry {
    Done(BatchOutcome),
    /// Rows were locked by others and nothing else refused: try again.
    Contended,
}

fn batch_rows(rows: &[Row], ids: &[TaskId], who: &AgentId) -> Result<BatchTry, Failure> {
    let mut leases = Vec::with_capacity(ids.len());
    let mut refused = Vec::new();
    let mut contended = false;
    for (r, id) in rows.iter().zip(ids) {
        if r.try_get::<_, Option<i64>>("token")?.is_some() {
            leases.push(lease(r, id.clone(), who.clone(), "token")?);
        } else if r.try_get("skipped")? {
            contended = true;
        } else if !r.try_get::<_, bool>("free")? {
            let now = Millis::from_millis(r.try_get("now")?);
            refused.push((id.clone(), refusal(r, id, now)?));
        }
    }
    Ok(if leases.len() == ids.len() {
        BatchTry::Done(BatchOutcome::Claimed(leases))
    } else if !refused.is_empty() {
        BatchTry::Done(BatchOutcome::Refused(refused))
    } else if contended {
        BatchTry::Contended
    } else {
        return Err(Error::store(
            "claim the batch",
            "every task was free but none was claimed; this is a bug in tasklease",
        )
        .into());
    })
}

fn event(r: &Row) -> Result<Event, Failure> {
    let kind: String = r.try_get("kind")?;
    Ok(Event {
        seq: r.try_get("seq")?,
        at: Millis::from_millis(r.try_get("at")?),
        task: task_id(r.try_get("task")?)?,
        kind: EventKind::parse(&kind).ok_or_else(|| corrupt("an event kind", &kind))?,
        agent: agent(r.try_get("agent")?)?,
        fence: r.try_get("token")?,
        detail: r.try_get("detail")?,
        lease_ms: r.try_get("lease_ms")?,
        wait_us: r.try_get("wait_us")?,
        busy: r.try_get("busy")?,
        reason: r.try_get("reason")?,
    })
}

/// The most history rows one prune statement deletes, so a prune never holds many
/// row locks or a long transaction.
const PRUNE_BATCH: i64 = 5_000;

impl Store for PgStore {
    fn add(&self, new: &NewTask) -> Result<Task> {
        new.validate()?;
        let now = self.now_param();
        let distinct = tasklease_core::distinct_tags(&new.tags);
        let tags: Vec<&str> = distinct.iter().map(Tag::as_str).collect();
        self.run("add the task", Retry::Write, |c| {
            c.transaction(|c| {
                if let Some(p) = &new.parent {
                    graph::check_parent(c, None, p)?;
                }
                let (mut n, explicit) = match &new.id {
                    Some(id) => (0, Some(id)),
                    None => (c.query_one(sql::NEXT_ID, &[])?.try_get::<_, i64>(0)?, None),
                };
                let seq: i64 = loop {
                    let id = match explicit {
                        Some(id) => id.clone(),
                        None => TaskId::new(&format!("T-{n}"))?,
                    };
                    let row = c.query_opt(
                        sql::ADD,
                        &[
                            &id.as_str(),
                            &new.title,
                            &new.description,
                            &new.priority.rank(),
                            &tags,
                            &now,
                        ],
                    )?;
                    // Checked after the insert, in a statement of its own (a fresh
                    // snapshot): an insert that waited on a concurrent delete of the
                    // same id sees that delete's tombstone here.
                    let deleted: bool =
                        c.query_one(sql::DELETED_ID, &[&id.as_str()])?.try_get(0)?;
                    match (row, explicit) {
                        (_, Some(id)) if deleted => {
                            return Err(tasklease_core::deleted_id_error(id).into());
                        }
                        (Some(_), None) if deleted => {
                            // Only this row is wrong: take it back, try the next number.
                            c.execute(sql::ADD_UNDO, &[&id.as_str()])?;
                            n += 1;
                        }
                        (Some(r), _) => break r.try_get(0)?,
                        (None, Some(id)) => return Err(Error::Exists(id.clone()).into()),
                        (None, None) => n += 1,
                    }
                };
                for dep in &new.deps {
                    if c.execute(sql::ADD_DEP, &[&seq, &dep.as_str()])? == 0 {
                        return Err(Error::invalid(
                            "dependency",
                            format!("dependency {dep} does not exist; add it first"),
                        )
                        .into());
                    }
                }
                if let Some(p) = &new.parent {
                    c.execute(sql::SET_PARENT, &[&seq, &p.as_str()])?;
                }
                let added = task(&c.query_one(sql::TASK_BY_SEQ, &[&seq])?)?;
                if added.waiting_on == 0 {
                    c.query_one(sql::NOTIFY, &[])?;
                }
                Ok(added)
            })
        })
    }

    fn show(&self, id: &TaskId) -> Result<Option<Task>> {
        self.run("read the task", Retry::Read, |c| {
            c.query_opt(sql::SHOW, &[&id.as_str()])?
                .map(|r| task(&r))
                .transpose()
        })
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<Task>> {
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let assignee = filter.assignee.as_ref().map(AgentId::as_str);
        let tag = filter.tag.as_ref().map(Tag::as_str);
        let limit = filter.limit.map(i64::from);
        self.run("list tasks", Retry::Read, |c| {
            c.query(sql::LIST, &[&statuses, &assignee, &tag, &limit])?
                .iter()
                .map(task)
                .collect()
        })
    }

    fn dep_add(&self, task: &TaskId, deps: &[TaskId]) -> Result<Vec<(TaskId, DepChange)>> {
        tasklease_core::validate_dep_edit(task, deps)?;
        let now = self.now_param();
        self.run("add dependencies", Retry::Write, |c| {
            c.transaction(|c| graph::add(c, now, task, deps))
        })
    }

    fn dep_rm(&self, task: &TaskId, deps: &[TaskId]) -> Result<Vec<(TaskId, DepChange)>> {
        tasklease_core::validate_dep_edit(task, deps)?;
        let now = self.now_param();
        self.run("remove dependencies", Retry::Write, |c| {
            c.transaction(|c| graph::rm(c, now, task, deps))
        })
    }

    fn deps(&self, id: &TaskId) -> Result<Option<Deps>> {
        // Both directions come from one statement (after the id lookup), so they agree.
        self.run("read the task's dependencies", Retry::Read, |c| {
            graph::list(c, id)
        })
    }

    fn children(&self, parent: &TaskId, filter: &ListFilter) -> Result<Vec<Task>> {
        if self.show(parent)?.is_none() {
            return Err(Error::NotFound(parent.clone()));
        }
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let assignee = filter.assignee.as_ref().map(AgentId::as_str);
        let tag = filter.tag.as_ref().map(Tag::as_str);
        let limit = filter.limit.map(i64::from);
        self.run("list the task's children", Retry::Read, |c| {
            c.query(
                sql::CHILDREN,
                &[&parent.as_str(), &statuses, &assignee, &tag, &limit],
            )?
            .iter()
            .map(task)
            .collect()
        })
    }

    fn rm(&self, ids: &[TaskId], force: bool, agent: &AgentId) -> Result<Vec<Deleted>> {
        tasklease_core::validate_rm(ids)?;
        let now = self.now_param();
        self.run("delete tasks", Retry::Write, |c| {
            c.transaction(|c| graph::delete(c, now, ids, force, agent))
        })
    }

    fn ready(&self, filter: &ListFilter) -> Result<Vec<Task>> {
        tasklease_core::validate_ready_filter(filter)?;
        let tag = filter.tag.as_ref().map(Tag::as_str);
        let limit = filter.limit.map(i64::from);
        let now = self.now_param();
        self.run("list ready tasks", Retry::Read, |c| {
            c.query(sql::READY, &[&tag, &limit, &now])?
                .iter()
                .map(task)
                .collect()
        })
    }

    fn blocked(&self, filter: &ListFilter) -> Result<Vec<Task>> {
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let assignee = filter.assignee.as_ref().map(AgentId::as_str);
        let tag = filter.tag.as_ref().map(Tag::as_str);
        let limit = filter.limit.map(i64::from);
        self.run("list blocked tasks", Retry::Read, |c| {
            c.query(sql::BLOCKED, &[&statuses, &assignee, &tag, &limit])?
                .iter()
                .map(task)
                .collect()
        })
    }

    fn claim_keyed(
        &self,
        id: &TaskId,
        lease_for: LeaseDuration,
        token: Option<&Token>,
        request: Option<&RequestId>,
        who: &AgentId,
    ) -> Result<ClaimOutcome> {
        let now = self.now_param();
        let (fence, secret) = (token.map(Token::fence), token.and_then(Token::secret));
        let new_secret = Secret::random()?;
        let key = request.map(RequestId::as_str);
        let mut reruns: i64 = 0;
        let claim = |c: &mut Conn| {
            let r = c.query_one(
                sql::CLAIM,
                &[
                    &id.as_str(),
                    &who.as_str(),
                    &now,
                    &lease_for.as_millis(),
                    &fence,
                    &reruns,
                    &key,
                    &secret,
                    &new_secret.as_str(),
                ],
            );
            // A deadlock or serialization failure makes `run` call again: one re-run.
            reruns += 1;
            let r = r?;
            if r.try_get::<_, Option<i64>>("token")?.is_some() {
                return Ok(ClaimOutcome::Claimed(lease(
                    &r,
                    id.clone(),
                    who.clone(),
                    "token",
                )?));
            }
            let now = Millis::from_millis(r.try_get("now")?);
            Ok(ClaimOutcome::Refused(refusal(&r, id, now)?))
        };
        match request {
            Some(k) => self.keyed(
                "claim the task",
                who,
                k,
                |prior| {
                    let mut got = retried_grant(k, prior, std::slice::from_ref(id))?;
                    Ok(ClaimOutcome::Claimed(got.remove(0)))
                },
                claim,
            ),
            None => self.run("claim the task", Retry::Write, claim),
        }
    }

    fn claim_next_keyed(
        &self,
        lease_for: LeaseDuration,
        request: Option<&RequestId>,
        who: &AgentId,
    ) -> Result<Option<Lease>> {
        self.claim_next_waking(who, lease_for, request, false)
    }

    fn done_then_claim_next(
        &self,
        id: &TaskId,
        token: &Token,
        lease: LeaseDuration,
        request: Option<&RequestId>,
        who: &AgentId,
    ) -> Result<DoneThenNext> {
        // The done notifies nobody: this worker takes the next task itself, and its
        // claim notifies only if another task is ready besides the one it took.
        let ended = self.done_notifying(id, token, who, None, false)?;
        let next = self.claim_next_waking(who, lease, request, true);
        if next.is_err() {
            // Best effort: a ready task must not wait for a fallback look.
            let _ = self.run("wake waiters", Retry::Write, |c| {
                c.query_one(sql::NOTIFY, &[])
            });
        }
        Ok(DoneThenNext { ended, next })
    }

    fn done_with_reason(
        &self,
        id: &TaskId,
        token: &Token,
        reason: Option<&Reason>,
        who: &AgentId,
    ) -> Result<Ended> {
        self.done_notifying(id, token, who, reason, true)
    }

    fn claim_batch_keyed(
        &self,
        ids: &[TaskId],
        lease_for: LeaseDuration,
        request: Option<&RequestId>,
        who: &AgentId,
    ) -> Result<BatchOutcome> {
        validate_batch(ids)?;
        let now = self.now_param();
        let names: Vec<&str> = ids.iter().map(TaskId::as_str).collect();
        let minted = ids
            .iter()
            .map(|_| Secret::random())
            .collect::<Result<Vec<_>>>()?;
        let secrets: Vec<&str> = minted.iter().map(Secret::as_str).collect();
        if let Some(k) = request {
            // Under the key's lock in one transaction, so no skipping and retrying past
            // rows others hold: the statement that waits for them.
            let mut tries = i64::from(BATCH_SKIP_TRIES);
            let got = self.keyed(
                "claim the batch",
                who,
                k,
                |prior| {
                    Ok(BatchTry::Done(BatchOutcome::Claimed(retried_grant(
                        k, prior, ids,
                    )?)))
                },
                |c| {
                    let rows = c.query(
                        *sql::CLAIM_BATCH_WAIT,
                        &[
                            &names,
                            &who.as_str(),
                            &now,
                            &lease_for.as_millis(),
                            &tries,
                            &Some(k.as_str()),
                            &secrets,
                        ],
                    );
                    tries += 1;
                    batch_rows(&rows?, ids, who)
                },
            )?;
            return match got {
                BatchTry::Done(out) => Ok(out),
                BatchTry::Contended => Err(Error::store(
                    "claim the batch",
                    "rows stayed locked even when waiting for them; this is a bug in tasklease",
                )),
            };
        }
        let key: Option<&str> = None;
        for attempt in 0..=BATCH_SKIP_TRIES {
            let sql = if attempt < BATCH_SKIP_TRIES {
                sql::CLAIM_BATCH
            } else {
                *sql::CLAIM_BATCH_WAIT
            };
            let mut tries = i64::from(attempt);
            let got = self.run("claim the batch", Retry::Write, |c| {
                let rows = c.query(
                    sql,
                    &[
                        &names,
                        &who.as_str(),
                        &now,
                        &lease_for.as_millis(),
                        &tries,
                        &key,
                        &secrets,
                    ],
                );
                tries += 1;
                batch_rows(&rows?, ids, who)
            })?;
            match got {
                BatchTry::Done(out) => return Ok(out),
                BatchTry::Contended => std::thread::sleep(Duration::from_millis(1 << attempt)),
            }
        }
        Err(Error::store(
            "claim the batch",
            "rows stayed locked even when waiting for them; this is a bug in tasklease",
        ))
    }

    fn renew(
        &self,
        id: &TaskId,
        token: &Token,
        lease_for: LeaseDuration,
        who: &AgentId,
    ) -> Result<Lease> {
        let now = self.now_param();
        self.run("renew the lease", Retry::Write, |c| {
            let r = c.query_one(
                sql::RENEW,
                &[
                    &id.as_str(),
                    &token.fence(),
                    &now,
                    &lease_for.as_millis(),
                    &who.as_str(),
                    &token.secret(),
                ],
            )?;
            if let Some(holder) = r.try_get::<_, Option<String>>("assignee")? {
                return lease(&r, id.clone(), agent(holder)?, "fence");
            }
            let now = Millis::from_millis(r.try_get("now")?);
            Err(match lease_state(&r)? {
                None => Error::NotFound(id.clone()),
                Some(state) => state.lost(id, token, now),
            }
            .into())
        })
    }

    fn release_with_reason(
        &self,
        id: &TaskId,
        token: &Token,
        to: ReleaseTo,
        reason: Option<&Reason>,
        who: &AgentId,
    ) -> Result<Ended> {
        let reason = reason.map(Reason::as_str);
        let now = self.now_param();
        let r = self.run("release the task", Retry::Write, |c| {
            c.query_one(
                sql::RELEASE,
                &[
                    &id.as_str(),
                    &token.fence(),
                    &now,
                    &who.as_str(),
                    &to.status().as_str(),
                    &token.secret(),
                    &reason,
                ],
            )
        })?;
        match ended(&r)? {
            Some(task) => Ok(Ended {
                task,
                repeat: false,
            }),
            None => self.repeat_or_lost(&r, id, token, EventKind::Released, to.status()),
        }
    }

    fn release_force(&self, id: &TaskId, to: ReleaseTo, who: &AgentId) -> Result<Task> {
        let now = self.now_param();
        self.run("force the release", Retry::Write, |c| {
            let r = c.query_one(
                sql::RELEASE_FORCE,
                &[&id.as_str(), &now, &who.as_str(), &to.status().as_str()],
            )?;
            if r.try_get::<_, Option<i64>>("seq")?.is_some() {
                return task(&r);
            }
            Err(match lease_state(&r)? {
                None => Error::NotFound(id.clone()),
                Some(state) => Error::invalid(
                    "task",
                    format!(
                        "{id} is {} and has no lease; nothing to release",
                        state.status
                    ),
                ),
            }
            .into())
        })
    }

    fn reap(&self, who: &AgentId) -> Result<Vec<Reaped>> {
        let now = self.now_param();
        self.run("reap expired leases", Retry::Write, |c| {
            c.query(sql::REAP, &[&now, &who.as_str()])?
                .iter()
                .map(|r| {
                    Ok(Reaped {
                        id: task_id(r.try_get("id")?)?,
                        agent: agent(r.try_get("assignee")?)?,
                        fence: r.try_get("fence")?,
                        lock_until: Millis::from_millis(r.try_get("lock_until")?),
                    })
                })
                .collect()
        })
    }

    fn update(
        &self,
        id: &TaskId,
        expect_version: Version,
        patch: &TaskPatch,
        token: Option<&Token>,
        who: &AgentId,
    ) -> Result<Task> {
        patch.validate()?;
        let now = self.now_param();
        let (fence, secret) = (token.map(Token::fence), token.and_then(Token::secret));
        let priority = patch.priority.map(Priority::rank);
        let status = patch.status.map(Status::as_str);
        let distinct = patch.tags.as_deref().map(tasklease_core::distinct_tags);
        let tags: Option<Vec<&str>> = distinct
            .as_ref()
            .map(|t| t.iter().map(Tag::as_str).collect());
        let params: [&(dyn postgres::types::ToSql + Sync); 11] = [
            &id.as_str(),
            &expect_version.get(),
            &now,
            &fence,
            &patch.title,
            &patch.description,
            &priority,
            &status,
            &tags,
            &who.as_str(),
            &secret,
        ];
        self.run("update the task", Retry::Write, |c| {
            let Some(parent) = &patch.parent else {
                return updated(
                    &c.query_one(sql::UPDATE, &params)?,
                    id,
                    expect_version,
                    token,
                );
            };
            // A new parent is checked under the graph lock and set in the same
            // transaction, once the optimistic update it rides on has succeeded.
            c.transaction(|c| {
                if let Some(p) = parent {
                    graph::lock(c)?;
                    if c.query_opt(sql::TASK_SEQ, &[&id.as_str()])?.is_some() {
                        graph::check_parent(c, Some(id), p)?;
                    }
                }
                updated(
                    &c.query_one(sql::UPDATE, &params)?,
                    id,
                    expect_version,
                    token,
                )?;
                let seq: i64 = c.query_one(sql::TASK_SEQ, &[&id.as_str()])?.try_get(0)?;
                c.execute(
                    sql::SET_PARENT,
                    &[&seq, &parent.as_ref().map(TaskId::as_str)],
                )?;
                let t = task(&c.query_one(sql::TASK_BY_SEQ, &[&seq])?)?;
                if matches!(t.status, Status::Todo | Status::Done | Status::Cancelled) {
                    c.query_one(sql::NOTIFY, &[])?;
                }
                Ok(t)
            })
        })
    }

    fn log(&self, task: Option<&TaskId>, limit: u32) -> Result<Vec<Event>> {
        let limit = i64::from(limit);
        self.run("read the lease history", Retry::Read, |c| {
            let rows = match task {
                Some(t) => c.query(sql::LOG_TASK, &[&t.as_str(), &limit])?,
                None => c.query(sql::LOG, &[&limit])?,
            };
            rows.iter().map(event).collect()
        })
    }

    fn prune(&self, keep: &Retention) -> Result<u64> {
        keep.validate()?;
        let now = self.now_param();
        let count = keep
            .max_events
            .map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        let span = self.run("measure the lease history", Retry::Read, |c| {
            let r = c.query_one(sql::PRUNE_SPAN, &[&count, &now, &keep.max_age_ms])?;
            Ok((
                r.try_get::<_, Option<i64>>("oldest")?,
                r.try_get::<_, Option<i64>>("newest")?,
                r.try_get::<_, Option<i64>>("by_count")?,
                r.try_get::<_, Option<i64>>("by_age")?,
            ))
        })?;
        let (Some(oldest), Some(newest), by_count, by_age) = span else {
            return Ok(0);
        };
        let keep_from = keep.keep_from(oldest, newest, by_count, by_age);
        let mut deleted = 0;
        for below in Retention::slices(oldest, keep_from, PRUNE_BATCH) {
            deleted += self.run("prune the lease history", Retry::Write, |c| {
                c.execute(sql::PRUNE, &[&below])
            })?;
        }
        Ok(deleted)
    }

    fn counts(&self) -> Result<Vec<(Status, u64)>> {
        let rows = self.run("count tasks", Retry::Read, |c| {
            c.query(sql::COUNTS, &[])?
                .iter()
                .map(|r| Ok((status(r.try_get("status")?)?, r.try_get::<_, i64>("n")?)))
                .collect::<Result<Vec<_>, Failure>>()
        })?;
        Ok(Status::ALL
            .iter()
            .map(|&st| {
                let n = rows.iter().find(|r| r.0 == st).map_or(0, |r| r.1);
                (st, u64::try_from(n).unwrap_or(0))
            })
            .collect())
    }

    fn import(&self, batch: &tasklease_core::ImportBatch) -> Result<tasklease_core::ImportOutcome> {
        self.import_batch(batch)
    }

    fn mine(&self, who: &AgentId) -> Result<Vec<Lease>> {
        let now = self.now_param();
        self.run("list your leases", Retry::Read, |c| {
            c.query(sql::MINE, &[&who.as_str(), &now])?
                .iter()
                .map(|r| lease(r, task_id(r.try_get("id")?)?, who.clone(), "fence"))
                .collect()
        })
    }

    fn readiness(&self) -> Result<Readiness> {
        let now = self.now_param();
        self.run("look for ready tasks", Retry::Read, |c| {
            let r = c.query_one(sql::READINESS, &[&now])?;
            Ok(Readiness {
                ready: r.try_get("ready")?,
                next_expiry: r
                    .try_get::<_, Option<i64>>("next_expiry")?
                    .map(Millis::from_millis),
                now: Millis::from_millis(r.try_get("now")?),
            })
        })
    }

    fn ready_signal(&self) -> Result<Box<dyn ReadySignal>> {
        Ok(Box::new(listen::listen(&self.target)?))
    }

    fn now(&self) -> Result<Millis> {
        let now = self.now_param();
        self.run("read the database clock", Retry::Read, |c| {
            Ok(Millis::from_millis(
                c.query_one(sql::NOW, &[&now])?.try_get(0)?,
            ))
        })
    }

    fn stamp(&self) -> Result<Stamp> {
        self.run("read the current snapshot", Retry::Read, |c| {
            Ok(Stamp::new(
                c.query_one(sql::STAMP, &[])?.try_get::<_, String>(0)?,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_hold_no_password() {
        let opts = Options::default();
        let t = target("postgres://bob:s3cret@db.example:5433/tasks", &opts).unwrap();
        assert_eq!(t.display, "postgres://bob@db.example:5433/tasks");
        let t = target(
            "host=/run/pg port=5432 user=a password=s3cret dbname=x",
            &opts,
        )
        .unwrap();
        assert_eq!(t.display, "postgres://a@/run/pg:5432/x");
        assert!(
            t.config
                .get_options()
                .unwrap()
                .contains("statement_timeout=30000")
        );
    }

    #[test]
    fn bad_strings_are_invalid_and_redacted() {
        let e = target("postgres://bob:s3cret@h:notaport/db", &Options::default())
            .err()
            .unwrap();
        assert!(matches!(e, Error::Invalid { .. }), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn env_fills_only_what_is_missing() {
        let env = |k: &str| match k {
            "PGHOST" => Some("envhost".to_owned()),
            "PGUSER" => Some("envuser".to_owned()),
            "PGPASSWORD" => Some("pw".to_owned()),
            _ => None,
        };
        let mut c: Config = "host=given dbname=d".parse().unwrap();
        fill_from_env(&mut c, env);
        assert_eq!(describe(&c), "postgres://envuser@given/d");
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
    }
}
