//! Integration tests of the signal model: determinism, stimulus timing, recovery of the truth by averaging,
//! scenario effects (drops, cautery, electrode off, link), TOML errors and noise levels.
//!
//! References: the truth the simulator reports is checked against what an independent measurement of the samples
//! finds (averaging, peak fitting, FFT band power with rustfft), and noise levels against the ranges of GUIDE §1.

use firmware_sim::{ADC_MAX, ADC_MIN, GAIN_NV_PER_LSB, Scenario, SimConfig, SimError, Simulator};
use ionm_core::{Stimulator, StimulusEvent};

const UV_PER_LSB: f64 = GAIN_NV_PER_LSB as f64 * 1e-3;

fn config(channels: usize, fs: u32, seed: u64, scenario: Scenario) -> SimConfig {
    SimConfig {
        channels,
        sample_rate_hz: fs,
        seed,
        mains_hz: 50.0,
        scenario,
    }
}

fn scenario(toml: &str) -> Scenario {
    Scenario::from_toml(toml).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `seconds` of data in blocks of `block` instants: (interleaved values, stimuli, simulator).
fn run(cfg: SimConfig, seconds: f64, block: usize) -> (Vec<i32>, Vec<StimulusEvent>, Simulator) {
    let mut sim = Simulator::new(cfg).unwrap();
    let nc = sim.device_info().n_channels();
    let total = (seconds * f64::from(sim.device_info().sample_rate_hz)).round() as usize;
    let mut values = vec![0i32; total * nc];
    let mut stimuli = Vec::new();
    let mut done = 0;
    while done < total {
        let n = block.min(total - done);
        sim.generate(n, &mut values[done * nc..(done + n) * nc], &mut stimuli);
        done += n;
    }
    (values, stimuli, sim)
}

fn channel_uv(values: &[i32], nc: usize, c: usize) -> Vec<f64> {
    values
        .iter()
        .skip(c)
        .step_by(nc)
        .map(|&v| f64::from(v) * UV_PER_LSB)
        .collect()
}

/// Mean-removed sweeps of `x` around `onsets`: `pre` samples before to `post` after; sweeps that do not fit are
/// skipped.
fn sweeps(x: &[f64], onsets: &[u64], pre: usize, post: usize) -> Vec<Vec<f64>> {
    onsets
        .iter()
        .filter(|&&o| o as usize >= pre && o as usize + post <= x.len())
        .map(|&o| {
            let s = &x[o as usize - pre..o as usize + post];
            let m = s.iter().sum::<f64>() / s.len() as f64;
            s.iter().map(|v| v - m).collect()
        })
        .collect()
}

fn average(sw: &[Vec<f64>]) -> Vec<f64> {
    let n = sw.len() as f64;
    (0..sw[0].len())
        .map(|k| sw.iter().map(|s| s[k]).sum::<f64>() / n)
        .collect()
}

fn mean_sd(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    (
        m,
        (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0)).sqrt(),
    )
}

/// Latency (ms after the stimulus at index `pre`) of the extremum of `avg` in `[lo_ms, hi_ms]`: the argmin (or
/// argmax) of a 5-point centred moving average, refined by a least-squares parabola over ±1 ms of the raw average.
/// Symmetric smoothing and a symmetric fit do not shift a peak.
fn peak_latency(avg: &[f64], pre: usize, fs: f64, lo_ms: f64, hi_ms: f64, minimum: bool) -> f64 {
    let to_k = |ms: f64| pre as i64 + (ms * fs / 1000.0).round() as i64;
    let sign = if minimum { -1.0 } else { 1.0 };
    let smooth = |k: i64| (k - 2..=k + 2).map(|j| avg[j as usize]).sum::<f64>() / 5.0;
    let best = (to_k(lo_ms)..=to_k(hi_ms))
        .max_by(|&a, &b| (sign * smooth(a)).total_cmp(&(sign * smooth(b))))
        .unwrap();
    let half = (fs / 1000.0).round() as i64; // ±1 ms
    // Normal equations of y = a + b·x + c·x², x in samples relative to `best`.
    let (mut s, mut sy) = ([0.0f64; 5], [0.0f64; 3]);
    for j in -half..=half {
        let (x, y) = (j as f64, avg[(best + j) as usize]);
        for (p, sp) in s.iter_mut().enumerate() {
            *sp += x.powi(p as i32);
        }
        for (p, syp) in sy.iter_mut().enumerate() {
            *syp += y * x.powi(p as i32);
        }
    }
    let m = [[s[0], s[1], s[2]], [s[1], s[2], s[3]], [s[2], s[3], s[4]]];
    let det3 = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det3(m);
    let col = |i: usize| {
        let mut mm = m;
        for r in 0..3 {
            mm[r][i] = sy[r];
        }
        det3(mm) / d
    };
    let (b, c) = (col(1), col(2));
    let vertex = (-b / (2.0 * c)).clamp(-(half as f64), half as f64);
    (best as f64 + vertex - pre as f64) * 1000.0 / fs
}

#[test]
fn same_config_same_output_regardless_of_block_size() {
    let cfg = config(16, 10_000, 42, Scenario::builtin("noisy-or").unwrap());
    let (a, sa, sim_a) = run(cfg.clone(), 3.0, 128);
    let (b, sb, simb) = run(cfg.clone(), 3.0, 37);
    let (c, sc, _) = run(cfg.clone(), 3.0, 3000);
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(sa, sb);
    assert_eq!(sa, sc);
    assert_eq!(sim_a.truth(), simb.truth());
    assert_eq!(sim_a.truth().to_json().unwrap(), simb.truth().to_json().unwrap());
    let (d, _, _) = run(SimConfig { seed: 43, ..cfg }, 3.0, 128);
    assert_ne!(a, d);
}

#[test]
fn config_is_validated() {
    let s = Scenario::default;
    assert_eq!(
        Simulator::new(config(0, 10_000, 1, s())).unwrap_err(),
        SimError::Channels(0)
    );
    assert_eq!(
        Simulator::new(config(65, 10_000, 1, s())).unwrap_err(),
        SimError::Channels(65)
    );
    assert_eq!(
        Simulator::new(config(4, 999, 1, s())).unwrap_err(),
        SimError::SampleRate(999)
    );
    assert_eq!(
        Simulator::new(config(4, 50_001, 1, s())).unwrap_err(),
        SimError::SampleRate(50_001)
    );
    let bad_mains = SimConfig {
        mains_hz: 55.0,
        ..SimConfig::default()
    };
    assert_eq!(Simulator::new(bad_mains).unwrap_err(), SimError::Mains(55.0));
    for (ch, fs) in [(1, 1_000), (64, 50_000), (32, 20_000), (7, 8_000)] {
        let (v, _, sim) = run(config(ch, fs, 1, s()), 0.3, 256);
        assert_eq!(v.len(), ch * fs as usize * 3 / 10);
        assert_eq!(sim.device_info().n_channels(), ch);
    }
}

