//! The model interface used by the sampler ([`LanguageModel`], [`Sequence`], [`Logits`]) and the
//! decoder shared by the three architectures ([`Model`]).

use std::sync::atomic::{AtomicU64, Ordering};

use candle_core::{DType, Device, Tensor};

use crate::config::{Architecture, ModelConfig};
use crate::error::{ModelError, Result};
use crate::host::{add_in_place, Rows};
use crate::kv_cache::{KvCacheDtype, LayerCache};
use crate::layers::{attention_mask, Attention, Linear, Mlp, RmsNorm, RotaryEmbedding};
use crate::mixtral::SparseMoe;
use crate::quant::Activations;
use crate::team;
use crate::weights::{TensorName, WeightSource};
use crate::{llama, mistral, mixtral};

/// Which positions' logits a forward call returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsRequest {
    /// Only the last fed position (what sampling needs).
    Last,
    /// Every fed position (scoring, teacher forcing, speculative checks).
    All,
}

/// f32 logits of one or more consecutive positions.
#[derive(Debug, Clone, PartialEq)]
pub struct Logits {
    data: Vec<f32>,
    vocab_size: usize,
    first_position: usize,
}

impl Logits {
    /// Number of positions held.
    pub fn rows(&self) -> usize {
        self.data.len() / self.vocab_size
    }

    /// Vocabulary size (length of each row).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Absolute position of the first row in its sequence.
    pub fn first_position(&self) -> usize {
        self.first_position
    }

    /// The logits of row `i` (`None` when out of range).
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        self.data
            .get(i * self.vocab_size..(i + 1) * self.vocab_size)
    }

    /// The logits of the last row.
    pub fn last(&self) -> &[f32] {
        &self.data[self.data.len() - self.vocab_size..]
    }

    /// The last row, by value (no copy when only the last row was requested).
    pub fn into_last_row(mut self) -> Vec<f32> {
        let start = self.data.len() - self.vocab_size;
        self.data.drain(..start);
        self.data
    }

    /// All rows, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Index of the largest logit of row `i` (first one on ties; NaNs are passed over).
    /// The maximum over 16 lanes, which the compiler vectorizes, then its first position:
    /// with a 49k-token vocabulary, a scan comparing against the best so far took about 1.5%
    /// of a batched decode step, serial between two forward passes.
    pub fn argmax(&self, i: usize) -> Option<u32> {
        let row = self.row(i)?;
        let mut lanes = [f32::NEG_INFINITY; 16];
        let chunks = row.chunks_exact(16);
        let tail = chunks
            .remainder()
            .iter()
            .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        for chunk in chunks {
            for (m, &x) in lanes.iter_mut().zip(chunk) {
                *m = if x > *m { x } else { *m };
            }
        }
        let max = lanes.iter().fold(tail, |m, &x| m.max(x));
        Some(row.iter().position(|&x| x == max).unwrap_or(0) as u32)
    }
}

/// The per-sequence state of a model: its KV caches and length. Created by
/// [`LanguageModel::new_sequence`]; usable only with the model that created it.
#[derive(Debug)]
pub struct Sequence {
    model_id: u64,
    layers: Vec<LayerCache>,
    len: usize,
}

impl Sequence {
    /// Number of tokens fed so far (the position of the next token).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every token; the cache memory is kept for reuse.
    pub fn reset(&mut self) {
        self.truncate_unchecked(0);
    }

    /// Forgets every token after the first `len`, e.g. to roll back a fast-forward or to reuse a
    /// shared prompt prefix. Fails if the sequence is shorter than `len`.
    pub fn truncate(&mut self, len: usize) -> Result<()> {
        if len > self.len {
            return Err(ModelError::InvalidRequest(format!(
                "cannot truncate a sequence of {} tokens to {len}",
                self.len
            )));
        }
        self.truncate_unchecked(len);
        Ok(())
    }

