//! The streaming EDF+/BDF+ writer: records with per-signal sample counts, an annotation signal with the
//! time-keeping TAL of every record plus user annotations, and crash-safe flushes.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Cursor, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{EdfError, Result};
use crate::header::{
    Header, NUM_RECORDS_OFFSET, PatientId, RecordingId, SampleFormat, SignalHeader, SignalKind,
    StartDateTime, Variant, format_record_count,
};
use crate::tal::{write_tal, write_time};

/// Storage whose written data can be made durable (`fsync`-like). In-memory buffers do nothing.
pub trait Durable {
    /// Makes the data written so far durable (for a file: `File::sync_data`).
    fn sync_data(&mut self) -> io::Result<()>;
}

impl Durable for File {
    fn sync_data(&mut self) -> io::Result<()> {
        File::sync_data(self)
    }
}

impl<W: Durable + Write> Durable for BufWriter<W> {
    fn sync_data(&mut self) -> io::Result<()> {
        self.flush()?;
        self.get_mut().sync_data()
    }
}

impl Durable for Cursor<Vec<u8>> {
    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Durable for Cursor<&mut Vec<u8>> {
    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: Durable + ?Sized> Durable for &mut T {
    fn sync_data(&mut self) -> io::Result<()> {
        (**self).sync_data()
    }
}

/// One data signal to write.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalSpec {
    /// Label, at most 16 printable ASCII characters.
    pub label: String,
    /// Transducer type (80 characters).
    pub transducer: String,
    /// Physical dimension (8 characters), e.g. "uV".
    pub physical_dimension: String,
    /// Physical value of `digital_min` (may exceed `physical_max`).
    pub physical_min: f64,
    /// Physical value of `digital_max`.
    pub physical_max: f64,
    /// Smallest digital value (within the format's range).
    pub digital_min: i32,
    /// Largest digital value.
    pub digital_max: i32,
    /// Prefiltering (80 characters).
    pub prefiltering: String,
    /// Samples per data record: sample rate × record duration.
    pub samples_per_record: usize,
}

impl SignalSpec {
    /// A signal using the whole digital range of `format`.
    pub fn new(
        label: &str,
        physical_dimension: &str,
        samples_per_record: usize,
        (physical_min, physical_max): (f64, f64),
        format: SampleFormat,
    ) -> Self {
        let (digital_min, digital_max) = format.digital_limits();
        Self {
            label: label.to_owned(),
            transducer: String::new(),
            physical_dimension: physical_dimension.to_owned(),
            physical_min,
            physical_max,
            digital_min,
            digital_max,
            prefiltering: String::new(),
            samples_per_record,
        }
    }
}

/// Everything the writer needs to know up front.
#[derive(Debug, Clone, PartialEq)]
pub struct WriterConfig {
    /// EDF+ (16-bit) or BDF+ (24-bit).
    pub format: SampleFormat,
    /// EDF+D/BDF+D (records may have gaps) instead of EDF+C/BDF+C.
    pub discontinuous: bool,
    /// Patient subfields.
    pub patient: PatientId,
    /// Recording subfields (the start date is added).
    pub recording: RecordingId,
    /// Start date and time, to the second.
    pub start: StartDateTime,
    /// Start of the first record in seconds after `start` (the sub-second part), used by
    /// [`EdfWriter::write_record`] when no record has been written yet.
    pub first_record_offset: f64,
    /// Duration of a data record in seconds (written in at most 8 characters; 0 only without data signals).
    pub record_duration: f64,
    /// Data signals, in file order. The annotation signal is added after them.
    pub signals: Vec<SignalSpec>,
    /// Bytes reserved in every record for TALs (rounded up to whole samples); at least 32. The time-keeping TAL
    /// takes ~15–25 bytes; the rest holds user annotations (`+onset\x15duration\x14text\x14\0`).
    pub annotation_bytes_per_record: usize,
}

#[derive(Debug)]
struct Pending {
    onset: f64,
    duration: Option<f64>,
    text: String,
}

/// Longest time-keeping TAL: sign, 11 integer digits, dot, 9 decimals, 0x14 0x14 0x00.
const MAX_TIMEKEEPING: usize = 1 + 11 + 1 + 9 + 3;

/// Writes an EDF+ or BDF+ file record by record.
///
/// The header is written at creation with −1 ("unknown") data records. [`flush`](Self::flush) pushes the
/// records written so far to storage, makes them durable, then rewrites the record count in place and makes
/// that durable, so a process killed at any point leaves a file that is valid up to the last flush (and that
/// `EdfReader` also reads up to the last complete record). Writing reuses one record buffer and one TAL buffer:
/// no allocation per sample.
#[derive(Debug)]
pub struct EdfWriter<W: Write + Seek + Durable> {
    inner: Option<W>,
    header: Header,
    record: Vec<u8>,
    offsets: Vec<usize>,
    annotation_signal: usize,
    tal: String,
    queue: VecDeque<Pending>,
    written: u64,
    count_in_header: i64,
    /// Time base of the next automatic record start: (start, record number).
    time_base: (f64, u64),
    last_start: Option<f64>,
    poisoned: bool,
}

impl EdfWriter<BufWriter<File>> {
    /// Creates (truncates) a file and writes the header.
    pub fn create(path: impl AsRef<Path>, config: &WriterConfig) -> Result<Self> {
        Self::new(BufWriter::new(File::create(path)?), config)
    }
}

impl<W: Write + Seek + Durable> EdfWriter<W> {
    /// Validates the configuration and writes the header at the current position of `inner`, which must be the
    /// start of an empty file.
    pub fn new(mut inner: W, config: &WriterConfig) -> Result<Self> {
        let header = build_header(config)?;
        let bytes = header.to_bytes()?;
        // What a reader will see (numbers are rounded to 8 characters), so conversions use exactly that.
        let mut header = Header::parse(&bytes)?;
        inner.write_all(&bytes)?;
        let bps = header.bytes_per_sample();
        let mut offsets = Vec::with_capacity(header.signals.len() + 1);
        let mut off = 0;
        for s in &header.signals {
            offsets.push(off);
            off += s.samples_per_record * bps;
        }
        offsets.push(off);
        let annotation_signal = header.signals.len() - 1;
        header.declared_records = -1;
        Ok(Self {
            inner: Some(inner),
            record: vec![0; off],
            offsets,
            annotation_signal,
            tal: String::with_capacity(config.annotation_bytes_per_record),
            queue: VecDeque::new(),
            written: 0,
            count_in_header: -1,
            time_base: (config.first_record_offset, 0),
            last_start: None,
            poisoned: false,
            header,
        })
    }

