//! The single-sweep CUSUM: its threshold against published ARL tables and against simulation on Gaussian noise,
//! and the detector end to end on synthetic sweeps (template + white Gaussian noise) against analytic figures.

use ionm_core::Rng;
use ionm_monitor::sequential::{lorden_delay, siegmund_arl, siegmund_threshold};
use ionm_monitor::{ChangeLabel, Decision, SequentialConfig, SequentialDetector};

/// Siegmund's approximation against the exact (integral-equation) ARLs tabulated for the standardised CUSUM
/// with k = 0.5 (Montgomery, "Introduction to Statistical Quality Control", table of ARLs for the tabular CUSUM;
/// Hawkins & Olwell 1998). The tables are for the *two-sided* scheme; in control its ARL is half the one-sided
/// one (1/ARL = 1/ARL⁺ + 1/ARL⁻), out of control (shift 1σ) the far side contributes nothing. Tolerance 2%: the
/// known accuracy of Siegmund's corrected approximation in this range.
#[test]
fn siegmund_matches_published_tables() {
    for (h, arl0_two_sided, arl1) in [(4.0, 168.0, 8.38), (5.0, 465.0, 10.4)] {
        let a0 = siegmund_arl(0.5, h, 0.0);
        assert!(
            (a0 / (2.0 * arl0_two_sided) - 1.0).abs() < 0.02,
            "h={h}: ARL0 {a0}"
        );
        let a1 = siegmund_arl(0.5, h, 1.0);
        assert!((a1 / arl1 - 1.0).abs() < 0.02, "h={h}: ARL1 {a1}");
    }
    // The inverse.
    let h = siegmund_threshold(0.5, 2.0 * 465.0);
    assert!((h - 5.0).abs() < 0.05, "{h}");
}

/// Run length of the CUSUM S ← max(0, S − z − k) (a drop detector, as in the detector) on N(0, 1) noise.
fn run_length(rng: &mut Rng, k: f64, h: f64) -> u64 {
    let mut s = 0.0_f64;
    let mut n = 0;
    loop {
        n += 1;
        s = (s - rng.normal() - k).max(0.0);
        if s >= h {
            return n;
        }
    }
}

