//! The simulated device's link layer: turns the simulator's samples, stimuli and status into wire frames, with
//! the scenario's link effects (disconnects, byte corruption), and paces them in real time if asked.

use crate::{Simulator, Truth};
use ionm_core::{Rng, StimulusEvent};
use ionm_wire::{ChannelDesc, DeviceDesc, Encoder, MAX_FRAME_LEN, MAX_SAMPLE_VALUES, MAX_STIMULI_PER_FRAME};
use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex};
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
    lead: bool,
    ahead: Ahead,
}

/// The frame generated ahead of the one being sent (stimulus lead).
#[derive(Default)]
struct Ahead {
    valid: bool,
    start: u64,
    n: usize,
    finished: bool,
    values: Vec<i32>,
    stimuli: Vec<StimulusEvent>,
    /// Its stimuli have gone out (in a chunk that reached the host).
    stimuli_sent: bool,
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
            lead: false,
            ahead: Ahead {
                values: vec![0; samples_per_frame * n_ch],
                stimuli: Vec::with_capacity(64),
                ..Ahead::default()
            },
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
    /// device info and status when due, the stimuli, then the samples.
    ///
    /// With the stimulus lead on ([`Transmitter::with_stimulus_lead`]) the simulator runs one frame
    /// ahead of the samples sent, as a device that schedules its own stimulator knows its next onsets: the
    /// stimuli of the *next* frame go out before this frame's samples, so every stimulus precedes the samples
    /// from one frame (≥ 1 ms) before its index, and the device info declares revision
    /// [`ionm_wire::DEVICE_REVISION_STIMULUS_LEAD`]. The samples themselves are not delayed.
    pub fn next_chunk(&mut self, out: &mut Vec<u8>) -> ChunkInfo {
        if !self.ahead.valid {
            // First frame (or lead off): generate it now.
            self.generate_ahead();
        }
        if self.ahead.n == 0 {
            return ChunkInfo {
                end_index: self.ahead.start,
                connected: self.sim.link_at(self.ahead.start).connected,
                finished: true,
            };
        }
        // The frame generated ahead becomes the current one.
        std::mem::swap(&mut self.values, &mut self.ahead.values);
        std::mem::swap(&mut self.stimuli, &mut self.ahead.stimuli);
        let (start, n, finished, stims_sent) = (
            self.ahead.start,
            self.ahead.n,
            self.ahead.finished,
            self.ahead.stimuli_sent,
        );
        self.ahead.valid = false;
        self.ahead.stimuli.clear();
        if self.lead && !finished {
            self.generate_ahead();
        }
        let connected = self.sim.link_at(start).connected;
        let n_ch = self.labels.len();
        let mark = out.len();
        if start >= self.next_info {
            self.next_info = start + self.info_every;
            self.push_device_info(out);
        }
        if !stims_sent {
            self.push_stimuli(out, false);
        }
        if self.ahead.valid {
            self.push_stimuli(out, true);
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
            // The simulator may be a frame ahead: report the state at the last sample sent.
            let end = start + n as u64;
            let st = ionm_wire::Status {
                sample_index: end,
                battery_percent: s.battery_percent,
                stimulator_fault: s.stimulator_fault,
                saturated: s.saturated,
                impedance_high: self.sim.impedance_high_at(end - 1),
            };
            let len = self.enc.status(&mut self.frame, &st).expect("status fits");
            out.extend_from_slice(&self.frame[..len]);
            self.stats.frames += 1;
        }
        if !connected {
            // The frames were numbered (the device's counter ran on) but never reached the host.
            out.truncate(mark);
            self.stats.withheld_frames += 1;
            // When the link comes back the host must relearn the format at once, and get the stimuli announced
            // in this chunk again.
            self.next_info = 0;
            self.ahead.stimuli_sent = false;
        } else {
            let rate = self.sim.link_at(start).corrupt_byte_rate;
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

    /// Generates the next frame into the look-ahead buffers.
    fn generate_ahead(&mut self) {
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
        let n_ch = self.labels.len();
        self.ahead.stimuli.clear();
        if n > 0 {
            self.sim
                .generate(n, &mut self.ahead.values[..n * n_ch], &mut self.ahead.stimuli);
        }
        self.ahead.start = start;
        self.ahead.n = n;
        self.ahead.finished = finished;
        self.ahead.valid = true;
        self.ahead.stimuli_sent = false;
    }

    /// Writes stimulus frames for the current frame's stimuli, or (`ahead`) for the frame generated ahead.
    fn push_stimuli(&mut self, out: &mut Vec<u8>, ahead: bool) {
        let list = std::mem::take(if ahead {
            &mut self.ahead.stimuli
        } else {
            &mut self.stimuli
        });
        for chunk in list.chunks(MAX_STIMULI_PER_FRAME) {
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
        if ahead {
            self.ahead.stimuli = list;
            self.ahead.stimuli_sent = true;
        } else {
            self.stimuli = list;
        }
    }

    /// Whether stimuli are announced a frame ahead (device-info revision
    /// [`ionm_wire::DEVICE_REVISION_STIMULUS_LEAD`]).
    pub fn stimulus_lead(&self) -> bool {
        self.lead
    }

    /// Announces stimuli a frame ahead and declares revision 2, when a frame covers the promised lead
    /// ([`ionm_wire::STIMULUS_LEAD_MS`]; true for every rate up to 64 channels × 64 kHz). Off by default (revision
    /// 1, each stimulus just before the frame holding its sample): a recording of a revision-2 stream does not
    /// yet replay to the same events (see benches/results/2026-11-27-vm/README.md). Call before the first chunk.
    pub fn with_stimulus_lead(mut self) -> Self {
        let rate = self.sim.device_info().sample_rate_hz;
        self.lead = self.samples_per_frame as u64 >= ionm_wire::stimulus_lead_samples(rate);
        self
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
        let revision = if self.lead {
            ionm_wire::DEVICE_REVISION_STIMULUS_LEAD
        } else {
            ionm_wire::PROTOCOL_VERSION
        };
        let len = self
            .enc
            .device_info_revision(&mut self.frame, &desc, revision)
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
    released_end: u64,
    truth: Option<Arc<Mutex<Option<Truth>>>>,
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
            released_end: 0,
            truth: None,
        }
    }

    /// Hands the simulator's ground truth over in `slot` when the scenario ends (the reader itself is usually
    /// moved into a host pipeline by then).
    pub fn with_truth(mut self, slot: Arc<Mutex<Option<Truth>>>) -> Self {
        self.truth = Some(slot);
        self
    }

    /// One past the last sample index of the chunk being handed out (the samples released so far): a
    /// caller that notes when this changes knows when each chunk really became readable.
    pub fn released_end(&self) -> u64 {
        self.released_end
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
                    if let Some(slot) = &self.truth
                        && let Ok(mut slot) = slot.lock()
                    {
                        *slot = Some(self.tx.simulator().truth().clone());
                    }
                    break;
                }
            }
            std::thread::sleep(self.pacer.wait_for(end));
            self.released_end = end;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scenario, SimConfig};
    use ionm_wire::{Decoder, Event};

