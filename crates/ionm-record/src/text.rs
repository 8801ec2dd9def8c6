//! The annotation texts of an ionm recording: how the recorder writes them and how the replay parses the ones it
//! needs. This is part of the file format (see the crate docs); change it only together with
//! [`crate::FORMAT_VERSION`].

use ionm_core::events::{AlarmEvent, BaselineEvent, BaselineOrigin, CorrectionEvent, MarkerEvent};
use ionm_core::{DeviceStatus, GapCause, IntensityUnit, LinkEvent, Stimulator, StimulusEvent};
use std::fmt::Write as _;

/// Longest annotation text the recorder writes, in bytes (longer free texts are cut at a character boundary).
pub const MAX_TEXT_BYTES: usize = 240;

/// Prefix of the annotation that opens every ionm recording (record 0, onset 0).
pub const START_PREFIX: &str = "ionm start ";
/// Text of the annotation that marks the padding after the last recorded sample (MNE treats `BAD_…`
/// annotations as bad segments).
pub const END_TEXT: &str = "BAD_end_padding";
/// Prefix of stimulus annotations.
pub const STIM_PREFIX: &str = "stim ";
/// Prefix of gap annotations (`BAD_` so that MNE rejects epochs overlapping the padding).
pub const GAP_PREFIX: &str = "BAD_gap ";

/// Why samples are missing, as written in a gap annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// A [`ionm_core::Gap`] item from the source said why.
    Source(GapCause),
    /// The recorder's own queue was full and sample blocks were dropped.
    RecorderOverrun,
    /// Samples did not continue where they should have and no gap item explained it.
    Unexplained,
}

impl GapReason {
    /// The word written in the annotation.
    pub fn word(self) -> &'static str {
        match self {
            Self::Source(GapCause::LostFrames) => "lost_frames",
            Self::Source(GapCause::Overrun) => "overrun",
            Self::Source(GapCause::Disconnected) => "disconnected",
            Self::RecorderOverrun => "recorder_overrun",
            Self::Unexplained => "unexplained",
        }
    }

    /// The cause a replay reports for it.
    pub fn cause(self) -> GapCause {
        match self {
            Self::Source(c) => c,
            Self::RecorderOverrun => GapCause::Overrun,
            Self::Unexplained => GapCause::LostFrames,
        }
    }

    fn from_word(w: &str) -> Option<Self> {
        Some(match w {
            "lost_frames" => Self::Source(GapCause::LostFrames),
            "overrun" => Self::Source(GapCause::Overrun),
            "disconnected" => Self::Source(GapCause::Disconnected),
            "recorder_overrun" => Self::RecorderOverrun,
            "unexplained" => Self::Unexplained,
            _ => return None,
        })
    }
}

/// Replaces the bytes a TAL cannot hold (0x00, 0x14, 0x15) and other control characters by spaces, and cuts the
/// text to [`MAX_TEXT_BYTES`].
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_TEXT_BYTES));
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if out.len() + c.len_utf8() > MAX_TEXT_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

fn unit_word(u: IntensityUnit) -> &'static str {
    match u {
        IntensityUnit::MilliAmp => "mA",
        IntensityUnit::Volt => "V",
        IntensityUnit::DecibelNhl => "dBnHL",
    }
}

/// `stim <stimulator> <intensity> <unit> <pulse width>us[ x<pulses>]`, e.g. `stim left_median 25.0 mA 200us`
/// or `stim tes 400.0 V 50us x5` (the pulse count is written when it is not 1).
pub fn stimulus(s: &StimulusEvent) -> String {
    let mut t = format!(
        "stim {} {}.{} {} {}us",
        s.stimulator.name(),
        s.intensity_tenths / 10,
        s.intensity_tenths % 10,
        unit_word(s.stimulator.intensity_unit()),
        s.pulse_width_us
    );
    if s.pulses != 1 {
        let _ = write!(t, " x{}", s.pulses);
    }
    t
}

