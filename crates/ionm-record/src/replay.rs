//! [`ReplaySource`]: an EDF/EDF+/BDF/BDF+ file as a stream of [`Acquired`] items, record by record.

use crate::TRIGGER_LABEL;
use crate::error::ReplayError;
use crate::sidecar::Sidecar;
use crate::text::{self, GapText, StartText};
use ionm_core::{
    Acquired, ChannelInfo, DeviceInfo, Gap, GapCause, MAX_BLOCK_VALUES, MAX_CHANNELS, SampleBlock,
    Stimulator, StimulusEvent, channel_mask,
};
use ionm_edf::{EdfReader, Header, SignalHeader, Variant};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;
use std::sync::Arc;

/// Most annotation-derived items (stimuli, gaps) a replay indexes; more are ignored with a warning.
pub const MAX_INDEXED_ANNOTATIONS: usize = 1 << 20;

/// How an [`AnnotationRule`] matches an annotation text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// The text starts with the pattern.
    Prefix,
    /// The text contains the pattern.
    Substring,
}

/// Turns matching annotations of a file into stimuli (for files whose stimuli are only annotated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnotationRule {
    /// The text to look for (case-sensitive).
    pub pattern: String,
    /// Prefix or substring.
    pub kind: MatchKind,
    /// The stimulator a matching annotation stands for.
    pub stimulator: Stimulator,
    /// Intensity reported with each stimulus, tenths of the stimulator's unit.
    pub intensity_tenths: u16,
    /// Pulse width reported, µs.
    pub pulse_width_us: u16,
    /// Pulses reported.
    pub pulses: u8,
}

impl AnnotationRule {
    /// Annotations starting with `pattern` are stimuli of `stimulator` (intensity and pulse width 0, 1 pulse).
    pub fn prefix(pattern: &str, stimulator: Stimulator) -> Self {
        Self {
            pattern: pattern.to_owned(),
            kind: MatchKind::Prefix,
            stimulator,
            intensity_tenths: 0,
            pulse_width_us: 0,
            pulses: 1,
        }
    }

    /// Annotations containing `pattern` are stimuli of `stimulator`.
    pub fn substring(pattern: &str, stimulator: Stimulator) -> Self {
        Self {
            kind: MatchKind::Substring,
            ..Self::prefix(pattern, stimulator)
        }
    }

    fn matches(&self, text: &str) -> bool {
        match self.kind {
            MatchKind::Prefix => text.starts_with(&self.pattern),
            MatchKind::Substring => text.contains(&self.pattern),
        }
    }
}

/// What to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    /// Signals to replay, by label (trimmed, exact), in this order. `None`: every ordinary signal (a voltage in
    /// nV, uV, mV or V) at the most common whole-number sample rate (ties: the higher rate), at most
    /// [`MAX_CHANNELS`]; the others are skipped with a warning naming them.
    pub channels: Option<Vec<String>>,
    /// Label of a trigger channel whose values are stimulator codes (`None`: no trigger channel). Default
    /// [`TRIGGER_LABEL`]. In an ionm recording every nonzero sample is a stimulus; in other files a stimulus is a
    /// sample whose masked value is nonzero and differs from the previous sample's (an edge).
    pub trigger_label: Option<String>,
    /// Mask applied to trigger values (default 0xFF: the 8-bit stimulator codes; BioSemi status channels keep
    /// the trigger in the low bits).
    pub trigger_mask: i32,
    /// Annotations that stand for stimuli (checked in order, first match wins).
    pub annotation_rules: Vec<AnnotationRule>,
    /// Read `<file>.json` beside an ionm recording for the exact device description (default true).
    pub read_sidecar: bool,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            channels: None,
            trigger_label: Some(TRIGGER_LABEL.to_owned()),
            trigger_mask: 0xFF,
            annotation_rules: Vec::new(),
            read_sidecar: true,
        }
    }
}

/// How a file's digital values become raw device values.
#[derive(Debug, Clone)]
enum Conv {
    /// An ionm recording: the digital value is the raw ADC value.
    Raw,
    /// Another file: `round(physical × nV_per_unit / gain_nV)`, clamped to `lo..=hi`.
    Physical {
        sig: Box<SignalHeader>,
        scale: f64,
        lo: i32,
        hi: i32,
    },
}

#[derive(Debug, Clone)]
struct Selected {
    signal: usize,
    conv: Conv,
}

/// Samples known to be missing in an ionm recording (a gap annotation), with why.
#[derive(Debug, Clone, Copy)]
struct Missing {
    from: u64,
    to: u64,
    cause: GapCause,
    frames: u32,
}

/// What [`ReplaySource::advance`] found.
#[derive(Debug)]
enum Next {
    /// The next item is at the front of `out`.
    Queued,
    /// `pending` holds the next sample block.
    Block,
    End,
}

#[derive(Debug)]
struct Cursor {
    first: u64,
    pos: usize,
}

/// nV per unit of an EDF physical dimension, for the voltages.
fn nv_per_unit(dimension: &str) -> Option<f64> {
    match dimension.trim().to_ascii_lowercase().as_str() {
        "nv" => Some(1.0),
        "uv" => Some(1e3),
        "mv" => Some(1e6),
        "v" => Some(1e9),
        _ => None,
    }
}

