//! Stimulators and stimulus events.

use crate::SampleIndex;
use serde::{Deserialize, Serialize};

/// Which stimulator fired. The wire code of each is fixed by `docs/protocol.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stimulator {
    /// Left median nerve at the wrist.
    LeftMedian,
    /// Right median nerve at the wrist.
    RightMedian,
    /// Left ulnar nerve.
    LeftUlnar,
    /// Right ulnar nerve.
    RightUlnar,
    /// Left posterior tibial nerve at the ankle.
    LeftTibial,
    /// Right posterior tibial nerve at the ankle.
    RightTibial,
    /// Transcranial electrical stimulation (motor evoked potentials).
    Tes,
    /// Clicks to the left ear (BAEP).
    LeftEar,
    /// Clicks to the right ear (BAEP).
    RightEar,
    /// Direct cortical / epidural stimulation (D-wave).
    Direct,
    /// A stimulator the host does not know by name.
    Other(u8),
}

impl Stimulator {
    /// Every named stimulator.
    pub const NAMED: [Stimulator; 10] = [
        Self::LeftMedian,
        Self::RightMedian,
        Self::LeftUlnar,
        Self::RightUlnar,
        Self::LeftTibial,
        Self::RightTibial,
        Self::Tes,
        Self::LeftEar,
        Self::RightEar,
        Self::Direct,
    ];

    /// The wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::LeftMedian => 1,
            Self::RightMedian => 2,
            Self::LeftUlnar => 3,
            Self::RightUlnar => 4,
            Self::LeftTibial => 5,
            Self::RightTibial => 6,
            Self::Tes => 7,
            Self::LeftEar => 8,
            Self::RightEar => 9,
            Self::Direct => 10,
            Self::Other(c) => c,
        }
    }

    /// The stimulator with wire code `code`.
    pub fn from_code(code: u8) -> Self {
        Self::NAMED
            .into_iter()
            .find(|s| s.code() == code)
            .unwrap_or(Self::Other(code))
    }

    /// A short lower-case name, e.g. `left_median`; `other_<code>` for unknown codes.
    pub fn name(self) -> String {
        match self {
            Self::Other(c) => format!("other_{c}"),
            named => serde_json_name(named),
        }
    }

    /// Parses a name written by [`Stimulator::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        if let Some(code) = name.strip_prefix("other_") {
            return code.parse().ok().map(Self::Other);
        }
        Self::NAMED.into_iter().find(|s| serde_json_name(*s) == name)
    }

    /// Unit in which this stimulator's intensity is given.
    pub fn intensity_unit(self) -> IntensityUnit {
        match self {
            Self::Tes => IntensityUnit::Volt,
            Self::LeftEar | Self::RightEar => IntensityUnit::DecibelNhl,
            _ => IntensityUnit::MilliAmp,
        }
    }
}

fn serde_json_name(s: Stimulator) -> String {
    match s {
        Stimulator::LeftMedian => "left_median",
        Stimulator::RightMedian => "right_median",
        Stimulator::LeftUlnar => "left_ulnar",
        Stimulator::RightUlnar => "right_ulnar",
        Stimulator::LeftTibial => "left_tibial",
        Stimulator::RightTibial => "right_tibial",
        Stimulator::Tes => "tes",
        Stimulator::LeftEar => "left_ear",
        Stimulator::RightEar => "right_ear",
        Stimulator::Direct => "direct",
        Stimulator::Other(_) => "other",
    }
    .to_owned()
}

impl std::fmt::Display for Stimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// Unit of a stimulus intensity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntensityUnit {
    /// Constant-current stimulation, milliamperes.
    MilliAmp,
    /// Constant-voltage (transcranial) stimulation, volts.
    Volt,
    /// Acoustic clicks, dB nHL.
    DecibelNhl,
}

/// A stimulus, located exactly by the sample index at which it fired.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StimulusEvent {
    /// Absolute sample index of the stimulus onset.
    pub sample_index: SampleIndex,
    /// Which stimulator fired.
    pub stimulator: Stimulator,
    /// Intensity in tenths of the stimulator's unit (mA, V or dB nHL), e.g. 250 = 25.0 mA.
    pub intensity_tenths: u16,
    /// Pulse width in microseconds.
    pub pulse_width_us: u16,
    /// Pulses in the train (1 for SSEP; 3–9 for transcranial MEP).
    pub pulses: u8,
}

impl StimulusEvent {
    /// Intensity in the stimulator's unit.
    pub fn intensity(&self) -> f64 {
        f64::from(self.intensity_tenths) / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for code in 0..=255u8 {
            let s = Stimulator::from_code(code);
            assert_eq!(s.code(), code);
            assert_eq!(Stimulator::from_name(&s.name()), Some(s));
        }
    }
}
