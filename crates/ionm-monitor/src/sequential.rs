//! A single-sweep sequential detector of amplitude drops (GUIDE §1, "single-sweep methods"): each accepted sweep
//! is projected on the trace's baseline template (a matched filter, the amplitude in baseline units) and a
//! one-sided CUSUM accumulates the evidence of a drop. Where a block average needs hundreds of sweeps (and two
//! confirmations), the CUSUM flags a large drop within tens to a few hundred sweeps at a controlled false-alarm
//! rate.
//!
//! # Method
//!
//! One [`SequentialDetector`] per trace goes through three phases, fed by the same call ([`on_sweep`]):
//!
//! 1. **Template** ([`SequentialConfig::template_sweeps`] accepted sweeps): the per-sample mean `m` and the
//!    per-sample variance `v` across sweeps (Welford). The projection weights are `w = m / v` — the matched filter
//!    prewhitened with the *diagonal* of the noise covariance (samples near the stimulus artifact or a noisy part
//!    of the window weigh less). The full-covariance prewhitening of the GUIDE is not done.
//! 2. **Calibration** ([`SequentialConfig::calibration_sweeps`] further sweeps, *not* used for the template): each
//!    sweep's projection `p = Σ w·x` gives the in-control level `μ₀` (mean of `p`) and s.d. `σ₀`. Amplitudes are
//!    `a = p / μ₀` (1 = baseline) and the s.d. of one sweep's amplitude is `σ = σ₀ / μ₀`. Estimating `μ₀` and `σ₀`
//!    from other sweeps than the template avoids the in-sample bias (the template's own noise correlates with
//!    itself: in-sample projections are too large and too consistent, by ≈ 20% on a realistic SSEP).
//! 3. **Monitoring**: `z = (a − 1) / σ` (≈ N(0, 1) at baseline), and the CUSUM for a drop of `δ = design_drop / σ`
//!    standard deviations, `S ← min(max(0, S − z − k), cap)` with `k = δ / 2` (the optimal reference value for a
//!    Gaussian shift of `δ`). A [`Decision::Raised`] when `S ≥ h`; a [`Decision::Cleared`] when `S` falls back to
//!    0 (the cap, 2h, bounds how long clearing takes after a recovery: at most ≈ `2h / k` sweeps).
//!
//! **Threshold.** `h` is set from the target in-control average run length `ARL₀` in sweeps (the false-alarm
//! rate: e.g. one per 8 h at the trace's sweep rate) by **Siegmund's approximation** for a Gaussian CUSUM,
//! `ARL₀ ≈ (e^{2k·b} − 2k·b − 1) / (2k²)` with `b = h + 1.166` (Siegmund 1985, "Sequential Analysis", eq. 2.55,
//! with his correction for the overshoot), solved for `h` by bisection ([`siegmund_threshold`]). The test suite
//! checks it by simulation on Gaussian noise (`tests/sequential.rs`). It assumes independent Gaussian sweeps:
//! sweep-to-sweep correlation (slow EEG, drifting mains) or heavy tails would shorten the real `ARL₀`. It also
//! assumes the calibrated level is exact: an error of the level `μ₀` (s.e. `σ/√M` for `M` calibration sweeps)
//! shifts `z` by up to ≈ `1/√M` (0.06 for M = 300), which is comparable to `k` when `σ` is large (σ = 1.9,
//! design drop 0.5: k = 0.13) and then shortens `ARL₀` considerably: calibrate on enough sweeps, and check the
//! false-alarm rate on stable recordings (`ionm score`).
//!
//! **Expected delay.** For a drop of `Δ` standard deviations (a true drop `d` of baseline gives `Δ = d / σ`), the
//! CUSUM's delay is about Siegmund's formula with drift `Δ − k` ([`siegmund_arl`]), and Lorden's asymptotic bound
//! is `log(ARL₀) / KL` with `KL = Δ² / 2` per sweep ([`lorden_delay`]).
//!
//! A latency shift also lowers the projection on a fixed template, so the detector reacts to one as a "drop"; it
//! does not say which (estimate latency jointly — shifted templates or cross-correlation of short running
//! averages — to tell them apart: not implemented).
//!
//! # Wiring (what the processing thread must call)
//!
//! Per trace `t`, at set-up: `det[t] = SequentialDetector::new(SequentialConfig::for_rate(sweep_rate_hz, 8.0),
//! window_len)` — `window_len` is `TraceInfo::window_len`; `sweep_rate_hz` the trace's stimulus rate (the
//! stimulator's rate; the ARL is in sweeps, so the false-alarm rate in hours depends on it).
//!
//! In `DspSink::sweep(s)`, for **accepted** sweeps only (`s.verdict == Verdict::Accepted`), and only when the
//! monitor does not suspend the trace's clinical criteria (a technical alarm on its channel; skip the call, or
//! call [`SequentialDetector::restart`] after a long interruption):
//!
//! ```text
//! let stream_s = offset_s + s.stimulus.sample_index as f64 / fs;
//! if let Some(out) = det[s.trace].on_sweep(s.data) {
//!     match out.decision {
//!         Some(Decision::Raised) => emit AlarmEvent { kind: AlarmKind::ChangeDetected, class: Clinical,
//!             state: Raised, detector: "sequential", trace: Some(name), value: Some(out.amplitude_avg),
//!             threshold: Some(out.threshold), stream_s, .. }   // keep its id to clear it
//!         Some(Decision::Cleared) => emit the same id with state: Cleared,
//!         None => {}
//!     }
//! }
//! ```
//!
//! On a user's re-baseline of the trace: [`SequentialDetector::restart`] (learns a new template from the next
//! sweeps; if an alarm is active, the lead should clear it). Rejected sweeps are simply not passed. `on_sweep`
//! never allocates; `new` allocates three buffers of `window_len`.

