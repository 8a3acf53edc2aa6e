//! `hookline send chatbrick|livedesk`: a signed example (or a JSON file) sent the way the
//! provider would. With no `--url`, to this configuration's own server on loopback; with no
//! `--secret`, signed with the configured secret, as the provider would sign it.

use std::process::ExitCode;

use super::args::SendCommand;
use crate::admin_client::connect_addr;
use crate::config::Config;
use crate::send::{self, SendError};
use crate::{chatbrick, livedesk};

/// Sends one webhook; exit 0 on a 2xx.
pub(super) async fn send(config: &Config, command: SendCommand) -> ExitCode {
    match request(config, command).await {
        Ok((status, body)) => {
            println!("{status} {body}");
            if (200..300).contains(&status) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("hookline: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Builds, signs and posts the request.
async fn request(config: &Config, command: SendCommand) -> Result<(u16, String), SendError> {
    match command {
        SendCommand::Chatbrick { event, url, secret } => {
            let url = url.unwrap_or_else(|| own_url(config, "/webhooks/chatbrick"));
            let secret = match secret {
                Some(secret) => secret,
                None => chatbrick_secret(config, &url)?,
            };
            let body = send::example_or_file(chatbrick::SOURCE, &event)?;
            let headers = send::chatbrick_headers(&secret, &body)?;
            send::post(&url, body, headers).await
        }
        SendCommand::Livedesk { event, url, secret } => {
            let url = match url {
                Some(url) => url,
                None => livedesk_url(config)?,
            };
            let secret = secret.or_else(|| config.sources.livedesk.secret.clone());
            let body = send::example_or_file(livedesk::SOURCE, &event)?;
            let headers = send::livedesk_headers(secret.as_deref(), &body);
            send::post(&url, body, headers).await
        }
    }
}

/// `path` on this configuration's public listener, from this machine.
fn own_url(config: &Config, path: &str) -> String {
    format!(
        "http://{}{}{path}",
        connect_addr(config.listen),
        config.base_path
    )
}

/// The configured liveDesk URL, token included.
fn livedesk_url(config: &Config) -> Result<String, SendError> {
    match &config.sources.livedesk.token {
        Some(token) => Ok(own_url(config, &format!("/webhooks/livedesk/{token}"))),
        None => Err(SendError::NoSecret(
            "no --url, and no liveDesk token is configured (HOOKLINE_LIVEDESK_TOKEN) to make one"
                .into(),
        )),
    }
}

/// The configured secret of the ChatBrick endpoint `url` names (`/webhooks/chatbrick/<name>`,
/// else the default one): the first, the newest during a rotation.
fn chatbrick_secret(config: &Config, url: &str) -> Result<String, SendError> {
    let chatbrick = &config.sources.chatbrick;
    let path = reqwest::Url::parse(url)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let named = path
        .rsplit_once("/webhooks/chatbrick/")
        .and_then(|(_, name)| chatbrick.endpoints.iter().find(|e| e.name == name));
    let (secrets, setting) = match named {
        Some(endpoint) => (
            &endpoint.secrets,
            format!("[[chatbrick.endpoints]] {:?}", endpoint.name),
        ),
        None => (&chatbrick.secrets, "HOOKLINE_CHATBRICK_SECRET".to_owned()),
    };
    secrets.first().cloned().ok_or_else(|| {
        SendError::NoSecret(format!(
            "no --secret (HOOKLINE_SEND_SECRET), and no secret is configured for this endpoint \
             ({setting})"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)], file: Option<&str>) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hookline.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        let env: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(file.map(|_| path.as_path()), &env).unwrap()
    }

    #[test]
    fn the_configured_secret_of_the_endpoint_the_url_names_is_used() {
        let endpoints = "[[chatbrick.endpoints]]\nname = \"orders\"\n\
                         secrets = [\"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"]\n";
        let config = config(
            &[(
                "HOOKLINE_CHATBRICK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw whsec_dGhpcyBpcyB0aGUgZm9yd2FyZCBzZWNyZXQ=",
            )],
            Some(endpoints),
        );
        let default = own_url(&config, "/webhooks/chatbrick");
        assert_eq!(default, "http://127.0.0.1:8080/webhooks/chatbrick");
        assert_eq!(
            chatbrick_secret(&config, &default).unwrap(),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        );
        let orders = "https://hooks.example.com/webhooks/chatbrick/orders";
        assert_eq!(
            chatbrick_secret(&config, orders).unwrap(),
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
        );
    }

    #[test]
    fn without_a_secret_the_message_says_where_to_set_one() {
        let config = config(&[], None);
        let err = chatbrick_secret(&config, "http://127.0.0.1:8080/webhooks/chatbrick");
        assert!(err
            .unwrap_err()
            .to_string()
            .contains("HOOKLINE_CHATBRICK_SECRET"));
        assert!(livedesk_url(&config).is_err());
    }
}