/// The whole-number sample rate of a signal, if it has one.
fn integer_rate(s: &SignalHeader, duration: f64) -> Option<u32> {
    let r = s.sample_rate(duration)?;
    let n = r.round();
    ((r - n).abs() < 1e-6 && n >= 1.0 && n <= f64::from(u32::MAX)).then_some(n as u32)
}

/// Annotation-derived facts gathered by the pre-scan.
#[derive(Debug, Default)]
struct Scan {
    /// Start of every record (s after the header's start); only kept for EDF+D.
    starts: Vec<f64>,
    /// Start of record 0.
    t0: f64,
    start: Option<StartText>,
    end: Option<f64>,
    gaps: Vec<(f64, GapText)>,
    own_stims: Vec<(f64, StimulusEvent)>,
    rule_stims: Vec<(f64, StimulusEvent)>,
    ignored: usize,
}

fn scan<R: Read + Seek>(reader: &mut EdfReader<R>, rules: &[AnnotationRule]) -> Result<Scan, ReplayError> {
    let header = reader.header().clone();
    let ann: Vec<usize> = header.annotation_signals().collect();
    let mut out = Scan::default();
    if ann.is_empty() {
        return Ok(out);
    }
    let keep_starts = header.variant == Variant::Discontinuous;
    let mut items = 0usize;
    for r in 0..reader.num_records() {
        for (k, &sig) in ann.iter().enumerate() {
            let tals = reader.read_tals(sig, r)?;
            for (t, tal) in tals.iter().enumerate() {
                let timekeeping = k == 0 && t == 0;
                if timekeeping {
                    if r == 0 {
                        out.t0 = tal.onset;
                    }
                    if keep_starts {
                        out.starts.push(tal.onset);
                    }
                }
                for (j, txt) in tal.texts.iter().enumerate() {
                    if txt.is_empty() || (timekeeping && j == 0) {
                        continue;
                    }
                    if items >= MAX_INDEXED_ANNOTATIONS {
                        out.ignored += 1;
                        continue;
                    }
                    let onset = tal.onset;
                    if let Some(s) = text::parse_start(txt) {
                        out.start.get_or_insert(s);
                    } else if txt == text::END_TEXT {
                        out.end = Some(out.end.map_or(onset, |e: f64| e.min(onset)));
                    } else if let Some(g) = text::parse_gap(txt) {
                        out.gaps.push((onset, g));
                        items += 1;
                    } else if let Some(s) = text::parse_stimulus(txt) {
                        out.own_stims.push((onset, s));
                        items += 1;
                    }
                    if let Some(rule) = rules.iter().find(|rule| rule.matches(txt)) {
                        out.rule_stims.push((
                            onset,
                            StimulusEvent {
                                sample_index: 0,
                                stimulator: rule.stimulator,
                                intensity_tenths: rule.intensity_tenths,
                                pulse_width_us: rule.pulse_width_us,
                                pulses: rule.pulses,
                            },
                        ));
                        items += 1;
                    }
                }
            }
            if k == 0 && tals.is_empty() {
                return Err(ReplayError::Layout(format!(
                    "record {r} has no time-keeping annotation (its start time is missing)"
                )));
            }
        }
    }
    if out.ignored > 0 {
        tracing::warn!(
            ignored = out.ignored,
            "more than {MAX_INDEXED_ANNOTATIONS} stimulus/gap annotations: the rest are ignored"
        );
    }
    Ok(out)
}

