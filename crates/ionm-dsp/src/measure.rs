//! Peak picking and measurements on an average.
//!
//! [`measure`] fills a [`Measurement`] (allocated once per trace by [`Measurement::for_spec`]) from an
//! average and a [`MeasureSpec`]:
//!
//! - **Peaks** ([`PeakSpec`]): the most extreme *local extremum* of the requested polarity strictly inside
//!   the search window. A sample only qualifies if it is a true local extremum (its neighbours are less
//!   extreme) and is not the window's first or last sample, so a slope running into the window edge is never
//!   reported as a peak: the peak is then "not found". The latency is refined to a fraction of a sample by
//!   fitting a parabola through the extremum and its two neighbours; the value is the parabola's vertex.
//! - **Tracking** ([`Reference`]): with a reference (baseline) average, the latency shift of the whole
//!   response is first estimated by cross-correlating the average with the reference over the peaks' region
//!   (lags within ±`max_shift_ms`, sub-sample by parabolic interpolation). Each peak is then searched only
//!   within ±`tolerance_ms` of its reference latency plus that shift. When the correlation peaks at the lag
//!   limit or is not positive, the shift is not trusted and the full windows are used.
//! - **Baselines** ([`measure_baseline`]): a baseline made of several averages is measured the way the
//!   averages compared with it will be. The most extreme extremum in a window is biased upwards by the noise,
//!   more in a wide window than in a narrow one; averages after the baseline are searched in the narrow
//!   tracking windows, so a baseline measured in the full windows would read larger than every later average
//!   of an unchanged response (on the simulator's noisy cortical traces by 4–9%, ratios of 0.92–0.96 at no
//!   change). Each of the baseline's averages is therefore measured against a reference made of the others
//!   (peaks found in the full windows of that less noisy mean), and later averages against one of the same
//!   size.
//! - **Amplitudes** ([`AmplitudeSpec`]): between two peaks, from a peak to the baseline (mean of the
//!   `baseline_ms` window, or 0 when there is none), or peak-to-peak within a window (MEP).
//! - **Onset** ([`OnsetSpec`]): first upward crossing of `|y − baseline| = threshold`, linearly interpolated.
//! - **Intervals** ([`IntervalSpec`]): latency differences (e.g. BAEP I–V).
//! - **Primary** ([`PrimarySpec`]): the latency and amplitude that alarm logic uses.
//!
//! All arithmetic is `f64`.

/// Polarity of a peak in the recorded signal (active minus reference electrode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    /// A maximum (P waves, BAEP waves I–V).
    Positive,
    /// A minimum (N waves).
    Negative,
}

impl Polarity {
    fn sign(self) -> f64 {
        match self {
            Self::Positive => 1.0,
            Self::Negative => -1.0,
        }
    }
}

/// A named peak to find.
#[derive(Debug, Clone, PartialEq)]
pub struct PeakSpec {
    /// Name, e.g. `"N20"`.
    pub name: String,
    /// Polarity.
    pub polarity: Polarity,
    /// Search window, ms after the stimulus, `[from, to]`.
    pub window_ms: (f64, f64),
    /// If set, the peak must come after this peak (index into the peak list, which must be earlier).
    pub after: Option<usize>,
}

/// How an amplitude is measured.
#[derive(Debug, Clone, PartialEq)]
pub enum AmplitudeKind {
    /// `|value(to) − value(from)|` between two peaks (indices into the peak list).
    Between {
        /// First peak.
        from: usize,
        /// Second peak.
        to: usize,
    },
    /// `|value(peak) − baseline|`.
    ToBaseline {
        /// The peak.
        peak: usize,
    },
    /// `max − min` of the samples within a window (ms after the stimulus).
    WindowPeakToPeak {
        /// The window.
        window_ms: (f64, f64),
    },
}

/// A named amplitude.
#[derive(Debug, Clone, PartialEq)]
pub struct AmplitudeSpec {
    /// Name, e.g. `"N20-P25"`.
    pub name: String,
    /// How.
    pub kind: AmplitudeKind,
}

/// A named latency difference `latency(to) − latency(from)`.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalSpec {
    /// Name, e.g. `"I-V"`.
    pub name: String,
    /// First peak index.
    pub from: usize,
    /// Second peak index.
    pub to: usize,
}