/// Configuration of a [`SequentialDetector`].
#[derive(Debug, Clone, PartialEq)]
pub struct SequentialConfig {
    /// Accepted sweeps that build the template (and the per-sample noise variance).
    pub template_sweeps: u32,
    /// Further accepted sweeps that calibrate the level and s.d. of the projection (not used for the template).
    pub calibration_sweeps: u32,
    /// The drop the CUSUM is tuned for, as a fraction of baseline amplitude (0.5: a 50% drop); `k = δ/2`.
    pub design_drop: f64,
    /// Target in-control average run length, sweeps (false-alarm rate = sweep rate / this).
    pub arl_sweeps: f64,
    /// A fixed threshold `h` (in standard deviations) instead of the one from `arl_sweeps`.
    pub threshold: Option<f64>,
}

impl Default for SequentialConfig {
    fn default() -> Self {
        Self::for_rate(4.7, 8.0)
    }
}

impl SequentialConfig {
    /// 200 template sweeps, 300 calibration sweeps, tuned for a 50% drop, at most one false alarm per `hours`
    /// at `sweep_rate_hz` sweeps per second (ARL₀ = rate × hours × 3600).
    pub fn for_rate(sweep_rate_hz: f64, hours: f64) -> Self {
        Self {
            template_sweeps: 200,
            calibration_sweeps: 300,
            design_drop: 0.5,
            arl_sweeps: (sweep_rate_hz * hours * 3600.0).max(2.0),
            threshold: None,
        }
    }
}

/// A change of alarm state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The evidence of a drop reached the threshold.
    Raised,
    /// The evidence fell back to zero.
    Cleared,
}

/// What one monitored sweep gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepOutcome {
    /// This sweep's amplitude, baseline units (1 = baseline; noisy: s.d. [`SweepOutcome::sigma`]).
    pub amplitude: f64,
    /// Exponentially weighted mean of the amplitude (32 sweeps), for display and alarm values.
    pub amplitude_avg: f64,
    /// s.d. of one sweep's amplitude, baseline units.
    pub sigma: f64,
    /// The CUSUM statistic, standard deviations.
    pub evidence: f64,
    /// The threshold `h`.
    pub threshold: f64,
    /// Whether an alarm is active (after this sweep).
    pub active: bool,
    /// A change of state on this sweep.
    pub decision: Option<Decision>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Template { n: u32 },
    Calibration { n: u32, sum: f64, sum2: f64 },
    Monitoring,
}

