use thiserror::Error;

/// Errors building a [`Vocabulary`](crate::Vocabulary).
#[derive(Debug, Error)]
pub enum VocabularyError {
    #[error("cannot load tokenizer: {0}")]
    Tokenizer(String),
    #[error("EOS token id {id} is outside the vocabulary of {len} tokens")]
    EosOutOfRange { id: u32, len: usize },
    #[error("vocabulary of {0} tokens is too large")]
    TooLarge(usize),
}

/// Errors building an [`Index`](crate::Index) or walking its automaton.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum IndexError {
    #[error("cannot build the automaton: {0}")]
    Build(String),
    #[error("the automaton grew past its memory limit of {limit} bytes")]
    CacheExhausted { limit: usize },
    #[error("no output can ever be accepted (the language is empty)")]
    Empty,
    /// A [`State`](crate::State) given to an index that did not issue it.
    #[error("the state does not belong to this index")]
    UnknownState,
}

/// Errors advancing a [`Guide`](crate::Guide).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum GuideError {
    /// The token does not continue the document (or is EOS before the document is complete).
    #[error("token {token} is not allowed in the current state")]
    NotAllowed { token: u32 },
    /// The id is outside the vocabulary (e.g. a padded row of the model's LM head).
    #[error("token {token} is outside the vocabulary of {len} tokens")]
    UnknownToken { token: u32, len: usize },
    /// Raw bytes given to [`Guide::advance_bytes`](crate::Guide::advance_bytes) do not
    /// continue the document.
    #[error("the bytes {bytes:?} do not continue the document")]
    BytesNotAllowed { bytes: String },
    /// [`Guide::rollback`](crate::Guide::rollback) was asked for more steps than the guide
    /// remembers.
    #[error("cannot roll back {requested} steps: only {available} are remembered")]
    RollbackTooFar { requested: usize, available: usize },
    #[error("the guide is finished (EOS was consumed)")]
    Finished,
    /// The automaton failed while guiding (its memory limit was reached).
    #[error(transparent)]
    Index(#[from] IndexError),
}
