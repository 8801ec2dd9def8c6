//! The EDF/BDF header: parsing with every field validated, and serialisation (used by the writer).

use std::io::Read;

use serde::Serialize;

use crate::error::{EdfError, Location, Result};

/// Size of the fixed part of the header, and of each signal's part.
pub const BLOCK: usize = 256;
/// Largest number of signals a 4-character field can hold.
pub const MAX_SIGNALS: usize = 9999;
/// Label of an EDF+ annotation signal.
pub const EDF_ANNOTATIONS: &str = "EDF Annotations";
/// Label of a BDF+ annotation signal.
pub const BDF_ANNOTATIONS: &str = "BDF Annotations";

// Offsets and widths of the fixed header.
const VERSION: (usize, usize) = (0, 8);
const PATIENT: (usize, usize) = (8, 80);
const RECORDING: (usize, usize) = (88, 80);
const STARTDATE: (usize, usize) = (168, 8);
const STARTTIME: (usize, usize) = (176, 8);
const HEADER_BYTES: (usize, usize) = (184, 8);
const RESERVED: (usize, usize) = (192, 44);
/// Offset of the "number of data records" field, which the writer rewrites in place.
pub const NUM_RECORDS_OFFSET: usize = 236;
const NUM_RECORDS: (usize, usize) = (NUM_RECORDS_OFFSET, 8);
const DURATION: (usize, usize) = (244, 8);
const NUM_SIGNALS: (usize, usize) = (252, 4);

// Widths of the per-signal fields, in file order.
const SIG_FIELDS: [(&str, usize); 10] = [
    ("label", 16),
    ("transducer type", 80),
    ("physical dimension", 8),
    ("physical minimum", 8),
    ("physical maximum", 8),
    ("digital minimum", 8),
    ("digital maximum", 8),
    ("prefiltering", 80),
    ("samples per data record", 8),
    ("signal reserved", 32),
];

/// Absolute byte offset of per-signal field number `field` (0 = label … 8 = samples per record, 9 = reserved)
/// of signal `signal` in a header with `ns` signals.
pub(crate) fn signal_field_offset(ns: usize, field: usize, signal: usize) -> usize {
    BLOCK + SIG_FIELDS[..field].iter().map(|&(_, w)| w * ns).sum::<usize>() + SIG_FIELDS[field].1 * signal
}

/// Index of the "samples per data record" field, for [`signal_field_offset`].
pub(crate) const SPR_FIELD: usize = 8;

/// The sample encoding: EDF's 16-bit or BDF's 24-bit little-endian two's complement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SampleFormat {
    /// EDF / EDF+: 2 bytes per sample.
    Edf16,
    /// BDF / BDF+ (BioSemi): 3 bytes per sample.
    Bdf24,
}

impl SampleFormat {
    /// Bytes per sample: 2 or 3.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Self::Edf16 => 2,
            Self::Bdf24 => 3,
        }
    }

    /// The smallest and largest digital value the format can store.
    pub fn digital_limits(self) -> (i32, i32) {
        match self {
            Self::Edf16 => (i16::MIN as i32, i16::MAX as i32),
            Self::Bdf24 => (-(1 << 23), (1 << 23) - 1),
        }
    }

    /// The label an annotation signal carries in this format's "+" variant.
    pub fn annotation_label(self) -> &'static str {
        match self {
            Self::Edf16 => EDF_ANNOTATIONS,
            Self::Bdf24 => BDF_ANNOTATIONS,
        }
    }

    /// Decode one sample from its `bytes_per_sample()` bytes.
    #[inline]
    pub fn decode(self, b: &[u8]) -> i32 {
        match self {
            Self::Edf16 => i16::from_le_bytes([b[0], b[1]]) as i32,
            Self::Bdf24 => (i32::from_le_bytes([0, b[0], b[1], b[2]])) >> 8,
        }
    }

    /// Decode `bytes` (whole samples, `bytes_per_sample()` each) and append them to `out`. The same values as
    /// [`decode`](Self::decode) sample by sample, in a loop specialised per format (a fixed chunk size lets the
    /// compiler unroll and vectorise it: replaying a recording decodes every sample of every channel).
    /// Trailing bytes that do not make a whole sample are ignored.
    pub fn decode_append(self, bytes: &[u8], out: &mut Vec<i32>) {
        let n = bytes.len() / self.bytes_per_sample();
        let start = out.len();
        out.resize(start + n, 0);
        let dst = &mut out[start..];
        match self {
            Self::Edf16 => {
                for (o, b) in dst.iter_mut().zip(bytes.chunks_exact(2)) {
                    *o = i32::from(i16::from_le_bytes([b[0], b[1]]));
                }
            }
            Self::Bdf24 => {
                for (o, b) in dst.iter_mut().zip(bytes.chunks_exact(3)) {
                    *o = i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8;
                }
            }
        }
    }

    /// Encode one sample (which must be within [`digital_limits`](Self::digital_limits)) into `out`.
    #[inline]
    pub fn encode(self, v: i32, out: &mut [u8]) {
        let b = v.to_le_bytes();
        match self {
            Self::Edf16 => out[..2].copy_from_slice(&b[..2]),
            Self::Bdf24 => out[..3].copy_from_slice(&b[..3]),
        }
    }
}

