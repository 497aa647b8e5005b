//! The embedded default store: one SQLite file in WAL mode, shared by every agent
//! process on one host.
//!
//! # Why one conditional statement per claim, under `BEGIN IMMEDIATE`
//!
//! SQLite has one writer at a time. A transaction that starts as a reader and later
//! writes (`BEGIN DEFERRED`, SELECT then UPDATE) can find, in WAL mode, that another
//! writer committed in between; SQLite then answers `SQLITE_BUSY` at once, without
//! waiting, and the read it based its decision on is stale. So every write here takes
//! the write lock up front with `BEGIN IMMEDIATE` — waiting its turn under the busy
//! timeout — and decides *inside* one `UPDATE … WHERE <claimable> RETURNING`. Zero rows
//! back means "not claimable"; only then, still inside the same write transaction, do
//! we read the row to explain why. There is no window in which two claimers can both
//! see a task as free.
//!
//! Every transaction reads the clock once (`sql/now.sql`) and binds that instant as
//! `:now` to each statement, so a multi-statement transaction sees one consistent
//! "now", taken from SQLite (`unixepoch('subsec')`) rather than from the caller.
//!
//! Known limits: SQLite serializes writers, so throughput does not grow with agents;
//! WAL needs shared memory, so the file must be on a local disk of one host — agents on
//! several machines use the PostgreSQL store instead.

pub mod bench;
mod busy;
mod checkpoint;
mod fs;
mod graph;
mod import;
mod migrate;
mod queue;
mod sql;
mod wake;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use rusqlite::{named_params, params_from_iter};
use tasklease_core::{
    AgentId, BatchOutcome, ClaimOutcome, Clock, Deleted, DepChange, Deps, DoneThenNext, Ended,
    Error, Event, EventKind, Lease, LeaseDuration, LeaseState, ListFilter, Millis, NewTask,
    Priority, Readiness, ReadySignal, Reaped, Reason, Refusal, ReleaseTo, RequestId, Result,
    Retention, Secret, Stamp, Status, Store, Tag, Task, TaskId, TaskPatch, Token, Version,
    validate_batch,
};

use crate::busy::{Busy, Wait};

pub use migrate::{LATEST_VERSION, Migrated, backup_path};
pub use tasklease_filelock::Holder;

/// How hard SQLite flushes each commit to disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Survives a crash of any process; the last commits may be lost on power loss.
    #[default]
    Normal,
    /// Also survives power loss, at one fsync per commit.
    Full,
}

impl std::str::FromStr for Synchronous {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Ok(Synchronous::Normal),
            "full" => Ok(Synchronous::Full),
            _ => Err(Error::invalid(
                "synchronous",
                format!(
                    "{} is not a synchronous mode; allowed: normal, full",
                    tasklease_core::text::quote(s)
                ),
            )),
        }
    }
}

/// How to open a store.
#[derive(Clone, Debug)]
pub struct Options {
    /// Flush policy for commits.
    pub synchronous: Synchronous,
    /// How long a write waits — for the writer queue's turn, a reply on its board, and
    /// SQLite's write lock — before giving up ([`Error::Busy`] for the queue, naming
    /// the turn's holder).
    pub busy_timeout: Duration,
    /// Where "now" comes from; [`Clock::Database`] outside tests.
    pub clock: Clock,
    /// Copy the database aside (online backup) before applying migrations to an
    /// existing database.
    pub backup_before_migrate: bool,
    /// The process makes a call or two and exits (the CLI): keep the WAL short, so
    /// the next process to open the database has little to read.
    pub one_shot: bool,
    /// Queue writers through the writer queue (see the `queue` module) rather than
    /// SQLite's busy handler. Off only for comparisons.
    pub queue: bool,
    /// Create the database when `path` holds none; otherwise a missing file, or one
    /// without the tasklease schema, is refused.
    pub create: bool,
    /// Told once when a write has waited a second for the writer queue's turn, with
    /// who holds it (the library prints nothing; the CLI prints this on stderr).
    pub on_wait: Option<WaitHook>,
    /// Who this process is, in the turn's holder record that other waiters read
    /// (`None`: `unnamed`).
    pub agent: Option<AgentId>,
}

/// A wait for the writer queue's turn that has gone on long enough to mention
/// ([`Options::on_wait`]).
#[derive(Debug)]
pub struct Waiting<'a> {
    /// What is waited for: `the database's writer turn`.
    pub what: &'a str,
    /// Who holds it, from the holder record; `None` if it left none.
    pub holder: Option<&'a Holder>,
    /// How long the wait has lasted so far.
    pub waited: Duration,
}

/// `waiting for the database's writer turn, held by alice (pid 42 on h) since …`.
impl std::fmt::Display for Waiting<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.holder {
            Some(h) => write!(f, "waiting for {}, held by {h}", self.what),
            None => write!(
                f,
                "waiting for {}, held by another process that left no record of itself",
                self.what
            ),
        }
    }
}

/// Called with a [`Waiting`] when a wait is slow: a callback rather than a log line,
/// because the library never prints, and the front end decides where a person sees it.
/// It runs on the waiting thread, once per wait; keep it short.
#[derive(Clone)]
pub struct WaitHook(Arc<dyn Fn(&Waiting<'_>) + Send + Sync>);

impl WaitHook {
    /// A hook that runs `f`.
    pub fn new(f: impl Fn(&Waiting<'_>) + Send + Sync + 'static) -> WaitHook {
        WaitHook(Arc::new(f))
    }

    pub(crate) fn call(&self, w: &Waiting<'_>) {
        (self.0)(w);
    }
}

impl std::fmt::Debug for WaitHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitHook")
    }
}

/// The writer queue's turn of one database, as `tasklease locks` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnState {
    /// The turn's lock file.
    pub path: PathBuf,
    /// Whether a process holds it now (by the OS lock, never by the record).
    pub held: bool,
    /// Who holds it, from the holder record, when it is held and left one.
    pub holder: Option<Holder>,
}

/// The writer turn of the SQLite database at `db`; `None` when no process has used its
/// writer queue yet. Tries the turn for an instant to see whether it is free.
///
/// # Errors
/// [`Error::Store`] when the queue's files cannot be opened or locked.
pub fn writer_turn(db: &Path) -> Result<Option<TurnState>> {
    Ok(queue::turn_state(db)?.map(|(held, holder, path)| TurnState { path, held, holder }))
}

impl Default for Options {
    fn default() -> Self {
        Options {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(30),
            clock: Clock::Database,
            backup_before_migrate: true,
            one_shot: false,
            queue: true,
            create: true,
            on_wait: None,
            agent: None,
        }
    }
}

/// A task store in one SQLite file.
///
/// One connection, guarded by a mutex: SQLite allows one writer per database anyway,
/// and processes, not threads, are the unit of concurrency here. Threads sharing one
/// store (`Arc<SqliteStore>`) take turns at that mutex, reads and renewals included:
/// at 8 threads doing claim + done, a shared store ran at 0.46–0.80 of the rate of a
/// store per thread (`cargo run -p tasklease --example share -- sqlite`;
/// docs/library.md). Threads that write often should each open their own store; each
/// then has its own connection and its own place in the writer queue.
///
/// Every write can fail with [`Error::Busy`]: the writer queue's turn stayed held past
/// [`Options::busy_timeout`] (its holder stopped or hung); the error names the holder.
pub struct SqliteStore {
    /// The only connection and this process's place in the writer queue; the mutex
    /// makes the store `Sync` for in-process callers (the MCP server's threads).
    inner: Mutex<Inner>,
    /// Source of `:now` for every transaction.
    clock: Clock,
    /// The database file, for backups and messages.
    path: PathBuf,
    /// What opening did to the schema.
    migrated: Migrated,
    /// The connection's busy-retry counter, for the history's contention figures.
    busy: Busy,
    /// The database is on a read-only mount: opened read-only, without the writer
    /// queue (whose files cannot be created there), and every write is refused.
    read_only: bool,
    /// Rung after every commit that can make a task ready, to wake one waiter (`wake`).
    bell: wake::Bell,
}

