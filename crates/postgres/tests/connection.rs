//! What only the PostgreSQL store has: migrations shared by concurrent starters,
//! row locks held by other sessions, timeouts, and connections the server drops.
//! Each test works in its own schema on the test server (`TASKLEASE_TEST_PG`).

use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use tasklease_core::{ClaimOutcome, Error, LeaseDuration, NewTask, Store, TaskId};
use tasklease_postgres::testing::{self, Scratch};
use tasklease_postgres::{LATEST_VERSION, Options, PgStore};
use tasklease_storetest::agent;

fn id(s: &str) -> TaskId {
    TaskId::new(s).unwrap()
}

fn add(s: &PgStore, name: &str) {
    s.add(&NewTask {
        id: Some(id(name)),
        title: name.into(),
        ..Default::default()
    })
    .unwrap();
}

/// A scratch schema, and a session of our own in it (for locks and inspection).
fn setup() -> Option<(Scratch, Client)> {
    let server = testing::server()?;
    let scratch = Scratch::new(&server);
    let admin = Client::connect(scratch.conn(), NoTls).unwrap();
    Some((scratch, admin))
}

fn open(conn: &str) -> PgStore {
    PgStore::open(conn, &Options::default()).unwrap()
}

#[test]
fn agents_starting_together_migrate_once() {
    let Some((scratch, mut admin)) = setup() else {
        return;
    };
    let stores: Vec<PgStore> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8).map(|_| sc.spawn(|| open(scratch.conn()))).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let applied: i64 = admin
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .unwrap()
        .get(0);
    assert_eq!(applied, LATEST_VERSION);
    let migrated = stores.iter().filter(|s| s.migrated().from == 0).count();
    assert_eq!(migrated, 1, "exactly one starter applies the migrations");
    assert!(stores.iter().all(|s| s.migrated().to == LATEST_VERSION));
    assert_eq!(stores[0].migrated().schema, scratch.schema());
}