    fn truncate_unchecked(&mut self, len: usize) {
        for layer in &mut self.layers {
            layer.truncate(len);
        }
        self.len = len;
    }

    /// An independent copy (its own cache buffers), e.g. to branch several continuations off a
    /// shared prompt without recomputing it.
    pub fn fork(&self) -> Result<Sequence> {
        let layers = self
            .layers
            .iter()
            .map(LayerCache::deep_clone)
            .collect::<Result<_>>()?;
        Ok(Sequence {
            model_id: self.model_id,
            layers,
            len: self.len,
        })
    }
}

/// A causal language model that the sampler drives token by token.
///
/// Weights live in the model and are shared; all per-request state is in [`Sequence`], so one
/// model serves any number of sequences (`&self` everywhere, `Send + Sync`).
pub trait LanguageModel: Send + Sync {
    /// The model's configuration.
    fn config(&self) -> &ModelConfig;

    /// A fresh, empty sequence.
    fn new_sequence(&self) -> Sequence;

    /// Feeds `tokens` (one or many) at the end of `seq` and returns the requested logits.
    /// On error the sequence is left as it was before the call.
    fn forward(&self, seq: &mut Sequence, tokens: &[u32], request: LogitsRequest)
        -> Result<Logits>;

    /// Feeds several sequences (each at most once). The default runs them one after the
    /// other; [`Model`] stacks the new tokens of all sequences into one `[sum tokens, hidden]`
    /// activation so every projection is a single matmul, and only attention runs per
    /// sequence (each against its own cache, with its own mask).
    fn forward_batch(
        &self,
        batch: &mut [(&mut Sequence, &[u32])],
        request: LogitsRequest,
    ) -> Result<Vec<Logits>> {
        batch
            .iter_mut()
            .map(|(seq, tokens)| self.forward(seq, tokens, request))
            .collect()
    }

    /// Vocabulary size (length of a logits row).
    fn vocab_size(&self) -> usize {
        self.config().vocab_size
    }
}

/// Device and compute dtype used when loading a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Where the weights and activations live (CPU by default).
    pub device: Device,
    /// Dtype of dense weights and activations (f32 by default). Attention softmax is always
    /// computed in f32; quantized GGUF weights stay quantized whatever this says.
    pub dtype: DType,
    /// Dequantize quantized GGUF weights to `dtype` at load time instead of running quantized
    /// matmuls (slower and larger, but numerically the reference computation).
    pub dequantize: bool,
    /// How the CPU path caches keys and values (by default f16 for quantized weights, f32
    /// for dense ones).
    pub kv_cache: KvCacheDtype,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            dtype: DType::F32,
            dequantize: false,
            kv_cache: KvCacheDtype::Auto,
        }
    }
}

/// The feed-forward block of a decoder layer.
#[derive(Debug, Clone)]
pub(crate) enum FeedForward {
    /// A dense SwiGLU MLP (Llama, Mistral).
    Dense(Mlp),
    /// A sparse mixture of SwiGLU experts (Mixtral).
    Sparse(SparseMoe),
}

impl FeedForward {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            FeedForward::Dense(mlp) => mlp.forward(x),
            FeedForward::Sparse(moe) => moe.forward(x),
        }
    }

    fn forward_host(&self, x: Activations<'_>) -> Result<Vec<f32>> {
        match self {
            FeedForward::Dense(mlp) => mlp.forward_host(x),
            FeedForward::Sparse(moe) => moe.forward_host(&x.materialize(moe.router.dims().1)),
        }
    }
}

/// One pre-norm decoder layer.
#[derive(Debug, Clone)]
struct DecoderLayer {
    attn_norm: RmsNorm,
    attn: Attention,
    ffn_norm: RmsNorm,
    ffn: FeedForward,
}

