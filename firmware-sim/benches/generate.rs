//! Throughput of the signal model at 32 channels × 20 kHz (the brief asks for ≥ 20× real time in release).
//!
//! Criterion reports elements/s = sample instants per second of wall time; the real-time factor is that number
//! divided by 20 000.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use firmware_sim::{Scenario, SimConfig, Simulator};
use std::hint::black_box;

const FS: u32 = 20_000;
const CHANNELS: usize = 32;
/// One second of data per iteration, in blocks of 20 instants (1 ms), as the transport would ask for it.
const BLOCK: usize = 20;
const BLOCKS: usize = FS as usize / BLOCK;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("generate");
    g.throughput(Throughput::Elements(FS as u64));
    g.sample_size(20);
    for name in ["ssep-stable", "noisy-or"] {
        let config = SimConfig {
            channels: CHANNELS,
            sample_rate_hz: FS,
            seed: 7,
            mains_hz: 50.0,
            scenario: Scenario::builtin(name).expect("built-in"),
        };
        let mut sim = Simulator::new(config).expect("valid config");
        sim.set_record_sweeps(false);
        let mut out = vec![0i32; BLOCK * CHANNELS];
        let mut stim = Vec::with_capacity(64);
        g.bench_function(format!("{name}/32ch_20kHz_1s"), |b| {
            b.iter(|| {
                for _ in 0..BLOCKS {
                    stim.clear();
                    sim.generate(BLOCK, &mut out, &mut stim);
                }
                black_box(&out);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
