//! `tasklease mcp`: the tasklease verbs as MCP tools, served over stdio to an AI
//! coding agent (Claude Code, Cursor, Codex, …), on the official Rust SDK (rmcp).
//!
//! # One library, two front ends
//!
//! The server is a thin layer over the same library as the CLI: each tool parses its
//! arguments into the core's validated types, makes one [`Store`] call, and answers
//! with the object `tasklease <verb> --json` prints (built by `tasklease_shape::json`, so the
//! two cannot drift). Refusals — held by another agent, lease lost, nothing ready, bad
//! arguments — are tool errors (`isError: true`) carrying the same fields plus a
//! sentence telling the model what to do next; the server keeps serving after any of
//! them. rmcp types stay inside this crate: rmcp changes often (three major versions in
//! 2026), and the CLI only calls [`run_stdio`].
//!
//! # Who the caller is
//!
//! A stdio server has exactly one client: the process that started it. Its agent id
//! is, in order: the call's `agent` argument; `--agent` given to `tasklease mcp`;
//! `$TASKLEASE_AGENT` set in the server's environment (the client's `env` for it: the
//! user's choice wins over the client's self-reported name); else
//! `<client name>-<host>-<project hash>`, from the name the client sent in
//! `initialize` and a short hash of the project directory — no process id, so a
//! restarted server (a restarted agent) has the same name and `mine` finds its leases;
//! without a client name, `agent-<host>-<project hash>`. Two sessions of one client in
//! one project share that default name: give each its own `TASKLEASE_AGENT` (README).
//! Authority over a task is the token its claim returned, which renew, release and
//! done require; a name lets its user find those tokens again (`mine`).
//!
//! # Store threads per session, writes in the order sent, reads never stuck
//!
//! Store calls block, and the PostgreSQL store must never be called or dropped inside
//! the async runtime, so a session's stores live in
//! [`tasklease::asynchronous::AsyncStore`]s: each created, used and dropped on a thread
//! of its own, running calls one at a time in the order queued. There are two: one
//! for writes and one for reads ([`Stores::reads`]), so a read is never queued behind a
//! write stuck on the database's writer turn. rmcp runs each request as its own task,
//! so the transport numbers tool calls as they are read (`order.rs`); a write keeps its
//! turn until it has finished, so writes apply in the order sent and a read sees every
//! write sent before it (`add X` sent right before `claim X` is applied first), while a
//! read passes its turn as it starts. `notifications/cancelled` aborts a call at once
//! and passes its turn; a write already handed to its store cannot be withdrawn and
//! may still take effect. `ping` is answered by rmcp directly, never queued.
//!
//! # Serving before the project exists
//!
//! A client starts the server when the editor opens, perhaps before `tasklease init`
//! ran. The server does not fail then: the store is opened on the first call that
//! needs it, and until that succeeds every tool answers with the error naming
//! `tasklease init` ([`Stores`]). Once the database exists the next call uses it,
//! without restarting the client.
//!
//! # Testing
//!
//! [`serve`] takes its reader and writer as parameters, and a [`Server`] made from a
//! store ([`Stores`]), so tests run the server in-process over an in-memory pipe, and `crates/cli/tests/mcp.rs` holds a real MCP
//! exchange with the built binary.

mod args;
mod keep;
mod order;
mod reply;
mod tools;
mod transport;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::service::{QuitReason, ServerInitializeError, serve_server};
use tasklease::asynchronous::AsyncStore;
use tasklease::{AgentId, Error, Result, Store};
use tokio::io::{AsyncRead, AsyncWrite};

pub use tools::{INSTRUCTIONS, Options, QUICKSTART_URI, Server, WORKFLOW_PROMPT};
pub use transport::MAX_LINE;
use transport::{LineReader, LineTransport, Lines};

/// Variable setting which log lines reach stderr (`tracing` filter syntax; default
/// `warn`). stdout carries only the protocol.
pub const LOG_VAR: &str = "TASKLEASE_LOG";

/// Opens a store; called again after each failure.
type Opener = Arc<dyn Fn() -> Result<Box<dyn Store>> + Send + Sync>;

