//! Which change detectors run and the sequential detector's settings: written by the protocol file (`ionm-dsp`),
//! read by the monitor (`ionm-monitor`).

/// Which detectors run, and the sequential detector's settings (the protocol's top-level `detectors` key and its
/// `[sequential]` table).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorSettings {
    /// The block-average detector (N-sweep averages against the baseline, confirmed): `"block"`.
    pub block: bool,
    /// The single-sweep sequential detector (matched filter + CUSUM) on the SSEP traces: `"sequential"`.
    pub sequential: bool,
    /// Sequential: mean hours between false alarms for the whole case (the per-trace ARL is this × the trace's
    /// accepted-sweep rate × the number of traces it runs on).
    pub false_alarm_hours: f64,
    /// Sequential: the amplitude drop the CUSUM is tuned for, fraction of baseline (0.5 = 50%).
    pub design_drop: f64,
    /// Sequential: the latency increase the latency CUSUM is tuned for, fraction of the baseline latency.
    pub design_latency: f64,
    /// Sequential: accepted sweeps that build the template.
    pub template_sweeps: u32,
    /// Sequential: further accepted sweeps that calibrate the noise (not used for the template).
    pub calibration_sweeps: u32,
    /// Sequential: also raise its alarm when the standard criteria are confirmed on the trace's block averages
    /// (a combined Shewhart–CUSUM scheme), so that it is never later than the block method on the same data.
    pub block_floor: bool,
    /// Sequential: also run the latency CUSUM (a matched filter for the design latency shift), which shares the
    /// trace's false-alarm target with the amplitude CUSUM.
    pub latency_cusum: bool,
}

impl Default for DetectorSettings {
    /// The block detector only; sequential settings: one false alarm per 80 h, 50%, 10%, 200 + 800 sweeps, with the
    /// block floor and the latency CUSUM.
    fn default() -> Self {
        Self {
            block: true,
            sequential: false,
            false_alarm_hours: 80.0,
            design_drop: 0.5,
            design_latency: 0.10,
            template_sweeps: 200,
            calibration_sweeps: 800,
            block_floor: true,
            latency_cusum: true,
        }
    }
}