/// Onset detection by threshold crossing (MEP).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OnsetSpec {
    /// Threshold on `|y − baseline|`, µV.
    pub threshold_uv: f64,
    /// Search window, ms after the stimulus.
    pub window_ms: (f64, f64),
}

/// Where the primary latency comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyRef {
    /// A peak (index into the peak list).
    Peak(usize),
    /// The onset.
    Onset,
}

/// The measurement alarm logic watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrimarySpec {
    /// Primary latency.
    pub latency: Option<LatencyRef>,
    /// Primary amplitude (index into the amplitude list).
    pub amplitude: Option<usize>,
}

/// Search narrowing around a reference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackingSpec {
    /// Largest latency shift of the whole response looked for, ms.
    pub max_shift_ms: f64,
    /// Half-width of each peak's narrowed search window, ms.
    pub tolerance_ms: f64,
}

/// Everything to measure on one trace's averages.
#[derive(Debug, Clone, PartialEq)]
pub struct MeasureSpec {
    /// Peaks, in an order where each `after` refers to an earlier one.
    pub peaks: Vec<PeakSpec>,
    /// Amplitudes.
    pub amplitudes: Vec<AmplitudeSpec>,
    /// Intervals.
    pub intervals: Vec<IntervalSpec>,
    /// Onset, if measured.
    pub onset: Option<OnsetSpec>,
    /// Baseline window, ms (mean of the average there); `None`: baseline 0.
    pub baseline_ms: Option<(f64, f64)>,
    /// Primary measurement.
    pub primary: PrimarySpec,
    /// Tracking parameters used when a reference is set.
    pub tracking: TrackingSpec,
}

/// A found peak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peak {
    /// Latency after the stimulus, ms (sub-sample).
    pub latency_ms: f64,
    /// Value at the vertex, µV.
    pub value_uv: f64,
}

/// Results of [`measure`], in the order of the spec's lists.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Measurement {
    /// One entry per [`MeasureSpec::peaks`]; `None`: not found.
    pub peaks: Vec<Option<Peak>>,
    /// One entry per [`MeasureSpec::amplitudes`], µV.
    pub amplitudes_uv: Vec<Option<f64>>,
    /// One entry per [`MeasureSpec::intervals`], ms.
    pub intervals_ms: Vec<Option<f64>>,
    /// Onset latency, ms.
    pub onset_ms: Option<f64>,
    /// Baseline used, µV.
    pub baseline_uv: f64,
    /// Latency shift against the reference, ms (when a reference was given and the shift is trusted).
    pub shift_ms: Option<f64>,
    /// Primary latency, ms.
    pub primary_latency_ms: Option<f64>,
    /// Primary amplitude, µV.
    pub primary_amplitude_uv: Option<f64>,
}

impl Measurement {
    /// Storage for `spec`'s results (the only allocation; [`measure`] reuses it).
    pub fn for_spec(spec: &MeasureSpec) -> Self {
        Self {
            peaks: vec![None; spec.peaks.len()],
            amplitudes_uv: vec![None; spec.amplitudes.len()],
            intervals_ms: vec![None; spec.intervals.len()],
            ..Self::default()
        }
    }
}

/// Where the samples of an average sit in time: sample `j` is at `(start_offset + j) / fs` after the
/// stimulus.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timebase {
    /// Offset of sample 0 from the stimulus, samples (negative for a pre-stimulus part).
    pub start_offset: i64,
    /// Sample rate, Hz.
    pub sample_rate_hz: f64,
}

impl Timebase {
    fn index(&self, ms: f64) -> f64 {
        ms * self.sample_rate_hz / 1000.0 - self.start_offset as f64
    }

    fn ms(&self, index: f64) -> f64 {
        (index + self.start_offset as f64) * 1000.0 / self.sample_rate_hz
    }

    /// Whole-sample index range `[lo, hi]` of a window, clamped to `[min, len − 1 − margin]`.
    fn range(&self, window_ms: (f64, f64), len: usize, margin: usize) -> Option<(usize, usize)> {
        let lo = self.index(window_ms.0).ceil().max(margin as f64);
        let hi = self
            .index(window_ms.1)
            .floor()
            .min(len as f64 - 1.0 - margin as f64);
        (lo <= hi).then_some((lo as usize, hi as usize))
    }
}

