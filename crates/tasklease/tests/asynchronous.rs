//! Every store operation through [`AsyncStore`], from inside a tokio runtime, on both
//! stores: the store must never be called or dropped in an async context (the
//! PostgreSQL store panicked there), and calls must run in the order they were made.

use tasklease::asynchronous::AsyncStore;
use tasklease::open::{DbSpec, OpenOptions};
use tasklease::{
    AgentId, BatchOutcome, ClaimOutcome, LeaseDuration, ListFilter, NewTask, ReleaseTo, Retention,
    Status, TaskId, TaskPatch,
};

fn id(s: &str) -> TaskId {
    TaskId::new(s).unwrap()
}

fn new(name: &str, deps: &[&str]) -> NewTask {
    NewTask {
        id: Some(id(name)),
        title: name.into(),
        deps: deps.iter().map(|d| id(d)).collect(),
        ..Default::default()
    }
}

/// Opens `spec` through the facade inside a multi-threaded runtime, runs every
/// operation, and drops the store there too.
fn every_operation(spec: DbSpec) {
    tasklease::open::init(&spec, &OpenOptions::default()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let s = AsyncStore::open(move || tasklease::open::open(&spec, &OpenOptions::default()))
            .await
            .unwrap();
        let me = AgentId::new("async").unwrap();
        let lease = LeaseDuration::DEFAULT;
        s.add(new("A", &[])).await.unwrap();
        s.add(new("B", &["A"])).await.unwrap();
        s.add(new("C", &[])).await.unwrap();
        assert_eq!(s.show(id("A")).await.unwrap().unwrap().title, "A");
        assert_eq!(s.list(ListFilter::default()).await.unwrap().len(), 3);
        let ClaimOutcome::Claimed(a) = s.claim(id("A"), lease, None, me.clone()).await.unwrap()
        else {
            panic!("A was not claimed")
        };
        s.renew(id("A"), a.token.clone(), lease, me.clone())
            .await
            .unwrap();
        s.done(id("A"), a.token, me.clone()).await.unwrap();
        let b = s.claim_next(lease, me.clone()).await.unwrap().unwrap();
        assert_eq!(b.task, id("B"));
        s.release(id("B"), b.token, ReleaseTo::Todo, me.clone())
            .await
            .unwrap();
        let BatchOutcome::Claimed(both) = s
            .claim_batch(vec![id("B"), id("C")], lease, me.clone())
            .await
            .unwrap()
        else {
            panic!("the batch was refused")
        };
        s.release_force(id("C"), ReleaseTo::Todo, me.clone())
            .await
            .unwrap();
        let patch = TaskPatch {
            title: Some("B, renamed".into()),
            ..Default::default()
        };
        let updated = s
            .update(
                id("B"),
                both[0].version,
                patch,
                Some(both[0].token.clone()),
                me.clone(),
            )
            .await
            .unwrap();
        assert_eq!(updated.title, "B, renamed");
        assert!(s.reap(me.clone()).await.unwrap().is_empty());
        assert!(!s.log(None, 100).await.unwrap().is_empty());
        assert!(!s.log(Some(id("A")), 100).await.unwrap().is_empty());
        s.prune(Retention::DEFAULT).await.unwrap();
        let counts = s.counts().await.unwrap();
        assert!(counts.contains(&(Status::Done, 1)), "{counts:?}");
        s.now().await.unwrap();
        let step = s
            .done_then_claim_next(id("B"), both[0].token.clone(), lease, None, me.clone())
            .await
            .unwrap();
        assert_eq!(step.ended.task.status, Status::Done);
        assert_eq!(step.next.unwrap().map(|l| l.task), Some(id("C")));
        // Queued one after another without waiting: they run in that order.
        let added = s.add(new("D", &[]));
        let claimed = s.claim(id("D"), lease, None, me.clone());
        added.await.unwrap();
        assert!(matches!(claimed.await.unwrap(), ClaimOutcome::Claimed(_)));
        drop(s);
    });
}

#[test]
fn every_operation_runs_through_the_async_facade_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    every_operation(DbSpec::Sqlite {
        path: dir.path().join("t.db"),
        explicit: true,
    });
}

#[test]
fn every_operation_runs_through_the_async_facade_on_postgres() {
    let Some(server) = tasklease_postgres::testing::server() else {
        return;
    };
    // Made and dropped outside the runtime: Scratch uses the sync client.
    let scratch = tasklease_postgres::testing::Scratch::new(&server);
    every_operation(DbSpec::Postgres {
        url: scratch.conn().to_owned(),
    });
}
