//! The renewal loop against a real SQLite file, with short leases. Time bounds are
//! generous: they check that things happen, not how fast.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tasklease::keepalive::{self, Beat, KeepAlive};
use tasklease::open::{DbSpec, OpenOptions};
use tasklease::{AgentId, ClaimOutcome, Lease, LeaseDuration, NewTask, ReleaseTo, Store, TaskId};

fn store(path: &std::path::Path, busy: Duration) -> Arc<dyn Store> {
    let spec = DbSpec::Sqlite {
        path: path.to_owned(),
        explicit: true,
    };
    let opts = OpenOptions::default().busy_timeout(busy);
    tasklease::open::init(&spec, &opts).unwrap();
    Arc::from(tasklease::open::open(&spec, &opts).unwrap())
}

fn claim(s: &dyn Store, length: LeaseDuration) -> Lease {
    let t = TaskId::new("t").unwrap();
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

fn start(
    s: &Arc<dyn Store>,
    l: &Lease,
    length: LeaseDuration,
) -> (KeepAlive, mpsc::Receiver<Beat>) {
    let (tx, rx) = mpsc::channel();
    let k = KeepAlive::start(s.clone(), l, length, Instant::now(), me(), move |b| {
        let _ = tx.send(b);
    })
    .unwrap();
    (k, rx)
}

#[test]
fn the_deadline_leaves_a_margin() {
    let now = Instant::now();
    let l = ms(600);
    assert_eq!(keepalive::margin(l), Duration::from_millis(120));
    assert_eq!(
        keepalive::trusted_until(now, l),
        now + Duration::from_millis(480)
    );
    assert_eq!(keepalive::period(l), Duration::from_millis(200));
    assert_eq!(
        keepalive::margin(LeaseDuration::DEFAULT),
        Duration::from_secs(60)
    );
    assert_eq!(keepalive::retry_after(ms(100)), Duration::from_millis(50));
    assert_eq!(
        keepalive::retry_after(LeaseDuration::DEFAULT),
        Duration::from_secs(2)
    );
}

#[test]
fn renews_through_several_lease_periods() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir.path().join("t.db"), Duration::from_secs(30));
    let length = ms(300);
    let l = claim(&*s, length);
    let (k, rx) = start(&s, &l, length);
    let mut renewed = 0;
    while renewed < 4 {
        match rx.recv_timeout(Duration::from_secs(20)).unwrap() {
            Beat::Renewed { lease, .. } => {
                assert_eq!(lease.token, l.token);
                renewed += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    k.stop();
    let t = s.show(&l.task).unwrap().unwrap();
    assert_eq!(t.assignee.as_ref(), Some(&me()));
}

#[test]
fn a_forced_release_is_reported_lost_and_ends_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir.path().join("t.db"), Duration::from_secs(30));
    let length = ms(300);
    let l = claim(&*s, length);
    let (_k, rx) = start(&s, &l, length);
    s.release_force(&l.task, ReleaseTo::Todo, &AgentId::new("admin").unwrap())
        .unwrap();
    match rx.recv_timeout(Duration::from_secs(20)).unwrap() {
        Beat::Lost(e) => assert!(keepalive::is_lost(&e), "{e}"),
        other => panic!("{other:?}"),
    }
    // The loop has ended: its sender is gone.
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(5)),
        Err(mpsc::RecvTimeoutError::Disconnected)
    ));
}

#[test]
fn a_busy_database_is_retried_not_taken_for_a_lost_lease() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let s = store(&path, Duration::from_millis(20));
    let length = ms(3000);
    let l = claim(&*s, length);
    // Another writer holds the lock well past the renewer's busy timeout.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (k, rx) = start(&s, &l, length);
    let first = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    assert!(matches!(first, Beat::Retrying { .. }), "{first:?}");
    other.execute_batch("COMMIT").unwrap();
    let next = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(20)).ok())
        .find(|b| !matches!(b, Beat::Retrying { .. }))
        .unwrap();
    assert!(matches!(next, Beat::Renewed { .. }), "{next:?}");
    k.stop();
}
