//! [`ActiveSequence`]: one generation in progress, advanced one forward pass at a time.
use std::time::{Duration, Instant};

use corral_index::{Guide, Vocabulary};
use corral_models::{LanguageModel, Sequence};

use crate::decode::{DecodeOutput, DecodeRequest, DecodeStats, FinishReason, Tokenize};
use crate::error::SamplerError;
use crate::penalties::TokenCounts;
use crate::sampler::{Sampler, TokenLogprobs};
use crate::stream::TextStream;

/// A generation in progress: its model sequence (KV cache), sampler, constraint, text and
/// counters. The caller runs the forward passes — one sequence at a time
/// ([`Decoder`](crate::Decoder)) or many stacked into one batch (a server's scheduler) —
/// and hands each logits row to [`ActiveSequence::step`], which chooses the next token(s)
/// and says what to feed next ([`ActiveSequence::input`]).
#[derive(Debug)]
pub struct ActiveSequence {
    seq: Sequence,
    prompt_len: usize,
    /// Tokens to feed before the next choice (the prompt at first)...
    feed: Vec<u32>,
    /// ...of which the first `fed` went through a forward pass already (a prompt fed in
    /// chunks).
    fed: usize,
    sampler: Sampler,
    counts: TokenCounts,
    stream: TextStream,
    guide: Option<Guide>,
    tokens: Vec<u32>,
    completion_tokens: usize,
    max_new: usize,
    fast_forward: bool,
    ignore_eos: bool,
    logprobs: Vec<TokenLogprobs>,
    stats: DecodeStats,
    start: Instant,
    finish: Option<FinishReason>,
}

impl ActiveSequence {
    /// A generation of `request` on `model` (validated: parameters, prompt length).
    pub fn new(
        model: &dyn LanguageModel,
        request: DecodeRequest,
    ) -> Result<ActiveSequence, SamplerError> {
        let start = Instant::now();
        request.params.validate()?;
        if request.prompt.is_empty() {
            return Err(SamplerError::EmptyPrompt);
        }
        let context = model.config().max_position_embeddings;
        if request.prompt.len() >= context {
            return Err(SamplerError::ContextExceeded {
                prompt: request.prompt.len(),
                context,
            });
        }
        let vocab_size = model.vocab_size();
        if let Some(&id) = request.prompt.iter().find(|&&t| t as usize >= vocab_size) {
            return Err(SamplerError::PromptTokenOutOfRange { id, vocab_size });
        }
        Ok(ActiveSequence {
            seq: model.new_sequence(),
            prompt_len: request.prompt.len(),
            max_new: request.max_tokens.min(context - request.prompt.len()),
            sampler: Sampler::new(request.params)?
                .mask_first(request.mask_first)
                .logprobs(request.logprobs),
            counts: TokenCounts::from_prompt(&request.prompt),
            feed: request.prompt,
            fed: 0,
            stream: TextStream::new(request.stop),
            guide: request.guide,
            tokens: Vec::new(),
            completion_tokens: 0,
            fast_forward: request.fast_forward,
            ignore_eos: request.ignore_eos,
            logprobs: Vec::new(),
            stats: DecodeStats::default(),
            start,
            finish: None,
        })
    }

    /// The sequence and the tokens to feed it in the next forward pass: at most `max` of
    /// those still pending (a long prompt goes in chunks, so one request's prefill does not
    /// hold up the decoding of others for long, and its attention scratch stays bounded).
    /// Empty when done. Report what was fed with [`ActiveSequence::fed`].
    pub fn input(&mut self, max: usize) -> (&mut Sequence, &[u32]) {
        let end = self.feed.len().min(self.fed.saturating_add(max.max(1)));
        (&mut self.seq, &self.feed[self.fed..end])
    }

    /// `n` tokens of [`ActiveSequence::input`] went through a forward pass. True when every
    /// pending token has: the logits of that pass are the ones to [`step`](Self::step) with.
    pub fn fed(&mut self, n: usize) -> bool {
        self.fed = (self.fed + n).min(self.feed.len());
        self.fed == self.feed.len()
    }