/// Replays an EDF, EDF+, BDF or BDF+ file — an ionm recording or another tool's — as the [`Acquired`] stream a
/// device would have produced:
///
/// - first [`Acquired::Device`]: for an ionm recording the original device (from the sidecar when present,
///   else from the header and the start annotation: labels, integer gains in nV/LSB recovered from the physical
///   range, ADC range = digital range, session, protocol version, firmware); for other files the selected
///   signals as channels with raw value `round(physical × nV_per_unit / gain)` and gain 1 nV/LSB (a power of
///   ten when the range would not fit in 2³⁰ nV), ADC range from the physical ranges, session 0;
/// - [`Acquired::Samples`] blocks of at most [`MAX_BLOCK_VALUES`] values, never spanning a record, a gap or the
///   end;
/// - [`Acquired::Stimulus`] before the block that holds its sample (from the trigger channel and/or the
///   annotations; in an ionm recording both, merged so that every stimulus keeps its intensity, pulse width and
///   pulses); stimuli that fall into gaps come after the [`Acquired::Gap`];
/// - [`Acquired::Gap`] wherever samples are missing: between EDF+D records that are not contiguous (cause
///   `disconnected` for other files) and, in ionm recordings, exactly the ranges of the gap annotations with
///   their cause and frame count (the padding the recorder wrote there is never replayed).
///
/// Sample indices are absolute: those of the original stream for an ionm recording, from 0 at the first sample
/// otherwise; stream time is `index / rate`. Statuses and link events are not replayed. Pacing is the caller's.
/// Memory is one data record plus the annotation index (8 bytes per EDF+D record, ~32 bytes per stimulus or gap
/// annotation, at most [`MAX_INDEXED_ANNOTATIONS`]).
///
/// Every channel is decoded unless the caller says that only some are read
/// ([`decode_only`](Self::decode_only), e.g. a headless run's DSP channels): the others' bytes are then neither
/// read from the file nor converted, their slots in the sample blocks hold [`SampleBlock::UNDECODED`] and the
/// blocks say so ([`SampleBlock::is_decoded`]). Stimuli, gaps and every other item are the same either way.
#[derive(Debug)]
pub struct ReplaySource<R = BufReader<File>> {
    reader: EdfReader<R>,
    device: Arc<DeviceInfo>,
    native: bool,
    sidecar: Option<Sidecar>,
    selected: Vec<Selected>,
    skipped: Vec<String>,
    trigger: Option<usize>,
    mask: i32,
    fs: f64,
    spr: usize,
    first_index: u64,
    /// First sample index of every record (EDF+D only; regular files compute it).
    starts: Option<Vec<u64>>,
    n_records: u64,
    end_index: u64,
    missing: Vec<Missing>,
    stims: Vec<StimulusEvent>,
    // Position.
    next_record: u64,
    cur: Option<Cursor>,
    expected: Option<u64>,
    stim_pos: usize,
    gap_pos: usize,
    prev_trig: i32,
    need_device: bool,
    done: bool,
    out: VecDeque<Acquired>,
    /// The sample block due after `out` (first sample index, position in the loaded record, samples): written
    /// straight into the caller's item by [`ReplaySource::next_into`] (a block is 8 kB; queueing and moving
    /// it item by item was most of a replay thread's time).
    pending: Option<(u64, usize, usize)>,
    /// Device channels to decode from the next record on (bit `c`: `selected[c]`).
    decode: u64,
    /// The signals a record is read for when not all channels are decoded: the decoded ones and the trigger.
    read_signals: Vec<usize>,
    /// Device channels decoded in the loaded record (`chans[c]` is empty for the others).
    loaded: u64,
    chans: Vec<Vec<i32>>,
    trig: Vec<i32>,
    scratch: Vec<StimulusEvent>,
    warned_code: bool,
}

impl ReplaySource<BufReader<File>> {
    /// Opens a file (and its sidecar `<file>.json` if present and `config.read_sidecar`).
    pub fn open(path: impl AsRef<Path>, config: &ReplayConfig) -> Result<Self, ReplayError> {
        let path = path.as_ref();
        let reader = EdfReader::open(path).map_err(|source| ReplayError::Open {
            path: path.to_owned(),
            source,
        })?;
        let sidecar = if config.read_sidecar {
            match Sidecar::read(path) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "sidecar ignored");
                    None
                }
            }
        } else {
            None
        };
        Self::new(reader, config, sidecar)
    }
}

