//! What each page shows, read from the store in one call on its thread: the board's
//! columns, a task with everything around it, the fleet.

use std::collections::HashMap;

use serde::Deserialize;
use tasklease::show::Shown;
use tasklease::{
    AgentId, Deps, Error, Event, EventKind, ListFilter, Millis, Result, Status, Store, Tag, Task,
    TaskId,
};
use tasklease_shape::stats::{self, Contention, Held, LeaseFit};

/// The order of the board's columns.
pub const COLUMNS: [Status; 6] = [
    Status::Todo,
    Status::Blocked,
    Status::InProgress,
    Status::Review,
    Status::Done,
    Status::Cancelled,
];

/// How much recent history the board reads for fences and the activity list.
const BOARD_WINDOW: u32 = 500;
/// How much history the fleet page reads (as `status`'s default window).
pub const FLEET_WINDOW: u32 = 10_000;

/// The filters of the board and `/api/tasks`, as the query string gives them.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Query {
    /// Only tasks with this tag.
    pub tag: Option<String>,
    /// Only tasks held by this agent.
    pub assignee: Option<String>,
    /// Only children of this task.
    pub parent: Option<String>,
    /// Only tasks whose id, title or description holds this text (any case).
    pub q: Option<String>,
    /// `all`: every card of every column, nothing collapsed.
    pub show: Option<String>,
}

/// [`Query`] checked into the library's types.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub tag: Option<Tag>,
    pub assignee: Option<AgentId>,
    pub parent: Option<TaskId>,
    /// Lower-cased.
    pub text: Option<String>,
    pub all: bool,
}

/// A query value, trimmed; `None` when absent or empty.
fn given(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Filter {
    /// # Errors
    /// [`Error::Invalid`] naming the filter that is not a valid tag, agent or task id.
    pub fn parse(q: &Query) -> Result<Filter> {
        Ok(Filter {
            tag: given(&q.tag).map(Tag::new).transpose()?,
            assignee: given(&q.assignee).map(AgentId::new).transpose()?,
            parent: given(&q.parent).map(TaskId::new).transpose()?,
            text: given(&q.q).map(str::to_lowercase),
            all: match given(&q.show) {
                None => false,
                Some("all") => true,
                Some(other) => {
                    return Err(Error::invalid(
                        "show",
                        format!(
                            "{} is not a way to show the board; allowed: all",
                            tasklease::text::quote(other)
                        ),
                    ));
                }
            },
        })
    }

    /// Whether any filter narrows the board.
    pub fn narrows(&self) -> bool {
        self.tag.is_some()
            || self.assignee.is_some()
            || self.parent.is_some()
            || self.text.is_some()
    }

    /// The tasks matching, by priority then age.
    pub fn tasks(&self, store: &dyn Store) -> Result<Vec<Task>> {
        let lf = ListFilter {
            tag: self.tag.clone(),
            assignee: self.assignee.clone(),
            ..ListFilter::default()
        };
        let mut tasks = match &self.parent {
            Some(p) => store.children(p, &lf)?,
            None => store.list(&lf)?,
        };
        if let Some(text) = &self.text {
            tasks.retain(|t| {
                t.id.as_str().to_lowercase().contains(text)
                    || t.title.to_lowercase().contains(text)
                    || t.description.to_lowercase().contains(text)
            });
        }
        Ok(tasks)
    }
}

/// What the history says about a task's current lease: its fence (the token's
/// number) and how often it was renewed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaseInfo {
    pub fence: Option<i64>,
    pub renewals: u32,
    /// The length of the latest grant.
    pub lease_ms: Option<i64>,
}

/// Follows each task's leases through `events` (oldest first): the latest one's fence,
/// renewals and grant length.
fn lease_infos(events: &[Event]) -> HashMap<TaskId, LeaseInfo> {
    let mut out: HashMap<TaskId, LeaseInfo> = HashMap::new();
    for e in events {
        let info = out.entry(e.task.clone()).or_default();
        match e.kind {
            EventKind::Claimed => {
                *info = LeaseInfo {
                    fence: e.fence,
                    renewals: 0,
                    lease_ms: e.lease_ms,
                };
            }
            EventKind::Reclaimed | EventKind::Renewed => {
                if info.fence.is_some() && info.fence != e.fence {
                    // The claim fell out of the window: count from here.
                    info.renewals = 0;
                }
                info.fence = e.fence;
                info.renewals += 1;
                info.lease_ms = e.lease_ms.or(info.lease_ms);
            }
            _ => {}
        }
    }
    out
}

