//! The server in-process: rmcp's own client talks to [`tasklease_mcp::serve`] over an
//! in-memory pipe, against a real SQLite file.

mod client;

use std::sync::Arc;

use client::{Client, call, named, result as structured, text};
use rmcp::model::ClientConfig;
use rmcp::service::ServiceExt;
use serde_json::{Value, json};
use tasklease::open::{DbSpec, OpenOptions};
use tasklease::{AgentId, Clock, Millis, Store};
use tasklease_mcp::{Identity, Stores};

/// A server on its own task, and a client connected to it under `name`.
async fn connect(
    stores: Stores,
    identity: Identity,
    name: &str,
) -> (Client, tokio::task::JoinHandle<tasklease::Result<()>>) {
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let (r, w) = tokio::io::split(server_io);
    let server = tokio::spawn(tasklease_mcp::serve(
        r,
        w,
        tasklease_mcp::Server::new(stores, identity, None),
    ));
    let client = named(name).serve(client_io).await.expect("handshake");
    (client, server)
}

fn sqlite(dir: &std::path::Path, clock: Clock) -> Arc<dyn Store> {
    let spec = DbSpec::Sqlite {
        path: dir.join("t.db"),
        explicit: true,
    };
    let opts = OpenOptions::default().clock(clock);
    tasklease::open::init(&spec, &opts).expect("init");
    Arc::from(tasklease::open::open(&spec, &opts).expect("open"))
}

#[tokio::test]
async fn tools_are_listed_with_object_schemas_and_descriptions() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _s) = connect(
        Stores::ready(sqlite(dir.path(), Clock::Database)),
        Identity::default(),
        "lister",
    )
    .await;
    let tools = c.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "add", "claim", "done", "list", "locks", "log", "mine", "release", "renew", "show",
            "update"
        ]
    );
    for t in &tools {
        let d = t.description.as_deref().unwrap_or("");
        assert!(d.len() > 100, "{}: description too thin: {d}", t.name);
        assert!(t.title.is_some(), "{}: no title", t.name);
        let s = Value::Object((*t.input_schema).clone());
        assert_eq!(s["type"], "object", "{}: {s}", t.name);
        assert_eq!(s["additionalProperties"], false, "{}: {s}", t.name);
        let out = Value::Object((*t.output_schema.clone().expect("an output schema")).clone());
        assert_eq!(out["type"], "object", "{}: {out}", t.name);
    }
    let renew = tools.iter().find(|t| t.name == "renew").unwrap();
    let s = Value::Object((*renew.input_schema).clone());
    assert_eq!(s["required"], json!(["id", "token"]), "{s}");
    assert_eq!(s["properties"]["token"]["type"], "string", "{s}");
    let d = renew.description.as_deref().unwrap();
    assert!(d.contains("on a timer") && d.contains("lease_lost"), "{d}");
    let info = c.peer_info().expect("server info");
    assert!(info.instructions.as_deref().unwrap_or("").contains("token"));
}

#[tokio::test]
async fn claim_renew_done_with_the_clients_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path(), Clock::Database);
    let (c, _s) = connect(Stores::ready(store), Identity::default(), "Some Client").await;
    let a = structured(
        &call(
            &c,
            "add",
            json!({"title": "first", "id": "A", "priority": "high"}),
        )
        .await,
        false,
    );
    assert_eq!(a["task"]["id"], "A");
    let claimed = call(&c, "claim", json!({"next": true, "lease": "10m"})).await;
    let cl = structured(&claimed, false);
    assert_eq!(cl["outcome"], "claimed");
    assert_eq!(cl["id"], "A");
    assert_eq!(cl["lease_ms"], 600_000);
    let me = cl["agent"].as_str().unwrap();
    let here = std::env::current_dir().unwrap();
    let want = tasklease::identity::stable("Some Client", &here).unwrap();
    assert_eq!(me, want.as_str());
    assert!(
        text(&claimed).contains("renew before"),
        "{}",
        text(&claimed)
    );
    let token = cl["token"].as_str().unwrap().to_owned();
    let r = structured(
        &call(
            &c,
            "renew",
            json!({"id": "A", "token": token, "lease": "1h"}),
        )
        .await,
        false,
    );
    assert_eq!(r["outcome"], "renewed");
    assert_eq!(r["token"], token);
    assert!(r["lock_until_ms"].as_i64() > cl["lock_until_ms"].as_i64());
    let mine = structured(&call(&c, "list", json!({"mine": true})).await, false);
    assert_eq!(mine["count"], 1);
    assert_eq!(mine["truncated"], false);
    let d = structured(
        &call(&c, "done", json!({"id": "A", "token": token})).await,
        false,
    );
    assert_eq!(d["outcome"], "done");
    assert_eq!(d["task"]["status"], "done");
    let e = structured(&call(&c, "claim", json!({"next": true})).await, true);
    assert_eq!(e["error"]["code"], "empty");
}

