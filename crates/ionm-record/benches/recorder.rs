//! Throughput of the recorder and the replay, 32 channels at 20 kHz (a large IONM montage). Figures to read:
//! - `record/writer_32ch_20k`: the synchronous `RecordingWriter` writing 5 s of stream (BDF+C, 0.1 s records,
//!   flush with fsync every second of stream) into a file; throughput in sample instants (× 32 values).
//! - `record/threaded_32ch_20k`: the same through `Recorder` (feeder packing blocks, bounded queue, recorder
//!   thread), from the first `try_send` to `finish()` returning.
//! - `replay/32ch_20k`: `ReplaySource` reading that file back to the end.
//!
//! Real time is 20 000 instants/s; the margin is the ratio.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ionm_core::{Acquired, ChannelInfo, DeviceInfo, Rng, SampleBlock, Stimulator, StimulusEvent};
use ionm_record::{Recorder, RecorderConfig, RecorderStats, RecordingWriter, ReplayConfig, ReplaySource};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

const RATE: u32 = 20_000;
const NCH: usize = 32;
const SECONDS: u64 = 5;

fn stream() -> Vec<Acquired> {
    let device = Arc::new(DeviceInfo {
        protocol_version: 1,
        sample_rate_hz: RATE,
        channels: (0..NCH)
            .map(|i| ChannelInfo {
                label: format!("C{i}"),
                gain_nv_per_lsb: 24,
            })
            .collect(),
        adc_min: -(1 << 23),
        adc_max: (1 << 23) - 1,
        firmware_version: "bench".into(),
        session_id: 1,
    });
    let mut rng = Rng::new(1);
    let mut items = vec![Acquired::Device(device)];
    // Blocks of 20 instants (1 ms), as a device sends them; a stimulus every 50 ms.
    let per = 20;
    let mut values = vec![0i32; per * NCH];
    for b in 0..(u64::from(RATE) * SECONDS / per as u64) {
        let first = b * per as u64;
        if first.is_multiple_of(1000) {
            items.push(Acquired::Stimulus(StimulusEvent {
                sample_index: first + 7,
                stimulator: Stimulator::LeftMedian,
                intensity_tenths: 250,
                pulse_width_us: 200,
                pulses: 1,
            }));
        }
        for v in &mut values {
            *v = (rng.next_u64() % 200_000) as i32 - 100_000;
        }
        items.push(Acquired::Samples(
            SampleBlock::from_interleaved(first, NCH, &values).unwrap(),
        ));
    }
    items
}

fn path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ionm-record-bench-{}-{name}", std::process::id()))
}

fn bench(c: &mut Criterion) {
    let items = stream();
    let instants = u64::from(RATE) * SECONDS;
    let mut g = c.benchmark_group("record");
    g.sample_size(10);
    g.throughput(Throughput::Elements(instants));
    let p = path("writer.bdf");
    g.bench_function("writer_32ch_20k", |b| {
        b.iter(|| {
            let mut w =
                RecordingWriter::new(&p, RecorderConfig::default(), Arc::new(RecorderStats::default()))
                    .unwrap();
            for item in &items {
                w.handle(item).unwrap();
            }
            black_box(w.finish().unwrap());
        })
    });
    let q = path("threaded.bdf");
    g.bench_function("threaded_32ch_20k", |b| {
        b.iter(|| {
            let mut rec = Recorder::create(&q, RecorderConfig::default()).unwrap();
            for item in &items {
                rec.try_send(item);
            }
            let stats = rec.stats().clone();
            black_box(rec.finish().unwrap());
            assert_eq!(
                stats.snapshot().dropped_items,
                0,
                "queue overflowed: figure not meaningful"
            );
        })
    });
    g.finish();
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(instants));
    g.bench_function("32ch_20k", |b| {
        b.iter(|| {
            let mut src = ReplaySource::open(&p, &ReplayConfig::default()).unwrap();
            let mut n = 0usize;
            while let Some(item) = src.next_item().unwrap() {
                if let Acquired::Samples(b) = item {
                    n += b.n_samples();
                }
            }
            assert_eq!(n as u64, instants);
        })
    });
    g.finish();
    for f in [&p, &q] {
        let _ = std::fs::remove_file(f);
        let _ = std::fs::remove_file(ionm_record::sidecar_path(f));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