/// Plain EDF/BDF, or the "+" variants with continuous (C) or discontinuous (D) data records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Variant {
    /// Plain EDF or BDF (no annotation signals; every signal is data).
    Plain,
    /// EDF+C / BDF+C: data records follow each other without gaps.
    Continuous,
    /// EDF+D / BDF+D: each data record's start time is given by its time-keeping annotation; gaps allowed.
    Discontinuous,
}

/// Whether a signal carries samples or EDF+ annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SignalKind {
    /// Ordinary sampled signal.
    Data,
    /// An "EDF Annotations"/"BDF Annotations" signal of an EDF+/BDF+ file, holding TALs.
    Annotation,
}

/// Start date and time of the recording, to the second, as in the header (local time of the recording).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StartDateTime {
    /// Four-digit year (1985–2084 from the two-digit header year, or from the EDF+ recording field).
    pub year: u16,
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31.
    pub day: u8,
    /// Hour 0–23.
    pub hour: u8,
    /// Minute 0–59.
    pub minute: u8,
    /// Second 0–59 (EDF has no leap seconds... mostly; 60 is refused).
    pub second: u8,
}

/// One signal's header.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignalHeader {
    /// Label (16 characters at most), e.g. "EEG Fpz-Cz" or "EDF Annotations".
    pub label: String,
    /// Transducer type (80 characters).
    pub transducer: String,
    /// Physical dimension (8 characters), e.g. "uV".
    pub physical_dimension: String,
    /// Physical value of `digital_min`; may be larger than `physical_max` (inverted polarity).
    pub physical_min: f64,
    /// Physical value of `digital_max`.
    pub physical_max: f64,
    /// Smallest digital value.
    pub digital_min: i32,
    /// Largest digital value (> `digital_min`).
    pub digital_max: i32,
    /// Prefiltering (80 characters), e.g. "HP:0.1Hz LP:75Hz".
    pub prefiltering: String,
    /// Samples of this signal in each data record (≥ 1).
    pub samples_per_record: usize,
    /// The signal's reserved field (32 characters).
    pub reserved: String,
    /// Data or annotation signal.
    pub kind: SignalKind,
}

impl SignalHeader {
    /// Whether this is an EDF+/BDF+ annotation signal.
    pub fn is_annotation(&self) -> bool {
        self.kind == SignalKind::Annotation
    }

    /// Physical units per digital step: `(pmax - pmin) / (dmax - dmin)`; negative for an inverted range.
    pub fn gain(&self) -> f64 {
        (self.physical_max - self.physical_min) / (self.digital_max as f64 - self.digital_min as f64)
    }

    /// Physical value of a digital sample: `(dig - dmin) * (pmax - pmin) / (dmax - dmin) + pmin`.
    #[inline]
    pub fn to_physical(&self, digital: i32) -> f64 {
        (digital as f64 - self.digital_min as f64) * self.gain() + self.physical_min
    }

    /// Nearest digital value of a physical value, clamped to `[digital_min, digital_max]` (NaN gives
    /// `digital_min`).
    #[inline]
    pub fn to_digital(&self, physical: f64) -> i32 {
        let d = ((physical - self.physical_min) / self.gain() + self.digital_min as f64).round();
        if d.is_nan() {
            return self.digital_min;
        }
        d.clamp(self.digital_min as f64, self.digital_max as f64) as i32
    }

    /// Sample rate in Hz for a given record duration; `None` when the duration is 0 (annotation-only files).
    pub fn sample_rate(&self, record_duration: f64) -> Option<f64> {
        (record_duration > 0.0).then(|| self.samples_per_record as f64 / record_duration)
    }
}

/// A parsed, validated header.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Header {
    /// 16-bit EDF or 24-bit BDF.
    pub format: SampleFormat,
    /// Plain, or "+" continuous / discontinuous.
    pub variant: Variant,
    /// Local patient identification (80 characters; EDF+ subfields, see [`PatientId`]).
    pub patient: String,
    /// Local recording identification (80 characters; EDF+ subfields, see [`RecordingId`]).
    pub recording: String,
    /// Start date and time of the first data record, to the second. The sub-second part and every record's
    /// exact start come from the time-keeping annotations (see `EdfReader::record_starts`).
    pub start: StartDateTime,
    /// Header size in bytes, `256 × (ns + 1)`.
    pub header_bytes: usize,
    /// The reserved field as written ("EDF+C", "BDF+D", "24BIT", blank…).
    pub reserved: String,
    /// Number of data records as declared; −1 when unknown (recording in progress).
    pub declared_records: i64,
    /// Duration of a data record in seconds (0 only for annotation-only files).
    pub record_duration: f64,
    /// The record duration field exactly as written (e.g. "0.5").
    pub record_duration_text: String,
    /// All signals, annotation signals included, in file order.
    pub signals: Vec<SignalHeader>,
}

