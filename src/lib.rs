//! corral: JSON-Schema-constrained generation for large language models.
//!
//! Load a model ([`Model::load`]: a Hugging Face directory or a GGUF file), then ask for
//! JSON that is guaranteed to match a schema ([`generate_json`]), a typed value
//! ([`generate`]), any JSON object, regex-constrained text, or plain chat.
//!
//! ```no_run
//! use corral::{GenerateOptions, Message, Model};
//! use serde_json::json;
//!
//! let model = Model::load("models/SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let schema = json!({"type": "object", "properties": {"team_name": {"type": "string"}},
//!                     "required": ["team_name"]});
//! let answer = model.generate_json(
//!     &[Message::user("Which team won the 2018 World Cup?")],
//!     &schema,
//!     &GenerateOptions::greedy(),
//! )?;
//! println!("{} ({} tokens)", answer.json()?, answer.usage.completion_tokens);
//! # Ok::<(), corral::Error>(())
//! ```
//!
//! The layers underneath are re-exported: [`schema`] (JSON Schema → regex), [`index`]
//! (token masks, [`index::Guide`]), [`models`] (Llama / Mistral / Mixtral), [`sampler`]
//! (the decoding loop).
mod cache;
mod chat;
mod error;
mod generate;
mod model;

pub use chat::{with_system_text, BuiltinTemplate, ChatTemplate, Message};
pub use corral_index as index;
pub use corral_models as models;
pub use corral_sampler as sampler;
pub use corral_sampler::{FinishReason, SamplingParams};
pub use corral_schema as schema;
pub use corral_schema::Whitespace;
pub use error::{Error, Result};
pub use generate::{
    generate, generate_json, Constraint, GenerateOptions, Generation, Prepared, Usage,
};
pub use model::Model;
