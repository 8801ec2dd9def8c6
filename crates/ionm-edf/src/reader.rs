//! The reader: header, record-by-record streaming, whole signals, record start times and annotations.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use serde::Serialize;

use crate::error::{EdfError, Location, Result};
use crate::header::{Header, NUM_RECORDS_OFFSET, SPR_FIELD, SignalHeader, Variant, signal_field_offset};
use crate::tal::{Tal, parse_tals};

/// How the file's bytes divide into header, complete data records and a trailing partial record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// File length in bytes.
    pub file_len: u64,
    /// Size of one data record in bytes.
    pub record_bytes: u64,
    /// Complete data records present in the file: the records this reader serves.
    pub complete_records: u64,
    /// Bytes after the last complete record (a partial record from an interrupted writer), ignored.
    pub trailing_bytes: u64,
    /// The record count the header declares (−1 = unknown).
    pub declared_records: i64,
}

/// One annotation: a text with its onset and optional duration, and where it was found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Annotation {
    /// Onset in seconds after the header's start date/time (which is whole seconds). Subtract
    /// `record_starts()[0]` to get seconds after the first sample, as EDFlib/pyedflib report it.
    pub onset: f64,
    /// Duration in seconds, if the TAL gives one.
    pub duration: Option<f64>,
    /// The annotation text (UTF-8).
    pub text: String,
    /// The data record whose annotation signal held it.
    pub record: u64,
    /// The annotation signal that held it.
    pub signal: usize,
}

/// Everything the annotation signals say: each record's start time and the annotations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnnotationScan {
    /// Start of each data record in seconds after the header's start date/time.
    pub record_starts: Vec<f64>,
    /// All annotations (time-keeping TALs excluded), in file order.
    pub annotations: Vec<Annotation>,
}

/// Reads an EDF/EDF+/BDF/BDF+ file from any `Read + Seek` source.
///
/// Memory is bounded: the header (at most 2.5 MB for 9999 signals, checked against the file length before it
/// is read), one data record's buffer (which, since the record must fit in the file, is at most the file
/// size) and whatever the caller asks to collect.
#[derive(Debug)]
pub struct EdfReader<R> {
    inner: R,
    header: Header,
    layout: Layout,
    offsets: Vec<usize>,
    buf: Vec<u8>,
    /// Per signal: `buf` holds its bytes of the last record read.
    read: Vec<bool>,
    /// Per signal: `buf` holds bytes of it from some record (zeroed when a partial read leaves it out).
    filled: Vec<bool>,
    pos: Option<u64>,
    next: u64,
}

impl EdfReader<BufReader<File>> {
    /// Opens a file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::new(BufReader::new(File::open(path)?))
    }
}

impl<R: Read + Seek> EdfReader<R> {
    /// Reads and validates the header and works out how many complete data records the source holds.
    ///
    /// A header declaring −1 records, or more or fewer records than the file holds (a recording that was killed,
    /// a partial last record), is not an error: the reader serves the complete records present and logs a
    /// warning.
    pub fn new(mut inner: R) -> Result<Self> {
        let file_len = inner.seek(SeekFrom::End(0))?;
        inner.seek(SeekFrom::Start(0))?;
        let header = Header::read_from(&mut inner, Some(file_len))?;
        let record_bytes = header.record_bytes();
        let data = file_len - header.header_bytes as u64;
        let complete = data / record_bytes;
        let trailing = data % record_bytes;
        let declared = header.declared_records;
        check_plausible(&header, data)?;
        if declared == -1 {
            tracing::warn!(
                complete,
                "number of data records is -1 (unknown): using the complete records present"
            );
        } else if declared as u64 > complete {
            tracing::warn!(
                declared,
                complete,
                "file holds fewer data records than its header declares (truncated)"
            );
        } else if (declared as u64) < complete {
            tracing::warn!(
                declared,
                complete,
                "file holds more complete data records than its header declares (stale count); reading all"
            );
        }
        if trailing > 0 {
            tracing::warn!(
                trailing,
                record_bytes,
                "ignoring a partial data record at the end of the file"
            );
        }
        let mut offsets = Vec::with_capacity(header.signals.len() + 1);
        let mut off = 0;
        for s in &header.signals {
            offsets.push(off);
            off += s.samples_per_record * header.bytes_per_sample();
        }
        offsets.push(off);
        let layout = Layout {
            file_len,
            record_bytes,
            complete_records: complete,
            trailing_bytes: trailing,
            declared_records: declared,
        };
        let pos = Some(header.header_bytes as u64);
        let n_signals = header.signals.len();
        Ok(Self {
            inner,
            header,
            layout,
            offsets,
            buf: Vec::new(),
            read: vec![false; n_signals],
            filled: vec![false; n_signals],
            pos,
            next: 0,
        })
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// All signal headers (annotation signals included), in file order.
    pub fn signals(&self) -> &[SignalHeader] {
        &self.header.signals
    }

    /// How the file divides into header, records and trailing bytes.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Number of complete data records this reader serves.
    pub fn num_records(&self) -> u64 {
        self.layout.complete_records
    }

    /// Measures the source again (for a file still being written, e.g. following a live recording) and returns
    /// the new number of complete records. The header is not re-read.
    pub fn refresh(&mut self) -> Result<u64> {
        let file_len = self.inner.seek(SeekFrom::End(0))?;
        self.pos = Some(file_len);
        let data = file_len.saturating_sub(self.header.header_bytes as u64);
        self.layout.file_len = file_len;
        self.layout.complete_records = data / self.layout.record_bytes;
        self.layout.trailing_bytes = data % self.layout.record_bytes;
        Ok(self.layout.complete_records)
    }

    /// Gives back the source.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn check_signal(&self, signal: usize) -> Result<&SignalHeader> {
        self.header.signals.get(signal).ok_or(EdfError::NoSuchSignal {
            index: signal,
            count: self.header.signals.len(),
        })
    }

