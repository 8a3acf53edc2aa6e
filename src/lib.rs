//! hookline: a durable, authenticated webhook receiver for ChatBrick and liveDesk.
//!
//! Requests are authenticated on their raw bytes, decoded into typed events
//! ([`chatbrick::Event`], [`livedesk::Event`]), committed to the inbox ([`store`]) before the 2xx
//! goes back, and delivered to [`handlers::Handler`]s by dispatch with retries.
//!
//! Where a request becomes a stored event: each provider's folder under [`sources`] checks what
//! needs no body and hands `Intake::receive` (in `src/intake.rs`) a closure that authenticates and decodes
//! the body (for ChatBrick, `sources/chatbrick/mod.rs`); intake admits the request, reads the
//! body, calls the closure and commits the [`Envelope`] to the [`store`] before it answers.
//! `docs/architecture.md` follows a request through every module.
//!
//! Decoding a body yourself:
//!
//! ```
//! use hookline::{chatbrick, ProviderEvent};
//!
//! let body = br#"{"type":"store.created","data":{"store":{"id":"s1","name":"Taipei 101"},
//!     "timestamps":{"createdAt":"2024-06-18T18:18:18.000Z"},"timestampsMs":{"createdAt":"1718734698000"}}}"#;
//! let event = chatbrick::Event::decode(body).unwrap();
//! assert_eq!(event.event_type(), "store.created");
//! assert_eq!(event.key_ids().store.as_deref(), Some("s1"));
//!
//! // A type ChatBrick adds later is kept, not rejected.
//! let new = chatbrick::Event::decode(br#"{"type":"coupon.redeemed","data":{}}"#).unwrap();
//! assert!(matches!(new, chatbrick::Event::Other { .. }));
//! ```

#![warn(missing_docs)]

pub mod admin_client;
pub mod cli;
pub(crate) mod client_error;
pub mod config;
pub(crate) mod dispatch;
pub mod envelope;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod handlers;
pub(crate) mod inspector;
pub(crate) mod intake;
pub mod metrics;
mod rejection_log;
pub mod send;
pub mod server;
pub(crate) mod settings;
pub mod shutdown;
pub mod signature;
pub mod sources;
pub mod store;
pub(crate) mod writable;

pub use envelope::{Decoded, Envelope, ProviderEvent, Source};
pub use handlers::{Handler, HandlerError};
pub use sources::{chatbrick, livedesk};
