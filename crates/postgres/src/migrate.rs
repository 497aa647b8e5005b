//! Embedded, transactional schema migrations, tracked in `schema_migrations`.
//!
//! Agents often start together, and each one opening the store migrates it. Every
//! pending migration and its `schema_migrations` row commit in one transaction that
//! first takes a transaction-scoped advisory lock, so concurrent starters queue on the
//! lock and the later ones find nothing left to do (the version is read again under
//! the lock). PostgreSQL DDL is transactional: a failure leaves the old schema whole.
//! The lock is keyed by the schema, so projects in different schemas of one database
//! do not wait for each other.
//!
//! There is no automatic backup: a shared server's backups (`pg_dump`, base backups,
//! replicas) are its operator's, not one agent's.

use tasklease_core::{Error, Result};

use crate::conn::{ANSWER_BOUND, CONNECT_BOUND, Conn, Failure, Target, translate};

/// The migrations, in order; migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_history.sql"),
    include_str!("../migrations/0003_retries.sql"),
    include_str!("../migrations/0004_graph.sql"),
    include_str!("../migrations/0005_secrets.sql"),
];

/// The schema version this build writes.
pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

/// First key of the advisory lock migrations take ("tl" in ASCII); the second is a
/// hash of the schema name.
const LOCK_CLASS: i32 = 0x746c;

/// What opening a store did to its schema.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Migrated {
    /// The schema the store lives in (the first existing one on `search_path`).
    pub schema: String,
    /// The version found.
    pub from: i64,
    /// The version now.
    pub to: i64,
}

fn refuse_newer(found: i64) -> Result<()> {
    Error::refuse_newer_schema(found, LATEST_VERSION)
}

/// The schema tables go into, and the version recorded there (0 when there is no
/// `schema_migrations` table yet).
fn version(c: &mut Conn, target: &Target) -> Result<(String, i64)> {
    let what = "read the schema version";
    let row = c
        .query_one(
            "SELECT current_schema(), to_regclass('schema_migrations') IS NOT NULL, \
                    current_setting('search_path')",
            &[],
        )
        .map_err(|f| target.failed(what, f, CONNECT_BOUND))?;
    let schema: Option<String> = row.get(0);
    let Some(schema) = schema else {
        let path: String = row.get(2);
        return Err(Error::invalid(
            "db",
            format!(
                "no schema on the connection's search_path ({}) exists; create it first \
                 (CREATE SCHEMA name) or point search_path at one (options=-c search_path=name)",
                tasklease_core::text::quote(&path)
            ),
        ));
    };
    if !row.get::<_, bool>(1) {
        return Ok((schema, 0));
    }
    let v: i64 = c
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .map_err(|f| target.failed(what, f, CONNECT_BOUND))?
        .get(0);
    Ok((schema, v))
}

/// Brings the schema up to date; a schema without tasklease tables gets them only
/// when `create` says so (`init`), so that a mistyped connection string or
/// `search_path` is refused instead of quietly starting an empty store. The version
/// check counts against whatever deadline `c` carries (the connect timeout, when
/// opening); the migration itself, which may wait for another starter's, gets the
/// per-statement bound.
pub(crate) fn migrate(c: &mut Conn, target: &Target, create: bool) -> Result<Migrated> {
    let (schema, found) = version(c, target)?;
    c.until(None);
    refuse_newer(found)?;
    if found == LATEST_VERSION {
        return Ok(Migrated {
            schema,
            from: found,
            to: found,
        });
    }
    if found == 0 && !create {
        return Err(Error::invalid(
            "store",
            format!("schema {schema} holds no tasklease tables"),
        ));
    }
    let from = c
        .transaction(|c| {
            c.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))",
                &[&LOCK_CLASS],
            )?;
            c.batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (
                     version    bigint PRIMARY KEY,
                     applied_at bigint NOT NULL
                 )",
            )?;
            let from: i64 = c
                .query_one(
                    "SELECT coalesce(max(version), 0) FROM schema_migrations",
                    &[],
                )?
                .try_get(0)?;
            refuse_newer(from)?;
            for (i, m) in MIGRATIONS
                .iter()
                .enumerate()
                .skip(usize::try_from(from).unwrap_or(0))
            {
                let version = i as i64 + 1;
                c.batch_execute(m).map_err(|f| match f {
                    Failure::Db(e) => {
                        Failure::Task(translate(&format!("apply migration {version}"), e))
                    }
                    f => f,
                })?;
                c.execute(
                    "INSERT INTO schema_migrations (version, applied_at)
                     VALUES ($1, round(extract(epoch FROM clock_timestamp()) * 1000)::bigint)",
                    &[&version],
                )?;
            }
            Ok(from)
        })
        .map_err(|f| target.failed("migrate the schema", f, ANSWER_BOUND))?;
    Ok(Migrated {
        schema,
        from,
        to: LATEST_VERSION,
    })
}
