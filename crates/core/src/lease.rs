//! Leases, fencing tokens, and what a claim can come back with.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{AgentId, Error, Millis, RequestId, Status, Task, TaskId, Token, Version};

/// A granted lease: proof of holding `task` until `lock_until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The task held.
    #[serde(rename = "id")]
    pub task: TaskId,
    /// Who holds it (for display; authority is the token).
    pub agent: AgentId,
    /// The token to present on renew, release, done and update: a bearer secret, for
    /// the holder's eyes only ([`Token::fence`] is the part to show others).
    pub token: Token,
    /// When this holder first claimed the task.
    pub assigned_at: Millis,
    /// When the lease runs out unless renewed (database clock).
    pub lock_until: Millis,
    /// The task row's version after the claim.
    pub version: Version,
}

/// What `done` or `release` by a token came to: the task after it, and whether this
/// call ended the lease or found it already ended the same way by the same token (a
/// retry after an unknown outcome). A repeat changed nothing: no version bump, no
/// history row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// The task as it is now.
    pub task: Task,
    /// True when the token had already ended its lease by this same operation (and, for
    /// a release, to the same status) and nothing was changed now.
    pub repeat: bool,
}

/// What [`Store::done_then_claim_next`](crate::Store::done_then_claim_next) came to:
/// two steps, each with its own outcome. When the call returns this, the task is done
/// (or was already, by the same token); `next` is what the claim that followed came to.
#[derive(Debug)]
pub struct DoneThenNext {
    /// The finished task, as after [`Store::done`](crate::Store::done).
    pub ended: Ended,
    /// The next task claimed, `None` when nothing was ready, or the claim's error —
    /// the task above is done either way.
    pub next: Result<Option<Lease>, Error>,
}

/// What a claim of one task came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The caller holds the task now.
    Claimed(Lease),
    /// The caller does not hold the task, and why.
    Refused(Refusal),
}

/// Why a task could not be claimed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// Another lease is live (possibly the caller's own, claimed without its token).
    Held {
        /// The holder.
        by: AgentId,
        /// When its lease runs out unless renewed.
        until: Millis,
    },
    /// No task has that id.
    NotFound,
    /// The task exists but cannot be claimed now.
    NotClaimable {
        /// Why not.
        why: Unclaimable,
    },
}

/// Why an existing, unheld task is not claimable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Unclaimable {
    /// The task is finished or abandoned.
    Closed {
        /// `done` or `cancelled`.
        status: Status,
    },
    /// Some dependencies are not done yet.
    Waiting {
        /// The dependencies that are not done.
        on: Vec<TaskId>,
    },
}

impl Refusal {
    /// The refusal said about task `id`, worded as every other message names a task:
    /// `no task X` when it does not exist, `X: held by …` otherwise.
    pub fn message(&self, id: &TaskId) -> String {
        match self {
            Refusal::NotFound => format!("no task {id}"),
            _ => format!("{id}: {self}"),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Held { by, until } => write!(f, "held by {by} until {until}"),
            Refusal::NotFound => f.write_str("no such task"),
            Refusal::NotClaimable {
                why: Unclaimable::Closed { status },
            } => write!(f, "not claimable: it is {status}"),
            Refusal::NotClaimable {
                why: Unclaimable::Waiting { on },
            } => {
                let on: Vec<&str> = on.iter().map(TaskId::as_str).collect();
                write!(f, "not claimable: waiting on {}", on.join(", "))
            }
        }
    }
}

/// What an all-or-nothing batch claim came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Every task was claimed, in the order asked.
    Claimed(Vec<Lease>),
    /// Nothing was claimed; these ids are why.
    Refused(Vec<(TaskId, Refusal)>),
}

/// A lease ended by `reap` because it had run out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaped {
    /// The task, now `todo` again.
    pub id: TaskId,
    /// Who held the expired lease.
    pub agent: AgentId,
    /// The expired lease's fence number (its token is now stale; the secret is not
    /// reported: reap's output is for everyone).
    pub fence: i64,
    /// When it ran out.
    pub lock_until: Millis,
}

