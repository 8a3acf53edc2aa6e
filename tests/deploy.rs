//! The binary run the way the container image runs it, since no image can be built here: the
//! command, user and environment come from the `Dockerfile` (ENV, USER, ENTRYPOINT, CMD,
//! HEALTHCHECK), `deploy/.env.example` (the compose `env_file`) and the hookline service's
//! `environment:` in `deploy/compose.yaml`, read by this test so that it follows those files.
//! Only ports, paths and secrets are replaced by test values; the data directory stands in for
//! the `/data` volume.
//!
//! As root (CI), the server runs under the image's unprivileged uid through `setpriv`, with a
//! data directory owned by that uid; as any other user it runs as that user.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::*;

const DOCKERFILE: &str = include_str!("../Dockerfile");
const ENV_EXAMPLE: &str = include_str!("../deploy/.env.example");
const COMPOSE: &str = include_str!("../deploy/compose.yaml");
/// The configuration file compose.yaml mounts.
const COMPOSE_CONFIG: &str = include_str!("../deploy/hookline.toml");
/// The `docker run --env-file` example.
const RUN_ENV_EXAMPLE: &str = include_str!("../deploy/hookline.env.example");

/// Where the image installs the binary (its ENTRYPOINT and HEALTHCHECK name it).
const IMAGE_BINARY: &str = "/usr/local/bin/hookline";
/// The admin token this test uses in place of the placeholder.
const ADMIN_TOKEN: &str = "deploy-test-admin-token";

/// How the runtime stage of the Dockerfile runs the binary.
#[derive(Debug)]
struct Image {
    /// `ENV` variables, in order.
    env: Vec<(String, String)>,
    /// `USER uid:gid`.
    user: (u32, u32),
    /// `ENTRYPOINT` followed by `CMD`: the server's command line.
    command: Vec<String>,
    /// `HEALTHCHECK … CMD`: the probe's command line.
    healthcheck: Vec<String>,
}

/// Parses the instructions of the Dockerfile's last stage that decide how hookline runs.
fn image() -> Image {
    let last_stage = DOCKERFILE
        .rsplit_once("\nFROM ")
        .expect("a multi-stage Dockerfile")
        .1;
    let mut env = Vec::new();
    let (mut user, mut entrypoint, mut cmd, mut healthcheck) = (None, None, None, None);
    let exec_form = |text: &str| -> Vec<String> {
        serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("not a JSON exec-form array ({e}): {text}"))
    };
    for line in last_stage.lines() {
        let Some((instruction, rest)) = line.split_once(' ') else {
            continue;
        };
        match instruction {
            "ENV" => env.extend(rest.split_whitespace().map(|pair| {
                let (k, v) = pair.split_once('=').expect("ENV in KEY=value form");
                (k.to_owned(), v.to_owned())
            })),
            "USER" => {
                let (uid, gid) = rest.trim().split_once(':').expect("USER uid:gid");
                user = Some((uid.parse().unwrap(), gid.parse().unwrap()));
            }
            "ENTRYPOINT" => entrypoint = Some(exec_form(rest)),
            "CMD" => cmd = Some(exec_form(rest)),
            "HEALTHCHECK" => {
                let (_, probe) = rest.split_once(" CMD ").expect("HEALTHCHECK … CMD [...]");
                healthcheck = Some(exec_form(probe));
            }
            _ => {}
        }
    }
    let mut command = entrypoint.expect("ENTRYPOINT");
    command.extend(cmd.expect("CMD"));
    Image {
        env,
        user: user.expect("USER uid:gid in the runtime stage"),
        command,
        healthcheck: healthcheck.expect("HEALTHCHECK"),
    }
}

/// `KEY=value` lines of a dotenv file, comments and blank lines skipped, quotes removed.
fn dotenv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (k, v) = line.split_once('=').expect("KEY=value");
            (k.trim().to_owned(), unquote(v.trim()).to_owned())
        })
        .collect()
}

/// A value without its surrounding quotes, if it has any.
fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner;
        }
    }
    value
}

