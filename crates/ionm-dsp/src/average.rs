//! Averages of accepted sweeps, with quality figures.
//!
//! [`Averager`] keeps either
//! - a **block** average: sums over the current block of `N` sweeps; when the `N`-th sweep arrives the
//!   average is ready and the next sweep starts a new, independent block (independent blocks make "replicated
//!   in two consecutive averages" meaningful), memory `3 × window`; or
//! - a **moving** average over the last `N` sweeps, ready every `K` sweeps once `N` have arrived, memory `N ×
//!   window` (`f32`) plus the sums.
//!
//! With every average come: the **± average** (alternate sweeps' signs flipped; the response cancels and what
//! is left estimates the residual noise, an even number of sweeps is used), the **residual noise** (RMS of
//! the ± average over the quality window, µV) and **Fsp** (Elberling & Don 1984: the variance over time of
//! the average divided by the variance of a single point across sweeps over `N`; the single-point variance is
//! averaged over all points of the quality window rather than taken at one point, for a steadier estimate).
//! Sums are `f64`.

/// Block or moving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AverageMode {
    /// Independent blocks of `sweeps`.
    Block,
    /// The last `sweeps`, updated every `every` sweeps.
    Moving {
        /// Update period in accepted sweeps (≥ 1).
        every: u32,
    },
}

/// How to average.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AverageSpec {
    /// Sweeps per average (`N` ≥ 1).
    pub sweeps: u32,
    /// Block or moving.
    pub mode: AverageMode,
}

/// Quality figures of one average.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AverageStats {
    /// Sweeps in the average.
    pub sweeps: u32,
    /// Sweeps in the ± average (the even number ≤ `sweeps`; 0 when fewer than 2).
    pub plus_minus_sweeps: u32,
    /// Fsp (`None` with fewer than 2 sweeps or no variance).
    pub fsp: Option<f64>,
    /// RMS of the ± average over the quality window, µV (`None` with fewer than 2 sweeps).
    pub residual_noise_uv: Option<f64>,
}

/// Accumulates accepted sweeps of one trace. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Averager {
    spec: AverageSpec,
    w: usize,
    quality: (usize, usize),
    sum: Vec<f64>,
    sumsq: Vec<f64>,
    pm: Vec<f64>,
    count: u32,
    ring: Vec<f32>,
    signs: Vec<f64>,
    head: usize,
    filled: usize,
    since: u32,
    total: u64,
    mean: Vec<f64>,
    pm_out: Vec<f64>,
    stats: AverageStats,
}

impl Averager {
    /// An averager for sweeps of `w` samples; quality figures use samples `quality.0 .. quality.1` (clamped).
    pub fn new(spec: AverageSpec, w: usize, quality: (usize, usize)) -> Self {
        let n = spec.sweeps.max(1) as usize;
        let moving = matches!(spec.mode, AverageMode::Moving { .. });
        let q1 = quality.1.min(w);
        let q0 = quality.0.min(q1);
        Self {
            spec: AverageSpec {
                sweeps: n as u32,
                ..spec
            },
            w,
            quality: if q1 > q0 { (q0, q1) } else { (0, w) },
            sum: vec![0.0; w],
            sumsq: vec![0.0; w],
            pm: vec![0.0; w],
            count: 0,
            ring: if moving { vec![0.0; n * w] } else { Vec::new() },
            signs: if moving { vec![0.0; n] } else { Vec::new() },
            head: 0,
            filled: 0,
            since: 0,
            total: 0,
            mean: vec![0.0; w],
            pm_out: vec![0.0; w],
            stats: AverageStats::default(),
        }
    }

    /// The spec.
    pub fn spec(&self) -> AverageSpec {
        self.spec
    }

    /// Sweeps accumulated towards the next average.
    pub fn in_progress(&self) -> u32 {
        match self.spec.mode {
            AverageMode::Block => self.count,
            AverageMode::Moving { .. } => self.filled as u32,
        }
    }

    /// Forgets every sweep.
    pub fn reset(&mut self) {
        self.count = 0;
        self.filled = 0;
        self.head = 0;
        self.since = 0;
        self.sum.fill(0.0);
        self.sumsq.fill(0.0);
        self.pm.fill(0.0);
    }