/// The lease info of each held task in `tasks`: from `events`, else from the task's
/// own history (its claim fell out of the board's window).
fn held_infos(
    store: &dyn Store,
    tasks: &[&Task],
    events: &[Event],
) -> Result<HashMap<TaskId, LeaseInfo>> {
    let mut infos = lease_infos(events);
    for t in tasks.iter().filter(|t| t.status == Status::InProgress) {
        if infos.get(&t.id).is_none_or(|i| i.fence.is_none()) {
            let own = store.log(Some(&t.id), 200)?;
            if let Some(i) = lease_infos(&own).remove(&t.id) {
                infos.insert(t.id.clone(), i);
            }
        }
    }
    infos.retain(|id, _| {
        tasks
            .iter()
            .any(|t| &t.id == id && t.status == Status::InProgress)
    });
    Ok(infos)
}

/// One column of the board.
pub struct Column {
    pub status: Status,
    /// Tasks in it matching the filters.
    pub total: usize,
    /// The cards shown: the first page by priority then age, or for done and
    /// cancelled the latest.
    pub cards: Vec<Task>,
}

/// The board.
pub struct Board {
    pub now: Millis,
    pub columns: Vec<Column>,
    pub leases: HashMap<TaskId, LeaseInfo>,
    /// Every task in the store, by status, unfiltered.
    pub counts: Vec<(Status, u64)>,
    /// The latest events, newest first.
    pub recent: Vec<Event>,
}

/// Reads the board for `filter`, showing `page` cards per open column and `closed`
/// done or cancelled ones (all with [`Filter::all`]).
///
/// # Errors
/// [`Error::NotFound`] for a parent filter naming no task; store failures.
pub fn board(store: &dyn Store, filter: &Filter, page: usize, closed: usize) -> Result<Board> {
    let counts = store.counts()?;
    let columns = if filter.narrows() || filter.all {
        filtered_columns(store, filter, page, closed)?
    } else {
        paged_columns(store, &counts, page, closed)?
    };
    let shown: Vec<&Task> = columns.iter().flat_map(|c| &c.cards).collect();
    // Room for each shown lease's claim and a renewal or two, so that their fences
    // come from this one read rather than one read per task.
    let held = shown
        .iter()
        .filter(|t| t.status == Status::InProgress)
        .count();
    let window = u32::try_from(held.saturating_mul(4))
        .unwrap_or(u32::MAX)
        .max(BOARD_WINDOW);
    let events = store.log(None, window)?;
    let leases = held_infos(store, &shown, &events)?;
    let recent = events.iter().rev().take(12).cloned().collect();
    Ok(Board {
        now: store.now()?,
        columns,
        leases,
        counts,
        recent,
    })
}

/// The unfiltered board without reading every task: the two big open columns (to
/// do, in progress) read only their first `page` cards, and the rest — blocked,
/// review, done, cancelled, usually few — come in one read; totals come from the
/// counts. Done and cancelled are read whole, to find the latest (the store lists
/// by priority and age, not by change). Each read scans the task table once, so
/// the board costs four scans, not one per column.
fn paged_columns(
    store: &dyn Store,
    counts: &[(Status, u64)],
    page: usize,
    closed: usize,
) -> Result<Vec<Column>> {
    let limit = Some(u32::try_from(page).unwrap_or(u32::MAX));
    let first_page = |status| {
        store.list(&ListFilter {
            statuses: vec![status],
            limit,
            ..ListFilter::default()
        })
    };
    let mut by_status: HashMap<Status, Vec<Task>> = HashMap::new();
    by_status.insert(Status::Todo, first_page(Status::Todo)?);
    by_status.insert(Status::InProgress, first_page(Status::InProgress)?);
    let rest = store.list(&ListFilter {
        statuses: vec![
            Status::Blocked,
            Status::Review,
            Status::Done,
            Status::Cancelled,
        ],
        ..ListFilter::default()
    })?;
    for t in rest {
        by_status.entry(t.status).or_default().push(t);
    }
    Ok(COLUMNS
        .iter()
        .map(|&status| {
            let total = counts
                .iter()
                .find(|c| c.0 == status)
                .map_or(0, |c| usize::try_from(c.1).unwrap_or(usize::MAX));
            let mut cards = by_status.remove(&status).unwrap_or_default();
            if matches!(status, Status::Done | Status::Cancelled) {
                cards.sort_by_key(|t| std::cmp::Reverse(t.updated_at));
                cards.truncate(closed);
            } else {
                cards.truncate(page);
            }
            Column {
                status,
                total,
                cards,
            }
        })
        .collect())
}

