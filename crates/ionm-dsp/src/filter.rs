//! Streaming FIR filtering by overlap-save with real FFTs, delay-compensated.
//!
//! - [`FirKernel`]: a designed kernel made ready for one FFT length (plans and the kernel's spectrum, made
//!   once; share it with `Arc` between channels that use the same filter).
//! - [`FftWork`]: the FFT scratch buffers, shared by every stream a thread runs.
//! - [`StreamingFir`]: the per-channel state. [`StreamingFir::push`] takes samples in chunks of any size and
//!   hands back *delay-compensated* output: the `k`-th output sample corresponds to the `k`-th input sample
//!   (the constant group delay `D = (taps − 1)/2` is removed exactly, so the output is the zero-phase
//!   application of the taps). Before its first sample the stream is taken to be constant (equal to that
//!   first sample); [`StreamingFir::finish`] extends the end the same way and returns the last `D` outputs.
//!
//! Blocks of `L = M − taps + 1` new samples are transformed at once; input is buffered until a block is full,
//! so output lags input by up to `D + L` samples. [`StreamingFir::flush`] transforms a partial block at once
//! when the caller cannot wait (live display); outputs then differ from the full-block ones only by float
//! rounding. Samples are `f32` (speed); the kernel's spectrum is computed in `f64` and rounded once.
//!
//! **Pairs.** Two streams that share a kernel and advance in step (the same samples pushed, the same flushes)
//! can be filtered together with [`push_pair_lazy`]: one complex FFT of `x_a + i·x_b`, one product with the
//! kernel's full (Hermitian) spectrum and one inverse give `y_a` as the real part and `y_b` as the imaginary
//! part, because the kernel is real. That replaces two real FFTs and two inverse real FFTs and skips the real
//! FFT's pre- and post-processing (≈ 40% of a real transform's time here); the outputs are the same up to
//! float rounding.
//!
//! Multirate: this module computes one full-rate convolution. A decimated path for narrow low-frequency
//! features (high-pass as `x − LP(x)` with the low-pass run at a lower rate) would be another kernel kind
//! behind the same `push`/`flush`/`finish` interface; it is not implemented (see the crate's PROTOCOL.md
//! notes).

use crate::design::FirDesign;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Largest FFT length used (bounds memory for any configuration).
pub const MAX_FFT_LEN: usize = 1 << 17;

/// A kernel ready for overlap-save at one FFT length.
pub struct FirKernel {
    taps: usize,
    fft_len: usize,
    dc_gain: f64,
    /// Single-tap kernels (identity or a pure gain) skip the FFT.
    gain_only: Option<f32>,
    spectrum: Vec<Complex<f32>>,
    r2c: Option<Arc<dyn RealToComplex<f32>>>,
    c2r: Option<Arc<dyn ComplexToReal<f32>>>,
    /// Shorter transforms for partial blocks (live flushes): (length, spectrum, plans), ascending, each a
    /// power of two from the first above the taps up to half `fft_len`. A flush of `p` samples uses the
    /// shortest that holds `taps − 1 + p`: flushing a few ms costs a fraction of a whole block.
    short: Vec<ShortFft>,
    /// For pairs of streams ([`push_pair_lazy`]): the full-length complex transforms and the kernel's full
    /// spectrum (the Hermitian extension of `spectrum`), made by [`FirKernel::enable_pairs`].
    pair: Option<PairFft>,
}

struct PairFft {
    spectrum: Vec<Complex<f32>>,
    fwd: Arc<dyn Fft<f32>>,
    inv: Arc<dyn Fft<f32>>,
}

type ShortFft = (
    usize,
    Vec<Complex<f32>>,
    Arc<dyn RealToComplex<f32>>,
    Arc<dyn ComplexToReal<f32>>,
);

/// The spectrum of `taps` zero-padded to `m`, computed in f64 with the inverse transform's 1/m folded in.
fn kernel_spectrum(taps: &[f64], m: usize) -> Vec<Complex<f32>> {
    let mut p64 = RealFftPlanner::<f64>::new();
    let fwd64 = p64.plan_fft_forward(m);
    let mut time = vec![0.0f64; m];
    for (t, h) in time.iter_mut().zip(taps) {
        *t = *h / m as f64;
    }
    let mut spec64 = fwd64.make_output_vec();
    // Lengths come from the plan itself, so this cannot fail.
    let _ = fwd64.process(&mut time, &mut spec64);
    spec64
        .iter()
        .map(|c| Complex::new(c.re as f32, c.im as f32))
        .collect()
}

impl std::fmt::Debug for FirKernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirKernel")
            .field("taps", &self.taps)
            .field("fft_len", &self.fft_len)
            .finish()
    }
}

