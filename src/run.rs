//! The run loop behind `ionm live`, `ionm demo` and `ionm replay`.

use crate::RunArgs;
use crate::events::EventSink;
use anyhow::{Context, Result, bail};
use firmware_sim::transmit::{SimReader, Speed, Transmitter};
use firmware_sim::{Scenario, SimConfig, Simulator};
use ionm_core::events::{AlarmClass, AlarmState, Event};
use ionm_dsp::Protocol;
use ionm_io::{ByteSource, IngestSnapshot, ItemSource, ReaderConfig, ReaderSource, ReplaySpeed};
use ionm_pipeline::{Pipeline, PipelineConfig, PipelineEvent, PipelineSnapshot};
use std::io::Write;
use std::time::{Duration, Instant};

/// Built-in protocols besides the DSP presets.
const SIM_DEFAULT: &str = include_str!("../protocols/sim-default.toml");

/// Where the data comes from.
pub enum Input {
    /// A byte stream (device, simulator).
    Live {
        /// The source.
        source: Box<dyn ByteSource>,
        /// Wait for room in the ring instead of dropping (simulator faster than real time).
        lossless: bool,
        /// The source runs as fast as it is read (a simulator at max speed): the run is over in moments.
        max_speed: bool,
    },
    /// A recording or capture.
    Replay {
        /// The source.
        source: Box<dyn ItemSource>,
        /// Speed.
        speed: ReplaySpeed,
    },
}

/// Loads a protocol by preset name or file.
pub fn load_protocol(name: &str) -> Result<Protocol> {
    if name == "sim-default" {
        return Protocol::from_toml_str(SIM_DEFAULT).context("the built-in sim-default protocol");
    }
    if let Some(p) = Protocol::preset(name) {
        return Ok(p);
    }
    let path = std::path::Path::new(name);
    if !path.exists() {
        bail!("{name:?} is neither a built-in protocol (see `ionm protocols`) nor a file");
    }
    Protocol::from_file(path).with_context(|| format!("in protocol file {name}"))
}

/// The TOML of a protocol, for the recording's sidecar.
fn protocol_text(name: &str) -> String {
    match name {
        "sim-default" => SIM_DEFAULT.to_owned(),
        n => Protocol::preset_text(n)
            .map(str::to_owned)
            .or_else(|| std::fs::read_to_string(n).ok())
            .unwrap_or_else(|| n.to_owned()),
    }
}

/// `ionm protocols [NAME]`.
pub fn protocols(name: Option<&str>) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let names = ["sim-default", "ssep-upper", "ssep-lower", "mep", "baep"];
    match name {
        None => {
            for n in names {
                writeln!(out, "{n}")?;
            }
        }
        Some("sim-default") => write!(out, "{SIM_DEFAULT}")?,
        Some(n) => match Protocol::preset_text(n) {
            Some(t) => write!(out, "{t}")?,
            None => bail!("no built-in protocol {n:?} (known: {})", names.join(", ")),
        },
    }
    Ok(())
}

/// The in-process simulator as a byte source, so that `ionm demo` exercises the same decoder as a device.
pub fn demo_source(
    scenario: &str,
    channels: usize,
    rate: u32,
    seed: u64,
    speed: Speed,
    seconds: Option<f64>,
) -> Result<Box<dyn ByteSource>> {
    let mut scenario = match Scenario::builtin(scenario) {
        Some(s) => s,
        None => {
            let text = std::fs::read_to_string(scenario).with_context(|| {
                format!("{scenario:?} is neither a built-in scenario nor a readable file")
            })?;
            Scenario::from_toml(&text).with_context(|| format!("in scenario file {scenario}"))?
        }
    };
    if let Some(s) = seconds {
        scenario.set_duration_s(Some(s));
    }
    let name = format!("simulator ({})", scenario.name());
    let mut sim = Simulator::new(SimConfig {
        channels,
        sample_rate_hz: rate,
        seed,
        mains_hz: 50.0,
        scenario,
    })
    .context("cannot configure the simulator")?;
    // Nobody reads the truth in a demo: keep memory flat on long runs.
    sim.set_record_sweeps(false);
    Ok(Box::new(ReaderSource::new(
        name,
        SimReader::new(Transmitter::new(sim), speed),
    )))
}

