//! Acceptance against SciPy references (tests/data/*.json, made by tests/data/make_fixtures.py).

mod common;

use common::*;
use ionm_core::Stimulator;
use ionm_dsp::design::{Edge, FilterSpec, NotchSpec, design};
use ionm_dsp::filter::{FftWork, FirKernel, StreamingFir};
use ionm_dsp::{Engine, Protocol, Verdict};
use realfft::RealFftPlanner;
use std::sync::Arc;

fn spec_of(v: &serde_json::Value) -> FilterSpec {
    let edge = |k: &str| {
        v.get(k).filter(|e| !e.is_null()).map(|e| {
            let e = f64s(e);
            Edge {
                cutoff_hz: e[0],
                transition_hz: e[1],
            }
        })
    };
    let notch = v.get("notch").filter(|n| !n.is_null()).map(|n| NotchSpec {
        mains_hz: n["mains_hz"].as_f64().unwrap(),
        harmonics: n["harmonics"].as_u64().unwrap() as u32,
        width_hz: n["width_hz"].as_f64().unwrap(),
        transition_hz: n["transition_hz"].as_f64().unwrap(),
        attenuation_db: n["attenuation_db"].as_f64().unwrap(),
    });
    FilterSpec {
        highpass: edge("highpass"),
        lowpass: edge("lowpass"),
        attenuation_db: v["attenuation_db"].as_f64().unwrap(),
        notch,
    }
}

#[test]
fn designed_taps_equal_scipy_firwin() {
    let data = fixture("filters.json");
    for (name, c) in data.as_object().unwrap() {
        let fs = c["fs"].as_f64().unwrap();
        let d = design(&spec_of(&c["spec"]), fs).unwrap();
        assert_eq!(d.len(), c["taps"].as_u64().unwrap() as usize, "{name}");
        // Same term list (lengths from kaiserord, β from kaiser_beta).
        let terms = c["terms"].as_array().unwrap();
        assert_eq!(d.terms.len(), terms.len(), "{name}");
        for (t, r) in d.terms.iter().zip(terms) {
            let r = f64s(r);
            assert_eq!(t.taps, r[2] as usize, "{name}");
            assert!(
                (t.beta - r[3]).abs() < 1e-12 && (t.cutoff_hz - r[1]).abs() < 1e-9,
                "{name}"
            );
        }
        // Both sides compute in f64; they differ only by libm/Bessel rounding (~1e-16 relative per tap), so
        // 1e-12 absolute on taps of magnitude ≤ 0.5 is a wide margin that still catches any formula slip.
        let idx = c["tap_index"].as_array().unwrap();
        let val = f64s(&c["tap_value"]);
        for (i, v) in idx.iter().zip(val) {
            let i = i.as_u64().unwrap() as usize;
            assert!(
                (d.taps[i] - v).abs() < 1e-12,
                "{name} tap {i}: {} vs {v}",
                d.taps[i]
            );
        }
        let sum: f64 = d.taps.iter().sum();
        let sumsq: f64 = d.taps.iter().map(|h| h * h).sum();
        assert!((sum - c["tap_sum"].as_f64().unwrap()).abs() < 1e-10, "{name}");
        assert!(
            (sumsq / c["tap_sumsq"].as_f64().unwrap() - 1.0).abs() < 1e-10,
            "{name}"
        );
    }
}

#[test]
fn frequency_response_equals_scipy_freqz_and_meets_tolerances() {
    let data = fixture("filters.json");
    for (name, c) in data.as_object().unwrap() {
        let fs = c["fs"].as_f64().unwrap();
        let d = design(&spec_of(&c["spec"]), fs).unwrap();
        // |H| against scipy.signal.freqz: the same sums in f64 (≤ 11163 terms of ≤ 0.5): 1e-9 absolute.
        for (f, m) in f64s(&c["freq"]).iter().zip(f64s(&c["mag"])) {
            let a = d.amplitude(*f).abs();
            assert!((a - m).abs() < 1e-9, "{name} at {f} Hz: {a} vs {m}");
        }
        // Pass/stop bands: the tolerance (sum of the Kaiser ripples of the terms, ×1.2) was checked against
        // SciPy's own design by the generator; our design must meet it too.
        let tol = c["tolerance"].as_f64().unwrap();
        for b in c["bands"].as_array().unwrap() {
            let (kind, lo, hi) = (
                b[0].as_str().unwrap(),
                b[1].as_f64().unwrap(),
                b[2].as_f64().unwrap(),
            );
            for k in 0..=200 {
                let f = lo + (hi - lo) * f64::from(k) / 200.0;
                let a = d.amplitude(f);
                let err = if kind == "pass" { (a - 1.0).abs() } else { a.abs() };
                assert!(err <= tol, "{name} {kind} band at {f} Hz: error {err} > {tol}");
            }
        }
    }
}