/// Where the tools find their store.
pub struct Stores {
    /// How to open the store; `None` when it was handed over open.
    open: Option<Opener>,
    /// A store handed over open, until the first call moves it to its own thread.
    given: Mutex<Option<Arc<dyn Store>>>,
    /// The store once open, on its own thread ([`AsyncStore`]): created, used and
    /// dropped there, never in the async runtime — the PostgreSQL store must not be —
    /// and its calls run one at a time in the order queued. Empty until a call first
    /// opens it, so a database created after the server started is picked up; the
    /// lock also keeps two first calls from opening (and migrating) it twice at once.
    store: tokio::sync::Mutex<Option<AsyncStore>>,
    /// A second store for reads, opened by `open` as well, so that a read is never
    /// queued behind a slow write (a claim waiting for the database's writer turn).
    /// Empty until first used; a store handed over open serves reads itself.
    reads: tokio::sync::Mutex<Option<AsyncStore>>,
}

impl Stores {
    /// A store opened by `open` on the first call that needs it, and again on later
    /// calls for as long as opening fails.
    pub fn open_with(open: impl Fn() -> Result<Box<dyn Store>> + Send + Sync + 'static) -> Stores {
        Stores {
            open: Some(Arc::new(open)),
            given: Mutex::new(None),
            store: tokio::sync::Mutex::new(None),
            reads: tokio::sync::Mutex::new(None),
        }
    }

    /// A store already open.
    pub fn ready(store: Arc<dyn Store>) -> Stores {
        Stores {
            open: None,
            given: Mutex::new(Some(store)),
            store: tokio::sync::Mutex::new(None),
            reads: tokio::sync::Mutex::new(None),
        }
    }

    /// The store, opening it if need be.
    ///
    /// # Errors
    /// Whatever opening it fails with, e.g. [`Error::Invalid`] naming `tasklease init`
    /// when the project has no database yet; [`Error::Store`] when its thread cannot
    /// start.
    pub async fn get(&self) -> Result<AsyncStore> {
        let mut slot = self.store.lock().await;
        if let Some(s) = &*slot {
            return Ok(s.clone());
        }
        let given = self
            .given
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let store = match (given, &self.open) {
            (Some(store), _) => AsyncStore::new(store)?,
            (None, Some(open)) => {
                let open = open.clone();
                AsyncStore::open(move || open()).await?
            }
            (None, None) => return Err(Error::store("no store", "the store was never given")),
        };
        *slot = Some(store.clone());
        Ok(store)
    }
}

impl Stores {
    /// The store reads go to: one of their own when the store is opened here, else
    /// the one store.
    ///
    /// # Errors
    /// As [`Stores::get`].
    pub async fn reads(&self) -> Result<AsyncStore> {
        let Some(open) = &self.open else {
            return self.get().await;
        };
        let mut slot = self.reads.lock().await;
        if let Some(s) = &*slot {
            return Ok(s.clone());
        }
        let open = open.clone();
        let store = AsyncStore::open(move || open()).await?;
        *slot = Some(store.clone());
        Ok(store)
    }
}

/// How the server names the agent calling it, when a call does not say.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    /// `--agent` given to the server: used over the client's own name.
    pub explicit: Option<AgentId>,
    /// `$TASKLEASE_AGENT`: used over the client's own name.
    pub env: Option<AgentId>,
    /// The project directory, hashed into the default name (`None`: the current
    /// directory).
    pub place: Option<std::path::PathBuf>,
}

impl Identity {
    /// `explicit`, with `$TASKLEASE_AGENT` read now.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `$TASKLEASE_AGENT` is not a valid agent id.
    pub fn from_env(explicit: Option<AgentId>) -> Result<Identity> {
        let env = std::env::var(tasklease::identity::AGENT_VAR)
            .ok()
            .filter(|a| !a.is_empty())
            .map(|a| AgentId::new(&a))
            .transpose()?;
        Ok(Identity {
            explicit,
            env,
            place: None,
        })
    }

