//! `tasklease run` and `reap --every` with real processes: the built binary supervising
//! `sh -c` children, killed, interrupted and fenced out for real. Time bounds are
//! generous; nothing here measures speed.

#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Project, parse_one};
use serde_json::Value;

/// Long enough that a loaded machine still renews in time, short enough to span
/// several periods in a few seconds.
const LEASE: &str = "1s";
/// How long any one wait in these tests may take before it is a failure.
const PATIENCE: Duration = Duration::from_secs(30);

/// Runs `tasklease ARGS… --json -- CMD…` (`--json` must come before `--`), asserts the
/// exit code, and parses the one JSON object.
fn json_run(p: &Project, args: &[&str], cmd: &[&str], code: i32) -> Value {
    let all: Vec<&str> = args
        .iter()
        .copied()
        .chain(["--json", "--"])
        .chain(cmd.iter().copied())
        .collect();
    let out = p.run(&all);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_one(&out.stdout)
}

/// Starts `tasklease ARGS…` in the background, stdin closed, output captured.
fn spawn(p: &Project, args: &[&str]) -> Child {
    p.cmd(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tasklease")
}

/// Waits for `child` to exit, killing it and failing if it takes too long.
fn finish(mut child: Child) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "tasklease did not finish: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Polls until `f` holds.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the child wrote its pid (it does so once set up) and returns it.
fn child_pid(file: &Path) -> String {
    wait_for("the child to start", || {
        std::fs::read_to_string(file).is_ok_and(|s| s.ends_with('\n'))
    });
    std::fs::read_to_string(file).unwrap().trim().to_owned()
}

fn signal(sig: &str, pid: &str) -> bool {
    Command::new("kill")
        .args([sig, pid])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn alive(pid: &str) -> bool {
    signal("-0", pid)
}

/// Whether `pid` has exited: no such process, or a zombie nobody reaped yet (in a
/// container the re-parented child may wait for a reaper that never comes).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// The task's history as (kind, agent, token).
fn history(p: &Project, id: &str) -> Vec<(String, String, Option<i64>)> {
    p.json(&["log", id, "--limit", "1000"], 0)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["agent"].as_str().unwrap().to_owned(),
                e["token"].as_i64(),
            )
        })
        .collect()
}

/// Kinds with runs of `renewed` (and of `refused`) collapsed, plus how many renewals
/// there were.
fn shape(h: &[(String, String, Option<i64>)]) -> (Vec<&str>, usize) {
    let mut kinds: Vec<&str> = Vec::new();
    for (k, _, _) in h {
        let repeat =
            matches!(k.as_str(), "renewed" | "refused") && kinds.last() == Some(&k.as_str());
        if !repeat {
            kinds.push(k);
        }
    }
    (kinds, h.iter().filter(|e| e.0 == "renewed").count())
}

fn show(p: &Project, id: &str) -> Value {
    p.json(&["show", id], 0)["task"].clone()
}

fn a_child_running_through_several_lease_periods_keeps_its_task_and_ends_done(p: &Project) {
    p.ok(&["add", "long job", "--id", "job"]);
    let env = p.root().join("env.txt");
    let script = format!(
        "echo \"$TASKLEASE_TASK_ID $TASKLEASE_TOKEN $TASKLEASE_AGENT\" > '{}'; echo hello; sleep 3.5",
        env.display()
    );
    let out = finish(spawn(
        p,
        &[
            "run", "job", "--lease", LEASE, "--json", "--", "sh", "-c", &script,
        ],
    ));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // stdout is the one JSON object; the child's output went to stderr.
    let r = parse_one(&out.stdout);
    assert!(String::from_utf8_lossy(&out.stderr).contains("hello"));
    assert_eq!(r["outcome"], "done");
    assert_eq!(r["exit"], 0);
    assert!(r["renewals"].as_u64().unwrap() >= 3, "{r}");
    let token = r["token"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_to_string(&env).unwrap().trim(),
        format!("job {token} tester")
    );
    assert_eq!(show(p, "job")["status"], "done");
    let h = history(p, "job");
    let (kinds, renewals) = shape(&h);
    assert_eq!(kinds, ["claimed", "renewed", "done"]);
    assert!(renewals >= 3, "{h:?}");
    assert!(h.iter().all(|(_, a, t)| a == "tester" && *t == Some(token)));
}

