//! Writes the committed recording fixture and what it must contain, from the simulator's stream itself (not from
//! the recording): `tests/data/recording.bdf` (+ its sidecar), `recording_expected.json` and
//! `recording_samples.npy` (the delivered samples, int32, one row per sample instant).
//!
//! `cargo run -p ionm-record --example make_fixture` — then `python3 tests/data/check_recording.py` checks the
//! file with pyedflib and MNE against the expectations.

use firmware_sim::{Scenario, SimConfig, Simulator};
use ionm_core::events::{AlarmClass, AlarmEvent, AlarmKind, AlarmState, Event, MarkerEvent};
use ionm_core::{Acquired, Gap, GapCause, SampleBlock};
use ionm_edf::StartDateTime;
use ionm_record::{RecorderConfig, RecorderStats, RecordingWriter};
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

const RATE: u32 = 2_000;
const SAMPLES: u64 = 6_000;
/// A gap that starts inside a record and ends in the next; one at a record boundary (records are 200 samples).
const GAPS: [(u64, u64); 2] = [(2_345, 2_700), (4_000, 4_200)];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let config = SimConfig {
        channels: 4,
        sample_rate_hz: RATE,
        seed: 5,
        mains_hz: 50.0,
        scenario: Scenario::default(),
    };
    let mut sim = Simulator::new(config)?;
    let device = Arc::new(sim.device_info());
    let nch = device.n_channels();
    let mut items = vec![Acquired::Device(device.clone())];
    let mut rows: Vec<i32> = Vec::new();
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut stimuli = Vec::new();
    let mut buf = vec![0i32; 5 * nch];
    let mut stims = Vec::new();
    let mut at = 0;
    while at < SAMPLES {
        // Blocks of 5 instants (2.5 ms); the gap bounds are multiples of 5.
        let n = 5;
        stims.clear();
        sim.generate(n, &mut buf, &mut stims);
        for s in &stims {
            items.push(Acquired::Stimulus(*s));
            stimuli.push(*s);
        }
        let in_gap = GAPS.iter().any(|&(f, t)| f <= at && at < t);
        if !in_gap {
            if let Some(&(f, t)) = GAPS.iter().find(|&&(_, t)| t == at) {
                items.push(Acquired::Gap(Gap {
                    cause: GapCause::LostFrames,
                    from: f,
                    to: t,
                    frames: 3,
                }));
            }
            items.push(Acquired::Samples(SampleBlock::from_interleaved(
                at,
                nch,
                &buf[..n * nch],
            )?));
            rows.extend_from_slice(&buf[..n * nch]);
            match runs.last_mut() {
                Some((f, len)) if *f + *len == at => *len += n as u64,
                _ => runs.push((at, n as u64)),
            }
        }
        at += n as u64;
    }
    let events = vec![
        Event::Alarm(AlarmEvent {
            stream_s: 1.0,
            id: 7,
            trace: Some("CP3-Fz/right_median".into()),
            kind: AlarmKind::AmplitudeDrop,
            class: AlarmClass::Clinical,
            state: AlarmState::Raised,
            value: Some(0.42),
            threshold: Some(0.5),
            systemic: false,
            detector: "block".into(),
            message: "N20-P25 at 42% of baseline".into(),
        }),
        Event::Marker(MarkerEvent {
            stream_s: 2.0,
            kind: "incision".into(),
            text: "skin incision".into(),
        }),
    ];

    let path = dir.join("recording.bdf");
    let rec_config = RecorderConfig {
        start: Some(StartDateTime {
            year: 2025,
            month: 1,
            day: 2,
            hour: 3,
            minute: 4,
            second: 5,
        }),
        protocol: Some("name = \"fixture\"\nmodalities = [\"ssep\"]\n".into()),
        ..Default::default()
    };
    let mut w = RecordingWriter::new(&path, rec_config, Arc::new(RecorderStats::default()))?;
    for (k, item) in items.iter().enumerate() {
        w.handle(item)?;
        if k == items.len() / 2 {
            for e in &events {
                w.handle_event(e);
            }
        }
    }
    let summary = w.finish()?;

    let expected = json!({
        "comment": "Written by examples/make_fixture.rs from the simulator's stream (not from the recording).",
        "device": &*device,
        "first_index": 0,
        "record_samples": 200,
        "runs": runs,
        "gaps": GAPS.iter().map(|&(f, t)| json!({"from": f, "to": t, "cause": "lost_frames", "frames": 3})).collect::<Vec<_>>(),
        "stimuli": stimuli,
        "events": events,
        "samples_file": "recording_samples.npy",
        "records": summary.files[0].counts.records,
    });
    std::fs::write(
        dir.join("recording_expected.json"),
        serde_json::to_string_pretty(&expected)? + "\n",
    )?;

    // NumPy .npy v1.0: magic, header length, a dict padded to a multiple of 64 bytes, then the data.
    let n_rows = rows.len() / nch;
    let mut header = format!("{{'descr': '<i4', 'fortran_order': False, 'shape': ({n_rows}, {nch}), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::fs::File::create(dir.join("recording_samples.npy"))?;
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    for v in rows {
        f.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}
