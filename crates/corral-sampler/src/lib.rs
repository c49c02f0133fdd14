//! The decoding loop of corral: from logits to tokens under a constraint.
//!
//! - [`SamplingParams`]: temperature (0 = greedy), top-k, top-p, min-p, repetition /
//!   frequency / presence penalties (OpenAI semantics), seed.
//! - [`Sampler`]: picks one token from a logits row, optionally constrained by a
//!   [`Guide`](corral_index::Guide). Sampling is the Gumbel-max trick with noise keyed by
//!   `(seed, position, token)`, so the same seed and inputs give the same output on every run
//!   and thread count, and "sample first, mask only on rejection" returns *exactly* the token
//!   that masking first would have returned.
//! - [`Decoder`]: the generation loop over a [`LanguageModel`](corral_models::LanguageModel):
//!   prefill, sample, fast-forward forced tokens in one batched forward, stop on EOS / a
//!   finished document / `max_tokens` / stop strings, stream text deltas cut at UTF-8
//!   boundaries.
//!
//! ```
//! use corral_sampler::{Sampler, SamplingParams, TokenCounts};
//! let mut sampler = Sampler::new(SamplingParams::greedy())?;
//! let mut logits = vec![0.1, 2.0, -1.0];
//! let token = sampler.sample(&mut logits, None, &TokenCounts::default(), 0).unwrap();
//! assert_eq!(token, 1);
//! # Ok::<(), corral_sampler::SamplerError>(())
//! ```
mod active;
mod decode;
mod error;
mod noise;
mod params;
mod penalties;
mod sampler;
mod stream;

pub use active::ActiveSequence;
pub use decode::{DecodeOutput, DecodeRequest, DecodeStats, Decoder, FinishReason, Tokenize};
pub use error::SamplerError;
pub use params::{SamplingParams, GREEDY_BELOW};
pub use penalties::TokenCounts;
pub use sampler::{Sampler, SamplerStats, TokenLogprobs};
pub use stream::TextStream;