    fn record_offset(&self, index: u64) -> u64 {
        self.header.header_bytes as u64 + index * self.layout.record_bytes
    }

    fn read_at(&mut self, at: u64, len: usize, into_buf: bool, scratch: &mut Vec<u8>) -> Result<()> {
        let target = if into_buf { &mut self.buf } else { scratch };
        target.resize(len, 0);
        read_exact_at(&mut self.inner, &mut self.pos, at, target)
    }

    /// The view of the record in the buffer (`index`, at byte `at` of the file).
    fn view(&self, index: u64, at: u64) -> Record<'_> {
        Record {
            index,
            header: &self.header,
            offsets: &self.offsets,
            read: &self.read,
            bytes: &self.buf,
            base: at,
        }
    }

    /// Reads data record `index` into the reader's buffer and returns a view of it.
    pub fn read_record(&mut self, index: u64) -> Result<Record<'_>> {
        if index >= self.layout.complete_records {
            return Err(EdfError::NoSuchRecord {
                index,
                count: self.layout.complete_records,
            });
        }
        let at = self.record_offset(index);
        // The record fits in the file (index < complete_records), so this allocation is bounded by the file.
        let len = self.layout.record_bytes as usize;
        // Marked filled before the read: a read that fails part-way leaves the buffer holding parts of two
        // records, which a later partial read must zero rather than show.
        self.filled.fill(true);
        self.read_at(at, len, true, &mut Vec::new())?;
        self.read.fill(true);
        self.next = index + 1;
        Ok(self.view(index, at))
    }

    /// Reads only `signals` (signal numbers, in any order) of data record `index`: each run of consecutive
    /// wanted signals is one read and the bytes of the others are skipped, not read from the source. The
    /// record's last byte is always read as well, so a record the source does not hold in full fails as
    /// [`read_record`](Self::read_record) would (an I/O error, unexpected end of file).
    ///
    /// In the returned view the other signals are unavailable: [`Record::is_read`] is false for them,
    /// [`Record::signal_bytes`] and what builds on it refuse them with [`EdfError::SignalNotRead`], and their
    /// bytes in [`Record::bytes`] are zeros.
    pub fn read_record_signals(&mut self, index: u64, signals: &[usize]) -> Result<Record<'_>> {
        if index >= self.layout.complete_records {
            return Err(EdfError::NoSuchRecord {
                index,
                count: self.layout.complete_records,
            });
        }
        for &s in signals {
            self.check_signal(s)?;
        }
        let at = self.record_offset(index);
        // The record fits in the file (index < complete_records), so this allocation is bounded by the file.
        let len = self.layout.record_bytes as usize;
        if self.buf.len() != len {
            self.buf.clear();
            self.buf.resize(len, 0);
            self.filled.fill(false);
        }
        self.read.fill(false);
        for &s in signals {
            self.read[s] = true;
        }
        // Bytes an earlier read left of the signals not read now must not pass for this record's.
        for (s, filled) in self.filled.iter_mut().enumerate() {
            if *filled && !self.read[s] {
                self.buf[self.offsets[s]..self.offsets[s + 1]].fill(0);
            }
            // Set before reading: a read that fails half-way may have written.
            *filled = self.read[s];
        }
        let n = self.read.len();
        let mut s = 0;
        let mut reached_end = false;
        while s < n {
            if !self.read[s] {
                s += 1;
                continue;
            }
            let first = s;
            while s < n && self.read[s] {
                s += 1;
            }
            let (from, to) = (self.offsets[first], self.offsets[s]);
            read_exact_at(
                &mut self.inner,
                &mut self.pos,
                at + from as u64,
                &mut self.buf[from..to],
            )?;
            reached_end = to == len;
        }
        if !reached_end && len > 0 {
            let mut last = [0u8; 1];
            read_exact_at(&mut self.inner, &mut self.pos, at + len as u64 - 1, &mut last)?;
        }
        self.next = index + 1;
        Ok(self.view(index, at))
    }

    /// Reads the record after the last one read (starting at record 0); `None` after the last record.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>> {
        if self.next >= self.layout.complete_records {
            return Ok(None);
        }
        self.read_record(self.next).map(Some)
    }

    /// Appends the digital samples of `signal` in records `records` to `out` (streaming in chunks of records
    /// keeps memory bounded).
    pub fn read_digital_into(
        &mut self,
        signal: usize,
        records: Range<u64>,
        out: &mut Vec<i32>,
    ) -> Result<()> {
        let spr = self.check_signal(signal)?.samples_per_record;
        if records.end > self.layout.complete_records {
            return Err(EdfError::NoSuchRecord {
                index: records.end - 1,
                count: self.layout.complete_records,
            });
        }
        let format = self.header.format;
        let bps = format.bytes_per_sample();
        let len = spr * bps;
        let mut scratch = Vec::with_capacity(len);
        out.reserve(spr * (records.end.saturating_sub(records.start)) as usize);
        for r in records {
            let at = self.record_offset(r) + self.offsets[signal] as u64;
            self.read_at(at, len, false, &mut scratch)?;
            format.decode_append(&scratch, out);
        }
        Ok(())
    }

    /// All digital samples of one signal.
    pub fn read_signal_digital(&mut self, signal: usize) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        self.read_digital_into(signal, 0..self.layout.complete_records, &mut out)?;
        Ok(out)
    }

    /// All physical samples of one signal: `(dig - dmin) * (pmax - pmin) / (dmax - dmin) + pmin`.
    pub fn read_signal_physical(&mut self, signal: usize) -> Result<Vec<f64>> {
        let digital = self.read_signal_digital(signal)?;
        let sig = &self.header.signals[signal];
        Ok(digital.into_iter().map(|d| sig.to_physical(d)).collect())
    }

    /// The TALs of one annotation signal in one record.
    pub fn read_tals(&mut self, signal: usize, record: u64) -> Result<Vec<Tal>> {
        if !self.check_signal(signal)?.is_annotation() {
            return Err(EdfError::WrongSignalKind {
                index: signal,
                actual: "a data signal",
                expected: "annotations",
            });
        }
        if record >= self.layout.complete_records {
            return Err(EdfError::NoSuchRecord {
                index: record,
                count: self.layout.complete_records,
            });
        }
        let at = self.record_offset(record) + self.offsets[signal] as u64;
        let len = self.offsets[signal + 1] - self.offsets[signal];
        let mut scratch = Vec::new();
        self.read_at(at, len, false, &mut scratch)?;
        parse_tals(&scratch).map_err(|e| EdfError::Tal {
            record,
            location: Location::signal(signal, at + e.offset as u64),
            reason: e.reason,
        })
    }

    /// Reads every annotation signal of every record: record start times and annotations.
    ///
    /// For plain EDF/BDF there are no annotations and record `i` starts at `i × duration`. For EDF+/BDF+ each
    /// record's start is the onset of the time-keeping TAL (first TAL of the first annotation signal), which
    /// also carries the sub-second part of the start time and makes EDF+D gaps visible.
    pub fn scan_annotations(&mut self) -> Result<AnnotationScan> {
        let n = self.layout.complete_records;
        let ann: Vec<usize> = self.header.annotation_signals().collect();
        if ann.is_empty() {
            let d = self.header.record_duration;
            return Ok(AnnotationScan {
                record_starts: (0..n).map(|i| i as f64 * d).collect(),
                annotations: Vec::new(),
            });
        }
        let mut record_starts: Vec<f64> = Vec::with_capacity(n as usize);
        let mut annotations = Vec::new();
        let mut discontinuities = 0u64;
        for r in 0..n {
            for (k, &sig) in ann.iter().enumerate() {
                let tals = self.read_tals(sig, r)?;
                let mut it = tals.into_iter();
                if k == 0 {
                    let Some(first) = it.next() else {
                        let at = self.record_offset(r) + self.offsets[sig] as u64;
                        return Err(EdfError::Tal {
                            record: r,
                            location: Location::signal(sig, at),
                            reason: "no time-keeping TAL (the record's start time is missing)".to_owned(),
                        });
                    };
                    if first.texts.first().is_some_and(|t| !t.is_empty()) {
                        tracing::warn!(
                            record = r,
                            "time-keeping TAL has a non-empty first text; kept as annotation"
                        );
                    }
                    if self.header.variant == Variant::Continuous && r > 0 {
                        let expected = record_starts[0] + r as f64 * self.header.record_duration;
                        if (first.onset - expected).abs() > 1e-6 {
                            discontinuities += 1;
                        }
                    }
                    record_starts.push(first.onset);
                    let skip_first_text = first.texts.first().is_some_and(String::is_empty);
                    push_texts(&mut annotations, first, r, sig, skip_first_text);
                }
                for tal in it {
                    push_texts(&mut annotations, tal, r, sig, false);
                }
            }
        }
        if discontinuities > 0 {
            tracing::warn!(
                discontinuities,
                "EDF+C/BDF+C file whose records are not contiguous in time"
            );
        }
        Ok(AnnotationScan {
            record_starts,
            annotations,
        })
    }

    /// Start of the first data record in seconds after the header's start date/time (whole seconds): the
    /// sub-second part of the start time in EDF+/BDF+, 0 for plain files or files without records. Reads only
    /// record 0's time-keeping TAL.
    pub fn first_record_start(&mut self) -> Result<f64> {
        let Some(sig) = self.header.annotation_signals().next() else {
            return Ok(0.0);
        };
        if self.layout.complete_records == 0 {
            return Ok(0.0);
        }
        let at = self.record_offset(0) + self.offsets[sig] as u64;
        self.read_tals(sig, 0)?
            .first()
            .map(|t| t.onset)
            .ok_or_else(|| EdfError::Tal {
                record: 0,
                location: Location::signal(sig, at),
                reason: "no time-keeping TAL (the record's start time is missing)".to_owned(),
            })
    }

    /// Start time of every data record in seconds after the header's start date/time.
    pub fn record_starts(&mut self) -> Result<Vec<f64>> {
        Ok(self.scan_annotations()?.record_starts)
    }

    /// Every annotation in the file (time-keeping TALs excluded).
    pub fn annotations(&mut self) -> Result<Vec<Annotation>> {
        Ok(self.scan_annotations()?.annotations)
    }
}

