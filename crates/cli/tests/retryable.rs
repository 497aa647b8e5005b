//! Errors say whether the same call may simply be sent again (docs/library.md,
//! "Errors a program can act on"), through the real binary.

mod common;

use common::Project;

/// A server that refuses the connection: nothing was sent, so the call is retryable;
/// the exit code stays 1 (runtime trouble).
#[test]
fn an_unreachable_server_is_retryable_and_exit_1() {
    if !common::built_with_postgres() {
        return;
    }
    let p = Project::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let db = format!("host=127.0.0.1 port={port} user=nobody dbname=none connect_timeout=5");
    let j = p.json(&["--db", &db, "list"], 1);
    assert_eq!(j["error"]["code"], "unavailable", "{j}");
    assert_eq!(j["error"]["retryable"], true, "{j}");
}

/// Bad input is never retryable, and the CLI's own hint is added to the library's
/// message.
#[test]
fn a_missing_store_is_not_retryable_and_says_how_to_make_one() {
    let p = Project::new();
    let j = p.json(&["--db", "typo.db", "list"], 2);
    assert_eq!(j["error"]["retryable"], false, "{j}");
    let msg = j["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("tasklease init") && msg.contains("--db"),
        "{msg}"
    );
}
