//! What the lease history says: contention on the write lock, how long leases are held,
//! and whether lease lengths fit the work.
//!
//! Everything here is computed from rows the stores already write — the `events` of
//! [`tasklease::Store::log`], each claim's carrying its wait and busy retries — so asking
//! costs the claim path nothing. These are pure functions over a window of events; a
//! lease whose claim fell out of the window is not judged.

use std::collections::HashMap;

use serde::Serialize;

use tasklease::{AgentId, Event, EventKind, Millis, Task, TaskId};

/// Claim attempts in a window of history, and what they cost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Contention {
    /// Claims that were granted (new leases and re-claims).
    pub won: u64,
    /// Claims refused because another agent held the task.
    pub lost: u64,
    /// SQLite busy retries, summed over the attempts.
    pub busy_retries: u64,
    /// Attempts that had to retry at least once.
    pub retried: u64,
    /// Time waited for the write lock, per attempt: median, 99th percentile and
    /// worst, in microseconds (`None` without any attempt that recorded it).
    pub wait_us_p50: Option<i64>,
    /// See `wait_us_p50`.
    pub wait_us_p99: Option<i64>,
    /// See `wait_us_p50`.
    pub wait_us_max: Option<i64>,
}

/// Adds up the claim attempts in `events`.
pub fn contention(events: &[Event]) -> Contention {
    let mut c = Contention::default();
    let mut waits = Vec::new();
    for e in events.iter().filter(|e| e.kind.is_claim()) {
        if e.kind == EventKind::Refused {
            c.lost += 1;
        } else {
            c.won += 1;
        }
        let busy = u64::try_from(e.busy.unwrap_or(0)).unwrap_or(0);
        c.busy_retries += busy;
        c.retried += u64::from(busy > 0);
        waits.extend(e.wait_us);
    }
    waits.sort_unstable();
    c.wait_us_p50 = percentile(&waits, 50);
    c.wait_us_p99 = percentile(&waits, 99);
    c.wait_us_max = waits.last().copied();
    c
}

/// The nearest-rank `p`th percentile of sorted values.
pub fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// How a lease ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The holder finished the task.
    Done,
    /// The holder handed it back.
    Released,
    /// It ran out: reaped, or claimed by another agent after it expired.
    Expired,
    /// An admin ended it (`release --force`).
    Forced,
}

/// One lease, from its claim to its end, as the history tells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hold {
    /// The task.
    pub task: TaskId,
    /// The lease's fence number (the history keeps no secrets).
    pub fence: i64,
    /// Who claimed it.
    pub agent: AgentId,
    /// The lease length it was claimed with.
    pub lease_ms: i64,
    /// When it was claimed.
    pub start: Millis,
    /// How long it was held: to its end, or to when it ran out.
    pub held_ms: i64,
    /// Renewals and re-claims.
    pub renewals: u32,
    /// How it ended.
    pub end: End,
}

/// A lease being followed through the history.
struct Open {
    agent: AgentId,
    fence: i64,
    lease_ms: i64,
    start: Millis,
    /// The last grant (claim, re-claim or renewal) and its length: when it runs out.
    granted_at: Millis,
    granted_ms: i64,
    renewals: u32,
}

impl Open {
    fn expires(&self) -> Millis {
        Millis::from_millis(self.granted_at.as_millis().saturating_add(self.granted_ms))
    }

    fn close(self, task: &TaskId, end: End, at: Millis) -> Hold {
        // An expired lease was held until it ran out, not until someone noticed.
        let until = if end == End::Expired {
            self.expires().min(at)
        } else {
            at
        };
        Hold {
            task: task.clone(),
            fence: self.fence,
            agent: self.agent,
            lease_ms: self.lease_ms,
            start: self.start,
            held_ms: until.since(self.start).max(0),
            renewals: self.renewals,
            end,
        }
    }
}

