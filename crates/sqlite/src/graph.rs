//! Dependency edits and the graph's views (`deps`, `ready`, `blocked`), each run in one
//! transaction of the store.
//!
//! An edit checks and writes under the write lock its caller took with `BEGIN
//! IMMEDIATE`, so the cycle check sees every committed edge and no other writer can add
//! one in between: two concurrent edits cannot each close half of a cycle. The
//! `waiting_on` counts are the triggers' business (migration 0004); nothing here
//! touches them.

use rusqlite::{Connection, OptionalExtension, named_params};
use tasklease_core::{
    AgentId, Deleted, DepChange, DepState, Deps, Error, EventKind, Millis, Result, Status, TaskId,
    cycle_error, find_path, parent_cycle_error, rm_allowed, validate_dep_edit,
};

use crate::{Ctx, Note, agent, lease_row, parse_status, record, sql, task_id};

fn seq_of(tx: &Connection, id: &TaskId) -> Result<Option<i64>> {
    tx.prepare_cached(sql::TASK_SEQ)
        .and_then(|mut s| {
            s.query_row(named_params! {":id": id.as_str()}, |r| r.get(0))
                .optional()
        })
        .ctx("look up a task")
}

fn must_seq(tx: &Connection, id: &TaskId) -> Result<i64> {
    seq_of(tx, id)?.ok_or_else(|| Error::NotFound(id.clone()))
}

fn edge_exists(tx: &Connection, task: i64, dep: i64) -> Result<bool> {
    tx.prepare_cached(sql::DEP_EXISTS)
        .and_then(|mut s| s.query_row(named_params! {":task": task, ":dep": dep}, |r| r.get(0)))
        .ctx("read a dependency")
}

