//! Stored text is not terminal control (docs/security.md): input refuses the
//! characters a terminal acts on, and every human output escapes them whatever their
//! origin — including rows another client wrote by plain SQL, shown here under a real
//! pseudo-terminal.

mod common;

use common::Project;

/// Bad input: exit 2 naming the field and the character, and nothing written.
fn refused(p: &Project, args: &[&str], env: &[(&str, &str)], field: &str, code_point: &str) {
    let mut cmd = p.cmd(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(field), "{args:?} does not name {field}: {err}");
    assert!(
        err.contains(code_point),
        "{args:?} does not name {code_point}: {err}"
    );
    assert!(
        !err.contains(['\u{1b}', '\r', '\u{202e}', '\u{9b}']),
        "{args:?} echoed the character raw: {err:?}"
    );
}

each_store!(hostile_input_is_refused_naming_field_and_character);

fn hostile_input_is_refused_naming_field_and_character(p: &Project) {
    p.ok(&["add", "fine", "--id", "t1"]);
    refused(p, &["add", "a\u{202e}b"], &[], "title", "U+202E");
    refused(p, &["add", "a\u{1b}]0;x\u{7}"], &[], "title", "U+001B");
    refused(p, &["add", "a\tb"], &[], "title", "U+0009");
    refused(
        p,
        &["add", "t", "-d", "harmless\r  status done"],
        &[],
        "description",
        "U+000D",
    );
    refused(
        p,
        &["add", "t", "-d", "x\u{9b}2J"],
        &[],
        "description",
        "U+009B",
    );
    refused(
        p,
        &["add", "t", "-d", "x\u{2066}y"],
        &[],
        "description",
        "U+2066",
    );
    refused(p, &["add", "t", "--tag", "a\u{202e}"], &[], "tag", "U+202E");
    refused(
        p,
        &[
            "update",
            "t1",
            "--expect-version",
            "1",
            "--title",
            "x\u{202e}",
        ],
        &[],
        "title",
        "U+202E",
    );
    refused(
        p,
        &["claim", "t1", "--agent", "m\u{202e}e"],
        &[],
        "agent",
        "U+202E",
    );
    refused(
        p,
        &["claim", "t1"],
        &[("TASKLEASE_AGENT", "m\u{1b}e")],
        "agent",
        "U+001B",
    );
    // Nothing was written: the one task is still the only one, untouched.
    let v = p.json(&["list"], 0);
    let tasks = v["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{v}");
    assert_eq!(tasks[0]["title"], "fine");
    assert_eq!(tasks[0]["status"], "todo");
    // What stays allowed: several lines and tabs in a description.
    p.ok(&["add", "ok", "-d", "line one\n\tline two"]);
}