/// Why a token no longer holds its task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LostWhy {
    /// Another claim happened since: the token is stale.
    Stale {
        /// The current holder, if the task is still leased.
        holder: Option<AgentId>,
    },
    /// The token is the latest, but its lease was ended (released, done, reaped or
    /// forced) and the task is now in `status`.
    Ended {
        /// Where the task is now.
        status: Status,
    },
    /// The task never issued this token.
    Unknown,
}

/// What happened to a lease, as recorded in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A new lease was granted (a new token).
    Claimed,
    /// The holder re-claimed with its token: lease extended, token kept.
    Reclaimed,
    /// The holder renewed.
    Renewed,
    /// The holder handed the task back.
    Released,
    /// The holder finished the task.
    Done,
    /// `reap` ended an expired lease.
    Reaped,
    /// `release --force` ended a lease without its token.
    Forced,
    /// A claim lost to a live holder (nothing was granted; `detail` names the holder).
    Refused,
    /// The task was deleted; `token` is set when that ended a lease (forced).
    Deleted,
}

impl EventKind {
    /// Every kind.
    pub const ALL: &'static [EventKind] = &[
        EventKind::Claimed,
        EventKind::Reclaimed,
        EventKind::Renewed,
        EventKind::Released,
        EventKind::Done,
        EventKind::Reaped,
        EventKind::Forced,
        EventKind::Refused,
        EventKind::Deleted,
    ];

    /// Whether this kind is a claim attempt (granted or not): the events that carry
    /// [`Event::wait_us`] and [`Event::busy`].
    pub fn is_claim(self) -> bool {
        matches!(
            self,
            EventKind::Claimed | EventKind::Reclaimed | EventKind::Refused
        )
    }

    /// Whether this kind ends a lease.
    pub fn ends_lease(self) -> bool {
        matches!(
            self,
            EventKind::Released
                | EventKind::Done
                | EventKind::Reaped
                | EventKind::Forced
                | EventKind::Deleted
        )
    }

    /// The name stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Claimed => "claimed",
            EventKind::Reclaimed => "reclaimed",
            EventKind::Renewed => "renewed",
            EventKind::Released => "released",
            EventKind::Done => "done",
            EventKind::Reaped => "reaped",
            EventKind::Forced => "forced",
            EventKind::Refused => "refused",
            EventKind::Deleted => "deleted",
        }
    }

    /// The kind named `s`, if any.
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.iter().copied().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the lease history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history: larger is later.
    pub seq: i64,
    /// When (database clock).
    pub at: Millis,
    /// The task.
    pub task: TaskId,
    /// What happened.
    pub kind: EventKind,
    /// Who acted (the claimer, renewer, releaser, reaper or admin).
    pub agent: AgentId,
    /// The lease's fence number (the history never keeps a token's secret).
    pub fence: Option<i64>,
    /// More, in words (e.g. whose lease was reaped or forced).
    pub detail: Option<String>,
    /// Why, as the releaser or finisher said it (`release`/`done` `--reason`).
    pub reason: Option<String>,
    /// The lease length granted, in milliseconds (claimed, reclaimed, renewed).
    pub lease_ms: Option<i64>,
    /// Claim attempts only: how long the claimer waited for its turn to write, in
    /// microseconds, as the claimer measured it.
    pub wait_us: Option<i64>,
    /// Claim attempts only: how often the store found the database busy and retried
    /// before it could write.
    pub busy: Option<i64>,
}

/// How much lease history a store keeps. Either bound may be off; with both on, an
/// event goes when either says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Keep at most this many of the latest events.
    pub max_events: Option<u64>,
    /// Drop events older than this, in milliseconds.
    pub max_age_ms: Option<i64>,
}

impl Retention {
    /// The bound used when none is configured: the last 100,000 events, none older
    /// than 90 days.
    pub const DEFAULT: Retention = Retention {
        max_events: Some(100_000),
        max_age_ms: Some(90 * 86_400_000),
    };

    /// Keep everything.
    pub const ALL: Retention = Retention {
        max_events: None,
        max_age_ms: None,
    };