impl SqliteStore {
    /// Opens the database at `path` — creating it, readable by its owner only, when
    /// [`Options::create`] says so — and brings its schema up to date. On a read-only
    /// mount the store opens read-only: reads work, writes fail saying why.
    ///
    /// # Errors
    /// [`Error::Invalid`] (field `store`) when `path` holds no database (or one
    /// without the tasklease schema) and `create` is off; [`Error::SchemaTooNew`] for
    /// a database written by a newer tasklease; [`Error::Store`] when the file cannot
    /// be opened, created or migrated, naming a full disk or a read-only file system
    /// as such.
    pub fn open(path: &Path, opts: &Options) -> Result<SqliteStore> {
        Self::open_in(path, opts).map_err(|e| fs::explain(e, path))
    }

    fn open_in(path: &Path, opts: &Options) -> Result<SqliteStore> {
        let read_only = fs::read_only(fs::dir_of(path));
        if opts.create && read_only && !path.exists() {
            return Err(fs::read_only_error(path));
        }
        if opts.queue && !read_only {
            // Before anything is written: a queue directory someone else could write is
            // refused, and a database made beside it would be left behind for nothing.
            queue::check_dir(path)?;
        }
        if !opts.create || read_only {
            if !path.exists() {
                return Err(Error::invalid(
                    "store",
                    format!("no tasklease database at {}", path.display()),
                ));
            }
        } else {
            create_private(path)?;
        }
        if !read_only {
            check_private(path)?;
        }
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            // Never SQLITE_OPEN_CREATE: the file exists by now (`create_private`), and
            // should it vanish meanwhile, an empty one must not take its place.
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let ctx = || format!("cannot open the database {}", path.display());
        let mut conn = if read_only && !fs::has_wal_files(path) {
            fs::open_immutable(path)
        } else {
            Connection::open_with_flags(path, flags)
        }
        .map_err(|e| Error::store(ctx(), e))?;
        let (busy, mut wal_frames) =
            configure(&mut conn, opts, read_only).map_err(|e| Error::store(ctx(), e))?;
        let how = migrate::How {
            backup_first: opts.backup_before_migrate,
            create: opts.create,
            read_only,
        };
        let migrated = migrate::migrate(&mut conn, path, &how)?;
        let mut queue = if opts.queue && !read_only {
            let full = opts.synchronous == Synchronous::Full;
            Some(queue::Queue::open(
                path,
                !opts.one_shot,
                full,
                patience(opts)?,
            )?)
        } else {
            None
        };
        if !opts.one_shot && !read_only {
            // A long-running process will claim: take its place in the queue and
            // compile the statement (and its triggers) now, not in its first claim.
            // Best effort: a failure is met, and reported, by the claim.
            let _ = conn.prepare_cached(sql::CLAIM_NEXT);
            if let Some(q) = &mut queue {
                q.take_slot();
                // Only with the queue: without it there is no turn on which to finish
                // a checkpoint while this process writes on, so it checkpoints between
                // its operations (`WalFrames`).
                wal_frames.background = Some(checkpoint::Checkpointer::new(path, patience(opts)?));
            }
        }
        Ok(SqliteStore {
            inner: Mutex::new(Inner {
                conn,
                queue,
                wal_frames,
            }),
            clock: opts.clock.clone(),
            path: path.to_owned(),
            migrated,
            busy,
            read_only,
            bell: wake::Bell::new(path),
        })
    }

    /// Wakes one waiter when `r` says a change committed (see `wake`).
    fn rang<T>(&self, r: Result<T>) -> Result<T> {
        if r.is_ok() {
            self.bell.ring();
        }
        r
    }

    /// `done` without ringing the bell: the caller rings (or knows nobody needs to).
    fn done_quietly(
        &self,
        id: &TaskId,
        token: &Token,
        who: &AgentId,
        reason: Option<&Reason>,
    ) -> Result<Ended> {
        let finish = |tx: &Connection, now: i64| {
            let Some(task) = end_lease(tx, now, sql::DONE, id, token, None)? else {
                return repeat_or_lost(tx, now, id, token, EventKind::Done, Status::Done);
            };
            let note = Note {
                token: Some(token.fence()),
                reason: reason.map(Reason::as_str),
                ..Note::default()
            };
            record(tx, now, id, EventKind::Done, who, note)?;
            Ok(Ended {
                task,
                repeat: false,
            })
        };
        self.writable()?;
        // Combined with other processes' claims and dones through the writer queue:
        // a claim + done loop would otherwise pay a hand-off of the turn per `done`.
        let mut inner = self.lock();
        let Inner { conn, queue, .. } = &mut *inner;
        let clock = &self.clock;
        let Some(q) = queue else {
            return write_on(conn, clock, finish);
        };
        if reason.is_some() {
            // The board's records have no room for a reason: on a turn of our own.
            return q.turn(conn, || write_on(conn, clock, finish));
        }
        let op = queue::Op::Done {
            task: id.as_str().to_owned(),
            token: token.fence(),
            secret: token.secret().map(str::to_owned),
        };
        match q.submit(conn, clock, op, who, || write_on(conn, clock, finish))? {
            queue::Combined::Alone(done) => done,
            queue::Combined::Replied(queue::Reply::Done(true)) => Ok(Ended {
                task: find_task(conn, id)?.ok_or_else(|| Error::NotFound(id.clone()))?,
                repeat: false,
            }),
            // No slot, or the lease did not match (nothing changed): on our own turn,
            // which also explains a refusal or finds a repeat of an earlier done.
            _ => q.turn(conn, || write_on(conn, clock, finish)),
        }
    }

    /// Refuses a write up front on a read-only mount, where SQLite would answer only
    /// "attempt to write a readonly database".
    fn writable(&self) -> Result<()> {
        if self.read_only {
            return Err(fs::read_only_error(&self.path));
        }
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What opening did to the schema: versions and any backup written.
    pub fn migrated(&self) -> &Migrated {
        &self.migrated
    }

    /// Writes a consistent copy of the live database to `dest` (SQLite's online backup,
    /// safe while other processes write), readable by its owner only.
    ///
    /// # Errors
    /// [`Error::Store`] when the copy fails.
    pub fn backup_to(&self, dest: &Path) -> Result<()> {
        migrate::backup(&self.lock().conn, dest)
    }

    fn lock(&self) -> Held<'_> {
        // A panic mid-transaction dropped (rolled back) the transaction; the connection
        // itself is still sound.
        Held(self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction with the transaction's `now`, and
    /// commits if it returns `Ok`.
    fn write<T>(&self, f: impl FnOnce(&Connection, i64) -> Result<T>) -> Result<T> {
        self.write_timed(|tx, now, _| f(tx, now))
    }

    /// As [`SqliteStore::write`], also telling `f` what taking the write lock cost —
    /// the writer queue's turn included — for the claim's history row.
    fn write_timed<T>(&self, f: impl FnOnce(&Connection, i64, Wait) -> Result<T>) -> Result<T> {
        self.writable()?;
        let start = self.busy.start();
        let mut inner = self.lock();
        let Inner { conn, queue, .. } = &mut *inner;
        let run = || {
            let tx = Tx::begin(conn, Tx::IMMEDIATE)?;
            let wait = self.busy.waited(start);
            let now = read_now(&tx, &self.clock)?;
            let out = f(&tx, now, wait)?;
            tx.commit()?;
            Ok(out)
        };
        match queue {
            Some(q) => q.turn(conn, run),
            None => run(),
        }
    }

    /// Runs `f` in a read transaction (one consistent snapshot).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let inner = self.lock();
        let tx = Tx::begin(&inner.conn, Tx::DEFERRED)?;
        f(&tx)
    }
}

/// A transaction run through cached `BEGIN`/`COMMIT` statements: rusqlite's
/// `Transaction` parses them anew each time, which is a measurable share of a claim.
/// Dropped without [`Tx::commit`], it rolls back.
pub(crate) struct Tx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Tx<'c> {
    pub(crate) const IMMEDIATE: &'static str = "BEGIN IMMEDIATE";
    pub(crate) const DEFERRED: &'static str = "BEGIN DEFERRED";

    pub(crate) fn begin(conn: &'c Connection, begin: &str) -> Result<Tx<'c>> {
        conn.prepare_cached(begin)
            .and_then(|mut s| s.execute([]))
            .ctx("begin a transaction")?;
        Ok(Tx { conn, open: true })
    }

    pub(crate) fn commit(mut self) -> Result<()> {
        self.conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .ctx("commit")?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            let _ = self
                .conn
                .prepare_cached("ROLLBACK")
                .and_then(|mut s| s.execute([]));
        }
    }
}

