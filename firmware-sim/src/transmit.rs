//! The simulated device's link layer: turns the simulator's samples, stimuli and status into wire frames, with
//! the scenario's link effects (disconnects, byte corruption), and paces them in real time if asked.

use crate::Simulator;
use ionm_core::{Rng, StimulusEvent};
use ionm_wire::{ChannelDesc, DeviceDesc, Encoder, MAX_FRAME_LEN, MAX_SAMPLE_VALUES, MAX_STIMULI_PER_FRAME};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// How fast the device streams.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As a real amplifier: one second of samples per second.
    Realtime,
    /// As fast as the consumer takes it.
    Max,
    /// This many times real time.
    Factor(f64),
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "realtime" => Ok(Self::Realtime),
            "max" => Ok(Self::Max),
            f => match f.trim_end_matches('x').parse::<f64>() {
                Ok(x) if x > 0.0 && x.is_finite() => Ok(Self::Factor(x)),
                _ => Err(format!(
                    "speed must be realtime, max or a positive factor, not {s:?}"
                )),
            },
        }
    }
}

/// What one call to [`Transmitter::next_chunk`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkInfo {
    /// Sample index one past the last sample generated.
    pub end_index: u64,
    /// False if the scenario has the device disconnected: nothing was sent for these samples.
    pub connected: bool,
    /// True once the scenario's duration is reached.
    pub finished: bool,
}

/// Counters of a transmitter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransmitStats {
    /// Frames encoded (including those not sent during a disconnect).
    pub frames: u64,
    /// Bytes handed to the link.
    pub bytes: u64,
    /// Bytes deliberately corrupted by the scenario.
    pub corrupted_bytes: u64,
    /// Sample frames withheld because the scenario had the device disconnected.
    pub withheld_frames: u64,
}

/// Encodes the simulator's output as the device would send it.
pub struct Transmitter {
    sim: Simulator,
    enc: Encoder,
    frame: Vec<u8>,
    values: Vec<i32>,
    stimuli: Vec<StimulusEvent>,
    wire_stimuli: Vec<ionm_wire::Stimulus>,
    samples_per_frame: usize,
    info_every: u64,
    status_every: u64,
    next_info: u64,
    next_status: u64,
    link_rng: Rng,
    burst_left: usize,
    stats: TransmitStats,
    labels: Vec<String>,
    gains: Vec<u32>,
}

impl Transmitter {
    /// Frames of about 1 ms (at most [`MAX_SAMPLE_VALUES`] values), device info and status every second.
    pub fn new(sim: Simulator) -> Self {
        let info = sim.device_info();
        let rate = u64::from(info.sample_rate_hz);
        let n_ch = info.n_channels();
        let samples_per_frame = ((rate / 1000).max(1) as usize)
            .min(MAX_SAMPLE_VALUES / n_ch)
            .max(1);
        Self {
            enc: Encoder::new(),
            frame: vec![0; MAX_FRAME_LEN],
            values: vec![0; samples_per_frame * n_ch],
            stimuli: Vec::with_capacity(64),
            wire_stimuli: Vec::with_capacity(MAX_STIMULI_PER_FRAME),
            samples_per_frame,
            info_every: rate,
            status_every: rate,
            next_info: 0,
            next_status: rate,
            burst_left: 0,
            link_rng: Rng::new(info.session_id as u64 ^ 0x6c69_6e6b),
            stats: TransmitStats::default(),
            labels: info.channels.iter().map(|c| c.label.clone()).collect(),
            gains: info.channels.iter().map(|c| c.gain_nv_per_lsb).collect(),
            sim,
        }
    }

    /// The simulator inside.
    pub fn simulator(&self) -> &Simulator {
        &self.sim
    }

    /// Counters so far.
    pub fn stats(&self) -> TransmitStats {
        self.stats
    }

    /// Samples per channel in each sample frame.
    pub fn samples_per_frame(&self) -> usize {
        self.samples_per_frame
    }