    /// The header as stored (numbers as rounded into 8 characters; `declared_records` as last written).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Records written so far (flushed or not).
    pub fn records_written(&self) -> u64 {
        self.written
    }

    /// Annotations queued but not yet written into a record.
    pub fn pending_annotations(&self) -> usize {
        self.queue.len()
    }

    /// Start time the next [`write_record`](Self::write_record) will use, in seconds after the start date/time.
    pub fn next_record_start(&self) -> f64 {
        let (t0, n0) = self.time_base;
        t0 + (self.written - n0) as f64 * self.header.record_duration
    }

    fn annotation_capacity(&self) -> usize {
        self.offsets[self.annotation_signal + 1] - self.offsets[self.annotation_signal]
    }

    /// Queues an annotation; it is written into the next record(s) with room for it. `onset` is in seconds after
    /// the header's start date/time (like record starts), `duration` in seconds. The text must not contain the
    /// bytes 0x00, 0x14 or 0x15.
    pub fn add_annotation(&mut self, onset: f64, duration: Option<f64>, text: &str) -> Result<()> {
        if !onset.is_finite() || duration.is_some_and(|d| !d.is_finite() || d < 0.0) {
            return Err(EdfError::Annotation(format!(
                "onset {onset} / duration {duration:?} not finite/positive"
            )));
        }
        if text.bytes().any(|b| b == 0 || b == 0x14 || b == 0x15) {
            return Err(EdfError::Annotation(format!(
                "text {text:?} contains 0x00, 0x14 or 0x15"
            )));
        }
        let mut probe = String::new();
        write_tal(&mut probe, onset, duration, text);
        if probe.len() + MAX_TIMEKEEPING > self.annotation_capacity() {
            return Err(EdfError::Annotation(format!(
                "TAL of {} bytes does not fit in the {} bytes per record reserved for annotations",
                probe.len(),
                self.annotation_capacity()
            )));
        }
        self.queue.push_back(Pending {
            onset,
            duration,
            text: text.to_owned(),
        });
        Ok(())
    }

    /// Writes the next record, starting right after the previous one (or at `first_record_offset`). One slice
    /// of digital samples per data signal, each of exactly that signal's samples per record, within its digital
    /// range.
    pub fn write_record(&mut self, signals: &[&[i32]]) -> Result<()> {
        self.write_record_at(self.next_record_start(), signals)
    }

    /// Writes a record starting `start` seconds after the header's start date/time. In a continuous file the
    /// start must be the expected one; in a discontinuous file it must not overlap the previous record.
    pub fn write_record_at(&mut self, start: f64, signals: &[&[i32]]) -> Result<()> {
        self.write_with(start, signals, |sig, v| {
            if v < sig.digital_min || v > sig.digital_max {
                Err(format!(
                    "digital value {v} outside {}…{}",
                    sig.digital_min, sig.digital_max
                ))
            } else {
                Ok(v)
            }
        })
    }