#[tokio::test]
async fn a_stale_token_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::manual(Millis::from_millis(1_000_000));
    let store = sqlite(dir.path(), clock.clone());
    store
        .add(&tasklease::NewTask {
            id: Some("t".parse().unwrap()),
            title: "t".into(),
            ..Default::default()
        })
        .unwrap();
    let (c, _s) = connect(Stores::ready(store.clone()), Identity::default(), "slow").await;
    let mine = structured(
        &call(&c, "claim", json!({"id": "t", "lease": "1m"})).await,
        false,
    );
    clock.advance(61_000);
    let other = AgentId::new("fast").unwrap();
    store
        .claim(&"t".parse().unwrap(), "5m".parse().unwrap(), None, &other)
        .unwrap();
    for tool in ["renew", "done", "release"] {
        let r = call(&c, tool, json!({"id": "t", "token": mine["token"]})).await;
        let e = structured(&r, true);
        assert_eq!(e["error"]["code"], "lease_lost", "{tool}: {e}");
        assert_eq!(e["error"]["exit"], 5);
        let t = text(&r);
        assert!(
            t.contains("Stop working on t") && t.contains("held by fast"),
            "{t}"
        );
    }
    let held = structured(&call(&c, "claim", json!({"id": "t"})).await, true);
    assert_eq!(held["error"]["code"], "held");
    assert_eq!(held["error"]["holder"], "fast");
}

/// An agent whose call failed without an answer calls again: a retried done or
/// release is success (`already_done` / `already_released`), and a claim retried with
/// its `request_id` returns the first grant instead of a second task.
#[tokio::test]
async fn retries_after_an_unknown_outcome_are_answered_as_the_first_call() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path(), Clock::Database);
    for t in ["a", "b", "c"] {
        store
            .add(&tasklease::NewTask {
                id: Some(t.parse().unwrap()),
                title: t.into(),
                ..Default::default()
            })
            .unwrap();
    }
    let (c, _s) = connect(Stores::ready(store.clone()), Identity::default(), "retry").await;
    let ask = json!({"next": true, "request_id": "call-1"});
    let first = structured(&call(&c, "claim", ask.clone()).await, false);
    let again = structured(&call(&c, "claim", ask).await, false);
    assert_eq!(
        (&again["id"], &again["token"]),
        (&first["id"], &first["token"])
    );
    assert_eq!(again["lock_until_ms"], first["lock_until_ms"]);
    let todo = store
        .list(&tasklease::ListFilter {
            statuses: vec![tasklease::Status::Todo],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(todo.len(), 2, "the retry claimed nothing more");
    let args = json!({"id": first["id"], "token": first["token"]});
    let done = structured(&call(&c, "done", args.clone()).await, false);
    assert_eq!(done["outcome"], "done");
    let done = structured(&call(&c, "done", args).await, false);
    assert_eq!(done["outcome"], "already_done", "{done}");
    let next = structured(&call(&c, "claim", json!({"next": true})).await, false);
    let args = json!({"id": next["id"], "token": next["token"], "status": "blocked"});
    let r = structured(&call(&c, "release", args.clone()).await, false);
    assert_eq!(r["outcome"], "released");
    let r = structured(&call(&c, "release", args).await, false);
    assert_eq!(r["outcome"], "already_released", "{r}");
    assert_eq!(r["task"]["status"], "blocked");
}

#[tokio::test]
async fn without_a_database_tools_say_init_and_the_server_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let root = dir.path().to_owned();
    let stores = Stores::open_with(move || {
        let spec = DbSpec::discover(None, &root)?;
        tasklease::open::open(&spec, &OpenOptions::default())
    });
    let (c, _s) = connect(stores, Identity::default(), "early").await;
    let r = call(&c, "list", json!({})).await;
    let e = structured(&r, true);
    assert_eq!(e["error"]["code"], "invalid");
    assert!(text(&r).contains("tasklease init"), "{}", text(&r));
    // `tasklease init`, as another process would run it.
    let spec = DbSpec::discover(None, dir.path()).unwrap();
    tasklease::open::init(&spec, &OpenOptions::default()).unwrap();
    let l = structured(&call(&c, "list", json!({})).await, false);
    assert_eq!(l["count"], 0);
}

