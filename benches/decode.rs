//! Wire decoder throughput: a realistic stream (32 channels, 20 samples per frame, stimuli and status frames
//! interleaved) decoded in 4 KiB chunks, as a serial reader would deliver it.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ionm_wire::{Decoder, Encoder, Event, MAX_FRAME_LEN, Status, Stimulus};
use std::hint::black_box;

fn stream(n_channels: usize, samples_per_frame: usize, frames: usize) -> Vec<u8> {
    let mut enc = Encoder::new();
    let mut buf = vec![0u8; MAX_FRAME_LEN];
    let mut out = Vec::new();
    let mut values = vec![0i32; n_channels * samples_per_frame];
    for f in 0..frames {
        for (i, v) in values.iter_mut().enumerate() {
            *v = ((i * 7919 + f * 104_729) % (1 << 23)) as i32 - (1 << 22);
        }
        let n = enc
            .samples(&mut buf, (f * samples_per_frame) as u64, n_channels, &values)
            .unwrap();
        out.extend_from_slice(&buf[..n]);
        if f % 10 == 0 {
            let s = Stimulus {
                sample_index: (f * samples_per_frame) as u64,
                stimulator: 1,
                pulses: 1,
                intensity_tenths: 250,
                pulse_width_us: 200,
            };
            let n = enc.stimuli(&mut buf, &[s]).unwrap();
            out.extend_from_slice(&buf[..n]);
        }
        if f % 100 == 0 {
            let n = enc.status(&mut buf, &Status::default()).unwrap();
            out.extend_from_slice(&buf[..n]);
        }
    }
    out
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("wire_decode");
    for (n_ch, spf) in [(16usize, 10usize), (32, 20)] {
        let bytes = stream(n_ch, spf, 2000);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut values = vec![0i32; n_ch * spf];
        group.bench_function(format!("{n_ch}ch_{spf}spf_4KiB_chunks"), |b| {
            b.iter(|| {
                let mut dec = Decoder::new();
                let mut frames = 0u64;
                for chunk in bytes.chunks(4096) {
                    dec.decode(black_box(chunk), |ev| {
                        if let Event::Samples(s) = ev {
                            s.copy_into(&mut values);
                        }
                        frames += 1;
                    });
                }
                black_box((frames, values[0]))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
