//! How fast N threads go through claim-next + done when they share one store, against
//! a store per thread, measured in the same run (docs/library.md, "Sharing a store").
//!
//! ```text
//! cargo run -p tasklease --example share -- sqlite [THREADS] [SECONDS] [TASKS]
//! TASKLEASE_TEST_PG='host=… user=… dbname=…' cargo run -p tasklease \
//!   --example share -- postgres [THREADS] [SECONDS] [TASKS] [POOL_SIZE]
//! ```
//!
//! On PostgreSQL the tasks go in a scratch schema dropped at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tasklease::open::{DbSpec, OpenOptions};
use tasklease::{AgentId, LeaseDuration, NewTask, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "sqlite".into());
    let threads: usize = args.next().map_or(Ok(8), |s| s.parse())?;
    let secs: u64 = args.next().map_or(Ok(3), |s| s.parse())?;
    let tasks: usize = args.next().map_or(Ok(20_000), |s| s.parse())?;
    let pool_size: usize = args.next().map_or(Ok(4), |s| s.parse())?;
    let server = match backend.as_str() {
        "sqlite" => None,
        "postgres" => Some(
            std::env::var("TASKLEASE_TEST_PG")
                .map_err(|_| "set TASKLEASE_TEST_PG to a PostgreSQL connection string")?,
        ),
        other => return Err(format!("{other}: allowed: sqlite, postgres").into()),
    };
    let run = Duration::from_secs(secs);
    let per_thread = measure(server.as_deref(), threads, tasks, pool_size, run, false)?;
    let shared = measure(server.as_deref(), threads, tasks, pool_size, run, true)?;
    println!(
        "{backend}, {threads} threads, {secs} s each: store per thread {per_thread:.0} \
         claim+done/s; one shared store {shared:.0}/s; shared/per-thread = {:.2}",
        shared / per_thread
    );
    Ok(())
}

/// Claim-next + done per second over at most `run`, by `threads` threads sharing one
/// store (`shared`) or each opening its own, on a fresh store of `tasks` tasks.
fn measure(
    server: Option<&str>,
    threads: usize,
    tasks: usize,
    pool_size: usize,
    run: Duration,
    shared: bool,
) -> Result<f64, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let scratch = server.map(tasklease_postgres::testing::Scratch::new);
    let spec = match &scratch {
        None => DbSpec::Sqlite {
            path: dir.path().join("share.db"),
            explicit: true,
        },
        Some(s) => DbSpec::Postgres {
            url: s.conn().to_owned(),
        },
    };
    let opts = OpenOptions::default().pool_size(pool_size);
    tasklease::open::init(&spec, &opts)?;
    let one: Arc<dyn Store> = Arc::from(tasklease::open::open(&spec, &opts)?);
    for i in 0..tasks {
        one.add(&NewTask {
            title: format!("t{i}"),
            ..NewTask::default()
        })?;
    }
    let stores: Vec<Arc<dyn Store>> = (0..threads)
        .map(|_| -> tasklease::Result<Arc<dyn Store>> {
            Ok(if shared {
                one.clone()
            } else {
                Arc::from(tasklease::open::open(&spec, &opts)?)
            })
        })
        .collect::<tasklease::Result<_>>()?;
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = stores
        .into_iter()
        .enumerate()
        .map(|(n, store)| {
            let (stop, count) = (stop.clone(), count.clone());
            std::thread::spawn(move || -> tasklease::Result<()> {
                let me = AgentId::new(&format!("w{n}"))?;
                while !stop.load(Ordering::Relaxed) {
                    let Some(lease) = store.claim_next(LeaseDuration::DEFAULT, &me)? else {
                        break;
                    };
                    store.done(&lease.task, &lease.token, &me)?;
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    // Until the time is up, or the workers ran out of tasks.
    while start.elapsed() < run && !workers.iter().all(|w| w.is_finished()) {
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().map_err(|_| "a worker panicked")??;
    }
    Ok(count.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}
