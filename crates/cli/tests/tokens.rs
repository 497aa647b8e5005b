//! Tokens are bearer secrets, through the built binary on both stores: a guessed token
//! (the right fence with a made-up secret, or the bare fence number) is refused as a
//! lost lease (exit 5) by every verb that takes one and changes nothing; the claimer's
//! own outputs carry the token, outputs for others (`show`, `list`, `log`, `status`,
//! `reap`) only the fence.

mod common;

use common::Project;
use serde_json::Value;

/// The task as `show` has it, less what changes by itself (the lease left).
fn show(p: &Project, id: &str) -> Value {
    let mut t = p.json(&["show", id], 0)["task"].clone();
    t.as_object_mut().unwrap().remove("lease_left_ms");
    t
}

fn a_guessed_token_is_refused(p: &Project) {
    p.ok(&["add", "parser", "--id", "parser"]);
    let c = p.json(&["claim", "parser", "--agent", "alice"], 0);
    let token = c["token"].as_str().unwrap().to_owned();
    let fence = c["fence"].as_i64().unwrap();
    assert_eq!(fence, 1);
    let (f, secret) = token.split_once('.').expect("<fence>.<secret>");
    assert_eq!(f, "1");
    assert!(
        secret.len() >= 16
            && secret
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{token}"
    );
    let before = show(p, "parser");
    let flipped: String = secret
        .chars()
        .map(|ch| if ch == 'a' { 'b' } else { 'a' })
        .collect();
    let wrong = format!("{fence}.{flipped}");
    let bare = fence.to_string();
    let version = before["version"].to_string();
    for guess in [&wrong, &bare] {
        for verb in [
            vec!["done", "parser", "--token", guess],
            vec!["renew", "parser", "--token", guess],
            vec!["release", "parser", "--token", guess],
            vec![
                "update",
                "parser",
                "--token",
                guess,
                "-t",
                "hijacked",
                "--expect-version",
                &version,
            ],
        ] {
            let mut args = verb.clone();
            args.extend(["--agent", "mallory"]);
            let e = p.json(&args, 5);
            assert_eq!(e["error"]["code"], "lease_lost", "{verb:?}: {e}");
            let msg = e["error"]["message"].as_str().unwrap();
            assert!(msg.contains("never issued"), "{verb:?}: {msg}");
            let out = p.run(&verb);
            assert_eq!(out.status.code(), Some(5), "{verb:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("lease lost on parser"), "{verb:?}: {err}");
            // The refusal names the token by its fence: a token is a secret, even a
            // wrong one (it may be a real one from another task, or a typo of one).
            assert!(
                !err.contains(&flipped) && !msg.contains(&flipped),
                "{verb:?} printed the token it was given: {err} / {msg}"
            );
        }
        // A claim with it is no re-claim: the task is held.
        p.json(
            &["claim", "parser", "--token", guess, "--agent", "mallory"],
            3,
        );
    }
    assert_eq!(show(p, "parser"), before, "refusals change nothing");
    // Bad input is not a guess: exit 2, naming what is allowed.
    let e = p.json(&["done", "parser", "--token", "1.short"], 2);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("<fence>.<secret>"),
        "{e}"
    );

    // Nobody else's output carries the token; each carries the fence.
    for args in [
        vec!["show", "parser"],
        vec!["list"],
        vec!["log", "parser"],
        vec!["status"],
    ] {
        let out = p.run(&args);
        let human = String::from_utf8_lossy(&out.stdout);
        assert!(
            !human.contains(secret),
            "{args:?} printed the token: {human}"
        );
        let mut json = args.clone();
        json.push("--json");
        let out = p.run(&json);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            !text.contains(secret),
            "{args:?} --json printed the token: {text}"
        );
    }
    let log = p.json(&["log", "parser"], 0);
    assert_eq!(log["events"][0]["fence"], 1, "{log}");

    // The claimer's whole token works.
    let r = p.json(&["renew", "parser", "--token", &token], 0);
    assert_eq!(r["token"], token.as_str());
    assert_eq!(r["fence"], 1);
    p.json(&["done", "parser", "--token", &token], 0);
    assert_eq!(show(p, "parser")["status"], "done");
}

fn reap_reports_fences_not_tokens(p: &Project) {
    p.ok(&["add", "short", "--id", "short"]);
    let c = p.json(&["claim", "short", "--lease", "200ms"], 0);
    let token = c["token"].as_str().unwrap().to_owned();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let out = p.run(&["reap"]);
    let human = String::from_utf8_lossy(&out.stdout);
    let r = p.json(&["log", "short"], 0);
    assert!(!human.contains(&token), "{human}");
    assert!(!r.to_string().contains(&token), "{r}");
    assert!(human.contains("short"), "{human}");
}

