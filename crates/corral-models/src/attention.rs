//! Attention of query rows against one sequence's cached keys and values, read in place from
//! the host KV cache (f32 or f16 elements, [`crate::kv_cache::KvCacheDtype`]): scores, softmax
//! and the weighted sum of values in f32, one key range per call (causal and sliding-window
//! masking are the caller's choice of range).

use crate::vector_math::softmax_in_place;

/// An element of the host KV cache as the attention loops read it.
pub(crate) trait KvElement: Copy + Sync {
    /// The row as f32: itself, or converted into `scratch`.
    fn as_f32<'a>(row: &'a [Self], scratch: &'a mut Vec<f32>) -> &'a [f32];

    /// Eight elements from `at` as f32 lanes (the caller has AVX2 and F16C).
    ///
    /// # Safety
    /// `at..at + 8` is readable.
    #[cfg(target_arch = "x86_64")]
    unsafe fn load8(at: *const Self) -> std::arch::x86_64::__m256;
}

impl KvElement for f32 {
    fn as_f32<'a>(row: &'a [f32], _: &'a mut Vec<f32>) -> &'a [f32] {
        row
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(at: *const f32) -> std::arch::x86_64::__m256 {
        std::arch::x86_64::_mm256_loadu_ps(at)
    }
}

/// IEEE f16 bit patterns.
impl KvElement for u16 {
    fn as_f32<'a>(row: &'a [u16], scratch: &'a mut Vec<f32>) -> &'a [f32] {
        scratch.clear();
        scratch.extend(row.iter().map(|&h| half::f16::from_bits(h).to_f32()));
        scratch
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn load8(at: *const u16) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        _mm256_cvtph_ps(_mm_loadu_si128(at as *const __m128i))
    }
}

/// One sequence's cached keys and values: key `j` of KV head `g` starts at
/// `j · position_stride + g · head_stride` (of `k`, and likewise of `v`).
pub(crate) struct KvView<'a, E> {
    pub k: &'a [E],
    pub v: &'a [E],
    pub head_stride: usize,
    pub position_stride: usize,
}

impl<'a, E> KvView<'a, E> {
    /// The cache rows `[positions, kv_heads, head_dim]` of `k` and `v`.
    pub(crate) fn new(k: &'a [E], v: &'a [E], kv_heads: usize, head_dim: usize) -> Self {
        Self {
            k,
            v,
            head_stride: head_dim,
            position_stride: kv_heads * head_dim,
        }
    }
}

