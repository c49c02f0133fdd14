//! Layers shared by every architecture: linear maps over dense or quantized weights, RMSNorm,
//! rotary embeddings, the per-sequence KV cache, grouped-query attention and the SwiGLU MLP.
//!
//! Activations of one sequence are 2-D `[tokens, features]` tensors; attention reshapes them
//! to heads internally. Weights are reference-counted candle tensors, so a loaded model can serve
//! many sequences without copying them.

use std::sync::{Arc, OnceLock};

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};

use crate::config::{ModelConfig, RopeLayout, RopeScaling};
use crate::error::{ModelError, Result};
use crate::kv_cache::LayerCache;
use crate::quant::{Kernel, QuantMatrix};

/// A weight matrix `[out, in]`, dense (any float dtype) or quantized (GGML block format).
#[derive(Debug, Clone)]
pub enum Linear {
    /// A dense matrix in the model's compute dtype.
    Dense(Tensor),
    /// A quantized matrix, multiplied with candle's quantized kernels.
    Quantized(Arc<QTensor>),
    /// A Q4_0, Q4_1, Q8_0 or Q4_K matrix on the CPU, multiplied with corral's SIMD kernels
    /// ([`crate::quant`]).
    Simd(Arc<QuantMatrix>),
}

/// The quantized-matmul kernel for this CPU, detected once. `CORRAL_KERNEL` names another one
/// this CPU supports ([`Kernel::from_name`]: to measure every path on one machine).
pub(crate) fn simd_kernel() -> Kernel {
    static KERNEL: OnceLock<Kernel> = OnceLock::new();
    *KERNEL.get_or_init(|| {
        std::env::var("CORRAL_KERNEL")
            .ok()
            .and_then(|name| Kernel::from_name(&name))
            .filter(|k| k.is_supported())
            .unwrap_or_else(Kernel::detect)
    })
}

impl Linear {
    /// `x @ wᵀ` for `x` of shape `[tokens, in]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Linear::Dense(w) => Ok(x.matmul(&w.t()?)?),
            Linear::Quantized(q) => {
                let dtype = x.dtype();
                let mm = QMatMul::QTensor(q.clone());
                let y = mm.forward(&x.to_dtype(DType::F32)?)?;
                Ok(y.to_dtype(dtype)?)
            }
            Linear::Simd(_) => {
                let mut ys = Self::forward_many(&[self], x)?;
                ys.pop()
                    .ok_or_else(|| ModelError::InvalidRequest("no output".into()))
            }
        }
    }

    /// Applies several maps to the same input (Q/K/V, gate/up). When all of them use corral's
    /// kernels, the input is quantized once and all rows run in one parallel region.
    pub fn forward_many(maps: &[&Linear], x: &Tensor) -> Result<Vec<Tensor>> {
        let Some(mats) = Self::simd_matrices(maps) else {
            return maps.iter().map(|m| m.forward(x)).collect();
        };
        let (tokens, _) = x.dims2()?;
        let xs = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let ys = QuantMatrix::matmul_many(&mats, &xs, simd_kernel())?;
        ys.into_iter()
            .zip(&mats)
            .map(|(y, m)| {
                let y = Tensor::from_vec(y, (tokens, m.dims().0), x.device())?;
                Ok(y.to_dtype(x.dtype())?)
            })
            .collect()
    }

    /// The matrices when every map uses corral's kernels.
    pub(crate) fn simd_matrices<'a>(maps: &[&'a Linear]) -> Option<Vec<&'a QuantMatrix>> {
        maps.iter()
            .map(|m| match m {
                Linear::Simd(q) => Some(q.as_ref()),
                _ => None,
            })
            .collect()
    }

    /// Rows `ids` of the matrix (used when the matrix is a token embedding), in `dtype`.
    pub fn embedding(&self, ids: &Tensor, dtype: DType) -> Result<Tensor> {
        let rows = match self {
            Linear::Dense(w) => w.index_select(ids, 0)?,
            Linear::Quantized(q) => q.embedding(ids)?,
            Linear::Simd(m) => {
                let list = ids.to_vec1::<u32>()?;
                let rows = m.dequantize_rows(&list)?;
                Tensor::from_vec(rows, (list.len(), m.dims().1), ids.device())?
            }
        };
        Ok(rows.to_dtype(dtype)?)
    }

    /// `[out, in]`.
    pub fn dims(&self) -> (usize, usize) {
        match self {
            Linear::Dense(w) => (w.dims()[0], w.dims()[1]),
            Linear::Quantized(q) => (q.shape().dims()[0], q.shape().dims()[1]),
            Linear::Simd(m) => m.dims(),
        }
    }
}