fn rel_err(ours: &[f64], reference: &[f64]) -> f64 {
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    ours.iter()
        .zip(reference)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}

#[test]
fn streaming_filter_equals_scipy_zero_phase_convolution() {
    let fx = fixture("filtered.json");
    let filters = fixture("filters.json");
    let n = fx["signal"]["n"].as_u64().unwrap() as usize;
    let every = fx["every"].as_u64().unwrap() as usize;
    let raw = test_signal(n);
    for (name, case) in fx["cases"].as_object().unwrap() {
        let fs = case["fs"].as_f64().unwrap();
        let d = design(&spec_of(&filters[name]["spec"]), fs).unwrap();
        let reference = f64s(&case["y"]);
        // Filter level: input relative to the first sample (as the engine does); the band-pass has zero DC
        // gain, so the reference needs no offset (|Σh| < 1e-12).
        assert!(d.dc_gain().abs() < 1e-12);
        let x: Vec<f32> = raw.iter().map(|v| (v - raw[0]) as f32 * 0.1).collect();
        let mut planner = RealFftPlanner::new();
        let kernel = Arc::new(FirKernel::new(&d, None, &mut planner).unwrap());
        let mut work = FftWork::new();
        let mut f = StreamingFir::new(kernel);
        let mut y = Vec::new();
        for c in x.chunks(333) {
            f.push(c, &mut work, &mut |o| y.extend_from_slice(o));
        }
        f.finish(&mut work, &mut |o| y.extend_from_slice(o));
        assert_eq!(y.len(), n);
        let ours: Vec<f64> = y.iter().step_by(every).map(|v| f64::from(*v)).collect();
        // Acceptance: ≤ 1e-4 relative (max error / max |reference|); f32 FFTs give ≈ 1e-6.
        let e = rel_err(&ours, &reference);
        assert!(e <= 1e-4, "{name}: relative error {e}");
    }
}

#[test]
fn engine_filtered_stream_equals_scipy() {
    let fx = fixture("filtered.json");
    let n = fx["signal"]["n"].as_u64().unwrap() as usize;
    let every = fx["every"].as_u64().unwrap() as usize;
    let raw = test_signal(n);
    for (name, preset, rate) in [
        ("ssep_cortical_10k", "ssep-upper", 10_000),
        ("baep_20k", "baep", 20_000),
    ] {
        let text = format!(
            "[[channel]]\nlabel = \"X\"\nmodality = \"{preset}\"\nstimulators = [\"{}\"]\n",
            if preset == "baep" {
                "left_ear"
            } else {
                "left_median"
            }
        );
        let protocol = Protocol::from_toml_str(&text).unwrap();
        let mut engine = Engine::new(&protocol, &device(rate, &["X"], 100)).unwrap();
        let mut sink = Collect {
            keep_filtered: true,
            ..Collect::default()
        };
        for b in blocks(0, &raw, 100) {
            engine.push_block(&b, &mut sink).unwrap();
        }
        engine.finish(&mut sink);
        let out = &sink.filtered[&0];
        assert_eq!(out.len(), n);
        assert!(out.iter().enumerate().all(|(i, (idx, _))| *idx == i as u64));
        let ours: Vec<f64> = out.iter().step_by(every).map(|(_, v)| f64::from(*v)).collect();
        let e = rel_err(&ours, &f64s(&fx["cases"][name]["y"]));
        // The raw stream carries a 30 mV offset; the engine filters relative to the first sample, so f32
        // keeps
        // its precision: same 1e-4 bound.
        assert!(e <= 1e-4, "{name}: relative error {e}");
    }
}

