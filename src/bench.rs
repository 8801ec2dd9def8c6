//! `ionm bench`: the whole pipeline on the in-process simulator.
//!
//! Two phases, both through the same decoder, ring, DSP engine and monitor as `ionm demo`:
//!
//! 1. **Throughput** (`--seconds` of simulated signal at max speed, lossless ring): real-time factor, sample
//!    instants per second, CPU per thread (from `/proc/self/task/*/stat`, clock ticks of 10 ms), time inside
//!    the simulator (generation + encoding, wall time inside `read` on the acquisition thread), the processing
//!    thread's busy time (`PipelineStats::process_ns_total`: checker, DSP, monitor, events), resident memory
//!    over the run (`VmRSS` samples, `VmHWM` peak) and dropped data (overruns, gaps, lost frames, CRC errors,
//!    discontinuities: all must be 0; sweeps dropped within a filter length of the stream's start and end are
//!    reported apart, they are dropped by design). Decoding + assembly is timed separately on one thread over
//!    the first 10 s of the same simulated stream held in memory (the acquisition thread also runs the
//!    simulator, so its CPU time cannot be split), and scaled to the run's length.
//! 2. **Latency** (`--latency-seconds` of simulated signal paced in real time, ordinary lossy ring, sweeps
//!    flushed as soon as their data is in, as `ionm demo`): for every average event, the wall time from the
//!    moment the simulator released the last sample the average needs (the chunk holding it, by the pacer's
//!    clock) to the moment the event reached this thread. "Last sample needed" = last stimulus of the average +
//!    end of its sweep window + the zero-phase FIR's look-ahead (half its length), i.e. the latest input sample
//!    the filtered sweep depends on. The look-ahead and the window are reported beside the figures. The
//!    simulator releases ~20 ms chunks: the reference is the moment the chunk holding that sample was really
//!    handed to the reader (noted by the reader wrapper when `SimReader::released_end` moves on), not the
//!    pacer's schedule, so a late simulator does not count against ionm. The simulator announces stimuli 1 ms
//!    ahead (device-info revision 2), so the engine holds nothing back for late stimuli.

use anyhow::{Context, Result, bail};
use firmware_sim::montage::{Group, ResponseKind};
use firmware_sim::transmit::{SimReader, Speed, Transmitter};
use firmware_sim::{Scenario, SimConfig, Simulator};
use ionm_core::Stimulator;
use ionm_core::events::Event;
use ionm_dsp::{Engine, Protocol};
use ionm_io::{ReaderConfig, ReaderSource};
use ionm_pipeline::{Pipeline, PipelineConfig, PipelineEvent};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Options of `ionm bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Channels of the simulated device.
    #[arg(long, default_value_t = 16)]
    pub channels: usize,
    /// Sample rate in Hz.
    #[arg(long, default_value_t = 10_000)]
    pub rate: u32,
    /// Seconds of simulated signal for the max-speed (throughput, memory) phase.
    #[arg(long, default_value_t = 600.0)]
    pub seconds: f64,
    /// Seconds of simulated signal, paced in real time, for the latency phase (0 skips it).
    #[arg(long, default_value_t = 60.0)]
    pub latency_seconds: f64,
    /// Built-in scenario name or scenario TOML file.
    #[arg(long, default_value = "ssep-stable")]
    pub scenario: String,
    /// Protocol: `auto` (sim-default for 16 channels, otherwise one generated from the simulator's montage
    /// covering every channel), a built-in name, or a TOML file. Its channels must exist on the device.
    #[arg(long, default_value = "auto")]
    pub protocol: String,
    /// Seed of the simulator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Run the time-to-detection scenario suite instead (`src/suite.rs`; `--json` applies).
    #[arg(long)]
    pub suite: bool,
    /// Suite: one seed per scenario and a 1-hour stable case.
    #[arg(long, requires = "suite")]
    pub quick: bool,
    /// Suite: seeds per scenario (the stable case gets 2).
    #[arg(long, default_value_t = 3)]
    pub suite_seeds: usize,
    /// Suite: runs in parallel.
    #[arg(long, default_value_t = 2)]
    pub suite_threads: usize,
    /// Suite: added to every seed, so a run with an offset uses seeds the detectors were never tuned on
    /// (held-out; the tuned seeds are 100–102, 200–202, 300–301, 400–402, 500–502).
    #[arg(long, default_value_t = 0)]
    pub suite_seed_offset: u64,
    /// Suite: only the cases whose name contains one of these (comma-separated, e.g. `noisy,stable`).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub suite_cases: Vec<String>,
    /// Suite: the sequential detector's false-alarm target, hours per false alarm for a whole case (the
    /// protocol's `[sequential] false_alarm_hours`; default: the built-in protocol's, 80).
    #[arg(long, value_name = "HOURS")]
    pub suite_false_alarm_hours: Option<f64>,
    /// Suite: the sequential detector without its block floor (the CUSUM alone; the protocol's
    /// `[sequential] block_floor = false`), to see what the single-sweep evidence does by itself.
    #[arg(long)]
    pub suite_no_block_floor: bool,
    /// Suite: the sequential detector without its latency CUSUM (the protocol's `[sequential] latency_cusum =
    /// false`): latency shifts seen by the amplitude CUSUM only.
    #[arg(long)]
    pub suite_no_latency_cusum: bool,
    /// Suite: also write each run's events (JSON Lines) and truth (JSON) into this folder, for `ionm score`.
    #[arg(long, value_name = "DIR")]
    pub suite_out: Option<std::path::PathBuf>,
}

