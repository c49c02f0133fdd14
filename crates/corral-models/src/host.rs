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
use std::ops::Range;
use std::sync::Mutex;

use crate::attention::{attend, KvElement, KvView};
use crate::error::{ModelError, Result};
use crate::kv_cache::{HostSlice, LayerCache};
use crate::layers::{simd_kernel, Attention, Linear, Mlp, RmsNorm, RotaryEmbedding};
use crate::mixtral::{top_k_renormalized, SparseMoe};
use crate::quant::{Activations, QuantMatrix};
use crate::team;
use crate::vector_math::silu_mul;

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
    /// `x · Wᵢᵀ` for each map, `x` being `[tokens, in]` rows: one parallel region when all
    /// maps use corral's kernels (rows that a step produces are produced and quantized in one
    /// more), candle's matmul otherwise.
    pub(crate) fn forward_host_many(maps: &[&Linear], x: Activations<'_>) -> Result<Vec<Vec<f32>>> {
        if let Some(mats) = Linear::simd_matrices(maps) {
            return QuantMatrix::matmul_many_of(&mats, x, simd_kernel());
        }
        let Some(cols) = maps.first().map(|m| m.dims().1) else {
            return Ok(vec![]);
        };
        let x = x.materialize(cols);
        maps.iter()
            .map(|m| {
                let t = Tensor::from_slice(&x, (x.len() / cols.max(1), cols), &Device::Cpu)?;
                Ok(m.forward(&t)?
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?)
            })
            .collect()
    }

    /// [`Linear::forward_host_many`] for one map.
    pub(crate) fn forward_host(&self, x: Activations<'_>) -> Result<Vec<f32>> {
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
    /// Calls `then` with the normalized rows of `x` as activations that a matmul produces
    /// where it quantizes them.
    pub(crate) fn with_rows<R>(
        &self,
        x: &[f32],
        then: impl FnOnce(Activations<'_>) -> Result<R>,
    ) -> Result<R> {
        let w = self.weight()?;
        let n = w.len().max(1);
        let produce = |rows: Range<usize>, out: &mut [f32]| {
            self.normalize(&x[rows.start * n..rows.end * n], w, out)
        };
        then(Activations::Produced {
            rows: x.len() / n,
            produce: &produce,
        })
    }

    /// The norm's weight as f32 values.
    fn weight(&self) -> Result<&[f32]> {
        self.weight_f32()
            .ok_or_else(|| ModelError::InvalidRequest("RMSNorm weight not in f32".into()))
    }

    /// Normalizes the rows of `x` into `out`, on this thread, as candle's CPU kernel does:
    /// `v / sqrt(Σv²/n + eps) · w` with the squares summed in order.
    fn normalize(&self, x: &[f32], w: &[f32], out: &mut [f32]) {
        let n = w.len().max(1);
        // Up to eight rows at once: each row's squares are still summed in order (one chain of
        // dependent adds per row), but the rows' chains run side by side instead of one
        // after the other.
        for (rows, out) in x.chunks(8 * n).zip(out.chunks_mut(8 * n)) {
            let mut sum2 = [0f32; 8];
            let count = rows.len() / n;
            for i in 0..n {
                for (r, sum2) in sum2.iter_mut().enumerate().take(count) {
                    let v = rows[r * n + i];
                    *sum2 += v * v;
                }
            }
            for ((row, out), sum2) in rows.chunks_exact(n).zip(out.chunks_exact_mut(n)).zip(sum2) {
                let m = (sum2 / n as f32 + self.eps()).sqrt();
                for ((o, &v), &a) in out.iter_mut().zip(row).zip(w) {
                    *o = v / m * a;
                }
            }
        }
    }
}

impl Attention {
    /// Self-attention of the stacked rows `x` (`[tokens, hidden]`, after the norm), each
    /// sequence against its own cache, which receives the new keys and values.
    pub(crate) fn forward_host(
        &self,
        x: Activations<'_>,
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
        let threads = rayon::current_num_threads();
        // Enough rows for every thread: a row is a task, which rotates its own queries and
        // whose result is produced where the output projection quantizes it (one parallel
        // region for both). Decoding — one new row per sequence — the task also appends its
        // row's keys and values to its sequence's cache: on one thread, with the others
        // waiting, those writes to lines not touched for long cost about 1% of a step.
        let row_tasks = team::row_runs(positions.len()).1;
        let appends_in_tasks = row_tasks && rows.lens.iter().all(|&n| n == 1);
        for (r, &(_, p)) in positions.iter().enumerate() {
            if !row_tasks {
                for row in q[r * heads * d..(r + 1) * heads * d].chunks_exact_mut(d) {
                    rope.rotate(row, p)?;
                }
            }
            for row in k[r * kv_heads * d..(r + 1) * kv_heads * d].chunks_exact_mut(d) {
                rope.rotate(row, p)?;
            }
        }
        let geometry = (kv_heads, d);
        if !appends_in_tasks {
            let mut first = 0;
            for (cache, &n) in caches.iter_mut().zip(rows.lens) {
                let span = first * kv_heads * d..(first + n) * kv_heads * d;
                cache.append_rows(&k[span.clone()], &v[span], n, geometry, self.kv_f16)?;
                first += n;
            }
        }
        let repeat = heads / kv_heads;
        let scale = (1.0 / (d as f64).sqrt()) as f32;
        // Query heads `first_head..` (as many as `out` holds) of a row at position `p`, from
        // its sequence's cache `kv`, into `out`: the query heads of one KV head read the same
        // keys and values, so a call takes them together (each key and value read once for
        // all of them), and a call over all heads of a row makes one pass over the cache's
        // positions (`[position, kv head, dim]`, so one stream in order instead of a strided
        // one per head).
        let attend_heads =
            |kv: &HostKv<'_>, p: usize, first_head: usize, queries: &[f32], out: &mut [f32]| {
                let count = out.len() / d;
                let keys = self.window.map_or(0, |w| (p + 1).saturating_sub(w))..p + 1;
                // The KV heads of those query heads.
                let kv_range = first_head / repeat..(first_head + count).div_ceil(repeat);
                fn run<E: KvElement>(
                    queries: &[f32],
                    kv: &KvView<'_, E>,
                    (heads, keys, scale): (Range<usize>, Range<usize>, f32),
                    out: &mut [f32],
                ) {
                    SCORES.with_borrow_mut(|scores| {
                        attend(queries, kv, heads, keys, scale, scores, out)
                    });
                }
                let job = (kv_range, keys, scale);
                match kv {
                    HostKv::F32(kv) => run(queries, kv, job, out),
                    HostKv::F16(kv) => run(queries, kv, job, out),
                }
            };
        debug_assert_eq!(caches.len(), rows.lens.len());
        let sequence_caches = match appends_in_tasks {
            // Row `r` is sequence `r`'s only new row: its task alone touches that cache.
            true => {
                SequenceCaches::Appending(caches.iter_mut().map(|c| Mutex::new(&mut **c)).collect())
            }
            false => SequenceCaches::Appended(
                caches
                    .iter()
                    .map(|c| host_kv(c, geometry))
                    .collect::<Result<_>>()?,
            ),
        };
        if row_tasks {
            let width = heads * d;
            let failure: Mutex<Option<ModelError>> = Mutex::new(None);
            // Rows `span` into `out`: each row's queries rotated, its keys and values
            // appended (when the task appends), then attended over all heads.
            let produce = |span: Range<usize>, out: &mut [f32]| {
                QUERIES.with_borrow_mut(|queries| {
                    for (r, out) in span.zip(out.chunks_exact_mut(width)) {
                        let (seq, p) = positions[r];
                        queries.clear();
                        queries.extend_from_slice(&q[r * width..(r + 1) * width]);
                        for row in queries.chunks_exact_mut(d) {
                            // Cannot fail: the row's keys were rotated at the same position.
                            let rotated = rope.rotate(row, p);
                            debug_assert!(rotated.is_ok());
                        }
                        let attended = match &sequence_caches {
                            SequenceCaches::Appended(views) => {
                                attend_heads(&views[seq], p, 0, queries, out);
                                Ok(())
                            }
                            SequenceCaches::Appending(slots) => slots[seq]
                                .lock()
                                .map_err(|_| {
                                    ModelError::InvalidRequest("KV cache lock poisoned".into())
                                })
                                .and_then(|mut cache| {
                                    let row_kv = r * kv_heads * d..(r + 1) * kv_heads * d;
                                    let (k, v) = (&k[row_kv.clone()], &v[row_kv]);
                                    cache.append_rows(k, v, 1, geometry, self.kv_f16)?;
                                    attend_heads(&host_kv(&cache, geometry)?, p, 0, queries, out);
                                    Ok(())
                                }),
                        };
                        if let Err(e) = attended {
                            out.fill(0.0);
                            if let Ok(mut first) = failure.lock() {
                                first.get_or_insert(e);
                            }
                        }
                    }
                })
            };
            let out = self.o.forward_host(Activations::Produced {
                rows: positions.len(),
                produce: &produce,
            })?;
            return match failure.into_inner().ok().flatten() {
                Some(e) => Err(e),
                None => Ok(out),
            };
        }
        let SequenceCaches::Appended(views) = &sequence_caches else {
            return Err(ModelError::InvalidRequest(
                "KV rows appended in tasks without row tasks".into(),
            ));
        };
        // Few rows (one sequence decoding): a task per query head, or per KV head's query
        // heads, keeps every thread busy.
        let per_task = if positions.len() * kv_heads >= 4 * threads {
            repeat
        } else {
            1
        };
        let mut out = vec![0f32; positions.len() * heads * d];
        let mut chunks: Vec<&mut [f32]> = out.chunks_mut(per_task * d).collect();
        team::for_each_mut(&mut chunks, |index, out| {
            let first_head = index * per_task;
            let (r, h) = (first_head / heads, first_head % heads);
            let (seq, p) = positions[r];
            let queries = &q[first_head * d..][..out.len()];
            attend_heads(&views[seq], p, h, queries, out);
        });
        self.o.forward_host(Activations::Given(&out))
    }
}