#[tokio::test]
async fn locks_needs_a_project_and_lists_its_locks() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path(), Clock::Database);
    let (c, _s) = connect(Stores::ready(store), Identity::default(), "x").await;
    let r = call(&c, "locks", json!({})).await;
    assert!(
        text(&r).contains("without a project directory"),
        "{}",
        text(&r)
    );
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let (r, w) = tokio::io::split(server_io);
    let server = tasklease_mcp::Server::new(
        Stores::ready(sqlite(dir.path(), Clock::Database)),
        Identity::default(),
        Some(dir.path().join("sub")),
    );
    tokio::spawn(tasklease_mcp::serve(r, w, server));
    let c = ClientConfig::default().serve(client_io).await.unwrap();
    let l = structured(&call(&c, "locks", json!({})).await, false);
    assert_eq!(
        l,
        json!({"ok": true, "outcome": "listed", "locks": [], "writer_turn": null})
    );
}

#[tokio::test]
async fn bad_arguments_are_tool_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path(), Clock::Database);
    let (c, _s) = connect(Stores::ready(store.clone()), Identity::default(), "sloppy").await;
    let cases = [
        ("claim", json!({}), "exactly one of"),
        ("claim", json!({"id": "a", "next": true}), "exactly one of"),
        ("claim", json!({"id": "../etc"}), "not a valid task id"),
        (
            "claim",
            json!({"id": "a", "lease": "forever"}),
            "lease duration",
        ),
        ("claim", json!({"id": "a", "lease": "30"}), "unit"),
        ("renew", json!({"id": "a"}), "missing field `token`"),
        (
            "renew",
            json!({"id": "a", "token": "one"}),
            "<fence>.<secret>",
        ),
        (
            "renew",
            json!({"id": "a", "token": "0"}),
            "<fence>.<secret>",
        ),
        ("renew", json!({"id": "a", "token": 3}), "`token`"),
        ("done", json!({"id": 5, "token": "1"}), "`id`"),
        (
            "release",
            json!({"id": "a", "token": "1", "status": "done"}),
            "use `done`",
        ),
        (
            "show",
            json!({"id": "a", "extra": 1}),
            "unknown field `extra`",
        ),
        ("add", json!({"title": " "}), "title is empty"),
        (
            "add",
            json!({"title": "x", "priority": "urgent"}),
            "critical, high, medium, low",
        ),
        ("add", json!({"title": "x", "deps": ["missing"]}), "missing"),
        ("list", json!({"status": ["doing"]}), "todo, in_progress"),
        ("list", json!({"limit": 0}), "limit"),
        ("list", json!({"mine": true, "assignee": "x"}), "not both"),
        (
            "claim",
            json!({"id": "a", "agent": "bad\nname"}),
            "agent id",
        ),
    ];
    for (tool, args, why) in cases {
        let r = call(&c, tool, args.clone()).await;
        let e = structured(&r, true);
        assert_eq!(e["ok"], false, "{tool} {args}");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(msg.contains(why), "{tool} {args}: {msg}");
        assert_eq!(e["error"]["exit"], 2, "{tool} {args}: {e}");
    }
    assert!(store.list(&Default::default()).unwrap().is_empty());
}

