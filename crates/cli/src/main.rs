//! `tasklease`: the command-line front end. Parses arguments, runs one verb against the
//! library, prints one result (human text, or exactly one JSON object with `--json`),
//! and exits with a stable code (see [`exit`]).

mod args;
mod child;
mod cmd;
mod exit;
mod output;
mod signals;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Before anything else: the re-exec `run` starts its command through.
    if let Some(code) = child::exec_if_asked() {
        return code;
    }
    let wants_json = std::env::args_os().skip(1).any(|a| a == "--json");
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return output::usage_error(e, wants_json),
    };
    if let args::Cmd::Mcp = cli.cmd {
        return cmd::mcp::run(&cli);
    }
    if let args::Cmd::Ui(a) = &cli.cmd {
        return cmd::ui::run(&cli, a);
    }
    let out = output::Output { json: cli.json };
    match cmd::run(&cli) {
        Ok(report) => out.report(report),
        Err(e) => out.error(&e),
    }
}
