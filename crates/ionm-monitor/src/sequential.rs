//! A single-sweep sequential detector of amplitude drops (GUIDE §1, "single-sweep methods"): each accepted sweep
//! is projected on the trace's baseline template (a matched filter, the amplitude in baseline units) and a
//! one-sided CUSUM accumulates the evidence of a drop. Where a block average needs hundreds of sweeps (and two
//! confirmations), the CUSUM flags a large drop within tens to a few hundred sweeps at a controlled false-alarm
//! rate.
//!
//! # Method
//!
//! One [`SequentialDetector`] per trace goes through three phases, fed by the same call
//! ([`SequentialDetector::on_sweep`]):
//!
//! 1. **Template** ([`SequentialConfig::template_sweeps`] accepted sweeps): the per-sample mean `m` and the
//!    per-sample variance `v` across sweeps (Welford). The projection weights are `w = m / v` — the matched filter
//!    prewhitened with the *diagonal* of the noise covariance (samples near the stimulus artifact or a noisy part
//!    of the window weigh less). **Template shrinkage**: the mean `m` comes from a few hundred sweeps, and its
//!    own noise — all of it, where the window holds no response — adds to every projection (a noisy template
//!    is a mismatched filter). Each template sample is therefore also shrunk towards 0 by the positive-part
//!    James–Stein factor `max(0, 1 − c·se²/m²)`, `se² = v/n` its squared standard error, for three strengths
//!    `c` = 0, `c_max/2`, `c_max` ([`SequentialConfig::template_shrinkage`] = `c_max`, default 2), and the
//!    calibration (below) keeps the one whose projections are least noisy. In a simulation with 1/f noise and a
//!    band-passed P37/N45 at 20 kHz (200 template sweeps; `benches/sequential_template.py`) the s.d. of one
//!    sweep's amplitude fell from 2.34 to 2.12 baseline units on a −10…100 ms window and from 2.21 to 2.12 on
//!    −10…50 ms (2.02 with the exact template); on white noise with a response weaker than the template's noise
//!    per sample, shrinkage made it worse (4.9–6.0 against 4.0), which is why the choice is left to the data.
//!    The full-covariance prewhitening of the GUIDE is not done: with an estimated template, the inverse
//!    covariance amplified the template's noise more than it removed (the same simulation: 3.7).
//! 2. **Calibration** ([`SequentialConfig::calibration_sweeps`] further sweeps, *not* used for the template): each
//!    sweep's projection `p = Σ w·x` gives the in-control level `μ₀` (mean of `p`) and s.d. `σ₀`. Amplitudes are
//!    `a = p / μ₀` (1 = baseline) and the s.d. of one sweep's amplitude is `σ = σ₀ / μ₀`. Estimating `μ₀` and `σ₀`
//!    from other sweeps than the template avoids the in-sample bias (the template's own noise correlates with
//!    itself: in-sample projections are too large and too consistent, by ≈ 20% on a realistic SSEP). The three
//!    shrunk templates are calibrated side by side on the same sweeps and the one with the smallest `σ` is kept
//!    (the minimum of three estimates is slightly optimistic; they are strongly correlated, and the relative
//!    standard error of each is ≈ `1/√(2M)`, 2.5% for `M` = 800).
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
//! **Robustness** (measured on the simulator, `ionm bench --suite`; without these the false-alarm rate was
//! tens of times the target): `σ` is the larger of the per-sweep s.d. and the long-run s.d. of the calibration
//! projections ([`long_run_variance`]: overlapping batch means over batch sizes from 16 sweeps to a quarter of
//! the calibration, used where significantly larger: ECG, slow EEG and drifting interference correlate
//! neighbouring sweeps); `k` gets a margin of [`SequentialConfig::level_margin`] standard errors of the
//! calibrated level; `z` is clipped at ±4 (one artifact-hit sweep is not 10 s.d. of evidence). The threshold is still Siegmund's for the
//! resulting `k`, so the in-control run length is at least the target (checked by simulation in
//! `tests/sequential.rs`), at the cost of some delay and of small drops on noisy traces (a drop `d` with `d/σ`
//! below `k` is never flagged). A trace so noisy that even a lost response would take longer than
//! [`SequentialConfig::max_loss_delay_sweeps`] to show (two 200-sweep averages: no faster than the standard
//! method) is not monitored at all ([`SequentialDetector::is_insensitive`]; on the simulator, sometimes Erb's
//! point with its large ECG): it could only add false alarms.
//!
//! **Latency.** A later response projects less on the fixed template, but a 10% shift of an N20 only as much as a
//! ≈ 20% drop would — below `k` — so the amplitude CUSUM sees it late or never. A **second CUSUM** runs on a
//! matched filter for the design shift ([`SequentialConfig::latency_cusum`], on by default): with `m₀` the
//! calibrated (shrunk) template, `m₁` the same delayed by `δ = design_latency × reference latency` (linear
//! interpolation) and `v` the template phase's per-sample variance, the weights are `u = (m₁ − m₀) / v` over
//! 0.5–2 × the reference latency (where the response is; the blanked stimulus artifact and another stimulator's
//! response in the same window do not move). This is the likelihood-ratio statistic of "delayed by δ" against "as
//! at baseline" for Gaussian noise with that diagonal covariance; an amplitude drop `d` moves it by `−d` times
//! its in-control distance from the midpoint, i.e. *away* from an alarm (a complete loss makes it a random walk,
//! which the amplitude CUSUM flags first). It is made when monitoring starts and the reference latency is known
//! (a new reference latency makes a new one), then calibrated on
//! [`SequentialConfig::latency_calibration_sweeps`] monitored sweeps: level and s.d. of `q = Σ u·x` (the
//! long-run s.d. where larger), and the **rise** a design shift causes, measured by projecting each calibration
//! sweep delayed by `δ` as well (`E[q(x delayed)] − E[q(x)]`): on sweeps the template never saw, so free of the
//! template's own noise, which inflates the template-based `Σ (m₁ − m₀)² / v` (by ≈ 20% on a 200-sweep template
//! of the simulator's N20). Then, like the amplitude CUSUM, `z = (q − level) / s.d.` clipped at ±4, `k` = half
//! the rise in s.d. plus the level margin, `S ← min(max(0, S + z − k), 2h)`; off when the design shift would
//! not clear `k`. While the filter exists the two CUSUMs share the trace's false-alarm rate
//! ([`SequentialConfig::latency_share`], 10% to the latency CUSUM), so that together they keep it (checked by
//! simulation in `tests/sequential.rs`). On the suite, latency shifts of 10%
//! were flagged in a median 10–18 s (26–46 s by the amplitude CUSUM alone; six seed sets,
//! `benches/results/2026-11-27-vm-suite-latency/`).
//!
//! What a raised alarm is about ([`ChangeLabel`]): an alarm of the latency CUSUM is a latency change, its size
//! from the sweeps since its change point cross-correlated with the template over ±¼ of the reference latency;
//! for an alarm of the amplitude CUSUM, the sweeps since *its* change point are cross-correlated the same way: a
//! best lag of at least half the design latency change with the aligned amplitude above `1 − design_drop/2` is a
//! latency change, anything else an amplitude change. Short non-overlapping averages
//! ([`SequentialConfig::latency_block`] sweeps) give a running latency estimate the same way (reported with the
//! evidence).
//!
//! # Wiring
//!
//! [`crate::SequentialBank`] (the `sequential` detector of [`crate::Monitor`]) holds one detector per SSEP trace
//! (`ionm-pipeline` declares each trace's window and sample period; its `DspSink::sweep` passes every accepted
//! sweep to `Monitor::on_sweep_data`). The monitor skips a trace while a technical alarm suspends it; the bank
//! sets the ARL from the accepted-sweep rate, the case's false-alarm target and the number of traces, raises and
//! clears alarms (`detector: "sequential"`, `value` = the evidence, `threshold` = `h`), restarts a trace's
//! detector on a user's re-baseline, passes the baseline latency as the reference, and tags systemic changes.
//! `on_sweep` never allocates; `new` allocates twelve buffers of `window_len`, three of the calibration length and
//! one of the latency calibration length.

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
    /// The latency increase the latency CUSUM is tuned for, fraction of the reference latency (0.10 = 10%).
    pub design_latency: f64,
    /// Sweeps per short average for the latency estimate (non-overlapping blocks).
    pub latency_block: u32,
    /// Run the latency CUSUM (module documentation, "Latency"): a matched filter for the design latency shift on
    /// every sweep, once the reference latency is known.
    pub latency_cusum: bool,
    /// The latency CUSUM's share of the trace's false-alarm rate while it runs (the amplitude CUSUM has the
    /// rest): their in-control ARLs are the trace's divided by the shares, so that together they keep it.
    /// Default 0.1: a larger `h` costs the latency CUSUM little (its evidence per sweep is large; +15% delay
    /// against an even split) and the amplitude CUSUM, slow on noisy traces, almost nothing (+1%; +6% with
    /// an even split).
    pub latency_share: f64,
    /// Monitored sweeps that calibrate the latency filter's level and s.d. before its CUSUM runs (it can only be
    /// made once the reference latency and the amplitude calibration are known).
    pub latency_calibration_sweeps: u32,
    /// Margin added to the CUSUM reference value, in standard errors of the calibrated level (`c/√M` in z units
    /// for `M` calibration sweeps). The level is estimated, and an error of one standard error shortens the
    /// in-control run length many-fold when `k` is small; 2 keeps it near the target at the cost of some delay.
    pub level_margin: f64,
    /// The longest expected delay (Siegmund, sweeps) to a complete loss of the response for which the trace is
    /// worth monitoring. A trace whose single sweeps are so noisy that its CUSUM would see even a lost response
    /// no sooner than this is no faster than the standard method and can only add false alarms: it is left to
    /// the block detector ([`SequentialDetector::is_insensitive`]) until the next re-baseline. Default 400: two
    /// 200-sweep averages, the standard method's time to a confirmed change.
    pub max_loss_delay_sweeps: f64,
    /// The strongest James–Stein shrinkage of the template tried (`c_max`; module documentation): the template
    /// sample `m` with standard error `se` is multiplied by `max(0, 1 − c·se²/m²)` for `c` = 0, `c_max/2` and
    /// `c_max`, and the calibration keeps the least noisy. 0: no shrinkage (one candidate). Default 2.
    pub template_shrinkage: f64,
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
            design_latency: 0.10,
            latency_block: 32,
            latency_cusum: true,
            latency_share: 0.1,
            latency_calibration_sweeps: 300,
            level_margin: 2.0,
            max_loss_delay_sweeps: 400.0,
            template_shrinkage: 2.0,
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