/// A reference average that later averages are tracked against.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Its time base.
    pub timebase: Timebase,
    /// The reference waveform, µV.
    pub template: Vec<f64>,
    /// Latency of each peak of the spec in the reference (ms), `None` where it was not found.
    pub peak_latencies_ms: Vec<Option<f64>>,
}

impl Reference {
    /// A reference made from an average and its measurement.
    pub fn new(avg: &[f64], timebase: Timebase, m: &Measurement) -> Self {
        Self {
            timebase,
            template: avg.to_vec(),
            peak_latencies_ms: m.peaks.iter().map(|p| p.map(|p| p.latency_ms)).collect(),
        }
    }
}

/// A baseline made of several averages ([`measure_baseline`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineMeasurement {
    /// The reference for later averages: the mean of the baseline's averages but the first (all of them when
    /// there is one) and its peaks, found in the full search windows.
    pub reference: Reference,
    /// Mean primary amplitude of the baseline's averages, each measured against [`Self::reference`] (as later
    /// averages are), µV; `None` when no average has one.
    pub amplitude_uv: Option<f64>,
    /// Mean primary latency of the baseline's averages, measured the same way, ms.
    pub latency_ms: Option<f64>,
}

/// Measures a baseline made of `averages` (each of `tb`'s time base, all of one length, oldest first) the way
/// averages compared with it will be measured: each average is measured against a reference made of the mean
/// of the *others* (peaks searched in the full windows, then the average's in the narrowed windows of
/// [`MeasureSpec::tracking`]), and the primary amplitudes and latencies are averaged; the first average's
/// reference (the mean of the later ones) is the one later averages are measured against. So every
/// measurement, the baseline's and the later ones', is made against a reference of the same number of
/// averages that shares no noise with it. Against a reference containing its own noise an average's narrowed
/// windows would centre on its own noise peaks and read larger than later averages (≈ 4% with three noisy
/// averages); against the mean of all of them, later averages would have a less noisy reference than the
/// baseline's (in `tests/baseline.rs` +0.03 µV of a 1.55 µV response, 4 standard errors; the scheme here: +0.008 ± 0.008). A single average is
/// measured against itself, which gives its full-window values.
/// `None` when `averages` is empty or their lengths differ. Allocates (once per baseline, not on the
/// real-time path).
pub fn measure_baseline(
    averages: &[&[f64]],
    tb: Timebase,
    spec: &MeasureSpec,
) -> Option<BaselineMeasurement> {
    let len = averages.first()?.len();
    if averages.iter().any(|a| a.len() != len) {
        return None;
    }
    let mut sum = vec![0.0; len];
    for a in averages {
        for (p, v) in sum.iter_mut().zip(*a) {
            *p += v;
        }
    }
    let n = averages.len();
    let mut m = Measurement::for_spec(spec);
    // The reference made of the mean of `sum` minus `leave` (if any).
    let reference_of = |leave: Option<&[f64]>, m: &mut Measurement| {
        let k = (n - usize::from(leave.is_some())) as f64;
        let template: Vec<f64> = match leave {
            Some(l) => sum.iter().zip(l).map(|(s, v)| (s - v) / k).collect(),
            None => sum.iter().map(|s| s / k).collect(),
        };
        measure(&template, tb, spec, None, m);
        Reference {
            timebase: tb,
            peak_latencies_ms: m.peaks.iter().map(|p| p.map(|p| p.latency_ms)).collect(),
            template,
        }
    };
    let (mut amp, mut lat) = ((0.0, 0u32), (0.0, 0u32));
    let mut first = None;
    for a in averages {
        let others = reference_of((n > 1).then_some(*a), &mut m);
        measure(a, tb, spec, Some(&others), &mut m);
        if let Some(v) = m.primary_amplitude_uv {
            amp = (amp.0 + v, amp.1 + 1);
        }
        if let Some(v) = m.primary_latency_ms {
            lat = (lat.0 + v, lat.1 + 1);
        }
        first.get_or_insert(others);
    }
    let reference = first?;
    let mean = |(total, k): (f64, u32)| (k > 0).then(|| total / f64::from(k));
    Some(BaselineMeasurement {
        reference,
        amplitude_uv: mean(amp),
        latency_ms: mean(lat),
    })
}