#[test]
fn device_info_describes_a_24_bit_converter() {
    let sim = Simulator::new(SimConfig::default()).unwrap();
    let info = sim.device_info();
    assert_eq!((info.adc_min, info.adc_max), (-(1 << 23), (1 << 23) - 1));
    assert_eq!((ADC_MIN, ADC_MAX), (info.adc_min, info.adc_max));
    assert_eq!(info.n_channels(), 16);
    assert_eq!(info.channels[3].label, "CP3-Fz");
    assert!(
        info.channels
            .iter()
            .all(|c| (20..=50).contains(&c.gain_nv_per_lsb))
    );
    assert!(info.firmware_version.starts_with("firmware-sim "));
    assert_eq!(
        info.session_id,
        Simulator::new(SimConfig::default())
            .unwrap()
            .device_info()
            .session_id
    );
    let other = Simulator::new(SimConfig {
        seed: 2,
        ..SimConfig::default()
    })
    .unwrap();
    assert_ne!(info.session_id, other.device_info().session_id);
}

#[test]
fn stimuli_fire_at_exact_indices_and_rates() {
    let fs = 10_000u32;
    let secs = 62.0;
    let (_, stimuli, sim) = run(config(16, fs, 5, Scenario::default()), secs, 500);
    // Sorted, never two on one sample, identical to the truth and to the planned schedule.
    assert!(stimuli.windows(2).all(|w| w[0].sample_index < w[1].sample_index));
    let t = sim.truth();
    assert_eq!(
        t.stimuli.sample_index,
        stimuli.iter().map(|s| s.sample_index).collect::<Vec<_>>()
    );
    let end = sim.next_index();
    let tes: Vec<u64> = stimuli
        .iter()
        .filter(|s| s.stimulator == Stimulator::Tes)
        .map(|s| s.sample_index)
        .collect();
    // TES every 15 s from 10 s: exact indices.
    assert_eq!(tes, vec![100_000, 250_000, 400_000, 550_000]);
    assert!(
        stimuli
            .iter()
            .filter(|s| s.stimulator == Stimulator::Tes)
            .all(|s| s.pulses == 5)
    );
    let period = (f64::from(fs) / 4.7).round() as u64; // 2128 samples
    for s in [
        Stimulator::LeftMedian,
        Stimulator::RightMedian,
        Stimulator::LeftTibial,
        Stimulator::RightTibial,
    ] {
        let on: Vec<u64> = stimuli
            .iter()
            .filter(|e| e.stimulator == s)
            .map(|e| e.sample_index)
            .collect();
        assert_eq!(on, sim.planned_onsets(s, end));
        // Every interval is a whole number of periods (skips only around TES trains) …
        assert!(on.windows(2).all(|w| (w[1] - w[0]) % period == 0), "{s}");
        // … and the rate is 4.7 Hz less the quiet windows: 250 ms per TES train, 4 trains.
        let expected = secs * 4.7 * (1.0 - 4.0 * 0.25 / secs);
        assert!(
            (on.len() as f64 - expected).abs() <= 3.0,
            "{s}: {} vs {expected}",
            on.len()
        );
        // No SSEP stimulus from 100 ms before to 150 ms after a TES train.
        for &x in &on {
            assert!(tes.iter().all(|&t| x + 1000 <= t || x >= t + 1500), "{s} at {x}");
        }
    }
    // Clicks at ≈ 11.1 Hz per ear.
    for s in [Stimulator::LeftEar, Stimulator::RightEar] {
        let n = stimuli.iter().filter(|e| e.stimulator == s).count() as f64;
        let expected = secs * 11.1 * (1.0 - 4.0 * 0.25 / secs);
        assert!((n - expected).abs() <= 6.0, "{s}: {n} vs {expected}");
    }
    // The SSEP stimulators are interleaved a quarter period apart.
    let first = |s| stimuli.iter().find(|e| e.stimulator == s).unwrap().sample_index;
    assert_eq!(
        first(Stimulator::LeftTibial) - first(Stimulator::LeftMedian),
        period / 4
    );
    assert_eq!(
        first(Stimulator::RightMedian) - first(Stimulator::LeftMedian),
        period / 2
    );
}

#[test]
fn the_stimulus_artifact_starts_on_the_stimulus_sample_and_decays_within_2_ms() {
    // Everything but the artifacts and responses off, no sweep variability: what is left is deterministic.
    let s = scenario(
        "name = \"quiet\"\n[background]\nnoise = 0\nmains = 0\necg = 0\ndc = 0\nvariability = 0\n\
         [stimulation]\ntes_first_s = 100\n",
    );
    let fs = 20_000.0;
    let (v, stimuli, _) = run(config(16, fs as u32, 9, s), 2.0, 333);
    let erb = channel_uv(&v, 16, 0);
    let onsets: Vec<u64> = stimuli
        .iter()
        .filter(|e| e.stimulator == Stimulator::LeftMedian)
        .map(|e| e.sample_index)
        .collect();
    assert!(onsets.len() >= 8);
    for &o in &onsets {
        let o = o as usize;
        let peak = erb[o].abs();
        // Artifact of the left median at Erb L: 800 µV × (0.7 … 1.3).
        assert!(peak > 500.0, "artifact {peak} µV at {o}");
        // Quantisation only (±0.5 LSB) before the stimulus: nothing else is left in this channel at that time.
        assert!(
            erb[o - 1].abs() <= UV_PER_LSB,
            "{} µV before the stimulus",
            erb[o - 1]
        );
        let at_2ms = erb[o + (0.002 * fs) as usize].abs();
        assert!(at_2ms < 0.01 * peak, "{at_2ms} µV 2 ms after the stimulus");
    }
}

/// Runs a stable scenario with 5 channels (Erb L/R, cervical, CP3-Fz, CP4-Fz) long enough for `n_sweeps`
/// right-median sweeps; returns the mean-removed CP3-Fz sweeps (−10 … +50 ms) and the simulator.
fn cp3_sweeps(noise: f64, n_sweeps: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<u64>, Simulator) {
    let fs = 10_000.0;
    let nc = 5;
    let secs = n_sweeps as f64 * 2128.0 / fs + 1.0;
    let s = scenario(&format!("name = \"stable\"\n[background]\nnoise = {noise}\n"));
    let (v, stimuli, sim) = run(config(nc, fs as u32, seed, s), secs, 1000);
    let onsets: Vec<u64> = stimuli
        .iter()
        .filter(|e| e.stimulator == Stimulator::RightMedian)
        .map(|e| e.sample_index)
        .collect();
    let cp3 = channel_uv(&v, nc, 3);
    let onsets: Vec<u64> = onsets
        .into_iter()
        .filter(|&o| o >= 100 && o as usize + 500 <= cp3.len())
        .collect();
    (sweeps(&cp3, &onsets, 100, 500), onsets, sim)
}