    /// (index, index) pairs: a stimulus with the sample end received before it, or a frame's first and end.
    type Pairs = Vec<(u64, u64)>;

    /// Decodes a transmitter's output: (device revisions seen, stimuli with the sample end received before
    /// each, sample frames as (first, end)).
    fn decode(tx: &mut Transmitter) -> (Vec<u8>, Pairs, Pairs) {
        let mut bytes = Vec::new();
        while !tx.next_chunk(&mut bytes).finished {}
        let (mut revs, mut stims, mut frames) = (Vec::new(), Vec::new(), Vec::new());
        let mut received_end = 0u64;
        Decoder::new().decode(&bytes, |ev| match ev {
            Event::DeviceInfo(d) => revs.push(d.protocol_version()),
            Event::Stimuli(s) => stims.extend(s.iter().map(|s| (s.sample_index, received_end))),
            Event::Samples(s) => {
                frames.push((s.first_index(), s.first_index() + s.n_samples() as u64));
                received_end = s.first_index() + s.n_samples() as u64;
            }
            _ => {}
        });
        (revs, stims, frames)
    }

    fn sim(toml: &str) -> Simulator {
        Simulator::new(SimConfig {
            channels: 4,
            sample_rate_hz: 20_000,
            seed: 2,
            mains_hz: 50.0,
            scenario: Scenario::from_toml(toml).unwrap(),
        })
        .unwrap()
    }

    const SCENARIO: &str =
        "name = \"t\"\nduration_s = 3\n\n[[event]]\nkind = \"disconnect\"\nat_s = 1\nduration_s = 0.3\n";

    #[test]
    fn stimuli_are_announced_a_frame_ahead() {
        let mut tx = Transmitter::new(sim(SCENARIO)).with_stimulus_lead();
        assert!(tx.stimulus_lead());
        let expected = {
            let mut s = sim(SCENARIO);
            let mut v = vec![0; 4 * 20];
            let mut all = Vec::new();
            for _ in 0..3 * 1000 {
                s.generate(20, &mut v, &mut all);
            }
            all
        };
        let (revs, stims, frames) = decode(&mut tx);
        assert!(
            !revs.is_empty()
                && revs
                    .iter()
                    .all(|&r| r == ionm_wire::DEVICE_REVISION_STIMULUS_LEAD)
        );
        let lead = ionm_wire::stimulus_lead_samples(20_000);
        // The promise: no sample at or after `s − lead` had been sent when the stimulus came.
        for &(s, received_end) in &stims {
            assert!(
                received_end <= s - lead,
                "stimulus {s} after samples up to {received_end}"
            );
        }
        // Every stimulus outside the disconnection arrives exactly once (those announced just before the link
        // dropped may arrive although their samples do not).
        let got: Vec<u64> = stims.iter().map(|s| s.0).collect();
        let mut dedup = got.clone();
        dedup.dedup();
        assert_eq!(dedup, got);
        let outside: Vec<u64> = expected
            .iter()
            .map(|e| e.sample_index)
            .filter(|&s| !(20_000..26_000 + 20).contains(&s))
            .collect();
        assert!(outside.iter().all(|s| got.contains(s)), "a stimulus was lost");
        assert!(outside.len() > 20);
        // Samples: contiguous except for the disconnection, whatever the look-ahead.
        let gaps: Vec<(u64, u64)> = frames
            .windows(2)
            .filter(|w| w[0].1 != w[1].0)
            .map(|w| (w[0].1, w[1].0))
            .collect();
        assert_eq!(gaps, vec![(20_000, 26_000)]);
        assert_eq!(frames.last().unwrap().1, 60_000);
    }

    #[test]
    fn without_the_lead_stimuli_come_just_before_their_frame() {
        let mut tx = Transmitter::new(sim(SCENARIO));
        assert!(!tx.stimulus_lead());
        let (revs, stims, _) = decode(&mut tx);
        assert!(revs.iter().all(|&r| r == ionm_wire::PROTOCOL_VERSION));
        assert!(stims.iter().all(|&(s, received_end)| received_end <= s));
        // Some stimulus comes less than 1 ms ahead of the samples already sent.
        assert!(stims.iter().any(|&(s, received_end)| received_end + 20 > s));
    }
}
