//! A deterministic synthetic case for [`crate::ScriptedSource`]: SSEP and MEP averages with realistic shapes,
//! automatic baselines, surgical markers, an amplitude drop that raises and clears a clinical alarm, and
//! optionally a technical alarm. Used by the tests, the examples and screenshots.

use crate::source::{ProtocolInfo, TraceThresholds};
use ionm_core::events::{
    AlarmClass, AlarmEvent, AlarmKind, AlarmState, AverageEvent, BaselineEvent, BaselineOrigin, Event,
    MarkerEvent, PeakValue, StatsEvent, Waveform,
};
use ionm_core::{ChannelInfo, DeviceInfo, Rng, Stimulator};

/// An amplitude drop on one trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoDrop {
    /// Index of the trace in [`DEMO_TRACES`].
    pub trace: usize,
    /// Averages from this stream time on are reduced…
    pub from_s: f64,
    /// … until this stream time.
    pub to_s: f64,
    /// … to this ratio of the baseline amplitude.
    pub amplitude_ratio: f64,
}

/// What the demo case contains.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// Length of the case, stream seconds.
    pub duration_s: f64,
    /// One average per trace every this many seconds.
    pub average_period_s: f64,
    /// How many of [`DEMO_TRACES`] to use (1–6).
    pub traces: usize,
    /// The amplitude drop, if any. Its clinical alarm (id 1) is raised on the second average inside the drop
    /// (two confirmations) and cleared on the second one after it.
    pub drop: Option<DemoDrop>,
    /// A technical alarm (id 2, electrode off on the first trace's channel) between these stream times.
    pub technical: Option<(f64, f64)>,
    /// Surgical markers: (stream time, kind).
    pub markers: Vec<(f64, String)>,
    /// Seed of the residual noise on the averages.
    pub seed: u64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            duration_s: 900.0,
            average_period_s: 15.0,
            traces: 6,
            drop: Some(DemoDrop {
                trace: 2,
                from_s: 480.0,
                to_s: 660.0,
                amplitude_ratio: 0.35,
            }),
            technical: Some((700.0, 760.0)),
            markers: vec![
                (120.0, "incision".into()),
                (300.0, "exposure".into()),
                (450.0, "instrumentation".into()),
                (560.0, "correction".into()),
            ],
            seed: 1,
        }
    }
}

/// A demo trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoTrace {
    /// Trace name.
    pub name: &'static str,
    /// Channel label.
    pub channel: &'static str,
    /// Stimulator.
    pub stimulator: Stimulator,
    /// `ssep` or `mep`.
    pub modality: &'static str,
    /// Names of the two peaks (the first one's latency is the primary latency).
    pub peaks: [&'static str; 2],
    /// Latency of the first peak, ms.
    pub latency_ms: f64,
    /// Peak-to-peak amplitude, µV.
    pub amplitude_uv: f64,
}

/// The six traces of the demo case (figures from GUIDE §1).
pub const DEMO_TRACES: [DemoTrace; 6] = [
    DemoTrace {
        name: "L median",
        channel: "CP4-Fz",
        stimulator: Stimulator::LeftMedian,
        modality: "ssep",
        peaks: ["N20", "P25"],
        latency_ms: 19.6,
        amplitude_uv: 2.4,
    },
    DemoTrace {
        name: "R median",
        channel: "CP3-Fz",
        stimulator: Stimulator::RightMedian,
        modality: "ssep",
        peaks: ["N20", "P25"],
        latency_ms: 19.9,
        amplitude_uv: 2.1,
    },
    DemoTrace {
        name: "L tibial",
        channel: "Cz-Fz",
        stimulator: Stimulator::LeftTibial,
        modality: "ssep",
        peaks: ["P37", "N45"],
        latency_ms: 37.5,
        amplitude_uv: 1.3,
    },
    DemoTrace {
        name: "R tibial",
        channel: "CPz-Fz",
        stimulator: Stimulator::RightTibial,
        modality: "ssep",
        peaks: ["P37", "N45"],
        latency_ms: 38.2,
        amplitude_uv: 1.1,
    },
    DemoTrace {
        name: "L APB",
        channel: "APB L",
        stimulator: Stimulator::Tes,
        modality: "mep",
        peaks: ["onset", "peak"],
        latency_ms: 21.0,
        amplitude_uv: 350.0,
    },
    DemoTrace {
        name: "R TA",
        channel: "TA R",
        stimulator: Stimulator::Tes,
        modality: "mep",
        peaks: ["onset", "peak"],
        latency_ms: 29.0,
        amplitude_uv: 250.0,
    },
];

