//! `claimloop MODE N`: N claims in one process, for profiling under callgrind or strace.
//! MODE is `store`, `store-done`, `raw` or `raw-done`.

use tasklease_core::{AgentId, LeaseDuration, Store};
use tasklease_sqlite::bench::{RawClaimer, prefill};
use tasklease_sqlite::{Options, SqliteStore, Synchronous};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, n): (&str, u64) = (&args[1], args[2].parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loop.db");
    prefill(
        &path,
        2 * n + 100,
        true,
        mode.starts_with("raw"),
        Synchronous::Normal,
    )
    .unwrap();
    let me = AgentId::new("bench").unwrap();
    match mode {
        "store" | "store-done" => {
            let s = SqliteStore::open(&path, &Options::default()).unwrap();
            run_store(&s, &me, n, mode == "store-done");
        }
        _ => {
            let mut r = RawClaimer::open(&path, Synchronous::Normal).unwrap();
            run_raw(&mut r, n, mode == "raw-done");
        }
    }
}

#[inline(never)]
fn run_store(s: &SqliteStore, me: &AgentId, n: u64, done: bool) {
    for _ in 0..n {
        let l = s.claim_next(LeaseDuration::MAX, me).unwrap().unwrap();
        if done {
            s.done(&l.task, &l.token, me).unwrap();
        }
    }
}

#[inline(never)]
fn run_raw(r: &mut RawClaimer, n: u64, done: bool) {
    for _ in 0..n {
        let (id, t) = r
            .claim_next(LeaseDuration::MAX.as_millis(), "bench")
            .unwrap()
            .unwrap();
        if done {
            r.done(&id, t).unwrap();
        }
    }
}
