//! The command line, declared once with clap. Values are parsed straight into the
//! library's validated types, so a bad id or duration is refused before any database
//! is opened.

use std::ffi::OsString;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand};
use tasklease::open::Synchronous;
use tasklease::{
    LeaseDuration, Priority, Reason, ReleaseTo, RequestId, Retention, Status, Tag, TaskId, Token,
};

use crate::exit;

/// Coordinate AI coding agents: claim tasks under fenced leases.
///
/// An agent claims a task (exactly one claimer wins), receives a fencing token, renews
/// the lease while it works, and finishes with `done` or `release`. A lease that runs
/// out makes the task claimable again; the old token is then refused.
#[derive(Debug, Parser)]
#[command(name = "tasklease", version, after_help = exit::TABLE)]
pub struct Cli {
    /// Database: a SQLite file path, or a PostgreSQL connection string (postgres://…
    /// URL or key=value pairs) [default: the project's .tasklease/tasklease.db, found
    /// from the current directory upwards]
    // The value may hold a password: help must not show it (docs/security.md).
    #[arg(
        long,
        global = true,
        help_heading = GLOBAL,
        env = "TASKLEASE_DB",
        hide_env_values = true,
        value_name = "PATH|URL"
    )]
    pub db: Option<String>,

    /// Print exactly one JSON object on stdout
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// Agent name for display and history [default: $TASKLEASE_AGENT, else
    /// <$TASKLEASE_ROLE or agent>-<host>-<pid>]
    #[arg(long, global = true, help_heading = GLOBAL, value_name = "NAME")]
    pub agent: Option<String>,

    /// SQLite durability: normal survives crashes of any process, full also power loss
    #[arg(long, global = true, help_heading = GLOBAL, env = "TASKLEASE_SYNCHRONOUS", value_name = "MODE",
          value_parser = parse_sync, default_value = "normal")]
    pub synchronous: Synchronous,

    /// How long a write waits for the database (SQLite: the writer queue's turn and
    /// the write lock; PostgreSQL: statement_timeout) before failing with exit 1, e.g.
    /// 500ms, 2s, 1m. After 1s of waiting, who holds the turn is printed on stderr
    #[arg(long, global = true, help_heading = GLOBAL, env = "TASKLEASE_BUSY_TIMEOUT", value_name = "DURATION",
          value_parser = parse_busy_timeout, default_value = "30s")]
    pub busy_timeout: Duration,

    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The heading global options are listed under in every verb's `--help`, apart from
/// the verb's own.
const GLOBAL: &str = "Global options";

/// Verbs that print no JSON (they speak a protocol, or write a script): `--json` is
/// neither offered in their help nor accepted.
pub const NO_JSON: &[&str] = &["mcp", "completions"];

/// The command line as parsed: [`Cli`]'s, with `--json` hidden where it does not apply.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut c = Cli::command();
    // A verb's own `json` shadows the global one (clap does not propagate a global to
    // a verb that has an argument of that id), hidden; its value still reaches
    // `Cli::json`, so main can refuse it.
    for verb in NO_JSON {
        c = c.mut_subcommand(*verb, |s| {
            s.arg(
                clap::Arg::new("json")
                    .long("json")
                    .action(clap::ArgAction::SetTrue)
                    .hide(true),
            )
        });
    }
    c
}

/// Parses the process's arguments.
pub fn parse() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let mut c = command();
    let m = c.try_get_matches_from_mut(std::env::args_os())?;
    Cli::from_arg_matches(&m).map_err(|e| e.with_cmd(&c))
}

fn parse_sync(s: &str) -> Result<Synchronous, tasklease::Error> {
    s.parse()
}

