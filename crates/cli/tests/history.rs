//! `log`, `status`, and the history's retention bound, through the built binary.

mod common;

use std::time::Duration;

use common::Project;
use serde_json::Value;

fn kinds(v: &Value) -> Vec<String> {
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn log_shows_each_step_with_refusals_and_refuses_unknown_ids(p: &Project) {
    p.ok(&["add", "t", "--id", "t"]);
    p.ok(&["add", "u", "--id", "u"]);
    let c = p.json(&["claim", "t", "--agent", "alice", "--lease", "10m"], 0);
    let tok = c["token"].to_string();
    p.json(&["claim", "t", "--agent", "bob"], 3);
    p.json(&["renew", "t", "--token", &tok, "--lease", "20m"], 0);
    p.json(&["done", "t", "--token", &tok], 0);
    p.json(&["claim", "u"], 0);

    let all = p.json(&["log"], 0);
    assert_eq!(all["count"], 5);
    assert_eq!(
        kinds(&all),
        ["claimed", "refused", "renewed", "done", "claimed"]
    );
    let e = &all["events"][0];
    assert_eq!(e["agent"], "alice");
    assert_eq!(e["lease_ms"], 600_000);
    assert!(e["wait_us"].as_i64().unwrap() >= 0);
    assert_eq!(e["busy"], 0);
    assert!(e["at"].as_str().unwrap().ends_with('Z'));
    let refused = &all["events"][1];
    assert_eq!(refused["agent"], "bob");
    assert_eq!(refused["token"], Value::Null);
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("held by alice")
    );
    assert_eq!(all["events"][2]["lease_ms"], 1_200_000);

    let t = p.json(&["log", "t", "--limit", "2"], 0);
    assert_eq!(kinds(&t), ["renewed", "done"]);
    let human = p.ok(&["log", "t"]);
    // A header, then one row per event.
    assert_eq!(human.lines().count(), 5, "{human}");
    assert!(human.lines().next().unwrap().starts_with("AT "), "{human}");
    assert!(human.contains("refused") && human.contains("held by alice"));
    p.json(&["log", "ghost"], 2);
    p.json(&["log", "--limit", "-1"], 2);
}

fn status_reports_holders_contention_and_lease_advice(p: &Project) {
    for id in ["x1", "x2", "x3", "q1", "q2", "q3", "gone", "live", "idle"] {
        p.ok(&["add", id, "--id", id]);
    }
    // Three leases of 300ms run out: too short.
    for id in ["x1", "x2", "x3"] {
        p.json(&["claim", id, "--lease", "300ms", "--agent", "slow"], 0);
    }
    // Three leases of 1h held for a moment and never renewed: too long.
    for id in ["q1", "q2", "q3"] {
        let c = p.json(&["claim", id, "--lease", "1h"], 0);
        p.json(&["done", id, "--token", &c["token"].to_string()], 0);
    }
    std::thread::sleep(Duration::from_millis(500));
    p.json(&["reap"], 0);
    p.json(
        &["claim", "gone", "--lease", "300ms", "--agent", "ghost"],
        0,
    );
    p.json(&["claim", "live", "--lease", "1h", "--agent", "alice"], 0);
    p.json(&["claim", "live", "--agent", "bob"], 3);
    std::thread::sleep(Duration::from_millis(400));

    let s = p.json(&["status"], 0);
    assert_eq!(s["tasks"]["todo"], 4, "{s}");
    assert_eq!(s["tasks"]["in_progress"], 2);
    assert_eq!(s["tasks"]["done"], 3);
    assert_eq!(s["total"], 9);
    let held = s["held"].as_array().unwrap();
    let standing =
        |id: &str| -> Value { held.iter().find(|h| h["id"] == id).unwrap()["standing"].clone() };
    assert_eq!(held.len(), 2);
    assert_eq!(standing("gone"), "expired");
    assert_eq!(standing("live"), "live");
    assert_eq!(s["expired"], 1);
    let live = held.iter().find(|h| h["id"] == "live").unwrap();
    assert_eq!(live["holder"], "alice");
    assert_eq!(live["lease_ms"], 3_600_000);
    assert!(live["left_ms"].as_i64().unwrap() > 3_000_000);

    let c = &s["contention"];
    assert_eq!(c["won"], 8);
    assert_eq!(c["lost"], 1);
    assert!(c["wait_us_p50"].as_i64().is_some());
    assert!(c["wait_us_p99"].as_i64() >= c["wait_us_p50"].as_i64());

    let leases = s["leases"].as_array().unwrap();
    let verdict = |ms: i64| -> Value {
        leases.iter().find(|l| l["lease_ms"] == ms).unwrap()["verdict"].clone()
    };
    assert_eq!(verdict(300), "too_short");
    assert_eq!(verdict(3_600_000), "too_long");
    let short = leases.iter().find(|l| l["lease_ms"] == 300).unwrap();
    assert_eq!(short["expired"], 3);
    assert!(short["advice"].as_str().unwrap().contains("tasklease run"));

    let human = p.ok(&["status"]);
    for needle in [
        "4 todo",
        "gone",
        "expired",
        "too short",
        "too long",
        "1 lost",
    ] {
        assert!(human.contains(needle), "{needle} missing from:\n{human}");
    }
}

