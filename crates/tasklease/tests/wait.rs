//! `tasklease::wait` on both stores, in one process with threads (the CLI tests run
//! waiters as separate processes): a waiter is woken by a change, by a lease running
//! out, ends at its bound, and an async wait ends when its future is dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tasklease::asynchronous::AsyncStore;
use tasklease::open::{DbSpec, OpenOptions};
use tasklease::wait::{WaitOptions, claim_next_waiting};
use tasklease::{AgentId, LeaseDuration, NewTask, Store, TaskId};

/// Long past any wake-up, short of the waits' bounds: an answer before it came from
/// the wake-up, not from the fallback look or the bound.
const SOON: Duration = Duration::from_secs(10);
const BOUND: Duration = Duration::from_secs(60);

fn opts() -> WaitOptions {
    WaitOptions {
        bound: BOUND,
        // Longer than the bound: only a wake-up or the lease timer can end these waits.
        fallback: Duration::from_secs(600),
        cancel: None,
    }
}

fn me(n: &str) -> AgentId {
    AgentId::new(n).unwrap()
}

fn add(s: &dyn Store, name: &str) {
    s.add(&NewTask {
        id: Some(TaskId::new(name).unwrap()),
        title: name.into(),
        ..Default::default()
    })
    .unwrap();
}

/// Each store under test, opened twice (a waiter's handle and another's).
fn stores(f: impl Fn(&dyn Fn() -> Box<dyn Store>)) {
    let dir = tempfile::tempdir().unwrap();
    let spec = DbSpec::parse(dir.path().join("t.db").to_str().unwrap());
    tasklease::open::init(&spec, &OpenOptions::default()).unwrap();
    f(&|| tasklease::open::open(&spec, &OpenOptions::default().one_shot(false)).unwrap());
    let Some(server) = tasklease_postgres::testing::server() else {
        return;
    };
    let scratch = tasklease_postgres::testing::Scratch::new(&server);
    let spec = DbSpec::parse(scratch.conn());
    tasklease::open::init(&spec, &OpenOptions::default()).unwrap();
    f(&|| tasklease::open::open(&spec, &OpenOptions::default()).unwrap());
}

#[test]
fn a_task_added_while_waiting_wakes_the_waiter() {
    stores(|open| {
        let waiter: Arc<dyn Store> = open().into();
        let other = open();
        // Armed before the task exists: the waiter finds nothing, then is woken.
        let w = std::thread::spawn({
            let waiter = waiter.clone();
            move || claim_next_waiting(&*waiter, LeaseDuration::DEFAULT, None, &opts(), &me("w"))
        });
        // Whether the waiter is already asleep or not, it must end with the task soon.
        std::thread::sleep(Duration::from_millis(200));
        let added = Instant::now();
        add(&*other, "A");
        let got = w.join().unwrap().unwrap();
        assert_eq!(got.lease.expect("claimed").task.as_str(), "A");
        assert!(added.elapsed() < SOON, "took {:?}", added.elapsed());
    });
}

/// A wait longer than the lease it claims: `Waited::sent` is when the successful claim
/// was sent, so a guard started from it trusts the fresh lease; one started from the
/// beginning of the wait would hand over a lease already past its trusted end.
#[test]
fn a_lease_claimed_after_a_long_wait_is_trusted_from_its_claim() {
    stores(|open| {
        let waiter: Arc<dyn Store> = open().into();
        let other = open();
        let one_s = LeaseDuration::from_millis(1_000).unwrap();
        let started = Instant::now();
        let w = std::thread::spawn({
            let waiter = waiter.clone();
            move || claim_next_waiting(&*waiter, one_s, None, &opts(), &me("w"))
        });
        std::thread::sleep(Duration::from_millis(1_500));
        let before_add = Instant::now();
        add(&*other, "A");
        let got = w.join().unwrap().unwrap();
        let lease = got.lease.expect("claimed");
        let sent = got.sent.expect("a claim that returned a lease has a time");
        assert!(sent >= before_add, "the claim cannot precede the add");
        let held = tasklease::hold_from(waiter.clone(), &lease, one_s, sent).unwrap();
        assert!(held.is_trusted(), "{held:?}");
        assert!(held.trusted_until() > before_add, "{held:?}");
        // The lease handed back stops renewing without ending it: finish it in a step.
        let lease = held.into_lease();
        let step = waiter
            .done_then_claim_next(&lease.task, &lease.token, one_s, None, &me("w"))
            .unwrap();
        assert_eq!(step.next.unwrap(), None);
        // Counting from the start of the wait, the same lease is already untrusted.
        let stale = tasklease::hold_from(waiter.clone(), &lease, one_s, started);
        if let Ok(stale) = stale {
            assert!(!stale.is_trusted(), "{stale:?}");
        }
    });
}