/// Linux clock ticks per second for `/proc/*/stat` times (USER_HZ, 100 on every mainstream architecture).
const CLK_TCK: f64 = 100.0;

/// The whole result, as printed with `--json`.
#[derive(Debug, Serialize)]
struct Report {
    channels: usize,
    rate_hz: u32,
    scenario: String,
    protocol: String,
    traces: usize,
    host: Host,
    throughput: Throughput,
    latency: Option<Latency>,
}

#[derive(Debug, Serialize)]
struct Host {
    nproc: usize,
    cpu: String,
}

#[derive(Debug, Serialize)]
struct Throughput {
    simulated_s: f64,
    wall_s: f64,
    realtime_factor: f64,
    sample_instants_per_s: f64,
    channel_samples_per_s: f64,
    /// CPU seconds per thread name (utime + stime, 10 ms ticks, read every 50 ms: approximate).
    thread_cpu_s: BTreeMap<String, f64>,
    /// Wall seconds inside the simulator's `read` (generation + wire encoding) on the acquisition thread.
    simulator_s: f64,
    /// Wire decoding + assembly into items for the whole run (timed over 10 s of the stream on one thread,
    /// scaled).
    decode_ingest_s: f64,
    /// Busy seconds of the processing thread (checker + DSP + monitor + events), `process_ns_total`.
    processing_s: f64,
    /// Share of decode/ingest and of processing in their sum.
    share_decode_ingest: f64,
    share_processing: f64,
    /// Processing busy time per second of signal, % of one core.
    processing_core_pct: f64,
    /// Resident memory samples (simulated s, KiB).
    rss_kib: Vec<(f64, u64)>,
    vm_hwm_kib: u64,
    averages: u64,
    alarms_raised: u64,
    dropped: Dropped,
}

#[derive(Debug, Serialize, Default)]
struct Dropped {
    overruns: u64,
    gaps: u64,
    gap_samples: u64,
    frames_lost: u64,
    crc_errors: u64,
    discontinuities: u64,
    /// Not counted in `total`: sweeps within a filter length of the stream's start or end (by design).
    edge_sweeps_dropped: u64,
    total: u64,
}

