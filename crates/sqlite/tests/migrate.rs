//! Migrations on real files: upgrading a database written by an older tasklease keeps
//! its history; one written by a newer tasklease is refused and left untouched;
//! reopening an up-to-date database changes nothing.

use tasklease_core::{AgentId, Error, EventKind, LeaseDuration, Store, TaskId};
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
    store.claim(&t, LeaseDuration::DEFAULT, None, &me).unwrap();
    let log = store.log(Some(&t), 10).unwrap();
    assert_eq!(log.len(), 2);
    assert!(log[1].seq > log[0].seq);
    assert_eq!(log[1].kind, EventKind::Claimed);
    assert_eq!(log[1].lease_ms, Some(LeaseDuration::DEFAULT.as_millis()));
    assert!(log[1].wait_us.is_some());
}

#[test]
fn a_newer_schema_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(SqliteStore::open(&path, &Options::default()).unwrap());
    let newer = LATEST_VERSION + 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", newer)
        .unwrap();
    match SqliteStore::open(&path, &Options::default()) {
        Err(Error::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (newer, LATEST_VERSION));
        }
        Err(e) => panic!("expected SchemaTooNew, got {e}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
    let v: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, newer, "the refused database must not be changed");
}

#[test]
fn reopening_migrates_nothing_and_backs_up_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let first = SqliteStore::open(&path, &Options::default()).unwrap();
    assert_eq!(
        (first.migrated().from, first.migrated().to),
        (0, LATEST_VERSION)
    );
    drop(first);
    let again = SqliteStore::open(&path, &Options::default()).unwrap();
    assert_eq!(again.migrated().from, LATEST_VERSION);
    assert!(again.migrated().backup.is_none());
}

/// Builds the schema as tasklease version `v` left it (its `user_version` is the
/// test's to set), for an upgrade test.
fn schema_at(conn: &rusqlite::Connection, v: usize) {
    let migrations = [
        V1,
        include_str!("../migrations/0002_history.sql"),
        include_str!("../migrations/0003_retries.sql"),
        include_str!("../migrations/0004_graph.sql"),
    ];
    for m in &migrations[..v] {
        conn.execute_batch(m).unwrap();
    }
}

/// Migration 0004: a dependency cancelled before the upgrade stops blocking its
/// dependant at once — the migration recounts every `waiting_on` under the new rule.
#[test]
fn upgrade_to_v4_recounts_waiting_on_for_cancelled_deps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        schema_at(&conn, 3);
        conn.execute_batch(
            "INSERT INTO tasks (id, title, created_at, updated_at) VALUES ('a', 'a', 1, 1);
             INSERT INTO tasks (id, title, created_at, updated_at) VALUES ('b', 'b', 1, 1);
             INSERT INTO task_deps (task, dep) VALUES (2, 1);
             UPDATE tasks SET status = 'cancelled' WHERE id = 'a';
             PRAGMA user_version = 3;",
        )
        .unwrap();
        let waiting: i64 = conn
            .query_row("SELECT waiting_on FROM tasks WHERE id = 'b'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(waiting, 1, "v3 counted a cancelled dependency as blocking");
    }
    let store = SqliteStore::open(&path, &Options::default()).unwrap();
    let b = TaskId::new("b").unwrap();
    assert_eq!(store.show(&b).unwrap().unwrap().waiting_on, 0);
    let me = AgentId::new("me").unwrap();
    let got = store.claim(&b, LeaseDuration::DEFAULT, None, &me).unwrap();
    assert!(
        matches!(got, tasklease_core::ClaimOutcome::Claimed(_)),
        "{got:?}"
    );
}

/// Migration 0005: tokens gain a secret. A lease live at the upgrade keeps working with
/// its bare integer until it ends; so does a retried done of a lease finished before.
#[test]
fn upgrade_to_v5_keeps_live_leases_working() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        schema_at(&conn, 4);
        conn.execute_batch(
            "INSERT INTO tasks (id, title, created_at, updated_at) VALUES ('live', 'l', 1, 1);
             INSERT INTO tasks (id, title, created_at, updated_at) VALUES ('finished', 'f', 1, 1);
             UPDATE tasks SET status = 'in_progress', assignee = 'old-agent', fence = 3,
                    assigned_at = 1,
                    lock_until = CAST(unixepoch('subsec') * 1000 AS INTEGER) + 3600000
              WHERE id = 'live';
             UPDATE tasks SET status = 'in_progress', assignee = 'old-agent', fence = 2,
                    assigned_at = 1, lock_until = 2
              WHERE id = 'finished';
             UPDATE tasks SET status = 'done', assignee = NULL, assigned_at = NULL,
                    lock_until = NULL, lease_end = 'done'
              WHERE id = 'finished';
             PRAGMA user_version = 4;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, &Options::default()).unwrap();
    assert_eq!(store.migrated().from, 4);
    tasklease_storetest::cases::pre_secret_leases_keep_working(&store);
}
