//! Support for `tasklease bench`: filling a database fast, and the raw baseline — the
//! same single-statement claim run through plain SQL, with none of tasklease's logic
//! (no clock read, no history row, no result mapping), so a benchmark can report
//! tasklease's claims/s as a ratio of what SQLite itself does on the same file.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, named_params};
use tasklease_core::{Error, Result};

use crate::{Ctx, Options, SqliteStore, Synchronous, Tx};

/// Creates a fresh database at `path` (schema included) holding `tasks` todo tasks
/// `B-1` … `B-<n>` with mixed priorities. With `deps`, every fifth task depends on
/// the two before it, so claim-next has waiting tasks to skip. With `raw`, the
/// database is for the baseline: the lease history trigger is dropped, since the
/// history is tasklease logic.
///
/// # Errors
/// [`Error::Invalid`] if `path` exists; [`Error::Store`] on failure.
pub fn prefill(path: &Path, tasks: u64, deps: bool, raw: bool, sync: Synchronous) -> Result<()> {
    if path.exists() {
        return Err(Error::invalid(
            "db",
            format!(
                "{} exists; bench only fills a fresh database",
                path.display()
            ),
        ));
    }
    let opts = Options {
        synchronous: sync,
        ..Options::default()
    };
    let store = SqliteStore::open(path, &opts)?;
    let mut inner = store.lock();
    let tx = inner
        .conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .ctx("begin the prefill")?;
    {
        let now = crate::read_now(&tx, &tasklease_core::Clock::Database)?;
        let mut add = tx
            .prepare(
                "INSERT INTO tasks (seq, id, title, priority, created_at, updated_at)
                 VALUES (:seq, 'B-' || :seq, 'bench task', :prio, :now, :now)",
            )
            .ctx("prepare the prefill")?;
        let mut dep = tx
            .prepare("INSERT INTO task_deps (task, dep) VALUES (:task, :dep)")
            .ctx("prepare the prefill")?;
        for i in 0..tasks {
            let seq = i as i64 + 1;
            add.execute(named_params! {":seq": seq, ":prio": (i % 4) as i64, ":now": now})
                .ctx("prefill a task")?;
            if deps && i % 5 == 4 {
                for d in [seq - 1, seq - 2] {
                    dep.execute(named_params! {":task": seq, ":dep": d})
                        .ctx("prefill a dependency")?;
                }
            }
        }
    }
    if raw {
        tx.execute_batch("DROP TRIGGER tasks_claimed")
            .ctx("drop the history trigger")?;
    }
    tx.commit().ctx("commit the prefill")?;
    // Start the run with an empty WAL, so no agent pays for copying the prefill.
    inner
        .conn
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE")
        .ctx("checkpoint the prefill")?;
    Ok(())
}

/// A connection that claims with the bare statement, for the baseline.
pub struct RawClaimer {
    conn: Connection,
    /// `sql/claim_next.sql` with the clock read inlined.
    claim_next: String,
    /// `sql/done.sql` likewise.
    done: String,
}

/// The store's own statement with `:now` replaced by the database clock, as an
/// application writing the claim by hand would do.
fn inline_clock(sql: &str) -> String {
    sql.replace(":now", "CAST(round(unixepoch('subsec') * 1000) AS INTEGER)")
}

impl RawClaimer {
    /// Opens `path` with the same pragmas the store uses.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn open(path: &Path, sync: Synchronous) -> Result<RawClaimer> {
        let mut conn = Connection::open(path).ctx("open the baseline database")?;
        crate::configure(
            &mut conn,
            &Options {
                synchronous: sync,
                busy_timeout: Duration::from_secs(30),
                ..Options::default()
            },
            false,
        )
        .ctx("configure the baseline connection")?;
        // Plain SQLite checkpoints inside the commit that passes 1000 frames; our
        // connections do it elsewhere (`WalFrames`), which the raw floor must not get.
        conn.pragma_update(None, "wal_autocheckpoint", 1000)
            .ctx("configure the baseline connection")?;
        Ok(RawClaimer {
            conn,
            claim_next: inline_clock(crate::sql::CLAIM_NEXT),
            done: inline_clock(crate::sql::DONE),
        })
    }

    /// `BEGIN IMMEDIATE; <claim>; COMMIT` — the id and token claimed, if any.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn claim_next(&mut self, lease_ms: i64, agent: &str) -> Result<Option<(String, i64)>> {
        let tx = Tx::begin(&self.conn, Tx::IMMEDIATE)?;
        let got = {
            let mut st = tx.prepare_cached(&self.claim_next).ctx("prepare")?;
            let mut rows = st
                .query(named_params! {":agent": agent, ":lease_ms": lease_ms})
                .ctx("claim")?;
            match rows.next().ctx("claim")? {
                Some(r) => Some((r.get(0).ctx("claim")?, r.get(1).ctx("claim")?)),
                None => None,
            }
        };
        tx.commit()?;
        Ok(got)
    }

    /// `BEGIN IMMEDIATE; <done>; COMMIT`.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn done(&mut self, id: &str, token: i64) -> Result<()> {
        let tx = Tx::begin(&self.conn, Tx::IMMEDIATE)?;
        tx.prepare_cached(&self.done)
            .and_then(|mut s| s.query_row(named_params! {":id": id, ":token": token}, |_| Ok(())))
            .ctx("done")?;
        tx.commit()
    }
}