#[test]
fn averaging_recovers_the_n20_latency_and_amplitude() {
    let fs = 10_000.0;
    let pre = 100;
    let (sw, onsets, sim) = cp3_sweeps(1.0, 2000, 11);
    let avg = average(&sw);
    let n = sw.len() as f64;
    assert!(n >= 1990.0);
    let truth = sim.truth().response("CP3-Fz", Stimulator::RightMedian).unwrap();
    let n20 = truth.peaks.iter().find(|p| p.name == "N20").unwrap();
    let p25 = truth.peaks.iter().find(|p| p.name == "P25").unwrap();
    assert_eq!(truth.baseline_latency_ms, n20.latency_ms);
    assert!(
        (truth.baseline_amplitude_uv - 2.4).abs() < 0.3,
        "{}",
        truth.baseline_amplitude_uv
    );

    // Tolerances are measured from the data: the sweeps are split into 8 disjoint sub-averages, and the
    // standard error of a measure on the full average is the s.d. of that measure over the sub-averages / √8.
    // (This includes the mains, which cancels in the average by its phase drift rather than as random noise, so
    // the single-sweep s.d. / √N would overstate the error.) Allow 4 standard errors (t with 7 degrees of
    // freedom: p ≈ 0.005).
    let subs: Vec<Vec<f64>> = sw.chunks(sw.len() / 8).take(8).map(average).collect();
    let se_of =
        |f: &dyn Fn(&[f64]) -> f64| mean_sd(&subs.iter().map(|a| f(a)).collect::<Vec<_>>()).1 / 8f64.sqrt();

    // Amplitude: the average at the truth N20 and P25 instants. Its expected value is the mean of the per-sweep
    // truth amplitudes over the averaged sweeps.
    let k20 = pre + (n20.latency_ms * fs / 1000.0).round() as usize;
    let k25 = pre + (p25.latency_ms * fs / 1000.0).round() as usize;
    let p2p = |a: &[f64]| a[k25] - a[k20];
    let measured = p2p(&avg);
    let se = se_of(&p2p);
    let used: Vec<f64> = truth
        .sweeps
        .onset
        .iter()
        .zip(&truth.sweeps.amplitude_uv)
        .filter(|(o, _)| onsets.contains(o))
        .map(|(_, &a)| f64::from(a))
        .collect();
    assert_eq!(used.len(), sw.len());
    let (expected, _) = mean_sd(&used);
    assert!(
        (measured - expected).abs() < 4.0 * se,
        "N20-P25 {measured:.3} µV, truth {expected:.3} ± {se:.3}"
    );
    // ≈ 3 µV of in-band noise (plus low-frequency EEG, mains, ECG) over 2000 sweeps: a standard error of about
    // 0.1 µV on the 2.4 µV response.
    assert!(se < 0.2, "standard error {se}");

    // Latency at full noise, within 4 standard errors. (The 1/f noise overlaps the N20's own band: the s.d. is
    // ≈ 0.065 ms at N = 2000, measured over 10 seeds, more than a 0.1 ms sample period allows at 4 s.d.; the
    // quieter run below checks the sample-period claim.)
    let latency = |a: &[f64]| peak_latency(a, pre, fs, 16.0, 23.0, true);
    let lat = latency(&avg);
    let se_lat = se_of(&latency);
    assert!(
        (lat - n20.latency_ms).abs() <= 4.0 * se_lat,
        "N20 at {lat:.3} ms, truth {:.3} ms, s.e. {se_lat:.3}",
        n20.latency_ms
    );
    assert!(se_lat < 0.15, "latency standard error {se_lat}");
    // The per-sweep truth latency of an unmodulated evoked response is the baseline latency.
    assert!(
        truth
            .sweeps
            .latency_ms
            .iter()
            .all(|l| (f64::from(l.unwrap()) - n20.latency_ms).abs() < 1e-4)
    );
}

#[test]
fn averaging_recovers_the_n20_latency_within_a_sample_period() {
    // The same stable scenario with the background noise scaled by 0.25 (0.7 µV RMS in 30-1000 Hz): the latency
    // s.d. of the 2000-sweep average scales to ≈ 0.016 ms, so one sample period (0.1 ms) is > 5 s.d. The fit
    // itself is unbiased to 0.01 ms on a noise-free run (the N20 shares its flanks with P14 and P25).
    let (sw, _, sim) = cp3_sweeps(0.25, 2000, 13);
    let avg = average(&sw);
    let n20 = sim
        .truth()
        .response("CP3-Fz", Stimulator::RightMedian)
        .unwrap()
        .baseline_latency_ms;
    let lat = peak_latency(&avg, 100, 10_000.0, 16.0, 23.0, true);
    assert!((lat - n20).abs() <= 0.1, "N20 at {lat:.3} ms, truth {n20:.3} ms");
}