/// The board narrowed by filters (or shown whole): every matching task is read.
fn filtered_columns(
    store: &dyn Store,
    filter: &Filter,
    page: usize,
    closed: usize,
) -> Result<Vec<Column>> {
    let mut by_status: HashMap<Status, Vec<Task>> = HashMap::new();
    for t in filter.tasks(store)? {
        by_status.entry(t.status).or_default().push(t);
    }
    Ok(COLUMNS
        .iter()
        .map(|&status| {
            let mut all = by_status.remove(&status).unwrap_or_default();
            let total = all.len();
            let keep = match status {
                Status::Done | Status::Cancelled => {
                    all.sort_by_key(|t| std::cmp::Reverse(t.updated_at));
                    closed
                }
                _ => page,
            };
            if !filter.all {
                all.truncate(keep);
            }
            Column {
                status,
                total,
                cards: all,
            }
        })
        .collect())
}

/// One task with everything around it.
pub struct TaskPage {
    pub shown: Shown,
    pub deps: Deps,
    pub lease: Option<LeaseInfo>,
    /// Its lease history, oldest first.
    pub history: Vec<Event>,
}

/// Reads task `id`'s page.
///
/// # Errors
/// [`Error::NotFound`]; store failures.
pub fn task(store: &dyn Store, id: &TaskId) -> Result<TaskPage> {
    let shown = Shown::read(store, id)?;
    let deps = store.deps(id)?.ok_or_else(|| Error::NotFound(id.clone()))?;
    let history = store.log(Some(id), 500)?;
    let lease = (shown.task.status == Status::InProgress)
        .then(|| lease_infos(&history).remove(id))
        .flatten();
    Ok(TaskPage {
        shown,
        deps,
        lease,
        history,
    })
}

/// One agent, as the fleet page shows it.
pub struct Agent {
    pub id: AgentId,
    /// The tasks it holds now.
    pub holds: Vec<Held>,
    /// Its latest event in the window.
    pub last_seen: Option<Millis>,
    /// Claims it won in the window.
    pub claims: u64,
}

/// One slice of time in the fleet's charts.
pub struct Bucket {
    pub claims_per_s: f64,
    pub wait_us_p50: Option<i64>,
    pub wait_us_p99: Option<i64>,
}

/// The fleet page: agents, contention over time, lease-length advice.
pub struct Fleet {
    pub now: Millis,
    pub agents: Vec<Agent>,
    pub held: Vec<Held>,
    pub contention: Contention,
    pub buckets: Vec<Bucket>,
    pub bucket_ms: i64,
    pub fits: Vec<LeaseFit>,
    pub events: usize,
    pub since: Option<Millis>,
    pub counts: Vec<(Status, u64)>,
}

/// How many slices the charts have.
const BUCKETS: i64 = 30;