    /// Generates one sample frame's worth of data and appends the bytes the device sends for it to `out`:
    /// device info and status when due, the stimuli that fall in it, then the samples.
    pub fn next_chunk(&mut self, out: &mut Vec<u8>) -> ChunkInfo {
        let start = self.sim.next_index();
        let mut n = self.samples_per_frame;
        let mut finished = false;
        if let Some(d) = self.sim.duration_samples() {
            let left = d.saturating_sub(start);
            if left <= n as u64 {
                n = left as usize;
                finished = true;
            }
        }
        let connected = self.sim.link().connected;
        if n == 0 {
            return ChunkInfo {
                end_index: start,
                connected,
                finished: true,
            };
        }
        let n_ch = self.labels.len();
        self.stimuli.clear();
        self.sim
            .generate(n, &mut self.values[..n * n_ch], &mut self.stimuli);
        let mark = out.len();
        if start >= self.next_info {
            self.next_info = start + self.info_every;
            self.push_device_info(out);
        }
        for chunk in self.stimuli.chunks(MAX_STIMULI_PER_FRAME) {
            self.wire_stimuli.clear();
            self.wire_stimuli
                .extend(chunk.iter().map(|s| ionm_wire::Stimulus {
                    sample_index: s.sample_index,
                    stimulator: s.stimulator.code(),
                    pulses: s.pulses,
                    intensity_tenths: s.intensity_tenths,
                    pulse_width_us: s.pulse_width_us,
                }));
            let len = self
                .enc
                .stimuli(&mut self.frame, &self.wire_stimuli)
                .expect("1..=16 stimuli fit a frame");
            out.extend_from_slice(&self.frame[..len]);
            self.stats.frames += 1;
        }
        let len = self
            .enc
            .samples(&mut self.frame, start, n_ch, &self.values[..n * n_ch])
            .expect("the simulator clamps samples to 24 bits and frames fit");
        out.extend_from_slice(&self.frame[..len]);
        self.stats.frames += 1;
        if start >= self.next_status {
            self.next_status = start + self.status_every;
            let s = self.sim.status();
            let st = ionm_wire::Status {
                sample_index: s.sample_index,
                battery_percent: s.battery_percent,
                stimulator_fault: s.stimulator_fault,
                saturated: s.saturated,
                impedance_high: s.impedance_high,
            };
            let len = self.enc.status(&mut self.frame, &st).expect("status fits");
            out.extend_from_slice(&self.frame[..len]);
            self.stats.frames += 1;
        }
        if !connected {
            // The frames were numbered (the device's counter ran on) but never reached the host.
            out.truncate(mark);
            self.stats.withheld_frames += 1;
            // When the link comes back the host must relearn the format at once.
            self.next_info = 0;
        } else {
            let rate = self.sim.link().corrupt_byte_rate;
            if rate > 0.0 {
                self.corrupt(&mut out[mark..], rate);
            }
            self.stats.bytes += (out.len() - mark) as u64;
        }
        ChunkInfo {
            end_index: start + n as u64,
            connected,
            finished,
        }
    }

    /// Corrupts a long-run fraction `rate` of the bytes, in bursts of 1–64 bytes (mean 32.5), as interference
    /// on a cable does. (Independent 1% errors would hit 99% of 500-byte frames; bursts of the same byte rate
    /// destroy far fewer frames, each burst one or two.) Each corrupted byte gets one bit flipped.
    fn corrupt(&mut self, bytes: &mut [u8], rate: f64) {
        const MEAN_BURST: f64 = 32.5;
        let start_p = (rate / MEAN_BURST).min(1.0);
        for b in bytes {
            if self.burst_left == 0 && self.link_rng.uniform() < start_p {
                self.burst_left = 1 + self.link_rng.below(64) as usize;
            }
            if self.burst_left > 0 {
                self.burst_left -= 1;
                *b ^= 1 << self.link_rng.below(8);
                self.stats.corrupted_bytes += 1;
            }
        }
    }

    fn push_device_info(&mut self, out: &mut Vec<u8>) {
        let info = self.sim.device_info();
        let channels: Vec<ChannelDesc<'_>> = self
            .labels
            .iter()
            .zip(&self.gains)
            .map(|(l, &g)| ChannelDesc {
                label: l,
                gain_nv_per_lsb: g,
            })
            .collect();
        let desc = DeviceDesc {
            sample_rate_hz: info.sample_rate_hz,
            adc_min: info.adc_min,
            adc_max: info.adc_max,
            session_id: info.session_id,
            firmware_version: &info.firmware_version,
            channels: &channels,
        };
        let len = self
            .enc
            .device_info(&mut self.frame, &desc)
            .expect("the simulator's description is valid");
        out.extend_from_slice(&self.frame[..len]);
        self.stats.frames += 1;
    }