fn release_and_done_take_a_reason_shown_by_show_and_log(p: &Project) {
    p.ok(&["add", "schema", "--id", "s"]);
    let c = p.json(&["claim", "s"], 0);
    let tok = c["token"].as_str().unwrap();
    // Bad reasons are bad input: exit 2, naming what is allowed, nothing changed.
    let long = "x".repeat(281);
    for (bad, why) in [
        (long.as_str(), "at most 280"),
        ("two\nlines", "one line"),
        ("bell \u{7}", "control"),
        ("  ", "empty"),
    ] {
        let e = p.json(&["release", "s", "--token", tok, "--reason", bad], 2);
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(msg.contains(why), "{bad:?}: {msg}");
    }
    assert_eq!(show(p, "s")["status"], "in_progress");
    let r = p.json(
        &[
            "release",
            "s",
            "--token",
            tok,
            "--status",
            "blocked",
            "--reason",
            "waiting on the DBA's review",
        ],
        0,
    );
    assert_eq!(r["outcome"], "released");
    let shown = p.json(&["show", "s"], 0)["task"]["reason"].clone();
    assert_eq!(shown["kind"], "released", "{shown}");
    assert_eq!(shown["text"], "waiting on the DBA's review");
    let human = p.ok(&["show", "s"]);
    assert!(human.contains("reason    released by tester"), "{human}");
    assert!(human.contains("waiting on the DBA's review"), "{human}");
    let c = p.json(&["claim", "s"], 0);
    let tok = c["token"].as_str().unwrap();
    p.json(
        &["done", "s", "--token", tok, "--reason", "merged in #42"],
        0,
    );
    let log = p.json(&["log", "s"], 0);
    let reasons: Vec<&Value> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["reason"])
        .collect();
    assert_eq!(
        reasons,
        [
            &Value::Null,
            &Value::from("waiting on the DBA's review"),
            &Value::Null,
            &Value::from("merged in #42")
        ]
    );
    let human = p.ok(&["log", "s"]);
    assert!(human.contains("reason: merged in #42"), "{human}");
    assert_eq!(
        p.json(&["show", "s"], 0)["task"]["reason"]["text"],
        "merged in #42"
    );
    // --force takes no reason (it records whose lease it ended instead).
    p.json(&["release", "s", "--force", "--reason", "x"], 2);
}

/// `mine` lists the caller's live leases with their tokens — for a stable name only:
/// the default per-process name (and `list --mine` with it) is refused (exit 2), saying
/// how to name yourself. A holder re-claiming without its token is told its name
/// matches and how to re-claim.
fn mine_finds_your_way_back_and_needs_a_stable_name(p: &Project) {
    p.ok(&["add", "one", "--id", "one"]);
    p.ok(&["add", "two", "--id", "two"]);
    let c = p.json(&["claim", "one", "--agent", "alice"], 0);
    p.json(&["claim", "two", "--agent", "bob"], 0);
    let mine = p.json(&["mine", "--agent", "alice"], 0);
    assert_eq!(mine["count"], 1, "{mine}");
    assert_eq!(mine["leases"][0]["id"], "one");
    assert_eq!(mine["leases"][0]["token"], c["token"]);
    assert_eq!(mine["leases"][0]["fence"], 1);
    let human = p.ok(&["mine", "--agent", "alice"]);
    assert!(human.contains(c["token"].as_str().unwrap()), "{human}");
    // TASKLEASE_AGENT names you as well (the test harness sets it to "tester").
    assert_eq!(p.json(&["mine"], 0)["count"], 0);
    for args in [vec!["mine", "--json"], vec!["list", "--mine", "--json"]] {
        let out = p.cmd(&args).env_remove("TASKLEASE_AGENT").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let v = common::parse_one(&out.stdout);
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains("TASKLEASE_AGENT") && msg.contains("--agent"),
            "{args:?}: {msg}"
        );
    }
    // Re-claiming your own task without the token: told that your name matches.
    let out = p.run(&["claim", "one", "--agent", "alice"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("held by you (alice)") && err.contains("--token T"),
        "{err}"
    );
    let v = p.json(&["claim", "one", "--agent", "alice"], 3);
    assert_eq!(v["error"]["held_by_you"], true, "{v}");
    let v = p.json(&["claim", "one", "--agent", "carol"], 3);
    assert!(v["error"].get("held_by_you").is_none(), "{v}");
    // The token re-claims.
    let tok = mine["leases"][0]["token"].as_str().unwrap();
    p.json(&["claim", "one", "--agent", "alice", "--token", tok], 0);
}

each_store!(
    mine_finds_your_way_back_and_needs_a_stable_name,
    a_guessed_token_is_refused,
    reap_reports_fences_not_tokens,
    release_and_done_take_a_reason_shown_by_show_and_log
);