/// What a raised alarm is about, from the sweeps since the CUSUM's change-point estimate (the last time its
/// evidence was 0) cross-correlated with the template.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ChangeLabel {
    /// The response is smaller (aligned on its best lag, it stays below `1 − design_drop / 2` of baseline, or
    /// its lag is small).
    Amplitude {
        /// Amplitude of the post-change sweeps, baseline units, at their best lag.
        ratio: f64,
    },
    /// The response is later: the post-change sweeps are best aligned with the template at a lag of at least
    /// half the design latency change, and aligned they keep most of their amplitude.
    Latency {
        /// Latency shift, ms (positive: later).
        shift_ms: f64,
        /// Latency / reference latency, when the reference latency is known.
        ratio: Option<f64>,
    },
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
    /// Slow exponentially weighted mean of the amplitude (512 sweeps), for telling systemic from focal changes.
    pub amplitude_slow: f64,
    /// The latest latency shift estimate from a short average (ms, positive: later), once calibrated.
    pub latency_shift_ms: Option<f64>,
    /// The latency CUSUM statistic, standard deviations of one sweep's latency-filter projection (0 while it is
    /// not running).
    pub latency_evidence: f64,
    /// Its threshold (0 while it is not running).
    pub latency_threshold: f64,
    /// With [`Decision::Raised`]: what changed.
    pub label: Option<ChangeLabel>,
}