/// `list` takes the graph's views: `ready` (what claim-next would take, in order),
/// `blocked`, and `parent`; more than one at a time is a tool error.
#[tokio::test]
async fn list_shows_ready_blocked_and_children() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path(), Clock::Database);
    let add = |id: &str, deps: &[&str], parent: Option<&str>| {
        store
            .add(&tasklease::NewTask {
                id: Some(id.parse().unwrap()),
                title: id.into(),
                deps: deps.iter().map(|d| d.parse().unwrap()).collect(),
                parent: parent.map(|p| p.parse().unwrap()),
                ..Default::default()
            })
            .unwrap();
    };
    add("epic", &[], None);
    add("a", &[], Some("epic"));
    add("b", &["a"], Some("epic"));
    let (c, _s) = connect(Stores::ready(store.clone()), Identity::default(), "viewer").await;
    let ids = |v: &Value| -> Vec<String> {
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let ready = structured(&call(&c, "list", json!({"ready": true})).await, false);
    assert_eq!(ids(&ready), ["epic", "a"]);
    let blocked = structured(&call(&c, "list", json!({"blocked": true})).await, false);
    assert_eq!(ids(&blocked), ["b"]);
    let kids = structured(&call(&c, "list", json!({"parent": "epic"})).await, false);
    assert_eq!(ids(&kids), ["a", "b"]);
    let both = call(&c, "list", json!({"ready": true, "blocked": true})).await;
    assert_eq!(structured(&both, true)["error"]["code"], "invalid");
}

/// Through rmcp's own client: a refusal and a success of the same tool both validate
/// (jsonschema) against the `outputSchema` the tool declares — what the TypeScript
/// SDK checks every result against, error results included.
#[tokio::test]
async fn refusals_and_successes_fit_the_declared_output_schema() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path(), Clock::Database);
    store
        .add(&tasklease::NewTask {
            id: Some("t".parse().unwrap()),
            title: "t".into(),
            ..Default::default()
        })
        .unwrap();
    let (c, _s) = connect(Stores::ready(store.clone()), Identity::default(), "checker").await;
    let tools = c.list_all_tools().await.unwrap();
    let schema = |name: &str| {
        let t = tools.iter().find(|t| t.name == name).unwrap();
        let s = Value::Object((*t.output_schema.clone().unwrap()).clone());
        jsonschema::validator_for(&s).expect("a valid schema")
    };
    let fits = |name: &str, v: &Value| {
        let errors: Vec<String> = schema(name).iter_errors(v).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name}: {errors:?}\n{v}");
    };
    let won = structured(&call(&c, "claim", json!({"id": "t"})).await, false);
    fits("claim", &won);
    store
        .add(&tasklease::NewTask {
            id: Some("u".parse().unwrap()),
            title: "u".into(),
            ..Default::default()
        })
        .unwrap();
    let other = AgentId::new("other").unwrap();
    store
        .claim(&"u".parse().unwrap(), "5m".parse().unwrap(), None, &other)
        .unwrap();
    let held = structured(&call(&c, "claim", json!({"id": "u"})).await, true);
    assert_eq!(held["error"]["code"], "held");
    fits("claim", &held);
    let lost = structured(
        &call(&c, "done", json!({"id": "u", "token": 999})).await,
        true,
    );
    fits("done", &lost);
    // Not every object fits: the shape refusals had before is rejected.
    let old = json!({"ok": false, "outcome": "held", "holder": "other"});
    assert!(schema("claim").iter_errors(&old).next().is_some());
}
