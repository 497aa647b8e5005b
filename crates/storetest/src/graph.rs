//! Conformance cases for the task graph: dependency edits, cycles, the satisfied rule,
//! and the ready/blocked views; and a property test that random edge and status edits
//! keep every `waiting_on` equal to a recount from the edges.

use std::cell::Cell;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tasklease_core::{
    ClaimOutcome, Clock, DepChange, Error, EventKind, LeaseDuration, ListFilter, NewTask, Priority,
    Status, Store, Tag, TaskId, TaskPatch,
};

use crate::{Fixture, T0, agent};

const LEASE: LeaseDuration = LeaseDuration::DEFAULT;

fn id(s: &str) -> TaskId {
    TaskId::new(s).expect("valid test id")
}

fn ids(names: &[&str]) -> Vec<TaskId> {
    names.iter().map(|n| id(n)).collect()
}

fn add(s: &dyn Store, name: &str, prio: Priority, deps: &[&str]) -> TaskId {
    s.add(&NewTask {
        id: Some(id(name)),
        title: format!("task {name}"),
        priority: prio,
        deps: ids(deps),
        ..Default::default()
    })
    .expect("add")
    .id
}

fn waiting(s: &dyn Store, t: &str) -> i64 {
    s.show(&id(t)).unwrap().expect("task exists").waiting_on
}

fn set_status(s: &dyn Store, t: &str, to: Status) {
    let v = s.show(&id(t)).unwrap().unwrap().version;
    let patch = TaskPatch {
        status: Some(to),
        ..Default::default()
    };
    s.update(&id(t), v, &patch, None, &agent("admin"))
        .expect("update status");
}

fn ready_ids(s: &dyn Store) -> Vec<TaskId> {
    s.ready(&ListFilter::default())
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect()
}

/// `dep_add`/`dep_rm` report each edge (added, already, removed, absent), bump the
/// task's version only when an edge changed, keep `waiting_on` exact, and refuse a
/// missing task or dependency and a self edge, changing nothing.
pub fn dep_edits_are_reported_and_idempotent(f: &dyn Fixture) {
    let s = f.open(&Clock::manual(T0));
    let s = &*s;
    for n in ["a", "b", "c", "t"] {
        add(s, n, Priority::Medium, &[]);
    }
    set_status(s, "c", Status::Done);
    let v0 = s.show(&id("t")).unwrap().unwrap().version;
    let got = s.dep_add(&id("t"), &ids(&["a", "c"])).unwrap();
    assert_eq!(
        got,
        vec![(id("a"), DepChange::Added), (id("c"), DepChange::Added)]
    );
    assert_eq!(waiting(s, "t"), 1, "c is done, a is not");
    let t = s.show(&id("t")).unwrap().unwrap();
    assert_eq!(t.deps, ids(&["a", "c"]));
    assert_eq!(t.version.get(), v0.get() + 1);

    let got = s.dep_add(&id("t"), &ids(&["a", "b"])).unwrap();
    assert_eq!(
        got,
        vec![(id("a"), DepChange::Already), (id("b"), DepChange::Added)]
    );
    assert_eq!(waiting(s, "t"), 2);
    let again = s.dep_add(&id("t"), &ids(&["a"])).unwrap();
    assert_eq!(again, vec![(id("a"), DepChange::Already)]);
    assert_eq!(
        s.show(&id("t")).unwrap().unwrap().version.get(),
        v0.get() + 2,
        "no change, no bump"
    );

    let got = s.dep_rm(&id("t"), &ids(&["a", "c"])).unwrap();
    assert_eq!(
        got,
        vec![(id("a"), DepChange::Removed), (id("c"), DepChange::Removed)]
    );
    assert_eq!(waiting(s, "t"), 1, "only b is left, not done");
    let got = s.dep_rm(&id("t"), &ids(&["a"])).unwrap();
    assert_eq!(got, vec![(id("a"), DepChange::Absent)]);
    s.dep_rm(&id("t"), &ids(&["b"])).unwrap();
    assert_eq!(waiting(s, "t"), 0);
    assert!(matches!(
        s.claim(&id("t"), LEASE, None, &agent("x")).unwrap(),
        ClaimOutcome::Claimed(_)
    ));

    let before = s.show(&id("a")).unwrap().unwrap();
    for (what, r) in [
        ("unknown task", s.dep_add(&id("nope"), &ids(&["a"]))),
        ("unknown dep", s.dep_add(&id("a"), &ids(&["b", "nope"]))),
        ("unknown dep rm", s.dep_rm(&id("a"), &ids(&["nope"]))),
    ] {
        assert!(
            matches!(r, Err(Error::NotFound(ref n)) if n.as_str() == "nope"),
            "{what}: {r:?}"
        );
    }
    assert!(matches!(
        s.dep_add(&id("a"), &ids(&["a"])),
        Err(Error::Invalid { .. })
    ));
    assert_eq!(
        s.show(&id("a")).unwrap().unwrap(),
        before,
        "refused edits change nothing"
    );
}