/// Root-mean-square layer norm: `x * rsqrt(mean(x²) + eps) * w`.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    /// The weight as f32 values when it is f32 on the CPU (for the few-token path).
    weight_f32: Option<Arc<Vec<f32>>>,
    eps: f32,
}

impl RmsNorm {
    /// Wraps a `[hidden]` weight vector.
    pub fn new(weight: Tensor, eps: f64) -> Self {
        let weight_f32 = (weight.dtype() == DType::F32 && weight.device().is_cpu())
            .then(|| weight.to_vec1::<f32>().ok().map(Arc::new))
            .flatten();
        Self {
            weight,
            weight_f32,
            eps: eps as f32,
        }
    }

    /// The weight as f32 values, when it is f32 on the CPU.
    pub(crate) fn weight_f32(&self) -> Option<&[f32]> {
        self.weight_f32.as_deref().map(Vec::as_slice)
    }

    /// The epsilon added to the mean square.
    pub(crate) fn eps(&self) -> f32 {
        self.eps
    }

    /// Normalizes the last dimension of `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(x, &self.weight, self.eps)?)
    }
}

/// Precomputed rotary tables for every position up to the context length.
#[derive(Debug, Clone)]
pub struct RotaryEmbedding {
    inv_freq: Vec<f32>,
    cos: Tensor,
    sin: Tensor,
    /// The f32 tables as plain vectors, `[positions, head_dim/2]`, for the few-token path.
    cos_f32: Arc<Vec<f32>>,
    sin_f32: Arc<Vec<f32>>,
    layout: RopeLayout,
}

impl RotaryEmbedding {
    /// Builds `[max_positions, head_dim/2]` cos/sin tables. Frequencies and angles are computed
    /// in f32 exactly as Hugging Face transformers does.
    pub fn new(config: &ModelConfig, dtype: DType, device: &Device) -> Result<Self> {
        let inv_freq = inverse_frequencies(config);
        let half = inv_freq.len();
        let positions = config.max_position_embeddings;
        let mut cos = Vec::with_capacity(positions * half);
        let mut sin = Vec::with_capacity(positions * half);
        for p in 0..positions {
            for &f in &inv_freq {
                let angle = p as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let (cos_f32, sin_f32) = (Arc::new(cos.clone()), Arc::new(sin.clone()));
        let cos = Tensor::from_vec(cos, (positions, half), device)?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, (positions, half), device)?.to_dtype(dtype)?;
        Ok(Self {
            inv_freq,
            cos,
            sin,
            cos_f32,
            sin_f32,
            layout: config.rope_layout,
        })
    }

    /// The `head_dim/2` inverse frequencies in use (after scaling).
    pub fn inv_freq(&self) -> &[f32] {
        &self.inv_freq
    }

    /// Rotates `x` of shape `[heads, tokens, head_dim]` whose first token is at `position`.
    pub fn apply(&self, x: &Tensor, position: usize) -> Result<Tensor> {
        let (heads, tokens, dim) = x.dims3()?;
        let cos = self.cos.narrow(0, position, tokens)?;
        let sin = self.sin.narrow(0, position, tokens)?;
        let x = x.reshape((1, heads, tokens, dim))?;
        // candle's fused kernels run on the thread pool; for a single token the plain tensor
        // ops are cheaper than waking it.
        use candle_nn::rotary_emb as re;
        let y = match (self.layout, tokens) {
            (RopeLayout::RotateHalf, 1) => re::rope_slow(&x, &cos, &sin)?,
            (RopeLayout::RotateHalf, _) => re::rope(&x, &cos, &sin)?,
            (RopeLayout::Interleaved, 1) => re::rope_i_slow(&x, &cos, &sin)?,
            (RopeLayout::Interleaved, _) => re::rope_i(&x, &cos, &sin)?,
        };
        Ok(y.reshape((heads, tokens, dim))?)
    }
}

impl RotaryEmbedding {
    /// Rotates one head's row (`head_dim` values) of the token at `position` in place: the
    /// same products and sums, rounded the same way, as candle's `rope_slow` / `rope_i_slow`
    /// (each product rounded, then the sum; tested bit-identical).
    pub(crate) fn rotate(&self, row: &mut [f32], position: usize) -> Result<()> {
        let half = row.len() / 2;
        let table = position * half;
        let (Some(cos), Some(sin)) = (
            self.cos_f32.get(table..table + half),
            self.sin_f32.get(table..table + half),
        ) else {
            return Err(ModelError::InvalidRequest(
                "position past the rotary table".into(),
            ));
        };
        match self.layout {
            RopeLayout::RotateHalf => {
                let (lo, hi) = row.split_at_mut(half);
                for i in 0..half {
                    let (a, b) = (lo[i], hi[i]);
                    lo[i] = a * cos[i] + (-b) * sin[i];
                    hi[i] = b * cos[i] + a * sin[i];
                }
            }
            RopeLayout::Interleaved => {
                for i in 0..half {
                    let (a, b) = (row[2 * i], row[2 * i + 1]);
                    row[2 * i] = a * cos[i] - b * sin[i];
                    row[2 * i + 1] = a * sin[i] + b * cos[i];
                }
            }
        }
        Ok(())
    }
}

/// `theta^(-2k/d)` for `k < d/2`, then the configured scaling, all in f32.
pub fn inverse_frequencies(config: &ModelConfig) -> Vec<f32> {
    let d = config.head_dim;
    let base: Vec<f32> = (0..d / 2)
        .map(|k| 1.0 / config.rope_theta.powf((2 * k) as f32 / d as f32))
        .collect();
    match &config.rope_scaling {
        RopeScaling::None => base,
        RopeScaling::Linear { factor } => base.iter().map(|f| f / factor).collect(),
        RopeScaling::Factors(factors) => base.iter().zip(factors).map(|(f, s)| f / s).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => {
            let orig = *original_max_position_embeddings as f32;
            let low_wavelen = orig / low_freq_factor;
            let high_wavelen = orig / high_freq_factor;
            base.iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    if wavelen > low_wavelen {
                        f / factor
                    } else if wavelen < high_wavelen {
                        f
                    } else {
                        let s = (orig / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        (1.0 - s) * f / factor + s * f
                    }
                })
                .collect()
        }
    }
}