/// Finds the most extreme local extremum of polarity `pol` strictly inside the search range `[lo, hi]` (the
/// first and last samples of the range are never reported). Returns the fractional index and the vertex
/// value.
pub fn find_peak(y: &[f64], pol: Polarity, lo: usize, hi: usize) -> Option<(f64, f64)> {
    let s = pol.sign();
    let mut best: Option<(usize, f64)> = None;
    for j in (lo + 1).max(1)..hi.min(y.len().saturating_sub(1)) {
        let z = s * y[j];
        if z > s * y[j - 1] && z >= s * y[j + 1] && best.is_none_or(|(_, b)| z > b) {
            best = Some((j, z));
        }
    }
    let (j, _) = best?;
    let (a, b, c) = (s * y[j - 1], s * y[j], s * y[j + 1]);
    let den = a - 2.0 * b + c;
    let delta = if den < 0.0 {
        (0.5 * (a - c) / den).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    let vertex = b - 0.25 * (a - c) * delta;
    Some((j as f64 + delta, s * vertex))
}

/// Least-squares line `a + b·j` through `y[lo..=hi]`.
fn line_fit(y: &[f64], lo: usize, hi: usize) -> (f64, f64) {
    let n = (hi - lo + 1) as f64;
    let jm = (lo + hi) as f64 / 2.0;
    let ym = y[lo..=hi].iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (k, v) in y[lo..=hi].iter().enumerate() {
        let dj = (lo + k) as f64 - jm;
        sxy += dj * (v - ym);
        sxx += dj * dj;
    }
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (ym - b * jm, b)
}

/// Lag (fractional samples) that best aligns `y` with `r` over `[lo, hi]`, both detrended (a drift must not
/// pull the estimate); `None` when the best lag is at the limit or the correlation is not positive.
fn xcorr_shift(y: &[f64], r: &[f64], lo: usize, hi: usize, max_lag: usize) -> Option<f64> {
    let (ya, yb) = line_fit(y, lo, hi);
    let (rlo, rhi) = (lo.saturating_sub(max_lag), (hi + max_lag).min(r.len() - 1));
    let (ra, rb) = line_fit(r, rlo, rhi);
    let corr = |lag: isize| -> f64 {
        let mut c = 0.0;
        for (j, yv) in y.iter().enumerate().take(hi + 1).skip(lo) {
            let k = j as isize - lag;
            if k >= 0 && (k as usize) < r.len() {
                let rv = r[k as usize] - (ra + rb * k as f64);
                c += (yv - (ya + yb * j as f64)) * rv;
            }
        }
        c
    };
    let s = max_lag as isize;
    let mut best = (0isize, f64::NEG_INFINITY);
    for lag in -s..=s {
        let c = corr(lag);
        if c > best.1 {
            best = (lag, c);
        }
    }
    let (lag, c0) = best;
    if lag.abs() == s || c0 <= 0.0 {
        return None;
    }
    let (a, c) = (corr(lag - 1), corr(lag + 1));
    let den = a - 2.0 * c0 + c;
    let delta = if den < 0.0 {
        (0.5 * (a - c) / den).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    Some(lag as f64 + delta)
}

/// Measures the average `y` (µV) per `spec`, writing into `out` (made by [`Measurement::for_spec`] for the
/// same spec). `reference`, if given, must share `y`'s time base and length, otherwise it is ignored.
pub fn measure(
    y: &[f64],
    tb: Timebase,
    spec: &MeasureSpec,
    reference: Option<&Reference>,
    out: &mut Measurement,
) {
    let len = y.len();
    out.baseline_uv = spec
        .baseline_ms
        .and_then(|w| tb.range(w, len, 0))
        .map_or(0.0, |(lo, hi)| {
            y[lo..=hi].iter().sum::<f64>() / (hi - lo + 1) as f64
        });

    // Latency shift against the reference, over the region the peaks are searched in.
    out.shift_ms = None;
    let reference = reference.filter(|r| {
        r.timebase == tb && r.template.len() == len && r.peak_latencies_ms.len() == spec.peaks.len()
    });
    if let Some(r) = reference {
        let lo = spec
            .peaks
            .iter()
            .map(|p| p.window_ms.0)
            .fold(f64::INFINITY, f64::min);
        let hi = spec
            .peaks
            .iter()
            .map(|p| p.window_ms.1)
            .fold(f64::NEG_INFINITY, f64::max);
        let max_lag = (spec.tracking.max_shift_ms * tb.sample_rate_hz / 1000.0)
            .round()
            .max(1.0) as usize;
        if let Some((lo, hi)) = tb.range((lo, hi), len, 0) {
            out.shift_ms =
                xcorr_shift(y, &r.template, lo, hi, max_lag).map(|s| s * 1000.0 / tb.sample_rate_hz);
        }
    }

    for (i, p) in spec.peaks.iter().enumerate() {
        let mut window = p.window_ms;
        if let Some(a) = p.after
            && a < i
            && let Some(prev) = out.peaks[a]
        {
            window.0 = window.0.max(prev.latency_ms + 1000.0 / tb.sample_rate_hz);
        }
        let mut search = window;
        if let (Some(shift), Some(r)) = (out.shift_ms, reference)
            && let Some(lat) = r.peak_latencies_ms[i]
        {
            let expected = lat + shift;
            let tol = spec.tracking.tolerance_ms;
            let narrowed = (window.0.max(expected - tol), window.1.min(expected + tol));
            if narrowed.0 < narrowed.1 {
                search = narrowed;
            }
        }
        out.peaks[i] = tb
            .range(search, len, 1)
            .and_then(|(lo, hi)| find_peak(y, p.polarity, lo, hi))
            .map(|(idx, value_uv)| Peak {
                latency_ms: tb.ms(idx),
                value_uv,
            });
    }

    for (i, a) in spec.amplitudes.iter().enumerate() {
        let value = |k: usize| out.peaks.get(k).copied().flatten().map(|p| p.value_uv);
        out.amplitudes_uv[i] = match &a.kind {
            AmplitudeKind::Between { from, to } => value(*from).zip(value(*to)).map(|(f, t)| (t - f).abs()),
            AmplitudeKind::ToBaseline { peak } => value(*peak).map(|v| (v - out.baseline_uv).abs()),
            AmplitudeKind::WindowPeakToPeak { window_ms } => tb.range(*window_ms, len, 0).map(|(lo, hi)| {
                let (mn, mx) = y[lo..=hi]
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(mn, mx), v| {
                        (mn.min(*v), mx.max(*v))
                    });
                mx - mn
            }),
        };
    }

    for (i, iv) in spec.intervals.iter().enumerate() {
        let lat = |k: usize| out.peaks.get(k).copied().flatten().map(|p| p.latency_ms);
        out.intervals_ms[i] = lat(iv.from).zip(lat(iv.to)).map(|(f, t)| t - f);
    }

    out.onset_ms = spec.onset.and_then(|o| {
        let (lo, hi) = tb.range(o.window_ms, len, 0)?;
        let b = out.baseline_uv;
        (lo + 1..=hi).find_map(|j| {
            let (u, v) = ((y[j - 1] - b).abs(), (y[j] - b).abs());
            (u < o.threshold_uv && v >= o.threshold_uv)
                .then(|| tb.ms(j as f64 - 1.0 + (o.threshold_uv - u) / (v - u)))
        })
    });

    out.primary_latency_ms = match spec.primary.latency {
        Some(LatencyRef::Peak(k)) => out.peaks.get(k).copied().flatten().map(|p| p.latency_ms),
        Some(LatencyRef::Onset) => out.onset_ms,
        None => None,
    };
    out.primary_amplitude_uv = spec
        .primary
        .amplitude
        .and_then(|k| out.amplitudes_uv.get(k).copied().flatten());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parabola_vertex_is_exact_for_a_parabola() {
        // y = −(x − 10.3)² sampled at integers: the 3-point fit is exact.
        let y: Vec<f64> = (0..20).map(|x| -(x as f64 - 10.3).powi(2) + 5.0).collect();
        let (idx, v) = find_peak(&y, Polarity::Positive, 0, 19).unwrap();
        assert!((idx - 10.3).abs() < 1e-12);
        assert!((v - 5.0).abs() < 1e-12);
    }

    #[test]
    fn a_slope_is_not_a_peak() {
        let y: Vec<f64> = (0..50).map(|x| x as f64).collect();
        assert!(find_peak(&y, Polarity::Positive, 0, 49).is_none());
        assert!(find_peak(&y, Polarity::Negative, 0, 49).is_none());
        // A local maximum on the range's first sample is not reported either.
        let v = [0.0, 2.0, 1.0, 0.5, 0.7, 0.2];
        assert_eq!(
            find_peak(&v, Polarity::Positive, 1, 5).map(|p| p.0.round()),
            Some(4.0)
        );
    }
}