#[derive(Debug, Serialize)]
struct Latency {
    simulated_s: f64,
    averages: usize,
    /// From the release of the last needed sample to the event's arrival, ms.
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// The same from the release of the sweep window's last sample (without the FIR look-ahead), ms.
    from_window_end_p50_ms: f64,
    from_window_end_max_ms: f64,
    /// FIR look-ahead (half the kernel), ms, per modality (the largest).
    fir_lookahead_ms: BTreeMap<String, f64>,
    /// Simulator transport chunk, ms (samples are released in chunks of this length).
    chunk_ms: f64,
    /// The simulator declared the stimulus lead (device-info revision 2).
    stimulus_lead: bool,
    /// Samples the engine held back for late stimuli, ms (0 with the lead; `stimulus_lag_ms` + pre-blanking
    /// without).
    hold_ms: f64,
    /// Latest arrival of a chunk after its due time on the pacer's clock, ms (how late the simulator was).
    chunk_late_max_ms: f64,
    per_modality_p50_ms: BTreeMap<String, f64>,
    dropped: Dropped,
}

/// Counts wall time spent inside the simulator's `read`.
struct TimedRead {
    inner: SimReader,
    ns: Arc<AtomicU64>,
}

impl Read for TimedRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let t = Instant::now();
        let r = self.inner.read(buf);
        self.ns.fetch_add(t.elapsed().as_nanos() as u64, Relaxed);
        r
    }
}

/// The real-time simulator as the latency phase's byte source: notes when each chunk became readable.
struct ChunkClock {
    inner: SimReader,
    seen: u64,
    released: Arc<std::sync::Mutex<Vec<(u64, Instant)>>>,
}

impl Read for ChunkClock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let r = self.inner.read(buf);
        let end = self.inner.released_end();
        if end != self.seen {
            self.seen = end;
            if let Ok(mut v) = self.released.lock() {
                v.push((end, Instant::now()));
            }
        }
        r
    }
}

/// Runs `ionm bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    if args.suite {
        return crate::suite::run(args);
    }
    if args.channels == 0 || args.rate == 0 || args.seconds <= 0.0 {
        bail!("--channels, --rate and --seconds must be positive");
    }
    let (protocol, protocol_name) = protocol_for(&args.protocol, args.channels)?;
    let probe = simulator(args, args.seconds)?;
    let engine = Engine::new(&protocol, &probe.device_info())
        .map_err(|e| anyhow::anyhow!("protocol {protocol_name} does not fit the simulated device: {e}"))?;
    let traces = engine.trace_count();
    drop(probe);
    let throughput = throughput(args, &protocol)?;
    let latency = if args.latency_seconds > 0.0 {
        Some(latency(args, &protocol, &engine)?)
    } else {
        None
    };
    let report = Report {
        channels: args.channels,
        rate_hz: args.rate,
        scenario: args.scenario.clone(),
        protocol: protocol_name,
        traces,
        host: Host {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu: cpu_model(),
        },
        throughput,
        latency,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write_text(&mut out, &report)?;
    }
    let d = &report.throughput.dropped;
    if d.total != 0 {
        bail!("data was dropped in the max-speed run ({d:?})");
    }
    Ok(())
}

fn simulator(args: &BenchArgs, seconds: f64) -> Result<Simulator> {
    let mut scenario = match Scenario::builtin(&args.scenario) {
        Some(s) => s,
        None => {
            let text = std::fs::read_to_string(&args.scenario).with_context(|| {
                format!(
                    "{:?} is neither a built-in scenario nor a readable file",
                    args.scenario
                )
            })?;
            Scenario::from_toml(&text).with_context(|| format!("in scenario file {}", args.scenario))?
        }
    };
    scenario.set_duration_s(Some(seconds));
    let mut sim = Simulator::new(SimConfig {
        channels: args.channels,
        sample_rate_hz: args.rate,
        seed: args.seed,
        mains_hz: 50.0,
        scenario,
    })
    .context("cannot configure the simulator")?;
    sim.set_record_sweeps(false);
    Ok(sim)
}

