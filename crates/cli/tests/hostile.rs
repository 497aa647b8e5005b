//! Hostile neighbours: another local user, sharing a world-writable directory with the
//! database (the system temp directory, say), must not be able to read the writer
//! queue, hold or forge its turns, or make tasklease write through a symlink — and the
//! files tasklease creates are its owner's alone under any umask.
//!
//! The attacker is a second real OS user, `tl-mallory` (created here when missing),
//! whose actions run through `runuser`. That needs root: elsewhere these tests say so
//! and pass, except under `CI=true`, where they fail.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Project, bin};

const MALLORY: &str = "tl-mallory";

/// The attacker's name, creating the user once; `None` (with a note) when this test
/// cannot switch users.
fn mallory() -> Option<&'static str> {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ready = *READY.get_or_init(|| {
        if !rustix::process::geteuid().is_root() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "hostile-user tests need root (to create and become {MALLORY}) under CI"
            );
            eprintln!("skipped: not root, so no second user to attack with");
            return false;
        }
        let exists = Command::new("id")
            .arg(MALLORY)
            .output()
            .unwrap()
            .status
            .success();
        if !exists {
            let made = Command::new("useradd")
                .args(["--system", "--no-create-home", MALLORY])
                .output()
                .unwrap();
            assert!(
                made.status.success()
                    || Command::new("id")
                        .arg(MALLORY)
                        .output()
                        .unwrap()
                        .status
                        .success(),
                "useradd: {}",
                String::from_utf8_lossy(&made.stderr)
            );
        }
        true
    });
    ready.then_some(MALLORY)
}

/// Runs `script` in `sh` as the attacker.
fn as_mallory(script: &str) -> Output {
    Command::new("runuser")
        .args(["-u", MALLORY, "--", "sh", "-c", script])
        .output()
        .expect("runuser")
}

/// `script` as the attacker, which must succeed.
fn mallory_does(script: &str) {
    let out = as_mallory(script);
    assert!(
        out.status.success(),
        "as {MALLORY}: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory like /tmp: world-writable, sticky.
fn shared_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    d
}

/// The owner's `tasklease --db DB ARGS`.
fn owner(db: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--db")
        .arg(db)
        .args(args)
        .env("TASKLEASE_AGENT", "owner")
        .env_remove("TASKLEASE_DB")
        .output()
        .expect("run tasklease")
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Asserts `out` is a refusal (exit 1) naming `path` and containing `fix`.
fn refused(out: &Output, path: &Path, fix: &str) {
    let err = text(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&path.display().to_string()) && err.contains(fix),
        "the refusal must name {} and say `{fix}`: {err}",
        path.display()
    );
}

/// A queue directory (777, board 666) pre-created by another user is refused, saying
/// how to fix it; the owner's claim never uses it, so the attacker can neither read
/// the requests nor answer them.
#[test]
fn a_queue_directory_planted_by_another_user_is_refused() {
    let Some(_) = mallory() else { return };
    let shared = shared_dir();
    let db = shared.path().join("t.db");
    let q = with_suffix(&db, "-queue");
    mallory_does(&format!(
        "umask 000 && mkdir -m 777 '{q}' && touch '{q}/board' '{q}/turn' && chmod 666 '{q}/board' '{q}/turn'",
        q = q.display()
    ));
    let out = owner(&db, &["init"]);
    refused(&out, &q, "chown");
    assert!(text(&out).contains("not by you"), "{}", text(&out));
    assert_eq!(
        std::fs::metadata(q.join("board")).unwrap().len(),
        0,
        "nothing was posted on the attacker's board"
    );
    // The owner's own queue directory, opened up to everyone, is refused too.
    let mine = shared.path().join("mine.db");
    assert!(owner(&mine, &["init"]).status.success());
    assert!(
        owner(&mine, &["add", "one", "--id", "T-1"])
            .status
            .success()
    );
    let mq = with_suffix(&mine, "-queue");
    std::fs::set_permissions(&mq, std::fs::Permissions::from_mode(0o777)).unwrap();
    refused(&owner(&mine, &["claim", "--next"]), &mq, "chmod go-rwx");
    std::fs::set_permissions(&mq, std::fs::Permissions::from_mode(0o700)).unwrap();
    // A file of ours inside our private directory (a lock file of an earlier version
    // that followed the umask, say) is made ours alone rather than refused.
    std::fs::set_permissions(mq.join("board"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let claimed = owner(&mine, &["claim", "--next"]);
    assert!(claimed.status.success(), "{}", text(&claimed));
    assert_eq!(mode(&mq.join("board")), 0o600);
    // A file inside it that is someone else's is refused.
    std::os::unix::fs::chown(mq.join("turn"), Some(uid_of(MALLORY)), None).unwrap();
    refused(
        &owner(&mine, &["claim", "--next"]),
        &mq.join("turn"),
        "chown",
    );
}

/// The numeric uid of `user`.
fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// A database, `-wal` or `-shm` pre-created (0666) by another user is refused, and
/// nothing is written into it.
#[test]
fn database_files_planted_by_another_user_are_refused() {
    let Some(_) = mallory() else { return };
    let shared = shared_dir();
    for suffix in ["", "-wal", "-shm"] {
        let db = shared.path().join(format!("planted{suffix}.db"));
        let planted = with_suffix(&db, suffix);
        mallory_does(&format!(
            "umask 000 && touch '{p}' && chmod 666 '{p}'",
            p = planted.display()
        ));
        let out = owner(&db, &["init"]);
        refused(&out, &planted, "chown");
        assert_eq!(
            std::fs::metadata(&planted).unwrap().len(),
            0,
            "{suffix}: the attacker's file was written"
        );
    }
    // The owner's own database, writable by others, is refused naming the chmod.
    let db = shared.path().join("mine.db");
    assert!(owner(&db, &["init"]).status.success());
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o666)).unwrap();
    refused(
        &owner(&db, &["add", "one", "--id", "T-1"]),
        &db,
        "chmod go-rwx",
    );
}

/// A symlink planted as the board (or as `-wal`, `-shm`, the database or a lock file)
/// never makes tasklease write through it: the victim stays byte-identical.
#[test]
fn a_planted_symlink_leaves_its_victim_untouched() {
    let Some(_) = mallory() else { return };
    let shared = shared_dir();
    let victim = shared.path().join("victim");
    let original: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&victim, &original).unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let v = victim.display().to_string();

    // In a queue directory of the attacker's.
    let db = shared.path().join("a.db");
    let q = with_suffix(&db, "-queue");
    mallory_does(&format!(
        "mkdir -m 777 '{q}' && ln -s '{v}' '{q}/board' && ln -s '{v}' '{q}/turn'",
        q = q.display()
    ));
    refused(&owner(&db, &["init"]), &q, "chown");
    // In the owner's own queue directory (planted while it stood open, say).
    let db = shared.path().join("b.db");
    assert!(owner(&db, &["init"]).status.success());
    assert!(owner(&db, &["add", "one", "--id", "T-1"]).status.success());
    let q = with_suffix(&db, "-queue");
    for name in ["board", "turn"] {
        let planted = q.join(name);
        let keep = q.join(format!("{name}.kept"));
        std::fs::rename(&planted, &keep).unwrap();
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let out = owner(&db, &["claim", "--next"]);
        refused(&out, &planted, "symbolic link");
        std::fs::remove_file(&planted).unwrap();
        std::fs::rename(&keep, &planted).unwrap();
    }
    // Beside the database: its -wal, -shm, or the database itself.
    for suffix in ["-wal", "-shm", ""] {
        let db = shared.path().join(format!("c{suffix}.db"));
        let planted = with_suffix(&db, suffix);
        mallory_does(&format!("ln -s '{v}' '{}'", planted.display()));
        refused(&owner(&db, &["init"]), &planted, "symbolic link");
    }
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        original,
        "the victim was written"
    );
}

