//! Weight sources: Hugging Face safetensors (single or sharded, memory-mapped) and GGUF files.
//!
//! Architectures ask for weights by their role ([`TensorName`]); each source maps the role to
//! its own naming scheme and checks the shape.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QStorage, QTensor};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};

use crate::error::{ModelError, Result};
use crate::layers::Linear;
use crate::quant::{BlockFormat, QuantMatrix};

/// The role of a weight tensor in a Llama-family decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorName {
    /// Token embedding `[vocab, hidden]`.
    TokenEmbedding,
    /// Final norm `[hidden]`.
    OutputNorm,
    /// LM head `[vocab, hidden]`.
    Output,
    /// Pre-attention norm of a layer.
    AttnNorm(usize),
    /// Query projection.
    AttnQ(usize),
    /// Key projection.
    AttnK(usize),
    /// Value projection.
    AttnV(usize),
    /// Attention output projection.
    AttnOutput(usize),
    /// Pre-MLP norm of a layer.
    FfnNorm(usize),
    /// MLP gate projection.
    FfnGate(usize),
    /// MLP up projection.
    FfnUp(usize),
    /// MLP down projection.
    FfnDown(usize),
    /// MoE router `[experts, hidden]`.
    Router(usize),
    /// Gate projection (`w1`) of expert `e` in layer `l`.
    ExpertGate(usize, usize),
    /// Up projection (`w3`) of an expert.
    ExpertUp(usize, usize),
    /// Down projection (`w2`) of an expert.
    ExpertDown(usize, usize),
}

impl TensorName {
    /// The name in a Hugging Face checkpoint.
    pub fn hf_name(&self) -> String {
        match *self {
            Self::TokenEmbedding => "model.embed_tokens.weight".into(),
            Self::OutputNorm => "model.norm.weight".into(),
            Self::Output => "lm_head.weight".into(),
            Self::AttnNorm(l) => format!("model.layers.{l}.input_layernorm.weight"),
            Self::AttnQ(l) => format!("model.layers.{l}.self_attn.q_proj.weight"),
            Self::AttnK(l) => format!("model.layers.{l}.self_attn.k_proj.weight"),
            Self::AttnV(l) => format!("model.layers.{l}.self_attn.v_proj.weight"),
            Self::AttnOutput(l) => format!("model.layers.{l}.self_attn.o_proj.weight"),
            Self::FfnNorm(l) => format!("model.layers.{l}.post_attention_layernorm.weight"),
            Self::FfnGate(l) => format!("model.layers.{l}.mlp.gate_proj.weight"),
            Self::FfnUp(l) => format!("model.layers.{l}.mlp.up_proj.weight"),
            Self::FfnDown(l) => format!("model.layers.{l}.mlp.down_proj.weight"),
            Self::Router(l) => format!("model.layers.{l}.block_sparse_moe.gate.weight"),
            Self::ExpertGate(l, e) => {
                format!("model.layers.{l}.block_sparse_moe.experts.{e}.w1.weight")
            }
            Self::ExpertUp(l, e) => {
                format!("model.layers.{l}.block_sparse_moe.experts.{e}.w3.weight")
            }
            Self::ExpertDown(l, e) => {
                format!("model.layers.{l}.block_sparse_moe.experts.{e}.w2.weight")
            }
        }
    }