    /// Like [`write_record`](Self::write_record) with physical values, converted to the nearest digital value
    /// and clamped to the digital range.
    pub fn write_record_physical(&mut self, signals: &[&[f64]]) -> Result<()> {
        self.write_record_physical_at(self.next_record_start(), signals)
    }

    /// Like [`write_record_at`](Self::write_record_at) with physical values (converted and clamped).
    pub fn write_record_physical_at(&mut self, start: f64, signals: &[&[f64]]) -> Result<()> {
        self.write_with(start, signals, |sig, v| Ok(sig.to_digital(v)))
    }

    fn write_with<T: Copy>(
        &mut self,
        start: f64,
        signals: &[&[T]],
        convert: impl Fn(&SignalHeader, T) -> std::result::Result<i32, String>,
    ) -> Result<()> {
        if self.poisoned || self.inner.is_none() {
            return Err(EdfError::Finished);
        }
        let record = self.written;
        self.check_time(record, start)?;
        if signals.len() != self.annotation_signal {
            return Err(EdfError::RecordShape {
                record,
                signal: signals.len(),
                reason: format!(
                    "{} signals given, {} configured",
                    signals.len(),
                    self.annotation_signal
                ),
            });
        }
        let format = self.header.format;
        let bps = format.bytes_per_sample();
        for (i, samples) in signals.iter().enumerate() {
            let sig = &self.header.signals[i];
            if samples.len() != sig.samples_per_record {
                return Err(EdfError::RecordShape {
                    record,
                    signal: i,
                    reason: format!(
                        "{} samples given, {} per record configured",
                        samples.len(),
                        sig.samples_per_record
                    ),
                });
            }
            let out = &mut self.record[self.offsets[i]..self.offsets[i + 1]];
            for (k, (&v, chunk)) in samples.iter().zip(out.chunks_exact_mut(bps)).enumerate() {
                let d = convert(sig, v).map_err(|reason| EdfError::RecordShape {
                    record,
                    signal: i,
                    reason: format!("sample {k}: {reason}"),
                })?;
                format.encode(d, chunk);
            }
        }
        self.fill_annotations(start);
        let result = self
            .inner
            .as_mut()
            .ok_or(EdfError::Finished)?
            .write_all(&self.record);
        if let Err(e) = result {
            self.poisoned = true;
            return Err(e.into());
        }
        self.written += 1;
        if record == 0 || self.header.variant == Variant::Discontinuous {
            self.time_base = (start, record);
        }
        self.last_start = Some(start);
        Ok(())
    }

    fn check_time(&self, record: u64, start: f64) -> Result<()> {
        if !start.is_finite() || start.abs() >= 1e11 {
            return Err(EdfError::RecordTime {
                record,
                reason: format!("start {start} s is not representable"),
            });
        }
        let expected = self.next_record_start();
        // 1 µs: far below any sample period, far above the rounding of `t0 + n × duration` in f64.
        const TOLERANCE: f64 = 1e-6;
        match (self.header.variant, self.last_start) {
            (Variant::Continuous, Some(_)) if (start - expected).abs() > TOLERANCE => {
                Err(EdfError::RecordTime {
                    record,
                    reason: format!(
                        "starts at {start} s but a continuous file needs {expected} s (use discontinuous)"
                    ),
                })
            }
            (Variant::Discontinuous, Some(_)) if start < expected - TOLERANCE => Err(EdfError::RecordTime {
                record,
                reason: format!("starts at {start} s, before the previous record ends at {expected} s"),
            }),
            _ => Ok(()),
        }
    }

    /// Fills the annotation signal: the time-keeping TAL, then as many queued annotations as fit, then zeros.
    fn fill_annotations(&mut self, start: f64) {
        let capacity = self.annotation_capacity();
        self.tal.clear();
        write_time(&mut self.tal, start, true);
        self.tal.push_str("\u{14}\u{14}\0");
        while let Some(p) = self.queue.front() {
            let before = self.tal.len();
            write_tal(&mut self.tal, p.onset, p.duration, &p.text);
            if self.tal.len() > capacity {
                self.tal.truncate(before);
                break;
            }
            self.queue.pop_front();
        }
        let (a, b) = (
            self.offsets[self.annotation_signal],
            self.offsets[self.annotation_signal + 1],
        );
        let out = &mut self.record[a..b];
        let n = self.tal.len().min(out.len());
        out[..n].copy_from_slice(&self.tal.as_bytes()[..n]);
        out[n..].fill(0);
    }