/// Each sequence's cache of one layer during attention.
enum SequenceCaches<'a> {
    /// With the new rows, read in place.
    Appended(Vec<HostKv<'a>>),
    /// To receive its one new row from the task of that row.
    Appending(Vec<Mutex<&'a mut LayerCache>>),
}

/// The host cache `[positions, kv heads, head dim]` of one sequence's layer, by element type.
fn host_kv(cache: &LayerCache, (kv_heads, d): (usize, usize)) -> Result<HostKv<'_>> {
    match cache.host_rows() {
        Some((HostSlice::F32(k), HostSlice::F32(v))) => {
            Ok(HostKv::F32(KvView::new(k, v, kv_heads, d)))
        }
        Some((HostSlice::F16(k), HostSlice::F16(v))) => {
            Ok(HostKv::F16(KvView::new(k, v, kv_heads, d)))
        }
        _ => Err(ModelError::InvalidRequest(
            "KV cache is not a host buffer of one element type".into(),
        )),
    }
}

/// One sequence's host cache of one layer, by element type.
enum HostKv<'a> {
    F32(KvView<'a, f32>),
    F16(KvView<'a, u16>),
}

thread_local! {
    /// Each thread's scratch space for attention scores (kept between tasks and steps).
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// Each thread's scratch space for a row's rotated queries.
    static QUERIES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl Mlp {
    /// `down(silu(gate(x)) · up(x))` of `[tokens, hidden]` rows (SiLU with the vector `exp`
    /// of [`crate::vector_math`]; its rows produced where `down` quantizes them).
    pub(crate) fn forward_host(&self, x: Activations<'_>) -> Result<Vec<f32>> {
        let [gate, up]: [Vec<f32>; 2] = Linear::forward_host_many(&[&self.gate, &self.up], x)?
            .try_into()
            .map_err(|_| ModelError::InvalidRequest("gate/up projection count".into()))?;
        let width = self.gate.dims().0.max(1);
        let produce = |rows: Range<usize>, out: &mut [f32]| {
            let span = rows.start * width..rows.end * width;
            silu_mul(&gate[span.clone()], &up[span], out)
        };
        self.down.forward_host(Activations::Produced {
            rows: gate.len() / width,
            produce: &produce,
        })
    }
}

impl SparseMoe {
    /// The mixture of experts on `[tokens, hidden]`: each token through its top experts,
    /// weighted, every expert once over all of its tokens.
    pub(crate) fn forward_host(&self, x: &[f32]) -> Result<Vec<f32>> {
        let hidden = self.router.dims().1;
        let tokens = x.len() / hidden.max(1);
        let logits = self.router.forward_host(Activations::Given(x))?;
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
            let y = expert.forward_host(Activations::Given(&input))?;
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