/// Additive attention mask for `tokens` new queries at positions `start..start+tokens`, over
/// keys `0..start+tokens`, laid out `[repeat * tokens, keys]` (query heads of one KV group are
/// stacked). Returns `None` when every query may see every key.
pub fn attention_mask(
    start: usize,
    tokens: usize,
    repeat: usize,
    window: Option<usize>,
    device: &Device,
) -> Result<Option<Tensor>> {
    let keys = start + tokens;
    let window_cuts = window.is_some_and(|w| keys > w);
    if tokens == 1 && !window_cuts {
        return Ok(None);
    }
    let mut row_block = Vec::with_capacity(tokens * keys);
    for t in 0..tokens {
        let i = start + t;
        for j in 0..keys {
            let visible = j <= i && window.is_none_or(|w| i - j < w);
            row_block.push(if visible { 0f32 } else { f32::NEG_INFINITY });
        }
    }
    let mut data = Vec::with_capacity(repeat * row_block.len());
    for _ in 0..repeat {
        data.extend_from_slice(&row_block);
    }
    Ok(Some(Tensor::from_vec(
        data,
        (repeat * tokens, keys),
        device,
    )?))
}

/// Grouped-query self-attention with rotary embeddings.
#[derive(Debug, Clone)]
pub struct Attention {
    pub(crate) q: Linear,
    pub(crate) k: Linear,
    pub(crate) v: Linear,
    pub(crate) o: Linear,
    pub(crate) num_heads: usize,
    pub(crate) num_kv_heads: usize,
    pub(crate) head_dim: usize,
    max_positions: usize,
    pub(crate) window: Option<usize>,
    /// Whether a host KV cache this layer allocates holds f16 (else f32).
    pub(crate) kv_f16: bool,
}

impl Attention {
    /// Builds the layer from its four projections.
    pub fn new(q: Linear, k: Linear, v: Linear, o: Linear, config: &ModelConfig) -> Self {
        Self {
            q,
            k,
            v,
            o,
            num_heads: config.num_heads,
            num_kv_heads: config.num_kv_heads,
            head_dim: config.head_dim,
            max_positions: config.max_position_embeddings,
            window: config.sliding_window,
            kv_f16: false,
        }
    }