/// Validates that a field is printable ASCII and returns it with trailing spaces removed.
fn ascii_field<'a>(
    bytes: &'a [u8],
    start: usize,
    width: usize,
    field: &'static str,
    signal: Option<usize>,
) -> Result<&'a str> {
    let raw = &bytes[start..start + width];
    if let Some(pos) = raw.iter().position(|&b| !(0x20..=0x7e).contains(&b)) {
        return Err(EdfError::Field {
            field,
            location: Location {
                signal,
                offset: (start + pos) as u64,
            },
            reason: format!("byte 0x{:02x} is not printable ASCII", raw[pos]),
        });
    }
    // Validated ASCII above, so this cannot fail; map the impossible error rather than unwrap.
    let s = std::str::from_utf8(raw).map_err(|e| EdfError::Field {
        field,
        location: Location {
            signal,
            offset: start as u64,
        },
        reason: e.to_string(),
    })?;
    Ok(s.trim_end_matches(' '))
}

fn field_err(field: &'static str, signal: Option<usize>, offset: usize, reason: String) -> EdfError {
    EdfError::Field {
        field,
        location: Location {
            signal,
            offset: offset as u64,
        },
        reason,
    }
}

/// Parses an integer field: optional sign and 1–18 digits, surrounded by spaces at most.
fn parse_int(s: &str, field: &'static str, signal: Option<usize>, offset: usize) -> Result<i64> {
    let t = s.trim_matches(' ');
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(field_err(
            field,
            signal,
            offset,
            format!("{s:?} is not an integer"),
        ));
    }
    let v: i64 = digits
        .parse()
        .map_err(|_| field_err(field, signal, offset, format!("{s:?} is not an integer")))?;
    Ok(if t.starts_with('-') { -v } else { v })
}

/// Parses a decimal field: `[+-]digits[.digits][e[+-]digits]` (a leading or trailing dot allowed), finite.
pub(crate) fn parse_decimal(s: &str) -> Option<f64> {
    let t = s.trim_matches(' ');
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let mut mantissa_digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        mantissa_digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            mantissa_digits += 1;
        }
    }
    if mantissa_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    let v: f64 = t.parse().ok()?;
    v.is_finite().then_some(v)
}

fn decimal_field(s: &str, field: &'static str, signal: Option<usize>, offset: usize) -> Result<f64> {
    parse_decimal(s).ok_or_else(|| field_err(field, signal, offset, format!("{s:?} is not a decimal number")))
}

/// Parses "dd.mm.yy" or "hh.mm.ss" into three numbers.
fn parse_triplet(s: &str, field: &'static str, offset: usize) -> Result<[u8; 3]> {
    let b = s.as_bytes();
    let ok = b.len() == 8
        && b[2] == b'.'
        && b[5] == b'.'
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit());
    if !ok {
        return Err(field_err(
            field,
            None,
            offset,
            format!("{s:?} is not of the form nn.nn.nn"),
        ));
    }
    let n = |i: usize| (b[i] - b'0') * 10 + (b[i + 1] - b'0');
    Ok([n(0), n(3), n(6)])
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// Parses an EDF+ date "dd-MMM-yyyy" into (year, month, day).
fn parse_plus_date(s: &str) -> Option<(u16, u8, u8)> {
    let b = s.as_bytes();
    if b.len() != 11 || b[2] != b'-' || b[6] != b'-' {
        return None;
    }
    let day: u8 = s[0..2].parse().ok()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(&s[3..6]))? as u8 + 1;
    let year: u16 = s[7..11].parse().ok()?;
    (1..=31).contains(&day).then_some((year, month, day))
}

/// Formats an EDF+ date "dd-MMM-yyyy".
fn format_plus_date(year: u16, month: u8, day: u8) -> String {
    let m = MONTHS
        .get(usize::from(month).wrapping_sub(1))
        .copied()
        .unwrap_or("JAN");
    format!("{day:02}-{m}-{year:04}")
}

fn decode_subfield(s: &str) -> String {
    if s == "X" {
        String::new()
    } else {
        s.replace('_', " ")
    }
}

fn encode_subfield(s: &str) -> String {
    let t = s.trim();
    if t.is_empty() {
        "X".to_owned()
    } else {
        t.replace(' ', "_")
    }
}

/// The EDF+ "local patient identification" subfields, decoded ("X" → empty, "_" → space).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PatientId {
    /// Hospital patient code.
    pub code: String,
    /// "M", "F" or empty.
    pub sex: String,
    /// Birth date "dd-MMM-yyyy" or empty.
    pub birthdate: String,
    /// Patient name.
    pub name: String,
    /// Anything after the four subfields.
    pub additional: String,
}

