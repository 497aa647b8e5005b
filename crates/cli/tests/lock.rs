//! File locks between real processes: `tasklease lock … -- CMD`, `tasklease git`,
//! `tasklease locks`. OS locks are per open file, so only separate processes show
//! what agents will see; every holder here is a `tasklease` process.
#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::parse_one;
use serde_json::Value;

/// A scratch git repository (a real one: the git lock lives in git's common dir).
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = Repo { dir };
        r.git(&["init", "-q"]);
        r
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self, args: &[&str]) {
        let out = git_cmd(self.root()).args(args).output().expect("git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    /// `tasklease` as agent `agent`, in `dir`.
    fn cmd_in(&self, dir: &Path, agent: &str, args: &[&str]) -> Command {
        let mut c = Command::new(common::bin());
        c.args(args)
            .current_dir(dir)
            .env("TASKLEASE_AGENT", agent)
            .env_remove("TASKLEASE_DB")
            .env_remove("TASKLEASE_LOCKS_HELD");
        for v in GIT_VARS {
            c.env_remove(v);
        }
        c
    }

    fn cmd(&self, agent: &str, args: &[&str]) -> Command {
        self.cmd_in(self.root(), agent, args)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd("tester", args).output().expect("run tasklease")
    }

    /// A `tasklease … -- sh -c 'echo locked; cat'` that holds its lock until released.
    fn hold(&self, agent: &str, args: &[&str]) -> Holder {
        let mut all = args.to_vec();
        all.extend(["--", "sh", "-c", "echo locked; cat >/dev/null"]);
        let mut child = self
            .cmd(agent, &all)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn holder");
        let line = first_line(child.stdout.as_mut().unwrap());
        assert_eq!(line, "locked\n", "the holder did not get its lock");
        let stdin = child.stdin.take();
        Holder { child, stdin }
    }
}

const GIT_VARS: [&str; 4] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_INDEX_FILE",
];

fn git_cmd(dir: &Path) -> Command {
    let mut c = Command::new("git");
    c.current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@t"]);
    for v in GIT_VARS {
        c.env_remove(v);
    }
    c
}

