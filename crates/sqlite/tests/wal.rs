//! How a one-shot process (a CLI call) leaves the WAL: no checkpoint when it closes
//! (that cost a CLI call three or four fsyncs), but a WAL grown past the trim mark is
//! emptied by the process that closes it — unless others are using the database, who
//! are never waited for.

use std::path::Path;
use std::time::{Duration, Instant};

use tasklease_core::{NewTask, Store, TaskId};
use tasklease_sqlite::{Options, SqliteStore, Synchronous};

fn one_shot() -> Options {
    Options {
        one_shot: true,
        ..Options::default()
    }
}

fn add(store: &SqliteStore, from: usize, n: usize) {
    for i in from..from + n {
        store
            .add(&NewTask {
                id: Some(TaskId::new(&format!("t-{i}")).unwrap()),
                title: format!("task {i} with a title long enough to fill pages"),
                ..NewTask::default()
            })
            .unwrap();
    }
}

fn wal_len(db: &Path) -> u64 {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).map_or(0, |m| m.len())
}

fn count(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM tasks", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_short_wal_is_left_for_the_next_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    drop(SqliteStore::open(&db, &Options::default()).unwrap());
    let store = SqliteStore::open(&db, &one_shot()).unwrap();
    add(&store, 0, 3);
    drop(store);
    assert!(wal_len(&db) > 0, "closing checkpointed a short WAL");
    assert_eq!(count(&db), 3);
}

#[test]
fn a_long_wal_is_emptied_by_the_last_one_shot_to_close() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let store = SqliteStore::open(&db, &one_shot()).unwrap();
    add(&store, 0, 400);
    let before = wal_len(&db);
    assert!(
        before > 64 * 4096,
        "the test wrote too little: {before} bytes"
    );
    drop(store);
    assert_eq!(wal_len(&db), 0, "closing left the WAL at {before} bytes");
    assert_eq!(count(&db), 400);
    // Still a WAL database that takes writes.
    let store = SqliteStore::open(&db, &one_shot()).unwrap();
    add(&store, 400, 1);
    drop(store);
    assert_eq!(count(&db), 401);
}

#[test]
fn a_reader_is_not_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    drop(SqliteStore::open(&db, &Options::default()).unwrap());
    // Another process's connection, in the middle of a read.
    let other = rusqlite::Connection::open(&db).unwrap();
    other
        .execute_batch("BEGIN; SELECT count(*) FROM tasks;")
        .unwrap();
    let store = SqliteStore::open(&db, &one_shot()).unwrap();
    add(&store, 0, 400);
    let start = Instant::now();
    drop(store);
    // The busy timeout is 30 s; not waiting at all is far below this bound.
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(wal_len(&db) > 0, "the WAL was truncated under a reader");
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&db), 400);
}

/// 3,000 adds through one long-running store opened with `opts`: each writes a few
/// frames, so without checkpoints the WAL would pass 8,000. The checkpoints may run on
/// a thread of their own, which may lag behind the adds.
fn wal_stays_bounded(opts: &Options) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let store = SqliteStore::open(&db, opts).unwrap();
    add(&store, 0, 3000);
    let frames = wal_len(&db) / 4120;
    assert!(frames < 4000, "the WAL grew to {frames} frames");
    drop(store);
    assert_eq!(count(&db), 3000);
}

#[test]
fn a_long_running_process_keeps_the_wal_bounded() {
    wal_stays_bounded(&Options::default());
}

/// Without the writer queue there is no turn to finish a checkpoint on while the store
/// writes on: such a store checkpoints between its operations, and its WAL stays
/// bounded too (a checkpoint thread's passes never caught up with it).
#[test]
fn a_long_running_process_without_the_queue_keeps_the_wal_bounded() {
    wal_stays_bounded(&Options {
        queue: false,
        ..Options::default()
    });
}

/// The raw baseline is plain SQLite: it checkpoints inside its commits, as SQLite does
/// by default, not the way our connections do (it would never checkpoint at all).
#[test]
fn the_raw_baseline_checkpoints_like_plain_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("raw.db");
    tasklease_sqlite::bench::prefill(&db, 4000, false, true, Synchronous::Normal).unwrap();
    let mut raw = tasklease_sqlite::bench::RawClaimer::open(&db, Synchronous::Normal).unwrap();
    for _ in 0..3000 {
        raw.claim_next(60_000, "a").unwrap().expect("a task");
    }
    let frames = wal_len(&db) / 4120;
    assert!(frames < 1500, "the WAL grew to {frames} frames");
}

#[test]
fn a_long_running_process_at_full_keeps_the_wal_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let opts = Options {
        synchronous: Synchronous::Full,
        ..Options::default()
    };
    let store = SqliteStore::open(&db, &opts).unwrap();
    add(&store, 0, 1500);
    let frames = wal_len(&db) / 4120;
    assert!(frames < 1500, "the WAL grew to {frames} frames");
    drop(store);
    assert_eq!(count(&db), 1500);
}