/// Every lease that both began and ended inside `events` (oldest first).
pub fn holds(events: &[Event]) -> Vec<Hold> {
    let mut open: HashMap<&TaskId, Open> = HashMap::new();
    let mut done = Vec::new();
    for e in events {
        let Some(fence) = e.fence else { continue };
        match e.kind {
            EventKind::Claimed => {
                // A new token on a task whose lease never ended: it ran out and was
                // taken over.
                if let Some(prev) = open.remove(&e.task) {
                    done.push(prev.close(&e.task, End::Expired, e.at));
                }
                let lease_ms = e.lease_ms.unwrap_or(0);
                open.insert(
                    &e.task,
                    Open {
                        agent: e.agent.clone(),
                        fence,
                        lease_ms,
                        start: e.at,
                        granted_at: e.at,
                        granted_ms: lease_ms,
                        renewals: 0,
                    },
                );
            }
            EventKind::Reclaimed | EventKind::Renewed => {
                if let Some(o) = open.get_mut(&e.task).filter(|o| o.fence == fence) {
                    o.renewals += 1;
                    o.granted_at = e.at;
                    o.granted_ms = e.lease_ms.unwrap_or(o.granted_ms);
                }
            }
            EventKind::Done
            | EventKind::Released
            | EventKind::Reaped
            | EventKind::Forced
            | EventKind::Deleted => {
                let end = match e.kind {
                    EventKind::Done => End::Done,
                    EventKind::Released => End::Released,
                    EventKind::Reaped => End::Expired,
                    _ => End::Forced,
                };
                if open.get(&e.task).is_some_and(|o| o.fence == fence)
                    && let Some(o) = open.remove(&e.task)
                {
                    done.push(o.close(&e.task, end, e.at));
                }
            }
            EventKind::Refused => {}
        }
    }
    done
}

/// What the history says about one lease length.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeaseFit {
    /// The lease length, as claimed.
    pub lease_ms: i64,
    /// Finished leases of this length.
    pub leases: u64,
    /// How they ended.
    pub done: u64,
    /// See `done`.
    pub released: u64,
    /// See `done`.
    pub expired: u64,
    /// Of `expired`, the leases never renewed: their holders may simply have needed
    /// longer. (A renewed lease that ran out points at a holder that died, not at the
    /// length.)
    pub expired_unrenewed: u64,
    /// See `done`.
    pub forced: u64,
    /// Leases renewed at least once.
    pub renewed: u64,
    /// How long leases that ended by their holder (done or released) were held:
    /// median, 90th percentile and longest, in milliseconds.
    pub held_ms_p50: Option<i64>,
    /// See `held_ms_p50`.
    pub held_ms_p90: Option<i64>,
    /// See `held_ms_p50`.
    pub held_ms_max: Option<i64>,
    /// The judgement.
    pub verdict: Verdict,
    /// A better lease length, when the verdict is not `fits`.
    pub suggest_ms: Option<i64>,
}

impl LeaseFit {
    /// The verdict in words, with the lease to use instead: what `status` prints and
    /// the board's fleet page shows.
    pub fn advice(&self) -> String {
        let suggest = self
            .suggest_ms
            .map(|ms| {
                tasklease::human_duration(std::time::Duration::from_millis(ms.unsigned_abs()))
            })
            .unwrap_or_default();
        match self.verdict {
            Verdict::TooFew => "too few finished leases to judge".to_owned(),
            Verdict::Fits => "fits the work".to_owned(),
            Verdict::TooShort => format!(
                "too short: {} of {} ran out before their holder finished, never renewed; use \
                 --lease {suggest} or more, or `tasklease run`, which renews",
                self.expired_unrenewed, self.leases
            ),
            Verdict::TooLong => format!(
                "too long: holders finish well within it and never renew, so a crashed agent's \
                 task waits the whole lease; about --lease {suggest} would do"
            ),
        }
    }
}

/// Whether a lease length fits the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Too few finished leases to say.
    TooFew,
    /// Leases run out before their holders finish.
    TooShort,
    /// Holders finish long before their leases would run out and never renew: a
    /// crashed agent's task stays locked far longer than the work takes.
    TooLong,
    /// Nothing to change.
    Fits,
}

/// Fewer finished leases than this are not judged.
pub const MIN_LEASES: u64 = 3;

