//! Notices of due work from every replica, and whether the database is reachable.
//!
//! The schema's trigger sends `NOTIFY hookline_due, '<handler>'` in every transaction that makes
//! a delivery pending and due now (see `migrations/0001_inbox.sql`); PostgreSQL delivers it at
//! commit to every connection that listens. Each replica keeps one such connection, outside
//! the pool, and passes the handler names on to its dispatcher ([`Store::due_work`]), which
//! wakes that handler's worker: a delivery committed pending on one replica is picked up at
//! once by whichever has a free slot.
//!
//! The connection reconnects by itself, with a growing pause, when it is lost. While it is
//! down the database counts as unreachable ([`Store::is_available`], `/readyz`), and once it is
//! back every handler is woken, since notices sent in between were missed.
//!
//! [`Store::due_work`]: crate::store::Store::due_work
//! [`Store::is_available`]: crate::store::Store::is_available

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;

use super::error::describe;
use super::url::DatabaseUrl;
use crate::store::DueWork;

/// The channel the trigger notifies on.
const CHANNEL: &str = "hookline_due";
/// Notices kept for a dispatcher that is slow to read them; past it, it wakes every handler.
const BUFFER: usize = 1024;
/// First pause before reconnecting, doubled up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// Longest pause between attempts to reconnect.
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// The listening connection's task, the notices it passes on, and whether it is connected.
pub(super) struct Notices {
    /// Where notices go; every dispatcher subscribes.
    sender: broadcast::Sender<DueWork>,
    /// Whether the connection is up and listening.
    listening: Arc<AtomicBool>,
    /// The task; stopped when the store is dropped.
    task: JoinHandle<()>,
}

impl Notices {
    /// Starts listening on `url`, in a task that lives as long as the returned value.
    pub(super) fn start(url: DatabaseUrl) -> Result<Notices, String> {
        let tls = url.tls().connector()?;
        let (sender, _) = broadcast::channel(BUFFER);
        let listening = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(keep_listening(url, tls, sender.clone(), listening.clone()));
        Ok(Notices {
            sender,
            listening,
            task,
        })
    }

    /// A new subscription to the notices.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<DueWork> {
        self.sender.subscribe()
    }

    /// Whether the listening connection is up: the database is reachable.
    pub(super) fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }
}

impl Drop for Notices {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens, and reconnects whenever the connection is lost.
async fn keep_listening(
    url: DatabaseUrl,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    sender: broadcast::Sender<DueWork>,
    listening: Arc<AtomicBool>,
) {
    let mut pause = FIRST_PAUSE;
    let mut was_up = true;
    loop {
        let why = url.redact(&listen(&url, &tls, &sender, &listening).await);
        let came_up = listening.swap(false, Ordering::Relaxed);
        if came_up {
            pause = FIRST_PAUSE;
            tracing::warn!(error = %why, "lost the connection that listens for other replicas' notices; reconnecting");
        } else if was_up {
            tracing::warn!(error = %why, "cannot listen for other replicas' notices; retrying");
        } else {
            tracing::debug!(error = %why, "cannot listen for other replicas' notices; retrying");
        }
        was_up = came_up;
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Connects, listens and passes notices on until the connection ends; returns why it did.
async fn listen(
    url: &DatabaseUrl,
    tls: &tokio_postgres_rustls::MakeRustlsConnect,
    sender: &broadcast::Sender<DueWork>,
    listening: &AtomicBool,
) -> String {
    let (client, mut connection) = match url.driver().connect(tls.clone()).await {
        Ok(connected) => connected,
        Err(e) => return describe(&e),
    };
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    let command = format!("LISTEN {CHANNEL}");
    let subscribe = client.batch_execute(&command);
    tokio::pin!(subscribe);
    let mut subscribed = false;
    loop {
        tokio::select! {
            done = &mut subscribe, if !subscribed => match done {
                Ok(()) => {
                    subscribed = true;
                    listening.store(true, Ordering::Relaxed);
                    // Whatever was notified while this replica was not listening was missed.
                    let _ = sender.send(DueWork::AnyHandler);
                }
                Err(e) => return describe(&e),
            },
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(notice))) => {
                    // No receiver yet (the dispatcher has not started): nothing to wake.
                    let _ = sender.send(DueWork::Handler(notice.payload().to_owned()));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return describe(&e),
                None => return "the server closed the connection".into(),
            },
        }
    }
}