struct Evoked {
    raw: Vec<i32>,
    stimuli: Vec<u64>,
    fs: f64,
    gain_nv: u32,
}

fn evoked_stream(c: &serde_json::Value) -> Evoked {
    let fs = c["fs"].as_f64().unwrap();
    let gain_nv = c["gain_nv_per_lsb"].as_u64().unwrap() as u32;
    let dc = c["dc"].as_i64().unwrap();
    let len = c["length"].as_u64().unwrap() as usize;
    let comps: Vec<Vec<f64>> = c["components"].as_array().unwrap().iter().map(f64s).collect();
    let art = c.get("artifact").filter(|a| !a.is_null());
    let (start, period, n) = (
        c["stim_start"].as_f64().unwrap(),
        c["stim_period"].as_f64().unwrap(),
        c["n_stim"].as_u64().unwrap(),
    );
    let stimuli: Vec<u64> = (0..n)
        .map(|k| (start + k as f64 * period).round() as u64)
        .collect();
    let mut uv = vec![0.0f64; len];
    let span = (0.15 * fs) as i64;
    for &s in &stimuli {
        for i in (s as i64 - span).max(0)..(s as i64 + span).min(len as i64) {
            let t = (i - s as i64) as f64 * 1000.0 / fs;
            let mut y: f64 = comps
                .iter()
                .map(|p| p[0] * (-0.5 * ((t - p[1]) / p[2]).powi(2)).exp())
                .sum();
            if let Some(a) = art
                && t >= 0.0
            {
                y += a["amp_uv"].as_f64().unwrap() * (-t / a["tau_ms"].as_f64().unwrap()).exp();
            }
            uv[i as usize] += y;
        }
    }
    let lsb_uv = f64::from(gain_nv) * 1e-3;
    let raw = uv
        .iter()
        .map(|v| (v / lsb_uv).round() as i32 + dc as i32)
        .collect();
    Evoked {
        raw,
        stimuli,
        fs,
        gain_nv,
    }
}

/// Feeds the stream in 64-sample blocks; stimuli alternately just before their block and 1 ms after their
/// sample (late but within the blanking hold).
fn run(e: &Evoked, protocol: &str, label: &str, stimulator: Stimulator) -> Collect {
    let protocol = Protocol::from_toml_str(protocol).unwrap();
    let mut engine = Engine::new(&protocol, &device(e.fs as u32, &[label], e.gain_nv)).unwrap();
    let mut sink = Collect::default();
    let late = (e.fs / 1000.0) as u64;
    let mut next = 0;
    let mut deferred: Vec<u64> = Vec::new();
    for b in blocks(0, &e.raw, 64) {
        while next < e.stimuli.len() && e.stimuli[next] < b.end_index() {
            if next % 2 == 0 {
                engine.push_stimulus(&stim(e.stimuli[next], stimulator), &mut sink);
            } else {
                deferred.push(e.stimuli[next]);
            }
            next += 1;
        }
        engine.push_block(&b, &mut sink).unwrap();
        deferred.retain(|&s| {
            if b.end_index() > s + late {
                engine.push_stimulus(&stim(s, stimulator), &mut ());
                false
            } else {
                true
            }
        });
    }
    engine.finish(&mut sink);
    assert_eq!(engine.stats().late_blanks, 0);
    sink
}