/// `ionm ports`.
pub fn ports() -> Result<()> {
    let ports = ionm_io::list_ports()?;
    let mut out = std::io::stdout().lock();
    if ports.is_empty() {
        writeln!(out, "no serial ports found")?;
    }
    for (path, kind) in ports {
        writeln!(out, "{path}\t{kind}")?;
    }
    Ok(())
}

struct Terminal {
    out: Box<dyn Write>,
}

impl Terminal {
    fn line(&mut self, s: std::fmt::Arguments<'_>) {
        // The terminal is best effort: a closed pipe must not stop acquisition.
        let _ = self.out.write_fmt(s);
        let _ = self.out.write_all(b"\n");
        let _ = self.out.flush();
    }
}

fn clock(stream_s: f64) -> String {
    let s = stream_s.max(0.0);
    format!(
        "{:02}:{:02}:{:04.1}",
        (s / 3600.0) as u64,
        ((s / 60.0) as u64) % 60,
        s % 60.0
    )
}

fn stats_line(wall: f64, i: &IngestSnapshot, p: &PipelineSnapshot, per_s: u64) -> String {
    let stream = if p.sample_rate_hz == 0 {
        0.0
    } else {
        p.stream_index as f64 / p.sample_rate_hz as f64
    };
    format!(
        "t={wall:7.1}s stream={stream:8.2}s frames={} samples={} ({per_s}/s) stimuli={} gaps={} ({} samples) crc={} \
         discarded={}B lost_frames={} rejected={} overruns={} queue={} (max {}) decode={}µs (max {}µs){}",
        i.frames,
        p.samples,
        p.stimuli,
        p.gaps,
        i.gap_samples,
        i.crc_errors,
        i.bytes_discarded,
        i.frames_lost,
        i.frames_rejected,
        i.overruns,
        p.queue_depth,
        p.queue_depth_max,
        i.decode_latency_ns / 1000,
        i.decode_latency_max_ns / 1000,
        if i.connected { "" } else { " DISCONNECTED" },
    )
}

/// One terminal line for the events a person must see: alarms, baselines, gaps, link changes, markers.
pub(crate) fn describe(e: &Event) -> Option<String> {
    let t = clock(e.stream_s());
    Some(match e {
        Event::Alarm(a) => {
            let class = match (a.class, a.state) {
                (AlarmClass::Clinical, AlarmState::Raised) => "CLINICAL ALARM",
                (AlarmClass::Technical, AlarmState::Raised) => "technical alarm",
                (AlarmClass::Clinical, _) => "clinical alarm",
                (AlarmClass::Technical, _) => "technical alarm",
            };
            format!("[{t}] {class} #{}: {}", a.id, a.message)
        }
        Event::Baseline(b) => format!(
            "[{t}] baseline #{} ({:?}) {}: {} µV at {} ms, {} sweeps, Fsp {}",
            b.number,
            b.origin,
            b.trace,
            b.amplitude_uv.map_or("-".into(), |v| format!("{v:.2}")),
            b.latency_ms.map_or("-".into(), |v| format!("{v:.2}")),
            b.sweeps,
            b.fsp.map_or("-".into(), |v| format!("{v:.1}"))
        ),
        Event::Gap { gap, .. } => format!(
            "[{t}] gap: samples {}..{} ({} samples, {} frames, {:?})",
            gap.from,
            gap.to,
            gap.samples(),
            gap.frames,
            gap.cause
        ),
        Event::Link { link, .. } => {
            format!("[{t}] link: {}", serde_json::to_string(link).unwrap_or_default())
        }
        Event::Device { device, .. } => format!(
            "[{t}] device: {} channels at {} Hz, firmware {:?}, session {}",
            device.n_channels(),
            device.sample_rate_hz,
            device.firmware_version,
            device.session_id
        ),
        Event::Marker(m) => format!("[{t}] marker {}: {}", m.kind, m.text),
        _ => return None,
    })
}

