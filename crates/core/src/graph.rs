//! The task graph: dependency edges, what they mean for readiness, and deletion.
//!
//! # When a dependency is satisfied
//!
//! A task waits on each dependency until that dependency is `done` **or `cancelled`**.
//! Cancelling is how a team says "we will not do this": a dependant that kept waiting
//! on it would wait forever, and nobody could tell from `claim` why. The dependant does
//! not learn that the work was skipped by becoming claimable; `show` (and `dep list`)
//! name the cancelled dependencies, so whoever takes it can decide.
//!
//! `waiting_on` on each row counts the unsatisfied dependencies and is kept by database
//! triggers (on edge insert and delete, and on a dependency's status crossing the
//! satisfied line), so `claim --next` stays one index probe. [`Status::satisfies`] is
//! the rule in Rust; the triggers and `waiting_on.sql` are the same rule in SQL.
//!
//! # Deleting
//!
//! `rm` removes task rows, but never their ids: each deleted id is kept as a tombstone
//! (`deleted_ids`, with the fence it reached) and `add` refuses it. A new task under
//! an old id would restart its fence at 0, and a token the old holder still carries
//! could become valid again; with the tombstone every token of a deleted task stays
//! dead (renew, release and done answer "no task"). A task under a live lease, or one
//! others wait on, is deleted only with force; force ends the lease (recorded in the
//! `deleted` history row with its token) and drops the edges of its dependants, whose
//! `waiting_on` the edge-delete trigger recounts.
//!
//! # Cycles
//!
//! An edge that would close a cycle is refused before it is written, with the cycle
//! spelled out (`a → b → c → a`): a cycle can never become ready, so it is bad input,
//! not a state to explain later. Stores check and insert under one write lock (SQLite's
//! `BEGIN IMMEDIATE`; PostgreSQL's transaction-scoped advisory lock on the graph), so
//! two concurrent edits cannot each close half a cycle.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{AgentId, Error, ListFilter, Millis, Status, TaskId};

impl Status {
    /// Whether a dependency in this status lets its dependants go ahead: `done` or
    /// `cancelled`.
    pub fn satisfies(self) -> bool {
        matches!(self, Status::Done | Status::Cancelled)
    }
}

/// One end of a dependency edge, as it stands now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepState {
    /// The task at the other end.
    pub id: TaskId,
    /// Its status.
    pub status: Status,
    /// Its lease holder, while a lease is live or expired but not yet taken over.
    pub holder: Option<AgentId>,
    /// When that lease runs out.
    pub lock_until: Option<Millis>,
}

impl DepState {
    /// Whether this dependency no longer holds its dependant back.
    pub fn satisfied(&self) -> bool {
        self.status.satisfies()
    }

    /// Why this dependency holds its dependant back, in a few words (`not done: todo`,
    /// `held by alice`); `None` when it does not.
    pub fn why(&self) -> Option<String> {
        if self.satisfied() {
            return None;
        }
        Some(match &self.holder {
            Some(h) => format!("held by {h}"),
            None => format!("not done: {}", self.status),
        })
    }
}

/// Both directions of a task's dependencies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deps {
    /// What the task waits on, oldest first.
    pub on: Vec<DepState>,
    /// What waits on the task, oldest first.
    pub needed_by: Vec<DepState>,
}

/// What a dependency edit did to one edge: edits are idempotent, so adding an edge
/// that exists or removing one that does not is reported, not refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepChange {
    /// The edge was added.
    Added,
    /// The edge existed already.
    Already,
    /// The edge was removed.
    Removed,
    /// There was no such edge.
    Absent,
}

impl DepChange {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            DepChange::Added => "added",
            DepChange::Already => "already",
            DepChange::Removed => "removed",
            DepChange::Absent => "absent",
        }
    }
}

