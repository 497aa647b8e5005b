//! `tasklease bench` at a tiny size: it runs, it verifies, and its verification
//! catches a double claim when one is injected. (Figures are never asserted.)

mod common;

use common::{Project, parse_one};

#[test]
fn bench_runs_small_and_verifies() {
    let p = Project::new();
    let dir = p.root().join("benchdir");
    std::fs::create_dir(&dir).unwrap();
    let out = p
        .cmd(&[
            "bench",
            "--agents",
            "3",
            "--tasks",
            "300",
            "--seconds",
            "0.3",
            "--baseline",
            "--mode",
            "next-done",
            "--deps",
            "--json",
            "--dir",
            dir.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = parse_one(&out.stdout);
    assert_eq!(v["verified"], true);
    assert_eq!(v["agents"], 3);
    assert!(v["tasklease"]["claims"].as_u64().unwrap() > 0, "{v}");
    assert!(v["baseline"]["claims"].as_u64().unwrap() > 0, "{v}");
    assert!(v["ratio"].as_f64().unwrap() > 0.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bench:"),
        "progress goes to stderr: {stderr}"
    );
    // It cleans up after itself and never touches the project database.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    assert_eq!(p.json(&["list"], 0)["count"], 0);
}

#[test]
fn bench_verification_catches_an_injected_double_claim() {
    let p = Project::new();
    let v = p.json(
        &[
            "bench",
            "--agents",
            "2",
            "--tasks",
            "200",
            "--seconds",
            "0.2",
            "--inject-double-claim",
        ],
        1,
    );
    assert_eq!(v["error"]["verified"], false);
    assert_eq!(
        v["error"]["double_claims"].as_array().unwrap().len(),
        1,
        "{v}"
    );
    assert_eq!(v["error"]["code"], "double_claim");
}

#[test]
fn bench_refuses_bad_sizes_and_real_databases() {
    let p = Project::new();
    for args in [
        vec!["bench", "--agents", "0"],
        vec!["bench", "--seconds", "0"],
        vec!["bench", "--tasks", "0"],
        vec!["bench", "--mode", "sideways"],
        vec!["bench", "--db", "x.db"],
    ] {
        let out = p.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn bench_runs_small_on_postgres_in_scratch_schemas() {
    let Some(server) = common::pg_server() else {
        return;
    };
    let p = Project::new();
    // Spawned by hand for its pid: its scratch schemas are named after it, and the
    // server may be shared with other runs of the suite.
    let child = p
        .cmd(&[
            "bench",
            "--db",
            &server,
            "--agents",
            "2",
            "--tasks",
            "200",
            "--seconds",
            "0.3",
            "--baseline",
            "--mode",
            "next-done",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = parse_one(&out.stdout);
    assert_eq!(v["backend"], "postgres");
    assert_eq!(v["verified"], true);
    assert!(v["tasklease"]["claims"].as_u64().unwrap() > 0, "{v}");
    assert!(v["baseline"]["claims"].as_u64().unwrap() > 0, "{v}");
    // The scratch schemas are gone.
    let mut c = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    let left: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE $1",
            &[&format!("tasklease_bench_{pid}_%")],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

/// Ctrl-C stops the agents and removes the benchmark's files (a database that can
/// hold millions of tasks) instead of leaving them in the temporary directory.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_agents_and_removes_the_files() {
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(common::bin());
    let child = cmd
        .args([
            "bench",
            "--agents",
            "3",
            "--tasks",
            "2000",
            "--seconds",
            "60",
        ])
        .env("TMPDIR", tmp.path())
        .env_remove("TASKLEASE_DB")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let dir = tmp.path().join(format!("tasklease-bench-{}", child.id()));
    let begun = Instant::now();
    while !dir.exists() {
        assert!(
            begun.elapsed() < Duration::from_secs(20),
            "no bench directory"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the agents start claiming.
    std::thread::sleep(Duration::from_millis(1500));
    let pid = child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let stopped = Instant::now();
    let out = child.wait_with_output().unwrap();
    // The agents would run for a minute; stopped, it is over in well under that.
    assert!(
        stopped.elapsed() < Duration::from_secs(20),
        "{:?}",
        stopped.elapsed()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("stopped by SIGINT"), "{err}");
    assert!(!dir.exists(), "left behind: {}", dir.display());
}

/// `--dir` is made if missing; a SQLite `TASKLEASE_DB` in the environment (the
/// project's own database) is set aside with a note, not refused; and a run that runs
/// out of tasks says its figures and ratio mean nothing.
#[test]
fn bench_makes_its_dir_sets_aside_tasklease_db_and_says_when_it_ran_out() {
    let p = Project::new();
    let dir = p.root().join("not/yet/there");
    let args = [
        "bench",
        "--agents",
        "2",
        "--tasks",
        "20",
        "--seconds",
        "0.5",
        "--baseline",
        "--dir",
        dir.to_str().unwrap(),
    ];
    let out = p
        .cmd(&[&args[..], &["--json"]].concat())
        .env("TASKLEASE_DB", p.db())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("TASKLEASE_DB names a SQLite database; bench never touches it"),
        "{stderr}"
    );
    let v = parse_one(&out.stdout);
    assert_eq!(v["meaningful"], false, "{v}");
    assert_eq!(v["tasklease"]["exhausted"], true, "{v}");
    assert!(dir.is_dir());
    let human = p.ok(&args);
    assert!(
        human.contains("(meaningless: a run ran out of tasks)"),
        "{human}"
    );
    assert_eq!(
        p.json(&["list"], 0)["count"],
        0,
        "the project's database was touched"
    );
}