impl<R: Read + Seek> ReplaySource<R> {
    /// Replays from an opened reader, with the sidecar of an ionm recording if the caller has it.
    pub fn new(
        mut reader: EdfReader<R>,
        config: &ReplayConfig,
        sidecar: Option<Sidecar>,
    ) -> Result<Self, ReplayError> {
        let header = reader.header().clone();
        let d = header.record_duration;
        let scan = scan(&mut reader, &config.annotation_rules)?;
        let data: Vec<usize> = header.data_signals().collect();
        let label = |i: usize| header.signals[i].label.trim().to_owned();

        // An ionm recording's trigger channel is its last data signal.
        let own_trigger = data.last().copied().filter(|&i| label(i) == TRIGGER_LABEL);
        // An ionm recording? Its start annotation, or a sidecar that describes this file.
        let sidecar = sidecar.filter(|s| {
            let ok = own_trigger.is_some()
                && s.device.n_channels() + 1 == data.len()
                && data
                    .first()
                    .is_some_and(|&i| header.signals[i].samples_per_record == s.samples_per_record);
            if !ok {
                tracing::warn!(
                    file = s.file,
                    "sidecar does not describe this file's signals: ignored"
                );
            }
            ok
        });
        let native = (scan.start.is_some() && own_trigger.is_some()) || sidecar.is_some();
        // The trigger channel used for stimuli: in an ionm recording its own (unless none is wanted), in other
        // files the last data signal with the configured label.
        let mut trigger = if native {
            own_trigger.filter(|_| config.trigger_label.is_some())
        } else {
            config
                .trigger_label
                .as_ref()
                .and_then(|t| data.iter().rev().copied().find(|&i| label(i) == t.trim()))
        };
        // Candidates: every data signal but the trigger (an ionm recording's is never a channel).
        let excluded = if native { own_trigger } else { trigger };
        let candidates: Vec<usize> = data.iter().copied().filter(|&i| Some(i) != excluded).collect();
        let mut skipped = Vec::new();
        let selected: Vec<usize> = match &config.channels {
            Some(list) => {
                let mut sel = Vec::with_capacity(list.len());
                for want in list {
                    let found = candidates
                        .iter()
                        .copied()
                        .find(|&i| label(i) == want.trim() && !sel.contains(&i))
                        .ok_or_else(|| {
                            ReplayError::Channel(format!(
                                "no signal labelled {want:?} (signals: {})",
                                candidates
                                    .iter()
                                    .map(|&i| format!("{:?}", label(i)))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ))
                        })?;
                    sel.push(found);
                }
                if sel.is_empty() || sel.len() > MAX_CHANNELS {
                    return Err(ReplayError::Channel(format!(
                        "{} channels asked for (1–{MAX_CHANNELS})",
                        sel.len()
                    )));
                }
                let rate = integer_rate(&header.signals[sel[0]], d);
                for &i in &sel {
                    let r = integer_rate(&header.signals[i], d);
                    if r.is_none() || r != rate {
                        return Err(ReplayError::Channel(format!(
                            "{:?} is at {:?} Hz, {:?} at {:?} Hz: channels must share one whole-number rate",
                            label(sel[0]),
                            header.sample_rate(sel[0]),
                            label(i),
                            header.sample_rate(i)
                        )));
                    }
                    if !native && nv_per_unit(&header.signals[i].physical_dimension).is_none() {
                        tracing::warn!(
                            signal = label(i),
                            unit = header.signals[i].physical_dimension,
                            "not a voltage unit: read as uV"
                        );
                    }
                }
                sel
            }
            None => {
                let mut usable = Vec::new();
                for &i in &candidates {
                    let s = &header.signals[i];
                    if !native && nv_per_unit(&s.physical_dimension).is_none() {
                        skipped.push(format!(
                            "{:?} (unit {:?} is not a voltage)",
                            label(i),
                            s.physical_dimension
                        ));
                    } else if let Some(r) = integer_rate(s, d) {
                        usable.push((i, r));
                    } else {
                        skipped.push(format!(
                            "{:?} ({:?} Hz is not a whole number)",
                            label(i),
                            header.sample_rate(i)
                        ));
                    }
                }
                let mut best: Option<(usize, u32)> = None;
                for &(_, r) in &usable {
                    let n = usable.iter().filter(|&&(_, q)| q == r).count();
                    if best.is_none_or(|(bn, br)| n > bn || (n == bn && r > br)) {
                        best = Some((n, r));
                    }
                }
                let Some((_, rate)) = best else {
                    return Err(ReplayError::NoUsableSignal(if candidates.is_empty() {
                        "the file has no data signal".to_owned()
                    } else {
                        skipped.join(", ")
                    }));
                };
                let mut sel = Vec::new();
                for (i, r) in usable {
                    if r != rate {
                        skipped.push(format!("{:?} ({r} Hz, replaying {rate} Hz)", label(i)));
                    } else if sel.len() >= MAX_CHANNELS {
                        skipped.push(format!("{:?} (more than {MAX_CHANNELS} channels)", label(i)));
                    } else {
                        sel.push(i);
                    }
                }
                sel
            }
        };
        if !skipped.is_empty() {
            tracing::warn!(skipped = skipped.join("; "), "signals not replayed");
        }
        let spr = header.signals[selected[0]].samples_per_record;
        let rate = integer_rate(&header.signals[selected[0]], d).unwrap_or(1);
        let fs = f64::from(rate);
        if let Some(t) = trigger
            && header.signals[t].samples_per_record != spr
        {
            tracing::warn!(
                trigger = label(t),
                "trigger channel at another rate than the replayed signals: ignored"
            );
            trigger = None;
        }

        // Device and conversions.
        let positions: Vec<usize> = selected
            .iter()
            .map(|&i| candidates.iter().position(|&c| c == i).unwrap_or(0))
            .collect();
        let (device, convs) = if native {
            native_device(
                &header,
                &selected,
                &positions,
                rate,
                sidecar.as_ref(),
                scan.start.as_ref(),
            )?
        } else {
            foreign_device(&header, &selected, rate)?
        };
        let selected: Vec<Selected> = selected
            .into_iter()
            .zip(convs)
            .map(|(signal, conv)| Selected { signal, conv })
            .collect();

        // The sample grid.
        let first_index = if native {
            scan.start
                .as_ref()
                .map(|s| s.first_index)
                .or(sidecar.as_ref().map(|s| s.first_index))
                .unwrap_or(0)
        } else {
            0
        };
        let n_records = reader.num_records();
        let to_index = |t: f64| -> Option<u64> {
            let k = ((t - scan.t0) * fs).round();
            (0.0..9.0e15).contains(&k).then(|| first_index + k as u64)
        };
        let starts = if header.variant == Variant::Discontinuous {
            if scan.starts.len() as u64 != n_records {
                return Err(ReplayError::Layout(format!(
                    "EDF+D file with {} record start times for {n_records} records",
                    scan.starts.len()
                )));
            }
            let mut v = Vec::with_capacity(scan.starts.len());
            for (r, &t) in scan.starts.iter().enumerate() {
                let i = to_index(t).ok_or_else(|| {
                    ReplayError::Layout(format!(
                        "record {r} starts at {t} s, before record 0 or absurdly late"
                    ))
                })?;
                if let Some(&prev) = v.last()
                    && i < prev + spr as u64
                {
                    return Err(ReplayError::Layout(format!(
                        "record {r} starts at {t} s, inside record {} (EDF+D records must not overlap)",
                        r - 1
                    )));
                }
                v.push(i);
            }
            Some(v)
        } else {
            None
        };
        let record_first = |r: u64| match &starts {
            Some(v) => v[r as usize],
            None => first_index + r * spr as u64,
        };
        let mut end_index = if n_records == 0 {
            first_index
        } else {
            record_first(n_records - 1) + spr as u64
        };
        if native && let Some(e) = scan.end.and_then(to_index) {
            end_index = end_index.min(e);
        }

        let mut missing: Vec<Missing> = Vec::new();
        let mut stims: Vec<StimulusEvent> = Vec::new();
        if native {
            for (t, g) in &scan.gaps {
                if let Some(from) = to_index(*t) {
                    missing.push(Missing {
                        from,
                        to: from.saturating_add(g.samples),
                        cause: g.reason.cause(),
                        frames: g.frames,
                    });
                }
            }
            for (t, s) in &scan.own_stims {
                if let Some(i) = to_index(*t) {
                    stims.push(StimulusEvent {
                        sample_index: i,
                        ..*s
                    });
                }
            }
        }
        for (t, s) in &scan.rule_stims {
            if let Some(i) = to_index(*t) {
                stims.push(StimulusEvent {
                    sample_index: i,
                    ..*s
                });
            }
        }
        missing.sort_by_key(|m| (m.from, m.to));
        stims.sort_by_key(|s| (s.sample_index, s.stimulator.code()));
        stims.dedup_by_key(|s| (s.sample_index, s.stimulator.code()));
        let nch = selected.len();
        Ok(Self {
            reader,
            device: Arc::new(device),
            native,
            sidecar,
            selected,
            skipped,
            trigger,
            mask: config.trigger_mask,
            fs,
            spr,
            first_index,
            starts,
            n_records,
            end_index,
            missing,
            stims,
            next_record: 0,
            cur: None,
            expected: None,
            stim_pos: 0,
            gap_pos: 0,
            prev_trig: 0,
            need_device: true,
            done: false,
            out: VecDeque::new(),
            pending: None,
            decode: channel_mask(nch),
            read_signals: Vec::new(),
            loaded: channel_mask(nch),
            chans: vec![Vec::with_capacity(spr); nch],
            trig: Vec::with_capacity(spr),
            scratch: Vec::new(),
            warned_code: false,
        })
    }

