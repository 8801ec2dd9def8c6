//! The processing thread's work: integrity check → DSP engine → monitor → events.

use crate::{Command, PipelineConfig, PipelineEvent, PipelineStats, StreamChecker};
use ionm_core::events::{AverageEvent, CorrectionEvent, Event, LinkTotals, PeakValue, StatsEvent, Waveform};
use ionm_core::{Acquired, DeviceInfo};
use ionm_dsp::protocol::{Modality, Site};
use ionm_dsp::{AverageView, DropReason, DspSink, Engine, Reference, RejectReason, SweepView, Verdict};
use ionm_io::IngestStats;
use ionm_monitor::{AverageInput, BaselineMeasure, Criteria, Monitor, Role, TraceMeta};
use std::sync::mpsc;

/// Counters kept by the processing thread for the stats events.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    sweeps_accepted: u64,
    sweeps_rejected: u64,
    sweeps_dropped: u64,
    averages: u64,
    gaps: u64,
    gap_samples: u64,
}

/// Per-trace counts at the previous average (to report what happened since).
#[derive(Debug, Default, Clone, Copy)]
struct Since {
    rejected: u64,
    dropped: u64,
}

/// Everything the processing thread owns.
pub(crate) struct Processor {
    config: PipelineConfig,
    checker: StreamChecker,
    engine: Option<Engine>,
    monitor: Option<Monitor>,
    trace_names: Vec<String>,
    fs: f64,
    /// Stream seconds of sessions before the current one (a restarted device counts from 0 again).
    session_offset_s: f64,
    session_end_s: f64,
    stream_s: f64,
    next_stats_s: f64,
    counters: Counters,
    since: Vec<Since>,
    events: Vec<Event>,
    /// Baselines taken while the engine ran, with the reference measured for each (`None`: make it from the
    /// latest average).
    baselines_taken: Vec<(usize, Option<Reference>)>,
    /// Each trace's reference (kept so that a restarted device's new engine tracks the same peaks).
    references: Vec<Option<Reference>>,
    recent: RecentAverages,
    /// Items the DSP engine refused (logged once).
    input_rejected: u64,
    recorder: Option<ionm_record::RecorderHandle>,
    recorder_dropped: u64,
    scope: Option<crate::scope::ScopeWriter>,
}

impl Processor {
    pub(crate) fn new(
        config: PipelineConfig,
        recorder: Option<ionm_record::RecorderHandle>,
        scope: Option<crate::scope::ScopeWriter>,
    ) -> Self {
        let next_stats_s = config.stats_every_s;
        Self {
            config,
            checker: StreamChecker::new(),
            engine: None,
            monitor: None,
            trace_names: Vec::new(),
            fs: 0.0,
            session_offset_s: 0.0,
            session_end_s: 0.0,
            stream_s: 0.0,
            next_stats_s,
            counters: Counters::default(),
            since: Vec::new(),
            events: Vec::with_capacity(64),
            baselines_taken: Vec::with_capacity(8),
            references: Vec::new(),
            recent: RecentAverages::default(),
            input_rejected: 0,
            recorder,
            recorder_dropped: 0,
            scope,
        }
    }

