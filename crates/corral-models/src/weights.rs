//! Weight sources: Hugging Face safetensors (single or sharded, memory-mapped) and GGUF files.
//!
//! Architectures ask for weights by their role ([`TensorName`]); each source maps the role to
//! its own naming scheme and checks the shape.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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

/// A GGUF file: parsed metadata and tensor directory, tensors read on demand.
pub struct GgufSource {
    path: PathBuf,
    content: gguf_file::Content,
    reader: Mutex<BufReader<File>>,
    /// The last stacked expert tensor read (`*_exps`), so that its experts are sliced out of
    /// one read instead of one read each.
    stacked: Mutex<Option<(String, Arc<QTensor>)>>,
    device: Device,
    dequantize: bool,
}

impl GgufSource {
    /// Opens a GGUF file and reads its header. With `dequantize`, quantized matrices are
    /// expanded to dense tensors when loaded.
    pub fn open(path: &Path, device: &Device, dequantize: bool) -> Result<Self> {
        let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
        let mut reader = BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader)
            .map_err(|e| ModelError::InvalidConfig(format!("{}: {e}", path.display())))?;
        Ok(Self {
            path: path.to_path_buf(),
            content,
            reader: Mutex::new(reader),
            stacked: Mutex::new(None),
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
        let info = self
            .content
            .tensor_infos
            .get(key)
            .ok_or_else(|| ModelError::MissingTensor(key.to_string()))?;
        check_supported(key, info.ggml_dtype)?;
        let mut reader = self
            .reader
            .lock()
            .map_err(|_| ModelError::InvalidRequest("GGUF reader lock poisoned".into()))?;
        Ok(info.read(&mut *reader, self.content.tensor_data_offset, &self.device)?)
    }

    /// Reads the tensor for `name`, slicing one expert out of a stacked expert tensor if the
    /// file uses that layout.
    fn qtensor(&self, name: TensorName) -> Result<(String, QTensor)> {
        let key = name.gguf_name();
        if self.content.tensor_infos.contains_key(&key) {
            let t = self.read_tensor(&key)?;
            return Ok((key, t));
        }
        if let Some((stacked, expert)) = name.gguf_stacked() {
            if self.content.tensor_infos.contains_key(&stacked) {
                let mut cache = self
                    .stacked
                    .lock()
                    .map_err(|_| ModelError::InvalidRequest("GGUF cache lock poisoned".into()))?;
                let all = match cache.as_ref() {
                    Some((name, t)) if *name == stacked => t.clone(),
                    _ => {
                        let t = Arc::new(self.read_tensor(&stacked)?);
                        *cache = Some((stacked.clone(), t.clone()));
                        t
                    }
                };
                let t = expert_slice(&stacked, &all, expert, &self.device)?;
                return Ok((stacked, t));
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

/// Expert `e` of a stacked `[experts, out, in]` quantized tensor, as its own `[out, in]` tensor.
fn expert_slice(name: &str, all: &QTensor, e: usize, device: &Device) -> Result<QTensor> {
    let dims = all.shape().dims().to_vec();
    let [experts, out, inp] = dims[..] else {
        return Err(ModelError::ShapeMismatch {
            name: name.to_string(),
            expected: vec![0, 0, 0],
            actual: dims,
        });
    };
    if e >= experts {
        return Err(ModelError::MissingTensor(format!("{name} expert {e}")));
    }
    let data = all.data()?;
    let per_expert = data.len() / experts;
    let bytes = &data[e * per_expert..(e + 1) * per_expert];
    let storage = QStorage::from_data(std::borrow::Cow::Borrowed(bytes), device, all.dtype())?;
    Ok(QTensor::new(storage, (out, inp))?)
}

impl WeightSource for GgufSource {
    fn contains(&self, name: TensorName) -> bool {
        self.content.tensor_infos.contains_key(&name.gguf_name())
            || name
                .gguf_stacked()
                .is_some_and(|(s, _)| self.content.tensor_infos.contains_key(&s))
    }

    fn matrix(&self, name: TensorName, out: usize, inp: usize, dtype: DType) -> Result<Linear> {
        let (key, t) = self.qtensor(name)?;
        check_shape(&key, t.shape().dims(), &[out, inp])?;
        let dense = self.dequantize
            || matches!(t.dtype(), GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16);
        if dense {
            Ok(Linear::Dense(t.dequantize(&self.device)?.to_dtype(dtype)?))
        } else if let (Some(format), true) = (simd_format(t.dtype()), self.device.is_cpu()) {
            let m = QuantMatrix::from_ggml(format, &t.data()?, out, inp)?;
            Ok(Linear::Simd(Arc::new(m)))
        } else {
            Ok(Linear::Quantized(Arc::new(t)))
        }
    }

    fn vector(&self, name: TensorName, len: usize, dtype: DType) -> Result<Tensor> {
        let (key, t) = self.qtensor(name)?;
        check_shape(&key, t.shape().dims(), &[len])?;
        Ok(t.dequantize(&self.device)?.to_dtype(dtype)?)
    }
}
