//! Choosing and opening a store from a `--db` value.
//!
//! `--db` (or `TASKLEASE_DB`) is either a file path — the embedded SQLite store — or a
//! PostgreSQL connection string: a `postgres://` / `postgresql://` URL, or libpq-style
//! `key=value` pairs (`host=/run/postgresql dbname=tasks`). Without it, the project's
//! `.tasklease/tasklease.db` is used (see [`crate::project`]).
//!
//! Only [`init`] creates a store. [`open`] refuses a place with none — a mistyped
//! path, a project never initialized, a PostgreSQL schema without the tables — rather
//! than starting an empty store there: agents that disagree on which store they use
//! coordinate nothing, and silently so.

use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(feature = "postgres")]
use tasklease_postgres::{Options as PgOptions, PgStore};
#[cfg(feature = "sqlite")]
use tasklease_sqlite::{Options as SqliteOptions, SqliteStore};
#[cfg(feature = "sqlite")]
pub use tasklease_sqlite::{Synchronous, TurnState, WaitHook, Waiting};

use crate::{Clock, Error, Result, Store, project};

/// Variable holding the `--db` value.
pub const DB_VAR: &str = "TASKLEASE_DB";

/// Which store, where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbSpec {
    /// A SQLite file.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// Named by the user (`--db`), rather than found in the project.
        explicit: bool,
    },
    /// A PostgreSQL server.
    Postgres {
        /// The connection string, a URL or `key=value` pairs (may hold a password:
        /// never print it whole).
        url: String,
    },
}

/// libpq's connection keywords that tokio-postgres understands: a `--db` value whose
/// first word is `<one of these>=` is a connection string, not a file name.
const PG_KEYS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "options",
    "application_name",
    "sslmode",
    "connect_timeout",
    "keepalives",
    "target_session_attrs",
];

impl DbSpec {
    /// Interprets an explicit database value: a `postgres://` or `postgresql://` URL or
    /// libpq `key=value` pairs name a PostgreSQL server; `sqlite:PATH` or
    /// `sqlite://PATH` (`sqlite:///abs/path` for an absolute one) name a SQLite file,
    /// as does anything else, taken as a path.
    ///
    /// ```
    /// use std::path::PathBuf;
    /// use tasklease::open::DbSpec;
    ///
    /// let file = DbSpec::Sqlite { path: PathBuf::from("/srv/tasks.db"), explicit: true };
    /// assert_eq!(DbSpec::parse("sqlite:///srv/tasks.db"), file);
    /// assert_eq!(DbSpec::parse("/srv/tasks.db"), file);
    /// assert!(matches!(DbSpec::parse("postgres://agent@db/tasks"), DbSpec::Postgres { .. }));
    /// ```
    pub fn parse(s: &str) -> DbSpec {
        if let Some(rest) = s.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            return DbSpec::Sqlite {
                path: PathBuf::from(path),
                explicit: true,
            };
        }
        let pairs = s
            .split_once('=')
            .is_some_and(|(key, _)| PG_KEYS.contains(&key.trim()));
        if s.starts_with("postgres://") || s.starts_with("postgresql://") || pairs {
            DbSpec::Postgres { url: s.to_owned() }
        } else {
            DbSpec::Sqlite {
                path: PathBuf::from(s),
                explicit: true,
            }
        }
    }

    /// The explicit value if given, else `TASKLEASE_DB` if set (as the CLI reads it,
    /// so an agent started by `tasklease run --db …` opens the same store), else the
    /// project database found from `cwd`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when no value is given and `cwd` is in no project (no
    /// `.tasklease` or `.git` above it).
    pub fn discover(explicit: Option<&str>, cwd: &Path) -> Result<DbSpec> {
        if let Some(s) = given(explicit) {
            return Ok(DbSpec::parse(&s));
        }
        let root = project::find_root(cwd).ok_or_else(|| {
            Error::invalid(
                "project",
                format!(
                    "{} is not inside a project (no .tasklease or .git above it), and no \
                     database was named",
                    cwd.display()
                ),
            )
        })?;
        Ok(DbSpec::Sqlite {
            path: project::db_path(&root),
            explicit: false,
        })
    }

    /// Where `init` should create the store: the explicit value or `TASKLEASE_DB` as
    /// for [`DbSpec::discover`]; else the project found from `cwd`; else, only with
    /// `here`, `cwd` itself. A directory that is neither in a git work tree nor in a
    /// project is not taken as one without `here`: `init` in the wrong place (`/`,
    /// the home directory) would become the project of every directory below it.
    ///
    /// # Errors
    /// [`Error::Invalid`] when nothing names the place and `cwd` is in no project,
    /// saying where the store would have gone.
    pub fn for_init(explicit: Option<&str>, cwd: &Path, here: bool) -> Result<DbSpec> {
        if let Some(s) = given(explicit) {
            return Ok(DbSpec::parse(&s));
        }
        let root = match project::find_root(cwd) {
            _ if here => cwd.to_path_buf(),
            Some(root) => root,
            None => {
                return Err(Error::invalid(
                    "init",
                    format!(
                        "{} is not inside a git work tree or a tasklease project, so init \
                         would create {}; a directory becomes a project only when asked \
                         (here)",
                        cwd.display(),
                        project::state_dir(cwd).display()
                    ),
                ));
            }
        };
        Ok(DbSpec::Sqlite {
            path: project::db_path(&root),
            explicit: false,
        })
    }

    /// A description safe to print: the path, or the URL without credentials.
    pub fn display(&self) -> String {
        match self {
            DbSpec::Sqlite { path, .. } => path.display().to_string(),
            DbSpec::Postgres { url } => redact_url(url),
        }
    }
}

