//! The commands that need no running server: `check-config` and the `send` argument errors.

use std::process::{Command, Output};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn hookline(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookline"));
    command.args(args).env_clear();
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_config_prints_what_would_run_with_secrets_masked() {
    let output = hookline(
        &["check-config"],
        &[
            ("HOOKLINE_CHATBRICK_SECRET", SECRET),
            ("HOOKLINE_LIVEDESK_TOKEN", "livedesk-token-abcdef123456"),
            ("HOOKLINE_LIVEDESK_SECRET", "chatwoot-secret-value"),
            (
                "HOOKLINE_FORWARD_URL",
                "https://user:pw@crm.example/hooks?key=abc",
            ),
            (
                "HOOKLINE_FORWARD_SECRET",
                "whsec_dGhpcyBpcyB0aGUgZm9yd2FyZCBzZWNyZXQ=",
            ),
        ],
    );
    let shown = text(&output);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("configuration OK"));
    assert!(shown.contains("chatbrick         on, 1 key(s)"), "{shown}");
    assert!(shown.contains("livedesk          on at /webhooks/livedesk/***"));
    assert!(shown.contains("chatwoot signature: required"));
    assert!(
        shown.contains("forward to https://crm.example/…"),
        "{shown}"
    );
    for secret in [
        SECRET,
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "livedesk-token-abcdef123456",
        "chatwoot-secret-value",
        "pw@",
        "key=abc",
        "dGhpcyBpcyB0aGUgZm9yd2FyZCBzZWNyZXQ",
    ] {
        assert!(
            !shown.contains(secret),
            "check-config shows {secret}:\n{shown}"
        );
    }
}

#[test]
fn check_config_reports_invalid_settings_without_echoing_them() {
    let output = hookline(
        &["check-config"],
        &[("HOOKLINE_CHATBRICK_SECRET", "whsec_!!notbase64!!")],
    );
    assert_eq!(output.status.code(), Some(2));
    let shown = text(&output);
    assert!(shown.contains("chatbrick: secret #1 is invalid"), "{shown}");
    assert!(!shown.contains("notbase64"), "{shown}");

    let output = hookline(&["check-config"], &[("HOOKLINE_LOG_FORMAT", "xml")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("HOOKLINE_LOG_FORMAT"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[[routes]]\nhandler = \"nowhere\"\n").unwrap();
    let output = hookline(&["check-config", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("\"nowhere\""));
}

#[test]
fn send_explains_unknown_events() {
    let output = hookline(
        &[
            "send",
            "chatbrick",
            "no.such.event",
            "--url",
            "http://127.0.0.1:1/",
            "--secret",
            SECRET,
        ],
        &[],
    );
    assert!(!output.status.success());
    let shown = text(&output);
    assert!(shown.contains("contact.connection.connected"), "{shown}");
}

#[test]
fn every_commands_help_lists_the_variables_it_reads_and_points_to_the_readme() {
    let config_vars: Vec<&str> = include_str!("../README.md")
        .lines()
        .filter_map(|line| line.strip_prefix("| `HOOKLINE_"))
        .filter_map(|rest| rest.split('`').next())
        .filter(|name| name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    assert!(config_vars.len() > 15, "{config_vars:?}");
    let commands: [(&[&str], &[&str]); 15] = [
        (&["serve"], &[]),
        (&["check-config"], &[]),
        (&["healthcheck"], &["HOOKLINE_LISTEN", "HOOKLINE_BASE_PATH"]),
        (
            &["events", "list"],
            &["HOOKLINE_ADMIN_LISTEN", "HOOKLINE_ADMIN_TOKEN"],
        ),
        (
            &["events", "show"],
            &["HOOKLINE_ADMIN_LISTEN", "HOOKLINE_ADMIN_TOKEN"],
        ),
        (
            &["events", "dead"],
            &["HOOKLINE_ADMIN_LISTEN", "HOOKLINE_ADMIN_TOKEN"],
        ),
        (&["replay", "delivery"], &["HOOKLINE_ADMIN_TOKEN"]),
        (&["replay", "event"], &["HOOKLINE_ADMIN_TOKEN"]),
        (&["replay", "dead"], &["HOOKLINE_ADMIN_TOKEN"]),
        (
            &["blocked", "list"],
            &["HOOKLINE_ADMIN_LISTEN", "HOOKLINE_ADMIN_TOKEN"],
        ),
        (&["blocked", "skip"], &["HOOKLINE_ADMIN_TOKEN"]),
        (
            &["send", "chatbrick"],
            &["HOOKLINE_SEND_SECRET", "HOOKLINE_CHATBRICK_SECRET"],
        ),
        (
            &["send", "livedesk"],
            &["HOOKLINE_LIVEDESK_TOKEN", "HOOKLINE_LIVEDESK_SECRET"],
        ),
        (&["backup"], &["HOOKLINE_DATA_DIR"]),
        (&["restore"], &["HOOKLINE_DATA_DIR"]),
    ];
    for (command, vars) in commands {
        let output = hookline(&[command, &["--help"]].concat(), &[]);
        let help = text(&output);
        assert!(output.status.success(), "{command:?}: {help}");
        assert!(help.contains("README.md"), "{command:?}: {help}");
        assert!(help.contains("HOOKLINE_CONFIG"), "{command:?}: {help}");
        for var in vars {
            assert!(
                help.contains(var),
                "{command:?} does not list {var}: {help}"
            );
        }
        if matches!(command, ["serve"] | ["check-config"]) {
            for var in &config_vars {
                assert!(
                    help.contains(&format!("HOOKLINE_{var}")),
                    "{command:?}: {var}"
                );
            }
        }
    }
}

#[test]
fn completions_and_man_pages_come_from_the_same_definitions_and_need_no_configuration() {
    // A configuration that does not load does not stop them.
    let broken = [("HOOKLINE_LOG_FORMAT", "xml")];
    for (shell, marker) in [
        ("bash", "_hookline()"),
        ("zsh", "#compdef hookline"),
        ("fish", "complete -c hookline"),
    ] {
        let output = hookline(&["completions", shell], &broken);
        let script = text(&output);
        assert!(output.status.success(), "{script}");
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("check-config"), "{shell}");
    }
    let output = hookline(&["man"], &broken);
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(page.contains(".TH hookline 1"), "{page}");
    assert!(page.contains("check\\-config"), "{page}");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man");
    let output = hookline(&["man", "--out-dir", out.to_str().unwrap()], &broken);
    assert!(output.status.success(), "{}", text(&output));
    for page in [
        "hookline.1",
        "hookline-serve.1",
        "hookline-events-list.1",
        "hookline-send-chatbrick.1",
    ] {
        let roff = std::fs::read_to_string(out.join(page)).unwrap();
        assert!(roff.contains(".TH"), "{page}");
    }
    let serve = std::fs::read_to_string(out.join("hookline-serve.1")).unwrap();
    assert!(serve.contains("HOOKLINE_DATA_DIR"), "{serve}");
}

#[test]
fn send_says_connection_refused_when_nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let token = "nobody-listens-token-0123";
    let url = format!("http://127.0.0.1:{port}/webhooks/livedesk/{token}");
    let output = hookline(&["send", "livedesk", "message_created", "--url", &url], &[]);
    let said = text(&output);
    assert!(!output.status.success());
    assert!(said.contains("connection refused"), "{said}");
    assert!(said.contains(&format!("127.0.0.1:{port}")), "{said}");
    assert!(!said.contains(token), "the token shows: {said}");
}
