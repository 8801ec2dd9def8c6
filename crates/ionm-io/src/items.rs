//! Item sources: streams that are already [`Acquired`] items (recordings, captures), replayed on a named
//! thread at a chosen speed, with seeking.

use crate::assemble::Assembler;
use crate::stats::IngestStats;
use ionm_core::{Acquired, LinkEvent};
use ionm_wire::Decoder;
use ringbuf::{HeapRb, traits::*};
use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A source of acquisition items in stream order (a recording, a capture of wire bytes).
pub trait ItemSource: Send + 'static {
    /// For logs and the status bar.
    fn describe(&self) -> String;
    /// The next item; `Ok(None)` at the end.
    fn next_item(&mut self) -> Result<Option<Acquired>, String>;
    /// The next item written into `slot`; false at the end (`slot` unchanged). Sources that can write a sample
    /// block in place (into a `slot` that already holds one) override this: the replay thread reuses one slot,
    /// and an 8 kB block moved through queues item by item costs more than decoding it.
    fn next_into(&mut self, slot: &mut Acquired) -> Result<bool, String> {
        Ok(self.next_item()?.map(|item| *slot = item).is_some())
    }
    /// Length of the stream in seconds, if known.
    fn duration_s(&self) -> Option<f64> {
        None
    }
    /// Re-positions at `stream_s`. The items after a seek must start with a [`Acquired::Device`] or a
    /// [`Acquired::Gap`] so that nothing downstream stitches across the jump. Sources that cannot seek say so.
    fn seek(&mut self, stream_s: f64) -> Result<(), String> {
        let _ = stream_s;
        Err(format!("{} cannot seek", self.describe()))
    }
}

/// How fast to replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReplaySpeed {
    /// As fast as the consumer takes it (never drops: the replay waits for room in the ring).
    Max,
    /// This many times real time (1.0 = real time).
    Factor(f64),
}

impl std::str::FromStr for ReplaySpeed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "max" => Ok(Self::Max),
            "realtime" => Ok(Self::Factor(1.0)),
            f => match f.trim_end_matches('x').parse::<f64>() {
                Ok(x) if x > 0.0 && x.is_finite() => Ok(Self::Factor(x)),
                _ => Err(format!(
                    "speed must be realtime, max or a positive factor, not {s:?}"
                )),
            },
        }
    }
}

/// Shared controls and position of a running replay.
#[derive(Debug, Default)]
pub struct ReplayControl {
    /// Stream position of the last item pushed, in µs.
    pub position_us: AtomicU64,
    /// Requested seek target in µs + 1 (0: none).
    seek_us: AtomicU64,
    /// Speed factor × 1000 (0: max).
    speed_milli: AtomicU64,
    /// Paused.
    pub paused: AtomicBool,
    /// Length of the stream in µs + 1 (0: unknown).
    duration_us: AtomicU64,
}

impl ReplayControl {
    /// Asks the replay to jump to `stream_s`.
    pub fn seek(&self, stream_s: f64) {
        self.seek_us.store((stream_s.max(0.0) * 1e6) as u64 + 1, Relaxed);
    }
    /// Changes the speed.
    pub fn set_speed(&self, speed: ReplaySpeed) {
        let v = match speed {
            ReplaySpeed::Max => 0,
            ReplaySpeed::Factor(f) => ((f * 1000.0).round() as u64).max(1),
        };
        self.speed_milli.store(v, Relaxed);
    }
    /// The current speed.
    pub fn speed(&self) -> ReplaySpeed {
        match self.speed_milli.load(Relaxed) {
            0 => ReplaySpeed::Max,
            m => ReplaySpeed::Factor(m as f64 / 1000.0),
        }
    }
    /// Length of the stream, s, if the source knows it.
    pub fn duration_s(&self) -> Option<f64> {
        match self.duration_us.load(Relaxed) {
            0 => None,
            d => Some((d - 1) as f64 / 1e6),
        }
    }

    /// Position, s.
    pub fn position_s(&self) -> f64 {
        self.position_us.load(Relaxed) as f64 / 1e6
    }
}