    /// The prompt, while none of it has been fed and nothing generated (what a prefix cache
    /// looks up), else `None`.
    pub fn unfed_prompt(&self) -> Option<&[u32]> {
        (self.needs_prefill() && self.completion_tokens == 0).then_some(&self.feed[..])
    }

    /// The prompt, once it has all been fed and before the first token is chosen (what a
    /// prefix cache stores), else `None`.
    pub fn prefilled_prompt(&self) -> Option<(&[u32], &Sequence)> {
        (self.completion_tokens == 0 && !self.feed.is_empty() && self.fed == self.feed.len())
            .then_some((&self.feed[..], &self.seq))
    }

    /// Start from `seq`, which already holds the first `seq.len()` tokens of this prompt (a
    /// cached prefix): only the rest is fed. At least one prompt token must remain (its
    /// logits choose the first token).
    pub fn resume_from(&mut self, seq: Sequence) -> Result<(), SamplerError> {
        if !self.needs_prefill() || seq.len() >= self.prompt_len {
            return Err(SamplerError::PrefillMismatch);
        }
        self.fed = seq.len();
        self.seq = seq;
        Ok(())
    }

    /// Whether tokens wait to be fed (false once done).
    pub fn has_input(&self) -> bool {
        self.finish.is_none() && self.fed < self.feed.len()
    }

    /// Whether the prompt has not been fed yet (not even in part).
    pub fn needs_prefill(&self) -> bool {
        self.seq.is_empty()
    }

    /// Take over a copy of `other`'s sequence after its prompt was fed (several choices of
    /// one request share one prefill). Both must have the same prompt, and this one must not
    /// have been fed yet.
    pub fn share_prefill(&mut self, other: &ActiveSequence) -> Result<(), SamplerError> {
        if !self.needs_prefill()
            || other.seq.len() != self.prompt_len
            || other.prompt_len != self.prompt_len
        {
            return Err(SamplerError::PrefillMismatch);
        }
        self.seq = other.seq.fork()?;
        self.fed = self.feed.len();
        self.stats.prefill = other.stats.prefill;
        Ok(())
    }

    /// Account a forward pass of this sequence that took `elapsed` (its share of a batch).
    pub fn record_forward(&mut self, elapsed: Duration) {
        if self.completion_tokens == 0 {
            self.stats.prefill += elapsed;
        } else {
            self.stats.decode_forward += elapsed;
            self.stats.decode_forward_calls += 1;
        }
    }

    /// Choose the next token(s) from the logits `row` of the last fed token. Returns the
    /// finish reason once generation has ended; `on_text` receives the new text.
    pub fn step(
        &mut self,
        mut row: Vec<f32>,
        vocab: &Vocabulary,
        tokenize: Option<Tokenize<'_>>,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Option<FinishReason>, SamplerError> {
        if self.finish.is_some() {
            return Ok(self.finish);
        }
        self.feed.clear();
        self.fed = 0;
        self.finish = self.choose(&mut row, vocab, tokenize, on_text)?;
        if self.finish.is_none() && self.completion_tokens >= self.max_new {
            // No forward pass whose logits nobody would use.
            self.finish = Some(self.out_of_tokens());
        }
        if self.finish.is_some() {
            self.feed.clear();
        }
        Ok(self.finish)
    }

