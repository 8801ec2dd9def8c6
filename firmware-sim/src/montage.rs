//! The simulated montage: which channel records what, from which stimulator, with which peaks.
//!
//! A device with `n` channels uses the first `n` entries of [`catalogue`]. Polarity is physical (negative peaks
//! are negative voltages: N20 is −1.3 µV). Every evoked waveform is a sum of Gaussian peaks (latency, amplitude,
//! width σ); the *actual* extrema of the sum (what [`crate::Truth`] reports) differ from the nominal values below by
//! a few hundredths of a millisecond where peaks overlap; the "primary" column gives the actual values.
//!
//! ## Channels 1–16 (the default montage)
//!
//! | # | label | group | responds to | peaks: name latency ms / amplitude µV (σ ms) | primary |
//! |---|---|---|---|---|---|
//! | 1 | `Erb L` | peripheral | left median | P8 8.3/+0.5, **N9 9.8/−3.2** (0.55), P11 11.6/+1.0 | N9–P11 4.05 µV at 9.77 ms |
//! | 2 | `Erb R` | peripheral | right median | P8 8.4/+0.5, **N9 10.0/−2.9**, P11 11.8/+0.9 | N9–P11 3.67 µV at 9.97 ms |
//! | 3 | `Cv5-Fz` | subcortical | L/R median; L/R tibial | N13 13.4/−1.6 (1.1), P18 17.8/+0.6; P31 30.3, **N34 33.4/−0.7** (1.8), P40 40/+0.3 | N13–P18; N34–P40 |
//! | 4 | `CP3-Fz` | cortical | right median | P14 14.2/+0.25, **N20 19.6/−1.3** (1.3), **P25 24.8/+1.1** (2.0), N35 33/−0.5 | N20–P25 2.33 µV at 19.54 ms |
//! | 5 | `CP4-Fz` | cortical | left median | P14 14.1/+0.25, **N20 19.4/−1.4**, **P25 24.6/+1.2**, N35 32.5/−0.5 | N20–P25 2.52 µV at 19.34 ms |
//! | 6 | `Pop L` | peripheral | left tibial | **N8 8.5/−2.6** (0.6), P10 10.3/+0.8 | N8–P10 3.23 µV at 8.46 ms |
//! | 7 | `Pop R` | peripheral | right tibial | **N8 8.7/−2.4**, P10 10.5/+0.8 | N8–P10 3.03 µV at 8.66 ms |
//! | 8 | `Cz-Fpz` | cortical | L/R tibial | N33 33/−0.25, **P37 37.4/+0.85** (2.2), **N45 45.5/−0.7** (3.2), P55 56/+0.3 (right: P37 38.0/+0.75, N45 46.0/−0.6) | P37–N45 1.49 µV at 37.29 ms (right: 1.29 µV at 37.88 ms) |
//! | 9 | `APB L` | muscle | TES; left median (M-wave) | MEP onset 21.0 ms, 1200 µV p-p; M-wave onset 3.0 ms, 2500 µV | p-p, onset |
//! | 10 | `APB R` | muscle | TES; right median | MEP 21.5 ms, 1000 µV; M-wave 3.1 ms, 2300 µV | p-p, onset |
//! | 11 | `TA L` | muscle | TES | MEP 29.0 ms, 600 µV | p-p, onset |
//! | 12 | `TA R` | muscle | TES | MEP 29.6 ms, 700 µV | p-p, onset |
//! | 13 | `AH L` | muscle | TES; left tibial (M-wave) | MEP 38.0 ms, 400 µV; M-wave 4.2 ms, 3000 µV | p-p, onset |
//! | 14 | `AH R` | muscle | TES; right tibial | MEP 38.8 ms, 350 µV; M-wave 4.3 ms, 2800 µV | p-p, onset |
//! | 15 | `Cz-A1` | brainstem | left-ear clicks | I 1.70/+0.22, II 2.80/+0.12, III 3.90/+0.26, IV 5.0/+0.2, **V 5.70/+0.42** (0.25), **V' 6.8/−0.35** | V–V' 0.73 µV at 5.67 ms |
//! | 16 | `Cz-A2` | brainstem | right-ear clicks | I 1.72, II 2.82, III 3.96, IV 5.06, **V 5.76/+0.40**, V' 6.86/−0.33 | V–V' 0.69 µV at 5.73 ms |
//!
//! ## Channels 17–32
//!
//! `CP3-CP4` (cortical; N20/P25 −1.9/+1.6 µV to the right median, inverted P20/N25 +1.2/−1.0 to the left median),
//! `CPz-Fpz` (cortical; P37/N45 +1.0/−0.8 to either tibial), `C3'-C4'` (cortical; paradoxically lateralised P37/N45
//! +0.7/−0.5 to the left tibial, inverted N37/P45 to the right tibial), `T12-IC` (subcortical; lumbar N22 −1.0 µV
//! at 21.8/22.2 ms to either tibial), then TcMEP muscles (onset ms, p-p µV): `ADM L/R` (21.8/22.2, 800/700),
//! `Deltoid L/R` (12.5/12.8, 700/650), `Biceps L/R` (13.5/13.8, 900/800), `Quad L/R` (23.5/24.0, 400/450),
//! `Gastroc L/R` (33.0/33.5, 300/280), `EAS` (31.0, 150), and `Cv2-Fpz` (subcortical; N13 to either median, N34 to
//! either tibial, slightly smaller than `Cv5-Fz`).
//!
//! ## Channels 33–64
//!
//! TcMEP muscles in left/right pairs (onset ms, p-p µV): `Orb oris` (11.0, 300), `Orb oculi` (10.5, 200),
//! `Masseter` (7.5, 500), `Trapezius` (10.0, 400), `Tongue` (10.5, 250), `Triceps` (14.5, 600), `Ext dig` (17.5,
//! 700), `FCR` (17.0, 600), `FDI` (22.0, 1000), `Rectus` (20.0, 200), `Iliopsoas` (22.0, 250), `Adductor` (24.0,
//! 300), `Gluteus` (22.5, 300), `Hamstr` (27.0, 350), `Peroneus` (30.0, 400), `EHL` (39.0, 250); the right side is
//! 0.4 ms later and 10% smaller.
//!
//! ## Sweep-to-sweep variability
//!
//! SSEP and BAEP responses: amplitude log-normal with a 10% coefficient of variation, no latency jitter. TcMEPs:
//! amplitude CV 40%, onset jitter σ 0.5 ms, each phase weighted independently by 1 ± 0.3 (uniform), so the
//! polyphasic shape changes from sweep to sweep. M-waves: CV 5%, jitter 0.05 ms.
//!
//! ## Background per group
//!
//! | group | 1/f noise, µV RMS in 30–1000 Hz | low-frequency EEG, µV RMS | mains (50/60 Hz), µV | ECG R wave, µV |
//! |---|---|---|---|---|
//! | cortical, brainstem (scalp) | 2.8 | 15 | 3–12 | 5–11 (head) |
//! | subcortical | 2.0 | 6 | 3–12 | 20–40 |
//! | peripheral | 1.2 | 3 | 3–12 | 10–55 |
//! | muscle | 3.5 | 4 | 3–12 | 5–80 (by region) |
//!
//! Plus white amplifier noise of 12 nV/√Hz (0.37 µV RMS in 30–1000 Hz) on every channel. Scalp channels therefore
//! carry ≈ 2.9 µV RMS in 30–1000 Hz and ≈ 15 µV RMS broadband (GUIDE §1: about 3 µV in band, 10–30 µV broadband).
//! The low-frequency EEG is white noise through one-pole low-passes at 1 and 10 Hz (flat below 1 Hz, −20 dB/decade
//! to 10 Hz, −40 above), so it contributes only ≈ 0.4 µV in 30–1000 Hz.

