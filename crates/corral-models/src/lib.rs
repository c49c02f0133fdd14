//! Model backends of corral: Llama, Mistral and Mixtral decoders on candle, loaded from Hugging
//! Face model directories (safetensors) or llama.cpp GGUF files (quantized weights stay
//! quantized).
//!
//! ```no_run
//! use corral_models::{load, LanguageModel, LoadOptions, LogitsRequest};
//!
//! let model = load("models/SmolLM2-135M-Instruct.Q4_1.gguf".as_ref(), &LoadOptions::default())?;
//! let mut seq = model.new_sequence();
//! let logits = model.forward(&mut seq, &[504, 3575, 282, 4649, 314], LogitsRequest::Last)?;
//! let next = logits.argmax(0);
//! # Ok::<(), corral_models::ModelError>(())
//! ```
//!
//! The architectures share their layers ([`layers`]); each file adds what is specific to it:
//! [`llama`], [`mistral`] (sliding window), [`mixtral`] (sparse experts).

mod attention;
pub mod config;
pub mod error;
pub mod gguf;
mod host;
#[cfg(feature = "hub")]
pub mod hub;
pub mod kv_cache;
pub mod layers;
pub mod llama;
pub mod mistral;
pub mod mixtral;
pub mod model;
pub mod quant;
mod team;
pub mod tokenizer;
mod vector_math;
pub mod weights;

use std::path::Path;

pub use config::{Architecture, ModelConfig, RopeLayout, RopeScaling};
pub use error::{ModelError, Result};
pub use kv_cache::KvCacheDtype;
pub use model::{LanguageModel, LoadOptions, Logits, LogitsRequest, Model, Sequence};

/// Loads a Hugging Face model directory (`config.json` + safetensors).
pub fn load_hf_dir(dir: &Path, options: &LoadOptions) -> Result<Model> {
    if !dir.is_dir() {
        return Err(ModelError::MissingFile {
            path: dir.to_path_buf(),
            reason: "expected a model directory".into(),
        });
    }
    let config = ModelConfig::from_hf_config_file(&dir.join("config.json"))?;
    let source = weights::SafetensorsSource::from_dir(dir, &options.device)?;
    Model::from_source(config, &source, options)
}

/// Loads a model from a local path: a Hugging Face directory or a `.gguf` file.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Model> {
    if path.is_dir() {
        load_hf_dir(path, options)
    } else if path.is_file() {
        gguf::GgufModel::open(path, options)?.into_model()
    } else {
        Err(ModelError::MissingFile {
            path: path.to_path_buf(),
            reason: "expected a model directory or a .gguf file".into(),
        })
    }
}

/// Deterministic pseudo-random test data.
#[cfg(test)]
pub(crate) mod test_noise {
    /// `n` values in [-1, 1) (xorshift).
    pub(crate) fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }
}
