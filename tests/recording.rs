//! Recording and replay end to end: `--record` → BDF+ → `ionm replay`, crash safety, `ionm info`, `ionm export`.

use crate::util::*;
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;

fn without_link(ev: Vec<Value>) -> Vec<Value> {
    ev.into_iter()
        .filter(|e| e["type"] != "link")
        .map(|mut e| {
            if let Some(o) = e.as_object_mut() {
                o.remove("link");
            }
            e
        })
        .collect()
}

#[test]
fn a_recording_replays_to_the_live_sessions_events() {
    let dir = temp_dir("rec-replay");
    let (rec, live, replay) = (
        dir.join("case.bdf"),
        dir.join("live.jsonl"),
        dir.join("replay.jsonl"),
    );
    let ok = ionm()
        .args([
            "demo",
            "--headless",
            "--quiet",
            "--speed",
            "max",
            "--scenario",
            "ssep-cord-ischemia",
        ])
        .args(["--sim-seconds", "240", "--seed", "5", "--record"])
        .arg(&rec)
        .arg("--events")
        .arg(&live)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let ok = ionm()
        .arg("replay")
        .arg(&rec)
        .args(["--quiet", "--events"])
        .arg(&replay)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let (live, replay) = (
        without_link(read_events(&live)),
        without_link(read_events(&replay)),
    );
    assert!(live.iter().filter(|e| e["type"] == "average").count() > 30);
    assert_eq!(live, replay);

    // `ionm info` sees the channels, the trigger channel and the stimuli.
    let out = ionm().arg("info").arg(&rec).arg("--json").output().unwrap();
    assert!(out.status.success());
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    let labels: Vec<&str> = info["signals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert!(
        labels.contains(&"CP3-Fz") && labels.contains(&"Stimulus"),
        "{labels:?}"
    );
    let stim = &info["annotations"];
    assert!(stim["trigger_stimuli"].as_u64().unwrap() > 1000);
    // A reader that stops reading (`ionm info FILE | head`) ends ionm quietly: the read end is closed before
    // ionm writes, so every write fails with a broken pipe.
    let mut child = ionm()
        .arg("info")
        .arg(&rec)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("Error"), "{err}");
    assert_eq!(stim["trigger_stimuli"], stim["stimulus_annotations"]);
    assert!(
        (info["duration_s"].as_f64().unwrap() - 240.0).abs() < 0.2,
        "{info}"
    );

    // `ionm export` writes one CSV row per average.
    let out = ionm().arg("export").arg(dir.join("live.jsonl")).output().unwrap();
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    let averages = live.iter().filter(|e| e["type"] == "average").count();
    assert_eq!(csv.lines().count(), averages + 1);
    assert!(csv.starts_with("stream_s,trace,"));
}

#[test]
fn a_killed_recorder_leaves_a_readable_file_up_to_the_last_flush() {
    let dir = temp_dir("rec-kill");
    let rec = dir.join("case.bdf");
    let child = ionm()
        .args(["demo", "--headless", "--quiet", "--speed", "realtime", "--record"])
        .arg(&rec)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child = Proc(child);
    std::thread::sleep(Duration::from_secs(8));
    child.signal("KILL");
    drop(child);
    let out = ionm().arg("info").arg(&rec).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Flushed every second: at most ~1 s lost, plus start-up.
    let secs = info["duration_s"].as_f64().unwrap();
    assert!(secs >= 6.0, "only {secs} s readable after 8 s of recording");
    assert!(info["annotations"]["trigger_stimuli"].as_u64().unwrap() > 100);
}
