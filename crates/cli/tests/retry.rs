//! Retrying after an unknown outcome, through the built binary on both stores: a
//! `done` or `release` repeated by the token that already did it answers success and
//! changes nothing; a claim repeated with its `--request-id` returns the first grant.

mod common;

use common::Project;
use serde_json::Value;

fn show(p: &Project, id: &str) -> Value {
    p.json(&["show", id], 0)["task"].clone()
}

fn kinds(p: &Project, id: &str) -> Vec<String> {
    p.json(&["log", id], 0)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

fn a_retried_done_or_release_answers_already_and_changes_nothing(p: &Project) {
    p.ok(&["add", "d", "--id", "d"]);
    let tok = p.json(&["claim", "d"], 0)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = p.json(&["done", "d", "--token", &tok], 0);
    assert_eq!(first["outcome"], "done");
    assert_eq!(first["repeat"], false);
    let again = p.json(&["done", "d", "--token", &tok], 0);
    assert_eq!(again["outcome"], "already_done", "{again}");
    assert_eq!(again["repeat"], true);
    assert_eq!(again["task"]["version"], first["task"]["version"]);
    let out = p.run(&["done", "d", "--token", &tok]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already done"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(kinds(p, "d"), ["claimed", "done"]);
    // The other operation by that token is still a lost lease.
    let lost = p.json(&["release", "d", "--token", &tok], 5);
    assert_eq!(lost["error"]["code"], "lease_lost");

    p.ok(&["add", "r", "--id", "r"]);
    let tok = p.json(&["claim", "r"], 0)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let args = ["release", "r", "--token", &tok, "--status", "review"];
    assert_eq!(p.json(&args, 0)["outcome"], "released");
    let again = p.json(&args, 0);
    assert_eq!(again["outcome"], "already_released", "{again}");
    assert_eq!(again["task"]["status"], "review");
    p.json(&["release", "r", "--token", &tok, "--status", "todo"], 5);
    assert_eq!(kinds(p, "r"), ["claimed", "released"]);
}

fn a_claim_retried_with_its_request_id_returns_the_first_grant(p: &Project) {
    p.ok(&["add", "one", "--id", "one"]);
    p.ok(&["add", "two", "--id", "two"]);
    let first = p.json(&["claim", "--next", "--request-id", "job-7:try.1"], 0);
    let again = p.json(&["claim", "--next", "--request-id", "job-7:try.1"], 0);
    for field in ["id", "token", "lock_until_ms", "version"] {
        assert_eq!(again[field], first[field], "{field}: {first} vs {again}");
    }
    assert_eq!(
        show(p, "two")["status"],
        "todo",
        "no second task was claimed"
    );
    // The key named another claim: bad input, nothing claimed.
    let bad = p.json(&["claim", "two", "--request-id", "job-7:try.1"], 2);
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("request id job-7:try.1"),
        "{bad}"
    );
    assert_eq!(show(p, "two")["status"], "todo");
    // Without a key, or with a new one, a second claim is a second task.
    let other = p.json(&["claim", "--next", "--request-id", "job-8"], 0);
    assert_eq!(other["id"], "two");
}

each_store!(
    a_retried_done_or_release_answers_already_and_changes_nothing,
    a_claim_retried_with_its_request_id_returns_the_first_grant,
);

#[test]
fn a_bad_request_id_is_refused_before_anything_is_written() {
    let p = Project::new();
    p.ok(&["add", "t", "--id", "t"]);
    let long = "k".repeat(129);
    for bad in ["has space", "", "semi;colon", long.as_str()] {
        let e = p.json(&["claim", "t", "--request-id", bad], 2);
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("request id") && msg.contains("allowed"),
            "{bad:?}: {e}"
        );
    }
    assert_eq!(show(&p, "t")["status"], "todo");
    assert!(kinds(&p, "t").is_empty());
}