use ionm_core::Stimulator;
use serde::{Deserialize, Serialize};

/// What kind of signal a channel records; scenario events select channels by group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Scalp SSEP channels (N20/P25, P37/N45). Anaesthesia depresses these.
    Cortical,
    /// Spinal SSEP channels (cervical N13/N34, lumbar N22).
    Subcortical,
    /// Peripheral nerve action potentials (Erb's point N9, popliteal fossa N8).
    Peripheral,
    /// Muscle channels (TcMEP, M-waves).
    Muscle,
    /// BAEP channels (vertex to mastoid).
    Brainstem,
}

impl Group {
    /// Every group.
    pub const ALL: [Group; 5] = [
        Self::Cortical,
        Self::Subcortical,
        Self::Peripheral,
        Self::Muscle,
        Self::Brainstem,
    ];

    /// The lower-case name used in scenario files and in the truth.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cortical => "cortical",
            Self::Subcortical => "subcortical",
            Self::Peripheral => "peripheral",
            Self::Muscle => "muscle",
            Self::Brainstem => "brainstem",
        }
    }

    /// Parses [`Group::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.name() == name)
    }

    /// Background noise of the group: (1/f µV RMS in 30–1000 Hz, low-frequency EEG µV RMS).
    pub fn noise_uv(self) -> (f64, f64) {
        match self {
            Self::Cortical | Self::Brainstem => (2.8, 15.0),
            Self::Subcortical => (2.0, 6.0),
            Self::Peripheral => (1.2, 3.0),
            Self::Muscle => (3.5, 4.0),
        }
    }
}

/// Where an electrode sits: sets the size of stimulus artifacts and of the ECG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// Scalp.
    Head,
    /// Face and cranial-nerve muscles.
    Face,
    /// Neck and cervical spine.
    Neck,
    /// Trunk, lumbar spine, sphincter.
    Trunk,
    /// Shoulder and upper arm (Erb's point, deltoid, biceps, triceps).
    ArmProximal,
    /// Forearm and hand (close to a wrist stimulator).
    Hand,
    /// Thigh, knee and calf.
    Leg,
    /// Foot (close to an ankle stimulator).
    Foot,
}