/// The edges reachable from `dep`, to search for a way back.
fn reach(tx: &Connection, dep: i64) -> Result<Vec<(TaskId, TaskId)>> {
    let rows: Vec<(String, String)> = tx
        .prepare_cached(sql::DEP_REACH)
        .and_then(|mut s| {
            s.query_map(named_params! {":dep": dep}, |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .ctx("walk the dependencies")?;
    rows.iter()
        .map(|(t, d)| Ok((task_id(t)?, task_id(d)?)))
        .collect()
}

fn touch(tx: &Connection, task: i64, now: i64) -> Result<()> {
    tx.prepare_cached(sql::DEP_TOUCH)
        .and_then(|mut s| s.execute(named_params! {":task": task, ":now": now}))
        .ctx("bump the task's version")?;
    Ok(())
}

pub(crate) fn add(
    tx: &Connection,
    now: i64,
    task: &TaskId,
    deps: &[TaskId],
) -> Result<Vec<(TaskId, DepChange)>> {
    validate_dep_edit(task, deps)?;
    let t = must_seq(tx, task)?;
    let mut out = Vec::with_capacity(deps.len());
    for dep in deps {
        let d = must_seq(tx, dep)?;
        if edge_exists(tx, t, d)? {
            out.push((dep.clone(), DepChange::Already));
            continue;
        }
        if let Some(path) = find_path(dep, task, &reach(tx, d)?) {
            return Err(cycle_error(task, &path));
        }
        let n = tx
            .prepare_cached(sql::ADD_DEP)
            .and_then(|mut s| s.execute(named_params! {":task": t, ":dep": dep.as_str()}))
            .ctx("add a dependency")?;
        if n == 0 {
            return Err(Error::NotFound(dep.clone()));
        }
        out.push((dep.clone(), DepChange::Added));
    }
    if out.iter().any(|(_, c)| *c == DepChange::Added) {
        touch(tx, t, now)?;
    }
    Ok(out)
}

pub(crate) fn rm(
    tx: &Connection,
    now: i64,
    task: &TaskId,
    deps: &[TaskId],
) -> Result<Vec<(TaskId, DepChange)>> {
    validate_dep_edit(task, deps)?;
    let t = must_seq(tx, task)?;
    let mut out = Vec::with_capacity(deps.len());
    for dep in deps {
        let d = must_seq(tx, dep)?;
        let n = tx
            .prepare_cached(sql::DEP_RM)
            .and_then(|mut s| s.execute(named_params! {":task": t, ":dep": d}))
            .ctx("remove a dependency")?;
        let change = if n == 0 {
            DepChange::Absent
        } else {
            DepChange::Removed
        };
        out.push((dep.clone(), change));
    }
    if out.iter().any(|(_, c)| *c == DepChange::Removed) {
        touch(tx, t, now)?;
    }
    Ok(out)
}

pub(crate) fn list(tx: &Connection, id: &TaskId) -> Result<Option<Deps>> {
    let Some(seq) = seq_of(tx, id)? else {
        return Ok(None);
    };
    type Row = (String, String, String, Option<String>, Option<i64>);
    let rows: Vec<Row> = tx
        .prepare_cached(sql::DEP_LIST)
        .and_then(|mut s| {
            s.query_map(named_params! {":seq": seq}, |r| {
                Ok((r.get(0)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?
            .collect()
        })
        .ctx("read the task's dependencies")?;
    let mut deps = Deps {
        on: Vec::new(),
        needed_by: Vec::new(),
    };
    for (dir, id, status, holder, until) in rows {
        let state = DepState {
            id: task_id(&id)?,
            status: parse_status(&status)?,
            holder: holder.as_deref().map(agent).transpose()?,
            lock_until: until.map(Millis::from_millis),
        };
        if dir == "on" {
            deps.on.push(state);
        } else {
            deps.needed_by.push(state);
        }
    }
    Ok(Some(deps))
}

/// Whether `id` belonged to a deleted task.
pub(crate) fn was_deleted(tx: &Connection, id: &TaskId) -> Result<bool> {
    tx.prepare_cached(sql::DELETED_ID)
        .and_then(|mut s| s.query_row(named_params! {":id": id.as_str()}, |r| r.get(0)))
        .ctx("look up deleted ids")
}

fn exec(tx: &Connection, q: &str, seq: i64, now: Option<i64>, what: &str) -> Result<()> {
    let mut s = tx.prepare_cached(q).ctx(what)?;
    match now {
        Some(now) => s.execute(named_params! {":seq": seq, ":now": now}),
        None => s.execute(named_params! {":seq": seq}),
    }
    .ctx(what)?;
    Ok(())
}

/// Deletes `ids`: every check first, then every write, so a refusal changes nothing.
pub(crate) fn delete(
    tx: &Connection,
    now: i64,
    ids: &[TaskId],
    force: bool,
    who: &AgentId,
) -> Result<Vec<Deleted>> {
    let mut plan = Vec::with_capacity(ids.len());
    for id in ids {
        let row = lease_row(tx, id)?.ok_or_else(|| Error::NotFound(id.clone()))?;
        let seq = must_seq(tx, id)?;
        let held = row.lease.live_holder(Millis::from_millis(now));
        let deps = list(tx, id)?.ok_or_else(|| Error::NotFound(id.clone()))?;
        let dropped: Vec<TaskId> = deps
            .needed_by
            .into_iter()
            .map(|d| d.id)
            .filter(|d| !ids.contains(d))
            .collect();
        rm_allowed(id, held.clone(), &dropped, force)?;
        // A lease ends with the row, live or not: its token goes into the history.
        let token = (row.lease.status == Status::InProgress).then_some(row.lease.fence);
        plan.push((
            seq,
            token,
            Deleted {
                id: id.clone(),
                holder: held.map(|(h, _)| h),
                dropped,
            },
        ));
    }
    for (seq, token, d) in &plan {
        exec(
            tx,
            sql::RM_EDGES,
            *seq,
            None,
            "drop the task's dependencies",
        )?;
        exec(
            tx,
            sql::RM_DETACH,
            *seq,
            Some(now),
            "detach the task's children",
        )?;
        exec(
            tx,
            sql::RM_TOMBSTONE,
            *seq,
            Some(now),
            "keep the deleted id",
        )?;
        let detail = d.detail();
        let note = Note {
            token: *token,
            detail: detail.as_deref(),
            ..Note::default()
        };
        record(tx, now, &d.id, EventKind::Deleted, who, note)?;
        exec(tx, sql::RM, *seq, None, "delete the task")?;
    }
    Ok(plan.into_iter().map(|(_, _, d)| d).collect())
}

/// Checks that `parent` exists and, when `task` is given, is not `task` or one of its
/// descendants (which would close a cycle of parents).
pub(crate) fn check_parent(tx: &Connection, task: Option<&TaskId>, parent: &TaskId) -> Result<()> {
    if seq_of(tx, parent)?.is_none() {
        return Err(Error::invalid(
            "parent",
            format!("parent {parent} does not exist; add it first"),
        ));
    }
    let Some(task) = task else { return Ok(()) };
    let chain: Vec<String> = tx
        .prepare_cached(sql::PARENT_CHAIN)
        .and_then(|mut s| {
            s.query_map(named_params! {":id": parent.as_str()}, |r| r.get(0))?
                .collect()
        })
        .ctx("read the task's ancestors")?;
    let chain = chain
        .iter()
        .map(|s| task_id(s))
        .collect::<Result<Vec<_>>>()?;
    if let Some(at) = chain.iter().position(|a| a == task) {
        return Err(parent_cycle_error(task, &chain[..=at]));
    }
    Ok(())
}

pub(crate) fn set_parent(tx: &Connection, seq: i64, parent: Option<&TaskId>) -> Result<()> {
    tx.prepare_cached(sql::SET_PARENT)
        .and_then(|mut s| {
            s.execute(named_params! {":seq": seq, ":parent": parent.map(TaskId::as_str)})
        })
        .ctx("set the task's parent")?;
    Ok(())
}
