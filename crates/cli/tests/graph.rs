//! The task graph through the built binary, on both stores: `dep add/rm/list`, cycles
//! refused, a cancelled dependency no longer blocking, and `list --ready/--blocked`.

mod common;

use common::Project;
use serde_json::Value;

fn ids(v: &Value) -> Vec<String> {
    v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

fn outcomes(v: &Value) -> Vec<(String, String)> {
    v["deps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["id"].as_str().unwrap().to_owned(),
                d["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

fn add(p: &Project, id: &str) {
    p.ok(&["add", id, "--id", id]);
}

fn dep_edits_report_each_edge_and_list_both_directions(p: &Project) {
    for t in ["a", "b", "c", "t"] {
        add(p, t);
    }
    let v = p.json(&["dep", "add", "t", "a", "b"], 0);
    assert_eq!(outcomes(&v), [pair("a", "added"), pair("b", "added")]);
    let v = p.json(&["dep", "add", "t", "b", "c"], 0);
    assert_eq!(outcomes(&v), [pair("b", "already"), pair("c", "added")]);
    let show = p.json(&["show", "t"], 0);
    assert_eq!(show["task"]["waiting_on"], 3);
    assert_eq!(show["task"]["deps"], serde_json::json!(["a", "b", "c"]));

    let v = p.json(&["dep", "rm", "t", "c", "c2"], 2);
    assert_eq!(v["error"]["code"], "not_found", "{v}");
    let v = p.json(&["dep", "rm", "t", "c"], 0);
    assert_eq!(outcomes(&v), [pair("c", "removed")]);
    let v = p.json(&["dep", "rm", "t", "c"], 0);
    assert_eq!(outcomes(&v), [pair("c", "absent")]);

    p.json(&["claim", "a", "--agent", "alice"], 0);
    let l = p.json(&["dep", "list", "t"], 0);
    assert_eq!(l["waiting_on"], 2);
    let on: Vec<(&str, &str)> = l["on"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap(), d["why"].as_str().unwrap()))
        .collect();
    assert_eq!(on, [("a", "held by alice"), ("b", "not done: todo")]);
    let by = p.json(&["dep", "list", "a"], 0);
    assert_eq!(by["needed_by"][0]["id"], "t");
    assert_eq!(by["on"], serde_json::json!([]));
    let human = p.ok(&["dep", "list", "t"]);
    assert!(human.contains("a  held by alice"), "{human}");

    // Bad input: exit 2, nothing written.
    let before = p.json(&["show", "t"], 0)["task"]["version"].clone();
    for args in [
        &["dep", "add", "nope", "a"][..],
        &["dep", "add", "t", "nope"],
        &["dep", "add", "t", "t"],
        &["dep", "add", "t", "c", "c"],
        &["dep", "list", "nope"],
    ] {
        let out = p.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?} says why");
    }
    let out = p.run(&["dep", "add", "t"]);
    assert_eq!(out.status.code(), Some(2), "a dependency is required");
    assert_eq!(p.json(&["show", "t"], 0)["task"]["version"], before);
}

fn a_cycle_is_refused_and_spelled_out(p: &Project) {
    for t in ["a", "b", "c"] {
        add(p, t);
    }
    p.ok(&["dep", "add", "a", "b"]);
    p.ok(&["dep", "add", "b", "c"]);
    let out = p.run(&["dep", "add", "c", "a"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("c → a → b → c"), "{err}");
    let v = p.json(&["dep", "add", "c", "a"], 2);
    assert_eq!(v["error"]["code"], "invalid");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("cycle"),
        "{v}"
    );
    assert_eq!(
        p.json(&["show", "c"], 0)["task"]["deps"],
        serde_json::json!([])
    );
}

fn a_cancelled_dependency_no_longer_blocks(p: &Project) {
    add(p, "a");
    p.ok(&["add", "b", "--id", "b", "--dep", "a"]);
    let v = p.json(&["claim", "b"], 4);
    assert_eq!(v["error"]["waiting_on"], serde_json::json!(["a"]));
    p.ok(&["update", "a", "-s", "cancelled", "--expect-version", "1"]);
    let show = p.json(&["show", "b"], 0);
    assert_eq!(show["task"]["waiting_on"], 0);
    assert_eq!(show["task"]["cancelled_deps"], serde_json::json!(["a"]));
    let human = p.ok(&["show", "b"]);
    assert!(human.contains("cancelled a"), "{human}");
    p.json(&["claim", "b"], 0);
}

fn list_ready_is_what_claim_next_takes(p: &Project) {
    p.ok(&["add", "low", "--id", "low", "-p", "low"]);
    p.ok(&["add", "dep", "--id", "dep", "-p", "critical"]);
    p.ok(&[
        "add", "after", "--id", "after", "-p", "critical", "--dep", "dep",
    ]);
    p.ok(&["add", "high", "--id", "high", "-p", "high", "-t", "x"]);
    let ready = p.json(&["list", "--ready"], 0);
    assert_eq!(ids(&ready), ["dep", "high", "low"]);
    assert_eq!(
        ids(&p.json(&["list", "--ready", "--tag", "x"], 0)),
        ["high"]
    );
    assert_eq!(
        ids(&p.json(&["list", "--ready", "--limit", "1"], 0)),
        ["dep"]
    );
    let out = p.run(&["list", "--ready", "-s", "todo"]);
    assert_eq!(out.status.code(), Some(2), "ready decides the status");
    // Nothing was claimed by looking.
    let next = p.json(&["claim", "--next"], 0);
    assert_eq!(next["id"], "dep");
    let tok = next["token"].to_string();
    assert_eq!(ids(&p.json(&["list", "--ready"], 0)), ["high", "low"]);
    p.ok(&["done", "dep", "--token", &tok]);
    let ready = ids(&p.json(&["list", "--ready"], 0));
    assert_eq!(ready, ["after", "high", "low"]);
    assert_eq!(p.json(&["claim", "--next"], 0)["id"], ready[0].as_str());
}

fn list_blocked_names_what_each_waits_on_and_why(p: &Project) {
    for t in ["a", "b", "c"] {
        add(p, t);
    }
    p.ok(&[
        "add", "w", "--id", "w", "--dep", "a", "--dep", "b", "--dep", "c",
    ]);
    p.ok(&["update", "c", "-s", "cancelled", "--expect-version", "1"]);
    p.json(&["claim", "b", "--agent", "bob"], 0);
    let v = p.json(&["list", "--blocked"], 0);
    assert_eq!(ids(&v), ["w"]);
    let waiting: Vec<(&str, &str)> = v["tasks"][0]["waiting"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap(), d["why"].as_str().unwrap()))
        .collect();
    assert_eq!(waiting, [("a", "not done: todo"), ("b", "held by bob")]);
    let human = p.ok(&["list"]);
    let row = human
        .lines()
        .find(|l| l.starts_with("w "))
        .expect("w listed");
    assert!(
        row.contains("waiting on a (todo), b (held by bob)"),
        "{human}"
    );
}

fn rm_refuses_without_force_and_never_reuses_ids(p: &Project) {
    for t in ["a", "b", "c"] {
        add(p, t);
    }
    p.ok(&["dep", "add", "b", "a"]);
    let lease = p.json(&["claim", "c", "--agent", "alice"], 0);
    let tok = lease["token"].to_string();

    let out = p.run(&["rm", "a"]);
    assert_eq!(out.status.code(), Some(2), "others wait on a");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needed by b") && err.contains("--force"),
        "{err}"
    );
    let v = p.json(&["rm", "c", "a"], 3);
    assert_eq!(v["error"]["code"], "held", "{v}");
    p.json(&["rm", "nope"], 2);
    p.json(&["rm", "a", "a"], 2);
    assert_eq!(p.run(&["rm"]).status.code(), Some(2));
    assert_eq!(
        ids(&p.json(&["list"], 0)),
        ["a", "b", "c"],
        "nothing deleted"
    );

    let v = p.json(&["rm", "a", "c", "--force"], 0);
    assert_eq!(v["outcome"], "deleted");
    assert_eq!(v["deleted"][0]["dropped"], serde_json::json!(["b"]));
    assert_eq!(v["deleted"][1]["holder"], "alice");
    assert_eq!(ids(&p.json(&["list"], 0)), ["b"]);
    assert_eq!(p.json(&["show", "b"], 0)["task"]["waiting_on"], 0);
    p.json(&["claim", "b"], 0);
    // The old holder's token is dead for good, and the id stays taken.
    p.json(&["done", "c", "--token", &tok], 2);
    let v = p.json(&["add", "again", "--id", "c"], 2);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("was deleted"),
        "{v}"
    );
    let log = p.json(&["log", "c"], 0);
    let last = log["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "deleted");
    assert_eq!(last["token"].to_string(), tok);
}