/// The explicit value, else `TASKLEASE_DB`; empty counts as not given.
fn given(explicit: Option<&str>) -> Option<String> {
    match explicit {
        Some(s) if !s.is_empty() => Some(s.to_owned()),
        _ => std::env::var(DB_VAR).ok().filter(|s| !s.is_empty()),
    }
}

/// A PostgreSQL connection string (URL or `key=value` pairs) with any password
/// replaced by `***`. Without the `postgres` feature, which parses them, nothing of
/// the string is shown.
pub fn redact_url(url: &str) -> String {
    #[cfg(feature = "postgres")]
    return tasklease_postgres::redact(url);
    #[cfg(not(feature = "postgres"))]
    {
        let _ = url;
        "(a PostgreSQL connection string)".to_owned()
    }
}

/// The refusal of a store whose backend this build left out (a Cargo feature).
#[allow(dead_code)] // unused when every backend is built
fn not_built(spec: &DbSpec) -> Error {
    let (name, feature) = match spec {
        DbSpec::Sqlite { .. } => ("SQLite", "sqlite"),
        DbSpec::Postgres { .. } => ("PostgreSQL", "postgres"),
    };
    Error::invalid(
        "db",
        format!(
            "{} names a {name} store, but this build of tasklease has no {name} support \
             (the `{feature}` feature of the tasklease crate)",
            spec.display()
        ),
    )
}

/// What opening did to the schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migrated {
    /// The version found (0: the store was created).
    pub from: i64,
    /// The version now.
    pub to: i64,
    /// Where the pre-migration copy went, if one was written (SQLite only).
    pub backup: Option<PathBuf>,
}

#[cfg(feature = "sqlite")]
impl From<tasklease_sqlite::Migrated> for Migrated {
    fn from(m: tasklease_sqlite::Migrated) -> Migrated {
        Migrated {
            from: m.from,
            to: m.to,
            backup: m.backup,
        }
    }
}

/// How to open a store.
///
/// `#[non_exhaustive]`: start from [`OpenOptions::default`] and set what you need with
/// the builder methods (or by assigning fields), so a field added later breaks nothing.
///
/// ```
/// use std::time::Duration;
/// use tasklease::open::OpenOptions;
///
/// let opts = OpenOptions::default()
///     .busy_timeout(Duration::from_secs(5))
///     .pool_size(8);
/// assert_eq!(opts.busy_timeout, Duration::from_secs(5));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OpenOptions {
    /// SQLite flush policy.
    #[cfg(feature = "sqlite")]
    pub synchronous: Synchronous,
    /// How long a writer waits for its turn before failing (SQLite's busy timeout;
    /// PostgreSQL's `statement_timeout`).
    pub busy_timeout: Duration,
    /// Where "now" comes from; the database clock outside tests.
    pub clock: Clock,
    /// Create the store when there is none — a missing SQLite file, a PostgreSQL
    /// schema without the tables. Only [`init`] does; everyone else is refused, so a
    /// mistyped `--db` does not quietly start an empty store.
    pub create: bool,
    /// The process makes a call or two and exits (CLI verbs), rather than staying
    /// (an MCP server, `run`, bench agents): tunes WAL checkpointing.
    pub one_shot: bool,
    /// Take turns through tasklease's writer queue (fair, and combines claims);
    /// `false` leaves waiting to SQLite's busy handler. On by default.
    pub queue: bool,
    /// SQLite: told once when a write has waited a second for the writer queue's turn,
    /// with who holds it (the library prints nothing).
    #[cfg(feature = "sqlite")]
    pub on_wait: Option<WaitHook>,
    /// SQLite: who this process is, in the turn's holder record other waiters read.
    pub agent: Option<crate::AgentId>,
    /// PostgreSQL: how many connections a store may open for threads sharing it
    /// (see `PgStore`); 4 by default.
    pub pool_size: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            #[cfg(feature = "sqlite")]
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(30),
            clock: Clock::Database,
            create: false,
            one_shot: false,
            queue: true,
            #[cfg(feature = "sqlite")]
            on_wait: None,
            agent: None,
            pool_size: 4,
        }
    }
}