/// The protocol and a name for it.
fn protocol_for(name: &str, channels: usize) -> Result<(Protocol, String)> {
    if name != "auto" {
        return Ok((crate::run::load_protocol(name)?, name.to_owned()));
    }
    if channels == 16 {
        return Ok((crate::run::load_protocol("sim-default")?, "sim-default".into()));
    }
    let text = montage_protocol(channels);
    let p = Protocol::from_toml_str(&text).context("the generated montage protocol")?;
    Ok((
        p,
        format!("generated from the simulator montage ({channels} channels)"),
    ))
}

/// A protocol monitoring every channel of the simulator's montage with its modality's defaults: SSEP channels
/// per limb (upper: median/ulnar, lower: tibial), TcMEP muscles to TES, BAEP channels to their ear.
pub(crate) fn montage_protocol(channels: usize) -> String {
    let mut text = String::from("name = \"bench: simulator montage\"\nmains_hz = 50\n");
    for spec in firmware_sim::montage::catalogue().into_iter().take(channels) {
        let mut groups: BTreeMap<&str, Vec<Stimulator>> = BTreeMap::new();
        for r in &spec.responses {
            let modality = match (spec.group, r.kind, r.stimulator) {
                (Group::Muscle, ResponseKind::Muscle, Stimulator::Tes) => "mep",
                (Group::Muscle, _, _) => continue,
                (Group::Brainstem, _, Stimulator::LeftEar | Stimulator::RightEar) => "baep",
                (
                    _,
                    _,
                    Stimulator::LeftMedian
                    | Stimulator::RightMedian
                    | Stimulator::LeftUlnar
                    | Stimulator::RightUlnar,
                ) => "ssep-upper",
                (_, _, Stimulator::LeftTibial | Stimulator::RightTibial) => "ssep-lower",
                _ => continue,
            };
            groups.entry(modality).or_default().push(r.stimulator);
        }
        let site = match spec.group {
            Group::Cortical => Some("cortical"),
            Group::Subcortical => Some("cervical"),
            Group::Peripheral => Some("peripheral"),
            _ => None,
        };
        for (modality, stims) in groups {
            let list: Vec<String> = stims.iter().map(|s| format!("\"{}\"", s.name())).collect();
            text += &format!(
                "\n[[channel]]\nlabel = \"{0}\"\nname = \"{0} ({modality})\"\nmodality = \"{modality}\"\n\
                 stimulators = [{1}]\n",
                spec.label,
                list.join(", ")
            );
            if let Some(site) = site.filter(|_| modality.starts_with("ssep")) {
                text += &format!("site = \"{site}\"\n");
            }
        }
    }
    text
}

/// Ticks of CPU per thread name, read from /proc.
fn thread_cpu() -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // "tid (comm) state ppid …": the name may hold spaces; fields after ')' are numbered from 3.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // utime and stime are fields 14 and 15 (1-based) of the whole line, i.e. 11 and 12 after ')'.
        let ticks: u64 = fields
            .get(11..13)
            .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
        *out.entry(name).or_default() += ticks;
    }
    out
}

fn proc_status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The CPU's model name from `/proc/cpuinfo` (empty where there is none).
pub(crate) fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default()
}

