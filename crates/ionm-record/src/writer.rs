//! [`RecordingWriter`]: the synchronous core of the recorder. It turns `Acquired` items and `Event`s into BDF+D
//! files; [`crate::Recorder`] runs it on its own thread behind a bounded queue.

use crate::error::RecorderError;
use crate::sidecar::{Sidecar, SidecarCounts, sidecar_path};
use crate::stats::RecorderStats;
use crate::text::{self, GapReason, StartText};
use crate::{FORMAT_VERSION, TRIGGER_LABEL, time};
use ionm_core::events::Event;
use ionm_core::{Acquired, DeviceInfo, Gap, SampleBlock, StimulusEvent};
use ionm_edf::{
    EdfWriter, PatientId, RecordingId, SampleFormat, SignalSpec, StartDateTime, Variant, WriterConfig,
};
use std::collections::VecDeque;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes the writer's time-keeping TAL may take in every record (see `ionm_edf`).
const TIMEKEEPING_BYTES: usize = 25;
/// Smallest annotation space per record: the time-keeping TAL plus one annotation of the longest text with onset
/// and duration.
const MIN_ANNOTATION_BYTES: usize = 384;
/// Most stimuli waiting for a record that has not started yet.
const MAX_FUTURE_TRIGGERS: usize = 4096;
/// Most samples per record per signal the recorder accepts (a 1 s record at 1 MHz).
const MAX_SAMPLES_PER_RECORD: f64 = 1e6;

/// How to record. `Default` gives an anonymous recording ("X X X X") starting now (UTC), 0.1 s records when the
/// sample rate is a multiple of 10 Hz (1 s otherwise), a crash-safe flush at least every 250 ms of stream time
/// and of wall time, and a queue of 2048 blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct RecorderConfig {
    /// EDF+ patient subfields; empty ones are written as "X".
    pub patient: PatientId,
    /// Hospital administration code of the investigation (empty: "X").
    pub admincode: String,
    /// Technician (empty: "X").
    pub technician: String,
    /// Header start date and time; `None` takes the system clock (UTC, EDF has no zone field) when the header
    /// is written.
    pub start: Option<StartDateTime>,
    /// The protocol (free text or TOML) stored in the sidecar.
    pub protocol: Option<String>,
    /// Data record duration in seconds; `None` chooses 0.1 s when the sample rate is a multiple of 10 Hz and 1 s
    /// otherwise. Sample rate × duration must be a whole number.
    pub record_duration_s: Option<f64>,
    /// Write BDF+D: a gap at a record boundary makes the next record start later instead of being padded.
    /// Default false (BDF+C, every gap padded and annotated): EDFlib/pyedflib refuse every "+D" file and MNE
    /// reads one as if it were continuous (times after a gap come out wrong), while BDF+C keeps the time axis
    /// right in every reader.
    pub discontinuous: bool,
    /// In BDF+C, a gap longer than this (seconds) is not padded: the file is closed and the recording continues
    /// in a numbered file (`rec-2.bdf`) from the first sample after the gap.
    pub max_padded_gap_s: f64,
    /// Longest time between crash-safe flushes, in stream time and in wall time.
    pub flush_interval: Duration,
    /// Messages the recorder's queue holds (one message is one sample block of up to
    /// [`ionm_core::MAX_BLOCK_VALUES`] values, ≈ 8 kB, or one other item).
    pub queue_capacity: usize,
    /// Annotation space per second of recording, bytes (at least 384 per record).
    pub annotation_bytes_per_s: usize,
    /// Most annotations waiting for room in the data records; more are dropped and counted.
    pub max_pending_annotations: usize,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            patient: PatientId::default(),
            admincode: String::new(),
            technician: String::new(),
            start: None,
            protocol: None,
            record_duration_s: None,
            discontinuous: false,
            max_padded_gap_s: 30.0,
            flush_interval: Duration::from_millis(250),
            queue_capacity: 2048,
            annotation_bytes_per_s: 10_240,
            max_pending_annotations: 100_000,
        }
    }
}

impl RecorderConfig {
    /// Checks everything that can be checked before the device is known.
    pub fn validate(&self) -> Result<(), RecorderError> {
        let bad = |what: String| Err(RecorderError::Config(what));
        if self.flush_interval.is_zero() {
            return bad("flush interval 0".into());
        }
        if self.max_padded_gap_s.is_nan() || self.max_padded_gap_s < 0.0 {
            return bad(format!("max padded gap {} s", self.max_padded_gap_s));
        }
        if self.queue_capacity == 0 {
            return bad("queue capacity 0".into());
        }
        if self.max_pending_annotations == 0 {
            return bad("max pending annotations 0".into());
        }
        if let Some(d) = self.record_duration_s
            && !(d.is_finite() && d > 0.0 && d <= 60.0)
        {
            return bad(format!("record duration {d} s (0 < d ≤ 60)"));
        }
        // Let the EDF writer judge the header text fields.
        let probe = WriterConfig {
            format: SampleFormat::Bdf24,
            discontinuous: true,
            patient: self.patient.clone(),
            recording: recording_id(self, ""),
            start: self.start.unwrap_or_else(time::now_utc),
            first_record_offset: 0.0,
            record_duration: 1.0,
            signals: vec![SignalSpec::new("x", "uV", 1, (-1.0, 1.0), SampleFormat::Bdf24)],
            annotation_bytes_per_record: MIN_ANNOTATION_BYTES,
        };
        EdfWriter::new(std::io::Cursor::new(Vec::new()), &probe)
            .map(drop)
            .map_err(|e| RecorderError::Config(format!("header fields: {e}")))
    }
}

