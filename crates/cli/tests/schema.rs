//! Every verb's `--json` output, success and failure, validated through the real binary
//! against its published schema in `docs/json/` (docs/json.md): one shape for every
//! outcome, `{"ok":true,"outcome",…}` or `{"ok":false,"error":{"code","exit","message",…}}`.

mod common;

use common::{Project, conforms};
use serde_json::Value;

fn token(v: &Value) -> String {
    match &v["token"] {
        Value::String(s) => s.clone(),
        t => t.to_string(),
    }
}

/// Tasks, their graph and their history.
fn tasks_verbs_fit_their_schemas(p: &Project) {
    p.checked(&["init"], 0);
    p.checked(&["add", "first", "--id", "a"], 0);
    p.checked(&["add", "second", "--id", "b", "--dep", "a"], 0);
    p.checked(&["add", "third", "--id", "c", "--parent", "a"], 0);
    let dup = p.checked(&["add", "again", "--id", "a"], 2);
    assert_eq!(dup["error"]["code"], "exists");
    p.checked(&["add", "bad id", "--id", "../x"], 2);
    p.checked(&["list"], 0);
    p.checked(&["list", "--ready"], 0);
    p.checked(&["list", "--blocked"], 0);
    p.checked(&["list", "--limit", "1"], 0);
    p.checked(&["show", "a"], 0);
    let missing = p.checked(&["show", "nosuch"], 2);
    assert_eq!(missing["error"]["code"], "not_found");
    let v = p.checked(&["show", "c"], 0)["task"]["version"].to_string();
    p.checked(&["update", "c", "-p", "high", "--expect-version", &v], 0);
    let stale = p.checked(&["update", "c", "-p", "low", "--expect-version", &v], 3);
    assert_eq!(stale["error"]["code"], "version_conflict");
    p.checked(&["dep", "add", "c", "b"], 0);
    let cycle = p.checked(&["dep", "add", "a", "b"], 2);
    assert_eq!(cycle["error"]["code"], "invalid");
    p.checked(&["dep", "list", "b"], 0);
    p.checked(&["dep", "list", "nosuch"], 2);
    p.checked(&["dep", "rm", "c", "b"], 0);
    p.checked(&["dep", "rm", "nosuch", "b"], 2);
    p.checked(&["rm", "c"], 0);
    p.checked(&["rm", "nosuch"], 2);
    p.checked(&["log"], 0);
    p.checked(&["log", "nosuch"], 2);
    p.checked(&["status"], 0);
    p.checked(&["agent-id"], 0);
    p.checked(&["migrate"], 0);
    let out = p.root().join("out.jsonl");
    let out = out.to_str().unwrap();
    p.checked(&["export", "--out", out], 0);
    p.checked(&["export"], 2);
    p.checked(&["import", out, "--dry-run"], 0);
    p.checked(&["import", "/nonexistent/tasks.jsonl"], 2);
    let man = p.root().join("man");
    p.checked(&["man", man.to_str().unwrap()], 0);
    // clap's own usage errors have the one failure shape too.
    p.checked(&["list", "--nosuch-flag"], 2);
}

