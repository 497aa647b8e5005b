//! The renewal guard (`tasklease::hold`) against real stores, SQLite and PostgreSQL,
//! with short leases. Time bounds are generous: they check that things happen, not
//! how fast.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tasklease::open::{DbSpec, OpenOptions};
use tasklease::{
    AgentId, ClaimOutcome, Error, Lease, LeaseDuration, NewTask, ReleaseTo, Store, TaskId, Trust,
};
use tasklease_postgres::testing::{self, Scratch};

const BOUND: Duration = Duration::from_secs(30);

fn open(spec: &DbSpec, busy: Duration) -> Arc<dyn Store> {
    let opts = OpenOptions::default().busy_timeout(busy);
    tasklease::open::init(spec, &opts).unwrap();
    Arc::from(tasklease::open::open(spec, &opts).unwrap())
}

fn sqlite(dir: &tempfile::TempDir) -> DbSpec {
    DbSpec::Sqlite {
        path: dir.path().join("t.db"),
        explicit: true,
    }
}

/// Both stores: SQLite always, PostgreSQL when the test server is set.
fn each_store(test: impl Fn(&DbSpec)) {
    let dir = tempfile::tempdir().unwrap();
    test(&sqlite(&dir));
    if let Some(server) = testing::server() {
        let scratch = Scratch::new(&server);
        test(&DbSpec::Postgres {
            url: scratch.conn().to_owned(),
        });
    }
}

fn claim(s: &dyn Store, id: &str, length: LeaseDuration) -> Lease {
    let t = TaskId::new(id).unwrap();
    s.add(&NewTask {
        id: Some(t.clone()),
        title: "t".into(),
        ..Default::default()
    })
    .unwrap();
    match s.claim(&t, length, None, &me()).unwrap() {
        ClaimOutcome::Claimed(l) => l,
        ClaimOutcome::Refused(r) => panic!("{r}"),
    }
}

fn me() -> AgentId {
    AgentId::new("me").unwrap()
}

fn ms(n: i64) -> LeaseDuration {
    LeaseDuration::from_millis(n).unwrap()
}

#[test]
fn a_held_lease_outlives_its_length_and_done_ends_it() {
    each_store(|spec| {
        let s = open(spec, Duration::from_secs(30));
        let length = ms(1500);
        let lease = claim(&*s, "a", length);
        let held = tasklease::hold(s.clone(), &lease, length).unwrap();
        // Three lease lengths: only renewals keep it.
        let trust = held.wait_lost(Duration::from_millis(4500));
        assert!(matches!(trust, Trust::Trusted { .. }), "{trust:?}");
        assert!(held.is_trusted(), "{held:?}");
        assert!(held.lease().lock_until > lease.lock_until, "{held:?}");
        let ended = held.done().unwrap();
        assert_eq!(ended.task.status, tasklease::Status::Done);
    });
}

#[test]
fn a_forced_release_is_seen_as_lost() {
    each_store(|spec| {
        let s = open(spec, Duration::from_secs(30));
        let length = ms(1500);
        let lease = claim(&*s, "b", length);
        let held = tasklease::hold(s.clone(), &lease, length).unwrap();
        s.release_force(
            &lease.task,
            ReleaseTo::Todo,
            &AgentId::new("admin").unwrap(),
        )
        .unwrap();
        let started = Instant::now();
        assert_eq!(held.wait_lost(BOUND), Trust::Lost, "{held:?}");
        assert!(started.elapsed() < BOUND);
        assert!(held.is_lost() && !held.is_trusted());
        assert!(
            matches!(held.lost(), Some(Error::LeaseLost { .. })),
            "{:?}",
            held.lost()
        );
        assert!(matches!(held.done(), Err(Error::LeaseLost { .. })));
    });
}

#[test]
fn holding_a_lost_lease_fails_at_once() {
    each_store(|spec| {
        let s = open(spec, Duration::from_secs(30));
        let lease = claim(&*s, "c", ms(60_000));
        s.release_force(&lease.task, ReleaseTo::Todo, &me())
            .unwrap();
        let e = tasklease::hold(s.clone(), &lease, ms(60_000)).unwrap_err();
        assert!(matches!(e, Error::LeaseLost { .. }), "{e:?}");
    });
}

