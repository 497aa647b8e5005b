//! Dependency edits and the graph's views (`deps`), each one transaction.
//!
//! Unlike the lease operations these take several statements: a cycle check must walk
//! the graph, which one statement could do only by building every path. An addition
//! first takes a transaction-scoped advisory lock on the schema's graph
//! (`graph_lock.sql`), so concurrent additions serialize and each cycle check sees
//! every edge committed before it (READ COMMITTED: each statement a fresh snapshot).
//! Removals cannot close a cycle and take no such lock. Edge inserts and deletes lock
//! the dependency `FOR SHARE` so the `waiting_on` triggers and a concurrent status
//! change count the edge exactly once (migration 0004).

use tasklease_core::{
    AgentId, Deleted, DepChange, DepState, Deps, Error, Millis, Status, TaskId, cycle_error,
    find_path, parent_cycle_error, rm_allowed,
};

use crate::conn::{Conn, Failure};
use crate::{agent, sql, status, task_id};

fn seq_of(c: &mut Conn, id: &TaskId) -> Result<Option<i64>, Failure> {
    Ok(c.query_opt(sql::TASK_SEQ, &[&id.as_str()])?
        .map(|r| r.try_get(0))
        .transpose()?)
}

fn must_seq(c: &mut Conn, id: &TaskId) -> Result<i64, Failure> {
    seq_of(c, id)?.ok_or_else(|| Error::NotFound(id.clone()).into())
}

pub(crate) fn add(
    c: &mut Conn,
    now: Option<i64>,
    task: &TaskId,
    deps: &[TaskId],
) -> Result<Vec<(TaskId, DepChange)>, Failure> {
    lock(c)?;
    let t = must_seq(c, task)?;
    let mut out = Vec::with_capacity(deps.len());
    for dep in deps {
        let d = must_seq(c, dep)?;
        if c.query_one(sql::DEP_EXISTS, &[&t, &d])?
            .try_get::<_, bool>(0)?
        {
            out.push((dep.clone(), DepChange::Already));
            continue;
        }
        let edges = c
            .query(sql::DEP_REACH, &[&d])?
            .iter()
            .map(|r| Ok((task_id(r.try_get(0)?)?, task_id(r.try_get(1)?)?)))
            .collect::<Result<Vec<_>, Failure>>()?;
        if let Some(path) = find_path(dep, task, &edges) {
            return Err(cycle_error(task, &path).into());
        }
        // A dependency deleted since it was looked up: the insert finds no row.
        if c.execute(sql::ADD_DEP, &[&t, &dep.as_str()])? == 0 {
            return Err(Error::NotFound(dep.clone()).into());
        }
        out.push((dep.clone(), DepChange::Added));
    }
    if out.iter().any(|(_, ch)| *ch == DepChange::Added) {
        c.execute(sql::DEP_TOUCH, &[&t, &now])?;
    }
    Ok(out)
}

pub(crate) fn rm(
    c: &mut Conn,
    now: Option<i64>,
    task: &TaskId,
    deps: &[TaskId],
) -> Result<Vec<(TaskId, DepChange)>, Failure> {
    let t = must_seq(c, task)?;
    let mut out = Vec::with_capacity(deps.len());
    for dep in deps {
        let d = must_seq(c, dep)?;
        let change = if c.execute(sql::DEP_RM, &[&t, &d])? == 0 {
            DepChange::Absent
        } else {
            DepChange::Removed
        };
        out.push((dep.clone(), change));
    }
    if out.iter().any(|(_, ch)| *ch == DepChange::Removed) {
        c.execute(sql::DEP_TOUCH, &[&t, &now])?;
        c.query_one(sql::NOTIFY, &[])?;
    }
    Ok(out)
}