impl fmt::Display for DepChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a dependency edit's arguments: at least one dependency, none repeated, none
/// the task itself.
///
/// # Errors
/// [`Error::Invalid`] naming the dependency at fault.
pub fn validate_dep_edit(task: &TaskId, deps: &[TaskId]) -> Result<(), Error> {
    if deps.is_empty() {
        return Err(Error::invalid(
            "dependency",
            "no dependency given; name one or more task ids",
        ));
    }
    for (i, d) in deps.iter().enumerate() {
        if deps[..i].contains(d) {
            return Err(Error::invalid(
                "dependency",
                format!("dependency {d} is given twice"),
            ));
        }
        if d == task {
            return Err(Error::invalid(
                "dependency",
                format!("task {d} cannot depend on itself"),
            ));
        }
    }
    Ok(())
}

/// The refusal of an edge `task → dep` that would close a cycle. `path` is the chain
/// of dependencies found from `dep` back to `task` (both included).
pub fn cycle_error(task: &TaskId, path: &[TaskId]) -> Error {
    let mut ids: Vec<&str> = vec![task.as_str()];
    ids.extend(path.iter().map(TaskId::as_str));
    if ids.last() != Some(&task.as_str()) {
        ids.push(task.as_str());
    }
    Error::invalid(
        "dependency",
        format!(
            "{task} cannot wait on {}: that would make a cycle {}; a cycle never becomes ready",
            path.first().map_or("", TaskId::as_str),
            ids.join(" → ")
        ),
    )
}

/// A task `rm` deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// The task.
    pub id: TaskId,
    /// The holder whose live lease the deletion ended (forced), if any.
    pub holder: Option<AgentId>,
    /// The tasks that waited on it and no longer do (forced).
    pub dropped: Vec<TaskId>,
}

