//! `ionm`: the command-line entry point. Thin: argument parsing, logging set-up, and the run loops in [`run`].

mod events;
mod run;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use firmware_sim::transmit::Speed;
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
    /// List the serial ports the system knows of.
    Ports,
}

/// Options shared by every run.
#[derive(Debug, Args, Clone)]
pub struct RunArgs {
    /// Write the event stream as JSON Lines to FILE (`-` for stdout).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// No window: print per-second statistics and events to the terminal.
    #[arg(long)]
    pub headless: bool,
    /// Stop after this many seconds of wall time.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Print per-second statistics as well when not headless.
    #[arg(long)]
    pub quiet: bool,
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
    #[command(flatten)]
    run: RunArgs,
}

fn main() -> Result<()> {
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
                (None, None) => unreachable!("clap requires --port or --tcp"),
            };
            run::run(source, &a.run)
        }
        Some(Command::Demo(a)) => {
            let sim = run::demo_source(&a.scenario, a.channels, a.rate, a.seed, a.speed)?;
            run::run(sim, &a.run)
        }
        Some(Command::Ports) => run::ports(),
        None => {
            // The main job: the built-in simulator in real time. (The dashboard opens here once it exists.)
            let sim = run::demo_source("ssep-stable", 16, 10_000, 1, Speed::Realtime)?;
            run::run(
                sim,
                &RunArgs {
                    events: None,
                    headless: true,
                    duration: None,
                    quiet: false,
                },
            )
        }
    }
}