impl OpenOptions {
    /// Sets [`OpenOptions::synchronous`].
    #[cfg(feature = "sqlite")]
    #[must_use]
    pub fn synchronous(mut self, s: Synchronous) -> Self {
        self.synchronous = s;
        self
    }

    /// Sets [`OpenOptions::busy_timeout`].
    #[must_use]
    pub fn busy_timeout(mut self, d: Duration) -> Self {
        self.busy_timeout = d;
        self
    }

    /// Sets [`OpenOptions::clock`].
    #[must_use]
    #[doc(hidden)] // for the stores and front ends, not a program (docs/library.md)
    pub fn clock(mut self, c: Clock) -> Self {
        self.clock = c;
        self
    }

    /// Sets [`OpenOptions::create`].
    #[must_use]
    pub fn create(mut self, yes: bool) -> Self {
        self.create = yes;
        self
    }

    /// Sets [`OpenOptions::one_shot`].
    #[must_use]
    #[doc(hidden)] // for the stores and front ends, not a program (docs/library.md)
    pub fn one_shot(mut self, yes: bool) -> Self {
        self.one_shot = yes;
        self
    }

    /// Sets [`OpenOptions::queue`].
    #[must_use]
    pub fn queue(mut self, yes: bool) -> Self {
        self.queue = yes;
        self
    }

    /// Sets [`OpenOptions::on_wait`].
    #[cfg(feature = "sqlite")]
    #[must_use]
    #[doc(hidden)] // for the stores and front ends, not a program (docs/library.md)
    pub fn on_wait(mut self, hook: Option<WaitHook>) -> Self {
        self.on_wait = hook;
        self
    }

    /// Sets [`OpenOptions::agent`].
    #[must_use]
    pub fn agent(mut self, a: Option<crate::AgentId>) -> Self {
        self.agent = a;
        self
    }

    /// Sets [`OpenOptions::pool_size`] (at least 1).
    #[must_use]
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }
}

/// Opens the store `spec` names, applying pending migrations (after a backup).
///
/// ```
/// use tasklease::open::{DbSpec, OpenOptions};
///
/// # fn main() -> tasklease::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let spec = DbSpec::parse(dir.path().join("t.db").to_str().unwrap());
/// // Nothing there yet: refused, so a typo never starts an empty store.
/// assert!(tasklease::open::open(&spec, &OpenOptions::default()).is_err());
/// tasklease::open::init(&spec, &OpenOptions::default())?;
/// let store = tasklease::open::open(&spec, &OpenOptions::default())?;
/// assert!(store.list(&Default::default())?.is_empty());
/// # Ok(()) }
/// ```
///
/// # Errors
/// [`Error::Invalid`] when there is no store there yet (run `init`), unless
/// [`OpenOptions::create`]; [`Error::SchemaTooNew`]; [`Error::Store`] for I/O and
/// database failures.
pub fn open(spec: &DbSpec, opts: &OpenOptions) -> Result<Box<dyn Store>> {
    Ok(match spec {
        #[cfg(feature = "postgres")]
        DbSpec::Postgres { url } => Box::new(open_postgres(url, opts)?),
        #[cfg(feature = "sqlite")]
        DbSpec::Sqlite { path, explicit } => Box::new(open_sqlite(path, *explicit, opts)?),
        #[allow(unreachable_patterns)]
        _ => return Err(not_built(spec)),
    })
}

/// What [`init`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitReport {
    /// The store, for display (no credentials).
    pub db: String,
    /// Whether the store was created now, rather than found.
    pub created: bool,
}

