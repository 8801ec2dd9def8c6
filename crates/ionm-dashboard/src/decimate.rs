//! Min/max decimation: the reduction that lets thousands of samples per pixel column draw in constant time.

/// Reduces `samples` to `columns` (min, max) pairs written to `out[..columns]` (`columns` is clamped to
/// `out.len()`; entries after it are left untouched). No allocation.
///
/// Column `i` covers the samples `[⌊i·n/c⌋, ⌊(i+1)·n/c⌋)` (n samples, c columns), so every sample belongs to
/// exactly one column and the columns differ in size by at most one sample. When there are fewer samples than
/// columns, a column that would be empty takes the sample at `⌊i·n/c⌋`, so the trace stays continuous.
/// NaN samples (gaps) are ignored; a column with no finite sample gets `(NaN, NaN)`, as do all columns when
/// `samples` is empty.
pub fn min_max_decimate(samples: &[f32], columns: usize, out: &mut [(f32, f32)]) {
    by_columns(samples, columns, out, min_max);
}

/// Reduces (min, max) pairs (for example 1 ms blocks kept by the pipeline) to `columns` coarser pairs, with the
/// same column boundaries and NaN rules as [`min_max_decimate`]. No allocation.
pub fn min_max_decimate_pairs(pairs: &[(f32, f32)], columns: usize, out: &mut [(f32, f32)]) {
    by_columns(pairs, columns, out, |chunk| {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &(a, b) in chunk {
            // `min`/`max` ignore a NaN operand.
            lo = lo.min(a);
            hi = hi.max(b);
        }
        finish(lo, hi)
    });
}

/// The column partition both reductions share: column `i` of `c` covers `[⌊i·n/c⌋, ⌊(i+1)·n/c⌋)` of the `n`
/// items (at least one item), reduced by `reduce`; `(NaN, NaN)` everywhere when there are no items.
fn by_columns<T>(items: &[T], columns: usize, out: &mut [(f32, f32)], reduce: impl Fn(&[T]) -> (f32, f32)) {
    let columns = columns.min(out.len());
    let n = items.len() as u64;
    if n == 0 {
        out[..columns].fill((f32::NAN, f32::NAN));
        return;
    }
    let c = columns as u64;
    for (i, slot) in out[..columns].iter_mut().enumerate() {
        let i = i as u64;
        // n·c fits in u64 for any slice that fits in memory and any sensible column count.
        let start = (i * n / c) as usize;
        let end = (((i + 1) * n / c) as usize).max(start + 1).min(items.len());
        *slot = reduce(&items[start..end]);
    }
}

/// Min and max of a non-empty slice, ignoring NaN.
///
/// Eight independent lanes and `if x < lo` comparisons (false for NaN, so a NaN is skipped without a branch)
/// let the compiler use packed min/max instructions (≈ 2× faster than a `f32::min` fold, measured with the
/// `frame_time` example).
fn min_max(xs: &[f32]) -> (f32, f32) {
    const LANES: usize = 8;
    let mut lo = [f32::INFINITY; LANES];
    let mut hi = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..LANES {
            let x = c[k];
            lo[k] = if x < lo[k] { x } else { lo[k] };
            hi[k] = if x > hi[k] { x } else { hi[k] };
        }
    }
    let (mut l, mut h) = (f32::INFINITY, f32::NEG_INFINITY);
    for k in 0..LANES {
        l = if lo[k] < l { lo[k] } else { l };
        h = if hi[k] > h { hi[k] } else { h };
    }
    for &x in rest {
        l = if x < l { x } else { l };
        h = if x > h { x } else { h };
    }
    finish(l, h)
}