/// `softmax(q·Kᵀ·scale)·V` of each query of `queries` over keys `keys`, into `out` (both
/// `[queries, head_dim]`; `weights` is scratch space). The queries belong to the KV heads
/// `heads`, the same number to each, in order: a caller that attends several KV heads of a
/// sequence in one call has the key pass read each cached position once for all of them.
pub(crate) fn attend<E: KvElement>(
    queries: &[f32],
    kv: &KvView<'_, E>,
    heads: std::ops::Range<usize>,
    keys: std::ops::Range<usize>,
    scale: f32,
    weights: &mut Vec<f32>,
    out: &mut [f32],
) {
    let d = kv.head_stride;
    let at = |j: usize, g: usize| j * kv.position_stride + g * kv.head_stride;
    let n = keys.len();
    let rows = queries.len() / d.max(1);
    assert!(queries.len() == out.len() && queries.len().is_multiple_of(d.max(1)));
    assert!(!heads.is_empty() && rows.is_multiple_of(heads.len()));
    let group = rows / heads.len();
    // Every key row must lie inside the slices (the SIMD loops read them unchecked).
    let last = at(keys.end.saturating_sub(1), heads.end - 1) + d;
    let in_bounds = keys.is_empty() || last <= kv.k.len().min(kv.v.len());
    assert!(in_bounds, "attention keys past the cache");
    weights.clear();
    // A row of `n` weights per query, then each query's largest score.
    weights.resize((n + 1) * rows.max(MAX_GROUP), 0.0);
    #[cfg(target_arch = "x86_64")]
    if d.is_multiple_of(LANES) && crate::vector_math::avx2_fma_f16c() {
        // SAFETY (all): the CPU has AVX2, FMA and F16C; every row read is in bounds
        // (checked above); `weights` holds a row of `n` and a maximum per query.
        let one_call =
            |queries: &[f32], heads: std::ops::Range<usize>, ahead, w: &mut [f32], out| {
                let per_head = queries.len() / d / heads.len();
                let run = (kv, heads, keys.clone(), ahead);
                unsafe {
                    match per_head {
                        1 => x86::attend::<1, E>(queries, run, scale, w, out),
                        2 => x86::attend::<2, E>(queries, run, scale, w, out),
                        3 => x86::attend::<3, E>(queries, run, scale, w, out),
                        _ => x86::attend::<4, E>(queries, run, scale, w, out),
                    }
                }
            };
        if group <= MAX_GROUP {
            one_call(queries, heads.clone(), heads, weights, out);
        } else {
            // More queries per KV head than the loops take at once: each head in runs of
            // `MAX_GROUP`, the first run prefetching the rows of every head of the call (one
            // stream in order over whole positions when the call has all of them).
            let mut ahead = heads.clone();
            let per_head = queries.chunks(group * d).zip(out.chunks_mut(group * d));
            for (g, (queries, out)) in heads.zip(per_head) {
                let runs = queries
                    .chunks(MAX_GROUP * d)
                    .zip(out.chunks_mut(MAX_GROUP * d));
                for (queries, out) in runs {
                    one_call(queries, g..g + 1, ahead.clone(), weights, out);
                    ahead = 0..0;
                }
            }
        }
        return;
    }
    let mut row = Vec::new();
    let per_head = queries.chunks(group * d).zip(out.chunks_mut(group * d));
    for (g, (queries, out)) in heads.zip(per_head) {
        for (query, out) in queries.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            let weights = &mut weights[..n];
            let mut max = f32::NEG_INFINITY;
            for (w, j) in weights.iter_mut().zip(keys.clone()) {
                *w = dot(query, E::as_f32(&kv.k[at(j, g)..at(j, g) + d], &mut row)) * scale;
                max = max.max(*w);
            }
            softmax_in_place(weights, max);
            // The output in slices of 16 dimensions, each accumulated over all keys.
            for (c, slice) in out.chunks_mut(LANES).enumerate() {
                let mut acc = [0f32; LANES];
                let width = slice.len();
                for (j, &w) in keys.clone().zip(weights.iter()) {
                    let value = &kv.v[at(j, g) + LANES * c..at(j, g) + LANES * c + width];
                    for (a, &x) in acc.iter_mut().zip(E::as_f32(value, &mut row)) {
                        *a += w * x;
                    }
                }
                slice.copy_from_slice(&acc[..width]);
            }
        }
    }
}