/// Creates the store `spec` names, or finds it there already: for the project's
/// database, `.tasklease/` with its `.gitignore` (repaired if empty or wrong); for an
/// explicit SQLite path, its parent directory; on PostgreSQL, the tables in the
/// connection's schema. An existing store is migrated as by [`open`].
///
/// # Errors
/// As [`open`]; [`Error::Store`] when a directory or file cannot be written.
pub fn init(spec: &DbSpec, opts: &OpenOptions) -> Result<InitReport> {
    let opts = OpenOptions {
        create: true,
        ..opts.clone()
    };
    match spec {
        #[cfg(feature = "postgres")]
        DbSpec::Postgres { url } => {
            let store = open_postgres(url, &opts)?;
            Ok(InitReport {
                db: format!("{} (schema {})", store.display(), store.migrated().schema),
                created: store.migrated().from == 0,
            })
        }
        #[cfg(feature = "sqlite")]
        DbSpec::Sqlite { path, explicit } => {
            if *explicit {
                create_parent(path)?;
            } else {
                let root = path
                    .parent()
                    .and_then(Path::parent)
                    .ok_or_else(|| Error::invalid("db", "the database path has no parent"))?;
                project::create_state_dir(root)?;
            }
            let store = open_sqlite(path, *explicit, &opts)?;
            Ok(InitReport {
                db: spec.display(),
                created: store.migrated().from == 0,
            })
        }
        #[allow(unreachable_patterns)]
        _ => Err(not_built(spec)),
    }
}

/// Creates the directory an explicit database path names, if missing.
#[cfg(feature = "sqlite")]
fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::create_dir_all(dir)
            .map_err(|e| Error::store(format!("cannot create {}", dir.display()), e)),
        _ => Ok(()),
    }
}

#[cfg(feature = "postgres")]
fn open_postgres(url: &str, opts: &OpenOptions) -> Result<PgStore> {
    PgStore::open(
        url,
        &PgOptions {
            clock: opts.clock.clone(),
            statement_timeout: opts.busy_timeout,
            create: opts.create,
            pool_size: opts.pool_size,
            ..PgOptions::default()
        },
    )
    .map_err(|e| match e {
        Error::Invalid {
            field: "store",
            message,
        } => Error::invalid(
            "store",
            format!(
                "{message} ({}): check the connection string and its search_path, or \
                 create the tables first (init)",
                redact_url(url)
            ),
        ),
        e => e,
    })
}

#[cfg(feature = "sqlite")]
fn open_sqlite(path: &Path, explicit: bool, opts: &OpenOptions) -> Result<SqliteStore> {
    // A misspelt scheme (`postgress://`, `PostgreSQL://`) is no file name anyone means,
    // and printing it as one would print its password.
    let text = path.to_string_lossy();
    if explicit && text.contains("://") {
        return Err(Error::invalid(
            "db",
            format!(
                "{} is neither a file path nor a PostgreSQL connection string; allowed: a \
                 path, sqlite:PATH, a URL starting postgres:// or postgresql:// (lower \
                 case), or key=value pairs",
                redact_url(&text)
            ),
        ));
    }
    SqliteStore::open(
        path,
        &SqliteOptions {
            synchronous: opts.synchronous,
            busy_timeout: opts.busy_timeout,
            clock: opts.clock.clone(),
            backup_before_migrate: true,
            one_shot: opts.one_shot,
            queue: opts.queue,
            create: opts.create,
            on_wait: opts.on_wait.clone(),
            agent: opts.agent.clone(),
        },
    )
    .map_err(|e| match e {
        Error::Invalid {
            field: "store",
            message,
        } => {
            let what = if explicit {
                "check the path, or create the database there first (init)"
            } else {
                "the project has no database yet: create it first (init)"
            };
            Error::invalid("store", format!("{message}; {what}"))
        }
        e => e,
    })
}

/// The SQLite writer queue's turn of the store `spec` names: held or free, and by
/// whom (`tasklease locks`, `status`). `None` for PostgreSQL, which has no such turn,
/// and for a database whose queue no process has used yet.
///
/// # Errors
/// [`Error::Store`] when the queue's files cannot be opened or locked.
#[cfg(feature = "sqlite")]
pub fn writer_turn(spec: &DbSpec) -> Result<Option<TurnState>> {
    match spec {
        DbSpec::Sqlite { path, .. } => tasklease_sqlite::writer_turn(path),
        DbSpec::Postgres { .. } => Ok(None),
    }
}

/// What `migrate` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrateReport {
    /// The store, for display.
    pub db: String,
    /// Versions before and after, and the automatic pre-migration backup if any.
    pub migrated: Migrated,
    /// The backup asked for with `--backup`, if any.
    pub backup: Option<PathBuf>,
}