impl PatientId {
    /// Splits an EDF+ patient field into its subfields (missing subfields are empty).
    pub fn parse(field: &str) -> Self {
        let mut it = field.trim_end().splitn(5, ' ');
        let mut next = || it.next().map(decode_subfield).unwrap_or_default();
        Self {
            code: next(),
            sex: next(),
            birthdate: next(),
            name: next(),
            additional: next(),
        }
    }

    /// The 80-character-or-less EDF+ field ("X" for unknown subfields, spaces in values become "_").
    pub fn encode(&self) -> String {
        let mut s = format!(
            "{} {} {} {}",
            encode_subfield(&self.code),
            encode_subfield(&self.sex),
            encode_subfield(&self.birthdate),
            encode_subfield(&self.name)
        );
        if !self.additional.trim().is_empty() {
            s.push(' ');
            s.push_str(self.additional.trim());
        }
        s
    }
}

/// The EDF+ "local recording identification" subfields after "Startdate dd-MMM-yyyy", decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecordingId {
    /// Hospital administration code of the investigation.
    pub admincode: String,
    /// Investigator or technician.
    pub technician: String,
    /// Equipment used.
    pub equipment: String,
    /// Anything after the subfields.
    pub additional: String,
}

impl RecordingId {
    /// Splits an EDF+ recording field; `None` unless it starts with "Startdate".
    pub fn parse(field: &str) -> Option<Self> {
        let mut it = field.trim_end().splitn(6, ' ');
        if it.next()? != "Startdate" {
            return None;
        }
        it.next()?;
        let mut next = || it.next().map(decode_subfield).unwrap_or_default();
        Some(Self {
            admincode: next(),
            technician: next(),
            equipment: next(),
            additional: next(),
        })
    }

    /// The EDF+ field for a recording that started on the given date.
    pub fn encode(&self, start: &StartDateTime) -> String {
        let mut s = format!(
            "Startdate {} {} {} {}",
            format_plus_date(start.year, start.month, start.day),
            encode_subfield(&self.admincode),
            encode_subfield(&self.technician),
            encode_subfield(&self.equipment)
        );
        if !self.additional.trim().is_empty() {
            s.push(' ');
            s.push_str(self.additional.trim());
        }
        s
    }
}

/// Formats a number into at most `width` characters, as exactly as the width allows; `None` if it cannot fit.
pub(crate) fn format_number(x: f64, width: usize) -> Option<String> {
    if !x.is_finite() {
        return None;
    }
    let shortest = format!("{x}");
    if shortest.len() <= width {
        return Some(shortest);
    }
    for decimals in (0..width).rev() {
        let mut s = format!("{x:.decimals$}");
        if s.contains('.') {
            let trimmed = s.trim_end_matches('0').trim_end_matches('.').len();
            s.truncate(trimmed);
        }
        if s == "-0" {
            s = "0".to_owned();
        }
        if s.len() <= width {
            return Some(s);
        }
    }
    None
}

impl Header {
    /// Reads and parses a header from the start of `r` (which must be positioned at byte 0).
    ///
    /// `file_len`, when known, is checked before the signal headers are read, so a header claiming thousands of
    /// signals in a tiny file is refused without allocating for them.
    pub fn read_from<R: Read>(r: &mut R, file_len: Option<u64>) -> Result<Self> {
        let mut fixed = [0u8; BLOCK];
        read_exact_or(r, &mut fixed, "fixed header (256 bytes)", file_len)?;
        let ns = parse_signal_count(&fixed)?;
        let total = BLOCK * (ns + 1);
        if let Some(len) = file_len
            && len < total as u64
        {
            return Err(EdfError::Truncated {
                what: "signal headers",
                needed: total as u64,
                available: len,
            });
        }
        let mut bytes = Vec::with_capacity(total);
        bytes.extend_from_slice(&fixed);
        let got = r.take((total - BLOCK) as u64).read_to_end(&mut bytes)?;
        if got < total - BLOCK {
            return Err(EdfError::Truncated {
                what: "signal headers",
                needed: total as u64,
                available: (BLOCK + got) as u64,
            });
        }
        Self::parse(&bytes)
    }