/// Starts replaying `source` on a thread named `ionm-replay`. Items go into a ring that the pipeline drains; the
/// replay waits for room rather than dropping, at any speed, so a replay is lossless and deterministic.
pub fn spawn_replay(
    mut source: impl ItemSource,
    speed: ReplaySpeed,
    ring_capacity: usize,
) -> std::io::Result<(crate::ReaderHandle, crate::AcquiredConsumer, Arc<ReplayControl>)> {
    let (mut prod, cons) = HeapRb::<Acquired>::new(ring_capacity.max(16)).split();
    let stats = Arc::new(IngestStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicBool::new(false));
    let control = Arc::new(ReplayControl::default());
    control.set_speed(speed);
    if let Some(d) = source.duration_s() {
        control.duration_us.store((d.max(0.0) * 1e6) as u64 + 1, Relaxed);
    }
    let thread = {
        let (stats, stop, finished, control) =
            (stats.clone(), stop.clone(), finished.clone(), control.clone());
        std::thread::Builder::new()
            .name("ionm-replay".into())
            .spawn(move || {
                let what = source.describe();
                stats.connected.store(true, Relaxed);
                let mut push = |item: Acquired, stop: &AtomicBool| {
                    // (Moves the item into the ring: one copy of a sample block.)
                    let mut item = item;
                    loop {
                        match prod.try_push(item) {
                            Ok(()) => return true,
                            Err(back) => {
                                if stop.load(Relaxed) {
                                    return false;
                                }
                                item = back;
                                std::thread::sleep(Duration::from_micros(200));
                            }
                        }
                    }
                };
                push(
                    Acquired::Link(LinkEvent::Connected {
                        source: what.clone(),
                        reconnects: 0,
                    }),
                    &stop,
                );
                let mut rate = 0.0f64;
                // Pacing: stream time `anchor_s` was reached at wall time `anchor`.
                let mut anchor = Instant::now();
                let mut anchor_s = 0.0f64;
                let mut last_speed = control.speed();
                // The source writes each item into this slot (sample blocks in place); it is moved into the
                // ring and a fresh block takes its place.
                let mut slot = Acquired::Samples(ionm_core::SampleBlock::empty());
                let reason = loop {
                    if stop.load(Relaxed) {
                        break "stopped".to_owned();
                    }
                    let seek = control.seek_us.swap(0, Relaxed);
                    if seek > 0 {
                        let to = (seek - 1) as f64 / 1e6;
                        match source.seek(to) {
                            Ok(()) => {
                                tracing::info!(to, "replay: seek");
                                anchor = Instant::now();
                                anchor_s = to;
                            }
                            Err(e) => tracing::warn!(error = %e, "replay: seek refused"),
                        }
                    }
                    if control.paused.load(Relaxed) {
                        std::thread::sleep(Duration::from_millis(10));
                        anchor = Instant::now();
                        anchor_s = control.position_s();
                        continue;
                    }
                    match source.next_into(&mut slot) {
                        Ok(true) => {}
                        Ok(false) => break "end of recording".to_owned(),
                        Err(e) => {
                            tracing::error!(error = %e, %what, "replay failed");
                            break e;
                        }
                    }
                    match &slot {
                        Acquired::Device(d) => rate = f64::from(d.sample_rate_hz),
                        Acquired::Samples(b) if rate > 0.0 => {
                            IngestStats::add(&stats.sample_frames, 1);
                            IngestStats::add(&stats.samples, b.n_samples() as u64);
                            let end_s = b.end_index() as f64 / rate;
                            control.position_us.store((end_s * 1e6) as u64, Relaxed);
                            let speed = control.speed();
                            if speed != last_speed {
                                last_speed = speed;
                                anchor = Instant::now();
                                anchor_s = end_s;
                            }
                            if let ReplaySpeed::Factor(f) = speed {
                                let due = anchor + Duration::from_secs_f64(((end_s - anchor_s) / f).max(0.0));
                                let now = Instant::now();
                                if due > now {
                                    std::thread::sleep(due - now);
                                }
                            }
                        }
                        Acquired::Stimulus(_) => IngestStats::add(&stats.stimuli, 1),
                        Acquired::Gap(g) => {
                            IngestStats::add(&stats.gaps, 1);
                            IngestStats::add(&stats.gap_samples, g.samples());
                        }
                        _ => {}
                    }
                    let item =
                        std::mem::replace(&mut slot, Acquired::Samples(ionm_core::SampleBlock::empty()));
                    if !push(item, &stop) {
                        break "stopped".to_owned();
                    }
                };
                push(Acquired::Link(LinkEvent::Ended { reason }), &stop);
                stats.connected.store(false, Relaxed);
                finished.store(true, Relaxed);
            })?
    };
    Ok((
        crate::reader::handle(stats, stop, finished, thread),
        cons,
        control,
    ))
}

/// A capture of wire bytes (e.g. `firmware-sim > case.ionmraw`) as an item source: decoded and assembled
/// exactly as a live link would be.
pub struct CaptureSource<R> {
    name: String,
    reader: R,
    decoder: Decoder,
    assembler: Assembler,
    stats: IngestStats,
    queue: VecDeque<Acquired>,
    buf: Vec<u8>,
    ended: bool,
}

impl<R: Read + Send + 'static> CaptureSource<R> {
    /// Reads `reader`, described as `name`.
    pub fn new(name: impl Into<String>, reader: R) -> Self {
        Self {
            name: name.into(),
            reader,
            decoder: Decoder::new(),
            assembler: Assembler::new(),
            stats: IngestStats::default(),
            queue: VecDeque::new(),
            buf: vec![0; 64 * 1024],
            ended: false,
        }
    }
}

impl<R: Read + Send + 'static> ItemSource for CaptureSource<R> {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn next_item(&mut self) -> Result<Option<Acquired>, String> {
        while self.queue.is_empty() && !self.ended {
            let n = self
                .reader
                .read(&mut self.buf)
                .map_err(|e| format!("reading {}: {e}", self.name))?;
            if n == 0 {
                self.ended = true;
                if self.decoder.pending() > 0 {
                    tracing::warn!(bytes = self.decoder.pending(), "capture ends inside a frame");
                }
                break;
            }
            let (dec, asm, stats, queue) = (
                &mut self.decoder,
                &mut self.assembler,
                &self.stats,
                &mut self.queue,
            );
            dec.decode(&self.buf[..n], |ev| {
                asm.on_event(ev, stats, &mut |i| queue.push_back(i))
            });
        }
        Ok(self.queue.pop_front())
    }
}

impl ItemSource for Box<dyn ItemSource> {
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn next_item(&mut self) -> Result<Option<Acquired>, String> {
        (**self).next_item()
    }
    fn next_into(&mut self, slot: &mut Acquired) -> Result<bool, String> {
        (**self).next_into(slot)
    }
    fn duration_s(&self) -> Option<f64> {
        (**self).duration_s()
    }
    fn seek(&mut self, stream_s: f64) -> Result<(), String> {
        (**self).seek(stream_s)
    }
}