/// Per-trace single-sweep CUSUM detector; see the module documentation.
#[derive(Debug, Clone)]
pub struct SequentialDetector {
    config: SequentialConfig,
    phase: Phase,
    /// Running per-sample mean (template phase), then the weights `w`.
    mean: Vec<f64>,
    /// Running per-sample sum of squared deviations (Welford).
    m2: Vec<f64>,
    weights: Vec<f64>,
    mu0: f64,
    sigma: f64,
    k: f64,
    h: f64,
    s: f64,
    avg: f64,
    active: bool,
}

impl SequentialDetector {
    /// A detector for sweeps of `window_len` samples, starting to learn its template.
    pub fn new(config: SequentialConfig, window_len: usize) -> Self {
        Self {
            config,
            phase: Phase::Template { n: 0 },
            mean: vec![0.0; window_len],
            m2: vec![0.0; window_len],
            weights: vec![0.0; window_len],
            mu0: 0.0,
            sigma: 0.0,
            k: 0.0,
            h: 0.0,
            s: 0.0,
            avg: 1.0,
            active: false,
        }
    }

    /// Forgets the template and learns a new one from the next sweeps (re-baseline). An active alarm is
    /// dropped without a decision: the caller clears it.
    pub fn restart(&mut self) {
        self.phase = Phase::Template { n: 0 };
        self.mean.iter_mut().for_each(|x| *x = 0.0);
        self.m2.iter_mut().for_each(|x| *x = 0.0);
        self.s = 0.0;
        self.avg = 1.0;
        self.active = false;
    }

    /// Uses `template` (e.g. the baseline average, µV, same time base as the sweeps) as the matched filter
    /// without per-sample weighting, and calibrates on the next sweeps (which must not be among those averaged
    /// into `template`). Returns false (and changes nothing) if the length differs from the window.
    pub fn set_template(&mut self, template: &[f32]) -> bool {
        if template.len() != self.weights.len() {
            return false;
        }
        for (w, &t) in self.weights.iter_mut().zip(template) {
            *w = f64::from(t);
        }
        self.start_calibration();
        true
    }

    fn start_calibration(&mut self) {
        self.phase = Phase::Calibration {
            n: 0,
            sum: 0.0,
            sum2: 0.0,
        };
        self.s = 0.0;
        self.avg = 1.0;
        self.active = false;
    }

    /// True once the template and calibration are done and sweeps are being scored.
    pub fn is_monitoring(&self) -> bool {
        self.phase == Phase::Monitoring
    }

    /// s.d. of one sweep's amplitude, baseline units (0 before calibration ends).
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// The CUSUM threshold `h` (0 before calibration ends).
    pub fn threshold(&self) -> f64 {
        self.h
    }

    /// The CUSUM reference value `k` (0 before calibration ends).
    pub fn reference(&self) -> f64 {
        self.k
    }