/// What the store's mutex guards.
struct Inner {
    conn: Connection,
    /// `None` when writers are left to SQLite's busy handler (`Options::queue`).
    queue: Option<queue::Queue>,
    /// The WAL's length at this connection's last commit, for checkpoints.
    wal_frames: WalFrames,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let Inner {
            conn,
            queue,
            wal_frames,
        } = self;
        match queue {
            // Truncating takes SQLite's write lock: not while a writer has the turn,
            // which would fall back on SQLite's sleeping busy handler.
            Some(q) => {
                q.try_turn(|| wal_frames.trim(conn));
            }
            None => wal_frames.trim(conn),
        }
    }
}

/// The store's connection, held. Let go when an operation is over — its transaction
/// ended and the writer queue's turn given up — it asks for the WAL checkpoint if one
/// is due, so that nobody waits for it (see [`WalFrames`]).
struct Held<'a>(MutexGuard<'a, Inner>);

impl std::ops::Deref for Held<'_> {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::ops::DerefMut for Held<'_> {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.0
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let Inner {
            conn,
            queue,
            wal_frames,
        } = &mut *self.0;
        wal_frames.checkpoint_if_due(conn, queue.as_mut());
    }
}

/// Creates the file owner-only before SQLite sees it, so the database (and the `-wal`
/// and `-shm` files SQLite creates with the same mode) is never world-readable.
fn create_private(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::store(
                format!("cannot look at the database {}", path.display()),
                e,
            ));
        }
    }
    match tasklease_filelock::private::file(path, "the database") {
        Ok(_) => Ok(()),
        // Created meanwhile by another `init`: checked with the rest.
        Err(_) if path.exists() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Refuses a database, `-wal` or `-shm` that someone else could change (a symlink, not
/// ours, writable by group or others), and creates a missing `-wal` or `-shm` as ours
/// alone before SQLite opens it: SQLite follows a symlink planted in their place and
/// would write its header into whatever file it names. Checked on every writable open
/// (three `lstat`s): a file swapped in since `init` is as dangerous as one found then.
fn check_private(path: &Path) -> Result<()> {
    use tasklease_filelock::private;
    private::check(path, "the database")?;
    for (suffix, what) in [
        ("-wal", "the database's -wal file"),
        ("-shm", "the database's -shm file"),
    ] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let p = PathBuf::from(p);
        if !private::check(&p, what)? {
            private::file(&p, what)?;
        }
    }
    Ok(())
}

fn configure(
    conn: &mut Connection,
    opts: &Options,
    read_only: bool,
) -> rusqlite::Result<(Busy, WalFrames)> {
    let busy = Busy::install(conn, opts.busy_timeout)?;
    // Nobody checkpoints when closing: SQLite's checkpoint by the last connection to
    // close costs three or four fsyncs, the most expensive part of a CLI call. Nor at
    // commit: see `WalFrames` for who checkpoints when.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    let frames = WalFrames::install(conn, opts.one_shot)?;
    if opts.synchronous == Synchronous::Full && !opts.one_shot {
        // Where every commit waits for the disk, a checkpoint beside the commits
        // slows each of them more than one inside a commit slows the queue (measured:
        // p99 and worst claim both better at FULL with SQLite's own autocheckpoint,
        // which replaces the hook and so `WalFrames`' checkpoints).
        conn.pragma_update(None, "wal_autocheckpoint", WalFrames::CHECKPOINT)?;
    }
    register_functions(conn)?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "foreign_keys", true)?;
    let sync = match opts.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") && !read_only {
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
    }
    Ok((busy, frames))
}

/// Who checkpoints the WAL, and when. Every connection counts the WAL's frames at
/// each of its commits (the WAL hook, which replaces SQLite's autocheckpoint).
///
/// **Long-running processes** (MCP, `run`, bench agents) checkpoint once the WAL passes
/// [`WalFrames::CHECKPOINT`] frames — SQLite's autocheckpoint mark — but not inside the
/// commit, as SQLite's autocheckpoint does: that commit holds the writer queue's turn,
/// so everyone queued behind it waited for the whole checkpoint, copying and fsyncs
/// (measured with 20 agents: p99 6.6 ms with it, 3.4 ms with no checkpoint at all).
/// When the operation is over and the turn given up, the process's checkpointing
/// thread ([`checkpoint::Checkpointer`], its own connection) is asked to checkpoint,
/// and the caller goes on (a store without the queue checkpoints itself, between its
/// operations, with nobody writing meanwhile): a passive checkpoint copies the WAL back
/// while writers go on. It cannot finish while they append, and the WAL starts over
/// only once it is wholly copied, so a second passive checkpoint then copies the few
/// frames appended meanwhile on a turn of its own: the WAL stays bounded, and the turn
/// is held for a short copy, not the whole. (Not at `synchronous = FULL`: see `configure`.)
///
/// **A one-shot process** (a CLI call) does not checkpoint while it runs. The first
/// process to open an unused database rebuilds the WAL's index by reading every frame
/// since the WAL was last emptied — SQLite cannot know which of them an earlier,
/// exited process already copied back — so each CLI call would read a growing WAL, and
/// every commit past the autocheckpoint mark would copy all of it again. So when it
/// closes with more than [`WalFrames::TRIM`] frames it checkpoints and truncates the
/// WAL — only if nobody is using the database (no busy wait; when others are, their
/// checkpoints keep the WAL bounded). Measured here: a checkpoint at every close cost
/// a CLI call about 1.5 ms of fsyncs; reading the WAL at open costs about 2 µs a frame,
/// and a claim adds about 4 frames. 64 frames balances the two (a checkpoint every ~16
/// calls, ~60 µs of reading on average).
#[derive(Debug)]
struct WalFrames {
    /// Frames in the WAL at this connection's last commit; 0 once checkpointed.
    seen: Arc<AtomicI32>,
    one_shot: bool,
    /// Where a long-running process's checkpoints run (`None` for one-shot ones).
    background: Option<checkpoint::Checkpointer>,
}

impl WalFrames {
    /// Frames above which a closing one-shot process empties the WAL.
    const TRIM: i32 = 64;
    /// Frames above which a long-running process checkpoints after its operation.
    const CHECKPOINT: i32 = 1000;

    fn install(conn: &mut Connection, one_shot: bool) -> rusqlite::Result<WalFrames> {
        let seen = Arc::new(AtomicI32::new(0));
        let hook = seen.clone();
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            hook.store(pages, Ordering::Relaxed);
            Ok(())
        }))?;
        Ok(WalFrames {
            seen,
            one_shot,
            background: None,
        })
    }

    /// A long-running process's checkpoint, after an operation (see above): asked of
    /// the checkpointing thread, or run here if that thread cannot run.
    fn checkpoint_if_due(&mut self, conn: &Connection, queue: Option<&mut queue::Queue>) {
        if self.one_shot || self.seen.load(Ordering::Relaxed) < WalFrames::CHECKPOINT {
            return;
        }
        self.seen.store(0, Ordering::Relaxed);
        if !self
            .background
            .as_mut()
            .is_some_and(checkpoint::Checkpointer::request)
        {
            checkpoint(conn, queue);
        }
    }

    /// A one-shot process's checkpoint, at close: empties the WAL if this connection's
    /// last commit left it long, unless another connection is using the database. Best
    /// effort: on any failure the next process reads a longer WAL, nothing more.
    fn trim(&self, conn: &mut Connection) {
        if !self.one_shot || self.seen.load(Ordering::Relaxed) <= WalFrames::TRIM {
            return;
        }
        if conn.busy_handler(None::<fn(i32) -> bool>).is_ok() {
            let _ = conn.wal_checkpoint_v2(None::<&str>, rusqlite::wal::CheckpointMode::TRUNCATE);
        }
    }
}

