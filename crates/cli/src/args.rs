//! The command line, declared once with clap. Values are parsed straight into the
//! library's validated types, so a bad id or duration is refused before any database
//! is opened.

use clap::{ArgGroup, Args, Parser, Subcommand};
use tasklease::open::Synchronous;
use tasklease::{LeaseDuration, Priority, ReleaseTo, Status, Tag, TaskId, Token};

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
    #[arg(long, global = true, env = "TASKLEASE_DB", value_name = "PATH|URL")]
    pub db: Option<String>,

    /// Print exactly one JSON object on stdout
    #[arg(long, global = true)]
    pub json: bool,

    /// Agent name for display and history [default: $TASKLEASE_AGENT, else
    /// <$TASKLEASE_ROLE or agent>-<host>-<pid>]
    #[arg(long, global = true, value_name = "NAME")]
    pub agent: Option<String>,

    /// SQLite durability: normal survives crashes of any process, full also power loss
    #[arg(long, global = true, env = "TASKLEASE_SYNCHRONOUS", value_name = "MODE",
          value_parser = parse_sync, default_value = "normal")]
    pub synchronous: Synchronous,

    #[command(subcommand)]
    pub cmd: Cmd,
}

fn parse_sync(s: &str) -> Result<Synchronous, tasklease::Error> {
    s.parse()
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create .tasklease/ and its database in the project root
    Init,
    /// Add a task
    Add(AddArgs),
    /// List tasks, by priority then age
    List(ListArgs),
    /// Show one task
    Show {
        /// The task
        id: TaskId,
    },
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
    },
    /// Return every expired lease's task to todo, and list them
    Reap,
    /// Change a task's fields if it is still at the version you read
    Update(UpdateArgs),
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
    Mcp,
    /// Measure claims/s and latency with N agent processes on a fresh database
    Bench(BenchArgs),
    /// One benchmark agent process (started by `bench`)
    #[command(hide = true)]
    BenchWorker(BenchWorkerArgs),
}

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
    /// What each agent does: next (claim) or next-done (claim, then done)
    #[arg(long, default_value = "next")]
    pub mode: tasklease::bench::Mode,
    /// Also run the raw SQL baseline on a fresh database of the same kind, and print the ratio
    #[arg(long)]
    pub baseline: bool,
    /// Make every fifth task depend on the two before it
    #[arg(long)]
    pub deps: bool,
    /// Directory for the benchmark's SQLite files [default: a new temporary directory]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// Test the verifier: pretend a second agent also reported one claimed task
    #[arg(long, hide = true)]
    pub inject_double_claim: bool,
}

#[derive(Debug, Args)]
pub struct BenchWorkerArgs {
    #[arg(long)]
    pub mode: tasklease::bench::Mode,
    #[arg(long)]
    pub seconds: f64,
    /// Start time, epoch milliseconds, so all workers begin together
    #[arg(long)]
    pub start_at: u64,
    #[arg(long)]
    pub raw: bool,
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
    tasklease::time::parse_duration_ms(s)
        .map(|ms| std::time::Duration::from_millis(ms.unsigned_abs()))
        .map_err(|why| {
            tasklease::Error::invalid(
                "timeout",
                format!(
                    "{} is not a timeout: {why}; allowed: 0 (try once) or a number with a unit \
                     (ms, s, m, h, d), e.g. 500ms, 30s, 2m",
                    tasklease::id::quote(s)
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
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only tasks in this status (repeatable)
    #[arg(long = "status", short = 's', value_name = "STATUS")]
    pub statuses: Vec<Status>,
    /// Only tasks held by this agent
    #[arg(long)]
    pub assignee: Option<String>,
    /// Only tasks held by this process's agent id
    #[arg(long, conflicts_with = "assignee")]
    pub mine: bool,
    /// Only tasks with this tag
    #[arg(long)]
    pub tag: Option<Tag>,
    /// At most this many
    #[arg(long)]
    pub limit: Option<u32>,
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
}