fn parse_busy_timeout(s: &str) -> Result<Duration, tasklease::Error> {
    tasklease::parse_wait("busy timeout", s)
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create .tasklease/ and its database in the project root (the git work tree or
    /// existing project around the current directory), or the database --db names
    Init {
        /// Make the current directory a project even though it is not in a git work
        /// tree or an existing project
        #[arg(long)]
        here: bool,
    },
    /// Add a task
    Add(AddArgs),
    /// List tasks, by priority then age
    List(ListArgs),
    /// Edit and inspect dependencies: `dep add TASK DEP…` (TASK waits on each DEP),
    /// `dep rm TASK DEP…`, `dep list TASK`
    #[command(subcommand)]
    Dep(DepCmd),
    /// Delete tasks (their ids are never reused)
    Rm(RmArgs),
    /// Show one task
    Show {
        /// The task
        id: TaskId,
    },
    /// Your live leases with their tokens (needs --agent or TASKLEASE_AGENT): how to find
    /// your way back after a restart
    Mine,
    /// Claim a task by id, a batch (all or nothing), or the next ready one
    Claim(ClaimArgs),
    /// Extend your lease (to now + --lease)
    Renew {
        /// The task
        id: TaskId,
        /// The token your claim returned
        #[arg(long)]
        token: Token,
        /// New lease length from now
        #[arg(long, default_value = "30m")]
        lease: LeaseDuration,
    },
    /// End your lease and hand the task back
    Release(ReleaseArgs),
    /// Finish a task you hold
    Done {
        /// The task
        id: TaskId,
        /// The token your claim returned
        #[arg(long)]
        token: Token,
        /// Why or how, in a few words (one line, at most 280 bytes): kept in the history
        #[arg(long)]
        reason: Option<Reason>,
    },
    /// Return every expired lease's task to todo, and list them; prune the history
    Reap(ReapArgs),
    /// Claim a task, run a command under its lease (renewed while it runs), and finish
    /// the task by how the command ends
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// The lease history: claims, renewals, releases, refusals, reaps
    Log(LogArgs),
    /// Tasks by status, who holds what, contention, and advice on lease lengths
    Status(StatusArgs),
    /// Change a task's fields if it is still at the version you read
    Update(UpdateArgs),
    /// Bring tasks in from exarp-go (.todo2/), beads (issues.jsonl) or a tasklease
    /// export, all or nothing, in one transaction; importing again changes nothing
    #[command(after_help = IMPORT_HELP)]
    Import(ImportArgs),
    /// Write every task as JSON Lines, one task a line, sorted by id (diffable; `import`
    /// reads it back)
    Export(ExportArgs),
    /// Bring the database schema up to date
    Migrate {
        /// Write a consistent copy of the database beside it first
        #[arg(long)]
        backup: bool,
    },
    /// Run a command holding a file lock, like flock(1); exits with the command's status
    Lock(LockArgs),
    /// List the project's file locks: free or held, how, and by whom
    Locks,
    /// Run git holding the repository-wide git lock (`lock git -- git ARGS…`)
    Git(GitArgs),
    /// Print the agent id this process would use
    AgentId,
    /// Serve the verbs as MCP tools on stdin/stdout, for AI coding agents (Claude Code,
    /// Cursor, …); runs until stdin closes
    Mcp(McpArgs),
    /// Serve a live web board of the tasks, their leases and the fleet (read-only
    /// unless --allow-writes); runs until Ctrl-C
    Ui(UiArgs),
    /// Print a shell completion script: `tasklease completions bash > …` (see the
    /// README, "Install")
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Write man pages, one for tasklease and one per verb (tasklease-claim.1, …),
    /// into DIR
    Man {
        /// The directory (created if missing)
        dir: std::path::PathBuf,
    },
    /// Measure claims/s and latency with N agent processes on a fresh database
    // The benchmark compares the stores and runs their raw SQL baselines: built with
    // both backends only.
    #[cfg(all(feature = "sqlite", feature = "postgres"))]
    Bench(BenchArgs),
    /// One benchmark agent process (started by `bench`)
    #[command(hide = true)]
    #[cfg(all(feature = "sqlite", feature = "postgres"))]
    BenchWorker(BenchWorkerArgs),
    /// One waiting agent process (started by `bench --mode wait`)
    #[command(hide = true)]
    #[cfg(all(feature = "sqlite", feature = "postgres"))]
    BenchWaiter(BenchWaiterArgs),
}

#[cfg(all(feature = "sqlite", feature = "postgres"))]
#[derive(Debug, Args)]
pub struct BenchWaiterArgs {
    /// wait (tasklease::wait), poll (claim --next, 100 ms sleep on nothing) or drain
    /// (claim --next, 1 ms sleep on nothing)
    #[arg(long)]
    pub how: String,
    #[arg(long)]
    pub seconds: f64,
    /// Also stop when stdin closes
    #[arg(long)]
    pub until_eof: bool,
    /// Finish each task with done_then_claim_next (as `run --loop` does) instead of
    /// done, then claim
    #[arg(long)]
    pub then_next: bool,
}

#[derive(Debug, Args)]
pub struct UiArgs {
    /// Where to serve: IP:PORT, localhost:PORT or PORT. Anything but loopback needs
    /// --token
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7777")]
    pub listen: String,
    /// Open the board in the default browser once it is served
    #[arg(long)]
    pub open: bool,
    /// Let people force-release, cancel, re-prioritise and add tasks from the board;
    /// each write needs the write token
    #[arg(long)]
    pub allow_writes: bool,
    /// The write token, chosen by you (at least 16 printable characters) instead of a
    /// fresh one printed at start; required to serve on anything but loopback
    #[arg(
        long,
        env = "TASKLEASE_UI_TOKEN",
        hide_env_values = true,
        value_name = "T"
    )]
    pub token: Option<String>,
}

