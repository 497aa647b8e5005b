//! Micro-benchmarks of the claim path, in one process on a real file: tasklease's
//! `claim_next` (and `claim_next` + `done`) next to the raw single statement, so a
//! regression in the store's own overhead shows up as a ratio change.
//!
//! `cargo bench -p tasklease-sqlite --bench claim`

use std::path::PathBuf;

use tasklease_core::{AgentId, LeaseDuration, Store};
use tasklease_sqlite::bench::{RawClaimer, prefill};
use tasklease_sqlite::{Options, SqliteStore, Synchronous};

fn main() {
    divan::main();
}

const TASKS: u64 = 400_000;

fn fresh(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    prefill(&path, TASKS, true, name == "raw.db", Synchronous::Normal).expect("prefill");
    (dir, path)
}

#[divan::bench(sample_count = 50, sample_size = 200)]
fn store_claim_next(b: divan::Bencher) {
    let (_dir, path) = fresh("store.db");
    let store = SqliteStore::open(&path, &Options::default()).expect("open");
    let me = AgentId::new("bench").unwrap();
    b.bench_local(|| {
        store
            .claim_next(LeaseDuration::MAX, &me)
            .unwrap()
            .expect("a task")
    });
}

#[divan::bench(sample_count = 50, sample_size = 200)]
fn store_claim_next_done(b: divan::Bencher) {
    let (_dir, path) = fresh("store.db");
    let store = SqliteStore::open(&path, &Options::default()).expect("open");
    let me = AgentId::new("bench").unwrap();
    b.bench_local(|| {
        let l = store
            .claim_next(LeaseDuration::MAX, &me)
            .unwrap()
            .expect("a task");
        store.done(&l.task, &l.token, &me).unwrap()
    });
}

#[divan::bench(sample_count = 50, sample_size = 200)]
fn raw_claim_next(b: divan::Bencher) {
    let (_dir, path) = fresh("raw.db");
    let mut raw = RawClaimer::open(&path, Synchronous::Normal).expect("open");
    b.bench_local(|| {
        raw.claim_next(LeaseDuration::MAX.as_millis(), "bench")
            .unwrap()
            .expect("a task")
    });
}

#[divan::bench(sample_count = 50, sample_size = 200)]
fn raw_claim_next_done(b: divan::Bencher) {
    let (_dir, path) = fresh("raw.db");
    let mut raw = RawClaimer::open(&path, Synchronous::Normal).expect("open");
    b.bench_local(|| {
        let (id, tok) = raw
            .claim_next(LeaseDuration::MAX.as_millis(), "bench")
            .unwrap()
            .expect("a task");
        raw.done(&id, tok).unwrap()
    });
}
