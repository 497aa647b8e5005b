//! What a waiting agent relies on: [`Store::readiness`] says what `claim_next` would
//! find and when the next lease ends, and every change that can make a task ready
//! wakes a [`tasklease_core::ReadySignal`] — made through another handle (another
//! connection; on SQLite the same path another process takes).

use std::time::Duration;

use tasklease_core::{
    Clock, LeaseDuration, Millis, NewTask, ReleaseTo, Status, Store, TaskId, TaskPatch,
};

use crate::{Fixture, T0, agent};

/// Generous: a wake-up takes milliseconds, a loaded CI machine may take far longer.
const WOKEN_WITHIN: Duration = Duration::from_secs(10);

fn id(s: &str) -> TaskId {
    TaskId::new(s).expect("valid test id")
}

fn add(s: &dyn Store, name: &str, deps: &[&str]) {
    s.add(&NewTask {
        id: Some(id(name)),
        title: format!("task {name}"),
        deps: deps.iter().map(|d| id(d)).collect(),
        ..Default::default()
    })
    .expect("add");
}

fn set_status(s: &dyn Store, t: &str, to: Status) {
    let v = s.show(&id(t)).unwrap().unwrap().version;
    let patch = TaskPatch {
        status: Some(to),
        ..Default::default()
    };
    s.update(&id(t), v, &patch, None, &agent("admin"))
        .expect("update status");
}

fn minutes(n: i64) -> LeaseDuration {
    LeaseDuration::from_millis(n * 60_000).expect("valid lease")
}

/// `readiness` sees both of claim-next's candidate sets and the earliest live lease
/// end, on the store's clock.
pub fn readiness_says_what_claim_next_would_find(f: &dyn Fixture) {
    let clock = Clock::manual(T0);
    let s = f.open(&clock);
    let r = s.readiness().unwrap();
    assert!(!r.ready, "{r:?}");
    assert_eq!(r.next_expiry, None);
    assert_eq!(r.now, T0);
    add(&*s, "a", &[]);
    add(&*s, "b", &["a"]);
    assert!(s.readiness().unwrap().ready, "a is ready");
    let la = s.claim_next(minutes(1), &agent("x")).unwrap().expect("a");
    let r = s.readiness().unwrap();
    assert!(!r.ready, "b waits on a, a is held: {r:?}");
    assert_eq!(
        r.next_expiry,
        Some(Millis::from_millis(T0.as_millis() + 60_000))
    );
    assert_eq!(r.until_expiry(), Some(Duration::from_secs(60)));
    clock.advance(60_000);
    let r = s.readiness().unwrap();
    assert!(r.ready, "a's lease ran out at lock_until: {r:?}");
    assert_eq!(r.next_expiry, None, "no lease is live");
    clock.advance(-1);
    s.done(&la.task, &la.token, &agent("x")).unwrap();
    assert!(s.readiness().unwrap().ready, "b is ready once a is done");
}

/// Each kind of change that can make a task ready wakes a waiter's signal, made
/// through another handle; a claim does not.
pub fn every_change_that_can_ready_a_task_wakes_a_waiter(f: &dyn Fixture) {
    let clock = Clock::manual(T0);
    let waiter = f.open(&clock);
    let s = f.open(&clock);
    let s = &*s;
    let mut signal = waiter.ready_signal().expect("a signal");
    let mut expect_wake = |what: &str, change: &dyn Fn()| {
        signal.drain();
        change();
        assert!(
            signal.wait(WOKEN_WITHIN).unwrap(),
            "{what} did not wake the waiter within {WOKEN_WITHIN:?}"
        );
    };
    expect_wake("add", &|| add(s, "a", &[]));
    add(s, "b", &["a"]);
    add(s, "c", &["b"]);
    let x = agent("x");
    expect_wake("release to todo", &|| {
        let l = s.claim(&id("a"), minutes(1), None, &x).unwrap();
        let tasklease_core::ClaimOutcome::Claimed(l) = l else {
            panic!("{l:?}")
        };
        s.release(&l.task, &l.token, ReleaseTo::Todo, &x).unwrap();
    });
    expect_wake("done of a dependency", &|| {
        let l = s.claim_next(minutes(1), &x).unwrap().expect("a");
        s.done(&l.task, &l.token, &x).unwrap();
    });
    expect_wake("reap", &|| {
        s.claim_next(minutes(1), &x).unwrap().expect("b");
        clock.advance(120_000);
        assert_eq!(s.reap(&agent("r")).unwrap().len(), 1);
    });
    expect_wake("forced release", &|| {
        s.claim_next(minutes(1), &x).unwrap().expect("b");
        s.release_force(&id("b"), ReleaseTo::Todo, &agent("admin"))
            .unwrap();
    });
    expect_wake("update to todo", &|| {
        set_status(s, "b", Status::Blocked);
        set_status(s, "b", Status::Todo);
    });
    expect_wake("dependency cancelled", &|| {
        set_status(s, "b", Status::Cancelled)
    });
    add(s, "d", &[]);
    add(s, "e", &["d"]);
    expect_wake("dependency removed", &|| {
        s.dep_rm(&id("e"), &[id("d")]).unwrap();
    });
    add(s, "f", &[]);
    add(s, "g", &["f"]);
    expect_wake("delete with force, dropping edges", &|| {
        s.rm(&[id("f")], true, &agent("admin")).unwrap();
    });
    // Nothing a claim does can make a task ready: no wake-up.
    signal.drain();
    s.claim_next(minutes(1), &x)
        .unwrap()
        .expect("something is ready");
    assert!(
        !signal.wait(Duration::from_millis(300)).unwrap(),
        "a claim woke the waiter"
    );
}