    /// Sample rate in Hz.
    pub fn sample_rate_hz(&self) -> u32 {
        self.sim.device_info().sample_rate_hz
    }
}

/// Paces sample indices against the wall clock.
#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    rate: f64,
    speed: Speed,
}

impl Pacer {
    /// A pacer whose time zero is now.
    pub fn new(sample_rate_hz: u32, speed: Speed) -> Self {
        Self {
            start: Instant::now(),
            rate: f64::from(sample_rate_hz),
            speed,
        }
    }

    /// How long to wait before the samples up to `end_index` may be sent.
    pub fn wait_for(&self, end_index: u64) -> Duration {
        let factor = match self.speed {
            Speed::Max => return Duration::ZERO,
            Speed::Realtime => 1.0,
            Speed::Factor(f) => f,
        };
        let due = self.start + Duration::from_secs_f64(end_index as f64 / self.rate / factor);
        due.saturating_duration_since(Instant::now())
    }
}

/// Streams a transmitter into `link` until the scenario ends or `keep_going` returns false. A write that fails
/// with `TimedOut`/`WouldBlock` (nobody reading the port) drops the chunk, as a device with a full USB buffer
/// would; any other write error ends the stream.
pub fn stream_to(
    tx: &mut Transmitter,
    link: &mut dyn Write,
    speed: Speed,
    mut keep_going: impl FnMut(&TransmitStats) -> bool,
) -> io::Result<()> {
    let pacer = Pacer::new(tx.sample_rate_hz(), speed);
    let mut out = Vec::with_capacity(64 * 1024);
    loop {
        out.clear();
        // Batch ~10 ms of frames per write at real time (fewer syscalls), more at max speed.
        let mut info = ChunkInfo::default();
        for _ in 0..if speed == Speed::Max { 64 } else { 10 } {
            info = tx.next_chunk(&mut out);
            if info.finished {
                break;
            }
        }
        std::thread::sleep(pacer.wait_for(info.end_index));
        if !out.is_empty() {
            match link.write_all(&out) {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => {
                    tracing::debug!("link not drained: chunk dropped");
                }
                Err(e) => return Err(e),
            }
        }
        if info.finished || !keep_going(&tx.stats()) {
            link.flush()?;
            return Ok(());
        }
    }
}

/// The simulated device as an [`io::Read`]: the host's reader can consume it in-process (`ionm demo`) over the
/// very decoder a serial port feeds. Paced by `speed`; while the scenario has the device disconnected, reads
/// return `WouldBlock` so the host sees silence.
pub struct SimReader {
    tx: Transmitter,
    pacer: Pacer,
    buf: Vec<u8>,
    at: usize,
    finished: bool,
}

impl SimReader {
    /// A reader over `tx`, paced from now.
    pub fn new(tx: Transmitter, speed: Speed) -> Self {
        let pacer = Pacer::new(tx.sample_rate_hz(), speed);
        Self {
            tx,
            pacer,
            buf: Vec::with_capacity(64 * 1024),
            at: 0,
            finished: false,
        }
    }
}

impl Read for SimReader {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if self.at == self.buf.len() {
            if self.finished {
                return Ok(0);
            }
            self.buf.clear();
            self.at = 0;
            // Up to ~20 ms of stream per read, so the caller regains control regularly.
            let budget = (self.tx.sample_rate_hz() as usize / 50).max(1);
            let mut generated = 0;
            let mut end = 0;
            while generated < budget {
                let info = self.tx.next_chunk(&mut self.buf);
                generated += self.tx.samples_per_frame();
                end = info.end_index;
                if info.finished {
                    self.finished = true;
                    break;
                }
            }
            std::thread::sleep(self.pacer.wait_for(end));
            if self.buf.is_empty() {
                return if self.finished {
                    Ok(0)
                } else {
                    Err(io::ErrorKind::WouldBlock.into())
                };
            }
        }
        let n = dst.len().min(self.buf.len() - self.at);
        dst[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
