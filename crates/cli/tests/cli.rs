//! End-to-end tests of the CLI through the built binary.

mod common;

use common::{Project, parse_one};
use serde_json::Value;

#[test]
fn claim_renew_done_cycle() {
    let p = Project::new();
    p.ok(&["add", "first", "--id", "A", "-p", "high"]);
    p.ok(&["add", "second", "--dep", "A"]);
    let c = p.json(&["claim", "--next", "--lease", "10m"], 0);
    assert_eq!(c["outcome"], "claimed");
    assert_eq!(c["id"], "A");
    assert_eq!(c["agent"], "tester");
    let token = c["token"].as_i64().unwrap();
    assert!(token >= 1);
    let until = c["lock_until"].as_str().unwrap();
    assert!(until.ends_with('Z') && until.contains('T'), "{until}");
    // T-2 waits on A.
    let w = p.json(&["claim", "T-2"], 4);
    assert_eq!(w["error"]["code"], "not_claimable");
    assert_eq!(w["error"]["waiting_on"], serde_json::json!(["A"]));
    let r = p.json(
        &["renew", "A", "--token", &token.to_string(), "--lease", "1h"],
        0,
    );
    assert_eq!(r["token"].as_i64(), Some(token));
    assert!(r["lock_until_ms"].as_i64() > c["lock_until_ms"].as_i64());
    let d = p.json(&["done", "A", "--token", &token.to_string()], 0);
    assert_eq!(d["task"]["status"], "done");
    let n = p.json(&["claim", "--next"], 0);
    assert_eq!(n["id"], "T-2");
    p.json(&["claim", "--next"], 4);
}