    /// Parses a header from the start of `bytes` (which may continue with data records).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < BLOCK {
            return Err(EdfError::Truncated {
                what: "fixed header (256 bytes)",
                needed: BLOCK as u64,
                available: bytes.len() as u64,
            });
        }
        let ns = parse_signal_count(bytes)?;
        let total = BLOCK * (ns + 1);
        if bytes.len() < total {
            return Err(EdfError::Truncated {
                what: "signal headers",
                needed: total as u64,
                available: bytes.len() as u64,
            });
        }

        let version = &bytes[VERSION.0..VERSION.0 + VERSION.1];
        let format = if version == b"0       " {
            SampleFormat::Edf16
        } else if version == b"\xffBIOSEMI" {
            SampleFormat::Bdf24
        } else {
            return Err(field_err(
                "version",
                None,
                0,
                format!(
                    "{} is neither \"0       \" (EDF) nor 0xFF\"BIOSEMI\" (BDF)",
                    escape(version)
                ),
            ));
        };

        let patient =
            ascii_field(bytes, PATIENT.0, PATIENT.1, "local patient identification", None)?.to_owned();
        let recording = ascii_field(
            bytes,
            RECORDING.0,
            RECORDING.1,
            "local recording identification",
            None,
        )?
        .to_owned();
        let date_s = ascii_field(bytes, STARTDATE.0, STARTDATE.1, "startdate", None)?;
        let [day, month, yy] = parse_triplet(date_s, "startdate", STARTDATE.0)?;
        if !(1..=31).contains(&day) || !(1..=12).contains(&month) {
            return Err(field_err(
                "startdate",
                None,
                STARTDATE.0,
                format!("{date_s:?} is not a valid date"),
            ));
        }
        let time_s = ascii_field(bytes, STARTTIME.0, STARTTIME.1, "starttime", None)?;
        let [hour, minute, second] = parse_triplet(time_s, "starttime", STARTTIME.0)?;
        if hour > 23 || minute > 59 || second > 59 {
            return Err(field_err(
                "starttime",
                None,
                STARTTIME.0,
                format!("{time_s:?} is not a valid time"),
            ));
        }

        let hb_s = ascii_field(
            bytes,
            HEADER_BYTES.0,
            HEADER_BYTES.1,
            "number of bytes in header record",
            None,
        )?;
        let header_bytes = parse_int(hb_s, "number of bytes in header record", None, HEADER_BYTES.0)?;
        if header_bytes != total as i64 {
            return Err(field_err(
                "number of bytes in header record",
                None,
                HEADER_BYTES.0,
                format!("{header_bytes} but 256 × (1 + {ns} signals) = {total}"),
            ));
        }

        let reserved = ascii_field(bytes, RESERVED.0, RESERVED.1, "reserved", None)?.to_owned();
        let variant = parse_variant(format, &reserved)?;

        let nr_s = ascii_field(
            bytes,
            NUM_RECORDS.0,
            NUM_RECORDS.1,
            "number of data records",
            None,
        )?;
        let declared_records = parse_int(nr_s, "number of data records", None, NUM_RECORDS.0)?;
        if declared_records < -1 {
            return Err(field_err(
                "number of data records",
                None,
                NUM_RECORDS.0,
                format!("{declared_records} (must be ≥ 0, or −1 for unknown)"),
            ));
        }

        let dur_s = ascii_field(bytes, DURATION.0, DURATION.1, "duration of a data record", None)?;
        let record_duration = decimal_field(dur_s, "duration of a data record", None, DURATION.0)?;
        if record_duration < 0.0 {
            return Err(field_err(
                "duration of a data record",
                None,
                DURATION.0,
                format!("{dur_s:?} is negative"),
            ));
        }

        let mut signals = Vec::with_capacity(ns);
        for i in 0..ns {
            signals.push(parse_signal(bytes, ns, i, format, variant)?);
        }

        if variant != Variant::Plain && !signals.iter().any(SignalHeader::is_annotation) {
            return Err(field_err(
                "label",
                None,
                BLOCK,
                format!(
                    "{reserved:?} file without an \"{}\" signal",
                    format.annotation_label()
                ),
            ));
        }
        if record_duration == 0.0 && signals.iter().any(|s| !s.is_annotation()) {
            return Err(field_err(
                "duration of a data record",
                None,
                DURATION.0,
                "0 is only allowed when every signal is an annotation signal".to_owned(),
            ));
        }

        // EDF+ carries the four-digit year in the recording field; the header's two digits follow 1985–2084.
        let mut year = if yy >= 85 {
            1900 + yy as u16
        } else {
            2000 + yy as u16
        };
        if variant != Variant::Plain
            && let Some(date) = recording.strip_prefix("Startdate ").and_then(|r| r.get(..11))
            && let Some((y, _, _)) = parse_plus_date(date)
            && y % 100 == yy as u16
        {
            year = y;
        }

        Ok(Self {
            format,
            variant,
            patient,
            recording,
            start: StartDateTime {
                year,
                month,
                day,
                hour,
                minute,
                second,
            },
            header_bytes: total,
            reserved,
            declared_records,
            record_duration,
            record_duration_text: dur_s.trim().to_owned(),
            signals,
        })
    }

    /// Whether this is EDF+ or BDF+.
    pub fn is_plus(&self) -> bool {
        self.variant != Variant::Plain
    }

    /// Bytes per sample (2 or 3).
    pub fn bytes_per_sample(&self) -> usize {
        self.format.bytes_per_sample()
    }

    /// Size of one data record in bytes.
    pub fn record_bytes(&self) -> u64 {
        let samples: u64 = self.signals.iter().map(|s| s.samples_per_record as u64).sum();
        samples * self.bytes_per_sample() as u64
    }

    /// Indices of the data (non-annotation) signals.
    pub fn data_signals(&self) -> impl Iterator<Item = usize> + '_ {
        self.signals
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_annotation())
            .map(|(i, _)| i)
    }

    /// Indices of the annotation signals (empty for plain EDF/BDF).
    pub fn annotation_signals(&self) -> impl Iterator<Item = usize> + '_ {
        self.signals
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_annotation())
            .map(|(i, _)| i)
    }

    /// Sample rate of signal `i` in Hz (`None` for a 0-duration record or a bad index).
    pub fn sample_rate(&self, i: usize) -> Option<f64> {
        self.signals.get(i)?.sample_rate(self.record_duration)
    }

    /// EDF+ patient subfields (parsed leniently from any file).
    pub fn patient_id(&self) -> PatientId {
        PatientId::parse(&self.patient)
    }

    /// EDF+ recording subfields, when the recording field starts with "Startdate".
    pub fn recording_id(&self) -> Option<RecordingId> {
        RecordingId::parse(&self.recording)
    }

    /// Serialises the header (`header_bytes` bytes). Numbers are written in at most 8 characters, as exactly as
    /// that allows; text must be printable ASCII and fit its field. Parse the result to see the stored values.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let ns = self.signals.len();
        if ns == 0 || ns > MAX_SIGNALS {
            return Err(EdfError::Config(format!(
                "{ns} signals (1–{MAX_SIGNALS} allowed)"
            )));
        }
        let mut out = vec![b' '; BLOCK * (ns + 1)];
        match self.format {
            SampleFormat::Edf16 => out[..8].copy_from_slice(b"0       "),
            SampleFormat::Bdf24 => out[..8].copy_from_slice(b"\xffBIOSEMI"),
        }
        put_text(&mut out, PATIENT, "local patient identification", &self.patient)?;
        put_text(
            &mut out,
            RECORDING,
            "local recording identification",
            &self.recording,
        )?;
        let s = self.start;
        if !(1985..=2084).contains(&s.year) {
            return Err(EdfError::Config(format!(
                "start year {} outside 1985–2084",
                s.year
            )));
        }
        if !(1..=12).contains(&s.month)
            || !(1..=31).contains(&s.day)
            || s.hour > 23
            || s.minute > 59
            || s.second > 59
        {
            return Err(EdfError::Config(format!("invalid start date/time {s:?}")));
        }
        put_text(
            &mut out,
            STARTDATE,
            "startdate",
            &format!("{:02}.{:02}.{:02}", s.day, s.month, s.year % 100),
        )?;
        put_text(
            &mut out,
            STARTTIME,
            "starttime",
            &format!("{:02}.{:02}.{:02}", s.hour, s.minute, s.second),
        )?;
        put_text(
            &mut out,
            HEADER_BYTES,
            "number of bytes in header record",
            &(BLOCK * (ns + 1)).to_string(),
        )?;
        let reserved = match (self.format, self.variant) {
            (SampleFormat::Edf16, Variant::Continuous) => "EDF+C",
            (SampleFormat::Edf16, Variant::Discontinuous) => "EDF+D",
            (SampleFormat::Bdf24, Variant::Continuous) => "BDF+C",
            (SampleFormat::Bdf24, Variant::Discontinuous) => "BDF+D",
            (SampleFormat::Bdf24, Variant::Plain) => "24BIT",
            (SampleFormat::Edf16, Variant::Plain) => "",
        };
        put_text(&mut out, RESERVED, "reserved", reserved)?;
        put_text(
            &mut out,
            NUM_RECORDS,
            "number of data records",
            &format_record_count(self.declared_records)?,
        )?;
        let dur = format_number(self.record_duration, 8)
            .filter(|_| self.record_duration >= 0.0)
            .ok_or_else(|| {
                EdfError::Config(format!(
                    "record duration {} cannot be stored",
                    self.record_duration
                ))
            })?;
        put_text(&mut out, DURATION, "duration of a data record", &dur)?;
        put_text(&mut out, NUM_SIGNALS, "number of signals", &ns.to_string())?;

        let mut base = BLOCK;
        for (fi, &(name, width)) in SIG_FIELDS.iter().enumerate() {
            for (i, sig) in self.signals.iter().enumerate() {
                let num = |x: f64| {
                    format_number(x, 8).ok_or_else(|| {
                        EdfError::Config(format!(
                            "signal {i}: {name} {x} cannot be written in 8 characters"
                        ))
                    })
                };
                let text = match fi {
                    0 => sig.label.clone(),
                    1 => sig.transducer.clone(),
                    2 => sig.physical_dimension.clone(),
                    3 => num(sig.physical_min)?,
                    4 => num(sig.physical_max)?,
                    5 => sig.digital_min.to_string(),
                    6 => sig.digital_max.to_string(),
                    7 => sig.prefiltering.clone(),
                    8 => sig.samples_per_record.to_string(),
                    _ => sig.reserved.clone(),
                };
                put_text(&mut out, (base + i * width, width), name, &text)
                    .map_err(|e| EdfError::Config(format!("signal {i}: {e}")))?;
            }
            base += ns * width;
        }
        Ok(out)
    }
}