    /// The device the replay declares.
    pub fn device(&self) -> &Arc<DeviceInfo> {
        &self.device
    }

    /// True for an ionm recording (start annotation or matching sidecar found).
    pub fn is_native(&self) -> bool {
        self.native
    }

    /// The sidecar used, if any.
    pub fn sidecar(&self) -> Option<&Sidecar> {
        self.sidecar.as_ref()
    }

    /// The file's header.
    pub fn header(&self) -> &Header {
        self.reader.header()
    }

    /// Signals not replayed, each with the reason.
    pub fn skipped_signals(&self) -> &[String] {
        &self.skipped
    }

    /// The trigger channel used (signal number), if any.
    pub fn trigger_signal(&self) -> Option<usize> {
        self.trigger
    }

    /// Decodes only the device channels in `channels` (bit `c`: channel `c` of [`device`](Self::device)) from
    /// the next data record on — call it before the first item to have it for the whole replay. The others'
    /// bytes are not read from the file and their slots in the sample blocks are [`SampleBlock::UNDECODED`],
    /// marked as not decoded ([`SampleBlock::decoded_channels`]); the trigger channel and the annotations are
    /// read as ever, so stimuli and gaps do not change, nor does the device. Only for consumers that read
    /// nothing but these channels (the DSP engine: `ionm_dsp::Engine::device_channels`); a recorder or a live
    /// view needs every channel. All channels (the default) read whole records as before.
    ///
    /// An error, and nothing changes, if `channels` names a channel the device does not have.
    pub fn decode_only(&mut self, channels: u64) -> Result<(), ReplayError> {
        let all = channel_mask(self.selected.len());
        if channels & !all != 0 {
            return Err(ReplayError::Channel(format!(
                "decode mask {channels:#x} names channels beyond the device's {}",
                self.selected.len()
            )));
        }
        self.decode = channels;
        self.read_signals.clear();
        if channels != all {
            self.read_signals.extend(
                self.selected
                    .iter()
                    .enumerate()
                    .filter(|&(c, _)| channels & (1u64 << c) != 0)
                    .map(|(_, sel)| sel.signal),
            );
            self.read_signals.extend(self.trigger);
        }
        Ok(())
    }

    /// The device channels decoded from the next data record on (bit `c`: channel `c`; all by default).
    pub fn decoded_channels(&self) -> u64 {
        self.decode
    }

    fn record_first(&self, r: u64) -> u64 {
        match &self.starts {
            Some(v) => v.get(r as usize).copied().unwrap_or(self.end_index),
            None => self.first_index + r * self.spr as u64,
        }
    }

    /// Stream time of the first sample, s (`index / rate`).
    pub fn start_s(&self) -> f64 {
        self.first_index as f64 / self.fs
    }

    /// Stream time just after the last sample, s.
    pub fn end_s(&self) -> f64 {
        self.end_index as f64 / self.fs
    }

    /// Time from the first sample to the end, gaps included, s.
    pub fn duration_s(&self) -> f64 {
        self.end_s() - self.start_s()
    }

    /// Stream time of the next sample to be replayed (padding skipped), s.
    pub fn position_s(&self) -> f64 {
        let i = match &self.cur {
            Some(c) if c.pos < self.spr => c.first + c.pos as u64,
            _ if self.next_record < self.n_records => self.record_first(self.next_record),
            _ => self.end_index,
        };
        let mut i = i.min(self.end_index);
        while let Some(m) = self.missing_at(i) {
            i = m.to.min(self.end_index);
        }
        i as f64 / self.fs
    }