    /// The first event seq a prune keeps, given the store's oldest and newest seq, the
    /// oldest of the newest `max_events` events (`None` when there are fewer), and the
    /// oldest event young enough for `max_age_ms` (`None` when none is). The newest
    /// event always stays, so a store that numbers rows `max(seq) + 1` never hands out
    /// a seq already seen.
    pub fn keep_from(
        &self,
        oldest: i64,
        newest: i64,
        by_count: Option<i64>,
        by_age: Option<i64>,
    ) -> i64 {
        let mut from = oldest;
        if self.max_events.is_some() {
            from = from.max(by_count.unwrap_or(oldest));
        }
        if self.max_age_ms.is_some() {
            from = from.max(by_age.unwrap_or(newest));
        }
        from.min(newest)
    }

    /// The upper bounds (exclusive) of the slices a prune deletes, oldest first, each
    /// at most `batch` seqs wide, so no one transaction holds the store for long.
    #[doc(hidden)] // for the stores and front ends, not a program (docs/library.md)
    pub fn slices(oldest: i64, keep_from: i64, batch: i64) -> impl Iterator<Item = i64> {
        let step = batch.max(1);
        std::iter::successors(Some(oldest), move |&below| {
            (below < keep_from).then(|| keep_from.min(below.saturating_add(step)))
        })
        .skip(1)
    }

    /// Checks that neither bound would delete everything.
    ///
    /// # Errors
    /// [`Error::Invalid`] for zero events or an age that is not positive.
    pub fn validate(&self) -> Result<(), Error> {
        if self.max_events == Some(0) {
            return Err(Error::invalid(
                "retention",
                "keeping 0 events would erase the history; allowed: a positive count, or all",
            ));
        }
        if self.max_age_ms.is_some_and(|ms| ms <= 0) {
            return Err(Error::invalid(
                "retention",
                "the history's age bound must be positive, e.g. 30d; or all",
            ));
        }
        Ok(())
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention::DEFAULT
    }
}

/// The lease columns of one task row, as a store reads them — inside the write that
/// was refused — to say why. Shared by every store so each explains refusals alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseState {
    /// The row's status.
    pub status: Status,
    /// The lease holder, if the row has one.
    pub assignee: Option<AgentId>,
    /// The lease end, if the row has one.
    pub lock_until: Option<Millis>,
    /// The latest fence number issued for the task.
    pub fence: i64,
    /// The secret of the token issued under `fence`; `None` before the first claim
    /// and for a lease claimed before migration 0005.
    pub secret: Option<String>,
    /// How many dependencies are not done.
    pub waiting_on: i64,
    /// How the lease under `fence` ended, when it did by `done` ([`EventKind::Done`]),
    /// `release` ([`EventKind::Released`]), `reap` or `release --force`; `None` while
    /// it is live, and when an `update` ended it or moved the task since (a different
    /// operation: a retried `done` or `release` must not take it for its own).
    pub ended_by: Option<EventKind>,
}

impl LeaseState {
    /// The holder and lease end, if a lease is live at `now`.
    pub fn live_holder(&self, now: Millis) -> Option<(AgentId, Millis)> {
        match (self.status, &self.assignee, self.lock_until) {
            (Status::InProgress, Some(a), Some(u)) if now < u => Some((a.clone(), u)),
            _ => None,
        }
    }

    /// Why a claim of this row at `now` was refused; `waiting` lists the dependencies
    /// that are not done, and is called only when that is the reason.
    ///
    /// # Errors
    /// Whatever `waiting` returns, and [`Error::Store`] when the row looks claimable
    /// (the store's claim statement and this explanation disagree: a bug).
    #[doc(hidden)] // for the stores and front ends, not a program (docs/library.md)
    pub fn refusal(
        &self,
        task: &TaskId,
        now: Millis,
        waiting: impl FnOnce() -> Result<Vec<TaskId>, Error>,
    ) -> Result<Refusal, Error> {
        if matches!(self.status, Status::Done | Status::Cancelled) {
            return Ok(Refusal::NotClaimable {
                why: Unclaimable::Closed {
                    status: self.status,
                },
            });
        }
        if let Some((by, until)) = self.live_holder(now) {
            return Ok(Refusal::Held { by, until });
        }
        if self.waiting_on > 0 {
            return Ok(Refusal::NotClaimable {
                why: Unclaimable::Waiting { on: waiting()? },
            });
        }
        Err(Error::store(
            format!("claim of {task} matched nothing"),
            "the task looks claimable; this is a bug in tasklease",
        ))
    }