/// `done_then_claim_next` finishes the task and claims the next ready one, as `done`
/// then `claim_next` would; its `done` wakes no waiter, and a waiter is woken only
/// when something is still ready after the worker's own claim. A lost token claims
/// nothing; a repeat still claims; a claim key answers its first grant again.
pub fn done_then_claim_next_wakes_only_for_what_is_left(f: &dyn Fixture) {
    let clock = Clock::manual(T0);
    let waiter = f.open(&clock);
    let s = f.open(&clock);
    let s = &*s;
    let mut signal = waiter.ready_signal().expect("a signal");
    let x = agent("x");
    // A chain a → b, and c waiting on b with d: b's done readies c and d.
    add(s, "a", &[]);
    add(s, "b", &["a"]);
    add(s, "c", &["b"]);
    add(s, "d", &["b"]);
    let la = s.claim_next(minutes(1), &x).unwrap().expect("a");
    signal.drain();
    let step = s
        .done_then_claim_next(&la.task, &la.token, minutes(1), None, &x)
        .unwrap();
    assert_eq!(step.ended.task.status, Status::Done);
    assert!(!step.ended.repeat);
    let lb = step.next.unwrap().expect("b became ready and was claimed");
    assert_eq!(lb.task, id("b"));
    assert_eq!(lb.agent, x);
    assert_eq!(
        s.show(&id("b")).unwrap().unwrap().status,
        Status::InProgress
    );
    assert!(
        !signal.wait(Duration::from_millis(300)).unwrap(),
        "nothing was left ready, yet a waiter was woken"
    );
    // b's done readies c and d: the worker takes c, a waiter is woken for d.
    let step = s
        .done_then_claim_next(&lb.task, &lb.token, minutes(1), None, &x)
        .unwrap();
    let lc = step.next.unwrap().expect("c");
    assert_eq!(lc.task, id("c"));
    assert!(
        signal.wait(WOKEN_WITHIN).unwrap(),
        "d was left ready and no waiter was woken within {WOKEN_WITHIN:?}"
    );
    // A repeat of b's done is answered as a repeat, and still claims (d).
    let again = s
        .done_then_claim_next(&lb.task, &lb.token, minutes(1), None, &x)
        .unwrap();
    assert!(again.ended.repeat, "{again:?}");
    let ld = again.next.unwrap().expect("d");
    assert_eq!(ld.task, id("d"));
    // A lost token is refused before anything is claimed.
    add(s, "e", &[]);
    let err = s
        .done_then_claim_next(&la.task, &lc.token, minutes(1), None, &x)
        .unwrap_err();
    assert!(
        matches!(err, tasklease_core::Error::LeaseLost { .. }),
        "{err:?}"
    );
    assert_eq!(s.show(&id("e")).unwrap().unwrap().status, Status::Todo);
    // Under a claim key a retry answers with the first grant.
    let key = tasklease_core::RequestId::new("step-1").unwrap();
    let first = s
        .done_then_claim_next(&lc.task, &lc.token, minutes(1), Some(&key), &x)
        .unwrap()
        .next
        .unwrap()
        .expect("e");
    let again = s
        .done_then_claim_next(&lc.task, &lc.token, minutes(1), Some(&key), &x)
        .unwrap();
    assert!(again.ended.repeat);
    let second = again.next.unwrap().expect("the first grant again");
    assert_eq!(second.token, first.token);
    // Nothing left: the worker gets nothing.
    let last = s
        .done_then_claim_next(&first.task, &first.token, minutes(1), None, &x)
        .unwrap();
    assert_eq!(last.next.unwrap(), None);
}
