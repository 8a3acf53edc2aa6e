//! The configuration's tests: layering of file and environment, validation, and that nothing
//! prints a secret.

use super::*;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_need_no_file() {
    let config = Config::load(None, &HashMap::new()).unwrap();
    assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(config.data_dir, PathBuf::from("./data"));
    assert_eq!(config.routes.len(), 1);
    assert_eq!(config.routes[0].handler, "log");
    assert!(config.sources.chatbrick.secrets.is_empty());
    assert_eq!(
        config.sources.livedesk.overload_wait,
        Duration::from_secs(2)
    );
}

#[test]
fn environment_overrides_file_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookline.toml");
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:1000\"\n[chatbrick]\nsecrets = [\"whsec_a\"]\n[livedesk]\noverload_wait = \"1s\"\n",
    )
    .unwrap();
    let config = Config::load(
        Some(&path),
        &env(&[
            ("HOOKLINE_LISTEN", "127.0.0.1:2000"),
            ("HOOKLINE_CHATBRICK_SECRET", "whsec_b, whsec_c whsec_d"),
            ("HOOKLINE_LOG_FORMAT", "json"),
            ("HOOKLINE_BASE_PATH", "hooks/"),
            ("HOOKLINE_LIVEDESK_OVERLOAD_WAIT", "500ms"),
        ]),
    )
    .unwrap();
    assert_eq!(
        config.sources.livedesk.overload_wait,
        Duration::from_millis(500)
    );
    assert_eq!(config.listen.to_string(), "127.0.0.1:2000");
    assert_eq!(
        config.sources.chatbrick.secrets,
        vec!["whsec_b", "whsec_c", "whsec_d"]
    );
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.base_path, "/hooks");
}

