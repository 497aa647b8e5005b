//! The contention figures in the history are real: a claim that had to wait for
//! another writer records the wait and SQLite's busy retries.

use std::time::Duration;

use tasklease_core::{AgentId, LeaseDuration, NewTask, Store, TaskId};
use tasklease_sqlite::{Options, SqliteStore};

#[test]
fn a_claim_behind_another_writer_records_its_wait_and_retries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.db");
    let store = SqliteStore::open(&path, &Options::default()).unwrap();
    let add = |id: &str| {
        let id = TaskId::new(id).unwrap();
        store
            .add(&NewTask {
                id: Some(id.clone()),
                title: "t".into(),
                ..Default::default()
            })
            .unwrap();
        id
    };
    let (t, free) = (add("t"), add("free"));
    let me = AgentId::new("me").unwrap();

    // Uncontended: no retries.
    store
        .claim(&free, LeaseDuration::DEFAULT, None, &me)
        .unwrap();
    assert_eq!(store.log(Some(&free), 1).unwrap()[0].busy, Some(0));

    // Another connection holds the write lock for a while.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    const HOLD: Duration = Duration::from_millis(500);
    let holder = std::thread::spawn(move || {
        std::thread::sleep(HOLD);
        other.execute_batch("COMMIT").unwrap();
    });
    store.claim(&t, LeaseDuration::DEFAULT, None, &me).unwrap();
    holder.join().unwrap();
    let e = &store.log(Some(&t), 1).unwrap()[0];
    assert!(e.busy.unwrap() >= 1, "{e:?}");
    assert!(e.wait_us.unwrap() > 0, "{e:?}");
}
