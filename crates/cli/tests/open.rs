//! Opening and init through the built binary: only `init` creates a database, `init`
//! only where the user meant it, migrations that fail say so in one line, input caps,
//! and full or read-only disks named as such (issue "Fail loudly, never hang").

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Project, bin, parse_one};

/// The binary run in `dir`, with `TASKLEASE_DB` set to `db` (or unset).
fn tl(dir: &Path, db: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(bin());
    c.args(args)
        .current_dir(dir)
        .env_remove("TASKLEASE_SYNCHRONOUS")
        .env("TASKLEASE_AGENT", "tester");
    match db {
        Some(db) => c.env("TASKLEASE_DB", db),
        None => c.env_remove("TASKLEASE_DB"),
    };
    c.output().expect("run tasklease")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every entry under `dir`, recursively, as paths relative to it.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().to_path_buf());
        }
    }
    out.sort();
    out
}

#[test]
fn a_db_path_with_no_database_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let verbs: [&[&str]; 6] = [
        &["list"],
        &["claim", "--next"],
        &["add", "lost"],
        &["status"],
        &["reap"],
        &["migrate"],
    ];
    for verb in verbs {
        let mut args = vec!["--db", "typo.db"];
        args.extend_from_slice(verb);
        let out = tl(dir.path(), None, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let e = stderr(&out);
        assert!(e.contains("typo.db"), "{args:?}: {e}");
        assert!(e.contains("tasklease init"), "{args:?}: {e}");
        assert!(e.contains("TASKLEASE_DB"), "{args:?}: {e}");
        assert_eq!(entries(dir.path()), Vec::<PathBuf>::new(), "{args:?}");
    }
    // The same through the variable.
    let out = tl(dir.path(), Some("typo.db"), &["list"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(entries(dir.path()), Vec::<PathBuf>::new());
    // --json carries the refusal as the one object.
    let out = tl(dir.path(), None, &["--db", "typo.db", "list", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(parse_one(&out.stdout)["error"]["code"], "invalid");
    // init creates it; then every verb uses it.
    let out = tl(dir.path(), None, &["--db", "typo.db", "init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tl(dir.path(), None, &["--db", "typo.db", "add", "found"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_project_without_init_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    for verb in [&["list"][..], &["claim", "--next"], &["add", "x"], &["log"]] {
        let out = tl(dir.path(), None, verb);
        assert_eq!(out.status.code(), Some(2), "{verb:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("tasklease init"), "{}", stderr(&out));
        assert_eq!(entries(dir.path()), vec![PathBuf::from(".git")], "{verb:?}");
    }
}

#[test]
fn a_postgres_schema_without_tables_is_refused_until_init() {
    let Some(server) = common::pg_server() else {
        return;
    };
    let scratch = tasklease_postgres::testing::Scratch::new(&server);
    let dir = tempfile::tempdir().unwrap();
    let db = Some(scratch.conn());
    for verb in [
        &["list"][..],
        &["claim", "--next"],
        &["add", "x"],
        &["status"],
    ] {
        let out = tl(dir.path(), db, verb);
        assert_eq!(out.status.code(), Some(2), "{verb:?}: {}", stderr(&out));
        let e = stderr(&out);
        assert!(e.contains("tasklease init"), "{e}");
        assert!(e.contains(scratch.schema()), "{e}");
        assert!(!e.contains("password"), "{e}");
    }
    let mut c = postgres::Client::connect(&server, postgres::NoTls).unwrap();
    let tables: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1",
            &[&scratch.schema()],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "a refused verb created tables");
    let out = tl(dir.path(), db, &["init", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(parse_one(&out.stdout)["created"], true);
    let out = tl(dir.path(), db, &["add", "x"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn migrate_creates_the_tables_in_an_empty_postgres_schema() {
    let Some(server) = common::pg_server() else {
        return;
    };
    let scratch = tasklease_postgres::testing::Scratch::new(&server);
    let dir = tempfile::tempdir().unwrap();
    let out = tl(dir.path(), Some(scratch.conn()), &["migrate", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = parse_one(&out.stdout);
    assert_eq!(m["from"], 0, "{m}");
    let out = tl(dir.path(), Some(scratch.conn()), &["add", "x"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn init_outside_a_project_is_refused_unless_here() {
    let dir = tempfile::tempdir().unwrap();
    let out = tl(dir.path(), None, &["init"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let e = stderr(&out);
    let meant = dir.path().join(".tasklease");
    assert!(e.contains(&meant.display().to_string()), "{e}");
    assert!(e.contains("--here"), "{e}");
    assert_eq!(entries(dir.path()), Vec::<PathBuf>::new());
    let out = tl(dir.path(), None, &["init", "--here", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(parse_one(&out.stdout)["created"], true);
    assert!(meant.join("tasklease.db").exists());
    // From then on the directory is a project: init again is fine, without --here.
    let out = tl(dir.path(), None, &["init", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(parse_one(&out.stdout)["created"], false);
    let out = tl(dir.path(), None, &["add", "x"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn init_with_db_creates_its_parent_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = tl(dir.path(), None, &["--db", "state/deep/t.db", "init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("state/deep/t.db").exists());
    let out = tl(dir.path(), None, &["--db", "state/deep/t.db", "add", "x"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn init_repairs_an_empty_or_wrong_gitignore() {
    let p = Project::new();
    let ignore = p.root().join(".tasklease/.gitignore");
    for broken in ["", "# nothing ignored\n"] {
        std::fs::write(&ignore, broken).unwrap();
        p.ok(&["init"]);
        let text = std::fs::read_to_string(&ignore).unwrap();
        assert!(text.lines().any(|l| l.trim() == "*"), "{text:?}");
    }
    // Nothing else (a temporary file) is left beside it.
    let names: Vec<_> = std::fs::read_dir(p.root().join(".tasklease"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with("tasklease.db"))
        .collect();
    assert_eq!(names, vec![".gitignore".to_owned()]);
}

const SQLITE_V1: &str = include_str!("../../sqlite/migrations/0001_init.sql");
const PG_V1: &str = include_str!("../../postgres/migrations/0001_init.sql");

#[test]
fn a_failed_sqlite_migration_says_which_in_one_line_and_backs_up_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(SQLITE_V1).unwrap();
        // Migration 2 creates this table: it will fail.
        c.execute_batch("CREATE TABLE events_v2 (x INTEGER); PRAGMA user_version = 1;")
            .unwrap();
    }
    let arg = db.to_str().unwrap();
    for _ in 0..3 {
        let out = tl(dir.path(), None, &["--db", arg, "list"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let e = stderr(&out);
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        assert!(e.len() < 400, "{} characters: {e}", e.len());
        assert!(e.contains("migration 2"), "{e}");
        assert!(e.contains("events_v2"), "{e}");
    }
    let backups: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".bak-"))
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(backups[0].starts_with("old.db.bak-v1-"), "{backups:?}");
    // A copy older than the database's last change is stale: a fresh one is written.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&db)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let out = tl(dir.path(), None, &["--db", arg, "list"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let count = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().contains(".bak-")
        })
        .count();
    assert_eq!(count, 2);
}

#[test]
fn a_failed_postgres_migration_says_which_in_one_line() {
    let Some(server) = common::pg_server() else {
        return;
    };
    let scratch = tasklease_postgres::testing::Scratch::new(&server);
    let mut c = postgres::Client::connect(scratch.conn(), postgres::NoTls).unwrap();
    c.batch_execute(PG_V1).unwrap();
    c.batch_execute(
        "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, applied_at bigint NOT NULL);
         INSERT INTO schema_migrations VALUES (1, 0);
         CREATE FUNCTION waited_us() RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint';",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = tl(dir.path(), Some(scratch.conn()), &["list"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let e = stderr(&out);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.len() < 400, "{} characters: {e}", e.len());
    assert!(e.contains("migration 2"), "{e}");
}

#[test]
fn an_older_postgres_schema_is_still_migrated_on_open() {
    let Some(server) = common::pg_server() else {
        return;
    };
    let scratch = tasklease_postgres::testing::Scratch::new(&server);
    let mut c = postgres::Client::connect(scratch.conn(), postgres::NoTls).unwrap();
    c.batch_execute(PG_V1).unwrap();
    c.batch_execute(
        "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, applied_at bigint NOT NULL);
         INSERT INTO schema_migrations VALUES (1, 0);",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = tl(dir.path(), Some(scratch.conn()), &["add", "x"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: i64 = c
        .query_one("SELECT max(version) FROM schema_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(v, tasklease_postgres::LATEST_VERSION);
}

fn caps(p: &Project) {
    let mut args = vec!["add", "tagged"];
    for _ in 0..3 {
        args.extend(["--tag", "same"]);
    }
    args.extend(["--tag", "other"]);
    let t = p.json(&args, 0);
    assert_eq!(t["task"]["tags"], serde_json::json!(["same", "other"]));
    let names: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
    let mut args = vec!["add", "too many tags"];
    for n in &names {
        args.extend(["--tag", n.as_str()]);
    }
    let e = p.json(&args, 2);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("64"),
        "{e}"
    );
    // Update replaces the tags under the same cap.
    let mut args = vec!["update", "T-1", "--expect-version", "1"];
    for n in &names {
        args.extend(["--tag", n.as_str()]);
    }
    let e = p.json(&args, 2);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("64"),
        "{e}"
    );
    let deps: Vec<String> = (0..1001).map(|i| format!("d{i}")).collect();
    let mut args = vec!["add", "too many deps"];
    for d in &deps {
        args.extend(["--dep", d.as_str()]);
    }
    let e = p.json(&args, 2);
    assert!(
        e["error"]["message"].as_str().unwrap().contains("1000"),
        "{e}"
    );
    assert_eq!(p.json(&["list"], 0)["tasks"].as_array().unwrap().len(), 1);
}

each_store!(caps);

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
struct Mount {
    dir: tempfile::TempDir,
}

impl Mount {
    /// A tmpfs of `size` (e.g. `2m`), or `None` with a note when this process may
    /// not mount — a failure under CI=true, which runs as root.
    fn tmpfs(size: &str) -> Option<Mount> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Mount { dir }),
            other => {
                let why = match other {
                    Ok(o) => stderr(&o),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI=true but cannot mount a tmpfs: {why}"
                );
                eprintln!("skipped: cannot mount a tmpfs (needs root): {why}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, how: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,{how}")])
            .arg(self.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "remount {how}: {}", stderr(&o));
    }

    /// Fills the file system: a file grown until the disk refuses.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).output();
    }
}

#[test]
fn a_full_disk_says_so() {
    let Some(m) = Mount::tmpfs("4m") else { return };
    let root = m.path().join("p");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    let out = tl(&root, None, &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tl(&root, None, &["add", "before", "--id", "a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let big = "x".repeat(60_000);
    m.fill();
    for verb in [
        &["add", "after", "--description", big.as_str()][..],
        &["claim", "a"],
    ] {
        let out = tl(&root, None, verb);
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{verb:?}: {e}");
        assert!(e.contains("disk full"), "{verb:?}: {e}");
    }
    // A failed init on a full disk leaves no empty .gitignore behind.
    let other = m.path().join("q");
    std::fs::create_dir_all(other.join(".git")).ok();
    if other.join(".git").exists() {
        let out = tl(&other, None, &["init"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("disk full"), "{}", stderr(&out));
        let ignore = other.join(".tasklease/.gitignore");
        assert!(
            !ignore.exists() || std::fs::metadata(&ignore).unwrap().len() > 0,
            "an empty .gitignore was left"
        );
    }
    // Reads still work.
    let out = tl(&root, None, &["show", "a"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_failed_backup_on_a_full_disk_leaves_no_empty_copy() {
    let Some(m) = Mount::tmpfs("4m") else { return };
    let db = m.path().join("old.db");
    {
        let mut c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch(SQLITE_V1).unwrap();
        c.execute_batch("PRAGMA user_version = 1; PRAGMA journal_mode = WAL;")
            .unwrap();
        let tx = c.transaction().unwrap();
        let pad = "y".repeat(1000);
        for i in 0..600 {
            tx.execute(
                "INSERT INTO tasks (id, title, description, created_at, updated_at)
                 VALUES (?1, 't', ?2, 1, 1)",
                rusqlite::params![format!("t{i}"), pad],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    }
    m.fill();
    let out = tl(m.path(), None, &["--db", db.to_str().unwrap(), "list"]);
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("disk full"), "{e}");
    let left: Vec<_> = std::fs::read_dir(m.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains(".bak-"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

#[test]
fn a_read_only_mount_keeps_reads_working_and_says_so_for_writes() {
    let Some(m) = Mount::tmpfs("16m") else { return };
    let root = m.path().join("p");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    let out = tl(&root, None, &["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for args in [
        &["add", "one", "--id", "a"][..],
        &["add", "two", "--id", "b"],
    ] {
        let out = tl(&root, None, args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = tl(&root, None, &["claim", "a"]);
    assert!(out.status.success(), "{}", stderr(&out));
    m.remount("ro");
    for verb in [&["list"][..], &["show", "a"], &["status"], &["log"]] {
        let out = tl(&root, None, verb);
        assert!(out.status.success(), "{verb:?}: {}", stderr(&out));
    }
    let out = tl(&root, None, &["list", "--json"]);
    assert_eq!(parse_one(&out.stdout)["tasks"].as_array().unwrap().len(), 2);
    for verb in [&["add", "three"][..], &["claim", "b"], &["claim", "--next"]] {
        let out = tl(&root, None, verb);
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{verb:?}: {e}");
        assert!(e.contains("read-only file system"), "{verb:?}: {e}");
    }
    // Creating anything there is a runtime failure that says why, not a usage error.
    for args in [&["--db", "other.db", "init"][..], &["init", "--here"]] {
        let out = tl(&root.join(".git"), None, args);
        let e = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {e}");
        assert!(e.contains("read-only file system"), "{args:?}: {e}");
    }
    // A database whose last user removed its -wal and -shm (SQLite's own tools do,
    // closing): they cannot be created on the read-only mount, and reads still work.
    m.remount("rw");
    let db = root.join(".tasklease/tasklease.db");
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.query_row("SELECT count(*) FROM tasks", [], |r| r.get::<_, i64>(0))
            .unwrap();
    }
    assert!(!root.join(".tasklease/tasklease.db-wal").exists());
    m.remount("ro");
    let out = tl(&root, None, &["list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(parse_one(&out.stdout)["tasks"].as_array().unwrap().len(), 2);
    m.remount("rw");
}
