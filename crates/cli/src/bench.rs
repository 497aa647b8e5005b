//! `tasklease bench`: N agent processes loop claim-next for S seconds; this module
//! holds the parts that are not process plumbing — the worker loop, the report each
//! worker sends back, the summary, and the check that no task was held twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use tasklease::{Error, Result};

/// What each worker does per iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Claim the next task and keep it.
    Next,
    /// Claim the next task, then mark it done.
    NextDone,
    /// Not a claim loop: measure waiting for work against polling (`bench --mode wait`).
    Wait,
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Mode> {
        match s {
            "next" => Ok(Mode::Next),
            "next-done" => Ok(Mode::NextDone),
            "wait" => Ok(Mode::Wait),
            _ => Err(Error::invalid(
                "mode",
                format!(
                    "{} is not a bench mode; allowed: next, next-done, wait",
                    tasklease::text::quote(s)
                ),
            )),
        }
    }
}

/// One worker's account of its run, sent to the parent as one JSON line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// The worker's agent id.
    pub agent: String,
    /// Every (task, token) it claimed, in order.
    pub claims: Vec<(String, i64)>,
    /// The wall time of each claim call, in microseconds (queueing included).
    pub latency_us: Vec<u32>,
    /// Whether it stopped early because nothing was left to claim.
    pub exhausted: bool,
    /// How long it ran, in milliseconds.
    pub elapsed_ms: u64,
}

/// Runs `claim` (then `done`, in [`Mode::NextDone`]) until `deadline` or until nothing
/// is left, timing each claim.
///
/// # Errors
/// The first error of `claim` or `done`.
pub fn work(
    agent: &str,
    mode: Mode,
    deadline: Instant,
    mut claim: impl FnMut() -> Result<Option<(String, tasklease::Token)>>,
    mut done: impl FnMut(&str, &tasklease::Token) -> Result<()>,
) -> Result<WorkerReport> {
    let mut r = WorkerReport {
        agent: agent.to_owned(),
        ..WorkerReport::default()
    };
    let start = Instant::now();
    while Instant::now() < deadline {
        let t0 = Instant::now();
        let got = claim()?;
        r.latency_us
            .push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
        let Some((id, token)) = got else {
            r.exhausted = true;
            break;
        };
        if mode == Mode::NextDone {
            done(&id, &token)?;
        }
        r.claims.push((id, token.fence()));
    }
    r.elapsed_ms = start.elapsed().as_millis() as u64;
    Ok(r)
}

/// A task reported claimed by more than one lease at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DoubleClaim {
    /// The task.
    pub task: String,
    /// Every (agent, token) that reported holding it.
    pub holders: Vec<(String, i64)>,
}

/// Checks that no task was claimed twice. Bench leases outlast the run, so within one
/// run every task may be granted at most once; two grants mean two holders at once.
pub fn double_claims(reports: &[WorkerReport]) -> Vec<DoubleClaim> {
    let mut seen: HashMap<&str, Vec<(String, i64)>> = HashMap::new();
    for r in reports {
        for (task, token) in &r.claims {
            seen.entry(task)
                .or_default()
                .push((r.agent.clone(), *token));
        }
    }
    let mut doubles: Vec<DoubleClaim> = seen
        .into_iter()
        .filter(|(_, h)| h.len() > 1)
        .map(|(task, holders)| DoubleClaim {
            task: task.to_owned(),
            holders,
        })
        .collect();
    doubles.sort_by(|a, b| a.task.cmp(&b.task));
    doubles
}

/// The figures of one run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    /// Worker processes.
    pub agents: usize,
    /// Successful claims, all workers.
    pub claims: u64,
    /// Claims per second over the measured window.
    pub claims_per_s: f64,
    /// Median claim latency, microseconds.
    pub p50_us: u32,
    /// 99th percentile claim latency, microseconds.
    pub p99_us: u32,
    /// Worst claim latency, microseconds.
    pub max_us: u32,
    /// Claims that waited more than 10 ms: the tail beyond p99, counted.
    pub over_10ms: u64,
    /// The smallest and largest share of all claims one worker got (1/agents is fair).
    pub min_share: f64,
    /// See `min_share`.
    pub max_share: f64,
    /// Whether some worker ran out of tasks before the deadline.
    pub exhausted: bool,
}