/// The files the owner creates fresh in the shared directory are out of the
/// attacker's reach: no reading the board, the database or its WAL, no writing them,
/// no listing the queue directory, no taking the turn.
#[test]
fn the_owners_fresh_files_are_out_of_reach() {
    let Some(_) = mallory() else { return };
    let shared = shared_dir();
    let db = shared.path().join("t.db");
    assert!(owner(&db, &["init"]).status.success());
    assert!(owner(&db, &["add", "one", "--id", "T-1"]).status.success());
    let claimed = owner(&db, &["claim", "--next"]);
    assert!(claimed.status.success(), "{}", text(&claimed));
    let q = with_suffix(&db, "-queue");
    let files = [
        db.clone(),
        with_suffix(&db, "-wal"),
        with_suffix(&db, "-shm"),
        q.join("board"),
        q.join("turn"),
    ];
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
        let f = f.display();
        for attack in [
            format!("cat '{f}' >/dev/null"),
            format!("printf x >> '{f}'"),
            format!("flock -n '{f}' true"),
        ] {
            let out = as_mallory(&attack);
            assert!(!out.status.success(), "{MALLORY} could: {attack}");
        }
    }
    assert_eq!(mode(&q), 0o700);
    for attack in [
        format!("ls '{}'", q.display()),
        format!("touch '{}/slot-00'", q.display()),
    ] {
        assert!(
            !as_mallory(&attack).status.success(),
            "{MALLORY} could: {attack}"
        );
    }
}

/// The default layout comes out the same under any umask: directories 0700, files
/// and sockets 0600 — the database and its WAL files, the queue's directory, turn,
/// board, slot lock and socket (a long-running `run` takes a slot), `.tasklease/`,
/// its lock directory and lock files.
#[test]
fn any_umask_gives_owner_only_modes() {
    for umask in ["000", "077", "022"] {
        let p = Project::new();
        let tl = bin().display().to_string();
        let script = format!(
            "umask {umask} && rm -rf .tasklease && '{tl}' init && '{tl}' add one --id T-1 && \
             '{tl}' add two --id T-2 && '{tl}' claim --next && \
             '{tl}' run --next -- true && '{tl}' lock task T-9 -- true"
        );
        let out = Command::new("sh")
            .args(["-c", &script])
            .current_dir(p.root())
            .env("TASKLEASE_AGENT", "tester")
            .env_remove("TASKLEASE_DB")
            .output()
            .unwrap();
        assert!(out.status.success(), "umask {umask}: {}", text(&out));
        let db = p.db();
        let q = with_suffix(&db, "-queue");
        let state = p.root().join(".tasklease");
        for d in [state.clone(), state.join("locks"), q.clone()] {
            assert_eq!(mode(&d), 0o700, "umask {umask}: {}", d.display());
        }
        let mut files = vec![
            db.clone(),
            with_suffix(&db, "-wal"),
            with_suffix(&db, "-shm"),
            q.join("board"),
            q.join("turn"),
            q.join("slot-00"),
            q.join("slot-00.sock"),
            state.join("locks/task-T-9.lock"),
        ];
        files.retain(|f| {
            std::fs::symlink_metadata(f).is_ok() || panic!("umask {umask}: no {}", f.display())
        });
        for f in &files {
            assert_eq!(mode(f), 0o600, "umask {umask}: {}", f.display());
        }
    }
}