/// Body side of an electrode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Left.
    Left,
    /// Right.
    Right,
    /// Midline or bipolar across the midline.
    Midline,
}

/// One nominal peak of an evoked waveform (or one phase of a muscle response).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Peak {
    /// Conventional name, e.g. `N20`.
    pub name: &'static str,
    /// Nominal latency after the stimulus, ms.
    pub latency_ms: f64,
    /// Signed amplitude, µV (negative for N peaks).
    pub amplitude_uv: f64,
    /// Gaussian width σ, ms.
    pub width_ms: f64,
}

/// How a response is measured and how it varies from sweep to sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseKind {
    /// An averaged evoked potential (SSEP, BAEP). Amplitude = peak-to-peak between the two named primary peaks,
    /// latency = latency of the first of them. Drawn as one fixed waveform.
    Evoked {
        /// Primary peak (its latency is the response latency).
        first: &'static str,
        /// Second peak of the primary peak-to-peak amplitude.
        second: &'static str,
    },
    /// A compound muscle response (TcMEP or M-wave). Amplitude = peak-to-peak over the whole response,
    /// latency = onset (first point where |v| reaches 5% of its maximum). Each phase varies independently.
    Muscle,
}

/// The response of one channel to one stimulator.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseSpec {
    /// The stimulator that evokes it.
    pub stimulator: Stimulator,
    /// Measurement convention.
    pub kind: ResponseKind,
    /// Peaks (evoked) or phases (muscle).
    pub peaks: Vec<Peak>,
    /// Latency changes stretch the waveform after this time (ms) and leave it unchanged before it: 0 for SSEP and
    /// MEP (the whole path slows), 2.2 ms for BAEP (wave I, from the cochlear nerve, stays put).
    pub pivot_ms: f64,
    /// Coefficient of variation of the sweep amplitude.
    pub amplitude_cv: f64,
    /// Standard deviation of the sweep latency jitter, ms.
    pub jitter_ms: f64,
    /// Each phase is weighted by `1 ± phase_spread` (uniform) in each sweep (muscle responses).
    pub phase_spread: f64,
}

/// One channel of the montage.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelSpec {
    /// Montage label (≤ 32 bytes, ASCII).
    pub label: &'static str,
    /// Group for scenario selection.
    pub group: Group,
    /// Electrode site.
    pub region: Region,
    /// Body side.
    pub side: Side,
    /// One line: what the channel is.
    pub description: &'static str,
    /// Responses, at most one per stimulator.
    pub responses: Vec<ResponseSpec>,
}

