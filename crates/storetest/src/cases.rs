//! The cases. Each takes a fresh fixture and panics on a broken contract.

use std::sync::{Arc, Barrier};

use tasklease_core::{
    BatchOutcome, ClaimOutcome, Clock, Error, EventKind, Lease, LeaseDuration, ListFilter, LostWhy,
    Millis, NewTask, Priority, Reason, Refusal, ReleaseTo, RequestId, Retention, Status, Store,
    Tag, TaskId, TaskPatch, Token, Unclaimable, Version,
};

use crate::{Fixture, T0, agent};

/// The lease used where its length does not matter.
const LEASE: LeaseDuration = LeaseDuration::DEFAULT;

fn minutes(n: i64) -> LeaseDuration {
    LeaseDuration::from_millis(n * 60_000).expect("valid lease")
}

fn id(s: &str) -> TaskId {
    TaskId::new(s).expect("valid test id")
}

fn setup(f: &dyn Fixture) -> (Box<dyn Store>, Clock) {
    let clock = Clock::manual(T0);
    (f.open(&clock), clock)
}

fn add(s: &dyn Store, name: &str, prio: Priority, deps: &[&str]) -> TaskId {
    let t = s
        .add(&NewTask {
            id: Some(id(name)),
            title: format!("task {name}"),
            priority: prio,
            deps: deps.iter().map(|d| id(d)).collect(),
            ..Default::default()
        })
        .expect("add");
    t.id
}

fn claimed(o: ClaimOutcome) -> Lease {
    match o {
        ClaimOutcome::Claimed(l) => l,
        ClaimOutcome::Refused(r) => panic!("expected a claim, got refusal: {r}"),
    }
}

fn refused(o: ClaimOutcome) -> Refusal {
    match o {
        ClaimOutcome::Refused(r) => r,
        ClaimOutcome::Claimed(l) => panic!("expected a refusal, got a claim: {l:?}"),
    }
}

fn status(s: &dyn Store, t: &TaskId) -> Status {
    s.show(t).expect("show").expect("task exists").status
}

fn count(s: &dyn Store) -> usize {
    s.list(&ListFilter::default()).expect("list").len()
}

/// A task added comes back with every field as given and defaults for the rest.
pub fn add_and_show(f: &dyn Fixture) {
    let (s, _) = setup(f);
    add(&*s, "dep", Priority::Low, &[]);
    let t = s
        .add(&NewTask {
            id: Some(id("A-1")),
            title: "write the parser".into(),
            description: "line one\nline two".into(),
            priority: Priority::High,
            tags: vec![Tag::new("backend").unwrap(), Tag::new("p:x/y").unwrap()],
            deps: vec![id("dep")],
            parent: None,
        })
        .unwrap();
    assert_eq!(t.id, id("A-1"));
    assert_eq!(t.title, "write the parser");
    assert_eq!(t.description, "line one\nline two");
    assert_eq!(t.status, Status::Todo);
    assert_eq!(t.priority, Priority::High);
    assert_eq!(t.tags.len(), 2);
    assert_eq!(t.deps, vec![id("dep")]);
    assert_eq!(t.waiting_on, 1);
    assert_eq!(t.version.get(), 1);
    assert_eq!(t.assignee, None);
    assert_eq!(t.lock_until, None);
    assert_eq!(t.created_at, T0);
    assert_eq!(s.show(&id("A-1")).unwrap(), Some(t));
    assert_eq!(s.show(&id("nope")).unwrap(), None);
}

/// Tasks without an id get `T-<n>`, skipping ids already taken.
pub fn add_generates_ids(f: &dyn Fixture) {
    let (s, _) = setup(f);
    let new = |title: &str| NewTask {
        title: title.into(),
        ..Default::default()
    };
    assert_eq!(s.add(&new("a")).unwrap().id, id("T-1"));
    add(&*s, "T-3", Priority::Medium, &[]);
    assert_eq!(s.add(&new("b")).unwrap().id, id("T-4"));
    add(&*s, "T-5", Priority::Medium, &[]);
    assert_eq!(s.add(&new("c")).unwrap().id, id("T-6"));
}

/// Bad input is refused with a clear error and changes nothing.
pub fn add_refuses_bad_input(f: &dyn Fixture) {
    let (s, _) = setup(f);
    add(&*s, "a", Priority::Medium, &[]);
    let dup = s.add(&NewTask {
        id: Some(id("a")),
        title: "again".into(),
        ..Default::default()
    });
    assert!(matches!(dup, Err(Error::Exists(_))), "{dup:?}");
    let bad_dep = s.add(&NewTask {
        id: Some(id("b")),
        title: "x".into(),
        deps: vec![id("a"), id("missing")],
        ..Default::default()
    });
    match bad_dep {
        Err(Error::Invalid { message, .. }) => assert!(message.contains("missing"), "{message}"),
        other => panic!("expected invalid dependency, got {other:?}"),
    }
    let empty = s.add(&NewTask {
        title: "  ".into(),
        ..Default::default()
    });
    assert!(matches!(empty, Err(Error::Invalid { .. })), "{empty:?}");
    assert_eq!(count(&*s), 1, "refused adds must leave nothing behind");
    assert!(s.show(&id("b")).unwrap().is_none());
}

/// A claim grants a lease until now + duration, and the row shows the holder.
pub fn claim_grants_lease(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    clock.advance(1000);
    let l = claimed(s.claim(&t, minutes(5), None, &agent("a")).unwrap());
    assert_eq!(l.task, t);
    assert_eq!(l.agent, agent("a"));
    assert!(l.token.fence() >= 1);
    assert_eq!(l.assigned_at, Millis::from_millis(T0.as_millis() + 1000));
    assert_eq!(
        l.lock_until,
        Millis::from_millis(T0.as_millis() + 1000 + 300_000)
    );
    let row = s.show(&t).unwrap().unwrap();
    assert_eq!(row.status, Status::InProgress);
    assert_eq!(row.assignee, Some(agent("a")));
    assert_eq!(row.lock_until, Some(l.lock_until));
    assert_eq!(row.version, l.version);
    assert!(row.version.get() > 1, "a claim bumps the version");
    assert!(row.is_leased_at(Millis::from_millis(T0.as_millis() + 2000)));
}

/// Held, not found, closed and waiting are each reported as such.
pub fn claim_refusals(f: &dyn Fixture) {
    let (s, _) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let l = claimed(s.claim(&t, LEASE, None, &agent("a")).unwrap());
    assert_eq!(
        refused(s.claim(&t, LEASE, None, &agent("b")).unwrap()),
        Refusal::Held {
            by: agent("a"),
            until: l.lock_until
        }
    );
    // The holder itself, without its token, is told it holds the task.
    assert!(matches!(
        refused(s.claim(&t, LEASE, None, &agent("a")).unwrap()),
        Refusal::Held { .. }
    ));
    assert_eq!(
        refused(s.claim(&id("ghost"), LEASE, None, &agent("b")).unwrap()),
        Refusal::NotFound
    );
    s.done(&t, &l.token, &agent("a")).unwrap();
    assert_eq!(
        refused(s.claim(&t, LEASE, None, &agent("b")).unwrap()),
        Refusal::NotClaimable {
            why: Unclaimable::Closed {
                status: Status::Done
            }
        }
    );
    let c = add(&*s, "c", Priority::Medium, &[]);
    let v = s.show(&c).unwrap().unwrap().version;
    let patch = TaskPatch {
        status: Some(Status::Cancelled),
        ..Default::default()
    };
    s.update(&c, v, &patch, None, &agent("admin")).unwrap();
    assert_eq!(
        refused(s.claim(&c, LEASE, None, &agent("b")).unwrap()),
        Refusal::NotClaimable {
            why: Unclaimable::Closed {
                status: Status::Cancelled
            }
        }
    );
    add(&*s, "d1", Priority::Medium, &[]);
    add(&*s, "d2", Priority::Medium, &[]);
    let w = add(&*s, "w", Priority::Medium, &["d1", "t", "d2"]);
    assert_eq!(
        refused(s.claim(&w, LEASE, None, &agent("b")).unwrap()),
        Refusal::NotClaimable {
            why: Unclaimable::Waiting {
                on: vec![id("d1"), id("d2")]
            }
        }
    );
}