    /// The name in a llama.cpp GGUF file. Experts have two layouts: one tensor per expert
    /// (`blk.L.ffn_gate.E.weight`, older files) or all experts stacked in one 3-D tensor
    /// (`blk.L.ffn_gate_exps.weight`); this returns the per-expert name.
    pub fn gguf_name(&self) -> String {
        match *self {
            Self::TokenEmbedding => "token_embd.weight".into(),
            Self::OutputNorm => "output_norm.weight".into(),
            Self::Output => "output.weight".into(),
            Self::AttnNorm(l) => format!("blk.{l}.attn_norm.weight"),
            Self::AttnQ(l) => format!("blk.{l}.attn_q.weight"),
            Self::AttnK(l) => format!("blk.{l}.attn_k.weight"),
            Self::AttnV(l) => format!("blk.{l}.attn_v.weight"),
            Self::AttnOutput(l) => format!("blk.{l}.attn_output.weight"),
            Self::FfnNorm(l) => format!("blk.{l}.ffn_norm.weight"),
            Self::FfnGate(l) => format!("blk.{l}.ffn_gate.weight"),
            Self::FfnUp(l) => format!("blk.{l}.ffn_up.weight"),
            Self::FfnDown(l) => format!("blk.{l}.ffn_down.weight"),
            Self::Router(l) => format!("blk.{l}.ffn_gate_inp.weight"),
            Self::ExpertGate(l, e) => format!("blk.{l}.ffn_gate.{e}.weight"),
            Self::ExpertUp(l, e) => format!("blk.{l}.ffn_up.{e}.weight"),
            Self::ExpertDown(l, e) => format!("blk.{l}.ffn_down.{e}.weight"),
        }
    }

    /// For experts: the stacked GGUF tensor name and the expert index.
    fn gguf_stacked(&self) -> Option<(String, usize)> {
        match *self {
            Self::ExpertGate(l, e) => Some((format!("blk.{l}.ffn_gate_exps.weight"), e)),
            Self::ExpertUp(l, e) => Some((format!("blk.{l}.ffn_up_exps.weight"), e)),
            Self::ExpertDown(l, e) => Some((format!("blk.{l}.ffn_down_exps.weight"), e)),
            _ => None,
        }
    }
}

/// A place weights are read from.
pub trait WeightSource {
    /// Whether the checkpoint holds this tensor.
    fn contains(&self, name: TensorName) -> bool;
    /// A matrix of shape `[out, in]`, dense in `dtype` or kept quantized.
    fn matrix(&self, name: TensorName, out: usize, inp: usize, dtype: DType) -> Result<Linear>;
    /// A vector of length `len` (norm weights) in `dtype`.
    fn vector(&self, name: TensorName, len: usize, dtype: DType) -> Result<Tensor>;
}

fn check_shape(name: &str, actual: &[usize], expected: &[usize]) -> Result<()> {
    if actual != expected {
        return Err(ModelError::ShapeMismatch {
            name: name.to_string(),
            expected: expected.to_vec(),
            actual: actual.to_vec(),
        });
    }
    Ok(())
}

/// Memory-mapped safetensors files of a Hugging Face model directory.
pub struct SafetensorsSource {
    files: MmapedSafetensors,
    names: BTreeSet<String>,
    device: Device,
}

impl SafetensorsSource {
    /// Maps the weights of a model directory: `model.safetensors`, or the shards listed in
    /// `model.safetensors.index.json`.
    pub fn from_dir(dir: &Path, device: &Device) -> Result<Self> {
        let files = safetensors_files(dir)?;
        Self::from_files(&files, device)
    }

    /// Maps the given safetensors files.
    pub fn from_files(paths: &[PathBuf], device: &Device) -> Result<Self> {
        for p in paths {
            if !p.is_file() {
                return Err(ModelError::MissingFile {
                    path: p.clone(),
                    reason: "weights file listed for the model".into(),
                });
            }
        }
        // SAFETY: the files are mapped read-only; like every mmap-based loader (candle,
        // safetensors) we rely on nobody truncating them while the model is loaded.
        let files = unsafe { MmapedSafetensors::multi(paths)? };
        let names = files.tensors().into_iter().map(|(n, _)| n).collect();
        Ok(Self {
            files,
            names,
            device: device.clone(),
        })
    }

    fn load(&self, name: TensorName, dims: &[usize], dtype: DType) -> Result<Tensor> {
        let key = name.hf_name();
        if !self.names.contains(&key) {
            return Err(ModelError::MissingTensor(key));
        }
        let view = self.files.get(&key)?;
        check_shape(&key, view.shape(), dims)?;
        let tensor = self.files.load(&key, &self.device)?;
        match tensor.dtype() {
            DType::BF16 | DType::F16 | DType::F32 => Ok(tensor.to_dtype(dtype)?),
            other => Err(ModelError::UnsupportedQuantization {
                name: key,
                dtype: format!("{other:?}"),
            }),
        }
    }
}

