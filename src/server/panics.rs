//! A panic while a request is handled is a bug in hookline: the sender gets `500` (so that
//! ChatBrick retries; never for anything the client sent), the operator an error line and the
//! `hookline_panics_total` metric, and the connection stays usable for the next request.
//!
//! tower-http's `CatchPanicLayer` does the catching; this module decides the answer.

use std::any::Any;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tower_http::catch_panic::{CatchPanicLayer, ResponseForPanic};

/// The layer that turns a panic inside the router into a logged, counted 500.
pub fn layer() -> CatchPanicLayer<AnswerPanic> {
    CatchPanicLayer::custom(AnswerPanic)
}

/// Answers a caught panic: logs it (inside the request's span, so the line carries the request
/// id), counts it, and returns `500 {"error": "internal_error"}`.
#[derive(Debug, Clone, Copy)]
pub struct AnswerPanic;

impl ResponseForPanic for AnswerPanic {
    type ResponseBody = axum::body::Body;

    fn response_for_panic(
        &mut self,
        panic: Box<dyn Any + Send + 'static>,
    ) -> axum::http::Response<Self::ResponseBody> {
        tracing::error!(
            panic = message(panic.as_ref()),
            "request handling panicked (a bug in hookline); answered 500"
        );
        crate::metrics::panic();
        internal_error()
    }
}

/// The 500 a panicked request gets.
fn internal_error() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": "internal_error" })),
    )
        .into_response()
}

/// The panic's message, when it is text (what `panic!` with a message carries).
pub(super) fn message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_from_str_and_string_payloads() {
        assert_eq!(message(&"boom"), "boom");
        assert_eq!(message(&String::from("bang")), "bang");
        assert_eq!(message(&42u8), "(no message)");
    }
}
