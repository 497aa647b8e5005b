//! The cases for `Store::import`: the upsert every importer shares.

use tasklease_core::{
    Error, ImportBatch, ImportTask, LeaseDuration, ListFilter, Millis, NewTask, Priority, Status,
    Store, Tag, TaskId,
};

use crate::{Fixture, T0, agent};

fn id(s: &str) -> TaskId {
    TaskId::new(s).expect("valid test id")
}

fn task(name: &str, status: Status, deps: &[&str]) -> ImportTask {
    ImportTask {
        status,
        deps: deps.iter().map(|d| id(d)).collect(),
        ..ImportTask::new(id(name), format!("task {name}"))
    }
}

fn batch(tasks: Vec<ImportTask>) -> ImportBatch {
    ImportBatch {
        tasks,
        dry_run: false,
    }
}

fn open(f: &dyn Fixture) -> Box<dyn Store> {
    f.open(&tasklease_core::Clock::manual(T0))
}

fn ready(s: &dyn Store) -> Vec<String> {
    let mut r: Vec<String> = s
        .list(&ListFilter {
            statuses: vec![Status::Todo],
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .filter(|t| t.waiting_on == 0)
        .map(|t| t.id.to_string())
        .collect();
    r.sort();
    r
}

/// Imported tasks keep every field given (status, times, version, attempts, tags,
/// dependencies), waiting_on counts their open dependencies, and importing the same
/// batch again changes nothing.
pub fn import_creates_every_field_and_twice_changes_nothing(f: &dyn Fixture) {
    let s = open(f);
    s.add(&NewTask {
        id: Some(id("old")),
        title: "already here".into(),
        ..Default::default()
    })
    .unwrap();
    let mut a = task("a", Status::Done, &[]);
    a.description = "two\nlines".into();
    a.priority = Priority::Critical;
    a.tags = vec![Tag::new("type:bug").unwrap(), Tag::new("x").unwrap()];
    a.version = tasklease_core::Version::new(7);
    a.attempts = 2;
    a.created_at = Some(Millis::from_millis(1_000));
    a.updated_at = Some(Millis::from_millis(2_000));
    let tasks = vec![
        a,
        task("b", Status::Todo, &["a"]),
        task("c", Status::Todo, &["a", "b"]),
        task("d", Status::Review, &["old"]),
        task("e", Status::Blocked, &[]),
        task("f", Status::Cancelled, &[]),
        task("g", Status::Todo, &["old"]),
    ];
    let out = s.import(&batch(tasks.clone())).unwrap();
    assert_eq!((out.created, out.updated, out.unchanged), (7, 0, 0));
    assert!(out.leased.is_empty());
    let a = s.show(&id("a")).unwrap().unwrap();
    assert_eq!(a.status, Status::Done);
    assert_eq!(a.description, "two\nlines");
    assert_eq!(a.priority, Priority::Critical);
    assert_eq!(a.tags.len(), 2);
    assert_eq!((a.version.get(), a.attempts), (7, 2));
    assert_eq!(
        (a.created_at, a.updated_at),
        (Millis::from_millis(1_000), Millis::from_millis(2_000))
    );
    let c = s.show(&id("c")).unwrap().unwrap();
    assert_eq!(c.deps, vec![id("a"), id("b")]);
    assert_eq!(c.waiting_on, 1, "a is done, b is not");
    assert_eq!(c.created_at, T0, "no time given: the store's clock");
    assert_eq!(s.show(&id("g")).unwrap().unwrap().waiting_on, 1);
    assert_eq!(ready(&*s), ["b", "old"]);

    let again = s.import(&batch(tasks)).unwrap();
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 7));
    assert_eq!(s.show(&id("a")).unwrap().unwrap().version.get(), 7);
}

