//! A JSON Schema for the output of every verb: what `tasklease VERB --json` prints, and
//! what the MCP tool of the same name returns as structured content.
//!
//! # Why schemas written here, in code
//!
//! The result objects are built with `serde_json::json!` in [`crate::json`], not
//! derived from structs, so there is no type to derive a schema from; writing the
//! schemas next to those builders, from the same constants (`Status::ALL`,
//! `Priority::ALL`, the exit codes), is the next best thing. Three things keep the two
//! honest: the published files in `docs/json/` are these schemas, byte for byte (a
//! test regenerates and compares them, `docs_json_is_current`); the CLI's tests run
//! every verb, succeeding and failing, through the real binary and validate its output
//! against the published file (`crates/cli/tests/schema.rs`); and the MCP server
//! declares them as its tools' `outputSchema`, which clients validate every result
//! against.
//!
//! # What they promise
//!
//! Every schema is the `anyOf` of the verb's success shapes and the one failure shape
//! (docs/json.md): a refusal is a result like any other, and a client validating a
//! refusal against the tool's schema must not reject it. Objects are open (further
//! properties allowed): adding a field is not a breaking change, and a reader must
//! ignore fields it does not know. What a schema pins down is `ok`, `outcome`, the
//! failure's `error.code`/`exit`/`message`, and the type of every field it names.
//!
//! They are kept small on purpose — the MCP server sends all of them in `tools/list`,
//! which costs every agent tokens on every session — so each shape is defined once in
//! `$defs` and referenced, and field meanings live in docs/json.md, not here.

use serde_json::{Map, Value, json};

use crate::json::{EXIT_CONFLICT, EXIT_EMPTY, EXIT_USAGE};
use tasklease::{Priority, Status};

/// One verb's output: its name (the CLI verb, `dep-add` for `dep add`), a title, and
/// the `$defs` of its success shapes.
pub struct Verb {
    /// The verb, as the file `docs/json/<name>.json` is named.
    pub name: &'static str,
    /// What the schema describes, in a few words.
    pub title: &'static str,
    /// Its success shapes, by `$defs` name.
    pub success: &'static [&'static str],
}

/// Every verb that prints JSON (`mcp` prints none: stdout carries the protocol).
pub const VERBS: &[Verb] = &[
    Verb {
        name: "init",
        title: "tasklease init --json",
        success: &["initialized"],
    },
    Verb {
        name: "add",
        title: "tasklease add --json",
        success: &["one_task"],
    },
    Verb {
        name: "list",
        title: "tasklease list --json",
        success: &["listed"],
    },
    Verb {
        name: "show",
        title: "tasklease show --json",
        success: &["shown"],
    },
    Verb {
        name: "update",
        title: "tasklease update --json",
        success: &["one_task"],
    },
    Verb {
        name: "dep-add",
        title: "tasklease dep add --json",
        success: &["dep_edit"],
    },
    Verb {
        name: "dep-rm",
        title: "tasklease dep rm --json",
        success: &["dep_edit"],
    },
    Verb {
        name: "dep-list",
        title: "tasklease dep list --json",
        success: &["deps"],
    },
    Verb {
        name: "rm",
        title: "tasklease rm --json",
        success: &["deleted"],
    },
    Verb {
        name: "claim",
        title: "tasklease claim --json",
        success: &["claimed", "already_held", "batch_claimed"],
    },
    Verb {
        name: "mine",
        title: "tasklease mine --json",
        success: &["mine"],
    },
    Verb {
        name: "renew",
        title: "tasklease renew --json",
        success: &["renewed"],
    },
    Verb {
        name: "release",
        title: "tasklease release --json",
        success: &["ended"],
    },
    Verb {
        name: "done",
        title: "tasklease done --json",
        success: &["ended"],
    },
    Verb {
        name: "reap",
        title: "tasklease reap --json (with --every: one object a line)",
        success: &["reaped", "reaped_one", "stopped"],
    },
    Verb {
        name: "log",
        title: "tasklease log --json",
        success: &["events"],
    },
    Verb {
        name: "status",
        title: "tasklease status --json",
        success: &["summary"],
    },
    Verb {
        name: "locks",
        title: "tasklease locks --json",
        success: &["locks"],
    },
    Verb {
        name: "lock",
        title: "tasklease lock|git … --json",
        success: &["ran"],
    },
    Verb {
        name: "run",
        title: "tasklease run --json",
        success: &["run"],
    },
    Verb {
        name: "migrate",
        title: "tasklease migrate --json",
        success: &["migrated"],
    },
    Verb {
        name: "agent-id",
        title: "tasklease agent-id --json",
        success: &["named"],
    },
    Verb {
        name: "import",
        title: "tasklease import --json",
        success: &["imported"],
    },
    Verb {
        name: "export",
        title: "tasklease export --out FILE --json",
        success: &["exported"],
    },
    Verb {
        name: "man",
        title: "tasklease man DIR --json",
        success: &["written"],
    },
    Verb {
        name: "bench",
        title: "tasklease bench --json",
        success: &["measured"],
    },
];

