//! Helpers for driving the real `tasklease` binary against a real database: a SQLite
//! file in a scratch project, or a scratch schema on the test PostgreSQL server.

#![allow(dead_code)]

#[cfg(unix)]
pub mod own_pg;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The test PostgreSQL server, or `None` (recorded as a skip) when there is none or
/// the binary under test is built without the `postgres` feature (a SQLite-only
/// build: `cargo test -p tasklease-cli --no-default-features --features sqlite`).
pub fn pg_server() -> Option<String> {
    if !built_with_postgres() {
        return None;
    }
    tasklease_postgres::testing::server()
}

/// Whether the binary under test speaks PostgreSQL; when not, a skip is recorded.
pub fn built_with_postgres() -> bool {
    if !cfg!(feature = "postgres") {
        tasklease_postgres::testing::skip("tasklease is built without the postgres feature");
        return false;
    }
    true
}

/// A scratch project: a temp dir holding `.git` and an initialized database — the
/// project's SQLite file, or a schema of its own on the test PostgreSQL server.
pub struct Project {
    pub dir: tempfile::TempDir,
    /// The PostgreSQL schema every command uses (through `TASKLEASE_DB`), if any.
    pub pg: Option<tasklease_postgres::testing::Scratch>,
}

impl Project {
    /// A project on the default store, SQLite.
    pub fn new() -> Project {
        Project::with(None)
    }

    /// A project on a fresh schema of the test PostgreSQL server, or `None` when
    /// there is no server to test against (a failure under CI=true).
    pub fn postgres() -> Option<Project> {
        let server = pg_server()?;
        Some(Project::with(Some(
            tasklease_postgres::testing::Scratch::new(&server),
        )))
    }

    fn with(pg: Option<tasklease_postgres::testing::Scratch>) -> Project {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join(".git")).expect("mkdir .git");
        let p = Project { dir, pg };
        p.ok(&["init"]);
        p
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.root().join(".tasklease/tasklease.db")
    }

    /// A command for the binary, run in the project, with a fixed agent name.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .current_dir(self.root())
            .env_remove("TASKLEASE_SYNCHRONOUS")
            .env("TASKLEASE_AGENT", "tester");
        match &self.pg {
            Some(pg) => c.env("TASKLEASE_DB", pg.conn()),
            None => c.env_remove("TASKLEASE_DB"),
        };
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run tasklease")
    }

    /// Runs and asserts exit 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tasklease {args:?} failed ({:?}):\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// Runs with `--json`, asserts the exit code, and parses the one JSON object.
    pub fn json(&self, args: &[&str], code: i32) -> Value {
        // Before a `--`, after which everything is the command's.
        let mut all = args.to_vec();
        let at = all.iter().position(|a| *a == "--").unwrap_or(all.len());
        all.insert(at, "--json");
        let out = self.run(&all);
        assert_eq!(
            out.status.code(),
            Some(code),
            "tasklease {all:?}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        parse_one(&out.stdout)
    }
}

/// Parses stdout that must be exactly one JSON object.
pub fn parse_one(stdout: &[u8]) -> Value {
    let s = std::str::from_utf8(stdout).expect("utf-8 stdout");
    let mut lines = s.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or_else(|| panic!("no JSON on stdout"));
    assert!(lines.next().is_none(), "more than one line on stdout: {s}");
    let v: Value = serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert!(v.is_object(), "not an object: {v}");
    v
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tasklease"))
}

/// Runs a test body, `fn name(p: &Project)`, once per store: as the tests
/// `name::sqlite` and `name::postgres` (the latter skips without a server, except
/// under CI=true).
#[macro_export]
macro_rules! each_store {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name(&$crate::common::Project::new());
                }

                #[test]
                fn postgres() {
                    if let Some(p) = $crate::common::Project::postgres() {
                        super::$name(&p);
                    }
                }
            }
        )+
    };
}

/// The verb whose schema in `docs/json/` covers `tasklease ARGS…`.
pub fn verb_of(args: &[&str]) -> String {
    match args {
        ["dep", sub, ..] => format!("dep-{sub}"),
        ["git", ..] => "lock".to_owned(),
        [verb, ..] => (*verb).to_owned(),
        [] => panic!("no verb"),
    }
}

/// Asserts that `v` validates against the published schema `docs/json/<verb>.json`
/// (jsonschema, not hand-written checks), and that it agrees with the exit status:
/// `ok: true` for 0, otherwise `ok: false` with `error.exit` equal to it.
pub fn conforms(verb: &str, v: &Value, code: i32) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/json")
        .join(format!("{verb}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{}: not a valid schema: {e}", path.display()));
    let errors: Vec<String> = validator.iter_errors(v).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{verb}: output does not fit {}: {errors:#?}\n{v:#}",
        path.display()
    );
    if code == 0 {
        assert_eq!(v["ok"], true, "{verb} exited 0: {v}");
    } else {
        assert_eq!(v["ok"], false, "{verb} exited {code}: {v}");
        assert_eq!(
            v["error"]["exit"], code,
            "{verb}: error.exit is the exit status: {v}"
        );
    }
}

impl Project {
    /// [`Project::json`], the result checked against its verb's published schema.
    pub fn checked(&self, args: &[&str], code: i32) -> Value {
        let v = self.json(args, code);
        conforms(&verb_of(args), &v, code);
        v
    }
}