#[cfg(all(feature = "sqlite", feature = "postgres"))]
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Agent processes
    #[arg(long, default_value_t = 4)]
    pub agents: usize,
    /// Tasks to fill the database with
    #[arg(long, default_value_t = 100_000)]
    pub tasks: u64,
    /// Length of the measured run
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
    /// What each agent does: next (claim) or next-done (claim, then done); or wait:
    /// measure waiting for work (wake latency, idle cost over --seconds, a chain of
    /// 1,000 tasks) against polling
    #[arg(long, default_value = "next")]
    pub mode: crate::bench::Mode,
    /// Also run the raw SQL baseline on a fresh database of the same kind, and print the ratio
    #[arg(long)]
    pub baseline: bool,
    /// Make every fifth task depend on the two before it
    #[arg(long)]
    pub deps: bool,
    /// Directory for the benchmark's SQLite files [default: a new temporary directory]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// Leave SQLite writers to its busy handler instead of tasklease's writer queue
    /// (for comparison)
    #[arg(long)]
    pub no_queue: bool,
    /// Test the verifier: pretend a second agent also reported one claimed task
    #[arg(long, hide = true)]
    pub inject_double_claim: bool,
}

#[cfg(all(feature = "sqlite", feature = "postgres"))]
#[derive(Debug, Args)]
pub struct BenchWorkerArgs {
    #[arg(long)]
    pub mode: crate::bench::Mode,
    #[arg(long)]
    pub seconds: f64,
    /// Start time, epoch milliseconds, so all workers begin together
    #[arg(long)]
    pub start_at: u64,
    #[arg(long)]
    pub raw: bool,
    #[arg(long)]
    pub no_queue: bool,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(subcommand)]
    pub target: LockTarget,
}

#[derive(Debug, Subcommand)]
pub enum LockTarget {
    /// The repository-wide git lock, shared by every worktree of the repository
    Git(LockRun),
    /// The project's state lock
    State(LockRun),
    /// One task's lock
    Task {
        /// The task id (a lock needs no task in the database)
        id: TaskId,
        #[command(flatten)]
        run: LockRun,
    },
    /// Any file (created if missing), to share a lock with other tools such as flock(1)
    Path {
        /// The lock file
        file: std::path::PathBuf,
        #[command(flatten)]
        run: LockRun,
    },
}

#[derive(Debug, Args)]
pub struct LockRun {
    /// Give up (exit 3) if the lock is still held after this long, e.g. 30s, 2m; 0 tries
    /// once [default: wait as long as it takes]
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// Hold it shared: shared holders run together; an exclusive request waits for all
    #[arg(long)]
    pub shared: bool,
    /// The command to run while holding the lock, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct GitArgs {
    /// Give up (exit 3) if the git lock is still held after this long; 0 tries once
    /// [default: wait as long as it takes]
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// Arguments for git
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "GIT ARGS"
    )]
    pub args: Vec<std::ffi::OsString>,
}