/// The safetensors files of a model directory.
pub fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|e| ModelError::io(&index, e))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|source| ModelError::Json {
                path: index.clone(),
                source,
            })?;
        let map = value
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| {
                ModelError::InvalidConfig(format!("{} has no weight_map", index.display()))
            })?;
        let shards: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
        if shards.is_empty() {
            return Err(ModelError::InvalidConfig(format!(
                "{} lists no shards",
                index.display()
            )));
        }
        return Ok(shards.into_iter().map(|s| dir.join(s)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    Err(ModelError::MissingFile {
        path: single,
        reason: "a model directory needs model.safetensors or model.safetensors.index.json".into(),
    })
}

impl WeightSource for SafetensorsSource {
    fn contains(&self, name: TensorName) -> bool {
        self.names.contains(&name.hf_name())
    }

    fn matrix(&self, name: TensorName, out: usize, inp: usize, dtype: DType) -> Result<Linear> {
        Ok(Linear::Dense(self.load(name, &[out, inp], dtype)?))
    }

    fn vector(&self, name: TensorName, len: usize, dtype: DType) -> Result<Tensor> {
        self.load(name, &[len], dtype)
    }
}

/// A GGUF file, memory-mapped: parsed metadata and tensor directory; tensors are read from
/// the mapping when asked for (corral's own kernels repack straight from it, without an
/// intermediate copy).
pub struct GgufSource {
    path: PathBuf,
    content: gguf_file::Content,
    mmap: memmap2::Mmap,
    device: Device,
    dequantize: bool,
}

/// The bytes of one matrix in the file (one expert of a stacked expert tensor, or a whole
/// tensor), with its GGUF name, type and `[rows, cols…]` dims.
struct RawTensor<'a> {
    key: String,
    dtype: GgmlDType,
    dims: Vec<usize>,
    bytes: &'a [u8],
}

impl RawTensor<'_> {
    fn to_qtensor(&self, device: &Device) -> Result<QTensor> {
        let storage =
            QStorage::from_data(std::borrow::Cow::Borrowed(self.bytes), device, self.dtype)?;
        Ok(QTensor::new(storage, self.dims.clone())?)
    }
}

impl GgufSource {
    /// Opens and maps a GGUF file and reads its header. With `dequantize`, quantized
    /// matrices are expanded to dense tensors when loaded.
    pub fn open(path: &Path, device: &Device, dequantize: bool) -> Result<Self> {
        let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
        // SAFETY: the mapping is read-only and private to this source; as with every
        // memory-mapped model loader, the file must not be truncated while it is loaded.
        let mmap = unsafe { memmap2::MmapOptions::new().populate().map(&file) }
            .map_err(|e| ModelError::io(path, e))?;
        let content = gguf_file::Content::read(&mut std::io::Cursor::new(&mmap[..]))
            .map_err(|e| ModelError::InvalidConfig(format!("{}: {e}", path.display())))?;
        Ok(Self {
            path: path.to_path_buf(),
            content,
            mmap,
            device: device.clone(),
            dequantize,
        })
    }

    /// The parsed header.
    pub fn content(&self) -> &gguf_file::Content {
        &self.content
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads a tensor by its GGUF name.
    pub fn read_tensor(&self, key: &str) -> Result<QTensor> {
        self.raw_tensor(key)?.to_qtensor(&self.device)
    }

    /// The bytes of the tensor `key`, checked to lie inside the file.
    fn raw_tensor(&self, key: &str) -> Result<RawTensor<'_>> {
        let info = self
            .content
            .tensor_infos
            .get(key)
            .ok_or_else(|| ModelError::MissingTensor(key.to_string()))?;
        check_supported(key, info.ggml_dtype)?;
        let dims = info.shape.dims().to_vec();
        let block = info.ggml_dtype.block_size();
        let elems = info.shape.elem_count();
        let truncated = || {
            ModelError::InvalidConfig(format!(
                "{}: tensor {key} lies outside the file",
                self.path.display()
            ))
        };
        if !elems.is_multiple_of(block) {
            return Err(truncated());
        }
        let size = elems / block * info.ggml_dtype.type_size();
        let start = usize::try_from(self.content.tensor_data_offset + info.offset)
            .map_err(|_| truncated())?;
        let bytes = start
            .checked_add(size)
            .and_then(|end| self.mmap.get(start..end))
            .ok_or_else(truncated)?;
        Ok(RawTensor {
            key: key.to_string(),
            dtype: info.ggml_dtype,
            dims,
            bytes,
        })
    }