/// Query heads attended together by one call of the SIMD loops.
const MAX_GROUP: usize = 4;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{KvElement, KvView, LANES, MAX_GROUP};
    use crate::vector_math::softmax_in_place;
    use crate::vector_math::x86::sum8;
    use std::arch::x86_64::*;
    use std::ops::Range;

    /// Keys (and values) ahead of the one in use that are prefetched: the cache of a layer
    /// comes from L3 or memory, with a stride the hardware prefetcher follows too slowly.
    const AHEAD: usize = 24;

    /// Where row `j` of KV head `g` starts.
    fn at_of<E>(kv: &KvView<'_, E>, g: usize) -> impl Fn(usize) -> usize {
        let (position_stride, start) = (kv.position_stride, g * kv.head_stride);
        move |j| j * position_stride + start
    }

    /// Prefetches the `bytes` at `at` (never faults, whatever the address).
    #[inline(always)]
    unsafe fn prefetch_row<E>(at: *const E, bytes: usize) {
        for line in (0..bytes).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>((at as *const i8).wrapping_add(line));
        }
    }

    /// [`super::attend`] of `Q` queries per KV head with 256-bit registers, for `head_dim` a
    /// multiple of 16 and key rows checked to be in bounds: each key and value row is loaded
    /// once for all `Q` queries of its head, and the key pass visits each position once for
    /// all heads, prefetching the rows of the KV heads `ahead` (consecutive in a position, so
    /// one run of bytes; all of them for a call over all heads, none for a call whose rows an
    /// earlier one fetched). `weights` has a row of one slot per key for each query, then one
    /// slot per query.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn attend<const Q: usize, E: KvElement>(
        queries: &[f32],
        (kv, heads, keys, ahead): (&KvView<'_, E>, Range<usize>, Range<usize>, Range<usize>),
        scale: f32,
        weights: &mut [f32],
        out: &mut [f32],
    ) {
        let (d, n, rows) = (kv.head_stride, keys.len(), heads.len() * Q);
        debug_assert!(Q <= MAX_GROUP && queries.len() == rows * d);
        debug_assert!(weights.len() >= rows * (n + 1));
        let (weights, max) = weights.split_at_mut(rows * n);
        let max = &mut max[..rows];
        max.fill(f32::NEG_INFINITY);
        let ahead_at = at_of(kv, ahead.start);
        let ahead_bytes = ahead.len() * d * std::mem::size_of::<E>();
        let (q, k, v) = (queries.as_ptr(), kv.k.as_ptr(), kv.v.as_ptr());
        for (i, j) in keys.clone().enumerate() {
            // The values too: their pass is too short to hide the latency of a load.
            prefetch_row(k.wrapping_add(ahead_at(j + AHEAD)), ahead_bytes);
            prefetch_row(v.wrapping_add(ahead_at(j + AHEAD)), ahead_bytes);
            for (h, g) in heads.clone().enumerate() {
                let key = k.add(at_of(kv, g)(j));
                let q = q.add(h * Q * d);
                let mut acc = [[_mm256_setzero_ps(); 2]; Q];
                for c in (0..d).step_by(LANES) {
                    let (k0, k1) = (E::load8(key.add(c)), E::load8(key.add(c + 8)));
                    for (qi, acc) in acc.iter_mut().enumerate() {
                        let query = q.add(qi * d + c);
                        acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(query), k0, acc[0]);
                        acc[1] = _mm256_fmadd_ps(_mm256_loadu_ps(query.add(8)), k1, acc[1]);
                    }
                }
                for (qi, acc) in acc.iter().enumerate() {
                    let s = sum8(_mm256_add_ps(acc[0], acc[1])) * scale;
                    let r = h * Q + qi;
                    *weights.get_unchecked_mut(r * n + i) = s;
                    let max = max.get_unchecked_mut(r);
                    *max = max.max(s);
                }
            }
        }
        for (r, &max) in max.iter().enumerate() {
            softmax_in_place(&mut weights[r * n..(r + 1) * n], max);
        }
        for (h, g) in heads.enumerate() {
            let at = at_of(kv, g);
            let o = out.as_mut_ptr().add(h * Q * d);
            let weights = weights.as_ptr().add(h * Q * n);
            for c in (0..d).step_by(LANES) {
                let mut acc = [[_mm256_setzero_ps(); 2]; Q];
                for (i, j) in keys.clone().enumerate() {
                    let value = v.add(at(j) + c);
                    let (v0, v1) = (E::load8(value), E::load8(value.add(8)));
                    for (qi, acc) in acc.iter_mut().enumerate() {
                        let w = _mm256_set1_ps(*weights.add(qi * n + i));
                        acc[0] = _mm256_fmadd_ps(w, v0, acc[0]);
                        acc[1] = _mm256_fmadd_ps(w, v1, acc[1]);
                    }
                }
                for (qi, acc) in acc.iter().enumerate() {
                    _mm256_storeu_ps(o.add(qi * d + c), acc[0]);
                    _mm256_storeu_ps(o.add(qi * d + c + 8), acc[1]);
                }
            }
        }
    }
}

/// Lanes of the attention loops (two 256-bit registers).
const LANES: usize = 16;