#[test]
fn a_lease_running_out_wakes_a_waiter() {
    stores(|open| {
        let s = open();
        add(&*s, "A");
        let one_s = LeaseDuration::from_millis(1_000).unwrap();
        let held = s.claim_next(one_s, &me("gone")).unwrap().unwrap();
        let started = Instant::now();
        let got = claim_next_waiting(&*s, LeaseDuration::DEFAULT, None, &opts(), &me("w")).unwrap();
        let l = got.lease.clone().expect("the expired task");
        assert_eq!(l.task, held.task);
        assert!(started.elapsed() < SOON, "took {:?}", started.elapsed());
        assert!(
            got.claims <= 3,
            "claims while waiting for the lease: {got:?}"
        );
    });
}

#[test]
fn a_wait_ends_at_its_bound_with_nothing() {
    stores(|open| {
        let s = open();
        let bound = Duration::from_millis(700);
        let o = WaitOptions { bound, ..opts() };
        let got = claim_next_waiting(&*s, LeaseDuration::DEFAULT, None, &o, &me("w")).unwrap();
        assert!(got.lease.is_none());
        assert!(got.waited >= bound, "{got:?}");
        // The busy timeout (30 s by default) bounds the last look; in practice it is ms.
        assert!(got.waited < bound + Duration::from_secs(30), "{got:?}");
        assert_eq!(got.claims, 1, "one claim, then only looks: {got:?}");
    });
}

#[test]
fn dropping_an_async_wait_cancels_it_and_a_later_wait_is_woken() {
    stores(|open| {
        let other: Arc<dyn Store> = open().into();
        let store = open();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = AsyncStore::new(store).unwrap();
            let cancelled = tokio::time::timeout(
                Duration::from_millis(300),
                s.claim_next_waiting(LeaseDuration::DEFAULT, None, opts(), me("w")),
            )
            .await;
            assert!(cancelled.is_err(), "nothing was ready");
            let wait = s.claim_next_waiting(LeaseDuration::DEFAULT, None, opts(), me("w"));
            let started = Instant::now();
            // A sync store is never called inside the runtime: from a thread of its own.
            let o = other.clone();
            std::thread::spawn(move || add(&*o, "A")).join().unwrap();
            let got = tokio::time::timeout(SOON, wait)
                .await
                .expect("woken")
                .unwrap();
            assert_eq!(got.lease.expect("claimed").task.as_str(), "A");
            assert!(started.elapsed() < SOON);
            // The cancelled wait claimed nothing: A went to the second wait.
            assert_eq!(s.counts().await.unwrap()[1].1, 1, "one task in progress");
        });
    });
}

fn short(bound: Duration) -> WaitOptions {
    WaitOptions { bound, ..opts() }
}

/// A worker's step that found nothing makes its next wait start with a look (a
/// read), not a claim (a writer turn): the waiter, sync or async, takes no writer turn
/// until something is ready — and still claims what becomes ready.
#[test]
fn after_a_step_that_found_nothing_a_waiter_looks_before_it_claims() {
    stores(|open| {
        let store = open();
        let other = open();
        add(&*other, "A");
        let mut waiter = tasklease::wait::Waiter::new(&*store).unwrap();
        let a = waiter
            .claim_next(LeaseDuration::DEFAULT, None, &opts(), &me("w"))
            .unwrap()
            .lease
            .expect("A");
        let step = waiter
            .done_then_claim_next(&a.task, &a.token, LeaseDuration::DEFAULT, None, &me("w"))
            .unwrap();
        assert_eq!(step.next.unwrap(), None);
        let idle = waiter
            .claim_next(
                LeaseDuration::DEFAULT,
                None,
                &short(Duration::from_millis(300)),
                &me("w"),
            )
            .unwrap();
        assert!(idle.lease.is_none());
        assert_eq!(idle.claims, 0, "a claim with nothing ready: {idle:?}");
        assert!(idle.looks >= 1, "{idle:?}");
        // The same through the async waiter, which keeps its signal across waits.
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let other: Arc<dyn Store> = other.into();
        // Outside the runtime: a PostgreSQL store must not be called from inside it.
        add(&*other, "B");
        rt.block_on(async {
            let s = AsyncStore::new(store).unwrap();
            let mut waiter = s.waiter();
            let b = waiter
                .claim_next_waiting(LeaseDuration::DEFAULT, None, opts(), me("w"))
                .await
                .unwrap()
                .lease
                .expect("B");
            let step = waiter
                .done_then_claim_next(b.task, b.token, LeaseDuration::DEFAULT, None, me("w"))
                .await
                .unwrap();
            assert_eq!(step.next.unwrap(), None);
            let idle = waiter
                .claim_next_waiting(
                    LeaseDuration::DEFAULT,
                    None,
                    short(Duration::from_millis(300)),
                    me("w"),
                )
                .await
                .unwrap();
            assert!(idle.lease.is_none());
            assert_eq!(idle.claims, 0, "a claim with nothing ready: {idle:?}");
            // Woken on the kept signal by a task added while it waits.
            let wait = waiter.claim_next_waiting(LeaseDuration::DEFAULT, None, opts(), me("w"));
            let adder = {
                let other = other.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(200));
                    add(&*other, "C");
                })
            };
            let started = Instant::now();
            let got = wait.await.unwrap();
            adder.join().unwrap();
            assert_eq!(got.lease.expect("C").task.as_str(), "C");
            assert!(started.elapsed() < SOON, "took {:?}", started.elapsed());
        });
    });
}