/// The FFT length with the lowest estimated cost per output sample, `M (log2 M + 3) / (M − taps + 1)`, over
/// powers of two from `2 × taps` (at least 64) up to `max(4 × taps, 8192)` rounded up to a power of two (and
/// [`MAX_FFT_LEN`]). The `+ 3` stands for the spectrum product and copies; the upper limit keeps the buffers
/// cache-sized: measured on the default filters, longer FFTs gained nothing (and add latency and memory).
pub fn choose_fft_len(taps: usize) -> usize {
    let cap = (4 * taps).next_power_of_two().clamp(8192, MAX_FFT_LEN);
    let mut best = (f64::INFINITY, cap);
    let mut m = (2 * taps).next_power_of_two().max(64);
    while m <= cap {
        let cost = m as f64 * ((m as f64).log2() + 3.0) / (m - taps + 1) as f64;
        if cost < best.0 {
            best = (cost, m);
        }
        m *= 2;
    }
    best.1
}

/// Why a kernel could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// The FFT length cannot hold the taps plus at least one new sample, is odd, or is too large.
    #[error(
        "FFT length {fft_len} does not suit {taps} taps (needs an even length > taps, at most {MAX_FFT_LEN})"
    )]
    BadFftLen {
        /// Taps of the kernel.
        taps: usize,
        /// FFT length asked for.
        fft_len: usize,
    },
}

impl FirKernel {
    /// Prepares `design` for overlap-save with FFT length `fft_len` (`None`: [`choose_fft_len`]).
    pub fn new(
        design: &FirDesign,
        fft_len: Option<usize>,
        planner: &mut RealFftPlanner<f32>,
    ) -> Result<Self, KernelError> {
        let taps = design.taps.len();
        let dc_gain = design.dc_gain();
        if taps == 1 {
            return Ok(Self {
                taps,
                fft_len: 0,
                dc_gain,
                gain_only: Some(design.taps[0] as f32),
                spectrum: Vec::new(),
                r2c: None,
                c2r: None,
                short: Vec::new(),
                pair: None,
            });
        }
        let m = fft_len.unwrap_or_else(|| choose_fft_len(taps));
        if m <= taps || !m.is_multiple_of(2) || m > MAX_FFT_LEN {
            return Err(KernelError::BadFftLen { taps, fft_len: m });
        }
        let spectrum = kernel_spectrum(&design.taps, m);
        let mut short = Vec::new();
        let mut sm = (taps + 1).next_power_of_two();
        while sm < m {
            short.push((
                sm,
                kernel_spectrum(&design.taps, sm),
                planner.plan_fft_forward(sm),
                planner.plan_fft_inverse(sm),
            ));
            sm *= 2;
        }
        Ok(Self {
            taps,
            fft_len: m,
            dc_gain,
            gain_only: None,
            spectrum,
            r2c: Some(planner.plan_fft_forward(m)),
            c2r: Some(planner.plan_fft_inverse(m)),
            short,
            pair: None,
        })
    }

    /// Prepares the kernel for [`push_pair_lazy`] (complex plans of its FFT length and its full spectrum). A
    /// single-tap kernel has nothing to prepare.
    pub fn enable_pairs(&mut self, planner: &mut FftPlanner<f32>) {
        if self.gain_only.is_some() || self.pair.is_some() {
            return;
        }
        let m = self.fft_len;
        let mut spectrum = Vec::with_capacity(m);
        spectrum.extend_from_slice(&self.spectrum);
        // X[m − k] = conj(X[k]) for a real sequence; the Nyquist and DC bins are real.
        spectrum.extend(self.spectrum[1..m / 2].iter().rev().map(|c| c.conj()));
        spectrum[0].im = 0.0;
        spectrum[m / 2].im = 0.0;
        self.pair = Some(PairFft {
            spectrum,
            fwd: planner.plan_fft_forward(m),
            inv: planner.plan_fft_inverse(m),
        });
    }

    /// Whether [`FirKernel::enable_pairs`] has prepared the kernel for pairs.
    pub fn pairs_enabled(&self) -> bool {
        self.pair.is_some()
    }

    /// Number of taps.
    pub fn taps(&self) -> usize {
        self.taps
    }

    /// Group delay in samples.
    pub fn delay(&self) -> usize {
        (self.taps - 1) / 2
    }

    /// FFT length (0 for a single-tap kernel).
    pub fn fft_len(&self) -> usize {
        self.fft_len
    }

    /// New samples per full block, `M − taps + 1` (a single-tap kernel processes any chunk at once: 4096).
    pub fn block_len(&self) -> usize {
        if self.gain_only.is_some() {
            4096
        } else {
            self.fft_len - self.taps + 1
        }
    }

    /// Gain at DC, computed in f64 from the taps.
    pub fn dc_gain(&self) -> f64 {
        self.dc_gain
    }
}