/// Reads `target.len()` bytes at offset `at`, seeking only when the source is not already there (`pos`: where
/// the source stands, `None` when unknown after a failed read).
fn read_exact_at<R: Read + Seek>(
    inner: &mut R,
    pos: &mut Option<u64>,
    at: u64,
    target: &mut [u8],
) -> Result<()> {
    match *pos {
        Some(p) if p == at => {}
        // Relative to a known position: a `BufReader` then keeps its buffer when the target is inside it
        // (a partial record read skips a few kB at a time; an absolute seek would discard and refill 8 kB).
        Some(p) => match (i64::try_from(at), i64::try_from(p)) {
            (Ok(a), Ok(p)) => inner.seek_relative(a - p)?,
            _ => {
                inner.seek(SeekFrom::Start(at))?;
            }
        },
        None => {
            inner.seek(SeekFrom::Start(at))?;
        }
    }
    *pos = None;
    inner.read_exact(target)?;
    *pos = Some(at + target.len() as u64);
    Ok(())
}

/// A header that declares at least twice the data the file holds is refused: that is not a recording cut short
/// (which loses its tail) but a corrupt or hostile header. Up to that, missing records are tolerated.
fn check_plausible(header: &Header, data: u64) -> Result<()> {
    let declared = header.declared_records;
    if declared <= 0 {
        return Ok(());
    }
    let record_bytes = header.record_bytes();
    let claimed = (declared as u64).checked_mul(record_bytes);
    if claimed.is_some_and(|c| c / 2 <= data) {
        return Ok(());
    }
    let ns = header.signals.len();
    if record_bytes > data {
        // One record does not even fit: blame the signal with the most samples per record.
        let (i, s) = header
            .signals
            .iter()
            .enumerate()
            .max_by_key(|(_, s)| s.samples_per_record)
            .ok_or(EdfError::NoSuchSignal { index: 0, count: 0 })?;
        return Err(EdfError::Field {
            field: "samples per data record",
            location: Location::signal(i, signal_field_offset(ns, SPR_FIELD, i) as u64),
            reason: format!(
                "{} samples make a data record of {record_bytes} bytes, but the file holds {data} bytes of data",
                s.samples_per_record
            ),
        });
    }
    Err(EdfError::Field {
        field: "number of data records",
        location: Location::at(NUM_RECORDS_OFFSET as u64),
        reason: format!(
            "{declared} records of {record_bytes} bytes declared, but the file holds only {data} bytes of data \
             (less than half: not a truncated recording)"
        ),
    })
}

