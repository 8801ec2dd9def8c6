//! Decoding frames from an untrusted byte stream.

use crate::frame::*;

/// What is wrong with a frame whose CRC was valid (a device bug, or a corruption the CRC missed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The payload ends before its fields do.
    Truncated,
    /// The payload is longer or shorter than its fields say.
    LengthMismatch,
    /// Bytes left over after the last field.
    TrailingBytes,
    /// Zero or more than [`MAX_CHANNELS`] channels.
    ChannelCount(usize),
    /// Zero instants, or more than [`MAX_SAMPLE_VALUES`] values.
    SampleCount(usize),
    /// Zero or more than [`MAX_STIMULI_PER_FRAME`] stimuli.
    StimulusCount(usize),
    /// A text field is not UTF-8.
    NotUtf8,
    /// The device declares a zero sample rate.
    ZeroSampleRate,
    /// The device declares `adc_min >= adc_max`.
    AdcRange,
    /// A battery value above 100 (and not 0xFF for mains).
    Battery(u8),
    /// The sample index would overflow.
    IndexOverflow,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => f.write_str("payload ends before its fields do"),
            Self::LengthMismatch => f.write_str("payload length does not match its contents"),
            Self::TrailingBytes => f.write_str("bytes after the last field"),
            Self::ChannelCount(n) => write!(f, "{n} channels (1..={MAX_CHANNELS} allowed)"),
            Self::SampleCount(n) => write!(f, "{n} samples per channel out of range"),
            Self::StimulusCount(n) => write!(f, "{n} stimuli (1..={MAX_STIMULI_PER_FRAME} allowed)"),
            Self::NotUtf8 => f.write_str("text is not UTF-8"),
            Self::ZeroSampleRate => f.write_str("sample rate 0"),
            Self::AdcRange => f.write_str("ADC minimum not below maximum"),
            Self::Battery(b) => write!(f, "battery {b}% out of range"),
            Self::IndexOverflow => f.write_str("sample index overflows"),
        }
    }
}

impl core::error::Error for FrameError {}