/// State of the latency estimate: non-overlapping short averages cross-correlated with the template.
#[derive(Debug, Clone, Default)]
struct Latency {
    /// Running sum of the current block's sweeps.
    block: Vec<f64>,
    n: u32,
    /// In-control lag and its s.d., samples (s.d. 0: not calibrated).
    lag0: f64,
    lag_sd: f64,
    /// Latest lag estimate, samples.
    last: Option<f64>,
}

/// The latency CUSUM's matched filter for a later response (module documentation, "Latency").
#[derive(Debug, Clone, Default)]
struct Shift {
    /// Per-sample noise variance of the template phase (with its floor), 1 for a given template.
    var: Vec<f64>,
    /// Weights `u = (m₁ − m₀) / v` over the response's part of the window (all 0 while not set up).
    u: Vec<f64>,
    /// The design shift, samples (0: not set up).
    delta: f64,
    /// The part of the window the filter looks at, samples `lo..hi`.
    lo: usize,
    hi: usize,
    /// Expected rise of the projection for the design shift: from the template, `Σ (m₁ − m₀)² / v`, until the
    /// calibration measures it (`rise_sum / n`).
    sep: f64,
    /// Sum over the calibration sweeps of the projection of the sweep delayed by the design shift minus its own.
    rise_sum: f64,
    /// Calibration projections (capacity: the latency calibration length).
    q: Vec<f64>,
    /// In-control level and s.d. of the projection (s.d. 0: not calibrated).
    mu: f64,
    sd: f64,
    /// CUSUM of increases (standard deviations), its reference value and threshold (h 0: not running).
    s: f64,
    k: f64,
    h: f64,
    /// Sum of the sweeps since the CUSUM was last 0, and their count: cross-correlated with the template, the
    /// shift of a raised alarm.
    seg: Vec<f64>,
    seg_n: u32,
}

/// One candidate matched filter during calibration (a template shrunk by one strength).
#[derive(Debug, Clone)]
struct Candidate {
    /// The shrinkage strength `c`.
    shrinkage: f64,
    weights: Vec<f64>,
    /// The calibration sweeps' projections, in order (capacity: the calibration length), for the level, the
    /// s.d. and the long-run variance.
    p: Vec<f64>,
    /// The lags of the calibration's short averages (samples): count, sum, sum of squares.
    lag_n: u32,
    lag_sum: f64,
    lag_sum2: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Template {
        n: u32,
    },
    Calibration {
        n: u32,
    },
    Monitoring,
    /// Calibrated, but too noisy to be of use (see [`SequentialConfig::max_loss_delay_sweeps`]).
    Insensitive,
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
    /// Calibration sweeps behind `mu0`.
    level_n: f64,
    k: f64,
    h: f64,
    s: f64,
    avg: f64,
    slow: f64,
    active: bool,
    /// Sum of the sweeps since the CUSUM was last 0 (its change-point estimate), and their count.
    segment: Vec<f64>,
    segment_n: u32,
    latency: Latency,
    /// Sample period, ms, and the reference latency (baseline's primary peak), ms.
    dt_ms: f64,
    ref_latency_ms: Option<f64>,
    /// Scratch for the cross-correlation (the segment's mean).
    scratch: Vec<f64>,
    /// The matched filters being calibrated (the first `n_candidates`).
    candidates: Vec<Candidate>,
    n_candidates: usize,
    /// The shrinkage strength of the filter in use (after calibration).
    shrinkage: Option<f64>,
    /// The latency CUSUM.
    shift: Shift,
    /// Time of the window's first sample from the stimulus, ms, when known.
    start_ms: Option<f64>,
}

impl SequentialDetector {
    /// A detector for sweeps of `window_len` samples, starting to learn its template.
    pub fn new(config: SequentialConfig, window_len: usize) -> Self {
        let config_cal_len = config.calibration_sweeps.clamp(2, 1 << 20) as usize;
        let shift_cal_len = config.latency_calibration_sweeps.clamp(2, 1 << 20) as usize;
        Self {
            config,
            phase: Phase::Template { n: 0 },
            mean: vec![0.0; window_len],
            m2: vec![0.0; window_len],
            weights: vec![0.0; window_len],
            mu0: 0.0,
            sigma: 0.0,
            level_n: 0.0,
            k: 0.0,
            h: 0.0,
            s: 0.0,
            avg: 1.0,
            slow: 1.0,
            active: false,
            segment: vec![0.0; window_len],
            segment_n: 0,
            latency: Latency {
                block: vec![0.0; window_len],
                ..Latency::default()
            },
            dt_ms: 0.1,
            ref_latency_ms: None,
            scratch: vec![0.0; window_len],
            candidates: (0..3)
                .map(|_| Candidate {
                    shrinkage: 0.0,
                    weights: vec![0.0; window_len],
                    p: Vec::with_capacity(config_cal_len),
                    lag_n: 0,
                    lag_sum: 0.0,
                    lag_sum2: 0.0,
                })
                .collect(),
            n_candidates: 1,
            shrinkage: None,
            shift: Shift {
                var: vec![1.0; window_len],
                u: vec![0.0; window_len],
                seg: vec![0.0; window_len],
                q: Vec::with_capacity(shift_cal_len),
                ..Shift::default()
            },
            start_ms: None,
        }
    }