/// The run shows the dashboard: not `--headless`, and a display to show it on.
fn shows_dashboard(args: &RunArgs) -> bool {
    !args.headless && ionm_dashboard::display_available()
}

/// Something besides the DSP engine reads the samples of every channel: the dashboard's live view or the
/// recorder. When nothing does, a replay need decode only the protocol's channels ([`replay_source`]).
pub fn reads_every_channel(args: &RunArgs) -> bool {
    args.record.is_some() || shows_dashboard(args)
}

/// Runs the pipeline until the input ends, `--duration` passes, or Ctrl-C.
pub fn run(input: Input, args: &RunArgs) -> Result<()> {
    let protocol = load_protocol(&args.protocol)?;
    let mut sink = args
        .events
        .as_deref()
        .map(|p| EventSink::open(p, args.events_waveforms))
        .transpose()?;
    let to_stdout = args
        .events
        .as_deref()
        .is_some_and(|p| p == std::path::Path::new("-"));
    let mut term = Terminal {
        out: if to_stdout {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        },
    };
    let gui = shows_dashboard(args);
    if !args.headless && !gui {
        let _ = writeln!(
            std::io::stderr(),
            "ionm: no display (DISPLAY/WAYLAND_DISPLAY unset): running headless"
        );
    }
    let mut config = PipelineConfig::new(protocol);
    if let Some(path) = &args.record {
        let rc = ionm_record::RecorderConfig {
            protocol: Some(protocol_text(&args.protocol)),
            ..Default::default()
        };
        config.record = Some((path.clone(), rc));
    }
    // The dashboard draws the averages; `--events-waveforms` keeps them in the events file (headless too).
    config.waveforms = gui || (args.events.is_some() && args.events_waveforms);
    config.scope = gui;
    let source_name = match &input {
        Input::Live { source, .. } => source.describe(),
        Input::Replay { source, .. } => format!("replay {}", source.describe()),
    };
    // How often the terminal loop drains the pipeline's events. A run as fast as possible (a replay or a
    // simulator at max speed) is over in a fraction of a second, and noticing its end up to 20 ms late
    // was a fifth of a short replay's wall time; waking every millisecond costs ≈ 0.1% of a core.
    let as_fast_as_possible = match &input {
        Input::Live { max_speed, .. } => *max_speed,
        Input::Replay { speed, .. } => matches!(speed, ReplaySpeed::Max),
    };
    let poll_every = Duration::from_millis(if as_fast_as_possible { 1 } else { 20 });
    let (pipeline, progress) = match input {
        Input::Live { source, lossless, .. } => {
            let reader = ReaderConfig {
                lossless,
                ..Default::default()
            };
            (
                Pipeline::start(source, reader, config).context("cannot start the pipeline")?,
                None,
            )
        }
        Input::Replay { source, speed } => {
            let duration = source.duration_s();
            let p = Pipeline::replay(source, speed, config).context("cannot start the replay")?;
            let bar = match duration {
                Some(d) => indicatif::ProgressBar::new((d * 10.0) as u64),
                None => indicatif::ProgressBar::new_spinner(),
            };
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            (p, Some(bar))
        }
    };
    if gui {
        if let Some(bar) = &progress {
            bar.finish_and_clear();
        }
        let source = crate::gui::PipelineSource::new(
            pipeline,
            sink,
            args.protocol.clone(),
            source_name,
            args.record.clone(),
        );
        let app = ionm_dashboard::DashboardApp::new(
            Box::new(source),
            std::sync::Arc::new(ionm_dashboard::SystemClock::new()),
        );
        // Dropping the app (window closed) stops the pipeline and writes its last events.
        return ionm_dashboard::run_native(app, "ionm").context("the dashboard");
    }
    let started = Instant::now();
    let deadline = args
        .duration
        .map(|d| started + Duration::from_secs_f64(d.max(0.0)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut prev_samples = 0;
    let mut fatal = None;
    rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let mut poll = tokio::time::interval(poll_every);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        loop {
            tokio::select! {
                _ = &mut ctrl_c => {
                    tracing::info!("interrupted");
                    break;
                }
                _ = tick.tick(), if progress.is_none() && !args.quiet => {
                    let wall = started.elapsed().as_secs_f64();
                    let i = pipeline.ingest().snapshot_and_reset_max();
                    let p = pipeline.stats().snapshot();
                    term.line(format_args!("{}", stats_line(wall, &i, &p, p.samples - prev_samples)));
                    prev_samples = p.samples;
                }
                _ = poll.tick() => {
                    let mut done = false;
                    for ev in pipeline.events().try_iter() {
                        match ev {
                            PipelineEvent::Event(e) => {
                                if let Some(s) = sink.as_mut() {
                                    s.write(&e)?;
                                }
                                if let Some(line) = describe(&e) {
                                    match &progress {
                                        Some(bar) => bar.println(line),
                                        None => term.line(format_args!("{line}")),
                                    }
                                }
                            }
                            PipelineEvent::Fatal(msg) => fatal = Some(msg),
                            PipelineEvent::Finished => done = true,
                        }
                    }
                    if let (Some(bar), Some(ctl)) = (&progress, pipeline.replay_control()) {
                        let pos = ctl.position_s();
                        bar.set_position((pos * 10.0) as u64);
                        let rt_factor = pos / started.elapsed().as_secs_f64().max(1e-3);
                        bar.set_message(format!("{} stream, {rt_factor:.0}× real time", clock(pos)));
                    }
                    if done || deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                }
            }
        }
        anyhow::Ok(())
    })?;
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let wall = started.elapsed().as_secs_f64();
    let ingest = pipeline.ingest().clone();
    let stats = pipeline.stats().clone();
    // Stop the source, let the processing thread drain and finish, then publish what is left.
    let rx_events = pipeline.stop();
    for ev in rx_events {
        match ev {
            PipelineEvent::Event(e) => {
                if let Some(s) = sink.as_mut() {
                    s.write(&e)?;
                }
                if let Some(line) = describe(&e) {
                    term.line(format_args!("{line}"));
                }
            }
            PipelineEvent::Fatal(msg) => fatal = Some(msg),
            PipelineEvent::Finished => {}
        }
    }
    let i = ingest.snapshot();
    let p = stats.snapshot();
    let mean = if wall > 0.0 {
        (p.samples as f64 / wall) as u64
    } else {
        0
    };
    term.line(format_args!("summary: {}", stats_line(wall, &i, &p, mean)));
    if p.sample_rate_hz > 0 && wall > 0.0 {
        let stream = p.stream_index as f64 / p.sample_rate_hz as f64;
        let busy = p.process_ns_total as f64 * 1e-9;
        term.line(format_args!(
            "summary: {stream:.1} s of signal in {wall:.2} s ({:.1}× real time); processing thread busy {busy:.2} s \
             ({:.2}% of one core per second of signal)",
            stream / wall,
            100.0 * busy / stream.max(1e-9)
        ));
    }
    if let Some(msg) = fatal {
        bail!("{msg}");
    }
    Ok(())
}