/// Summarizes worker reports over a measured window of `window`.
pub fn summarize(reports: &[WorkerReport], window: Duration) -> Summary {
    let claims: u64 = reports.iter().map(|r| r.claims.len() as u64).sum();
    let mut lat: Vec<u32> = reports
        .iter()
        .flat_map(|r| r.latency_us.iter().copied())
        .collect();
    lat.sort_unstable();
    let pct = |p: f64| -> u32 {
        if lat.is_empty() {
            return 0;
        }
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat[i.min(lat.len() - 1)]
    };
    let share = |r: &WorkerReport| {
        if claims == 0 {
            0.0
        } else {
            r.claims.len() as f64 / claims as f64
        }
    };
    // Workers that ran out of tasks stopped early: their elapsed time, not the
    // nominal window, is the denominator.
    let ran = reports
        .iter()
        .map(|r| r.elapsed_ms)
        .max()
        .map(Duration::from_millis)
        .unwrap_or(window)
        .min(window)
        .max(Duration::from_millis(1));
    Summary {
        agents: reports.len(),
        claims,
        claims_per_s: claims as f64 / ran.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        max_us: lat.last().copied().unwrap_or(0),
        over_10ms: lat.iter().filter(|&&us| us > 10_000).count() as u64,
        min_share: reports.iter().map(share).fold(f64::INFINITY, f64::min),
        max_share: reports.iter().map(share).fold(0.0, f64::max),
        exhausted: reports.iter().any(|r| r.exhausted),
    }
}

/// Where a bench puts its databases.
#[derive(Clone, Debug)]
pub enum Target {
    /// SQLite files in this directory.
    SqliteDir(std::path::PathBuf),
    /// Scratch schemas on this PostgreSQL server (a URL or `key=value` string).
    Postgres(String),
}

/// A fresh database for one bench run, removed when dropped.
pub enum BenchDb {
    /// A SQLite file (and its `-wal`, `-shm` and `-queue` companions).
    Sqlite(std::path::PathBuf),
    /// A scratch schema.
    Postgres(tasklease_postgres::bench::Scratch),
}

impl BenchDb {
    /// Creates and fills a database named after `label` (unique per process) with
    /// `tasks` todo tasks; with `deps`, every fifth depends on the two before it. With
    /// `raw`, it is for the baseline (SQLite drops the history trigger).
    ///
    /// # Errors
    /// [`Error::Invalid`] when a SQLite file of that name exists; store failures.
    pub fn create(
        target: &Target,
        label: &str,
        tasks: u64,
        deps: bool,
        raw: bool,
        sync: tasklease::open::Synchronous,
    ) -> Result<BenchDb> {
        let name = format!("tasklease_bench_{}_{label}", std::process::id());
        match target {
            Target::SqliteDir(dir) => {
                let path = dir.join(format!("{name}.db"));
                let db = BenchDb::Sqlite(path.clone());
                tasklease_sqlite::bench::prefill(&path, tasks, deps, raw, sync)?;
                Ok(db)
            }
            Target::Postgres(server) => Ok(BenchDb::Postgres(
                tasklease_postgres::bench::Scratch::create(server, &name, tasks, deps)?,
            )),
        }
    }

    /// The store, as `--db` names it.
    pub fn spec(&self) -> tasklease::open::DbSpec {
        match self {
            BenchDb::Sqlite(path) => tasklease::open::DbSpec::Sqlite {
                path: path.clone(),
                explicit: true,
            },
            BenchDb::Postgres(s) => tasklease::open::DbSpec::parse(s.conn()),
        }
    }