/// A generated case: its events in stream order and its protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoCase {
    /// Events sorted by stream time.
    pub events: Vec<Event>,
    /// Protocol, montage and thresholds.
    pub protocol: ProtocolInfo,
    /// Length, stream seconds.
    pub duration_s: f64,
}

/// Builds the case.
pub fn demo_case(opts: &DemoOptions) -> DemoCase {
    let traces = &DEMO_TRACES[..opts.traces.clamp(1, DEMO_TRACES.len())];
    let period = if opts.average_period_s.is_finite() && opts.average_period_s > 0.1 {
        opts.average_period_s
    } else {
        15.0
    };
    let duration = if opts.duration_s.is_finite() {
        opts.duration_s.max(0.0)
    } else {
        0.0
    };
    let mut rng = Rng::new(opts.seed);
    let mut events = Vec::new();
    let device = DeviceInfo {
        protocol_version: 1,
        sample_rate_hz: 20_000,
        channels: traces
            .iter()
            .map(|t| ChannelInfo {
                label: t.channel.into(),
                gain_nv_per_lsb: 50,
            })
            .collect(),
        adc_min: -(1 << 23),
        adc_max: (1 << 23) - 1,
        firmware_version: "demo".into(),
        session_id: 1,
    };
    events.push(Event::Device {
        stream_s: 0.0,
        device,
    });

    for (k, tr) in traces.iter().enumerate() {
        let mut baseline: Option<(f64, f64)> = None;
        let mut in_drop_count = 0u32;
        let mut after_drop_count = 0u32;
        let mut alarm_raised = false;
        let mut seq = 0u64;
        loop {
            let t = period * (seq + 1) as f64 + 0.37 * k as f64;
            if t > duration {
                break;
            }
            let mut scale = 1.0 + 0.06 * (rng.uniform() - 0.5);
            let lat = tr.latency_ms * (1.0 + 0.01 * (rng.uniform() - 0.5));
            let drop = opts.drop.filter(|d| d.trace == k);
            let dropped = drop.is_some_and(|d| t >= d.from_s && t < d.to_s);
            if let Some(d) = drop.filter(|_| dropped) {
                scale *= d.amplitude_ratio;
            }
            let avg = average(tr, t, seq, scale, lat, baseline, &mut rng);
            events.push(Event::Average(avg.clone()));
            if seq == 1 {
                baseline = Some((avg.amplitude_uv.unwrap_or(1.0), lat));
                events.push(Event::Baseline(BaselineEvent {
                    stream_s: t + 0.001,
                    trace: tr.name.into(),
                    number: 1,
                    origin: BaselineOrigin::Automatic,
                    sweeps: avg.sweeps,
                    amplitude_uv: avg.amplitude_uv,
                    latency_ms: avg.latency_ms,
                    fsp: avg.fsp,
                    residual_noise_uv: avg.residual_noise_uv,
                    replaces_s: None,
                    waveform: avg.waveform.clone(),
                }));
            }
            if dropped {
                in_drop_count += 1;
                if in_drop_count == 2 && !alarm_raised {
                    alarm_raised = true;
                    let ratio = avg.amplitude_ratio.unwrap_or(0.0);
                    events.push(alarm_event(tr, t + 0.002, AlarmState::Raised, ratio));
                }
            } else if alarm_raised {
                after_drop_count += 1;
                if after_drop_count == 2 {
                    alarm_raised = false;
                    let ratio = avg.amplitude_ratio.unwrap_or(1.0);
                    events.push(alarm_event(tr, t + 0.002, AlarmState::Cleared, ratio));
                }
            }
            seq += 1;
        }
    }
    if let Some((from, to)) = opts.technical {
        let tr = &traces[0];
        for (t, state) in [(from, AlarmState::Raised), (to, AlarmState::Cleared)] {
            if t <= duration {
                events.push(Event::Alarm(AlarmEvent {
                    stream_s: t,
                    id: 2,
                    trace: Some(tr.channel.into()),
                    kind: AlarmKind::ElectrodeOff,
                    class: AlarmClass::Technical,
                    state,
                    value: Some(0.0),
                    threshold: None,
                    systemic: false,
                    detector: "technical".into(),
                    message: format!("{}: flat signal, electrode off?", tr.channel),
                }));
            }
        }
    }
    for (t, kind) in &opts.markers {
        if *t <= duration {
            events.push(Event::Marker(MarkerEvent {
                stream_s: *t,
                kind: kind.clone(),
                text: String::new(),
            }));
        }
    }
    let mut t = 5.0;
    while t <= duration {
        events.push(Event::Stats(StatsEvent {
            stream_s: t,
            samples: (t * 20_000.0) as u64,
            ..StatsEvent::default()
        }));
        t += 5.0;
    }
    // Stable: events of equal time keep their generation order (an average before its alarm).
    events.sort_by(|a, b| a.stream_s().total_cmp(&b.stream_s()));

    let protocol = ProtocolInfo {
        name: "Demo: scoliosis, SSEP + TcMEP".into(),
        montage: traces.iter().map(|t| t.channel.to_owned()).collect(),
        thresholds: traces
            .iter()
            .map(|t| TraceThresholds {
                trace: t.name.into(),
                amplitude_ratio: Some(if t.modality == "mep" { 0.2 } else { 0.5 }),
                latency_ratio: (t.modality == "ssep").then_some(1.1),
            })
            .collect(),
    };
    DemoCase {
        events,
        protocol,
        duration_s: duration,
    }
}