#[test]
fn each_rendered_sweep_matches_its_truth() {
    // Two runs with the same seed share every noise sample; in the second the CP3-Fz response is abolished, so the
    // difference is exactly the rendered response of each sweep (plus ±1 LSB of rounding). The first run changes
    // latency and amplitude along ramps, so every sweep is different.
    let base = r#"name = "ramps"
[[event]]
kind = "response"
at_s = 2
ramp_s = 6
channel = "CP3-Fz"
latency_pct = 12
amplitude_pct = -30
"#;
    let abolished = format!(
        "{base}\n[[event]]\nkind = \"response\"\nat_s = 0\nchannel = \"CP3-Fz\"\namplitude_pct = -100\n"
    );
    let fs = 10_000.0;
    let nc = 5;
    let (a, stimuli, sim) = run(config(nc, fs as u32, 17, scenario(base)), 10.0, 700);
    let (b, _, _) = run(config(nc, fs as u32, 17, scenario(&abolished)), 10.0, 1300);
    let diff: Vec<f64> = channel_uv(&a, nc, 3)
        .iter()
        .zip(channel_uv(&b, nc, 3))
        .map(|(x, y)| x - y)
        .collect();
    let truth = sim.truth().response("CP3-Fz", Stimulator::RightMedian).unwrap();
    let onsets: Vec<u64> = stimuli
        .iter()
        .filter(|e| e.stimulator == Stimulator::RightMedian)
        .map(|e| e.sample_index)
        .collect();
    assert_eq!(onsets, truth.sweeps.onset);
    let l0 = truth.baseline_latency_ms;
    let p25 = truth.peaks.iter().find(|p| p.name == "P25").unwrap().latency_ms;
    for (k, &o) in onsets.iter().enumerate().filter(|&(_, &o)| o >= 100) {
        let sweep = &diff[o as usize - 100..o as usize + 500];
        let lat = f64::from(truth.sweeps.latency_ms[k].unwrap());
        let amp = f64::from(truth.sweeps.amplitude_uv[k]);
        // The latency change stretches the waveform: P25 moves by the same factor as N20.
        let stretch = lat / l0;
        let fit = peak_latency(sweep, 100, fs, lat - 3.0, lat + 3.0, true);
        // The ±1 ms parabola is biased by ≈ −0.01 ms (asymmetric flanks) and rounding (±1 LSB) moves it by ≈ 0.01 ms.
        assert!(
            (fit - lat).abs() < 0.05,
            "sweep {k}: N20 at {fit:.3}, truth {lat:.3}"
        );
        let at = |ms: f64| sweep[100 + (ms * fs / 1000.0).round() as usize];
        // Sampling the peaks within half a sample (0.05 ms) of their tops loses < 0.01 µV; rounding ±1 LSB.
        let p2p = at(p25 * stretch) - at(lat);
        assert!(
            (p2p - amp).abs() < 0.05 + 0.01 * amp,
            "sweep {k}: {p2p:.3} µV, truth {amp:.3}"
        );
    }
    // The ramps: latency +12% and amplitude −30% of baseline (times the sweep variability) at the end.
    let last = truth.sweeps.latency_ms.last().unwrap().unwrap();
    assert!((f64::from(last) / l0 - 1.12).abs() < 1e-5);
}

#[test]
fn an_amplitude_drop_changes_truth_and_average() {
    let s = scenario(
        r#"name = "drop"
[[event]]
kind = "response"
at_s = 100
channel = "CP3-Fz"
stimulator = "right_median"
amplitude_pct = -60
"#,
    );
    let fs = 10_000.0;
    let nc = 5;
    let (v, stimuli, sim) = run(config(nc, fs as u32, 12, s), 200.0, 2000);
    let truth = sim.truth().response("CP3-Fz", Stimulator::RightMedian).unwrap();
    let onsets: Vec<u64> = stimuli
        .iter()
        .filter(|e| e.stimulator == Stimulator::RightMedian)
        .map(|e| e.sample_index)
        .collect();
    let split = 1_000_000u64;
    let n20 = truth.peaks.iter().find(|p| p.name == "N20").unwrap().latency_ms;
    let p25 = truth.peaks.iter().find(|p| p.name == "P25").unwrap().latency_ms;
    let (pre, post) = (100, 500);
    let (k20, k25) = (
        pre + (n20 * 10.0).round() as usize,
        pre + (p25 * 10.0).round() as usize,
    );
    let cp3 = channel_uv(&v, nc, 3);
    let mut ratio = [0.0; 2];
    let before: Vec<u64> = onsets.iter().copied().filter(|&o| o < split).collect();
    let after: Vec<u64> = onsets.iter().copied().filter(|&o| o >= split).collect();
    for (h, part) in [(0, before), (1, after)] {
        let sw = sweeps(&cp3, &part, pre, post);
        let single: Vec<f64> = sw.iter().map(|s| s[k25] - s[k20]).collect();
        let (measured, sd) = mean_sd(&single);
        let se = sd / (single.len() as f64).sqrt();
        let amps: Vec<f64> = truth
            .sweeps
            .onset
            .iter()
            .zip(&truth.sweeps.amplitude_uv)
            .filter(|(o, _)| part.contains(o))
            .map(|(_, &a)| f64::from(a))
            .collect();
        let (expected, _) = mean_sd(&amps);
        // Truth: baseline × log-normal variability (mean 1, CV 10%) before, × 0.4 after. Over ≥ 400 sweeps the
        // mean of the variability is within 4 × 0.1/√400 = 2%.
        let factor = if h == 0 { 1.0 } else { 0.4 };
        assert!(
            (expected / (factor * truth.baseline_amplitude_uv) - 1.0).abs() < 0.02,
            "truth mean {expected} vs {factor} × baseline"
        );
        // Measured: within 4 standard errors of the truth.
        assert!(
            (measured - expected).abs() < 4.0 * se,
            "part {h}: {measured:.3} vs {expected:.3} ± {se:.3}"
        );
        ratio[h] = measured;
    }
    assert!(
        ratio[1] / ratio[0] < 0.6,
        "after/before = {}",
        ratio[1] / ratio[0]
    );
    // The left median response on CP4 is untouched.
    let cp4 = sim.truth().response("CP4-Fz", Stimulator::LeftMedian).unwrap();
    let late: Vec<f64> = cp4
        .sweeps
        .onset
        .iter()
        .zip(&cp4.sweeps.amplitude_uv)
        .filter(|(o, _)| **o >= split)
        .map(|(_, &a)| f64::from(a))
        .collect();
    assert!((mean_sd(&late).0 / cp4.baseline_amplitude_uv - 1.0).abs() < 0.03);
}

/// Mean truth amplitude and latency of the sweeps of `label`/`stim` with onset in `[from_s, to_s)`.
fn truth_mean(
    sim: &Simulator,
    label: &str,
    stim: Stimulator,
    from_s: f64,
    to_s: f64,
) -> (f64, Option<f64>, usize) {
    let fs = f64::from(sim.config().sample_rate_hz);
    let r = sim.truth().response(label, stim).unwrap();
    let idx: Vec<usize> = (0..r.sweeps.onset.len())
        .filter(|&k| (from_s * fs..to_s * fs).contains(&(r.sweeps.onset[k] as f64)))
        .collect();
    let amp = idx
        .iter()
        .map(|&k| f64::from(r.sweeps.amplitude_uv[k]))
        .sum::<f64>()
        / idx.len() as f64;
    let lats: Vec<f64> = idx
        .iter()
        .filter_map(|&k| r.sweeps.latency_ms[k].map(f64::from))
        .collect();
    let lat = (!lats.is_empty()).then(|| lats.iter().sum::<f64>() / lats.len() as f64);
    (amp, lat, idx.len())
}