fn kill_9_of_run_kills_its_command_lets_the_lease_expire_and_fences_its_late_done(p: &Project) {
    p.ok(&["add", "fragile", "--id", "f"]);
    let pidfile = p.root().join("child.pid");
    let script = format!("echo $$ > '{}'; exec sleep 60", pidfile.display());
    let mut run = spawn(
        p,
        &["run", "f", "--lease", "600ms", "--", "sh", "-c", &script],
    );
    let orphan = child_pid(&pidfile);
    wait_for("a renewal", || {
        history(p, "f").iter().any(|e| e.0 == "renewed")
    });
    let old = history(p, "f")[0].2.unwrap();
    run.kill().unwrap(); // SIGKILL: no release, no goodbye
    run.wait().unwrap();
    // Its command dies with it (the parent-death signal), although it was in a process
    // group of its own: nobody renews the lease any more, so nobody may work under it.
    let start = Instant::now();
    while !gone(&orphan) {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "the command (pid {orphan}) outlived its killed run by a second"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Nobody renews now; once the lease runs out another agent gets the task.
    let mut claim = Value::Null;
    wait_for("the dead run's lease to expire", || {
        let out = p.run(&["claim", "f", "--agent", "other", "--json"]);
        claim = parse_one(&out.stdout);
        // Refused while the lease was live: held by the dead run's agent.
        if out.status.code() == Some(3) {
            assert_eq!(claim["error"]["holder"], "tester");
            std::thread::sleep(Duration::from_millis(100));
        }
        out.status.code() == Some(0)
    });
    let new = claim["token"].as_i64().unwrap();
    assert!(new > old);
    // The killed run's work finishing late with the old token is refused.
    let late = p.json(&["done", "f", "--token", &old.to_string()], 5);
    assert_eq!(late["error"]["code"], "lease_lost");
    assert!(late["error"]["message"].as_str().unwrap().contains("stale"));
    p.ok(&["done", "f", "--token", &new.to_string(), "--agent", "other"]);

    let h = history(p, "f");
    let (mut kinds, _) = shape(&h);
    kinds.retain(|k| *k != "refused");
    assert_eq!(kinds, ["claimed", "renewed", "claimed", "done"], "{h:?}");
    assert_eq!(h[0], ("claimed".into(), "tester".into(), Some(old)));
    let n = h.len();
    assert_eq!(h[n - 2], ("claimed".into(), "other".into(), Some(new)));
    assert_eq!(h[n - 1], ("done".into(), "other".into(), Some(new)));
    assert_eq!(
        show(p, "f")["attempts"],
        1,
        "the takeover counts an attempt"
    );
}

fn release_force_during_a_run_stops_the_child_and_exits_5(p: &Project) {
    p.ok(&["add", "contested", "--id", "c"]);
    let pidfile = p.root().join("child.pid");
    // The child ignores SIGTERM (and so does the sleep it starts): only SIGKILL, after
    // the grace period, ends them.
    let script = format!(
        "trap '' TERM; echo $$ > '{}'; sleep 60; echo survived",
        pidfile.display()
    );
    let run = spawn(
        p,
        &[
            "run", "c", "--lease", LEASE, "--grace", "500ms", "--json", "--", "sh", "-c", &script,
        ],
    );
    let pid = child_pid(&pidfile);
    std::thread::sleep(Duration::from_millis(500));
    p.ok(&["release", "c", "--force", "--agent", "admin"]);
    // finish() reads stdout to its end: the sleep, had it survived, would hold it open.
    let out = finish(run);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = parse_one(&out.stdout);
    assert_eq!(r["error"]["code"], "lost");
    assert_eq!(
        r["error"]["child"]["signal"], 9,
        "SIGTERM ignored, so SIGKILL: {r}"
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("survived"));
    assert!(!alive(&pid));

    let t = show(p, "c");
    assert_eq!(t["status"], "todo");
    let h = history(p, "c");
    let (kinds, _) = shape(&h);
    assert_eq!(kinds.first(), Some(&"claimed"));
    assert_eq!(
        kinds.last(),
        Some(&"forced"),
        "nothing after the force: {h:?}"
    );
    assert_eq!(h.last().unwrap().1, "admin");
}

fn a_failing_child_releases_the_task_and_counts_the_attempt(p: &Project) {
    p.ok(&["add", "flaky", "--id", "x"]);
    let out = finish(spawn(
        p,
        &[
            "run", "x", "--lease", LEASE, "--json", "--", "sh", "-c", "exit 3",
        ],
    ));
    assert_eq!(
        out.status.code(),
        Some(3),
        "run exits with the child's status"
    );
    let r = parse_one(&out.stdout);
    assert_eq!(r["error"]["code"], "failed");
    assert_eq!(r["error"]["child"]["code"], 3);
    let t = show(p, "x");
    assert_eq!(t["status"], "todo");
    assert_eq!(t["attempts"], 1);
    let h = history(p, "x");
    assert_eq!(shape(&h).0, ["claimed", "released"]);
    let e = &p.json(&["log", "x"], 0)["events"][1];
    assert_eq!(e["detail"], "to todo");

    // A child killed by a signal: 128 + its number.
    let out = finish(spawn(p, &["run", "x", "--", "sh", "-c", "kill -9 $$"]));
    assert_eq!(out.status.code(), Some(137));
    assert_eq!(show(p, "x")["attempts"], 2);
}

/// Runs a child that traps `sig` (and then exits 0), sends `sig` to `run`, and returns
/// run's output and whether the child got the signal.
fn interrupt(p: &Project, sig: &str) -> (Output, bool) {
    p.ok(&["add", "interruptible", "--id", "i"]);
    let pidfile = p.root().join("child.pid");
    let got = p.root().join("got-it");
    let script = format!(
        "trap \"echo yes > '{}'; exit 0\" {sig}; echo $$ > '{}'; while :; do sleep 0.1; done",
        got.display(),
        pidfile.display()
    );
    let run = spawn(
        p,
        &[
            "run", "i", "--lease", LEASE, "--json", "--", "sh", "-c", &script,
        ],
    );
    child_pid(&pidfile);
    assert!(signal(&format!("-{sig}"), &run.id().to_string()));
    let out = finish(run);
    let got = got.exists();
    (out, got)
}

fn ctrl_c_is_forwarded_to_the_child_and_the_task_released(p: &Project) {
    let (out, got) = interrupt(p, "INT");
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(got, "the child got SIGINT");
    // The child exited 0 on SIGINT: an interrupted run still does not mark done.
    assert_eq!(parse_one(&out.stdout)["error"]["code"], "interrupted");
    let t = show(p, "i");
    assert_eq!(t["status"], "todo");
    assert_eq!(t["attempts"], 1);
    let h = history(p, "i");
    let (kinds, _) = shape(&h);
    assert_eq!(kinds.first(), Some(&"claimed"));
    assert_eq!(kinds.last(), Some(&"released"));
    assert!(!kinds.contains(&"done"));
}

fn sigterm_is_forwarded_too(p: &Project) {
    let (out, got) = interrupt(p, "TERM");
    assert_eq!(out.status.code(), Some(143));
    assert!(got, "the child got SIGTERM");
    assert_eq!(show(p, "i")["status"], "todo");
}

fn the_child_may_finish_the_task_itself(p: &Project) {
    p.ok(&["add", "self-reporting", "--id", "s"]);
    let script = r#""$0" done "$TASKLEASE_TASK_ID" --token "$TASKLEASE_TOKEN" && sleep 1.5"#;
    let bin = common::bin();
    let out = finish(spawn(
        p,
        &[
            "run",
            "s",
            "--lease",
            "600ms",
            "--json",
            "--",
            "sh",
            "-c",
            script,
            bin.to_str().unwrap(),
        ],
    ));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(parse_one(&out.stdout)["outcome"], "done");
    let h = history(p, "s");
    let (kinds, _) = shape(&h);
    assert_eq!(kinds.iter().filter(|k| **k == "done").count(), 1, "{h:?}");
    assert_eq!(kinds.last(), Some(&"done"));
}

fn nothing_to_claim_or_nothing_to_run_starts_nothing(p: &Project) {
    let marker = p.root().join("ran");
    let touch = format!("touch '{}'", marker.display());
    let e = json_run(p, &["run", "--next"], &["sh", "-c", &touch], 4);
    assert_eq!(e["error"]["code"], "empty");
    p.ok(&["add", "held", "--id", "h"]);
    p.json(&["claim", "h", "--agent", "someone"], 0);
    let r = json_run(p, &["run", "h"], &["sh", "-c", &touch], 3);
    assert_eq!(r["error"]["code"], "held");
    assert!(!marker.exists());
    // A command that does not exist is refused before anything is claimed.
    p.ok(&["add", "free", "--id", "free"]);
    let bad = json_run(p, &["run", "free"], &["no-such-program-here"], 2);
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-program-here")
    );
    assert_eq!(show(p, "free")["status"], "todo");
    assert!(history(p, "free").is_empty());
    // Nor is a file nobody may execute: the re-exec that starts commands could not
    // refuse it before the claim.
    let plain = p.root().join("not-a-program");
    std::fs::write(&plain, "#!/bin/sh\ntrue\n").unwrap();
    let bad = json_run(p, &["run", "free"], &[plain.to_str().unwrap()], 2);
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("executable"),
        "{bad}"
    );
    assert!(history(p, "free").is_empty());
    let usage = p.json(&["run", "free"], 2);
    assert!(
        usage["error"]["message"].as_str().unwrap().contains("CMD"),
        "{usage}"
    );
    json_run(p, &["run", "free", "--grace", "soon"], &["true"], 2);
    json_run(p, &["run", "free", "--lease", "0s"], &["true"], 2);
    json_run(p, &["run", "free", "--lease", "10ms"], &["true"], 2);
    assert!(history(p, "free").is_empty());
}