#[test]
fn a_newer_schema_is_refused() {
    let Some((scratch, mut admin)) = setup() else {
        return;
    };
    drop(open(scratch.conn()));
    admin
        .execute(
            "INSERT INTO schema_migrations VALUES ($1, 0)",
            &[&(LATEST_VERSION + 1)],
        )
        .unwrap();
    match PgStore::open(scratch.conn(), &Options::default()) {
        Err(Error::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (LATEST_VERSION + 1, LATEST_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {:?}", other.err()),
    }
}

#[test]
fn a_search_path_without_a_schema_is_bad_input() {
    let Some(server) = testing::server() else {
        return;
    };
    let conn = testing::with_search_path(&server, "tl_no_such_schema");
    match PgStore::open(&conn, &Options::default()) {
        Err(e @ Error::Invalid { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("CREATE SCHEMA"), "{e}");
            // It names the search_path it tried.
            assert!(msg.contains("tl_no_such_schema"), "{e}");
        }
        other => panic!("expected Invalid, got {:?}", other.err()),
    }
}

#[test]
fn claim_next_passes_over_a_row_another_session_is_writing() {
    let Some((scratch, mut admin)) = setup() else {
        return;
    };
    let store = PgStore::open(
        scratch.conn(),
        &Options {
            statement_timeout: Duration::from_millis(500),
            ..Options::default()
        },
    )
    .unwrap();
    add(&store, "first");
    add(&store, "second");
    let mut tx = admin.transaction().unwrap();
    tx.execute("SELECT 1 FROM tasks WHERE id = 'first' FOR UPDATE", &[])
        .unwrap();

    let lease = store
        .claim_next(LeaseDuration::DEFAULT, &agent("a"))
        .unwrap()
        .expect("the unlocked task");
    assert_eq!(
        lease.task,
        id("second"),
        "SKIP LOCKED: never waits on 'first'"
    );
    assert!(
        store
            .claim_next(LeaseDuration::DEFAULT, &agent("a"))
            .unwrap()
            .is_none()
    );

    // Claiming that very row by id waits for it, and the statement timeout ends
    // the wait with an error that says so.
    let started = Instant::now();
    let err = store
        .claim(&id("first"), LeaseDuration::DEFAULT, None, &agent("b"))
        .unwrap_err();
    assert!(err.to_string().contains("statement timeout"), "{err}");
    // The server cancelled it: surely not applied, so a plain retry is safe.
    assert!(matches!(err, Error::Busy { .. }), "{err:?}");
    assert!(err.is_retryable(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));

    tx.rollback().unwrap();
    let got = store
        .claim(&id("first"), LeaseDuration::DEFAULT, None, &agent("b"))
        .unwrap();
    assert!(matches!(got, ClaimOutcome::Claimed(_)), "{got:?}");
}

#[test]
fn a_dropped_idle_connection_is_replaced_before_the_next_write() {
    let Some((scratch, mut admin)) = setup() else {
        return;
    };
    let app = format!("tl_reconnect_{}", std::process::id());
    let conn = format!("{} application_name={app}", scratch.conn());
    let conn = if scratch.conn().contains("://") {
        format!("{}&application_name={app}", scratch.conn())
    } else {
        conn
    };
    let store = open(&conn);
    add(&store, "t");
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE application_name = $1",
            &[&app],
        )
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    // Idle long enough that the store looks before it writes.
    std::thread::sleep(Duration::from_millis(500));

    // A claim is never re-sent after a break; this one goes through because the
    // dead connection is noticed, and replaced, before anything is sent.
    let got = store
        .claim(&id("t"), LeaseDuration::DEFAULT, None, &agent("a"))
        .unwrap();
    assert!(matches!(got, ClaimOutcome::Claimed(_)), "{got:?}");
    assert!(store.show(&id("t")).unwrap().unwrap().assignee.is_some());
}

/// The migrations, oldest first, as a store of each version applied them.
const MIGRATIONS: [&str; 4] = [
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_history.sql"),
    include_str!("../migrations/0003_retries.sql"),
    include_str!("../migrations/0004_graph.sql"),
];

/// Builds the schema as tasklease version `v` left it, for an upgrade test.
fn schema_at(admin: &mut Client, v: usize) {
    admin
        .batch_execute(
            "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, applied_at bigint NOT NULL);",
        )
        .unwrap();
    for (i, m) in MIGRATIONS[..v].iter().enumerate() {
        admin.batch_execute(m).unwrap();
        let version = i as i64 + 1;
        admin
            .execute("INSERT INTO schema_migrations VALUES ($1, 0)", &[&version])
            .unwrap();
    }
}

/// Migration 0004 on PostgreSQL: a dependency cancelled before the upgrade stops
/// blocking at once — the migration recounts every `waiting_on` under the new rule.
#[test]
fn upgrade_to_v4_recounts_waiting_on_for_cancelled_deps() {
    let Some((scratch, mut admin)) = setup() else {
        return;
    };
    schema_at(&mut admin, 3);
    admin
        .batch_execute(
            "INSERT INTO tasks (id, title, created_at, updated_at) VALUES ('a', 'a', 1, 1), ('b', 'b', 1, 1);
             INSERT INTO task_deps (task, dep)
                  SELECT t.seq, d.seq FROM tasks t, tasks d WHERE t.id = 'b' AND d.id = 'a';
             UPDATE tasks SET status = 'cancelled' WHERE id = 'a';",
        )
        .unwrap();
    let w: i64 = admin
        .query_one("SELECT waiting_on FROM tasks WHERE id = 'b'", &[])
        .unwrap()
        .get(0);
    assert_eq!(w, 1, "v3 counted a cancelled dependency as blocking");
    let s = open(scratch.conn());
    assert_eq!(s.migrated().from, 3);
    assert_eq!(s.show(&id("b")).unwrap().unwrap().waiting_on, 0);
    let got = s
        .claim(&id("b"), LeaseDuration::DEFAULT, None, &agent("me"))
        .unwrap();
    assert!(matches!(got, ClaimOutcome::Claimed(_)), "{got:?}");
}

/// Migration 0005: tokens gain a secret. A lease live at the upgrade keeps working with
/// its bare integer until it ends; so does a retried done of a lease finished before.
#[test]
fn upgrade_to_v5_keeps_live_leases_working() {
    let Some((scratch, mut admin)) = setup() else {
        return;
    };
    schema_at(&mut admin, 4);
    admin
        .batch_execute(
            "INSERT INTO tasks (id, title, created_at, updated_at) VALUES ('live', 'l', 1, 1), ('finished', 'f', 1, 1);
             UPDATE tasks SET status = 'in_progress', assignee = 'old-agent', fence = 3, assigned_at = 1,
                    lock_until = (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 3600000
              WHERE id = 'live';
             UPDATE tasks SET status = 'done', fence = 2, lease_end = 'done' WHERE id = 'finished';",
        )
        .unwrap();
    let s = open(scratch.conn());
    assert_eq!(s.migrated().from, 4);
    tasklease_storetest::cases::pre_secret_leases_keep_working(&s);
}

/// How much later than its bound a call may return on a loaded machine.
const SLACK: Duration = Duration::from_secs(15);

/// Runs `f` on a thread and fails the test if it has not returned after 90 s: a hang
/// is the bug these tests look for, and must fail rather than stall the run.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(90))
        .expect("the call still had not returned after 90 s: it hangs")
}

/// A store on `scratch`'s schema through `proxy`, whose statements go unanswered
/// after `statement_timeout` + 2 s.
fn through(proxy: &testing::Proxy, scratch: &Scratch, statement_timeout: Duration) -> PgStore {
    let opts = Options {
        statement_timeout,
        ..Options::default()
    };
    PgStore::open(&proxy.via(scratch.conn()), &opts).unwrap()
}

#[test]
fn a_server_that_never_answers_fails_opening_within_the_connect_timeout() {
    let silent = testing::Silent::start();
    for (conn, opts, bound) in [
        (
            silent.conn("connect_timeout=2"),
            Options::default(),
            Duration::from_secs(2),
        ),
        (
            silent.conn(""),
            Options {
                connect_timeout: Duration::from_secs(1),
                ..Options::default()
            },
            Duration::from_secs(1),
        ),
    ] {
        let started = Instant::now();
        let e = bounded(move || PgStore::open(&conn, &opts).err()).expect("opened a silent server");
        let took = started.elapsed();
        assert!(took >= bound && took < bound + SLACK, "{took:?}: {e}");
        assert!(matches!(e, Error::Unavailable { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("no answer from the PostgreSQL server at postgres://postgres@127.0.0.1:"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("within {}s", bound.as_secs())),
            "{msg}"
        );
        assert!(msg.contains("connect timeout"), "{msg}");
    }
}

#[test]
fn a_frozen_server_fails_a_read_within_the_statement_bound() {
    let Some(server) = testing::server() else {
        return;
    };
    let scratch = Scratch::new(&server);
    let proxy = testing::Proxy::start(&server);
    let store = std::sync::Arc::new(through(&proxy, &scratch, Duration::from_secs(1)));
    add(&store, "a");
    proxy.freeze();
    let started = Instant::now();
    let s = store.clone();
    let e = bounded(move || s.list(&Default::default()).err()).expect("a frozen server answered");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(3) + SLACK,
        "{took:?}: {e}"
    );
    assert!(matches!(e, Error::Store { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("no answer from the PostgreSQL server at postgres://postgres@127.0.0.1:"),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("within 3s while trying to list tasks"),
        "{e}"
    );
    // Once the server answers again, the next call connects afresh and works.
    proxy.thaw();
    assert_eq!(store.list(&Default::default()).unwrap().len(), 1);
}

#[test]
fn a_write_to_a_frozen_server_is_outcome_unknown_and_not_resent() {
    let Some((scratch, mut admin)) = setup() else {
        return;
    };
    let server = testing::server().unwrap();
    let proxy = testing::Proxy::start(&server);
    let store = std::sync::Arc::new(through(&proxy, &scratch, Duration::from_secs(1)));
    add(&store, "a");
    proxy.freeze();
    let started = Instant::now();
    let s = store.clone();
    let e = bounded(move || {
        s.claim(&id("a"), LeaseDuration::DEFAULT, None, &agent("x"))
            .err()
    })
    .expect("a frozen server answered");
    assert!(started.elapsed() < Duration::from_secs(3) + SLACK, "{e}");
    assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e:?}");
    assert_eq!(e.code(), "outcome_unknown");
    assert_eq!(e.kind(), tasklease_core::ErrorKind::Runtime);
    assert!(
        e.to_string()
            .contains("whether it took effect is unknown: look first"),
        "{e}"
    );
    // Cut rather than thaw: the held claim never reaches the server, so one claim
    // (on the fresh connection) is all the history may show.
    proxy.cut();
    proxy.thaw();
    match store
        .claim(&id("a"), LeaseDuration::DEFAULT, None, &agent("x"))
        .unwrap()
    {
        ClaimOutcome::Claimed(l) => assert_eq!(l.token.fence(), 1, "the first claim was re-sent"),
        other => panic!("{other:?}"),
    }
    let claims: i64 = admin
        .query_one("SELECT count(*) FROM events WHERE kind = 'claimed'", &[])
        .unwrap()
        .get(0);
    assert_eq!(claims, 1);
}

#[test]
fn a_write_whose_connection_breaks_mid_way_is_outcome_unknown() {
    let Some(server) = testing::server() else {
        return;
    };
    let scratch = Scratch::new(&server);
    let proxy = testing::Proxy::start(&server);
    let store = std::sync::Arc::new(through(&proxy, &scratch, Duration::from_secs(30)));
    add(&store, "a");
    proxy.freeze();
    let s = store.clone();
    let claim = std::thread::spawn(move || {
        s.done(&id("a"), &tasklease_core::Token::legacy(1), &agent("x"))
    });
    std::thread::sleep(Duration::from_millis(500));
    proxy.cut();
    proxy.thaw();
    let e = claim
        .join()
        .unwrap()
        .expect_err("a cut connection answered");
    assert!(matches!(e, Error::OutcomeUnknown { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("broke while trying to finish the task"),
        "{e}"
    );
}

/// A claim retried with its key while the first attempt is still running on the
/// server (its client gave up, the server has not noticed) waits for that attempt and
/// answers with its grant, instead of racing it: the first attempt is held up by a
/// row lock of another session, the retry starts meanwhile, then the lock goes.
#[test]
fn a_keyed_claim_retried_while_the_first_attempt_runs_returns_its_grant() {
    use tasklease_core::RequestId;
    let Some((scratch, mut admin)) = setup() else {
        return;
    };
    let first = open(scratch.conn());
    add(&first, "a");
    let retry = open(scratch.conn());
    let key = RequestId::new("k-1").unwrap();
    let me = agent("keyed");
    let mut blocker = admin.transaction().unwrap();
    blocker
        .execute("SELECT 1 FROM tasks WHERE id = 'a' FOR UPDATE", &[])
        .unwrap();
    let (got_first, got_retry) = std::thread::scope(|sc| {
        let h1 =
            sc.spawn(|| first.claim_keyed(&id("a"), LeaseDuration::DEFAULT, None, Some(&key), &me));
        // The first attempt is now waiting for the row lock; the retry starts.
        std::thread::sleep(Duration::from_millis(500));
        let h2 =
            sc.spawn(|| retry.claim_keyed(&id("a"), LeaseDuration::DEFAULT, None, Some(&key), &me));
        std::thread::sleep(Duration::from_millis(500));
        blocker.commit().unwrap();
        (h1.join().unwrap(), h2.join().unwrap())
    });
    let (ClaimOutcome::Claimed(a), ClaimOutcome::Claimed(b)) =
        (got_first.unwrap(), got_retry.unwrap())
    else {
        panic!("both attempts must answer with the one grant");
    };
    assert_eq!((a.task.clone(), a.token), (b.task.clone(), b.token));
}
