//! `min_max_decimate`, `min_max_decimate_pairs`, `LiveTraces::reshape` and a steady-state
//! `DashboardSource::live_traces` allocate nothing: checked with a counting global allocator, alone in this
//! test binary so that no other test allocates meanwhile (the counter is per thread anyway).

// `GlobalAlloc` is an unsafe trait: this file is the only unsafe code of the crate, and it only counts calls
// and forwards them to the system allocator.
#![allow(unsafe_code)]

use ionm_dashboard::{
    DashboardSource, LiveTraces, ManualClock, ScriptedSource, SyntheticConfig, TraceKind, min_max_decimate,
    min_max_decimate_pairs,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // Const-initialised, no destructor: reading it never allocates.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

struct Counting;

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the `GlobalAlloc` contract;
// the only addition is a thread-local counter increment, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: `ptr` was allocated by `System` through this allocator with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decimation_and_steady_state_live_traces_do_not_allocate() {
    let samples: Vec<f32> = (0..100_000).map(|i| ((i as f32) * 0.01).sin()).collect();
    let mut out = vec![(0.0f32, 0.0f32); 1920];
    let mut coarse = vec![(0.0f32, 0.0f32); 640];

    let clock = ManualClock::new(0.0);
    let mut src = ScriptedSource::new(Vec::new(), clock.shared()).with_live_traces(SyntheticConfig {
        channels: 8,
        sample_rate_hz: 2000,
        window_s: 2.0,
        ..SyntheticConfig::default()
    });
    let mut lt = LiveTraces::default();
    clock.advance_s(3.0);
    // First call sizes the buffers.
    assert!(src.live_traces(TraceKind::Filtered, 2.0, 640, &mut lt));

    // The counter is live: an allocation is seen.
    let probe = allocations();
    drop(std::hint::black_box(vec![1u8; 16]));
    assert!(allocations() > probe);

    let before = allocations();
    min_max_decimate(&samples, 1920, &mut out);
    min_max_decimate_pairs(&out, 640, &mut coarse);
    lt.reshape(8, 640);
    clock.advance_s(0.5);
    assert!(src.live_traces(TraceKind::Raw, 2.0, 640, &mut lt));
    let after = allocations();
    assert_eq!(after - before, 0, "allocations on the steady-state path");
    // And the work was done.
    assert!(out.iter().all(|p| p.0 <= p.1));
    assert!(lt.channels[7].columns.iter().all(|p| p.0.is_finite()));
}