    /// Adds an accepted sweep (`w` samples, µV). Returns true when a new average is ready
    /// ([`Averager::mean`], [`Averager::plus_minus`], [`Averager::stats`]). Never allocates.
    pub fn add(&mut self, sweep: &[f32]) -> bool {
        let x = &sweep[..self.w.min(sweep.len())];
        let sign = if self.total.is_multiple_of(2) { 1.0 } else { -1.0 };
        self.total += 1;
        let n = self.spec.sweeps;
        match self.spec.mode {
            AverageMode::Block => {
                // Zipped iterators (no bounds checks): the compiler vectorises this loop.
                for (((s, q), p), v) in self.sum.iter_mut().zip(&mut self.sumsq).zip(&mut self.pm).zip(x) {
                    let v = f64::from(*v);
                    *s += v;
                    *q += v * v;
                    *p += sign * v;
                }
                self.count += 1;
                if self.count < n {
                    return false;
                }
                let odd = n % 2 == 1;
                let ne = n - u32::from(odd);
                for j in 0..self.w {
                    self.mean[j] = self.sum[j] / f64::from(n);
                    let last = if odd {
                        sign * f64::from(x.get(j).copied().unwrap_or(0.0))
                    } else {
                        0.0
                    };
                    self.pm_out[j] = if ne > 0 {
                        (self.pm[j] - last) / f64::from(ne)
                    } else {
                        0.0
                    };
                }
                self.finish_stats(n, ne);
                self.count = 0;
                self.sum.fill(0.0);
                self.sumsq.fill(0.0);
                self.pm.fill(0.0);
                true
            }
            AverageMode::Moving { every } => {
                let nn = n as usize;
                let slot = self.head;
                self.ring[slot * self.w..slot * self.w + x.len()].copy_from_slice(x);
                self.signs[slot] = sign;
                self.head = (self.head + 1) % nn;
                self.filled = (self.filled + 1).min(nn);
                self.since += 1;
                if self.filled < nn || self.since < every.max(1) {
                    return false;
                }
                self.since = 0;
                let odd = n % 2 == 1;
                let ne = n - u32::from(odd);
                // When full, `head` is the oldest slot; with an odd N it is left out of the ± average.
                let skip = if odd { Some(self.head) } else { None };
                self.sum.fill(0.0);
                self.sumsq.fill(0.0);
                self.pm.fill(0.0);
                for s in 0..nn {
                    let row = &self.ring[s * self.w..(s + 1) * self.w];
                    let sg = if skip == Some(s) { 0.0 } else { self.signs[s] };
                    for (j, v) in row.iter().enumerate() {
                        let v = f64::from(*v);
                        self.sum[j] += v;
                        self.sumsq[j] += v * v;
                        self.pm[j] += sg * v;
                    }
                }
                for j in 0..self.w {
                    self.mean[j] = self.sum[j] / f64::from(n);
                    self.pm_out[j] = if ne > 0 { self.pm[j] / f64::from(ne) } else { 0.0 };
                }
                self.finish_stats(n, ne);
                true
            }
        }
    }

    /// Fsp and residual noise from `mean`, `pm_out` and the per-point sums of the sweeps averaged.
    fn finish_stats(&mut self, n: u32, ne: u32) {
        let (q0, q1) = self.quality;
        let len = (q1 - q0) as f64;
        self.stats = AverageStats {
            sweeps: n,
            plus_minus_sweeps: ne,
            fsp: None,
            residual_noise_uv: None,
        };
        if n < 2 {
            return;
        }
        let nf = f64::from(n);
        let m = &self.mean[q0..q1];
        let mbar = m.iter().sum::<f64>() / len;
        let var_avg = m.iter().map(|v| (v - mbar) * (v - mbar)).sum::<f64>() / (len - 1.0).max(1.0);
        let var_point = (q0..q1)
            .map(|j| ((self.sumsq[j] - self.sum[j] * self.sum[j] / nf) / (nf - 1.0)).max(0.0))
            .sum::<f64>()
            / len;
        if var_point > 0.0 {
            self.stats.fsp = Some(var_avg * nf / var_point);
        }
        let rms = (self.pm_out[q0..q1].iter().map(|v| v * v).sum::<f64>() / len).sqrt();
        self.stats.residual_noise_uv = Some(rms);
    }

    /// The latest average, µV.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The latest ± average, µV (`None` with fewer than 2 sweeps).
    pub fn plus_minus(&self) -> Option<&[f64]> {
        (self.stats.plus_minus_sweeps >= 2).then_some(&self.pm_out[..])
    }

    /// Quality figures of the latest average.
    pub fn stats(&self) -> AverageStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_minus_cancels_the_response_and_keeps_the_noise() {
        // Sweeps = s + (−1)^k e: the average is s, the ± average is e exactly (N even).
        let s: Vec<f32> = (0..10).map(|j| j as f32).collect();
        let mut a = Averager::new(
            AverageSpec {
                sweeps: 4,
                mode: AverageMode::Block,
            },
            10,
            (0, 10),
        );
        for k in 0..4 {
            let e = if k % 2 == 0 { 0.5 } else { -0.5 };
            let x: Vec<f32> = s.iter().map(|v| v + e).collect();
            assert_eq!(a.add(&x), k == 3);
        }
        assert!(
            a.mean()
                .iter()
                .zip(&s)
                .all(|(m, v)| (m - f64::from(*v)).abs() < 1e-12)
        );
        assert!(a.plus_minus().unwrap().iter().all(|v| (v - 0.5).abs() < 1e-12));
        assert!((a.stats().residual_noise_uv.unwrap() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn moving_average_updates_every_k() {
        let mut a = Averager::new(
            AverageSpec {
                sweeps: 3,
                mode: AverageMode::Moving { every: 2 },
            },
            2,
            (0, 2),
        );
        let ready: Vec<bool> = (0..8).map(|k| a.add(&[k as f32, 0.0])).collect();
        assert_eq!(ready, [false, false, true, false, true, false, true, false]);
        // The latest average was made at sweep 6, over sweeps 4, 5, 6.
        assert!((a.mean()[0] - 5.0).abs() < 1e-12);
    }
}