/// Copies the WAL back into the database (see [`WalFrames`]): a passive pass beside the
/// writers, then a second on a turn of the writer queue (if there is one) for what they
/// appended meanwhile, so that the WAL can start over. Best effort: a checkpoint that
/// fails is tried again after the next commit past the mark.
fn checkpoint(conn: &Connection, queue: Option<&mut queue::Queue>) {
    let passive = || {
        conn.wal_checkpoint_v2(None::<&str>, rusqlite::wal::CheckpointMode::PASSIVE)
            .ctx("checkpoint the WAL")
    };
    // The second pass runs whenever the first did: SQLite reports the WAL's length as
    // of the first pass's start, so nothing tells whether writers appended during it.
    // With nothing left to copy, the second pass writes and syncs nothing.
    if passive().is_ok()
        && let Some(q) = queue
    {
        let _ = q.turn(conn, passive);
    }
}

/// How the store's queue waits and names itself, from its options.
fn patience(opts: &Options) -> Result<queue::Patience> {
    let agent = match &opts.agent {
        Some(a) => a.clone(),
        None => AgentId::new("unnamed")?,
    };
    Ok(queue::Patience::new(
        opts.busy_timeout,
        opts.on_wait.clone(),
        agent,
    ))
}

fn db(context: &str, e: rusqlite::Error) -> Error {
    let code = match &e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    };
    match code {
        Some(rusqlite::ErrorCode::DatabaseBusy) => Error::store(
            format!("{context}: the database stayed locked by other writers past the busy timeout"),
            e,
        ),
        Some(rusqlite::ErrorCode::DiskFull) => {
            Error::store(format!("{}: {context}", tasklease_core::DISK_FULL), e)
        }
        _ => Error::store(context.to_owned(), e),
    }
}

/// The SQL functions the statements use: `tasklease_secret_eq(stored, given)`, the
/// constant-time token secret comparison ([`tasklease_core::secret_eq`]; see
/// `crates/core/src/token.rs`).
pub(crate) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "tasklease_secret_eq",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let text =
                |i| -> rusqlite::Result<Option<&str>> { Ok(ctx.get_raw(i).as_str_or_null()?) };
            Ok(tasklease_core::secret_eq(text(0)?, text(1)?))
        },
    )
}

/// Maps a rusqlite result into ours with a context line.
trait Ctx<T> {
    fn ctx(self, context: &str) -> Result<T>;
}

impl<T> Ctx<T> for rusqlite::Result<T> {
    fn ctx(self, context: &str) -> Result<T> {
        self.map_err(|e| db(context, e))
    }
}

pub(crate) fn read_now(conn: &Connection, clock: &Clock) -> Result<i64> {
    conn.prepare_cached(sql::NOW)
        .and_then(|mut s| s.query_row(named_params! {":now": clock.injected()}, |r| r.get(0)))
        .ctx("read the database clock")
}

/// What a history row says beyond its task, kind, agent and time.
#[derive(Clone, Copy, Default)]
struct Note<'a> {
    token: Option<i64>,
    detail: Option<&'a str>,
    lease_ms: Option<i64>,
    wait: Option<Wait>,
    reason: Option<&'a str>,
}

fn record(
    tx: &Connection,
    now: i64,
    task: &TaskId,
    kind: EventKind,
    agent: &AgentId,
    note: Note<'_>,
) -> Result<()> {
    tx.prepare_cached(sql::EVENT)
        .and_then(|mut s| {
            s.execute(named_params! {
                ":now": now, ":task": task.as_str(), ":kind": kind.as_str(), ":agent": agent.as_str(),
                ":token": note.token, ":detail": note.detail, ":lease_ms": note.lease_ms,
                ":wait_us": note.wait.map(|w| w.us), ":busy": note.wait.map(|w| w.busy),
                ":reason": note.reason,
            })
        })
        .ctx("record the lease event")?;
    Ok(())
}

/// Records a claim lost to a live holder: the contention `status` counts. Other
/// refusals (closed, waiting, unknown id) are not lease events.
fn record_refusal(
    tx: &Connection,
    now: i64,
    id: &TaskId,
    who: &AgentId,
    refusal: &Refusal,
    wait: Option<Wait>,
) -> Result<()> {
    if !matches!(refusal, Refusal::Held { .. }) {
        return Ok(());
    }
    let detail = refusal.to_string();
    let note = Note {
        detail: Some(&detail),
        wait,
        ..Note::default()
    };
    record(tx, now, id, EventKind::Refused, who, note)
}

/// The lease columns of one row, read to explain a refusal, and its version.
pub(crate) struct LeaseRow {
    pub(crate) lease: LeaseState,
    version: i64,
}

pub(crate) fn lease_row(tx: &Connection, id: &TaskId) -> Result<Option<LeaseRow>> {
    let row = tx
        .prepare_cached(sql::LEASE)
        .and_then(|mut s| {
            s.query_row(named_params! {":id": id.as_str()}, |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })
            .optional()
        })
        .ctx("read the task's lease")?;
    row.map(
        |(status, assignee, lock_until, fence, waiting_on, version, lease_end, secret)| {
            Ok(LeaseRow {
                lease: LeaseState {
                    status: parse_status(&status)?,
                    assignee: assignee.as_deref().map(agent).transpose()?,
                    lock_until: lock_until.map(Millis::from_millis),
                    fence,
                    secret,
                    waiting_on,
                    // 'updated' is no event kind: an update's end is nobody's repeat.
                    ended_by: lease_end.as_deref().and_then(EventKind::parse),
                },
                version,
            })
        },
    )
    .transpose()
}

/// Why a claim's conditional UPDATE matched nothing.
fn explain_refusal(tx: &Connection, now: i64, id: &TaskId) -> Result<Refusal> {
    let Some(row) = lease_row(tx, id)? else {
        return Ok(Refusal::NotFound);
    };
    row.lease
        .refusal(id, Millis::from_millis(now), || waiting_on(tx, id))
}

fn waiting_on(tx: &Connection, id: &TaskId) -> Result<Vec<TaskId>> {
    let ids: Vec<String> = tx
        .prepare_cached(sql::WAITING_ON)
        .and_then(|mut s| {
            s.query_map(named_params! {":id": id.as_str()}, |r| r.get(0))?
                .collect()
        })
        .ctx("read the task's dependencies")?;
    ids.iter().map(|s| task_id(s)).collect()
}

/// Why a token-guarded UPDATE matched nothing.
fn explain_lost(tx: &Connection, now: i64, id: &TaskId, token: &Token) -> Result<Error> {
    let Some(row) = lease_row(tx, id)? else {
        return Ok(Error::NotFound(id.clone()));
    };
    Ok(row.lease.lost(id, token, Millis::from_millis(now)))
}

/// Who claims, and under which idempotency key (stored with the lease it gets).
struct Claimant<'a> {
    who: &'a AgentId,
    request: Option<&'a RequestId>,
}

fn claim_one(
    tx: &Connection,
    now: i64,
    id: &TaskId,
    by: &Claimant<'_>,
    lease: LeaseDuration,
    token: Option<&Token>,
    wait: Option<Wait>,
) -> Result<ClaimOutcome> {
    let Claimant { who, request } = *by;
    // Whether the claim kept the token cannot be read from the row afterwards: a token
    // the task never issued (one past its fence) equals the new token of a fresh claim.
    // A fresh claim is the one that fired the tasks_claimed trigger, whose history row
    // counts as a second change.
    let changes = tx.total_changes();
    let new_secret = Secret::random()?;
    let row = tx
        .prepare_cached(sql::CLAIM)
        .and_then(|mut s| {
            s.query_row(
                named_params! {
                    ":id": id.as_str(), ":agent": who.as_str(), ":now": now,
                    ":lease_ms": lease.as_millis(), ":token": token.map(Token::fence),
                    ":secret": token.and_then(Token::secret), ":new_secret": new_secret.as_str(),
                    ":wait_us": wait.map(|w| w.us), ":busy": wait.map(|w| w.busy),
                    ":request": request.map(RequestId::as_str),
                },
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                    ))
                },
            )
            .optional()
        })
        .ctx("claim the task")?;
    let Some((fence, secret, assigned_at, lock_until, version)) = row else {
        return Ok(ClaimOutcome::Refused(explain_refusal(tx, now, id)?));
    };
    // A new token is recorded by the tasks_claimed trigger (with the lease length and
    // the wait this statement carried); a re-claim keeps its token.
    let reclaimed = tx.total_changes() - changes == 1;
    if reclaimed {
        let note = Note {
            token: Some(fence),
            lease_ms: Some(lease.as_millis()),
            wait,
            ..Note::default()
        };
        record(tx, now, id, EventKind::Reclaimed, who, note)?;
    }
    Ok(ClaimOutcome::Claimed(Lease {
        task: id.clone(),
        agent: who.clone(),
        token: Token::from_parts(fence, secret.as_deref())?,
        assigned_at: Millis::from_millis(assigned_at),
        lock_until: Millis::from_millis(lock_until),
        version: Version::new(version),
    }))
}