fn reap_every_sweeps_until_sigterm(p: &Project) {
    p.ok(&["add", "abandoned", "--id", "a"]);
    p.json(&["claim", "a", "--lease", "300ms", "--agent", "sleepy"], 0);
    let reaper = spawn(p, &["reap", "--every", "100ms", "--json"]);
    wait_for("the sweeper to reap", || show(p, "a")["status"] == "todo");
    assert!(signal("-TERM", &reaper.id().to_string()));
    let out = finish(reaper);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["outcome"], "reaped");
    assert_eq!(lines[0]["id"], "a");
    assert_eq!(lines[0]["agent"], "sleepy");
    let end = &lines[1];
    assert_eq!(end["outcome"], "stopped");
    assert_eq!(end["signal"], "SIGTERM");
    assert_eq!(end["reaped"], 1);
    assert!(end["sweeps"].as_u64().unwrap() >= 1);
    let h = history(p, "a");
    assert_eq!(shape(&h).0, ["claimed", "reaped"]);
    assert_eq!(h[1].1, "tester", "the reaper is recorded as the actor");
}

each_store!(
    a_child_running_through_several_lease_periods_keeps_its_task_and_ends_done,
    kill_9_of_run_kills_its_command_lets_the_lease_expire_and_fences_its_late_done,
    release_force_during_a_run_stops_the_child_and_exits_5,
    a_failing_child_releases_the_task_and_counts_the_attempt,
    the_child_may_finish_the_task_itself,
    nothing_to_claim_or_nothing_to_run_starts_nothing,
    reap_every_sweeps_until_sigterm,
    ctrl_c_is_forwarded_to_the_child_and_the_task_released,
    sigterm_is_forwarded_too,
    runs_finishing_at_once_with_stale_tokens_among_them_finish_only_their_own,
);

