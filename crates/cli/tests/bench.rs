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
    assert_eq!(v["verified"], false);
    assert_eq!(v["double_claims"].as_array().unwrap().len(), 1, "{v}");
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
    let Some(server) = tasklease_postgres::testing::server() else {
        return;
    };
    let p = Project::new();
    let v = p.json(
        &[
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
        ],
        0,
    );
    assert_eq!(v["backend"], "postgres");
    assert_eq!(v["verified"], true);
    assert!(v["tasklease"]["claims"].as_u64().unwrap() > 0, "{v}");
    assert!(v["baseline"]["claims"].as_u64().unwrap() > 0, "{v}");
    // The scratch schemas are gone.
    let mut c = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    let left: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tasklease_bench_%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}