    /// The template shrinkage strength `c` the calibration chose (`None` before calibration ends; 0 for an
    /// unshrunk template or one given by [`Self::set_template`]).
    pub fn template_shrinkage(&self) -> Option<f64> {
        self.shrinkage
    }

    /// The sample period of the sweeps, ms (for latency shifts in ms; default 0.1 ms, i.e. 10 kHz).
    pub fn set_sample_period_ms(&mut self, dt_ms: f64) {
        if dt_ms.is_finite() && dt_ms > 0.0 && dt_ms != self.dt_ms {
            self.dt_ms = dt_ms;
            self.setup_shift();
        }
    }

    /// The time of the window's first sample from the stimulus, ms (negative for a pre-stimulus part): the latency
    /// filter then looks at 0.5–2 × the reference latency only, not at what does not move with the response (the
    /// blanked stimulus artifact, another stimulator's response in the same window).
    pub fn set_window_start_ms(&mut self, start_ms: f64) {
        if start_ms.is_finite() && self.start_ms != Some(start_ms) {
            self.start_ms = Some(start_ms);
            self.setup_shift();
        }
    }

    /// The reference latency (the baseline's primary peak, ms after the stimulus): the latency CUSUM is tuned
    /// for [`SequentialConfig::design_latency`] of it, and it runs only once this is known (a new value makes a
    /// new filter, calibrated again).
    pub fn set_reference_latency_ms(&mut self, latency_ms: Option<f64>) {
        let r = latency_ms.filter(|l| l.is_finite() && *l > 0.0);
        if r != self.ref_latency_ms {
            self.ref_latency_ms = r;
            self.setup_shift();
        }
    }

