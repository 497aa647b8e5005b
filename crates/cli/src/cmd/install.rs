//! What a package or a person installs beside the binary: shell completions and man
//! pages, both generated from the one clap declaration ([`crate::args`]), so they can
//! never disagree with `--help`.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;
use tasklease::{Error, Result};

use crate::output::Report;

/// Writes the completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut c = without_hidden_verbs(crate::args::command());
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut c, "tasklease", &mut out);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .map_err(|e| Error::store("cannot write the completion script to stdout", e))
}

/// The command without its hidden verbs (`bench-worker`): clap_complete offers hidden
/// subcommands, and nobody should be offered one. clap cannot remove a subcommand, so
/// the top level is rebuilt with the visible ones.
fn without_hidden_verbs(c: clap::Command) -> clap::Command {
    let mut top = clap::Command::new(c.get_name().to_owned()).args(c.get_arguments().cloned());
    if let Some(v) = c.get_version() {
        top = top.version(v.to_owned());
    }
    if let Some(a) = c.get_about() {
        top = top.about(a.clone());
    }
    top.subcommands(c.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// Writes `tasklease.1` and one page per verb (`tasklease-claim.1`, `tasklease-dep-add.1`,
/// …) into `dir`, created if missing.
pub fn man(dir: &Path) -> Result<Report> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::store(format!("cannot create {}", dir.display()), e))?;
    let mut written = Vec::new();
    page(dir, crate::args::command(), "tasklease", &mut written)?;
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    Ok(Report::ok(
        json!({"ok": true, "outcome": "written", "dir": dir.display().to_string(),
               "pages": names}),
        format!("wrote {} man pages to {}", written.len(), dir.display()),
    ))
}

fn page(dir: &Path, cmd: clap::Command, name: &str, written: &mut Vec<PathBuf>) -> Result<()> {
    let cmd = cmd.name(name.to_owned());
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut buf)
        .map_err(|e| Error::store(format!("cannot render the man page {name}"), e))?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, buf)
        .map_err(|e| Error::store(format!("cannot write {}", path.display()), e))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        // clap's own `help` verb needs no page.
        if sub.get_name() == "help" {
            continue;
        }
        page(
            dir,
            sub.clone(),
            &format!("{name}-{}", sub.get_name()),
            written,
        )?;
    }
    Ok(())
}