/// Scratch buffers for the FFTs, shared by all the streams one thread filters.
#[derive(Default)]
pub struct FftWork {
    time: Vec<f32>,
    spec: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// Pairs: the second stream's output and the complex block.
    time_b: Vec<f32>,
    pair: Vec<Complex<f32>>,
}

impl std::fmt::Debug for FftWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FftWork").field("time", &self.time.len()).finish()
    }
}

impl FftWork {
    /// Empty buffers; call [`FftWork::reserve`] for every kernel before the real-time path.
    pub fn new() -> Self {
        Self::default()
    }

    /// Grows the buffers so that `kernel` can run without allocating.
    pub fn reserve(&mut self, kernel: &FirKernel) {
        let m = kernel.fft_len.max(kernel.block_len());
        if self.time.len() < m {
            self.time.resize(m, 0.0);
        }
        if self.spec.len() < m / 2 + 1 {
            self.spec.resize(m / 2 + 1, Complex::new(0.0, 0.0));
        }
        let s = kernel
            .r2c
            .as_ref()
            .map_or(0, |p| p.get_scratch_len())
            .max(kernel.c2r.as_ref().map_or(0, |p| p.get_scratch_len()))
            .max(
                kernel
                    .short
                    .iter()
                    .map(|(_, _, f, i)| f.get_scratch_len().max(i.get_scratch_len()))
                    .max()
                    .unwrap_or(0),
            );
        let s = s.max(kernel.pair.as_ref().map_or(0, |p| {
            p.fwd
                .get_inplace_scratch_len()
                .max(p.inv.get_inplace_scratch_len())
        }));
        if self.scratch.len() < s {
            self.scratch.resize(s, Complex::new(0.0, 0.0));
        }
        if kernel.pair.is_some() {
            if self.pair.len() < kernel.fft_len {
                self.pair.resize(kernel.fft_len, Complex::new(0.0, 0.0));
            }
            if self.time_b.len() < kernel.fft_len {
                self.time_b.resize(kernel.fft_len, 0.0);
            }
        }
    }
}

/// Per-channel overlap-save state. See the [module docs](self).
pub struct StreamingFir {
    kernel: Arc<FirKernel>,
    /// `[0, taps−1)`: history; `[taps−1, taps−1+pending)`: new samples not yet transformed.
    buf: Vec<f32>,
    pending: usize,
    /// Compensated outputs still to drop (they belong to indices before the first input).
    skip: usize,
    started: bool,
    last: f32,
}

impl std::fmt::Debug for StreamingFir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingFir")
            .field("kernel", &self.kernel)
            .field("pending", &self.pending)
            .field("started", &self.started)
            .finish()
    }
}

impl StreamingFir {
    /// A stream with no history.
    pub fn new(kernel: Arc<FirKernel>) -> Self {
        let len = if kernel.gain_only.is_some() {
            0
        } else {
            kernel.fft_len
        };
        let skip = kernel.delay();
        Self {
            kernel,
            buf: vec![0.0; len],
            pending: 0,
            skip,
            started: false,
            last: 0.0,
        }
    }

    /// The kernel.
    pub fn kernel(&self) -> &Arc<FirKernel> {
        &self.kernel
    }

    /// Group delay in samples.
    pub fn delay(&self) -> usize {
        self.kernel.delay()
    }

    /// Input samples buffered and not yet transformed.
    pub fn buffered(&self) -> usize {
        self.pending
    }

    /// Forgets all history: the next sample starts a new, independent stream.
    pub fn reset(&mut self) {
        self.pending = 0;
        self.skip = self.kernel.delay();
        self.started = false;
        self.last = 0.0;
    }

    /// Feeds `x`; delay-compensated output is handed to `out` in order, in chunks, as blocks complete.
    /// Non-finite input samples are replaced by 0.
    pub fn push(&mut self, x: &[f32], work: &mut FftWork, out: &mut impl FnMut(&[f32])) {
        self.push_lazy(x, work, &mut |_| true, out, &mut |_| {});
    }

    /// As [`StreamingFir::push`], but before each block is transformed `needed(n)` is asked whether its `n`
    /// outputs (the next ones in order) are wanted; if not, the transform is skipped and `skipped(n)` is
    /// called instead of `out`. The history moves on all the same, so later outputs are exactly those of
    /// [`StreamingFir::push`] (an FIR has no state but its input).
    pub fn push_lazy(
        &mut self,
        x: &[f32],
        work: &mut FftWork,
        needed: &mut impl FnMut(usize) -> bool,
        out: &mut impl FnMut(&[f32]),
        skipped: &mut impl FnMut(usize),
    ) {
        if x.is_empty() {
            return;
        }
        work.reserve(&self.kernel);
        if let Some(g) = self.kernel.gain_only {
            self.started = true;
            for chunk in x.chunks(work.time.len()) {
                let dst = &mut work.time[..chunk.len()];
                for (d, s) in dst.iter_mut().zip(chunk) {
                    *d = if s.is_finite() { s * g } else { 0.0 };
                }
                self.last = *dst.last().unwrap_or(&0.0);
                out(dst);
            }
            return;
        }
        self.start(x[0]);
        let l = self.kernel.block_len();
        let mut rest = x;
        while !rest.is_empty() {
            let take = (l - self.pending).min(rest.len());
            self.append(&rest[..take]);
            rest = &rest[take..];
            if self.pending == l {
                self.run_block(work, needed, out, skipped);
            }
        }
    }