#[test]
fn held_by_another_agent_exits_3() {
    let p = Project::new();
    p.ok(&["add", "t", "--id", "t"]);
    p.json(&["claim", "t", "--agent", "alice"], 0);
    let h = p.json(&["claim", "t", "--agent", "bob"], 3);
    assert_eq!(h["error"]["code"], "held");
    assert_eq!(h["error"]["holder"], "alice");
    let out = p.run(&["claim", "t", "--agent", "bob"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("held by alice"));
}

#[test]
fn reclaim_with_token_keeps_it() {
    let p = Project::new();
    p.ok(&["add", "t", "--id", "t"]);
    let c = p.json(&["claim", "t", "--lease", "1m"], 0);
    let tok = c["token"].to_string();
    let again = p.json(&["claim", "t", "--token", &tok, "--lease", "2h"], 0);
    assert_eq!(again["token"], c["token"]);
    assert!(again["lock_until_ms"].as_i64() > c["lock_until_ms"].as_i64());
}

#[test]
fn expiry_lets_another_agent_claim_and_fences_the_first() {
    let p = Project::new();
    p.ok(&["add", "t", "--id", "t"]);
    let a = p.json(&["claim", "t", "--agent", "a", "--lease", "300ms"], 0);
    std::thread::sleep(std::time::Duration::from_millis(450));
    let b = p.json(&["claim", "t", "--agent", "b", "--lease", "10m"], 0);
    assert!(b["token"].as_i64() > a["token"].as_i64());
    let tok = a["token"].to_string();
    for args in [
        vec!["done", "t", "--token", &tok],
        vec!["renew", "t", "--token", &tok],
        vec!["release", "t", "--token", &tok],
    ] {
        let e = p.json(&args, 5);
        assert_eq!(e["error"]["code"], "lease_lost", "{args:?}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("held by b"),
            "{e}"
        );
    }
    let show = p.json(&["show", "t"], 0);
    assert_eq!(show["task"]["assignee"], "b");
    assert_eq!(show["task"]["attempts"], 1);
}

#[test]
fn release_and_force_release() {
    let p = Project::new();
    p.ok(&["add", "t", "--id", "t"]);
    let c = p.json(&["claim", "t"], 0);
    let tok = c["token"].to_string();
    let r = p.json(&["release", "t", "--token", &tok, "--status", "review"], 0);
    assert_eq!(r["task"]["status"], "review");
    let c2 = p.json(&["claim", "t", "--agent", "stuck"], 0);
    let f = p.json(&["release", "t", "--force"], 0);
    assert_eq!(f["outcome"], "forced");
    assert_eq!(f["task"]["status"], "todo");
    p.json(&["done", "t", "--token", &c2["token"].to_string()], 5);
    // Nothing to force any more.
    p.json(&["release", "t", "--force"], 2);
    // A token or --force is required.
    p.json(&["release", "t"], 2);
}

#[test]
fn reap_lists_expired_leases() {
    let p = Project::new();
    p.ok(&["add", "a", "--id", "a"]);
    p.ok(&["add", "b", "--id", "b"]);
    p.json(&["claim", "a", "--lease", "200ms", "--agent", "gone"], 0);
    p.json(&["claim", "b", "--lease", "1h"], 0);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let r = p.json(&["reap"], 0);
    assert_eq!(r["count"], 1);
    assert_eq!(r["reaped"][0]["id"], "a");
    assert_eq!(r["reaped"][0]["agent"], "gone");
    assert_eq!(p.json(&["reap"], 0)["count"], 0);
    assert_eq!(p.json(&["show", "a"], 0)["task"]["status"], "todo");
}

#[test]
fn batch_is_all_or_nothing() {
    let p = Project::new();
    for id in ["a", "b", "c"] {
        p.ok(&["add", id, "--id", id]);
    }
    p.json(&["claim", "b", "--agent", "other"], 0);
    let r = p.json(&["claim", "a", "b", "c", "ghost"], 3);
    assert_eq!(r["error"]["code"], "refused");
    let refused: Vec<(&str, &str)> = r["error"]["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["id"].as_str().unwrap(), x["code"].as_str().unwrap()))
        .collect();
    assert_eq!(refused, [("b", "held"), ("ghost", "not_found")]);
    assert_eq!(p.json(&["show", "a"], 0)["task"]["status"], "todo");
    let ok = p.json(&["claim", "a", "c"], 0);
    assert_eq!(ok["leases"].as_array().unwrap().len(), 2);
}

#[test]
fn optimistic_update_conflict_names_current_version() {
    let p = Project::new();
    p.ok(&["add", "t", "--id", "t"]);
    let v = p.json(&["show", "t"], 0)["task"]["version"].to_string();
    p.json(
        &["update", "t", "--expect-version", &v, "--title", "one"],
        0,
    );
    let e = p.json(
        &["update", "t", "--expect-version", &v, "--title", "two"],
        3,
    );
    assert_eq!(e["error"]["code"], "version_conflict");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("version 2"), "{msg}");
    assert_eq!(p.json(&["show", "t"], 0)["task"]["title"], "one");
    // Under a live lease, only with the token.
    let c = p.json(&["claim", "t", "--agent", "holder"], 0);
    let v = c["version"].to_string();
    let e = p.json(&["update", "t", "--expect-version", &v, "-p", "low"], 5);
    assert_eq!(e["error"]["code"], "not_holder");
    let tok = c["token"].to_string();
    let u = p.json(
        &[
            "update",
            "t",
            "--expect-version",
            &v,
            "-p",
            "low",
            "--token",
            &tok,
        ],
        0,
    );
    assert_eq!(u["task"]["priority"], "low");
}

#[test]
fn list_filters_and_human_output() {
    let p = Project::new();
    p.ok(&["add", "alpha", "--id", "a", "--tag", "ui"]);
    p.ok(&["add", "beta", "--id", "b"]);
    p.json(&["claim", "b", "--agent", "zed"], 0);
    let l = p.json(&["list", "--status", "in_progress"], 0);
    assert_eq!(l["count"], 1);
    assert_eq!(l["tasks"][0]["assignee"], "zed");
    assert_eq!(p.json(&["list", "--tag", "ui"], 0)["tasks"][0]["id"], "a");
    let human = p.ok(&["list"]);
    assert!(human.contains("zed (29m"), "{human}");
    assert!(human.lines().next().unwrap().starts_with("ID"), "{human}");
}

#[test]
fn bad_input_exits_2_and_leaves_the_database_alone() {
    let p = Project::new();
    p.ok(&["add", "keep me", "--id", "keep"]);
    let before = std::fs::read(p.db()).unwrap();
    let long = "x".repeat(10_000);
    let cases: Vec<Vec<&str>> = vec![
        vec!["claim", "../x"],
        vec!["claim", "a/b"],
        vec!["claim", "a..b"],
        vec!["claim", &long],
        vec!["add", "t", "--id", "../../etc/passwd"],
        vec!["add", "t", "--id", ".hidden"],
        vec!["claim", "keep", "--lease", "forever"],
        vec!["claim", "keep", "--lease", "-5m"],
        vec!["claim", "keep", "--lease", "0s"],
        vec!["claim", "keep", "--lease", "30"],
        vec!["claim", "keep", "--lease", "9999d"],
        vec!["renew", "keep", "--token", "abc"],
        vec!["renew", "keep", "--token", "-1"],
        vec!["release", "keep", "--token", "1", "--status", "done"],
        vec!["add", "t", "-p", "urgent"],
        vec!["add", "t", "--dep", "missing"],
        vec!["add", " "],
        vec!["list", "--status", "doing"],
        vec![
            "update",
            "keep",
            "--expect-version",
            "1",
            "--status",
            "in_progress",
        ],
        vec!["update", "keep", "--expect-version", "1"],
        vec!["update", "keep", "--expect-version", "1", "--status", "wip"],
        vec!["claim", "keep", "keep"],
        vec!["claim"],
        vec!["frobnicate"],
    ];
    for args in &cases {
        // Name the case without echoing a 10 kB argument.
        let label: Vec<String> = args.iter().map(|a| a.chars().take(40).collect()).collect();
        let out = p.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{label:?}: {err}");
        assert!(!err.contains("panicked"), "{label:?}: {err}");
        assert!(err.starts_with("tasklease: "), "{label:?}: {err}");
        assert!(
            err.len() < 2000,
            "{label:?}: error too long ({} bytes)",
            err.len()
        );
        let mut with_json = args.clone();
        with_json.push("--json");
        let out = p.run(&with_json);
        assert_eq!(out.status.code(), Some(2), "{label:?} --json");
        let v = parse_one(&out.stdout);
        assert_eq!(v["ok"], false);
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let msg = String::from_utf8_lossy(&p.run(&["claim", "../x"]).stderr).into_owned();
    assert!(msg.contains("allowed"), "{msg}");
    let msg = String::from_utf8_lossy(&p.run(&["add", "t", "-p", "urgent"]).stderr).into_owned();
    assert!(msg.contains("critical, high, medium, low"), "{msg}");
    assert_eq!(std::fs::read(p.db()).unwrap(), before, "database changed");
    assert_eq!(p.json(&["list"], 0)["count"], 1);
}

#[test]
fn a_missing_task_is_named_the_same_way_by_every_verb() {
    let p = Project::new();
    p.ok(&["add", "here", "--id", "here"]);
    for args in [
        vec!["show", "nosuch"],
        vec!["claim", "nosuch"],
        vec!["claim", "here", "nosuch"],
        vec!["renew", "nosuch", "--token", "1"],
        vec!["update", "nosuch", "--expect-version", "1", "--title", "t"],
        vec!["dep", "list", "nosuch"],
    ] {
        let out = p.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("tasklease: "), "{args:?}: {err}");
        assert!(err.contains("no task nosuch"), "{args:?}: {err}");
        assert!(!err.contains("no such task"), "{args:?}: {err}");
    }
}

#[test]
fn every_verb_prints_one_json_object() {
    let p = Project::new();
    let tok = |v: &Value| v["token"].to_string();
    p.json(&["init"], 0);
    p.json(&["agent-id"], 0);
    p.json(&["add", "x", "--id", "x"], 0);
    p.json(&["list"], 0);
    p.json(&["show", "x"], 0);
    let c = p.json(&["claim", "x"], 0);
    p.json(&["renew", "x", "--token", &tok(&c)], 0);
    p.json(&["release", "x", "--token", &tok(&c)], 0);
    let c = p.json(&["claim", "x"], 0);
    p.json(&["done", "x", "--token", &tok(&c)], 0);
    p.json(&["reap"], 0);
    p.json(&["log"], 0);
    p.json(&["status"], 0);
    p.json(&["migrate"], 0);
    p.json(
        &["update", "x", "--expect-version", "99", "--title", "y"],
        3,
    );
    p.json(&["show", "nope"], 2);
}

#[test]
fn agent_identity() {
    let p = Project::new();
    let out = p
        .cmd(&["agent-id"])
        .env("TASKLEASE_AGENT", "from-env")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "from-env");
    let out = p
        .cmd(&["agent-id"])
        .env_remove("TASKLEASE_AGENT")
        .env("TASKLEASE_ROLE", "reviewer")
        .output()
        .unwrap();
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(id.starts_with("reviewer-"), "{id}");
    let pid = id.rsplit('-').next().unwrap();
    assert!(pid.parse::<u32>().is_ok(), "{id}");
    let out = p.cmd(&["agent-id", "--agent", "flag"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "flag");
}

#[test]
fn project_discovery_and_init() {
    let p = Project::new();
    let sub = p.root().join("src/deep");
    std::fs::create_dir_all(&sub).unwrap();
    let out = p
        .cmd(&["add", "from below", "--id", "sub"])
        .current_dir(&sub)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(p.json(&["show", "sub"], 0)["task"]["title"], "from below");
    // Outside any project, with no database: a clear error.
    let lonely = tempfile::tempdir().unwrap();
    let out = p
        .cmd(&["list"])
        .current_dir(lonely.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tasklease init"));
    // --db names a file anywhere, once init has created it there.
    let db = lonely.path().join("x.db");
    let out = p
        .cmd(&["init", "--db", db.to_str().unwrap()])
        .current_dir(lonely.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = p
        .cmd(&["add", "elsewhere", "--db", db.to_str().unwrap()])
        .current_dir(lonely.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&db).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "database must be owner-only");
        let mode = std::fs::metadata(p.db()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn migrate_backup_writes_a_consistent_copy() {
    let p = Project::new();
    p.ok(&["add", "t", "--id", "t"]);
    let m = p.json(&["migrate", "--backup"], 0);
    let path = m["backups"][0].as_str().unwrap().to_owned();
    assert!(std::path::Path::new(&path).exists());
    // The copy is a working database with the same task.
    let out = p
        .cmd(&["show", "t", "--json", "--db", &path])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(parse_one(&out.stdout)["task"]["id"], "t");
}

/// `list --limit N` says how many more tasks matched, in the table and in the JSON.
#[test]
fn a_cut_list_says_how_many_more() {
    let p = Project::new();
    for id in ["a", "b", "c"] {
        p.ok(&["add", id, "--id", id]);
    }
    let out = p.ok(&["list", "--limit", "1"]);
    assert!(out.contains("2 more"), "{out}");
    let j = p.json(&["list", "--limit", "1"], 0);
    assert_eq!(j["more"], 2);
    assert_eq!(j["truncated"], true);
    let out = p.ok(&["list"]);
    assert!(!out.contains("more"), "{out}");
}