fn alarm_event(tr: &DemoTrace, t: f64, state: AlarmState, ratio: f64) -> Event {
    let threshold = if tr.modality == "mep" { 0.2 } else { 0.5 };
    Event::Alarm(AlarmEvent {
        stream_s: t,
        id: 1,
        trace: Some(tr.name.into()),
        kind: AlarmKind::AmplitudeDrop,
        class: AlarmClass::Clinical,
        state,
        value: Some(ratio),
        threshold: Some(threshold),
        systemic: false,
        detector: "block".into(),
        message: match state {
            AlarmState::Cleared => {
                format!("{}: amplitude back to {:.0}% of baseline", tr.name, ratio * 100.0)
            }
            _ => format!(
                "{}: amplitude {:.0}% of baseline (alarm at ≤ {:.0}%)",
                tr.name,
                ratio * 100.0,
                threshold * 100.0
            ),
        },
    })
}

/// One synthetic average of `tr` with its amplitude scaled by `scale` and its first peak at `lat` ms.
fn average(
    tr: &DemoTrace,
    t: f64,
    seq: u64,
    scale: f64,
    lat: f64,
    baseline: Option<(f64, f64)>,
    rng: &mut Rng,
) -> AverageEvent {
    let amp = tr.amplitude_uv * scale;
    let mep = tr.modality == "mep";
    let (t0, t1, dt) = if mep {
        (-10.0, 100.0, 0.1)
    } else {
        (-10.0, 60.0, 0.1)
    };
    let noise = if mep { 4.0 } else { 0.12 };
    let n = ((t1 - t0) / dt) as usize + 1;
    let gauss = |x: f64, mu: f64, sd: f64| (-0.5 * ((x - mu) / sd).powi(2)).exp();
    // Residual noise of a filtered average is band-limited: white noise through an 8-point moving average
    // (≈ 1.1 kHz at 10 kHz), rescaled by √8 to keep the stated RMS.
    let white: Vec<f64> = (0..n + 7).map(|_| rng.normal()).collect();
    let smooth: Vec<f64> = white
        .windows(8)
        .map(|w| w.iter().sum::<f64>() / 8f64.sqrt())
        .collect();
    let mut values = Vec::with_capacity(n);
    for (i, nz) in smooth.iter().enumerate() {
        let x = t0 + i as f64 * dt;
        let clean = if mep {
            // Polyphasic: three alternating phases after the onset.
            amp * (0.5 * gauss(x, lat + 3.0, 1.4) - 0.5 * gauss(x, lat + 7.0, 1.8)
                + 0.25 * gauss(x, lat + 11.0, 2.0))
        } else {
            // SSEP: the first peak negative, the second positive 5–8 ms later.
            let gap = if lat > 30.0 { 8.0 } else { 5.0 };
            amp * (-0.45 * gauss(x, lat, 1.3) + 0.55 * gauss(x, lat + gap, 2.0))
        };
        values.push((clean + noise * nz) as f32);
    }
    let wf = Waveform {
        t0_ms: t0,
        dt_ms: dt,
        values_uv: values,
    };
    // Measure on the waveform itself, as the pipeline would.
    let at = |ms: f64| {
        let i = (((ms - t0) / dt).round().max(0.0) as usize).min(n - 1);
        f64::from(wf.values_uv[i])
    };
    let (p1, p2) = if mep {
        (lat + 3.0, lat + 7.0)
    } else {
        (lat, lat + if lat > 30.0 { 8.0 } else { 5.0 })
    };
    let (a1, a2) = (at(p1), at(p2));
    let p2p = (a2 - a1).abs();
    let peaks = if mep {
        vec![
            PeakValue {
                name: tr.peaks[0].into(),
                latency_ms: Some(lat),
                amplitude_uv: Some(at(lat)),
            },
            PeakValue {
                name: tr.peaks[1].into(),
                latency_ms: Some(p1),
                amplitude_uv: Some(a1),
            },
        ]
    } else {
        vec![
            PeakValue {
                name: tr.peaks[0].into(),
                latency_ms: Some(p1),
                amplitude_uv: Some(a1),
            },
            PeakValue {
                name: tr.peaks[1].into(),
                latency_ms: Some(p2),
                amplitude_uv: Some(a2),
            },
        ]
    };
    AverageEvent {
        stream_s: t,
        trace: tr.name.into(),
        channel: tr.channel.into(),
        stimulator: tr.stimulator,
        modality: tr.modality.into(),
        sequence: seq,
        sweeps: if mep { 1 } else { 200 },
        rejected: (seq * 7) % 5,
        dropped: 0,
        peaks,
        amplitude_uv: Some(p2p),
        latency_ms: Some(lat),
        amplitude_ratio: baseline.map(|(a, _)| p2p / a),
        latency_ratio: baseline.map(|(_, l)| lat / l),
        fsp: Some(if mep { 25.0 } else { 4.0 + 6.0 * scale }),
        residual_noise_uv: Some(noise),
        suspended: baseline.is_none().then(|| "no baseline yet".to_owned()),
        waveform: Some(wf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drop_raises_and_clears_one_clinical_alarm() {
        let case = demo_case(&DemoOptions::default());
        let alarms: Vec<_> = case
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Alarm(a) if a.id == 1 => Some((a.stream_s, a.state)),
                _ => None,
            })
            .collect();
        assert_eq!(alarms.len(), 2);
        assert_eq!(alarms[0].1, AlarmState::Raised);
        assert_eq!(alarms[1].1, AlarmState::Cleared);
        // Raised on the second average inside the drop (480 s + 2 periods of 15 s, trace offset 0.74 s).
        assert!(
            alarms[0].0 > 480.0 + 15.0 && alarms[0].0 < 480.0 + 31.0,
            "{alarms:?}"
        );
        assert!(alarms[1].0 > 660.0);
        assert!(case.events.windows(2).all(|w| w[0].stream_s() <= w[1].stream_s()));
    }
}