impl Deleted {
    /// What a forced deletion overrode, for its history row; `None` when nothing.
    pub fn detail(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(h) = &self.holder {
            parts.push(format!("forced: ended the live lease of {h}"));
        }
        if !self.dropped.is_empty() {
            let ids: Vec<&str> = self.dropped.iter().map(TaskId::as_str).collect();
            parts.push(format!("dropped the dependencies of {}", ids.join(", ")));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Checks `rm`'s ids: at least one, none repeated.
///
/// # Errors
/// [`Error::Invalid`] naming the id at fault.
pub fn validate_rm(ids: &[TaskId]) -> Result<(), Error> {
    if ids.is_empty() {
        return Err(Error::invalid(
            "task id",
            "no task given; name one or more task ids",
        ));
    }
    for (i, t) in ids.iter().enumerate() {
        if ids[..i].contains(t) {
            return Err(Error::invalid(
                "task id",
                format!("task {t} is given twice"),
            ));
        }
    }
    Ok(())
}

/// Whether `rm` may delete a task: refused without `force` while a lease is live
/// (`held`) or while other tasks — not themselves being deleted — wait on it.
///
/// # Errors
/// [`Error::Held`] for a live lease; [`Error::Invalid`] naming the dependants.
pub fn rm_allowed(
    id: &TaskId,
    held: Option<(AgentId, Millis)>,
    dependants: &[TaskId],
    force: bool,
) -> Result<(), Error> {
    if force {
        return Ok(());
    }
    if let Some((holder, until)) = held {
        return Err(Error::Held {
            task: id.clone(),
            holder,
            until,
        });
    }
    if !dependants.is_empty() {
        let ids: Vec<&str> = dependants.iter().map(TaskId::as_str).collect();
        return Err(Error::invalid(
            "task id",
            format!(
                "{id} is needed by {} (they wait on it); deleting it with force also drops \
                 those dependencies",
                ids.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The refusal of `add` for an id that was deleted.
pub fn deleted_id_error(id: &TaskId) -> Error {
    Error::invalid(
        "task id",
        format!(
            "task {id} was deleted; ids are never reused (a token of the old task must never \
             become valid again): pick another id"
        ),
    )
}

/// The refusal of a parent that would make `task` its own ancestor. `chain` is `parent`
/// and its ancestors, nearest first, ending at `task`.
pub fn parent_cycle_error(task: &TaskId, chain: &[TaskId]) -> Error {
    let mut ids: Vec<&str> = vec![task.as_str()];
    ids.extend(chain.iter().map(TaskId::as_str));
    Error::invalid(
        "parent",
        format!(
            "{} cannot be the parent of {task}: that would make a cycle of parents {} \
             (each the parent of the next one's child)",
            chain.first().map_or("", TaskId::as_str),
            ids.join(" → ")
        ),
    )
}

/// A parent's progress: how many of its children are done, cancelled, and in all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Children that are done.
    pub done: usize,
    /// Children that were cancelled.
    pub cancelled: usize,
    /// All children.
    pub total: usize,
}

impl Progress {
    /// Counts `children`.
    pub fn of(children: &[crate::Task]) -> Progress {
        Progress {
            done: children.iter().filter(|t| t.status == Status::Done).count(),
            cancelled: children
                .iter()
                .filter(|t| t.status == Status::Cancelled)
                .count(),
            total: children.len(),
        }
    }
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} done", self.done, self.total)?;
        if self.cancelled > 0 {
            write!(f, ", {} cancelled", self.cancelled)?;
        }
        Ok(())
    }
}

/// Checks a filter for [`crate::Store::ready`]: readiness decides status and holder, so
/// a filter on either is refused rather than silently ignored.
///
/// # Errors
/// [`Error::Invalid`] naming the filter.
pub fn validate_ready_filter(filter: &ListFilter) -> Result<(), Error> {
    if !filter.statuses.is_empty() || filter.assignee.is_some() {
        return Err(Error::invalid(
            "list filter",
            "ready tasks cannot be filtered by status or holder (readiness decides both); \
             allowed with ready: tag, limit",
        ));
    }
    Ok(())
}

/// The shortest chain of dependency edges (`task → dep`) leading from `from` to `to`,
/// both included; `None` when `to` cannot be reached. Stores read the edges reachable
/// from a new edge's dependency and ask whether they lead back to its task.
pub fn find_path(from: &TaskId, to: &TaskId, edges: &[(TaskId, TaskId)]) -> Option<Vec<TaskId>> {
    use std::collections::{HashMap, VecDeque};
    let mut came_from: HashMap<&TaskId, &TaskId> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    while let Some(at) = queue.pop_front() {
        if at == to {
            let mut path = vec![at.clone()];
            let mut cur = at;
            while let Some(prev) = came_from.get(cur) {
                path.push((*prev).clone());
                cur = prev;
            }
            path.reverse();
            return Some(path);
        }
        for (t, d) in edges {
            if t == at && d != from && !came_from.contains_key(d) {
                came_from.insert(d, t);
                queue.push_back(d);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> TaskId {
        TaskId::new(s).unwrap()
    }

    #[test]
    fn a_cycle_is_spelled_out() {
        let e = cycle_error(&id("a"), &[id("b"), id("c"), id("a")]).to_string();
        assert!(e.contains("a → b → c → a"), "{e}");
    }

    #[test]
    fn paths_are_found_shortest_first() {
        let e = |a: &str, b: &str| (id(a), id(b));
        let edges = [e("b", "c"), e("c", "a"), e("b", "a"), e("a", "x")];
        assert_eq!(
            find_path(&id("b"), &id("a"), &edges),
            Some(vec![id("b"), id("a")])
        );
        assert_eq!(
            find_path(&id("c"), &id("x"), &edges),
            Some(vec![id("c"), id("a"), id("x")])
        );
        assert_eq!(find_path(&id("x"), &id("a"), &edges), None);
    }

    #[test]
    fn edits_refuse_self_and_repeats() {
        assert!(validate_dep_edit(&id("a"), &[id("a")]).is_err());
        assert!(validate_dep_edit(&id("a"), &[id("b"), id("b")]).is_err());
        assert!(validate_dep_edit(&id("a"), &[]).is_err());
        assert!(validate_dep_edit(&id("a"), &[id("b")]).is_ok());
    }
}
