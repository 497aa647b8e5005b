//! `tasklease`: the command-line front end. Parses arguments, runs one verb against the
//! library, prints one result (human text, or exactly one JSON object with `--json`),
//! and exits with a stable code (see [`exit`]).

mod args;
#[cfg(all(feature = "sqlite", feature = "postgres"))]
mod bench;
mod child;
mod cmd;
mod exit;
mod output;
mod signals;
mod table;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Before anything else: the re-exec `run` starts its command through.
    if let Some(code) = child::exec_if_asked() {
        return code;
    }
    let wants_json = std::env::args_os().skip(1).any(|a| a == "--json");
    let cli = match args::parse() {
        Ok(cli) => cli,
        Err(e) => return output::usage_error(e, wants_json),
    };
    let out = output::Output { json: cli.json };
    match &cli.cmd {
        args::Cmd::Mcp(_) | args::Cmd::Completions { .. } | args::Cmd::Ui(_) if cli.json => {
            let (verb, speaks) = match &cli.cmd {
                args::Cmd::Mcp(_) => ("mcp", "the MCP protocol"),
                args::Cmd::Ui(_) => ("ui", "the address it serves"),
                _ => ("completions", "a shell script"),
            };
            return out.error(&tasklease::Error::invalid(
                "--json",
                format!(
                    "{verb} prints no JSON result (it writes {speaks} on stdout); allowed: \
                     {verb} without --json"
                ),
            ));
        }
        args::Cmd::Mcp(a) => return cmd::mcp::run(&cli, a),
        args::Cmd::Ui(a) => return cmd::ui::run(&cli, a),
        args::Cmd::Completions { shell } => {
            return match cmd::install::completions(*shell) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => out.error(&e),
            };
        }
        _ => {}
    }
    match cmd::run(&cli) {
        Ok(report) => out.report(report),
        Err(e) => out.error(&e),
    }
}
