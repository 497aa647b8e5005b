//! Waking agents that wait for work: `LISTEN`/`NOTIFY` on a connection of its own.
//!
//! # Why
//!
//! An agent with nothing to claim waits for a task to become ready; the change that
//! makes one ready may be committed on another host. PostgreSQL delivers a `NOTIFY` to
//! every session `LISTEN`ing on its channel when — and only if — the transaction that
//! sent it commits. So every write that can make a task ready sends one in its own
//! statement or transaction (`done` of a task with dependants, `release` or a forced
//! release to `todo`, `reap`, an `update` to `todo`/`done`/`cancelled`, `add` of a
//! ready task, a dependency removed, a delete that dropped edges, an import:
//! `sql/notify.sql` and the `wake` CTEs), and a waiter sleeps on a connection of its own
//! that listens. Notifications of one transaction with the same payload are folded
//! into one, so a transaction costs one notification whatever it touched.
//!
//! The channel is named after the schema (`tasklease_ready_<md5 of the schema>`,
//! `sql/listen_channel.sql`): stores sharing a database do not wake each other.
//!
//! Every listener is woken by every notification: with twenty waiters, one ready task
//! costs twenty looks (a read each) and a claim by each waiter that saw it ready; all
//! but one find nothing and go back to sleep. `SKIP LOCKED` makes those claims cheap;
//! `bench --mode wait` measures what they cost.
//!
//! # Failure
//!
//! The listening connection runs on a thread of its own with its own runtime, so a
//! waiter blocks only on a channel. When the connection breaks (a server restart,
//! `pg_terminate_backend`, a network cut), the thread connects again — after 0.1 s,
//! doubling to 2 s between tries — and `LISTEN`s again; once it does, it wakes the
//! waiter, since a notification sent while nobody listened is lost. A waiter therefore
//! keeps waiting through a restart and looks as soon as the server is back. A
//! connection that goes silent without closing (a frozen server) is not noticed here:
//! the waiter's fallback look (`tasklease::wait`, every 30 s by default) and its own
//! statements' bounds cover it. The thread ends when the [`Listener`] is dropped.

use std::sync::mpsc;
use std::time::Duration;

use tasklease_core::{Error, ReadySignal, Result};
use tokio::sync::oneshot;
use tokio_postgres::{AsyncMessage, Config, NoTls};

use crate::conn::Target;
use crate::sql;

/// What the listening thread tells the waiter.
enum Msg {
    /// Listening: armed (sent once, first).
    Armed,
    /// A notification, or a reconnect after which one may have been missed.
    Wake,
    /// The first connection failed: the signal cannot be set up.
    Failed(Error),
}

/// A waiter's end: notifications from the listening thread.
pub(crate) struct Listener {
    rx: mpsc::Receiver<Msg>,
    /// Dropped with the listener, which ends the thread.
    _stop: oneshot::Sender<()>,
    display: String,
}

/// Starts listening; returns once `LISTEN` has taken effect (armed).
///
/// # Errors
/// As opening a connection: [`Error::Unavailable`] when the server cannot be reached
/// within the connect timeout, [`Error::Store`] for what it refused.
pub(crate) fn listen(target: &Target) -> Result<Listener> {
    let (tx, rx) = mpsc::channel();
    let (stop, stopped) = oneshot::channel();
    let config = target.config.clone();
    let within = target.connect_within;
    let display = target.display.clone();
    let shown = display.clone();
    std::thread::Builder::new()
        .name("tasklease-listen".into())
        .spawn(move || run(&config, within, &shown, &tx, stopped))
        .map_err(|e| Error::store("cannot start the listening thread", e))?;
    match rx.recv_timeout(within * 2 + Duration::from_secs(1)) {
        Ok(Msg::Armed | Msg::Wake) => Ok(Listener {
            rx,
            _stop: stop,
            display,
        }),
        Ok(Msg::Failed(e)) => Err(e),
        Err(_) => Err(Error::unavailable(
            format!("cannot listen for ready tasks at {display}"),
            "no answer within the connect timeout",
        )),
    }
}

