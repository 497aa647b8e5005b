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

fn worker(db: &str, agent: &str, seconds: f64, failpoint: bool) -> Child {
    let start_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let secs = seconds.to_string();
    let mut c = Command::new(bin());
    c.args(["--db", db, "bench-worker", "--mode", "next"])
        .args(["--seconds", &secs, "--start-at", &start_at])
        .env("TASKLEASE_AGENT", agent)
        .env_remove("TASKLEASE_DB")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if failpoint {
        c.env("TASKLEASE_FAILPOINT", "queue-after-commit");
    }
    c.spawn().unwrap()
}

#[test]
fn a_server_killed_after_its_commit_grants_each_claim_once() {
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
        .map(|i| worker(db, &format!("survivor-{i}"), 4.0, false))
        .collect();
    // Servers that die the first time they commit, one after another while the
    // survivors claim; count those that died holding other agents' claims.
    let mut killed_serving_others = 0;
    let mut crashers = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        crashers += 1;
        let out = worker(db, &format!("crasher-{crashers}"), 2.0, true)
            .wait_with_output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && err.contains("failpoint queue-after-commit: served") {
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
    // What the database says each survivor holds is exactly what it was told.
    let out = Command::new(bin())
        .args(["--db", db, "list", "--status", "in_progress", "--json"])
        .env_remove("TASKLEASE_DB")
        .output()
        .unwrap();
    assert!(out.status.success());
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut held: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for t in listed["tasks"].as_array().unwrap() {
        let who = t["assignee"].as_str().unwrap();
        if who.starts_with("survivor-") {
            held.entry(who.to_owned())
                .or_default()
                .insert(t["id"].as_str().unwrap().to_owned());
        }
    }
    for (agent, told) in &reported {
        let holds = held.remove(agent).unwrap_or_default();
        let orphans: Vec<_> = holds.difference(told).collect();
        let missing: Vec<_> = told.difference(&holds).collect();
        assert!(
            orphans.is_empty() && missing.is_empty(),
            "{agent}: held but never told {orphans:?}; told but not held {missing:?} \
             ({killed_serving_others} of {crashers} crashers died serving survivors)"
        );
    }
}
