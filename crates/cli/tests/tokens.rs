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

each_store!(a_guessed_token_is_refused, reap_reports_fences_not_tokens);
