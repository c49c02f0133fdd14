//! [`Decoder`]: the generation loop.
use std::time::{Duration, Instant};

use corral_index::{Guide, Vocabulary};
use corral_models::{LanguageModel, LogitsRequest};

use crate::error::SamplerError;
use crate::params::SamplingParams;
use crate::penalties::TokenCounts;
use crate::sampler::{Sampler, SamplerStats};
use crate::stream::TextStream;

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
    /// Timing and counters.
    pub stats: DecodeStats,
}

/// The tokenizer's canonical encoding of a text (no special tokens added).
pub type Tokenize<'a> = &'a dyn Fn(&str) -> Vec<u32>;

/// Runs generations on one model.
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
        let start = Instant::now();
        request.params.validate()?;
        let DecodeRequest {
            prompt,
            params,
            max_tokens,
            stop,
            mut guide,
            fast_forward,
            mask_first,
            ignore_eos,
        } = request;
        if prompt.is_empty() {
            return Err(SamplerError::EmptyPrompt);
        }
        let context = self.model.config().max_position_embeddings;
        if prompt.len() >= context {
            return Err(SamplerError::ContextExceeded {
                prompt: prompt.len(),
                context,
            });
        }
        let max_new = max_tokens.min(context - prompt.len());
        let mut stats = DecodeStats::default();
        let mut sampler = Sampler::new(params)?.mask_first(mask_first);
        let mut counts = TokenCounts::from_prompt(&prompt);
        let mut stream = TextStream::new(stop);
        let mut seq = self.model.new_sequence();
        let logits = self.model.forward(&mut seq, &prompt, LogitsRequest::Last)?;
        stats.prefill = start.elapsed();
        // Rows past the tokenizer (a padded LM head) are never chosen.
        let row_len = logits.vocab_size().min(self.vocab.len());
        // The sampler modifies the row in place (penalties): the forward's buffer is taken
        // over, not copied.
        let mut row = logits.into_last_row();
        let mut tokens = Vec::new();
        let mut completion_tokens = 0;
        let mut feed = Vec::new();
        // Out of tokens: a document that is already complete still counts as finished.
        let out_of_tokens = |guide: &Option<Guide>| match guide {
            Some(g) if g.is_accepting() => FinishReason::Stop,
            _ => FinishReason::Length,
        };
        let finish_reason = loop {
            if completion_tokens >= max_new {
                break out_of_tokens(&guide);
            }
            let chose = Instant::now();
            row.truncate(row_len);
            if ignore_eos && guide.is_none() {
                for &eos in self.vocab.eos_tokens() {
                    if let Some(l) = row.get_mut(eos as usize) {
                        *l = f32::NEG_INFINITY;
                    }
                }
            }
            let token = match sampler.sample(&mut row, guide.as_mut(), &counts, seq.len()) {
                Ok(token) => token,
                // Only EOS could follow and it is not in the logits row (a tokenizer larger
                // than the LM head): the document is complete.
                Err(SamplerError::NoTokenAllowed { .. })
                    if guide.as_ref().is_some_and(Guide::is_accepting) =>
                {
                    break FinishReason::Stop;
                }
                Err(e) => return Err(e),
            };
            if let Some(g) = guide.as_mut() {
                g.advance(token)?;
            }
            stats.sampling += chose.elapsed();
            if completion_tokens == 0 {
                stats.time_to_first_token = start.elapsed();
            }
            completion_tokens += 1;
            if self.vocab.is_eos(token) {
                break FinishReason::Stop;
            }
            feed.clear();
            feed.push(token);
            if self.take(token, &mut tokens, &mut counts, &mut stream, on_text) {
                break FinishReason::Stop;
            }
            if let Some(g) = guide.as_mut() {
                if g.is_finished() {
                    break FinishReason::Stop;
                }
                if let (true, Some(tokenize)) = (fast_forward, self.tokenize) {
                    let forcing = Instant::now();
                    let mut forced = g.forced_tokens(tokenize)?;
                    forced.truncate(max_new - completion_tokens);
                    for &f in &forced {
                        g.advance(f)?;
                    }
                    stats.sampling += forcing.elapsed();
                    stats.forced_tokens += forced.len();
                    completion_tokens += forced.len();
                    let mut stopped = false;
                    for &f in &forced {
                        feed.push(f);
                        stopped = self.take(f, &mut tokens, &mut counts, &mut stream, on_text);
                        if stopped {
                            break;
                        }
                    }
                    if stopped || g.is_finished() {
                        break FinishReason::Stop;
                    }
                }
            }
            if completion_tokens >= max_new {
                // No forward pass whose logits nobody would use.
                break out_of_tokens(&guide);
            }
            let forward = Instant::now();
            row = self
                .model
                .forward(&mut seq, &feed, LogitsRequest::Last)?
                .into_last_row();
            stats.decode_forward += forward.elapsed();
            stats.decode_forward_calls += 1;
        };
        let rest = stream.finish();
        if !rest.is_empty() {
            on_text(&rest);
        }
        stats.sampler = sampler.stats();
        stats.total = start.elapsed();
        Ok(DecodeOutput {
            tokens,
            text: stream.text(),
            finish_reason,
            prompt_tokens: prompt.len(),
            completion_tokens,
            guide,
            stats,
        })
    }

    /// Record a completion token; true when a stop string ended the text.
    fn take(
        &self,
        token: u32,
        tokens: &mut Vec<u32>,
        counts: &mut TokenCounts,
        stream: &mut TextStream,
        on_text: &mut dyn FnMut(&str),
    ) -> bool {
        tokens.push(token);
        counts.push(token);
        let delta = stream.push(self.vocab.token_bytes(token).unwrap_or_default());
        if !delta.is_empty() {
            on_text(&delta);
        }
        stream.is_stopped()
    }
}
