//! The live-signal tap for the dashboard: the processing thread pushes each channel's raw and filtered samples
//! (µV) into lock-free SPSC rings made when the device declares itself; the UI drains them at its own pace.
//! A UI that falls behind loses scope samples (counted), never acquisition data.

use ringbuf::{HeapCons, HeapProd, HeapRb, traits::*};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;

/// Samples each ring holds per channel: about 3 s at 20 kHz; the UI drains it every frame.
const RING: usize = 1 << 16;

/// The UI's end of the tap for one device session.
pub struct ScopeTap {
    /// Sample rate, Hz.
    pub sample_rate_hz: f64,
    /// Channel labels in device order.
    pub labels: Vec<String>,
    /// Raw samples (µV) per channel; a channel the source did not decode
    /// ([`SampleBlock::is_decoded`](ionm_core::SampleBlock::is_decoded)) gets none for those blocks.
    pub raw: Vec<HeapCons<f32>>,
    /// Filtered samples (µV, delay-compensated) per channel; a channel with no protocol trace gets none.
    pub filtered: Vec<HeapCons<f32>>,
    /// Absolute index of the first sample the raw rings will deliver.
    pub first_index: u64,
}

/// The processing thread's end.
pub(crate) struct ScopeWriter {
    handoff: mpsc::Sender<ScopeTap>,
    raw: Vec<HeapProd<f32>>,
    filtered: Vec<HeapProd<f32>>,
    /// Filter stream → device channel that shows it (the first stream of each channel).
    stream_channel: Vec<Option<usize>>,
    gains_uv: Vec<f32>,
    pub(crate) dropped: Arc<AtomicU64>,
}

impl ScopeWriter {
    pub(crate) fn new(handoff: mpsc::Sender<ScopeTap>, dropped: Arc<AtomicU64>) -> Self {
        Self {
            handoff,
            raw: Vec::new(),
            filtered: Vec::new(),
            stream_channel: Vec::new(),
            gains_uv: Vec::new(),
            dropped,
        }
    }

    /// A new device: new rings, handed to the UI. `stream_channel[s]` maps filter stream `s` to its channel.
    pub(crate) fn reset(&mut self, device: &ionm_core::DeviceInfo, stream_channel: Vec<Option<usize>>) {
        let n = device.n_channels();
        let (mut raw, mut raw_c) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut filt, mut filt_c) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for _ in 0..n {
            let (p, c) = HeapRb::<f32>::new(RING).split();
            raw.push(p);
            raw_c.push(c);
            let (p, c) = HeapRb::<f32>::new(RING).split();
            filt.push(p);
            filt_c.push(c);
        }
        self.raw = raw;
        self.filtered = filt;
        self.stream_channel = stream_channel;
        self.gains_uv = device
            .channels
            .iter()
            .map(|c| c.gain_nv_per_lsb as f32 * 1e-3)
            .collect();
        let tap = ScopeTap {
            sample_rate_hz: f64::from(device.sample_rate_hz),
            labels: device.channels.iter().map(|c| c.label.clone()).collect(),
            raw: raw_c,
            filtered: filt_c,
            first_index: 0,
        };
        // The UI may be gone; the tap is then simply not read.
        let _ = self.handoff.send(tap);
    }

    /// Raw samples of one block.
    pub(crate) fn raw_block(&mut self, block: &ionm_core::SampleBlock) {
        let n = block.n_channels().min(self.raw.len());
        for ch in 0..n {
            let g = self.gains_uv[ch];
            // A channel that was not decoded is shown as missing (NaN), so that every channel's history stays
            // in step with the others.
            let decoded = block.is_decoded(ch);
            let pushed = self.raw[ch].push_iter(
                block
                    .channel(ch)
                    .map(|v| if decoded { v as f32 * g } else { f32::NAN }),
            );
            let lost = block.n_samples() - pushed;
            if lost > 0 {
                self.dropped.fetch_add(lost as u64, Relaxed);
            }
        }
    }

    /// Filtered samples of one stream.
    pub(crate) fn filtered(&mut self, stream: usize, data: &[f32]) {
        if let Some(Some(ch)) = self.stream_channel.get(stream).copied()
            && let Some(p) = self.filtered.get_mut(ch)
        {
            let pushed = p.push_slice(data);
            if pushed < data.len() {
                self.dropped.fetch_add((data.len() - pushed) as u64, Relaxed);
            }
        }
    }
}
