//! Why an HTTP request of the command line (`hookline send`, `hookline events`, …) failed, in
//! words an operator can act on: "connection refused" said plainly, with what usually causes it;
//! otherwise the whole chain of causes (reqwest's own message names none). Never the URL's
//! path or query: a liveDesk URL carries its secret token there.

use std::error::Error as _;

/// Describes a failed request to `url`, naming only its origin (scheme, host, port).
pub fn describe(error: &reqwest::Error, url: &str) -> String {
    let origin = crate::handlers::forward::url_origin(url);
    if refused(error) {
        return format!(
            "connection refused at {origin}: nothing listens there. Is hookline running, and is \
             this the address it listens on?"
        );
    }
    if error.is_timeout() {
        return format!("no answer from {origin} in time");
    }
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let what = if error.is_connect() {
        "cannot connect to"
    } else {
        "request failed at"
    };
    if causes.is_empty() {
        format!("{what} {origin}")
    } else {
        format!("{what} {origin}: {}", causes.join(": "))
    }
}

/// Whether the connection was refused: nothing listens at that address.
fn refused(error: &reqwest::Error) -> bool {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_said_plainly_and_the_path_is_not_shown() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(); // Bound and let go: nothing listens there now.
        let url = format!("http://127.0.0.1:{port}/webhooks/livedesk/secret-token-0123456789");
        let error = reqwest::Client::new().post(&url).send().await.unwrap_err();
        let text = describe(&error, &url);
        assert!(
            text.starts_with("connection refused at http://127.0.0.1:"),
            "{text}"
        );
        assert!(!text.contains("secret-token"), "{text}");
    }
}
