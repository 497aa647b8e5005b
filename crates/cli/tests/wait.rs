//! `claim --next --wait` through the built binary, waiters as real processes, on both
//! stores: the bound and its exit code, every task that becomes ready taken exactly
//! once and soon, a lease running out waking a waiter, and a PostgreSQL restart in the
//! middle of a wait.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Project, parse_one};

/// How soon a waiter must hold a task that became ready: generous for a loaded CI
/// machine, and far below the fallback look (30 s), so only a wake-up meets it.
const SOON: Duration = Duration::from_secs(10);

fn waiter(p: &Project, name: &str, wait: &str) -> Child {
    p.cmd(&["claim", "--next", "--wait", wait, "--json", "--agent", name])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a waiter")
}

/// Waits for a waiter to exit: its exit code, its one JSON object, and when it ended.
fn finish(mut c: Child) -> (Option<i32>, serde_json::Value, Instant, String) {
    let status = c.wait().expect("wait for the waiter");
    let ended = Instant::now();
    let mut out = Vec::new();
    c.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let mut err = String::new();
    c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.code(), parse_one(&out), ended, err)
}

fn a_wait_with_nothing_ready_ends_at_its_bound_with_exit_4(p: &Project) {
    let started = Instant::now();
    let out = p.run(&["claim", "--next", "--wait", "1s", "--json"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    // The same JSON as claim --next with nothing ready.
    let plain = p.json(&["claim", "--next"], 4);
    assert_eq!(parse_one(&out.stdout), plain);
    assert!(took >= Duration::from_secs(1), "ended early: {took:?}");
    // The busy timeout (30 s) bounds what comes after the bound.
    assert!(took < Duration::from_secs(31), "{took:?}");
    let out = p.run(&["claim", "--next", "--wait", "200ms"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no task became ready within 200ms") && said.contains("waited"),
        "the message says what it waited for and how long: {said}"
    );
    let out = p.run(&["claim", "--wait", "1s", "X"]);
    assert_eq!(out.status.code(), Some(2), "--wait without --next: {out:?}");
    let out = p.run(&["claim", "--next", "--wait", "soon"]);
    assert_eq!(out.status.code(), Some(2), "a bad duration: {out:?}");
}

/// A small xorshift: random moments without a dependency.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        eprintln!("seed {seed}");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Eight waiting processes; tasks become ready at random moments — three at once by a
/// `done` of the task they wait on, five by `add` — and each is taken by exactly one
/// waiter, within [`SOON`] of becoming ready.
fn waiters_take_each_task_that_becomes_ready_exactly_once_and_soon(p: &Project) {
    let mut rng = Rng::new();
    p.ok(&["add", "root", "--id", "root"]);
    for d in ["d1", "d2", "d3"] {
        p.ok(&["add", d, "--id", d, "--dep", "root"]);
    }
    let root = p.json(&["claim", "root", "--agent", "boss"], 0);
    let token = root["token"].to_string();
    let token = token.trim_matches('"').to_owned();
    let waiters: Vec<Child> = (0..8).map(|i| waiter(p, &format!("w{i}"), "2m")).collect();
    // Give them a moment to fall asleep (correctness does not depend on it).
    std::thread::sleep(Duration::from_millis(1500));
    let mut ready_at = std::collections::HashMap::new();
    std::thread::sleep(Duration::from_millis(rng.below(500)));
    p.ok(&["done", "root", "--token", &token, "--agent", "boss"]);
    for d in ["d1", "d2", "d3"] {
        ready_at.insert(d.to_owned(), Instant::now());
    }
    for i in 0..5 {
        std::thread::sleep(Duration::from_millis(rng.below(700)));
        let id = format!("n{i}");
        p.ok(&["add", &id, "--id", &id]);
        ready_at.insert(id, Instant::now());
    }
    let mut taken = Vec::new();
    for w in waiters {
        let (code, v, ended, err) = finish(w);
        assert_eq!(code, Some(0), "a waiter got nothing: {v} {err}");
        let task = v["id"].as_str().unwrap_or_else(|| panic!("{v}")).to_owned();
        let became = ready_at[&task];
        let late = ended.saturating_duration_since(became);
        assert!(
            late < SOON,
            "{task} was ready {late:?} before its waiter held it"
        );
        taken.push(task);
    }
    taken.sort();
    let mut expected: Vec<String> = ready_at.keys().cloned().collect();
    expected.sort();
    assert_eq!(taken, expected, "each task exactly once");
}

fn a_lease_running_out_wakes_a_waiter(p: &Project) {
    p.ok(&["add", "t", "--id", "t"]);
    p.json(&["claim", "t", "--agent", "gone", "--lease", "2s"], 0);
    let started = Instant::now();
    let (code, v, ended, err) = finish(waiter(p, "w", "2m"));
    assert_eq!(code, Some(0), "{v} {err}");
    assert_eq!(v["id"], "t");
    let took = ended - started;
    assert!(
        took < SOON,
        "the waiter took {took:?} to see the lease run out"
    );
}

each_store!(
    a_wait_with_nothing_ready_ends_at_its_bound_with_exit_4,
    waiters_take_each_task_that_becomes_ready_exactly_once_and_soon,
    a_lease_running_out_wakes_a_waiter
);

/// A PostgreSQL restart while agents wait: their listening connections break, they
/// reconnect and keep waiting, and a task added after the restart is taken — by a
/// wake-up, well before the fallback look.
#[test]
fn a_postgres_restart_during_a_wait_is_ridden_out() {
    if tasklease_postgres::testing::server().is_none() {
        return;
    }
    let Some(pg) = OwnPg::start() else { return };
    let db = pg.conn();
    let cli = |args: &[&str]| {
        let mut c = Command::new(common::bin());
        c.args(args)
            .env("TASKLEASE_DB", &db)
            .env("TASKLEASE_AGENT", "tester")
            .current_dir(pg.dir.path());
        c
    };
    let init = cli(&["init"]).output().unwrap();
    assert!(init.status.success(), "{init:?}");
    let waiters: Vec<Child> = (0..3)
        .map(|i| {
            cli(&[
                "claim",
                "--next",
                "--wait",
                "2m",
                "--json",
                "--agent",
                &format!("w{i}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    assert!(pg.restart("fast"), "the server restarted");
    // Room for the listeners to notice and reconnect (0.1 s, doubling to 2 s).
    std::thread::sleep(Duration::from_secs(3));
    let mut added = Vec::new();
    for i in 0..3 {
        let id = format!("t{i}");
        let out = cli(&["add", &id, "--id", &id]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        added.push((id, Instant::now()));
    }
    let mut taken = Vec::new();
    for w in waiters {
        let (code, v, ended, err) = finish(w);
        assert_eq!(
            code,
            Some(0),
            "a waiter did not survive the restart: {v} {err}"
        );
        let task = v["id"].as_str().unwrap().to_owned();
        let became = added.iter().find(|(id, _)| *id == task).unwrap().1;
        assert!(
            ended.saturating_duration_since(became) < SOON,
            "{task} waited too long"
        );
        taken.push(task);
    }
    taken.sort();
    assert_eq!(taken, ["t0", "t1", "t2"]);
}

/// A PostgreSQL server of the test's own, which it may restart: never the shared test
/// server. Stopped and removed on drop.
struct OwnPg {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
}

impl OwnPg {
    /// Starts one, or `None` (recorded as a skip) where Debian's `postgresql` package
    /// is missing — a failure under CI=true.
    fn start() -> Option<OwnPg> {
        let bindir = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max();
        let Some(bindir) = bindir else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "no PostgreSQL server binaries, and CI=true: apt-get install postgresql"
            );
            tasklease_postgres::testing::skip("no PostgreSQL server binaries");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("tasklease-wait-pg")
            .tempdir()
            .unwrap();
        let port = 57000 + (std::process::id() % 1000) as u16;
        let pg = OwnPg { dir, bindir, port };
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .unwrap();
            assert!(ok.success(), "chown postgres {}", pg.dir.path().display());
        }
        let data = pg.dir.path().join("data");
        let out = pg
            .as_owner(&pg.bindir.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        let out = pg
            .pg_ctl()
            .arg("-l")
            .arg(pg.dir.path().join("server.log"))
            .arg("-o")
            .arg(format!(
                "-c listen_addresses='' -k {} -p {} -c max_connections=100 -c fsync=off",
                pg.dir.path().display(),
                pg.port
            ))
            .arg("start")
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {out:?}");
        Some(pg)
    }

    fn as_owner(&self, program: &Path) -> Command {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl(&self) -> Command {
        let mut c = self.as_owner(&self.bindir.join("pg_ctl"));
        c.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-w", "-s"]);
        c
    }

    fn conn(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.dir.path().display(),
            self.port
        )
    }

    /// Restarts the server; whether it came back is the agents' problem to survive,
    /// but a restart that failed is said (and the server started again).
    fn restart(&self, mode: &str) -> bool {
        // The server started again writes to the log file, not to a pipe of ours
        // (which `output()` would wait on for as long as the server runs).
        let log = self.dir.path().join("server.log");
        let out = self
            .pg_ctl()
            .arg("-l")
            .arg(&log)
            .args(["-m", mode, "restart"])
            .output();
        if out.as_ref().is_ok_and(|o| o.status.success()) {
            return true;
        }
        eprintln!("wait test: pg_ctl restart -m {mode} failed: {out:?}");
        let _ = self.pg_ctl().arg("-l").arg(&log).arg("start").output();
        false
    }
}

impl Drop for OwnPg {
    fn drop(&mut self) {
        let _ = self
            .pg_ctl()
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
