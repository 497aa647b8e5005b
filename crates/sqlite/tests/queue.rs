//! The writer queue with real contention: separate handles (each its own connection,
//! lock files and slot, exactly as separate processes would have), and a turn holder
//! that dies.

use std::collections::HashSet;
use std::path::Path;

use tasklease_core::{AgentId, LeaseDuration, Store};
use tasklease_sqlite::bench::prefill;
use tasklease_sqlite::{Options, SqliteStore, Synchronous};

fn claim_many(path: &Path, who: usize, n: usize) -> Vec<String> {
    let store = SqliteStore::open(path, &Options::default()).expect("open");
    let me = AgentId::new(&format!("q{who}")).unwrap();
    (0..n)
        .map(|_| {
            store
                .claim_next(LeaseDuration::MAX, &me)
                .expect("claim")
                .expect("a task")
                .task
                .to_string()
        })
        .collect()
}

#[test]
fn combined_claims_from_many_handles_are_all_distinct() {
    const HANDLES: usize = 8;
    const EACH: usize = 150;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    prefill(
        &path,
        (HANDLES * EACH + 50) as u64,
        false,
        false,
        Synchronous::Normal,
    )
    .unwrap();
    let all: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..HANDLES)
            .map(|i| {
                let path = &path;
                s.spawn(move || claim_many(path, i, EACH))
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(all.len(), HANDLES * EACH);
    assert_eq!(distinct.len(), all.len(), "a task was claimed twice");
    // The history agrees: one claimed event per claim.
    let store = SqliteStore::open(&path, &Options::default()).unwrap();
    assert_eq!(store.log(None, 100_000).unwrap().len(), HANDLES * EACH);
}

#[cfg(unix)]
#[test]
fn claimers_carry_on_when_the_turn_holder_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    prefill(&path, 200, false, false, Synchronous::Normal).unwrap();
    // Create the queue directory, then let another process take the turn and hang.
    drop(SqliteStore::open(&path, &Options::default()).unwrap());
    let turn = dir.path().join("q.db-queue/turn");
    // -o: the lock stays with flock(1) itself, not the sleep it runs.
    let mut holder = std::process::Command::new("flock");
    holder.arg("-o").arg(&turn).args(["sleep", "30"]);
    std::os::unix::process::CommandExt::process_group(&mut holder, 0);
    let mut holder = holder.spawn().expect("flock(1) from util-linux");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let started = std::time::Instant::now();
    let got: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|i| {
                let path = &path;
                s.spawn(move || claim_many(path, i, 10))
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let group = format!("-{}", holder.id());
        let killed = std::process::Command::new("kill")
            .args(["-9", "--", &group])
            .status();
        assert!(killed.unwrap().success());
        holder.wait().unwrap();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let distinct: HashSet<&String> = got.iter().collect();
    assert_eq!(distinct.len(), 40);
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(300),
        "claimed past a held turn"
    );
    assert!(took < std::time::Duration::from_secs(20), "claimers hung");
}

/// A long-running store takes its place in the queue as it opens, not in its first
/// claim (taking one waits for a turn, and agents starting together made each other's
/// first claims slow); a one-shot store never takes one.
#[cfg(unix)]
#[test]
fn a_long_running_store_takes_its_slot_when_it_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    let slot = |i: usize| dir.path().join(format!("q.db-queue/slot-{i:02}.sock"));
    let long = SqliteStore::open(&path, &Options::default()).unwrap();
    assert!(slot(0).exists(), "the long-running store's wake-up socket");
    let one_shot = Options {
        one_shot: true,
        ..Options::default()
    };
    let cli = SqliteStore::open(&path, &one_shot).unwrap();
    cli.claim_next(LeaseDuration::DEFAULT, &AgentId::new("cli").unwrap())
        .unwrap();
    assert!(!slot(1).exists(), "a one-shot store took a slot");
    let second = SqliteStore::open(&path, &Options::default()).unwrap();
    assert!(slot(1).exists(), "the second long-running store's");
    drop((long, cli, second));
}

/// A `done` retried by the token that already finished the task is a repeat whichever
/// way it runs: through the board (where it "does not match" and runs again on its
/// caller's own turn) or alone on a free turn. The test holds the turn while each done
/// is posted, so it cannot take the free turn alone.
#[test]
fn a_retried_done_is_a_repeat_through_the_board_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    prefill(&path, 3, false, false, Synchronous::Normal).unwrap();
    let store = SqliteStore::open(&path, &Options::default()).unwrap();
    let me = AgentId::new("q").unwrap();
    let l = store.claim_next(LeaseDuration::MAX, &me).unwrap().unwrap();
    let mut turn = tasklease_filelock::LockFile::open(dir.path().join("q.db-queue/turn")).unwrap();
    let mut done_with_turn_held = || {
        let held = turn.lock_exclusive().unwrap();
        std::thread::scope(|s| {
            let h = s.spawn(|| store.done(&l.task, &l.token, &me));
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(held);
            h.join().unwrap().unwrap()
        })
    };
    let first = done_with_turn_held();
    assert!(!first.repeat);
    let again = done_with_turn_held();
    assert!(again.repeat, "the board's retry came out as a refusal");
    assert_eq!(again.task, first.task);
    // And alone on a free turn.
    assert!(store.done(&l.task, &l.token, &me).unwrap().repeat);
    let dones = store
        .log(Some(&l.task), 100)
        .unwrap()
        .iter()
        .filter(|e| e.kind == tasklease_core::EventKind::Done)
        .count();
    assert_eq!(dones, 1);
}

/// A claim-next with a claim key is combined through the board like any other: the
/// key travels in the request record, and the serving turn looks it up and stores it
/// in the claim's transaction, so a retry with the same key answers with the same
/// grant. (It used to run on a turn of its own, off the board.) The test holds the
/// turn while each claim is posted, so it cannot take the free turn alone.
#[test]
fn a_keyed_claim_next_is_served_through_the_board() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.db");
    prefill(&path, 3, false, false, Synchronous::Normal).unwrap();
    let store = SqliteStore::open(&path, &Options::default()).unwrap();
    let me = AgentId::new("q").unwrap();
    let key = tasklease_core::RequestId::new("job-42.attempt:1").unwrap();
    let board = dir.path().join("q.db-queue/board");
    let mut turn = tasklease_filelock::LockFile::open(dir.path().join("q.db-queue/turn")).unwrap();
    let mut claim_with_turn_held = |key: &tasklease_core::RequestId| {
        let held = turn.lock_exclusive().unwrap();
        std::thread::scope(|s| {
            let h = s.spawn(|| store.claim_next_keyed(LeaseDuration::MAX, Some(key), &me));
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(held);
            h.join().unwrap().unwrap().expect("a task")
        })
    };
    let first = claim_with_turn_held(&key);
    let on_board = std::fs::read(&board).unwrap();
    assert!(
        on_board
            .windows(key.as_str().len())
            .any(|w| w == key.as_str().as_bytes()),
        "the keyed claim did not go through the board"
    );
    let again = claim_with_turn_held(&key);
    assert_eq!(
        again, first,
        "a retry with the same key must get the same grant"
    );
    let other = claim_with_turn_held(&tasklease_core::RequestId::new("job-43").unwrap());
    assert_ne!(other.task, first.task, "another key claims another task");
    let claims = store
        .log(Some(&first.task), 100)
        .unwrap()
        .iter()
        .filter(|e| e.kind == tasklease_core::EventKind::Claimed)
        .count();
    assert_eq!(claims, 1, "the retry claimed again");
}