    /// Sets the target in-control ARL (sweeps); thresholds are recomputed if already calibrated.
    pub fn set_arl_sweeps(&mut self, arl_sweeps: f64) {
        if arl_sweeps.is_finite() && arl_sweeps >= 2.0 {
            self.config.arl_sweeps = arl_sweeps;
            if self.phase == Phase::Monitoring {
                self.h = self.threshold_for(self.k, false);
                if self.shift.h > 0.0 {
                    self.shift.h = self.threshold_for(self.shift.k, true);
                }
            }
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SequentialConfig {
        &self.config
    }

    /// Whether an alarm is active.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The CUSUM statistic (standard deviations).
    pub fn evidence(&self) -> f64 {
        self.s
    }

    /// s.d. of one short average's lag, ms (`None` before calibration).
    pub fn latency_sd_ms(&self) -> Option<f64> {
        (self.latency.lag_sd > 0.0).then_some(self.latency.lag_sd * self.dt_ms)
    }

    /// Sweep length, samples.
    pub fn window_len(&self) -> usize {
        self.weights.len()
    }

    /// Mean amplitude over the last ≈ 32 sweeps (exponential), baseline units.
    pub fn amplitude_avg(&self) -> f64 {
        self.avg
    }

    /// The latency CUSUM statistic (0 while it is not running).
    pub fn latency_evidence(&self) -> f64 {
        self.shift.s
    }

    /// The latency CUSUM threshold (0 while it is not running).
    pub fn latency_threshold(&self) -> f64 {
        self.shift.h
    }

    /// The latency CUSUM's reference value `k` (0 while it is not running).
    pub fn latency_reference(&self) -> f64 {
        self.shift.k
    }

    /// The latency filter's separation: how many standard deviations of one sweep's projection the design
    /// latency shift moves it (0 until the latency filter is calibrated). Lorden's bound for a shift of that size
    /// is `log(ARL₀) / (sep²/2)` sweeps.
    pub fn latency_separation(&self) -> f64 {
        if self.shift.sd > 0.0 {
            self.shift.sep / self.shift.sd
        } else {
            0.0
        }
    }

    /// Slow mean amplitude (512 sweeps, ≈ 2 min at 4.7 Hz), baseline units.
    pub fn amplitude_slow(&self) -> f64 {
        self.slow
    }

    /// Standard error of [`Self::amplitude_slow`] as an estimate of the response's amplitude in baseline units:
    /// the slow mean's own noise (an exponential mean over 512 sweeps, variance `σ²·α/(2 − α)`, `α` = 1/512)
    /// and the calibrated level's (`σ²/M` for `M` calibration sweeps), independent of each other. 0 before
    /// calibration ends.
    pub fn amplitude_slow_se(&self) -> f64 {
        if self.level_n < 1.0 {
            return 0.0;
        }
        let alpha = 1.0 / 512.0;
        self.sigma * (alpha / (2.0 - alpha) + 1.0 / self.level_n).sqrt()
    }

    /// Latest latency shift estimate, ms.
    pub fn latency_shift_ms(&self) -> Option<f64> {
        self.latency.last.map(|l| (l - self.latency.lag0) * self.dt_ms)
    }

    /// Largest lag searched, samples: a quarter of the reference latency (5 ms when unknown), at least 3 ms.
    fn max_lag(&self) -> usize {
        let ms = self.ref_latency_ms.map_or(5.0, |l| (0.25 * l).max(3.0));
        ((ms / self.dt_ms).round() as usize)
            .min(self.weights.len() / 4)
            .max(1)
    }

    /// The target in-control run length of the amplitude (`latency` false) or the latency CUSUM: the trace's,
    /// divided by the CUSUM's share of its false alarms while the latency filter exists (calibrating or
    /// running).
    fn arl_of(&self, latency: bool) -> f64 {
        let share = self.config.latency_share.clamp(0.01, 0.99);
        match (self.shift.delta > 0.0, latency) {
            (false, _) => self.config.arl_sweeps,
            (true, false) => self.config.arl_sweeps / (1.0 - share),
            (true, true) => self.config.arl_sweeps / share,
        }
    }

    /// The threshold for reference value `k` of one CUSUM: the configured one, or Siegmund's for
    /// [`Self::arl_of`].
    fn threshold_for(&self, k: f64, latency: bool) -> f64 {
        self.config
            .threshold
            .unwrap_or_else(|| siegmund_threshold(k, self.arl_of(latency)))
    }

    /// (Re)makes the latency filter from the calibrated template (module documentation, "Latency") and starts its
    /// calibration; it stays off without a reference latency, before monitoring, or when the design shift is
    /// under half a sample.
    fn setup_shift(&mut self) {
        let sh = &mut self.shift;
        sh.u.iter_mut().for_each(|x| *x = 0.0);
        sh.q.clear();
        (sh.delta, sh.sep, sh.mu, sh.sd, sh.s, sh.k, sh.h) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        (sh.lo, sh.hi, sh.rise_sum) = (0, 0, 0.0);
        sh.seg.iter_mut().for_each(|x| *x = 0.0);
        sh.seg_n = 0;
        self.build_shift();
        if self.phase == Phase::Monitoring {
            // The amplitude CUSUM's share of the trace's false alarms changed with it.
            self.h = self.threshold_for(self.k, false);
        }
    }

    /// The latency filter's weights (part of [`Self::setup_shift`]).
    fn build_shift(&mut self) {
        let sh = &mut self.shift;
        let Some(r) = self.ref_latency_ms else { return };
        if !self.config.latency_cusum || self.phase != Phase::Monitoring {
            return;
        }
        let delta = self.config.design_latency * r / self.dt_ms;
        if !(delta.is_finite() && delta >= 0.5) {
            return;
        }
        let n = self.weights.len();
        let (lo, hi) = match self.start_ms {
            Some(t0) => (
                ((0.5 * r - t0) / self.dt_ms).ceil().clamp(0.0, n as f64) as usize,
                ((2.0 * r - t0) / self.dt_ms).floor().clamp(-1.0, n as f64 - 1.0) as isize + 1,
            ),
            None => (0, n as isize),
        };
        let hi = hi.max(0) as usize;
        // The template in µV-like units: the weights are m / v.
        let (w, var) = (&self.weights, &sh.var);
        let m = |j: usize| w[j] * var[j];
        let mut sep = 0.0;
        let hi = hi.max(lo);
        for (i, (u, &v)) in sh.u[lo..hi].iter_mut().zip(&var[lo..hi]).enumerate() {
            let i = lo + i;
            let x = i as f64 - delta;
            let m1 = if x < 0.0 {
                0.0
            } else {
                let j = x.floor() as usize;
                let f = x - j as f64;
                let b = if j + 1 < n { m(j + 1) } else { 0.0 };
                m(j) + f * (b - m(j))
            };
            let d = m1 - m(i);
            *u = d / v;
            sep += d * d / v;
        }
        if sep > 0.0 && sep.is_finite() {
            (sh.delta, sh.sep, sh.lo, sh.hi) = (delta, sep, lo, hi);
        } else {
            sh.u.iter_mut().for_each(|x| *x = 0.0);
        }
    }

    /// The end of the latency filter's calibration: its level and s.d. (the long-run one where larger), the
    /// measured rise for the design shift, `k` with the same level margin as the amplitude CUSUM's, and `h`. Off
    /// when the design shift would not even clear `k`.
    fn finish_shift_calibration(&mut self) {
        let sh = &self.shift;
        let nf = sh.q.len() as f64;
        let mu = sh.q.iter().sum::<f64>() / nf;
        let var = sh.q.iter().map(|q| (q - mu) * (q - mu)).sum::<f64>() / (nf - 1.0);
        let sd = var.max(long_run_variance(&sh.q, mu, var)).sqrt();
        let template_sep = sh.sep;
        let sep = sh.rise_sum / nf;
        let d = sep / sd;
        let k = 0.5 * d + self.config.level_margin / nf.sqrt();
        if !(sd > 0.0 && d.is_finite() && d > k) {
            self.shift.delta = 0.0;
            self.shift.u.iter_mut().for_each(|x| *x = 0.0);
            self.h = self.threshold_for(self.k, false);
            return;
        }
        let h = self.threshold_for(k, true);
        let sh = &mut self.shift;
        (sh.mu, sh.sd, sh.sep, sh.k, sh.h, sh.s) = (mu, sd, sep, k, h, 0.0);
        tracing::debug!(
            template_sep,
            sep,
            sd,
            separation = d,
            k,
            h,
            "latency filter calibrated"
        );
    }

    /// [`best_lag`] with the weights in use.
    fn best_lag(&self, avg: &[f64]) -> (f64, f64) {
        best_lag(&self.weights, avg, self.max_lag())
    }

    /// Adds a sweep to the latency block; at the block's end leaves the block's average in `scratch`, clears
    /// the block and returns true.
    fn latency_block(&mut self, data: &[f32]) -> bool {
        for (b, &x) in self.latency.block.iter_mut().zip(data) {
            *b += f64::from(x);
        }
        self.latency.n += 1;
        if self.latency.n < self.config.latency_block.max(1) {
            return false;
        }
        let n = f64::from(self.latency.n);
        for (a, b) in self.scratch.iter_mut().zip(self.latency.block.iter_mut()) {
            *a = *b / n;
            *b = 0.0;
        }
        self.latency.n = 0;
        true
    }

    /// Forgets the template and learns a new one from the next sweeps (re-baseline). An active alarm is
    /// dropped without a decision: the caller clears it.
    pub fn restart(&mut self) {
        self.phase = Phase::Template { n: 0 };
        self.level_n = 0.0;
        self.mean.iter_mut().for_each(|x| *x = 0.0);
        self.m2.iter_mut().for_each(|x| *x = 0.0);
        self.s = 0.0;
        self.avg = 1.0;
        self.slow = 1.0;
        self.active = false;
        self.reset_segment();
        self.latency.block.iter_mut().for_each(|x| *x = 0.0);
        let block = std::mem::take(&mut self.latency.block);
        self.latency = Latency {
            block,
            ..Latency::default()
        };
        // Not monitoring: clears the latency filter.
        self.setup_shift();
    }

    fn reset_segment(&mut self) {
        self.segment.iter_mut().for_each(|x| *x = 0.0);
        self.segment_n = 0;
    }

    /// Uses `template` (e.g. the baseline average, µV, same time base as the sweeps) as the matched filter
    /// without per-sample weighting, and calibrates on the next sweeps (which must not be among those averaged
    /// into `template`). Returns false (and changes nothing) if the length differs from the window.
    pub fn set_template(&mut self, template: &[f32]) -> bool {
        if template.len() != self.weights.len() {
            return false;
        }
        let c = &mut self.candidates[0];
        for (w, &t) in c.weights.iter_mut().zip(template) {
            *w = f64::from(t);
        }
        c.shrinkage = 0.0;
        self.n_candidates = 1;
        self.shift.var.iter_mut().for_each(|v| *v = 1.0);
        self.start_calibration();
        true
    }

    /// The candidate filters from the template phase's mean and variance (`n` sweeps, variance floor
    /// `floor`): `w = m·max(0, 1 − c·se²/m²) / v` for each strength `c` (module documentation).
    fn shrunk_templates(&mut self, n: f64, floor: f64) {
        let c_max = self.config.template_shrinkage;
        let strengths = [0.0, 0.5 * c_max, c_max];
        self.n_candidates = if c_max > 0.0 && c_max.is_finite() { 3 } else { 1 };
        for (v, &m2) in self.shift.var.iter_mut().zip(&self.m2) {
            *v = (m2 / (n - 1.0)).max(floor);
        }
        for (cand, &c) in self.candidates.iter_mut().zip(&strengths).take(self.n_candidates) {
            cand.shrinkage = c;
            for ((w, &m), &m2) in cand.weights.iter_mut().zip(&self.mean).zip(&self.m2) {
                let v = (m2 / (n - 1.0)).max(floor);
                // m = 0 gives −∞ before the clamp: a factor of 0 (the weight is 0 either way).
                let factor = if c == 0.0 {
                    1.0
                } else {
                    (1.0 - c * v / n / (m * m)).max(0.0)
                };
                *w = m * factor / v;
            }
        }
    }

    fn start_calibration(&mut self) {
        self.phase = Phase::Calibration { n: 0 };
        self.s = 0.0;
        self.avg = 1.0;
        self.slow = 1.0;
        self.active = false;
        self.reset_segment();
        self.latency.n = 0;
        self.latency.block.iter_mut().for_each(|x| *x = 0.0);
        for c in &mut self.candidates {
            c.p.clear();
            c.lag_n = 0;
            c.lag_sum = 0.0;
            c.lag_sum2 = 0.0;
        }
        self.shrinkage = None;
        // Not monitoring: clears the latency filter (made again when monitoring starts).
        self.setup_shift();
    }

    /// True once the template and calibration are done and sweeps are being scored.
    pub fn is_monitoring(&self) -> bool {
        self.phase == Phase::Monitoring
    }

    /// True when calibration found the trace too noisy for its single sweeps to show even a lost response within
    /// [`SequentialConfig::max_loss_delay_sweeps`]: the detector scores nothing until [`Self::restart`].
    pub fn is_insensitive(&self) -> bool {
        self.phase == Phase::Insensitive
    }

    /// Siegmund's expected delay (sweeps) of this trace's CUSUM to a complete loss of the response (infinite
    /// when the loss in s.d. units does not exceed `k`; 0 before calibration ends).
    pub fn loss_delay_sweeps(&self) -> f64 {
        if self.sigma <= 0.0 {
            return 0.0;
        }
        let delta = 1.0 / self.sigma;
        if delta <= self.k {
            f64::INFINITY
        } else {
            siegmund_arl(self.k, self.h, delta)
        }
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
                    self.shrunk_templates(nf, floor);
                    self.start_calibration();
                }
                None
            }
            Phase::Calibration { n } => {
                let block_done = self.latency_block(data);
                let max_lag = self.max_lag();
                for c in &mut self.candidates[..self.n_candidates] {
                    if block_done {
                        let (lag, _) = best_lag(&c.weights, &self.scratch, max_lag);
                        c.lag_n += 1;
                        c.lag_sum += lag;
                        c.lag_sum2 += lag * lag;
                    }
                    if c.p.len() < c.p.capacity() {
                        c.p.push(dot(&c.weights, data));
                    }
                }
                let n = n + 1;
                self.phase = Phase::Calibration { n };
                if n >= self.config.calibration_sweeps.max(2) {
                    self.finish_calibration();
                }
                None
            }
            Phase::Insensitive => {
                // No evidence, no alarms; the slow amplitude is still tracked for the systemic rule (a noisy
                // peripheral control still tells a global decline from a focal one over 512 sweeps).
                let a = self.project(data) / self.mu0;
                self.avg += (a - self.avg) / 32.0;
                self.slow += (a - self.slow) / 512.0;
                None
            }
            Phase::Monitoring => {
                let a = self.project(data) / self.mu0;
                // Clipped at ±4: one sweep hit by an artifact that rejection let through is not 10 s.d. of
                // evidence (a Huber-type CUSUM; the Gaussian threshold is then slightly conservative).
                let z = ((a - 1.0) / self.sigma).clamp(-4.0, 4.0);
                self.avg += (a - self.avg) / 32.0;
                self.slow += (a - self.slow) / 512.0;
                self.s = (self.s - z - self.k).clamp(0.0, 2.0 * self.h);
                // The sweeps since the evidence was last 0: the CUSUM's estimate of the post-change segment.
                if self.s > 0.0 {
                    for (g, &x) in self.segment.iter_mut().zip(data) {
                        *g += f64::from(x);
                    }
                    self.segment_n += 1;
                } else if self.segment_n > 0 {
                    self.reset_segment();
                }
                if self.latency_block(data) {
                    let (lag, _) = self.best_lag(&self.scratch);
                    self.latency.last = Some(lag);
                }
                self.shift_sweep(data);
                let sh = &self.shift;
                let amp_hit = self.s >= self.h;
                let lat_hit = sh.h > 0.0 && sh.s >= sh.h;
                let mut label = None;
                let decision = if !self.active && (amp_hit || lat_hit) {
                    self.active = true;
                    label = Some(self.label(lat_hit && !amp_hit));
                    Some(Decision::Raised)
                } else if self.active && self.s <= 0.0 && sh.s <= 0.0 {
                    self.active = false;
                    Some(Decision::Cleared)
                } else {
                    None
                };
                let lat = &self.latency;
                Some(SweepOutcome {
                    amplitude: a,
                    amplitude_avg: self.avg,
                    sigma: self.sigma,
                    evidence: self.s,
                    threshold: self.h,
                    active: self.active,
                    decision,
                    amplitude_slow: self.slow,
                    latency_shift_ms: lat.last.map(|l| (l - lat.lag0) * self.dt_ms),
                    latency_evidence: self.shift.s,
                    latency_threshold: self.shift.h,
                    label,
                })
            }
        }
    }

    /// What the alarm being raised is about: the post-change segment (at least the latest latency block's
    /// worth of sweeps is not guaranteed: a step change is flagged within tens of sweeps) cross-correlated with
    /// the template.
    fn label(&mut self, latency_cusum: bool) -> ChangeLabel {
        let (shift_ms, c) = self.segment_shift(latency_cusum);
        let ratio = c / self.mu0;
        let min_shift = 0.5 * self.config.design_latency * self.ref_latency_ms.unwrap_or(20.0);
        if latency_cusum || (shift_ms >= min_shift && ratio > 1.0 - 0.5 * self.config.design_drop) {
            ChangeLabel::Latency {
                shift_ms,
                ratio: self.ref_latency_ms.map(|r| (r + shift_ms) / r),
            }
        } else {
            ChangeLabel::Amplitude { ratio }
        }
    }

    /// The mean of the sweeps since the latency CUSUM's (`latency`) or the amplitude CUSUM's change point,
    /// cross-correlated with the template: its shift from the calibrated lag, ms, and the projection there.
    fn segment_shift(&mut self, latency: bool) -> (f64, f64) {
        let (segment, n) = if latency {
            (&self.shift.seg, self.shift.seg_n)
        } else {
            (&self.segment, self.segment_n)
        };
        let n = f64::from(n.max(1));
        for (a, g) in self.scratch.iter_mut().zip(segment) {
            *a = g / n;
        }
        let (lag, c) = self.best_lag(&self.scratch);
        ((lag - self.latency.lag0) * self.dt_ms, c)
    }

    fn project(&self, data: &[f32]) -> f64 {
        dot(&self.weights, data)
    }

    /// One monitored sweep through the latency filter: calibration, then its CUSUM.
    fn shift_sweep(&mut self, data: &[f32]) {
        if self.shift.delta <= 0.0 {
            return;
        }
        let q = dot(&self.shift.u, data);
        let sh = &mut self.shift;
        if sh.h <= 0.0 {
            let cal_len = self.config.latency_calibration_sweeps.clamp(2, 1 << 20) as usize;
            if sh.q.len() < cal_len {
                sh.q.push(q);
                // The same sweep delayed by the design shift: what a later response would project (its noise is
                // delayed too, which changes nothing on average). Measured on sweeps the template never saw,
                // the rise is free of the template's own noise, which inflates `Σ (m₁ − m₀)² / v`.
                let mut delayed = 0.0;
                for i in sh.lo..sh.hi {
                    let x = i as f64 - sh.delta;
                    if x < 0.0 {
                        continue;
                    }
                    let j = x.floor() as usize;
                    let f = x - j as f64;
                    let a = f64::from(data[j]);
                    let b = data.get(j + 1).map_or(0.0, |&b| f64::from(b));
                    delayed += sh.u[i] * (a + f * (b - a));
                }
                sh.rise_sum += delayed - q;
            }
            if sh.q.len() >= cal_len {
                self.finish_shift_calibration();
            }
            return;
        }
        // Clipped like the amplitude's z.
        let z = ((q - sh.mu) / sh.sd).clamp(-4.0, 4.0);
        sh.s = (sh.s + z - sh.k).clamp(0.0, 2.0 * sh.h);
        if sh.s > 0.0 {
            for (g, &x) in sh.seg.iter_mut().zip(data) {
                *g += f64::from(x);
            }
            sh.seg_n += 1;
        } else if sh.seg_n > 0 {
            sh.seg.iter_mut().for_each(|x| *x = 0.0);
            sh.seg_n = 0;
        }
    }

    /// The end of calibration: keeps the candidate filter with the smallest `σ` (its level, s.d. and latency
    /// calibration), sets `k` and `h`, and starts monitoring (or relearns when no candidate sees a response).
    fn finish_calibration(&mut self) {
        // (candidate, σ, μ₀)
        let mut best: Option<(usize, f64, f64)> = None;
        for (j, c) in self.candidates[..self.n_candidates].iter().enumerate() {
            let nf = c.p.len() as f64;
            if nf < 2.0 {
                continue;
            }
            let mu0 = c.p.iter().sum::<f64>() / nf;
            let var = (c.p.iter().map(|p| (p - mu0) * (p - mu0)).sum::<f64>() / (nf - 1.0)).max(0.0);
            if mu0 <= 0.0 || !mu0.is_finite() || var <= 0.0 || !var.is_finite() {
                continue;
            }
            // Sweeps are not independent (ECG, slow EEG, drifting interference): the s.d. that matters to a
            // CUSUM is the long-run one. See [`long_run_variance`].
            let long_run_var = long_run_variance(&c.p, mu0, var);
            let sigma = var.max(long_run_var).sqrt() / mu0;
            tracing::debug!(
                shrinkage = c.shrinkage,
                var,
                long_run_var,
                mu0,
                sigma,
                "sequential candidate"
            );
            if best.is_none_or(|(_, s, _)| sigma < s) {
                best = Some((j, sigma, mu0));
            }
        }
        let Some((j, sigma, mu0)) = best else {
            // No response to track (or a degenerate template): learn again.
            tracing::debug!("sequential detector: no usable template, relearning");
            self.restart();
            return;
        };
        let c = &self.candidates[j];
        self.weights.copy_from_slice(&c.weights);
        self.shrinkage = Some(c.shrinkage);
        self.mu0 = mu0;
        self.sigma = sigma;
        let nf = c.p.len() as f64;
        self.level_n = nf;
        self.k = 0.5 * self.config.design_drop / self.sigma + self.config.level_margin / nf.sqrt();
        self.h = self.threshold_for(self.k, false);
        self.s = 0.0;
        let (lag_n, lag_sum, lag_sum2) = (c.lag_n, c.lag_sum, c.lag_sum2);
        let l = &mut self.latency;
        if lag_n >= 4 {
            let nf = f64::from(lag_n);
            l.lag0 = lag_sum / nf;
            // A floor of a tenth of a sample: the lag of near-noiseless blocks is not infinitely precise
            // (sub-sample interpolation).
            l.lag_sd = ((lag_sum2 - nf * l.lag0 * l.lag0) / (nf - 1.0))
                .max(0.0)
                .sqrt()
                .max(0.1);
        }
        l.n = 0;
        l.block.iter_mut().for_each(|x| *x = 0.0);
        self.phase = if self.loss_delay_sweeps() <= self.config.max_loss_delay_sweeps {
            Phase::Monitoring
        } else {
            Phase::Insensitive
        };
        self.setup_shift();
    }
}