    /// Whether `token` already ended this row's lease by `op` (`Done` or `Released`),
    /// leaving the task in `to`, with nothing since: a retried call that should answer
    /// success and change nothing. A lease reaped, forced, taken over or ended by the
    /// other operation is not a repeat.
    pub fn repeat_of(&self, token: &Token, op: EventKind, to: Status) -> bool {
        token.matches(self.fence, self.secret.as_deref())
            && self.ended_by == Some(op)
            && self.status == to
    }

    /// The token issued under this row's fence, if any (and if the row's secret is
    /// well formed).
    pub fn token(&self) -> Option<Token> {
        (self.fence > 0)
            .then(|| Token::from_parts(self.fence, self.secret.as_deref()).ok())
            .flatten()
    }

    /// The error for `token` presented on this row at `now` and refused.
    /// A token with the current fence but another secret (a guess, or a bare integer
    /// on a lease that has a secret) was never issued: [`LostWhy::Unknown`].
    pub fn lost(&self, task: &TaskId, token: &Token, now: Millis) -> Error {
        let why = if token.fence() <= 0 || token.fence() > self.fence {
            LostWhy::Unknown
        } else if token.fence() < self.fence {
            LostWhy::Stale {
                holder: self.live_holder(now).map(|(a, _)| a),
            }
        } else if !token.matches(self.fence, self.secret.as_deref()) {
            LostWhy::Unknown
        } else {
            LostWhy::Ended {
                status: self.status,
            }
        };
        Error::LeaseLost {
            task: task.clone(),
            token: token.clone(),
            why,
        }
    }
}

/// What a claim retried under `key` answers: the live leases granted under it
/// (`prior`, not empty), in the order of `ids`, when they are on exactly those tasks —
/// or on exactly one task when `ids` is empty (claim-next asks for none by name).
///
/// # Errors
/// [`Error::Invalid`] when the key's leases are on other tasks: a key names one
/// request, and a different request needs a new key.
pub fn retried_grant(
    key: &RequestId,
    mut prior: Vec<Lease>,
    ids: &[TaskId],
) -> Result<Vec<Lease>, Error> {
    let same = if ids.is_empty() {
        prior.len() == 1
    } else {
        prior.len() == ids.len() && ids.iter().all(|id| prior.iter().any(|l| &l.task == id))
    };
    if !same {
        let held: Vec<&str> = prior.iter().map(|l| l.task.as_str()).collect();
        return Err(Error::invalid(
            "request id",
            format!(
                "request id {key} was already used for a claim of {} (still held); a retry \
                 must repeat the same claim, and a new claim needs a new request id",
                held.join(", ")
            ),
        ));
    }
    if !ids.is_empty() {
        prior.sort_by_key(|l| ids.iter().position(|id| *id == l.task));
    }
    Ok(prior)
}

/// Checks the ids of a batch claim: at least one, none repeated.
///
/// # Errors
/// [`Error::Invalid`] naming the problem.
pub fn validate_batch(ids: &[TaskId]) -> Result<(), Error> {
    if ids.is_empty() {
        return Err(Error::invalid(
            "task id",
            "a batch claim needs at least one task id",
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(Error::invalid(
                "task id",
                format!("task {id} is given twice in the batch"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_the_newest_and_slices_the_rest() {
        let both = Retention {
            max_events: Some(3),
            max_age_ms: Some(1000),
        };
        // Ten events, seqs 11..=20; the newest 3 start at 18; the young ones at 15.
        assert_eq!(both.keep_from(11, 20, Some(18), Some(15)), 18);
        assert_eq!(both.keep_from(11, 20, Some(18), Some(19)), 19);
        // Fewer events than the count bound, all young: nothing goes.
        assert_eq!(both.keep_from(11, 12, None, Some(11)), 11);
        // Nothing young enough: all but the newest go.
        assert_eq!(both.keep_from(11, 20, Some(18), None), 20);
        assert_eq!(Retention::ALL.keep_from(11, 20, Some(18), None), 11);
        let s: Vec<i64> = Retention::slices(1, 12_001, 5_000).collect();
        assert_eq!(s, [5_001, 10_001, 12_001]);
        assert_eq!(Retention::slices(7, 7, 5_000).count(), 0);
    }
}
