//! `firmware-sim`: a simulated IONM amplifier + stimulator speaking the ionm wire protocol.

use anyhow::{Context, Result, bail};
use clap::Parser;
use firmware_sim::transmit::{Speed, Transmitter, stream_to};
use firmware_sim::{Scenario, SimConfig, Simulator};
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Streams simulated evoked potentials (SSEP, MEP, BAEP) with noise, mains, ECG and stimulus artifacts, as an
/// acquisition device would, following a scenario of clinical and technical events.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Create a pseudo-terminal and stream into it; its path is printed on the first line of stdout.
    #[arg(long, conflicts_with_all = ["port", "tcp"])]
    pty: bool,
    /// Stream into an existing serial device (e.g. one end of a socat pty pair).
    #[arg(long, value_name = "PATH", conflicts_with = "tcp")]
    port: Option<String>,
    /// Baud rate for --port (ignored by ptys and USB CDC devices).
    #[arg(long, default_value_t = 3_000_000)]
    baud: u32,
    /// Listen on this TCP address (e.g. 127.0.0.1:7878) and stream to whoever connects.
    #[arg(long, value_name = "ADDR")]
    tcp: Option<String>,
    /// A built-in scenario name (see --list-scenarios) or a scenario TOML file.
    #[arg(long, default_value = "ssep-stable")]
    scenario: String,
    /// Print the built-in scenarios and exit.
    #[arg(long)]
    list_scenarios: bool,
    /// Channels (1–64).
    #[arg(long, default_value_t = 16)]
    channels: usize,
    /// Sample rate in Hz.
    #[arg(long, default_value_t = 10_000)]
    rate: u32,
    /// Mains frequency in Hz (50 or 60).
    #[arg(long, default_value_t = 50.0)]
    mains: f64,
    /// Seed of every random process: the same seed gives the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this many seconds of signal (default: the scenario's duration, or forever).
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// realtime, max, or a factor such as 10.
    #[arg(long, default_value = "realtime")]
    speed: Speed,
    /// Write the ground truth (stimuli, true amplitude and latency per sweep, scenario events) here at the end.
    #[arg(long, value_name = "FILE.json")]
    truth: Option<PathBuf>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    if args.list_scenarios {
        let mut out = io::stdout().lock();
        for name in Scenario::builtin_names() {
            let s = Scenario::builtin(name).expect("listed scenarios exist");
            writeln!(out, "{name:20} {}", s.description())?;
        }
        return Ok(());
    }
    let mut scenario = match Scenario::builtin(&args.scenario) {
        Some(s) => s,
        None => {
            let text = std::fs::read_to_string(&args.scenario).with_context(|| {
                format!(
                    "{:?} is neither a built-in scenario ({}) nor a readable file",
                    args.scenario,
                    Scenario::builtin_names().join(", ")
                )
            })?;
            Scenario::from_toml(&text).with_context(|| format!("in scenario file {}", args.scenario))?
        }
    };
    if let Some(d) = args.duration {
        if !(d > 0.0 && d.is_finite()) {
            bail!("--duration must be a positive number of seconds");
        }
        scenario.set_duration_s(Some(d));
    }
    let config = SimConfig {
        channels: args.channels,
        sample_rate_hz: args.rate,
        seed: args.seed,
        mains_hz: args.mains,
        scenario,
    };
    let sim = Simulator::new(config).context("cannot configure the simulator")?;
    let mut tx = Transmitter::new(sim);
    let mut link = open_link(&args)?;
    tracing::info!(
        channels = args.channels,
        rate = args.rate,
        scenario = %args.scenario,
        speed = ?args.speed,
        "streaming"
    );
    let result = stream_to(&mut tx, link.as_mut(), args.speed, |_| true);
    let stats = tx.stats();
    tracing::info!(
        frames = stats.frames,
        bytes = stats.bytes,
        corrupted = stats.corrupted_bytes,
        withheld = stats.withheld_frames,
        "stream ended"
    );
    if let Some(path) = &args.truth {
        let file =
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer(io::BufWriter::new(file), tx.simulator().truth())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    result.context("the link failed")
}

fn open_link(args: &Args) -> Result<Box<dyn Write>> {
    if args.pty {
        let (mut master, slave) = serialport::TTYPort::pair().context("cannot create a pseudo-terminal")?;
        let name = serialport::SerialPort::name(&slave).context("the pseudo-terminal has no name")?;
        serialport::SerialPort::set_timeout(&mut master, Duration::from_millis(50))?;
        let mut out = io::stdout().lock();
        writeln!(out, "{name}")?;
        out.flush()?;
        return Ok(Box::new(PtyLink {
            master,
            _slave: slave,
        }));
    }
    if let Some(path) = &args.port {
        let port = serialport::new(path, args.baud)
            .timeout(Duration::from_millis(50))
            .open()
            .with_context(|| format!("cannot open serial port {path}"))?;
        return Ok(Box::new(port));
    }
    if let Some(addr) = &args.tcp {
        let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        let mut out = io::stdout().lock();
        writeln!(out, "{local}")?;
        out.flush()?;
        let link = TcpLink::default();
        let client = link.client.clone();
        std::thread::Builder::new()
            .name("sim-tcp-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    match conn {
                        Ok(s) => {
                            tracing::info!(peer = ?s.peer_addr().ok(), "client connected");
                            let _ = s.set_nodelay(true);
                            let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
                            *client.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
                        }
                        Err(e) => tracing::warn!(error = %e, "accept failed"),
                    }
                }
            })?;
        return Ok(Box::new(link));
    }
    Ok(Box::new(io::stdout()))
}

/// The master end of a pty, with the slave end held open for the life of the process so the pty survives
/// readers coming and going. When nobody reads, the pty's buffer fills and writes time out: the data is dropped,
/// as a device with a full USB buffer would; the host discards whatever is stale when it opens the port.
struct PtyLink {
    master: serialport::TTYPort,
    _slave: serialport::TTYPort,
}

impl Write for PtyLink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.master.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.master.flush()
    }
}

/// Writes to the connected TCP client, if any; a device keeps sampling when nobody listens, so data is dropped
/// until a client connects, and a client that goes away is forgotten.
#[derive(Default)]
struct TcpLink {
    client: Arc<Mutex<Option<TcpStream>>>,
}

impl Write for TcpLink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = guard.as_mut()
            && let Err(e) = s.write_all(buf)
        {
            tracing::info!(error = %e, "client gone");
            *guard = None;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