    /// Handles one item; returns an error message when processing cannot go on (protocol does not fit).
    pub(crate) fn accept(&mut self, item: &Acquired, stats: &PipelineStats) -> Result<(), String> {
        self.checker.accept(item, stats);
        // The recorder takes a copy first: a file has every sample even if processing fails. Never blocks.
        if let Some(r) = self.recorder.as_mut() {
            r.try_send(item);
        }
        match item {
            Acquired::Device(d) => {
                self.on_device(d)?;
                self.events.push(Event::Device {
                    stream_s: self.stream_s,
                    device: (**d).clone(),
                });
            }
            Acquired::Samples(b) => {
                if let Some(s) = self.scope.as_mut() {
                    s.raw_block(b);
                }
                self.stream_s = self.session_offset_s + b.end_index() as f64 / self.fs.max(1.0);
                self.session_end_s = self.stream_s;
                self.push_engine(item);
            }
            Acquired::Stimulus(_) => self.push_engine(item),
            Acquired::Gap(g) => {
                self.counters.gaps += 1;
                self.counters.gap_samples += g.samples();
                self.push_engine(item);
                if let Some(m) = self.monitor.as_mut() {
                    m.on_gap(g, self.stream_s, &mut self.events);
                }
                self.events.push(Event::Gap {
                    stream_s: self.stream_s,
                    gap: *g,
                });
            }
            Acquired::Status(s) => {
                if let Some(m) = self.monitor.as_mut() {
                    m.on_status(s, self.stream_s, &mut self.events);
                }
                let notable = s.saturated != 0
                    || s.impedance_high != 0
                    || s.stimulator_fault
                    || s.battery_percent.is_some_and(|b| b < 20);
                if notable {
                    self.events.push(Event::Status {
                        stream_s: self.stream_s,
                        status: *s,
                    });
                }
            }
            Acquired::Link(l) => {
                if let Some(m) = self.monitor.as_mut() {
                    m.on_link(l, self.stream_s, &mut self.events);
                }
                self.events.push(Event::Link {
                    stream_s: self.stream_s,
                    link: l.clone(),
                });
            }
        }
        if self.stream_s >= self.next_stats_s {
            if let Some(m) = self.monitor.as_mut() {
                m.on_time(self.stream_s, &mut self.events);
                if let Some(r) = self.recorder.as_ref() {
                    let dropped = r.stats().snapshot().dropped_items;
                    if dropped > self.recorder_dropped {
                        m.on_recorder_behind(
                            dropped - self.recorder_dropped,
                            self.stream_s,
                            &mut self.events,
                        );
                        self.recorder_dropped = dropped;
                    }
                }
            }
            while self.next_stats_s <= self.stream_s {
                self.next_stats_s += self.config.stats_every_s;
            }
            let s = self.stats_event(stats, false, None);
            self.events.push(Event::Stats(s));
        }
        Ok(())
    }

    fn on_device(&mut self, d: &DeviceInfo) -> Result<(), String> {
        // A new session restarts sample indices: stream time continues from where the last one ended.
        if self.engine.is_some() {
            self.session_offset_s = self.session_end_s;
        }
        self.fs = f64::from(d.sample_rate_hz);
        let mut engine = Engine::new(&self.config.protocol, d)
            .map_err(|e| format!("protocol does not fit the device: {e}"))?;
        let traces: Vec<TraceMeta> = (0..engine.trace_count())
            .filter_map(|t| engine.trace_info(t))
            .map(|info| {
                let modality = info.modality.name().to_owned();
                let role = match (info.modality, info.site) {
                    (Modality::Mep, _) => Role::Muscle,
                    (Modality::Baep, _) => Role::Brainstem,
                    (_, Some(Site::Peripheral)) => Role::Peripheral,
                    (_, Some(Site::Cervical)) => Role::Subcortical,
                    _ => Role::Cortical,
                };
                let criteria = self
                    .config
                    .criteria
                    .get(&modality)
                    .cloned()
                    .unwrap_or_else(|| Criteria::for_modality(&modality));
                TraceMeta {
                    name: info.name.clone(),
                    label: info.label.clone(),
                    device_channel: info.device_channel,
                    stimulator: info.stimulator,
                    modality,
                    role,
                    criteria,
                }
            })
            .collect();
        let names: Vec<String> = traces.iter().map(|t| t.name.clone()).collect();
        // A baseline of several averages is measured again from their waveforms: keep as many as any trace's
        // automatic baseline takes.
        let keep = traces
            .iter()
            .map(|t| t.criteria.baseline_after.max(1) as usize)
            .max()
            .unwrap_or(1);
        let lens: Vec<usize> = (0..engine.trace_count())
            .filter_map(|t| engine.trace_info(t).map(|i| i.window_len))
            .collect();
        self.recent = RecentAverages::new(keep, &lens);
        // The same traces after a device restart keep their baselines and alarms.
        if self.monitor.is_none() || names != self.trace_names {
            self.references = vec![None; names.len()];
            let labels = d.channels.iter().map(|c| c.label.clone()).collect();
            self.monitor = Some(Monitor::with_detectors(
                traces,
                labels,
                &self.config.protocol.detectors,
            ));
            self.trace_names = names;
        }
        if let Some(m) = self.monitor.as_mut() {
            // The single-sweep detectors need each trace's sweep shape (kept across device restarts).
            for (t, info) in (0..engine.trace_count()).filter_map(|t| engine.trace_info(t).map(|i| (t, i))) {
                let dt_ms = 1000.0 / info.timebase.sample_rate_hz;
                m.set_sweep_timebase(
                    t,
                    info.window_len,
                    dt_ms,
                    info.timebase.start_offset as f64 * dt_ms,
                );
            }
        }
        self.since = vec![Since::default(); engine.trace_count()];
        // The same traces after a device restart keep their references too (where the time base still fits).
        for (t, r) in self.references.iter().enumerate() {
            if r.is_some() {
                engine.set_reference(t, r.clone());
            }
        }
        if let Some(scope) = self.scope.as_mut() {
            let mut stream_channel = vec![None; engine.stream_count()];
            for info in (0..engine.trace_count()).filter_map(|t| engine.trace_info(t)) {
                let owned = stream_channel.contains(&Some(info.device_channel));
                if let Some(slot) = stream_channel.get_mut(info.stream)
                    && slot.is_none()
                    && !owned
                {
                    *slot = Some(info.device_channel);
                }
            }
            scope.reset(d, stream_channel);
        }
        tracing::info!(traces = engine.trace_count(), "DSP engine ready");
        self.engine = Some(engine);
        Ok(())
    }

