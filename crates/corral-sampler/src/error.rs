use corral_index::GuideError;
use corral_models::ModelError;
use thiserror::Error;

/// Errors of sampling and decoding.
#[derive(Debug, Error)]
pub enum SamplerError {
    /// A sampling parameter is out of range (names the parameter).
    #[error("invalid sampling parameter `{name}`: {reason}")]
    InvalidParameter { name: &'static str, reason: String },
    /// The constraint allows no token at all (the automaton has no way forward).
    #[error("the constraint allows no token at position {position}")]
    NoTokenAllowed { position: usize },
    /// The logits row is empty or contains NaN where a token must be chosen.
    #[error("the logits row has no finite value")]
    NoFiniteLogit,
    /// The prompt is empty (a model needs at least one token to predict from).
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// The prompt and the completion do not fit the model's context.
    #[error("the prompt has {prompt} tokens; the model's context holds {context}")]
    ContextExceeded { prompt: usize, context: usize },
    /// [`ActiveSequence::share_prefill`](crate::ActiveSequence::share_prefill) between
    /// sequences of different prompts, or after this one was fed.
    #[error("cannot share a prefill between different prompts")]
    PrefillMismatch,
    /// A prompt token id the model has no embedding for.
    #[error("prompt token {id} is outside the model's vocabulary of {vocab_size}")]
    PromptTokenOutOfRange { id: u32, vocab_size: usize },
    #[error(transparent)]
    Guide(#[from] GuideError),
    #[error(transparent)]
    Model(#[from] ModelError),
}