fn push_texts(out: &mut Vec<Annotation>, tal: Tal, record: u64, signal: usize, skip_first: bool) {
    for (i, text) in tal.texts.into_iter().enumerate() {
        if (skip_first && i == 0) || text.is_empty() {
            continue;
        }
        out.push(Annotation {
            onset: tal.onset,
            duration: tal.duration,
            text,
            record,
            signal,
        });
    }
}

/// A view of one data record, borrowed from the reader's buffer.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    index: u64,
    header: &'a Header,
    offsets: &'a [usize],
    /// Per signal: its bytes were read ([`EdfReader::read_record_signals`] reads only some).
    read: &'a [bool],
    bytes: &'a [u8],
    base: u64,
}

impl<'a> Record<'a> {
    /// Zero-based record number.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The record's raw bytes (zeros in place of the signals that were not read: see [`is_read`](Self::is_read)).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// True if `signal`'s bytes were read (always, unless the record came from
    /// [`EdfReader::read_record_signals`]); false for a signal that does not exist.
    pub fn is_read(&self, signal: usize) -> bool {
        self.read.get(signal).copied().unwrap_or(false)
    }

    /// The raw bytes of one signal in this record.
    pub fn signal_bytes(&self, signal: usize) -> Result<&'a [u8]> {
        if signal >= self.header.signals.len() {
            return Err(EdfError::NoSuchSignal {
                index: signal,
                count: self.header.signals.len(),
            });
        }
        if !self.is_read(signal) {
            return Err(EdfError::SignalNotRead {
                index: signal,
                record: self.index,
            });
        }
        Ok(&self.bytes[self.offsets[signal]..self.offsets[signal + 1]])
    }

    /// The digital samples of one signal in this record.
    pub fn digital(&self, signal: usize) -> Result<impl Iterator<Item = i32> + 'a> {
        let format = self.header.format;
        Ok(self
            .signal_bytes(signal)?
            .chunks_exact(format.bytes_per_sample())
            .map(move |b| format.decode(b)))
    }

    /// Appends the digital samples of one signal to `out`.
    pub fn digital_into(&self, signal: usize, out: &mut Vec<i32>) -> Result<()> {
        self.header.format.decode_append(self.signal_bytes(signal)?, out);
        Ok(())
    }

    /// Appends the physical samples of one signal to `out`.
    pub fn physical_into(&self, signal: usize, out: &mut Vec<f64>) -> Result<()> {
        let it = self.digital(signal)?;
        let sig = &self.header.signals[signal];
        out.extend(it.map(|d| sig.to_physical(d)));
        Ok(())
    }

    /// The TALs of one annotation signal in this record.
    pub fn tals(&self, signal: usize) -> Result<Vec<Tal>> {
        let bytes = self.signal_bytes(signal)?;
        if !self.header.signals[signal].is_annotation() {
            return Err(EdfError::WrongSignalKind {
                index: signal,
                actual: "a data signal",
                expected: "annotations",
            });
        }
        parse_tals(bytes).map_err(|e| EdfError::Tal {
            record: self.index,
            location: Location::signal(signal, self.base + (self.offsets[signal] + e.offset) as u64),
            reason: e.reason,
        })
    }

    /// Start time of this record in seconds after the header's start date/time: the time-keeping TAL's onset
    /// for EDF+/BDF+, `index × duration` otherwise.
    pub fn start_time(&self) -> Result<f64> {
        let Some(sig) = self.header.annotation_signals().next() else {
            return Ok(self.index as f64 * self.header.record_duration);
        };
        self.tals(sig)?
            .first()
            .map(|t| t.onset)
            .ok_or_else(|| EdfError::Tal {
                record: self.index,
                location: Location::signal(sig, self.base + self.offsets[sig] as u64),
                reason: "no time-keeping TAL (the record's start time is missing)".to_owned(),
            })
    }
}