/// An edge that would close a cycle is refused with the cycle spelled out, and nothing
/// of the edit is written (all edges or none).
pub fn dep_cycles_are_refused_spelled_out(f: &dyn Fixture) {
    let s = f.open(&Clock::manual(T0));
    let s = &*s;
    add(s, "c", Priority::Medium, &[]);
    add(s, "b", Priority::Medium, &["c"]);
    add(s, "a", Priority::Medium, &["b"]);
    add(s, "x", Priority::Medium, &[]);
    let before = s.show(&id("c")).unwrap().unwrap();
    let e = s.dep_add(&id("c"), &ids(&["x", "a"])).unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
    assert!(e.to_string().contains("c → a → b → c"), "{e}");
    assert_eq!(
        s.show(&id("c")).unwrap().unwrap(),
        before,
        "x was not added either"
    );
    let e = s.dep_add(&id("b"), &ids(&["a"])).unwrap_err();
    assert!(e.to_string().contains("b → a → b"), "{e}");
    // A diamond is no cycle.
    s.dep_add(&id("a"), &ids(&["c"])).unwrap();
    s.dep_add(&id("x"), &ids(&["a", "b", "c"])).unwrap();
    assert_eq!(waiting(s, "x"), 3);
}

/// A dependency is satisfied when it is done or cancelled: cancelling it lets the
/// dependant be claimed, `deps` says it was cancelled, and re-opening it makes the
/// dependant wait again.
pub fn cancelled_dependency_no_longer_blocks(f: &dyn Fixture) {
    let s = f.open(&Clock::manual(T0));
    let s = &*s;
    add(s, "a", Priority::Medium, &[]);
    add(s, "b", Priority::Medium, &["a"]);
    set_status(s, "a", Status::Cancelled);
    assert_eq!(waiting(s, "b"), 0);
    let deps = s.deps(&id("b")).unwrap().expect("b exists");
    assert_eq!(deps.on.len(), 1);
    assert_eq!(deps.on[0].status, Status::Cancelled);
    assert!(deps.on[0].satisfied());
    assert_eq!(ready_ids(s), ids(&["b"]));
    let next = s
        .claim_next(LEASE, &agent("x"))
        .unwrap()
        .expect("b is ready");
    assert_eq!(next.task, id("b"));
    // Re-opened, it holds its dependants back again; done and cancelled are both fine.
    add(s, "c", Priority::Medium, &["a"]);
    assert_eq!(
        waiting(s, "c"),
        0,
        "an edge to a cancelled task is satisfied at once"
    );
    set_status(s, "a", Status::Todo);
    assert_eq!(waiting(s, "c"), 1);
    set_status(s, "a", Status::Done);
    assert_eq!(waiting(s, "c"), 0);
    set_status(s, "a", Status::Cancelled);
    assert_eq!(waiting(s, "c"), 0, "done to cancelled crosses no line");
}

