//! What a store hands out reads back as it was written: every value with `Serialize`
//! also has `Deserialize`, and a JSON round trip gives an equal value. A worker that
//! keeps its lease in a file across a restart, or a program reading the CLI's `--json`
//! rows into the library's types, relies on this.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tasklease::open::{DbSpec, OpenOptions};
use tasklease::{
    AgentId, ClaimOutcome, LeaseDuration, ListFilter, NewTask, Refusal, Retention, TaskId,
};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(what: &str, v: &T) {
    let json = serde_json::to_string(v).unwrap();
    let back: T = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("{what} does not read back: {e}\n{json}"));
    assert_eq!(&back, v, "{what} changed in a round trip through {json}");
}

#[test]
fn what_a_store_returns_reads_back_equal() {
    let dir = tempfile::tempdir().unwrap();
    let spec = DbSpec::parse(dir.path().join("t.db").to_str().unwrap());
    tasklease::open::init(&spec, &OpenOptions::default()).unwrap();
    let store = tasklease::open::open(&spec, &OpenOptions::default()).unwrap();
    let me = AgentId::new("me").unwrap();
    let id = |s: &str| TaskId::new(s).unwrap();
    let a = store
        .add(&NewTask {
            id: Some(id("a")),
            title: "a \"quoted\" title".into(),
            tags: vec![tasklease::Tag::new("ui").unwrap()],
            ..Default::default()
        })
        .unwrap();
    store
        .add(&NewTask {
            id: Some(id("b")),
            title: "b".into(),
            deps: vec![id("a")],
            parent: Some(id("a")),
            ..Default::default()
        })
        .unwrap();
    round_trip("a task", &a);
    let lease = store
        .claim_next(LeaseDuration::DEFAULT, &me)
        .unwrap()
        .expect("a is ready");
    round_trip("a lease", &lease);
    let ClaimOutcome::Refused(refusal) = store
        .claim(
            &id("a"),
            LeaseDuration::DEFAULT,
            None,
            &AgentId::new("other").unwrap(),
        )
        .unwrap()
    else {
        panic!("a is held")
    };
    assert!(matches!(refusal, Refusal::Held { .. }), "{refusal:?}");
    round_trip("a refusal", &refusal);
    round_trip("the dependencies", &store.deps(&id("b")).unwrap().unwrap());
    let ended = store.done(&lease.task, &lease.token, &me).unwrap();
    round_trip("a done task", &ended.task);
    for e in store.log(None, u32::MAX).unwrap() {
        round_trip("a history event", &e);
    }
    round_trip("a listing", &store.list(&ListFilter::default()).unwrap());
    round_trip("a retention", &Retention::DEFAULT);
    let deleted = store.rm(&[id("b")], true, &me).unwrap();
    round_trip("a deletion", &deleted);
}
