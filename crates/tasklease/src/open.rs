//! Choosing and opening a store from a `--db` value.
//!
//! `--db` (or `TASKLEASE_DB`) is either a file path — the embedded SQLite store — or a
//! `postgres://` / `postgresql://` URL. Without it, the project's
//! `.tasklease/tasklease.db` is used (see [`crate::project`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use tasklease_sqlite::{Migrated, Synchronous};
use tasklease_sqlite::{Options as SqliteOptions, SqliteStore};

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
        /// The connection URL (may hold a password: never print it whole).
        url: String,
    },
}

impl DbSpec {
    /// Interprets an explicit `--db` value.
    pub fn parse(s: &str) -> DbSpec {
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            DbSpec::Postgres { url: s.to_owned() }
        } else {
            DbSpec::Sqlite {
                path: PathBuf::from(s),
                explicit: true,
            }
        }
    }

    /// The explicit value if given, else the project database found from `cwd`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when no value is given and `cwd` is in no project (no
    /// `.tasklease` or `.git` above it).
    pub fn discover(explicit: Option<&str>, cwd: &Path) -> Result<DbSpec> {
        if let Some(s) = explicit.filter(|s| !s.is_empty()) {
            return Ok(DbSpec::parse(s));
        }
        let root = project::find_root(cwd).ok_or_else(|| {
            Error::invalid(
                "db",
                format!(
                    "{} is not inside a project (no .tasklease or .git above it); run \
                     `tasklease init` in the project root, or pass --db PATH",
                    cwd.display()
                ),
            )
        })?;
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

/// `url` with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        _ => url.to_owned(),
    }
}

/// How to open a store.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// SQLite flush policy.
    pub synchronous: Synchronous,
    /// How long a writer waits for its turn before failing.
    pub busy_timeout: Duration,
    /// Where "now" comes from; the database clock outside tests.
    pub clock: Clock,
    /// Create a missing project database (only `init` does).
    pub create: bool,
    /// The process makes a call or two and exits (CLI verbs), rather than staying
    /// (an MCP server, `run`, bench agents): tunes WAL checkpointing.
    pub one_shot: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(30),
            clock: Clock::Database,
            create: false,
            one_shot: false,
        }
    }
}

/// Opens the store `spec` names, applying pending migrations (after a backup).
///
/// # Errors
/// [`Error::Invalid`] when the project database does not exist yet (run `init`);
/// [`Error::SchemaTooNew`]; [`Error::Store`] for I/O and database failures.
pub fn open(spec: &DbSpec, opts: &OpenOptions) -> Result<Box<dyn Store>> {
    Ok(Box::new(open_sqlite(spec, opts)?))
}

fn open_sqlite(spec: &DbSpec, opts: &OpenOptions) -> Result<SqliteStore> {
    let path = match spec {
        DbSpec::Sqlite { path, explicit } => {
            if !*explicit && !opts.create && !path.exists() {
                return Err(Error::invalid(
                    "db",
                    format!(
                        "no tasklease database at {}; run `tasklease init` in the project root",
                        path.display()
                    ),
                ));
            }
            if !*explicit && opts.create {
                let root = path
                    .parent()
                    .and_then(Path::parent)
                    .ok_or_else(|| Error::invalid("db", "the database path has no parent"))?;
                project::create_state_dir(root)?;
            }
            path
        }
        DbSpec::Postgres { url } => {
            return Err(Error::invalid(
                "db",
                format!(
                    "{} is a PostgreSQL URL, and this build has no PostgreSQL store",
                    redact_url(url)
                ),
            ));
        }
    };
    SqliteStore::open(
        path,
        &SqliteOptions {
            synchronous: opts.synchronous,
            busy_timeout: opts.busy_timeout,
            clock: opts.clock.clone(),
            backup_before_migrate: true,
            one_shot: opts.one_shot,
        },
    )
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

/// Brings the schema up to date; with `backup`, first writes a consistent copy beside
/// the database (SQLite's online backup), whether or not anything is pending.
///
/// # Errors
/// As [`open`].
pub fn migrate(spec: &DbSpec, opts: &OpenOptions, backup: bool) -> Result<MigrateReport> {
    let store = open_sqlite(spec, opts)?;
    let backup = if backup {
        let dest = tasklease_sqlite::backup_path(store.path(), store.migrated().to);
        store.backup_to(&dest)?;
        Some(dest)
    } else {
        None
    };
    Ok(MigrateReport {
        db: spec.display(),
        migrated: store.migrated().clone(),
        backup,
    })
}

#[cfg(test)]
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
            DbSpec::parse("x.db"),
            DbSpec::Sqlite { explicit: true, .. }
        ));
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
    }
}