/// Parses a text written by [`stimulus`]; the sample index is not part of the text and is set to 0.
pub fn parse_stimulus(text: &str) -> Option<StimulusEvent> {
    let mut it = text.strip_prefix(STIM_PREFIX)?.split(' ');
    let stimulator = Stimulator::from_name(it.next()?)?;
    let (int, frac) = it.next()?.split_once('.')?;
    let tenths = int.parse::<u32>().ok()? * 10 + frac.parse::<u32>().ok().filter(|&f| f < 10)?;
    let _unit = it.next()?;
    let pulse_width_us = it.next()?.strip_suffix("us")?.parse().ok()?;
    let pulses = match it.next() {
        Some(p) => p.strip_prefix('x')?.parse().ok()?,
        None => 1,
    };
    Some(StimulusEvent {
        sample_index: 0,
        stimulator,
        intensity_tenths: u16::try_from(tenths).ok()?,
        pulse_width_us,
        pulses,
    })
}

/// `BAD_gap <reason> <n> samples[ <k> frames]`: `n` samples are missing from the annotation's onset on.
pub fn gap(reason: GapReason, samples: u64, frames: u32) -> String {
    let mut t = format!("{GAP_PREFIX}{} {samples} samples", reason.word());
    if frames > 0 {
        let _ = write!(t, " {frames} frames");
    }
    t
}

/// A parsed gap annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapText {
    /// Why.
    pub reason: GapReason,
    /// Missing samples from the onset on.
    pub samples: u64,
    /// Frames lost (0 when unknown).
    pub frames: u32,
}

/// Parses a text written by [`gap`].
pub fn parse_gap(text: &str) -> Option<GapText> {
    let mut it = text.strip_prefix(GAP_PREFIX)?.split(' ');
    let reason = GapReason::from_word(it.next()?)?;
    let samples = it.next()?.parse().ok()?;
    if it.next()? != "samples" {
        return None;
    }
    let frames = match (it.next(), it.next()) {
        (Some(k), Some("frames")) => k.parse().ok()?,
        (None, None) => 0,
        _ => return None,
    };
    Some(GapText {
        reason,
        samples,
        frames,
    })
}

/// What the start annotation says: the session, the absolute index of the first sample (file time 0), the protocol
/// version and the firmware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartText {
    /// Device session id.
    pub session_id: u32,
    /// Absolute sample index at file time 0.
    pub first_index: u64,
    /// Wire protocol version.
    pub protocol_version: u8,
    /// Firmware version string (the rest of the text).
    pub firmware: String,
}

/// `ionm start session <id> sample <index> protocol <v> firmware <text>`.
pub fn start(s: &StartText) -> String {
    sanitize(&format!(
        "{START_PREFIX}session {} sample {} protocol {} firmware {}",
        s.session_id, s.first_index, s.protocol_version, s.firmware
    ))
}

/// Parses a text written by [`start`].
pub fn parse_start(text: &str) -> Option<StartText> {
    let rest = text.strip_prefix(START_PREFIX)?;
    let t: Vec<&str> = rest.splitn(8, ' ').collect();
    if t.len() < 6 || t[0] != "session" || t[2] != "sample" || t[4] != "protocol" {
        return None;
    }
    let session_id = t[1].parse().ok()?;
    let first_index = t[3].parse().ok()?;
    let protocol_version = t[5].parse().ok()?;
    let firmware = match (t.get(6), t.get(7)) {
        (Some(&"firmware"), Some(f)) => (*f).to_owned(),
        _ => String::new(),
    };
    Some(StartText {
        session_id,
        first_index,
        protocol_version,
        firmware,
    })
}

/// `alarm <state> <class> <kind> <trace|device>: <message>`.
pub fn alarm(a: &AlarmEvent) -> String {
    sanitize(&format!(
        "alarm {} {} {} {}: {}",
        json_word(&a.state),
        json_word(&a.class),
        json_word(&a.kind),
        a.trace.as_deref().unwrap_or("device"),
        a.message
    ))
}

/// `baseline <trace> #<n> <origin>[ <amplitude> uV][ <latency> ms]`.
pub fn baseline(b: &BaselineEvent) -> String {
    let mut t = format!(
        "baseline {} #{} {}",
        b.trace,
        b.number,
        match b.origin {
            BaselineOrigin::Automatic => "automatic",
            BaselineOrigin::User => "user",
        }
    );
    if let Some(a) = b.amplitude_uv {
        let _ = write!(t, " {a:.2} uV");
    }
    if let Some(l) = b.latency_ms {
        let _ = write!(t, " {l:.2} ms");
    }
    sanitize(&t)
}