/// The EDF+ recording field: `Startdate dd-MMM-yyyy <admincode> <technician> ionm <firmware>` (unknown subfields
/// "X", spaces in the firmware as "_"), cut to the 80 characters of the field.
fn recording_id(config: &RecorderConfig, firmware: &str) -> RecordingId {
    // "Startdate dd-MMM-yyyy " is 22 characters; the subfields and their separators follow.
    let used = 22 + config.admincode.len().max(1) + config.technician.len().max(1) + " ionm ".len() + 1;
    let room = 80usize.saturating_sub(used);
    let additional: String = firmware
        .chars()
        .map(|c| if c == ' ' { '_' } else { c })
        .filter(|c| c.is_ascii_graphic())
        .take(room)
        .collect();
    RecordingId {
        admincode: config.admincode.clone(),
        technician: config.technician.clone(),
        equipment: "ionm".to_owned(),
        additional,
    }
}

/// One file's summary, as in its sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// The recording.
    pub path: PathBuf,
    /// Its counters.
    pub counts: SidecarCounts,
}

/// What a finished recording produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordingSummary {
    /// Every file written, in order (one per device session / channel layout).
    pub files: Vec<FileSummary>,
}

/// When an annotation happened.
#[derive(Debug, Clone, Copy)]
enum At {
    /// At an absolute sample index.
    Index(u64),
    /// At a stream time (s since sample index 0).
    Stream(f64),
}

#[derive(Debug)]
struct Ann {
    at: At,
    duration_s: Option<f64>,
    text: String,
}

/// Annotations waiting for a data record. Urgent ones (gaps that padded the record being written, the end of the
/// recording) go first so that they land in the record whose padding they describe.
#[derive(Debug, Default)]
struct AnnQueue {
    urgent: VecDeque<Ann>,
    normal: VecDeque<Ann>,
}

impl AnnQueue {
    fn is_empty(&self) -> bool {
        self.urgent.is_empty() && self.normal.is_empty()
    }
}

/// Decimal digits of the integer part of |x|.
fn int_digits(x: f64) -> usize {
    let mut n = x.abs().floor();
    let mut d = 1;
    while n >= 10.0 && d < 20 {
        n /= 10.0;
        d += 1;
    }
    d
}

/// An upper bound of the bytes a TAL takes: sign, integer part (+1 for a carry when rounding to ns), point and 9
/// decimals for onset and duration, the text and its three terminators.
fn tal_bound(onset: f64, duration: Option<f64>, text: &str) -> usize {
    let time = |x: f64| 1 + int_digits(x) + 1 + 1 + 9;
    time(onset) + duration.map_or(0, time) + text.len() + 3
}

/// The state of the file being written.
struct OpenFile {
    path: PathBuf,
    writer: EdfWriter<BufWriter<File>>,
    sidecar: Sidecar,
    n_channels: usize,
    fs: f64,
    spr: usize,
    origin: u64,
    rec_start: u64,
    rec_fill: usize,
    chans: Vec<Vec<i32>>,
    trig: Vec<i32>,
    adc: (i32, i32),
    /// Bytes of each record's annotation signal available for annotations (time-keeping TAL excluded).
    ann_budget: usize,
    samples_since_flush: u64,
    records_since_flush: u64,
    record_bytes: u64,
    counts: SidecarCounts,
}

impl OpenFile {
    fn next_index(&self) -> u64 {
        self.rec_start + self.rec_fill as u64
    }

    fn onset(&self, at: At) -> f64 {
        let t = match at {
            At::Index(i) => (i as f64 - self.origin as f64) / self.fs,
            At::Stream(s) => s - self.origin as f64 / self.fs,
        };
        if t < 0.0 {
            tracing::debug!(t, "annotation before the first recorded sample: written at 0");
        }
        t.max(0.0)
    }

    /// Puts a stimulus code into the trigger buffer (the lowest code wins when two share a sample).
    fn mark(&mut self, index: u64, code: u8) {
        let k = (index - self.rec_start) as usize;
        let old = self.trig[k];
        self.trig[k] = if old == 0 {
            i32::from(code)
        } else {
            old.min(i32::from(code))
        };
    }
}