/// The hookline service's `environment:` mapping in compose.yaml (a flat `KEY: value` block;
/// `.ci/lint-deploy` checks that with a real YAML parser).
fn compose_environment() -> Vec<(String, String)> {
    let mut lines = COMPOSE.lines().skip_while(|l| *l != "  hookline:").skip(1);
    lines
        .by_ref()
        .take_while(|l| l.is_empty() || l.starts_with("   "))
        .find(|l| l.trim() == "environment:")
        .expect("services.hookline.environment in compose.yaml");
    lines
        .take_while(|l| l.starts_with("      ") || l.trim().is_empty())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once(':').expect("KEY: value");
            (k.trim().to_owned(), unquote(v.trim()).to_owned())
        })
        .collect()
}

/// Compose's variable interpolation (`${VAR}`, `${VAR:-default}`, `${VAR:?error}`) from `vars`.
fn interpolate(value: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed ${") + start;
        let expr = &rest[start + 2..end];
        let (name, fallback) = match expr.find([':', '-', '?']) {
            Some(i) => (&expr[..i], Some(&expr[i..])),
            None => (expr, None),
        };
        let set = vars.get(name).filter(|v| !v.is_empty());
        out.push_str(&match (set, fallback) {
            (Some(v), _) => v.clone(),
            (None, Some(f)) if f.starts_with(":-") || f.starts_with('-') => {
                f.trim_start_matches(':')[1..].to_owned()
            }
            (None, f) => panic!("compose needs {name} ({f:?}) but .env.example does not set it"),
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The container's environment: the image's ENV, then env_file (.env.example), then the
/// service's `environment:` with compose interpolation, as Docker layers them.
fn container_env(image: &Image) -> BTreeMap<String, String> {
    let env_file: BTreeMap<String, String> = dotenv(ENV_EXAMPLE).into_iter().collect();
    let mut env: BTreeMap<String, String> = image.env.iter().cloned().collect();
    env.extend(env_file.clone());
    for (k, v) in compose_environment() {
        env.insert(k, interpolate(&v, &env_file));
    }
    env
}

/// Whether this process runs as root (then the server is started as the image's user).
fn running_as_root(dir: &Path) -> bool {
    let probe = dir.join("uid-probe");
    std::fs::write(&probe, b"").unwrap();
    let uid = std::fs::metadata(&probe).unwrap().uid();
    std::fs::remove_file(probe).unwrap();
    uid == 0
}

/// The `setpriv` executable (util-linux).
fn setpriv() -> PathBuf {
    ["/usr/bin/setpriv", "/bin/setpriv"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("setpriv (util-linux) is installed; .ci/install-deps installs it")
}

/// Runs commands as the image does: the binary at a stand-in for /usr/local/bin, only the
/// container's environment, and the image's uid/gid when we are root.
struct Runner {
    /// The copy of the binary, readable and executable by the unprivileged user.
    binary: PathBuf,
    /// The image's uid and gid, when dropping privileges.
    user: Option<(u32, u32)>,
}

impl Runner {
    /// A command for an image command line (`[/usr/local/bin/hookline, args…]`) with `env`.
    fn command(&self, argv: &[String], env: &BTreeMap<String, String>) -> Command {
        assert_eq!(argv[0], IMAGE_BINARY, "the image runs the installed binary");
        let mut command = match self.user {
            Some((uid, gid)) => {
                let mut c = Command::new(setpriv());
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        command
            .args(&argv[1..])
            .env_clear()
            .envs(env)
            .stdin(Stdio::null());
        command
    }

    /// Runs the image's HEALTHCHECK with `env` and returns its exit code.
    fn healthcheck(&self, image: &Image, env: &BTreeMap<String, String>) -> Option<i32> {
        let output = self.output(&image.healthcheck, env);
        output.status.code()
    }

    /// Runs a command to completion and returns its output.
    fn output(&self, argv: &[String], env: &BTreeMap<String, String>) -> Output {
        self.command(argv, env).output().expect("command runs")
    }
}

/// The server process; killed if the test fails before it stops it.
struct Server {
    /// The process (setpriv execs hookline, so this is hookline's pid).
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real uid of a running process, from /proc.
fn process_uid(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let uids: Vec<u32> = line[4..]
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert!(uids.iter().all(|u| *u == uids[0]), "{line}");
    uids[0]
}

/// Starts the server as the image does, on fresh loopback ports written into `env` (the
/// healthcheck reads them from there); checks that the healthcheck fails before it runs. Ports
/// are picked before the start, so another process may take one first: hookline then exits
/// with "cannot listen", and we try again. Returns once hookline's log says it has bound both.
async fn start(
    runner: &Runner,
    image: &Image,
    env: &mut BTreeMap<String, String>,
    log: &Path,
) -> (Server, SocketAddr, SocketAddr) {
    for _ in 0..5 {
        let public: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        env.insert("HOOKLINE_LISTEN".into(), public.to_string());
        env.insert("HOOKLINE_ADMIN_LISTEN".into(), admin.to_string());
        assert_eq!(
            runner.healthcheck(image, env),
            Some(1),
            "unhealthy before start"
        );
        let file = std::fs::File::create(log).unwrap();
        let mut server = Server {
            child: runner
                .command(&image.command, env)
                .stdout(file.try_clone().unwrap())
                .stderr(file)
                .spawn()
                .expect("hookline starts"),
        };
        for attempt in 0.. {
            let text = std::fs::read_to_string(log).unwrap();
            if text.contains("hookline started") {
                return (server, public, admin);
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                assert!(
                    text.contains("cannot listen"),
                    "hookline exited ({status}):\n{text}"
                );
                break; // a port was taken: next ones
            }
            assert!(attempt < 400, "hookline did not start:\n{text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("no free ports for hookline after 5 tries");
}

#[test]
fn deployment_files_agree_with_each_other() {
    let image = image();
    let env = container_env(&image);
    // The image and compose agree on where the data and the listener are.
    assert_eq!(env["HOOKLINE_DATA_DIR"], "/data");
    assert_eq!(env["HOOKLINE_LISTEN"], "0.0.0.0:8080");
    assert!(DOCKERFILE.contains("VOLUME [\"/data\"]") && DOCKERFILE.contains("EXPOSE 8080"));
    assert!(COMPOSE.contains("hookline-data:/data"));
    // The admin listener leaves loopback only with a token (hookline refuses to start otherwise).
    let admin: SocketAddr = env["HOOKLINE_ADMIN_LISTEN"].parse().unwrap();
    if !admin.ip().is_loopback() {
        assert!(env
            .get("HOOKLINE_ADMIN_TOKEN")
            .is_some_and(|t| !t.is_empty()));
    }
    assert_ne!(image.user.0, 0, "the image runs as an unprivileged user");
    assert_eq!(image.command[1..], ["serve"]);
    assert_eq!(image.healthcheck[1..], ["healthcheck"]);
    // Every HOOKLINE_ variable of the example is one hookline reads.
    assert_read_by_hookline(env.keys());
}

/// Fails for a `HOOKLINE_*` name that hookline does not read: the variables are read by the
/// configuration and by each provider's own section.
fn assert_read_by_hookline<'a>(keys: impl IntoIterator<Item = &'a String>) {
    let config_source = [
        include_str!("../src/config.rs"),
        include_str!("../src/sources/chatbrick/config.rs"),
        include_str!("../src/sources/livedesk/config.rs"),
        // HOOKLINE_CONFIG, read by the command line (`--config`).
        include_str!("../src/cli/args.rs"),
    ]
    .concat();
    for key in keys.into_iter().filter(|k| k.starts_with("HOOKLINE_")) {
        let name = key.trim_end_matches("_FILE");
        assert!(
            config_source.contains(&format!("\"{name}\"")),
            "{key} is not a variable hookline reads"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_like_the_image_unprivileged_with_the_compose_environment() {
    let image = image();
    let dir = tempfile::tempdir().unwrap();
    // The unprivileged user must be able to enter the directory and run the binary copy.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let as_root = running_as_root(dir.path());
    let binary = dir.path().join("bin/hookline");
    std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_hookline"), &binary).unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let owner = if as_root {
        std::os::unix::fs::chown(&data, Some(image.user.0), Some(image.user.1)).unwrap();
        image.user.0
    } else {
        std::fs::metadata(&data).unwrap().uid()
    };
    let runner = Runner {
        binary,
        user: as_root.then_some(image.user),
    };

    // The container's environment with test ports, paths and secrets, and nothing else.
    let mut env = container_env(&image);
    let livedesk_secret = env
        .get("HOOKLINE_LIVEDESK_SECRET")
        .filter(|v| !v.is_empty())
        .map(|_| "deploy-test-chatwoot-secret".to_owned());
    // compose.yaml's configuration file, at a path the unprivileged user can read.
    let config_file = dir.path().join("hookline.toml");
    std::fs::write(&config_file, COMPOSE_CONFIG).unwrap();
    std::fs::set_permissions(&config_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut overrides = vec![
        // Loopback instead of the wildcard: tests listen on loopback only. (The healthcheck's
        // mapping of 0.0.0.0 to 127.0.0.1 is unit-tested in admin_client.) Ports: see start().
        ("HOOKLINE_CONFIG", config_file.display().to_string()),
        ("HOOKLINE_LISTEN", "127.0.0.1:0".to_owned()),
        ("HOOKLINE_ADMIN_LISTEN", "127.0.0.1:0".to_owned()),
        ("HOOKLINE_DATA_DIR", data.display().to_string()),
        ("HOOKLINE_CHATBRICK_SECRET", SECRET.to_owned()),
        ("HOOKLINE_LIVEDESK_TOKEN", TOKEN.to_owned()),
        ("HOOKLINE_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
        // compose.ha.yaml's PostgreSQL password; compose.yaml's hookline ignores it.
        ("DEPLOY_POSTGRES_PASSWORD", "unused-here".to_owned()),
    ];
    if let Some(secret) = &livedesk_secret {
        overrides.push(("HOOKLINE_LIVEDESK_SECRET", secret.clone()));
    }
    for (key, value) in overrides {
        assert!(
            env.insert(key.to_owned(), value).is_some(),
            "{key} is no longer set by the Dockerfile, compose.yaml or .env.example: \
             update tests/deploy.rs"
        );
    }
    for (key, value) in &env {
        assert!(
            !value.contains('<'),
            "{key}={value} is a placeholder without a test value in tests/deploy.rs"
        );
    }

    let log = dir.path().join("hookline.log");
    let (mut server, public, admin) = start(&runner, &image, &mut env, &log).await;
    // Ready: the image's HEALTHCHECK passes.
    assert_eq!(runner.healthcheck(&image, &env), Some(0));
    assert_eq!(
        process_uid(server.child.id()),
        owner,
        "runs as the image user"
    );

    // It receives: a signed ChatBrick event and a liveDesk event.
    let client = reqwest::Client::new();
    let body = fixture("chatbrick/contact.connection.connected.store_and_staff.json");
    let headers = svix_headers(SECRET, "msg_deploy_test", now(), &body);
    let (status, _, json) =
        post_json(&client, &url(public, "/webhooks/chatbrick"), &headers, body).await;
    assert_eq!((status, json["status"].as_str()), (200, Some("accepted")));
    let body = fixture("livedesk/message_created.api_channel_doc.json");
    let headers: Vec<(String, String)> =
        hookline::send::livedesk_headers(livedesk_secret.as_deref(), &body)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
    let (status, _, json) = post_json(
        &client,
        &url(public, &format!("/webhooks/livedesk/{TOKEN}")),
        &headers,
        body,
    )
    .await;
    assert_eq!((status, json["status"].as_str()), (200, Some("accepted")));
    assert_eq!(runner.healthcheck(&image, &env), Some(0));

    // `docker exec … hookline events list` works with the same environment (admin token).
    let argv = [IMAGE_BINARY, "events", "list", "--json"].map(String::from);
    let listed = runner.output(&argv, &env);
    assert!(listed.status.success(), "{listed:?}");
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["events"].as_array().map(Vec::len), Some(2));
    // /metrics wants the admin token.
    let metrics = client.get(url(admin, "/metrics")).send().await.unwrap();
    assert_eq!(metrics.status().as_u16(), 401);
    let metrics = client
        .get(url(admin, "/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("hookline_requests_total"));

    // The store is in the data directory, and everything there belongs to the image user.
    assert!(data.join("hookline.db").is_file());
    for entry in std::fs::read_dir(&data).unwrap() {
        let entry = entry.unwrap();
        assert_eq!(
            entry.metadata().unwrap().uid(),
            owner,
            "{} is not owned by the image user",
            entry.path().display()
        );
    }

    // `docker stop`: SIGTERM, a clean exit, and the healthcheck fails afterwards.
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(server.child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let mut exit = None;
    for _ in 0..400 {
        exit = server.child.try_wait().unwrap();
        if exit.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let exit = exit.expect("hookline stops on SIGTERM");
    assert_eq!(
        exit.code(),
        Some(0),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert_eq!(runner.healthcheck(&image, &env), Some(1));

    // And pointed at a port where nothing listens, it fails too.
    let mut elsewhere = env.clone();
    elsewhere.insert(
        "HOOKLINE_LISTEN".into(),
        format!("127.0.0.1:{}", free_port()),
    );
    assert_eq!(runner.healthcheck(&image, &elsewhere), Some(1));

    // Logs in the format .env.example asks for, without the secrets.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("hookline stopped"), "{text}");
    if env.get("HOOKLINE_LOG_FORMAT").map(String::as_str) == Some("json") {
        for json in strict_json_lines(&text) {
            assert!(json["timestamp"].is_string(), "{json}");
        }
    }
    for secret in [SECRET, TOKEN, ADMIN_TOKEN] {
        assert!(!text.contains(secret), "the log leaks {secret}");
    }
}

#[test]
fn compose_mounts_its_configuration_file_and_the_env_file_example_is_refused_until_filled_in() {
    // compose.yaml mounts deploy/hookline.toml where HOOKLINE_CONFIG points.
    let env = container_env(&image());
    let mounted = env["HOOKLINE_CONFIG"].clone();
    assert!(
        COMPOSE.contains(&format!("./hookline.toml:{mounted}:ro")),
        "compose.yaml mounts deploy/hookline.toml read-only at HOOKLINE_CONFIG ({mounted})"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookline.toml");
    std::fs::write(&config, COMPOSE_CONFIG).unwrap();

    // The docker run example, as written: its placeholders are refused.
    let example: BTreeMap<String, String> = dotenv(RUN_ENV_EXAMPLE).into_iter().collect();
    assert_read_by_hookline(example.keys());
    let check = |env: &BTreeMap<String, String>| {
        Command::new(env!("CARGO_BIN_EXE_hookline"))
            .arg("check-config")
            .env_clear()
            .envs(env)
            .env("HOOKLINE_CONFIG", &config)
            .env("HOOKLINE_DATA_DIR", dir.path().join("data"))
            .env("HOOKLINE_LISTEN", "127.0.0.1:0")
            .env("HOOKLINE_ADMIN_LISTEN", "127.0.0.1:0")
            .output()
            .unwrap()
    };
    let refused = check(&example);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(said.contains("placeholder"), "{said}");

    // Filled in, it runs with compose's configuration file.
    let mut filled = example.clone();
    for (key, value) in [
        ("HOOKLINE_CHATBRICK_SECRET", SECRET),
        ("HOOKLINE_LIVEDESK_TOKEN", TOKEN),
    ] {
        assert!(
            filled[key].contains('<'),
            "{key} is a placeholder in the example"
        );
        filled.insert(key.to_owned(), value.to_owned());
    }
    assert!(filled.values().all(|v| !v.contains('<')), "{filled:?}");
    let accepted = check(&filled);
    let said = String::from_utf8_lossy(&accepted.stdout);
    assert!(accepted.status.success(), "{accepted:?}");
    assert!(said.contains("configuration OK"), "{said}");
    assert!(said.contains("route log"), "{said}");
}

#[test]
fn the_license_file_is_the_one_cargo_toml_and_the_image_name() {
    let cargo = include_str!("../Cargo.toml");
    let license = include_str!("../LICENSE");
    assert!(cargo.contains("\nlicense = \"MIT\"\n"));
    assert!(license.starts_with("MIT License\n"));
    assert!(DOCKERFILE.contains("org.opencontainers.image.licenses=\"MIT\""));
    // The release workflow packages it, with the changelog it points to.
    let release = include_str!("../.github/workflows/release.yml");
    assert!(release.contains("LICENSE README.md CHANGELOG.md"));
    assert!(include_str!("../CHANGELOG.md").contains("\n## [Unreleased]\n"));
}
