//! The CPU f32 forward on plain buffers: when the model runs in f32 on the CPU (the default),
//! each layer runs on `Vec<f32>` activations `[tokens, features]` without candle tensors —
//! its matmuls in corral's kernels, the attention of every row of every sequence in one
//! parallel region (each row against its own sequence's cache, causal and sliding-window
//! masking by key range, so no mask or score matrix is materialized), and plain loops for the
//! rest — the same operations, rounded the same way, as candle's ops (RMSNorm, SiLU, residual
//! adds, rotary embedding). For a decode step a candle op's fixed cost (an allocation, a
//! dispatch, for some ops a thread-pool round trip) outweighs its arithmetic, and a layer
//! would cost about twenty of them; for a prompt, materialized masks and scores cost page
//! faults and copies. Other dtypes and devices take the tensor path (`model.rs`).
//!
//! Results of one sequence do not depend on what else is in the batch: every row is computed
//! by the same operations in the same order whatever the batch (tested).

use candle_core::{DType, Device, Tensor};
use std::cell::RefCell;

use crate::error::{ModelError, Result};
use crate::kv_cache::LayerCache;
use crate::layers::{simd_kernel, Attention, Linear, Mlp, RmsNorm, RotaryEmbedding};
use crate::mixtral::{top_k_renormalized, SparseMoe};
use crate::quant::QuantMatrix;
use crate::team;
use crate::vector_math::{silu_mul, softmax_in_place};

/// The stacked rows of a batch: how many new rows each sequence brings (in stacking order),
/// and the `(sequence, position)` of every row — computed once per forward, read by every
/// layer.
pub(crate) struct Rows<'a> {
    lens: &'a [usize],
    positions: Vec<(usize, usize)>,
}

impl<'a> Rows<'a> {
    /// Rows of sequences whose first new token is at `starts[i]` and that bring `lens[i]`.
    pub(crate) fn new(starts: &[usize], lens: &'a [usize]) -> Self {
        let mut positions = Vec::with_capacity(lens.iter().sum());
        for (i, (&start, &n)) in starts.iter().zip(lens).enumerate() {
            positions.extend((start..start + n).map(|p| (i, p)));
        }
        Self { lens, positions }
    }
}

impl Linear {
    /// `x · Wᵢᵀ` for each map, `x` being `[tokens, in]`: one parallel region when all maps
    /// use corral's kernels, candle's matmul otherwise.
    pub(crate) fn forward_host_many(maps: &[&Linear], x: &[f32]) -> Result<Vec<Vec<f32>>> {
        if let Some(mats) = Linear::simd_matrices(maps) {
            return QuantMatrix::matmul_many(&mats, x, simd_kernel());
        }
        maps.iter()
            .map(|m| {
                let cols = m.dims().1;
                let t = Tensor::from_slice(x, (x.len() / cols.max(1), cols), &Device::Cpu)?;
                Ok(m.forward(&t)?
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?)
            })
            .collect()
    }

    /// [`Linear::forward_host_many`] for one map.
    pub(crate) fn forward_host(&self, x: &[f32]) -> Result<Vec<f32>> {
        Self::forward_host_many(&[self], x)?
            .pop()
            .ok_or_else(|| ModelError::InvalidRequest("no output".into()))
    }