pub(crate) fn list(c: &mut Conn, id: &TaskId) -> Result<Option<Deps>, Failure> {
    let Some(seq) = seq_of(c, id)? else {
        return Ok(None);
    };
    let mut deps = Deps {
        on: Vec::new(),
        needed_by: Vec::new(),
    };
    for r in c.query(sql::DEP_LIST, &[&seq])? {
        let state = DepState {
            id: task_id(r.try_get("id")?)?,
            status: status(r.try_get("status")?)?,
            holder: r
                .try_get::<_, Option<String>>("assignee")?
                .map(agent)
                .transpose()?,
            lock_until: r
                .try_get::<_, Option<i64>>("lock_until")?
                .map(Millis::from_millis),
        };
        if r.try_get::<_, &str>("dir")? == "on" {
            deps.on.push(state);
        } else {
            deps.needed_by.push(state);
        }
    }
    Ok(Some(deps))
}

/// Deletes `ids`: every row locked and checked first, then every write, so a refusal
/// changes nothing.
pub(crate) fn delete(
    c: &mut Conn,
    now: Option<i64>,
    ids: &[TaskId],
    force: bool,
    who: &AgentId,
) -> Result<Vec<Deleted>, Failure> {
    let mut plan = Vec::with_capacity(ids.len());
    for id in ids {
        let row = c
            .query_opt(sql::RM_LOCK, &[&id.as_str(), &now])?
            .ok_or_else(|| Error::NotFound(id.clone()))?;
        let seq: i64 = row.try_get("seq")?;
        let at = Millis::from_millis(row.try_get("now")?);
        let st = status(row.try_get("status")?)?;
        let until = row
            .try_get::<_, Option<i64>>("lock_until")?
            .map(Millis::from_millis);
        let holder = row
            .try_get::<_, Option<String>>("assignee")?
            .map(agent)
            .transpose()?;
        let held = match (st, holder, until) {
            (Status::InProgress, Some(h), Some(u)) if at < u => Some((h, u)),
            _ => None,
        };
        let deps = list(c, id)?.ok_or_else(|| Error::NotFound(id.clone()))?;
        let dropped: Vec<TaskId> = deps
            .needed_by
            .into_iter()
            .map(|d| d.id)
            .filter(|d| !ids.contains(d))
            .collect();
        rm_allowed(id, held.clone(), &dropped, force)?;
        // A lease ends with the row, live or not: its token goes into the history.
        let fence: i64 = row.try_get("fence")?;
        let token = (st == Status::InProgress).then_some(fence);
        let d = Deleted {
            id: id.clone(),
            holder: held.map(|(h, _)| h),
            dropped,
        };
        plan.push((seq, at, token, d));
    }
    for (seq, at, token, d) in &plan {
        c.execute(sql::RM_EDGES, &[seq])?;
        c.execute(sql::RM_DETACH, &[seq, &now])?;
        let detail = d.detail();
        c.execute(
            sql::RM,
            &[seq, &at.as_millis(), &who.as_str(), token, &detail],
        )?;
    }
    if plan.iter().any(|(_, _, _, d)| !d.dropped.is_empty()) {
        // Dependants whose edges were dropped may be ready now.
        c.query_one(sql::NOTIFY, &[])?;
    }
    Ok(plan.into_iter().map(|(_, _, _, d)| d).collect())
}

/// Checks that `parent` exists and, when `task` is given, is not `task` or one of its
/// descendants (which would close a cycle of parents). The caller holds the graph lock
/// when `task` is given, so no concurrent edit can close a cycle meanwhile.
pub(crate) fn check_parent(
    c: &mut Conn,
    task: Option<&TaskId>,
    parent: &TaskId,
) -> Result<(), Failure> {
    if seq_of(c, parent)?.is_none() {
        return Err(Error::invalid(
            "parent",
            format!("parent {parent} does not exist; add it first"),
        )
        .into());
    }
    let Some(task) = task else { return Ok(()) };
    let chain = c
        .query(sql::PARENT_CHAIN, &[&parent.as_str()])?
        .iter()
        .map(|r| Ok(task_id(r.try_get(0)?)?))
        .collect::<Result<Vec<_>, Failure>>()?;
    if let Some(at) = chain.iter().position(|a| a == task) {
        return Err(parent_cycle_error(task, &chain[..=at]).into());
    }
    Ok(())
}

pub(crate) fn lock(c: &mut Conn) -> Result<(), Failure> {
    c.query_one(sql::GRAPH_LOCK, &[])?;
    Ok(())
}
