//! One module per verb. Each turns parsed arguments into library calls and a
//! [`Report`]; none prints directly.

#[cfg(all(feature = "sqlite", feature = "postgres"))]
mod bench;
#[cfg(all(feature = "sqlite", feature = "postgres"))]
mod bench_wait;
mod claim;
mod dep;
mod export;
mod history;
mod import;
pub mod install;
mod lease;
mod lock;
pub mod mcp;
mod run;
mod tasks;
pub mod ui;

use tasklease::open::{self, DbSpec, OpenOptions, WaitHook};
use tasklease::{AgentId, Result, Store};

use crate::args::{Cli, Cmd};
use crate::output::Report;

/// What every verb may need, resolved lazily so bad input is refused before any
/// database is touched.
pub struct Ctx<'a> {
    pub cli: &'a Cli,
}

impl Ctx<'_> {
    pub fn spec(&self) -> Result<DbSpec> {
        let cwd = std::env::current_dir()
            .map_err(|e| tasklease::Error::store("cannot read the current directory", e))?;
        DbSpec::discover(self.cli.db.as_deref(), &cwd)
    }

    pub fn options(&self) -> OpenOptions {
        OpenOptions::default()
            .synchronous(self.cli.synchronous)
            .busy_timeout(self.cli.busy_timeout)
            // Long-running verbs open their store with `one_shot: false`.
            .one_shot(true)
            // stderr, never stdout: stdout carries the one result (or MCP's protocol).
            .on_wait(Some(WaitHook::new(|w| eprintln!("tasklease: {w}"))))
            // A bad --agent is refused by the verb that uses it; the record just says less.
            .agent(self.agent().ok())
    }

    /// Options for a verb that stays up and keeps using its store (`mcp`, `run`,
    /// `reap --every`, bench agents): it combines claims through the writer queue and
    /// checkpoints the WAL less often.
    pub fn long_running_options(&self) -> OpenOptions {
        self.options().one_shot(false)
    }

    pub fn store(&self) -> Result<Box<dyn Store>> {
        open::open(&self.spec()?, &self.options())
    }

    pub fn agent(&self) -> Result<AgentId> {
        tasklease::identity::agent_id(self.cli.agent.as_deref())
    }

    /// The agent id given by `--agent` or `TASKLEASE_AGENT`, for `what` (a verb that
    /// looks up what "I" hold); the per-process default is refused (exit 2).
    pub fn named_agent(&self, what: &str) -> Result<AgentId> {
        tasklease::identity::named_agent_id(self.cli.agent.as_deref(), what)
    }
}

pub fn run(cli: &Cli) -> Result<Report> {
    let cx = Ctx { cli };
    match &cli.cmd {
        Cmd::Init { here } => tasks::init(&cx, *here),
        Cmd::Add(a) => tasks::add(&cx, a),
        Cmd::List(a) => tasks::list(&cx, a),
        Cmd::Dep(d) => dep::run(&cx, d),
        Cmd::Rm(a) => dep::rm(&cx, a),
        Cmd::Show { id } => tasks::show(&cx, id),
        Cmd::Mine => lease::mine(&cx),
        Cmd::Update(a) => tasks::update(&cx, a),
        Cmd::Import(a) => import::run(&cx, a),
        Cmd::Export(a) => export::run(&cx, a),
        Cmd::Migrate { backup } => tasks::migrate(&cx, *backup),
        Cmd::AgentId => tasks::agent_id(&cx),
        Cmd::Lock(a) => lock::lock(&cx, a),
        Cmd::Locks => lock::locks(&cx),
        Cmd::Git(a) => lock::git(&cx, a),
        Cmd::Claim(a) => claim::run(&cx, a),
        Cmd::Renew { id, token, lease } => lease::renew(&cx, id, token, *lease),
        Cmd::Release(a) => lease::release(&cx, a),
        Cmd::Done { id, token, reason } => lease::done(&cx, id, token, reason.as_ref()),
        Cmd::Reap(a) => lease::reap(&cx, a),
        #[cfg(all(feature = "sqlite", feature = "postgres"))]
        Cmd::Bench(a) => bench::run(&cx, a),
        #[cfg(all(feature = "sqlite", feature = "postgres"))]
        Cmd::BenchWorker(a) => bench::worker(&cx, a),
        #[cfg(all(feature = "sqlite", feature = "postgres"))]
        Cmd::BenchWaiter(a) => bench_wait::waiter(&cx, a),
        // Served from main: they own stdout (the protocol, the script) and report nothing
        // there.
        Cmd::Mcp(_) => unreachable!("`tasklease mcp` is run by main"),
        Cmd::Completions { .. } => unreachable!("`tasklease completions` is run by main"),
        Cmd::Ui(_) => unreachable!("`tasklease ui` is run by main"),
        Cmd::Man { dir } => install::man(dir),
        Cmd::Run(a) => run::run(&cx, a),
        Cmd::Log(a) => history::log(&cx, a),
        Cmd::Status(a) => history::status(&cx, a),
    }
}
