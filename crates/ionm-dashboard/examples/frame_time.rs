//! Measures the CPU time of dashboard frames, headless (egui_kittest, no GPU, no display): the live view with
//! 32 channels at 20 kHz (5 s shown, 1920 × 1080), the averages view (6 traces) and the trends view, at 60
//! frames per second of stream time. Reports the median and the 99th percentile of the egui pass (layout and
//! shapes, including the source's re-decimation) and of tessellation, and the pipeline-side cost of
//! decimating 5 s × 32 channels of raw samples in one go.
//!
//! ```text
//! cargo run --release -p ionm-dashboard --example frame_time [-- FRAMES]
//! ```

#![allow(clippy::print_stdout)]

use egui_kittest::Harness;
use ionm_dashboard::demo::{DemoOptions, demo_case};
use ionm_dashboard::{
    DashboardApp, DashboardConfig, ManualClock, ScriptedSource, SyntheticConfig, View, min_max_decimate,
};
use std::hint::black_box;
use std::time::Instant;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn report(name: &str, mut v: Vec<f64>) {
    v.sort_by(f64::total_cmp);
    println!(
        "{name:<34} median {:7.2} ms   p99 {:7.2} ms   max {:7.2} ms",
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        v[v.len() - 1]
    );
}

fn measure(view: View, frames: usize) {
    let clock = ManualClock::new(0.0);
    let src = ScriptedSource::from_demo(demo_case(&DemoOptions::default()), clock.shared())
        .with_live_traces(SyntheticConfig {
            channels: 32,
            sample_rate_hz: 20_000,
            window_s: 10.0,
            ..SyntheticConfig::default()
        })
        .starting_at(540.0);
    let config = DashboardConfig {
        view,
        live_seconds: 5.0,
        ..DashboardConfig::default()
    };
    let app = DashboardApp::with_config(Box::new(src), clock.shared(), config);
    let mut h = Harness::builder()
        .with_size(egui::vec2(1920.0, 1080.0))
        .build_ui_state(|ui, app: &mut DashboardApp| app.dashboard_ui(ui), app);
    let ppp = h.ctx.pixels_per_point();
    for _ in 0..30 {
        clock.advance_s(1.0 / 60.0);
        h.step();
    }
    let (mut pass, mut tess, mut total) = (Vec::new(), Vec::new(), Vec::new());
    let mut vertices = 0;
    for _ in 0..frames {
        clock.advance_s(1.0 / 60.0);
        let t0 = Instant::now();
        h.step();
        let t1 = Instant::now();
        let shapes = h.output().shapes.clone();
        let t2 = Instant::now();
        let prims = h.ctx.tessellate(shapes, ppp);
        let t3 = Instant::now();
        vertices = prims
            .iter()
            .map(|p| match &p.primitive {
                egui::epaint::Primitive::Mesh(m) => m.vertices.len(),
                egui::epaint::Primitive::Callback(_) => 0,
            })
            .sum::<usize>();
        black_box(prims);
        let (a, b) = ((t1 - t0).as_secs_f64() * 1e3, (t3 - t2).as_secs_f64() * 1e3);
        pass.push(a);
        tess.push(b);
        total.push(a + b);
    }
    println!(
        "{} view, {frames} frames, {vertices} vertices per frame:",
        view.label()
    );
    report("  egui pass (incl. source)", pass);
    report("  tessellation", tess);
    report("  pass + tessellation", total);
}

fn main() {
    let frames: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(600)
        .max(10);
    measure(View::Live, frames);
    measure(View::Averages, frames / 2);
    measure(View::Trends, frames / 2);

    // Pipeline side: 5 s × 20 kHz × 32 channels of samples to 1920 columns, per frame, if done naively.
    let samples: Vec<f32> = (0..100_000).map(|i| ((i as f32) * 0.013).sin()).collect();
    let mut out = vec![(0.0f32, 0.0f32); 1920];
    let mut times = Vec::new();
    for _ in 0..50 {
        let t0 = Instant::now();
        for _ in 0..32 {
            min_max_decimate(black_box(&samples), 1920, &mut out);
        }
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        black_box(&out);
    }
    println!("pipeline side, 32 × 100 000 samples → 1920 columns:");
    report("  min_max_decimate", times);
}