    /// Fills the history with the first sample (constant extension before the stream's start), once.
    fn start(&mut self, first: f32) {
        if !self.started {
            let first = if first.is_finite() { first } else { 0.0 };
            let n1 = self.kernel.taps - 1;
            self.buf[..n1].fill(first);
            self.started = true;
        }
    }

    /// Appends `x` (at most what the block has room for) to the pending samples, non-finite ones as 0.
    fn append(&mut self, x: &[f32]) {
        let n1 = self.kernel.taps - 1;
        let dst = &mut self.buf[n1 + self.pending..n1 + self.pending + x.len()];
        dst.copy_from_slice(x);
        if !all_finite(dst) {
            for d in dst.iter_mut() {
                if !d.is_finite() {
                    *d = 0.0;
                }
            }
        }
        self.last = dst[x.len() - 1];
        self.pending += x.len();
    }

    /// Transforms the buffered samples now (a partial block), so that output has caught up with input except
    /// for the group delay.
    pub fn flush(&mut self, work: &mut FftWork, out: &mut impl FnMut(&[f32])) {
        self.flush_lazy(work, &mut |_| true, out, &mut |_| {});
    }

    /// [`StreamingFir::flush`] with the `needed`/`skipped` protocol of [`StreamingFir::push_lazy`].
    pub fn flush_lazy(
        &mut self,
        work: &mut FftWork,
        needed: &mut impl FnMut(usize) -> bool,
        out: &mut impl FnMut(&[f32]),
        skipped: &mut impl FnMut(usize),
    ) {
        if self.pending > 0 {
            work.reserve(&self.kernel);
            self.run_block(work, needed, out, skipped);
        }
    }

    /// Ends the stream: extends it by its last sample for `D` samples, hands out every remaining output (so
    /// that, over the stream's life, exactly one output per input has been given), and resets.
    pub fn finish(&mut self, work: &mut FftWork, out: &mut impl FnMut(&[f32])) {
        self.finish_lazy(work, &mut |_| true, out, &mut |_| {});
    }

    /// [`StreamingFir::finish`] with the `needed`/`skipped` protocol of [`StreamingFir::push_lazy`].
    pub fn finish_lazy(
        &mut self,
        work: &mut FftWork,
        needed: &mut impl FnMut(usize) -> bool,
        out: &mut impl FnMut(&[f32]),
        skipped: &mut impl FnMut(usize),
    ) {
        if self.started && self.kernel.gain_only.is_none() {
            let mut left = self.kernel.delay();
            let l = self.kernel.block_len();
            let n1 = self.kernel.taps - 1;
            while left > 0 {
                let take = (l - self.pending).min(left);
                self.buf[n1 + self.pending..n1 + self.pending + take].fill(self.last);
                self.pending += take;
                left -= take;
                if self.pending == l {
                    work.reserve(&self.kernel);
                    self.run_block(work, needed, out, skipped);
                }
            }
            self.flush_lazy(work, needed, out, skipped);
        }
        self.reset();
    }

    fn run_block(
        &mut self,
        work: &mut FftWork,
        needed: &mut impl FnMut(usize) -> bool,
        out: &mut impl FnMut(&[f32]),
        skipped: &mut impl FnMut(usize),
    ) {
        let (drop, n_out) = self.block_outputs();
        let k = &*self.kernel;
        let (Some(r2c), Some(c2r)) = (&k.r2c, &k.c2r) else {
            return;
        };
        let n1 = k.taps - 1;
        let p = self.pending;
        // A partial block goes through the shortest transform that holds it.
        let (m, spectrum, r2c, c2r) = match k.short.iter().find(|v| v.0 >= n1 + p) {
            Some((sm, spec, f, i)) => (*sm, spec, f, i),
            None => (k.fft_len, &k.spectrum, r2c, c2r),
        };
        if n_out == 0 {
            // Every output of this block lies before the stream's start: nothing to compute.
        } else if !needed(n_out) {
            skipped(n_out);
        } else {
            let time = &mut work.time[..m];
            time[..n1 + p].copy_from_slice(&self.buf[..n1 + p]);
            // Positions past the new samples only feed outputs that are discarded; zero them so that stale
            // values do not raise the rounding noise.
            time[n1 + p..].fill(0.0);
            let spec = &mut work.spec[..m / 2 + 1];
            let scratch = &mut work.scratch[..];
            // Buffer lengths are fixed by the plan (reserved beforehand), so these calls cannot fail.
            let _ = r2c.process_with_scratch(time, spec, scratch);
            for (s, h) in spec.iter_mut().zip(spectrum) {
                *s *= *h;
            }
            spec[0].im = 0.0;
            spec[m / 2].im = 0.0;
            let _ = c2r.process_with_scratch(spec, time, scratch);
            out(&time[n1 + drop..n1 + p]);
        }
        self.end_block();
    }

