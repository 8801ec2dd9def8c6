//! Alarm criteria per trace, with presets from the literature (GUIDE §1: ACNS, ISIN, Legatt, Park).

use serde::{Deserialize, Serialize};

/// What a trace is, for the criteria and for telling systemic from focal changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Scalp SSEP (N20/P25, P37/N45): what anaesthesia depresses.
    Cortical,
    /// Cervical / subcortical SSEP.
    Subcortical,
    /// Peripheral nerve SSEP (Erb's point, popliteal fossa): the control that anaesthesia spares.
    Peripheral,
    /// Muscle MEP.
    Muscle,
    /// Brainstem (BAEP).
    Brainstem,
}

/// When a change of one trace against its baseline is called, and when it is over. All configurable per
/// protocol and trace; [`Criteria::ssep`], [`Criteria::mep`] and [`Criteria::baep`] are the presets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Criteria {
    /// Alarm when amplitude / baseline ≤ this (SSEP 0.5; MEP 0.2, i.e. an 80% drop).
    pub amplitude_ratio: Option<f64>,
    /// Alarm when latency / baseline ≥ this (SSEP 1.10).
    pub latency_ratio: Option<f64>,
    /// Alarm when latency − baseline ≥ this many ms (BAEP wave V: 1.0).
    pub latency_increase_ms: Option<f64>,
    /// Latency and amplitude criteria must both be met (BAEP: +1 ms together with a 50% drop); one alarm of kind
    /// latency_increase is raised.
    pub require_both: bool,
    /// Response lost when the peak is not found or amplitude < this × the residual noise of the average.
    pub loss_snr: Option<f64>,
    /// The amplitude criterion also needs the drop to stand out of the noise: baseline − amplitude ≥ this ×
    /// √2 × the average's residual noise (ISIN: criteria that adapt to the trace's variability). Small, noisy
    /// responses (lower-limb cervical N34) then need a clearer drop than large, clean ones. 0 = off.
    pub min_drop_snr: f64,
    /// Consecutive averages that must meet a criterion before it is called (and fail it before it clears).
    pub confirm: u32,
    /// Hysteresis on amplitude ratios: clears only above threshold + this.
    pub clear_margin_amplitude: f64,
    /// Hysteresis on latency ratios: clears only below threshold − this (for ms criteria: × 10 ms).
    pub clear_margin_latency: f64,
    /// Quality gate for the automatic baseline: Fsp at least this (3.1: a response is present at 99%).
    pub baseline_min_fsp: f64,
    /// Quality gate: residual noise at most this many µV (none by default).
    pub baseline_max_noise_uv: Option<f64>,
    /// Quality gate: with Fsp passing, amplitude at least this × residual noise.
    pub baseline_min_snr: f64,
    /// Quality gate on its own: amplitude at least this × residual noise passes whatever the Fsp (Fsp is low
    /// for small late responses riding on slow EEG; a peak-to-peak of noise alone is rarely above ≈ 4×).
    pub baseline_snr_alone: f64,
    /// Averages that must pass the gate, in a row, before the automatic baseline is taken; the baseline is their
    /// mean (a replicated baseline).
    pub baseline_after: u32,
}

impl Default for Criteria {
    fn default() -> Self {
        Self::ssep()
    }
}

impl Criteria {
    /// SSEP: amplitude ≤ 50% and/or latency ≥ 110% of baseline, confirmed on 2 averages.
    pub fn ssep() -> Self {
        Self {
            amplitude_ratio: Some(0.5),
            latency_ratio: Some(1.10),
            latency_increase_ms: None,
            require_both: false,
            loss_snr: None,
            min_drop_snr: 3.0,
            confirm: 2,
            clear_margin_amplitude: 0.1,
            clear_margin_latency: 0.03,
            baseline_min_fsp: 3.1,
            baseline_max_noise_uv: None,
            baseline_min_snr: 3.0,
            baseline_snr_alone: 6.0,
            baseline_after: 3,
        }
    }

    /// TcMEP: amplitude drop ≥ 80% (ratio ≤ 0.2) or loss of response (no response above the noise). MEPs vary
    /// widely from sweep to sweep, so latency is not a criterion.
    pub fn mep() -> Self {
        Self {
            amplitude_ratio: Some(0.2),
            latency_ratio: None,
            loss_snr: Some(3.0),
            baseline_min_fsp: 0.0,
            // Single sweeps vary by 30–50%: take the baseline from several.
            baseline_after: 4,
            ..Self::ssep()
        }
    }

    /// BAEP: wave V latency +1.0 ms together with a ≥ 50% amplitude drop, or loss of wave V.
    pub fn baep() -> Self {
        Self {
            amplitude_ratio: Some(0.5),
            latency_ratio: None,
            latency_increase_ms: Some(1.0),
            require_both: true,
            loss_snr: Some(2.0),
            ..Self::ssep()
        }
    }

    /// The preset for a modality name (`ssep-upper`, `ssep-lower`, `mep`, `baep`).
    pub fn for_modality(modality: &str) -> Self {
        match modality {
            "mep" => Self::mep(),
            "baep" => Self::baep(),
            _ => Self::ssep(),
        }
    }
}