/// The holder presenting its token re-claims: the lease grows, the token stays.
pub fn reclaim_with_token(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let l1 = claimed(s.claim(&t, minutes(1), None, &agent("a")).unwrap());
    clock.advance(30_000);
    let l2 = claimed(
        s.claim(&t, minutes(10), Some(&l1.token), &agent("a"))
            .unwrap(),
    );
    assert_eq!(l2.token, l1.token);
    assert_eq!(l2.assigned_at, l1.assigned_at);
    assert_eq!(
        l2.lock_until,
        Millis::from_millis(T0.as_millis() + 30_000 + 600_000)
    );
    // A wrong token is not a re-claim.
    assert!(matches!(
        refused(
            s.claim(
                &t,
                minutes(1),
                Some(&Token::legacy(l1.token.fence() + 7)),
                &agent("a")
            )
            .unwrap()
        ),
        Refusal::Held { .. }
    ));
}

/// A token the task never issued makes a claim of a free task a new claim — a new
/// token and one `claimed` event — even when the new token comes out equal to it.
pub fn claim_with_an_unissued_token(f: &dyn Fixture) {
    let (s, _clock) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let l = claimed(
        s.claim(&t, LEASE, Some(&Token::legacy(1)), &agent("a"))
            .unwrap(),
    );
    assert_eq!(l.token.fence(), 1);
    assert!(l.token.secret().is_some(), "a new lease gets a secret");
    s.release(&t, &l.token, ReleaseTo::Todo, &agent("a"))
        .unwrap();
    let l2 = claimed(
        s.claim(&t, LEASE, Some(&Token::legacy(2)), &agent("a"))
            .unwrap(),
    );
    assert_eq!(l2.token.fence(), 2);
    use EventKind::*;
    let kinds: Vec<(EventKind, Option<i64>)> = s
        .log(Some(&t), 100)
        .unwrap()
        .iter()
        .map(|e| (e.kind, e.fence))
        .collect();
    assert_eq!(
        kinds,
        [(Claimed, Some(1)), (Released, Some(1)), (Claimed, Some(2))]
    );
}

/// An expired lease is free to anyone, with a larger token; the old token is stale.
pub fn expiry_lets_another_claim(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let a = claimed(s.claim(&t, minutes(1), None, &agent("a")).unwrap());
    clock.advance(59_999);
    assert!(matches!(
        refused(s.claim(&t, LEASE, None, &agent("b")).unwrap()),
        Refusal::Held { .. }
    ));
    clock.advance(1); // now == lock_until: the lease is over
    let b = claimed(s.claim(&t, LEASE, None, &agent("b")).unwrap());
    assert!(b.token.fence() > a.token.fence());
    assert_eq!(b.agent, agent("b"));
    let row = s.show(&t).unwrap().unwrap();
    assert_eq!(row.assignee, Some(agent("b")));
    assert_eq!(row.attempts, 1, "the lapsed lease counts as an attempt");
    match s.done(&t, &a.token, &agent("a")) {
        Err(Error::LeaseLost {
            why: LostWhy::Stale { holder },
            ..
        }) => assert_eq!(holder, Some(agent("b"))),
        other => panic!("late done with a stale token must be refused, got {other:?}"),
    }
    assert_eq!(status(&*s, &t), Status::InProgress);
}

/// Tokens strictly increase over a task's life, whatever ended each lease.
pub fn tokens_increase_per_task(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let mut last = 0;
    let mut next = |s: &dyn Store| {
        let l = claimed(s.claim(&t, minutes(1), None, &agent("a")).unwrap());
        assert!(l.token.fence() > last, "{} after {last}", l.token);
        last = l.token.fence();
        l
    };
    let l = next(&*s);
    s.release(&t, &l.token, ReleaseTo::Todo, &agent("a"))
        .unwrap();
    next(&*s);
    clock.advance(120_000);
    let l = next(&*s);
    s.release_force(&t, ReleaseTo::Todo, &agent("admin"))
        .unwrap();
    let _ = l;
    next(&*s);
    clock.advance(120_000);
    s.reap(&agent("reaper")).unwrap();
    let l = next(&*s);
    s.release(&t, &l.token, ReleaseTo::Blocked, &agent("a"))
        .unwrap();
    next(&*s);
}

/// Renew moves the end to now + duration, and works after expiry if nobody claimed.
pub fn renew_extends(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let l = claimed(s.claim(&t, minutes(1), None, &agent("a")).unwrap());
    clock.advance(50_000);
    let r = s.renew(&t, &l.token, minutes(2), &agent("a")).unwrap();
    assert_eq!(r.token, l.token);
    assert_eq!(
        r.lock_until,
        Millis::from_millis(T0.as_millis() + 50_000 + 120_000)
    );
    assert!(r.version > l.version);
    clock.advance(500_000); // expired, but nobody took it
    let r2 = s.renew(&t, &l.token, minutes(1), &agent("a")).unwrap();
    assert_eq!(
        r2.lock_until,
        Millis::from_millis(T0.as_millis() + 550_000 + 60_000)
    );
    assert!(matches!(
        refused(s.claim(&t, LEASE, None, &agent("b")).unwrap()),
        Refusal::Held { .. }
    ));
}

/// Release ends the lease in the status asked for.
pub fn release_hands_back(f: &dyn Fixture) {
    let (s, _) = setup(f);
    for (name, to) in [
        ("a", ReleaseTo::Todo),
        ("b", ReleaseTo::Review),
        ("c", ReleaseTo::Blocked),
    ] {
        let t = add(&*s, name, Priority::Medium, &[]);
        let l = claimed(s.claim(&t, LEASE, None, &agent("x")).unwrap());
        let row = s.release(&t, &l.token, to, &agent("x")).unwrap();
        assert_eq!(row.task.status, to.status());
        assert_eq!(row.task.assignee, None);
        assert_eq!(row.task.lock_until, None);
        assert_eq!(row.task.assigned_at, None);
        // Released to any of these, it can be claimed again by id.
        let again = claimed(s.claim(&t, LEASE, None, &agent("y")).unwrap());
        assert!(again.token.fence() > l.token.fence());
    }
}

/// Done finishes the task and makes dependants ready.
pub fn done_unblocks_dependants(f: &dyn Fixture) {
    let (s, _) = setup(f);
    let a = add(&*s, "a", Priority::Low, &[]);
    let b = add(&*s, "b", Priority::Low, &[]);
    let c = add(&*s, "c", Priority::Critical, &["a", "b"]);
    let la = claimed(s.claim(&a, LEASE, None, &agent("x")).unwrap());
    let row = s.done(&a, &la.token, &agent("x")).unwrap();
    assert_eq!(row.task.status, Status::Done);
    assert_eq!(row.task.assignee, None);
    assert_eq!(s.show(&c).unwrap().unwrap().waiting_on, 1);
    let lb = claimed(s.claim(&b, LEASE, None, &agent("x")).unwrap());
    s.done(&b, &lb.token, &agent("x")).unwrap();
    assert_eq!(s.show(&c).unwrap().unwrap().waiting_on, 0);
    let next = s
        .claim_next(LEASE, &agent("y"))
        .unwrap()
        .expect("c is ready");
    assert_eq!(next.task, c);
    // Re-opening a dependency blocks the dependant again.
    let v = s.show(&a).unwrap().unwrap().version;
    let reopen = TaskPatch {
        status: Some(Status::Todo),
        ..Default::default()
    };
    s.update(&a, v, &reopen, None, &agent("admin")).unwrap();
    assert_eq!(s.show(&c).unwrap().unwrap().waiting_on, 1);
}