/// ionm-record's replay as an item source for the pipeline.
struct RecordingSource {
    name: String,
    inner: ionm_record::ReplaySource,
    ended: bool,
}

impl ItemSource for RecordingSource {
    fn describe(&self) -> String {
        self.name.clone()
    }
    fn next_item(&mut self) -> Result<Option<ionm_core::Acquired>, String> {
        if self.ended {
            return Ok(None);
        }
        let item = self.inner.next_item().map_err(|e| e.to_string())?;
        self.ended = item.is_none();
        Ok(item)
    }
    fn next_into(&mut self, slot: &mut ionm_core::Acquired) -> Result<bool, String> {
        if self.ended {
            return Ok(false);
        }
        let more = self.inner.next_into(slot).map_err(|e| e.to_string())?;
        self.ended = !more;
        Ok(more)
    }
    fn duration_s(&self) -> Option<f64> {
        Some(self.inner.end_s())
    }
    fn seek(&mut self, stream_s: f64) -> Result<(), String> {
        self.inner.seek(stream_s);
        self.ended = false;
        Ok(())
    }
}

fn is_edf(path: &std::path::Path) -> bool {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    matches!(ext.as_deref(), Some("edf" | "bdf" | "rec"))
}

/// The source for `ionm replay FILE`: EDF/BDF through ionm-record, anything else as a wire capture.
///
/// With `only_for`, an EDF/BDF replay decodes only the channels that protocol uses (the others' bytes are not
/// read; their block slots are marked as not decoded): for runs where the DSP engine alone reads samples (see
/// [`reads_every_channel`]). A protocol that does not fit the file changes nothing here (the engine will say
/// why).
pub fn replay_source(
    file: &std::path::Path,
    trigger: &str,
    stim_annotations: &[String],
    channels: Option<Vec<String>>,
    only_for: Option<&Protocol>,
) -> Result<Box<dyn ItemSource>> {
    let name = file.display().to_string();
    if !is_edf(file) {
        let f = std::fs::File::open(file).with_context(|| format!("cannot open {name}"))?;
        return Ok(Box::new(ionm_io::CaptureSource::new(
            name,
            std::io::BufReader::new(f),
        )));
    }
    let mut rules = Vec::new();
    for rule in stim_annotations {
        let Some((text, stim)) = rule.rsplit_once('=') else {
            bail!("--stim-annotation {rule:?}: expected TEXT=STIMULATOR, e.g. \"Stim L=left_median\"");
        };
        let stimulator = ionm_core::Stimulator::from_name(stim.trim()).with_context(|| {
            format!("--stim-annotation {rule:?}: unknown stimulator {stim:?} (e.g. left_median, right_tibial, tes)")
        })?;
        rules.push(ionm_record::AnnotationRule {
            pattern: text.to_owned(),
            kind: ionm_record::MatchKind::Prefix,
            stimulator,
            intensity_tenths: 0,
            pulse_width_us: 0,
            pulses: 1,
        });
    }
    let config = ionm_record::ReplayConfig {
        channels,
        trigger_label: Some(trigger.to_owned()),
        annotation_rules: rules,
        ..Default::default()
    };
    let mut inner =
        ionm_record::ReplaySource::open(file, &config).with_context(|| format!("cannot replay {name}"))?;
    if let Some(protocol) = only_for {
        match protocol.device_channels(inner.device()) {
            Ok(used) => {
                inner
                    .decode_only(used)
                    .with_context(|| format!("cannot replay {name}"))?;
                tracing::debug!(
                    channels = format_args!("{used:#x}"),
                    "replay decodes the channels the protocol uses"
                );
            }
            Err(e) => tracing::debug!(error = %e, "replay decodes every channel"),
        }
    }
    Ok(Box::new(RecordingSource {
        name,
        inner,
        ended: false,
    }))
}

