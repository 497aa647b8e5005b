//! PostgreSQL never hangs a caller: the built binary against a listener that accepts
//! and never answers, and against the test server behind a TCP proxy the test
//! freezes (the shared server itself is never disturbed). Bounds are generous; only
//! a hang comes near them.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::Project;
use tasklease_postgres::testing::{Proxy, Silent};

/// How much later than its bound a command may exit on a loaded machine.
const SLACK: Duration = Duration::from_secs(15);

/// The default connect timeout, which covers start-up too.
const CONNECT: Duration = Duration::from_secs(10);

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `args` against `db`, returning the output and how long it took.
fn timed(p: &Project, db: &str, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = p.cmd(args).env("TASKLEASE_DB", db).output().unwrap();
    (out, started.elapsed())
}

#[test]
fn a_server_that_never_answers_fails_with_exit_1_within_the_connect_timeout() {
    let p = Project::new();
    let silent = Silent::start();
    let db = silent.conn("connect_timeout=2");
    for args in [&["list"][..], &["claim", "t"]] {
        let (out, took) = timed(&p, &db, args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(took < Duration::from_secs(2) + SLACK, "{args:?}: {took:?}");
        assert!(
            err.contains("no answer from the PostgreSQL server at postgres://postgres@127.0.0.1:")
                && err.contains("within 2s"),
            "{args:?}: {err}"
        );
    }
}

/// A frozen server, as a one-shot command meets it: the connection is accepted (by
/// the kernel, or here the proxy) and start-up never completes.
#[test]
fn a_frozen_server_fails_list_and_claim_with_exit_1_within_the_connect_timeout() {
    let Some(p) = Project::postgres() else {
        return;
    };
    let server = tasklease_postgres::testing::server().unwrap();
    let proxy = Proxy::start(&server);
    let db = proxy.via(p.pg.as_ref().unwrap().conn());
    p.ok(&["add", "t", "--id", "t"]);
    proxy.freeze();
    let (list, claim) = std::thread::scope(|s| {
        let list = s.spawn(|| timed(&p, &db, &["list"]));
        let claim = s.spawn(|| timed(&p, &db, &["claim", "t"]));
        (list.join().unwrap(), claim.join().unwrap())
    });
    for (out, took) in [list, claim] {
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(took < CONNECT + SLACK, "{took:?}: {err}");
        assert!(
            err.contains("no answer from the PostgreSQL server at postgres://postgres@127.0.0.1:")
                && err.contains("within 10s"),
            "{err}"
        );
    }
    drop(proxy);
    assert_eq!(p.json(&["show", "t"], 0)["task"]["status"], "todo");
}

#[test]
fn run_against_a_frozen_server_exits_within_lease_and_grace() {
    let Some(p) = Project::postgres() else {
        return;
    };
    let server = tasklease_postgres::testing::server().unwrap();
    let proxy = Proxy::start(&server);
    let db = proxy.via(p.pg.as_ref().unwrap().conn());
    p.ok(&["add", "t", "--id", "t"]);
    let started = Instant::now();
    let mut child = p
        .cmd(&[
            "run", "t", "--lease", "3s", "--grace", "1s", "--", "sleep", "60",
        ])
        .env("TASKLEASE_DB", &db)
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let claimed = lines.next().unwrap().unwrap();
    assert!(claimed.contains("claimed t"), "{claimed}");
    proxy.freeze();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    let took = started.elapsed();
    assert_eq!(status.code(), Some(5), "{rest:?}");
    assert!(
        took < Duration::from_secs(3 + 1) + SLACK,
        "run took {took:?} against a frozen server: {rest:?}"
    );
}
