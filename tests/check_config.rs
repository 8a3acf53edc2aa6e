//! `hookline check-config` refuses exactly what `hookline serve` refuses: both run as the real
//! binary on the same configurations, mistakes an operator makes on the first day.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{SECRET, TOKEN};

/// The binary with only `env` (plus loopback port 0 for both listeners and a data directory in
/// `dir`, unless `env` says otherwise).
fn hookline(args: &[&str], dir: &Path, env: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookline"));
    command
        .args(args)
        .env_clear()
        .env("HOOKLINE_LISTEN", "127.0.0.1:0")
        .env("HOOKLINE_ADMIN_LISTEN", "127.0.0.1:0")
        .env("HOOKLINE_DATA_DIR", dir.join("data"))
        .env("HOOKLINE_LOG", "info")
        .stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// What `serve` did with a configuration: `Err(output)` when it exited by itself (refused),
/// `Ok(log)` when it started (it is then stopped).
fn serve(dir: &Path, env: &[(&str, String)]) -> Result<String, String> {
    let log = dir.join("serve.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = hookline(&["serve"], dir, env)
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "serve exited 0:\n{text}");
            return Err(text);
        }
        if text.contains("hookline started") {
            child.kill().unwrap();
            child.wait().unwrap();
            return Ok(text);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve neither started nor exited:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Configurations `serve` refuses, with what the refusal says.
fn refused_configurations(
    dir: &Path,
    taken: u16,
) -> Vec<(Vec<(&'static str, String)>, &'static str)> {
    let not_a_dir = dir.join("a-file");
    std::fs::write(&not_a_dir, b"").unwrap();
    let handler_file = dir.join("handler.toml");
    std::fs::write(
        &handler_file,
        format!(
            "[handlers.archive]\ntype = \"file\"\npath = {:?}\n[[routes]]\nhandler = \"archive\"\n",
            not_a_dir.join("events.jsonl")
        ),
    )
    .unwrap();
    vec![
        (
            vec![("HOOKLINE_LIVEDESK_TOKEN", "abc/def/0123456789".into())],
            "only ASCII letters, digits",
        ),
        (
            vec![("HOOKLINE_LIVEDESK_TOKEN", "<openssl rand -hex 24>".into())],
            "placeholder",
        ),
        (
            vec![("HOOKLINE_LIVEDESK_TOKEN", "abc".into())],
            "openssl rand -hex 24",
        ),
        (
            vec![("HOOKLINE_ADMIN_TOKEN", "<openssl rand -hex 32>".into())],
            "openssl rand -hex 32",
        ),
        (
            vec![("HOOKLINE_CHATBRICK_SECRET", "notasecret".into())],
            "HOOKLINE_CHATBRICK_SECRET",
        ),
        (
            vec![("HOOKLINE_LISTEN", format!("127.0.0.1:{taken}"))],
            "Address already in use",
        ),
        (
            vec![("HOOKLINE_ADMIN_LISTEN", format!("127.0.0.1:{taken}"))],
            "HOOKLINE_ADMIN_LISTEN",
        ),
        (
            vec![
                ("HOOKLINE_CHATBRICK_SECRET", SECRET.into()),
                ("HOOKLINE_CONFIG", handler_file.display().to_string()),
            ],
            "is not a directory",
        ),
    ]
}

#[test]
fn check_config_refuses_what_serve_refuses_with_the_same_message() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    for (env, says) in refused_configurations(dir.path(), port) {
        let checked = hookline(&["check-config"], dir.path(), &env)
            .output()
            .unwrap();
        let shown = text(&checked);
        assert!(
            !checked.status.success(),
            "{env:?} passes check-config:\n{shown}"
        );
        assert!(!shown.contains("configuration OK"), "{shown}");
        assert!(shown.contains(says), "{env:?}: {shown}");
        let served = serve(dir.path(), &env).expect_err("serve refuses it too");
        assert!(served.contains(says), "{env:?}: {served}");
    }
}

#[test]
fn what_check_config_passes_serve_runs() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("HOOKLINE_CHATBRICK_SECRET", SECRET.to_owned()),
        ("HOOKLINE_LIVEDESK_TOKEN", TOKEN.to_owned()),
        ("HOOKLINE_ADMIN_TOKEN", "0123456789abcdef0123".to_owned()),
    ];
    let checked = hookline(&["check-config"], dir.path(), &env)
        .output()
        .unwrap();
    assert!(checked.status.success(), "{}", text(&checked));
    assert!(text(&checked).contains("configuration OK"));
    // Nothing was created by the check.
    assert!(!dir.path().join("data").exists());
    serve(dir.path(), &env).expect("serve starts");
}