/// `marker <kind>[: <text>]`.
pub fn marker(m: &MarkerEvent) -> String {
    if m.text.trim().is_empty() {
        sanitize(&format!("marker {}", m.kind))
    } else {
        sanitize(&format!("marker {}: {}", m.kind, m.text))
    }
}

/// `correction <trace> #<sequence> <peak> <latency> ms <amplitude> uV`.
pub fn correction(c: &CorrectionEvent) -> String {
    sanitize(&format!(
        "correction {} #{} {} {:.3} ms {:.3} uV",
        c.trace, c.sequence, c.peak, c.latency_ms, c.amplitude_uv
    ))
}

/// `link …`: what happened to the link.
pub fn link(l: &LinkEvent) -> String {
    sanitize(&match l {
        LinkEvent::Connected { source, reconnects } => {
            format!("link connected {source} (reconnects {reconnects})")
        }
        LinkEvent::SignalLost { silent_ms } => format!("link signal lost after {silent_ms} ms"),
        LinkEvent::SignalRestored { silent_ms } => format!("link signal restored after {silent_ms} ms"),
        LinkEvent::Disconnected { reason } => format!("link disconnected: {reason}"),
        LinkEvent::Ended { reason } => format!("link ended: {reason}"),
        LinkEvent::HandshakeTimeout { waited_ms } => format!("link handshake timeout after {waited_ms} ms"),
    })
}

/// `status …`: the flags of a device status (only written when they change).
pub fn status(s: &DeviceStatus) -> String {
    let mut t = String::from("status");
    if s.saturated != 0 {
        let _ = write!(t, " saturated 0x{:x}", s.saturated);
    }
    if s.impedance_high != 0 {
        let _ = write!(t, " impedance_high 0x{:x}", s.impedance_high);
    }
    if s.stimulator_fault {
        t.push_str(" stimulator_fault");
    }
    if t.len() == "status".len() {
        t.push_str(" ok");
    }
    t
}

/// The serde (snake_case) name of a unit enum variant.
fn json_word<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stimulus_text_round_trips() {
        let s = StimulusEvent {
            sample_index: 0,
            stimulator: Stimulator::Tes,
            intensity_tenths: 4005,
            pulse_width_us: 50,
            pulses: 5,
        };
        assert_eq!(stimulus(&s), "stim tes 400.5 V 50us x5");
        assert_eq!(parse_stimulus(&stimulus(&s)), Some(s));
        let s = StimulusEvent {
            stimulator: Stimulator::Other(200),
            pulses: 1,
            ..s
        };
        assert_eq!(stimulus(&s), "stim other_200 400.5 mA 50us");
        assert_eq!(parse_stimulus(&stimulus(&s)), Some(s));
        assert_eq!(parse_stimulus("stim left_median 1.23 mA 200us"), None);
        assert_eq!(parse_stimulus("stim nobody 1.2 mA 200us"), None);
    }

    #[test]
    fn gap_and_start_texts_round_trip() {
        let g = GapText {
            reason: GapReason::Source(GapCause::LostFrames),
            samples: 320,
            frames: 4,
        };
        assert_eq!(
            gap(g.reason, g.samples, g.frames),
            "BAD_gap lost_frames 320 samples 4 frames"
        );
        assert_eq!(parse_gap(&gap(g.reason, g.samples, g.frames)), Some(g));
        let g = GapText {
            reason: GapReason::RecorderOverrun,
            samples: 7,
            frames: 0,
        };
        assert_eq!(parse_gap(&gap(g.reason, g.samples, g.frames)), Some(g));
        assert_eq!(parse_gap("BAD_gap lost_frames 3 sample"), None);
        let s = StartText {
            session_id: 42,
            first_index: 123_456,
            protocol_version: 1,
            firmware: "firmware-sim 0.1.0".into(),
        };
        assert_eq!(parse_start(&start(&s)), Some(s));
    }

    #[test]
    fn sanitize_removes_tal_bytes_and_cuts() {
        assert_eq!(sanitize("a\u{14}b\u{15}c\0d\ne"), "a b c d e");
        let long = "é".repeat(200);
        let s = sanitize(&long);
        assert!(s.len() <= MAX_TEXT_BYTES && s.chars().all(|c| c == 'é'));
    }
}