#[test]
fn builtin_clinical_scenarios_change_the_truth_as_described() {
    // Truth only: run at 1 kHz to keep the test fast (the schedule and the truth do not depend on the rate).
    let fs = 1_000;
    let rel = |a: f64, b: f64| a / b;
    // Cord ischemia: left-tibial cortical −60% from 4:20; right tibial and median unchanged.
    let (_, _, sim) = run(
        config(16, fs, 3, Scenario::builtin("ssep-cord-ischemia").unwrap()),
        330.0,
        1000,
    );
    let base = |l, s| sim.truth().response(l, s).unwrap().baseline_amplitude_uv;
    let (a_before, _, n1) = truth_mean(&sim, "Cz-Fpz", Stimulator::LeftTibial, 0.0, 240.0);
    let (a_after, _, n2) = truth_mean(&sim, "Cz-Fpz", Stimulator::LeftTibial, 260.0, 330.0);
    assert!(n1 > 1000 && n2 > 300);
    // Variability CV 10%: a mean over n sweeps is within 4·0.1/√n of its expectation.
    assert!((rel(a_before, base("Cz-Fpz", Stimulator::LeftTibial)) - 1.0).abs() < 0.02);
    assert!((rel(a_after, base("Cz-Fpz", Stimulator::LeftTibial)) - 0.4).abs() < 0.03);
    let (r_after, _, _) = truth_mean(&sim, "Cz-Fpz", Stimulator::RightTibial, 260.0, 330.0);
    assert!((rel(r_after, base("Cz-Fpz", Stimulator::RightTibial)) - 1.0).abs() < 0.03);
    let (p_after, _, _) = truth_mean(&sim, "Pop L", Stimulator::LeftTibial, 260.0, 330.0);
    assert!((rel(p_after, base("Pop L", Stimulator::LeftTibial)) - 1.0).abs() < 0.03);
    let ev = &sim.truth().events[0];
    assert_eq!(
        (ev.kind.as_str(), ev.onset_s, ev.onset_index),
        ("response", 240.0, 240_000)
    );
    assert_eq!(ev.channels, vec!["Cz-Fpz".to_owned()]);
    assert_eq!(sim.truth().events[1].channels, vec!["Cv5-Fz".to_owned()]);

    // Latency: right-median cortical +12% after the 60 s ramp from 3:00, exactly (no latency jitter).
    let (_, _, sim) = run(
        config(8, fs, 3, Scenario::builtin("ssep-latency").unwrap()),
        250.0,
        1000,
    );
    let r = sim.truth().response("CP3-Fz", Stimulator::RightMedian).unwrap();
    let (_, lat, _) = truth_mean(&sim, "CP3-Fz", Stimulator::RightMedian, 241.0, 250.0);
    assert!((lat.unwrap() / r.baseline_latency_ms - 1.12).abs() < 1e-5);
    let (_, lat, _) = truth_mean(&sim, "CP3-Fz", Stimulator::RightMedian, 150.0, 180.0);
    assert!((lat.unwrap() / r.baseline_latency_ms - 1.0).abs() < 1e-5);
    let (_, lat, _) = truth_mean(&sim, "CP4-Fz", Stimulator::LeftMedian, 241.0, 250.0);
    let r4 = sim.truth().response("CP4-Fz", Stimulator::LeftMedian).unwrap();
    assert!((lat.unwrap() / r4.baseline_latency_ms - 1.0).abs() < 1e-5);

    // BAEP wave V: +1.0 ms and halved after 4:00; wave I unchanged by construction (pivot).
    let (_, _, sim) = run(
        config(16, fs, 3, Scenario::builtin("baep-wave-v").unwrap()),
        250.0,
        1000,
    );
    let r = sim.truth().response("Cz-A1", Stimulator::LeftEar).unwrap();
    let (a, lat, n) = truth_mean(&sim, "Cz-A1", Stimulator::LeftEar, 241.0, 250.0);
    assert!(n > 90);
    assert!((lat.unwrap() - r.baseline_latency_ms - 1.0).abs() < 1e-4);
    assert!((a / r.baseline_amplitude_uv - 0.5).abs() < 0.05);

    // Anaesthesia: cortical −50% and +5% at the end of the ramp (6:00); peripheral unchanged.
    let (_, _, sim) = run(
        config(8, fs, 3, Scenario::builtin("anaesthesia").unwrap()),
        400.0,
        1000,
    );
    for (label, stim) in [
        ("CP3-Fz", Stimulator::RightMedian),
        ("Cz-Fpz", Stimulator::LeftTibial),
    ] {
        let r = sim.truth().response(label, stim).unwrap();
        let (a, lat, _) = truth_mean(&sim, label, stim, 361.0, 400.0);
        assert!((a / r.baseline_amplitude_uv - 0.5).abs() < 0.05, "{label}");
        assert!(
            (lat.unwrap() / r.baseline_latency_ms - 1.05).abs() < 1e-5,
            "{label}"
        );
    }
    let r = sim.truth().response("Erb L", Stimulator::LeftMedian).unwrap();
    let (a, lat, _) = truth_mean(&sim, "Erb L", Stimulator::LeftMedian, 361.0, 400.0);
    assert!((a / r.baseline_amplitude_uv - 1.0).abs() < 0.05);
    assert!((lat.unwrap() - r.baseline_latency_ms).abs() < 1e-4);

    // MEP loss: left-leg MEPs abolished from 3:00 (amplitude 0, latency null), right leg and arms unchanged.
    let (_, _, sim) = run(
        config(16, fs, 3, Scenario::builtin("mep-loss").unwrap()),
        300.0,
        1000,
    );
    let (a, lat, n) = truth_mean(&sim, "TA L", Stimulator::Tes, 181.0, 300.0);
    assert_eq!((a, lat), (0.0, None));
    assert!(n >= 7);
    let (a, lat, _) = truth_mean(&sim, "TA R", Stimulator::Tes, 181.0, 300.0);
    assert!(a > 100.0 && lat.unwrap() > 25.0);
}

