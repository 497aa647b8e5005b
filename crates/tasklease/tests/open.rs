//! Choosing and opening a store from the library, as a Rust agent would: only `init`
//! creates one, and `TASKLEASE_DB` counts as it does for the CLI.

use std::process::Command;

use tasklease::open::{self, DB_VAR, DbSpec, OpenOptions};
use tasklease::{Error, NewTask};

#[test]
fn an_explicit_path_with_no_database_is_refused_until_init() {
    let dir = tempfile::tempdir().unwrap();
    let spec = DbSpec::parse(dir.path().join("typo.db").to_str().unwrap());
    let e = open::open(&spec, &OpenOptions::default())
        .err()
        .expect("opening a missing database must fail");
    assert!(matches!(e, Error::Invalid { field: "store", .. }), "{e}");
    assert!(e.to_string().contains("typo.db"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let r = open::init(&spec, &OpenOptions::default()).unwrap();
    assert!(r.created);
    let store = open::open(&spec, &OpenOptions::default()).unwrap();
    store
        .add(&NewTask {
            title: "found".into(),
            ..NewTask::default()
        })
        .unwrap();
    assert!(!open::init(&spec, &OpenOptions::default()).unwrap().created);
}

/// The child half of [`discover_honours_tasklease_db`]: prints what `discover`
/// chose, when run with the marker variable set.
#[test]
fn discover_child() {
    if std::env::var_os("TASKLEASE_TEST_DISCOVER_CHILD").is_none() {
        return;
    }
    let cwd = std::env::current_dir().unwrap();
    let spec = DbSpec::discover(None, &cwd).unwrap();
    println!("SPEC {}", spec.display());
}

#[test]
fn discover_honours_tasklease_db() {
    // A project whose own database `discover` would find without the variable.
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join(".git")).unwrap();
    let chosen = project.path().join("elsewhere.db");
    // The variable is set for a child process (this test binary, running the child
    // test alone): setting it here would race with the other tests' threads.
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "discover_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .current_dir(project.path())
        .env("TASKLEASE_TEST_DISCOVER_CHILD", "1")
        .env(DB_VAR, &chosen)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let spec = stdout
        .lines()
        .find_map(|l| l.split_once("SPEC ").map(|(_, s)| s.trim()))
        .unwrap_or_else(|| panic!("the child printed no spec: {stdout}"));
    assert_eq!(spec, chosen.display().to_string());
}

/// The library names no CLI flags or verbs: the front ends add their own hints.
#[test]
fn library_messages_speak_no_cli() {
    let dir = tempfile::tempdir().unwrap();
    let missing = open::open(
        &DbSpec::parse(dir.path().join("typo.db").to_str().unwrap()),
        &OpenOptions::default(),
    )
    .err()
    .unwrap();
    let nowhere = DbSpec::for_init(Some(""), dir.path(), false).unwrap_err();
    let busy_backup = open::migrate(
        &DbSpec::parse("postgres://nobody@127.0.0.1:1/none"),
        &OpenOptions::default(),
        true,
    )
    .unwrap_err();
    let unknown = Error::outcome_unknown("claim the task", "connection reset");
    for e in [missing, nowhere, busy_backup, unknown] {
        let msg = e.to_string();
        assert!(
            !msg.contains("--") && !msg.contains("`tasklease") && !msg.contains("TASKLEASE_"),
            "{msg}"
        );
    }
}
