//! One page of a task list, and how many more tasks matched: what `tasklease list
//! --limit N` and the MCP `list` tool show ("20 tasks, 37 more").
//!
//! The stores list with a `LIMIT`; none counts. Counting every match separately would
//! be a second query with the same filters on each store, so instead a page is read
//! with up to [`MORE_CAP`] rows past its end, and those are counted and dropped. On
//! a project of 100k tasks an unfiltered page therefore reads at most 10 000 extra
//! rows (tens of milliseconds on SQLite) and reports "10000 more" as a lower bound,
//! flagged by [`Page::more_at_least`].

use crate::{ListFilter, Result, Store, Task, TaskId};

/// The most rows counted past a page's end.
pub const MORE_CAP: u32 = 10_000;

/// Which tasks a list looks at before its filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListView {
    /// Every task, most urgent first.
    All,
    /// What claim-next would take, in its order.
    Ready,
    /// Open tasks waiting on a dependency.
    Blocked,
    /// The children of a task.
    Children(TaskId),
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct Page {
    /// The tasks, at most the filter's limit.
    pub tasks: Vec<Task>,
    /// How many more matched past the page.
    pub more: u64,
    /// `more` is a lower bound: the count stopped at [`MORE_CAP`].
    pub more_at_least: bool,
}

/// Reads one page of `view` under `filter` (its `limit` is the page size; none reads
/// every match).
///
/// # Errors
/// The store's: [`crate::Error::NotFound`] for the children of a task that does not
/// exist, store failures.
pub fn page(store: &dyn Store, view: &ListView, filter: &ListFilter) -> Result<Page> {
    let mut wide = filter.clone();
    wide.limit = filter.limit.map(|l| l.saturating_add(MORE_CAP));
    let mut tasks = match view {
        ListView::All => store.list(&wide)?,
        ListView::Ready => store.ready(&wide)?,
        ListView::Blocked => store.blocked(&wide)?,
        ListView::Children(p) => store.children(p, &wide)?,
    };
    let Some(limit) = filter.limit else {
        return Ok(Page {
            tasks,
            more: 0,
            more_at_least: false,
        });
    };
    let limit = limit as usize;
    let more = tasks.len().saturating_sub(limit);
    tasks.truncate(limit);
    Ok(Page {
        tasks,
        more: more as u64,
        more_at_least: more >= MORE_CAP as usize,
    })
}
