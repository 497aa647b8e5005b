//! A process serving other processes' claims (the SQLite writer queue) killed between
//! its commit and marking the replies answered: every claimer it served must still
//! learn of exactly the task committed for it — never be granted a second one while
//! the first stays held in its name. Real processes; the kill is a failpoint that
//! only test builds have (`TASKLEASE_FAILPOINT=queue-after-commit`: abort right after
//! the commit).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::bin;
use serde_json::Value;

const SURVIVORS: usize = 3;

fn worker(db: &str, agent: &str, mode: &str, seconds: f64, failpoint: Option<&str>) -> Child {
    let start_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let secs = seconds.to_string();
    let mut c = Command::new(bin());
    c.args(["--db", db, "bench-worker", "--mode", mode])
        .args(["--seconds", &secs, "--start-at", &start_at])
        .env("TASKLEASE_AGENT", agent)
        .env_remove("TASKLEASE_DB")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(name) = failpoint {
        c.env("TASKLEASE_FAILPOINT", name);
    }
    c.spawn().unwrap()
}

#[test]
fn a_server_killed_after_its_commit_grants_each_claim_once() {
    let (dir, reported) = crash_while_claiming("next", "queue-after-commit");
    each_holds_what_it_was_told(&dir.path().join("crash.db"), &reported);
}

/// Servers killed right before their commit, their replies written (in doubt): none
/// may reach a survivor as if granted, and every request is served again.
#[test]
fn a_server_killed_before_its_commit_grants_nothing() {
    let (dir, reported) = crash_while_claiming("next", "queue-before-commit");
    each_holds_what_it_was_told(&dir.path().join("crash.db"), &reported);
}

/// What the database says each survivor holds is exactly what it was told.
fn each_holds_what_it_was_told(
    db: &std::path::Path,
    reported: &BTreeMap<String, BTreeSet<String>>,
) {
    let held = tasks_of_survivors(db, "in_progress");
    for (agent, told) in reported {
        let holds = held.get(agent).cloned().unwrap_or_default();
        let orphans: Vec<_> = holds.difference(told).collect();
        let missing: Vec<_> = told.difference(&holds).collect();
        assert!(
            orphans.is_empty() && missing.is_empty(),
            "{agent}: held but never told {orphans:?}; told but not held {missing:?}"
        );
    }
}

/// The same with `done` after each claim, combined through the board too: every task a
/// survivor was told of is finished exactly once, and none is left held.
#[test]
fn a_server_killed_after_its_commit_finishes_each_done_once() {
    let (dir, reported) = crash_while_claiming("next-done", "queue-after-commit");
    let db = dir.path().join("crash.db");
    let held = tasks_of_survivors(&db, "in_progress");
    assert!(
        held.is_empty(),
        "claims never told, or dones lost: {held:?}"
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    for (agent, told) in &reported {
        for task in told {
            let (status, dones): (String, i64) = conn
                .query_row(
                    "SELECT status, (SELECT count(*) FROM events
                                      WHERE task = ?1 AND kind = 'done')
                       FROM tasks WHERE id = ?1",
                    [task],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap();
            assert_eq!((status.as_str(), dones), ("done", 1), "{agent}: {task}");
        }
    }
}

/// The tasks each survivor holds in `status`, from the database.
fn tasks_of_survivors(db: &std::path::Path, status: &str) -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(bin())
        .args([
            "--db",
            db.to_str().unwrap(),
            "list",
            "--status",
            status,
            "--json",
        ])
        .env_remove("TASKLEASE_DB")
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in listed["tasks"].as_array().unwrap() {
        if let Some(who) = t["assignee"]
            .as_str()
            .filter(|w| w.starts_with("survivor-"))
        {
            held.entry(who.to_owned())
                .or_default()
                .insert(t["id"].as_str().unwrap().to_owned());
        }
    }
    held
}

/// Three survivors loop `mode` while servers that die right after their first commit
/// come and go; returns the directory and what each survivor reported claiming.
fn crash_while_claiming(
    mode: &str,
    failpoint: &str,
) -> (tempfile::TempDir, BTreeMap<String, BTreeSet<String>>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    tasklease_sqlite::bench::prefill(
        &path,
        20_000,
        false,
        false,
        tasklease_sqlite::Synchronous::Normal,
    )
    .unwrap();
    let db = path.to_str().unwrap();
    let survivors: Vec<Child> = (0..SURVIVORS)
        .map(|i| worker(db, &format!("survivor-{i}"), mode, 4.0, None))
        .collect();
    // Servers that die the first time they commit, one after another while the
    // survivors claim; count those that died holding other agents' claims.
    let mut killed_serving_others = 0;
    let mut crashers = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        crashers += 1;
        let out = worker(
            db,
            &format!("crasher-{crashers}"),
            "next",
            2.0,
            Some(failpoint),
        )
        .wait_with_output()
        .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && err.contains(&format!("failpoint {failpoint}: served")) {
            if err
                .lines()
                .any(|l| l.contains("failpoint") && l.contains("survivor-"))
            {
                killed_serving_others += 1;
            }
        } else {
            assert!(out.status.success(), "crasher failed otherwise: {err}");
        }
    }
    let mut reported: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in survivors {
        let out = c.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "a survivor failed: {err}");
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        let agent = r["agent"].as_str().unwrap().to_owned();
        let claims = r["claims"].as_array().unwrap();
        assert!(!claims.is_empty(), "{agent} claimed nothing");
        let tasks = reported.entry(agent).or_default();
        for c in claims {
            assert!(tasks.insert(c[0].as_str().unwrap().to_owned()), "{c} twice");
        }
    }
    assert!(
        killed_serving_others > 0,
        "no crasher died serving a survivor in {crashers} tries: the test proved nothing"
    );
    (dir, reported)
}