    /// Attention over sequences stacked in `x` (`lens[i]` new rows each, in order, the first
    /// at position `caches[i].len()`): the projections run once over the whole stack;
    /// attention runs per sequence, against its own cache (`caches[i]`), appending its keys
    /// and values to it, with its own mask (`masks[i]`; `None` where the sequence's mask is
    /// derived when needed).
    pub fn forward_batch(
        &self,
        x: &Tensor,
        rope: &RotaryEmbedding,
        masks: &[Option<Tensor>],
        lens: &[usize],
        caches: &mut [&mut LayerCache],
    ) -> Result<Tensor> {
        let [q, k, v]: [Tensor; 3] = Linear::forward_many(&[&self.q, &self.k, &self.v], x)?
            .try_into()
            .map_err(|_| ModelError::InvalidRequest("q/k/v projection count".into()))?;
        let mut outs = Vec::with_capacity(lens.len());
        let mut offset = 0;
        for ((&n, mask), cache) in lens.iter().zip(masks).zip(caches.iter_mut()) {
            let rows = |t: &Tensor| t.narrow(0, offset, n);
            outs.push(self.attend(
                &rows(&q)?,
                &rows(&k)?,
                &rows(&v)?,
                rope,
                mask.as_ref(),
                cache,
            )?);
            offset += n;
        }
        let out = match outs.len() {
            1 => outs.remove(0),
            _ => Tensor::cat(&outs, 0)?,
        };
        self.o.forward(&out)
    }

    /// Attention of one sequence's projected rows (`[tokens, heads * head_dim]`).
    fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        rope: &RotaryEmbedding,
        mask: Option<&Tensor>,
        cache: &mut LayerCache,
    ) -> Result<Tensor> {
        let (tokens, _) = q.dims2()?;
        let start = cache.len();
        let heads = |t: &Tensor, n: usize| -> Result<Tensor> {
            Ok(t.reshape((tokens, n, self.head_dim))?
                .transpose(0, 1)?
                .contiguous()?)
        };
        let q = heads(q, self.num_heads)?;
        let k = heads(k, self.num_kv_heads)?;
        let v = heads(v, self.num_kv_heads)?;
        let q = rope.apply(&q, start)?;
        let k = rope.apply(&k, start)?;

        let (k, v) = cache.append(&k, &v, self.max_positions)?;
        let keys = k.dims()[1];

        // Attention runs in f32 whatever the compute dtype. The query heads sharing a KV head
        // are stacked along the token axis so that K and V are never repeated.
        let compute_dtype = q.dtype();
        let repeat = self.num_heads / self.num_kv_heads;
        let q =
            q.to_dtype(DType::F32)?
                .reshape((self.num_kv_heads, repeat * tokens, self.head_dim))?;
        let k = k.to_dtype(DType::F32)?;
        let v = v.to_dtype(DType::F32)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?;
        // The caller builds masks only for sequences it expects on this path.
        let derived;
        let mask = match mask {
            Some(m) => Some(m),
            None => {
                derived = attention_mask(start, tokens, repeat, self.window, q.device())?;
                derived.as_ref()
            }
        };
        let scores = match mask {
            Some(m) => scores.broadcast_add(m)?,
            None => scores,
        };
        debug_assert_eq!(scores.dims(), [self.num_kv_heads, repeat * tokens, keys]);
        let probs = softmax_last_dim(&scores)?;
        let out = probs.matmul(&v)?;
        Ok(out
            .reshape((self.num_heads, tokens, self.head_dim))?
            .transpose(0, 1)?
            .reshape((tokens, self.num_heads * self.head_dim))?
            .to_dtype(compute_dtype)?)
    }
}

/// The SwiGLU MLP: `down(silu(gate(x)) * up(x))`.
#[derive(Debug, Clone)]
pub struct Mlp {
    pub(crate) gate: Linear,
    pub(crate) up: Linear,
    pub(crate) down: Linear,
}

impl Mlp {
    /// Builds the MLP from its three projections.
    pub fn new(gate: Linear, up: Linear, down: Linear) -> Self {
        Self { gate, up, down }
    }

    /// Applies the MLP to `[tokens, hidden]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let [gate, up]: [Tensor; 2] = Linear::forward_many(&[&self.gate, &self.up], x)?
            .try_into()
            .map_err(|_| ModelError::InvalidRequest("gate/up projection count".into()))?;
        let gate = candle_nn::ops::silu(&gate)?;
        self.down.forward(&(gate * up)?)
    }
}