/// The live leases granted to `who` under `request`, in claim order (see prior.sql).
fn prior_leases(
    tx: &Connection,
    now: i64,
    who: &AgentId,
    request: &RequestId,
) -> Result<Vec<Lease>> {
    let rows: Vec<HeldRow> =
        tx.prepare_cached(sql::PRIOR)
            .and_then(|mut s| {
                s.query_map(
                named_params! {":request": request.as_str(), ":agent": who.as_str(), ":now": now},
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )?
            .collect()
            })
            .ctx("look up the claim's request id")?;
    rows.into_iter().map(|r| held_lease(who, r)).collect()
}

/// A lease row of `prior.sql` or `mine.sql` (id, fence, secret, assigned_at,
/// lock_until, version), held by `who`.
type HeldRow = (String, i64, Option<String>, i64, i64, i64);

fn held_lease(who: &AgentId, row: HeldRow) -> Result<Lease> {
    let (id, fence, secret, assigned_at, lock_until, version) = row;
    Ok(Lease {
        task: task_id(&id)?,
        agent: who.clone(),
        token: Token::from_parts(fence, secret.as_deref())?,
        assigned_at: Millis::from_millis(assigned_at),
        lock_until: Millis::from_millis(lock_until),
        version: Version::new(version),
    })
}

/// A lease-ending call that matched nothing: a repeat of what `token` already did
/// (the task as it is, changing nothing), or why the token lost its lease.
fn repeat_or_lost(
    tx: &Connection,
    now: i64,
    id: &TaskId,
    token: &Token,
    op: EventKind,
    to: Status,
) -> Result<Ended> {
    let Some(row) = lease_row(tx, id)? else {
        return Err(Error::NotFound(id.clone()));
    };
    if !row.lease.repeat_of(token, op, to) {
        return Err(row.lease.lost(id, token, Millis::from_millis(now)));
    }
    let task = find_task(tx, id)?.ok_or_else(|| Error::NotFound(id.clone()))?;
    Ok(Ended { task, repeat: true })
}

/// Runs a token-guarded statement that returns the task's `seq`, then reads the task.
fn end_lease(
    tx: &Connection,
    now: i64,
    sql: &str,
    id: &TaskId,
    token: &Token,
    status: Option<Status>,
) -> Result<Option<Task>> {
    let id_str = id.as_str();
    let fence = token.fence();
    let secret = token.secret();
    let mut params: Vec<(&str, &dyn rusqlite::ToSql)> = vec![
        (":id", &id_str),
        (":token", &fence),
        (":secret", &secret),
        (":now", &now),
    ];
    let status_str = status.map(Status::as_str);
    if let Some(s) = &status_str {
        params.push((":status", s));
    }
    let seq: Option<i64> = tx
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row(params.as_slice(), |r| r.get(0)).optional())
        .ctx("end the lease")?;
    seq.map(|seq| task_by_seq(tx, seq)).transpose()
}