/// Brings the schema up to date — creating it in an empty PostgreSQL schema or an
/// empty SQLite file, but never creating a missing SQLite file; with `backup`, first
/// writes a consistent copy beside the database (SQLite's online backup), whether or
/// not anything is pending.
///
/// # Errors
/// As [`open`]; [`Error::Invalid`] for `backup` on PostgreSQL, whose backups are the
/// server operator's (`pg_dump`), not something one agent can take for everyone.
pub fn migrate(spec: &DbSpec, opts: &OpenOptions, backup: bool) -> Result<MigrateReport> {
    #[cfg(feature = "postgres")]
    if let DbSpec::Postgres { url } = spec {
        return migrate_postgres(url, opts, backup);
    }
    #[cfg(feature = "sqlite")]
    if let DbSpec::Sqlite { path, explicit } = spec {
        return migrate_sqlite(spec, path, *explicit, opts, backup);
    }
    if let (DbSpec::Postgres { .. }, true) = (spec, backup) {
        return migrate_postgres_backup();
    }
    Err(not_built(spec))
}

#[cfg(feature = "sqlite")]
fn migrate_sqlite(
    spec: &DbSpec,
    path: &Path,
    explicit: bool,
    opts: &OpenOptions,
    backup: bool,
) -> Result<MigrateReport> {
    // Bringing the schema up to date includes writing it into an existing empty file,
    // never creating a file that is not there (that is `init`'s, and a typo's).
    let opts = OpenOptions {
        create: opts.create || path.exists(),
        ..opts.clone()
    };
    let store = open_sqlite(path, explicit, &opts)?;
    let backup = if backup {
        let dest = tasklease_sqlite::backup_path(store.path(), store.migrated().to);
        store.backup_to(&dest)?;
        Some(dest)
    } else {
        None
    };
    Ok(MigrateReport {
        db: spec.display(),
        migrated: store.migrated().clone().into(),
        backup,
    })
}

/// The refusal of a backup on PostgreSQL.
fn migrate_postgres_backup() -> Result<MigrateReport> {
    Err(Error::invalid(
        "backup",
        "a backup copies a SQLite file; for PostgreSQL, back up with the server's own \
             tools (e.g. pg_dump), then migrate without one. Migrations run in one \
             transaction, so a failed one leaves the old schema",
    ))
}

#[cfg(feature = "postgres")]
fn migrate_postgres(url: &str, opts: &OpenOptions, backup: bool) -> Result<MigrateReport> {
    if backup {
        return migrate_postgres_backup();
    }
    // The user asked for the schema in this one: an empty one gets the tables.
    let opts = OpenOptions {
        create: true,
        ..opts.clone()
    };
    let store = open_postgres(url, &opts)?;
    let m = store.migrated();
    Ok(MigrateReport {
        db: format!("{} (schema {})", store.display(), m.schema),
        migrated: Migrated {
            from: m.from,
            to: m.to,
            backup: None,
        },
        backup: None,
    })
}

#[cfg(all(test, feature = "sqlite", feature = "postgres"))]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert!(matches!(
            DbSpec::parse("postgres://u@h/db"),
            DbSpec::Postgres { .. }
        ));
        assert!(matches!(
            DbSpec::parse("postgresql://h/db"),
            DbSpec::Postgres { .. }
        ));
        assert!(matches!(
            DbSpec::parse("host=/run/postgresql dbname=tasks"),
            DbSpec::Postgres { .. }
        ));
        assert!(matches!(
            DbSpec::parse("dbname = tasks"),
            DbSpec::Postgres { .. }
        ));
        assert!(matches!(
            DbSpec::parse("x.db"),
            DbSpec::Sqlite { explicit: true, .. }
        ));
        assert!(matches!(
            DbSpec::parse("dir/a=b.db"),
            DbSpec::Sqlite { explicit: true, .. }
        ));
    }

    #[test]
    fn sqlite_urls_name_files() {
        for (url, path) in [
            ("sqlite:x.db", "x.db"),
            ("sqlite://x.db", "x.db"),
            ("sqlite://dir/x.db", "dir/x.db"),
            ("sqlite:///abs/x.db", "/abs/x.db"),
            ("sqlite:/abs/x.db", "/abs/x.db"),
        ] {
            assert_eq!(
                DbSpec::parse(url),
                DbSpec::Sqlite {
                    path: PathBuf::from(path),
                    explicit: true
                },
                "{url}"
            );
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://bob:s3cret@db.example:5432/tasks?sslmode=require"),
            "postgres://bob:***@db.example:5432/tasks?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://db.example/tasks"),
            "postgres://db.example/tasks"
        );
        assert_eq!(
            redact_url("host=db password=s3cret"),
            "host=db password=***"
        );
    }
}
