//! A PostgreSQL server of a test's own (initdb in a temp dir, unix socket only), for
//! tests that restart or starve the server: the chaos suite and the waiting tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A PostgreSQL server of the test's own, which it may restart: never the shared test
/// server. Stopped and removed on drop.
pub struct OwnPg {
    label: &'static str,
    pub dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
}

impl OwnPg {
    /// Starts one, or `None` (recorded as a skip) where Debian's `postgresql` package
    /// is missing — a failure under CI=true.
    pub fn start(label: &'static str, port_base: u16) -> Option<OwnPg> {
        if !super::built_with_postgres() {
            return None;
        }
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
            .prefix(&format!("tasklease-{label}-pg"))
            .tempdir()
            .unwrap();
        let port = port_base + (std::process::id() % 1000) as u16;
        let pg = OwnPg {
            label,
            dir,
            bindir,
            port,
        };
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

    pub fn as_owner(&self, program: &Path) -> Command {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    pub fn pg_ctl(&self) -> Command {
        let mut c = self.as_owner(&self.bindir.join("pg_ctl"));
        c.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-w", "-s"]);
        c
    }

    pub fn conn(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.dir.path().display(),
            self.port
        )
    }

    /// Restarts the server; whether it came back is the agents' problem to survive,
    /// but a restart that failed is said (and the server started again).
    pub fn restart(&self, mode: &str) -> bool {
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
        eprintln!("{}: pg_ctl restart -m {mode} failed: {out:?}", self.label);
        let _ = self.pg_ctl().arg("-l").arg(&log).arg("start").output();
        false
    }

    /// Terminates every client backend; returns how many.
    pub fn terminate_backends(&self) -> u64 {
        let Ok(mut c) = postgres::Client::connect(&self.conn(), postgres::NoTls) else {
            return 0;
        };
        c.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
            &[],
        )
        .map_or(0, |rows| rows.len() as u64)
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
