//! A model of the lease state machine, and a property test that random operation
//! sequences on a real store agree with it.

use std::cell::Cell;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tasklease_core::{
    ClaimOutcome, Clock, Error, EventKind, LeaseDuration, Millis, NewTask, Priority, Refusal,
    ReleaseTo, Status, Store, TaskId, TaskPatch, Token, Unclaimable,
};

use crate::{Fixture, T0, agent};

const TASKS: usize = 5;
const AGENTS: usize = 3;
const LEASE_MS: i64 = 60_000;
/// Dependencies of each task, by index.
const DEPS: [&[usize]; TASKS] = [&[], &[], &[0], &[0, 1], &[]];
const PRIO: [Priority; TASKS] = [
    Priority::Low,
    Priority::High,
    Priority::Critical,
    Priority::Medium,
    Priority::High,
];

#[derive(Clone, Debug)]
enum Op {
    Claim {
        t: usize,
        a: usize,
        with_token: bool,
    },
    ClaimNext {
        a: usize,
    },
    Renew {
        t: usize,
        a: usize,
    },
    Release {
        t: usize,
        a: usize,
    },
    Done {
        t: usize,
        a: usize,
    },
    Reap,
    Force {
        t: usize,
    },
    Advance {
        ms: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..TASKS;
    let a = 0..AGENTS;
    prop_oneof![
        3 => (t.clone(), a.clone(), any::<bool>()).prop_map(|(t, a, with_token)| Op::Claim { t, a, with_token }),
        3 => a.clone().prop_map(|a| Op::ClaimNext { a }),
        2 => (t.clone(), a.clone()).prop_map(|(t, a)| Op::Renew { t, a }),
        1 => (t.clone(), a.clone()).prop_map(|(t, a)| Op::Release { t, a }),
        2 => (t.clone(), a.clone()).prop_map(|(t, a)| Op::Done { t, a }),
        1 => Just(Op::Reap),
        1 => t.prop_map(|t| Op::Force { t }),
        2 => (0i64..90_000).prop_map(|ms| Op::Advance { ms }),
    ]
}

#[derive(Clone, Debug, Default)]
struct MTask {
    status: Option<Status>,
    holder: Option<usize>,
    until: i64,
    fence: i64,
    /// How the lease under `fence` ended, if by its token's done or release: a retry of
    /// the same call by that token succeeds again, changing nothing.
    ended_by: Option<EventKind>,
}

struct Model {
    tasks: Vec<MTask>,
    /// The last token each agent received for each task.
    tokens: [[Option<i64>; TASKS]; AGENTS],
}

impl Model {
    fn status(&self, t: usize) -> Status {
        self.tasks[t].status.unwrap_or(Status::Todo)
    }
    fn waiting(&self, t: usize) -> Vec<usize> {
        DEPS[t]
            .iter()
            .copied()
            .filter(|&d| !self.status(d).satisfies())
            .collect()
    }
    fn live(&self, t: usize, now: i64) -> bool {
        self.status(t) == Status::InProgress && now < self.tasks[t].until
    }
    fn grant(&mut self, t: usize, a: usize, now: i64, keep_fence: bool) {
        let m = &mut self.tasks[t];
        if !keep_fence {
            m.fence += 1;
        }
        m.status = Some(Status::InProgress);
        m.ended_by = None;
        m.holder = Some(a);
        m.until = now + LEASE_MS;
        self.tokens[a][t] = Some(m.fence);
    }
    fn end(&mut self, t: usize, to: Status, by: Option<EventKind>) {
        let m = &mut self.tasks[t];
        m.status = Some(to);
        m.holder = None;
        m.ended_by = by;
    }
}

/// Runs the property test against `f`.
pub fn check(f: &dyn Fixture) {
    let clock = Clock::manual(T0);
    let store = f.open(&clock);
    let round = Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
        round.set(round.get() + 1);
        run_case(&*store, &clock, round.get(), &ops)
    });
    if let Err(e) = result {
        panic!("the store disagrees with the lease model: {e}");
    }
}