#[test]
fn noise_free_ssep_n20_latency_and_n20_p25_amplitude() {
    let c = fixture("evoked.json")["ssep"].clone();
    let e = evoked_stream(&c);
    let sink = run(
        &e,
        "[[channel]]\nlabel = \"CP4-Fz\"\nmodality = \"ssep-upper\"\nsite = \"cortical\"\nstimulators = [\"left_median\"]\nsweeps = 30\n",
        "CP4-Fz",
        Stimulator::LeftMedian,
    );
    assert_eq!(sink.sweeps.len(), 30);
    assert!(sink.sweeps.iter().all(|s| s.3 == Verdict::Accepted));
    assert_eq!(sink.averages.len(), 1);
    let avg = &sink.averages[0];
    let m = &avg.measurement;
    let truth = &c["truth_peaks"];
    let (n20, p25) = (m.peaks[0].unwrap(), m.peaks[1].unwrap());
    let (t_n20, v_n20) = (
        truth["N20"][0].as_f64().unwrap(),
        truth["N20"][1].as_f64().unwrap(),
    );
    let v_p25 = truth["P25"][1].as_f64().unwrap();
    // Acceptance: N20 latency within ±0.05 ms, N20–P25 within ±2% of the truth after filtering (SciPy, 1/50
    // sample resolution). The stream carries an 800 µV stimulus artifact that blanking must remove.
    assert!(
        (n20.latency_ms - t_n20).abs() <= 0.05,
        "N20 {} vs {t_n20}",
        n20.latency_ms
    );
    let amp = m.amplitudes_uv[0].unwrap();
    let true_amp = v_p25 - v_n20;
    assert!(
        (amp / true_amp - 1.0).abs() <= 0.02,
        "N20-P25 {amp} vs {true_amp}"
    );
    assert_eq!(m.primary_latency_ms, Some(n20.latency_ms));
    assert_eq!(m.primary_amplitude_uv, Some(amp));
    assert!((p25.latency_ms - truth["P25"][0].as_f64().unwrap()).abs() <= 0.05);
    // The whole average equals SciPy's (artifact-free) one to 1% of the N20–P25 amplitude: blanking leaves no
    // ringing and the filter is the same.
    let reference = f64s(&c["average"]);
    let worst = avg
        .mean
        .iter()
        .zip(&reference)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst <= 0.01 * true_amp, "average differs by {worst} µV");
    // Noise-free: the ± average is (nearly) zero, Fsp huge.
    assert!(avg.residual_noise_uv.unwrap() < 0.01 * true_amp);
    assert!(avg.fsp.unwrap() > 100.0);
}

#[test]
fn noise_free_mep_onset_and_peak_to_peak() {
    let c = fixture("evoked.json")["mep"].clone();
    let e = evoked_stream(&c);
    let sink = run(
        &e,
        "[[channel]]\nlabel = \"APB L\"\nmodality = \"mep\"\nstimulators = [\"tes\"]\n",
        "APB L",
        Stimulator::Tes,
    );
    assert_eq!(sink.averages.len(), 4, "MEP: one measurement per sweep");
    let onset = c["truth_onset_ms"].as_f64().unwrap();
    let pp = c["truth_pp_uv"].as_f64().unwrap();
    for a in &sink.averages {
        let m = &a.measurement;
        // Same tolerances as for the SSEP: ±0.05 ms, ±2%.
        assert!(
            (m.primary_latency_ms.unwrap() - onset).abs() <= 0.05,
            "onset {:?} vs {onset}",
            m.onset_ms
        );
        assert!(
            (m.primary_amplitude_uv.unwrap() / pp - 1.0).abs() <= 0.02,
            "pp {:?} vs {pp}",
            m.amplitudes_uv
        );
    }
}

#[test]
fn noise_free_baep_wave_v() {
    let c = fixture("evoked.json")["baep"].clone();
    let e = evoked_stream(&c);
    let sink = run(
        &e,
        "[[channel]]\nlabel = \"Cz-A1\"\nmodality = \"baep\"\nstimulators = [\"left_ear\"]\nsweeps = 20\n",
        "Cz-A1",
        Stimulator::LeftEar,
    );
    assert_eq!(sink.averages.len(), 1);
    let m = &sink.averages[0].measurement;
    let t = &c["truth_peaks"];
    // Peaks of the preset: I, In, III, V, Vn.
    for (k, name) in [(0, "I"), (2, "III"), (3, "V"), (4, "Vn")] {
        let p = m.peaks[k].unwrap();
        assert!(
            (p.latency_ms - t[name][0].as_f64().unwrap()).abs() <= 0.05,
            "{name}: {p:?} vs {}",
            t[name]
        );
    }
    let true_v = t["V"][1].as_f64().unwrap() - t["Vn"][1].as_f64().unwrap();
    assert!((m.primary_amplitude_uv.unwrap() / true_v - 1.0).abs() <= 0.02);
    assert_eq!(m.primary_latency_ms, Some(m.peaks[3].unwrap().latency_ms));
}