/// `ionm info FILE`.
pub fn info(file: &std::path::Path, json: bool, max_annotations: usize) -> Result<()> {
    let mut r = ionm_edf::EdfReader::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let h = r.header().clone();
    let records = r.num_records();
    let annotations = r
        .annotations()
        .with_context(|| format!("annotations of {}", file.display()))?;
    let stimuli = annotations.iter().filter(|a| a.text.starts_with("stim ")).count();
    let trigger = h
        .signals
        .iter()
        .position(|s| s.label.trim() == ionm_record::TRIGGER_LABEL);
    let trigger_stimuli = match trigger {
        Some(t) => Some(r.read_signal_digital(t)?.iter().filter(|&&v| v != 0).count()),
        None => None,
    };
    let signals: Vec<serde_json::Value> = h
        .signals
        .iter()
        .map(|s| {
            serde_json::json!({
                "label": s.label.trim(),
                "annotation": s.is_annotation(),
                "rate_hz": if h.record_duration > 0.0 { s.samples_per_record as f64 / h.record_duration } else { 0.0 },
                "unit": s.physical_dimension.trim(),
                "physical_min": s.physical_min, "physical_max": s.physical_max,
                "digital_min": s.digital_min, "digital_max": s.digital_max,
                "samples": s.samples_per_record as u64 * records,
                "transducer": s.transducer.trim(), "prefiltering": s.prefiltering.trim(),
            })
        })
        .collect();
    let first: Vec<serde_json::Value> = annotations
        .iter()
        .take(max_annotations)
        .map(|a| serde_json::json!({"onset": a.onset, "duration": a.duration, "text": a.text}))
        .collect();
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "file": file.display().to_string(),
            "format": format!("{:?}", h.format), "variant": format!("{:?}", h.variant),
            "patient": h.patient.trim(), "recording": h.recording.trim(), "start": format!("{:?}", h.start),
            "records": records, "declared_records": h.declared_records, "record_duration_s": h.record_duration,
            "duration_s": records as f64 * h.record_duration,
            "signals": signals,
            "annotations": { "count": annotations.len(), "stimulus_annotations": stimuli,
                             "trigger_stimuli": trigger_stimuli, "first": first },
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    writeln!(out, "{}: {:?} {:?}", file.display(), h.format, h.variant)?;
    writeln!(out, "patient:   {}", h.patient.trim())?;
    writeln!(out, "recording: {}", h.recording.trim())?;
    writeln!(out, "start:     {:?}", h.start)?;
    writeln!(
        out,
        "records:   {records} × {} s = {:.3} s (header says {})",
        h.record_duration,
        records as f64 * h.record_duration,
        h.declared_records
    )?;
    writeln!(out, "signals:")?;
    for s in &signals {
        writeln!(
            out,
            "  {:<18} {:>9.3} Hz  {:<4} phys [{}, {}]  dig [{}, {}]  {} samples{}",
            s["label"].as_str().unwrap_or(""),
            s["rate_hz"].as_f64().unwrap_or(0.0),
            s["unit"].as_str().unwrap_or(""),
            s["physical_min"],
            s["physical_max"],
            s["digital_min"],
            s["digital_max"],
            s["samples"],
            if s["annotation"] == true {
                "  (annotations)"
            } else {
                ""
            }
        )?;
    }
    writeln!(
        out,
        "annotations: {} ({} stimulus annotations{})",
        annotations.len(),
        stimuli,
        trigger_stimuli.map_or(String::new(), |n| format!(", {n} stimuli on the trigger channel"))
    )?;
    for a in annotations.iter().take(max_annotations) {
        writeln!(out, "  {:>10.4} s  {:?}  {}", a.onset, a.duration, a.text)?;
    }
    Ok(())
}