/// Softmax over the last dimension. candle's fused kernel runs on the thread pool; for the few
/// rows of a decode step, plain tensor ops are cheaper than waking it.
pub(crate) fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let last = x.dim(candle_core::D::Minus1)?;
    if x.elem_count() / last.max(1) > 32 {
        return Ok(candle_nn::ops::softmax_last_dim(x)?);
    }
    let max = x.max_keepdim(candle_core::D::Minus1)?;
    let e = x.broadcast_sub(&max)?.exp()?;
    let sum = e.sum_keepdim(candle_core::D::Minus1)?;
    Ok(e.broadcast_div(&sum)?)
}

/// `softmax` over the last dimension of an f32 copy of `x`.
pub(crate) fn softmax_f32(x: &Tensor) -> Result<Tensor> {
    softmax_last_dim(&x.to_dtype(DType::F32)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::GgmlDType;

    /// The few-token rotary path gives exactly what candle's `rope_slow` / `rope_i_slow` give.
    #[test]
    fn direct_rope_equals_candle_rope() {
        let dev = Device::Cpu;
        let (positions, half) = (16, 4);
        let angles: Vec<f32> = (0..positions * half)
            .map(|i| (i / half) as f32 * 0.37f32.powi((i % half) as i32))
            .collect();
        let cos: Vec<f32> = angles.iter().map(|a| a.cos()).collect();
        let sin: Vec<f32> = angles.iter().map(|a| a.sin()).collect();
        for layout in [RopeLayout::RotateHalf, RopeLayout::Interleaved] {
            let rope = RotaryEmbedding {
                inv_freq: vec![1.0; half],
                cos: Tensor::from_vec(cos.clone(), (positions, half), &dev).unwrap(),
                sin: Tensor::from_vec(sin.clone(), (positions, half), &dev).unwrap(),
                cos_f32: Arc::new(cos.clone()),
                sin_f32: Arc::new(sin.clone()),
                layout,
            };
            let x = Tensor::randn(0f32, 1.0, (3, 2, 2 * half), &dev).unwrap();
            let mut rows = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for (i, row) in rows.chunks_exact_mut(2 * half).enumerate() {
                rope.rotate(row, 5 + i % 2).unwrap(); // [heads, tokens = 2, dim]
            }
            let c = rope.cos.narrow(0, 5, 2).unwrap();
            let s = rope.sin.narrow(0, 5, 2).unwrap();
            let x4 = x.reshape((1, 3, 2, 2 * half)).unwrap();
            let reference = match layout {
                RopeLayout::RotateHalf => candle_nn::rotary_emb::rope_slow(&x4, &c, &s),
                RopeLayout::Interleaved => candle_nn::rotary_emb::rope_i_slow(&x4, &c, &s),
            }
            .unwrap()
            .reshape((3, 2, 2 * half))
            .unwrap();
            let a = rows;
            let b = reference.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(a, b, "{layout:?}");
        }
    }

    /// Every GGML type goes through the right matmul: the quantized product is close to the
    /// product with the dequantized matrix (K-quants need 256 columns).
    #[test]
    fn quantized_linear_matches_dequantized_weights() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (24, 256), &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 256), &dev).unwrap();
        for dtype in [
            GgmlDType::Q4_0,
            GgmlDType::Q4_1,
            GgmlDType::Q5_0,
            GgmlDType::Q8_0,
            GgmlDType::Q4K,
            GgmlDType::Q5K,
            GgmlDType::Q6K,
        ] {
            let q = QTensor::quantize(&w, dtype).unwrap();
            let dense = Linear::Dense(q.dequantize(&dev).unwrap());
            let expected = dense.forward(&x).unwrap();
            let linear = match dtype {
                GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q8_0 | GgmlDType::Q4K => {
                    let format = match dtype {
                        GgmlDType::Q4_0 => crate::quant::BlockFormat::Q4_0,
                        GgmlDType::Q4_1 => crate::quant::BlockFormat::Q4_1,
                        GgmlDType::Q4K => crate::quant::BlockFormat::Q4K,
                        _ => crate::quant::BlockFormat::Q8_0,
                    };
                    let m = QuantMatrix::from_ggml(format, &q.data().unwrap(), 24, 256).unwrap();
                    Linear::Simd(Arc::new(m))
                }
                _ => Linear::Quantized(Arc::new(q)),
            };
            let got = linear.forward(&x).unwrap();
            let err = (got - &expected)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            // |y| is about 16; 8-bit activations bound the error well below 1.
            assert!(err < 0.5, "{dtype:?}: max error {err}");
        }
    }
}