/// `release` and `done` with a reason record it on their history row; a repeat
/// records nothing; other events carry none.
pub fn release_and_done_record_their_reason(f: &dyn Fixture) {
    let (s, _clock) = setup(f);
    let (a, b) = (
        add(&*s, "a", Priority::Medium, &[]),
        add(&*s, "b", Priority::Medium, &[]),
    );
    let who = agent("x");
    let why = Reason::new("blocked on the schema review").unwrap();
    let la = claimed(s.claim(&a, LEASE, None, &who).unwrap());
    s.release_with_reason(&a, &la.token, ReleaseTo::Blocked, Some(&why), &who)
        .unwrap();
    let how = Reason::new("parser rewritten; tests green").unwrap();
    let lb = claimed(s.claim(&b, LEASE, None, &who).unwrap());
    s.done_with_reason(&b, &lb.token, Some(&how), &who).unwrap();
    let again = s.done_with_reason(&b, &lb.token, Some(&why), &who).unwrap();
    assert!(again.repeat);
    let reasons = |t: &TaskId| -> Vec<(EventKind, Option<String>)> {
        s.log(Some(t), 100)
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.reason))
            .collect()
    };
    assert_eq!(
        reasons(&a),
        [
            (EventKind::Claimed, None),
            (EventKind::Released, Some(why.as_str().to_owned()))
        ]
    );
    assert_eq!(
        reasons(&b),
        [
            (EventKind::Claimed, None),
            (EventKind::Done, Some(how.as_str().to_owned()))
        ],
        "a repeat writes no row and keeps the first reason"
    );
}

/// `mine` lists exactly the caller's live leases, with their whole tokens, oldest
/// claim first: what an agent that lost its context needs to carry on.
pub fn mine_lists_live_leases_with_tokens(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    for t in ["t1", "t2", "t3"] {
        add(&*s, t, Priority::Medium, &[]);
    }
    let (a, b) = (agent("a"), agent("b"));
    assert!(s.mine(&a).unwrap().is_empty());
    let l1 = claimed(s.claim(&id("t1"), minutes(1), None, &a).unwrap());
    clock.advance(10);
    let l2 = claimed(s.claim(&id("t2"), minutes(5), None, &a).unwrap());
    let l3 = claimed(s.claim(&id("t3"), minutes(5), None, &b).unwrap());
    let mine = s.mine(&a).unwrap();
    assert_eq!(mine, [l1.clone(), l2.clone()]);
    assert_eq!(s.mine(&b).unwrap(), [l3]);
    // The tokens it returns work.
    s.done(&id("t1"), &mine[0].token, &a).unwrap();
    assert_eq!(s.mine(&a).unwrap(), std::slice::from_ref(&l2));
    // A renewal shows; an expired lease is no longer the caller's.
    let renewed = s.renew(&id("t2"), &l2.token, minutes(2), &a).unwrap();
    assert_eq!(s.mine(&a).unwrap()[0].lock_until, renewed.lock_until);
    clock.advance(3 * 60_000);
    assert!(s.mine(&a).unwrap().is_empty());
}

/// A token is a bearer secret: the right fence with a wrong secret, or the bare fence
/// number, is refused by every verb that takes a token — as a token never issued
/// (`lease_lost`) — and changes nothing; each new lease gets a new secret, and the
/// holder's whole token keeps working.
pub fn a_guessed_token_is_refused(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let l = claimed(s.claim(&t, minutes(1), None, &agent("a")).unwrap());
    let secret = l
        .token
        .secret()
        .expect("a new lease has a secret")
        .to_owned();
    assert!(secret.len() >= 16, "at least 64 random bits: {secret}");
    let mut other = secret.clone().into_bytes();
    other[0] = if other[0] == b'a' { b'b' } else { b'a' };
    let wrong_secret: Token = format!("{}.{}", l.token.fence(), String::from_utf8(other).unwrap())
        .parse()
        .unwrap();
    let bare = Token::legacy(l.token.fence());
    let before = s.show(&t).unwrap().unwrap();
    let who = agent("mallory");
    for guess in [&wrong_secret, &bare] {
        let patch = TaskPatch {
            title: Some("hijacked".into()),
            ..Default::default()
        };
        let attempts: [(&str, Result<(), Error>); 4] = [
            ("renew", s.renew(&t, guess, LEASE, &who).map(drop)),
            (
                "release",
                s.release(&t, guess, ReleaseTo::Todo, &who).map(drop),
            ),
            ("done", s.done(&t, guess, &who).map(drop)),
            (
                "update",
                s.update(&t, before.version, &patch, Some(guess), &who)
                    .map(drop),
            ),
        ];
        for (op, r) in attempts {
            match r {
                Err(Error::LeaseLost {
                    why: LostWhy::Unknown,
                    ..
                }) => {}
                other => panic!("{op} with guessed token {guess:?}: {other:?}"),
            }
        }
        // Claiming with it is no re-claim: the task is held.
        assert!(matches!(
            refused(s.claim(&t, LEASE, Some(guess), &who).unwrap()),
            Refusal::Held { .. }
        ));
    }
    let after = s.show(&t).unwrap().unwrap();
    assert_eq!(after, before, "refusals change nothing");
    // The holder's token works; a retried done by it is a repeat, a guess is not.
    s.renew(&t, &l.token, LEASE, &agent("a")).unwrap();
    s.done(&t, &l.token, &agent("a")).unwrap();
    assert!(s.done(&t, &l.token, &agent("a")).unwrap().repeat);
    assert!(matches!(
        s.done(&t, &wrong_secret, &who),
        Err(Error::LeaseLost {
            why: LostWhy::Unknown,
            ..
        })
    ));
    // Every new lease has its own secret.
    let u = add(&*s, "u", Priority::Medium, &[]);
    let first = claimed(s.claim(&u, minutes(1), None, &agent("a")).unwrap());
    clock.advance(61_000);
    let second = claimed(s.claim(&u, minutes(1), None, &agent("a")).unwrap());
    assert_eq!(second.token.fence(), first.token.fence() + 1);
    assert_ne!(second.token.secret(), first.token.secret());
    let next = s.claim_next(LEASE, &agent("b")).unwrap();
    assert!(next.is_none_or(|n| n.token.secret().is_some()));
}

/// A token that is stale, unknown, or whose lease ended is refused by renew, release
/// and done, and nothing changes.
pub fn stale_token_refused_everywhere(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let old = claimed(s.claim(&t, minutes(1), None, &agent("a")).unwrap());
    clock.advance(61_000);
    let new = claimed(s.claim(&t, minutes(1), None, &agent("b")).unwrap());
    let before = s.show(&t).unwrap().unwrap();
    let who = agent("a");
    let attempts: [(&str, Result<(), Error>); 3] = [
        ("renew", s.renew(&t, &old.token, LEASE, &who).map(drop)),
        (
            "release",
            s.release(&t, &old.token, ReleaseTo::Todo, &who).map(drop),
        ),
        ("done", s.done(&t, &old.token, &who).map(drop)),
    ];
    for (op, r) in attempts {
        match r {
            Err(Error::LeaseLost {
                why: LostWhy::Stale { .. },
                token,
                ..
            }) => assert_eq!(token, old.token, "{op}"),
            other => panic!("{op} with a stale token: {other:?}"),
        }
    }
    let unknown = Token::legacy(new.token.fence() + 100);
    assert!(matches!(
        s.renew(&t, &unknown, LEASE, &who),
        Err(Error::LeaseLost {
            why: LostWhy::Unknown,
            ..
        })
    ));
    assert_eq!(
        s.show(&t).unwrap().unwrap(),
        before,
        "refusals change nothing"
    );
    s.done(&t, &new.token, &agent("b")).unwrap();
    match s.release(&t, &new.token, ReleaseTo::Todo, &agent("b")) {
        Err(Error::LeaseLost {
            why: LostWhy::Ended { status },
            ..
        }) => assert_eq!(status, Status::Done),
        other => panic!("release after done: {other:?}"),
    }
    assert!(matches!(
        s.renew(&id("ghost"), &new.token, LEASE, &who),
        Err(Error::NotFound(_))
    ));
}