/// A task that differs is overwritten (version + 1, dependencies replaced and
/// recounted); one under a live lease is left alone and named; one whose lease ran
/// out is overwritten and its lease ends.
pub fn import_overwrites_but_never_a_leased_task(f: &dyn Fixture) {
    let clock = tasklease_core::Clock::manual(T0);
    let s = f.open(&clock);
    s.import(&batch(vec![
        task("x", Status::Todo, &[]),
        task("y", Status::Todo, &["x"]),
        task("held", Status::Todo, &[]),
        task("lapsed", Status::Todo, &[]),
        task("x2", Status::Todo, &[]),
        task("w", Status::Todo, &["x2"]),
    ]))
    .unwrap();
    let me = agent("a1");
    let short = LeaseDuration::from_millis(1_000).unwrap();
    assert!(matches!(
        s.claim(&id("lapsed"), short, None, &me).unwrap(),
        tasklease_core::ClaimOutcome::Claimed(_)
    ));
    clock.advance(5_000);
    assert!(matches!(
        s.claim(&id("held"), LeaseDuration::DEFAULT, None, &me)
            .unwrap(),
        tasklease_core::ClaimOutcome::Claimed(_)
    ));
    let before = s.show(&id("held")).unwrap().unwrap();
    let mut held = task("held", Status::Done, &[]);
    held.title = "changed".into();
    let out = s
        .import(&batch(vec![
            task("x", Status::Done, &[]),
            // y no longer depends on x but on a new task z.
            task("y", Status::Todo, &["z"]),
            task("z", Status::Todo, &[]),
            held,
            task("lapsed", Status::Review, &[]),
            // w no longer waits on x2, which stays open: no trigger uncounts that edge.
            task("x2", Status::Todo, &[]),
            task("w", Status::Todo, &[]),
            // Counted against the statuses this import leaves: x done, lapsed review.
            task("v", Status::Todo, &["x", "lapsed", "held"]),
        ]))
        .unwrap();
    assert_eq!((out.created, out.updated, out.unchanged), (2, 4, 1));
    assert_eq!(s.show(&id("v")).unwrap().unwrap().waiting_on, 2);
    let w = s.show(&id("w")).unwrap().unwrap();
    assert_eq!((w.deps.len(), w.waiting_on), (0, 0));
    assert_eq!(out.leased, vec![id("held")]);
    assert_eq!(s.show(&id("held")).unwrap().unwrap(), before);
    let x = s.show(&id("x")).unwrap().unwrap();
    assert_eq!((x.status, x.version.get()), (Status::Done, 2));
    let y = s.show(&id("y")).unwrap().unwrap();
    assert_eq!((y.deps.clone(), y.waiting_on), (vec![id("z")], 1));
    let lapsed = s.show(&id("lapsed")).unwrap().unwrap();
    assert_eq!((lapsed.status, lapsed.assignee), (Status::Review, None));
}