#[test]
fn mep_sweeps_vary_and_the_signal_matches_the_truth() {
    let s = scenario("name = \"mep\"\n[stimulation]\ntes_interval_s = 1.0\ntes_first_s = 0.5\n");
    let fs = 10_000.0;
    let nc = 14;
    let (v, stimuli, sim) = run(config(nc, fs as u32, 21, s), 61.0, 1000);
    let tes: Vec<u64> = stimuli
        .iter()
        .filter(|e| e.stimulator == Stimulator::Tes)
        .map(|e| e.sample_index)
        .collect();
    assert_eq!(tes.len(), 61);
    let t = sim.truth();
    for label in ["APB L", "APB R", "TA L", "TA R", "AH L", "AH R"] {
        let r = t.response(label, Stimulator::Tes).unwrap();
        let amps: Vec<f64> = r.sweeps.amplitude_uv.iter().map(|&a| f64::from(a)).collect();
        let (m, sd) = mean_sd(&amps);
        // CV of 40% by design (plus the phase spread); with 61 sweeps its sampling error is ≈ 0.04.
        assert!((0.25..=0.6).contains(&(sd / m)), "{label}: CV {}", sd / m);
        let lats: Vec<f64> = r
            .sweeps
            .latency_ms
            .iter()
            .map(|l| f64::from(l.unwrap()))
            .collect();
        let (lm, lsd) = mean_sd(&lats);
        assert!((20.0..=45.0).contains(&lm), "{label}: onset {lm}");
        assert!((0.2..=1.0).contains(&lsd), "{label}: jitter {lsd}");
        // Single sweeps: the peak-to-peak of the recorded signal over the response equals the truth (EMG
        // background of ≈ 4 µV RMS adds at most ≈ ±25 µV to a peak-to-peak of hundreds of µV).
        let c = t.channels.iter().position(|ch| ch.label == label).unwrap();
        let x = channel_uv(&v, nc, c);
        for (k, &o) in r.sweeps.onset.iter().enumerate().take(20) {
            let a = (o as f64 + (lm - 3.0) * fs / 1000.0) as usize;
            let b = (o as f64 + (lm + 25.0) * fs / 1000.0) as usize;
            let (lo, hi) = x[a..b]
                .iter()
                .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            let truth_amp = f64::from(r.sweeps.amplitude_uv[k]);
            assert!(
                (hi - lo - truth_amp).abs() < 0.03 * truth_amp + 30.0,
                "{label} sweep {k}: {} vs {truth_amp}",
                hi - lo
            );
        }
    }
}

#[test]
fn cautery_saturates_the_selected_channels() {
    let s = scenario(
        "name = \"c\"\n[[event]]\nkind = \"cautery\"\nat_s = 1.0\nduration_s = 0.5\ngroup = \"cortical\"\n",
    );
    let fs = 5_000;
    let nc = 16;
    let mut sim = Simulator::new(config(nc, fs, 4, s)).unwrap();
    let mut out = vec![0i32; 500 * nc];
    let mut st = Vec::new();
    let cortical: u64 = (1 << 3) | (1 << 4) | (1 << 7);
    for block in 0..4 * 10 {
        sim.generate(500, &mut out, &mut st);
        let status = sim.status();
        let t0 = block as f64 * 0.1;
        if (1.0..1.5).contains(&t0) {
            assert_eq!(status.saturated, cortical, "block at {t0} s");
            for c in [3usize, 4, 7] {
                let rails = out
                    .iter()
                    .skip(c)
                    .step_by(nc)
                    .filter(|&&v| v == ADC_MIN || v == ADC_MAX)
                    .count();
                // ±2 V uniform against ±201 mV rails: 90% of the samples clamp.
                assert!(rails > 400, "channel {c}: {rails} of 500 at the rails");
            }
        } else {
            assert_eq!(status.saturated, 0, "block at {t0} s");
        }
    }
    assert_eq!(sim.status().saturated, 0, "flags reset after each status");
    let ev = &sim.truth().events[0];
    assert_eq!(
        (ev.kind.as_str(), ev.onset_index, ev.end_index),
        ("cautery", 5000, Some(7500))
    );
    assert_eq!(ev.channels, vec!["CP3-Fz", "CP4-Fz", "Cz-Fpz"]);
}