    /// Makes every record written so far durable and valid: flushes and syncs the records, then rewrites the
    /// header's record count in place and syncs again (so the count never points at records not yet stored).
    pub fn flush(&mut self) -> Result<()> {
        let written = self.written;
        let position = self.header.header_bytes as u64 + written * self.record.len() as u64;
        let inner = self.inner.as_mut().ok_or(EdfError::Finished)?;
        inner.flush()?;
        inner.sync_data()?;
        if self.count_in_header != written as i64 {
            let count = format_record_count(written as i64)?;
            inner.seek(SeekFrom::Start(NUM_RECORDS_OFFSET as u64))?;
            inner.write_all(count.as_bytes())?;
            inner.seek(SeekFrom::Start(position))?;
            inner.flush()?;
            inner.sync_data()?;
            self.count_in_header = written as i64;
            self.header.declared_records = written as i64;
        }
        Ok(())
    }

    /// Flushes (see [`flush`](Self::flush)) and returns the underlying writer. If queued annotations did not fit
    /// into the records written, the file is still finalised and valid, and
    /// [`EdfError::AnnotationsDropped`] reports them.
    pub fn finish(mut self) -> Result<W> {
        self.flush()?;
        let dropped = self.queue.len();
        let inner = self.inner.take().ok_or(EdfError::Finished)?;
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "annotations queued after the last record were not written"
            );
            return Err(EdfError::AnnotationsDropped { count: dropped });
        }
        Ok(inner)
    }
}

impl<W: Write + Seek + Durable> Drop for EdfWriter<W> {
    fn drop(&mut self) {
        if self.inner.is_some()
            && let Err(e) = self.flush()
        {
            tracing::warn!(error = %e, "EDF writer dropped without finish(); final flush failed");
        }
    }
}

fn build_header(config: &WriterConfig) -> Result<Header> {
    let format = config.format;
    let (lo, hi) = format.digital_limits();
    if !(config.record_duration.is_finite() && config.record_duration >= 0.0) {
        return Err(EdfError::Config(format!(
            "record duration {} s",
            config.record_duration
        )));
    }
    if config.record_duration == 0.0 && !config.signals.is_empty() {
        return Err(EdfError::Config(
            "record duration 0 is only allowed without data signals".to_owned(),
        ));
    }
    if !config.first_record_offset.is_finite() {
        return Err(EdfError::Config(format!(
            "first record offset {}",
            config.first_record_offset
        )));
    }
    if config.annotation_bytes_per_record < 32 {
        return Err(EdfError::Config(format!(
            "{} annotation bytes per record (at least 32 needed for the time-keeping TAL)",
            config.annotation_bytes_per_record
        )));
    }
    let mut signals = Vec::with_capacity(config.signals.len() + 1);
    for (i, s) in config.signals.iter().enumerate() {
        let bad = |what: String| EdfError::Config(format!("signal {i} ({:?}): {what}", s.label));
        if s.label.trim() == crate::header::EDF_ANNOTATIONS
            || s.label.trim() == crate::header::BDF_ANNOTATIONS
        {
            return Err(bad(
                "the annotation label is reserved for the annotation signal".to_owned()
            ));
        }
        if s.samples_per_record == 0 || s.samples_per_record > 99_999_999 {
            return Err(bad(format!("{} samples per record", s.samples_per_record)));
        }
        if s.digital_min < lo || s.digital_max > hi || s.digital_max <= s.digital_min {
            return Err(bad(format!(
                "digital range {}…{} (format allows {lo}…{hi})",
                s.digital_min, s.digital_max
            )));
        }
        if !(s.physical_min.is_finite() && s.physical_max.is_finite()) || s.physical_min == s.physical_max {
            return Err(bad(format!(
                "physical range {}…{}",
                s.physical_min, s.physical_max
            )));
        }
        signals.push(SignalHeader {
            label: s.label.clone(),
            transducer: s.transducer.clone(),
            physical_dimension: s.physical_dimension.clone(),
            physical_min: s.physical_min,
            physical_max: s.physical_max,
            digital_min: s.digital_min,
            digital_max: s.digital_max,
            prefiltering: s.prefiltering.clone(),
            samples_per_record: s.samples_per_record,
            reserved: String::new(),
            kind: SignalKind::Data,
        });
    }
    let bps = format.bytes_per_sample();
    signals.push(SignalHeader {
        label: format.annotation_label().to_owned(),
        transducer: String::new(),
        physical_dimension: String::new(),
        physical_min: -1.0,
        physical_max: 1.0,
        digital_min: lo,
        digital_max: hi,
        prefiltering: String::new(),
        samples_per_record: config.annotation_bytes_per_record.div_ceil(bps),
        reserved: String::new(),
        kind: SignalKind::Annotation,
    });
    Ok(Header {
        format,
        variant: if config.discontinuous {
            Variant::Discontinuous
        } else {
            Variant::Continuous
        },
        patient: config.patient.encode(),
        recording: config.recording.encode(&config.start),
        start: config.start,
        header_bytes: 256 * (signals.len() + 1),
        reserved: String::new(),
        declared_records: -1,
        record_duration: config.record_duration,
        record_duration_text: String::new(),
        signals,
    })
}