    fn push_engine(&mut self, item: &Acquired) {
        let mut rejected = None;
        self.with_engine(|engine, sink| rejected = engine.push(item, sink).err());
        if let Some(e) = rejected {
            // Counted always, logged once: a source that keeps sending blocks the engine cannot take would
            // otherwise fill the log.
            self.input_rejected += 1;
            if self.input_rejected == 1 {
                tracing::warn!(error = %e, "DSP input rejected (later rejections are counted, not logged)");
            }
        }
    }

    /// Lets the engine emit every sweep whose data is complete (live, when the ring is empty).
    pub(crate) fn flush_ready(&mut self) {
        if !self.config.flush_when_idle {
            return;
        }
        self.with_engine(|engine, sink| engine.flush_ready(sink));
    }

    fn with_engine(&mut self, f: impl FnOnce(&mut Engine, &mut Sink<'_>)) {
        let (Some(engine), Some(monitor)) = (self.engine.as_mut(), self.monitor.as_mut()) else {
            return;
        };
        let mut sink = Sink {
            monitor,
            events: &mut self.events,
            counters: &mut self.counters,
            since: &mut self.since,
            baselines_taken: &mut self.baselines_taken,
            recent: &mut self.recent,
            fs: self.fs,
            offset_s: self.session_offset_s,
            waveforms: self.config.waveforms,
            scope: self.scope.as_mut(),
        };
        f(engine, &mut sink);
        for (t, reference) in self.baselines_taken.drain(..) {
            // The baseline becomes the reference that keeps peak picking on the right peaks.
            let reference = reference.or_else(|| engine.reference_from_latest(t));
            if let Some(slot) = self.references.get_mut(t) {
                slot.clone_from(&reference);
            }
            engine.set_reference(t, reference);
        }
    }

    /// Applies a user command.
    pub(crate) fn command(&mut self, cmd: Command) {
        let stream_s = self.stream_s;
        let Some(m) = self.monitor.as_mut() else {
            tracing::warn!(?cmd, "command ignored: no device yet");
            return;
        };
        match cmd {
            Command::Baseline { trace } => {
                let idx = trace
                    .as_ref()
                    .and_then(|n| self.trace_names.iter().position(|x| x == n));
                if trace.is_some() && idx.is_none() {
                    tracing::warn!(?trace, "re-baseline: no such trace");
                    return;
                }
                m.request_baseline(idx);
            }
            Command::Acknowledge { id } => {
                if !m.acknowledge(id, stream_s, &mut self.events) {
                    tracing::warn!(id, "acknowledge: no such active alarm");
                }
            }
            Command::Marker { kind, text } => m.marker(&kind, &text, stream_s, &mut self.events),
            Command::Correction {
                trace,
                sequence,
                peak,
                latency_ms,
                amplitude_uv,
            } => {
                self.events.push(Event::Correction(CorrectionEvent {
                    stream_s,
                    trace,
                    sequence,
                    peak,
                    latency_ms,
                    amplitude_uv,
                }));
            }
        }
    }

    /// Flushes the engine at the end of the stream and adds the final stats record.
    pub(crate) fn finish(&mut self, stats: &PipelineStats, ingest: &IngestStats) {
        self.with_engine(|engine, sink| engine.finish(sink));
        let i = ingest.snapshot();
        let link = LinkTotals {
            bytes: i.bytes,
            frames: i.frames,
            crc_errors: i.crc_errors,
            bytes_discarded: i.bytes_discarded,
            frames_lost: i.frames_lost,
            frames_rejected: i.frames_rejected,
            overruns: i.overruns,
            reconnects: i.reconnects,
            signal_lost: i.signal_lost,
        };
        let s = self.stats_event(stats, true, Some(link));
        self.events.push(Event::Stats(s));
    }

    /// Closes the recording (after the last events were handed to it).
    pub(crate) fn close_recorder(&mut self) {
        if let Some(r) = self.recorder.take() {
            match r.finish() {
                Ok(summary) => tracing::info!(?summary, "recording closed"),
                Err(e) => tracing::error!(error = %e, "the recording could not be closed cleanly"),
            }
        }
    }

    fn stats_event(&mut self, stats: &PipelineStats, is_final: bool, link: Option<LinkTotals>) -> StatsEvent {
        let p = stats.snapshot();
        let mut evidence = Vec::new();
        if let Some(m) = self.monitor.as_mut() {
            m.evidence(&mut evidence);
        }
        StatsEvent {
            stream_s: self.stream_s,
            is_final,
            samples: p.samples,
            stimuli: p.stimuli,
            gaps: self.counters.gaps,
            gap_samples: self.counters.gap_samples,
            link,
            discontinuities: p.discontinuities,
            sweeps_accepted: self.counters.sweeps_accepted,
            sweeps_rejected: self.counters.sweeps_rejected,
            sweeps_dropped: self.counters.sweeps_dropped,
            averages: self.counters.averages,
            alarms_raised: self.monitor.as_ref().map_or(0, Monitor::alarms_raised),
            evidence,
        }
    }

    /// Sends the events gathered so far.
    pub(crate) fn publish(&mut self, tx: &mpsc::Sender<PipelineEvent>) {
        for e in self.events.drain(..) {
            if let Some(r) = self.recorder.as_mut() {
                r.try_send_event(&e);
            }
            // The receiver may be gone (shutting down); processing goes on regardless.
            let _ = tx.send(PipelineEvent::Event(e));
        }
    }
}

/// Receives the engine's output on the processing thread.
struct Sink<'a> {
    monitor: &'a mut Monitor,
    events: &'a mut Vec<Event>,
    counters: &'a mut Counters,
    since: &'a mut Vec<Since>,
    baselines_taken: &'a mut Vec<(usize, Option<Reference>)>,
    recent: &'a mut RecentAverages,
    fs: f64,
    offset_s: f64,
    waveforms: bool,
    scope: Option<&'a mut crate::scope::ScopeWriter>,
}