/// `Σ w·x`.
fn dot(weights: &[f64], data: &[f32]) -> f64 {
    weights.iter().zip(data).map(|(w, &x)| w * f64::from(x)).sum()
}

/// Cross-correlates `avg` with `weights` over lags −`max_lag`…`max_lag`; returns the best lag (samples,
/// parabolic sub-sample refinement; positive: `avg` is later than the template) and the correlation there
/// (the projection at that lag).
fn best_lag(weights: &[f64], avg: &[f64], max_lag: usize) -> (f64, f64) {
    let m = max_lag as isize;
    let n = weights.len() as isize;
    let corr = |tau: isize| -> f64 {
        let (from, to) = ((-tau).max(0), (n - tau).min(n));
        (from..to)
            .map(|i| weights[i as usize] * avg[(i + tau) as usize])
            .sum()
    };
    let (mut best, mut best_c) = (0isize, corr(0));
    for tau in -m..=m {
        let c = corr(tau);
        if c > best_c {
            best = tau;
            best_c = c;
        }
    }
    if best > -m && best < m {
        let (a, b) = (corr(best - 1), corr(best + 1));
        let den = a - 2.0 * best_c + b;
        if den < 0.0 {
            let off = (0.5 * (a - b) / den).clamp(-0.5, 0.5);
            return (best as f64 + off, best_c - 0.25 * (a - b) * off);
        }
    }
    (best as f64, best_c)
}

