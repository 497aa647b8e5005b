//! How long the board takes to answer over 10,000 tasks: the store read, the render
//! and the HTTP answer, measured end to end over real TCP against a real SQLite file.
//! Ignored: run with
//! `cargo nextest run --release -p tasklease-web --test bench --run-ignored only --no-capture`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tasklease::open::{DbSpec, OpenOptions};
use tasklease::{AgentId, ImportBatch, ImportTask, LeaseDuration, Priority, Status, Tag, TaskId};
use tasklease_web::{Config, Stores};

const TASKS: usize = 10_000;

fn get(addr: &str, path: &str) -> (Duration, usize) {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut body = Vec::new();
    s.read_to_end(&mut body).unwrap();
    assert!(
        body.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&body[..200.min(body.len())])
    );
    (start.elapsed(), body.len())
}

#[test]
#[ignore = "benchmark: prints how long the board takes over 10,000 tasks"]
fn bench_board_of_ten_thousand_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let spec = DbSpec::Sqlite {
        path: dir.path().join("t.db"),
        explicit: true,
    };
    tasklease::open::init(&spec, &OpenOptions::default()).unwrap();
    let store = tasklease::open::open(&spec, &OpenOptions::default()).unwrap();
    let statuses = [
        Status::Todo,
        Status::Todo,
        Status::Todo,
        Status::Done,
        Status::Done,
        Status::Blocked,
        Status::Review,
        Status::Cancelled,
    ];
    let tasks = (0..TASKS)
        .map(|i| {
            let mut t = ImportTask::new(
                TaskId::new(&format!("T-{i}")).unwrap(),
                format!("task number {i} <b>with</b> a title"),
            );
            t.status = statuses[i % statuses.len()];
            t.priority = Priority::ALL[i % 4];
            t.tags = vec![Tag::new(&format!("area{}", i % 7)).unwrap()];
            t
        })
        .collect();
    store
        .import(&ImportBatch {
            tasks,
            dry_run: false,
        })
        .unwrap();
    // 20 agents holding 50 tasks each.
    let lease = LeaseDuration::from_millis(600_000).unwrap();
    for a in 0..20 {
        let agent = AgentId::new(&format!("agent-{a}")).unwrap();
        for _ in 0..50 {
            store
                .claim_next(lease, &agent)
                .unwrap()
                .expect("a ready task");
        }
    }
    // The live feed's idle cost: one stamp read per poll (4 a second while a browser
    // watches), never a write.
    let reads = 10_000;
    let start = Instant::now();
    for _ in 0..reads {
        store.stamp().unwrap();
    }
    println!(
        "stamp read (the live feed's poll, SQLite): {:.1} µs each",
        start.elapsed().as_secs_f64() * 1e6 / f64::from(reads)
    );
    drop(store);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let open_spec = spec.clone();
    let stores = runtime
        .block_on(Stores::open(move || {
            tasklease::open::open(&open_spec, &OpenOptions::default())
        }))
        .unwrap();
    let config = Config::new(addr, AgentId::new("bench").unwrap()).unwrap();
    runtime.spawn(tasklease_web::serve(
        listener,
        stores,
        config,
        std::future::pending(),
    ));
    let host = addr.to_string();

    for (what, path) in [
        ("board (columns paged)", "/"),
        ("board filtered by text", "/?q=number%2099"),
        ("every card (?show=all)", "/?show=all"),
    ] {
        get(&host, path); // warm
        let mut times: Vec<Duration> = Vec::new();
        let mut size = 0;
        for _ in 0..15 {
            let (t, n) = get(&host, path);
            times.push(t);
            size = n;
        }
        times.sort();
        println!(
            "{TASKS} tasks, {what}: median {:.1} ms, max {:.1} ms, {} KB",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0,
            size / 1024
        );
    }
}