impl DecoderLayer {
    /// `x` stacks the new tokens of several sequences (`lens[i]` rows each): everything but
    /// attention runs once over the stack.
    fn forward(
        &self,
        x: &Tensor,
        rope: &RotaryEmbedding,
        masks: &[Option<Tensor>],
        lens: &[usize],
        caches: &mut [&mut LayerCache],
    ) -> Result<Tensor> {
        let h = self
            .attn
            .forward_batch(&self.attn_norm.forward(x)?, rope, masks, lens, caches)?;
        let x = (x + h)?;
        let h = self.ffn.forward(&self.ffn_norm.forward(&x)?)?;
        Ok((x + h)?)
    }

    /// Every matrix of the layer.
    fn matrices(&self) -> Vec<&Linear> {
        let a = &self.attn;
        let mut all = vec![&a.q, &a.k, &a.v, &a.o];
        let mlps = match &self.ffn {
            FeedForward::Dense(mlp) => std::slice::from_ref(mlp),
            FeedForward::Sparse(moe) => {
                all.push(&moe.router);
                moe.experts.as_slice()
            }
        };
        all.extend(mlps.iter().flat_map(|m| [&m.gate, &m.up, &m.down]));
        all
    }

    /// [`DecoderLayer::forward`] on plain f32 rows (see [`crate::host`]), in place.
    fn forward_host(
        &self,
        x: &mut [f32],
        rope: &RotaryEmbedding,
        rows: &Rows<'_>,
        caches: &mut [&mut LayerCache],
    ) -> Result<()> {
        // Each norm's rows are produced by the projections that take them (quantized in the
        // same tasks).
        let attended = self
            .attn_norm
            .with_rows(x, |h| self.attn.forward_host(h, rope, rows, caches))?;
        add_in_place(x, &attended);
        let fed = self.ffn_norm.with_rows(x, |h| self.ffn.forward_host(h))?;
        add_in_place(x, &fed);
        Ok(())
    }
}

/// Every sequence's cache of layer `l`.
fn layer_caches<'a>(batch: &'a mut [(&mut Sequence, &[u32])], l: usize) -> Vec<&'a mut LayerCache> {
    batch
        .iter_mut()
        .map(|(seq, _)| &mut seq.layers[l])
        .collect()
}

static NEXT_MODEL_ID: AtomicU64 = AtomicU64::new(1);

/// A loaded Llama, Mistral or Mixtral model.
#[derive(Debug)]
pub struct Model {
    id: u64,
    config: ModelConfig,
    embed: Linear,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    lm_head: Linear,
    rope: RotaryEmbedding,
    device: Device,
    dtype: DType,
    /// Every matrix runs in corral's kernels, so the host path's parallel regions are all
    /// [`team::for_each_task`]s and a forward pass may hold the pool as a spinning team.
    all_simd: bool,
}

