//! [`Model`]: a loaded model with its tokenizer, chat template and end-of-sequence set.
use std::path::Path;

use corral_index::Vocabulary;
use corral_models::gguf::GgufModel;
use corral_models::{LanguageModel, LoadOptions};
use serde_json::Value;
use tokenizers::Tokenizer;

use crate::cache::IndexCache;
use crate::chat::{BuiltinTemplate, ChatTemplate, Message};
use crate::error::{Error, Result};

/// End-of-turn tokens that chat templates write after an assistant message.
const END_OF_TURN: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "</s>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
];

/// A model ready for generation: the backend (Llama, Mistral or Mixtral), its tokenizer,
/// its chat template, the set of end-of-sequence tokens, and a cache of compiled
/// constraints. `Send + Sync`: share it between threads (`Arc<Model>`).
pub struct Model {
    backend: corral_models::Model,
    tokenizer: Tokenizer,
    vocab: Vocabulary,
    template: ChatTemplate,
    name: String,
    pub(crate) cache: IndexCache,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("config", self.backend.config())
            .field("eos", &self.vocab.eos_tokens())
            .finish()
    }
}

fn files_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::ModelFiles {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// A special-token field of `tokenizer_config.json`: a string or `{"content": …}`.
fn token_field(config: &Value, key: &str) -> Option<String> {
    match config.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// `chat_template`: a string, or a list of `{name, template}` (the `default` one is used).
fn template_field(config: &Value) -> Option<String> {
    match config.get("chat_template")? {
        Value::String(s) => Some(s.clone()),
        Value::Array(list) => list
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
            .or_else(|| list.first())
            .and_then(|t| t.get("template")?.as_str().map(str::to_string)),
        _ => None,
    }
}

fn read_json(path: &Path) -> Result<Option<Value>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| files_error(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| files_error(path, e))
}

/// The parts of a model that are not weights.
struct Parts {
    tokenizer: Tokenizer,
    template: Option<String>,
    bos_token: Option<String>,
    eos_token: Option<String>,
    eos_ids: Vec<u32>,
}

/// Tokenizer, template and EOS ids of a Hugging Face folder.
fn hf_parts(dir: &Path) -> Result<Parts> {
    let tokenizer_path = dir.join("tokenizer.json");
    let tokenizer =
        Tokenizer::from_file(&tokenizer_path).map_err(|e| files_error(&tokenizer_path, e))?;
    let config = read_json(&dir.join("tokenizer_config.json"))?.unwrap_or(Value::Null);
    let mut eos_ids = Vec::new();
    if let Some(gen) = read_json(&dir.join("generation_config.json"))? {
        match gen.get("eos_token_id") {
            Some(Value::Number(n)) => eos_ids.extend(n.as_u64().map(|n| n as u32)),
            Some(Value::Array(list)) => {
                eos_ids.extend(list.iter().filter_map(Value::as_u64).map(|n| n as u32))
            }
            _ => {}
        }
    }
    Ok(Parts {
        tokenizer,
        template: template_field(&config),
        bos_token: token_field(&config, "bos_token"),
        eos_token: token_field(&config, "eos_token"),
        eos_ids,
    })
}

impl Model {
    /// Load a model from a Hugging Face directory (`config.json`, safetensors,
    /// `tokenizer.json`, `tokenizer_config.json`, `generation_config.json`) or a `.gguf`
    /// file (tokenizer and chat template from its metadata), on the CPU in f32.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        Model::load_with(path, &LoadOptions::default())
    }

    /// [`Model::load`] with explicit device / dtype / dequantization options.
    pub fn load_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Model> {
        let path = path.as_ref();
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".to_string());
        let (backend, parts) = if path.is_dir() {
            (corral_models::load_hf_dir(path, options)?, hf_parts(path)?)
        } else if path.is_file() {
            let file = GgufModel::open(path, options)?;
            let tokenizer = file.tokenizer()?;
            let template = file.chat_template()?;
            let backend = file.into_model()?;
            let id_text = |id: Option<u32>| id.and_then(|id| tokenizer.id_to_token(id));
            let parts = Parts {
                template,
                bos_token: id_text(backend.config().bos_token_id),
                eos_token: id_text(backend.config().eos_token_ids.first().copied()),
                eos_ids: Vec::new(),
                tokenizer,
            };
            (backend, parts)
        } else {
            return Err(files_error(
                path,
                "expected a model directory or a .gguf file",
            ));
        };
        Model::assemble(name, backend, parts)
    }

    /// Load the weights from `path` (as [`Model::load`]) with the tokenizer, chat template
    /// and generation config of the Hugging Face folder `tokenizer_dir` (e.g. a GGUF file
    /// whose metadata lacks a chat template, or a model folder without tokenizer files).
    pub fn load_with_tokenizer(
        path: impl AsRef<Path>,
        tokenizer_dir: impl AsRef<Path>,
        options: &LoadOptions,
    ) -> Result<Model> {
        let path = path.as_ref();
        let backend = corral_models::load(path, options)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".to_string());
        Model::assemble(name, backend, hf_parts(tokenizer_dir.as_ref())?)
    }

    /// Load by Hugging Face repo id (downloads into the local cache).
    #[cfg(feature = "hub")]
    pub fn from_hub(repo_id: &str, revision: Option<&str>) -> Result<Model> {
        let repo = corral_models::hub::HubModel::new(repo_id, revision)?;
        let dir = repo.fetch_hf_dir()?;
        repo.file("tokenizer.json")?;
        // Optional in some repositories: without them the built-in template and the
        // config's EOS ids are used.
        let _ = repo.file("tokenizer_config.json");
        let _ = repo.file("generation_config.json");
        let mut model = Model::load(&dir)?;
        model.name = repo_id.to_string();
        Ok(model)
    }

    fn assemble(name: String, backend: corral_models::Model, parts: Parts) -> Result<Model> {
        let Parts {
            tokenizer,
            template,
            bos_token,
            eos_token,
            eos_ids,
        } = parts;
        let named = Vocabulary::from_tokenizer(&tokenizer)?;
        let has = |t: &str| tokenizer.token_to_id(t).is_some();
        let arch = backend.config().architecture;
        let template = match template {
            Some(source) => ChatTemplate::new(
                &source,
                bos_token.clone().unwrap_or_default(),
                eos_token.clone().unwrap_or_default(),
            )?,
            None => {
                let which = if has("<|eot_id|>") {
                    BuiltinTemplate::Llama3
                } else if has("<|im_start|>") {
                    BuiltinTemplate::ChatMl
                } else if matches!(
                    arch,
                    corral_models::Architecture::Mistral | corral_models::Architecture::Mixtral
                ) {
                    BuiltinTemplate::MistralInstruct
                } else {
                    BuiltinTemplate::Llama2Chat
                };
                ChatTemplate::builtin(
                    which,
                    bos_token.as_deref().unwrap_or("<s>"),
                    eos_token.as_deref().unwrap_or(which.end_of_turn()),
                )
            }
        };
        // Every way the model may say "done": the tokenizer's EOS names, the config and
        // generation config, the template's `eos_token`, and the end-of-turn token the
        // template writes.
        let mut eos: Vec<u32> = named.eos_tokens().to_vec();
        eos.extend(&backend.config().eos_token_ids);
        eos.extend(eos_ids);
        eos.extend(eos_token.as_deref().and_then(|t| tokenizer.token_to_id(t)));
        for t in END_OF_TURN {
            if template.source().contains(t) {
                eos.extend(tokenizer.token_to_id(t));
            }
        }
        eos.retain(|&id| (id as usize) < named.len());
        eos.sort_unstable();
        eos.dedup();
        let vocab = named.with_eos(eos)?;
        Ok(Model {
            backend,
            tokenizer,
            vocab,
            template,
            name,
            cache: IndexCache::default(),
        })
    }

    /// The name (file stem, directory name or repo id).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The backend.
    pub fn backend(&self) -> &corral_models::Model {
        &self.backend
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The vocabulary as bytes, with the full end-of-sequence set.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocab
    }

    /// The chat template.
    pub fn chat_template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Number of compiled constraints in the cache.
    pub fn cached_constraints(&self) -> usize {
        self.cache.len()
    }

    /// Memory held by the compiled-constraint cache (automata and computed masks).
    pub fn constraint_cache_bytes(&self) -> usize {
        self.cache.memory_bytes()
    }

    /// Render `messages` with the chat template, ready for the assistant's answer.
    pub fn render(&self, messages: &[Message]) -> Result<String> {
        self.template.render(messages, true)
    }

    /// Token ids of `text`. Special-token strings in it (`<|im_start|>`) become special
    /// tokens; none are added (chat templates write their own BOS, as in Hugging Face's
    /// `apply_chat_template`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// The prompt ids of a chat.
    pub fn encode_chat(&self, messages: &[Message]) -> Result<Vec<u32>> {
        self.encode(&self.render(messages)?)
    }
}