/// With the threshold for ARL₀ = A, the mean run length on pure Gaussian noise is A. The run length is close to
/// geometric, s.d. ≈ mean, so the mean of R runs has a standard error ≈ A/√R (we use the measured s.d.);
/// tolerance = 3 standard errors + 3% of A for the approximation itself (its error is ≤ 2% in the tables above).
#[test]
fn threshold_gives_the_target_arl_on_gaussian_noise() {
    let target = 500.0;
    let runs = 400;
    for (k, seed) in [(0.25, 11), (0.5, 12)] {
        let h = siegmund_threshold(k, target);
        let mut rng = Rng::new(seed);
        let lengths: Vec<f64> = (0..runs).map(|_| run_length(&mut rng, k, h) as f64).collect();
        let n = lengths.len() as f64;
        let mean = lengths.iter().sum::<f64>() / n;
        let sd = (lengths.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let tol = 3.0 * sd / n.sqrt() + 0.03 * target;
        assert!(
            (mean - target).abs() <= tol,
            "k={k} h={h:.3}: mean run length {mean:.1} (s.d. {sd:.1}) vs {target} ± {tol:.1}"
        );
    }
}

/// Lorden: log(ARL)/KL with KL = δ²/2.
#[test]
fn lorden_delay_formula() {
    let d = lorden_delay(0.5, 1e5);
    assert!((d - 1e5_f64.ln() / 0.125).abs() < 1e-9);
}

const LEN: usize = 200;

/// A response of unit-free shape with ‖r‖ = `norm`: one period of a Hann-windowed sine in the middle.
fn response(norm: f64) -> Vec<f64> {
    let r: Vec<f64> = (0..LEN)
        .map(|i| {
            let x = i as f64 / (LEN - 1) as f64;
            (std::f64::consts::PI * x).sin().powi(2) * (4.0 * std::f64::consts::PI * x).sin()
        })
        .collect();
    let e = r.iter().map(|x| x * x).sum::<f64>().sqrt();
    r.iter().map(|x| x * norm / e).collect()
}

fn sweep(rng: &mut Rng, r: &[f64], gain: f64, noise: f64, out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(r) {
        *o = (gain * x + noise * rng.normal()) as f32;
    }
}

/// The σ of one sweep's amplitude, its level, and the delay to a 60% drop, against analytic figures.
///
/// White noise of s.d. σₙ per sample, response energy ‖r‖², N template sweeps: the weights are ≈ r + e with
/// ‖e‖² ≈ L·σₙ²/N (the template's own noise; the diagonal weighting is ≈ uniform for white noise), so one sweep's
/// projection in baseline units has s.d. σ ≈ σₙ·√(‖r‖² + L·σₙ²/N) / ‖r‖². Here N = M = 400 (template,
/// calibration sweeps). Relative standard error of the estimated σ = σ₀/μ₀: √(1/2M) ≈ 3.5% from σ₀, σ/√M ≈ 6%
/// from the level μ₀, and ≈ 5% from the template's noise (⟨e, r⟩ has s.d. σₙ‖r‖/√N against ‖r‖²): ≈ 9% in
/// all; tolerance 30% (> 3 s.e.).
#[test]
fn detector_learns_calibrates_and_detects_a_drop() {
    let (norm, noise) = (10.0, 10.0);
    let r = response(norm);
    let cfg = SequentialConfig {
        template_sweeps: 400,
        calibration_sweeps: 400,
        // The formula above is for the unshrunk template (shrinkage: next test).
        template_shrinkage: 0.0,
        ..SequentialConfig::for_rate(4.7, 8.0)
    };
    let expected_sigma = noise
        * (norm * norm + LEN as f64 * noise * noise / f64::from(cfg.template_sweeps)).sqrt()
        / (norm * norm);
    let mut buf = vec![0.0_f32; LEN];
    let mut delays = Vec::new();
    let mut level = Vec::new();
    for seed in 0..20 {
        let mut rng = Rng::new(100 + seed);
        let mut det = SequentialDetector::new(cfg.clone(), LEN);
        let learning = cfg.template_sweeps + cfg.calibration_sweeps;
        for i in 0..learning {
            sweep(&mut rng, &r, 1.0, noise, &mut buf);
            assert!(det.on_sweep(&buf).is_none(), "sweep {i} is still learning");
        }
        assert!(det.is_monitoring());
        let sigma = det.sigma();
        assert!(
            (sigma / expected_sigma - 1.0).abs() < 0.25,
            "σ {sigma} vs {expected_sigma}"
        );
        // 300 baseline sweeps: no alarm expected (ARL₀ ≈ 135 000 sweeps: P(alarm) ≈ 0.2% per detector).
        for _ in 0..300 {
            sweep(&mut rng, &r, 1.0, noise, &mut buf);
            let o = det.on_sweep(&buf).expect("monitoring");
            assert_eq!(o.decision, None);
            level.push(o.amplitude);
        }
        // A 60% drop.
        let mut delay = None;
        for n in 1..=2000 {
            sweep(&mut rng, &r, 0.4, noise, &mut buf);
            if det.on_sweep(&buf).expect("monitoring").decision == Some(Decision::Raised) {
                delay = Some(n);
                break;
            }
        }
        let delay = delay.expect("the drop is detected");
        // Siegmund's out-of-control ARL for this detector's own σ, k, h (Δ = 0.6/σ).
        delays.push((
            f64::from(delay),
            siegmund_arl(det.reference(), det.threshold(), 0.6 / sigma),
        ));
        // Recovery: the evidence returns to 0 and the alarm clears within 2h/k sweeps (+ slack for noise).
        let bound = (2.0 * det.threshold() / det.reference()).ceil() as usize * 2;
        let mut cleared = false;
        for _ in 0..bound {
            sweep(&mut rng, &r, 1.0, noise, &mut buf);
            if det.on_sweep(&buf).expect("monitoring").decision == Some(Decision::Cleared) {
                cleared = true;
                break;
            }
        }
        assert!(cleared, "cleared after recovery");
    }
    // The level of held-out sweeps is 1 (the calibration is unbiased): 6000 amplitudes of s.d. ≈ σ, but 20
    // detectors each with its own μ₀ estimated from 100 sweeps (s.e. ≈ σ/10 each, ≈ σ/45 averaged): 4 s.e.
    let n = level.len() as f64;
    let mean = level.iter().sum::<f64>() / n;
    assert!(
        (mean - 1.0).abs() < 4.0 * expected_sigma / (20.0_f64 * 100.0).sqrt(),
        "level {mean}"
    );
    // Mean delay against Siegmund's prediction: run lengths after a large shift have a s.d. of ≈ 30% of the
    // mean, so 20 of them ≈ 7%; σ, k and h are estimated (≈ 10%): tolerance 30%.
    let measured = delays.iter().map(|d| d.0).sum::<f64>() / delays.len() as f64;
    let predicted = delays.iter().map(|d| d.1).sum::<f64>() / delays.len() as f64;
    assert!(
        (measured / predicted - 1.0).abs() < 0.3,
        "delay {measured} vs Siegmund {predicted}"
    );
}

/// Template shrinkage removes part of the template's noise from the projection: on the same sweeps, the σ of the
/// filter the calibration keeps lies between the two analytic figures of the test above — the exact matched
/// filter's `σₙ/‖r‖` (no estimated template can beat it on white noise) and the unshrunk template's
/// `σₙ·√(‖r‖² + L·σₙ²/N)/‖r‖²` — and clearly below the latter. Here `N` = 200, so the bounds are 1.00 and 1.41
/// baseline units; each detector's σ has a relative standard error of ≈ 9% (above), the mean of 20 ≈ 2%: the
/// margins (3% below the floor, 5% below the unshrunk σ measured on the same sweeps) are over 1.5 s.e. of the
/// mean and far less than the expected gain (the response fills a third of the window; the rest of the
/// template is noise, which shrinkage mostly removes: σ ≈ 1.2 expected).
#[test]
fn shrinking_the_template_lowers_sigma_towards_the_exact_matched_filter() {
    let (norm, noise) = (10.0, 10.0);
    // The response of the other tests squeezed into the middle third of the window (zero elsewhere, as an SSEP
    // window around its peaks), with the same norm.
    let full = response(norm);
    let r: Vec<f64> = (0..LEN)
        .map(|i| {
            let j = i as isize - LEN as isize / 3;
            if (0..LEN as isize / 3).contains(&j) {
                full[(3 * j) as usize] * 3.0_f64.sqrt()
            } else {
                0.0
            }
        })
        .collect();
    let cfg = |c: f64| SequentialConfig {
        template_sweeps: 200,
        calibration_sweeps: 400,
        template_shrinkage: c,
        ..SequentialConfig::for_rate(4.7, 8.0)
    };
    let exact = noise / norm;
    let unshrunk = noise
        * (norm * norm + LEN as f64 * noise * noise / f64::from(cfg(0.0).template_sweeps)).sqrt()
        / (norm * norm);
    let mut buf = vec![0.0_f32; LEN];
    let (mut plain, mut shrunk) = (0.0, 0.0);
    let seeds = 20;
    for seed in 0..seeds {
        let mut a = SequentialDetector::new(cfg(0.0), LEN);
        let mut b = SequentialDetector::new(cfg(2.0), LEN);
        let mut rng = Rng::new(700 + seed);
        while !(a.is_monitoring() && b.is_monitoring()) {
            sweep(&mut rng, &r, 1.0, noise, &mut buf);
            a.on_sweep(&buf);
            b.on_sweep(&buf);
        }
        assert_eq!(a.template_shrinkage(), Some(0.0));
        assert!(b.template_shrinkage().is_some());
        plain += a.sigma() / seeds as f64;
        shrunk += b.sigma() / seeds as f64;
    }
    // 15%: the formula ignores the per-sample weighting by the estimated variance (each v from N = 200 sweeps,
    // ±10%), which mismatches the weights and adds a few per cent.
    assert!(
        (plain / unshrunk - 1.0).abs() < 0.15,
        "unshrunk σ {plain} vs {unshrunk}"
    );
    assert!(shrunk < 0.95 * plain, "shrunk σ {shrunk} vs unshrunk {plain}");
    assert!(
        shrunk > 0.97 * exact,
        "shrunk σ {shrunk} vs the exact filter's {exact}"
    );
}

#[test]
fn wrong_length_or_non_finite_sweeps_are_ignored() {
    let mut det = SequentialDetector::new(SequentialConfig::default(), 10);
    assert!(det.on_sweep(&[0.0; 9]).is_none());
    assert!(det.on_sweep(&[f32::NAN; 10]).is_none());
    assert!(!det.set_template(&[1.0; 3]));
    assert!(det.set_template(&[1.0; 10]));
    assert!(!det.is_monitoring());
}

/// A template of pure noise (no response) has a calibration level ≈ 0 half of the time; the detector must not
/// produce a meaningless σ (it relearns) nor ever panic.
#[test]
fn no_response_never_panics() {
    let mut rng = Rng::new(5);
    let zero = vec![0.0; LEN];
    let mut det = SequentialDetector::new(
        SequentialConfig {
            template_sweeps: 20,
            calibration_sweeps: 20,
            ..SequentialConfig::default()
        },
        LEN,
    );
    let mut buf = vec![0.0_f32; LEN];
    for _ in 0..2000 {
        sweep(&mut rng, &zero, 1.0, 1.0, &mut buf);
        if let Some(o) = det.on_sweep(&buf) {
            assert!(o.amplitude.is_finite() && o.evidence.is_finite() && o.sigma > 0.0);
        }
    }
}

/// The detector itself (estimated level and σ, clipped z, level margin) on pure noise around its template, with
/// the threshold for ARL₀ = A sweeps: its false alarms must not come sooner than the target. The margin on `k`
/// makes it conservative by design (it guards against the level's estimation error), so the assertion is
/// one-sided: mean run length ≥ A × (1 − 3 s.e.), with the run length ≈ geometric (s.e. of the mean ≈ mean/√R).
/// With the margin off and a long calibration it must also be within a factor 2 of A (the level error of
/// M = 2000 calibration sweeps, ≈ 0.02 s.d., still moves ARL₀ by tens of per cent at this k: a stated, loose
/// tolerance, not a tuned one).
#[test]
fn detector_false_alarm_run_length_meets_its_target() {
    for (margin, calibration, two_sided) in [(2.0, 400, false), (0.0, 2000, true)] {
        let cfg = SequentialConfig {
            template_sweeps: 400,
            calibration_sweeps: calibration,
            arl_sweeps: 400.0,
            level_margin: margin,
            ..SequentialConfig::for_rate(4.7, 8.0)
        };
        let lengths: Vec<f64> = (0..60)
            .map(|seed| detector_run_length(&cfg, 7000 + seed, false))
            .collect();
        assert_run_length(&lengths, 400.0, two_sided, &format!("margin {margin}"));
    }
}

/// Sweeps scored until the first false alarm (at most 200 000) of a detector on pure noise around its template
/// (`‖r‖` = 10, noise 10 per sample), counted once it monitors — or, with `latency`, once its latency CUSUM runs
/// too (reference latency 10 ms at 0.1 ms per sample; learnt again if the amplitude CUSUM raised before that).
fn detector_run_length(cfg: &SequentialConfig, seed: u64, latency: bool) -> f64 {
    let (r, mut rng) = (response(10.0), Rng::new(seed));
    let mut buf = vec![0.0_f32; LEN];
    let mut det = SequentialDetector::new(cfg.clone(), LEN);
    if latency {
        det.set_sample_period_ms(0.1);
        det.set_reference_latency_ms(Some(10.0));
        while !until_latency_runs(&mut det, &mut rng, &r, 10.0, 10_000) || det.is_active() {
            det.restart();
        }
    }
    let mut n = 0u64;
    loop {
        sweep(&mut rng, &r, 1.0, 10.0, &mut buf);
        if let Some(o) = det.on_sweep(&buf) {
            n += 1;
            if o.decision == Some(Decision::Raised) || n >= 200_000 {
                return n as f64;
            }
        }
    }
}

/// Mean run length ≥ `target` − 3 s.e. (run lengths ≈ geometric: s.e. of the mean ≈ mean/√R), and with
/// `two_sided` also ≤ 2 × `target`.
fn assert_run_length(lengths: &[f64], target: f64, two_sided: bool, what: &str) {
    let mean = lengths.iter().sum::<f64>() / lengths.len() as f64;
    let se = mean / (lengths.len() as f64).sqrt();
    assert!(
        mean >= target - 3.0 * se,
        "{what}: mean run length {mean:.0} below the target {target}"
    );
    if two_sided {
        assert!(
            mean <= 2.0 * target,
            "{what}: mean run length {mean:.0} vs {target}"
        );
    }
}

/// A later response is labelled latency, a smaller one amplitude: the sweeps since the change point,
/// cross-correlated with the template. Response: one period of 100 samples (10 ms at 0.1 ms) centred on sample
/// 100; the reference latency is 10 ms, so a +15% shift is 15 samples (the latency CUSUM, tuned for 10 samples,
/// raises the alarm; the 60% drop is raised by the amplitude CUSUM).
#[test]
fn latency_and_amplitude_changes_are_told_apart() {
    let r = response(10.0);
    let shifted: Vec<f64> = (0..LEN).map(|i| if i >= 15 { r[i - 15] } else { 0.0 }).collect();
    let mut buf = vec![0.0_f32; LEN];
    for (changed, gain, want_latency) in [(&shifted, 1.0, true), (&r, 0.4, false)] {
        let mut rng = Rng::new(99);
        let mut det = SequentialDetector::new(
            SequentialConfig {
                template_sweeps: 300,
                calibration_sweeps: 400,
                ..SequentialConfig::for_rate(4.7, 8.0)
            },
            LEN,
        );
        det.set_sample_period_ms(0.1);
        det.set_reference_latency_ms(Some(10.0));
        for _ in 0..1000 {
            sweep(&mut rng, &r, 1.0, 5.0, &mut buf);
            det.on_sweep(&buf);
        }
        assert!(det.is_monitoring());
        let mut label = None;
        for _ in 0..3000 {
            sweep(&mut rng, changed, gain, 5.0, &mut buf);
            if let Some(o) = det.on_sweep(&buf)
                && o.decision == Some(Decision::Raised)
            {
                label = o.label;
                break;
            }
        }
        match (label, want_latency) {
            (Some(ChangeLabel::Latency { shift_ms, ratio }), true) => {
                // 1.5 ms; the segment average is short and noisy, and biased up (taken where the CUSUM crossed):
                // within half of it here (the estimate's accuracy: `a_design_latency_shift_is_flagged_…`).
                assert!((shift_ms - 1.5).abs() < 0.75, "shift {shift_ms}");
                assert!(
                    ratio.is_some_and(|x| (x - (10.0 + shift_ms) / 10.0).abs() < 1e-9),
                    "{ratio:?}"
                );
            }
            (Some(ChangeLabel::Amplitude { ratio }), false) => {
                assert!((ratio - 0.4).abs() < 0.25, "amplitude {ratio}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// `n` values of a stationary AR(1) `x ← φx + e`, `e ~ N(0, 1)` (started from its stationary law).
fn ar1(rng: &mut Rng, phi: f64, n: usize) -> Vec<f64> {
    let mut x = rng.normal() / (1.0 - phi * phi).sqrt();
    (0..n)
        .map(|_| {
            x = phi * x + rng.normal();
            x
        })
        .collect()
}

fn mean_var(p: &[f64]) -> (f64, f64) {
    let n = p.len() as f64;
    let m = p.iter().sum::<f64>() / n;
    (m, p.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0))
}

/// The long-run variance against the analytic AR(1) value, on calibration-sized sequences (800 sweeps, the
/// default). Independent sweeps: each of the (up to four) batch sizes tests at one-sided 0.1% in the normal
/// approximation (the estimator's upper tail is heavier), so a correlation is reported in a few per cent of
/// sequences at most (tolerance: 8% of 400). AR(1) with φ = 0.5: per-item variance
/// 1/(1−φ²) = 4/3, long-run variance 1/(1−φ)² = 4 (three times larger): found in ≥ 90% of sequences, and the
/// median estimate within 35% of 4 — OBM estimates with B ≤ 200 of 800 have a relative s.d. up to ≈ 46% and the
/// reported value is the largest significant one (biased upwards on purpose: conservative), so the tolerance is
/// wide but excludes both the per-item variance (−67%) and a factor of two.
#[test]
fn long_run_variance_matches_ar1() {
    use ionm_monitor::sequential::long_run_variance;
    let mut rng = Rng::new(77);
    let runs = 400;
    let mut iid_flagged = 0;
    for _ in 0..runs {
        let p = ar1(&mut rng, 0.0, 800);
        let (m, v) = mean_var(&p);
        if long_run_variance(&p, m, v) > 0.0 {
            iid_flagged += 1;
        }
    }
    assert!(
        iid_flagged <= runs * 8 / 100,
        "{iid_flagged} of {runs} iid sequences flagged"
    );
    let mut estimates = Vec::new();
    for _ in 0..runs {
        let p = ar1(&mut rng, 0.5, 800);
        let (m, v) = mean_var(&p);
        let lr = long_run_variance(&p, m, v);
        if lr > 0.0 {
            estimates.push(lr);
        }
    }
    assert!(
        estimates.len() >= runs * 90 / 100,
        "found in {} of {runs}",
        estimates.len()
    );
    estimates.sort_by(f64::total_cmp);
    let median = estimates[estimates.len() / 2];
    assert!(
        (median / 4.0 - 1.0).abs() < 0.35,
        "median long-run variance {median} vs 4"
    );
}

/// A trace whose single sweeps cannot show even a lost response in time is left alone: at noise 100 (σ ≈ 10×
/// the response) a loss is 0.1 s.d., below k, so the CUSUM could never see it; at noise 10 it monitors.
#[test]
fn hopelessly_noisy_traces_are_left_to_the_block_detector() {
    let r = response(10.0);
    let cfg = SequentialConfig {
        template_sweeps: 200,
        calibration_sweeps: 400,
        ..SequentialConfig::for_rate(4.7, 8.0)
    };
    let mut buf = vec![0.0_f32; LEN];
    for (noise, insensitive) in [(100.0, true), (10.0, false)] {
        let mut rng = Rng::new(9);
        let mut det = SequentialDetector::new(cfg.clone(), LEN);
        for _ in 0..cfg.template_sweeps + cfg.calibration_sweeps {
            sweep(&mut rng, &r, 1.0, noise, &mut buf);
            assert!(det.on_sweep(&buf).is_none());
        }
        assert_eq!(det.is_insensitive(), insensitive, "noise {noise}");
        assert_eq!(det.is_monitoring(), !insensitive, "noise {noise}");
        if insensitive {
            assert!(det.loss_delay_sweeps() > cfg.max_loss_delay_sweeps);
            // It scores nothing, whatever comes, until a re-baseline.
            for _ in 0..100 {
                sweep(&mut rng, &r, 0.0, noise, &mut buf);
                assert!(det.on_sweep(&buf).is_none());
            }
            det.restart();
            assert!(!det.is_insensitive());
        }
    }
}

/// `r` delayed by `shift` samples (zeros before it).
fn delayed(r: &[f64], shift: usize) -> Vec<f64> {
    (0..r.len())
        .map(|i| if i >= shift { r[i - shift] } else { 0.0 })
        .collect()
}

/// Runs `det` on sweeps of `r` until the latency CUSUM is running (its threshold set); false if it never is.
fn until_latency_runs(
    det: &mut SequentialDetector,
    rng: &mut Rng,
    r: &[f64],
    noise: f64,
    max: usize,
) -> bool {
    let mut buf = vec![0.0_f32; r.len()];
    for _ in 0..max {
        sweep(rng, r, 1.0, noise, &mut buf);
        det.on_sweep(&buf);
        if det.latency_threshold() > 0.0 {
            return true;
        }
    }
    false
}

/// The latency CUSUM's threshold: with the latency filter running besides the amplitude CUSUM (at the trace's
/// target ARL `A` divided by their shares of its false alarms, 0.1 and 0.9), the trace's mean run length to a
/// false alarm on pure noise — either CUSUM raising — is the target: at least the target − 3 s.e. with the
/// default level margin, and within [target − 3 s.e., 2 × target] with no margin and long calibrations (the first
/// alarm of two independent CUSUMs at `A/0.1` and `A/0.9` comes after ≈ `A` sweeps; without the split it would be
/// ≈ `A/2` and fail the first bound). 60 runs each: s.e. ≈ mean/√60 ≈ 13%.
#[test]
fn both_cusums_together_keep_the_traces_false_alarm_target() {
    for (margin, calibration) in [(2.0, 400), (0.0, 2000)] {
        let cfg = SequentialConfig {
            template_sweeps: 400,
            calibration_sweeps: calibration,
            latency_calibration_sweeps: calibration,
            arl_sweeps: 400.0,
            level_margin: margin,
            ..SequentialConfig::for_rate(4.7, 8.0)
        };
        let lengths: Vec<f64> = (0..60)
            .map(|seed| detector_run_length(&cfg, 9100 + seed, true))
            .collect();
        assert_run_length(&lengths, 400.0, margin == 0.0, &format!("margin {margin}"));
    }
}

/// The latency CUSUM against analytic figures. The response has a 100-sample period and the reference latency is
/// 10 ms at 0.1 ms per sample, so the design shift (10%) is 10 samples: `Δr = r(t − 10) − r(t)`. The filter is
/// made from the template, `u = Δm / v` with `Δm = Δr + Δe` (the template's noise, `‖Δe‖² ≈ 2·L·σₙ²/N`: 20 against
/// `‖Δr‖²` = 41 here, N = 2000 unshrunk), so what a shift really adds to one sweep's projection is `⟨Δr, Δm⟩/v`,
/// in its standard deviations `D = ‖Δr‖² / (σₙ·‖Δm‖)` — analytically `‖Δr‖²/(σₙ·√(‖Δr‖² + 2Lσₙ²/N))` ≈ 0.53
/// (the exact filter's would be `‖Δr‖/σₙ` ≈ 0.64). The detector measures it on its calibration sweeps, delayed
/// (each with an s.e. of ≈ √(2/300) ≈ 0.08): the mean of 20 is within 15% of the analytic value. A 10% later
/// response is then flagged by the latency CUSUM and labelled latency, with a shift (the sweeps since its change
/// point cross-correlated with the template: s.d. ≈ 0.3 ms here, and biased up a little, as every estimate taken
/// where a CUSUM crossed is) between 0 and 2 ms, their mean within 0.3 ms of 1 ms; the mean delay of the 20 detectors is within 35% of Siegmund's prediction for the analytic `D` with each one's
/// own `k` and `h` (delays after a shift have a s.d. of ≈ 40% of their mean here, 9% for 20; each `k` carries
/// its measured `D`'s error). The amplitude CUSUM alone sees this shift as a 21% drop (the projection on the
/// template falls to 0.79), below its reference value (≈ 0.21 s.d. against ≈ 0.36): it flags it only by chance,
/// after ≈ 1800 sweeps by Siegmund's formula; on the same sweeps (capped at 3000) its mean delay is asserted to
/// be over 4 times the latency CUSUM's.
#[test]
fn a_design_latency_shift_is_flagged_as_siegmund_predicts() {
    let (norm, noise) = (10.0, 10.0);
    let r = response(norm);
    let shifted = delayed(&r, 10);
    let dr2 = r
        .iter()
        .zip(&shifted)
        .map(|(a, b)| (b - a) * (b - a))
        .sum::<f64>();
    let template_noise = 2.0 * LEN as f64 * noise * noise / 2000.0;
    let analytic = dr2 / (noise * (dr2 + template_noise).sqrt());
    let mut separations = Vec::new();
    let mut shifts = Vec::new();
    let mut buf = vec![0.0_f32; LEN];
    let mut delays = Vec::new();
    let mut amplitude_alone = Vec::new();
    for seed in 0..20 {
        for latency_cusum in [true, false] {
            let mut rng = Rng::new(5200 + seed);
            let cfg = SequentialConfig {
                template_sweeps: 2000,
                calibration_sweeps: 400,
                template_shrinkage: 0.0,
                latency_cusum,
                ..SequentialConfig::for_rate(4.7, 8.0)
            };
            let mut det = SequentialDetector::new(cfg, LEN);
            det.set_sample_period_ms(0.1);
            det.set_reference_latency_ms(Some(10.0));
            let runs = until_latency_runs(&mut det, &mut rng, &r, noise, 3000);
            assert_eq!(runs, latency_cusum);
            if !latency_cusum {
                // Learnt and monitoring (the latency CUSUM off): the amplitude CUSUM alone.
                for _ in 0..3000 {
                    sweep(&mut rng, &r, 1.0, noise, &mut buf);
                    det.on_sweep(&buf);
                }
                assert!(det.is_monitoring() && !det.is_active());
            } else {
                separations.push(det.latency_separation());
                assert!(!det.is_active(), "no alarm before the change");
            }
            let mut raised = None;
            for n in 1..=3000 {
                sweep(&mut rng, &shifted, 1.0, noise, &mut buf);
                let o = det.on_sweep(&buf).expect("monitoring");
                if o.decision == Some(Decision::Raised) {
                    raised = Some((n, o.label, o.latency_evidence >= o.latency_threshold));
                    break;
                }
            }
            if latency_cusum {
                let (n, label, by_latency) = raised.expect("the shift is flagged");
                assert!(by_latency, "by the latency CUSUM");
                match label {
                    Some(ChangeLabel::Latency { shift_ms, .. }) => {
                        assert!(shift_ms > 0.0 && shift_ms < 2.0, "shift {shift_ms}");
                        shifts.push(shift_ms);
                    }
                    other => panic!("labelled {other:?}"),
                }
                delays.push((
                    f64::from(n),
                    siegmund_arl(det.latency_reference(), det.latency_threshold(), analytic),
                ));
            } else {
                amplitude_alone.push(f64::from(raised.map_or(3000, |x| x.0)));
            }
        }
    }
    let shift = shifts.iter().sum::<f64>() / shifts.len() as f64;
    assert!((shift - 1.0).abs() < 0.3, "mean shift estimate {shift} ms");
    let d = separations.iter().sum::<f64>() / separations.len() as f64;
    assert!((d / analytic - 1.0).abs() < 0.15, "separation {d} vs {analytic}");
    let measured = delays.iter().map(|d| d.0).sum::<f64>() / delays.len() as f64;
    let predicted = delays.iter().map(|d| d.1).sum::<f64>() / delays.len() as f64;
    assert!(
        (measured / predicted - 1.0).abs() < 0.35,
        "delay {measured} vs Siegmund {predicted}"
    );
    let alone = amplitude_alone.iter().sum::<f64>() / amplitude_alone.len() as f64;
    assert!(
        alone > 4.0 * measured,
        "amplitude CUSUM alone {alone} vs {measured}"
    );
}