    /// The pending block's outputs: `(dropped, kept)`. time[n1 + j] is the causal output for new sample j, i.e.
    /// the compensated output for new sample j − D; the first D outputs of a stream belong to indices before its
    /// start and are dropped.
    fn block_outputs(&mut self) -> (usize, usize) {
        let drop = self.skip.min(self.pending);
        self.skip -= drop;
        (drop, self.pending - drop)
    }

    /// Keeps the block's last `taps − 1` samples as the next block's history.
    fn end_block(&mut self) {
        let (n1, p) = (self.kernel.taps - 1, self.pending);
        self.buf.copy_within(p..p + n1, 0);
        self.pending = 0;
    }
}

/// What a stream of a pair does with its outputs (the `needed`/`out`/`skipped` protocol of
/// [`StreamingFir::push_lazy`]).
pub struct PairSide<'a, N, O, S> {
    /// The stream.
    pub fir: &'a mut StreamingFir,
    /// Its new samples.
    pub x: &'a [f32],
    /// Asked before each block whether its `n` outputs are wanted.
    pub needed: &'a mut N,
    /// Gets the outputs.
    pub out: &'a mut O,
    /// Told how many outputs were not computed.
    pub skipped: &'a mut S,
}

/// Feeds two streams that share a kernel (the same `Arc`) and are in step (as many samples pending, the same
/// start), `a.x` and `b.x` being as long: each full block of both goes through one complex FFT (see the
/// [module docs](self)). A block is transformed if either stream needs it; a stream that did not need it is
/// told `skipped` as with [`StreamingFir::push_lazy`], and the other's outputs do not depend on it (lazy and
/// eager runs agree bit for bit). Anything else — different kernels, a kernel without
/// [`FirKernel::enable_pairs`], streams out of step, inputs of different lengths — falls back to
/// [`StreamingFir::push_lazy`] on each, with the same results up to rounding. Returns the number of blocks
/// that went through the pair transform.
pub fn push_pair_lazy<N1, O1, S1, N2, O2, S2>(
    a: PairSide<'_, N1, O1, S1>,
    b: PairSide<'_, N2, O2, S2>,
    work: &mut FftWork,
) -> usize
where
    N1: FnMut(usize) -> bool,
    O1: FnMut(&[f32]),
    S1: FnMut(usize),
    N2: FnMut(usize) -> bool,
    O2: FnMut(&[f32]),
    S2: FnMut(usize),
{
    let in_step = Arc::ptr_eq(&a.fir.kernel, &b.fir.kernel)
        && a.fir.kernel.pair.is_some()
        && a.x.len() == b.x.len()
        && a.fir.pending == b.fir.pending
        && a.fir.skip == b.fir.skip
        && a.fir.started == b.fir.started;
    if !in_step {
        a.fir.push_lazy(a.x, work, a.needed, a.out, a.skipped);
        b.fir.push_lazy(b.x, work, b.needed, b.out, b.skipped);
        return 0;
    }
    if a.x.is_empty() {
        return 0;
    }
    work.reserve(&a.fir.kernel);
    a.fir.start(a.x[0]);
    b.fir.start(b.x[0]);
    let l = a.fir.kernel.block_len();
    let (mut done, mut paired) = (0, 0);
    while done < a.x.len() {
        let take = (l - a.fir.pending).min(a.x.len() - done);
        a.fir.append(&a.x[done..done + take]);
        b.fir.append(&b.x[done..done + take]);
        done += take;
        if a.fir.pending == l {
            paired += usize::from(run_pair_block(
                a.fir,
                b.fir,
                work,
                (a.needed, a.out, a.skipped),
                (b.needed, b.out, b.skipped),
            ));
        }
    }
    paired
}

/// Whether every value is finite. A branch-free fold over the exponent bits (all ones: ±∞ or NaN) that the
/// compiler vectorises; `iter().all(is_finite)` stops early, so it ran one value at a time and was a third of
/// a filter block's time outside the FFTs.
fn all_finite(x: &[f32]) -> bool {
    const EXP: u32 = 0x7f80_0000;
    x.iter()
        .fold(0u32, |acc, v| acc | u32::from(v.to_bits() & EXP == EXP))
        == 0
}