/// A wait: `0` (try once) or a duration like a lease's (`30s`, `2m`, `1h30m`).
fn parse_timeout(s: &str) -> Result<std::time::Duration, tasklease::Error> {
    if s.trim() == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    tasklease::parse_duration_ms(s)
        .map(|ms| std::time::Duration::from_millis(ms.unsigned_abs()))
        .map_err(|why| {
            tasklease::Error::invalid(
                "timeout",
                format!(
                    "{} is not a timeout: {why}; allowed: 0 (try once) or a number with a unit \
                     (ms, s, m, h, d), e.g. 500ms, 30s, 2m",
                    tasklease::text::quote(s)
                ),
            )
        })
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// One line saying what to do
    pub title: String,
    /// Task id [default: the next free T-<n>]
    #[arg(long)]
    pub id: Option<TaskId>,
    /// Longer text
    #[arg(long, short = 'd', default_value = "")]
    pub description: String,
    /// critical, high, medium or low
    #[arg(long, short = 'p', default_value = "medium")]
    pub priority: Priority,
    /// A label (repeatable)
    #[arg(long = "tag", short = 't', value_name = "TAG")]
    pub tags: Vec<Tag>,
    /// A task that must be done first (repeatable)
    #[arg(long = "dep", value_name = "ID")]
    pub deps: Vec<TaskId>,
    /// The task this one is part of (an epic); never blocks either way
    #[arg(long, value_name = "ID")]
    pub parent: Option<TaskId>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// The tasks; all are deleted or none
    #[arg(required = true, value_name = "ID")]
    pub ids: Vec<TaskId>,
    /// Also delete a task under a live lease (ending it) or one others wait on
    /// (dropping those dependencies)
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum DepCmd {
    /// Make TASK wait on each DEP (refused if that would make a cycle)
    Add {
        /// The task that waits
        task: TaskId,
        /// What it waits on
        #[arg(required = true, value_name = "DEP")]
        deps: Vec<TaskId>,
    },
    /// Stop TASK waiting on each DEP
    Rm {
        /// The task that waits
        task: TaskId,
        /// What it should no longer wait on
        #[arg(required = true, value_name = "DEP")]
        deps: Vec<TaskId>,
    },
    /// What TASK waits on (with each one's status) and what waits on it
    List {
        /// The task
        task: TaskId,
    },
}

const IMPORT_HELP: &str = "\
A directory is looked into for .todo2/todo2.db, .todo2/state.todo2.json,
.beads/issues.jsonl and issues.jsonl (the first found). The format is told from the
file unless --from says it. Tasks are upserted by id: one held by a live lease here is
left alone; one that was in progress in its source is imported as todo. The report
lists what was created, updated, unchanged and skipped, and every source field not
carried over, with counts. Field mappings: docs/import.md.";

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files or directories to import from
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<std::path::PathBuf>,
    /// The source format: exarp, beads or tasklease [default: told from the file]
    #[arg(long, value_name = "FORMAT")]
    pub from: Option<tasklease::import::From>,
    /// Print the report; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Drop dependencies on ids in neither the import nor the database, instead of
    /// waiting on blocked placeholders of those ids
    #[arg(long)]
    pub drop_missing_deps: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file (replaced whole, only once complete) [default: stdout]
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// Add each task's lease events (`history`)
    #[arg(long)]
    pub with_history: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only tasks in this status (repeatable)
    #[arg(long = "status", short = 's', value_name = "STATUS")]
    pub statuses: Vec<Status>,
    /// Only tasks held by this agent
    #[arg(long)]
    pub assignee: Option<String>,
    /// Only tasks held by you (--agent or TASKLEASE_AGENT; the per-process default name is refused)
    #[arg(long, conflicts_with = "assignee")]
    pub mine: bool,
    /// Only tasks with this tag
    #[arg(long)]
    pub tag: Option<Tag>,
    /// At most this many
    #[arg(long)]
    pub limit: Option<u32>,
    /// Only what `claim --next` would take, in the order it would take them (claims
    /// nothing)
    #[arg(long, conflicts_with_all = ["statuses", "assignee", "mine", "blocked"])]
    pub ready: bool,
    /// Only open tasks waiting on a dependency, each with what it waits on and why
    #[arg(long)]
    pub blocked: bool,
    /// Only the children of this task
    #[arg(long, value_name = "ID", conflicts_with_all = ["ready", "blocked"])]
    pub parent: Option<TaskId>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["ids", "next"])))]
pub struct ClaimArgs {
    /// Task ids; several claim all or none
    #[arg(value_name = "ID")]
    pub ids: Vec<TaskId>,
    /// Claim the highest-priority ready task instead
    #[arg(long, conflicts_with = "ids")]
    pub next: bool,
    /// Lease length
    #[arg(long, default_value = "30m")]
    pub lease: LeaseDuration,
    /// Your current token, to re-claim a task you hold (keeps the token)
    #[arg(long, conflicts_with = "next")]
    pub token: Option<Token>,
    /// A key that makes the claim safe to retry: repeated with the same key while its
    /// lease is live, the claim answers with that lease instead of claiming again
    /// (1-128 of A-Z a-z 0-9 . _ - :)
    #[arg(long, value_name = "K")]
    pub request_id: Option<RequestId>,
    /// With --next: when nothing is ready, wait up to this long for a task to become
    /// ready (woken by the change, not by polling), then claim it; exit 4 if none did.
    /// E.g. 30s, 10m
    #[arg(long, value_name = "DURATION", value_parser = parse_wait_for)]
    pub wait: Option<Duration>,
}

