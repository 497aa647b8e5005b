//! A long-running process's WAL checkpoints, on a thread of their own (when the store
//! uses the writer queue, whose turn the second pass needs).
//!
//! A checkpoint copies the WAL back into the database and syncs both files: a few
//! milliseconds, sometimes tens on a slow disk. Run after an operation on the caller's
//! thread (as it was), it was part of that operation: the agent that passed the mark
//! waited for the copy, the fsyncs and a turn of the writer queue — at 20 agents one
//! claim in ~600 (~43 checkpoints a second) took 5–15 ms, and those were most claims
//! over 10 ms. Here the caller
//! only signals, and this thread checkpoints through a connection of its own while
//! the caller goes on. What a checkpoint does is [`crate::checkpoint`]'s, unchanged.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags};

use crate::queue::{Patience, Queue};

/// The checkpointing thread of one store, started at its first request.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    path: PathBuf,
    /// The store's, without its hook: a checkpoint in the background waits silently.
    patience: Patience,
    /// `None` until started; taken (closing the channel) to stop the thread.
    requests: Option<SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// The thread could not start, or could not open the database: the caller
    /// checkpoints itself.
    failed: bool,
}

impl Checkpointer {
    /// For a store that uses the writer queue: the second pass of a checkpoint needs a
    /// turn, or the WAL never starts over while the store writes on.
    pub(crate) fn new(path: &Path, patience: Patience) -> Checkpointer {
        Checkpointer {
            path: path.to_owned(),
            patience: Patience {
                hook: None,
                ..patience
            },
            requests: None,
            thread: None,
            failed: false,
        }
    }

    /// Asks for a checkpoint without waiting for it. `false` if this thread cannot
    /// run it, and the caller should.
    pub(crate) fn request(&mut self) -> bool {
        if self.failed {
            return false;
        }
        if self.requests.is_none() {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let path = self.path.clone();
            let patience = self.patience.clone();
            match std::thread::Builder::new()
                .name("tasklease-checkpoint".into())
                .spawn(move || run(&path, patience, &rx))
            {
                Ok(thread) => {
                    self.requests = Some(tx);
                    self.thread = Some(thread);
                }
                Err(_) => {
                    self.failed = true;
                    return false;
                }
            }
        }
        let Some(requests) = &self.requests else {
            return false;
        };
        match requests.try_send(()) {
            // Full: a checkpoint is already asked for, and will copy these frames too.
            Ok(()) | Err(TrySendError::Full(())) => true,
            // The thread ended: it could not open the database.
            Err(TrySendError::Disconnected(())) => {
                self.failed = true;
                false
            }
        }
    }
}

impl Drop for Checkpointer {
    /// Stops the thread, after the checkpoint it is running (if any).
    fn drop(&mut self) {
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread: one checkpoint per request, until the store closes.
fn run(path: &Path, patience: Patience, requests: &Receiver<()>) {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let Ok(conn) = Connection::open_with_flags(path, flags) else {
        return;
    };
    // This connection commits nothing; like the store's, it must not checkpoint when
    // it closes (see `configure`), and syncs as the store's does.
    let setup = conn
        .set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"));
    if setup.is_err() {
        return;
    }
    let Ok(mut queue) = Queue::open(path, false, false, patience) else {
        return;
    };
    while requests.recv().is_ok() {
        crate::checkpoint(&conn, Some(&mut queue));
    }
}