/// Every way a claim ends, and the lease verbs after it.
fn lease_verbs_fit_their_schemas(p: &Project) {
    p.checked(&["add", "first", "--id", "a"], 0);
    p.checked(&["add", "second", "--id", "b", "--dep", "a"], 0);
    p.checked(&["add", "third", "--id", "c"], 0);
    p.checked(&["add", "fourth", "--id", "d"], 0);
    let waiting = p.checked(&["claim", "b"], 4);
    assert_eq!(waiting["error"]["code"], "not_claimable");
    assert_eq!(waiting["error"]["reason"], "waiting");
    assert_eq!(waiting["error"]["waiting_on"][0], "a");
    let none = p.checked(&["claim", "nosuch"], 2);
    assert_eq!(none["error"]["code"], "not_found");
    let a = p.checked(&["claim", "a", "--lease", "10m"], 0);
    assert_eq!(a["outcome"], "claimed");
    assert_eq!(a["lease_left_ms"], 600_000);
    let held = p.checked(&["claim", "a", "--agent", "bob"], 3);
    assert_eq!(held["error"]["code"], "held");
    assert_eq!(held["error"]["holder"], "tester");
    assert_eq!(held["error"]["id"], "a");
    let batch = p.checked(&["claim", "a", "c", "--agent", "bob"], 3);
    assert_eq!(batch["error"]["code"], "refused");
    assert_eq!(batch["error"]["refused"][0]["code"], "held");
    p.checked(&["claim", "c", "d"], 0);
    let t = token(&a);
    let renewed = p.checked(&["renew", "a", "--token", &t], 0);
    assert!(renewed["lease_left_ms"].as_i64().unwrap() > 0, "{renewed}");
    p.checked(&["renew", "a", "--token", "999"], 5);
    p.checked(&["done", "a", "--token", &t], 0);
    let again = p.checked(&["done", "a", "--token", &t], 0);
    assert_eq!(again["outcome"], "already_done");
    let lost = p.checked(&["done", "a", "--token", "999"], 5);
    assert_eq!(lost["error"]["code"], "lease_lost");
    let b = p.checked(&["claim", "--next"], 0);
    p.checked(&["release", "b", "--token", &token(&b)], 0);
    p.checked(&["release", "b", "--token", &token(&b)], 0);
    p.checked(&["release", "c", "--force"], 0);
    p.checked(&["release", "c", "--token", "999"], 5);
    p.checked(&["claim", "--next"], 0);
    p.checked(&["claim", "--next"], 0);
    let empty = p.checked(&["claim", "--next"], 4);
    assert_eq!(empty["error"]["code"], "empty");
    p.checked(&["reap"], 0);
}

/// `run`, `lock`, `git` and `locks`: commands run under a lease or a lock.
fn command_verbs_fit_their_schemas(p: &Project) {
    p.checked(&["add", "job", "--id", "j"], 0);
    p.checked(&["add", "job", "--id", "k"], 0);
    p.checked(&["run", "j", "--", "true"], 0);
    let failed = p.checked(&["run", "k", "--", "sh", "-c", "exit 7"], 7);
    assert_eq!(failed["error"]["code"], "failed");
    p.checked(&["run", "--next", "--", "true"], 0);
    let empty = p.checked(&["run", "--next", "--", "true"], 4);
    assert_eq!(empty["error"]["code"], "empty");
    p.checked(&["lock", "task", "j", "--", "true"], 0);
    let failed = p.checked(&["lock", "state", "--", "sh", "-c", "exit 3"], 3);
    assert_eq!(failed["error"]["code"], "command_failed");
    p.checked(&["locks"], 0);
}

each_store!(
    tasks_verbs_fit_their_schemas,
    lease_verbs_fit_their_schemas,
    command_verbs_fit_their_schemas,
);

/// A file lock still held when `--timeout` runs out is refused in the failure shape,
/// the holder inside `error`.
#[test]
fn a_busy_lock_fits_the_failure_shape() {
    let p = Project::new();
    let mut holder = p
        .cmd(&["lock", "state", "--", "sleep", "30"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the holder");
    // Wait (bounded) until the holder really holds the lock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let busy = loop {
        let v = p.json(&["locks"], 0);
        let held = v["locks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["kind"] == "state" && l["held"] == true);
        if held {
            break p.json(&["lock", "state", "--timeout", "0", "--", "true"], 3);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the state lock was never taken by the holder"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = holder.kill();
    let _ = holder.wait();
    conforms("lock", &busy, 3);
    assert_eq!(busy["error"]["code"], "held");
    assert!(busy["error"]["holder"].is_object(), "{busy}");
}

/// The schemas do reject the shapes refusals had before one shape was chosen.
#[test]
fn the_old_refusal_shapes_do_not_fit() {
    let old_held = serde_json::json!({"holder": "a", "id": "x", "ok": false, "outcome": "held"});
    let old_empty = serde_json::json!({"ok": false, "outcome": "empty"});
    for old in [old_held, old_empty] {
        let fits = std::panic::catch_unwind(|| conforms("claim", &old, 3));
        assert!(fits.is_err(), "the claim schema accepted {old}");
    }
}
