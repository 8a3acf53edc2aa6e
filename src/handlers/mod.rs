//! What happens to an event after it is stored: the [`Handler`] trait and its built-in
//! implementations, one file each.

pub mod config;
pub mod file;
pub mod forward;
pub mod log;

use std::time::Duration;

use async_trait::async_trait;

use crate::envelope::Envelope;

/// Code that receives events: the built-in `log`, `forward` and `file` handlers, or yours.
///
/// Dispatch calls it once per delivery, at least once per event and route: after a crash or a
/// replay the same event may come again, with the same [`Envelope::id`], so that a handler that
/// must not act twice can dedupe on it. The trait is object-safe (`Arc<dyn Handler>`).
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles one event. `Ok` marks the delivery done; an error is retried or dead-lettered
    /// according to [`HandlerError::retryable`].
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError>;

    /// Whether intake may run this handler itself, while it handles the request and before it
    /// commits the event, and commit the delivery as already done: for handlers that finish in
    /// microseconds, wait for nothing and practically never fail (the `log` handler). It spares
    /// such a delivery the queue, its claim and a second write; its at-least-once guarantee
    /// holds because the provider sends again whatever was not acknowledged. The price: the
    /// handler also sees an event the provider sends again after it was stored (a duplicate,
    /// which is not delivered otherwise) and one whose commit then fails (answered 503). If it
    /// fails or panics at intake, the event is still stored, its delivery is committed as usual
    /// and dispatch retries it. Replays always go through dispatch.
    fn runs_at_intake(&self) -> bool {
        false
    }
}

/// Why a handler failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// What went wrong, for the inspector (never a secret).
    pub message: String,
    /// Whether a later attempt may succeed; `false` dead-letters at once.
    pub retryable: bool,
    /// HTTP status of the response, for handlers that speak HTTP.
    pub http_status: Option<u16>,
    /// The receiver's own `Retry-After`, honoured instead of the backoff when longer.
    pub retry_after: Option<Duration>,
}

impl HandlerError {
    /// A failure that a later attempt may not repeat (network, timeout, 5xx …).
    pub fn retryable(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            retryable: true,
            http_status: None,
            retry_after: None,
        }
    }

    /// A failure that will repeat however often it is tried (bad request, misconfiguration …).
    pub fn permanent(message: impl Into<String>) -> Self {
        HandlerError {
            retryable: false,
            ..HandlerError::retryable(message)
        }
    }
}