    /// Takes one accepted sweep (filtered, µV, the trace's window). Returns `None` while learning (or if the
    /// sweep has the wrong length or a non-finite value), otherwise the sweep's amplitude, the evidence and any
    /// change of alarm state. Never allocates.
    pub fn on_sweep(&mut self, data: &[f32]) -> Option<SweepOutcome> {
        if data.len() != self.weights.len() || data.iter().any(|x| !x.is_finite()) {
            return None;
        }
        match self.phase {
            Phase::Template { n } => {
                let n = n + 1;
                let nf = f64::from(n);
                for ((m, m2), &x) in self.mean.iter_mut().zip(self.m2.iter_mut()).zip(data) {
                    let x = f64::from(x);
                    let d = x - *m;
                    *m += d / nf;
                    *m2 += d * (x - *m);
                }
                self.phase = Phase::Template { n };
                if n >= self.config.template_sweeps.max(2) {
                    // w = m / v; a floor on v (1e-3 of its mean) keeps flat samples from dominating.
                    let mean_v = self.m2.iter().sum::<f64>() / (nf - 1.0) / self.m2.len().max(1) as f64;
                    let floor = (mean_v * 1e-3).max(f64::MIN_POSITIVE);
                    for ((w, &m), &m2) in self.weights.iter_mut().zip(&self.mean).zip(&self.m2) {
                        *w = m / (m2 / (nf - 1.0)).max(floor);
                    }
                    self.start_calibration();
                }
                None
            }
            Phase::Calibration { n, sum, sum2 } => {
                let p = self.project(data);
                let (n, sum, sum2) = (n + 1, sum + p, sum2 + p * p);
                self.phase = Phase::Calibration { n, sum, sum2 };
                if n >= self.config.calibration_sweeps.max(2) {
                    let nf = f64::from(n);
                    let mu0 = sum / nf;
                    let var = ((sum2 - nf * mu0 * mu0) / (nf - 1.0)).max(0.0);
                    if mu0 <= 0.0 || !mu0.is_finite() || var <= 0.0 {
                        // No response to track (or a degenerate template): learn again.
                        tracing::debug!(mu0, var, "sequential detector: no usable template, relearning");
                        self.restart();
                        return None;
                    }
                    self.mu0 = mu0;
                    self.sigma = var.sqrt() / mu0;
                    self.k = 0.5 * self.config.design_drop / self.sigma;
                    self.h = self
                        .config
                        .threshold
                        .unwrap_or_else(|| siegmund_threshold(self.k, self.config.arl_sweeps));
                    self.s = 0.0;
                    self.phase = Phase::Monitoring;
                }
                None
            }
            Phase::Monitoring => {
                let a = self.project(data) / self.mu0;
                let z = (a - 1.0) / self.sigma;
                self.avg += (a - self.avg) / 32.0;
                self.s = (self.s - z - self.k).clamp(0.0, 2.0 * self.h);
                let decision = if !self.active && self.s >= self.h {
                    self.active = true;
                    Some(Decision::Raised)
                } else if self.active && self.s <= 0.0 {
                    self.active = false;
                    Some(Decision::Cleared)
                } else {
                    None
                };
                Some(SweepOutcome {
                    amplitude: a,
                    amplitude_avg: self.avg,
                    sigma: self.sigma,
                    evidence: self.s,
                    threshold: self.h,
                    active: self.active,
                    decision,
                })
            }
        }
    }

    fn project(&self, data: &[f32]) -> f64 {
        self.weights
            .iter()
            .zip(data)
            .map(|(w, &x)| w * f64::from(x))
            .sum()
    }
}

/// Siegmund's approximation of the average run length of the CUSUM `S ← max(0, S + z − k)`, alarm at `S ≥ h`,
/// when `z ~ N(μ, 1)`: with drift `Δ = μ − k` and `b = h + 1.166`, `ARL ≈ (e^{−2Δb} + 2Δb − 1) / (2Δ²)`
/// (`b²` when `Δ = 0`). In control (`μ = 0`) this is `ARL₀`; for a shift `μ > k`, the expected delay.
pub fn siegmund_arl(k: f64, h: f64, mu: f64) -> f64 {
    let d = mu - k;
    let b = h + 1.166;
    if d.abs() < 1e-9 {
        return b * b;
    }
    ((-2.0 * d * b).exp() + 2.0 * d * b - 1.0) / (2.0 * d * d)
}

/// The threshold `h` for which [`siegmund_arl`]`(k, h, 0)` = `arl` (bisection; `h ≥ 0`).
pub fn siegmund_threshold(k: f64, arl: f64) -> f64 {
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while siegmund_arl(k, hi, 0.0) < arl && hi < 1e6 {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if siegmund_arl(k, mid, 0.0) < arl {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Lorden's asymptotic delay for a shift of `delta` standard deviations at in-control ARL `arl`:
/// `log(ARL) / KL` sweeps with `KL = δ² / 2`.
pub fn lorden_delay(delta: f64, arl: f64) -> f64 {
    arl.ln() / (0.5 * delta * delta)
}
