//! A small client for the admin API, used by the `events`, `replay` and `healthcheck` commands
//! so that they work against the running server with the same configuration.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use serde_json::Value;

use crate::config::Config;

/// Why an admin call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached (its admin listener, HOOKLINE_ADMIN_LISTEN).
    #[error("{0} (the admin API, HOOKLINE_ADMIN_LISTEN)")]
    Unreachable(String),
    /// The server answered with an error.
    #[error("hookline answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
}

/// The address to connect to for a listen address: a wildcard becomes loopback.
pub fn connect_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    };
    SocketAddr::new(ip, listen.port())
}

/// Talks to the admin listener of the configured server.
#[derive(Debug, Clone)]
pub struct AdminClient {
    /// `http://host:port`.
    base: String,
    /// Bearer token, when configured.
    token: Option<String>,
    /// HTTP client.
    http: reqwest::Client,
}

impl AdminClient {
    /// A client for the admin listener that `config` describes.
    pub fn new(config: &Config) -> Result<Self, reqwest::Error> {
        Ok(AdminClient {
            base: format!("http://{}", connect_addr(config.admin.listen)),
            token: config.admin.token.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
        })
    }

    /// GET `path` (with query) and return the JSON body.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ClientError> {
        self.call(self.http.get(self.url(path)).query(query)).await
    }

    /// POST `path` (with query) and return the JSON body.
    pub async fn post(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ClientError> {
        self.call(self.http.post(self.url(path)).query(query)).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value, ClientError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request
            .send()
            .await
            .map_err(|e| ClientError::Unreachable(crate::client_error::describe(&e, &self.base)))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(ClientError::Status {
                status: status.as_u16(),
                body,
            });
        }
        Ok(serde_json::from_str(&body).unwrap_or(Value::String(body)))
    }
}

/// Probes `/readyz` of the public listener `config` describes; true when it answers 200.
pub async fn ready(config: &Config) -> bool {
    let url = format!(
        "http://{}{}/readyz",
        connect_addr(config.listen),
        config.base_path
    );
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
    else {
        return false;
    };
    matches!(client.get(url).send().await, Ok(r) if r.status().is_success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_connect_to_loopback() {
        assert_eq!(
            connect_addr("0.0.0.0:8080".parse().unwrap()).to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            connect_addr("[::]:1".parse().unwrap()).to_string(),
            "[::1]:1"
        );
        assert_eq!(
            connect_addr("10.1.2.3:9".parse().unwrap()).to_string(),
            "10.1.2.3:9"
        );
    }
}