#[test]
fn secrets_can_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "s3cr3t-token-value\n").unwrap();
    let config = Config::load(
        None,
        &env(&[("HOOKLINE_LIVEDESK_TOKEN_FILE", path.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(
        config.sources.livedesk.token.as_deref(),
        Some("s3cr3t-token-value")
    );
}

#[test]
fn forward_env_adds_handler_and_route() {
    let config = Config::load(
        None,
        &env(&[
            ("HOOKLINE_FORWARD_URL", "http://127.0.0.1:1/in"),
            (
                "HOOKLINE_FORWARD_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
        ]),
    )
    .unwrap();
    assert!(matches!(
        config.handlers.get("forward"),
        Some(HandlerConfig::Forward { .. })
    ));
    // Forwarded and logged: the env's route beside the implicit one to `log`.
    let handlers: Vec<&str> = config.routes.iter().map(|r| r.handler.as_str()).collect();
    assert_eq!(handlers, ["log", "forward"]);
}

#[test]
fn with_routes_in_the_file_forward_env_adds_only_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hookline.toml");
    std::fs::write(
        &path,
        "[[routes]]\nhandler = \"log\"\nevents = [\"store.*\"]\n",
    )
    .unwrap();
    let config = Config::load(
        Some(&path),
        &env(&[
            ("HOOKLINE_FORWARD_URL", "http://127.0.0.1:1/in"),
            (
                "HOOKLINE_FORWARD_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
        ]),
    )
    .unwrap();
    let routes: Vec<(&str, usize)> = config
        .routes
        .iter()
        .map(|r| (r.handler.as_str(), r.events.len()))
        .collect();
    assert_eq!(routes, [("log", 1), ("forward", 0)]);
    assert!(!config.implicit_log_route);
}

#[test]
fn forward_url_without_secret_is_an_error() {
    let err = Config::load(None, &env(&[("HOOKLINE_FORWARD_URL", "http://x")])).unwrap_err();
    assert!(err.to_string().contains("HOOKLINE_FORWARD_SECRET"));
}

#[test]
fn route_to_unknown_handler_is_rejected() {
    let mut config = Config::default();
    config.routes.push(RouteConfig::everything("nope"));
    config.complete(true);
    let err = config.validate().unwrap_err();
    assert!(err.to_string().contains("\"nope\""), "{err}");
}

#[test]
fn public_admin_without_token_is_rejected() {
    let err = Config::load(None, &env(&[("HOOKLINE_ADMIN_LISTEN", "0.0.0.0:9090")])).unwrap_err();
    assert!(err.to_string().contains("HOOKLINE_ADMIN_TOKEN"));
}

#[test]
fn invalid_env_value_names_the_variable() {
    let err = Config::load(None, &env(&[("HOOKLINE_LISTEN", "nonsense")])).unwrap_err();
    assert!(err.to_string().contains("HOOKLINE_LISTEN"));
}

#[test]
fn unknown_file_keys_are_rejected_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "lisen = \"x\"\n").unwrap();
    let err = Config::load(Some(&path), &HashMap::new()).unwrap_err();
    assert!(err.to_string().contains("lisen"), "{err}");
}

#[test]
fn trusted_proxies_from_env() {
    let config = Config::load(
        None,
        &env(&[("HOOKLINE_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1 ::1")]),
    )
    .unwrap();
    let shown: Vec<String> = config
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(shown, vec!["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
    let err = Config::load(None, &env(&[("HOOKLINE_TRUSTED_PROXIES", "nope")])).unwrap_err();
    assert!(err.to_string().contains("HOOKLINE_TRUSTED_PROXIES"));
}

#[test]
fn example_file_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hookline.example.toml");
    let config = Config::load(Some(&path), &HashMap::new()).unwrap();
    assert_eq!(config.sources.chatbrick.secrets.len(), 1);
    assert!(config.sources.livedesk.token.is_some());
    assert_eq!(config.routes.len(), 1);
}

#[test]
fn debug_output_never_shows_secrets() {
    let config = Config::load(
        None,
        &env(&[
            (
                "HOOKLINE_CHATBRICK_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ),
            ("HOOKLINE_LIVEDESK_TOKEN", "token-value-1234567"),
            ("HOOKLINE_LIVEDESK_SECRET", "chatwoot-value"),
            ("HOOKLINE_ADMIN_TOKEN", "admin-value-0123456789"),
            (
                "HOOKLINE_FORWARD_URL",
                "https://u:pw@crm.example/in?key=query-value",
            ),
            (
                "HOOKLINE_FORWARD_SECRET",
                "whsec_dGhpcyBpcyB0aGUgZm9yd2FyZCBzZWNyZXQ=",
            ),
        ]),
    )
    .unwrap();
    let shown = format!("{config:?}");
    for secret in [
        "MfKQ9r8",
        "token-value",
        "chatwoot-value",
        "admin-value",
        "pw@",
        "query-value",
        "dGhpcyBp",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("https://crm.example"));
}

#[test]
fn lists_split_on_commas_and_spaces() {
    assert_eq!(split_list(" a,b  c,,d "), vec!["a", "b", "c", "d"]);
}

#[test]
fn weak_admin_tokens_are_refused_with_advice() {
    for token in [
        "<openssl rand -hex 32>",
        "short-token",
        "a token with spaces ok",
    ] {
        let err = Config::load(None, &env(&[("HOOKLINE_ADMIN_TOKEN", token)])).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("HOOKLINE_ADMIN_TOKEN"), "{message}");
        assert!(message.contains("openssl rand -hex 32"), "{message}");
    }
    let good = env(&[("HOOKLINE_ADMIN_TOKEN", "0123456789abcdef")]);
    assert!(Config::load(None, &good).is_ok());
}

#[test]
fn demo_secrets_are_the_example_files_and_warned_about_off_loopback() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hookline.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    for secret in DEMO_SECRETS {
        assert!(
            text.contains(secret),
            "{secret} is not in hookline.example.toml"
        );
    }
    let example = Config::load(Some(&path), &HashMap::new()).unwrap();
    assert!(!example.listen.ip().is_loopback());
    let warnings = example.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("DEMO SECRETS IN USE"), "{warnings:?}");
    assert!(warnings[0].contains("HOOKLINE_CHATBRICK_SECRET"));
    assert!(warnings[0].contains("HOOKLINE_LIVEDESK_TOKEN"));
    let local = env(&[("HOOKLINE_LISTEN", "127.0.0.1:8080")]);
    let example = Config::load(Some(&path), &local).unwrap();
    assert!(example.warnings().is_empty());
    let own = env(&[
        (
            "HOOKLINE_CHATBRICK_SECRET",
            "whsec_dGhpcyBpcyB0aGUgZm9yd2FyZCBzZWNyZXQ=",
        ),
        ("HOOKLINE_LIVEDESK_TOKEN", "0123456789abcdef0123"),
    ]);
    assert!(Config::load(Some(&path), &own)
        .unwrap()
        .warnings()
        .is_empty());
}
