//! The committed recording (tests/data/recording.bdf, written by examples/make_fixture.rs and checked with
//! pyedflib and MNE by tests/data/check_recording.py) replays to the stream it was recorded from, as described
//! by recording_expected.json and recording_samples.npy (written from the simulator's stream, not from the file).
//! This also pins format version 1: later readers must keep reading it.

mod common;

use common::{Summary, replay_all};
use ionm_core::{DeviceInfo, GapCause, StimulusEvent};
use ionm_record::{ReplayConfig, ReplaySource};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Reads a little-endian int32 .npy file written by make_fixture (v1.0 header).
fn read_npy(path: &Path) -> Vec<i32> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.contains("'<i4'"), "{header}");
    bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[test]
fn the_committed_recording_replays_to_its_source_stream() {
    let exp: Value =
        serde_json::from_str(&std::fs::read_to_string(data("recording_expected.json")).unwrap()).unwrap();
    let device: DeviceInfo = serde_json::from_value(exp["device"].clone()).unwrap();
    let nch = device.n_channels();
    let samples = read_npy(&data("recording_samples.npy"));
    let mut runs = Vec::new();
    let mut row = 0;
    for r in exp["runs"].as_array().unwrap() {
        let (first, n) = (r[0].as_u64().unwrap(), r[1].as_u64().unwrap() as usize);
        runs.push((first, samples[row * nch..(row + n) * nch].to_vec()));
        row += n;
    }
    assert_eq!(row * nch, samples.len());
    let mut stimuli: Vec<StimulusEvent> = serde_json::from_value(exp["stimuli"].clone()).unwrap();
    stimuli.sort_by_key(|s| (s.sample_index, s.stimulator.code()));

    for config in [
        ReplayConfig::default(),
        ReplayConfig {
            read_sidecar: false,
            ..Default::default()
        },
    ] {
        let src = ReplaySource::open(data("recording.bdf"), &config).unwrap();
        assert!(src.is_native());
        assert_eq!(src.sidecar().is_some(), config.read_sidecar);
        let (got, _): (Summary, _) = replay_all(&data("recording.bdf"), &config);
        assert_eq!(got.devices, vec![device.clone()]);
        assert_eq!(got.runs, runs);
        let gaps: Vec<(u64, u64, GapCause, u32)> = got
            .gaps
            .iter()
            .map(|g| (g.from, g.to, g.cause, g.frames))
            .collect();
        let want: Vec<(u64, u64, GapCause, u32)> = exp["gaps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["from"].as_u64().unwrap(),
                    g["to"].as_u64().unwrap(),
                    GapCause::LostFrames,
                    3,
                )
            })
            .collect();
        assert_eq!(gaps, want);
        assert_eq!(got.stimuli, stimuli);
    }
}