/// `done` as a turn serving the writer queue runs it for another process: whether the
/// lease matched and the task is finished (its history row written). Nothing changes
/// when it did not match; the caller then runs `done` itself to learn why.
pub(crate) fn done_in(
    tx: &Connection,
    now: i64,
    task: &str,
    token: i64,
    secret: Option<&str>,
    agent: &str,
) -> Result<bool> {
    let (Ok(id), Ok(who)) = (TaskId::new(task), AgentId::new(agent)) else {
        return Ok(false);
    };
    let seq: Option<i64> = tx
        .prepare_cached(sql::DONE)
        .and_then(|mut s| {
            s.query_row(
                named_params! {":id": task, ":token": token, ":secret": secret, ":now": now},
                |r| r.get(0),
            )
            .optional()
        })
        .ctx("end the lease")?;
    if seq.is_none() {
        return Ok(false);
    }
    let note = Note {
        token: Some(token),
        ..Note::default()
    };
    record(tx, now, &id, EventKind::Done, &who, note)?;
    Ok(true)
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction on `conn` with the transaction's `now`,
/// and commits if it returns `Ok`. The caller holds the store's connection (and the
/// writer queue's turn, if any).
fn write_on<T>(
    conn: &Connection,
    clock: &Clock,
    f: impl FnOnce(&Connection, i64) -> Result<T>,
) -> Result<T> {
    let tx = Tx::begin(conn, Tx::IMMEDIATE)?;
    let now = read_now(&tx, clock)?;
    let out = f(&tx, now)?;
    tx.commit()?;
    Ok(out)
}

fn find_task(conn: &Connection, id: &TaskId) -> Result<Option<Task>> {
    let raw = conn
        .prepare_cached(sql::TASK_BY_ID)
        .and_then(|mut s| s.query_row([id.as_str()], RawTask::from_row).optional())
        .ctx("read the task")?;
    raw.map(RawTask::into_task).transpose()
}

fn task_by_seq(tx: &Connection, seq: i64) -> Result<Task> {
    let raw = tx
        .prepare_cached(sql::TASK_BY_SEQ)
        .and_then(|mut s| s.query_row([seq], RawTask::from_row))
        .ctx("read the task")?;
    raw.into_task()
}

/// Tasks matching `filter` and the SQL condition `extra` (a file under `sql/`), by
/// priority then age: what `claim --next` orders by.
fn list_where(tx: &Connection, filter: &ListFilter, extra: Option<&str>) -> Result<Vec<Task>> {
    list_with(tx, filter, extra.unwrap_or("1"), Vec::new())
}

/// As [`list_where`], with `args` for the `?` of the condition `extra`.
fn list_with(
    tx: &Connection,
    filter: &ListFilter,
    extra: &str,
    mut args: Vec<String>,
) -> Result<Vec<Task>> {
    // The files begin with comment lines: the condition goes on lines of its own.
    let mut q = format!("{} WHERE (\n{extra}\n)", sql::TASK_COLUMNS);
    if !filter.statuses.is_empty() {
        let marks = vec!["?"; filter.statuses.len()].join(", ");
        q.push_str(&format!(" AND status IN ({marks})"));
        args.extend(filter.statuses.iter().map(|s| s.as_str().to_owned()));
    }
    if let Some(a) = &filter.assignee {
        q.push_str(" AND assignee = ?");
        args.push(a.as_str().to_owned());
    }
    if let Some(t) = &filter.tag {
        q.push_str(" AND EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE value = ?)");
        args.push(t.as_str().to_owned());
    }
    q.push_str(" ORDER BY priority, seq");
    if let Some(n) = filter.limit {
        q.push_str(&format!(" LIMIT {n}"));
    }
    let raws: Vec<RawTask> = tx
        .prepare(&q)
        .and_then(|mut s| {
            s.query_map(params_from_iter(&args), RawTask::from_row)?
                .collect()
        })
        .ctx("list tasks")?;
    raws.into_iter().map(RawTask::into_task).collect()
}

/// The tags as stored: a JSON array, each tag once.
fn tags_json(tags: &[Tag]) -> String {
    serde_json::to_string(&tasklease_core::distinct_tags(tags)).unwrap_or_else(|_| "[]".to_owned())
}

impl Store for SqliteStore {
    fn add(&self, task: &NewTask) -> Result<Task> {
        let r = (|| -> Result<Task> {
            task.validate()?;
            self.write(|tx, now| {
            let id = match &task.id {
                Some(id) if graph::was_deleted(tx, id)? => {
                    return Err(tasklease_core::deleted_id_error(id));
                }
                Some(id) => id.clone(),
                None => next_free_id(tx)?,
            };
            if let Some(p) = &task.parent {
                graph::check_parent(tx, None, p)?;
            }
            let seq: i64 = tx
                .prepare_cached(sql::ADD)
                .and_then(|mut s| {
                    s.query_row(
                        named_params! {
                            ":id": id.as_str(), ":title": task.title, ":description": task.description,
                            ":priority": task.priority.rank(), ":tags": tags_json(&task.tags), ":now": now,
                        },
                        |r| r.get(0),
                    )
                })
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        Error::Exists(id.clone())
                    }
                    e => db("add the task", e),
                })?;
            for dep in &task.deps {
                let n = tx
                    .prepare_cached(sql::ADD_DEP)
                    .and_then(|mut s| s.execute(named_params! {":task": seq, ":dep": dep.as_str()}))
                    .ctx("add a dependency")?;
                if n == 0 {
                    return Err(Error::invalid(
                        "dependency",
                        format!("dependency {dep} does not exist; add it first"),
                    ));
                }
            }
            if task.parent.is_some() {
                graph::set_parent(tx, seq, task.parent.as_ref())?;
            }
            task_by_seq(tx, seq)
        })
        })();
        self.rang(r)
    }

    fn show(&self, id: &TaskId) -> Result<Option<Task>> {
        self.read(|tx| find_task(tx, id))
    }

    fn list(&self, filter: &ListFilter) -> Result<Vec<Task>> {
        self.read(|tx| list_where(tx, filter, None))
    }

    fn dep_add(&self, task: &TaskId, deps: &[TaskId]) -> Result<Vec<(TaskId, DepChange)>> {
        tasklease_core::validate_dep_edit(task, deps)?;
        self.write(|tx, now| graph::add(tx, now, task, deps))
    }

    fn dep_rm(&self, task: &TaskId, deps: &[TaskId]) -> Result<Vec<(TaskId, DepChange)>> {
        let r = (|| -> Result<Vec<(TaskId, DepChange)>> {
            tasklease_core::validate_dep_edit(task, deps)?;
            self.write(|tx, now| graph::rm(tx, now, task, deps))
        })();
        self.rang(r)
    }

    fn deps(&self, id: &TaskId) -> Result<Option<Deps>> {
        self.read(|tx| graph::list(tx, id))
    }

    fn children(&self, parent: &TaskId, filter: &ListFilter) -> Result<Vec<Task>> {
        self.read(|tx| {
            if find_task(tx, parent)?.is_none() {
                return Err(Error::NotFound(parent.clone()));
            }
            list_with(tx, filter, sql::CHILDREN, vec![parent.as_str().to_owned()])
        })
    }

    fn rm(&self, ids: &[TaskId], force: bool, agent: &AgentId) -> Result<Vec<Deleted>> {
        let r = (|| -> Result<Vec<Deleted>> {
            tasklease_core::validate_rm(ids)?;
            self.write(|tx, now| graph::delete(tx, now, ids, force, agent))
        })();
        self.rang(r)
    }

    fn ready(&self, filter: &ListFilter) -> Result<Vec<Task>> {
        tasklease_core::validate_ready_filter(filter)?;
        self.read(|tx| {
            let now = read_now(tx, &self.clock)?;
            let cond = sql::READY.replace(":now", &now.to_string());
            list_where(tx, filter, Some(&cond))
        })
    }

    fn blocked(&self, filter: &ListFilter) -> Result<Vec<Task>> {
        self.read(|tx| list_where(tx, filter, Some(sql::BLOCKED)))
    }

    fn claim_keyed(
        &self,
        id: &TaskId,
        lease: LeaseDuration,
        token: Option<&Token>,
        request: Option<&RequestId>,
        agent: &AgentId,
    ) -> Result<ClaimOutcome> {
        self.write_timed(|tx, now, wait| {
            if let Some(key) = request {
                let prior = prior_leases(tx, now, agent, key)?;
                if !prior.is_empty() {
                    return Ok(ClaimOutcome::Claimed(
                        tasklease_core::retried_grant(key, prior, std::slice::from_ref(id))?
                            .remove(0),
                    ));
                }
            }
            let by = Claimant {
                who: agent,
                request,
            };
            let out = claim_one(tx, now, id, &by, lease, token, Some(wait))?;
            if let ClaimOutcome::Refused(r) = &out {
                record_refusal(tx, now, id, agent, r, Some(wait))?;
            }
            Ok(out)
        })
    }

    fn claim_next_keyed(
        &self,
        lease: LeaseDuration,
        request: Option<&RequestId>,
        who: &AgentId,
    ) -> Result<Option<Lease>> {
        // The hot path: one statement that reads the clock itself and a trigger that
        // records the event, combined with other processes' claims by the queue. A
        // claim key travels on the board with the request: the serving turn looks it
        // up and stores it in the claim's own transaction.
        let start = self.busy.start();
        self.writable()?;
        let mut inner = self.lock();
        let Inner { conn, queue, .. } = &mut *inner;
        let claimer = queue::Claimer {
            clock: &self.clock,
            busy: &self.busy,
            start,
        };
        match queue {
            Some(q) => q.claim_next(conn, &claimer, who, lease, request),
            None => queue::serve_one(conn, &claimer, who, lease, request),
        }
    }

    fn claim_batch_keyed(
        &self,
        ids: &[TaskId],
        lease: LeaseDuration,
        request: Option<&RequestId>,
        agent: &AgentId,
    ) -> Result<BatchOutcome> {
        validate_batch(ids)?;
        self.write_timed(|tx, now, wait| {
            if let Some(key) = request {
                let prior = prior_leases(tx, now, agent, key)?;
                if !prior.is_empty() {
                    let leases = tasklease_core::retried_grant(key, prior, ids)?;
                    return Ok(BatchOutcome::Claimed(leases));
                }
            }
            // Claim what we can inside a savepoint so a refusal undoes the rest;
            // refusals are still explained from inside the write lock.
            tx.execute_batch("SAVEPOINT batch")
                .ctx("open a savepoint")?;
            let mut leases = Vec::with_capacity(ids.len());
            let mut refused = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                // The transaction's one wait goes on its first claim event only.
                let wait = (i == 0).then_some(wait);
                let by = Claimant {
                    who: agent,
                    request,
                };
                match claim_one(tx, now, id, &by, lease, None, wait)? {
                    ClaimOutcome::Claimed(l) => leases.push(l),
                    ClaimOutcome::Refused(r) => refused.push((id.clone(), r)),
                }
            }
            if refused.is_empty() {
                tx.execute_batch("RELEASE batch").ctx("commit the batch")?;
                Ok(BatchOutcome::Claimed(leases))
            } else {
                tx.execute_batch("ROLLBACK TO batch; RELEASE batch")
                    .ctx("roll back the batch")?;
                // Recorded outside the savepoint, which rolled the claims back.
                for (i, (id, r)) in refused.iter().enumerate() {
                    record_refusal(tx, now, id, agent, r, (i == 0).then_some(wait))?;
                }
                Ok(BatchOutcome::Refused(refused))
            }
        })
    }

    fn renew(
        &self,
        id: &TaskId,
        token: &Token,
        lease: LeaseDuration,
        who: &AgentId,
    ) -> Result<Lease> {
        self.write(|tx, now| {
            let row = tx
                .prepare_cached(sql::RENEW)
                .and_then(|mut s| {
                    s.query_row(
                        named_params! {
                            ":id": id.as_str(), ":token": token.fence(), ":secret": token.secret(),
                            ":now": now, ":lease_ms": lease.as_millis(),
                        },
                        |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, i64>(1)?,
                                r.get::<_, Option<String>>(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                            ))
                        },
                    )
                    .optional()
                })
                .ctx("renew the lease")?;
            let Some((holder, fence, secret, assigned_at, lock_until, version)) = row else {
                return Err(explain_lost(tx, now, id, token)?);
            };
            let note = Note {
                token: Some(fence),
                lease_ms: Some(lease.as_millis()),
                ..Note::default()
            };
            record(tx, now, id, EventKind::Renewed, who, note)?;
            Ok(Lease {
                task: id.clone(),
                agent: agent(&holder)?,
                token: Token::from_parts(fence, secret.as_deref())?,
                assigned_at: Millis::from_millis(assigned_at),
                lock_until: Millis::from_millis(lock_until),
                version: Version::new(version),
            })
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
        let r = self.write(|tx, now| {
            let Some(task) = end_lease(tx, now, sql::RELEASE, id, token, Some(to.status()))? else {
                return repeat_or_lost(tx, now, id, token, EventKind::Released, to.status());
            };
            let detail = format!("to {}", to.status());
            let note = Note {
                token: Some(token.fence()),
                detail: Some(&detail),
                reason: reason.map(Reason::as_str),
                ..Note::default()
            };
            record(tx, now, id, EventKind::Released, who, note)?;
            Ok(Ended {
                task,
                repeat: false,
            })
        });
        self.rang(r)
    }

    fn release_force(&self, id: &TaskId, to: ReleaseTo, who: &AgentId) -> Result<Task> {
        let r = self.write(|tx, now| {
            let Some(row) = lease_row(tx, id)? else {
                return Err(Error::NotFound(id.clone()));
            };
            if row.lease.status != Status::InProgress {
                return Err(Error::invalid(
                    "task",
                    format!(
                        "{id} is {} and has no lease; nothing to release",
                        row.lease.status
                    ),
                ));
            }
            let token = row.lease.token().ok_or_else(|| {
                Error::store("force release", "the lease's stored token is malformed")
            })?;
            let task = end_lease(tx, now, sql::RELEASE_FORCE, id, &token, Some(to.status()))?
                .ok_or_else(|| {
                    Error::store("force release", "the lease vanished inside the write lock")
                })?;
            let detail = format!(
                "held by {} until {}; to {}",
                row.lease.assignee.as_ref().map_or("?", AgentId::as_str),
                row.lease.lock_until.unwrap_or(Millis::from_millis(0)),
                to.status()
            );
            let note = Note {
                token: Some(token.fence()),
                detail: Some(&detail),
                ..Note::default()
            };
            record(tx, now, id, EventKind::Forced, who, note)?;
            Ok(task)
        });
        self.rang(r)
    }

    fn done_with_reason(
        &self,
        id: &TaskId,
        token: &Token,
        reason: Option<&Reason>,
        who: &AgentId,
    ) -> Result<Ended> {
        let r = self.done_quietly(id, token, who, reason);
        self.rang(r)
    }

    fn done_then_claim_next(
        &self,
        id: &TaskId,
        token: &Token,
        lease: LeaseDuration,
        request: Option<&RequestId>,
        who: &AgentId,
    ) -> Result<DoneThenNext> {
        // The done rings nobody: this worker takes the next task itself, and rings for
        // a waiter only if more is ready after its claim (or its claim failed).
        let ended = self.done_quietly(id, token, who, None)?;
        let next = self.claim_next_keyed(lease, request, who);
        let more = match &next {
            Ok(None) => false,
            Ok(Some(_)) => self.readiness().is_ok_and(|r| r.ready),
            Err(_) => true,
        };
        if more {
            self.bell.ring();
        }
        Ok(DoneThenNext { ended, next })
    }

    fn reap(&self, who: &AgentId) -> Result<Vec<Reaped>> {
        let r = self.write(|tx, now| {
            let rows: Vec<(String, String, i64, i64)> = tx
                .prepare_cached(sql::EXPIRED)
                .and_then(|mut s| {
                    s.query_map(named_params! {":now": now}, |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })?
                    .collect()
                })
                .ctx("list expired leases")?;
            let n = tx
                .prepare_cached(sql::REAP)
                .and_then(|mut s| s.execute(named_params! {":now": now}))
                .ctx("reap expired leases")?;
            if n != rows.len() {
                return Err(Error::store(
                    "reap",
                    format!("listed {} expired leases but ended {n}", rows.len()),
                ));
            }
            let mut reaped = Vec::with_capacity(rows.len());
            for (id, holder, fence, until) in rows {
                let id = task_id(&id)?;
                let detail = format!(
                    "lease of {holder} ran out at {}",
                    Millis::from_millis(until)
                );
                let note = Note {
                    token: Some(fence),
                    detail: Some(&detail),
                    ..Note::default()
                };
                record(tx, now, &id, EventKind::Reaped, who, note)?;
                reaped.push(Reaped {
                    id,
                    agent: agent(&holder)?,
                    fence,
                    lock_until: Millis::from_millis(until),
                });
            }
            Ok(reaped)
        });
        if r.as_ref().is_ok_and(|r| !r.is_empty()) {
            self.bell.ring();
        }
        r
    }

    fn update(
        &self,
        id: &TaskId,
        expect_version: Version,
        patch: &TaskPatch,
        token: Option<&Token>,
        who: &AgentId,
    ) -> Result<Task> {
        let r = (|| -> Result<Task> {
            patch.validate()?;
            self.write(|tx, now| {
            // Read first (under the write lock) only to know whether this update ends a
            // lease, which the history must record.
            let before = lease_row(tx, id)?;
            if let Some(Some(p)) = &patch.parent
                && before.is_some()
            {
                graph::check_parent(tx, Some(id), p)?;
            }
            let tags = patch.tags.as_deref().map(tags_json);
            let seq: Option<i64> = tx
                .prepare_cached(sql::UPDATE)
                .and_then(|mut s| {
                    s.query_row(
                        named_params! {
                            ":id": id.as_str(), ":expect": expect_version.get(), ":now": now,
                            ":token": token.map(Token::fence), ":secret": token.and_then(Token::secret),
                            ":title": patch.title, ":description": patch.description,
                            ":priority": patch.priority.map(Priority::rank),
                            ":status": patch.status.map(Status::as_str), ":tags": tags,
                        },
                        |r| r.get(0),
                    )
                    .optional()
                })
                .ctx("update the task")?;
            if let Some(seq) = seq {
                if let Some(p) = &patch.parent {
                    graph::set_parent(tx, seq, p.as_ref())?;
                }
                let task = task_by_seq(tx, seq)?;
                if let Some(b) = before.filter(|b| b.lease.status == Status::InProgress)
                    && task.status != Status::InProgress
                {
                    let kind = if task.status == Status::Done {
                        EventKind::Done
                    } else {
                        EventKind::Released
                    };
                    let detail = format!("by update to {}", task.status);
                    let note = Note {
                        token: Some(b.lease.fence),
                        detail: Some(&detail),
                        ..Note::default()
                    };
                    record(tx, now, id, kind, who, note)?;
                }
                return Ok(task);
            }
            let Some(row) = before else {
                return Err(Error::NotFound(id.clone()));
            };
            if let Some((holder, until)) = row.lease.live_holder(Millis::from_millis(now))
                && !token.is_some_and(|t| t.matches(row.lease.fence, row.lease.secret.as_deref()))
            {
                return Err(match token {
                    None => Error::NotHolder {
                        task: id.clone(),
                        holder,
                        until,
                    },
                    Some(t) => explain_lost(tx, now, id, t)?,
                });
            }
            Err(Error::VersionConflict {
                task: id.clone(),
                expected: expect_version,
                current: Version::new(row.version),
            })
        })
        })();
        self.rang(r)
    }

    fn log(&self, task: Option<&TaskId>, limit: u32) -> Result<Vec<Event>> {
        self.read(|tx| {
            let map = |r: &rusqlite::Row<'_>| {
                Ok(RawEvent {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    task: r.get(2)?,
                    kind: r.get(3)?,
                    agent: r.get(4)?,
                    token: r.get(5)?,
                    detail: r.get(6)?,
                    lease_ms: r.get(7)?,
                    wait_us: r.get(8)?,
                    busy: r.get(9)?,
                    reason: r.get(10)?,
                })
            };
            let rows: Vec<_> = match task {
                Some(t) => tx.prepare_cached(sql::LOG_TASK).and_then(|mut s| {
                    s.query_map(named_params! {":task": t.as_str(), ":limit": limit}, map)?
                        .collect()
                }),
                None => tx
                    .prepare_cached(sql::LOG)
                    .and_then(|mut s| s.query_map(named_params! {":limit": limit}, map)?.collect()),
            }
            .ctx("read the lease history")?;
            rows.into_iter().map(RawEvent::into_event).collect()
        })
    }

    fn prune(&self, keep: &Retention) -> Result<u64> {
        keep.validate()?;
        let (oldest, newest, young) = self.read(|tx| {
            let now = read_now(tx, &self.clock)?;
            let cutoff = keep.max_age_ms.map(|age| now.saturating_sub(age));
            tx.prepare_cached(sql::PRUNE_SPAN)
                .and_then(|mut s| {
                    s.query_row(named_params! {":cutoff": cutoff}, |r| {
                        Ok((
                            r.get::<_, Option<i64>>(0)?,
                            r.get::<_, Option<i64>>(1)?,
                            r.get::<_, Option<i64>>(2)?,
                        ))
                    })
                })
                .ctx("measure the lease history")
        })?;
        let (Some(oldest), Some(newest)) = (oldest, newest) else {
            return Ok(0);
        };
        // History seqs are dense here (rows are only ever deleted from the old end), so
        // the count bound is arithmetic.
        let by_count = keep.max_events.map(|n| {
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            newest.saturating_sub(n).saturating_add(1)
        });
        let keep_from = keep.keep_from(oldest, newest, by_count, young);
        let mut deleted = 0;
        for below in Retention::slices(oldest, keep_from, PRUNE_BATCH) {
            let n = self.write(|tx, _| {
                tx.prepare_cached(sql::PRUNE)
                    .and_then(|mut s| s.execute(named_params! {":below": below}))
                    .ctx("prune the lease history")
            })?;
            deleted += n as u64;
        }
        Ok(deleted)
    }

    fn import(&self, batch: &tasklease_core::ImportBatch) -> Result<tasklease_core::ImportOutcome> {
        let r = self.import_batch(batch);
        if batch.dry_run {
            return r;
        }
        self.rang(r)
    }

    fn counts(&self) -> Result<Vec<(Status, u64)>> {
        let rows: Vec<(String, i64)> = self.read(|tx| {
            tx.prepare_cached(sql::COUNTS)
                .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
                .ctx("count tasks")
        })?;
        let mut counts: Vec<(Status, u64)> = Status::ALL.iter().map(|&s| (s, 0)).collect();
        for (status, n) in rows {
            let status = parse_status(&status)?;
            if let Some(c) = counts.iter_mut().find(|c| c.0 == status) {
                c.1 = u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(counts)
    }

    fn mine(&self, who: &AgentId) -> Result<Vec<Lease>> {
        self.read(|tx| {
            let now = read_now(tx, &self.clock)?;
            let rows: Vec<HeldRow> = tx
                .prepare_cached(sql::MINE)
                .and_then(|mut s| {
                    s.query_map(named_params! {":agent": who.as_str(), ":now": now}, |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    })?
                    .collect()
                })
                .ctx("list your leases")?;
            rows.into_iter().map(|r| held_lease(who, r)).collect()
        })
    }

    fn readiness(&self) -> Result<Readiness> {
        self.read(|tx| {
            let now = read_now(tx, &self.clock)?;
            let (ready, next): (bool, Option<i64>) = tx
                .prepare_cached(sql::READINESS)
                .and_then(|mut s| {
                    s.query_row(named_params! {":now": now}, |r| Ok((r.get(0)?, r.get(1)?)))
                })
                .ctx("look for ready tasks")?;
            Ok(Readiness {
                ready,
                next_expiry: next.map(Millis::from_millis),
                now: Millis::from_millis(now),
            })
        })
    }

    fn ready_signal(&self) -> Result<Box<dyn ReadySignal>> {
        Ok(Box::new(wake::Listener::open(&self.path)?))
    }

    fn now(&self) -> Result<Millis> {
        read_now(&self.lock().conn, &self.clock).map(Millis::from_millis)
    }

    fn stamp(&self) -> Result<Stamp> {
        let n: i64 = self
            .lock()
            .conn
            .prepare_cached(sql::STAMP)
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .ctx("read the database's data version")?;
        Ok(Stamp::new(n.to_string()))
    }
}