/// `--wait`: how long to wait for a ready task.
fn parse_wait_for(s: &str) -> Result<Duration, tasklease::Error> {
    tasklease::parse_wait("wait", s)
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The task
    pub id: TaskId,
    /// The token your claim returned
    #[arg(long, required_unless_present = "force")]
    pub token: Option<Token>,
    /// End whoever's lease it is, without a token (admin; recorded as forced)
    #[arg(long, conflicts_with = "token")]
    pub force: bool,
    /// Status to hand the task back in: todo, review or blocked
    #[arg(long, default_value = "todo")]
    pub status: ReleaseTo,
    /// Why, in a few words (one line, at most 280 bytes): kept in the history
    #[arg(long, conflicts_with = "force")]
    pub reason: Option<Reason>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The task
    pub id: TaskId,
    /// The version you read (tasklease show); the update is refused if it changed
    #[arg(long, value_name = "V")]
    pub expect_version: i64,
    /// The lease token, required while the task is under a live lease
    #[arg(long)]
    pub token: Option<Token>,
    /// New title
    #[arg(long)]
    pub title: Option<String>,
    /// New description
    #[arg(long, short = 'd')]
    pub description: Option<String>,
    /// New priority
    #[arg(long, short = 'p')]
    pub priority: Option<Priority>,
    /// New status (not in_progress: claim instead)
    #[arg(long, short = 's')]
    pub status: Option<Status>,
    /// Replace the tags (repeatable)
    #[arg(long = "tag", short = 't', value_name = "TAG")]
    pub tags: Vec<Tag>,
    /// Remove every tag
    #[arg(long, conflicts_with = "tags")]
    pub clear_tags: bool,
    /// Make this task part of ID (an epic); never blocks either way
    #[arg(long, value_name = "ID")]
    pub parent: Option<TaskId>,
    /// Make this task part of nothing
    #[arg(long, conflicts_with = "parent")]
    pub no_parent: bool,
}

const RUN_HELP: &str = "\
The command gets TASKLEASE_TASK_ID, TASKLEASE_TOKEN (the lease's secret token, for
done/release/renew), TASKLEASE_FENCE (its fence number, for fencing external writes)
and TASKLEASE_AGENT in its environment. It exits 0: the task is done. Non-zero: the task goes back to todo and
run exits with the command's status. Ctrl-C or SIGTERM: passed on to the command, the
task goes back to todo, exit 128+signal. A renewal that finds the lease lost (or none
that succeeds before the lease runs short) stops the command (SIGTERM, SIGKILL after
--grace) and exits 5. --next with nothing ready exits 4 and runs nothing.

With --loop, each task is finished or released as above — except that a task whose
command failed goes to blocked (a loop would otherwise take it again at once; `tasklease
update ID --status todo` offers it again) — and the next one claimed; the worker exits 0 once nothing is ready (after --wait, if given) or after
--max-tasks, with a summary of what each worker finished, released and failed.
Ctrl-C stops the running commands, releases their tasks and exits 128+signal.
A fleet of eight coding agents on a task graph:
  tasklease run --next --loop --jobs 8 --wait 10m -- ./agent.sh";

/// `mcp`'s arguments.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// Renew the leases this session claimed while the client stays connected (stops
    /// at disconnect, so a dead session's tasks still expire)
    #[arg(long)]
    pub keep_alive: bool,
    /// Offer the `reap` tool (hidden by default: agents never need it)
    #[arg(long)]
    pub enable_reap: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["id", "next"])))]
