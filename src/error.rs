//! [`Error`]: everything that can go wrong between a request and its answer.
use thiserror::Error;

/// Errors of the `corral` facade. Bad input (a schema, a regex, sampling parameters,
/// messages the chat template refuses) is reported before any token is generated.
#[derive(Debug, Error)]
pub enum Error {
    /// The schema uses a feature that is not supported (names the keyword and JSON pointer).
    #[error("invalid or unsupported schema: {0}")]
    Schema(#[from] corral_schema::SchemaError),
    /// The constraint could not be turned into an automaton (e.g. an invalid regex).
    #[error("cannot build the constraint: {0}")]
    Constraint(#[from] corral_index::IndexError),
    /// The tokenizer's vocabulary could not be read.
    #[error("vocabulary: {0}")]
    Vocabulary(#[from] corral_index::VocabularyError),
    /// Loading or running the model failed.
    #[error("model: {0}")]
    Model(#[from] corral_models::ModelError),
    /// Sampling or decoding failed (e.g. invalid sampling parameters).
    #[error("generation: {0}")]
    Generation(#[from] corral_sampler::SamplerError),
    /// The chat template failed to compile or refused the messages.
    #[error("chat template: {0}")]
    Template(String),
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A model file is missing or malformed.
    #[error("{path}: {reason}")]
    ModelFiles { path: String, reason: String },
    /// `max_tokens` ran out before the document was complete: the partial text is kept,
    /// never repaired.
    #[error("the output was cut off by max_tokens after {completion_tokens} tokens: {text:?}")]
    Truncated {
        text: String,
        completion_tokens: usize,
    },
    /// The complete document did not deserialize into the requested type (the schema
    /// derived from the type is looser than its `Deserialize`).
    #[error("the output does not deserialize into the requested type: {0}")]
    Deserialize(#[source] serde_json::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