/// `ready` is exactly what `claim_next` takes, in its order: each claim takes the
/// first task `ready` listed the moment before.
pub fn ready_lists_what_claim_next_takes(f: &dyn Fixture) {
    let clock = Clock::manual(T0);
    let s = f.open(&clock);
    let s = &*s;
    add(s, "low", Priority::Low, &[]);
    add(s, "dep", Priority::Critical, &[]);
    add(s, "after", Priority::Critical, &["dep"]);
    add(s, "high1", Priority::High, &[]);
    add(s, "high2", Priority::High, &[]);
    add(s, "gone", Priority::Critical, &[]);
    set_status(s, "gone", Status::Cancelled);
    // An expired lease is ready again.
    let short = LeaseDuration::from_millis(1_000).unwrap();
    assert!(matches!(
        s.claim(&id("high2"), short, None, &agent("old")).unwrap(),
        ClaimOutcome::Claimed(_)
    ));
    clock.advance(2_000);
    assert_eq!(ready_ids(s), ids(&["dep", "high1", "high2", "low"]));
    let tagged = s
        .ready(&ListFilter {
            tag: Some(Tag::new("none").unwrap()),
            ..Default::default()
        })
        .unwrap();
    assert!(tagged.is_empty());
    let limited = s
        .ready(&ListFilter {
            limit: Some(1),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(limited.len(), 1);
    let r = s.ready(&ListFilter {
        statuses: vec![Status::Todo],
        ..Default::default()
    });
    assert!(matches!(r, Err(Error::Invalid { .. })), "{r:?}");
    let mut taken = Vec::new();
    loop {
        let first = ready_ids(s).into_iter().next();
        let got = s.claim_next(LEASE, &agent("x")).unwrap();
        assert_eq!(
            got.as_ref().map(|l| &l.task),
            first.as_ref(),
            "claim_next takes ready's first"
        );
        let Some(lease) = got else { break };
        if lease.task == id("dep") {
            // Finishing dep makes `after` (critical) ready, and first.
            s.done(&lease.task, &lease.token, &agent("x")).unwrap();
            assert_eq!(ready_ids(s).first(), Some(&id("after")));
        }
        taken.push(lease.task);
    }
    assert_eq!(taken, ids(&["dep", "after", "high1", "high2", "low"]));
}

/// `blocked` lists the open tasks waiting on a dependency that is not satisfied, and
/// `deps` says, for each, what it waits on and why.
pub fn blocked_lists_waiting_tasks(f: &dyn Fixture) {
    let s = f.open(&Clock::manual(T0));
    let s = &*s;
    add(s, "a", Priority::Medium, &[]);
    add(s, "b", Priority::Medium, &[]);
    add(s, "c", Priority::Medium, &[]);
    add(s, "w", Priority::Low, &["a", "b", "c"]);
    add(s, "v", Priority::High, &["a"]);
    add(s, "closed", Priority::High, &["a"]);
    set_status(s, "closed", Status::Cancelled);
    set_status(s, "c", Status::Cancelled);
    assert!(matches!(
        s.claim(&id("b"), LEASE, None, &agent("bob")).unwrap(),
        ClaimOutcome::Claimed(_)
    ));
    let blocked: Vec<TaskId> = s
        .blocked(&ListFilter::default())
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(blocked, ids(&["v", "w"]));
    let deps = s.deps(&id("w")).unwrap().unwrap();
    let why: Vec<(String, Option<String>)> = deps
        .on
        .iter()
        .map(|d| (d.id.to_string(), d.why()))
        .collect();
    assert_eq!(
        why,
        vec![
            ("a".into(), Some("not done: todo".into())),
            ("b".into(), Some("held by bob".into())),
            ("c".into(), None),
        ]
    );
    let a = s.deps(&id("a")).unwrap().unwrap();
    let by: Vec<&str> = a.needed_by.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(by, ["w", "v", "closed"]);
    assert!(a.on.is_empty());
    assert_eq!(s.deps(&id("nope")).unwrap(), None);
}

/// `rm` deletes all or nothing; refuses a live lease (`Held`) and a task others wait
/// on without force; with force ends the lease and drops the edges (recounting
/// `waiting_on`); records `deleted`; and never lets the id, or any of its tokens, live
/// again.
pub fn rm_deletes_and_never_reuses_ids(f: &dyn Fixture) {
    let s = f.open(&Clock::manual(T0));
    let s = &*s;
    let who = agent("admin");
    add(s, "a", Priority::Medium, &[]);
    add(s, "b", Priority::Medium, &["a"]);
    add(s, "c", Priority::Medium, &[]);
    add(s, "d", Priority::Medium, &["c"]);
    let ClaimOutcome::Claimed(lease) = s.claim(&id("c"), LEASE, None, &agent("x")).unwrap() else {
        panic!("c is free")
    };
    let before = s.list(&ListFilter::default()).unwrap();

    let e = s.rm(&ids(&["a"]), false, &who).unwrap_err();
    assert!(
        matches!(e, Error::Invalid { .. }) && e.to_string().contains("needed by b"),
        "{e}"
    );
    let e = s.rm(&ids(&["b", "c"]), false, &who).unwrap_err();
    assert!(matches!(e, Error::Held { .. }), "{e:?}");
    assert!(matches!(
        s.rm(&ids(&["nope"]), false, &who),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(s.rm(&[], false, &who), Err(Error::Invalid { .. })));
    assert!(matches!(
        s.rm(&ids(&["a", "a"]), false, &who),
        Err(Error::Invalid { .. })
    ));
    assert_eq!(
        s.list(&ListFilter::default()).unwrap(),
        before,
        "refusals change nothing"
    );

    // A dependant deleted along with its dependency is no obstacle.
    let gone = s.rm(&ids(&["a", "b"]), false, &who).unwrap();
    assert_eq!(
        gone.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        ids(&["a", "b"])
    );
    assert_eq!(s.show(&id("a")).unwrap(), None);

    // Forced: the lease ends, the dependant's edge goes and it is ready.
    assert_eq!(waiting(s, "d"), 1);
    let gone = s.rm(&ids(&["c"]), true, &who).unwrap();
    assert_eq!(gone[0].holder, Some(agent("x")));
    assert_eq!(gone[0].dropped, ids(&["d"]));
    assert_eq!(waiting(s, "d"), 0);
    assert_eq!(
        s.show(&id("d")).unwrap().unwrap().deps,
        Vec::<TaskId>::new()
    );
    let last = s.log(Some(&id("c")), 10).unwrap().pop().expect("history");
    assert_eq!(last.kind, EventKind::Deleted);
    assert_eq!(last.fence, Some(lease.token.fence()));

    // The old token stays dead, and the id is never handed out again.
    let r = s.renew(&id("c"), &lease.token, LEASE, &agent("x"));
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    let r = s.done(&id("c"), &lease.token, &agent("x"));
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");
    let again = s.add(&NewTask {
        id: Some(id("c")),
        title: "c again".into(),
        ..Default::default()
    });
    let Err(e) = again else {
        panic!("a deleted id was reused")
    };
    assert!(
        matches!(e, Error::Invalid { .. }) && e.to_string().contains("deleted"),
        "{e}"
    );
    let auto = s
        .add(&NewTask {
            title: "auto".into(),
            ..Default::default()
        })
        .unwrap()
        .id;
    s.rm(std::slice::from_ref(&auto), false, &who).unwrap();
    let next = s
        .add(&NewTask {
            title: "auto".into(),
            ..Default::default()
        })
        .unwrap()
        .id;
    assert_ne!(next, auto, "generated ids skip deleted ones");
}

fn set_parent(s: &dyn Store, t: &str, parent: Option<&str>) -> Result<tasklease_core::Task, Error> {
    let v = s.show(&id(t)).unwrap().unwrap().version;
    let patch = TaskPatch {
        parent: Some(parent.map(id)),
        ..Default::default()
    };
    s.update(&id(t), v, &patch, None, &agent("admin"))
}

fn child_ids(s: &dyn Store, parent: &str) -> Vec<TaskId> {
    s.children(&id(parent), &ListFilter::default())
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect()
}

/// Parents form a hierarchy that never blocks: children list in order, a parent is
/// set by `add` or `update` (and removed), a cycle of parents or a missing parent is
/// refused with nothing written, and deleting a parent leaves its children without
/// one.
pub fn parents_are_a_non_blocking_hierarchy(f: &dyn Fixture) {
    let s = f.open(&Clock::manual(T0));
    let s = &*s;
    add(s, "epic", Priority::Low, &[]);
    for c in ["c1", "c2"] {
        let t = s
            .add(&NewTask {
                id: Some(id(c)),
                title: c.into(),
                parent: Some(id("epic")),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(t.parent, Some(id("epic")));
    }
    add(s, "c3", Priority::High, &[]);
    let v = s.show(&id("c3")).unwrap().unwrap().version;
    let t = set_parent(s, "c3", Some("epic")).unwrap();
    assert_eq!(
        (t.parent.clone(), t.version),
        (Some(id("epic")), tasklease_core::Version::new(v.get() + 1))
    );
    assert_eq!(child_ids(s, "epic"), ids(&["c3", "c1", "c2"]));
    let done_only = ListFilter {
        statuses: vec![Status::Done],
        ..Default::default()
    };
    assert!(s.children(&id("epic"), &done_only).unwrap().is_empty());
    // Nothing waits on anything: parent and children are all ready.
    assert_eq!(ready_ids(s), ids(&["c3", "c1", "c2", "epic"]));

    let before = s.list(&ListFilter::default()).unwrap();
    let e = set_parent(s, "epic", Some("c1")).unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
    assert!(e.to_string().contains("epic → c1 → epic"), "{e}");
    let e = set_parent(s, "c1", Some("c1")).unwrap_err();
    assert!(e.to_string().contains("c1 → c1"), "{e}");
    let e = set_parent(s, "c1", Some("nope")).unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
    let orphan = s.add(&NewTask {
        id: Some(id("orphan")),
        title: "orphan".into(),
        parent: Some(id("nope")),
        ..Default::default()
    });
    assert!(matches!(orphan, Err(Error::Invalid { .. })), "{orphan:?}");
    let after = s.list(&ListFilter::default()).unwrap();
    assert_eq!(after, before, "refusals change nothing");
    let r = s.children(&id("nope"), &ListFilter::default());
    assert!(matches!(r, Err(Error::NotFound(_))), "{r:?}");

    // Grandchildren: a deeper cycle is refused too.
    add(s, "g", Priority::Medium, &[]);
    set_parent(s, "g", Some("c1")).unwrap();
    let e = set_parent(s, "epic", Some("g")).unwrap_err();
    assert!(e.to_string().contains("epic → g → c1 → epic"), "{e}");

    let t = set_parent(s, "c3", None).unwrap();
    assert_eq!(t.parent, None);
    assert_eq!(child_ids(s, "epic"), ids(&["c1", "c2"]));
    s.rm(&ids(&["epic"]), false, &agent("admin")).unwrap();
    assert_eq!(s.show(&id("c1")).unwrap().unwrap().parent, None);
    assert_eq!(s.show(&id("g")).unwrap().unwrap().parent, Some(id("c1")));
}

/// Concurrent edits on separate handles never close a cycle between them: of a ring
/// of handles each adding the edge that closes the ring, at least one is refused, and
/// the edges that exist afterwards form no cycle.
pub fn concurrent_edges_never_close_a_cycle(f: &dyn Fixture) {
    use std::sync::{Arc, Barrier};
    const RING: usize = 4;
    const ROUNDS: usize = 15;
    let clock = Clock::manual(T0);
    let stores: Vec<Box<dyn Store>> = (0..RING).map(|_| f.open(&clock)).collect();
    for round in 0..ROUNDS {
        let names: Vec<String> = (0..RING).map(|i| format!("ring{round}-{i}")).collect();
        for n in &names {
            add(&*stores[0], n, Priority::Low, &[]);
        }
        let barrier = Arc::new(Barrier::new(RING));
        let added: Vec<bool> = std::thread::scope(|sc| {
            let handles: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let barrier = barrier.clone();
                    let (t, d) = (id(&names[i]), id(&names[(i + 1) % RING]));
                    sc.spawn(move || {
                        barrier.wait();
                        match s.dep_add(&t, std::slice::from_ref(&d)) {
                            Ok(_) => true,
                            Err(Error::Invalid { message, .. }) if message.contains("cycle") => {
                                false
                            }
                            Err(e) => panic!("unexpected error {e}"),
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let refused = added.iter().filter(|a| !**a).count();
        assert_eq!(
            refused, 1,
            "round {round}: {added:?} (the ring would be closed)"
        );
        for n in &names {
            assert!(waiting(&*stores[0], n) <= 1);
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Link { t: usize, d: usize },
    Unlink { t: usize, d: usize },
    Status { t: usize, to: Status },
}

const N: usize = 6;

fn op() -> impl Strategy<Value = Op> {
    let statuses = prop_oneof![
        Just(Status::Todo),
        Just(Status::Done),
        Just(Status::Cancelled),
        Just(Status::Review),
        Just(Status::Blocked),
    ];
    prop_oneof![
        3 => (0..N, 0..N).prop_map(|(t, d)| Op::Link { t, d }),
        2 => (0..N, 0..N).prop_map(|(t, d)| Op::Unlink { t, d }),
        3 => (0..N, statuses).prop_map(|(t, to)| Op::Status { t, to }),
    ]
}

/// Random edge additions, removals and status changes: the store refuses exactly the
/// edges that close a cycle, and every task's `waiting_on` equals a recount of its
/// unsatisfied dependencies from the model's edges; `claim_next` takes `ready`'s first.
pub fn graph_model(f: &dyn Fixture) {
    let clock = Clock::manual(T0);
    let store = f.open(&clock);
    let round = Cell::new(0u32);
    let mut runner = TestRunner::new(Config {
        cases: 40,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(op(), 1..40), |ops| {
        round.set(round.get() + 1);
        run_graph(&*store, round.get(), &ops)
    });
    if let Err(e) = result {
        panic!("the store disagrees with the graph model: {e}");
    }
}

fn reaches(edges: &[[bool; N]; N], from: usize, to: usize) -> bool {
    let mut seen = [false; N];
    let mut stack = vec![from];
    while let Some(at) = stack.pop() {
        if at == to {
            return true;
        }
        if !std::mem::replace(&mut seen[at], true) {
            stack.extend((0..N).filter(|&d| edges[at][d]));
        }
    }
    false
}

fn run_graph(s: &dyn Store, round: u32, ops: &[Op]) -> Result<(), TestCaseError> {
    let fail = |e: Error| TestCaseError::fail(e.to_string());
    let names: Vec<TaskId> = (0..N).map(|i| id(&format!("g{round}-{i}"))).collect();
    for n in &names {
        s.add(&NewTask {
            id: Some(n.clone()),
            title: "graph model task".into(),
            // Low, so earlier rounds' leftovers never matter: every round retires its own.
            priority: Priority::Low,
            ..Default::default()
        })
        .map_err(fail)?;
    }
    let mut edges = [[false; N]; N];
    let mut status = [Status::Todo; N];
    for op in ops {
        match *op {
            Op::Link { t, d } => {
                let got = s.dep_add(&names[t], &[names[d].clone()]);
                if t == d {
                    prop_assert!(matches!(got, Err(Error::Invalid { .. })), "{op:?}: {got:?}");
                } else if edges[t][d] {
                    prop_assert_eq!(
                        got.map_err(fail)?,
                        vec![(names[d].clone(), DepChange::Already)]
                    );
                } else if reaches(&edges, d, t) {
                    let e = got.expect_err("a cycle is refused");
                    prop_assert!(e.to_string().contains("cycle"), "{op:?}: {e}");
                } else {
                    prop_assert_eq!(
                        got.map_err(fail)?,
                        vec![(names[d].clone(), DepChange::Added)]
                    );
                    edges[t][d] = true;
                }
            }
            Op::Unlink { t, d } => {
                let got = s.dep_rm(&names[t], &[names[d].clone()]);
                if t == d {
                    prop_assert!(matches!(got, Err(Error::Invalid { .. })), "{op:?}: {got:?}");
                } else {
                    let want = if edges[t][d] {
                        DepChange::Removed
                    } else {
                        DepChange::Absent
                    };
                    prop_assert_eq!(got.map_err(fail)?, vec![(names[d].clone(), want)]);
                    edges[t][d] = false;
                }
            }
            Op::Status { t, to } => {
                let v = s.show(&names[t]).map_err(fail)?.expect("exists").version;
                let patch = TaskPatch {
                    status: Some(to),
                    ..Default::default()
                };
                s.update(&names[t], v, &patch, None, &agent("admin"))
                    .map_err(fail)?;
                status[t] = to;
            }
        }
        for t in 0..N {
            let want = (0..N)
                .filter(|&d| edges[t][d] && !status[d].satisfies())
                .count();
            let row = s.show(&names[t]).map_err(fail)?.expect("exists");
            prop_assert_eq!(row.waiting_on as usize, want, "task {} after {:?}", t, op);
            let deps = s.deps(&names[t]).map_err(fail)?.expect("exists");
            let on: Vec<usize> = (0..N).filter(|&d| edges[t][d]).collect();
            let got: Vec<usize> = deps
                .on
                .iter()
                .map(|d| names.iter().position(|n| *n == d.id).expect("one of ours"))
                .collect();
            prop_assert_eq!(got, on);
        }
    }
    // Whatever the graph, claim_next takes ready's first.
    let first = s
        .ready(&ListFilter::default())
        .map_err(fail)?
        .into_iter()
        .next();
    let got = s.claim_next(LEASE, &agent("m")).map_err(fail)?;
    prop_assert_eq!(got.as_ref().map(|l| &l.task), first.as_ref().map(|t| &t.id));
    // Retire the round's tasks so later rounds' ready lists start empty.
    for n in &names {
        let row = s.show(n).map_err(fail)?.expect("exists");
        if row.status == Status::InProgress {
            s.release_force(n, tasklease_core::ReleaseTo::Todo, &agent("admin"))
                .map_err(fail)?;
        }
        let v = s.show(n).map_err(fail)?.expect("exists").version;
        let patch = TaskPatch {
            status: Some(Status::Cancelled),
            ..Default::default()
        };
        s.update(n, v, &patch, None, &agent("admin"))
            .map_err(fail)?;
    }
    Ok(())
}
