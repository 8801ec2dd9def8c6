//! Linear-phase FIR design by the windowed-sinc method with a Kaiser window.
//!
//! Every filter is a signed sum of *low-pass terms* plus, optionally, a unit impulse (the all-pass term):
//!
//! - low-pass `f2`: `+LP(f2)`
//! - high-pass `f1`: `δ − LP(f1)`
//! - band-pass `f1…f2`: `LP(f2) − LP(f1)`
//! - each mains notch at `k·f0` with −6 dB width `w`: `− LP(k·f0 + w/2) + LP(k·f0 − w/2)`
//!
//! Each low-pass term is exactly what `scipy.signal.firwin(numtaps, cutoff, window=("kaiser", beta), fs=fs)`
//! returns (sinc, Kaiser window, unit gain at DC), with `numtaps` and `beta` from `scipy.signal.kaiserord`
//! for the term's own transition width and attenuation (made odd). Terms of different lengths are centred and
//! summed, so a narrow high-pass transition does not force a long kernel on the low-pass edge of the design,
//! and the DC gain of a band-pass is exactly zero. All lengths are odd, so the group delay `(taps − 1) / 2`
//! is a whole number of samples and is compensated exactly downstream.

use std::f64::consts::PI;

/// Most taps a designed kernel may have (bounds memory and FFT size for any configuration).
pub const MAX_TAPS: usize = 32_767;

/// One band edge: the −6 dB cutoff and the width of the transition band centred on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    /// Cutoff (−6 dB point) in Hz.
    pub cutoff_hz: f64,
    /// Full width of the transition band in Hz (the stop band ends `transition_hz / 2` from the cutoff).
    pub transition_hz: f64,
}

/// Mains suppression: band-stops at `mains_hz` and its harmonics, built into the same kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NotchSpec {
    /// Mains frequency (50 or 60 Hz).
    pub mains_hz: f64,
    /// Harmonics to suppress: 1 = the fundamental only, 3 = 50, 100 and 150 Hz. Harmonics whose notch would
    /// not lie wholly inside the pass band are skipped.
    pub harmonics: u32,
    /// Full width of each notch between its −6 dB points, Hz.
    pub width_hz: f64,
    /// Transition width of each notch edge, Hz; the stop band is `width_hz − transition_hz` wide.
    pub transition_hz: f64,
    /// Stop-band attenuation of the notch edges, dB.
    pub attenuation_db: f64,
}

/// What to design.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterSpec {
    /// High-pass edge, if any.
    pub highpass: Option<Edge>,
    /// Low-pass edge, if any.
    pub lowpass: Option<Edge>,
    /// Stop-band attenuation of the band edges, dB (Kaiser's `A`; 60 dB gives ≈ 0.1% ripple).
    pub attenuation_db: f64,
    /// Mains notch, if any.
    pub notch: Option<NotchSpec>,
}

/// Why a filter could not be designed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DesignError {
    /// A frequency is outside `(0, fs/2)` or the edges are in the wrong order.
    #[error("{what} = {value} Hz is out of range: {why}")]
    BadFrequency {
        /// Which parameter.
        what: &'static str,
        /// Its value.
        value: f64,
        /// The constraint that failed.
        why: String,
    },
    /// An attenuation outside 21…150 dB.
    #[error("attenuation {0} dB is out of range (21…150 dB)")]
    BadAttenuation(f64),
    /// The transition is so narrow that the kernel would exceed [`MAX_TAPS`].
    #[error(
        "a {transition_hz} Hz transition at {attenuation_db} dB needs {taps} taps (most {MAX_TAPS}); widen it"
    )]
    TooLong {
        /// The transition width asked for.
        transition_hz: f64,
        /// The attenuation asked for.
        attenuation_db: f64,
        /// Taps it would need.
        taps: usize,
    },
}

/// One low-pass term of a design: `sign × LP(cutoff)` with its own length and Kaiser β.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LowpassTerm {
    /// +1 or −1.
    pub sign: f64,
    /// Cutoff in Hz.
    pub cutoff_hz: f64,
    /// Odd number of taps of this term.
    pub taps: usize,
    /// Kaiser β of this term.
    pub beta: f64,
}

/// A designed linear-phase FIR kernel.
#[derive(Debug, Clone, PartialEq)]
pub struct FirDesign {
    /// Sample rate the kernel was designed for, Hz.
    pub sample_rate_hz: f64,
    /// The taps (odd count, symmetric).
    pub taps: Vec<f64>,
    /// Whether a unit impulse is part of the sum.
    pub allpass: bool,
    /// The low-pass terms summed into `taps`.
    pub terms: Vec<LowpassTerm>,
}