    /// Re-positions at the start of the data record that contains `stream_s` (clamped to the recording; a time
    /// in a gap goes to the next record). The next item is then always a fresh [`Acquired::Device`] (the same
    /// description), which tells the pipeline that sample continuity restarts — it works for seeks in both
    /// directions, where a `Gap` could only go forwards. Stimuli and gaps before that record are not replayed.
    pub fn seek(&mut self, stream_s: f64) {
        let target = if stream_s.is_finite() {
            ((stream_s * self.fs).round().max(0.0) as u64).clamp(self.first_index, self.end_index)
        } else {
            self.first_index
        };
        let r = if target >= self.end_index {
            self.n_records
        } else {
            match &self.starts {
                Some(v) => {
                    let r = v.partition_point(|&s| s <= target).saturating_sub(1);
                    // In a gap after record r: go to the next record.
                    (if v.get(r).is_some_and(|&s| target >= s + self.spr as u64) {
                        r + 1
                    } else {
                        r
                    }) as u64
                }
                None => (target - self.first_index) / self.spr as u64,
            }
        };
        self.next_record = r.min(self.n_records);
        let start = if self.next_record < self.n_records {
            self.record_first(self.next_record)
        } else {
            self.end_index
        };
        self.cur = None;
        self.expected = None;
        self.out.clear();
        self.pending = None;
        self.need_device = true;
        self.done = false;
        self.prev_trig = 0;
        self.stim_pos = self.stims.partition_point(|s| s.sample_index < start);
        self.gap_pos = self.missing.partition_point(|m| m.from < start);
    }

    /// The next item, `None` at the end of the file.
    pub fn next_item(&mut self) -> Result<Option<Acquired>, ReplayError> {
        Ok(match self.advance()? {
            Next::Queued => self.out.pop_front(),
            Next::Block => {
                let mut block = SampleBlock::empty();
                self.write_pending(&mut block);
                Some(Acquired::Samples(block))
            }
            Next::End => None,
        })
    }

    /// The next item written into `slot` (a sample block in place when `slot` already holds one, so a
    /// thread that reuses its slot does not move 8 kB blocks through queues); false at the end of the file
    /// (`slot` unchanged). The same items as [`Self::next_item`].
    pub fn next_into(&mut self, slot: &mut Acquired) -> Result<bool, ReplayError> {
        match self.advance()? {
            Next::Queued => {
                if let Some(x) = self.out.pop_front() {
                    *slot = x;
                }
            }
            Next::Block => match slot {
                Acquired::Samples(block) => self.write_pending(block),
                other => {
                    let mut block = SampleBlock::empty();
                    self.write_pending(&mut block);
                    *other = Acquired::Samples(block);
                }
            },
            Next::End => return Ok(false),
        }
        Ok(true)
    }

    /// Moves on to the next item: a queued one, the pending block, or the end.
    fn advance(&mut self) -> Result<Next, ReplayError> {
        loop {
            if !self.out.is_empty() {
                return Ok(Next::Queued);
            }
            if self.pending.is_some() {
                return Ok(Next::Block);
            }
            if self.need_device {
                self.need_device = false;
                self.out.push_back(Acquired::Device(self.device.clone()));
                return Ok(Next::Queued);
            }
            if self.done {
                return Ok(Next::End);
            }
            if self.cur.as_ref().is_none_or(|c| c.pos >= self.spr) {
                if self.next_record >= self.n_records || self.record_first(self.next_record) >= self.end_index
                {
                    self.tail();
                    self.done = true;
                    continue;
                }
                let r = self.next_record;
                self.load(r)?;
                self.next_record += 1;
                continue;
            }
            self.produce();
        }
    }

    /// Writes the pending block (samples `pos..pos + n` of the loaded record, first index `i`) into `block`.
    fn write_pending(&mut self, block: &mut SampleBlock) {
        let Some((i, pos, n)) = self.pending.take() else {
            return;
        };
        let nch = self.selected.len();
        let (chans, loaded) = (&self.chans, self.loaded);
        // The block stores the decoded channels only, in channel order, `stride` values per instant.
        let stride = (loaded & channel_mask(nch)).count_ones() as usize;
        // Channel by channel (strided writes, contiguous reads): the interleaving is one pass over each
        // channel's samples without per-sample bounds checks on the channel lists.
        let interleave = |dst: &mut [i32]| {
            let decoded = chans
                .iter()
                .enumerate()
                .filter(|(c, _)| loaded & (1u64 << c) != 0);
            for (col, (_, chan)) in decoded.enumerate() {
                for (v, &x) in dst[col..].iter_mut().step_by(stride).zip(&chan[pos..pos + n]) {
                    *v = x;
                }
            }
        };
        // n × stride ≤ MAX_BLOCK_VALUES (`produce`), so the block fits.
        let _ = block.fill_decoded(i, nch, n, loaded, interleave);
    }