/// The most history rows one prune transaction deletes: claims wait behind it for a
/// few milliseconds at most.
const PRUNE_BATCH: i64 = 5_000;

/// A history row as SQLite returns it, before validation.
struct RawEvent {
    seq: i64,
    at: i64,
    task: String,
    kind: String,
    agent: String,
    token: Option<i64>,
    detail: Option<String>,
    lease_ms: Option<i64>,
    wait_us: Option<i64>,
    busy: Option<i64>,
    reason: Option<String>,
}

impl RawEvent {
    fn into_event(self) -> Result<Event> {
        let kind = EventKind::parse(&self.kind).ok_or_else(|| {
            Error::store(
                "read the lease history",
                format!("unknown event kind {:?}", self.kind),
            )
        })?;
        Ok(Event {
            seq: self.seq,
            at: Millis::from_millis(self.at),
            task: task_id(&self.task)?,
            kind,
            agent: agent(&self.agent)?,
            fence: self.token,
            detail: self.detail,
            lease_ms: self.lease_ms,
            wait_us: self.wait_us,
            busy: self.busy,
            reason: self.reason,
        })
    }
}

fn next_free_id(tx: &Connection) -> Result<TaskId> {
    let mut n: i64 = tx
        .prepare_cached(sql::NEXT_ID)
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .ctx("pick a task id")?;
    loop {
        let id = format!("T-{n}");
        let taken = tx
            // Deleted ids stay taken: a token of the old task must never be valid again.
            .prepare_cached(
                "SELECT 1 FROM tasks WHERE id = ?1 UNION ALL SELECT 1 FROM deleted_ids WHERE id = ?1",
            )
            .and_then(|mut s| s.exists([&id]))
            .ctx("pick a task id")?;
        if !taken {
            return TaskId::new(&id);
        }
        n += 1;
    }
}