fn reap_prunes_the_history_to_its_bound(p: &Project) {
    p.ok(&["add", "t", "--id", "t"]);
    let c = p.json(&["claim", "t"], 0);
    let tok = c["token"].to_string();
    for _ in 0..6 {
        p.json(&["renew", "t", "--token", &tok], 0);
    }
    assert_eq!(p.json(&["log"], 0)["count"], 7);
    // Bad bounds are refused and delete nothing.
    p.json(&["reap", "--keep-events", "0"], 2);
    p.json(&["reap", "--keep-for", "0s"], 2);
    p.json(&["reap", "--keep-events", "many"], 2);
    assert_eq!(p.json(&["log"], 0)["count"], 7);
    let r = p.json(&["reap", "--keep-events", "5"], 0);
    assert_eq!(r["pruned"], 2);
    assert_eq!(p.json(&["log"], 0)["count"], 5);
    // The bound can come from the environment.
    let out = p
        .cmd(&["reap", "--json"])
        .env("TASKLEASE_KEEP_EVENTS", "3")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(common::parse_one(&out.stdout)["pruned"], 2);
    let log = p.json(&["log"], 0);
    assert_eq!(kinds(&log), ["renewed", "renewed", "renewed"]);
    p.json(&["reap", "--keep-events", "all", "--keep-for", "all"], 0);
    assert_eq!(p.json(&["log"], 0)["count"], 3);
}

each_store!(
    log_shows_each_step_with_refusals_and_refuses_unknown_ids,
    status_reports_holders_contention_and_lease_advice,
    reap_prunes_the_history_to_its_bound,
);

/// `status` lists the ten holds that expire soonest, nearest first, says how many more
/// there are, and `--all` lists every one; `--json` always has every one.
#[test]
fn status_summarises_holders_nearest_expiry_first() {
    let p = Project::new();
    for i in 1..=12 {
        let id = format!("t{i:02}");
        p.ok(&["add", &id, "--id", &id]);
        // t12 expires first, t01 last.
        let lease = format!("{}m", 20 - i);
        p.json(&["claim", &id, "--lease", &lease, "--agent", "a"], 0);
    }
    let rows = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with('t') && l.as_bytes().get(1).is_some_and(u8::is_ascii_digit))
            .map(|l| l.split_whitespace().next().unwrap().to_owned())
            .collect()
    };
    let human = p.ok(&["status"]);
    let shown = rows(&human);
    assert_eq!(shown.len(), 10, "{human}");
    assert_eq!(
        (shown[0].as_str(), shown[9].as_str()),
        ("t12", "t03"),
        "{human}"
    );
    assert!(
        human.contains("… and 2 more held (tasklease status --all"),
        "{human}"
    );
    let all = p.ok(&["status", "--all"]);
    assert_eq!(rows(&all).len(), 12, "{all}");
    assert!(!all.contains("more held"), "{all}");
    assert_eq!(p.json(&["status"], 0)["held"].as_array().unwrap().len(), 12);
}