    fn choose(
        &mut self,
        row: &mut Vec<f32>,
        vocab: &Vocabulary,
        tokenize: Option<Tokenize<'_>>,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Option<FinishReason>, SamplerError> {
        if self.completion_tokens >= self.max_new {
            return Ok(Some(self.out_of_tokens()));
        }
        let chose = Instant::now();
        // Rows past the tokenizer (a padded LM head) are never chosen.
        row.truncate(vocab.len());
        if self.ignore_eos && self.guide.is_none() {
            for &eos in vocab.eos_tokens() {
                if let Some(l) = row.get_mut(eos as usize) {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
        let position = self.seq.len();
        let token = match self
            .sampler
            .sample(row, self.guide.as_mut(), &self.counts, position)
        {
            Ok(token) => token,
            // Only EOS could follow and it is not in the logits row (a tokenizer larger
            // than the LM head): the document is complete.
            Err(SamplerError::NoTokenAllowed { .. })
                if self.guide.as_ref().is_some_and(Guide::is_accepting) =>
            {
                return Ok(Some(FinishReason::Stop));
            }
            Err(e) => return Err(e),
        };
        if let Some(g) = self.guide.as_mut() {
            g.advance(token)?;
        }
        if let Some(lp) = self.sampler.last_logprobs() {
            self.logprobs.push(lp.clone());
        }
        self.stats.sampling += chose.elapsed();
        if self.completion_tokens == 0 {
            self.stats.time_to_first_token = self.start.elapsed();
        }
        self.completion_tokens += 1;
        if vocab.is_eos(token) {
            return Ok(Some(FinishReason::Stop));
        }
        if self.take(token, vocab, on_text) {
            return Ok(Some(FinishReason::Stop));
        }
        let Some(g) = self.guide.as_mut() else {
            return Ok(None);
        };
        if g.is_finished() {
            return Ok(Some(FinishReason::Stop));
        }
        let (true, Some(tokenize)) = (self.fast_forward, tokenize) else {
            return Ok(None);
        };
        let forcing = Instant::now();
        let mut forced = g.forced_tokens(tokenize)?;
        forced.truncate(self.max_new - self.completion_tokens);
        for &f in &forced {
            g.advance(f)?;
        }
        let finished = g.is_finished();
        self.stats.sampling += forcing.elapsed();
        self.stats.forced_tokens += forced.len();
        self.completion_tokens += forced.len();
        for f in forced {
            if self.sampler.last_logprobs().is_some() {
                // A forced token is the only one allowed: probability one.
                self.logprobs.push(TokenLogprobs {
                    token: f,
                    logprob: 0.0,
                    top: vec![(f, 0.0)],
                });
            }
            if self.take(f, vocab, on_text) {
                return Ok(Some(FinishReason::Stop));
            }
        }
        Ok(finished.then_some(FinishReason::Stop))
    }

    /// Out of tokens: a document that is already complete still counts as finished.
    fn out_of_tokens(&self) -> FinishReason {
        match &self.guide {
            Some(g) if g.is_accepting() => FinishReason::Stop,
            _ => FinishReason::Length,
        }
    }

    /// Record a completion token to feed next; true when a stop string ended the text.
    fn take(&mut self, token: u32, vocab: &Vocabulary, on_text: &mut dyn FnMut(&str)) -> bool {
        self.feed.push(token);
        self.tokens.push(token);
        self.counts.push(token);
        let delta = self
            .stream
            .push(vocab.token_bytes(token).unwrap_or_default());
        if !delta.is_empty() {
            on_text(&delta);
        }
        self.stream.is_stopped()
    }

    /// Whether generation has ended.
    pub fn is_done(&self) -> bool {
        self.finish.is_some()
    }

    /// Why generation ended (`None` while it goes on).
    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.finish
    }

    /// Completion tokens so far (EOS included).
    pub fn completion_tokens(&self) -> usize {
        self.completion_tokens
    }

    /// Prompt tokens.
    pub fn prompt_tokens(&self) -> usize {
        self.prompt_len
    }

    /// Log-probabilities so far (when requested), one per completion token.
    pub fn logprobs(&self) -> &[TokenLogprobs] {
        &self.logprobs
    }

    /// End the generation (as `Length` if it had not ended): the text held back for stop
    /// strings goes to `on_text`, and the output is returned.
    pub fn finish(mut self, on_text: &mut dyn FnMut(&str)) -> DecodeOutput {
        let rest = self.stream.finish();
        if !rest.is_empty() {
            on_text(&rest);
        }
        let finish_reason = self.finish.unwrap_or_else(|| self.out_of_tokens());
        self.stats.sampler = self.sampler.stats();
        self.stats.total = self.start.elapsed();
        DecodeOutput {
            tokens: self.tokens,
            text: self.stream.text(),
            finish_reason,
            prompt_tokens: self.prompt_len,
            completion_tokens: self.completion_tokens,
            guide: self.guide,
            logprobs: self.logprobs,
            stats: self.stats,
        }
    }
}
