//! What `show` reports about one task, read once for every front end: the task, the
//! states of its dependencies (to name the cancelled ones) and its children (for a
//! parent's progress). The CLI and the MCP server both build their answer from a
//! [`Shown`], so the two cannot drift.

use crate::{DepState, Error, Event, Millis, Progress, Result, Status, Store, Task, TaskId};

/// How far back in the task's history `show` looks for how its last lease ended.
const ENDING_LOOKBACK: u32 = 50;

/// One task as `show` reports it.
#[derive(Clone, Debug)]
pub struct Shown {
    /// The task.
    pub task: Task,
    /// Its dependencies, with their states, oldest first.
    pub on: Vec<DepState>,
    /// Its children, by priority then age.
    pub children: Vec<Task>,
    /// The store's clock when it was read, to judge the lease.
    pub now: Millis,
    /// How the task's last lease ended, if by `release` or `done` with a reason (the
    /// history event that says so).
    pub reason: Option<Event>,
}

impl Shown {
    /// Reads task `id` with its dependencies' states and its children.
    ///
    /// # Errors
    /// [`Error::NotFound`]; store failures.
    pub fn read(store: &dyn Store, id: &TaskId) -> Result<Shown> {
        let task = store.show(id)?.ok_or_else(|| Error::NotFound(id.clone()))?;
        let on = if task.deps.is_empty() {
            Vec::new()
        } else {
            store.deps(id)?.map(|d| d.on).unwrap_or_default()
        };
        let children = store.children(id, &crate::ListFilter::default())?;
        let reason = store
            .log(Some(id), ENDING_LOOKBACK)?
            .into_iter()
            .rev()
            .find(|e| e.kind.ends_lease())
            .filter(|e| e.reason.is_some());
        let now = store.now()?;
        Ok(Shown {
            task,
            on,
            children,
            now,
            reason,
        })
    }

    /// The dependencies that were cancelled: satisfied, but the work was dropped, not
    /// done — whoever takes the task should know.
    pub fn cancelled(&self) -> Vec<&TaskId> {
        self.on
            .iter()
            .filter(|d| d.status == Status::Cancelled)
            .map(|d| &d.id)
            .collect()
    }

    /// How far the children are.
    pub fn progress(&self) -> Progress {
        Progress::of(&self.children)
    }
}
