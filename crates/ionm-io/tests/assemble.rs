//! The assembler and the reader thread on synthetic streams.

use ionm_core::{Acquired, GapCause, LinkEvent};
use ionm_io::{Assembler, IngestStats, ReaderConfig, ReaderSource, spawn_reader};
use ionm_wire::{ChannelDesc, Decoder, DeviceDesc, Encoder, MAX_FRAME_LEN, Stimulus};
use ringbuf::traits::*;
use std::time::Duration;

const CH: usize = 3;

fn device(enc: &mut Encoder, session: u32, out: &mut Vec<u8>) {
    let ch = [
        ChannelDesc {
            label: "a",
            gain_nv_per_lsb: 20,
        },
        ChannelDesc {
            label: "b",
            gain_nv_per_lsb: 20,
        },
        ChannelDesc {
            label: "c",
            gain_nv_per_lsb: 20,
        },
    ];
    let d = DeviceDesc {
        sample_rate_hz: 10_000,
        adc_min: -(1 << 23),
        adc_max: (1 << 23) - 1,
        session_id: session,
        firmware_version: "test",
        channels: &ch,
    };
    let mut buf = vec![0; MAX_FRAME_LEN];
    let n = enc.device_info(&mut buf, &d).unwrap();
    out.extend_from_slice(&buf[..n]);
}

fn samples(enc: &mut Encoder, first: u64, n: usize, out: &mut Vec<u8>) {
    let values: Vec<i32> = (0..n * CH)
        .map(|i| (first as i32 * CH as i32) + i as i32)
        .collect();
    let mut buf = vec![0; MAX_FRAME_LEN];
    let len = enc.samples(&mut buf, first, CH, &values).unwrap();
    out.extend_from_slice(&buf[..len]);
}

fn assemble(bytes: &[u8]) -> (Vec<Acquired>, IngestStats) {
    let stats = IngestStats::default();
    let mut dec = Decoder::new();
    let mut asm = Assembler::new();
    let mut items = Vec::new();
    dec.decode(bytes, |ev| asm.on_event(ev, &stats, &mut |i| items.push(i)));
    (items, stats)
}

#[test]
fn lost_frame_becomes_a_gap_with_its_sample_range() {
    let mut enc = Encoder::new();
    let mut bytes = Vec::new();
    device(&mut enc, 1, &mut bytes);
    samples(&mut enc, 0, 10, &mut bytes);
    let mut lost = Vec::new();
    samples(&mut enc, 10, 10, &mut lost); // never sent
    samples(&mut enc, 20, 10, &mut bytes);
    let (items, stats) = assemble(&bytes);
    let gap = items
        .iter()
        .find_map(|i| if let Acquired::Gap(g) = i { Some(*g) } else { None })
        .unwrap();
    assert_eq!(
        (gap.from, gap.to, gap.frames, gap.cause),
        (10, 20, 1, GapCause::LostFrames)
    );
    assert!(matches!(items.last(), Some(Acquired::Samples(b)) if b.first_index() == 20));
    assert_eq!(stats.snapshot().gap_samples, 10);
}

#[test]
fn repeated_device_info_is_absorbed_and_a_restart_is_a_new_session() {
    let mut enc = Encoder::new();
    let mut bytes = Vec::new();
    device(&mut enc, 1, &mut bytes);
    samples(&mut enc, 0, 10, &mut bytes);
    device(&mut enc, 1, &mut bytes);
    samples(&mut enc, 10, 10, &mut bytes);
    let mut enc2 = Encoder::new(); // the device restarted: new sequence, new session, indices from 0
    device(&mut enc2, 2, &mut bytes);
    samples(&mut enc2, 0, 10, &mut bytes);
    let (items, stats) = assemble(&bytes);
    let devices = items.iter().filter(|i| matches!(i, Acquired::Device(_))).count();
    assert_eq!(devices, 2);
    assert!(
        !items.iter().any(|i| matches!(i, Acquired::Gap(_))),
        "a restart is not a gap: {items:?}"
    );
    assert_eq!(stats.snapshot().frames_rejected, 0);
}