/// Twelve runs whose commands end at the same instant, half of them fenced out
/// meanwhile (their task force-released and claimed by another agent). Long-running
/// processes finish through SQLite's writer queue, where one turn serves a batch of
/// `done`s (here all twelve: the test holds the turn until they are posted) and a
/// refused one is run again on its caller's own turn to explain itself.
/// Whatever the batching: the current tokens finish their tasks, each once; the stale
/// ones change nothing and their runs exit 5.
fn runs_finishing_at_once_with_stale_tokens_among_them_finish_only_their_own(p: &Project) {
    const RUNS: usize = 12;
    let gate = p.root().join("gate");
    let made = Command::new("mkfifo").arg(&gate).status().unwrap();
    assert!(made.success(), "mkfifo");
    // Held open for reading and writing: no child blocks opening it, and lines written
    // before a child reads stay in the pipe.
    let mut open_gate = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&gate)
        .unwrap();
    let wait = format!("read _ < '{}'", gate.display());
    let runs: Vec<(String, Child)> = (0..RUNS)
        .map(|i| {
            let id = format!("d-{i}");
            p.ok(&["add", "finish me", "--id", &id]);
            let child = spawn(
                p,
                &[
                    "run", &id, "--lease", "10m", "--json", "--", "sh", "-c", &wait,
                ],
            );
            (id, child)
        })
        .collect();
    wait_for("every run to hold its task", || {
        p.json(&["list", "--status", "in_progress"], 0)["count"] == RUNS
    });
    let stale = |i: usize| i % 2 == 1;
    for (i, (id, _)) in runs.iter().enumerate() {
        if stale(i) {
            p.json(&["release", id, "--force"], 0);
            p.json(&["claim", id, "--agent", "thief"], 0);
        }
    }
    // On SQLite, hold the writer queue's turn while the commands end, so every run
    // posts its `done` on the board and one turn serves them all together.
    let mut turn = p.pg.is_none().then(|| {
        let mut path = p.db().into_os_string();
        path.push("-queue/turn");
        tasklease_filelock::LockFile::open(path).unwrap()
    });
    let held = turn.as_mut().map(|t| t.lock_exclusive().unwrap());
    std::io::Write::write_all(&mut open_gate, &[b'\n'; RUNS]).unwrap();
    // Not a timing assertion: a run that posts later takes a turn of its own.
    std::thread::sleep(Duration::from_millis(300));
    drop(held);
    for (i, (id, child)) in runs.into_iter().enumerate() {
        let out = finish(child);
        let v = parse_one(&out.stdout);
        let err = String::from_utf8_lossy(&out.stderr);
        let dones = history(p, &id).iter().filter(|e| e.0 == "done").count();
        let task = show(p, &id);
        if stale(i) {
            assert_eq!(out.status.code(), Some(5), "{id}, fenced out: {v} {err}");
            assert_eq!(
                (task["status"].as_str(), task["assignee"].as_str()),
                (Some("in_progress"), Some("thief")),
                "{id}"
            );
            assert_eq!(dones, 0, "{id}");
        } else {
            assert_eq!(out.status.code(), Some(0), "{id}: {v} {err}");
            assert_eq!(task["status"], "done", "{id}");
            assert_eq!(dones, 1, "{id}");
        }
    }
}

/// The re-exec that starts `run`'s command refuses to start it when its parent is not
/// the supervisor it names: that supervisor died before the child asked to die with
/// it, and the command would run unsupervised.
#[cfg(target_os = "linux")]
#[test]
fn a_command_whose_supervisor_is_already_gone_is_not_started() {
    let p = Project::new();
    let marker = p.root().join("ran");
    let touch = format!("touch '{}'", marker.display());
    // Our parent is the test process, not pid 1.
    let out = Command::new(common::bin())
        .args(["__exec-child", "1", "--", "sh", "-c", &touch])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(126));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is gone"), "{err}");
    assert!(!marker.exists());
    // Named correctly (the test is its parent), the same re-exec becomes the command.
    let me = std::process::id().to_string();
    let out = Command::new(common::bin())
        .args(["__exec-child", &me, "--", "sh", "-c", &touch])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(marker.exists());
}