/// Claim-next: critical before high before medium before low, oldest first.
pub fn claim_next_order(f: &dyn Fixture) {
    let (s, _) = setup(f);
    add(&*s, "low1", Priority::Low, &[]);
    add(&*s, "med1", Priority::Medium, &[]);
    add(&*s, "crit1", Priority::Critical, &[]);
    add(&*s, "med2", Priority::Medium, &[]);
    add(&*s, "high1", Priority::High, &[]);
    add(&*s, "crit2", Priority::Critical, &[]);
    let order: Vec<String> = std::iter::from_fn(|| s.claim_next(LEASE, &agent("a")).unwrap())
        .map(|l| l.task.to_string())
        .collect();
    assert_eq!(order, ["crit1", "crit2", "high1", "med1", "med2", "low1"]);
}

/// Claim-next skips tasks whose dependencies are not done, and review/blocked tasks.
pub fn claim_next_dependencies(f: &dyn Fixture) {
    let (s, _) = setup(f);
    let base = add(&*s, "base", Priority::Low, &[]);
    add(&*s, "top", Priority::Critical, &["base"]);
    let r = add(&*s, "rev", Priority::Critical, &[]);
    let l = claimed(s.claim(&r, LEASE, None, &agent("a")).unwrap());
    s.release(&r, &l.token, ReleaseTo::Review, &agent("a"))
        .unwrap();
    let first = s.claim_next(LEASE, &agent("a")).unwrap().unwrap();
    assert_eq!(first.task, base, "top waits on base; rev is in review");
    assert!(s.claim_next(LEASE, &agent("a")).unwrap().is_none());
    s.done(&base, &first.token, &agent("a")).unwrap();
    assert_eq!(
        s.claim_next(LEASE, &agent("a")).unwrap().unwrap().task,
        id("top")
    );
}

/// Claim-next takes over an expired lease, in priority order with todo tasks.
pub fn claim_next_takes_expired(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let hi = add(&*s, "hi", Priority::High, &[]);
    add(&*s, "lo", Priority::Low, &[]);
    let old = claimed(s.claim(&hi, minutes(1), None, &agent("a")).unwrap());
    assert_eq!(
        s.claim_next(LEASE, &agent("b")).unwrap().unwrap().task,
        id("lo")
    );
    assert!(s.claim_next(LEASE, &agent("b")).unwrap().is_none());
    clock.advance(60_000);
    let took = s.claim_next(LEASE, &agent("b")).unwrap().unwrap();
    assert_eq!(took.task, hi);
    assert!(took.token.fence() > old.token.fence());
    assert!(s.renew(&hi, &old.token, LEASE, &agent("a")).is_err());
}

/// Claim-next on an empty or exhausted store says so.
pub fn claim_next_empty(f: &dyn Fixture) {
    let (s, _) = setup(f);
    assert!(s.claim_next(LEASE, &agent("a")).unwrap().is_none());
    let t = add(&*s, "t", Priority::Medium, &[]);
    let l = s.claim_next(LEASE, &agent("a")).unwrap().unwrap();
    s.done(&t, &l.token, &agent("a")).unwrap();
    assert!(s.claim_next(LEASE, &agent("a")).unwrap().is_none());
}

/// A batch claims every task or none, and says why per id.
pub fn batch_all_or_nothing(f: &dyn Fixture) {
    let (s, _) = setup(f);
    for n in ["a", "b", "c", "d"] {
        add(&*s, n, Priority::Medium, &[]);
    }
    let held = claimed(s.claim(&id("c"), LEASE, None, &agent("other")).unwrap());
    let before: Vec<_> = s.list(&ListFilter::default()).unwrap();
    let out = s
        .claim_batch(
            &[id("a"), id("c"), id("b"), id("ghost")],
            LEASE,
            &agent("me"),
        )
        .unwrap();
    match out {
        BatchOutcome::Refused(why) => {
            assert_eq!(
                why,
                vec![
                    (
                        id("c"),
                        Refusal::Held {
                            by: agent("other"),
                            until: held.lock_until
                        }
                    ),
                    (id("ghost"), Refusal::NotFound),
                ]
            );
        }
        BatchOutcome::Claimed(l) => panic!("batch must refuse, claimed {l:?}"),
    }
    assert_eq!(
        s.list(&ListFilter::default()).unwrap(),
        before,
        "a refused batch claims nothing"
    );
    match s
        .claim_batch(&[id("a"), id("b"), id("d")], LEASE, &agent("me"))
        .unwrap()
    {
        BatchOutcome::Claimed(leases) => {
            let ids: Vec<_> = leases.iter().map(|l| l.task.as_str()).collect();
            assert_eq!(ids, ["a", "b", "d"]);
            for l in &leases {
                s.renew(&l.task, &l.token, LEASE, &agent("me")).unwrap();
            }
        }
        BatchOutcome::Refused(r) => panic!("batch of free tasks refused: {r:?}"),
    }
}

/// An empty batch or a repeated id is bad input.
pub fn batch_bad_input(f: &dyn Fixture) {
    let (s, _) = setup(f);
    add(&*s, "a", Priority::Medium, &[]);
    assert!(matches!(
        s.claim_batch(&[], LEASE, &agent("me")),
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        s.claim_batch(&[id("a"), id("a")], LEASE, &agent("me")),
        Err(Error::Invalid { .. })
    ));
    assert_eq!(status(&*s, &id("a")), Status::Todo);
}

/// Updates apply only at the expected version; a stale one reports the current.
pub fn update_optimistic(f: &dyn Fixture) {
    let (s, _) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let v1 = s.show(&t).unwrap().unwrap().version;
    let p = TaskPatch {
        title: Some("renamed".into()),
        priority: Some(Priority::Critical),
        tags: Some(vec![Tag::new("x").unwrap()]),
        ..Default::default()
    };
    let row = s.update(&t, v1, &p, None, &agent("a")).unwrap();
    assert_eq!(row.title, "renamed");
    assert_eq!(row.priority, Priority::Critical);
    assert_eq!(row.tags, vec![Tag::new("x").unwrap()]);
    assert_eq!(row.description, "", "fields not in the patch stay");
    assert_eq!(row.version.get(), v1.get() + 1);
    let lost = TaskPatch {
        title: Some("lost update".into()),
        ..Default::default()
    };
    match s.update(&t, v1, &lost, None, &agent("b")) {
        Err(Error::VersionConflict {
            expected, current, ..
        }) => {
            assert_eq!(expected, v1);
            assert_eq!(current.get(), v1.get() + 1);
        }
        other => panic!("stale version must conflict: {other:?}"),
    }
    assert_eq!(s.show(&t).unwrap().unwrap().title, "renamed");
    assert!(matches!(
        s.update(&id("ghost"), Version::FIRST, &lost, None, &agent("b")),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        s.update(
            &t,
            Version::new(v1.get() + 1),
            &TaskPatch::default(),
            None,
            &agent("b")
        ),
        Err(Error::Invalid { .. })
    ));
}

