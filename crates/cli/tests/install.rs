//! What a person installs beside the binary, and how `--help` reads: completions for
//! each shell, a man page per verb, global options under their own heading, and no
//! `--json` where a verb prints no JSON.

mod common;

use std::process::Command;

use common::{Project, bin};

fn run(args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn global_options_are_listed_apart_from_a_verbs_own() {
    let out = run(&["update", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    let at = |s: &str| help.find(s).unwrap_or_else(|| panic!("no {s:?} in {help}"));
    let global = at("Global options:");
    // The verb's own options, then the global ones: --synchronous is no longer
    // between -d and -p.
    assert!(
        at("--description") < global && at("--priority") < global,
        "{help}"
    );
    for g in [
        "--db",
        "--json",
        "--agent",
        "--synchronous",
        "--busy-timeout",
    ] {
        assert!(at(g) > global, "{g} not under Global options: {help}");
    }
}

#[test]
fn verbs_that_print_no_json_do_not_offer_it() {
    for verb in ["mcp", "completions"] {
        let mut args = vec![verb];
        if verb == "completions" {
            args.push("bash");
        }
        args.push("--help");
        let help = text(&run(&args).stdout);
        assert!(help.contains("Global options:"), "{help}");
        assert!(!help.contains("--json"), "{verb} offers --json: {help}");
        args.pop();
        args.push("--json");
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{verb} --json");
        let err = text(&out.stderr);
        assert!(
            err.starts_with(&format!("tasklease: {verb} prints no JSON result")),
            "{err}"
        );
    }
    // Every other verb still offers it.
    assert!(text(&run(&["claim", "--help"]).stdout).contains("--json"));
}

#[test]
fn completions_for_every_shell_name_the_verbs() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for verb in ["claim", "renew", "dep", "import"] {
            assert!(script.contains(verb), "{shell} script lacks {verb}");
        }
        assert!(!script.contains("bench-worker"), "{shell}: a hidden verb");
    }
    // The bash script really registers a completion when sourced.
    let p = Project::new();
    let file = p.root().join("tasklease.bash");
    std::fs::write(&file, run(&["completions", "bash"]).stdout).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}' && complete -p tasklease",
            file.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("tasklease"),
        "{}",
        text(&out.stdout)
    );
    let out = run(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("bash"), "{}", text(&out.stderr));
}

#[test]
fn man_writes_a_page_per_verb() {
    let p = Project::new();
    let dir = p.root().join("man/man1");
    let v = p.json(&["man", dir.to_str().unwrap()], 0);
    let pages: Vec<String> = v["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    for name in [
        "tasklease",
        "tasklease-claim",
        "tasklease-dep-add",
        "tasklease-run",
    ] {
        let f = dir.join(format!("{name}.1"));
        assert!(
            pages.contains(&f.display().to_string()),
            "{name}: {pages:?}"
        );
        let page = std::fs::read_to_string(&f).unwrap();
        assert!(
            page.starts_with(".ie") || page.contains(".TH"),
            "{name}: {page}"
        );
        assert!(page.contains(name), "{name} does not name itself");
    }
    assert!(
        !dir.join("tasklease-bench-worker.1").exists(),
        "a hidden verb"
    );
    // A directory that cannot be made: runtime trouble, exit 1, said plainly.
    let blocker = p.root().join("file");
    std::fs::write(&blocker, "").unwrap();
    let out = p.run(&["man", blocker.join("sub").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("tasklease: cannot create"),
        "{}",
        text(&out.stderr)
    );
}
