//! `tasklease ui`: a live board for the people running a fleet of agents — which agent
//! holds what, whose lease is about to run out, what waits on what, what just happened
//! — served by the binary itself, with nothing to install and nothing fetched from the
//! internet.
//!
//! # Server-rendered pages, a small script for the live parts
//!
//! Every page is HTML rendered here with maud, which escapes every value it
//! interpolates: task titles and descriptions come from agents and are shown as text,
//! never as markup. The one script (`assets/board.js`, embedded with `include_str!`,
//! like the style sheet) does three things and no more: it listens to the live feed,
//! fetches the same server-rendered board again when the feed says something changed
//! and swaps it in (parsed as a separate document, so nothing the server did not
//! render runs), and counts lease ends down each second from the server's clock. The
//! script writes data into the page only through `textContent`. A Content Security
//! Policy allows scripts and styles from this server only, so even an escaping bug
//! could not run injected script. Without the script the pages still work; they are
//! just not live.
//!
//! # One store thread for pages, another for the feed
//!
//! Store calls block, so they run on [`AsyncStore`] threads: one serves the pages,
//! the API and the writes, in the order they arrive; the live feed ([`feed`]) polls on
//! a store of its own, so a slow board read never delays the feed, and on SQLite the
//! feed's connection sees the board's own writes like anyone else's.
//!
//! # Writes are off unless asked for
//!
//! With `--allow-writes` a person can force-release, cancel, re-prioritise and add
//! tasks. Each write needs the run's secret ([`guard`]): forms carry it in a hidden
//! field, scripts send it as `Authorization: Bearer`. A browser's `Origin` must be this
//! server, and the `Host` must be the address served, so neither another page open in
//! the same browser nor a DNS-rebinding site can act or read.

pub mod feed;
pub mod guard;
mod html;
mod read;
mod routes;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tasklease::asynchronous::AsyncStore;
use tasklease::{AgentId, Error, Result, Store};

pub use guard::Secret;

/// Variable setting which log lines reach stderr (`tracing` filter syntax; default
/// `warn`). No line ever carries the secret.
pub const LOG_VAR: &str = "TASKLEASE_LOG";

/// The address served when none is given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7777";

/// How the board is served.
#[derive(Clone, Debug)]
pub struct Config {
    /// The address bound (its port may be 0 until bound; [`serve`] takes the real one
    /// from the listener).
    pub listen: SocketAddr,
    /// Whether the write forms and endpoints are on.
    pub allow_writes: bool,
    /// What every write must present.
    pub secret: Secret,
    /// Who the board's writes are recorded as.
    pub agent: AgentId,
    /// How often the feed reads the store's stamp while a browser watches.
    pub poll: Duration,
    /// Done and cancelled tasks shown before the rest are collapsed.
    pub closed_shown: usize,
    /// Cards shown per open column before "more".
    pub column_page: usize,
    /// The store, as people would recognise it (a path, or a URL without password).
    pub db_display: String,
}

impl Config {
    /// A configuration with the defaults: writes off, a fresh secret, polling every
    /// 250 ms, 50 closed tasks and 100 cards per column shown.
    ///
    /// # Errors
    /// [`Error::Store`] when the system has no randomness for the secret.
    pub fn new(listen: SocketAddr, agent: AgentId) -> Result<Config> {
        Ok(Config {
            listen,
            allow_writes: false,
            secret: Secret::generate()?,
            agent,
            poll: Duration::from_millis(250),
            closed_shown: 50,
            column_page: 100,
            db_display: String::new(),
        })
    }
}

/// What every handler shares.
pub(crate) struct App {
    /// Pages, the API and writes, in the order they arrive.
    store: AsyncStore,
    /// The live feed.
    feed: feed::Feed,
    config: Config,
    /// Resolves when the server is shutting down, so live streams end and graceful
    /// shutdown does not wait on them for ever.
    stopping: tokio::sync::watch::Receiver<bool>,
}

/// The two store threads the board uses: one for pages and writes, one for the live
/// feed.
pub struct Stores {
    pages: AsyncStore,
    feed: AsyncStore,
}

impl Stores {
    /// Opens both with `open`, each on a thread of its own.
    ///
    /// # Errors
    /// What `open` fails with.
    pub async fn open(
        open: impl Fn() -> Result<Box<dyn Store>> + Send + Sync + 'static,
    ) -> Result<Stores> {
        let open = Arc::new(open);
        let again = open.clone();
        Ok(Stores {
            pages: AsyncStore::open(move || open()).await?,
            feed: AsyncStore::open(move || again()).await?,
        })
    }
}

/// Serves the board on `listener` until `shutdown` resolves.
///
/// # Errors
/// [`Error::Store`] when the listener fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    stores: Stores,
    mut config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    config.listen = listener
        .local_addr()
        .map_err(|e| Error::store("read the address served", e))?;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let feed = feed::Feed::start(stores.feed, config.poll, stopping.clone());
    let app = Arc::new(App {
        store: stores.pages,
        feed,
        config,
        stopping,
    });
    let router = routes::router(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await
        .map_err(|e| Error::store("serve the board", e))
}

/// Runs [`serve`] on a runtime of its own until Ctrl-C, with logging to stderr: the
/// CLI's `tasklease ui`. `ready` is called once the address is bound and the store
/// open, with the address.
///
/// # Errors
/// What `open` fails with; [`Error::Store`] when the address cannot be bound (in use,
/// not ours) or serving fails.
pub fn run_blocking(
    open: impl Fn() -> Result<Box<dyn Store>> + Send + Sync + 'static,
    config: Config,
    ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::store("cannot start the async runtime", e))?;
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::store(format!("cannot listen on {}", config.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::store("read the address served", e))?;
        // Opened before saying where to look, so a missing database is reported
        // instead of a board that cannot load.
        let stores = Stores::open(open).await?;
        ready(addr);
        serve(listener, stores, config, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    served
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env(LOG_VAR).unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