pub struct RunArgs {
    /// The task to claim
    pub id: Option<TaskId>,
    /// Claim the highest-priority ready task instead
    #[arg(long, conflicts_with = "id")]
    pub next: bool,
    /// Lease length; renewed every third of it while the command runs
    #[arg(long, default_value = "5m")]
    pub lease: LeaseDuration,
    /// How long a command being stopped gets between SIGTERM and SIGKILL
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_grace)]
    pub grace: Span,
    #[command(flatten)]
    pub keep: KeepArgs,
    /// With --next: after each task, claim and run the next, until nothing is ready
    /// (after --wait) or --max-tasks
    #[arg(long = "loop")]
    pub repeat: bool,
    /// With --next: when nothing is ready, wait up to this long for a task to become
    /// ready (woken by the change, not by polling); with --loop, exit 0 when none did
    #[arg(long, value_name = "DURATION", value_parser = parse_wait_for)]
    pub wait: Option<Duration>,
    /// With --loop: stop after this many tasks in all
    #[arg(long, value_name = "N")]
    pub max_tasks: Option<u64>,
    /// With --loop: run N workers side by side, agents NAME-1 … NAME-N, each with its
    /// own leases; their output lines are prefixed with the agent
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub jobs: u32,
    /// The command and its arguments, after --
    #[arg(last = true, required = true, value_name = "CMD")]
    pub cmd: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ReapArgs {
    /// Keep sweeping every DURATION until Ctrl-C or SIGTERM, printing each reaped lease
    /// as it goes (with --json: one JSON object per line)
    #[arg(long, value_name = "DURATION", value_parser = parse_every)]
    pub every: Option<Span>,
    #[command(flatten)]
    pub keep: KeepArgs,
}

/// How much lease history to keep; `reap` and `run` enforce it.
#[derive(Debug, Args)]
pub struct KeepArgs {
    /// Keep at most this many of the latest history events, or all
    #[arg(long, env = "TASKLEASE_KEEP_EVENTS", default_value = "100000",
          value_name = "N|all", value_parser = parse_keep_events)]
    pub keep_events: Bound<u64>,
    /// Drop history events older than this, or keep all
    #[arg(long, env = "TASKLEASE_KEEP_FOR", default_value = "90d",
          value_name = "DURATION|all", value_parser = parse_keep_for)]
    pub keep_for: Bound<i64>,
}

impl KeepArgs {
    pub fn retention(&self) -> Retention {
        Retention {
            max_events: self.keep_events.0,
            max_age_ms: self.keep_for.0,
        }
    }
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only this task's events
    pub id: Option<TaskId>,
    /// At most this many, the latest
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// How many of the latest history events contention and hold times come from
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub window: u32,
    /// List every held task, not only the nearest expiries (--json always has all)
    #[arg(long)]
    pub all: bool,
}

/// A length of time from the command line, e.g. `500ms`, `10s`, `1m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub Duration);

/// A limit that may be off (`all`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound<T>(pub Option<T>);

fn span(field: &'static str, s: &str) -> Result<i64, tasklease::Error> {
    tasklease::parse_duration_ms(s).map_err(|why| {
        tasklease::Error::invalid(
            field,
            format!(
                "{} is not a duration: {why}; allowed: a number with a unit (ms, s, m, h, d), \
                 e.g. 500ms, 10s, 1m",
                tasklease::text::quote(s)
            ),
        )
    })
}

fn parse_grace(s: &str) -> Result<Span, tasklease::Error> {
    Ok(Span(Duration::from_millis(
        span("grace", s)?.unsigned_abs(),
    )))
}

fn parse_every(s: &str) -> Result<Span, tasklease::Error> {
    match span("every", s)? {
        0 => Err(tasklease::Error::invalid(
            "every",
            "a sweep interval of 0 would never rest; allowed: a positive duration, e.g. 1m",
        )),
        ms => Ok(Span(Duration::from_millis(ms.unsigned_abs()))),
    }
}

fn parse_keep_events(s: &str) -> Result<Bound<u64>, tasklease::Error> {
    if s == "all" {
        return Ok(Bound(None));
    }
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Bound(Some(n))),
        _ => Err(tasklease::Error::invalid(
            "keep-events",
            format!(
                "{} is not a number of events to keep; allowed: a positive integer, or all",
                tasklease::text::quote(s)
            ),
        )),
    }
}

fn parse_keep_for(s: &str) -> Result<Bound<i64>, tasklease::Error> {
    if s == "all" {
        return Ok(Bound(None));
    }
    match span("keep-for", s)? {
        0 => Err(tasklease::Error::invalid(
            "keep-for",
            "keeping 0s of history would erase it; allowed: a positive duration, e.g. 30d, or all",
        )),
        ms => Ok(Bound(Some(ms))),
    }
}