/// Under a live lease only the token holder may update; leaving in_progress ends it.
pub fn update_under_lease(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let l = claimed(s.claim(&t, minutes(1), None, &agent("a")).unwrap());
    let p = TaskPatch {
        description: Some("notes".into()),
        ..Default::default()
    };
    assert!(matches!(
        s.update(&t, l.version, &p, None, &agent("b")),
        Err(Error::NotHolder { .. })
    ));
    assert!(matches!(
        s.update(
            &t,
            l.version,
            &p,
            Some(&Token::legacy(l.token.fence() + 1)),
            &agent("b")
        ),
        Err(Error::LeaseLost { .. })
    ));
    let row = s
        .update(&t, l.version, &p, Some(&l.token), &agent("a"))
        .unwrap();
    assert_eq!(row.description, "notes");
    assert_eq!(row.status, Status::InProgress, "still leased");
    s.renew(&t, &l.token, minutes(1), &agent("a")).unwrap();
    let to_review = TaskPatch {
        status: Some(Status::Review),
        ..Default::default()
    };
    let v = s.show(&t).unwrap().unwrap().version;
    let row = s
        .update(&t, v, &to_review, Some(&l.token), &agent("a"))
        .unwrap();
    assert_eq!(row.status, Status::Review);
    assert_eq!(row.assignee, None);
    assert!(s.renew(&t, &l.token, LEASE, &agent("a")).is_err());
    // An expired lease no longer protects the task.
    let l2 = claimed(s.claim(&t, minutes(1), None, &agent("a")).unwrap());
    clock.advance(60_000);
    let row = s.update(&t, l2.version, &p, None, &agent("b")).unwrap();
    assert_eq!(row.version.get(), l2.version.get() + 1);
}

/// Reap returns exactly the expired leases to todo and lists them.
pub fn reap_expired(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let a = add(&*s, "a", Priority::Medium, &[]);
    let b = add(&*s, "b", Priority::Medium, &[]);
    let c = add(&*s, "c", Priority::Medium, &[]);
    let la = claimed(s.claim(&a, minutes(1), None, &agent("x")).unwrap());
    claimed(s.claim(&b, minutes(10), None, &agent("y")).unwrap());
    clock.advance(90_000);
    assert_eq!(s.reap(&agent("r")).unwrap().len(), 1);
    let reaped_again = s.reap(&agent("r")).unwrap();
    assert!(reaped_again.is_empty(), "{reaped_again:?}");
    assert_eq!(status(&*s, &a), Status::Todo);
    assert_eq!(status(&*s, &b), Status::InProgress);
    assert_eq!(status(&*s, &c), Status::Todo);
    assert_eq!(s.show(&a).unwrap().unwrap().attempts, 1);
    assert!(matches!(
        s.done(&a, &la.token, &agent("x")),
        Err(Error::LeaseLost {
            why: LostWhy::Ended { .. },
            ..
        })
    ));
    clock.advance(600_000);
    let r = s.reap(&agent("r")).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].id, b);
    assert_eq!(r[0].agent, agent("y"));
}

/// Force release needs no token, ends the lease, and stales the old token.
pub fn release_force(f: &dyn Fixture) {
    let (s, _) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let l = claimed(s.claim(&t, LEASE, None, &agent("a")).unwrap());
    let row = s
        .release_force(&t, ReleaseTo::Blocked, &agent("admin"))
        .unwrap();
    assert_eq!(row.status, Status::Blocked);
    assert_eq!(row.assignee, None);
    assert!(matches!(
        s.done(&t, &l.token, &agent("a")),
        Err(Error::LeaseLost { .. })
    ));
    assert!(matches!(
        s.release_force(&t, ReleaseTo::Todo, &agent("admin")),
        Err(Error::Invalid { .. })
    ));
    assert!(matches!(
        s.release_force(&id("ghost"), ReleaseTo::Todo, &agent("admin")),
        Err(Error::NotFound(_))
    ));
}