#[test]
fn electrodes_off_are_flat_or_huge_and_flagged() {
    let s = scenario(
        r#"name = "off"
[[event]]
kind = "electrode_off"
at_s = 1
channel = "CP4-Fz"
level_uv = 100000
[[event]]
kind = "electrode_off"
at_s = 1
duration_s = 1
channel = "Erb R"
mode = "mains"
[[event]]
kind = "electrode_off"
at_s = 1
duration_s = 1
channels = ["Pop L"]
mode = "noise"
[[event]]
kind = "pop"
at_s = 0.5
channel = "Cz-Fpz"
step_uv = 30000
tau_s = 0.2
"#,
    );
    let fs = 10_000.0;
    let nc = 8;
    let (v, _, sim) = run(config(nc, fs as u32, 6, s), 2.5, 1000);
    let at = |s: f64| (s * fs) as usize;
    let cp4 = channel_uv(&v, nc, 4);
    let level = (100_000.0f64 / UV_PER_LSB).round() * UV_PER_LSB;
    assert!(cp4[at(1.0)..].iter().all(|&x| x == level), "flat at 100 mV");
    assert!(cp4[..at(1.0)].iter().any(|&x| x != level));
    let rms = |x: &[f64]| {
        let (m, _) = mean_sd(x);
        (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    };
    let erb = channel_uv(&v, nc, 1);
    // 8 mV mains: RMS 8000/√2 ≈ 5.7 mV, and it is 50 Hz: the 50 Hz DFT component carries almost all of it.
    let seg = &erb[at(1.0)..at(2.0)];
    assert!(rms(seg) > 4000.0);
    let (re, im) = seg.iter().enumerate().fold((0.0, 0.0), |(re, im), (k, &x)| {
        let ph = 2.0 * std::f64::consts::PI * 50.0 * k as f64 / fs;
        (re + x * ph.cos(), im + x * ph.sin())
    });
    let amp50 = 2.0 * (re * re + im * im).sqrt() / seg.len() as f64;
    assert!((7000.0..9000.0).contains(&amp50), "50 Hz amplitude {amp50}");
    assert!(rms(&erb[at(2.0)..]) < 200.0, "back to normal after the event");
    let pop = channel_uv(&v, nc, 5);
    assert!(
        (800.0..1200.0).contains(&rms(&pop[at(1.0)..at(2.0)])),
        "1 mV RMS noise"
    );
    // Impedance flags follow the events.
    assert_eq!(sim.impedance_high_at(at(0.99) as u64), 0);
    assert_eq!(
        sim.impedance_high_at(at(1.5) as u64),
        (1 << 4) | (1 << 1) | (1 << 5)
    );
    assert_eq!(sim.impedance_high_at(at(2.2) as u64), 1 << 4);
    // The pop: a 30 mV step at 0.5 s decaying with τ = 0.2 s.
    let cz = channel_uv(&v, nc, 7);
    let step = cz[at(0.5)] - cz[at(0.5) - 1];
    assert!((step - 30_000.0).abs() < 200.0, "step {step}");
    let later = cz[at(0.7)] - cz[at(0.5) - 1];
    assert!((later / 30_000.0 - (-1.0f64).exp()).abs() < 0.02, "decay {later}");
}

#[test]
fn status_reports_electrode_off_at_the_current_index() {
    let mut sim = Simulator::new(config(16, 5000, 1, Scenario::builtin("electrode-off").unwrap())).unwrap();
    let mut out = vec![0i32; 5000 * 16];
    let mut st = Vec::new();
    for _ in 0..60 {
        sim.generate(5000, &mut out, &mut st);
    }
    assert_eq!(sim.status().impedance_high, 0);
    sim.generate(5000, &mut out, &mut st);
    assert_eq!(sim.status().impedance_high, 1 << 4);
    let flat = (100_000.0f64 / UV_PER_LSB).round() as i32;
    assert!(out.iter().skip(4).step_by(16).all(|&v| v == flat));
}

#[test]
fn link_effects_follow_the_scenario() {
    let mut sim = Simulator::new(config(4, 1000, 1, Scenario::builtin("disconnect").unwrap())).unwrap();
    assert_eq!(sim.duration_samples(), Some(300_000));
    assert!(sim.link_at(89_999).connected);
    assert!(!sim.link_at(90_000).connected);
    assert!(!sim.link_at(94_999).connected);
    assert!(sim.link_at(95_000).connected);
    assert!(!sim.link_at(200_400).connected);
    assert_eq!(sim.link_at(100_000).corrupt_byte_rate, 0.0);
    let mut out = vec![0i32; 4 * 90_000];
    sim.generate(90_000, &mut out, &mut Vec::new());
    assert!(!sim.link().connected, "link() is the state at next_index()");
    let sim = Simulator::new(config(4, 1000, 1, Scenario::builtin("corrupt-link").unwrap())).unwrap();
    assert_eq!(sim.link().corrupt_byte_rate, 0.01);
    assert!(sim.link_at(299_999).connected);
    assert_eq!(
        Simulator::new(SimConfig::default()).unwrap().duration_samples(),
        None
    );
}

#[test]
fn scenario_errors_name_the_key_and_line() {
    let cases: [(&str, &str, usize); 10] = [
        ("name = \"x\"\nduraton_s = 5\n", "duraton_s", 2),
        (
            "name = \"x\"\n\n[[event]]\nkind = \"response\"\nat_s = 1\namplitude_pct = \"big\"\n",
            "event[1].amplitude_pct",
            6,
        ),
        (
            "name = \"x\"\n[[event]]\nkind = \"pop\"\nat_s = 1\n[[event]]\nkind = \"cautery\"\nat_s = -3\n",
            "event[2].at_s",
            7,
        ),
        (
            "name = \"x\"\n[[event]]\nkind = \"cautery\"\nat_s = 1\nchannels = [\"CP3-Fz\", \"Nope\"]\n",
            "event[1].channels",
            5,
        ),
        (
            "name = \"x\"\n[[event]]\nkind = \"explode\"\nat_s = 1\n",
            "event[1].kind",
            3,
        ),
        (
            "name = \"x\"\n[stimulation]\nssep_rate_hz = 500\n",
            "stimulation.ssep_rate_hz",
            3,
        ),
        (
            "name = \"x\"\n[[event]]\nkind = \"response\"\nat_s = 1\ngroup = \"cortex\"\namplitude_pct = -10\n",
            "event[1].group",
            5,
        ),
        (
            "name = \"x\"\n[[event]]\nkind = \"disconnect\"\nat_s = 1\n",
            "event[1].duration_s",
            2,
        ),
        (
            "name = \"x\"\n[[event]]\nkind = \"corrupt_link\"\nbyte_rate = 0.5\nextra = 1\n",
            "event[1].extra",
            5,
        ),
        ("description = \"no name\"\n", "name", 1),
    ];
    for (text, key, line) in cases {
        let e = Scenario::from_toml(text).unwrap_err();
        assert_eq!((e.key(), e.line()), (Some(key), Some(line)), "{text}\n{e}");
        let msg = e.to_string();
        assert!(
            msg.contains(key) && msg.contains(&format!("line {line}")),
            "{msg}"
        );
    }
    // Syntax errors carry the line (and the key when the line has one).
    let e = Scenario::from_toml("name = \"x\"\n\nat_s = = 3\n").unwrap_err();
    assert_eq!(e.line(), Some(3), "{e}");
    assert_eq!(e.key(), Some("at_s"), "{e}");
    assert!(e.to_string().contains("line 3"), "{e}");
    // Not TOML at all, and too large.
    assert!(Scenario::from_toml("\u{0}\u{1}[[[").is_err());
    assert!(Scenario::from_toml(&"#".repeat(2 << 20)).is_err());
}

/// One-sided power spectral density (µV²/Hz) by Welch's method: Hann windows of `seg` samples, half overlap.
fn welch(x: &[f64], fs: f64, seg: usize) -> Vec<f64> {
    use rustfft::{FftPlanner, num_complex::Complex};
    let fft = FftPlanner::<f64>::new().plan_fft_forward(seg);
    let win: Vec<f64> = (0..seg)
        .map(|k| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * k as f64 / seg as f64).cos())
        .collect();
    let u = win.iter().map(|w| w * w).sum::<f64>();
    let mut psd = vec![0.0; seg / 2 + 1];
    let mut count = 0;
    let mut start = 0;
    while start + seg <= x.len() {
        let s = &x[start..start + seg];
        let m = s.iter().sum::<f64>() / seg as f64;
        let mut buf: Vec<Complex<f64>> = s
            .iter()
            .zip(&win)
            .map(|(v, w)| Complex::new((v - m) * w, 0.0))
            .collect();
        fft.process(&mut buf);
        for (k, p) in psd.iter_mut().enumerate() {
            let scale = if k == 0 || k == seg / 2 { 1.0 } else { 2.0 };
            *p += scale * buf[k].norm_sqr() / (fs * u);
        }
        count += 1;
        start += seg / 2;
    }
    psd.iter().map(|p| p / count as f64).collect()
}

fn band_rms(psd: &[f64], fs: f64, seg: usize, f1: f64, f2: f64) -> f64 {
    let df = fs / seg as f64;
    psd.iter()
        .enumerate()
        .filter(|(k, _)| (f1..f2).contains(&(*k as f64 * df)))
        .map(|(_, p)| p * df)
        .sum::<f64>()
        .sqrt()
}