fn waveform_of(a: &AverageView<'_>) -> Waveform {
    waveform(a.info.timebase, a.mean)
}

fn waveform(tb: ionm_dsp::measure::Timebase, values: &[f64]) -> Waveform {
    Waveform {
        t0_ms: tb.start_offset as f64 * 1000.0 / tb.sample_rate_hz,
        dt_ms: 1000.0 / tb.sample_rate_hz,
        values_uv: values.iter().map(|&v| v as f32).collect(),
    }
}

/// The latest averages' waveforms of every trace (ring buffers allocated when the engine is built), so that a
/// baseline made of several averages can be measured again the way later averages will be measured against it
/// ([`ionm_dsp::measure_baseline`]).
#[derive(Debug, Default)]
struct RecentAverages {
    traces: Vec<Recent>,
}

#[derive(Debug)]
struct Recent {
    /// (stream time of the average, its waveform), a ring.
    slots: Vec<(f64, Vec<f64>)>,
    next: usize,
}

impl RecentAverages {
    /// Room for the latest `keep` averages of traces with these window lengths.
    fn new(keep: usize, window_lens: &[usize]) -> Self {
        let traces = window_lens
            .iter()
            .map(|&len| Recent {
                slots: vec![(f64::NAN, vec![0.0; len]); keep.max(1)],
                next: 0,
            })
            .collect();
        Self { traces }
    }

    /// Keeps trace `t`'s average of `stream_s` (no allocation).
    fn store(&mut self, t: usize, stream_s: f64, mean: &[f64]) {
        let Some(r) = self.traces.get_mut(t) else {
            return;
        };
        let n = r.slots.len();
        let slot = &mut r.slots[r.next];
        if slot.1.len() == mean.len() {
            slot.0 = stream_s;
            slot.1.copy_from_slice(mean);
            r.next = (r.next + 1) % n;
        }
    }