impl Model {
    /// Builds a model from a validated configuration and a weight source.
    pub fn from_source(
        config: ModelConfig,
        source: &dyn WeightSource,
        options: &LoadOptions,
    ) -> Result<Self> {
        config.validate()?;
        match config.architecture {
            Architecture::Llama => llama::check_config(&config)?,
            Architecture::Mistral => mistral::check_config(&config)?,
            Architecture::Mixtral => mixtral::check_config(&config)?,
        }
        let c = &config;
        let dtype = options.dtype;
        let (hidden, vocab) = (c.hidden_size, c.vocab_size);
        let embed = source.matrix(TensorName::TokenEmbedding, vocab, hidden, dtype)?;
        let lm_head = if c.tie_word_embeddings || !source.contains(TensorName::Output) {
            embed.clone()
        } else {
            source.matrix(TensorName::Output, vocab, hidden, dtype)?
        };
        let q_dim = c.num_heads * c.head_dim;
        let kv_dim = c.num_kv_heads * c.head_dim;
        let mut layers = Vec::with_capacity(c.num_layers);
        for l in 0..c.num_layers {
            let attn = Attention::new(
                source.matrix(TensorName::AttnQ(l), q_dim, hidden, dtype)?,
                source.matrix(TensorName::AttnK(l), kv_dim, hidden, dtype)?,
                source.matrix(TensorName::AttnV(l), kv_dim, hidden, dtype)?,
                source.matrix(TensorName::AttnOutput(l), hidden, q_dim, dtype)?,
                c,
            );
            let ffn = match c.architecture {
                Architecture::Llama => llama::feed_forward(source, l, c, dtype)?,
                Architecture::Mistral => mistral::feed_forward(source, l, c, dtype)?,
                Architecture::Mixtral => mixtral::feed_forward(source, l, c, dtype)?,
            };
            let norm = |name| -> Result<RmsNorm> {
                Ok(RmsNorm::new(
                    source.vector(name, hidden, dtype)?,
                    c.rms_norm_eps,
                ))
            };
            layers.push(DecoderLayer {
                attn_norm: norm(TensorName::AttnNorm(l))?,
                attn,
                ffn_norm: norm(TensorName::FfnNorm(l))?,
                ffn,
            });
        }
        let norm = RmsNorm::new(
            source.vector(TensorName::OutputNorm, hidden, dtype)?,
            c.rms_norm_eps,
        );
        let rope = RotaryEmbedding::new(c, dtype, &options.device)?;
        let matrices = || {
            [&embed, &lm_head]
                .into_iter()
                .chain(layers.iter().flat_map(DecoderLayer::matrices))
        };
        let all_simd = matrices().all(|m| matches!(m, Linear::Simd(_)));
        let kv_f16 = match options.kv_cache {
            KvCacheDtype::Auto => matrices().any(|m| !matches!(m, Linear::Dense(_))),
            KvCacheDtype::F32 => false,
            KvCacheDtype::F16 => true,
        };
        for layer in &mut layers {
            layer.attn.kv_f16 = kv_f16;
        }
        Ok(Self {
            all_simd,
            id: NEXT_MODEL_ID.fetch_add(1, Ordering::Relaxed),
            embed,
            layers,
            norm,
            lm_head,
            rope,
            device: options.device.clone(),
            dtype,
            config,
        })
    }

