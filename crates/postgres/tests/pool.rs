//! A store shared by threads uses several connections (docs/library.md, "Sharing a
//! store"): a call stuck on the server does not hold up the others.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use postgres::{Client, NoTls};
use tasklease_core::{AgentId, LeaseDuration, NewTask, Store, TaskId};
use tasklease_postgres::testing::{self, Scratch};
use tasklease_postgres::{Options, PgStore};

fn task(store: &PgStore, id: &str) -> TaskId {
    let id = TaskId::new(id).unwrap();
    store
        .add(&NewTask {
            id: Some(id.clone()),
            title: "x".into(),
            ..NewTask::default()
        })
        .unwrap();
    id
}

/// One thread's renewal waits on a row another session has locked; another thread's
/// renewal of another task through the same store must not wait behind it.
#[test]
fn a_blocked_call_does_not_hold_up_other_threads() {
    let Some(server) = testing::server() else {
        return;
    };
    let scratch = Scratch::new(&server);
    let store = Arc::new(PgStore::open(scratch.conn(), &Options::default()).unwrap());
    let me = AgentId::new("me").unwrap();
    let (a, b) = (task(&store, "a"), task(&store, "b"));
    let len = LeaseDuration::DEFAULT;
    let lease_a = store.claim_next(len, &me).unwrap().unwrap();
    let lease_b = store.claim_next(len, &me).unwrap().unwrap();
    assert_eq!((&lease_a.task, &lease_b.task), (&a, &b));

    let mut admin = Client::connect(scratch.conn(), NoTls).unwrap();
    let mut tx = admin.transaction().unwrap();
    tx.execute("SELECT 1 FROM tasks WHERE id = 'a' FOR UPDATE", &[])
        .unwrap();

    let (done_a, blocked) = mpsc::channel();
    let s = store.clone();
    let who = me.clone();
    std::thread::spawn(move || {
        let _ = done_a.send(
            s.renew(&lease_a.task, &lease_a.token, len, &who)
                .map(|_| ()),
        );
    });
    // Give the blocked renewal time to take its connection and send.
    std::thread::sleep(Duration::from_millis(300));
    let (done_b, free) = mpsc::channel();
    let s = store.clone();
    std::thread::spawn(move || {
        let _ = done_b.send(s.renew(&lease_b.task, &lease_b.token, len, &me).map(|_| ()));
    });
    let b_result = free.recv_timeout(Duration::from_secs(20));
    assert!(
        blocked.try_recv().is_err(),
        "the first renewal should still wait for the row lock"
    );
    tx.rollback().unwrap();
    b_result
        .expect("the renewal of b waited behind the renewal of a: one connection for all threads")
        .unwrap();
    blocked
        .recv_timeout(Duration::from_secs(20))
        .expect("the renewal of a never finished after the lock was released")
        .unwrap();
}

/// Nothing listening: nothing was sent, so the caller may simply try again later.
#[test]
fn a_refused_connection_is_unavailable_and_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let e = PgStore::open(
        &format!("host=127.0.0.1 port={port} user=nobody dbname=none"),
        &Options::default(),
    )
    .err()
    .expect("opened a port where nothing listens");
    assert!(
        matches!(e, tasklease_core::Error::Unavailable { .. }),
        "{e:?}"
    );
    assert!(e.is_retryable(), "{e:?}");
}

/// The server went away while the store sat idle: the next call finds the connection
/// closed before sending anything, cannot reconnect, and says so as retryable — not as
/// an unknown outcome.
#[test]
fn a_server_gone_between_calls_is_unavailable_not_unknown() {
    let Some(server) = testing::server() else {
        return;
    };
    let scratch = Scratch::new(&server);
    let proxy = testing::Proxy::start(&server);
    drop(PgStore::open(scratch.conn(), &Options::default()).unwrap());
    let store = PgStore::open(&proxy.via(scratch.conn()), &Options::default()).unwrap();
    let id = task(&store, "a");
    drop(proxy);
    std::thread::sleep(Duration::from_millis(600));
    let e = store
        .claim(
            &id,
            LeaseDuration::DEFAULT,
            None,
            &AgentId::new("me").unwrap(),
        )
        .unwrap_err();
    assert!(
        matches!(e, tasklease_core::Error::Unavailable { .. }),
        "{e:?}"
    );
    assert!(e.is_retryable(), "{e:?}");
}