/// The synchronous recorder: feed it `Acquired` items and `Event`s in stream order; it writes BDF+D files with a
/// trigger channel and annotations (see the crate docs for the format) and flushes them crash-safely.
///
/// Used by [`crate::Recorder`] on its own thread; usable directly where no queue is needed (e.g. converting a
/// replay into a recording).
pub struct RecordingWriter {
    config: RecorderConfig,
    base: PathBuf,
    stats: Arc<RecorderStats>,
    /// The file created for the next recording (created early so that errors surface early).
    created: Option<(PathBuf, File)>,
    device: Option<Arc<DeviceInfo>>,
    file: Option<OpenFile>,
    anns: AnnQueue,
    future_triggers: Vec<(u64, u8)>,
    pending_gap: Option<Gap>,
    last_status: (u64, u64, bool),
    previous_file: Option<String>,
    summaries: Vec<FileSummary>,
    last_flush: Instant,
    warned_no_device: bool,
    warned_shape: bool,
    warned_undecoded: bool,
    stimuli_before_open: u64,
    finished: bool,
}

impl std::fmt::Debug for RecordingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingWriter")
            .field("base", &self.base)
            .field("device", &self.device)
            .field("open", &self.file.as_ref().map(|f| &f.path))
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RecorderError + '_ {
    move |source| RecorderError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The path of the `n`-th file of a recording (`n` ≥ 2): `rec.bdf` → `rec-2.bdf`.
pub fn numbered_path(base: &Path, n: usize) -> PathBuf {
    if n <= 1 {
        return base.to_owned();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match base.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    base.with_file_name(name)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Printable ASCII, at most 16 characters, never an annotation or trigger label.
fn header_label(label: &str, channel: usize) -> String {
    let mut s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '_'
            }
        })
        .take(16)
        .collect();
    let t = s.trim();
    if t.is_empty() || t == TRIGGER_LABEL || t == ionm_edf::BDF_ANNOTATIONS || t == ionm_edf::EDF_ANNOTATIONS
    {
        s = format!("ch{}", channel + 1);
    }
    s
}

impl RecordingWriter {
    /// Creates (truncates) `path`; the header is written when the first samples of a declared device arrive.
    pub fn new(
        path: impl AsRef<Path>,
        config: RecorderConfig,
        stats: Arc<RecorderStats>,
    ) -> Result<Self, RecorderError> {
        config.validate()?;
        let base = path.as_ref().to_owned();
        let file = File::create(&base).map_err(io_err(&base))?;
        Ok(Self {
            config,
            created: Some((base.clone(), file)),
            base,
            stats,
            device: None,
            file: None,
            anns: AnnQueue::default(),
            future_triggers: Vec::new(),
            pending_gap: None,
            last_status: (0, 0, false),
            previous_file: None,
            summaries: Vec::new(),
            last_flush: Instant::now(),
            warned_no_device: false,
            warned_shape: false,
            warned_undecoded: false,
            stimuli_before_open: 0,
            finished: false,
        })
    }

    /// The counters this writer updates.
    pub fn stats(&self) -> &Arc<RecorderStats> {
        &self.stats
    }