/// One thing the decoder found, in stream order. Payload views borrow the decoder's buffer or the input chunk
/// and live until the callback returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A device-info frame.
    DeviceInfo(DeviceInfoView<'a>),
    /// A sample frame.
    Samples(SamplesView<'a>),
    /// A stimulus frame.
    Stimuli(StimuliView<'a>),
    /// A status frame.
    Status(Status),
    /// Sequence numbers were skipped: frames between were lost or corrupted. Reported just before the frame that
    /// revealed it. `lost` is `received − expected` modulo 2¹⁶.
    SequenceGap {
        /// The sequence number that should have come.
        expected: u16,
        /// The one that came.
        received: u16,
        /// Frames missing (modulo 2¹⁶).
        lost: u16,
    },
    /// A frame with a valid CRC whose payload is malformed; it is dropped.
    Invalid {
        /// Its type code.
        frame_type: u8,
        /// What is wrong.
        error: FrameError,
    },
    /// A frame with a valid CRC of a protocol version or type this decoder does not know; it is skipped.
    Unsupported {
        /// Its version byte.
        version: u8,
        /// Its type code.
        frame_type: u8,
    },
}

/// What the decoder has seen since it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecoderStats {
    /// Bytes fed in.
    pub bytes: u64,
    /// Frames with a valid CRC (of any kind).
    pub frames: u64,
    /// Candidate frames whose CRC did not match.
    pub crc_errors: u64,
    /// Bytes thrown away while hunting for the next frame.
    pub bytes_discarded: u64,
    /// Sequence gaps reported.
    pub sequence_gaps: u64,
    /// Frames lost according to the sequence numbers.
    pub frames_lost: u64,
    /// Frames dropped as malformed.
    pub invalid: u64,
    /// Frames skipped as an unknown version or type.
    pub unsupported: u64,
}

enum Step {
    /// `n` leading bytes cannot start a frame.
    Skip(usize),
    /// The data starts with a frame of this length whose CRC is valid.
    Frame(usize),
    /// The data starts with something that may be a frame but is incomplete.
    NeedMore,
}

/// Looks at the start of `data`.
fn scan(data: &[u8], stats: &mut DecoderStats) -> Step {
    let Some(first) = data.iter().position(|&b| b == SYNC[0]) else {
        return Step::Skip(data.len());
    };
    if first > 0 {
        return Step::Skip(first);
    }
    if data.len() < 2 {
        return Step::NeedMore;
    }
    if data[1] != SYNC[1] {
        return Step::Skip(1);
    }
    if data.len() < HEADER_LEN {
        return Step::NeedMore;
    }
    let len = usize::from(u16_at(data, 6));
    if len > MAX_PAYLOAD {
        return Step::Skip(1);
    }
    let total = HEADER_LEN + len + TRAILER_LEN;
    if data.len() < total {
        return Step::NeedMore;
    }
    let crc = u32_at(data, HEADER_LEN + len);
    if crc32fast::hash(&data[..HEADER_LEN + len]) != crc {
        stats.crc_errors += 1;
        return Step::Skip(1);
    }
    Step::Frame(total)
}

/// A streaming frame decoder with one fixed buffer of [`MAX_FRAME_LEN`] bytes. Feed it chunks of any size with
/// [`Decoder::decode`]; it never panics and never allocates.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: [u8; MAX_FRAME_LEN],
    len: usize,
    expected_seq: Option<u16>,
    stats: DecoderStats,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with an empty buffer that expects any sequence number first.
    pub fn new() -> Self {
        Self {
            buf: [0; MAX_FRAME_LEN],
            len: 0,
            expected_seq: None,
            stats: DecoderStats::default(),
        }
    }

    /// Counters since creation.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Bytes held back waiting for the rest of a frame.
    pub fn pending(&self) -> usize {
        self.len
    }

    /// Forgets the partial frame and the expected sequence number (after a reconnect); counters stay.
    /// Bytes held back are counted as discarded.
    pub fn reset(&mut self) {
        self.stats.bytes_discarded += self.len as u64;
        self.len = 0;
        self.expected_seq = None;
    }

    /// Decodes `input`, calling `on_event` for every event in stream order. Bytes of an incomplete frame at the
    /// end are kept for the next call.
    pub fn decode<F: FnMut(Event<'_>)>(&mut self, mut input: &[u8], mut on_event: F) {
        self.stats.bytes += input.len() as u64;
        while !input.is_empty() {
            if self.len == 0 {
                // Fast path: decode straight from the caller's chunk.
                let used = Self::run(&mut self.stats, &mut self.expected_seq, input, &mut on_event);
                let rest = &input[used..];
                // What is left is a frame prefix shorter than MAX_FRAME_LEN.
                self.buf[..rest.len()].copy_from_slice(rest);
                self.len = rest.len();
                return;
            }
            let take = input.len().min(MAX_FRAME_LEN - self.len);
            self.buf[self.len..self.len + take].copy_from_slice(&input[..take]);
            self.len += take;
            input = &input[take..];
            let used = Self::run(
                &mut self.stats,
                &mut self.expected_seq,
                &self.buf[..self.len],
                &mut on_event,
            );
            self.buf.copy_within(used..self.len, 0);
            self.len -= used;
        }
    }

    /// Decodes as many frames as `data` holds; returns the bytes consumed. What is not consumed is a prefix that
    /// may become a frame.
    fn run<F: FnMut(Event<'_>)>(
        stats: &mut DecoderStats,
        expected_seq: &mut Option<u16>,
        data: &[u8],
        on_event: &mut F,
    ) -> usize {
        let mut at = 0;
        loop {
            match scan(&data[at..], stats) {
                Step::Skip(n) => {
                    stats.bytes_discarded += n as u64;
                    at += n;
                }
                Step::NeedMore => return at,
                Step::Frame(n) => {
                    Self::frame(stats, expected_seq, &data[at..at + n], on_event);
                    at += n;
                }
            }
            if at == data.len() {
                return at;
            }
        }
    }

    fn frame<F: FnMut(Event<'_>)>(
        stats: &mut DecoderStats,
        expected_seq: &mut Option<u16>,
        frame: &[u8],
        on_event: &mut F,
    ) {
        stats.frames += 1;
        let version = frame[2];
        let ty = frame[3];
        let seq = u16_at(frame, 4);
        if let Some(expected) = *expected_seq
            && seq != expected
        {
            let lost = seq.wrapping_sub(expected);
            stats.sequence_gaps += 1;
            stats.frames_lost += u64::from(lost);
            on_event(Event::SequenceGap {
                expected,
                received: seq,
                lost,
            });
        }
        *expected_seq = Some(seq.wrapping_add(1));
        let payload = &frame[HEADER_LEN..frame.len() - TRAILER_LEN];
        let Some(frame_type) = FrameType::from_code(ty).filter(|_| version == PROTOCOL_VERSION) else {
            stats.unsupported += 1;
            on_event(Event::Unsupported {
                version,
                frame_type: ty,
            });
            return;
        };
        let parsed = match frame_type {
            FrameType::DeviceInfo => DeviceInfoView::parse(payload).map(Event::DeviceInfo),
            FrameType::Samples => SamplesView::parse(payload).map(Event::Samples),
            FrameType::Stimuli => StimuliView::parse(payload).map(Event::Stimuli),
            FrameType::Status => Status::parse(payload).map(Event::Status),
        };
        match parsed {
            Ok(ev) => on_event(ev),
            Err(error) => {
                stats.invalid += 1;
                on_event(Event::Invalid {
                    frame_type: ty,
                    error,
                });
            }
        }
    }
}