#[test]
fn background_noise_levels_are_as_documented() {
    // Noise only: no stimulation, mains, ECG or DC.
    let s = scenario(
        "name = \"noise\"\n[stimulation]\nssep = false\nbaep = false\ntes = false\n\
         [background]\nmains = 0\necg = 0\ndc = 0\n",
    );
    let fs = 10_000.0;
    let nc = 16;
    let (v, stimuli, sim) = run(config(nc, fs as u32, 8, s), 30.0, 2000);
    assert!(stimuli.is_empty());
    let seg = 8192; // 1.2 Hz resolution
    for (c, ch) in sim.truth().channels.iter().enumerate() {
        let x = channel_uv(&v, nc, c);
        let psd = welch(&x, fs, seg);
        let in_band = band_rms(&psd, fs, seg, 30.0, 1000.0);
        // Welch with ≈ 70 averaged segments: band power within a few % of the design value.
        assert!(
            (in_band / ch.noise_uv_rms_30_1000_hz - 1.0).abs() < 0.1,
            "{}: {in_band:.2} µV in 30-1000 Hz vs design {:.2}",
            ch.label,
            ch.noise_uv_rms_30_1000_hz
        );
        // Broadband: time-domain RMS. The low-frequency EEG has a correlation time of ≈ 0.2 s, so 30 s give
        // ≈ 150 independent values: the RMS is within ≈ 20% (3.5 standard errors) of the design value.
        let (_, sd) = mean_sd(&x);
        assert!(
            (sd / ch.noise_uv_rms_broadband - 1.0).abs() < 0.2,
            "{}: broadband {sd:.1}",
            ch.label
        );
        // 1/f character: equal power per decade, so 30-100 Hz and 300-1000 Hz carry about the same power (the
        // white amplifier noise adds ≈ 10% to the upper band of the quietest channels).
        let lo = band_rms(&psd, fs, seg, 30.0, 100.0).powi(2);
        let hi = band_rms(&psd, fs, seg, 300.0, 1000.0).powi(2);
        assert!(
            (0.75..1.25).contains(&(lo / hi)),
            "{}: {lo:.3} vs {hi:.3}",
            ch.label
        );
        if matches!(
            ch.group,
            firmware_sim::Group::Cortical | firmware_sim::Group::Brainstem
        ) {
            // GUIDE §1: about 3 µV RMS in 30-1000 Hz on cortical channels, 10-30 µV broadband on the scalp.
            assert!((2.5..3.5).contains(&in_band), "{}: {in_band}", ch.label);
            assert!((10.0..30.0).contains(&sd), "{}: {sd}", ch.label);
        }
    }
}

#[test]
fn background_has_mains_with_harmonics() {
    let s = scenario("name = \"bg\"\n[stimulation]\nssep = false\nbaep = false\ntes = false\n");
    let fs = 5_000.0;
    let (v, _, sim) = run(config(4, fs as u32, 8, s), 20.0, 1000);
    let seg = 16_384;
    for c in 0..4 {
        let ch = &sim.truth().channels[c];
        let x = channel_uv(&v, 4, c);
        let psd = welch(&x, fs, seg);
        // A sinusoid of amplitude A has power A²/2: the mains line (±0.05 Hz wander, within ±1 Hz) stands far
        // above the noise in the same 2 Hz (≈ 0.1 µV).
        let line = band_rms(&psd, fs, seg, 49.0, 51.0);
        assert!(
            (line / (ch.mains_uv / 2f64.sqrt()) - 1.0).abs() < 0.1,
            "{line} vs {}",
            ch.mains_uv
        );
        let third = band_rms(&psd, fs, seg, 149.0, 151.0);
        assert!(
            (0.1..0.5).contains(&(third / line)),
            "3rd harmonic {third} vs {line}"
        );
        let dc = mean_sd(&x).0;
        // The low-frequency EEG (≤ 15 µV RMS, correlation ≈ 0.2 s) moves a 20 s mean by ≈ 2 µV.
        assert!(
            (dc - ch.dc_offset_uv).abs() < 10.0,
            "DC {dc} vs {}",
            ch.dc_offset_uv
        );
    }
}

#[test]
fn ecg_beats_at_a_normal_heart_rate() {
    // ECG alone (noise, mains, DC and stimulation off): R waves of the stated size ≈ 70 times a minute.
    let s = scenario(
        "name = \"ecg\"\n[stimulation]\nssep = false\nbaep = false\ntes = false\n\
         [background]\nnoise = 0\nmains = 0\ndc = 0\n",
    );
    let fs = 2_000.0;
    let (v, _, sim) = run(config(3, fs as u32, 8, s), 30.0, 1000);
    let ch = &sim.truth().channels[2];
    let x: Vec<f64> = channel_uv(&v, 3, 2)
        .iter()
        .map(|v| v * ch.ecg_uv.signum())
        .collect();
    let r = ch.ecg_uv.abs();
    let peaks: Vec<usize> = (1..x.len() - 1)
        .filter(|&k| x[k] > 0.5 * r && x[k] >= x[k - 1] && x[k] > x[k + 1])
        .collect();
    let rate = peaks.len() as f64 / 30.0 * 60.0;
    assert!((55.0..=85.0).contains(&rate), "{rate} beats/min");
    let max = x.iter().copied().fold(f64::MIN, f64::max);
    assert!((max / r - 1.0).abs() < 0.1, "R wave {max} vs {r}");
    assert!(
        peaks.windows(2).all(|w| (w[1] - w[0]) as f64 / fs > 0.55),
        "RR intervals"
    );
}

#[test]
fn truth_is_columnar_json() {
    let (_, stimuli, sim) = run(
        config(16, 2000, 1, Scenario::builtin("noisy-or").unwrap()),
        2.0,
        500,
    );
    let json: serde_json::Value = serde_json::from_str(&sim.truth().to_json().unwrap()).unwrap();
    assert_eq!(
        json["stimuli"]["sample_index"].as_array().unwrap().len(),
        stimuli.len()
    );
    assert_eq!(json["stimuli"]["stimulator"][0], "left_ear"); // clicks start at 20 ms, SSEP at 50 ms
    assert_eq!(json["channels"].as_array().unwrap().len(), 16);
    assert_eq!(json["channels"][3]["label"], "CP3-Fz");
    let r = json["responses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["label"] == "CP3-Fz")
        .unwrap();
    assert_eq!(r["stimulator"], "right_median");
    assert!(r["sweeps"]["amplitude_uv"].is_array() && r["sweeps"]["onset"].is_array());
    assert_eq!(json["events"][3]["kind"], "pop");
    assert_eq!(json["events"][3]["onset_index"], 160_000);
    assert_eq!(json["scenario"]["name"], "noisy-or");
    let back: firmware_sim::Truth = serde_json::from_value(json).unwrap();
    assert_eq!(back.stimuli, sim.truth().stimuli);
}