fn progress(args: &BenchArgs, len: f64, what: &str) -> indicatif::ProgressBar {
    if args.no_progress {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len.ceil() as u64);
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} s {{msg}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// What a run's event loop collected.
struct Collected {
    averages: Vec<(Instant, ionm_core::events::AverageEvent)>,
    final_stats: Option<ionm_core::events::StatsEvent>,
    fatal: Option<String>,
    rss: Vec<(f64, u64)>,
    cpu_ticks: HashMap<String, u64>,
}

/// Receives events until the pipeline finishes, updating the bar and sampling memory and thread CPU.
fn drain(pipeline: &Pipeline, rate: u32, bar: &indicatif::ProgressBar, total_s: f64) -> Collected {
    let mut c = Collected {
        averages: Vec::new(),
        final_stats: None,
        fatal: None,
        rss: Vec::new(),
        cpu_ticks: HashMap::new(),
    };
    let mut next_rss = 0.0;
    let mut last_poll = Instant::now();
    loop {
        let ev = pipeline.events().recv_timeout(Duration::from_millis(50));
        let now = Instant::now();
        let mut done = false;
        match ev {
            Ok(PipelineEvent::Event(Event::Average(a))) => c.averages.push((now, a)),
            Ok(PipelineEvent::Event(Event::Stats(s))) if s.is_final => c.final_stats = Some(s),
            Ok(PipelineEvent::Event(_)) => {}
            Ok(PipelineEvent::Fatal(m)) => c.fatal = Some(m),
            Ok(PipelineEvent::Finished) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => done = true,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        if done || now.duration_since(last_poll) >= Duration::from_millis(50) {
            last_poll = now;
            // Keep the latest reading per thread: a thread's entry vanishes when it ends.
            for (name, t) in thread_cpu() {
                let e = c.cpu_ticks.entry(name).or_default();
                *e = (*e).max(t);
            }
            let stream_s = pipeline.stats().stream_index.load(Relaxed) as f64 / f64::from(rate);
            bar.set_position(stream_s as u64);
            if stream_s >= next_rss || done {
                c.rss.push((stream_s, proc_status_kib("VmRSS:")));
                next_rss += total_s / 20.0;
            }
        }
        if done {
            return c;
        }
    }
}

fn dropped(pipeline: &Pipeline, stats: Option<&ionm_core::events::StatsEvent>) -> Dropped {
    let i = pipeline.ingest().snapshot();
    let p = pipeline.stats().snapshot();
    let mut d = Dropped {
        overruns: i.overruns,
        gaps: p.gaps.max(i.gaps),
        gap_samples: i.gap_samples,
        frames_lost: i.frames_lost,
        crc_errors: i.crc_errors,
        discontinuities: p.discontinuities,
        edge_sweeps_dropped: stats.map_or(0, |s| s.sweeps_dropped),
        total: 0,
    };
    d.total = d.overruns + d.gaps + d.gap_samples + d.frames_lost + d.crc_errors + d.discontinuities;
    d
}

fn throughput(args: &BenchArgs, protocol: &Protocol) -> Result<Throughput> {
    let sim = simulator(args, args.seconds)?;
    let sim_ns = Arc::new(AtomicU64::new(0));
    let source = ReaderSource::new(
        "simulator (bench)",
        TimedRead {
            inner: SimReader::new(Transmitter::new(sim), Speed::Max),
            ns: sim_ns.clone(),
        },
    );
    let reader = ReaderConfig {
        lossless: true,
        ..Default::default()
    };
    let bar = progress(args, args.seconds, "max speed");
    let before = thread_cpu();
    let started = Instant::now();
    let pipeline = Pipeline::start(source, reader, PipelineConfig::new(protocol.clone()))
        .context("cannot start the pipeline")?;
    let c = drain(&pipeline, args.rate, &bar, args.seconds);
    let wall = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(m) = c.fatal {
        bail!("{m}");
    }
    let p = pipeline.stats().snapshot();
    let dropped = dropped(&pipeline, c.final_stats.as_ref());
    let alarms_raised = c.final_stats.as_ref().map_or(0, |s| s.alarms_raised);
    drop(pipeline.stop());
    let simulated = p.stream_index as f64 / f64::from(args.rate);
    let cpu: BTreeMap<String, f64> = c
        .cpu_ticks
        .iter()
        .map(|(k, &v)| {
            (
                k.clone(),
                v.saturating_sub(*before.get(k).unwrap_or(&0)) as f64 / CLK_TCK,
            )
        })
        .collect();
    let simulator_s = sim_ns.load(Relaxed) as f64 * 1e-9;
    let decode_ingest_s = decode_cost(args)? * simulated;
    let processing_s = p.process_ns_total as f64 * 1e-9;
    let both = (decode_ingest_s + processing_s).max(1e-12);
    Ok(Throughput {
        simulated_s: simulated,
        wall_s: wall,
        realtime_factor: simulated / wall,
        sample_instants_per_s: p.samples as f64 / wall,
        channel_samples_per_s: p.samples as f64 * args.channels as f64 / wall,
        thread_cpu_s: cpu,
        simulator_s,
        decode_ingest_s,
        processing_s,
        share_decode_ingest: decode_ingest_s / both,
        share_processing: processing_s / both,
        processing_core_pct: 100.0 * processing_s / simulated.max(1e-9),
        rss_kib: c.rss,
        vm_hwm_kib: proc_status_kib("VmHWM:"),
        averages: c.averages.len() as u64,
        alarms_raised,
        dropped,
    })
}

/// Seconds of decoding + assembly per second of signal, over the first 10 s of the stream held in memory.
fn decode_cost(args: &BenchArgs) -> Result<f64> {
    let seconds = args.seconds.min(10.0);
    let mut tx = Transmitter::new(simulator(args, seconds)?);
    let mut bytes = Vec::new();
    while !tx.next_chunk(&mut bytes).finished {}
    let stats = ionm_io::IngestStats::default();
    let mut best = f64::INFINITY;
    let mut items = 0u64;
    // Best of three: the machine may be shared.
    for _ in 0..3 {
        let mut decoder = ionm_wire::Decoder::new();
        let mut assembler = ionm_io::Assembler::new();
        let t = Instant::now();
        for chunk in bytes.chunks(64 * 1024) {
            decoder.decode(chunk, |ev| {
                assembler.on_event(ev, &stats, &mut |item| {
                    items += 1;
                    std::hint::black_box(&item);
                })
            });
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    std::hint::black_box(items);
    Ok(best / seconds)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn latency(args: &BenchArgs, protocol: &Protocol, engine: &Engine) -> Result<Latency> {
    let fs = f64::from(args.rate);
    // Per trace: samples from the stimulus to the last window sample, and the FIR look-ahead.
    let mut windows: HashMap<String, (i64, i64, String)> = HashMap::new();
    let mut lookahead: BTreeMap<String, f64> = BTreeMap::new();
    for t in 0..engine.trace_count() {
        let Some(info) = engine.trace_info(t) else {
            continue;
        };
        let end = info.timebase.start_offset + info.window_len as i64 - 1;
        let ahead = ((info.taps.saturating_sub(1)) / 2) as i64;
        let m = info.modality.name().to_owned();
        let e = lookahead.entry(m.clone()).or_default();
        *e = e.max(ahead as f64 * 1000.0 / fs);
        windows.insert(info.name.clone(), (end, ahead, m));
    }
    let sim = simulator(args, args.latency_seconds)?;
    // A device that announces its stimuli 1 ms ahead (docs/protocol.md, revision 2): nothing is held back.
    let tx = Transmitter::new(sim).with_stimulus_lead();
    // SimReader releases ~20 ms of stream per read, in whole frames, from index 0 (see firmware-sim transmit).
    let spf = tx.samples_per_frame().max(1);
    let chunk = (args.rate as usize / 50).max(1).div_ceil(spf) * spf;
    let stimulus_lead = tx.stimulus_lead();
    let t0 = Instant::now();
    let chunks = Arc::new(std::sync::Mutex::new(Vec::with_capacity(
        (args.latency_seconds * 60.0) as usize + 16,
    )));
    let reader = ChunkClock {
        inner: SimReader::new(tx, Speed::Realtime),
        seen: 0,
        released: chunks.clone(),
    };
    let source = ReaderSource::new("simulator (bench, real time)", reader);
    let bar = progress(args, args.latency_seconds, "real time");
    let pipeline = Pipeline::start(
        source,
        ReaderConfig::default(),
        PipelineConfig::new(protocol.clone()),
    )
    .context("cannot start the pipeline")?;
    let c = drain(&pipeline, args.rate, &bar, args.latency_seconds);
    bar.finish_and_clear();
    if let Some(m) = c.fatal {
        bail!("{m}");
    }
    let dropped = dropped(&pipeline, c.final_stats.as_ref());
    drop(pipeline.stop());
    let chunks = chunks.lock().map(|v| v.clone()).unwrap_or_default();
    // When the chunk holding sample `index` became readable; the pacer's schedule past the last one noted.
    let scheduled = |end: u64| t0 + Duration::from_secs_f64(end as f64 / fs);
    let released = |index: i64| -> Instant {
        let i = index.max(0) as u64;
        let k = chunks.partition_point(|&(end, _)| end <= i);
        chunks.get(k).map_or_else(
            || scheduled((i + 1).div_ceil(chunk as u64) * chunk as u64),
            |&(_, at)| at,
        )
    };
    let chunk_late_max_ms = chunks
        .iter()
        .map(|&(end, at)| at.saturating_duration_since(scheduled(end)).as_secs_f64() * 1e3)
        .fold(0.0, f64::max);
    let mut lat = Vec::new();
    let mut from_window = Vec::new();
    let mut per_modality: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (at, a) in &c.averages {
        let Some((end, ahead, m)) = windows.get(&a.trace) else {
            continue;
        };
        let last_stim = (a.stream_s * fs).round() as i64;
        let need = last_stim + end + ahead;
        let ms = |i: i64| {
            let r = released(i);
            if *at >= r {
                at.duration_since(r).as_secs_f64() * 1e3
            } else {
                -(r.duration_since(*at).as_secs_f64() * 1e3)
            }
        };
        lat.push(ms(need));
        from_window.push(ms(last_stim + end));
        per_modality.entry(m.clone()).or_default().push(ms(need));
    }
    let sort = |v: &mut Vec<f64>| v.sort_by(f64::total_cmp);
    sort(&mut lat);
    sort(&mut from_window);
    Ok(Latency {
        simulated_s: args.latency_seconds,
        averages: lat.len(),
        p50_ms: percentile(&lat, 0.5),
        p99_ms: percentile(&lat, 0.99),
        max_ms: lat.last().copied().unwrap_or(f64::NAN),
        from_window_end_p50_ms: percentile(&from_window, 0.5),
        from_window_end_max_ms: from_window.last().copied().unwrap_or(f64::NAN),
        fir_lookahead_ms: lookahead,
        chunk_ms: chunk as f64 * 1000.0 / fs,
        stimulus_lead,
        hold_ms: {
            // The engine the pipeline builds sees the wire's revision, not the simulator's own description.
            let mut device = simulator(args, 1.0)?.device_info();
            if stimulus_lead {
                device.protocol_version = ionm_wire::DEVICE_REVISION_STIMULUS_LEAD;
            }
            Engine::new(protocol, &device)?.hold_samples() as f64 * 1000.0 / fs
        },
        chunk_late_max_ms,
        per_modality_p50_ms: per_modality
            .into_iter()
            .map(|(k, mut v)| {
                sort(&mut v);
                (k, percentile(&v, 0.5))
            })
            .collect(),
        dropped,
    })
}

fn write_text(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    let t = &r.throughput;
    writeln!(
        out,
        "ionm bench: {} ch × {} Hz, scenario {}, protocol {} ({} traces); {} CPUs ({})",
        r.channels, r.rate_hz, r.scenario, r.protocol, r.traces, r.host.nproc, r.host.cpu
    )?;
    writeln!(
        out,
        "max speed: {:.1} s of signal in {:.2} s = {:.1}× real time; {:.0} sample instants/s ({:.2} M channel \
         samples/s); {} averages, {} alarms",
        t.simulated_s,
        t.wall_s,
        t.realtime_factor,
        t.sample_instants_per_s,
        t.channel_samples_per_s / 1e6,
        t.averages,
        t.alarms_raised
    )?;
    writeln!(
        out,
        "stages: simulator {:.2} s | decode+ingest {:.2} s ({:.1}%) | processing {:.2} s ({:.1}%, {:.2}% of one \
         core per second of signal)",
        t.simulator_s,
        t.decode_ingest_s,
        100.0 * t.share_decode_ingest,
        t.processing_s,
        100.0 * t.share_processing,
        t.processing_core_pct
    )?;
    let cpu: Vec<String> = t
        .thread_cpu_s
        .iter()
        .filter(|(_, v)| **v > 0.0)
        .map(|(k, v)| format!("{k} {v:.2} s"))
        .collect();
    writeln!(out, "thread CPU: {}", cpu.join(", "))?;
    let first = t.rss_kib.first().map_or(0, |x| x.1);
    let mid = t.rss_kib.get(t.rss_kib.len() / 2).map_or(0, |x| x.1);
    let last = t.rss_kib.last().map_or(0, |x| x.1);
    writeln!(
        out,
        "memory: VmHWM {:.1} MiB; VmRSS {:.1} → {:.1} → {:.1} MiB (start, middle, end of the run)",
        t.vm_hwm_kib as f64 / 1024.0,
        first as f64 / 1024.0,
        mid as f64 / 1024.0,
        last as f64 / 1024.0
    )?;
    let d = &t.dropped;
    writeln!(
        out,
        "dropped: {} (overruns {}, gaps {} / {} samples, lost frames {}, CRC errors {}, discontinuities {}); \
         sweeps dropped at the stream's start/end (by design): {}",
        d.total,
        d.overruns,
        d.gaps,
        d.gap_samples,
        d.frames_lost,
        d.crc_errors,
        d.discontinuities,
        d.edge_sweeps_dropped
    )?;
    if let Some(l) = &r.latency {
        writeln!(
            out,
            "latency (real-time run, {:.0} s, {} averages): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms from the \
             release of the last sample needed (window end + FIR look-ahead); from the window end: p50 {:.1} ms, \
             max {:.1} ms; transport chunks {:.0} ms; dropped {}",
            l.simulated_s,
            l.averages,
            l.p50_ms,
            l.p99_ms,
            l.max_ms,
            l.from_window_end_p50_ms,
            l.from_window_end_max_ms,
            l.chunk_ms,
            l.dropped.total
        )?;
        let per: Vec<String> = l
            .per_modality_p50_ms
            .iter()
            .map(|(k, v)| format!("{k} p50 {v:.1} ms (look-ahead {:.1} ms)", l.fir_lookahead_ms[k]))
            .collect();
        writeln!(out, "latency per modality: {}", per.join(", "))?;
        writeln!(
            out,
            "stimulus lead declared: {}; samples held back for late stimuli: {:.1} ms; chunks arrived up to \
             {:.1} ms after their due time (the reference is the real arrival)",
            l.stimulus_lead, l.hold_ms, l.chunk_late_max_ms
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_protocols_fit_the_simulated_device() {
        for n in [4usize, 16, 32, 64] {
            let text = montage_protocol(n);
            let p = Protocol::from_toml_str(&text).unwrap_or_else(|e| panic!("{n} channels: {e}\n{text}"));
            let sim = Simulator::new(SimConfig {
                channels: n,
                sample_rate_hz: 10_000,
                seed: 1,
                mains_hz: 50.0,
                scenario: Scenario::builtin("ssep-stable").unwrap(),
            })
            .unwrap();
            let e = Engine::new(&p, &sim.device_info()).unwrap();
            assert!(e.trace_count() >= n, "{n} channels, {} traces", e.trace_count());
        }
    }

    #[test]
    fn thread_cpu_sees_this_thread() {
        assert!(!thread_cpu().is_empty());
        assert!(proc_status_kib("VmHWM:") > 0);
    }
}
