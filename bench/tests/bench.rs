//! The benchmark binary end to end, at a small size: every part runs against real child
//! processes and the JSON it writes holds what docs/performance.md reads from it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

#[test]
fn a_small_benchmark_runs_every_part_and_reports_each_round() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    let output = Command::new(env!("CARGO_BIN_EXE_hookline-bench"))
        .args(["--requests", "400", "--connections", "4", "--rounds", "2"])
        .args(["--delivery-events", "300", "--overload-limit", "2"])
        .args(["--rate", "50%,300", "--duration", "1"])
        .args(["--recovery", "1", "--recovery-wal-mb", "1"])
        .arg("--hookline")
        .arg(hookline_binary())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("ratio per round:"), "{stdout}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let rounds = json["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2);
    let ratios: Vec<f64> = rounds
        .iter()
        .map(|r| r["ratio"].as_f64().unwrap())
        .collect();
    assert!(ratios.iter().all(|&r| r > 0.0), "{ratios:?}");
    let reported = json["ratio_requests_per_s"].as_f64().unwrap();
    assert!(
        ratios.contains(&reported),
        "{reported} is one of {ratios:?}"
    );
    for round in rounds {
        // 400 measured requests and a 2 % warm-up, every one stored, with ordered ids and then
        // with random ones (a quarter of them liveDesk's, by default).
        for run in ["hookline", "random_ids"] {
            assert_eq!(round[run]["ok"], 400, "{run}");
            assert_eq!(round[run]["store"]["accepted_events"], 408, "{run}");
            assert!(
                round[run]["disk_kb_per_request"].as_f64().unwrap() > 0.0,
                "{run}"
            );
        }
        assert!(round["random_to_ordered"].as_f64().unwrap() > 0.0);
        assert_eq!(round["baseline"]["ok"], 400);
        // The breakdown's runs got the same load, and its parts add up to the durable run.
        let breakdown = &round["breakdown"];
        for run in ["no_store", "no_fsync"] {
            assert_eq!(breakdown[run]["ok"], 400, "{run}: {breakdown}");
            assert_eq!(breakdown[run]["store"]["accepted_events"], 408, "{run}");
        }
        let us = &breakdown["us_per_request"];
        let parts: f64 = ["http", "request_path", "commit", "fsync"]
            .iter()
            .map(|part| us[part].as_f64().unwrap())
            .sum();
        let durable = us["durable"].as_f64().unwrap();
        assert!((parts - durable).abs() < 0.05, "{parts} vs {durable}: {us}");
        let hookline_rps = round["hookline"]["requests_per_s"].as_f64().unwrap();
        assert!(
            (1e6 / hookline_rps - durable).abs() < 0.05 * durable,
            "{us}"
        );
    }
    assert!(
        stdout.contains("where a durable request's time goes"),
        "{stdout}"
    );
    let delivery = &json["delivery"];
    assert_eq!(delivery["complete"], true, "{delivery}");
    let forwarded =
        delivery["drained"].as_u64().unwrap() + delivery["delivered_during_fill"].as_u64().unwrap();
    assert_eq!(forwarded, 300, "{delivery}");
    let overload = &json["overload"];
    assert!(overload["retry_later"].as_u64().unwrap() > 0, "{overload}");
    assert_eq!(overload["unexpected"], 0);
    assert_eq!(overload["accepted"], overload["stored_events"]);
    assert!(json["ratio_random_to_ordered"].as_f64().unwrap() > 0.0);
    assert!(stdout.contains("ratio random ids/ordered ids"), "{stdout}");

    // Open loop: each rate once per kind of ids, every scheduled request answered 2xx; the
    // share of the measured throughput is resolved against the same kind's closed-loop run.
    let open_loop = json["open_loop"].as_array().unwrap();
    let runs: Vec<(&str, &str)> = open_loop
        .iter()
        .map(|r| (r["ids"].as_str().unwrap(), r["rate"].as_str().unwrap()))
        .collect();
    assert_eq!(
        runs,
        [
            ("ordered", "50%"),
            ("ordered", "300/s"),
            ("random", "50%"),
            ("random", "300/s")
        ]
    );
    for run in open_loop {
        assert_eq!(run["ok"], run["scheduled"], "{run}");
        assert!(run["latency"]["max_us"].as_u64().unwrap() > 0, "{run}");
    }
    let ordered = json["hookline"]["requests_per_s"].as_f64().unwrap();
    let half = open_loop[0]["target_per_s"].as_f64().unwrap();
    assert!((half - ordered / 2.0).abs() <= 1.0, "{half} vs {ordered}");
    assert_eq!(open_loop[1]["scheduled"], 300);
    assert!(
        stdout.contains("open loop (latency from each request's due time)"),
        "{stdout}"
    );

    // Recovery: killed with at least the WAL asked for, answered again after the restart.
    let recovery = &json["recovery"]["rounds"][0];
    assert!(
        recovery["wal_mb_at_kill"].as_f64().unwrap() >= 1.0,
        "{recovery}"
    );
    assert!(recovery["acknowledged"].as_u64().unwrap() > 0, "{recovery}");
    assert!(
        recovery["first_2xx_ms"].as_f64().unwrap() > 0.0,
        "{recovery}"
    );
    assert!(stdout.contains("recovery after SIGKILL"), "{stdout}");
}

/// The `hookline` server the benchmark starts. Cargo names only this package's binaries to its
/// tests, so the server is looked up where cargo puts it: next to `hookline-bench`.
/// `cargo test --workspace` has just built it there (the hookline package's integration tests
/// need it). When it is missing or older than its sources (`cargo test -p hookline-bench` on a
/// fresh checkout, or after a change to the server), the cargo running this test builds it.
fn hookline_binary() -> PathBuf {
    let bench = Path::new(env!("CARGO_BIN_EXE_hookline-bench"));
    let sibling = bench.with_file_name("hookline");
    let built = sibling.metadata().and_then(|m| m.modified()).ok();
    match built {
        Some(built) if built >= newest_server_source() => sibling,
        _ => build_hookline(bench),
    }
}

/// The latest modification time of what the `hookline` binary is built from.
fn newest_server_source() -> SystemTime {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    ["src", "fixtures", "Cargo.toml", "Cargo.lock", ".cargo"]
        .iter()
        .map(|path| newest(&root.join(path)))
        .max()
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The latest modification time of a file, or of anything below a directory.
fn newest(path: &Path) -> SystemTime {
    let Ok(meta) = path.metadata() else {
        return SystemTime::UNIX_EPOCH;
    };
    let own = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    if !meta.is_dir() {
        return own;
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| newest(&entry.path()))
        .fold(own, SystemTime::max)
}

/// Builds `hookline` with the cargo running this test, in the profile `hookline-bench` was built
/// with (the name of its directory: `debug` is the `dev` profile), and returns the executable
/// cargo reports.
fn build_hookline(bench: &Path) -> PathBuf {
    let dir = bench.parent().and_then(Path::file_name).unwrap();
    let profile = match dir.to_str().unwrap() {
        "debug" => "dev",
        other => other,
    };
    let output = Command::new(env!("CARGO"))
        .args([
            "build",
            "--locked",
            "--package",
            "hookline",
            "--bin",
            "hookline",
        ])
        .args(["--profile", profile, "--message-format", "json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(output.status.success(), "cargo build of hookline failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["target"]["name"] == "hookline")
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no hookline executable")
}