    /// Rows `ids` of the matrix (a token embedding) as f32.
    pub(crate) fn embedding_host(&self, ids: &[u32]) -> Result<Vec<f32>> {
        match self {
            Linear::Simd(m) => m.dequantize_rows(ids),
            _ => {
                let ids = Tensor::new(ids, &Device::Cpu)?;
                Ok(self
                    .embedding(&ids, DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?)
            }
        }
    }
}

impl RmsNorm {
    /// Normalizes each row of `x`, as candle's CPU kernel does: `v / sqrt(Σv²/n + eps) · w`
    /// with the squares summed in order.
    pub(crate) fn forward_host(&self, x: &[f32]) -> Result<Vec<f32>> {
        let w = self
            .weight_f32()
            .ok_or_else(|| ModelError::InvalidRequest("RMSNorm weight not in f32".into()))?;
        let n = w.len();
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks_exact(n) {
            let sum2: f32 = row.iter().map(|&v| v * v).sum();
            let m = (sum2 / n as f32 + self.eps()).sqrt();
            out.extend(row.iter().zip(w).map(|(&v, &a)| v / m * a));
        }
        Ok(out)
    }
}

impl Attention {
    /// Self-attention of the stacked rows `x` (`[tokens, hidden]`, after the norm), each
    /// sequence against its own cache, which receives the new keys and values.
    pub(crate) fn forward_host(
        &self,
        x: &[f32],
        rope: &RotaryEmbedding,
        rows: &Rows<'_>,
        caches: &mut [&mut LayerCache],
    ) -> Result<Vec<f32>> {
        let (heads, kv_heads, d) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let [mut q, mut k, v]: [Vec<f32>; 3] =
            Linear::forward_host_many(&[&self.q, &self.k, &self.v], x)?
                .try_into()
                .map_err(|_| ModelError::InvalidRequest("q/k/v projection count".into()))?;
        let positions = &rows.positions;
        for (r, &(_, p)) in positions.iter().enumerate() {
            for row in q[r * heads * d..(r + 1) * heads * d].chunks_exact_mut(d) {
                rope.rotate(row, p)?;
            }
            for row in k[r * kv_heads * d..(r + 1) * kv_heads * d].chunks_exact_mut(d) {
                rope.rotate(row, p)?;
            }
        }
        let mut first = 0;
        for (cache, &n) in caches.iter_mut().zip(rows.lens) {
            let span = first * kv_heads * d..(first + n) * kv_heads * d;
            cache.append_rows(&k[span.clone()], &v[span], n, kv_heads, d)?;
            first += n;
        }
        let views = caches
            .iter()
            .map(|c| {
                let (k, v) = c.host_rows().ok_or_else(|| {
                    ModelError::InvalidRequest("KV cache is not a host buffer".into())
                })?;
                Ok(KvView {
                    k,
                    v,
                    head_stride: d,
                    position_stride: kv_heads * d,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let repeat = heads / kv_heads;
        let scale = (1.0 / (d as f64).sqrt()) as f32;
        let mut out = vec![0f32; positions.len() * heads * d];
        // One parallel region per layer. The query heads of one KV head read the same keys and
        // values, so with enough rows a task takes them together (each key and value read once
        // for all of them); with few rows (one sequence decoding) a task per query head keeps
        // every thread busy.
        let grouped = positions.len() * kv_heads >= 4 * rayon::current_num_threads();
        let per_task = if grouped { repeat } else { 1 };
        let mut chunks: Vec<&mut [f32]> = out.chunks_mut(per_task * d).collect();
        team::for_each_mut(&mut chunks, |index, out_rows| {
            let first_head = index * per_task;
            let (r, h) = (first_head / heads, first_head % heads);
            let (seq, p) = positions[r];
            let keys = self.window.map_or(0, |w| (p + 1).saturating_sub(w))..p + 1;
            let queries = &q[(r * heads + h) * d..][..per_task * d];
            SCORES.with_borrow_mut(|scores| {
                attend(
                    queries,
                    &views[seq],
                    h / repeat,
                    keys,
                    scale,
                    scores,
                    out_rows,
                )
            });
        });
        self.o.forward_host(&out)
    }
}

thread_local! {
    /// Each thread's scratch space for attention scores (kept between tasks and steps).
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// One sequence's cached keys and values as f32 slices: key `j` of KV head `g` starts at
/// `j · position_stride + g · head_stride` (of `k`, and likewise of `v`).
pub(crate) struct KvView<'a> {
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub head_stride: usize,
    pub position_stride: usize,
}

/// `softmax(q·Kᵀ·scale)·V` of each query of `queries` (`[n, head_dim]`, all of KV head `g`)
/// over keys `keys`, into `out` (`[n, head_dim]`; `weights` is scratch space).
pub(crate) fn attend(
    queries: &[f32],
    kv: &KvView<'_>,
    g: usize,
    keys: std::ops::Range<usize>,
    scale: f32,
    weights: &mut Vec<f32>,
    out: &mut [f32],
) {
    let d = kv.head_stride;
    let at = |j: usize| j * kv.position_stride + g * kv.head_stride;
    let n = keys.len();
    weights.clear();
    weights.resize(n * MAX_GROUP, 0.0);
    // Every key row must lie inside the slices (the SIMD loops read them unchecked).
    let in_bounds = keys.is_empty() || (at(keys.end - 1) + d <= kv.k.len().min(kv.v.len()));
    assert!(in_bounds, "attention keys past the cache");
    assert!(queries.len() == out.len() && queries.len().is_multiple_of(d.max(1)));
    for (queries, out) in queries
        .chunks(MAX_GROUP * d)
        .zip(out.chunks_mut(MAX_GROUP * d))
    {
        #[cfg(target_arch = "x86_64")]
        if d.is_multiple_of(LANES) && crate::vector_math::avx2_fma() {
            // SAFETY: the CPU has AVX2 and FMA; every row read is in bounds (checked above);
            // `weights` holds `MAX_GROUP` rows of `n`.
            unsafe {
                match queries.len() / d {
                    1 => x86::attend::<1>(queries, kv, g, keys.clone(), scale, weights, out),
                    2 => x86::attend::<2>(queries, kv, g, keys.clone(), scale, weights, out),
                    3 => x86::attend::<3>(queries, kv, g, keys.clone(), scale, weights, out),
                    _ => x86::attend::<4>(queries, kv, g, keys.clone(), scale, weights, out),
                }
            }
            continue;
        }
        for (query, out) in queries.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
            let weights = &mut weights[..n];
            let mut max = f32::NEG_INFINITY;
            for (w, j) in weights.iter_mut().zip(keys.clone()) {
                *w = dot(query, &kv.k[at(j)..at(j) + d]) * scale;
                max = max.max(*w);
            }
            softmax_in_place(weights, max);
            // The output in slices of 16 dimensions, each accumulated over all keys.
            for (c, slice) in out.chunks_mut(LANES).enumerate() {
                let mut acc = [0f32; LANES];
                let width = slice.len();
                for (j, &w) in keys.clone().zip(weights.iter()) {
                    let value = &kv.v[at(j) + LANES * c..at(j) + LANES * c + width];
                    for (a, &x) in acc.iter_mut().zip(value) {
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
    use super::{KvView, LANES, MAX_GROUP};
    use crate::vector_math::softmax_in_place;
    use crate::vector_math::x86::sum8;
    use std::arch::x86_64::*;

    /// Keys (and values) ahead of the one in use that are prefetched: the cache of a layer
    /// comes from L3 or memory, with a stride the hardware prefetcher follows too slowly.
    const AHEAD: usize = 24;

    /// Prefetches the `d` floats at `at` (never faults, whatever the address).
    #[inline(always)]
    unsafe fn prefetch_row(at: *const f32, d: usize) {
        for line in (0..d).step_by(16) {
            _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(line) as *const i8);
        }
    }

    /// [`super::attend`] of `Q` queries with 256-bit registers, for `head_dim` a multiple of
    /// 16 and key rows checked to be in bounds: each key and value row is loaded once for all
    /// `Q` queries. `weights` has `MAX_GROUP` rows of one slot per key.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn attend<const Q: usize>(
        queries: &[f32],
        kv: &KvView<'_>,
        g: usize,
        keys: std::ops::Range<usize>,
        scale: f32,
        weights: &mut [f32],
        out: &mut [f32],
    ) {
        debug_assert!(Q <= MAX_GROUP && queries.len() == Q * kv.head_stride);
        let d = kv.head_stride;
        let n = keys.len();
        let at = |j: usize| j * kv.position_stride + g * kv.head_stride;
        let (q, k, v) = (queries.as_ptr(), kv.k.as_ptr(), kv.v.as_ptr());
        let mut max = [f32::NEG_INFINITY; Q];
        for (i, j) in keys.clone().enumerate() {
            let key = k.add(at(j));
            prefetch_row(k.wrapping_add(at(j + AHEAD)), d);
            let mut acc = [[_mm256_setzero_ps(); 2]; Q];
            for c in (0..d).step_by(LANES) {
                let (k0, k1) = (_mm256_loadu_ps(key.add(c)), _mm256_loadu_ps(key.add(c + 8)));
                for (qi, acc) in acc.iter_mut().enumerate() {
                    let query = q.add(qi * d + c);
                    acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(query), k0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(_mm256_loadu_ps(query.add(8)), k1, acc[1]);
                }
            }
            for qi in 0..Q {
                let s = sum8(_mm256_add_ps(acc[qi][0], acc[qi][1])) * scale;
                *weights.get_unchecked_mut(qi * n + i) = s;
                max[qi] = max[qi].max(s);
            }
        }
        for (qi, &max) in max.iter().enumerate() {
            softmax_in_place(&mut weights[qi * n..(qi + 1) * n], max);
        }
        let o = out.as_mut_ptr();
        for c in (0..d).step_by(LANES) {
            let mut acc = [[_mm256_setzero_ps(); 2]; Q];
            for (i, j) in keys.clone().enumerate() {
                let value = v.add(at(j) + c);
                if c == 0 {
                    prefetch_row(v.wrapping_add(at(j + AHEAD)), d);
                }
                let (v0, v1) = (_mm256_loadu_ps(value), _mm256_loadu_ps(value.add(8)));
                for (qi, acc) in acc.iter_mut().enumerate() {
                    let w = _mm256_set1_ps(*weights.get_unchecked(qi * n + i));
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

/// Lanes of the attention loops (two 256-bit registers).
const LANES: usize = 16;

/// `a · b` with sixteen independent accumulators, so the compiler vectorizes it into two
/// independent chains.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
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

impl Mlp {
    /// `down(silu(gate(x)) · up(x))` of `[tokens, hidden]` (SiLU with the vector `exp` of
    /// [`crate::vector_math`]).
    pub(crate) fn forward_host(&self, x: &[f32]) -> Result<Vec<f32>> {
        let [gate, up]: [Vec<f32>; 2] = Linear::forward_host_many(&[&self.gate, &self.up], x)?
            .try_into()
            .map_err(|_| ModelError::InvalidRequest("gate/up projection count".into()))?;
        self.down.forward_host(&silu_mul(&gate, &up))
    }
}

impl SparseMoe {
    /// The mixture of experts on `[tokens, hidden]`: each token through its top experts,
    /// weighted, every expert once over all of its tokens.
    pub(crate) fn forward_host(&self, x: &[f32]) -> Result<Vec<f32>> {
        let hidden = self.router.dims().1;
        let tokens = x.len() / hidden.max(1);
        let logits = self.router.forward_host(x)?;
        let experts = self.experts.len();
        let mut per_expert: Vec<(Vec<usize>, Vec<f32>)> = vec![(vec![], vec![]); experts];
        for (t, row) in logits.chunks_exact(experts).enumerate() {
            for (e, w) in top_k_renormalized(&softmax(row), self.top_k) {
                per_expert[e].0.push(t);
                per_expert[e].1.push(w);
            }
        }
        let mut out = vec![0f32; tokens * hidden];
        for (expert, (chosen, weights)) in self.experts.iter().zip(per_expert) {
            if chosen.is_empty() {
                continue;
            }
            let input: Vec<f32> = chosen
                .iter()
                .flat_map(|&t| x[t * hidden..(t + 1) * hidden].iter().copied())
                .collect();
            let y = expert.forward_host(&input)?;
            for ((&t, &w), row) in chosen.iter().zip(&weights).zip(y.chunks_exact(hidden)) {
                for (o, &v) in out[t * hidden..(t + 1) * hidden].iter_mut().zip(row) {
                    *o += v * w;
                }
            }
        }
        Ok(out)
    }
}

/// Softmax of one row (max subtracted first).
fn softmax(row: &[f32]) -> Vec<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = row.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    e.iter().map(|&v| v / sum).collect()
}

/// `x += y`, elementwise.
pub(crate) fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_noise::noise;

    /// Attention of groups of 1 to 6 queries of one KV head (SIMD where the CPU has it, in
    /// groups of up to four, and the portable loops for a head size that is not a multiple of
    /// 16) against a plain f64 computation, query by query.
    #[test]
    fn attention_matches_f64() {
        for (d, heads, keys) in [(64, 3, 37), (24, 2, 9), (128, 1, 1)] {
            for group in [1, 3, 6] {
                let positions = keys + 5;
                let k = noise(positions * heads * d, 1);
                let v = noise(positions * heads * d, 2);
                let kv = KvView {
                    k: &k,
                    v: &v,
                    head_stride: d,
                    position_stride: heads * d,
                };
                let queries = noise(group * d, 3);
                let (g, range) = (heads - 1, 3..3 + keys);
                let scale = 0.125f32;
                let mut out = vec![0f32; group * d];
                attend(
                    &queries,
                    &kv,
                    g,
                    range.clone(),
                    scale,
                    &mut vec![],
                    &mut out,
                );
                let at = |j: usize| j * heads * d + g * d;
                for (query, out) in queries.chunks_exact(d).zip(out.chunks_exact(d)) {
                    let scores: Vec<f64> = range
                        .clone()
                        .map(|j| {
                            let s: f64 =
                                (0..d).map(|c| query[c] as f64 * k[at(j) + c] as f64).sum();
                            s * scale as f64
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
                            "d {d}, group {group}, dim {c}: {} vs {expected}",
                            out[c]
                        );
                    }
                }
            }
        }
    }
}
