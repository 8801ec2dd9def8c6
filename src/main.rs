//! `ionm`: the command-line entry point. Thin: argument parsing, logging set-up, and the run loop in [`run`].

mod bench;
mod events;
mod gui;
mod run;
mod score;
mod suite;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use firmware_sim::transmit::Speed;
use ionm_io::ReplaySpeed;
use std::path::PathBuf;

/// Open intraoperative neuromonitoring: evoked-potential acquisition, averaging and alarms.
/// Decision support for a qualified neurophysiologist; not a certified medical device.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Acquire from a serial device (or a pty / TCP simulator).
    Live(LiveArgs),
    /// Run the built-in simulator in process, through the same decoder and pipeline as a device.
    Demo(DemoArgs),
    /// Replay a capture of wire bytes (e.g. `firmware-sim --speed max > case.ionmraw`) through the pipeline.
    Replay(ReplayArgs),
    /// List the serial ports the system knows of.
    Ports,
    /// Describe an EDF/EDF+/BDF/BDF+ file: header, signals, annotations.
    Info {
        /// The file.
        file: PathBuf,
        /// As JSON.
        #[arg(long)]
        json: bool,
        /// Annotations to list.
        #[arg(long, default_value_t = 10)]
        annotations: usize,
    },
    /// Benchmark the whole pipeline on the simulator at max speed (real-time factor, stage shares, latency,
    /// memory), or run the time-to-detection scenario suite (`--suite`).
    Bench(bench::BenchArgs),
    /// Score an events file against a simulator ground truth: detections, delays, false alarms.
    Score(score::ScoreArgs),
    /// Turn an events file into CSV trends (one row per average) for spreadsheets.
    Export {
        /// The JSON Lines events file (`--events` of a run).
        events: PathBuf,
        /// Output CSV (default: stdout).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// List the built-in protocols, or print one.
    Protocols {
        /// Print this preset's TOML.
        name: Option<String>,
    },
}

/// Options shared by every run.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Protocol: a built-in name (`ionm protocols`) or a TOML file.
    #[arg(long, default_value = "sim-default")]
    pub protocol: String,
    /// Write the event stream as JSON Lines to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Keep the averages' waveforms in the JSON Lines events.
    #[arg(long)]
    pub events_waveforms: bool,
    /// No window: print alarms and statistics to the terminal (also the fallback when there is no display).
    #[arg(long)]
    pub headless: bool,
    /// Stop after this many seconds of wall time.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// No per-second statistics line.
    #[arg(long)]
    pub quiet: bool,
    /// Record everything to this BDF+ file (raw samples, a stimulus channel, annotations for stimuli, gaps,
    /// alarms, baselines and markers; a JSON sidecar with the device and protocol). Flushed every second.
    #[arg(long, value_name = "FILE.bdf")]
    pub record: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct LiveArgs {
    /// Serial device path (e.g. /dev/ttyUSB0, or the pty printed by `firmware-sim --pty`).
    #[arg(long, value_name = "PATH", required_unless_present = "tcp")]
    port: Option<String>,
    /// Baud rate (real UARTs only; USB CDC and ptys ignore it).
    #[arg(long, default_value_t = 3_000_000)]
    baud: u32,
    /// Connect to a device or `firmware-sim --tcp` over TCP instead.
    #[arg(long, value_name = "ADDR", conflicts_with = "port")]
    tcp: Option<String>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Built-in scenario name or scenario TOML file.
    #[arg(long, default_value = "ssep-stable")]
    scenario: String,
    /// Channels.
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// Sample rate in Hz.
    #[arg(long, default_value_t = 10_000)]
    rate: u32,
    /// Seed of the simulator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// realtime, max, or a factor.
    #[arg(long, default_value = "realtime")]
    speed: Speed,
    /// Seconds of simulated signal (default: the scenario's duration, or until stopped).
    #[arg(long, value_name = "SECONDS")]
    sim_seconds: Option<f64>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The recording to replay: EDF, EDF+, BDF, BDF+ (ionm's or another tool's), or a capture of wire bytes
    /// (`firmware-sim --speed max > case.ionmraw`).
    file: PathBuf,
    /// realtime, max, or a factor such as 10.
    #[arg(long, default_value = "max")]
    speed: ReplaySpeed,
    /// EDF/BDF: the trigger channel carrying stimulator codes (ionm's recordings: `Stimulus`).
    #[arg(long, default_value = "Stimulus")]
    trigger: String,
    /// EDF/BDF: take stimuli from annotations whose text starts with TEXT, as STIMULATOR
    /// (e.g. `--stim-annotation "Stim L=left_median"`); repeatable. Used when there is no trigger channel.
    #[arg(long, value_name = "TEXT=STIMULATOR")]
    stim_annotation: Vec<String>,
    /// EDF/BDF: the signals to replay, by label (default: every voltage signal at the most common rate).
    #[arg(long, value_delimiter = ',')]
    channels: Option<Vec<String>>,
    #[command(flatten)]
    run: RunArgs,
}