/// `ionm export EVENTS`: one CSV row per average.
pub fn export(events: &std::path::Path, out: Option<&std::path::Path>) -> Result<()> {
    use std::io::BufRead;
    let f = std::fs::File::open(events).with_context(|| format!("cannot open {}", events.display()))?;
    let mut w: Box<dyn Write> = match out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    writeln!(
        w,
        "stream_s,trace,channel,stimulator,modality,sequence,sweeps,rejected,amplitude_uv,latency_ms,\
         amplitude_ratio,latency_ratio,fsp,residual_noise_uv,suspended"
    )?;
    let num = |v: &serde_json::Value| v.as_f64().map_or(String::new(), |x| format!("{x}"));
    let text = |v: &serde_json::Value| {
        let s = v.as_str().unwrap_or("");
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let e: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{} line {}: not a JSON object", events.display(), n + 1))?;
        if e["type"] != "average" {
            continue;
        }
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            num(&e["stream_s"]),
            text(&e["trace"]),
            text(&e["channel"]),
            text(&e["stimulator"]),
            text(&e["modality"]),
            num(&e["sequence"]),
            num(&e["sweeps"]),
            num(&e["rejected"]),
            num(&e["amplitude_uv"]),
            num(&e["latency_ms"]),
            num(&e["amplitude_ratio"]),
            num(&e["latency_ratio"]),
            num(&e["fsp"]),
            num(&e["residual_noise_uv"]),
            text(&e["suspended"]),
        )?;
    }
    w.flush()?;
    Ok(())
}