/// A batch with one bad task writes nothing: a dependency nowhere to be found, an
/// in_progress status, an id twice. A dry run reports and writes nothing.
pub fn import_is_all_or_nothing_and_dry_runs_write_nothing(f: &dyn Fixture) {
    let s = open(f);
    let bad = [
        vec![
            task("a", Status::Todo, &[]),
            task("b", Status::Todo, &["gone"]),
        ],
        vec![
            task("a", Status::Todo, &[]),
            task("b", Status::InProgress, &[]),
        ],
        vec![task("a", Status::Todo, &[]), task("a", Status::Done, &[])],
    ];
    for tasks in bad {
        let e = s.import(&batch(tasks)).unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
        assert!(s.list(&ListFilter::default()).unwrap().is_empty(), "{e}");
    }
    let e = s
        .import(&batch(vec![task("b", Status::Todo, &["gone"])]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("b: dependency gone"), "{e}");
    let out = s
        .import(&ImportBatch {
            tasks: vec![
                task("a", Status::Todo, &[]),
                task("b", Status::Todo, &["a"]),
            ],
            dry_run: true,
        })
        .unwrap();
    assert_eq!(out.created, 2);
    assert!(s.list(&ListFilter::default()).unwrap().is_empty());
}

/// An import never brings back a deleted id: a token of the deleted task must never
/// become valid again, so the ids `rm` leaves behind are refused as `add` refuses them,
/// and nothing of the batch is written.
pub fn import_refuses_deleted_ids(f: &dyn Fixture) {
    let s = open(f);
    s.import(&batch(vec![task("gone", Status::Todo, &[])]))
        .unwrap();
    s.rm(&[id("gone")], false, &agent("admin")).unwrap();
    let e = s
        .import(&batch(vec![
            task("new", Status::Todo, &[]),
            task("gone", Status::Todo, &[]),
        ]))
        .unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
    assert!(e.to_string().contains("gone was deleted"), "{e}");
    assert!(s.list(&ListFilter::default()).unwrap().is_empty(), "{e}");
}

fn with_parent(name: &str, parent: Option<&str>) -> ImportTask {
    ImportTask {
        parent: parent.map(id),
        ..task(name, Status::Todo, &[])
    }
}

/// An import sets the parent of each task it writes (to a task in the batch or the
/// store, in any order), a second import of the same batch changes nothing, one
/// without a parent clears it, and a missing parent or a cycle of parents — within
/// the batch or through a stored parent — refuses the whole batch.
pub fn import_sets_parents_and_refuses_their_cycles(f: &dyn Fixture) {
    let s = open(f);
    s.add(&NewTask {
        id: Some(id("epic")),
        title: "stored epic".into(),
        ..Default::default()
    })
    .unwrap();
    // The child comes before its parent: parents are set once every row exists.
    let tasks = vec![
        with_parent("b", Some("a")),
        with_parent("a", Some("epic")),
        with_parent("c", None),
    ];
    let out = s.import(&batch(tasks.clone())).unwrap();
    assert_eq!(out.created, 3);
    let parent = |t: &str| s.show(&id(t)).unwrap().unwrap().parent;
    assert_eq!(parent("a"), Some(id("epic")));
    assert_eq!(parent("b"), Some(id("a")));
    assert_eq!(parent("c"), None);
    let kids: Vec<TaskId> = s
        .children(&id("a"), &ListFilter::default())
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(kids, vec![id("b")]);
    let again = s.import(&batch(tasks)).unwrap();
    assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 3));
    let out = s
        .import(&batch(vec![
            with_parent("b", None),
            with_parent("c", Some("b")),
        ]))
        .unwrap();
    assert_eq!(out.updated, 2);
    assert_eq!((parent("b"), parent("c")), (None, Some(id("b"))));

    let before = s.list(&ListFilter::default()).unwrap();
    for (tasks, says) in [
        (
            vec![with_parent("x", Some("y")), with_parent("y", Some("x"))],
            "x → y → x",
        ),
        // Stored: c under b. The batch puts b under c.
        (vec![with_parent("b", Some("c"))], "b → c → b"),
        (vec![with_parent("n", Some("ghost"))], "parent ghost"),
    ] {
        let e = s.import(&batch(tasks)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Invalid {
                    field: "parent",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains(says), "{e}");
        assert_eq!(s.list(&ListFilter::default()).unwrap(), before, "{e}");
    }
}

/// A cancelled dependency is satisfied for imported tasks as for added ones: counted
/// when the task is created, and when an overwritten task's edges are recounted.
pub fn import_counts_a_cancelled_dependency_as_satisfied(f: &dyn Fixture) {
    let s = open(f);
    s.import(&batch(vec![
        task("gone", Status::Cancelled, &[]),
        task("a", Status::Todo, &["gone"]),
    ]))
    .unwrap();
    assert_eq!(s.show(&id("a")).unwrap().unwrap().waiting_on, 0);
    // `gone` is in the store now, outside the batch.
    let mut b = task("b", Status::Todo, &["gone"]);
    b.title = "new".into();
    let mut a = task("a", Status::Todo, &["gone"]);
    a.title = "changed".into();
    let out = s.import(&batch(vec![a, b])).unwrap();
    assert_eq!((out.created, out.updated), (1, 1));
    for t in ["a", "b"] {
        assert_eq!(s.show(&id(t)).unwrap().unwrap().waiting_on, 0, "{t}");
    }
    assert_eq!(ready(&*s), ["a", "b"]);
}
