//! `firmware-sim` → pseudo-terminal → `ionm live`, as with a real serial device.

use crate::util::*;
use std::time::Duration;

#[test]
fn ten_seconds_over_a_pty_arrive_complete_and_contiguous() {
    let dir = temp_dir("pty10");
    let (_sim, pty) = sim_on_pty(&["--seed", "3"]);
    let events = dir.join("events.jsonl");
    let status = ionm()
        .args([
            "live",
            "--port",
            &pty,
            "--headless",
            "--quiet",
            "--duration",
            "10",
            "--events",
        ])
        .arg(&events)
        .status()
        .unwrap();
    assert!(status.success());
    let ev = read_events(&events);
    let s = summary(&ev);
    assert_eq!(u(s, &["link", "crc_errors"]), 0, "{s}");
    assert_eq!(u(s, &["link", "frames_lost"]), 0, "{s}");
    assert_eq!(u(s, &["gaps"]), 0, "{s}");
    assert_eq!(u(s, &["link", "overruns"]), 0, "{s}");
    assert_eq!(u(s, &["discontinuities"]), 0, "{s}");
    assert!(of_type(&ev, "gap").is_empty());
    // 10 s at 10 kHz; allow for start-up (opening the port, waiting for the first device-info frame).
    let samples = u(s, &["samples"]);
    assert!(samples >= 85_000, "only {samples} samples in 10 s");
    // Every sample accepted is in one contiguous run from the first block to the last.
    let stimuli = u(s, &["stimuli"]);
    assert!(
        stimuli > 100,
        "{stimuli} stimuli: interleaved 4.7 Hz stimulation expected"
    );
    let device = &of_type(&ev, "device")[0]["device"];
    assert_eq!(device["sample_rate_hz"], 10_000);
    assert_eq!(device["channels"].as_array().unwrap().len(), 16);
}

#[test]
fn a_corrupted_link_is_survived_and_its_losses_reported() {
    let dir = temp_dir("corrupt");
    let (_sim, pty) = sim_on_pty(&["--seed", "5", "--scenario", "corrupt-link"]);
    let events = dir.join("events.jsonl");
    let status = ionm()
        .args([
            "live",
            "--port",
            &pty,
            "--headless",
            "--quiet",
            "--duration",
            "8",
            "--events",
        ])
        .arg(&events)
        .status()
        .unwrap();
    assert!(status.success(), "ionm must not fail on a corrupted stream");
    let ev = read_events(&events);
    let s = summary(&ev);
    assert!(u(s, &["link", "crc_errors"]) > 0, "{s}");
    assert_eq!(u(s, &["discontinuities"]), 0, "nothing may be stitched: {s}");
    let gaps = of_type(&ev, "gap");
    assert!(!gaps.is_empty());
    for g in &gaps {
        let (from, to) = (u(g, &["gap", "from"]), u(g, &["gap", "to"]));
        assert!(from < to, "a gap names its sample range: {g}");
        assert_eq!(g["gap"]["cause"], "lost_frames");
    }
    // The stream goes on: most data arrives, and losses are still being reported at the end of the run.
    let end = s["stream_s"].as_f64().unwrap();
    assert!(u(s, &["samples"]) > 40_000, "{s}");
    let last_gap = gaps
        .iter()
        .map(|g| g["stream_s"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(last_gap > end - 3.0, "gaps stopped at {last_gap} s of {end} s");
}

#[test]
fn silence_and_a_device_restart_behind_the_same_path_are_survived() {
    let dir = temp_dir("restart");
    // The stable path a udev rule (or a socat link) would give the device.
    let link = dir.join("ionm-device");
    let (sim1, pty1) = sim_on_pty(&["--seed", "11"]);
    std::os::unix::fs::symlink(&pty1, &link).unwrap();
    let events = dir.join("events.jsonl");
    let ionm = Proc(
        ionm()
            .args(["live", "--headless", "--quiet", "--duration", "14", "--port"])
            .arg(&link)
            .arg("--events")
            .arg(&events)
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_secs(3));
    // The device freezes for 1.5 s: signal lost, then restored.
    sim1.signal("STOP");
    std::thread::sleep(Duration::from_millis(1500));
    sim1.signal("CONT");
    std::thread::sleep(Duration::from_secs(2));
    // The device dies: its pty disappears.
    sim1.signal("KILL");
    drop(sim1);
    std::thread::sleep(Duration::from_millis(1500));
    // It comes back (new process, new pty, new session) behind the same path.
    let (_sim2, pty2) = sim_on_pty(&["--seed", "12"]);
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&pty2, &link).unwrap();
    let mut ionm = ionm;
    assert!(ionm.0.wait().unwrap().success());
    let ev = read_events(&events);
    let kinds: Vec<String> = of_type(&ev, "link")
        .iter()
        .map(|l| l["link"]["kind"].as_str().unwrap().to_owned())
        .collect();
    let pos = |k: &str| {
        kinds
            .iter()
            .position(|x| x == k)
            .unwrap_or_else(|| panic!("no {k} in {kinds:?}"))
    };
    assert!(pos("signal_lost") < pos("signal_restored"), "{kinds:?}");
    let disconnected = pos("disconnected");
    assert!(disconnected > pos("signal_restored"), "{kinds:?}");
    let reconnected = of_type(&ev, "link")
        .into_iter()
        .find(|l| l["link"]["kind"] == "connected" && u(l, &["link", "reconnects"]) >= 1)
        .unwrap_or_else(|| panic!("no reconnect in {kinds:?}"));
    // A second signal_lost covers the time the port was gone.
    assert!(
        kinds.iter().filter(|k| *k == "signal_lost").count() >= 2,
        "{kinds:?}"
    );
    let devices = of_type(&ev, "device");
    assert_eq!(devices.len(), 2, "the restarted device is a new session");
    assert_ne!(
        devices[0]["device"]["session_id"],
        devices[1]["device"]["session_id"]
    );
    // Samples resume after the reconnect without restarting ionm: stream time runs on from the new session.
    let s = summary(&ev);
    let restart_s = devices[1]["stream_s"].as_f64().unwrap();
    assert!(
        s["stream_s"].as_f64().unwrap() > restart_s + 2.0,
        "samples did not resume: {s}"
    );
    let _ = reconnected;
    assert_eq!(u(s, &["discontinuities"]), 0);
    assert!(u(s, &["link", "reconnects"]) >= 1);
}