fn main() -> Result<()> {
    match run_command() {
        // A reader that stopped reading (`ionm info FILE | head`) is not an error of ionm's: end quietly, as
        // a Unix tool killed by SIGPIPE would.
        Err(e) if is_broken_pipe(&e) => {
            tracing::info!("output closed by its reader (broken pipe): stopped");
            Ok(())
        }
        r => r,
    }
}

/// Whether `e` was caused by writing to a closed pipe.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

fn run_command() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Live(a)) => {
            let source: Box<dyn ionm_io::ByteSource> = match (&a.port, &a.tcp) {
                (_, Some(addr)) => Box::new(ionm_io::TcpSource::new(addr.clone())),
                (Some(p), None) => Box::new(ionm_io::SerialSource::new(p.clone(), a.baud)),
                (None, None) => anyhow::bail!("give --port or --tcp"),
            };
            run::run(
                run::Input::Live {
                    source,
                    lossless: false,
                    max_speed: false,
                },
                &a.run,
            )
        }
        Some(Command::Demo(a)) => {
            let source = run::demo_source(&a.scenario, a.channels, a.rate, a.seed, a.speed, a.sim_seconds)?;
            run::run(
                run::Input::Live {
                    source,
                    lossless: a.speed != Speed::Realtime,
                    max_speed: a.speed == Speed::Max,
                },
                &a.run,
            )
        }
        Some(Command::Replay(a)) => {
            // When only the DSP engine reads samples (headless, not recording), the replay decodes only the
            // protocol's channels. A protocol that does not load is reported by the run, as ever.
            let protocol = if run::reads_every_channel(&a.run) {
                None
            } else {
                run::load_protocol(&a.run.protocol).ok()
            };
            let source = run::replay_source(
                &a.file,
                &a.trigger,
                &a.stim_annotation,
                a.channels.clone(),
                protocol.as_ref(),
            )?;
            run::run(
                run::Input::Replay {
                    source,
                    speed: a.speed,
                },
                &a.run,
            )
        }
        Some(Command::Ports) => run::ports(),
        Some(Command::Info {
            file,
            json,
            annotations,
        }) => run::info(&file, json, annotations),
        Some(Command::Export { events, out }) => run::export(&events, out.as_deref()),
        Some(Command::Bench(a)) => bench::run(&a),
        Some(Command::Score(a)) => score::run(&a),
        Some(Command::Protocols { name }) => run::protocols(name.as_deref()),
        None => {
            // The main job: the dashboard on the built-in simulator in real time (headless without a display).
            let source = run::demo_source("ssep-stable", 16, 10_000, 1, Speed::Realtime, None)?;
            let args = RunArgs {
                protocol: "sim-default".into(),
                events: None,
                events_waveforms: false,
                headless: false,
                duration: None,
                quiet: false,
                record: None,
            };
            run::run(
                run::Input::Live {
                    source,
                    lossless: false,
                    max_speed: false,
                },
                &args,
            )
        }
    }
}
