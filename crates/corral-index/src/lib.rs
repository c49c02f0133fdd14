//! Token masks for constrained decoding: a byte-level DFA (from a regex) walked over a
//! vocabulary's token trie.
//!
//! - [`Vocabulary`]: token id → bytes (SentencePiece `▁`/`<0xNN>`, GPT-2 byte-level BPE,
//!   added and special tokens), built from a `tokenizers::Tokenizer`.
//! - [`Index`]: the DFA plus per-state masks, computed lazily and cached; shared
//!   between sequences (`Send + Sync`, cheap `Clone`).
//! - [`Guide`]: one sequence's cursor: [`Guide::is_allowed`] and [`Guide::advance`] (walk
//!   one token's bytes), [`Guide::allowed_tokens`] / [`Guide::fill_mask`] (the full mask),
//!   [`Guide::validate_tokens`], [`Guide::rollback`], [`Guide::forced_tokens`].
//!
//! ```
//! use corral_index::{Guide, Index, Vocabulary};
//! let vocab = Vocabulary::from_bytes(
//!     vec![Some(b"tr".to_vec()), Some(b"ue".to_vec()), Some(b"true".to_vec()), None],
//!     vec![3],
//! ).unwrap();
//! let index = Index::new("true|false", &vocab).unwrap();
//! let mut guide = Guide::new(index);
//! guide.advance(0).unwrap();
//! assert!(!guide.is_accepting());
//! guide.advance(1).unwrap();
//! assert!(guide.is_accepting());
//! ```
mod budget;
mod error;
mod guide;
mod index;
mod segmented;
mod toktrie;
mod vocab;

pub use budget::{MemoryBudget, DEFAULT_BUDGET_BYTES};
pub use error::{GuideError, IndexError, VocabularyError};
pub use guide::{Guide, DEFAULT_MAX_ROLLBACK};
pub use index::{Index, IndexOptions, State, StateMask};
pub use toktrie::TokenTrie;
pub use vocab::{detect_encoding, token_bytes, TokenEncoding, Vocabulary};