#[test]
fn no_source_at_all_is_said_loudly_by_both() {
    let dir = tempfile::tempdir().unwrap();
    let checked = hookline(&["check-config"], dir.path(), &[])
        .output()
        .unwrap();
    let shown = text(&checked);
    assert!(checked.status.success(), "{shown}");
    assert!(
        shown.contains("WARNING: NO SOURCE IS CONFIGURED"),
        "{shown}"
    );
    assert!(shown.contains("configuration OK, with"), "{shown}");
    let log = serve(dir.path(), &[]).expect("serve starts, warning");
    assert!(log.contains("NO SOURCE IS CONFIGURED"), "{log}");
}

/// Bad secrets, random-looking so that no word of a message matches a piece of them by chance:
/// (variables, the secret's value).
fn bad_secrets() -> Vec<(Vec<(&'static str, String)>, &'static str)> {
    let with = |var: &'static str, value: &'static str| (vec![(var, value.to_owned())], value);
    let token = ("HOOKLINE_LIVEDESK_TOKEN", TOKEN.to_owned());
    let forward = ("HOOKLINE_FORWARD_URL", "http://127.0.0.1:9/in".to_owned());
    vec![
        with("HOOKLINE_CHATBRICK_SECRET", "Qx9#Vb7Kp2Wz"),
        with("HOOKLINE_CHATBRICK_SECRET", "whsec_Qx9#Vb7Kp2Wz"),
        with("HOOKLINE_CHATBRICK_SECRET", "whsec_Qx9Vb7Kp2"),
        with("HOOKLINE_CHATBRICK_SECRET", "whpk_TW9yZVZiN0twMld6"),
        with("HOOKLINE_CHATBRICK_SECRET", "whsec_<Qx9Vb7 Kp2Wz>"),
        with("HOOKLINE_LIVEDESK_TOKEN", "Qx9/Vb7Kp2Wz0Lm4Rt8"),
        with("HOOKLINE_LIVEDESK_TOKEN", "Qx9Vb7"),
        with("HOOKLINE_LIVEDESK_TOKEN", "<Qx9Vb7Kp2Wz>"),
        with("HOOKLINE_ADMIN_TOKEN", "Qx9Vb7"),
        with("HOOKLINE_ADMIN_TOKEN", "<Qx9Vb7Kp2Wz>"),
        (
            vec![token, ("HOOKLINE_LIVEDESK_SECRET", "<Qx9Vb7Kp2Wz>".into())],
            "<Qx9Vb7Kp2Wz>",
        ),
        (
            vec![
                forward,
                ("HOOKLINE_FORWARD_SECRET", "whsec_Qx9#Vb7Kp2Wz".into()),
            ],
            "whsec_Qx9#Vb7Kp2Wz",
        ),
    ]
}

#[test]
fn no_piece_of_a_bad_secret_appears_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    for (env, secret) in bad_secrets() {
        let checked = hookline(&["check-config"], dir.path(), &env)
            .output()
            .unwrap();
        assert!(
            !checked.status.success(),
            "{env:?} passes:\n{}",
            text(&checked)
        );
        let served = serve(dir.path(), &env).expect_err("serve refuses it");
        let value = ["whsec_", "whpk_"]
            .iter()
            .find_map(|prefix| secret.strip_prefix(prefix))
            .unwrap_or(secret);
        for output in [text(&checked), served] {
            for start in 0..value.len() - 2 {
                let piece = &value[start..start + 3];
                assert!(
                    !output.contains(piece),
                    "{piece:?} of the secret {secret:?} shows in:\n{output}"
                );
            }
        }
    }
}

#[test]
fn the_start_up_line_says_where_and_the_urls_to_paste_and_check_config_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("HOOKLINE_CHATBRICK_SECRET", SECRET.to_owned()),
        ("HOOKLINE_LIVEDESK_TOKEN", TOKEN.to_owned()),
        ("HOOKLINE_BASE_PATH", "/hooks".to_owned()),
    ];
    let log = serve(dir.path(), &env).expect("serve starts");
    let started = log
        .lines()
        .find(|l| l.contains("hookline started"))
        .unwrap();
    let db = dir.path().join("data/hookline.db");
    assert!(started.contains(&db.display().to_string()), "{started}");
    assert!(
        started.contains("sources=\"chatbrick,livedesk\""),
        "{started}"
    );
    let livedesk = "https://<your host>/hooks/webhooks/livedesk/<token: fingerprint ";
    let chatbrick = "https://<your host>/hooks/webhooks/chatbrick";
    let checked = text(
        &hookline(&["check-config"], dir.path(), &env)
            .output()
            .unwrap(),
    );
    for shown in [&log, &checked] {
        assert!(shown.contains(chatbrick), "{shown}");
        assert!(shown.contains(livedesk), "{shown}");
        assert!(
            shown.contains(&format!("{} characters>", TOKEN.len())),
            "{shown}"
        );
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(!shown.contains(&TOKEN[5..15]), "{shown}");
    }
}