/// Formats the "number of data records" field value.
pub(crate) fn format_record_count(n: i64) -> Result<String> {
    if !(-1..=99_999_999).contains(&n) {
        return Err(EdfError::Config(format!(
            "{n} data records cannot be written in 8 characters"
        )));
    }
    Ok(format!("{n:<8}"))
}

fn put_text(out: &mut [u8], (start, width): (usize, usize), name: &str, text: &str) -> Result<()> {
    if let Some(c) = text.chars().find(|c| !(' '..='~').contains(c)) {
        return Err(EdfError::Config(format!(
            "{name} {text:?}: character {c:?} is not printable ASCII"
        )));
    }
    if text.len() > width {
        return Err(EdfError::Config(format!(
            "{name} {text:?} is longer than {width} characters"
        )));
    }
    out[start..start + text.len()].copy_from_slice(text.as_bytes());
    Ok(())
}

fn escape(b: &[u8]) -> String {
    b.iter()
        .flat_map(|&c| std::ascii::escape_default(c))
        .map(char::from)
        .collect::<String>()
}

fn read_exact_or<R: Read>(
    r: &mut R,
    buf: &mut [u8],
    what: &'static str,
    file_len: Option<u64>,
) -> Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => {
                return Err(EdfError::Truncated {
                    what,
                    needed: buf.len() as u64,
                    available: file_len.unwrap_or(got as u64),
                });
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn parse_signal_count(fixed: &[u8]) -> Result<usize> {
    let s = ascii_field(fixed, NUM_SIGNALS.0, NUM_SIGNALS.1, "number of signals", None)?;
    let ns = parse_int(s, "number of signals", None, NUM_SIGNALS.0)?;
    if !(1..=MAX_SIGNALS as i64).contains(&ns) {
        return Err(field_err(
            "number of signals",
            None,
            NUM_SIGNALS.0,
            format!("{ns} (must be 1–{MAX_SIGNALS})"),
        ));
    }
    Ok(ns as usize)
}

fn parse_variant(format: SampleFormat, reserved: &str) -> Result<Variant> {
    let head = reserved.get(..5).unwrap_or(reserved);
    let v = match (format, head) {
        (SampleFormat::Edf16, "EDF+C") | (SampleFormat::Bdf24, "BDF+C") => Variant::Continuous,
        (SampleFormat::Edf16, "EDF+D") | (SampleFormat::Bdf24, "BDF+D") => Variant::Discontinuous,
        _ if reserved.starts_with("EDF+") || reserved.starts_with("BDF+") => {
            let family = if format == SampleFormat::Edf16 {
                "EDF"
            } else {
                "BDF"
            };
            return Err(field_err(
                "reserved",
                None,
                RESERVED.0,
                format!("{reserved:?} is not \"{family}+C\" or \"{family}+D\" (file version says {family})"),
            ));
        }
        (SampleFormat::Bdf24, "24BIT") => Variant::Plain,
        _ => {
            if !reserved.is_empty() {
                tracing::debug!(reserved, "unrecognised reserved field; reading as plain EDF/BDF");
            }
            Variant::Plain
        }
    };
    Ok(v)
}

fn parse_signal(
    bytes: &[u8],
    ns: usize,
    i: usize,
    format: SampleFormat,
    variant: Variant,
) -> Result<SignalHeader> {
    let mut offsets = [0usize; 10];
    let mut base = BLOCK;
    for (k, &(_, width)) in SIG_FIELDS.iter().enumerate() {
        offsets[k] = base + i * width;
        base += ns * width;
    }
    let sig = Some(i);
    let text = |k: usize| ascii_field(bytes, offsets[k], SIG_FIELDS[k].1, SIG_FIELDS[k].0, sig);

    let label = text(0)?.to_owned();
    let transducer = text(1)?.to_owned();
    let physical_dimension = text(2)?.to_owned();
    let physical_min = decimal_field(text(3)?, "physical minimum", sig, offsets[3])?;
    let physical_max = decimal_field(text(4)?, "physical maximum", sig, offsets[4])?;
    let (lo, hi) = format.digital_limits();
    let digital = |k: usize| -> Result<i32> {
        let v = parse_int(text(k)?, SIG_FIELDS[k].0, sig, offsets[k])?;
        if v < lo as i64 || v > hi as i64 {
            return Err(field_err(
                SIG_FIELDS[k].0,
                sig,
                offsets[k],
                format!("{v} outside the format's range {lo}…{hi}"),
            ));
        }
        Ok(v as i32)
    };
    let digital_min = digital(5)?;
    let digital_max = digital(6)?;
    let prefiltering = text(7)?.to_owned();
    let spr = parse_int(text(8)?, "samples per data record", sig, offsets[8])?;
    if spr < 1 {
        return Err(field_err(
            "samples per data record",
            sig,
            offsets[8],
            format!("{spr} (must be ≥ 1)"),
        ));
    }
    let reserved = text(9)?.to_owned();

    let kind = if variant != Variant::Plain && (label == EDF_ANNOTATIONS || label == BDF_ANNOTATIONS) {
        SignalKind::Annotation
    } else {
        SignalKind::Data
    };
    if digital_max <= digital_min {
        return Err(field_err(
            "digital maximum",
            sig,
            offsets[6],
            format!("{digital_max} is not above the digital minimum {digital_min}"),
        ));
    }
    if kind == SignalKind::Data && physical_max == physical_min {
        return Err(field_err(
            "physical maximum",
            sig,
            offsets[4],
            format!("{physical_max} equals the physical minimum"),
        ));
    }
    Ok(SignalHeader {
        label,
        transducer,
        physical_dimension,
        physical_min,
        physical_max,
        digital_min,
        digital_max,
        prefiltering,
        samples_per_record: spr as usize,
        reserved,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two's-complement value of little-endian `b`, by arithmetic (independent of the bit tricks).
    fn reference(b: &[u8]) -> i64 {
        let u: i64 = b.iter().rev().fold(0, |acc, &x| acc * 256 + i64::from(x));
        let half = 1i64 << (8 * b.len() - 1);
        if u >= half { u - 2 * half } else { u }
    }

    proptest::proptest! {
        #[test]
        fn bulk_decoding_matches_twos_complement(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            for format in [SampleFormat::Edf16, SampleFormat::Bdf24] {
                let bps = format.bytes_per_sample();
                let mut out = vec![7];
                format.decode_append(&bytes, &mut out);
                proptest::prop_assert_eq!(out.len(), 1 + bytes.len() / bps);
                proptest::prop_assert_eq!(out[0], 7);
                for (v, b) in out[1..].iter().zip(bytes.chunks_exact(bps)) {
                    proptest::prop_assert_eq!(i64::from(*v), reference(b));
                    proptest::prop_assert_eq!(*v, format.decode(b));
                }
            }
        }
    }

    #[test]
    fn bulk_decoding_extremes() {
        let mut out = Vec::new();
        SampleFormat::Bdf24.decode_append(
            &[0xff, 0xff, 0x7f, 0x00, 0x00, 0x80, 0xff, 0xff, 0xff, 0x01],
            &mut out,
        );
        assert_eq!(out, [(1 << 23) - 1, -(1 << 23), -1]);
        out.clear();
        SampleFormat::Edf16.decode_append(&[0xff, 0x7f, 0x00, 0x80, 0xff], &mut out);
        assert_eq!(out, [i32::from(i16::MAX), i32::from(i16::MIN)]);
    }

    #[test]
    fn decimals() {
        for (s, v) in [
            ("1", 1.0),
            ("0.5", 0.5),
            ("-8711", -8711.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("+2", 2.0),
        ] {
            assert_eq!(parse_decimal(s), Some(v), "{s}");
        }
        assert_eq!(parse_decimal("1e3"), Some(1000.0));
        for s in ["", "-", ".", "1.2.3", "1e", "abc", "1 2", "nan", "inf", "1e999"] {
            assert_eq!(parse_decimal(s), None, "{s}");
        }
    }

    #[test]
    fn number_formatting_fits_eight_characters() {
        assert_eq!(format_number(-3000.0, 8).as_deref(), Some("-3000"));
        assert_eq!(format_number(0.5, 8).as_deref(), Some("0.5"));
        assert_eq!(format_number(1.0 / 3.0, 8).as_deref(), Some("0.333333"));
        assert_eq!(format_number(-1.0 / 3.0, 8).as_deref(), Some("-0.33333"));
        assert_eq!(format_number(123456789.0, 8), None);
        assert_eq!(format_number(-0.0000001, 8).as_deref(), Some("0"));
    }

    #[test]
    fn bdf_sign_extension() {
        let f = SampleFormat::Bdf24;
        let mut b = [0u8; 3];
        for v in [-(1 << 23), -1, 0, 1, (1 << 23) - 1, -12345, 4_000_000] {
            f.encode(v, &mut b);
            assert_eq!(f.decode(&b), v);
        }
        assert_eq!(f.decode(&[0xff, 0xff, 0xff]), -1);
        assert_eq!(f.decode(&[0x00, 0x00, 0x80]), -(1 << 23));
    }

    #[test]
    fn subfields() {
        let p = PatientId::parse("abcxyz99 M 30-JUN-1969 Hans_Muller patient more");
        assert_eq!(p.code, "abcxyz99");
        assert_eq!(p.name, "Hans Muller");
        assert_eq!(p.additional, "patient more");
        assert_eq!(PatientId::parse(&p.encode()), p);
        let r = RecordingId::parse("Startdate 04-APR-2011 Dr._X Mr._Spotty test_generator unit test file")
            .unwrap();
        assert_eq!(r.technician, "Mr. Spotty");
        assert_eq!(r.additional, "unit test file");
    }
}