/// The output schema of `verb` (a [`VERBS`] name), self-contained: the success shapes
/// and the failure, with the `$defs` they use. `None` for an unknown verb.
pub fn output(verb: &str) -> Option<Value> {
    let v = VERBS.iter().find(|v| v.name == verb)?;
    Some(of(v.title, v.success))
}

/// A self-contained schema (`type: object`, as MCP's `outputSchema` must be) that is
/// the `anyOf` of the `success` shapes (`$defs` names) and the failure.
pub fn of(title: &str, success: &[&str]) -> Value {
    let mut any: Vec<Value> = success.iter().map(|d| reference(d)).collect();
    any.push(reference("failure"));
    let mut defs = Map::new();
    for d in success.iter().chain(&["failure"]) {
        collect(d, &mut defs);
    }
    json!({"title": title, "type": "object", "anyOf": any, "$defs": defs})
}

/// A lean form of [`output`], small enough to send for every tool in MCP's
/// `tools/list` (whose whole size an agent pays for on every session): each success
/// shape keeps its `required` fields and its `ok`/`outcome` values, the failure its
/// `error.code`/`exit`/`message`, and nothing else. Whatever fits [`output`] fits
/// this; the full schema is in `docs/json/`.
pub fn lean(verb: &str) -> Option<Value> {
    let v = VERBS.iter().find(|v| v.name == verb)?;
    let keep = |d: Value| {
        let mut l = json!({"required": d["required"]});
        for k in ["ok", "outcome"] {
            if let Some(p) = d["properties"].get(k) {
                l["properties"][k] = p.clone();
            }
        }
        l
    };
    let mut any: Vec<Value> = v.success.iter().map(|d| keep(def(d))).collect();
    let mut failure = keep(def("failure"));
    failure["properties"]["error"] = json!({"required": ["code", "exit", "message"]});
    any.push(failure);
    Some(json!({"type": "object", "anyOf": any}))
}

/// The file `docs/json/<verb>.json` holds: [`output`] with its `$schema` dialect.
pub fn document(verb: &str) -> Option<String> {
    let mut s = output(verb)?;
    let o = s.as_object_mut()?;
    let mut doc = Map::new();
    doc.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    doc.append(o);
    let mut text = serde_json::to_string_pretty(&Value::Object(doc)).ok()?;
    text.push('\n');
    Some(text)
}

fn reference(def: &str) -> Value {
    json!({"$ref": format!("#/$defs/{def}")})
}

/// Adds `name` and every definition it refers to.
fn collect(name: &str, defs: &mut Map<String, Value>) {
    if defs.contains_key(name) {
        return;
    }
    let d = def(name);
    defs.insert(name.to_owned(), d.clone());
    for r in refs(&d) {
        collect(&r, defs);
    }
}

fn refs(v: &Value) -> Vec<String> {
    match v {
        Value::Object(o) => o
            .iter()
            .flat_map(|(k, v)| match (k.as_str(), v) {
                ("$ref", Value::String(r)) => {
                    vec![r.trim_start_matches("#/$defs/").to_owned()]
                }
                _ => refs(v),
            })
            .collect(),
        Value::Array(a) => a.iter().flat_map(refs).collect(),
        _ => Vec::new(),
    }
}

// --- the pieces -------------------------------------------------------------------

const S: &str = "string";
const I: &str = "integer";
const B: &str = "boolean";

fn t(ty: &str) -> Value {
    json!({"type": ty})
}

fn nullable(ty: &str) -> Value {
    json!({"type": [ty, "null"]})
}

