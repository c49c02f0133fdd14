//! [`Decoder`]: the generation loop.
use std::time::{Duration, Instant};

use corral_index::{Guide, Vocabulary};
use corral_models::{LanguageModel, LogitsRequest};

use crate::active::ActiveSequence;
use crate::error::SamplerError;
use crate::params::SamplingParams;
use crate::sampler::{SamplerStats, TokenLogprobs};

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// End of sequence in an accepting state, a finished document (also when `max_tokens`
    /// ran out right after it was complete), or a stop string.
    Stop,
    /// `max_tokens` (or the model's context) ran out first: the text is partial.
    Length,
}

/// One generation: prompt, sampling, limits and an optional constraint.
#[derive(Clone, Debug)]
pub struct DecodeRequest {
    /// Prompt token ids (the rendered chat, with BOS where the model wants it).
    pub prompt: Vec<u32>,
    /// How to choose tokens.
    pub params: SamplingParams,
    /// Most completion tokens to generate (EOS included).
    pub max_tokens: usize,
    /// Stop strings (plain text): the text ends before the first one.
    pub stop: Vec<String>,
    /// The constraint; `None` for unconstrained text.
    pub guide: Option<Guide>,
    /// Feed the constraint's forced tokens in one batched forward instead of sampling them.
    pub fast_forward: bool,
    /// Compute the full mask at every constrained step (reference strategy) instead of
    /// sampling first.
    pub mask_first: bool,
    /// Never choose an end-of-sequence token in unconstrained generation (generate exactly
    /// `max_tokens`, for benchmarks). A constraint ignores this: its document must end.
    pub ignore_eos: bool,
    /// Record each completion token's log-probability and this many most likely
    /// alternatives (of the distribution actually sampled from; see
    /// [`Sampler::logprobs`](crate::Sampler::logprobs)).
    pub logprobs: Option<usize>,
}

impl DecodeRequest {
    /// Unconstrained generation with default sampling and 256 tokens.
    pub fn new(prompt: Vec<u32>) -> DecodeRequest {
        DecodeRequest {
            prompt,
            params: SamplingParams::default(),
            max_tokens: 256,
            stop: Vec::new(),
            guide: None,
            fast_forward: false,
            mask_first: false,
            ignore_eos: false,
            logprobs: None,
        }
    }
}

/// Where the time went, and how tokens were chosen.
#[derive(Clone, Debug, Default)]
pub struct DecodeStats {
    /// Prompt forward pass.
    pub prefill: Duration,
    /// From the start to the first completion token (prefill + first choice).
    pub time_to_first_token: Duration,
    /// The whole call.
    pub total: Duration,
    /// Forward passes after the prefill.
    pub decode_forward: Duration,
    /// Number of forward passes after the prefill.
    pub decode_forward_calls: usize,
    /// Choosing tokens (penalties, masks, sampling) and advancing the constraint.
    pub sampling: Duration,
    /// Completion tokens that were forced by the constraint and fed without sampling.
    pub forced_tokens: usize,
    /// The sampler's counters.
    pub sampler: SamplerStats,
}

impl DecodeStats {
    /// Completion tokens per second after the first token (`None` for fewer than 2).
    pub fn decode_tokens_per_second(&self, completion_tokens: usize) -> Option<f64> {
        let after_first = self.total.checked_sub(self.time_to_first_token)?;
        (completion_tokens > 1 && !after_first.is_zero())
            .then(|| (completion_tokens - 1) as f64 / after_first.as_secs_f64())
    }
}

/// The result of [`Decoder::run`].
#[derive(Clone, Debug)]
pub struct DecodeOutput {
    /// Completion token ids (EOS excluded; stop strings are cut from the text only).
    pub tokens: Vec<u32>,
    /// The completion text (up to a stop string; never repaired).
    pub text: String,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Number of prompt tokens.
    pub prompt_tokens: usize,
    /// Number of completion tokens, the EOS token included when one was generated.
    pub completion_tokens: usize,
    /// The constraint at the end (finished when the document is complete).
    pub guide: Option<Guide>,
    /// Per completion token (EOS included), when requested.
    pub logprobs: Vec<TokenLogprobs>,
    /// Timing and counters.
    pub stats: DecodeStats,
}

/// The tokenizer's canonical encoding of a text (no special tokens added).
pub type Tokenize<'a> = &'a dyn Fn(&str) -> Vec<u32>;

/// Runs generations on one model, one at a time (a server steps many
/// [`ActiveSequence`]s together instead).
pub struct Decoder<'a> {
    model: &'a dyn LanguageModel,
    vocab: &'a Vocabulary,
    tokenize: Option<Tokenize<'a>>,
}

impl<'a> Decoder<'a> {
    /// A decoder over `model` whose tokens are spelled by `vocab` (its EOS set ends
    /// generation).
    pub fn new(model: &'a dyn LanguageModel, vocab: &'a Vocabulary) -> Decoder<'a> {
        Decoder {
            model,
            vocab,
            tokenize: None,
        }
    }

    /// The tokenizer's canonical encoding (no special tokens), needed for fast-forward.
    pub fn with_tokenizer(mut self, tokenize: Tokenize<'a>) -> Decoder<'a> {
        self.tokenize = Some(tokenize);
        self
    }

    /// Generate; `on_text` receives each text delta as soon as it is final.
    pub fn run(
        &self,
        request: DecodeRequest,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<DecodeOutput, SamplerError> {
        let mut active = ActiveSequence::new(self.model, request)?;
        while !active.is_done() {
            let forward = Instant::now();
            let (seq, feed) = active.input(usize::MAX);
            let fed = feed.len();
            let row = self
                .model
                .forward(seq, feed, LogitsRequest::Last)?
                .into_last_row();
            active.record_forward(forward.elapsed());
            active.fed(fed);
            active.step(row, self.vocab, self.tokenize, on_text)?;
        }
        Ok(active.finish(on_text))
    }
}