/// A process holding a lock; its command ends when its stdin closes.
struct Holder {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Holder {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the command finish; tasklease must then exit 0, releasing the lock.
    fn release(mut self) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "holder exited {status:?}");
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process waiting for a lock: started, and seen to announce that it waits.
fn wait_for(mut c: Command, announce: &str) -> (Child, String) {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn waiter");
    let line = first_line(child.stderr.as_mut().unwrap());
    assert!(line.contains(announce), "waiter said {line:?}");
    (child, line)
}

fn first_line(from: impl std::io::Read) -> String {
    let mut line = String::new();
    BufReader::new(from).read_line(&mut line).unwrap();
    line
}

fn still_running(c: &mut Child, for_at_least: Duration) -> bool {
    std::thread::sleep(for_at_least);
    c.try_wait().unwrap().is_none()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_second_process_blocks_until_the_first_releases() {
    let r = Repo::new();
    let h = r.hold("alice", &["lock", "git"]);
    let (mut waiter, said) = wait_for(
        r.cmd("bob", &["lock", "git", "--", "echo", "got it"]),
        "tasklease: waiting for git lock held by alice (pid ",
    );
    assert!(said.contains(&format!("(pid {} on ", h.pid())), "{said}");
    assert!(said.contains(") since 20"), "{said}");
    assert!(still_running(&mut waiter, Duration::from_millis(300)));
    h.release();
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got it\n");
}

#[test]
fn trying_fails_while_held_and_names_the_holder() {
    let r = Repo::new();
    let h = r.hold("alice", &["lock", "task", "T-1"]);
    let out = r.run(&["lock", "task", "T-1", "--timeout", "0", "--", "true"]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("task lock T-1 held by alice (pid "), "{err}");
    assert!(err.contains("tried once"), "{err}");
    assert!(!err.contains("waiting for"), "a try does not wait: {err}");

    let out = r.run(&[
        "lock",
        "task",
        "T-1",
        "--timeout",
        "0",
        "--json",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let j = parse_one(&out.stdout);
    assert_eq!(j["ok"], false);
    assert_eq!(j["error"]["code"], "held");
    assert_eq!(j["error"]["holder"]["agent"], "alice");
    assert_eq!(j["error"]["holder"]["pid"], h.pid());
    assert_eq!(j["error"]["holder"]["mode"], "exclusive");
    // Another task's lock is a different lock.
    let out = r.run(&["lock", "task", "T-2", "--timeout", "0", "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    h.release();
    let out = r.run(&["lock", "task", "T-1", "--timeout", "0", "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_timeout_is_honoured() {
    let r = Repo::new();
    let _h = r.hold("alice", &["lock", "state"]);
    let t = Instant::now();
    let out = r.run(&["lock", "state", "--timeout", "1s", "--", "true"]);
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let err = stderr(&out);
    assert!(
        err.contains("waiting for state lock held by alice"),
        "{err}"
    );
    assert!(err.contains("gave up after"), "{err}");
}

#[test]
fn kill_9_of_the_holder_frees_the_lock_at_once() {
    let r = Repo::new();
    let mut h = r.hold("alice", &["lock", "git"]);
    let (mut waiter, _) = wait_for(
        r.cmd("bob", &["lock", "git", "--timeout", "60s", "--", "true"]),
        "waiting for git lock held by alice",
    );
    h.child.kill().unwrap(); // SIGKILL: no destructor, no cleanup
    h.child.wait().unwrap();
    // The holder's command (`cat`) lives on, orphaned: the lock must not be its.
    let t = Instant::now();
    assert!(waiter.wait().unwrap().success());
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // A holder killed with nobody waiting leaves its record behind; it blocks nobody.
    let mut h = r.hold("carol", &["lock", "git"]);
    h.child.kill().unwrap();
    h.child.wait().unwrap();
    let record = r.root().join(".git/tasklease/git.holder.json");
    assert!(std::fs::read_to_string(&record).unwrap().contains("carol"));
    let listed = parse_one(&r.run(&["locks", "--json"]).stdout);
    assert_eq!(listed["locks"][0]["held"], false);
    assert_eq!(listed["locks"][0]["holder"], Value::Null);
    let out = r.run(&["lock", "git", "--timeout", "0", "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn eight_processes_append_under_the_git_lock_without_interleaving() {
    const PROCS: usize = 8;
    const ROUNDS: usize = 12;
    const LINES: usize = 5;
    let r = Repo::new();
    std::fs::write(r.root().join("count"), "0\n").unwrap();
    // Each critical section is a read-modify-write of `count` plus LINES separate
    // appends to `log`: without the lock, counts get lost and blocks interleave.
    let section = format!(
        r#"n=$(cat count); for l in $(seq {LINES}); do echo "$P $i $l" >> log; done; echo $((n+1)) > count"#
    );
    let script = format!(
        r#"for i in $(seq {ROUNDS}); do export i; "$0" lock git -- sh -c '{section}' || exit 1; done"#
    );
    let children: Vec<Child> = (0..PROCS)
        .map(|p| {
            let mut sh = Command::new("sh");
            sh.current_dir(r.root())
                .env("TASKLEASE_AGENT", format!("p{p}"))
                .env_remove("TASKLEASE_LOCKS_HELD")
                .env("P", p.to_string())
                .args(["-c", &script])
                .arg(common::bin())
                .stderr(Stdio::piped());
            for v in GIT_VARS {
                sh.env_remove(v);
            }
            sh.spawn().unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let count = std::fs::read_to_string(r.root().join("count")).unwrap();
    assert_eq!(count.trim(), (PROCS * ROUNDS).to_string(), "lost updates");
    let log = std::fs::read_to_string(r.root().join("log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), PROCS * ROUNDS * LINES, "lost lines");
    let mut seen = std::collections::HashSet::new();
    for block in lines.chunks(LINES) {
        let owner: Vec<&str> = block[0].split(' ').take(2).collect();
        for (l, line) in block.iter().enumerate() {
            assert_eq!(
                *line,
                format!("{} {} {}", owner[0], owner[1], l + 1),
                "interleaved:\n{}",
                block.join("\n")
            );
        }
        assert!(seen.insert(block[0]), "a section ran twice: {}", block[0]);
    }
}

#[test]
fn shared_holders_coexist_and_an_exclusive_request_waits_for_all() {
    let r = Repo::new();
    let s1 = r.hold("reader1", &["lock", "state", "--shared"]);
    let s2 = r.hold("reader2", &["lock", "state", "--shared", "--timeout", "0"]);
    let (mut writer, said) = wait_for(
        r.cmd("writer", &["lock", "state", "--", "true"]),
        "waiting for state lock held shared by reader",
    );
    assert!(said.contains(") since 20"), "{said}");
    s1.release();
    assert!(still_running(&mut writer, Duration::from_millis(300)));
    let listed = parse_one(&r.run(&["locks", "--json"]).stdout);
    let state = &listed["locks"].as_array().unwrap()[0];
    assert_eq!(
        (state["name"].as_str(), state["mode"].as_str()),
        (Some("state"), Some("shared"))
    );
    s2.release();
    assert!(writer.wait().unwrap().success());
}

#[test]
fn bad_names_are_refused_with_exit_2_and_nothing_created() {
    let r = Repo::new();
    // A NUL byte cannot reach a process through argv; the library refuses it
    // (tasklease-filelock's names_stay_inside_the_directory).
    let cases: &[&[&str]] = &[
        &["lock", "task", "../x", "--", "true"],
        &["lock", "task", "/etc/passwd", "--", "true"],
        &["lock", "task", "a/b", "--", "true"],
        &["lock", "task", "..", "--", "true"],
        &["lock", "task", "", "--", "true"],
        &["lock", "path", "", "--", "true"],
        &["lock", "path", "no/such/dir/x.lock", "--", "true"],
        &["lock", "state", "--timeout", "soon", "--", "true"],
        &["lock", "state", "--timeout", "5", "--", "true"],
        &["lock", "state"],
        &["lock", "state", "--", "no-such-command-anywhere"],
        &["lock", "nothing", "--", "true"],
    ];
    for args in cases {
        let out = r.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let mut json = args.to_vec();
        json.insert(1, "--json");
        let j = parse_one(&r.run(&json).stdout);
        assert_eq!(j["ok"], false, "{args:?}");
        assert_eq!(j["error"]["exit"], 2, "{args:?}");
    }
    let locks = r.root().join(".tasklease/locks");
    let made: Vec<_> = std::fs::read_dir(&locks)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(made.iter().all(|n| n == "state.lock"), "{made:?}");
    assert!(!r.root().join("x").exists());

    let outside = tempfile::tempdir().unwrap();
    let out = r
        .cmd_in(outside.path(), "t", &["lock", "git", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not inside a git repository"));
}

#[test]
fn two_worktrees_share_the_git_lock_but_not_task_locks() {
    let r = Repo::new();
    r.git(&["commit", "-q", "--allow-empty", "-m", "0"]);
    let wt = r.root().join("wt");
    r.git(&["worktree", "add", "-q", wt.to_str().unwrap(), "-b", "side"]);
    let h = r.hold("alice", &["lock", "git"]);
    let _t = r.hold("alice", &["lock", "task", "T-1"]);
    let out = r
        .cmd_in(&wt, "bob", &["lock", "git", "--timeout", "0", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("git lock held by alice"));
    let out = r
        .cmd_in(&wt, "bob", &["git", "--timeout", "0", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // Each worktree is its own project, with its own task locks.
    let out = r
        .cmd_in(
            &wt,
            "bob",
            &["lock", "task", "T-1", "--timeout", "0", "--", "true"],
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed = parse_one(
        &r.cmd_in(&wt, "bob", &["locks", "--json"])
            .output()
            .unwrap()
            .stdout,
    );
    let git = &listed["locks"][0];
    assert_eq!(git["kind"], "git");
    assert_eq!(git["held"], true);
    assert_eq!(git["holder"]["pid"], h.pid());
    h.release();
    let out = r
        .cmd_in(&wt, "bob", &["git", "--timeout", "0", "status", "--short"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_command_under_a_lock_can_ask_for_it_again() {
    let r = Repo::new();
    // `tasklease git` inside `tasklease lock git` would otherwise wait on its parent.
    let out = nested(
        &r,
        &["lock", "git"],
        r#""$0" git --timeout 5s status --short"#,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("running under it"),
        "{}",
        stderr(&out)
    );
    // Exclusive under a shared parent can never succeed: refused, not a hang.
    let out = nested(
        &r,
        &["lock", "state", "--shared"],
        r#""$0" lock state -- true"#,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("wait forever"), "{}", stderr(&out));
    // Another holder's lock is no parent's: the inherited variable alone does not pass.
    let h = r.hold("alice", &["lock", "git"]);
    let out = r
        .cmd("tester", &["lock", "git", "--timeout", "0", "--", "true"])
        .env(
            "TASKLEASE_LOCKS_HELD",
            format!(
                "exclusive 1 0 {}",
                r.root().join(".git/tasklease/git.lock").display()
            ),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    h.release();
}

/// `tasklease OUTER -- sh -c INNER`, with `$0` in INNER the tasklease binary.
fn nested(r: &Repo, outer: &[&str], inner: &str) -> Output {
    let mut args = outer.to_vec();
    args.extend(["--", "sh", "-c", inner]);
    r.cmd("tester", &args).arg(common::bin()).output().unwrap()
}

#[test]
fn status_passes_through_and_json_captures_stdout() {
    let r = Repo::new();
    let out = r.run(&["lock", "state", "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    let out = r.run(&["lock", "state", "--", "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(128 + 9));
    let out = r.run(&[
        "lock",
        "state",
        "--json",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(stderr(&out), "err\n");
    let j = parse_one(&out.stdout);
    assert_eq!(j["ok"], false);
    let e = &j["error"];
    assert_eq!(e["code"], "command_failed");
    assert_eq!(e["exit"], 4);
    assert_eq!(e["stdout"], "out\n");
    assert_eq!(e["lock"]["label"], "state lock");
    assert_eq!(e["lock"]["mode"], "exclusive");
    assert_eq!(e["lock"]["holder"]["agent"], "tester");
    // The command's stdin is tasklease's.
    let mut c = r
        .cmd("tester", &["lock", "state", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b"piped\n").unwrap();
    let out = c.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped\n");
}

#[test]
fn a_path_lock_is_shared_with_flock_1() {
    let r = Repo::new();
    let file: PathBuf = r.root().join("shared-with-tools.lock");
    let f = file.to_str().unwrap();
    let mut flock = Command::new("flock")
        .args([f, "-c", "echo locked; cat >/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("flock(1) from util-linux");
    assert_eq!(first_line(flock.stdout.as_mut().unwrap()), "locked\n");
    let out = r.run(&["lock", "path", f, "--timeout", "0", "--", "true"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no holder record"),
        "{}",
        stderr(&out)
    );
    drop(flock.stdin.take());
    assert!(flock.wait().unwrap().success());
    let out = r.run(&["lock", "path", f, "--timeout", "0", "--", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // And the other way round: flock(1) waits for us.
    let h = r.hold("alice", &["lock", "path", f]);
    let st = Command::new("flock")
        .args(["-n", f, "true"])
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(1), "flock -n must find it held");
    h.release();
    let names: Vec<_> = std::fs::read_dir(r.root())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("shared-with-tools"))
        .collect();
    assert_eq!(
        names.len(),
        1,
        "no holder record beside a foreign file: {names:?}"
    );
}

#[test]
fn locks_lists_holders_and_free_locks() {
    let r = Repo::new();
    let out = r.run(&["locks"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no locks\n");
    r.run(&["lock", "task", "done-1", "--", "true"]);
    let h = r.hold("alice", &["lock", "git"]);
    let out = r.run(&["locks"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    // A header, then one row per lock.
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("LOCK ") && lines[0].contains("STATE"),
        "{text}"
    );
    let lines = &lines[1..];
    assert!(
        lines[0].starts_with("git ") && lines[0].contains("held exclusive by alice (pid "),
        "{text}"
    );
    assert!(
        lines[1].starts_with("task-done-1 ") && lines[1].ends_with("free"),
        "{text}"
    );
    let j = parse_one(&r.run(&["locks", "--json"]).stdout);
    assert_eq!(j["ok"], true);
    assert_eq!(j["locks"][1]["task"], "done-1");
    h.release();
}
