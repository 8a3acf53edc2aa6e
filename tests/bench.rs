//! The benchmark binary end to end, at a small size: every part runs against real child
//! processes and the JSON it writes holds what README's performance section reads from it.
#![cfg(feature = "bench")]

use std::process::Command;

#[test]
fn a_small_benchmark_runs_every_part_and_reports_each_round() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    let output = Command::new(env!("CARGO_BIN_EXE_hookline-bench"))
        .args(["--requests", "400", "--connections", "4", "--rounds", "2"])
        .args(["--delivery-events", "300", "--overload-limit", "2"])
        .arg("--hookline")
        .arg(env!("CARGO_BIN_EXE_hookline"))
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
        // 400 measured requests and a 2 % warm-up, every one stored.
        assert_eq!(round["hookline"]["ok"], 400);
        assert_eq!(round["hookline"]["store"]["accepted_events"], 408);
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
}