    fn load(&mut self, r: u64) -> Result<(), ReplayError> {
        let first = self.record_first(r);
        let decode = self.decode;
        let record = if decode == channel_mask(self.selected.len()) {
            self.reader.read_record(r)?
        } else {
            // Only the decoded channels' and the trigger's bytes (plus the record's last byte: a record cut
            // short fails here as a whole read would).
            self.reader.read_record_signals(r, &self.read_signals)?
        };
        for (c, (sel, chan)) in self.selected.iter().zip(self.chans.iter_mut()).enumerate() {
            chan.clear();
            if decode & (1u64 << c) == 0 {
                continue;
            }
            match &sel.conv {
                Conv::Raw => record.digital_into(sel.signal, chan)?,
                Conv::Physical { sig, scale, lo, hi } => chan.extend(record.digital(sel.signal)?.map(|d| {
                    let v = (sig.to_physical(d) * scale).round();
                    v.clamp(f64::from(*lo), f64::from(*hi)) as i32
                })),
            }
        }
        self.trig.clear();
        if let Some(t) = self.trigger {
            record.digital_into(t, &mut self.trig)?;
        }
        self.loaded = decode;
        self.cur = Some(Cursor { first, pos: 0 });
        Ok(())
    }

    /// The missing range (from a gap annotation) that contains `i`, if any.
    fn missing_at(&self, i: u64) -> Option<&Missing> {
        let k = self.missing.partition_point(|m| m.from <= i);
        self.missing[..k].iter().rev().take(4).find(|m| m.to > i)
    }

    /// Emits the next block of the current record (with the gap and stimuli before it), or skips padding.
    fn produce(&mut self) {
        let Some(cur) = self.cur.as_ref() else { return };
        let (first, pos) = (cur.first, cur.pos);
        let i = first + pos as u64;
        let rec_end = first + self.spr as u64;
        if i >= self.end_index {
            self.set_pos(self.spr);
            self.next_record = self.n_records;
            return;
        }
        if let Some(m) = self.missing_at(i) {
            let to = m.to.min(rec_end);
            self.set_pos((to - first) as usize);
            return;
        }
        let nch = self.selected.len();
        let mut run_end = rec_end.min(self.end_index);
        let k = self.missing.partition_point(|m| m.from <= i);
        if let Some(m) = self.missing.get(k) {
            run_end = run_end.min(m.from);
        }
        // As many instants as the block holds: only the decoded channels are stored.
        let stored = (self.loaded & channel_mask(nch)).count_ones() as usize;
        let n = ((run_end - i) as usize).min(MAX_BLOCK_VALUES / stored.max(1));

        // A gap before this block?
        if let Some(e) = self.expected
            && i > e
        {
            let known = self.missing[self.gap_pos..]
                .iter()
                .take_while(|m| m.from < i)
                .find(|m| m.to > e)
                .copied();
            let (cause, frames) = known.map_or((GapCause::Disconnected, 0), |m| (m.cause, m.frames));
            self.push_stims_before(e);
            self.out.push_back(Acquired::Gap(Gap {
                cause,
                from: e,
                to: i,
                frames,
            }));
            self.prev_trig = 0;
        }
        self.gap_pos += self.missing[self.gap_pos..]
            .iter()
            .take_while(|m| m.from < i)
            .count();

        // Stimuli up to the end of the block: annotated ones, and the trigger channel's.
        let end = i + n as u64;
        self.scratch.clear();
        while let Some(s) = self.stims.get(self.stim_pos)
            && s.sample_index < end
        {
            self.scratch.push(*s);
            self.stim_pos += 1;
        }
        let annotated = self.scratch.len();
        if self.trigger.is_some() && !self.trig.is_empty() {
            for (k, &v) in self.trig[pos..pos + n].iter().enumerate() {
                let code = v & self.mask;
                let fire = if self.native {
                    code != 0
                } else {
                    code != 0 && code != self.prev_trig
                };
                self.prev_trig = code;
                if !fire {
                    continue;
                }
                let Ok(code8) = u8::try_from(code) else {
                    if !self.warned_code {
                        tracing::warn!(code, "trigger value is not a stimulator code (1–255): ignored");
                        self.warned_code = true;
                    }
                    continue;
                };
                let index = i + k as u64;
                let stimulator = Stimulator::from_code(code8);
                let known = self.scratch[..annotated]
                    .iter()
                    .any(|s| s.sample_index == index && s.stimulator == stimulator);
                if !known {
                    self.scratch.push(StimulusEvent {
                        sample_index: index,
                        stimulator,
                        intensity_tenths: 0,
                        pulse_width_us: 0,
                        pulses: 1,
                    });
                }
            }
        }
        self.scratch
            .sort_by_key(|s| (s.sample_index, s.stimulator.code()));
        self.out.extend(self.scratch.drain(..).map(Acquired::Stimulus));

        // The block itself is written when it is taken (`next_into`), from the loaded record.
        self.pending = Some((i, pos, n));
        self.expected = Some(end);
        self.set_pos(pos + n);
    }

    fn set_pos(&mut self, pos: usize) {
        if let Some(c) = self.cur.as_mut() {
            c.pos = pos;
        }
    }

    /// Annotated stimuli before `index` that have not been replayed (they fell into a gap before it).
    fn push_stims_before(&mut self, index: u64) {
        while let Some(s) = self.stims.get(self.stim_pos)
            && s.sample_index < index
        {
            self.out.push_back(Acquired::Stimulus(*s));
            self.stim_pos += 1;
        }
    }