/// Judges each lease length seen in `holds`, shortest first.
///
/// *Too short*: at least a fifth of the leases ran out (reaped, or taken over after
/// expiring) without ever being renewed — suggest twice the 90th-percentile hold, and
/// at least twice the lease. *Too long*: no lease ran out or was renewed, the lease is 2
/// minutes or more, and 90 % of holds took under a quarter of it — suggest three times
/// the 90th-percentile hold, at least a minute. Suggestions are rounded up to a whole
/// second, minute or hour.
pub fn fit(holds: &[Hold]) -> Vec<LeaseFit> {
    let mut by_len: Vec<i64> = holds.iter().map(|h| h.lease_ms).collect();
    by_len.sort_unstable();
    by_len.dedup();
    by_len
        .into_iter()
        .map(|len| judge(len, holds.iter().filter(|h| h.lease_ms == len)))
        .collect()
}

fn judge<'a>(lease_ms: i64, holds: impl Iterator<Item = &'a Hold>) -> LeaseFit {
    let mut f = LeaseFit {
        lease_ms,
        leases: 0,
        done: 0,
        released: 0,
        expired: 0,
        expired_unrenewed: 0,
        forced: 0,
        renewed: 0,
        held_ms_p50: None,
        held_ms_p90: None,
        held_ms_max: None,
        verdict: Verdict::TooFew,
        suggest_ms: None,
    };
    let mut held = Vec::new();
    for h in holds {
        f.leases += 1;
        f.renewed += u64::from(h.renewals > 0);
        match h.end {
            End::Done => f.done += 1,
            End::Released => f.released += 1,
            End::Expired => {
                f.expired += 1;
                f.expired_unrenewed += u64::from(h.renewals == 0);
            }
            End::Forced => f.forced += 1,
        }
        if matches!(h.end, End::Done | End::Released) {
            held.push(h.held_ms);
        }
    }
    held.sort_unstable();
    f.held_ms_p50 = percentile(&held, 50);
    f.held_ms_p90 = percentile(&held, 90);
    f.held_ms_max = held.last().copied();
    if f.leases < MIN_LEASES {
        return f;
    }
    let p90 = f.held_ms_p90.unwrap_or(0);
    if f.expired_unrenewed * 5 >= f.leases {
        f.verdict = Verdict::TooShort;
        f.suggest_ms = Some(round_up((2 * p90).max(2 * lease_ms)));
    } else if f.expired == 0 && f.renewed == 0 && lease_ms >= 120_000 && p90 * 4 < lease_ms {
        f.verdict = Verdict::TooLong;
        f.suggest_ms = Some(round_up((3 * p90).max(60_000)));
    } else {
        f.verdict = Verdict::Fits;
    }
    f
}

/// `ms` rounded up to a length people write: whole seconds under a minute, whole
/// minutes under an hour, whole hours above.
fn round_up(ms: i64) -> i64 {
    let unit = if ms < 60_000 {
        1_000
    } else if ms < 3_600_000 {
        60_000
    } else {
        3_600_000
    };
    ((ms.max(1) + unit - 1) / unit) * unit
}

/// Where a live lease stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Plenty of time left.
    Live,
    /// Less than a third of its length left: a holder renewing on time (as
    /// `tasklease run` does, every third) would have renewed by now.
    NearExpiry,
    /// Ran out; anyone may claim the task.
    Expired,
}

/// A task under a lease, judged at some instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Held {
    /// The task.
    pub id: TaskId,
    /// Its holder.
    pub holder: AgentId,
    /// When the lease runs out.
    pub lock_until: Millis,
    /// Time left (negative: expired that long ago), in milliseconds.
    pub left_ms: i64,
    /// The length of the latest grant, if the history still has it.
    pub lease_ms: Option<i64>,
    /// How long the holder has had the task, in milliseconds.
    pub held_ms: i64,
    /// Where it stands.
    pub standing: Standing,
}

/// When no grant is in the history, a lease is near expiry with less than this left.
pub const NEAR_EXPIRY_MS: i64 = 60_000;

