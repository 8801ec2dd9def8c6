//! Proof that the data path does not allocate after start-up: a counting global allocator (this file is its
//! own test binary), counting only on the test's thread, around a long run with stimuli, gaps, rejections,
//! flushes, block and moving averages, measurements and reference tracking.
#![allow(unsafe_code)]

mod common;

use common::*;
use ionm_core::{Gap, GapCause, SampleBlock, Stimulator};
use ionm_dsp::{AverageView, DropReason, DspSink, Engine, Protocol, SweepView};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Default)]
struct Count {
    sweeps: u64,
    averages: u64,
    dropped: u64,
    filtered: u64,
    found: u64,
}

impl DspSink for Count {
    fn filtered(&mut self, _: usize, _: u64, data: &[f32]) {
        self.filtered += data.len() as u64;
    }
    fn sweep(&mut self, _: &SweepView<'_>) {
        self.sweeps += 1;
    }
    fn dropped(&mut self, _: usize, _: &ionm_core::StimulusEvent, _: DropReason) {
        self.dropped += 1;
    }
    fn average(&mut self, a: &AverageView<'_>) {
        self.averages += 1;
        self.found += a.measurement.peaks.iter().flatten().count() as u64;
    }
}

#[test]
fn the_data_path_does_not_allocate() {
    let mut protocol = Protocol::preset("ssep-upper").unwrap();
    for c in &mut protocol.channels {
        c.average.sweeps = 10;
    }
    protocol.channels[4].average.mode = ionm_dsp::average::AverageMode::Moving { every: 3 };
    let labels = ["Erb L", "Erb R", "Cv5-Fz", "CP4-Fz", "CP3-Fz"];
    let dev = device(10_000, &labels, 50);
    let mut e = Engine::new(&protocol, &dev).unwrap();
    let mut sink = Count::default();
    let mut rng = ionm_core::Rng::new(3);
    let nc = labels.len();
    let per = ionm_core::MAX_BLOCK_VALUES / nc;
    let mut block = SampleBlock::empty();
    let mut at = 0u64;
    let mut next_stim = 3000u64;
    let mut left = true;

    let mut run = |e: &mut Engine, sink: &mut Count, seconds: u64, with_gap: bool| {
        let end = at + seconds * 10_000;
        let mut k = 0;
        while at < end {
            while next_stim < at + per as u64 {
                let s = if left {
                    Stimulator::LeftMedian
                } else {
                    Stimulator::RightMedian
                };
                e.push_stimulus(&stim(next_stim, s), sink);
                left = !left;
                next_stim += 1064;
            }
            block
                .fill(at, nc, per, |dst| {
                    for (i, v) in dst.iter_mut().enumerate() {
                        // Noise, a rail hit now and then, a response-like wiggle.
                        *v = (rng.normal() * 200.0) as i32 + ((i % 97) as i32 - 48) * 3;
                        if rng.below(40_000) == 0 {
                            *v = ADC_MAX;
                        }
                    }
                })
                .unwrap();
            e.push_block(&block, sink).unwrap();
            at += per as u64;
            k += 1;
            if k % 7 == 0 {
                e.flush_ready(sink);
            }
            if with_gap && k == 200 {
                let g = Gap {
                    cause: GapCause::LostFrames,
                    from: at,
                    to: at + 1234,
                    frames: 3,
                };
                e.push_gap(&g, sink);
                at += 1234;
            }
        }
    };

    // Warm-up: everything allocated lazily by dependencies (FFT twiddles are made at plan time) is done here.
    run(&mut e, &mut sink, 8, true);
    for t in 0..e.trace_count() {
        if let Some(r) = e.reference_from_latest(t) {
            assert!(e.set_reference(t, Some(r)));
        }
    }
    let before = Count { ..sink };
    let mut sink = Count::default();
    COUNTING.with(|c| c.set(true));
    run(&mut e, &mut sink, 40, true);
    e.finish(&mut sink);
    COUNTING.with(|c| c.set(false));
    let allocs = ALLOCS.load(Ordering::Relaxed);
    assert!(before.averages > 0);
    assert!(
        sink.sweeps > 300 && sink.averages > 30 && sink.dropped > 0 && sink.filtered > 0,
        "{}",
        sink.sweeps
    );
    assert!(e.counts(0).unwrap().saturated > 0, "the rail hits were exercised");
    assert_eq!(allocs, 0, "allocations on the data path");
}