/// Reads the fleet page from the latest `window` events.
///
/// # Errors
/// Store failures.
pub fn fleet(store: &dyn Store, window: u32) -> Result<Fleet> {
    let leased = store.list(&ListFilter {
        statuses: vec![Status::InProgress],
        ..ListFilter::default()
    })?;
    let events = store.log(None, window)?;
    let now = store.now()?;
    let held = stats::held(&leased, &events, now);
    let mut agents: HashMap<AgentId, Agent> = HashMap::new();
    for e in &events {
        let a = agents.entry(e.agent.clone()).or_insert_with(|| Agent {
            id: e.agent.clone(),
            holds: Vec::new(),
            last_seen: None,
            claims: 0,
        });
        a.last_seen = Some(a.last_seen.map_or(e.at, |s| s.max(e.at)));
        a.claims += u64::from(matches!(e.kind, EventKind::Claimed));
    }
    for h in &held {
        agents
            .entry(h.holder.clone())
            .or_insert_with(|| Agent {
                id: h.holder.clone(),
                holds: Vec::new(),
                last_seen: None,
                claims: 0,
            })
            .holds
            .push(h.clone());
    }
    let mut agents: Vec<Agent> = agents.into_values().collect();
    agents.sort_by(|a, b| {
        b.holds
            .len()
            .cmp(&a.holds.len())
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.id.as_str().cmp(b.id.as_str()))
    });
    let (buckets, bucket_ms) = buckets(&events, now);
    Ok(Fleet {
        now,
        agents,
        held,
        contention: stats::contention(&events),
        buckets,
        bucket_ms,
        fits: stats::fit(&stats::holds(&events)),
        events: events.len(),
        since: events.first().map(|e| e.at),
        counts: store.counts()?,
    })
}

/// Splits the window from its first event to `now` into [`BUCKETS`] slices: claims
/// granted per second, and the write-lock wait of the claim attempts in each.
fn buckets(events: &[Event], now: Millis) -> (Vec<Bucket>, i64) {
    let Some(first) = events.first() else {
        return (Vec::new(), 0);
    };
    let span = now.since(first.at).max(1_000);
    let width = (span + BUCKETS - 1) / BUCKETS;
    let mut slices: Vec<(u64, Vec<i64>)> = (0..BUCKETS).map(|_| (0, Vec::new())).collect();
    for e in events.iter().filter(|e| e.kind.is_claim()) {
        let i = usize::try_from((e.at.since(first.at) / width).clamp(0, BUCKETS - 1)).unwrap_or(0);
        slices[i].0 += u64::from(e.kind != EventKind::Refused);
        slices[i].1.extend(e.wait_us);
    }
    let out = slices
        .into_iter()
        .map(|(claims, mut waits)| {
            waits.sort_unstable();
            Bucket {
                claims_per_s: claims as f64 * 1000.0 / width as f64,
                wait_us_p50: stats::percentile(&waits, 50),
                wait_us_p99: stats::percentile(&waits, 99),
            }
        })
        .collect();
    (out, width)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: i64, task: &str, kind: EventKind, token: Option<i64>) -> Event {
        Event {
            seq,
            at: Millis::from_millis(seq * 1000),
            task: TaskId::new(task).unwrap(),
            kind,
            agent: AgentId::new("a").unwrap(),
            fence: token,
            reason: None,
            detail: None,
            lease_ms: Some(60_000),
            wait_us: Some(seq * 10),
            busy: None,
        }
    }

    #[test]
    fn the_latest_lease_gives_the_fence_and_its_renewals() {
        let events = [
            ev(1, "t", EventKind::Claimed, Some(1)),
            ev(2, "t", EventKind::Renewed, Some(1)),
            ev(3, "t", EventKind::Released, Some(1)),
            ev(4, "t", EventKind::Claimed, Some(2)),
            ev(5, "t", EventKind::Renewed, Some(2)),
            ev(6, "t", EventKind::Renewed, Some(2)),
            ev(7, "t", EventKind::Refused, None),
            ev(8, "u", EventKind::Renewed, Some(7)),
        ];
        let infos = lease_infos(&events);
        assert_eq!(infos[&TaskId::new("t").unwrap()].fence, Some(2));
        assert_eq!(infos[&TaskId::new("t").unwrap()].renewals, 2);
        assert_eq!(infos[&TaskId::new("u").unwrap()].fence, Some(7));
    }

    #[test]
    fn buckets_count_claims_per_second() {
        let events: Vec<Event> = (1..=30)
            .map(|i| ev(i, "t", EventKind::Claimed, Some(i)))
            .collect();
        let (b, width) = buckets(&events, Millis::from_millis(31_000));
        assert_eq!(b.len(), 30);
        assert_eq!(width, 1000);
        let total: f64 = b
            .iter()
            .map(|b| b.claims_per_s * width as f64 / 1000.0)
            .sum();
        assert!((total - 30.0).abs() < 1e-9, "{total}");
        assert!(b.iter().any(|b| b.wait_us_p99.is_some()));
    }
}