/// `a · b` with sixteen independent accumulators, so the compiler vectorizes it into two
/// independent chains.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        let (x, y): (&[f32; LANES], &[f32; LANES]) = match (x.try_into(), y.try_into()) {
            (Ok(x), Ok(y)) => (x, y),
            _ => unreachable!("chunks_exact yields full chunks"),
        };
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let half: [f32; 8] = std::array::from_fn(|l| acc[l] + acc[l + 8]);
    half.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_noise::noise;

    /// A cache to attend: `heads` KV heads of size `d`, `range` the keys, `group` the
    /// queries per head; keys and values in f32 and as the cache converts them to f16.
    struct Case {
        d: usize,
        heads: usize,
        group: usize,
        range: std::ops::Range<usize>,
        kv: (Vec<f32>, Vec<f32>),
        kv16: (Vec<u16>, Vec<u16>),
    }

    /// Head sizes for the SIMD loops (64, 128) and the portable ones (24), one to four KV
    /// heads, 1 to 6 queries per head (more than the SIMD loops take at once for 6).
    fn cases() -> impl Iterator<Item = Case> {
        let shapes = [(64, 3, 37), (24, 2, 9), (128, 4, 1)];
        shapes.into_iter().flat_map(|(d, heads, keys)| {
            [1, 3, 6].into_iter().map(move |group| {
                let positions = keys + 5;
                let (k, v) = (
                    noise(positions * heads * d, 1),
                    noise(positions * heads * d, 2),
                );
                let half = |x: &[f32]| {
                    let mut h = vec![0u16; x.len()];
                    crate::vector_math::to_f16(x, &mut h);
                    h
                };
                let kv16 = (half(&k), half(&v));
                let range = 3..3 + keys;
                Case {
                    d,
                    heads,
                    group,
                    range,
                    kv: (k, v),
                    kv16,
                }
            })
        })
    }

    /// Attention of the queries of the last KV head (in runs of up to four where the CPU has
    /// the SIMD loops) against a plain f64 computation, query by query, from an f32 cache and
    /// from an f16 cache (against the f64 computation on the f16 values).
    #[test]
    fn attention_matches_f64() {
        for c in cases() {
            let Case { d, heads, .. } = c;
            let queries = noise(c.group * d, 3);
            let (k, v) = (&c.kv.0, &c.kv.1);
            let f32_cache = KvView::new(k, v, heads, d);
            attend_matches_f64(&queries, &f32_cache, (k, v), heads - 1, c.range.clone());
            let back = |h: &[u16]| -> Vec<f32> {
                h.iter()
                    .map(|&b| half::f16::from_bits(b).to_f32())
                    .collect()
            };
            let (k16, v16) = (&c.kv16.0, &c.kv16.1);
            let f16_cache = KvView::new(k16, v16, heads, d);
            let values = (&back(k16)[..], &back(v16)[..]);
            attend_matches_f64(&queries, &f16_cache, values, heads - 1, c.range);
        }
    }

    /// One call over several KV heads (as a task of a whole row makes) gives each head's
    /// queries exactly what a call per head gives, from f32 and f16 caches.
    #[test]
    fn several_heads_equal_one_head_at_a_time() {
        for c in cases() {
            let queries = noise(c.heads * c.group * c.d, 6);
            let (k, v) = (&c.kv.0, &c.kv.1);
            same_by_heads(&queries, &KvView::new(k, v, c.heads, c.d), c.range.clone());
            let (k16, v16) = (&c.kv16.0, &c.kv16.1);
            same_by_heads(&queries, &KvView::new(k16, v16, c.heads, c.d), c.range);
        }
    }

    /// [`attend`] over all of `kv`'s heads in one call and one head at a time: the same bits.
    fn same_by_heads<E: KvElement>(
        queries: &[f32],
        kv: &KvView<'_, E>,
        range: std::ops::Range<usize>,
    ) {
        let (d, heads) = (kv.head_stride, kv.position_stride / kv.head_stride);
        let together = attended(queries, kv, 0..heads, range.clone());
        let per_head = queries.len() / heads;
        for g in 0..heads {
            let queries = &queries[g * per_head..(g + 1) * per_head];
            let alone = attended(queries, kv, g..g + 1, range.clone());
            let same = alone
                .iter()
                .zip(&together[g * per_head..(g + 1) * per_head])
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "head {g} of {heads}, d {d}, {} queries", per_head / d);
        }
    }

    /// [`attend`]'s output for `queries` of the KV heads `heads` (scale 1/8).
    fn attended<E: KvElement>(
        queries: &[f32],
        kv: &KvView<'_, E>,
        heads: std::ops::Range<usize>,
        range: std::ops::Range<usize>,
    ) -> Vec<f32> {
        let mut out = vec![0f32; queries.len()];
        attend(queries, kv, heads, range, 0.125, &mut vec![], &mut out);
        out
    }

    /// [`attend`] of `queries` over `kv` against attention in f64 over the same keys and
    /// values as f32 (`k`, `v`).
    fn attend_matches_f64<E: KvElement>(
        queries: &[f32],
        kv: &KvView<'_, E>,
        (k, v): (&[f32], &[f32]),
        g: usize,
        range: std::ops::Range<usize>,
    ) {
        let d = kv.head_stride;
        let out = attended(queries, kv, g..g + 1, range.clone());
        let at = |j: usize| j * kv.position_stride + g * d;
        for (query, out) in queries.chunks_exact(d).zip(out.chunks_exact(d)) {
            let scores: Vec<f64> = range
                .clone()
                .map(|j| {
                    let s: f64 = (0..d).map(|c| query[c] as f64 * k[at(j) + c] as f64).sum();
                    s * 0.125
                })
                .collect();
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let sum: f64 = e.iter().sum();
            for c in 0..d {
                let expected: f64 = range
                    .clone()
                    .zip(&e)
                    .map(|(j, w)| w / sum * v[at(j) + c] as f64)
                    .sum();
                assert!(
                    (out[c] as f64 - expected).abs() < 1e-5,
                    "d {d}, {} queries, dim {c}: {} vs {expected}",
                    queries.len() / d,
                    out[c]
                );
            }
        }
    }
}