impl FirDesign {
    /// The identity filter (one tap of 1).
    pub fn identity(sample_rate_hz: f64) -> Self {
        Self {
            sample_rate_hz,
            taps: vec![1.0],
            allpass: true,
            terms: Vec::new(),
        }
    }

    /// Group delay in samples, `(taps − 1) / 2`.
    pub fn delay(&self) -> usize {
        (self.taps.len() - 1) / 2
    }

    /// Group delay in milliseconds.
    pub fn delay_ms(&self) -> f64 {
        self.delay() as f64 * 1000.0 / self.sample_rate_hz
    }

    /// Number of taps.
    pub fn len(&self) -> usize {
        self.taps.len()
    }

    /// Always false: a design has at least one tap.
    pub fn is_empty(&self) -> bool {
        self.taps.is_empty()
    }

    /// Zero-phase amplitude response at `f_hz` (real, may be negative in stop bands): the DTFT of the taps
    /// with the group delay removed, `Σ h[n] cos(2π f (n − D) / fs)`, computed in f64.
    pub fn amplitude(&self, f_hz: f64) -> f64 {
        let d = self.delay() as f64;
        let w = 2.0 * PI * f_hz / self.sample_rate_hz;
        self.taps
            .iter()
            .enumerate()
            .map(|(n, h)| h * (w * (n as f64 - d)).cos())
            .sum()
    }

    /// Magnitude response at `f_hz` in dB (floored at −300 dB).
    pub fn magnitude_db(&self, f_hz: f64) -> f64 {
        20.0 * self.amplitude(f_hz).abs().max(1e-15).log10()
    }

    /// Gain at DC (sum of the taps).
    pub fn dc_gain(&self) -> f64 {
        self.taps.iter().sum()
    }
}

/// Kaiser's β for a stop-band attenuation of `a` dB (as `scipy.signal.kaiser_beta`).
pub fn kaiser_beta(a: f64) -> f64 {
    if a > 50.0 {
        0.1102 * (a - 8.7)
    } else if a > 21.0 {
        0.5842 * (a - 21.0).powf(0.4) + 0.07886 * (a - 21.0)
    } else {
        0.0
    }
}

/// Taps and β for attenuation `a` dB and transition width `transition_hz` (as `scipy.signal.kaiserord`, then
/// rounded up to an odd count).
pub fn kaiser_order(a: f64, transition_hz: f64, fs: f64) -> (usize, f64) {
    let width = transition_hz / (0.5 * fs);
    let numtaps = (a - 7.95) / 2.285 / (PI * width) + 1.0;
    let n = numtaps.ceil();
    let n = if n.is_finite() && n < 1e9 {
        n as usize
    } else {
        usize::MAX / 4
    };
    (n | 1, kaiser_beta(a))
}