/// Judges each leased task in `tasks` at `now`, using `events` for the length of its
/// latest grant. Tasks without a lease are skipped.
pub fn held(tasks: &[Task], events: &[Event], now: Millis) -> Vec<Held> {
    let mut granted: HashMap<&TaskId, i64> = HashMap::new();
    for e in events {
        if let (Some(ms), true) = (
            e.lease_ms,
            matches!(
                e.kind,
                EventKind::Claimed | EventKind::Reclaimed | EventKind::Renewed
            ),
        ) {
            granted.insert(&e.task, ms);
        }
    }
    tasks
        .iter()
        .filter_map(|t| {
            let (holder, until, since) = (t.assignee.clone()?, t.lock_until?, t.assigned_at?);
            let left_ms = until.since(now);
            let lease_ms = granted.get(&t.id).copied();
            let near = lease_ms.map_or(NEAR_EXPIRY_MS, |l| l / 3);
            let standing = if left_ms <= 0 {
                Standing::Expired
            } else if left_ms < near {
                Standing::NearExpiry
            } else {
                Standing::Live
            };
            Some(Held {
                id: t.id.clone(),
                holder,
                lock_until: until,
                left_ms,
                lease_ms,
                held_ms: now.since(since).max(0),
                standing,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: i64, at: i64, task: &str, kind: EventKind, token: i64) -> Event {
        Event {
            seq,
            at: Millis::from_millis(at),
            task: TaskId::new(task).unwrap(),
            kind,
            agent: AgentId::new("a").unwrap(),
            fence: (kind != EventKind::Refused).then_some(token),
            detail: None,
            lease_ms: None,
            wait_us: None,
            busy: None,
            reason: None,
        }
    }

    fn grant(mut e: Event, lease_ms: i64) -> Event {
        e.lease_ms = Some(lease_ms);
        e
    }

    fn waited(mut e: Event, us: i64, busy: i64) -> Event {
        e.wait_us = Some(us);
        e.busy = Some(busy);
        e
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[1, 2], 50), Some(1));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn contention_counts_claim_attempts_only() {
        use EventKind::*;
        let events = vec![
            waited(grant(ev(1, 0, "t", Claimed, 1), 1000), 10, 0),
            waited(ev(2, 1, "t", Refused, 0), 5_000, 3),
            waited(ev(3, 2, "t", Refused, 0), 200, 1),
            ev(4, 3, "t", Renewed, 1),
            waited(grant(ev(5, 4, "u", Claimed, 1), 1000), 30, 0),
        ];
        let c = contention(&events);
        assert_eq!((c.won, c.lost, c.busy_retries, c.retried), (2, 2, 4, 2));
        assert_eq!(c.wait_us_p50, Some(30));
        assert_eq!(c.wait_us_max, Some(5_000));
        assert_eq!(c.wait_us_p99, Some(5_000));
    }

    #[test]
    fn holds_follow_each_token_to_its_end() {
        use EventKind::*;
        let events = vec![
            ev(0, 0, "old", Done, 9), // its claim fell out of the window
            grant(ev(1, 0, "t", Claimed, 1), 1000),
            grant(ev(2, 300, "t", Renewed, 1), 1000),
            ev(3, 900, "t", Done, 1),
            grant(ev(4, 1000, "u", Claimed, 1), 1000),
            // u ran out at 2000 and was taken over at 5000.
            grant(ev(5, 5000, "u", Claimed, 2), 1000),
            ev(6, 5500, "u", Forced, 2),
            grant(ev(7, 6000, "v", Claimed, 1), 500),
            ev(8, 9000, "v", Reaped, 1),
            grant(ev(9, 9500, "w", Claimed, 1), 500), // still open
        ];
        let h = holds(&events);
        let got: Vec<(&str, i64, i64, u32, End)> = h
            .iter()
            .map(|h| (h.task.as_str(), h.fence, h.held_ms, h.renewals, h.end))
            .collect();
        assert_eq!(
            got,
            [
                ("t", 1, 900, 1, End::Done),
                ("u", 1, 1000, 0, End::Expired),
                ("u", 2, 500, 0, End::Forced),
                ("v", 1, 500, 0, End::Expired),
            ]
        );
    }

    fn hold(lease_ms: i64, held_ms: i64, renewals: u32, end: End) -> Hold {
        Hold {
            task: TaskId::new("t").unwrap(),
            fence: 1,
            agent: AgentId::new("a").unwrap(),
            lease_ms,
            start: Millis::from_millis(0),
            held_ms,
            renewals,
            end,
        }
    }

    #[test]
    fn lease_lengths_are_judged() {
        let min = 60_000;
        let hs = vec![
            // 30 s leases keep running out.
            hold(30_000, 20_000, 0, End::Done),
            hold(30_000, 25_500, 0, End::Done),
            hold(30_000, 30_000, 0, End::Expired),
            // 2 m leases: renewed, then ran out — the holders died; not the length.
            hold(120_000, 300_000, 2, End::Expired),
            hold(120_000, 60_000, 0, End::Done),
            hold(120_000, 70_000, 1, End::Done),
            // 1 h leases held for a minute or two, never renewed.
            hold(60 * min, min, 0, End::Done),
            hold(60 * min, 2 * min, 0, End::Done),
            hold(60 * min, 90_000, 0, End::Released),
            // 5 m leases renewed by `run`: long holds are fine.
            hold(5 * min, 30 * min, 9, End::Done),
            hold(5 * min, 10 * min, 3, End::Done),
            hold(5 * min, 20 * min, 6, End::Done),
            // 10 m: not enough to say.
            hold(10 * min, min, 0, End::Done),
        ];
        let f = fit(&hs);
        let v: Vec<(i64, Verdict, Option<i64>)> = f
            .iter()
            .map(|f| (f.lease_ms, f.verdict, f.suggest_ms))
            .collect();
        assert_eq!(
            v,
            [
                (30_000, Verdict::TooShort, Some(60_000)),
                (2 * min, Verdict::Fits, None),
                (5 * min, Verdict::Fits, None),
                (10 * min, Verdict::TooFew, None),
                (60 * min, Verdict::TooLong, Some(6 * min)),
            ]
        );
        assert_eq!((f[0].done, f[0].expired), (2, 1));
        assert_eq!((f[1].expired, f[1].expired_unrenewed), (1, 0));
        assert_eq!(f[4].held_ms_p90, Some(2 * min));
    }

    #[test]
    fn suggestions_are_round() {
        assert_eq!(round_up(4_056), 5_000);
        assert_eq!(round_up(61_000), 120_000);
        assert_eq!(round_up(3_600_001), 7_200_000);
        assert_eq!(round_up(0), 1_000);
    }

    #[test]
    fn held_leases_are_judged_against_their_latest_grant() {
        let task = |id: &str, until: i64| Task {
            id: TaskId::new(id).unwrap(),
            title: id.into(),
            description: String::new(),
            status: tasklease::Status::InProgress,
            priority: tasklease::Priority::Medium,
            tags: vec![],
            deps: vec![],
            waiting_on: 0,
            parent: None,
            version: tasklease::Version::FIRST,
            assignee: Some(AgentId::new("a").unwrap()),
            assigned_at: Some(Millis::from_millis(0)),
            lock_until: Some(Millis::from_millis(until)),
            attempts: 0,
            created_at: Millis::from_millis(0),
            updated_at: Millis::from_millis(0),
        };
        let events = vec![
            grant(ev(1, 0, "live", EventKind::Claimed, 1), 9_000),
            grant(ev(2, 0, "near", EventKind::Claimed, 1), 9_000),
            grant(ev(3, 0, "gone", EventKind::Claimed, 1), 9_000),
        ];
        let tasks = [
            task("live", 10_000 + 5_000),
            task("near", 10_000 + 2_000),
            task("gone", 10_000 - 1),
            task("unknown", 10_000 + 30_000),
        ];
        let h = held(&tasks, &events, Millis::from_millis(10_000));
        let s: Vec<(&str, Standing)> = h.iter().map(|h| (h.id.as_str(), h.standing)).collect();
        assert_eq!(
            s,
            [
                ("live", Standing::Live),
                ("near", Standing::NearExpiry),
                ("gone", Standing::Expired),
                ("unknown", Standing::NearExpiry),
            ]
        );
        assert_eq!(h[2].left_ms, -1);
        assert_eq!(h[0].held_ms, 10_000);
    }
}
