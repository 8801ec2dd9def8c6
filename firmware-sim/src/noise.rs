//! Cheap coloured-noise generators: an approximately Gaussian deviate from one 64-bit draw, and cascades of
//! first-order pole-zero sections that shape white noise into a 1/f ("pink") or low-pass (EEG) spectrum.
//!
//! Filters are designed from analog corner frequencies with the matched-z transform and then *calibrated*
//! numerically from their exact digital frequency response, so the stated levels (µV RMS in a band) hold at every
//! sample rate from 1 to 50 kHz.

use ionm_core::Rng;
use std::f64::consts::PI;

/// Most first-order sections one [`Cascade`] holds (1 Hz to 4 kHz at two sections per decade needs 8).
const MAX_SECTIONS: usize = 10;

/// Scale of the 4-term Irwin–Hall sum of 16-bit uniforms: each term has variance (65536² − 1)/12.
const IH_SCALE: f64 = 1.0 / 37_837.227_237_206_48; // 1 / sqrt(4 * (65536^2 - 1) / 12)
/// Mean of the sum of four 16-bit uniforms.
const IH_MEAN: f64 = 2.0 * 65_535.0;

/// An approximately standard normal deviate from a single 64-bit draw: the sum of four 16-bit uniforms
/// (Irwin–Hall, n = 4), centred and scaled to unit variance. Bounded to ±3.46 with kurtosis 2.7 instead of 3: good
/// enough for background noise, and much cheaper than a polar-method normal (no logarithm, no square root,
/// no rejection loop).
#[inline]
pub fn gauss(rng: &mut Rng) -> f64 {
    let x = rng.next_u64();
    let s = (x & 0xFFFF) + ((x >> 16) & 0xFFFF) + ((x >> 32) & 0xFFFF) + (x >> 48);
    (s as f64 - IH_MEAN) * IH_SCALE
}

/// A cascade of first-order sections `y[n] = x[n] − z·x[n−1] + p·y[n−1]`, times a gain.
#[derive(Debug, Clone)]
pub struct Cascade {
    zeros: [f64; MAX_SECTIONS],
    poles: [f64; MAX_SECTIONS],
    n: usize,
    /// `state[0]` is the previous input, `state[k + 1]` the previous output of section `k`.
    state: [f64; MAX_SECTIONS + 1],
    gain: f64,
}

impl Cascade {
    /// A cascade with the given analog corner frequencies (Hz): `(zero, pole)` pairs; a zero of `None` puts the
    /// digital zero at the origin (a plain one-pole low-pass).
    fn design(pairs: &[(Option<f64>, f64)], fs: f64) -> Self {
        let mut c = Self {
            zeros: [0.0; MAX_SECTIONS],
            poles: [0.0; MAX_SECTIONS],
            n: pairs.len().min(MAX_SECTIONS),
            state: [0.0; MAX_SECTIONS + 1],
            gain: 1.0,
        };
        for (k, &(z, p)) in pairs.iter().take(MAX_SECTIONS).enumerate() {
            c.zeros[k] = z.map_or(0.0, |f| (-2.0 * PI * f / fs).exp());
            c.poles[k] = (-2.0 * PI * p / fs).exp();
        }
        c
    }

    /// A 1/f shaper: poles at `f_lo·√10^k`, each followed half a decade-step later by a zero, up to `f_hi`.
    /// Above the last zero the spectrum is flat. Ripple about the 1/f line ≈ 0.3 dB.
    pub fn pink(f_lo: f64, f_hi: f64, fs: f64) -> Self {
        let r = 10f64.sqrt();
        let mut pairs = [(None, 0.0); MAX_SECTIONS];
        let mut n = 0;
        let mut f = f_lo;
        while f < f_hi && n < MAX_SECTIONS {
            pairs[n] = (Some(f * r.sqrt()), f);
            n += 1;
            f *= r;
        }
        Self::design(&pairs[..n], fs)
    }

    /// A cascade of one-pole low-passes at the given corner frequencies (Hz).
    pub fn lowpass(corners: &[f64], fs: f64) -> Self {
        let pairs: Vec<(Option<f64>, f64)> = corners.iter().map(|&f| (None, f)).collect();
        Self::design(&pairs, fs)
    }

    /// |H(f)|² of the cascade including its gain.
    pub fn power_response(&self, f: f64, fs: f64) -> f64 {
        let c = (2.0 * PI * f / fs).cos();
        let mut h2 = self.gain * self.gain;
        for k in 0..self.n {
            let (z, p) = (self.zeros[k], self.poles[k]);
            h2 *= (1.0 - 2.0 * z * c + z * z) / (1.0 - 2.0 * p * c + p * p);
        }
        h2
    }

    /// Variance of the output within `[f1, f2]` Hz when the input is unit-variance white noise at rate `fs`
    /// (the one-sided input density is 2/fs per Hz). Trapezoidal integration on a logarithmic grid.
    pub fn band_power(&self, f1: f64, f2: f64, fs: f64) -> f64 {
        const N: usize = 4000;
        let (f1, f2) = (f1.max(1e-4), f2.min(fs / 2.0));
        if f2 <= f1 {
            return 0.0;
        }
        let ratio = (f2 / f1).ln();
        let mut total = 0.0;
        let mut f_prev = f1;
        let mut s_prev = self.power_response(f1, fs);
        for i in 1..=N {
            let f = f1 * (ratio * i as f64 / N as f64).exp();
            let s = self.power_response(f, fs);
            total += 0.5 * (s + s_prev) * (f - f_prev);
            f_prev = f;
            s_prev = s;
        }
        total * 2.0 / fs
    }