fn run_case(s: &dyn Store, clock: &Clock, round: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    let ids: Vec<TaskId> = (0..TASKS)
        .map(|i| TaskId::new(&format!("m{round}-{i}")).unwrap())
        .collect();
    for i in 0..TASKS {
        s.add(&NewTask {
            id: Some(ids[i].clone()),
            title: format!("model task {i}"),
            priority: PRIO[i],
            deps: DEPS[i].iter().map(|&d| ids[d].clone()).collect(),
            ..Default::default()
        })
        .map_err(fail)?;
    }
    let mut m = Model {
        tasks: vec![MTask::default(); TASKS],
        tokens: [[None; TASKS]; AGENTS],
    };
    let lease = LeaseDuration::from_millis(LEASE_MS).unwrap();
    let who = |a: usize| agent(&format!("agent{a}"));
    // The whole token the store handed out for each (task, fence): the model follows
    // fences, the store wants the secret too.
    let mut issued: std::collections::HashMap<(usize, i64), Token> = Default::default();
    for op in ops {
        let now = clock.injected().unwrap();
        match *op {
            Op::Advance { ms } => clock.advance(ms),
            Op::Claim { t, a, with_token } => {
                let token = if with_token { m.tokens[a][t] } else { None };
                let whole = token.and_then(|f| issued.get(&(t, f)).cloned());
                let got = s
                    .claim(&ids[t], lease, whole.as_ref(), &who(a))
                    .map_err(fail)?;
                let st = m.status(t);
                let reclaim = st == Status::InProgress && token == Some(m.tasks[t].fence);
                let free = matches!(st, Status::Todo | Status::Review | Status::Blocked)
                    || (st == Status::InProgress && (!m.live(t, now) || reclaim));
                let waiting = m.waiting(t);
                if free && waiting.is_empty() {
                    m.grant(t, a, now, reclaim);
                    match got {
                        ClaimOutcome::Claimed(l) => {
                            prop_assert_eq!(l.token.fence(), m.tasks[t].fence);
                            issued.insert((t, l.token.fence()), l.token.clone());
                            prop_assert_eq!(l.lock_until, Millis::from_millis(now + LEASE_MS));
                        }
                        ClaimOutcome::Refused(r) => {
                            return Err(TestCaseError::fail(format!("{op:?}: refused {r}")));
                        }
                    }
                } else {
                    let want = if matches!(st, Status::Done | Status::Cancelled) {
                        Refusal::NotClaimable {
                            why: Unclaimable::Closed { status: st },
                        }
                    } else if m.live(t, now) {
                        Refusal::Held {
                            by: who(m.tasks[t].holder.unwrap()),
                            until: Millis::from_millis(m.tasks[t].until),
                        }
                    } else {
                        Refusal::NotClaimable {
                            why: Unclaimable::Waiting {
                                on: waiting.iter().map(|&d| ids[d].clone()).collect(),
                            },
                        }
                    };
                    prop_assert_eq!(got, ClaimOutcome::Refused(want), "{:?}", op);
                }
            }
            Op::ClaimNext { a } => {
                let got = s.claim_next(lease, &who(a)).map_err(fail)?;
                let pick = (0..TASKS)
                    .filter(|&t| {
                        m.waiting(t).is_empty()
                            && (m.status(t) == Status::Todo
                                || (m.status(t) == Status::InProgress && !m.live(t, now)))
                    })
                    .min_by_key(|&t| (PRIO[t].rank(), t));
                match (pick, got) {
                    (None, None) => {}
                    (Some(t), Some(l)) => {
                        m.grant(t, a, now, false);
                        prop_assert_eq!(&l.task, &ids[t]);
                        prop_assert_eq!(l.token.fence(), m.tasks[t].fence);
                        issued.insert((t, l.token.fence()), l.token.clone());
                    }
                    (want, got) => {
                        return Err(TestCaseError::fail(format!(
                            "{op:?}: model picks {want:?}, store gave {got:?}"
                        )));
                    }
                }
            }
            Op::Renew { t, a } | Op::Release { t, a } | Op::Done { t, a } => {
                let Some(token) = m.tokens[a][t] else {
                    continue;
                };
                let valid = m.status(t) == Status::InProgress && m.tasks[t].fence == token;
                let Some(tok) = issued.get(&(t, token)).cloned() else {
                    return Err(TestCaseError::fail(format!(
                        "{op:?}: no token {token} issued"
                    )));
                };
                let w = who(a);
                // A retry of the done or release this very token already made.
                let repeat = |kind: EventKind, to: Status| {
                    m.tasks[t].fence == token
                        && m.tasks[t].ended_by == Some(kind)
                        && m.status(t) == to
                };
                let (repeat, got) = match op {
                    Op::Renew { .. } => (false, s.renew(&ids[t], &tok, lease, &w).map(|_| false)),
                    Op::Release { .. } => (
                        repeat(EventKind::Released, Status::Todo),
                        s.release(&ids[t], &tok, ReleaseTo::Todo, &w)
                            .map(|e| e.repeat),
                    ),
                    _ => (
                        repeat(EventKind::Done, Status::Done),
                        s.done(&ids[t], &tok, &w).map(|e| e.repeat),
                    ),
                };
                match (valid, got) {
                    (true, Ok(false)) => match op {
                        Op::Renew { .. } => m.tasks[t].until = now + LEASE_MS,
                        Op::Release { .. } => {
                            m.end(t, Status::Todo, Some(EventKind::Released));
                        }
                        _ => m.end(t, Status::Done, Some(EventKind::Done)),
                    },
                    (false, Ok(true)) if repeat => {}
                    (false, Err(Error::LeaseLost { .. })) if !repeat => {}
                    (valid, got) => {
                        return Err(TestCaseError::fail(format!(
                            "{op:?}: model says valid={valid}, store gave {got:?}"
                        )));
                    }
                }
            }
            Op::Reap => {
                let got = s.reap(&agent("reaper")).map_err(fail)?;
                let mut mine: Vec<&TaskId> = got
                    .iter()
                    .map(|r| &r.id)
                    .filter(|id| ids.contains(id))
                    .collect();
                mine.sort();
                let mut want = Vec::new();
                for (t, id) in ids.iter().enumerate() {
                    if m.status(t) == Status::InProgress && !m.live(t, now) {
                        m.end(t, Status::Todo, Some(EventKind::Reaped));
                        want.push(id);
                    }
                }
                prop_assert_eq!(mine, want);
            }
            Op::Force { t } => {
                let got = s.release_force(&ids[t], ReleaseTo::Todo, &agent("admin"));
                match (m.status(t) == Status::InProgress, got) {
                    (true, Ok(_)) => m.end(t, Status::Todo, Some(EventKind::Forced)),
                    (false, Err(Error::Invalid { .. })) => {}
                    (leased, got) => {
                        return Err(TestCaseError::fail(format!(
                            "{op:?}: model leased={leased}, store gave {got:?}"
                        )));
                    }
                }
            }
        }
        for (t, id) in ids.iter().enumerate() {
            let row = s.show(id).map_err(fail)?.expect("model task exists");
            prop_assert_eq!(row.status, m.status(t), "task {} after {:?}", t, op);
            prop_assert_eq!(
                row.assignee,
                m.tasks[t].holder.map(who),
                "task {} after {:?}",
                t,
                op
            );
            if row.status == Status::InProgress {
                prop_assert_eq!(row.lock_until, Some(Millis::from_millis(m.tasks[t].until)));
            }
            prop_assert_eq!(row.waiting_on as usize, m.waiting(t).len());
        }
    }
    retire(s, &ids).map_err(fail)
}

/// Cancels a finished case's tasks so later cases' claim-next never sees them.
fn retire(s: &dyn Store, ids: &[TaskId]) -> Result<(), Error> {
    for id in ids {
        let mut row = s.show(id)?.expect("exists");
        if row.status == Status::InProgress {
            row = s.release_force(id, ReleaseTo::Todo, &agent("admin"))?;
        }
        let cancel = TaskPatch {
            status: Some(Status::Cancelled),
            ..Default::default()
        };
        s.update(id, row.version, &cancel, None, &agent("admin"))?;
    }
    Ok(())
}

fn fail(e: Error) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}