    /// The rotary inverse frequencies in use (after any scaling).
    pub fn rope_inv_freq(&self) -> &[f32] {
        self.rope.inv_freq()
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The compute dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// One forward pass over the new tokens of every sequence of `batch`, stacked into one
    /// `[sum tokens, hidden]` activation: each projection is one matmul over all of them, and
    /// only attention runs per sequence.
    ///
    /// `starts[i]`, `lens[i]`: sequence `i`'s length before the pass and its number of new
    /// tokens.
    fn run(
        &self,
        batch: &mut [(&mut Sequence, &[u32])],
        (starts, lens): (&[usize], &[usize]),
        request: LogitsRequest,
        host: bool,
    ) -> Result<Vec<f32>> {
        let ids: Vec<u32> = batch.iter().flat_map(|(_, t)| t.iter().copied()).collect();
        if host {
            self.run_host(batch, &ids, starts, lens, request)
        } else {
            self.run_tensors(batch, &ids, starts, lens, request)
        }
    }

    /// The logits of a [`Model::run`] of `batch`, split per sequence, and the sequences'
    /// lengths advanced past the tokens they were fed.
    fn split_logits(
        &self,
        batch: &mut [(&mut Sequence, &[u32])],
        (starts, lens): (&[usize], &[usize]),
        mut data: Vec<f32>,
        request: LogitsRequest,
    ) -> Vec<Logits> {
        let vocab_size = self.config.vocab_size;
        let mut out = Vec::with_capacity(batch.len());
        // Split the rows per sequence, from the back so that each split is a truncation.
        for (i, (seq, _)) in batch.iter_mut().enumerate().rev() {
            let (count, first_position) = match request {
                LogitsRequest::All => (lens[i], starts[i]),
                LogitsRequest::Last => (1, starts[i] + lens[i] - 1),
            };
            let rest = data.split_off(data.len() - count * vocab_size);
            seq.len = starts[i] + lens[i];
            out.push(Logits {
                data: rest,
                vocab_size,
                first_position,
            });
        }
        out.reverse();
        out
    }

    /// Bytes of KV cache one position of a sequence holds (keys and values of every layer):
    /// f16 or f32 elements on the CPU f32 path ([`LoadOptions::kv_cache`]), the compute
    /// dtype's elsewhere.
    pub fn kv_bytes_per_position(&self) -> usize {
        let element = match self.host_capable() {
            true if self.layers.first().is_some_and(|l| l.attn.kv_f16) => 2,
            _ => self.dtype.size_in_bytes(),
        };
        let c = &self.config;
        c.num_layers * 2 * c.num_kv_heads * c.head_dim * element
    }

    /// Whether the model computes in f32 on the CPU (where the plain-buffer path applies).
    fn host_capable(&self) -> bool {
        self.device.is_cpu() && self.dtype == DType::F32
    }

    /// Whether `batch` takes the plain-buffer path ([`crate::host`]).
    fn runs_on_host(&self, batch: &[(&mut Sequence, &[u32])]) -> bool {
        self.host_capable()
            && batch
                .iter()
                .all(|(seq, _)| seq.layers.iter().all(LayerCache::is_host))
    }

    /// The general path: candle tensors `[sum tokens, hidden]`.
    fn run_tensors(
        &self,
        batch: &mut [(&mut Sequence, &[u32])],
        ids: &[u32],
        starts: &[usize],
        lens: &[usize],
        request: LogitsRequest,
    ) -> Result<Vec<f32>> {
        let ids = Tensor::new(ids, &self.device)?;
        let mut x = self.embed.embedding(&ids, self.dtype)?;
        let repeat = self.config.num_heads / self.config.num_kv_heads;
        // Built once for all layers.
        let masks = starts
            .iter()
            .zip(lens)
            .map(|(&start, &n)| {
                attention_mask(start, n, repeat, self.config.sliding_window, &self.device)
            })
            .collect::<Result<Vec<_>>>()?;
        for (l, layer) in self.layers.iter().enumerate() {
            let mut caches = layer_caches(batch, l);
            x = layer.forward(&x, &self.rope, &masks, lens, &mut caches)?;
        }
        // The rows whose logits are wanted, and where each sequence's start.
        let mut rows = Vec::new();
        let mut offset = 0u32;
        for &n in lens {
            let n = n as u32;
            match request {
                LogitsRequest::All => rows.extend(offset..offset + n),
                LogitsRequest::Last => rows.push(offset + n - 1),
            }
            offset += n;
        }
        let x = if rows.len() == lens.iter().sum::<usize>() {
            x
        } else {
            x.index_select(&Tensor::new(rows.as_slice(), &self.device)?, 0)?
        };
        let logits = self.lm_head.forward(&self.norm.forward(&x)?)?;
        Ok(logits
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    }

    /// The few-token path on plain f32 rows ([`crate::host`]).
    fn run_host(
        &self,
        batch: &mut [(&mut Sequence, &[u32])],
        ids: &[u32],
        starts: &[usize],
        lens: &[usize],
        request: LogitsRequest,
    ) -> Result<Vec<f32>> {
        let mut x = self.embed.embedding_host(ids)?;
        let rows = Rows::new(starts, lens);
        for (l, layer) in self.layers.iter().enumerate() {
            let mut caches = layer_caches(batch, l);
            layer.forward_host(&mut x, &self.rope, &rows, &mut caches)?;
        }
        let hidden = self.config.hidden_size;
        if request == LogitsRequest::Last {
            // Keep each sequence's last row.
            let mut last = 0;
            let mut kept = Vec::with_capacity(lens.len() * hidden);
            for &n in lens {
                last += n;
                kept.extend_from_slice(&x[(last - 1) * hidden..last * hidden]);
            }
            x = kept;
        }
        self.norm.with_rows(&x, |h| self.lm_head.forward_host(h))
    }

    /// Checks one sequence's request before anything runs.
    fn check(&self, seq: &Sequence, tokens: &[u32]) -> Result<()> {
        if seq.model_id != self.id {
            return Err(ModelError::SequenceMismatch(format!(
                "sequence of model #{}, used with model #{}",
                seq.model_id, self.id
            )));
        }
        if tokens.is_empty() {
            return Err(ModelError::InvalidRequest("no tokens to feed".into()));
        }
        let vocab_size = self.config.vocab_size;
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= vocab_size) {
            return Err(ModelError::TokenOutOfRange { id, vocab_size });
        }
        let requested = seq.len + tokens.len();
        if requested > self.config.max_position_embeddings {
            return Err(ModelError::ContextOverflow {
                requested,
                max: self.config.max_position_embeddings,
            });
        }
        Ok(())
    }
}

impl LanguageModel for Model {
    fn config(&self) -> &ModelConfig {
        &self.config
    }