    /// The bytes for `name`: its own tensor, or its expert's share of a stacked expert
    /// tensor if the file uses that layout.
    fn raw(&self, name: TensorName) -> Result<RawTensor<'_>> {
        let key = name.gguf_name();
        if self.content.tensor_infos.contains_key(&key) {
            return self.raw_tensor(&key);
        }
        if let Some((stacked, expert)) = name.gguf_stacked() {
            if self.content.tensor_infos.contains_key(&stacked) {
                let all = self.raw_tensor(&stacked)?;
                let [experts, out, inp] = all.dims[..] else {
                    return Err(ModelError::ShapeMismatch {
                        name: stacked,
                        expected: vec![0, 0, 0],
                        actual: all.dims,
                    });
                };
                if expert >= experts {
                    return Err(ModelError::MissingTensor(format!(
                        "{stacked} expert {expert}"
                    )));
                }
                let per_expert = all.bytes.len() / experts;
                return Ok(RawTensor {
                    key: stacked,
                    dtype: all.dtype,
                    dims: vec![out, inp],
                    bytes: &all.bytes[expert * per_expert..(expert + 1) * per_expert],
                });
            }
        }
        Err(ModelError::MissingTensor(key))
    }
}

/// Formats with corral's own CPU kernels (faster than candle's for these types).
fn simd_format(dtype: GgmlDType) -> Option<BlockFormat> {
    match dtype {
        GgmlDType::Q4_0 => Some(BlockFormat::Q4_0),
        GgmlDType::Q4_1 => Some(BlockFormat::Q4_1),
        GgmlDType::Q8_0 => Some(BlockFormat::Q8_0),
        GgmlDType::Q4K => Some(BlockFormat::Q4K),
        _ => None,
    }
}

/// Quantization types whose matmul candle implements on every backend.
fn check_supported(name: &str, dtype: GgmlDType) -> Result<()> {
    match dtype {
        GgmlDType::Q8_1 => Err(ModelError::UnsupportedQuantization {
            name: name.to_string(),
            dtype: format!("{dtype:?}"),
        }),
        _ => Ok(()),
    }
}

impl WeightSource for GgufSource {
    fn contains(&self, name: TensorName) -> bool {
        self.content.tensor_infos.contains_key(&name.gguf_name())
            || name
                .gguf_stacked()
                .is_some_and(|(s, _)| self.content.tensor_infos.contains_key(&s))
    }

    fn matrix(&self, name: TensorName, out: usize, inp: usize, dtype: DType) -> Result<Linear> {
        let raw = self.raw(name)?;
        check_shape(&raw.key, &raw.dims, &[out, inp])?;
        let dense = self.dequantize
            || matches!(raw.dtype, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16);
        if dense {
            let t = raw.to_qtensor(&self.device)?;
            Ok(Linear::Dense(t.dequantize(&self.device)?.to_dtype(dtype)?))
        } else if let (Some(format), true) = (simd_format(raw.dtype), self.device.is_cpu()) {
            let m = QuantMatrix::from_ggml(format, raw.bytes, out, inp)?;
            Ok(Linear::Simd(Arc::new(m)))
        } else {
            Ok(Linear::Quantized(Arc::new(raw.to_qtensor(&self.device)?)))
        }
    }

    fn vector(&self, name: TensorName, len: usize, dtype: DType) -> Result<Tensor> {
        let raw = self.raw(name)?;
        check_shape(&raw.key, &raw.dims, &[len])?;
        let t = raw.to_qtensor(&self.device)?;
        Ok(t.dequantize(&self.device)?.to_dtype(dtype)?)
    }
}
