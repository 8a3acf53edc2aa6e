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