/// A task row as SQLite returns it, before validation.
struct RawTask {
    id: String,
    title: String,
    description: String,
    status: String,
    priority: i64,
    tags: String,
    deps: String,
    waiting_on: i64,
    version: i64,
    assignee: Option<String>,
    assigned_at: Option<i64>,
    lock_until: Option<i64>,
    attempts: i64,
    created_at: i64,
    updated_at: i64,
    parent: Option<String>,
}

impl RawTask {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawTask> {
        Ok(RawTask {
            id: r.get(0)?,
            title: r.get(1)?,
            description: r.get(2)?,
            status: r.get(3)?,
            priority: r.get(4)?,
            tags: r.get(5)?,
            deps: r.get(6)?,
            waiting_on: r.get(7)?,
            version: r.get(8)?,
            assignee: r.get(9)?,
            assigned_at: r.get(10)?,
            lock_until: r.get(11)?,
            attempts: r.get(12)?,
            created_at: r.get(13)?,
            updated_at: r.get(14)?,
            parent: r.get(15)?,
        })
    }

    fn into_task(self) -> Result<Task> {
        let corrupt = |what: &str| {
            Error::store(
                format!("task {} has a corrupt {what}", self.id),
                "the database holds a value tasklease never writes",
            )
        };
        let tags: Vec<String> =
            serde_json::from_str(&self.tags).map_err(|_| corrupt("tag list"))?;
        let tags = tags.into_iter().map(Tag::from_stored).collect();
        let deps: Vec<TaskId> =
            serde_json::from_str(&self.deps).map_err(|_| corrupt("dependency list"))?;
        Ok(Task {
            id: task_id(&self.id)?,
            priority: Priority::from_rank(self.priority).ok_or_else(|| corrupt("priority"))?,
            status: parse_status(&self.status)?,
            assignee: self.assignee.as_deref().map(agent).transpose()?,
            title: self.title,
            description: self.description,
            tags,
            deps,
            waiting_on: self.waiting_on,
            parent: self.parent.as_deref().map(task_id).transpose()?,
            version: Version::new(self.version),
            assigned_at: self.assigned_at.map(Millis::from_millis),
            lock_until: self.lock_until.map(Millis::from_millis),
            attempts: self.attempts,
            created_at: Millis::from_millis(self.created_at),
            updated_at: Millis::from_millis(self.updated_at),
        })
    }
}

fn parse_status(s: &str) -> Result<Status> {
    s.parse().map_err(|_| {
        Error::store(
            "read a task",
            format!("unknown status {s:?} in the database"),
        )
    })
}

fn task_id(s: &str) -> Result<TaskId> {
    TaskId::new(s).map_err(|e| Error::store("read a task id", e.to_string()))
}

fn agent(s: &str) -> Result<AgentId> {
    Ok(AgentId::from_stored(s))
}