    /// The baseline made of `from` (the latest is `a`), measured from the kept waveforms, and its reference;
    /// when a waveform is no longer kept, the averages' own numbers and the latest average as the reference.
    fn measure_baseline(
        &self,
        a: &AverageView<'_>,
        from: &[AverageInput],
        waveforms: bool,
    ) -> (BaselineMeasure, Option<Reference>) {
        let kept: Vec<&[f64]> = self.traces.get(a.trace).map_or_else(Vec::new, |r| {
            from.iter()
                .filter_map(|x| r.slots.iter().find(|s| s.0 == x.stream_s).map(|s| s.1.as_slice()))
                .collect()
        });
        let measured = (!from.is_empty() && kept.len() == from.len())
            .then(|| ionm_dsp::measure_baseline(&kept, a.info.timebase, &a.info.measure))
            .flatten();
        match measured {
            Some(b) => (
                BaselineMeasure {
                    waveform: waveforms.then(|| waveform(a.info.timebase, &b.reference.template)),
                    amplitude_uv: b.amplitude_uv,
                    latency_ms: b.latency_ms,
                },
                Some(b.reference),
            ),
            None => (
                BaselineMeasure {
                    waveform: waveforms.then(|| waveform_of(a)),
                    ..BaselineMeasure::default()
                },
                None,
            ),
        }
    }
}

impl DspSink for Sink<'_> {
    // Only the scope reads the filtered stream; without it the engine filters just the blocks sweeps need.
    fn wants_filtered(&self) -> bool {
        self.scope.is_some()
    }

    fn filtered(&mut self, stream: usize, _first_index: ionm_core::SampleIndex, data: &[f32]) {
        if let Some(s) = self.scope.as_mut() {
            s.filtered(stream, data);
        }
    }

    fn sweep(&mut self, s: &SweepView<'_>) {
        let rejected = match s.verdict {
            Verdict::Accepted => {
                self.counters.sweeps_accepted += 1;
                None
            }
            Verdict::Rejected(r) => {
                self.counters.sweeps_rejected += 1;
                Some(r == RejectReason::Flat)
            }
        };
        let stream_s = self.offset_s + s.stimulus.sample_index as f64 / self.fs;
        self.monitor.on_sweep(s.trace, rejected, stream_s, self.events);
        if rejected.is_none() {
            // Single-sweep detectors (sequential): accepted sweeps only; the monitor skips suspended traces.
            self.monitor.on_sweep_data(s.trace, s.data, stream_s, self.events);
        }
    }

    fn dropped(&mut self, _trace: usize, _stimulus: &ionm_core::StimulusEvent, _reason: DropReason) {
        self.counters.sweeps_dropped += 1;
    }

    fn average(&mut self, a: &AverageView<'_>) {
        self.counters.averages += 1;
        let stream_s = self.offset_s + a.last_stimulus as f64 / self.fs;
        let m = a.measurement;
        let input = AverageInput {
            trace: a.trace,
            stream_s,
            sweeps: u64::from(a.stats.sweeps),
            amplitude_uv: m.primary_amplitude_uv,
            latency_ms: m.primary_latency_ms,
            fsp: a.stats.fsp,
            residual_noise_uv: a.stats.residual_noise_uv,
        };
        let mut caused = Vec::new();
        let waveforms = self.waveforms;
        self.recent.store(a.trace, stream_s, a.mean);
        let (recent, taken) = (&*self.recent, &mut *self.baselines_taken);
        let assessment = self.monitor.on_average_with(
            &input,
            |from| {
                let (measured, reference) = recent.measure_baseline(a, from, waveforms);
                taken.push((a.trace, reference));
                measured
            },
            &mut caused,
        );
        let since = &mut self.since[a.trace];
        let (rejected, dropped) = (a.counts.rejected(), a.counts.dropped());
        let peaks = a
            .info
            .measure
            .peaks
            .iter()
            .zip(&m.peaks)
            .map(|(spec, p)| PeakValue {
                name: spec.name.clone(),
                latency_ms: p.map(|p| p.latency_ms),
                amplitude_uv: p.map(|p| p.value_uv - m.baseline_uv),
            })
            .collect();
        self.events.push(Event::Average(AverageEvent {
            stream_s,
            trace: a.info.name.clone(),
            channel: a.info.label.clone(),
            stimulator: a.info.stimulator,
            modality: a.info.modality.name().to_owned(),
            sequence: a.sequence,
            sweeps: u64::from(a.stats.sweeps),
            rejected: rejected - since.rejected,
            dropped: dropped - since.dropped,
            peaks,
            amplitude_uv: m.primary_amplitude_uv,
            latency_ms: m.primary_latency_ms,
            amplitude_ratio: assessment.amplitude_ratio,
            latency_ratio: assessment.latency_ratio,
            fsp: a.stats.fsp,
            residual_noise_uv: a.stats.residual_noise_uv,
            suspended: assessment.suspended,
            waveform: self.waveforms.then(|| waveform_of(a)),
        }));
        *since = Since { rejected, dropped };
        self.events.append(&mut caused);
    }
}