fn run(
    config: &Config,
    within: Duration,
    display: &str,
    tx: &mpsc::Sender<Msg>,
    mut stopped: oneshot::Receiver<()>,
) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        let _ = tx.send(Msg::Failed(Error::store(
            "cannot listen for ready tasks",
            "cannot start a runtime",
        )));
        return;
    };
    rt.block_on(async move {
        let mut armed = false;
        let mut pause = Duration::from_millis(100);
        loop {
            let ended = tokio::select! {
                _ = &mut stopped => return,
                e = session(config, within, display, tx, armed) => e,
            };
            match ended {
                // The waiter is gone.
                Ok(()) => return,
                Err((e, was_armed)) => {
                    if !armed && !was_armed {
                        let _ = tx.send(Msg::Failed(e));
                        return;
                    }
                    if was_armed {
                        pause = Duration::from_millis(100);
                    }
                    armed = true;
                }
            }
            tokio::select! {
                _ = &mut stopped => return,
                () = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    });
}

/// One connection's life: connect, `LISTEN`, forward notifications. `Ok` when the
/// waiter is gone; else the error and whether it got as far as listening.
async fn session(
    config: &Config,
    within: Duration,
    display: &str,
    tx: &mpsc::Sender<Msg>,
    rearm: bool,
) -> std::result::Result<(), (Error, bool)> {
    let unavailable =
        |e: String| Error::unavailable(format!("cannot listen for ready tasks at {display}"), e);
    let (client, mut connection) = tokio::time::timeout(within, config.connect(NoTls))
        .await
        .map_err(|_| {
            (
                unavailable("no answer within the connect timeout".into()),
                false,
            )
        })?
        .map_err(|e| (unavailable(e.to_string()), false))?;
    let (note, mut notes) = tokio::sync::mpsc::unbounded_channel::<()>();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => {
                    if note.send(()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    let listen = async {
        let channel: String = client
            .query_one(sql::LISTEN_CHANNEL, &[])
            .await?
            .try_get(0)?;
        // The channel is hex digits and letters: quoting is enough.
        client.batch_execute(&format!("LISTEN \"{channel}\"")).await
    };
    let listened = tokio::time::timeout(within, listen).await;
    let failed = match listened {
        Err(_) => Some("no answer to LISTEN within the connect timeout".to_owned()),
        Ok(Err(e)) => Some(e.to_string()),
        Ok(Ok(())) => None,
    };
    if let Some(why) = failed {
        driver.abort();
        return Err((unavailable(why), false));
    }
    if tx.send(if rearm { Msg::Wake } else { Msg::Armed }).is_err() {
        driver.abort();
        return Ok(());
    }
    while notes.recv().await.is_some() {
        if tx.send(Msg::Wake).is_err() {
            driver.abort();
            return Ok(());
        }
    }
    drop(client);
    Err((unavailable("the listening connection closed".into()), true))
}

impl ReadySignal for Listener {
    fn wait(&mut self, timeout: Duration) -> Result<bool> {
        match self.rx.recv_timeout(timeout) {
            Ok(Msg::Wake) => {
                self.drain();
                Ok(true)
            }
            Ok(Msg::Armed) => Ok(false),
            Ok(Msg::Failed(e)) => Err(e),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(false),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::store(
                format!("cannot listen for ready tasks at {}", self.display),
                "the listening thread ended",
            )),
        }
    }

    fn drain(&mut self) -> bool {
        let mut any = false;
        while self.rx.try_recv().is_ok() {
            any = true;
        }
        any
    }

    fn pass_on(&self) {}

    fn wakes_one(&self) -> bool {
        false
    }

    fn describe(&self) -> String {
        format!("notifications (LISTEN) from {}", self.display)
    }
}