/// Modified Bessel function of the first kind, order 0 (power series; relative error < 1e-15 for |x| ≤ 30).
pub fn bessel_i0(x: f64) -> f64 {
    let q = 0.25 * x * x;
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut k = 1.0;
    while term > sum * 1e-17 {
        term *= q / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

/// Symmetric Kaiser window of `n` points (as `scipy.signal.windows.kaiser(n, beta, sym=True)`).
pub fn kaiser_window(n: usize, beta: f64) -> Vec<f64> {
    if n == 1 {
        return vec![1.0];
    }
    let alpha = (n as f64 - 1.0) / 2.0;
    let denom = bessel_i0(beta);
    let mut w: Vec<f64> = (0..n.div_ceil(2))
        .map(|i| {
            let r = (i as f64 - alpha) / alpha;
            bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / denom
        })
        .collect();
    // Symmetric: point n − 1 − i has r of the same magnitude (i − α is exact for these integers and
    // half-integers), so the mirrored half is bit-identical to computing it, at half the Bessel series.
    let mirrored: Vec<f64> = w[..n / 2].iter().rev().copied().collect();
    w.extend(mirrored);
    w
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 { 1.0 } else { (PI * x).sin() / (PI * x) }
}

/// Windowed-sinc low-pass of `n` (odd) taps with unit DC gain (as `scipy.signal.firwin(n, cutoff_hz,
/// window=("kaiser", beta), fs=fs)`).
pub fn lowpass_taps(n: usize, cutoff_hz: f64, fs: f64, beta: f64) -> Vec<f64> {
    windowed_lowpass(&kaiser_window(n, beta), cutoff_hz, fs)
}

/// [`lowpass_taps`] with the window already computed (its length is the number of taps).
fn windowed_lowpass(win: &[f64], cutoff_hz: f64, fs: f64) -> Vec<f64> {
    let n = win.len();
    let c = cutoff_hz / (0.5 * fs);
    let alpha = 0.5 * (n as f64 - 1.0);
    let mut h: Vec<f64> = (0..n)
        .map(|i| c * sinc(c * (i as f64 - alpha)) * win[i])
        .collect();
    let s: f64 = h.iter().sum();
    for v in &mut h {
        *v /= s;
    }
    h
}

fn check_attenuation(a: f64) -> Result<(), DesignError> {
    if (21.0..=150.0).contains(&a) {
        Ok(())
    } else {
        Err(DesignError::BadAttenuation(a))
    }
}

fn check_edge(what: &'static str, e: &Edge, fs: f64) -> Result<(), DesignError> {
    let nyq = 0.5 * fs;
    let bad = |value: f64, why: String| Err(DesignError::BadFrequency { what, value, why });
    if !(e.cutoff_hz > 0.0 && e.cutoff_hz < nyq) {
        return bad(e.cutoff_hz, format!("must lie in (0, {nyq}) at {fs} Hz sampling"));
    }
    if e.transition_hz.is_nan() || e.transition_hz <= 0.0 {
        return bad(e.transition_hz, "the transition width must be positive".into());
    }
    if e.cutoff_hz - 0.5 * e.transition_hz < 0.0 || e.cutoff_hz + 0.5 * e.transition_hz > nyq {
        return bad(
            e.cutoff_hz,
            format!(
                "its transition band ±{} Hz must stay within 0…{nyq} Hz",
                0.5 * e.transition_hz
            ),
        );
    }
    Ok(())
}

fn term(sign: f64, cutoff_hz: f64, transition_hz: f64, a: f64, fs: f64) -> Result<LowpassTerm, DesignError> {
    let (taps, beta) = kaiser_order(a, transition_hz, fs);
    if taps > MAX_TAPS {
        return Err(DesignError::TooLong {
            transition_hz,
            attenuation_db: a,
            taps,
        });
    }
    Ok(LowpassTerm {
        sign,
        cutoff_hz,
        taps,
        beta,
    })
}

/// The notch centres (Hz) that a spec actually gets at sample rate `fs`.
pub fn notch_centres(spec: &FilterSpec, fs: f64) -> Vec<f64> {
    let Some(n) = spec.notch else { return Vec::new() };
    let lo = spec.highpass.map_or(0.0, |e| e.cutoff_hz + 0.5 * e.transition_hz);
    let hi = spec
        .lowpass
        .map_or(0.5 * fs, |e| e.cutoff_hz - 0.5 * e.transition_hz);
    let half = 0.5 * n.width_hz + 0.5 * n.transition_hz;
    (1..=n.harmonics.min(1000))
        .map(|k| f64::from(k) * n.mains_hz)
        .filter(|&f| f - half >= lo && f + half <= hi)
        .collect()
}

/// Designs the kernel for `spec` at sample rate `fs` (Hz).
pub fn design(spec: &FilterSpec, fs: f64) -> Result<FirDesign, DesignError> {
    if !(fs.is_finite() && fs > 0.0) {
        return Err(DesignError::BadFrequency {
            what: "sample rate",
            value: fs,
            why: "must be > 0".into(),
        });
    }
    let a = spec.attenuation_db;
    let mut terms = Vec::new();
    if let Some(hp) = &spec.highpass {
        check_attenuation(a)?;
        check_edge("high-pass cutoff", hp, fs)?;
        terms.push(term(-1.0, hp.cutoff_hz, hp.transition_hz, a, fs)?);
    }
    if let Some(lp) = &spec.lowpass {
        check_attenuation(a)?;
        check_edge("low-pass cutoff", lp, fs)?;
        if let Some(hp) = &spec.highpass
            && hp.cutoff_hz + 0.5 * hp.transition_hz >= lp.cutoff_hz - 0.5 * lp.transition_hz
        {
            return Err(DesignError::BadFrequency {
                what: "high-pass cutoff",
                value: hp.cutoff_hz,
                why: format!(
                    "its transition band overlaps the low-pass one at {} Hz",
                    lp.cutoff_hz
                ),
            });
        }
        terms.push(term(1.0, lp.cutoff_hz, lp.transition_hz, a, fs)?);
    }
    if let Some(n) = &spec.notch {
        check_attenuation(n.attenuation_db)?;
        if !(n.mains_hz > 0.0 && n.mains_hz < 0.5 * fs) {
            return Err(DesignError::BadFrequency {
                what: "mains frequency",
                value: n.mains_hz,
                why: "must be positive and below the Nyquist frequency".into(),
            });
        }
        if !(n.transition_hz > 0.0 && n.width_hz > n.transition_hz) {
            return Err(DesignError::BadFrequency {
                what: "notch width",
                value: n.width_hz,
                why: format!(
                    "must exceed the notch transition width {} Hz (> 0)",
                    n.transition_hz
                ),
            });
        }
        for f in notch_centres(spec, fs) {
            terms.push(term(
                -1.0,
                f + 0.5 * n.width_hz,
                n.transition_hz,
                n.attenuation_db,
                fs,
            )?);
            terms.push(term(
                1.0,
                f - 0.5 * n.width_hz,
                n.transition_hz,
                n.attenuation_db,
                fs,
            )?);
        }
    }
    let allpass = spec.lowpass.is_none();
    let len = terms.iter().map(|t| t.taps).max().unwrap_or(1);
    let mut taps = vec![0.0; len];
    let centre = len / 2;
    if allpass {
        taps[centre] = 1.0;
    }
    // The notch terms share one length and β (and often the band edges too): one window each.
    let mut windows: Vec<(usize, u64, Vec<f64>)> = Vec::new();
    for t in &terms {
        let k = match windows
            .iter()
            .position(|w| w.0 == t.taps && w.1 == t.beta.to_bits())
        {
            Some(k) => k,
            None => {
                windows.push((t.taps, t.beta.to_bits(), kaiser_window(t.taps, t.beta)));
                windows.len() - 1
            }
        };
        let lp = windowed_lowpass(&windows[k].2, t.cutoff_hz, fs);
        let off = centre - t.taps / 2;
        for (i, v) in lp.iter().enumerate() {
            taps[off + i] += t.sign * v;
        }
    }
    Ok(FirDesign {
        sample_rate_hz: fs,
        taps,
        allpass,
        terms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirrored_kaiser_window_is_the_formula_at_every_point() {
        for n in [2usize, 3, 10, 11, 1000, 11_163] {
            let beta = kaiser_beta(60.0);
            let w = kaiser_window(n, beta);
            assert_eq!(w.len(), n);
            let alpha = (n as f64 - 1.0) / 2.0;
            for (i, v) in w.iter().enumerate() {
                let r = (i as f64 - alpha) / alpha;
                let direct = bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / bessel_i0(beta);
                assert_eq!(v.to_bits(), direct.to_bits(), "n {n} i {i}");
            }
        }
    }

    #[test]
    fn bessel_matches_known_values() {
        // Abramowitz & Stegun table 9.8: I0(1) = 1.266065878, I0(5) = 27.23987182.
        assert!((bessel_i0(1.0) - 1.266_065_877_752_008).abs() < 1e-14);
        assert!((bessel_i0(5.0) - 27.239_871_823_604_45).abs() < 1e-11);
    }

    #[test]
    fn bandpass_has_zero_dc_and_unit_midband() {
        let spec = FilterSpec {
            highpass: Some(Edge {
                cutoff_hz: 30.0,
                transition_hz: 20.0,
            }),
            lowpass: Some(Edge {
                cutoff_hz: 1000.0,
                transition_hz: 400.0,
            }),
            attenuation_db: 60.0,
            notch: None,
        };
        let d = design(&spec, 10_000.0).unwrap();
        assert_eq!(d.len() % 2, 1);
        assert!(d.dc_gain().abs() < 1e-12);
        // Kaiser 60 dB: ripple δ = 10^(−60/20) = 0.001 per edge, two edges → ≤ 0.002.
        assert!((d.amplitude(300.0) - 1.0).abs() < 2e-3);
        assert!(d.amplitude(10.0).abs() < 2e-3);
        assert!(d.amplitude(2000.0).abs() < 2e-3);
    }

    #[test]
    fn rejects_bad_specs() {
        let e = |c, t| {
            Some(Edge {
                cutoff_hz: c,
                transition_hz: t,
            })
        };
        let base = FilterSpec {
            highpass: None,
            lowpass: None,
            attenuation_db: 60.0,
            notch: None,
        };
        assert!(
            design(
                &FilterSpec {
                    lowpass: e(6000.0, 100.0),
                    ..base
                },
                10_000.0
            )
            .is_err()
        );
        assert!(
            design(
                &FilterSpec {
                    highpass: e(30.0, 0.01),
                    ..base
                },
                10_000.0
            )
            .is_err()
        );
        assert!(
            design(
                &FilterSpec {
                    highpass: e(500.0, 100.0),
                    lowpass: e(400.0, 100.0),
                    ..base
                },
                1e4
            )
            .is_err()
        );
        assert!(
            design(
                &FilterSpec {
                    lowpass: e(400.0, 100.0),
                    attenuation_db: 5.0,
                    ..base
                },
                1e4
            )
            .is_err()
        );
        assert_eq!(design(&base, 1e4).unwrap().taps, vec![1.0]);
    }
}