#[test]
fn frames_that_cannot_be_interpreted_are_rejected_not_merged() {
    let mut enc = Encoder::new();
    let mut bytes = Vec::new();
    samples(&mut enc, 0, 10, &mut bytes); // before any device info
    device(&mut enc, 1, &mut bytes);
    samples(&mut enc, 0, 10, &mut bytes);
    samples(&mut enc, 5, 10, &mut bytes); // overlaps the previous frame
    let mut buf = vec![0; MAX_FRAME_LEN];
    let n = enc.samples(&mut buf, 10, 2, &[1, 2, 3, 4]).unwrap(); // wrong channel count
    bytes.extend_from_slice(&buf[..n]);
    let s = Stimulus {
        sample_index: 3,
        stimulator: 5,
        pulses: 1,
        intensity_tenths: 300,
        pulse_width_us: 200,
    };
    let n = enc.stimuli(&mut buf, &[s]).unwrap();
    bytes.extend_from_slice(&buf[..n]);
    let (items, stats) = assemble(&bytes);
    assert_eq!(stats.snapshot().frames_rejected, 3);
    let blocks: Vec<u64> = items
        .iter()
        .filter_map(|i| {
            if let Acquired::Samples(b) = i {
                Some(b.first_index())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(blocks, vec![0]);
    assert!(matches!(items.last(), Some(Acquired::Stimulus(s)) if s.sample_index == 3));
}

#[test]
fn reader_thread_delivers_a_corrupted_stream_with_counted_losses() {
    let mut enc = Encoder::new();
    let mut bytes = Vec::new();
    device(&mut enc, 7, &mut bytes);
    let mut ends = Vec::new();
    for f in 0..500u64 {
        samples(&mut enc, f * 10, 10, &mut bytes);
        ends.push(bytes.len());
    }
    // Corrupt one byte inside frames 100 and 300 (CRC failure → frame lost → gap).
    for f in [100usize, 300] {
        bytes[ends[f] - 20] ^= 0x55;
    }
    let src = ReaderSource::new("memory", std::io::Cursor::new(bytes));
    let cfg = ReaderConfig {
        ring_capacity: 4096,
        stall_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let (handle, mut cons) = spawn_reader(src, cfg).unwrap();
    while !handle.is_finished() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = handle.stats().snapshot();
    let items: Vec<Acquired> = std::iter::from_fn(|| cons.try_pop()).collect();
    handle.join();
    let gaps: Vec<(u64, u64)> = items
        .iter()
        .filter_map(|i| {
            if let Acquired::Gap(g) = i {
                Some((g.from, g.to))
            } else {
                None
            }
        })
        .collect();
    // Frame f carries samples [10f, 10f + 10).
    assert_eq!(gaps, vec![(1000, 1010), (3000, 3010)]);
    assert_eq!(stats.crc_errors, 2);
    assert_eq!(stats.sample_frames, 498);
    assert!(matches!(
        items.first(),
        Some(Acquired::Link(LinkEvent::Connected { .. }))
    ));
    assert!(matches!(
        items.last(),
        Some(Acquired::Link(LinkEvent::Ended { .. }))
    ));
}

#[test]
fn a_full_ring_drops_data_as_an_explicit_overrun_gap() {
    let mut enc = Encoder::new();
    let mut bytes = Vec::new();
    device(&mut enc, 7, &mut bytes);
    for f in 0..200u64 {
        samples(&mut enc, f * 10, 10, &mut bytes);
    }
    let src = ReaderSource::new("memory", std::io::Cursor::new(bytes));
    let cfg = ReaderConfig {
        ring_capacity: 16,
        stall_timeout: Duration::from_secs(60),
        ..Default::default()
    };
    let (handle, mut cons) = spawn_reader(src, cfg).unwrap();
    // The consumer stalls while the reader runs through the whole stream.
    std::thread::sleep(Duration::from_millis(300));
    let mut items = Vec::new();
    while !(handle.is_finished() && cons.is_empty()) {
        match cons.try_pop() {
            Some(i) => items.push(i),
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    let overruns = handle.stats().snapshot().overruns;
    handle.join();
    assert!(overruns > 0);
    // Blocks received + the overrun gap cover every sample exactly once, in order, with nothing stitched.
    let mut next = 0;
    let mut saw_overrun = false;
    for item in &items {
        match item {
            Acquired::Samples(b) => {
                assert_eq!(b.first_index(), next);
                next = b.end_index();
            }
            Acquired::Gap(g) => {
                assert_eq!((g.cause, g.from), (GapCause::Overrun, next));
                saw_overrun = true;
                next = g.to;
            }
            _ => {}
        }
    }
    assert!(saw_overrun);
    assert_eq!(next, 2000);
    assert!(
        matches!(items.last(), Some(Acquired::Link(LinkEvent::Ended { .. }))),
        "link events are kept"
    );
}
