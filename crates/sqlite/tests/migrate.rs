//! Upgrading a database written by an older tasklease keeps its history.

use tasklease_core::{AgentId, EventKind, LeaseDuration, Store, TaskId};
use tasklease_sqlite::{LATEST_VERSION, Options, SqliteStore};

const V1: &str = include_str!("../migrations/0001_init.sql");

#[test]
fn v1_history_survives_the_upgrade_to_v2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute_batch(
            "INSERT INTO tasks (id, title, created_at, updated_at) VALUES ('t', 'old', 1, 1);
             INSERT INTO events (at, task, kind, agent, token, detail)
                  VALUES (5, 't', 'released', 'old-agent', 1, 'to todo');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, &Options::default()).unwrap();
    assert_eq!(
        (store.migrated().from, store.migrated().to),
        (1, LATEST_VERSION)
    );
    assert!(store.migrated().backup.as_ref().unwrap().exists());
    let t = TaskId::new("t").unwrap();
    let old = store.log(Some(&t), 10).unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].kind, EventKind::Released);
    assert_eq!(old[0].detail.as_deref(), Some("to todo"));
    assert_eq!(
        (old[0].lease_ms, old[0].wait_us, old[0].busy),
        (None, None, None)
    );
    // New events go after the old ones, with the new columns filled in.
    let me = AgentId::new("new-agent").unwrap();
    store.claim(&t, &me, LeaseDuration::DEFAULT, None).unwrap();
    let log = store.log(Some(&t), 10).unwrap();
    assert_eq!(log.len(), 2);
    assert!(log[1].seq > log[0].seq);
    assert_eq!(log[1].kind, EventKind::Claimed);
    assert_eq!(log[1].lease_ms, Some(LeaseDuration::DEFAULT.as_millis()));
    assert!(log[1].wait_us.is_some());
}
