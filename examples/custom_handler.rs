//! Embedding hookline as a library: your own handler in Rust, routed in code.
//!
//! Run with `cargo run --example custom_handler`, then send it an example event:
//! `cargo run -- send chatbrick contact.connection.connected --url http://127.0.0.1:8080/webhooks/chatbrick --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`

use std::collections::HashMap;

use async_trait::async_trait;
use hookline::chatbrick;
use hookline::config::{Config, RouteConfig};
use hookline::server::ServerBuilder;
use hookline::{Envelope, Handler, HandlerError};

/// Reacts to new customer connections; everything else is acknowledged and ignored.
struct WelcomeNewCustomers;

#[async_trait]
impl Handler for WelcomeNewCustomers {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        if let Some(chatbrick::Event::ContactConnected(connection)) = event.typed() {
            let store = connection
                .connected_store
                .as_ref()
                .map_or("no store", |s| s.id.as_str());
            // Your code here: call your CRM, send a coupon, … Return a retryable error when a
            // dependency is down and hookline will try again with backoff.
            println!(
                "welcome contact {} at store {store} (event {})",
                connection.contact.id, event.id
            );
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let mut env: HashMap<String, String> = std::env::vars().collect();
    // Demo secret from hookline.example.toml; never use it in production.
    env.entry("HOOKLINE_CHATBRICK_SECRET".into())
        .or_insert_with(|| "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
    let config = Config::load(None, &env)?;

    let mut route = RouteConfig::everything("welcome");
    route.source = Some("chatbrick".into());
    route.events = vec!["contact.connection.*".into()];

    let server = ServerBuilder::new(config)
        .handler("welcome", WelcomeNewCustomers, 8)
        .route(route)
        .start()
        .await?;
    println!("listening on {}", server.public_addr());
    tokio::signal::ctrl_c().await?;
    server.shutdown();
    server.wait().await;
    Ok(())
}