fn parents_show_progress_and_refuse_cycles(p: &Project) {
    add(p, "epic");
    p.ok(&["add", "c1", "--id", "c1", "--parent", "epic"]);
    p.ok(&["add", "c2", "--id", "c2", "--parent", "epic"]);
    add(p, "c3");
    let v = p.json(
        &["update", "c3", "--parent", "epic", "--expect-version", "1"],
        0,
    );
    assert_eq!(v["task"]["parent"], "epic");
    assert_eq!(
        ids(&p.json(&["list", "--parent", "epic"], 0)),
        ["c1", "c2", "c3"]
    );
    let c = p.json(&["claim", "c1"], 0);
    p.ok(&["done", "c1", "--token", &c["token"].to_string()]);
    let show = p.json(&["show", "epic"], 0);
    assert_eq!(show["task"]["progress"]["done"], 1);
    assert_eq!(show["task"]["progress"]["total"], 3);
    assert_eq!(show["task"]["children"][0]["id"], "c1");
    let human = p.ok(&["show", "epic"]);
    assert!(human.contains("children  1/3 done"), "{human}");
    assert!(p.ok(&["show", "c2"]).contains("parent    epic"));

    let out = p.run(&["update", "epic", "--parent", "c2", "--expect-version", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("epic → c2 → epic"), "{err}");
    p.json(&["add", "x", "--parent", "nope"], 2);
    p.json(&["list", "--parent", "nope"], 2);
    assert_eq!(
        p.run(&["list", "--parent", "epic", "--ready"])
            .status
            .code(),
        Some(2)
    );
    let v = p.json(&["show", "c3"], 0)["task"]["version"].to_string();
    let v = p.json(&["update", "c3", "--no-parent", "--expect-version", &v], 0);
    assert_eq!(v["task"]["parent"], Value::Null);
    assert_eq!(ids(&p.json(&["list", "--parent", "epic"], 0)), ["c1", "c2"]);
}

each_store!(
    parents_show_progress_and_refuse_cycles,
    rm_refuses_without_force_and_never_reuses_ids,
    dep_edits_report_each_edge_and_list_both_directions,
    a_cycle_is_refused_and_spelled_out,
    a_cancelled_dependency_no_longer_blocks,
    list_ready_is_what_claim_next_takes,
    list_blocked_names_what_each_waits_on_and_why
);
