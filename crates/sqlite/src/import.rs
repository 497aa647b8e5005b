//! `Store::import` on SQLite: one write transaction, prepared statements, one pass.
//!
//! Rows are written first (created or overwritten, statuses final), dependency edges
//! second: the `task_deps_added` trigger then counts each new edge against its
//! dependency's final status, so created tasks need no recount. Overwritten tasks
//! lose their old edges, which no trigger uncounts, so they are recounted from
//! scratch at the end. Parents are checked first (`check_batch_parents`: each one
//! exists, no cycle) and set last, once every row they may name exists. A leased task is read and judged inside the same write
//! transaction, so no claim can slip in between the look and the decision.

use rusqlite::{Connection, OptionalExtension, named_params};
use tasklease_core::{Error, ImportBatch, ImportOutcome, ImportTask, Result, Status, Task, TaskId};

use crate::{Ctx, SqliteStore, find_task, sql, tags_json};

enum Plan {
    Create,
    Update(i64),
    Same,
}

impl SqliteStore {
    pub(crate) fn import_batch(&self, batch: &ImportBatch) -> Result<ImportOutcome> {
        tasklease_core::validate_import(batch)?;
        self.write(|tx, now| {
            // A dry run does everything inside a savepoint it then rolls back, so it
            // meets every refusal a real run would.
            if batch.dry_run {
                tx.execute_batch("SAVEPOINT import_dry_run")
                    .ctx("start the dry run")?;
            }
            let out = import_in(tx, now, batch);
            if batch.dry_run {
                tx.execute_batch("ROLLBACK TO import_dry_run; RELEASE import_dry_run")
                    .ctx("roll the dry run back")?;
            }
            out
        })
    }
}

fn import_in(tx: &Connection, now: i64, batch: &ImportBatch) -> Result<ImportOutcome> {
    tasklease_core::check_batch_parents(batch, |id| stored_parent(tx, id))?;
    let mut out = ImportOutcome::default();
    // (row, task, overwritten)
    let mut edges: Vec<(i64, &ImportTask, bool)> = Vec::with_capacity(batch.tasks.len());
    let mut recount = Vec::new();
    for t in &batch.tasks {
        let plan = match find_task(tx, &t.id)? {
            // Ids are never reused: a token of the deleted task must stay stale.
            None if crate::graph::was_deleted(tx, &t.id)? => {
                return Err(tasklease_core::deleted_id_error(&t.id));
            }
            None => Plan::Create,
            Some(old) if old.is_leased_at(tasklease_core::Millis::from_millis(now)) => {
                out.leased.push(t.id.clone());
                continue;
            }
            Some(old) if t.same_as(&old) => Plan::Same,
            Some(old) => Plan::Update(seq_of(tx, &old)?),
        };
        match plan {
            Plan::Same => out.unchanged += 1,
            Plan::Create => {
                let seq = insert(tx, now, t)?;
                edges.push((seq, t, false));
                out.created += 1;
            }
            Plan::Update(seq) => {
                tx.prepare_cached(sql::IMPORT_UPDATE)
                    .and_then(|mut s| {
                        s.execute(named_params! {
                            ":seq": seq, ":title": t.title, ":description": t.description,
                            ":status": t.status.as_str(), ":priority": t.priority.rank(),
                            ":tags": tags_json(&t.tags), ":attempts": t.attempts, ":now": now,
                        })
                    })
                    .ctx("overwrite an imported task")?;
                tx.prepare_cached(sql::IMPORT_CLEAR_DEPS)
                    .and_then(|mut s| s.execute(named_params! {":task": seq}))
                    .ctx("replace an imported task's dependencies")?;
                edges.push((seq, t, true));
                recount.push(seq);
                out.updated += 1;
            }
        }
    }
    for &(seq, t, _) in &edges {
        for dep in &t.deps {
            let n = tx
                .prepare_cached(sql::ADD_DEP)
                .and_then(|mut s| s.execute(named_params! {":task": seq, ":dep": dep.as_str()}))
                .ctx("add a dependency")?;
            if n == 0 {
                return Err(Error::invalid(
                    "dependency",
                    format!(
                        "{}: dependency {dep} is neither in the import nor in the database",
                        t.id
                    ),
                ));
            }
        }
    }
    // Parents last, once every row they may name exists. A created task without one
    // has none already; an overwritten one gets the batch's, `None` included.
    for &(seq, t, overwritten) in &edges {
        if t.parent.is_some() || overwritten {
            tx.prepare_cached(sql::IMPORT_PARENTS)
                .and_then(|mut s| {
                    s.execute(named_params! {
                        ":seq": seq, ":parent": t.parent.as_ref().map(TaskId::as_str),
                    })
                })
                .ctx("set an imported task's parent")?;
        }
    }
    for seq in recount {
        tx.prepare_cached(sql::IMPORT_RECOUNT)
            .and_then(|mut s| s.execute(named_params! {":task": seq}))
            .ctx("recount an imported task's dependencies")?;
    }
    Ok(out)
}

fn insert(tx: &Connection, now: i64, t: &ImportTask) -> Result<i64> {
    debug_assert!(t.status != Status::InProgress, "validated before");
    tx.prepare_cached(sql::IMPORT_INSERT)
        .and_then(|mut s| {
            s.query_row(
                named_params! {
                    ":id": t.id.as_str(), ":title": t.title, ":description": t.description,
                    ":status": t.status.as_str(), ":priority": t.priority.rank(),
                    ":tags": tags_json(&t.tags), ":version": t.version.get(), ":attempts": t.attempts,
                    ":created": t.created_at.map(|m| m.as_millis()), ":updated": t.updated_at.map(|m| m.as_millis()),
                    ":now": now,
                },
                |r| r.get(0),
            )
        })
        .ctx("create an imported task")
}

/// The stored parent of `id`; `None` when there is no such task.
fn stored_parent(tx: &Connection, id: &TaskId) -> Result<Option<Option<TaskId>>> {
    let row: Option<Option<String>> = tx
        .prepare_cached("SELECT parent FROM tasks WHERE id = ?1")
        .and_then(|mut s| s.query_row([id.as_str()], |r| r.get(0)).optional())
        .ctx("read a task's parent")?;
    row.map(|p| p.map(|p| crate::task_id(&p)).transpose())
        .transpose()
}

fn seq_of(tx: &Connection, t: &Task) -> Result<i64> {
    tx.prepare_cached("SELECT seq FROM tasks WHERE id = ?1")
        .and_then(|mut s| s.query_row([t.id.as_str()], |r| r.get(0)))
        .ctx("read a task's row")
}