    /// The file being written, once samples have arrived.
    pub fn current_path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path.as_path())
    }

    /// Handles one acquisition item.
    pub fn handle(&mut self, item: &Acquired) -> Result<(), RecorderError> {
        match item {
            Acquired::Device(d) => self.on_device(d),
            Acquired::Samples(b) => self.handle_samples(b, false),
            Acquired::Stimulus(s) => {
                self.on_stimulus(s);
                Ok(())
            }
            Acquired::Status(s) => {
                let flags = (s.saturated, s.impedance_high, s.stimulator_fault);
                if flags != self.last_status {
                    self.last_status = flags;
                    self.push_ann(At::Index(s.sample_index), None, text::status(s), false);
                }
                Ok(())
            }
            Acquired::Gap(g) => {
                self.pending_gap = Some(match self.pending_gap {
                    Some(p) => Gap {
                        frames: p.frames.saturating_add(g.frames),
                        from: p.from.min(g.from),
                        ..*g
                    },
                    None => *g,
                });
                Ok(())
            }
            Acquired::Link(l) => {
                let at = At::Index(self.file.as_ref().map_or(0, OpenFile::next_index));
                self.push_ann(at, None, text::link(l), false);
                Ok(())
            }
        }
    }

    /// Handles one event of the event stream: alarms, baselines, markers and corrections become annotations at
    /// their stream time; the rest is ignored (devices, gaps, links and statuses come from the `Acquired` items,
    /// averages and statistics belong in the JSON Lines output).
    pub fn handle_event(&mut self, event: &Event) {
        let (s, t) = match event {
            Event::Alarm(a) => (a.stream_s, text::alarm(a)),
            Event::Baseline(b) => (b.stream_s, text::baseline(b)),
            Event::Marker(m) => (m.stream_s, text::marker(m)),
            Event::Correction(c) => (c.stream_s, text::correction(c)),
            _ => return,
        };
        if s.is_finite() {
            self.push_ann(At::Stream(s), None, t, false);
        }
    }

    fn push_ann(&mut self, at: At, duration_s: Option<f64>, text: String, urgent: bool) {
        let ann = Ann { at, duration_s, text };
        if urgent {
            self.anns.urgent.push_back(ann);
        } else if self.anns.normal.len() >= self.config.max_pending_annotations {
            let n = self
                .stats
                .annotations_dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Some(f) = self.file.as_mut() {
                f.counts.annotations_dropped += 1;
            }
            if (n + 1).is_power_of_two() {
                tracing::warn!(dropped = n + 1, "too many annotations waiting: dropping");
            }
        } else {
            self.anns.normal.push_back(ann);
        }
    }

    fn on_stimulus(&mut self, s: &StimulusEvent) {
        RecorderStats::add(&self.stats.stimuli, 1);
        self.push_ann(At::Index(s.sample_index), None, text::stimulus(s), false);
        let code = s.stimulator.code();
        if code == 0 {
            if let Some(f) = self.file.as_mut() {
                f.counts.stimuli += 1;
            } else {
                self.stimuli_before_open += 1;
            }
            tracing::warn!(
                index = s.sample_index,
                "stimulator code 0 cannot be marked in the trigger channel"
            );
            return;
        }
        match self.file.as_mut() {
            Some(f) => {
                f.counts.stimuli += 1;
                let end = f.rec_start + f.spr as u64;
                if s.sample_index >= end {
                    self.future(s.sample_index, code);
                } else if s.sample_index >= f.rec_start {
                    f.mark(s.sample_index, code);
                } else {
                    f.counts.late_stimuli += 1;
                    tracing::debug!(
                        index = s.sample_index,
                        "stimulus after its record was written: annotated only"
                    );
                }
            }
            None => {
                self.stimuli_before_open += 1;
                self.future(s.sample_index, code);
            }
        }
    }

    fn future(&mut self, index: u64, code: u8) {
        if self.future_triggers.len() >= MAX_FUTURE_TRIGGERS {
            tracing::warn!(index, "too many stimuli ahead of the samples: annotated only");
            return;
        }
        self.future_triggers.push((index, code));
    }

    /// Moves the stimuli of the record that just started into its trigger buffer; drops the ones before it (they
    /// fell into a gap and are annotated).
    fn apply_future(file: &mut OpenFile, future: &mut Vec<(u64, u8)>) {
        if future.is_empty() {
            return;
        }
        let end = file.rec_start + file.spr as u64;
        future.retain(|&(i, code)| {
            if i >= end {
                return true;
            }
            if i >= file.rec_start {
                file.mark(i, code);
            }
            false
        });
    }

    fn on_device(&mut self, d: &Arc<DeviceInfo>) -> Result<(), RecorderError> {
        if self.device.as_deref() == Some(&**d) {
            return Ok(());
        }
        let old = self.device.replace(d.clone());
        self.warned_shape = false;
        let Some(file) = self.file.take() else {
            self.pending_gap = None;
            if old.is_some() {
                tracing::info!("device changed before any samples were recorded");
            }
            return Ok(());
        };
        let restart = old.as_ref().is_some_and(|o| o.session_id != d.session_id);
        let (reason, what) = if restart {
            ("device_restart", "device restart")
        } else {
            ("device_changed", "device changed")
        };
        let old_session = old.as_ref().map_or(0, |o| o.session_id);
        let what = format!("{what}: session {old_session} -> {}", d.session_id);
        self.future_triggers.clear();
        self.stimuli_before_open = 0;
        self.split(file, reason, &what, 0)?;
        self.last_status = (0, 0, false);
        Ok(())
    }

    /// Closes `file` and prepares the next numbered file. `what` is annotated at the end of the old file and at
    /// the start of the new one; annotations at or after `carry_from` (an index of the new file) move to it.
    fn split(
        &mut self,
        file: OpenFile,
        reason: &str,
        what: &str,
        carry_from: u64,
    ) -> Result<(), RecorderError> {
        let next = numbered_path(&self.base, self.summaries.len() + 2);
        let old_name = file_name(&file.path);
        let carry: VecDeque<Ann> = if carry_from > 0 {
            let (keep, carry) = std::mem::take(&mut self.anns.normal)
                .into_iter()
                .partition(|a| !matches!(a.at, At::Index(i) if i >= carry_from));
            self.anns.normal = keep;
            carry
        } else {
            VecDeque::new()
        };
        let note = format!("{what}, continued in {}", file_name(&next));
        self.push_ann(At::Index(file.next_index()), None, text::sanitize(&note), false);
        self.end_file(file, reason, Some(file_name(&next)))?;
        let created = File::create(&next).map_err(io_err(&next))?;
        self.created = Some((next, created));
        self.previous_file = Some(old_name.clone());
        let note = format!("{what}, continues {old_name}");
        self.push_ann(At::Index(carry_from), None, text::sanitize(&note), false);
        self.anns.normal.extend(carry);
        tracing::info!(reason, "recording continues in a new file");
        Ok(())
    }

    /// Opens the next file for `device`, its first sample at `first`.
    fn open(&mut self, device: &Arc<DeviceInfo>, first: u64) -> Result<(), RecorderError> {
        let (path, file) = match self.created.take() {
            Some(c) => c,
            None => {
                let p = numbered_path(&self.base, self.summaries.len() + 1);
                let f = File::create(&p).map_err(io_err(&p))?;
                (p, f)
            }
        };
        let fs = f64::from(device.sample_rate_hz);
        let bad = |what: String| RecorderError::Device(what);
        if device.sample_rate_hz == 0 || device.channels.is_empty() {
            return Err(bad(format!(
                "{} Hz, {} channels",
                device.sample_rate_hz,
                device.channels.len()
            )));
        }
        let (lo, hi) = SampleFormat::Bdf24.digital_limits();
        if device.adc_min < lo || device.adc_max > hi || device.adc_min >= device.adc_max {
            return Err(bad(format!(
                "ADC range {}…{} does not fit BDF's 24 bits ({lo}…{hi})",
                device.adc_min, device.adc_max
            )));
        }
        let duration = self
            .config
            .record_duration_s
            .unwrap_or(if device.sample_rate_hz.is_multiple_of(10) {
                0.1
            } else {
                1.0
            });
        let spr_f = fs * duration;
        if (spr_f - spr_f.round()).abs() > 1e-6 || !(1.0..=MAX_SAMPLES_PER_RECORD).contains(&spr_f) {
            return Err(RecorderError::Config(format!(
                "record duration {duration} s × {fs} Hz is not a whole number of samples (1…1e6)"
            )));
        }
        let spr = spr_f.round() as usize;
        let mut signals = Vec::with_capacity(device.n_channels() + 1);
        for (c, ch) in device.channels.iter().enumerate() {
            if ch.gain_nv_per_lsb == 0 {
                return Err(bad(format!("channel {} ({:?}) has gain 0", c, ch.label)));
            }
            let g_uv = f64::from(ch.gain_nv_per_lsb) * 1e-3;
            let (mut pmin, mut pmax) = (f64::from(device.adc_min) * g_uv, f64::from(device.adc_max) * g_uv);
            let mut unit = "uV";
            for next in ["mV", "V"] {
                if pmin.abs().max(pmax.abs()) < 1e7 {
                    break;
                }
                pmin /= 1e3;
                pmax /= 1e3;
                unit = next;
            }
            signals.push(SignalSpec {
                label: header_label(&ch.label, c),
                transducer: String::new(),
                physical_dimension: unit.to_owned(),
                physical_min: pmin,
                physical_max: pmax,
                digital_min: device.adc_min,
                digital_max: device.adc_max,
                prefiltering: String::new(),
                samples_per_record: spr,
            });
        }
        signals.push(SignalSpec {
            label: TRIGGER_LABEL.to_owned(),
            transducer: "ionm stimulator code".to_owned(),
            physical_dimension: String::new(),
            physical_min: 0.0,
            physical_max: 255.0,
            digital_min: 0,
            digital_max: 255,
            prefiltering: String::new(),
            samples_per_record: spr,
        });
        let ann_bytes = ((self.config.annotation_bytes_per_s as f64 * duration).ceil() as usize)
            .max(MIN_ANNOTATION_BYTES);
        let start = self.config.start.unwrap_or_else(time::now_utc);
        let wcfg = WriterConfig {
            format: SampleFormat::Bdf24,
            discontinuous: self.config.discontinuous,
            patient: self.config.patient.clone(),
            recording: recording_id(&self.config, &device.firmware_version),
            start,
            first_record_offset: 0.0,
            record_duration: duration,
            signals,
            annotation_bytes_per_record: ann_bytes,
        };
        let mut writer = EdfWriter::new(BufWriter::with_capacity(1 << 20, file), &wcfg)?;
        // The header on storage at once, with 0 records: a valid (empty) file from the start.
        writer.flush()?;
        debug_assert_eq!(
            writer.header().variant == Variant::Discontinuous,
            self.config.discontinuous
        );
        let ann_signal = writer.header().signals.len() - 1;
        let ann_capacity = writer.header().signals[ann_signal].samples_per_record * 3;
        let record_bytes = writer.header().record_bytes();
        let sidecar = Sidecar {
            format: crate::sidecar::SIDECAR_FORMAT.to_owned(),
            format_version: FORMAT_VERSION,
            file: file_name(&path),
            created_utc: format!("{}Z", time::iso(&time::now_utc())),
            header_start: time::iso(&start),
            device: (**device).clone(),
            protocol: self.config.protocol.clone(),
            record_duration_s: duration,
            samples_per_record: spr,
            first_index: first,
            trigger_label: TRIGGER_LABEL.to_owned(),
            previous_file: self.previous_file.take(),
            next_file: None,
            finished: false,
            end_reason: None,
            counts: SidecarCounts::default(),
        };
        sidecar.write(&path).map_err(io_err(&sidecar_path(&path)))?;
        let start_note = text::start(&StartText {
            session_id: device.session_id,
            first_index: first,
            protocol_version: device.protocol_version,
            firmware: device.firmware_version.clone(),
        });
        self.anns.urgent.push_front(Ann {
            at: At::Index(first),
            duration_s: None,
            text: start_note,
        });
        let mut file = OpenFile {
            path,
            writer,
            sidecar,
            n_channels: device.n_channels(),
            fs,
            spr,
            origin: first,
            rec_start: first,
            rec_fill: 0,
            chans: vec![vec![0; spr]; device.n_channels()],
            trig: vec![0; spr],
            adc: (device.adc_min, device.adc_max),
            ann_budget: ann_capacity - TIMEKEEPING_BYTES,
            samples_since_flush: 0,
            records_since_flush: 0,
            record_bytes,
            counts: SidecarCounts::default(),
        };
        file.counts.stimuli = std::mem::take(&mut self.stimuli_before_open);
        Self::apply_future(&mut file, &mut self.future_triggers);
        RecorderStats::add(&self.stats.files, 1);
        tracing::info!(path = %file.path.display(), spr, duration, "recording started");
        self.file = Some(file);
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Handles a block of samples. `after_drop` says that blocks were dropped just before it (the recorder's
    /// queue was full), so a discontinuity is the recorder's own overrun. A block whose channels were not all
    /// decoded ([`SampleBlock::all_decoded`]) is not recorded (a warning; its instants become a gap).
    pub fn handle_samples(&mut self, block: &SampleBlock, after_drop: bool) -> Result<(), RecorderError> {
        let Some(device) = self.device.clone() else {
            if !self.warned_no_device {
                tracing::warn!("samples before any device declaration: not recorded");
                self.warned_no_device = true;
            }
            return Ok(());
        };
        if block.n_channels() != device.n_channels() || block.n_samples() == 0 {
            if !self.warned_shape {
                tracing::warn!(
                    channels = block.n_channels(),
                    expected = device.n_channels(),
                    "sample block does not match the device: not recorded"
                );
                self.warned_shape = true;
            }
            return Ok(());
        }
        if !block.all_decoded() {
            // Channels that were not decoded have no samples: the recording shows these instants as missing (an
            // unexplained gap).
            if !self.warned_undecoded {
                tracing::warn!(
                    decoded = format_args!("{:#x}", block.decoded_channels()),
                    "sample block with channels that were not decoded: not recorded"
                );
                self.warned_undecoded = true;
            }
            return Ok(());
        }
        if self.file.is_none() {
            self.open(&device, block.first_index())?;
        }
        let n = block.n_samples() as u64;
        let first = block.first_index();
        let mut skip = 0u64;
        let next = self.file.as_ref().map_or(first, OpenFile::next_index);
        if first < next {
            skip = (next - first).min(n);
            if let Some(f) = self.file.as_mut() {
                if f.counts.overlapping_samples == 0 {
                    tracing::warn!(first, expected = next, "samples overlap recorded ones: skipped");
                }
                f.counts.overlapping_samples += skip;
            }
            if skip == n {
                return Ok(());
            }
        } else if first > next {
            let (reason, frames) = match self.pending_gap.take() {
                Some(g) => (GapReason::Source(g.cause), g.frames),
                None if after_drop => (GapReason::RecorderOverrun, 0),
                None => (GapReason::Unexplained, 0),
            };
            self.gap(next, first, reason, frames)?;
        }
        self.pending_gap = None;
        if self.file.is_none() {
            // A long gap closed the file: the next one starts here.
            self.open(&device, first)?;
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        let nch = f.n_channels;
        let values = block.values();
        let (lo, hi) = f.adc;
        let mut i = skip as usize;
        let n = n as usize;
        while i < n {
            let Some(f) = self.file.as_mut() else {
                return Ok(());
            };
            let take = (f.spr - f.rec_fill).min(n - i);
            let mut clamped = 0u64;
            for (c, chan) in f.chans.iter_mut().enumerate() {
                let dst = &mut chan[f.rec_fill..f.rec_fill + take];
                for (s, d) in dst.iter_mut().enumerate() {
                    let v = values[(i + s) * nch + c];
                    *d = if v < lo || v > hi {
                        clamped += 1;
                        v.clamp(lo, hi)
                    } else {
                        v
                    };
                }
            }
            if clamped > 0 {
                f.counts.clamped_samples += clamped;
                tracing::warn!(clamped, "samples outside the ADC range: clamped");
            }
            f.rec_fill += take;
            f.counts.samples += take as u64;
            f.samples_since_flush += take as u64;
            RecorderStats::add(&self.stats.samples, take as u64);
            i += take;
            if f.rec_fill == f.spr {
                self.write_record()?;
            }
        }
        Ok(())
    }

    /// Records missing samples `[from, to)` (`from` is the next index of the open file).
    fn gap(&mut self, from: u64, to: u64, reason: GapReason, frames: u32) -> Result<(), RecorderError> {
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        let missing = to - from;
        f.counts.gaps += 1;
        f.counts.gap_samples += missing;
        RecorderStats::add(&self.stats.gaps, 1);
        let ann = Ann {
            at: At::Index(from),
            duration_s: Some(missing as f64 / f.fs),
            text: text::gap(reason, missing, frames),
        };
        tracing::info!(from, to, reason = reason.word(), "gap recorded");
        if self.config.discontinuous {
            if f.rec_fill == 0 {
                // At a record boundary: the next record simply starts later (EDF+D), nothing to pad.
                self.anns.urgent.push_back(ann);
                f.rec_start = to;
                f.trig.fill(0);
                Self::apply_future(f, &mut self.future_triggers);
                return Ok(());
            }
            self.anns.urgent.push_back(ann);
            let end = f.rec_start + f.spr as u64;
            if to < end {
                // The gap ends inside this record: pad the missing samples in place, the time grid continues.
                let upto = (to - f.rec_start) as usize;
                for chan in &mut f.chans {
                    chan[f.rec_fill..upto].fill(0);
                }
                f.rec_fill = upto;
            } else {
                // Pad to the end of the record; the next record starts at `to`.
                for chan in &mut f.chans {
                    chan[f.rec_fill..].fill(0);
                }
                f.rec_fill = f.spr;
                self.write_record_then(Some(to))?;
            }
            return Ok(());
        }
        if missing as f64 / f.fs > self.config.max_padded_gap_s {
            // Too long to pad: close this file (the gap annotated at its end) and continue in a new one.
            self.anns.urgent.push_back(ann);
            let seconds = missing as f64 / f.fs;
            if let Some(file) = self.file.take() {
                let what = format!("gap of {seconds:.3} s");
                self.split(file, "long_gap", &what, to)?;
            }
            return Ok(());
        }
        // BDF+C: pad every missing sample, record after record; the annotation lands in the first padded record.
        self.anns.urgent.push_back(ann);
        loop {
            let Some(f) = self.file.as_mut() else {
                return Ok(());
            };
            let upto = to.min(f.rec_start + f.spr as u64);
            let b = (upto - f.rec_start) as usize;
            for chan in &mut f.chans {
                chan[f.rec_fill..b].fill(0);
            }
            f.rec_fill = b;
            if b == f.spr {
                self.write_record()?;
            }
            if upto == to {
                return Ok(());
            }
        }
    }

    fn write_record(&mut self) -> Result<(), RecorderError> {
        self.write_record_then(None)
    }

    /// Writes the current record (full or padded), then starts the next one at `next_start` (default: right
    /// after).
    fn write_record_then(&mut self, next_start: Option<u64>) -> Result<(), RecorderError> {
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        let mut budget = f.ann_budget;
        let mut handed = 0u64;
        for queue in [&mut self.anns.urgent, &mut self.anns.normal] {
            while let Some(a) = queue.front() {
                let onset = f.onset(a.at);
                let need = tal_bound(onset, a.duration_s, &a.text);
                if need > budget {
                    break;
                }
                budget -= need;
                if let Some(a) = queue.pop_front() {
                    match f.writer.add_annotation(onset, a.duration_s, &a.text) {
                        Ok(()) => handed += 1,
                        Err(e) => {
                            f.counts.annotations_dropped += 1;
                            RecorderStats::add(&self.stats.annotations_dropped, 1);
                            tracing::warn!(error = %e, text = a.text, "annotation not written");
                        }
                    }
                }
            }
            if !queue.is_empty() {
                break;
            }
        }
        let start = (f.rec_start - f.origin) as f64 / f.fs;
        {
            let mut slices: Vec<&[i32]> = Vec::with_capacity(f.n_channels + 1);
            slices.extend(f.chans.iter().map(Vec::as_slice));
            slices.push(&f.trig);
            f.writer.write_record_at(start, &slices)?;
        }
        f.counts.records += 1;
        f.counts.annotations += handed;
        f.records_since_flush += 1;
        RecorderStats::add(&self.stats.records, 1);
        RecorderStats::add(&self.stats.bytes, f.record_bytes);
        RecorderStats::add(&self.stats.annotations, handed);
        f.rec_start = next_start.unwrap_or(f.rec_start + f.spr as u64);
        f.rec_fill = 0;
        f.trig.fill(0);
        Self::apply_future(f, &mut self.future_triggers);
        let interval = self.config.flush_interval.as_secs_f64();
        if f.samples_since_flush as f64 >= interval * f.fs {
            self.flush()?;
        }
        Ok(())
    }

    /// Makes every complete record written so far durable and valid (see [`ionm_edf::EdfWriter::flush`]).
    pub fn flush(&mut self) -> Result<(), RecorderError> {
        self.last_flush = Instant::now();
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        f.writer.flush()?;
        f.samples_since_flush = 0;
        f.records_since_flush = 0;
        RecorderStats::add(&self.stats.flushes, 1);
        Ok(())
    }

    /// Flushes if records were written and `flush_interval` of wall time has passed since the last flush.
    pub fn poll(&mut self, now: Instant) -> Result<(), RecorderError> {
        let due = now.saturating_duration_since(self.last_flush) >= self.config.flush_interval;
        if due && self.file.as_ref().is_some_and(|f| f.records_since_flush > 0) {
            self.flush()?;
        }
        Ok(())
    }

    /// How long until [`poll`](Self::poll) may have something to do.
    pub fn time_to_poll(&self, now: Instant) -> Duration {
        (self.last_flush + self.config.flush_interval).saturating_duration_since(now)
    }

    /// Closes the current file: the last partial record padded (with a `BAD_end_padding` annotation at the first
    /// padded sample), padding records after it while annotations still wait for room, the final flush and the
    /// sidecar.
    fn end_file(&mut self, file: OpenFile, reason: &str, next: Option<String>) -> Result<(), RecorderError> {
        self.file = Some(file);
        let next_index = self.file.as_ref().map_or(0, OpenFile::next_index);
        if let Some(g) = self.pending_gap.take()
            && g.to > next_index
        {
            let missing = g.to - next_index;
            let fs = self.file.as_ref().map_or(1.0, |f| f.fs);
            self.push_ann(
                At::Index(next_index),
                Some(missing as f64 / fs),
                text::gap(GapReason::Source(g.cause), missing, g.frames),
                true,
            );
            if let Some(f) = self.file.as_mut() {
                f.counts.gaps += 1;
                f.counts.gap_samples += missing;
            }
        }
        let padded = self.file.as_ref().is_some_and(|f| f.rec_fill > 0);
        if padded || !self.anns.is_empty() {
            let pad = self
                .file
                .as_ref()
                .map_or(0.0, |f| (f.spr - f.rec_fill) as f64 / f.fs);
            self.anns.urgent.push_front(Ann {
                at: At::Index(next_index),
                duration_s: Some(pad),
                text: text::END_TEXT.to_owned(),
            });
            // Every padding record takes at least one waiting annotation (each fits a record), so this ends.
            while let Some(f) = self.file.as_mut() {
                for chan in &mut f.chans {
                    chan[f.rec_fill..].fill(0);
                }
                f.rec_fill = f.spr;
                self.write_record()?;
                if self.anns.is_empty() {
                    break;
                }
            }
        }
        let Some(mut f) = self.file.take() else {
            return Ok(());
        };
        f.counts.end_index = Some(next_index);
        let records = f.counts.records;
        match f.writer.finish() {
            Ok(_) => {}
            Err(ionm_edf::EdfError::AnnotationsDropped { count }) => {
                f.counts.annotations_dropped += count as u64;
            }
            Err(e) => return Err(e.into()),
        }
        RecorderStats::add(&self.stats.flushes, 1);
        f.sidecar.counts = f.counts.clone();
        f.sidecar.finished = true;
        f.sidecar.end_reason = Some(reason.to_owned());
        f.sidecar.next_file = next;
        f.sidecar.write(&f.path).map_err(io_err(&sidecar_path(&f.path)))?;
        tracing::info!(path = %f.path.display(), records, reason, "recording file closed");
        self.summaries.push(FileSummary {
            path: f.path,
            counts: f.counts,
        });
        Ok(())
    }

    /// Ends the recording: closes the current file (see the crate docs for what the last record holds) and
    /// returns what was written. A file created but never given samples is removed, unless a device was
    /// declared, in which case it gets a header with no data records.
    pub fn finish(mut self) -> Result<RecordingSummary, RecorderError> {
        self.finish_inner()?;
        Ok(RecordingSummary {
            files: std::mem::take(&mut self.summaries),
        })
    }

    fn finish_inner(&mut self) -> Result<(), RecorderError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        if let Some(file) = self.file.take() {
            return self.end_file(file, "finished", None);
        }
        if let Some((path, file)) = self.created.take() {
            match self.device.clone() {
                Some(d) => {
                    // Header only: the device was declared but no samples came.
                    self.created = Some((path, file));
                    self.open(&d, 0)?;
                    self.anns = AnnQueue::default();
                    if let Some(file) = self.file.take() {
                        return self.end_file(file, "finished", None);
                    }
                }
                None => {
                    drop(file);
                    tracing::warn!(path = %path.display(), "no device declared: nothing recorded, file removed");
                    std::fs::remove_file(&path).map_err(io_err(&path))?;
                }
            }
        }
        Ok(())
    }
}

impl Drop for RecordingWriter {
    fn drop(&mut self) {
        if !self.finished
            && let Err(e) = self.finish_inner()
        {
            tracing::error!(error = %e, "recording writer dropped without finish(); closing failed");
        }
    }
}