/// A power of two that brings the peak magnitude of `x` to [1, 2) (below that for a peak under 2^−126, above
/// it for one over 2^127; 1 for silence; inputs are finite), built from the peak's exponent bits so that it and its inverse are exact.
fn pow2_scale(x: &[f32]) -> f32 {
    let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if peak > 0.0 && peak.is_finite() {
        // The biased exponent of the peak (0 for subnormals); 2^(127 − e) kept within [2^−126, 2^126], so
        // that it and its inverse are normal numbers.
        let e = (peak.to_bits() >> 23) as i32;
        let biased = (254 - e).clamp(1, 253) as u32;
        f32::from_bits(biased << 23)
    } else {
        1.0
    }
}

/// One full block of a pair in step (see [`push_pair_lazy`]); true if it went through the pair transform.
fn run_pair_block(
    fa: &mut StreamingFir,
    fb: &mut StreamingFir,
    work: &mut FftWork,
    (needed_a, out_a, skipped_a): (
        &mut impl FnMut(usize) -> bool,
        &mut impl FnMut(&[f32]),
        &mut impl FnMut(usize),
    ),
    (needed_b, out_b, skipped_b): (
        &mut impl FnMut(usize) -> bool,
        &mut impl FnMut(&[f32]),
        &mut impl FnMut(usize),
    ),
) -> bool {
    let k = Arc::clone(&fa.kernel);
    let Some(pair) = &k.pair else { return false };
    let (n1, p, m) = (k.taps - 1, fa.pending, k.fft_len);
    // In step: the same pending count and start, so the same outputs dropped.
    let (drop, n_out) = fa.block_outputs();
    fb.block_outputs();
    let mut transformed = false;
    if n_out > 0 {
        // Both asked, always: each `needed` keeps its own statistics.
        let (wa, wb) = (needed_a(n_out), needed_b(n_out));
        if wa || wb {
            transformed = true;
            // A full block fills the transform: n1 + p = m. Each stream is scaled by a power of two to a peak
            // near 1 (exact in floating point), so that the FFT's rounding, which is relative to the larger of
            // the two parts, is relative to each stream's own size: a railing electrode does not add its
            // rounding noise to a quiet cortical partner.
            let (ga, gb) = (pow2_scale(&fa.buf[..m]), pow2_scale(&fb.buf[..m]));
            let z = &mut work.pair[..m];
            for ((z, &xa), &xb) in z.iter_mut().zip(&fa.buf[..m]).zip(&fb.buf[..m]) {
                *z = Complex::new(xa * ga, xb * gb);
            }
            let scratch = &mut work.scratch[..];
            pair.fwd.process_with_scratch(z, scratch);
            for (z, h) in z.iter_mut().zip(&pair.spectrum) {
                *z *= *h;
            }
            pair.inv.process_with_scratch(z, scratch);
            let (ya, yb) = (&mut work.time[..n_out], &mut work.time_b[..n_out]);
            let (ia, ib) = (1.0 / ga, 1.0 / gb);
            for ((z, ya), yb) in z[n1 + drop..n1 + p].iter().zip(ya.iter_mut()).zip(yb.iter_mut()) {
                *ya = z.re * ia;
                *yb = z.im * ib;
            }
            // A stream that did not need the block is told so, as if it had been skipped (its consumer
            // marks the positions as not computed), even though its part was transformed with the other.
            if wa {
                out_a(ya)
            } else {
                skipped_a(n_out)
            }
            if wb { out_b(yb) } else { skipped_b(n_out) }
        } else {
            skipped_a(n_out);
            skipped_b(n_out);
        }
    }
    fa.end_block();
    fb.end_block();
    transformed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::design::{Edge, FilterSpec, design};

    fn direct(taps: &[f64], x: &[f32]) -> Vec<f64> {
        // Zero-phase convolution with constant extension at both ends.
        let d = (taps.len() - 1) / 2;
        let n = x.len() as isize;
        (0..n)
            .map(|i| {
                taps.iter()
                    .enumerate()
                    .map(|(k, h)| {
                        let j = (i + d as isize - k as isize).clamp(0, n - 1);
                        h * f64::from(x[j as usize])
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn matches_direct_convolution() {
        // The pair case's kernel and first signal, one stream alone.
        let (d, kernel, x, _) = pair_case();
        let mut work = FftWork::new();
        work.reserve(&kernel);
        let mut f = StreamingFir::new(kernel);
        let mut y = Vec::new();
        for c in x.chunks(77) {
            f.push(c, &mut work, &mut |o| y.extend_from_slice(o));
        }
        f.finish(&mut work, &mut |o| y.extend_from_slice(o));
        let r = direct(&d.taps, &x);
        assert_eq!(y.len(), r.len());
        let (err, scale) = max_err(&y, &r);
        // f32 FFT of length 512: rounding ≈ 1e-7 × log2(512) relative; 1e-5 leaves a wide margin.
        assert!(err < 1e-5 * scale, "err {err} scale {scale}");
    }

    /// A band-pass kernel at FFT 512, prepared for pairs, and two different inputs.
    fn pair_case() -> (FirDesign, Arc<FirKernel>, Vec<f32>, Vec<f32>) {
        let spec = FilterSpec {
            highpass: Some(Edge {
                cutoff_hz: 100.0,
                transition_hz: 100.0,
            }),
            lowpass: Some(Edge {
                cutoff_hz: 1000.0,
                transition_hz: 500.0,
            }),
            attenuation_db: 50.0,
            notch: None,
        };
        let d = design(&spec, 10_000.0).unwrap();
        let mut k = FirKernel::new(&d, Some(512), &mut RealFftPlanner::new()).unwrap();
        k.enable_pairs(&mut FftPlanner::new());
        let xa: Vec<f32> = (0..3000)
            .map(|i| ((i * 7919 % 1000) as f32 - 500.0) * 0.01)
            .collect();
        // A different signal, 100× larger: a leak between the real and imaginary parts would show.
        let xb: Vec<f32> = (0..3000)
            .map(|i| ((i * 104_729 % 997) as f32 - 498.0) + 300.0 * (i as f32 * 0.05).sin())
            .collect();
        (d, Arc::new(k), xa, xb)
    }

    /// New samples per block of the pair case's kernel at FFT 512.
    fn kernel_block(d: &FirDesign) -> usize {
        512 - d.taps.len() + 1
    }

    fn max_err(y: &[f32], r: &[f64]) -> (f64, f64) {
        let scale = r.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let err = y
            .iter()
            .zip(r)
            .fold(0.0f64, |a, (u, v)| a.max((f64::from(*u) - v).abs()));
        (err, scale)
    }

    /// Feeds `xa` and `xb` to the pair in chunks of `chunk` (both wanted), appending the outputs; returns the
    /// blocks that went through the pair transform.
    fn feed_pair(
        (fa, fb): (&mut StreamingFir, &mut StreamingFir),
        (xa, xb): (&[f32], &[f32]),
        chunk: usize,
        work: &mut FftWork,
        (ya, yb): (&mut Vec<f32>, &mut Vec<f32>),
    ) -> usize {
        let mut paired = 0;
        for (ca, cb) in xa.chunks(chunk).zip(xb.chunks(chunk)) {
            paired += push_pair_lazy(
                PairSide {
                    fir: &mut *fa,
                    x: ca,
                    needed: &mut |_| true,
                    out: &mut |o: &[f32]| ya.extend_from_slice(o),
                    skipped: &mut |_| {},
                },
                PairSide {
                    fir: &mut *fb,
                    x: cb,
                    needed: &mut |_| true,
                    out: &mut |o: &[f32]| yb.extend_from_slice(o),
                    skipped: &mut |_| {},
                },
                work,
            );
        }
        paired
    }

    /// Each output equals the direct zero-phase convolution of its input to 1e-5 of its own scale: f32 rounding
    /// of a 512-point FFT is ≈ 1e-7 × log2 512 of each stream's own scale (each is scaled to a unit peak before
    /// a pair shares the transform; without that, stream a's error was 1.7e-5 of its scale, the rounding of
    /// stream b, 100× larger).
    fn assert_direct(d: &FirDesign, outputs: [(&[f32], &[f32]); 2]) {
        for (y, x) in outputs {
            let r = direct(&d.taps, x);
            assert_eq!(y.len(), r.len());
            let (err, scale) = max_err(y, &r);
            assert!(err < 1e-5 * scale, "err {err} scale {scale}");
        }
    }

    #[test]
    fn a_pair_matches_direct_convolution_of_each_stream() {
        let (d, kernel, xa, xb) = pair_case();
        let mut work = FftWork::new();
        let (mut fa, mut fb) = (StreamingFir::new(kernel.clone()), StreamingFir::new(kernel));
        let (mut ya, mut yb) = (Vec::new(), Vec::new());
        let paired = feed_pair((&mut fa, &mut fb), (&xa, &xb), 77, &mut work, (&mut ya, &mut yb));
        fa.finish(&mut work, &mut |o| ya.extend_from_slice(o));
        fb.finish(&mut work, &mut |o| yb.extend_from_slice(o));
        // 3000 samples in blocks of 512 − taps + 1: every full block went through the pair transform.
        assert_eq!(paired, 3000 / kernel_block(&d));
        assert_direct(&d, [(&ya, &xa), (&yb, &xb)]);
    }

    #[test]
    fn a_pair_gives_the_same_outputs_whether_or_not_the_other_stream_needs_them() {
        let (_, kernel, xa, xb) = pair_case();
        let run = |want_a: bool| {
            let mut work = FftWork::new();
            let (mut fa, mut fb) = (
                StreamingFir::new(kernel.clone()),
                StreamingFir::new(kernel.clone()),
            );
            let (mut yb, mut skipped_a, mut paired) = (Vec::new(), 0, 0);
            for (ca, cb) in xa.chunks(500).zip(xb.chunks(500)) {
                paired += push_pair_lazy(
                    PairSide {
                        fir: &mut fa,
                        x: ca,
                        needed: &mut |_| want_a,
                        out: &mut |_: &[f32]| {},
                        skipped: &mut |n| skipped_a += n,
                    },
                    PairSide {
                        fir: &mut fb,
                        x: cb,
                        needed: &mut |_| true,
                        out: &mut |o: &[f32]| yb.extend_from_slice(o),
                        skipped: &mut |_| {},
                    },
                    &mut work,
                );
            }
            (yb, skipped_a, paired)
        };
        let (eager, skipped_eager, paired_eager) = run(true);
        let (lazy, skipped_lazy, paired_lazy) = run(false);
        assert_eq!(skipped_eager, 0);
        // Stream a's blocks still go through the pair transform for b's sake, but a is told they were skipped
        // (every output it would have had), and b's outputs are identical.
        assert!(paired_eager > 0);
        assert_eq!(paired_lazy, paired_eager);
        assert_eq!(skipped_lazy, eager.len());
        assert!(!eager.is_empty());
        assert_eq!(eager, lazy);
    }

    #[test]
    fn streams_out_of_step_fall_back_to_one_by_one() {
        let (d, kernel, xa, xb) = pair_case();
        let mut work = FftWork::new();
        let (mut fa, mut fb) = (StreamingFir::new(kernel.clone()), StreamingFir::new(kernel));
        let (mut ya, mut yb) = (Vec::new(), Vec::new());
        // Stream b starts 10 samples later: never in step, so every block is filtered alone.
        fb.push(&xb[..10], &mut work, &mut |o| yb.extend_from_slice(o));
        let paired = feed_pair(
            (&mut fa, &mut fb),
            (&xa[..2990], &xb[10..]),
            77,
            &mut work,
            (&mut ya, &mut yb),
        );
        assert_eq!(paired, 0);
        fa.push(&xa[2990..], &mut work, &mut |o| ya.extend_from_slice(o));
        fa.finish(&mut work, &mut |o| ya.extend_from_slice(o));
        fb.finish(&mut work, &mut |o| yb.extend_from_slice(o));
        assert_direct(&d, [(&ya, &xa), (&yb, &xb)]);
    }

    #[test]
    fn pair_scales_are_exact_powers_of_two_that_bring_the_peak_near_one() {
        assert_eq!(pow2_scale(&[]), 1.0);
        assert_eq!(pow2_scale(&[0.0, -0.0]), 1.0);
        for peak in [
            1e-44f32,
            1.2e-38,
            3e-7,
            0.75,
            1.0,
            1.999,
            2.0,
            12_345.0,
            3e37,
            f32::MAX,
        ] {
            let g = pow2_scale(&[0.5 * peak, -peak, 0.0]);
            // A power of two (no mantissa bits) in the normal range, so its inverse is exact too.
            assert_eq!(g.to_bits() & 0x007f_ffff, 0, "{peak}");
            assert!(
                g.is_normal() && (1.0 / g).is_normal() && (1.0 / g) * g == 1.0,
                "{peak}"
            );
            let scaled = peak * g;
            assert!(scaled.is_finite() && scaled < 4.0, "{peak} → {scaled}");
            if peak.is_normal() && peak < 1e38 {
                assert!((1.0..2.0).contains(&scaled), "{peak} → {scaled}");
            }
        }
    }

    #[test]
    fn finiteness_check() {
        assert!(all_finite(&[]));
        assert!(all_finite(&[
            0.0,
            -0.0,
            f32::MAX,
            f32::MIN,
            f32::MIN_POSITIVE,
            1e-45
        ]));
        for bad in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN, -f32::NAN] {
            let mut x = vec![1.0f32; 37];
            x[29] = bad;
            assert!(!all_finite(&x), "{bad}");
        }
    }

    #[test]
    fn fft_len_choice_is_sane() {
        for taps in [3, 91, 1815, 5583, 11_163, 32_767] {
            let m = choose_fft_len(taps);
            assert!(
                m >= 2 * taps && m <= MAX_FFT_LEN && m.is_power_of_two(),
                "{taps} → {m}"
            );
        }
    }
}