/// The long-run variance of a sequence of projections `p` (mean `mean`, per-item variance `var`): the largest
/// overlapping-batch-means estimate (Meketon & Schmeiser 1984), `σ²(B) = n·B / ((n−B+1)(n−B)) · Σⱼ (p̄ⱼ(B) − p̄)²`
/// over batch sizes `B` = 16, 32, 64, … up to a quarter of the sequence, counted only where it exceeds `var` by
/// more than its own sampling noise (one-sided 0.1% in the normal approximation, relative variance of the OBM
/// estimator ≈ 4B / 3n; its upper tail is heavier, so independent sweeps are flagged in a few per cent of
/// calibrations, which only makes those traces more conservative). Returns 0 when no batch size shows
/// significant correlation.
///
/// Why several sizes: on a real patient (and the simulator) the heart beats at a rate close to a sub-multiple of
/// the stimulus rate (70/min against 4.7 Hz: every fourth sweep sees the same ECG phase, drifting by a few
/// percent of a beat), so the QRS aliases to a wander with a period of a hundred sweeps or more, invisible to
/// 32-sweep batches; the CUSUM sums such a wander as if it were a drop.
pub fn long_run_variance(p: &[f64], mean: f64, var: f64) -> f64 {
    let n = p.len();
    let mut best = 0.0_f64;
    let mut b = 16;
    while b <= n / 4 {
        let mut window: f64 = p[..b].iter().sum();
        let mut ss = 0.0;
        for j in 0..=n - b {
            if j > 0 {
                window += p[j + b - 1] - p[j - 1];
            }
            let d = window / b as f64 - mean;
            ss += d * d;
        }
        let (nf, bf) = (n as f64, b as f64);
        let obm = nf * bf / ((nf - bf + 1.0) * (nf - bf)) * ss;
        if obm > var * (1.0 + 3.09 * (4.0 * bf / (3.0 * nf)).sqrt()) {
            best = best.max(obm);
        }
        b *= 2;
    }
    best
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
