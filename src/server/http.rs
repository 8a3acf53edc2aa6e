//! Serving an axum router on a TCP listener: header-read timeout, connection info, the request-id
//! header, paths with secrets masked for logs, and graceful shutdown.

use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::shutdown::Shutdown;

/// Header carrying the request id, set on every response (and taken from the request when a
/// proxy already set one).
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The path as it may appear in logs: whatever follows a provider's secret path prefix (the
/// liveDesk URL token) replaced by `***`.
pub fn masked_path(path: &str, secret_prefixes: &[&str]) -> String {
    for prefix in secret_prefixes {
        if let Some(at) = path.find(prefix) {
            return format!("{}***", &path[..at + prefix.len()]);
        }
    }
    path.to_owned()
}

/// Serves `app` on `listener` until `shutdown`, then lets open requests finish for up to
/// `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    mut shutdown: Shutdown,
    grace: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        // The router, with the peer address attached for client-address resolution.
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {
            tracing::warn!("open connections did not finish within the grace period");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn livedesk_token_is_masked() {
        let secret = ["/webhooks/livedesk/"];
        assert_eq!(
            masked_path("/hooks/webhooks/livedesk/s3cret", &secret),
            "/hooks/webhooks/livedesk/***"
        );
        assert_eq!(
            masked_path("/webhooks/chatbrick/x", &secret),
            "/webhooks/chatbrick/x"
        );
    }
}