    /// Multiplies the gain by `k`.
    pub fn scale(&mut self, k: f64) {
        self.gain *= k;
    }

    /// Filters one input sample.
    #[inline]
    pub fn step(&mut self, x: f64) -> f64 {
        let mut v = x;
        let mut prev_in = self.state[0];
        self.state[0] = x;
        for k in 0..self.n {
            let y = v - self.zeros[k] * prev_in + self.poles[k] * self.state[k + 1];
            prev_in = self.state[k + 1];
            self.state[k + 1] = y;
            v = y;
        }
        v * self.gain
    }
}

/// The background noise of one channel: pink (1/f) noise, low-frequency EEG and white amplifier noise, each from
/// its own draw of the channel's generator.
#[derive(Debug, Clone)]
pub struct ChannelNoise {
    pink: Cascade,
    lf: Cascade,
    white_sigma: f64,
}

/// Band in which the "in-band" level of the pink component is specified (the cortical SSEP band of GUIDE §1).
pub const IN_BAND_HZ: (f64, f64) = (30.0, 1000.0);
/// Lower corner of the 1/f component (Hz).
pub const PINK_LOW_HZ: f64 = 1.0;
/// Upper end of the 1/f component (Hz, or 0.4·fs if lower); white above.
pub const PINK_HIGH_HZ: f64 = 4000.0;
/// Corners of the low-frequency EEG component (Hz): flat below the first, −20 dB/decade between, −40 above.
pub const LF_CORNERS_HZ: [f64; 2] = [1.0, 10.0];

impl ChannelNoise {
    /// Noise with `pink_uv` µV RMS of 1/f noise within [`IN_BAND_HZ`] (the density is fixed, so the in-band level
    /// is the same at every sample rate whose Nyquist frequency exceeds 1 kHz), `lf_uv` µV RMS of low-frequency
    /// EEG (total), and white noise of `white_nv_rthz` nV/√Hz.
    pub fn new(pink_uv: f64, lf_uv: f64, white_nv_rthz: f64, fs: f64) -> Self {
        let mut pink = Cascade::pink(PINK_LOW_HZ, PINK_HIGH_HZ.min(0.4 * fs), fs);
        // Target density c/f with c·ln(1000/30) = pink_uv²; calibrate over the part of the band below Nyquist.
        let (b1, b2) = (IN_BAND_HZ.0, IN_BAND_HZ.1.min(0.45 * fs));
        let c = pink_uv * pink_uv / (IN_BAND_HZ.1 / IN_BAND_HZ.0).ln();
        let have = pink.band_power(b1, b2, fs);
        let want = c * (b2 / b1).ln();
        pink.scale(if have > 0.0 { (want / have).sqrt() } else { 0.0 });

        let mut lf = Cascade::lowpass(&LF_CORNERS_HZ, fs);
        let have = lf.band_power(1e-3, fs / 2.0, fs);
        lf.scale(if have > 0.0 { lf_uv / have.sqrt() } else { 0.0 });

        Self {
            pink,
            lf,
            white_sigma: white_nv_rthz * 1e-3 * (fs / 2.0).sqrt(),
        }
    }

    /// Design RMS (µV) of the sum of the three components within `[f1, f2]` Hz.
    pub fn design_rms(&self, f1: f64, f2: f64, fs: f64) -> f64 {
        let (g1, g2) = (f1.max(0.0), f2.min(fs / 2.0));
        let white = self.white_sigma * self.white_sigma * ((g2 - g1).max(0.0) / (fs / 2.0));
        (self.pink.band_power(f1, f2, fs) + self.lf.band_power(f1, f2, fs) + white).sqrt()
    }

    /// Next noise sample in µV.
    #[inline]
    pub fn step(&mut self, rng: &mut Rng) -> f64 {
        let a = gauss(rng);
        let b = gauss(rng);
        let w = gauss(rng);
        self.pink.step(a) + self.lf.step(b) + self.white_sigma * w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irwin_hall_has_unit_variance_and_zero_mean() {
        // Analytic reference: the scaled Irwin–Hall sum has mean 0 and variance 1 exactly; n = 200 000 gives a
        // standard error of the variance of sqrt((κ−1)/n) ≈ 0.003, so ±0.02 is > 6 standard errors.
        let mut r = Rng::new(3);
        let n = 200_000;
        let xs: Vec<f64> = (0..n).map(|_| gauss(&mut r)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
    }

    #[test]
    fn one_pole_band_power_matches_closed_form() {
        // Analytic reference: y = x + p·y₋₁ driven by unit white noise has variance 1/(1 − p²).
        let fs = 10_000.0;
        let c = Cascade::lowpass(&[50.0], fs);
        let p = (-2.0 * PI * 50.0 / fs).exp();
        let total = c.band_power(1e-4, fs / 2.0, fs);
        let exact = 1.0 / (1.0 - p * p);
        assert!((total / exact - 1.0).abs() < 1e-3, "{total} vs {exact}");
    }

    #[test]
    fn pink_cascade_is_one_over_f() {
        // |H|²·f must be constant within the design ripple (±0.3 dB ≈ ±7%) between the corners.
        let fs = 20_000.0;
        let c = Cascade::pink(1.0, 4000.0, fs);
        let refv = c.power_response(100.0, fs) * 100.0;
        for f in [3.0, 10.0, 31.0, 300.0, 1000.0, 2000.0] {
            let v = c.power_response(f, fs) * f / refv;
            assert!((v - 1.0).abs() < 0.15, "f = {f}: {v}");
        }
    }
}