    /// After the last record: the gaps recorded after the last sample and the stimuli that remain.
    fn tail(&mut self) {
        let from = self.expected.unwrap_or(self.end_index);
        let rest: Vec<Missing> = self.missing[self.gap_pos..]
            .iter()
            .filter(|m| m.to > from)
            .copied()
            .collect();
        self.gap_pos = self.missing.len();
        for m in rest {
            self.push_stims_before(m.from.max(from));
            self.out.push_back(Acquired::Gap(Gap {
                cause: m.cause,
                from: m.from.max(from),
                to: m.to,
                frames: m.frames,
            }));
        }
        self.push_stims_before(u64::MAX);
    }
}

impl<R: Read + Seek> Iterator for ReplaySource<R> {
    type Item = Result<Acquired, ReplayError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_item().transpose()
    }
}

/// The device of an ionm recording, and raw conversions.
fn native_device(
    header: &Header,
    selected: &[usize],
    positions: &[usize],
    rate: u32,
    sidecar: Option<&Sidecar>,
    start: Option<&StartText>,
) -> Result<(DeviceInfo, Vec<Conv>), ReplayError> {
    let convs = vec![Conv::Raw; selected.len()];
    if let Some(s) = sidecar
        && s.device.sample_rate_hz == rate
    {
        let mut d = s.device.clone();
        d.channels = positions
            .iter()
            .filter_map(|&p| s.device.channels.get(p).cloned())
            .collect();
        if d.channels.len() == selected.len() {
            return Ok((d, convs));
        }
    }
    let first = &header.signals[selected[0]];
    let mut channels = Vec::with_capacity(selected.len());
    for &i in selected {
        let s = &header.signals[i];
        let per_unit = nv_per_unit(&s.physical_dimension).unwrap_or(1e3);
        let g = s.gain() * per_unit;
        let gain = g.round();
        if !(gain >= 1.0 && gain <= f64::from(u32::MAX) && (g - gain).abs() <= 1e-4 * gain) {
            return Err(ReplayError::Layout(format!(
                "signal {:?}: {g} nV per digital step is not a whole number (not written by ionm?)",
                s.label.trim()
            )));
        }
        channels.push(ChannelInfo {
            label: s.label.trim().to_owned(),
            gain_nv_per_lsb: gain as u32,
        });
    }
    let d = DeviceInfo {
        // A replay hands each stimulus out just before the block holding its sample, not ahead of it: it does
        // not keep a recorded device's stimulus-lead promise (revision 2, docs/protocol.md), so it declares at
        // most revision 1 and the DSP holds samples back for late stimuli as usual.
        protocol_version: start.map_or(0, |s| s.protocol_version.min(1)),
        sample_rate_hz: rate,
        channels,
        adc_min: first.digital_min,
        adc_max: first.digital_max,
        firmware_version: start.map(|s| s.firmware.clone()).unwrap_or_default(),
        session_id: start.map_or(0, |s| s.session_id),
    };
    Ok((d, convs))
}

/// The device of another tool's file: gain 1 nV/LSB (or the power of ten that keeps the range within 2³⁰).
fn foreign_device(
    header: &Header,
    selected: &[usize],
    rate: u32,
) -> Result<(DeviceInfo, Vec<Conv>), ReplayError> {
    const LIMIT: f64 = (1u64 << 30) as f64;
    let mut channels = Vec::with_capacity(selected.len());
    let mut convs = Vec::with_capacity(selected.len());
    let (mut adc_min, mut adc_max) = (i32::MAX, i32::MIN);
    for &i in selected {
        let s = &header.signals[i];
        let per_unit = nv_per_unit(&s.physical_dimension).unwrap_or(1e3);
        let lo_nv = s.physical_min.min(s.physical_max) * per_unit;
        let hi_nv = s.physical_min.max(s.physical_max) * per_unit;
        let mut gain = 1u32;
        while lo_nv.abs().max(hi_nv.abs()) / f64::from(gain) > LIMIT {
            gain = gain.checked_mul(10).ok_or_else(|| {
                ReplayError::Layout(format!(
                    "signal {:?}: physical range {lo_nv}…{hi_nv} nV is too wide",
                    s.label.trim()
                ))
            })?;
        }
        let g = f64::from(gain);
        let lo = (lo_nv / g).floor() as i32;
        let hi = ((hi_nv / g).ceil() as i32).max(lo + 1);
        adc_min = adc_min.min(lo);
        adc_max = adc_max.max(hi);
        channels.push(ChannelInfo {
            label: s.label.trim().to_owned(),
            gain_nv_per_lsb: gain,
        });
        convs.push(Conv::Physical {
            sig: Box::new(s.clone()),
            scale: per_unit / g,
            lo,
            hi,
        });
    }
    let recording = header.recording.trim();
    let d = DeviceInfo {
        protocol_version: 0,
        sample_rate_hz: rate,
        channels,
        adc_min,
        adc_max,
        firmware_version: if recording.is_empty() {
            "edf replay".to_owned()
        } else {
            format!("edf replay: {recording}")
        },
        session_id: 0,
    };
    Ok((d, convs))
}