#[test]
fn dropping_the_guard_stops_renewals() {
    each_store(|spec| {
        let s = open(spec, Duration::from_secs(30));
        let length = ms(900);
        let lease = claim(&*s, "d", length);
        let held = tasklease::hold(s.clone(), &lease, length).unwrap();
        drop(held);
        // At most one renewal already in flight may land.
        std::thread::sleep(Duration::from_millis(1000));
        let before = s.show(&lease.task).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let after = s.show(&lease.task).unwrap().unwrap();
        assert_eq!(before.version, after.version, "renewed after the drop");
    });
}

/// Renewals that cannot get through (SQLite's write lock held elsewhere past the busy
/// timeout) leave the lease unconfirmed: the guard says when trust ran out.
#[test]
fn trust_runs_out_when_renewals_fail() {
    let dir = tempfile::tempdir().unwrap();
    let spec = sqlite(&dir);
    let s = open(&spec, Duration::from_millis(300));
    let length = ms(1500);
    let lease = claim(&*s, "e", length);
    let held = tasklease::hold(s.clone(), &lease, length).unwrap();
    let until = held.trusted_until();
    let blocker = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let trust = held.wait_lost(BOUND);
    assert!(matches!(trust, Trust::RanOut { .. }), "{trust:?}");
    assert!(!held.is_trusted() && !held.is_lost(), "{held:?}");
    assert!(held.trusted_until() <= Instant::now());
    assert!(held.trusted_until() >= until);
    // Once the store answers again, renewals restore trust.
    blocker.execute_batch("ROLLBACK").unwrap();
    let end = Instant::now() + BOUND;
    while !held.is_trusted() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(held.is_trusted(), "{held:?}");
}

#[test]
fn one_thread_renews_every_held_lease() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&sqlite(&dir), Duration::from_secs(30));
    let length = ms(60_000);
    let held: Vec<_> = ["f1", "f2", "f3"]
        .iter()
        .map(|id| tasklease::hold(s.clone(), &claim(&*s, id, length), length).unwrap())
        .collect();
    let named = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter(|t| {
                let comm = t.as_ref().unwrap().path().join("comm");
                std::fs::read_to_string(comm).unwrap_or_default().trim() == "tasklease-hold"
            })
            .count()
    };
    // A new thread names itself once it runs: give it time to.
    let end = Instant::now() + BOUND;
    while named() == 0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(named(), 1);
    drop(held);
}

#[test]
fn the_async_wait_sees_a_loss() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(&sqlite(&dir), Duration::from_secs(30));
    let length = ms(1500);
    let lease = claim(&*s, "g", length);
    let held = tasklease::hold(s.clone(), &lease, length).unwrap();
    s.release_force(&lease.task, ReleaseTo::Todo, &me())
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let trust = rt.block_on(async { tokio::time::timeout(BOUND, held.lost_async()).await });
    assert_eq!(trust.unwrap(), Trust::Lost);
}

/// Async code claims through `AsyncStore` and holds without calling the store from
/// inside the runtime (PostgreSQL's store must not be), then awaits the loss.
#[test]
fn async_code_holds_a_lease_claimed_through_the_async_facade() {
    each_store(|spec| {
        let s = open(spec, Duration::from_secs(30));
        let length = ms(1500);
        let id = TaskId::new("h").unwrap();
        s.add(&NewTask {
            id: Some(id.clone()),
            title: "t".into(),
            ..Default::default()
        })
        .unwrap();
        let facade = tasklease::asynchronous::AsyncStore::new(s.clone()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let trust = rt.block_on(async {
            let sent = Instant::now();
            let lease = match facade.claim(id.clone(), length, None, me()).await.unwrap() {
                ClaimOutcome::Claimed(l) => l,
                ClaimOutcome::Refused(r) => panic!("{r}"),
            };
            let held = tasklease::hold_from(s.clone(), &lease, length, sent).unwrap();
            // Past the lease's own end: only the renewal thread keeps it.
            tokio::time::sleep(Duration::from_millis(2500)).await;
            assert!(held.is_trusted(), "{held:?}");
            facade
                .release_force(id.clone(), ReleaseTo::Todo, me())
                .await
                .unwrap();
            tokio::time::timeout(BOUND, held.lost_async()).await
        });
        assert_eq!(trust.unwrap(), Trust::Lost);
    });
}
