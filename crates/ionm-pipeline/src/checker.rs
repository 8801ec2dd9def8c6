//! The stream-integrity stage.

use crate::PipelineStats;
use ionm_core::{Acquired, SampleIndex};
use std::sync::atomic::Ordering::Relaxed;

/// Follows sessions and sample indices; see the crate docs.
#[derive(Debug, Default)]
pub struct StreamChecker {
    next: Option<SampleIndex>,
    n_channels: usize,
}

impl StreamChecker {
    /// A checker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accounts for one item. No allocation.
    pub fn accept(&mut self, item: &Acquired, stats: &PipelineStats) {
        match item {
            Acquired::Device(d) => {
                self.next = None;
                self.n_channels = d.n_channels();
                stats.sample_rate_hz.store(u64::from(d.sample_rate_hz), Relaxed);
            }
            Acquired::Samples(b) => {
                if let Some(next) = self.next
                    && b.first_index() != next
                {
                    stats.discontinuities.fetch_add(1, Relaxed);
                    tracing::error!(
                        expected = next,
                        got = b.first_index(),
                        "stream discontinuity without a gap"
                    );
                }
                if b.n_channels() != self.n_channels {
                    stats.discontinuities.fetch_add(1, Relaxed);
                }
                self.next = Some(b.end_index());
                stats.samples.fetch_add(b.n_samples() as u64, Relaxed);
                stats.stream_index.store(b.end_index(), Relaxed);
            }
            Acquired::Stimulus(_) => {
                stats.stimuli.fetch_add(1, Relaxed);
            }
            Acquired::Gap(g) => {
                stats.gaps.fetch_add(1, Relaxed);
                self.next = Some(g.to);
            }
            Acquired::Status(_) | Acquired::Link(_) => {}
        }
    }
}
