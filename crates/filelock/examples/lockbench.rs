//! What a lock costs: `cargo run --release -p tasklease-filelock --example lockbench
//! [DIR]`. Measures, on a file in DIR (default: a temp dir):
//!
//! - an uncontended lock + unlock cycle on one kept-open [`LockFile`] (the SQLite
//!   writer queue's hot path),
//! - a `try` that finds the lock held,
//! - N waiters (one open file each, as N processes would have) taking turns with
//!   blocking locks: turns per second, and how long each turn waited.
//!
//! Locks are per open file, so threads with a file each contend exactly as processes do.

use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use tasklease_filelock::LockFile;

fn main() -> tasklease_core::Result<()> {
    let mut tmp = None;
    let dir = match std::env::args_os().nth(1) {
        Some(d) => PathBuf::from(d),
        None => {
            let d = std::env::temp_dir().join(format!("lockbench-{}", std::process::id()));
            std::fs::create_dir_all(&d).expect("temp dir");
            tmp = Some(d.clone());
            d
        }
    };
    let path = dir.join("bench.lock");
    println!("lock file: {}", path.display());

    let mut f = LockFile::open(&path)?;
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        drop(f.lock_exclusive()?);
    }
    per_op("uncontended lock_exclusive + unlock", t.elapsed(), n);

    let mut other = LockFile::open(&path)?;
    let held = other.lock_exclusive()?;
    let t = Instant::now();
    for _ in 0..n {
        assert!(f.try_lock_exclusive()?.is_none());
    }
    per_op("try_lock_exclusive on a held lock", t.elapsed(), n);
    drop(held);

    let us = Duration::from_micros;
    for waiters in [2, 4, 8] {
        contended(&path, waiters, us(50), us(50));
    }
    contended(&path, 4, us(50), Duration::ZERO);
    if let Some(tmp) = tmp {
        let _ = std::fs::remove_dir_all(tmp);
    }
    Ok(())
}

fn per_op(what: &str, took: Duration, n: u32) {
    println!(
        "{what}: {:.0} ns/op ({:.0}k ops/s)",
        took.as_nanos() as f64 / f64::from(n),
        f64::from(n) / took.as_secs_f64() / 1000.0
    );
}

/// `waiters` threads, each with its own open file: lock, `inside` of busy work,
/// unlock, `outside` of busy work, again, for `run`. Reports turns per second, and
/// how long a turn waited for the lock (median, 99th percentile, worst): a lock that
/// lets a releasing holder barge back in starves the others, and shows here.
fn contended(path: &std::path::Path, waiters: usize, inside: Duration, outside: Duration) {
    let run = Duration::from_secs(2);
    let start = Arc::new(Barrier::new(waiters));
    let handles: Vec<_> = (0..waiters)
        .map(|_| {
            let (path, start) = (path.to_path_buf(), start.clone());
            std::thread::spawn(move || -> Vec<Duration> {
                let mut f = LockFile::open(&path).expect("open");
                start.wait();
                let end = Instant::now() + run;
                let mut waits = Vec::new();
                while Instant::now() < end {
                    let asked = Instant::now();
                    let g = f.lock_exclusive().expect("lock");
                    waits.push(asked.elapsed());
                    spin(inside);
                    drop(g);
                    spin(outside);
                }
                waits
            })
        })
        .collect();
    let per: Vec<Vec<Duration>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let counts: Vec<usize> = per.iter().map(Vec::len).collect();
    let mut all: Vec<Duration> = per.into_iter().flatten().collect();
    all.sort();
    let q = |p: f64| all[((all.len() - 1) as f64 * p) as usize];
    println!(
        "{waiters} waiters, {inside:?} held / {outside:?} between: {:.1}k turns/s; turns per \
         waiter {}..{}; wait p50 {:?}, p99 {:?}, max {:?}",
        all.len() as f64 / run.as_secs_f64() / 1000.0,
        counts.iter().min().unwrap(),
        counts.iter().max().unwrap(),
        q(0.5),
        q(0.99),
        all.last().unwrap(),
    );
}

/// Busy work, not sleep: a sleeping thread gives the lock away for free.
fn spin(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}
