//! A worker pool in one process: N threads share one store, each claims the next ready
//! task, holds its lease while working, and marks it done. At the end every task must
//! be done, and by exactly one claim.
//!
//! ```text
//! cargo run -p tasklease --example worker -- [THREADS] [TASKS] [DB]
//! ```
//!
//! `DB` is anything `--db` takes (a path, `sqlite:PATH`, a PostgreSQL connection
//! string); by default a fresh SQLite file in a temporary directory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tasklease::open::{DbSpec, OpenOptions};
use tasklease::{EventKind, LeaseDuration, NewTask, Status, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let threads: u32 = args.next().map_or(Ok(4), |s| s.parse())?;
    let tasks: u32 = args.next().map_or(Ok(40), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let spec = match args.next() {
        Some(db) => DbSpec::parse(&db),
        None => DbSpec::parse(&format!("sqlite:{}", dir.path().join("w.db").display())),
    };
    let opts = OpenOptions::default().one_shot(false);
    tasklease::open::init(&spec, &opts)?;
    let store: Arc<dyn Store> = tasklease::open::open(&spec, &opts)?.into();
    for i in 0..tasks {
        store.add(&NewTask {
            title: format!("task {i}"),
            ..NewTask::default()
        })?;
    }

    let length = LeaseDuration::from_millis(30_000)?;
    let workers: Vec<_> = (0..threads)
        .map(|n| {
            let store = store.clone();
            std::thread::spawn(move || -> tasklease::Result<u32> {
                // A name per thread: history shows which worker did what.
                let me = tasklease::identity::agent_id_for("worker", n)?;
                let mut finished = 0;
                while let Some(lease) = store.claim_next(length, &me)? {
                    let held = tasklease::hold(store.clone(), &lease, length)?;
                    // The work: a few steps, each only while the lease is trusted.
                    for _ in 0..3 {
                        if !held.is_trusted() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    if held.is_trusted() {
                        held.done()?;
                        finished += 1;
                    }
                }
                Ok(finished)
            })
        })
        .collect();
    let mut finished = 0;
    for w in workers {
        finished += w.join().map_err(|_| "a worker panicked")??;
    }

    // Every task done, each by exactly one claim: no task was worked twice.
    let done = store.counts()?;
    let open_tasks: u64 = done
        .iter()
        .filter(|(s, _)| *s != Status::Done)
        .map(|(_, n)| n)
        .sum();
    let mut claims: HashMap<String, (u32, u32)> = HashMap::new();
    for e in store.log(None, tasks * 10)? {
        let c = claims.entry(e.task.to_string()).or_default();
        match e.kind {
            EventKind::Claimed => c.0 += 1,
            EventKind::Done => c.1 += 1,
            _ => {}
        }
    }
    let twice: Vec<_> = claims.iter().filter(|(_, n)| **n != (1, 1)).collect();
    if finished != tasks || open_tasks != 0 || claims.len() != tasks as usize || !twice.is_empty() {
        return Err(format!(
            "finished {finished} of {tasks}, {open_tasks} not done, (claims, dones) per \
             task where not (1, 1): {twice:?}"
        )
        .into());
    }
    println!("{threads} threads finished {tasks} tasks, each claimed once and done once");
    Ok(())
}