    /// The agent id for a caller whose client announced itself as `client`.
    ///
    /// # Errors
    /// [`Error::Invalid`] only if no valid id can be made (an over-long role).
    pub fn resolve(&self, client: Option<&str>) -> Result<AgentId> {
        if let Some(a) = self.explicit.as_ref().or(self.env.as_ref()) {
            return Ok(a.clone());
        }
        let place = match &self.place {
            Some(p) => p.clone(),
            None => std::env::current_dir().unwrap_or_default(),
        };
        let name = match client.map(str::trim).filter(|n| !n.is_empty()) {
            // Short enough that name, host and hash fit in an id.
            Some(name) => name.chars().take(40).collect(),
            None => "agent".to_owned(),
        };
        tasklease::identity::stable(&name, &place)
    }
}

/// Serves `server` for one MCP session: reads newline-delimited JSON-RPC from `reader`, answers on
/// `writer`, and returns once `reader` ends (after answering the requests already
/// read) — with `Ok` when the client simply hung up.
///
/// Messages other than requests sent before `initialize` are ignored, and malformed
/// lines are answered with a JSON-RPC error; neither ends the session.
///
/// # Errors
/// [`Error::Store`] when writing to `writer` fails or the session's task fails.
pub async fn serve<R, W>(reader: R, writer: W, server: Server) -> Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let reader = Arc::new(tokio::sync::Mutex::new(LineReader::new(reader)));
    let turns = order::Turnstile::new();
    let (lines, writer_task) = Lines::start(writer);
    // `--keep-alive`: renews this session's leases until the session ends, and not a
    // moment longer (see `keep.rs`).
    let keeper = server
        .options()
        .keep_alive
        .then(|| tokio::spawn(keep::run(server.clone())));
    let session = loop {
        let transport = LineTransport {
            reader: reader.clone(),
            lines: lines.clone(),
            turns: turns.clone(),
        };
        match serve_server(server.clone(), transport).await {
            Ok(running) => break running.waiting().await,
            Err(ServerInitializeError::ConnectionClosed(_)) => break Ok(QuitReason::Closed),
            Err(ServerInitializeError::ExpectedInitializeRequest(m)) => {
                // rmcp gives up on a session whose first message is not a request; a
                // stray notification must not end the server, so start the handshake
                // over on the same stream.
                tracing::warn!("ignoring a message sent before initialize: {m:?}");
            }
            Err(e) => {
                drop(lines);
                let _ = writer_task.await;
                return Err(Error::store("the MCP handshake failed", e));
            }
        }
    };
    if let Some(k) = keeper {
        k.abort();
    }
    drop(lines);
    let written = writer_task
        .await
        .map_err(|e| Error::store("the MCP writer failed", e))?;
    match written {
        // The client closed our stdout on its way out: nothing left to say.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(Error::store("cannot write to the MCP client", e)),
        Ok(()) => {}
    }
    match session {
        Ok(QuitReason::JoinError(e)) | Err(e) => Err(Error::store("the MCP session failed", e)),
        Ok(_) => Ok(()),
    }
}

/// Runs the server on this process's stdin and stdout until stdin ends: what
/// `tasklease mcp` does. Log lines go to stderr, filtered by [`LOG_VAR`].
///
/// The store is opened once up front only to warn on stderr when it cannot be; the
/// server starts either way (see [`Stores`]).
///
/// # Errors
/// As [`serve`]; [`Error::Store`] when the async runtime cannot start.
pub fn run_stdio(server: Server) -> Result<()> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::store("cannot start the async runtime", e))?;
    let done = runtime.block_on(async {
        if let Err(e) = server.store().await {
            tracing::warn!("{e}; every tool will answer with this error until it is fixed");
        }
        let (stdin, stdout) = rmcp::transport::stdio_pipes();
        serve(stdin, stdout, server).await
    });
    // A read of stdin still blocked in the runtime's thread pool must not hold the
    // process open once the session is over.
    runtime.shutdown_timeout(Duration::from_millis(100));
    done
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env(LOG_VAR).unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