/// Many handles (connections) race for one task: exactly one wins, every round.
pub fn one_winner_across_handles(f: &dyn Fixture) {
    const HANDLES: usize = 8;
    const ROUNDS: usize = 20;
    let clock = Clock::manual(T0);
    let stores: Vec<Box<dyn Store>> = (0..HANDLES).map(|_| f.open(&clock)).collect();
    for round in 0..ROUNDS {
        let t = add(&*stores[0], &format!("r{round}"), Priority::Medium, &[]);
        let barrier = Arc::new(Barrier::new(HANDLES));
        let wins: usize = std::thread::scope(|sc| {
            let handles: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let (barrier, t) = (barrier.clone(), t.clone());
                    sc.spawn(move || {
                        barrier.wait();
                        match s.claim(&t, LEASE, None, &agent(&format!("h{i}"))).unwrap() {
                            ClaimOutcome::Claimed(_) => 1,
                            ClaimOutcome::Refused(Refusal::Held { .. }) => 0,
                            ClaimOutcome::Refused(r) => panic!("unexpected refusal {r}"),
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(wins, 1, "round {round}: {wins} winners");
    }
}

/// Handles draining a queue with claim-next never get the same task.
pub fn claim_next_across_handles(f: &dyn Fixture) {
    const HANDLES: usize = 6;
    const TASKS: usize = 120;
    let clock = Clock::manual(T0);
    let stores: Vec<Box<dyn Store>> = (0..HANDLES).map(|_| f.open(&clock)).collect();
    for i in 0..TASKS {
        add(&*stores[0], &format!("q{i}"), Priority::ALL[i % 4], &[]);
    }
    let mut got: Vec<String> = std::thread::scope(|sc| {
        let hs: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                sc.spawn(move || {
                    let me = agent(&format!("h{i}"));
                    std::iter::from_fn(|| s.claim_next(LEASE, &me).unwrap())
                        .map(|l| l.task.to_string())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    got.sort();
    let before = got.len();
    got.dedup();
    assert_eq!(before, got.len(), "a task was claimed twice");
    assert_eq!(got.len(), TASKS, "every task claimed");
}

/// With the database clock, leases are stamped from the database's time.
pub fn database_clock(f: &dyn Fixture) {
    let s = f.open(&Clock::Database);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let now = s.now().unwrap();
    assert!(
        (now.as_millis() - wall).abs() < 60_000,
        "database clock {now} is far from this host's"
    );
    let l = claimed(s.claim(&t, minutes(1), None, &agent("a")).unwrap());
    assert!(l.assigned_at.as_millis() >= now.as_millis());
    assert_eq!(l.lock_until.as_millis() - l.assigned_at.as_millis(), 60_000);
}

/// List filters by status, assignee and tag, ordered by priority then age.
pub fn list_filters(f: &dyn Fixture) {
    let (s, _) = setup(f);
    add(&*s, "a", Priority::Low, &[]);
    s.add(&NewTask {
        id: Some(id("b")),
        title: "b".into(),
        priority: Priority::High,
        tags: vec![Tag::new("ui").unwrap()],
        ..Default::default()
    })
    .unwrap();
    add(&*s, "c", Priority::High, &[]);
    claimed(s.claim(&id("c"), LEASE, None, &agent("x")).unwrap());
    let ids = |f: ListFilter| -> Vec<String> {
        s.list(&f)
            .unwrap()
            .into_iter()
            .map(|t| t.id.to_string())
            .collect()
    };
    assert_eq!(ids(ListFilter::default()), ["b", "c", "a"]);
    assert_eq!(
        ids(ListFilter {
            statuses: vec![Status::Todo],
            ..Default::default()
        }),
        ["b", "a"]
    );
    assert_eq!(
        ids(ListFilter {
            assignee: Some(agent("x")),
            ..Default::default()
        }),
        ["c"]
    );
    assert_eq!(
        ids(ListFilter {
            tag: Some(Tag::new("ui").unwrap()),
            ..Default::default()
        }),
        ["b"]
    );
    assert_eq!(
        ids(ListFilter {
            limit: Some(1),
            ..Default::default()
        }),
        ["b"]
    );
}

/// Random operation sequences agree with a model of the lease state machine.
pub fn state_machine_model(f: &dyn Fixture) {
    crate::model::check(f);
}

/// Every lease event is recorded, in order, with its agent and token.
pub fn history_records_each_step(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let other = add(&*s, "other", Priority::Medium, &[]);
    let l = claimed(s.claim(&t, minutes(1), None, &agent("a")).unwrap());
    claimed(
        s.claim(&t, minutes(1), Some(&l.token), &agent("a"))
            .unwrap(),
    );
    s.renew(&t, &l.token, minutes(1), &agent("a")).unwrap();
    s.release(&t, &l.token, ReleaseTo::Todo, &agent("a"))
        .unwrap();
    let l2 = claimed(s.claim(&t, minutes(1), None, &agent("b")).unwrap());
    clock.advance(61_000);
    s.reap(&agent("reaper")).unwrap();
    let l3 = claimed(s.claim(&t, minutes(1), None, &agent("c")).unwrap());
    s.release_force(&t, ReleaseTo::Todo, &agent("admin"))
        .unwrap();
    let l4 = claimed(s.claim(&t, minutes(1), None, &agent("d")).unwrap());
    s.done(&t, &l4.token, &agent("d")).unwrap();
    claimed(s.claim(&other, minutes(1), None, &agent("z")).unwrap());
    // Refusals are not lease events.
    let _ = s.done(&t, &l.token, &agent("a"));
    let log = s.log(Some(&t), 100).unwrap();
    // u32::MAX reads every event kept, on either store.
    assert_eq!(s.log(Some(&t), u32::MAX).unwrap(), log);
    assert_eq!(
        s.log(None, u32::MAX).unwrap().len(),
        s.log(None, 10_000).unwrap().len()
    );
    let got: Vec<(EventKind, &str, Option<i64>)> = log
        .iter()
        .map(|e| (e.kind, e.agent.as_str(), e.fence))
        .collect();
    use EventKind::*;
    let (t1, t2, t3, t4) = (
        l.token.fence(),
        l2.token.fence(),
        l3.token.fence(),
        l4.token.fence(),
    );
    assert_eq!(
        got,
        vec![
            (Claimed, "a", Some(t1)),
            (Reclaimed, "a", Some(t1)),
            (Renewed, "a", Some(t1)),
            (Released, "a", Some(t1)),
            (Claimed, "b", Some(t2)),
            (Reaped, "reaper", Some(t2)),
            (Claimed, "c", Some(t3)),
            (Forced, "admin", Some(t3)),
            (Claimed, "d", Some(t4)),
            (Done, "d", Some(t4)),
        ]
    );
    assert!(
        log.windows(2)
            .all(|w| w[0].seq < w[1].seq && w[0].at <= w[1].at)
    );
    assert!(log.iter().all(|e| e.task == t));
    assert!(
        log[5].detail.as_deref().unwrap_or("").contains('b'),
        "reap names the holder"
    );
    assert!(
        log[7].detail.as_deref().unwrap_or("").contains('c'),
        "force names the holder"
    );
    let all = s.log(None, 100).unwrap();
    assert_eq!(all.len(), 11);
    assert_eq!(all.last().unwrap().task, other);
    let last2 = s.log(Some(&t), 2).unwrap();
    assert_eq!(
        last2.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [Claimed, Done]
    );
}

/// Dependants added on one handle while their dependency is finished on another
/// still count exactly the dependencies that are not done: an edge added just before
/// the `done` commits must not be missed by either side.
pub fn waiting_on_exact_under_concurrent_add_and_done(f: &dyn Fixture) {
    use std::sync::atomic::{AtomicBool, Ordering};
    const DEPS: usize = 15;
    let clock = Clock::manual(T0);
    let (adder, finisher) = (f.open(&clock), f.open(&clock));
    let mut dependants = Vec::new();
    for k in 0..DEPS {
        let d = add(&*finisher, &format!("dep{k}"), Priority::Medium, &[]);
        let l = claimed(finisher.claim(&d, LEASE, None, &agent("w")).unwrap());
        let finished = AtomicBool::new(false);
        std::thread::scope(|sc| {
            sc.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(2));
                finisher.done(&d, &l.token, &agent("w")).unwrap();
                finished.store(true, Ordering::SeqCst);
            });
            // Keep adding dependants until the done has committed, so some add's
            // transaction is open around it.
            let mut n = 0;
            while !finished.load(Ordering::SeqCst) || n < 2 {
                let name = format!("t{k}-{n}");
                dependants.push(add(&*adder, &name, Priority::Medium, &[d.as_str()]));
                n += 1;
            }
        });
    }
    for t in dependants {
        let row = adder.show(&t).unwrap().unwrap();
        assert_eq!(
            row.waiting_on, 0,
            "{t} still waits on its finished dependency"
        );
    }
}

/// A claim lost to a live holder is recorded as `refused`, naming the holder; claims
/// carry their lease length and what waiting for the write cost; refusals that are not
/// contention (closed, waiting, unknown) are not recorded.
pub fn history_records_refused_claims(f: &dyn Fixture) {
    let (s, _) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let u = add(&*s, "u", Priority::Medium, &[]);
    let w = add(&*s, "w", Priority::Medium, &["u"]);
    let l = claimed(s.claim(&t, minutes(2), None, &agent("a")).unwrap());
    assert!(matches!(
        refused(s.claim(&t, LEASE, None, &agent("b")).unwrap()),
        Refusal::Held { .. }
    ));
    refused(s.claim(&w, LEASE, None, &agent("b")).unwrap());
    refused(s.claim(&id("ghost"), LEASE, None, &agent("b")).unwrap());
    // A refused batch records its held id only, none of its rolled-back claims.
    assert!(matches!(
        s.claim_batch(&[u.clone(), t.clone()], LEASE, &agent("c"))
            .unwrap(),
        BatchOutcome::Refused(_)
    ));
    s.renew(&t, &l.token, minutes(3), &agent("a")).unwrap();
    s.done(&t, &l.token, &agent("a")).unwrap();
    refused(s.claim(&t, LEASE, None, &agent("d")).unwrap());
    let next = s.claim_next(minutes(4), &agent("e")).unwrap().unwrap();
    assert_eq!(next.task, u);

    let log = s.log(None, 100).unwrap();
    use EventKind::*;
    let got: Vec<(EventKind, &str, &str)> = log
        .iter()
        .map(|e| (e.kind, e.task.as_str(), e.agent.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (Claimed, "t", "a"),
            (Refused, "t", "b"),
            (Refused, "t", "c"),
            (Renewed, "t", "a"),
            (Done, "t", "a"),
            (Claimed, "u", "e"),
        ]
    );
    for e in &log {
        let detail = e.detail.as_deref().unwrap_or("");
        match e.kind {
            Refused => {
                assert!(detail.contains("held by a"), "{detail}");
                assert_eq!(e.fence, None, "a refusal grants no token");
                assert_eq!(e.lease_ms, None);
            }
            Claimed => assert!(e.fence.is_some()),
            _ => {}
        }
        assert_eq!(
            e.wait_us.is_some(),
            e.kind.is_claim(),
            "only claim attempts carry a wait: {e:?}"
        );
        assert_eq!(e.busy.is_some(), e.kind.is_claim(), "{e:?}");
        assert!(e.wait_us.unwrap_or(0) >= 0 && e.busy.unwrap_or(0) >= 0);
    }
    let lease_ms: Vec<Option<i64>> = log.iter().map(|e| e.lease_ms).collect();
    assert_eq!(
        lease_ms,
        [
            Some(120_000),
            None,
            None,
            Some(180_000),
            None,
            Some(240_000)
        ]
    );
}

/// Prune keeps the newest events within both bounds, and always the newest one.
pub fn prune_keeps_the_bound(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let l = claimed(s.claim(&t, LEASE, None, &agent("a")).unwrap());
    for _ in 0..9 {
        s.renew(&t, &l.token, LEASE, &agent("a")).unwrap();
    }
    let seqs =
        |s: &dyn Store| -> Vec<i64> { s.log(None, 1000).unwrap().iter().map(|e| e.seq).collect() };
    let all = seqs(&*s);
    assert_eq!(all.len(), 10);
    let by_count = Retention {
        max_events: Some(4),
        max_age_ms: None,
    };
    assert_eq!(s.prune(&by_count).unwrap(), 6);
    assert_eq!(seqs(&*s), all[6..]);
    assert_eq!(s.prune(&by_count).unwrap(), 0, "nothing more to do");
    assert_eq!(s.prune(&Retention::ALL).unwrap(), 0);

    // Ten minutes on, two new events; keep five minutes' worth.
    clock.advance(600_000);
    s.renew(&t, &l.token, LEASE, &agent("a")).unwrap();
    s.done(&t, &l.token, &agent("a")).unwrap();
    let by_age = Retention {
        max_events: None,
        max_age_ms: Some(300_000),
    };
    assert_eq!(s.prune(&by_age).unwrap(), 4);
    let kinds: Vec<EventKind> = s.log(None, 100).unwrap().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Renewed, EventKind::Done]);

    // Everything too old: the newest event stays, and seqs keep growing after it.
    clock.advance(600_000);
    assert_eq!(s.prune(&by_age).unwrap(), 1);
    let last = seqs(&*s);
    assert_eq!(last.len(), 1);
    let t2 = add(&*s, "t2", Priority::Medium, &[]);
    claimed(s.claim(&t2, LEASE, None, &agent("b")).unwrap());
    let after = seqs(&*s);
    assert!(after[1] > last[0], "seqs went backwards: {after:?}");

    for bad in [
        Retention {
            max_events: Some(0),
            max_age_ms: None,
        },
        Retention {
            max_events: None,
            max_age_ms: Some(0),
        },
    ] {
        assert!(matches!(s.prune(&bad), Err(Error::Invalid { .. })));
    }
    assert_eq!(seqs(&*s).len(), 2, "bad input deletes nothing");
}

/// Counts list every status, zeros included, in declaration order.
pub fn counts_by_status(f: &dyn Fixture) {
    let (s, _) = setup(f);
    let zero: Vec<(Status, u64)> = Status::ALL.iter().map(|&st| (st, 0)).collect();
    assert_eq!(s.counts().unwrap(), zero);
    for n in ["a", "b", "c", "d"] {
        add(&*s, n, Priority::Medium, &[]);
    }
    let l = claimed(s.claim(&id("a"), LEASE, None, &agent("x")).unwrap());
    s.done(&id("a"), &l.token, &agent("x")).unwrap();
    claimed(s.claim(&id("b"), LEASE, None, &agent("x")).unwrap());
    let l = claimed(s.claim(&id("c"), LEASE, None, &agent("x")).unwrap());
    s.release(&id("c"), &l.token, ReleaseTo::Blocked, &agent("x"))
        .unwrap();
    let got = s.counts().unwrap();
    let n = |st: Status| got.iter().find(|c| c.0 == st).unwrap().1;
    assert_eq!(got.len(), Status::ALL.len());
    assert_eq!(
        (
            n(Status::Todo),
            n(Status::InProgress),
            n(Status::Done),
            n(Status::Blocked)
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(got.iter().map(|c| c.1).sum::<u64>(), 4);
}

/// An update that moves a task out of `in_progress` ends its lease, and the history
/// says so: `released` (or `done`), by the updater, with the lease's token.
pub fn update_ending_a_lease_is_recorded(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let t = add(&*s, "t", Priority::Medium, &[]);
    let l = claimed(s.claim(&t, minutes(1), None, &agent("a")).unwrap());
    let to_review = TaskPatch {
        status: Some(Status::Review),
        ..Default::default()
    };
    s.update(&t, l.version, &to_review, Some(&l.token), &agent("a"))
        .unwrap();
    let l2 = claimed(s.claim(&t, minutes(1), None, &agent("b")).unwrap());
    clock.advance(61_000);
    let v = s.show(&t).unwrap().unwrap().version;
    let to_done = TaskPatch {
        status: Some(Status::Done),
        ..Default::default()
    };
    s.update(&t, v, &to_done, None, &agent("admin")).unwrap();
    // A plain field change is not a lease event.
    let v = s.show(&t).unwrap().unwrap().version;
    let rename = TaskPatch {
        title: Some("renamed".into()),
        ..Default::default()
    };
    s.update(&t, v, &rename, None, &agent("admin")).unwrap();
    let log: Vec<(EventKind, String, Option<i64>)> = s
        .log(Some(&t), 100)
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.agent.to_string(), e.fence))
        .collect();
    assert_eq!(
        log,
        vec![
            (EventKind::Claimed, "a".to_owned(), Some(l.token.fence())),
            (EventKind::Released, "a".to_owned(), Some(l.token.fence())),
            (EventKind::Claimed, "b".to_owned(), Some(l2.token.fence())),
            (EventKind::Done, "admin".to_owned(), Some(l2.token.fence())),
        ]
    );
}

fn key(s: &str) -> RequestId {
    RequestId::new(s).expect("valid request id")
}

fn lease_events(s: &dyn Store, t: &TaskId) -> Vec<EventKind> {
    s.log(Some(t), 1000)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// `done` and `release` retried by the token that already did exactly that (after an
/// unknown outcome) succeed again as a repeat: same task, no version bump, no second
/// history row. The other operation, or the same release to another status, is still
/// a lost lease.
pub fn retried_done_and_release_are_repeats(f: &dyn Fixture) {
    let (s, _clock) = setup(f);
    let a = agent("a");
    let d = add(&*s, "d", Priority::Medium, &[]);
    let l = claimed(s.claim(&d, LEASE, None, &a).unwrap());
    let first = s.done(&d, &l.token, &a).unwrap();
    assert!(!first.repeat);
    let again = s.done(&d, &l.token, &a).unwrap();
    assert!(again.repeat, "a retried done is a repeat");
    assert_eq!(again.task, first.task, "a repeat changes nothing");
    assert_eq!(lease_events(&*s, &d), [EventKind::Claimed, EventKind::Done]);
    assert!(matches!(
        s.release(&d, &l.token, ReleaseTo::Todo, &a),
        Err(Error::LeaseLost { .. })
    ));

    let r = add(&*s, "r", Priority::Medium, &[]);
    let l = claimed(s.claim(&r, LEASE, None, &a).unwrap());
    let first = s.release(&r, &l.token, ReleaseTo::Review, &a).unwrap();
    assert!(!first.repeat);
    let again = s.release(&r, &l.token, ReleaseTo::Review, &a).unwrap();
    assert!(again.repeat, "a retried release is a repeat");
    assert_eq!(again.task, first.task);
    assert_eq!(again.task.attempts, first.task.attempts);
    for (what, r) in [
        (
            "release to another status",
            s.release(&r, &l.token, ReleaseTo::Todo, &a).map(drop),
        ),
        ("done after release", s.done(&r, &l.token, &a).map(drop)),
    ] {
        assert!(matches!(r, Err(Error::LeaseLost { .. })), "{what}: {r:?}");
    }
    assert_eq!(
        lease_events(&*s, &r),
        [EventKind::Claimed, EventKind::Released]
    );
    assert_eq!(s.show(&r).unwrap().unwrap(), first.task);
}

/// A token whose lease was reaped, forced, taken over or ended by an `update` did not
/// end it by `done` or `release`: retrying either is a lost lease, as before.
pub fn lease_ended_by_others_is_no_repeat(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let a = agent("a");
    let lost = |r: Result<tasklease_core::Ended, Error>, what: &str| {
        assert!(matches!(r, Err(Error::LeaseLost { .. })), "{what}: {r:?}");
    };
    // Reaped and forced leave the task in todo under the same fence, as a release would.
    let t = add(&*s, "reaped", Priority::Medium, &[]);
    let l = claimed(s.claim(&t, minutes(1), None, &a).unwrap());
    clock.advance(61_000);
    assert_eq!(s.reap(&agent("reaper")).unwrap().len(), 1);
    lost(
        s.release(&t, &l.token, ReleaseTo::Todo, &a),
        "release after reap",
    );
    lost(s.done(&t, &l.token, &a), "done after reap");

    let t = add(&*s, "forced", Priority::Medium, &[]);
    let l = claimed(s.claim(&t, LEASE, None, &a).unwrap());
    s.release_force(&t, ReleaseTo::Todo, &agent("admin"))
        .unwrap();
    lost(
        s.release(&t, &l.token, ReleaseTo::Todo, &a),
        "release after force",
    );

    let t = add(&*s, "taken", Priority::Medium, &[]);
    let l = claimed(s.claim(&t, minutes(1), None, &a).unwrap());
    clock.advance(61_000);
    let b = claimed(s.claim(&t, LEASE, None, &agent("b")).unwrap());
    s.done(&t, &b.token, &agent("b")).unwrap();
    lost(s.done(&t, &l.token, &a), "done after takeover");

    let t = add(&*s, "updated", Priority::Medium, &[]);
    let l = claimed(s.claim(&t, LEASE, None, &a).unwrap());
    let to_done = TaskPatch {
        status: Some(Status::Done),
        ..Default::default()
    };
    s.update(&t, l.version, &to_done, Some(&l.token), &a)
        .unwrap();
    lost(s.done(&t, &l.token, &a), "done after an update to done");
    // A done, then an update away and back: the task was moved since.
    let t = add(&*s, "reopened", Priority::Medium, &[]);
    let l = claimed(s.claim(&t, LEASE, None, &a).unwrap());
    let v = s.done(&t, &l.token, &a).unwrap().task.version;
    let reopen = TaskPatch {
        status: Some(Status::Todo),
        ..Default::default()
    };
    let v = s.update(&t, v, &reopen, None, &a).unwrap().version;
    s.update(&t, v, &to_done, None, &a).unwrap();
    lost(
        s.done(&t, &l.token, &a),
        "done after the task was reopened and closed",
    );
}

/// A claim retried with its request id, while the lease it granted is live, answers
/// with that lease (same task, token and lock_until) instead of claiming again — by
/// id, batch and next. Another request's key, another agent, or a key whose lease
/// ended claims anew; a key reused for a different claim is refused as bad input.
pub fn claim_retried_with_its_request_id_returns_the_first_grant(f: &dyn Fixture) {
    let (s, clock) = setup(f);
    let a = agent("a");
    for n in ["n1", "n2", "n3", "one", "b1", "b2"] {
        add(&*s, n, Priority::Medium, &[]);
    }
    // claim --next
    let k = key("next-1");
    let first = s
        .claim_next_keyed(minutes(1), Some(&k), &a)
        .unwrap()
        .unwrap();
    clock.advance(1_000);
    let again = s
        .claim_next_keyed(minutes(1), Some(&k), &a)
        .unwrap()
        .unwrap();
    assert_eq!(again, first, "the retry returns the first grant");
    assert_eq!(status(&*s, &id("n2")), Status::Todo, "no second task");
    assert_eq!(lease_events(&*s, &first.task), [EventKind::Claimed]);
    // Another agent with the same key gets its own claim.
    let other = s
        .claim_next_keyed(minutes(1), Some(&k), &agent("b"))
        .unwrap()
        .unwrap();
    assert_ne!(other.task, first.task);
    // claim ID
    let k1 = key("one-1");
    let one = claimed(
        s.claim_keyed(&id("one"), LEASE, None, Some(&k1), &a)
            .unwrap(),
    );
    let again = claimed(
        s.claim_keyed(&id("one"), LEASE, None, Some(&k1), &a)
            .unwrap(),
    );
    assert_eq!(again, one);
    // The same key for another claim: bad input, nothing claimed.
    assert!(matches!(
        s.claim_keyed(&id("b1"), LEASE, None, Some(&k1), &a),
        Err(Error::Invalid { .. })
    ));
    assert_eq!(status(&*s, &id("b1")), Status::Todo);
    // A batch, answered in the order asked.
    let kb = key("batch:1");
    let ids = [id("b2"), id("b1")];
    let BatchOutcome::Claimed(batch) = s.claim_batch_keyed(&ids, LEASE, Some(&kb), &a).unwrap()
    else {
        panic!("batch refused")
    };
    let BatchOutcome::Claimed(again) = s.claim_batch_keyed(&ids, LEASE, Some(&kb), &a).unwrap()
    else {
        panic!("batch retry refused")
    };
    assert_eq!(again, batch);
    assert!(matches!(
        s.claim_batch_keyed(&[id("b1")], LEASE, Some(&kb), &a),
        Err(Error::Invalid { .. })
    ));
    // A key whose lease ended is forgotten: the retry claims as a new claim would.
    s.done(&first.task, &first.token, &a).unwrap();
    let after = s
        .claim_next_keyed(minutes(1), Some(&k), &a)
        .unwrap()
        .unwrap();
    assert_ne!(after.task, first.task);
    // ... and so is one whose lease expired.
    clock.advance(61_000);
    let expired = s
        .claim_next_keyed(minutes(1), Some(&k), &a)
        .unwrap()
        .unwrap();
    assert_ne!(expired.token, after.token);
}

/// After migration 0005, on a store whose task `live` was under a live lease at fence 3
/// and `finished` was done by its token at fence 2, both before secrets existed: the
/// bare integers keep working until their leases end (renew, done, a retried done), a
/// made-up secret on the same fence is refused, and every new lease gets a secret.
/// Called by each store's migration test (`upgrade_to_v5_keeps_live_leases_working`).
pub fn pre_secret_leases_keep_working(s: &dyn Store) {
    let (live, finished) = (id("live"), id("finished"));
    let who = agent("old-agent");
    let guess: Token = "3.k3f9q2m8x1c4v6b0".parse().unwrap();
    assert!(matches!(
        s.renew(&live, &guess, LEASE, &who),
        Err(Error::LeaseLost {
            why: LostWhy::Unknown,
            ..
        })
    ));
    let bare = Token::legacy(3);
    let renewed = s.renew(&live, &bare, LEASE, &who).unwrap();
    assert_eq!(renewed.token, bare, "a pre-v5 lease keeps its bare token");
    assert!(!s.done(&live, &bare, &who).unwrap().repeat);
    assert!(s.done(&live, &bare, &who).unwrap().repeat, "a retried done");
    assert!(s.done(&finished, &Token::legacy(2), &who).unwrap().repeat);
    // The next lease of the same task has a secret, and the bare integer is refused.
    let v = s.show(&live).unwrap().unwrap().version;
    let reopen = TaskPatch {
        status: Some(Status::Todo),
        ..Default::default()
    };
    s.update(&live, v, &reopen, None, &who).unwrap();
    let l = claimed(s.claim(&live, LEASE, None, &who).unwrap());
    assert_eq!(l.token.fence(), 4);
    assert!(l.token.secret().is_some());
    assert!(matches!(
        s.done(&live, &Token::legacy(4), &who),
        Err(Error::LeaseLost {
            why: LostWhy::Unknown,
            ..
        })
    ));
    s.done(&live, &l.token, &who).unwrap();
}

/// `stamp`: a watcher's handle sees a different stamp after each change another handle
/// commits — an add, a claim, an update, a lease ended, a deletion — so a poller
/// never misses one.
pub fn stamp_moves_after_every_commit_by_another_handle(f: &dyn Fixture) {
    let clock = Clock::manual(T0);
    let (writer, watcher) = (f.open(&clock), f.open(&clock));
    let mut last = watcher.stamp().unwrap();
    let mut expect_moved = |what: &str| {
        let now = watcher.stamp().unwrap();
        assert_ne!(now, last, "the stamp did not move after {what}");
        last = now;
    };
    let a = add(&*writer, "a", Priority::Medium, &[]);
    expect_moved("an add");
    let l = claimed(writer.claim(&a, LEASE, None, &agent("x")).unwrap());
    expect_moved("a claim");
    writer.renew(&a, &l.token, LEASE, &agent("x")).unwrap();
    expect_moved("a renewal");
    writer
        .release_force(&a, ReleaseTo::Todo, &agent("admin"))
        .unwrap();
    expect_moved("a forced release");
    let v = writer.show(&a).unwrap().unwrap().version;
    let patch = TaskPatch {
        priority: Some(Priority::High),
        ..TaskPatch::default()
    };
    writer.update(&a, v, &patch, None, &agent("x")).unwrap();
    expect_moved("an update");
    writer.rm(&[a], false, &agent("x")).unwrap();
    expect_moved("a deletion");
}
