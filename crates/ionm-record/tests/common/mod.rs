//! Shared helpers: a firmware-sim stream with gaps, and a summary of an `Acquired` stream to compare.

#![allow(dead_code)]

use firmware_sim::{Scenario, SimConfig, Simulator};
use ionm_core::{Acquired, DeviceInfo, Gap, GapCause, MAX_BLOCK_VALUES, Rng, SampleBlock, StimulusEvent};
use ionm_record::{ReplayConfig, ReplaySource};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A fresh scratch path under cargo's per-test-binary temporary directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ionm-record");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_file(ionm_record::sidecar_path(&p));
    p
}

/// What a stream contains, in a form that does not depend on how samples are cut into blocks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub devices: Vec<DeviceInfo>,
    /// Contiguous runs of samples: (first index, interleaved values).
    pub runs: Vec<(u64, Vec<i32>)>,
    pub gaps: Vec<Gap>,
    /// Sorted by (index, code).
    pub stimuli: Vec<StimulusEvent>,
}

impl Summary {
    pub fn add(&mut self, item: &Acquired) {
        match item {
            Acquired::Device(d) => self.devices.push((**d).clone()),
            Acquired::Samples(b) => match self.runs.last_mut() {
                Some((first, v)) if *first + (v.len() / b.n_channels()) as u64 == b.first_index() => {
                    v.extend_from_slice(b.values())
                }
                _ => self.runs.push((b.first_index(), b.values().to_vec())),
            },
            Acquired::Gap(g) => self.gaps.push(*g),
            Acquired::Stimulus(s) => self.stimuli.push(*s),
            _ => {}
        }
    }

    pub fn of(items: &[Acquired]) -> Self {
        let mut s = Self::default();
        for i in items {
            s.add(i);
        }
        s.finish()
    }

    pub fn finish(mut self) -> Self {
        self.stimuli
            .sort_by_key(|s| (s.sample_index, s.stimulator.code()));
        self
    }

    pub fn samples(&self) -> usize {
        self.runs.iter().map(|(_, v)| v.len()).sum()
    }
}

/// Replays a file to the end, checking the stream-order rules on the way.
pub fn replay_all(path: &Path, config: &ReplayConfig) -> (Summary, Vec<Acquired>) {
    let mut src = ReplaySource::open(path, config).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut items = Vec::new();
    while let Some(item) = src.next_item().unwrap() {
        items.push(item);
    }
    check_order(&items);
    (Summary::of(&items), items)
}

/// A stimulus must come before or with the block holding its index: no block may already have passed it.
/// Blocks must be contiguous unless a gap or a device comes between.
pub fn check_order(items: &[Acquired]) {
    let mut next: Option<u64> = None;
    let mut block_end = 0u64;
    for (k, item) in items.iter().enumerate() {
        match item {
            Acquired::Device(_) => {
                next = None;
                block_end = 0;
            }
            Acquired::Samples(b) => {
                assert!(b.values().len() <= MAX_BLOCK_VALUES);
                if let Some(n) = next {
                    assert_eq!(
                        b.first_index(),
                        n,
                        "item {k}: block not contiguous and no gap before it"
                    );
                }
                next = Some(b.end_index());
                block_end = b.end_index();
            }
            Acquired::Gap(g) => {
                if let Some(n) = next {
                    assert_eq!(
                        g.from, n,
                        "item {k}: gap does not start where the samples stopped"
                    );
                }
                assert!(g.to > g.from);
                next = Some(g.to);
            }
            Acquired::Stimulus(s) => assert!(
                s.sample_index >= block_end,
                "item {k}: stimulus at {} comes after the block holding it (blocks reached {block_end})",
                s.sample_index
            ),
            _ => {}
        }
    }
}

/// A firmware-sim stream: `Device`, then blocks of varying size with the stimuli of each block before it.
/// Samples in `gaps` (half-open index ranges) are not delivered; a `Gap` item (lost frames) comes before the
/// first block after each. Stimuli whose index falls into a gap are still delivered (their frame survived).
pub struct SimStream {
    pub device: Arc<DeviceInfo>,
    pub items: Vec<Acquired>,
}

pub fn sim_config(channels: usize, rate: u32, seed: u64) -> SimConfig {
    let mut scenario = Scenario::default();
    scenario.stimulation.tes_first_s = 0.3;
    scenario.stimulation.tes_interval_s = 1.0;
    SimConfig {
        channels,
        sample_rate_hz: rate,
        seed,
        mains_hz: 50.0,
        scenario,
    }
}

pub fn sim_stream(config: SimConfig, samples: u64, gaps: &[(u64, u64)], seed: u64) -> SimStream {
    let mut sim = Simulator::new(config).unwrap();
    let device = Arc::new(sim.device_info());
    let nch = device.n_channels();
    let mut rng = Rng::new(seed);
    let mut items = vec![Acquired::Device(device.clone())];
    let max = MAX_BLOCK_VALUES / nch;
    let mut buf = vec![0i32; max * nch];
    let mut stims = Vec::new();
    let mut pending_gap: Option<(u64, u64)> = None;
    let mut at = 0u64;
    while at < samples {
        let n = ((rng.next_u64() % max as u64) + 1).min(samples - at) as usize;
        stims.clear();
        sim.generate(n, &mut buf, &mut stims);
        for s in &stims {
            items.push(Acquired::Stimulus(*s));
        }
        // Deliver the parts of [at, at+n) outside the gaps.
        let mut i = at;
        let end = at + n as u64;
        while i < end {
            if let Some(&(gf, gt)) = gaps.iter().find(|&&(f, t)| f <= i && i < t) {
                pending_gap = Some(pending_gap.map_or((gf, gt), |(f, _)| (f, gt)));
                i = gt.min(end);
                continue;
            }
            let stop = gaps
                .iter()
                .filter(|&&(f, _)| f > i)
                .map(|&(f, _)| f)
                .min()
                .unwrap_or(end)
                .min(end);
            if let Some((f, t)) = pending_gap.take() {
                items.push(Acquired::Gap(Gap {
                    cause: GapCause::LostFrames,
                    from: f,
                    to: t,
                    frames: 3,
                }));
            }
            let a = (i - at) as usize;
            let b = (stop - at) as usize;
            items.push(Acquired::Samples(
                SampleBlock::from_interleaved(i, nch, &buf[a * nch..b * nch]).unwrap(),
            ));
            i = stop;
        }
        at = end;
    }
    if let Some((f, t)) = pending_gap {
        items.push(Acquired::Gap(Gap {
            cause: GapCause::LostFrames,
            from: f,
            to: t,
            frames: 3,
        }));
    }
    SimStream { device, items }
}