fn array(items: Value) -> Value {
    json!({"type": "array", "items": items})
}

fn names<T: ToString>(all: &[T]) -> Vec<String> {
    all.iter().map(ToString::to_string).collect()
}

/// An object with `required` fields among `props`.
fn object(required: &[&str], props: Value) -> Value {
    json!({"type": "object", "required": required, "properties": props})
}

/// A success: `ok: true`, `outcome` one of `outcomes`, and `props`.
fn success(outcomes: &[&str], required: &[&str], props: Value) -> Value {
    let mut p = json!({"ok": {"const": true}, "outcome": {"enum": outcomes}});
    if let (Some(p), Value::Object(more)) = (p.as_object_mut(), props) {
        p.extend(more);
    }
    let mut req = vec!["ok", "outcome"];
    req.extend_from_slice(required);
    object(&req, p)
}

fn def(name: &str) -> Value {
    let id = || reference("id");
    let time = || reference("time");
    let ntime = || nullable(S);
    match name {
        "id" => json!({"type": "string", "minLength": 1}),
        "time" => json!({"type": "string", "description": "RFC 3339, UTC"}),
        // A bearer secret, `<fence>.<secret>`: pass it back exactly as given.
        "token" => json!({"type": "string"}),
        "failure" => object(
            &["ok", "error"],
            json!({
                "ok": {"const": false},
                "error": object(&["code", "exit", "message"], json!({
                    "code": t(S),
                    "exit": {"type": "integer", "minimum": 1, "maximum": 255},
                    "message": t(S),
                    "retryable": t(B),
                    "id": id(),
                    "holder": {},
                    "held_by_you": t(B),
                    "lock_until": time(),
                    "reason": {"enum": ["closed", "waiting"]},
                    "waiting_on": array(id()),
                    "refused": array(reference("refusal")),
                })),
            }),
        ),
        // One id's part of a refused batch: a failure's `error` object.
        "refusal" => object(
            &["code", "exit", "message", "id"],
            json!({
                "code": {"enum": ["held", "not_found", "not_claimable"]},
                "exit": {"enum": [EXIT_CONFLICT, EXIT_USAGE, EXIT_EMPTY]},
                "message": t(S),
                "id": id(),
            }),
        ),
        "task" => object(
            &["id", "title", "status", "priority", "version"],
            json!({
                "id": id(),
                "title": t(S),
                "description": t(S),
                "status": reference("status"),
                "priority": {"enum": names(Priority::ALL)},
                "tags": array(t(S)),
                "deps": array(id()),
                "waiting_on": t(I),
                "parent": nullable(S),
                "version": t(I),
                "assignee": nullable(S),
                "assigned_at": ntime(),
                "lock_until": ntime(),
                "lease_live": t(B),
                "lease_left_ms": nullable(I),
                "attempts": t(I),
                "created_at": time(),
                "updated_at": time(),
            }),
        ),
        "status" => json!({"enum": names(Status::ALL)}),
        // A compact list row (the MCP list; `fields` may leave any but `id` out).
        "row" => object(
            &["id"],
            json!({
                "id": id(),
                "status": reference("status"),
                "priority": {"enum": names(Priority::ALL)},
                "title": t(S),
                "holder": nullable(S),
                "lease_left_ms": nullable(I),
                "waiting_on": t(I),
            }),
        ),
        "lease" => object(
            &[
                "id",
                "agent",
                "token",
                "fence",
                "lock_until",
                "lock_until_ms",
            ],
            json!({
                "id": id(),
                "agent": t(S),
                "token": reference("token"),
                "fence": t(I),
                "assigned_at": time(),
                "lock_until": time(),
                "lock_until_ms": t(I),
                "version": t(I),
            }),
        ),
        "dep_state" => object(
            &["id", "status", "satisfied"],
            json!({
                "id": id(),
                "status": reference("status"),
                "holder": nullable(S),
                "lock_until": ntime(),
                "satisfied": t(B),
                "why": nullable(S),
            }),
        ),
        "initialized" => success(
            &["created", "exists"],
            &["db", "created"],
            json!({"db": t(S), "created": t(B)}),
        ),
        "one_task" => success(
            &["added", "updated"],
            &["task"],
            json!({"task": reference("task")}),
        ),
        "listed" => success(
            &["listed"],
            &["count", "tasks"],
            json!({
                "count": t(I),
                "tasks": array(json!({"anyOf": [reference("task"), reference("row")]})),
                "truncated": t(B),
                "more": t(I),
            }),
        ),
        "shown" => success(
            &["shown"],
            &["task"],
            json!({"task": {"allOf": [reference("task"), {
                "properties": {
                    "cancelled_deps": array(id()),
                    "children": array(object(&["id", "status"], json!({
                        "id": id(), "status": reference("status"),
                    }))),
                    "progress": object(&["done", "cancelled", "total"], json!({
                        "done": t(I), "cancelled": t(I), "total": t(I),
                    })),
                    "reason": {"anyOf": [{"type": "null"}, object(&["kind", "text"], json!({
                        "kind": t(S), "agent": t(S), "at": time(), "text": t(S),
                    }))]},
                },
            }]}}),
        ),
        "dep_edit" => success(
            &["edited"],
            &["task", "deps"],
            json!({
                "task": id(),
                "deps": array(object(&["id", "outcome"], json!({
                    "id": id(),
                    "outcome": {"enum": ["added", "already", "removed", "absent"]},
                }))),
            }),
        ),
        "deps" => success(
            &["listed"],
            &["task", "on", "needed_by"],
            json!({
                "task": id(),
                "waiting_on": t(I),
                "on": array(reference("dep_state")),
                "needed_by": array(reference("dep_state")),
            }),
        ),
        "deleted" => success(
            &["deleted"],
            &["count", "deleted"],
            json!({
                "count": t(I),
                "deleted": array(object(&["id"], json!({
                    "id": id(), "holder": nullable(S), "dropped": array(id()),
                }))),
            }),
        ),
        "claimed" => {
            let mut c = success(
                &["claimed"],
                &["id", "token", "lock_until", "lease_ms", "lease_left_ms"],
                json!({
                    "lease_ms": t(I),
                    "lease_left_ms": t(I),
                    "title": t(S),
                    "description": t(S),
                }),
            );
            c["allOf"] = json!([reference("lease")]);
            c
        }
        "already_held" => {
            let mut c = success(
                &["already_held"],
                &["lease_left_ms"],
                json!({"lease_left_ms": t(I)}),
            );
            c["allOf"] = json!([reference("lease")]);
            c
        }
        "mine" => success(
            &["mine"],
            &["count", "leases"],
            json!({
                "count": t(I),
                "leases": array(json!({"allOf": [reference("lease"), {
                    "properties": {"lease_left_ms": t(I)},
                }]})),
            }),
        ),
        "batch_claimed" => success(
            &["claimed"],
            &["leases"],
            json!({"leases": array(reference("lease"))}),
        ),
        "renewed" => {
            let mut r = success(
                &["renewed"],
                &["lease_left_ms"],
                json!({"lease_left_ms": t(I)}),
            );
            r["allOf"] = json!([reference("lease")]);
            r
        }
        "ended" => success(
            &[
                "released",
                "already_released",
                "forced",
                "done",
                "already_done",
            ],
            &["task"],
            json!({"task": reference("task"), "repeat": t(B)}),
        ),
        "reaped_item" => object(
            &["id", "agent", "fence", "lock_until"],
            json!({
                "id": id(), "agent": t(S), "fence": t(I), "lock_until": time(),
            }),
        ),
        "reaped" => success(
            &["reaped"],
            &["count", "reaped"],
            json!({
                "count": t(I),
                "reaped": array(reference("reaped_item")),
                "pruned": nullable(I),
            }),
        ),
        "reaped_one" => {
            let mut r = success(&["reaped"], &["id"], json!({}));
            r["allOf"] = json!([reference("reaped_item")]);
            r
        }
        "stopped" => success(
            &["stopped"],
            &["signal", "sweeps", "reaped", "pruned"],
            json!({"signal": t(S), "sweeps": t(I), "reaped": t(I), "pruned": t(I)}),
        ),
        "events" => success(
            &["listed"],
            &["count", "events"],
            json!({
                "count": t(I),
                "events": array(object(&["seq", "at", "task", "kind", "agent"], json!({
                    "seq": t(I),
                    "at": time(),
                    "at_ms": t(I),
                    "task": id(),
                    "kind": t(S),
                    "agent": t(S),
                    "fence": nullable(I),
                    "detail": nullable(S),
                    "reason": nullable(S),
                    "lease_ms": nullable(I),
                }))),
            }),
        ),
        "summary" => success(
            &["status"],
            &["now", "tasks", "total", "held"],
            json!({
                "now": time(),
                "tasks": {"type": "object", "additionalProperties": t(I)},
                "total": t(I),
                "held": array(t("object")),
                "near_expiry": t(I),
                "expired": t(I),
                "contention": t("object"),
                "leases": array(t("object")),
                "writer_turn": reference("writer_turn"),
            }),
        ),
        "writer_turn" => json!({"type": ["object", "null"], "properties": {
            "held": t(B), "holder": {}, "held_for_ms": nullable(I), "path": t(S),
        }}),
        "locks" => success(
            &["listed"],
            &["locks"],
            json!({
                "locks": array(object(&["name", "kind", "held"], json!({
                    "name": t(S),
                    "kind": {"enum": ["git", "state", "task"]},
                    "task": nullable(S),
                    "held": t(B),
                    "mode": nullable(S),
                    "holder": {},
                }))),
                "writer_turn": reference("writer_turn"),
            }),
        ),
        "ran" => success(
            &["ran"],
            &["lock", "command", "exit"],
            json!({
                "lock": t("object"),
                "command": array(t(S)),
                "exit": {"const": 0},
                "signal": {"type": "null"},
                "waited_ms": t(I),
                "stdout": nullable(S),
            }),
        ),
        "run" => success(
            &["done", "released"],
            &["id", "agent", "token", "exit"],
            json!({
                "id": id(),
                "agent": t(S),
                "token": reference("token"),
                "fence": t(I),
                "lease_ms": t(I),
                "renewals": t(I),
                "ran_ms": t(I),
                "child": {},
                "exit": {"const": 0},
            }),
        ),
        "migrated" => success(
            &["migrated", "current"],
            &["db", "from", "to", "backups"],
            json!({"db": t(S), "from": t(I), "to": t(I), "backups": array(t(S))}),
        ),
        "named" => success(&["named"], &["agent"], json!({"agent": t(S)})),
        "imported" => success(
            &["imported"],
            &["read", "created", "updated", "unchanged"],
            json!({
                "dry_run": t(B),
                "read": t(I),
                "created": t(I),
                "updated": t(I),
                "unchanged": t(I),
                "skipped": {"type": "object", "additionalProperties": array(t(S))},
            }),
        ),
        "exported" => success(
            &["exported"],
            &["tasks", "out"],
            json!({"tasks": t(I), "out": t(S)}),
        ),
        "measured" => success(
            &["measured"],
            &["backend", "verified"],
            json!({"backend": t(S), "verified": {"const": true}, "ratio": nullable("number")}),
        ),
        "written" => success(
            &["written"],
            &["dir", "pages"],
            json!({"dir": t(S), "pages": array(t(S))}),
        ),
        other => unreachable!("no schema definition {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/json/` holds exactly these schemas; `TASKLEASE_BLESS=1` rewrites them.
    #[test]
    fn docs_json_is_current() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/json");
        let bless = std::env::var_os("TASKLEASE_BLESS").is_some();
        let mut stale = Vec::new();
        for v in VERBS {
            let want = document(v.name).unwrap();
            let path = dir.join(format!("{}.json", v.name));
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &want).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
                stale.push(path.display().to_string());
            }
        }
        let mut listed: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
        listed.sort();
        let mut want: Vec<String> = VERBS.iter().map(|v| format!("{}.json", v.name)).collect();
        want.sort();
        assert_eq!(
            listed, want,
            "docs/json holds a schema of no verb, or lacks one"
        );
        assert!(
            stale.is_empty(),
            "out of date (run with TASKLEASE_BLESS=1 to rewrite): {stale:?}"
        );
    }

    /// Every reference resolves, and every schema is an object schema with the failure.
    #[test]
    fn schemas_are_self_contained() {
        for v in VERBS {
            let s = output(v.name).unwrap();
            let defs = s["$defs"].as_object().unwrap();
            for r in refs(&s) {
                assert!(defs.contains_key(&r), "{}: $ref {r} has no $defs", v.name);
            }
            assert_eq!(s["type"], "object");
            assert!(s["anyOf"].to_string().contains("#/$defs/failure"));
        }
    }
}