    fn new_sequence(&self) -> Sequence {
        Sequence {
            model_id: self.id,
            layers: (0..self.config.num_layers)
                .map(|_| LayerCache::new())
                .collect(),
            len: 0,
        }
    }

    fn forward(
        &self,
        seq: &mut Sequence,
        tokens: &[u32],
        request: LogitsRequest,
    ) -> Result<Logits> {
        let mut logits = self.forward_batch(&mut [(seq, tokens)], request)?;
        logits
            .pop()
            .ok_or_else(|| ModelError::InvalidRequest("no logits".into()))
    }

    fn forward_batch(
        &self,
        batch: &mut [(&mut Sequence, &[u32])],
        request: LogitsRequest,
    ) -> Result<Vec<Logits>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        for (seq, tokens) in batch.iter() {
            self.check(seq, tokens)?;
        }
        let starts: Vec<usize> = batch.iter().map(|(seq, _)| seq.len).collect();
        let lens: Vec<usize> = batch.iter().map(|(_, tokens)| tokens.len()).collect();
        let shape = (&starts[..], &lens[..]);
        // Run the whole step on a worker of the thread pool: the parallel kernels inside then
        // share work with the other workers directly instead of handing every operation over
        // from this thread (two context switches per operation). When every region is corral's
        // own, the other workers spin as a team for the whole step (no wake-ups per region).
        let host = self.runs_on_host(batch);
        let result = if self.all_simd && host {
            team::with_team(|| self.run(batch, shape, request, host))
        } else {
            rayon::scope(|_| self.run(batch, shape, request, host))
        };
        match result {
            // Split after the team has left (the copies are the caller's thread's alone).
            Ok(data) => Ok(self.split_logits(batch, shape, data, request)),
            Err(e) => {
                // Some layers may have appended to their caches before the failure.
                for ((seq, _), start) in batch.iter_mut().zip(starts) {
                    seq.truncate_unchecked(start);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Logits;

    /// The greedy pick: the first of equal maxima, NaNs passed over, a maximum in the tail past
    /// the last whole 16 lanes, and one row of several.
    #[test]
    fn argmax_takes_the_first_largest_logit() {
        let logits = |rows: Vec<Vec<f32>>| Logits {
            vocab_size: rows[0].len(),
            data: rows.concat(),
            first_position: 0,
        };
        let mut row = vec![0f32; 37];
        row[20] = 3.0;
        row[30] = 3.0;
        row[5] = f32::NAN;
        assert_eq!(logits(vec![row.clone()]).argmax(0), Some(20));
        row[36] = 4.0;
        assert_eq!(logits(vec![row.clone()]).argmax(0), Some(36));
        let all = logits(vec![vec![1.0; 37], row, vec![f32::NEG_INFINITY; 37]]);
        assert_eq!(all.argmax(0), Some(0));
        assert_eq!(all.argmax(1), Some(36));
        assert_eq!(all.argmax(2), Some(0));
        assert_eq!(all.argmax(3), None);
    }
}