type P = (&'static str, f64, f64, f64);

fn peaks(list: &[P]) -> Vec<Peak> {
    list.iter()
        .map(|&(name, latency_ms, amplitude_uv, width_ms)| Peak {
            name,
            latency_ms,
            amplitude_uv,
            width_ms,
        })
        .collect()
}

fn evoked(stimulator: Stimulator, first: &'static str, second: &'static str, list: &[P]) -> ResponseSpec {
    ResponseSpec {
        stimulator,
        kind: ResponseKind::Evoked { first, second },
        peaks: peaks(list),
        pivot_ms: 0.0,
        amplitude_cv: 0.10,
        jitter_ms: 0.0,
        phase_spread: 0.0,
    }
}

fn baep(stimulator: Stimulator, dl: f64, scale: f64) -> ResponseSpec {
    let mut r = evoked(
        stimulator,
        "V",
        "V'",
        &[
            ("I", 1.70 + dl * 0.3, 0.22 * scale, 0.16),
            ("II", 2.80 + dl * 0.3, 0.12 * scale, 0.18),
            ("III", 3.90 + dl, 0.26 * scale, 0.20),
            ("IV", 5.00 + dl, 0.20 * scale, 0.20),
            ("V", 5.70 + dl, 0.42 * scale, 0.25),
            ("V'", 6.80 + dl, -0.35 * scale, 0.55),
        ],
    );
    r.pivot_ms = 2.2;
    r
}

/// Phase patterns of muscle responses: (offset from onset ms, relative amplitude, σ ms).
const HAND: &[(f64, f64, f64)] = &[
    (1.8, -0.55, 0.7),
    (4.0, 0.75, 0.9),
    (6.6, -0.5, 1.1),
    (9.5, 0.3, 1.4),
    (13.0, -0.12, 2.0),
];
const LEG: &[(f64, f64, f64)] = &[
    (2.2, 0.45, 0.9),
    (4.8, -0.7, 1.1),
    (7.8, 0.6, 1.3),
    (11.2, -0.35, 1.6),
    (15.5, 0.15, 2.2),
];
const SHORT: &[(f64, f64, f64)] = &[
    (1.2, -0.6, 0.5),
    (2.8, 0.7, 0.7),
    (4.8, -0.35, 0.9),
    (7.0, 0.15, 1.2),
];
const MWAVE: &[(f64, f64, f64)] = &[(1.5, -1.0, 0.9), (4.5, 0.8, 1.5), (8.0, -0.15, 2.0)];
/// One left/right pair of the 33–64 extension.
type MusclePair = (
    &'static str,
    &'static str,
    &'static str,
    Region,
    f64,
    f64,
    &'static [(f64, f64, f64)],
);

const PHASE_NAMES: [&str; 5] = ["phase 1", "phase 2", "phase 3", "phase 4", "phase 5"];

/// Onset threshold of muscle responses, as a fraction of the largest |v|.
pub const ONSET_FRACTION: f64 = 0.05;

/// Labels of [`catalogue`], in order (cheap to use for validation).
pub const LABELS: [&str; 64] = [
    "Erb L",
    "Erb R",
    "Cv5-Fz",
    "CP3-Fz",
    "CP4-Fz",
    "Pop L",
    "Pop R",
    "Cz-Fpz",
    "APB L",
    "APB R",
    "TA L",
    "TA R",
    "AH L",
    "AH R",
    "Cz-A1",
    "Cz-A2",
    "CP3-CP4",
    "CPz-Fpz",
    "C3'-C4'",
    "T12-IC",
    "ADM L",
    "ADM R",
    "Deltoid L",
    "Deltoid R",
    "Biceps L",
    "Biceps R",
    "Quad L",
    "Quad R",
    "Gastroc L",
    "Gastroc R",
    "EAS",
    "Cv2-Fpz",
    "Orb oris L",
    "Orb oris R",
    "Orb oculi L",
    "Orb oculi R",
    "Masseter L",
    "Masseter R",
    "Trapezius L",
    "Trapezius R",
    "Tongue L",
    "Tongue R",
    "Triceps L",
    "Triceps R",
    "Ext dig L",
    "Ext dig R",
    "FCR L",
    "FCR R",
    "FDI L",
    "FDI R",
    "Rectus L",
    "Rectus R",
    "Iliopsoas L",
    "Iliopsoas R",
    "Adductor L",
    "Adductor R",
    "Gluteus L",
    "Gluteus R",
    "Hamstr L",
    "Hamstr R",
    "Peroneus L",
    "Peroneus R",
    "EHL L",
    "EHL R",
];

/// A muscle response with nominal onset `onset_ms` and peak-to-peak `p2p_uv`. The phases are placed so that the
/// onset (5% threshold) and the peak-to-peak amplitude of the noiseless waveform equal the nominal values.
fn muscle(stimulator: Stimulator, onset_ms: f64, p2p_uv: f64, pattern: &[(f64, f64, f64)]) -> ResponseSpec {
    let mut list: Vec<Peak> = pattern
        .iter()
        .zip(PHASE_NAMES)
        .map(|(&(dt, a, w), name)| Peak {
            name,
            latency_ms: onset_ms + dt,
            amplitude_uv: a,
            width_ms: w,
        })
        .collect();
    // Measure the unit-scaled waveform on a fine grid, then rescale and shift to the nominal values.
    let eval = |t: f64, list: &[Peak]| -> f64 {
        list.iter()
            .map(|p| p.amplitude_uv * (-0.5 * ((t - p.latency_ms) / p.width_ms).powi(2)).exp())
            .sum()
    };
    let end = list
        .iter()
        .map(|p| p.latency_ms + 5.0 * p.width_ms)
        .fold(0.0, f64::max);
    let step = 0.002;
    let (mut lo, mut hi, mut amax) = (f64::MAX, f64::MIN, 0.0f64);
    let mut t = 0.0;
    while t < end {
        let v = eval(t, &list);
        lo = lo.min(v);
        hi = hi.max(v);
        amax = amax.max(v.abs());
        t += step;
    }
    let mut t = 0.0;
    while t < end && eval(t, &list).abs() < ONSET_FRACTION * amax {
        t += step;
    }
    let k = p2p_uv / (hi - lo);
    let shift = onset_ms - t;
    for p in &mut list {
        p.amplitude_uv *= k;
        p.latency_ms += shift;
    }
    let (cv, jitter, spread) = if stimulator == Stimulator::Tes {
        (0.40, 0.5, 0.3)
    } else {
        (0.05, 0.05, 0.05)
    };
    ResponseSpec {
        stimulator,
        kind: ResponseKind::Muscle,
        peaks: list,
        pivot_ms: 0.0,
        amplitude_cv: cv,
        jitter_ms: jitter,
        phase_spread: spread,
    }
}

fn ch(
    label: &'static str,
    group: Group,
    region: Region,
    side: Side,
    description: &'static str,
    responses: Vec<ResponseSpec>,
) -> ChannelSpec {
    ChannelSpec {
        label,
        group,
        region,
        side,
        description,
        responses,
    }
}

/// The full 64-channel catalogue; a device with `n` channels uses the first `n`.
pub fn catalogue() -> Vec<ChannelSpec> {
    use Group::*;
    use Region::*;
    use Side::*;
    use Stimulator as S;
    let mut v = vec![
        ch(
            "Erb L",
            Peripheral,
            ArmProximal,
            Left,
            "Erb's point, left: brachial plexus N9 to the left median",
            vec![evoked(
                S::LeftMedian,
                "N9",
                "P11",
                &[
                    ("P8", 8.3, 0.5, 0.45),
                    ("N9", 9.8, -3.2, 0.55),
                    ("P11", 11.6, 1.0, 0.9),
                ],
            )],
        ),
        ch(
            "Erb R",
            Peripheral,
            ArmProximal,
            Right,
            "Erb's point, right: brachial plexus N9 to the right median",
            vec![evoked(
                S::RightMedian,
                "N9",
                "P11",
                &[
                    ("P8", 8.4, 0.5, 0.45),
                    ("N9", 10.0, -2.9, 0.55),
                    ("P11", 11.8, 0.9, 0.9),
                ],
            )],
        ),
        ch(
            "Cv5-Fz",
            Subcortical,
            Neck,
            Midline,
            "cervical (C5 spinous process) to Fz: N13 to either median, N34 to either tibial",
            vec![
                evoked(
                    S::LeftMedian,
                    "N13",
                    "P18",
                    &[
                        ("P11", 11.3, 0.3, 0.6),
                        ("N13", 13.4, -1.6, 1.1),
                        ("P18", 17.8, 0.6, 2.0),
                    ],
                ),
                evoked(
                    S::RightMedian,
                    "N13",
                    "P18",
                    &[
                        ("P11", 11.4, 0.3, 0.6),
                        ("N13", 13.6, -1.5, 1.1),
                        ("P18", 18.0, 0.55, 2.0),
                    ],
                ),
                evoked(
                    S::LeftTibial,
                    "N34",
                    "P40",
                    &[
                        ("P31", 30.3, 0.25, 1.0),
                        ("N34", 33.4, -0.7, 1.8),
                        ("P40", 40.0, 0.3, 3.0),
                    ],
                ),
                evoked(
                    S::RightTibial,
                    "N34",
                    "P40",
                    &[
                        ("P31", 30.8, 0.25, 1.0),
                        ("N34", 33.9, -0.65, 1.8),
                        ("P40", 40.5, 0.3, 3.0),
                    ],
                ),
            ],
        ),
        ch(
            "CP3-Fz",
            Cortical,
            Head,
            Left,
            "left centro-parietal scalp to Fz: N20/P25 to the right (contralateral) median",
            vec![evoked(
                S::RightMedian,
                "N20",
                "P25",
                &[
                    ("P14", 14.2, 0.25, 0.6),
                    ("N20", 19.6, -1.3, 1.3),
                    ("P25", 24.8, 1.1, 2.0),
                    ("N35", 33.0, -0.5, 3.5),
                ],
            )],
        ),
        ch(
            "CP4-Fz",
            Cortical,
            Head,
            Right,
            "right centro-parietal scalp to Fz: N20/P25 to the left (contralateral) median",
            vec![evoked(
                S::LeftMedian,
                "N20",
                "P25",
                &[
                    ("P14", 14.1, 0.25, 0.6),
                    ("N20", 19.4, -1.4, 1.3),
                    ("P25", 24.6, 1.2, 2.0),
                    ("N35", 32.5, -0.5, 3.5),
                ],
            )],
        ),
        ch(
            "Pop L",
            Peripheral,
            Leg,
            Left,
            "popliteal fossa, left: tibial nerve action potential N8 to the left tibial",
            vec![evoked(
                S::LeftTibial,
                "N8",
                "P10",
                &[("N8", 8.5, -2.6, 0.6), ("P10", 10.3, 0.8, 1.0)],
            )],
        ),
        ch(
            "Pop R",
            Peripheral,
            Leg,
            Right,
            "popliteal fossa, right: tibial nerve action potential N8 to the right tibial",
            vec![evoked(
                S::RightTibial,
                "N8",
                "P10",
                &[("N8", 8.7, -2.4, 0.6), ("P10", 10.5, 0.8, 1.0)],
            )],
        ),
        ch(
            "Cz-Fpz",
            Cortical,
            Head,
            Midline,
            "vertex to Fpz: P37/N45 to either tibial",
            vec![
                evoked(
                    S::LeftTibial,
                    "P37",
                    "N45",
                    &[
                        ("N33", 33.0, -0.25, 1.2),
                        ("P37", 37.4, 0.85, 2.2),
                        ("N45", 45.5, -0.7, 3.2),
                        ("P55", 56.0, 0.3, 5.0),
                    ],
                ),
                evoked(
                    S::RightTibial,
                    "P37",
                    "N45",
                    &[
                        ("N33", 33.5, -0.22, 1.2),
                        ("P37", 38.0, 0.75, 2.2),
                        ("N45", 46.0, -0.6, 3.2),
                        ("P55", 56.5, 0.3, 5.0),
                    ],
                ),
            ],
        ),
        ch(
            "APB L",
            Muscle,
            Hand,
            Left,
            "abductor pollicis brevis (thenar), left: TcMEP; M-wave to the left median",
            vec![
                muscle(S::Tes, 21.0, 1200.0, HAND),
                muscle(S::LeftMedian, 3.0, 2500.0, MWAVE),
            ],
        ),
        ch(
            "APB R",
            Muscle,
            Hand,
            Right,
            "abductor pollicis brevis (thenar), right: TcMEP; M-wave to the right median",
            vec![
                muscle(S::Tes, 21.5, 1000.0, HAND),
                muscle(S::RightMedian, 3.1, 2300.0, MWAVE),
            ],
        ),
        ch(
            "TA L",
            Muscle,
            Leg,
            Left,
            "tibialis anterior, left: TcMEP",
            vec![muscle(S::Tes, 29.0, 600.0, LEG)],
        ),
        ch(
            "TA R",
            Muscle,
            Leg,
            Right,
            "tibialis anterior, right: TcMEP",
            vec![muscle(S::Tes, 29.6, 700.0, LEG)],
        ),
        ch(
            "AH L",
            Muscle,
            Foot,
            Left,
            "abductor hallucis, left: TcMEP; M-wave to the left tibial",
            vec![
                muscle(S::Tes, 38.0, 400.0, LEG),
                muscle(S::LeftTibial, 4.2, 3000.0, MWAVE),
            ],
        ),
        ch(
            "AH R",
            Muscle,
            Foot,
            Right,
            "abductor hallucis, right: TcMEP; M-wave to the right tibial",
            vec![
                muscle(S::Tes, 38.8, 350.0, LEG),
                muscle(S::RightTibial, 4.3, 2800.0, MWAVE),
            ],
        ),
        ch(
            "Cz-A1",
            Brainstem,
            Head,
            Left,
            "vertex to left mastoid: BAEP waves I-V to left-ear clicks",
            vec![baep(S::LeftEar, 0.0, 1.0)],
        ),
        ch(
            "Cz-A2",
            Brainstem,
            Head,
            Right,
            "vertex to right mastoid: BAEP waves I-V to right-ear clicks",
            vec![baep(S::RightEar, 0.06, 0.95)],
        ),
        // ---- 17–32
        ch(
            "CP3-CP4",
            Cortical,
            Head,
            Midline,
            "bipolar centro-parietal: N20/P25 to the right median, inverted P20/N25 to the left median",
            vec![
                evoked(
                    S::RightMedian,
                    "N20",
                    "P25",
                    &[
                        ("N20", 19.6, -1.9, 1.3),
                        ("P25", 24.8, 1.6, 2.0),
                        ("N35", 33.0, -0.6, 3.5),
                    ],
                ),
                evoked(
                    S::LeftMedian,
                    "P20",
                    "N25",
                    &[("P20", 19.4, 1.2, 1.3), ("N25", 24.6, -1.0, 2.0)],
                ),
            ],
        ),
        ch(
            "CPz-Fpz",
            Cortical,
            Head,
            Midline,
            "centro-parietal midline to Fpz: P37/N45 to either tibial",
            vec![
                evoked(
                    S::LeftTibial,
                    "P37",
                    "N45",
                    &[("P37", 37.2, 1.0, 2.2), ("N45", 45.2, -0.8, 3.2)],
                ),
                evoked(
                    S::RightTibial,
                    "P37",
                    "N45",
                    &[("P37", 37.8, 0.9, 2.2), ("N45", 45.8, -0.7, 3.2)],
                ),
            ],
        ),
        ch(
            "C3'-C4'",
            Cortical,
            Head,
            Midline,
            "bipolar C3'-C4': paradoxically lateralised P37/N45 to the left tibial, inverted to the right tibial",
            vec![
                evoked(
                    S::LeftTibial,
                    "P37",
                    "N45",
                    &[("P37", 37.5, 0.7, 2.0), ("N45", 45.5, -0.5, 3.0)],
                ),
                evoked(
                    S::RightTibial,
                    "N37",
                    "P45",
                    &[("N37", 38.0, -0.65, 2.0), ("P45", 46.0, 0.45, 3.0)],
                ),
            ],
        ),
        ch(
            "T12-IC",
            Subcortical,
            Trunk,
            Midline,
            "lumbar (T12 spinous process) to iliac crest: lumbar potential N22 to either tibial",
            vec![
                evoked(
                    S::LeftTibial,
                    "N22",
                    "P27",
                    &[
                        ("P18", 18.5, 0.2, 0.8),
                        ("N22", 21.8, -1.0, 1.2),
                        ("P27", 27.0, 0.3, 2.0),
                    ],
                ),
                evoked(
                    S::RightTibial,
                    "N22",
                    "P27",
                    &[
                        ("P18", 18.9, 0.2, 0.8),
                        ("N22", 22.2, -0.95, 1.2),
                        ("P27", 27.4, 0.3, 2.0),
                    ],
                ),
            ],
        ),
        ch(
            "ADM L",
            Muscle,
            Hand,
            Left,
            "abductor digiti minimi (hypothenar), left: TcMEP",
            vec![muscle(S::Tes, 21.8, 800.0, HAND)],
        ),
        ch(
            "ADM R",
            Muscle,
            Hand,
            Right,
            "abductor digiti minimi (hypothenar), right: TcMEP",
            vec![muscle(S::Tes, 22.2, 700.0, HAND)],
        ),
        ch(
            "Deltoid L",
            Muscle,
            ArmProximal,
            Left,
            "deltoid, left: TcMEP",
            vec![muscle(S::Tes, 12.5, 700.0, HAND)],
        ),
        ch(
            "Deltoid R",
            Muscle,
            ArmProximal,
            Right,
            "deltoid, right: TcMEP",
            vec![muscle(S::Tes, 12.8, 650.0, HAND)],
        ),
        ch(
            "Biceps L",
            Muscle,
            ArmProximal,
            Left,
            "biceps brachii, left: TcMEP",
            vec![muscle(S::Tes, 13.5, 900.0, HAND)],
        ),
        ch(
            "Biceps R",
            Muscle,
            ArmProximal,
            Right,
            "biceps brachii, right: TcMEP",
            vec![muscle(S::Tes, 13.8, 800.0, HAND)],
        ),
        ch(
            "Quad L",
            Muscle,
            Leg,
            Left,
            "quadriceps (vastus lateralis), left: TcMEP",
            vec![muscle(S::Tes, 23.5, 400.0, LEG)],
        ),
        ch(
            "Quad R",
            Muscle,
            Leg,
            Right,
            "quadriceps (vastus lateralis), right: TcMEP",
            vec![muscle(S::Tes, 24.0, 450.0, LEG)],
        ),
        ch(
            "Gastroc L",
            Muscle,
            Leg,
            Left,
            "gastrocnemius, left: TcMEP",
            vec![muscle(S::Tes, 33.0, 300.0, LEG)],
        ),
        ch(
            "Gastroc R",
            Muscle,
            Leg,
            Right,
            "gastrocnemius, right: TcMEP",
            vec![muscle(S::Tes, 33.5, 280.0, LEG)],
        ),
        ch(
            "EAS",
            Muscle,
            Trunk,
            Midline,
            "external anal sphincter: TcMEP",
            vec![muscle(S::Tes, 31.0, 150.0, SHORT)],
        ),
        ch(
            "Cv2-Fpz",
            Subcortical,
            Neck,
            Midline,
            "high cervical (C2 spinous process) to Fpz: N13 to either median, N34 to either tibial",
            vec![
                evoked(
                    S::LeftMedian,
                    "N13",
                    "P18",
                    &[("N13", 13.2, -1.3, 1.1), ("P18", 17.5, 0.5, 2.0)],
                ),
                evoked(
                    S::RightMedian,
                    "N13",
                    "P18",
                    &[("N13", 13.4, -1.2, 1.1), ("P18", 17.7, 0.45, 2.0)],
                ),
                evoked(
                    S::LeftTibial,
                    "N34",
                    "P40",
                    &[("N34", 32.8, -0.6, 1.8), ("P40", 39.5, 0.25, 3.0)],
                ),
                evoked(
                    S::RightTibial,
                    "N34",
                    "P40",
                    &[("N34", 33.3, -0.55, 1.8), ("P40", 40.0, 0.25, 3.0)],
                ),
            ],
        ),
    ];
    // ---- 33–64: muscle pairs (left, right, description, region, onset ms, p-p µV, phase pattern).
    const PAIRS: [MusclePair; 16] = [
        (
            "Orb oris L",
            "Orb oris R",
            "orbicularis oris: corticobulbar TcMEP",
            Region::Face,
            11.0,
            300.0,
            SHORT,
        ),
        (
            "Orb oculi L",
            "Orb oculi R",
            "orbicularis oculi: corticobulbar TcMEP",
            Region::Face,
            10.5,
            200.0,
            SHORT,
        ),
        (
            "Masseter L",
            "Masseter R",
            "masseter: corticobulbar TcMEP",
            Region::Face,
            7.5,
            500.0,
            SHORT,
        ),
        (
            "Trapezius L",
            "Trapezius R",
            "trapezius: TcMEP",
            Region::Neck,
            10.0,
            400.0,
            HAND,
        ),
        (
            "Tongue L",
            "Tongue R",
            "tongue (hypoglossal): corticobulbar TcMEP",
            Region::Face,
            10.5,
            250.0,
            SHORT,
        ),
        (
            "Triceps L",
            "Triceps R",
            "triceps brachii: TcMEP",
            Region::ArmProximal,
            14.5,
            600.0,
            HAND,
        ),
        (
            "Ext dig L",
            "Ext dig R",
            "extensor digitorum: TcMEP",
            Region::Hand,
            17.5,
            700.0,
            HAND,
        ),
        (
            "FCR L",
            "FCR R",
            "flexor carpi radialis: TcMEP",
            Region::Hand,
            17.0,
            600.0,
            HAND,
        ),
        (
            "FDI L",
            "FDI R",
            "first dorsal interosseous: TcMEP",
            Region::Hand,
            22.0,
            1000.0,
            HAND,
        ),
        (
            "Rectus L",
            "Rectus R",
            "rectus abdominis: TcMEP",
            Region::Trunk,
            20.0,
            200.0,
            LEG,
        ),
        (
            "Iliopsoas L",
            "Iliopsoas R",
            "iliopsoas: TcMEP",
            Region::Leg,
            22.0,
            250.0,
            LEG,
        ),
        (
            "Adductor L",
            "Adductor R",
            "adductor longus: TcMEP",
            Region::Leg,
            24.0,
            300.0,
            LEG,
        ),
        (
            "Gluteus L",
            "Gluteus R",
            "gluteus medius: TcMEP",
            Region::Leg,
            22.5,
            300.0,
            LEG,
        ),
        (
            "Hamstr L",
            "Hamstr R",
            "hamstrings (biceps femoris): TcMEP",
            Region::Leg,
            27.0,
            350.0,
            LEG,
        ),
        (
            "Peroneus L",
            "Peroneus R",
            "peroneus longus: TcMEP",
            Region::Leg,
            30.0,
            400.0,
            LEG,
        ),
        (
            "EHL L",
            "EHL R",
            "extensor hallucis longus: TcMEP",
            Region::Foot,
            39.0,
            250.0,
            LEG,
        ),
    ];
    for (l, r, what, region, onset, p2p, pattern) in PAIRS {
        v.push(ch(
            l,
            Muscle,
            region,
            Left,
            what,
            vec![muscle(S::Tes, onset, p2p, pattern)],
        ));
        v.push(ch(
            r,
            Muscle,
            region,
            Right,
            what,
            vec![muscle(S::Tes, onset + 0.4, 0.9 * p2p, pattern)],
        ));
    }
    v
}

/// Stimulus artifact amplitude (µV) of `stimulator` on a channel at `region`/`side`, before the per-channel
/// random factor. Wrist (median/ulnar) and ankle (tibial) stimulators are large close by; TES is large everywhere
/// and largest on the scalp; clicks leave a small transducer artifact on the head only.
pub fn artifact_uv(stimulator: Stimulator, region: Region, side: Side) -> f64 {
    use Region::*;
    let stim_side = match stimulator {
        Stimulator::LeftMedian | Stimulator::LeftUlnar | Stimulator::LeftTibial | Stimulator::LeftEar => {
            Side::Left
        }
        Stimulator::RightMedian | Stimulator::RightUlnar | Stimulator::RightTibial | Stimulator::RightEar => {
            Side::Right
        }
        _ => Side::Midline,
    };
    let same = side == stim_side;
    match stimulator {
        Stimulator::LeftMedian | Stimulator::RightMedian | Stimulator::LeftUlnar | Stimulator::RightUlnar => {
            match region {
                Hand if same => 5000.0,
                ArmProximal if same => 800.0,
                Hand | ArmProximal => 100.0,
                Neck => 200.0,
                Head | Face | Trunk => 60.0,
                Leg | Foot => 20.0,
            }
        }
        Stimulator::LeftTibial | Stimulator::RightTibial => match region {
            Foot if same => 5000.0,
            Leg if same => 1500.0,
            Foot | Leg | Trunk => 150.0,
            Neck => 40.0,
            Head => 30.0,
            Face | Hand | ArmProximal => 20.0,
        },
        Stimulator::Tes | Stimulator::Direct => match region {
            Head => 15_000.0,
            Face => 10_000.0,
            Neck => 5000.0,
            ArmProximal => 2500.0,
            Trunk => 1500.0,
            Hand => 1000.0,
            Leg => 800.0,
            Foot => 600.0,
        },
        Stimulator::LeftEar | Stimulator::RightEar => match region {
            Head => 3.0,
            Face => 2.0,
            _ => 0.0,
        },
        Stimulator::Other(_) => 0.0,
    }
}

/// ECG R-wave amplitude (µV) at an electrode site, before the per-channel random factor.
pub fn ecg_uv(region: Region) -> f64 {
    match region {
        Region::Head => 8.0,
        Region::Face => 10.0,
        Region::Neck => 30.0,
        Region::ArmProximal => 40.0,
        Region::Hand => 15.0,
        Region::Trunk => 60.0,
        Region::Leg => 10.0,
        Region::Foot => 8.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_64_unique_short_labels() {
        let c = catalogue();
        assert_eq!(c.len(), ionm_core::MAX_CHANNELS);
        let mut labels: Vec<&str> = c.iter().map(|c| c.label).collect();
        assert_eq!(labels, LABELS);
        assert!(labels.iter().all(|l| l.len() <= 32 && l.is_ascii()));
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), 64);
        for ch in &c {
            let mut stims: Vec<_> = ch.responses.iter().map(|r| r.stimulator).collect();
            stims.sort();
            stims.dedup();
            assert_eq!(
                stims.len(),
                ch.responses.len(),
                "{}: one response per stimulator",
                ch.label
            );
        }
    }
}