    /// The `--db` value for a worker process (pass it through the environment: a
    /// PostgreSQL one may hold a password).
    pub fn db_arg(&self) -> std::ffi::OsString {
        match self {
            BenchDb::Sqlite(path) => path.clone().into_os_string(),
            BenchDb::Postgres(s) => s.conn().into(),
        }
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let BenchDb::Sqlite(path) = self {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
            let mut q = path.clone().into_os_string();
            q.push("-queue");
            let _ = std::fs::remove_dir_all(q);
        }
    }
}

/// The raw baseline's claimer for one backend.
pub enum Raw {
    /// SQLite.
    Sqlite(tasklease_sqlite::bench::RawClaimer),
    /// PostgreSQL.
    Postgres(tasklease_postgres::bench::RawClaimer),
}

impl Raw {
    /// Opens the baseline claimer on `spec`.
    ///
    /// # Errors
    /// Store failures.
    pub fn open(spec: &tasklease::open::DbSpec, sync: tasklease::open::Synchronous) -> Result<Raw> {
        Ok(match spec {
            tasklease::open::DbSpec::Sqlite { path, .. } => {
                Raw::Sqlite(tasklease_sqlite::bench::RawClaimer::open(path, sync)?)
            }
            tasklease::open::DbSpec::Postgres { url } => {
                Raw::Postgres(tasklease_postgres::bench::RawClaimer::open(url)?)
            }
        })
    }

    /// One raw claim.
    ///
    /// # Errors
    /// Store failures.
    pub fn claim_next(&mut self, lease_ms: i64, agent: &str) -> Result<Option<(String, i64)>> {
        match self {
            Raw::Sqlite(r) => r.claim_next(lease_ms, agent),
            Raw::Postgres(r) => r.claim_next(lease_ms, agent),
        }
    }

    /// One raw done.
    ///
    /// # Errors
    /// Store failures.
    pub fn done(&mut self, id: &str, token: i64) -> Result<()> {
        match self {
            Raw::Sqlite(r) => r.done(id, token),
            Raw::Postgres(r) => r.done(id, token),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(agent: &str, claims: &[(&str, i64)], lat: &[u32]) -> WorkerReport {
        WorkerReport {
            agent: agent.into(),
            claims: claims.iter().map(|(t, k)| (t.to_string(), *k)).collect(),
            latency_us: lat.to_vec(),
            exhausted: false,
            elapsed_ms: 1000,
        }
    }

    #[test]
    fn distinct_claims_pass_and_a_double_is_caught() {
        let a = report("a", &[("t1", 1), ("t2", 1)], &[10, 20]);
        let b = report("b", &[("t3", 1)], &[30]);
        assert!(double_claims(&[a.clone(), b.clone()]).is_empty());
        let c = report("c", &[("t2", 2)], &[5]);
        let d = double_claims(&[a, b, c]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].task, "t2");
        assert_eq!(d[0].holders, vec![("a".into(), 1), ("c".into(), 2)]);
    }

    #[test]
    fn summary_figures() {
        let a = report("a", &[("t1", 1), ("t2", 1), ("t3", 1)], &[1, 2, 3]);
        let b = report("b", &[("t4", 1), ("t5", 1)], &[10_000, 10_001]);
        let s = summarize(&[a, b], Duration::from_secs(1));
        assert_eq!(s.claims, 5);
        assert!((s.claims_per_s - 5.0).abs() < 1e-9);
        assert_eq!(s.max_us, 10_001);
        assert_eq!(s.over_10ms, 1);
        assert_eq!(s.p50_us, 3);
        assert!((s.min_share - 0.4).abs() < 1e-9);
        assert!((s.max_share - 0.6).abs() < 1e-9);
    }

    #[test]
    fn worker_loop_stops_when_exhausted() {
        let mut left = 3;
        let r = work(
            "w",
            Mode::NextDone,
            Instant::now() + Duration::from_secs(10),
            || {
                left -= 1;
                Ok((left >= 0).then(|| (format!("t{left}"), tasklease::Token::legacy(1))))
            },
            |_, _| Ok(()),
        )
        .unwrap();
        assert_eq!(r.claims.len(), 3);
        assert!(r.exhausted);
        assert_eq!(r.latency_us.len(), 4);
    }
}
