//! `tasklease mcp`: the MCP server on stdin/stdout (see the `tasklease-mcp` crate).
//!
//! stdout belongs to the protocol, so nothing here prints to it: a failure to start
//! goes to stderr with the usual exit code, and a session that ends because the
//! client closed stdin exits 0.

use std::process::ExitCode;

use std::path::PathBuf;

use tasklease::open::{self, DbSpec};
use tasklease::{AgentId, project};
use tasklease_mcp::{Identity, Options, Server, Stores};

use super::Ctx;
use crate::args::{Cli, McpArgs};
use crate::exit::Exit;

pub fn run(cli: &Cli, a: &McpArgs) -> ExitCode {
    match serve(cli, a) {
        Ok(()) => Exit::Ok.into(),
        Err(e) => {
            crate::output::note!("tasklease: mcp: {e}");
            Exit::of(&e).into()
        }
    }
}

fn serve(cli: &Cli, a: &McpArgs) -> tasklease::Result<()> {
    let explicit = cli.agent.as_deref().map(AgentId::new).transpose()?;
    let identity = Identity::from_env(explicit)?;
    let cx = Ctx { cli };
    let options = cx.long_running_options();
    // Found afresh on every attempt, so a project `tasklease init` creates after the
    // server started is found too.
    let db = cli.db.clone();
    let cwd = std::env::current_dir()
        .map_err(|e| tasklease::Error::store("cannot read the current directory", e))?;
    let dir = project_dir(cli.db.as_deref()).unwrap_or_else(|| cwd.clone());
    let stores =
        Stores::open_with(move || open::open(&DbSpec::discover(db.as_deref(), &cwd)?, &options));
    let options = Options {
        reap: a.enable_reap,
        keep_alive: a.keep_alive,
    };
    tasklease_mcp::run_stdio(Server::with_options(stores, identity, Some(dir), options))
}

/// Where `locks` looks for the project when `--db` names a database file inside one:
/// the project holding the database. Clients such as Cursor do not start servers in
/// the workspace, and then the database path is what says which project is meant.
fn project_dir(db: Option<&str>) -> Option<PathBuf> {
    let DbSpec::Sqlite { path, .. } = DbSpec::parse(db.filter(|s| !s.is_empty())?) else {
        return None;
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    project::find_root(dir).map(|_| dir.to_path_buf())
}