fn finish(lo: f32, hi: f32) -> (f32, f32) {
    if lo > hi { (f32::NAN, f32::NAN) } else { (lo, hi) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ionm_core::Rng;

    /// Reference: assigns each sample to its column with the inverse formula. Sample j lies in column i iff
    /// ⌊i·n/c⌋ ≤ j < ⌊(i+1)·n/c⌋, i.e. i·n < (j+1)·c ≤ (i+1)·n, i.e. i = ⌈(j+1)·c/n⌉ − 1 (valid for n ≥ c).
    fn reference(samples: &[f32], c: usize) -> Vec<(f32, f32)> {
        let n = samples.len();
        let mut out = vec![(f32::INFINITY, f32::NEG_INFINITY); c];
        for (j, &x) in samples.iter().enumerate() {
            if x.is_nan() {
                continue;
            }
            let i = ((j + 1) * c).div_ceil(n) - 1;
            out[i].0 = out[i].0.min(x);
            out[i].1 = out[i].1.max(x);
        }
        out.into_iter()
            .map(|(a, b)| if a > b { (f32::NAN, f32::NAN) } else { (a, b) })
            .collect()
    }

    fn same(a: (f32, f32), b: (f32, f32)) -> bool {
        (a.0 == b.0 || (a.0.is_nan() && b.0.is_nan())) && (a.1 == b.1 || (a.1.is_nan() && b.1.is_nan()))
    }

    #[test]
    fn matches_the_reference_on_random_data() {
        let mut rng = Rng::new(7);
        for &(n, c) in &[
            (1000, 7),
            (1000, 1000),
            (20_000, 1920),
            (12_345, 640),
            (5, 5),
            (64, 1),
        ] {
            let mut xs: Vec<f32> = (0..n).map(|_| (rng.normal() * 50.0) as f32).collect();
            // A few gaps.
            for _ in 0..n / 100 {
                let k = rng.below(n as u64) as usize;
                xs[k] = f32::NAN;
            }
            let mut out = vec![(0.0, 0.0); c];
            min_max_decimate(&xs, c, &mut out);
            let want = reference(&xs, c);
            for i in 0..c {
                assert!(
                    same(out[i], want[i]),
                    "n={n} c={c} column {i}: {:?} vs {:?}",
                    out[i],
                    want[i]
                );
            }
            // Exact, so the extremes of the whole trace survive.
            let lo = xs.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(out.iter().map(|p| p.0).fold(f32::INFINITY, f32::min), lo);
            assert_eq!(out.iter().map(|p| p.1).fold(f32::NEG_INFINITY, f32::max), hi);
        }
    }

    #[test]
    fn ramp_columns_are_their_end_points() {
        // Analytic: on the ramp x_j = j with n = 100, c = 10, column i holds 10i … 10i+9.
        let xs: Vec<f32> = (0..100).map(|j| j as f32).collect();
        let mut out = [(0.0, 0.0); 10];
        min_max_decimate(&xs, 10, &mut out);
        for (i, &(lo, hi)) in out.iter().enumerate() {
            assert_eq!((lo, hi), ((10 * i) as f32, (10 * i + 9) as f32));
        }
    }

    #[test]
    fn edge_cases() {
        let mut out = [(1.0, 1.0); 4];
        min_max_decimate(&[], 4, &mut out);
        assert!(out.iter().all(|p| p.0.is_nan() && p.1.is_nan()));
        // Fewer samples than columns: no empty column, each shows a real sample.
        min_max_decimate(&[1.0, 2.0], 4, &mut out);
        assert_eq!(out, [(1.0, 1.0), (1.0, 1.0), (2.0, 2.0), (2.0, 2.0)]);
        // All-NaN input.
        min_max_decimate(&[f32::NAN; 8], 4, &mut out);
        assert!(out.iter().all(|p| p.0.is_nan()));
        // `columns` larger than `out`: clamped to 2 columns, [0, 1) and [1, 3); no panic.
        let mut small = [(0.0, 0.0); 2];
        min_max_decimate(&[1.0, 5.0, 3.0], 10, &mut small);
        assert_eq!(small, [(1.0, 1.0), (3.0, 5.0)]);
        // Zero columns: nothing written.
        min_max_decimate(&[7.0], 0, &mut small);
        assert_eq!(small, [(1.0, 1.0), (3.0, 5.0)]);
        // Infinities are data, not gaps.
        min_max_decimate(&[f32::INFINITY, -1.0], 1, &mut small);
        assert_eq!(small[0], (-1.0, f32::INFINITY));
    }

    #[test]
    fn pairs_of_pairs_equal_one_pass_when_blocks_align() {
        // Decimating 20 000 samples to 1 000 blocks of 20, then to 100 columns, equals decimating the samples
        // straight to 100 columns: every column boundary falls on a block boundary (10 blocks per column).
        let mut rng = Rng::new(3);
        let xs: Vec<f32> = (0..20_000).map(|_| rng.normal() as f32).collect();
        let mut blocks = vec![(0.0, 0.0); 1000];
        min_max_decimate(&xs, 1000, &mut blocks);
        let mut two = vec![(0.0, 0.0); 100];
        min_max_decimate_pairs(&blocks, 100, &mut two);
        let mut one = vec![(0.0, 0.0); 100];
        min_max_decimate(&xs, 100, &mut one);
        assert_eq!(one, two);
        let mut empty = [(0.0, 0.0); 3];
        min_max_decimate_pairs(&[], 3, &mut empty);
        assert!(empty.iter().all(|p| p.0.is_nan()));
    }
}
