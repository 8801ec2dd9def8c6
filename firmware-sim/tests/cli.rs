//! The `firmware-sim` binary: its byte stream decodes cleanly, is deterministic, and honours its options.
//! (Also makes `cargo test --workspace` build the binary that the end-to-end tests in `/tests` drive.)

use ionm_wire::{Decoder, Event};
use std::process::Command;

fn sim(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_firmware-sim"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn stdout_stream_decodes_contiguously() {
    let bytes = sim(&[
        "--duration",
        "2",
        "--speed",
        "max",
        "--channels",
        "32",
        "--rate",
        "20000",
    ]);
    let mut dec = Decoder::new();
    let mut next = 0u64;
    let mut devices = 0;
    let mut stimuli = 0;
    dec.decode(&bytes, |ev| match ev {
        Event::DeviceInfo(d) => {
            assert_eq!((d.n_channels(), d.sample_rate_hz()), (32, 20_000));
            devices += 1;
        }
        Event::Samples(s) => {
            assert_eq!(s.first_index(), next, "contiguous");
            next += s.n_samples() as u64;
        }
        Event::Stimuli(s) => stimuli += s.len(),
        Event::Status(_) => {}
        other => panic!("unexpected {other:?}"),
    });
    let st = dec.stats();
    assert_eq!((st.crc_errors, st.bytes_discarded, st.sequence_gaps), (0, 0, 0));
    assert_eq!(next, 40_000, "exactly --duration seconds of samples");
    assert!(devices >= 2, "device info repeats so a late host can attach");
    assert!(stimuli > 10);
}

#[test]
fn same_seed_same_bytes_and_other_seed_other_bytes() {
    let a = sim(&["--duration", "0.5", "--speed", "max", "--seed", "4"]);
    let b = sim(&["--duration", "0.5", "--speed", "max", "--seed", "4"]);
    let c = sim(&["--duration", "0.5", "--speed", "max", "--seed", "5"]);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn list_scenarios_names_the_builtins() {
    let out = String::from_utf8(sim(&["--list-scenarios"])).unwrap();
    for name in [
        "ssep-stable",
        "ssep-cord-ischemia",
        "mep-loss",
        "noisy-or",
        "corrupt-link",
    ] {
        assert!(out.contains(name), "{name} missing from {out}");
    }
}

#[test]
fn truth_file_is_written() {
    let dir = std::env::temp_dir().join(format!("ionm-sim-truth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let truth = dir.join("truth.json");
    sim(&[
        "--duration",
        "3",
        "--speed",
        "max",
        "--truth",
        truth.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&truth).unwrap()).unwrap();
    assert!(v.is_object());
}

#[test]
fn bad_options_fail_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_firmware-sim"))
        .args(["--scenario", "/nonexistent/scenario.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("neither a built-in scenario"), "{err}");
}
