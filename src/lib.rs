//! hookline: a durable, authenticated webhook receiver for ChatBrick and liveDesk.
//!
//! Requests are authenticated on their raw bytes, decoded into typed events
//! ([`chatbrick::Event`], [`livedesk::Event`]), committed to the inbox ([`store`]) before the 2xx
//! goes back, and delivered to [`handlers::Handler`]s by [`dispatch`] with retries.

pub mod admin_client;
pub mod config;
pub mod dispatch;
pub mod envelope;
pub mod handlers;
pub mod intake;
pub mod metrics;
pub mod send;
pub mod server;
pub mod shutdown;
pub mod signature;
pub mod sources;
pub mod store;

pub use envelope::{Envelope, Source, TypedEvent};
pub use handlers::{Handler, HandlerError};
pub use sources::{chatbrick, livedesk};
