//! [`Guide`]: the per-sequence cursor over an [`Index`].
use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::GuideError;
use crate::index::{Index, MaskTable, State, StateMask};

/// How many consumed steps a [`Guide`] remembers for [`Guide::rollback`] by default.
pub const DEFAULT_MAX_ROLLBACK: usize = 1024;

/// Follows one generated sequence through an [`Index`].
///
/// Checking or consuming one token walks only that token's bytes through the automaton;
/// the full vocabulary mask is computed only when asked for ([`Guide::allowed_tokens`],
/// [`Guide::fill_mask`]) and is then cached in the index for every sequence.
///
/// ```
/// use corral_index::{Guide, Index, Vocabulary};
/// let vocab = Vocabulary::from_bytes(
///     vec![Some(b"{".to_vec()), Some(b"}".to_vec()), Some(b"a".to_vec()), None],
///     vec![3],
/// ).unwrap();
/// let mut guide = Guide::new(Index::new(r"\{a*\}", &vocab).unwrap());
/// assert_eq!(guide.allowed_tokens().unwrap()[0], 0b0001); // only `{`
/// guide.advance(0).unwrap();
/// assert!(guide.advance(0).is_err()); // a second `{` is refused, state unchanged
/// assert_eq!(guide.validate_tokens(&[2, 2, 1, 3]).unwrap(), 4); // `aa}` then EOS
/// guide.advance(2).unwrap();
/// guide.advance(1).unwrap();
/// assert!(guide.is_accepting());
/// guide.advance(3).unwrap(); // EOS
/// assert!(guide.is_finished());
/// guide.rollback(2).unwrap(); // back to `{a`
/// assert!(!guide.is_accepting());
/// ```
#[derive(Clone, Debug)]
pub struct Guide {
    index: Index,
    state: State,
    /// The index's masks as of the last look (masks are read from it by reference: no
    /// shared reference count is written per token) and the index's eviction count then.
    table: Arc<MaskTable>,
    table_generation: u64,
    /// The mask of `state` when it is not in `table` (computed after the table was
    /// taken, or evicted meanwhile).
    mask: Option<Arc<StateMask>>,
    finished: bool,
    /// The state before each consumed step, oldest first (EOS included).
    history: VecDeque<State>,
    max_rollback: usize,
}

/// Where one token leads.
enum Step {
    To(State),
    Eos,
}

impl Guide {
    /// A guide at the start state, remembering [`DEFAULT_MAX_ROLLBACK`] steps.
    pub fn new(index: Index) -> Guide {
        Guide::with_max_rollback(index, DEFAULT_MAX_ROLLBACK)
    }

    /// A guide at the start state that remembers up to `max_rollback` steps.
    pub fn with_max_rollback(index: Index, max_rollback: usize) -> Guide {
        index.touch();
        let state = index.start();
        let (table, table_generation) = index.mask_table();
        Guide {
            index,
            state,
            table,
            table_generation,
            mask: None,
            finished: false,
            history: VecDeque::new(),
            max_rollback,
        }
    }

    /// The index this guide walks.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The current automaton state.
    pub fn state(&self) -> State {
        self.state
    }

    fn current_mask(&mut self) -> Result<&StateMask, GuideError> {
        if self.finished {
            return Err(GuideError::Finished);
        }
        if self.index.mask_generation() != self.table_generation {
            (self.table, self.table_generation) = self.index.mask_table();
        }
        if self.mask.is_none() && self.table.get(self.state.0).is_none() {
            let mask = self.index.mask(self.state)?;
            // Later states' masks go to the index's table in use now.
            (self.table, self.table_generation) = self.index.mask_table();
            self.mask = Some(mask);
        }
        match (&self.mask, self.table.get(self.state.0)) {
            (Some(mask), _) | (None, Some(mask)) => Ok(mask),
            (None, None) => Err(GuideError::Index(crate::IndexError::UnknownState)),
        }
    }

    /// The mask of the current state if it is at hand (never computes it).
    fn known_mask(&self) -> Option<&StateMask> {
        self.mask
            .as_deref()
            .or_else(|| self.table.get(self.state.0).map(|m| &**m))
    }

    /// The allowed tokens as a bitset (bit `t % 64` of word `t / 64`), EOS included when
    /// the text so far is a complete document.
    pub fn allowed_tokens(&mut self) -> Result<&[u64], GuideError> {
        Ok(&self.current_mask()?.words)
    }

    /// Write the allowed tokens into `out` as a bitset (bit `t % 32` of word `t / 32`).
    /// `out` may be longer than the vocabulary (a padded LM head): ids past the vocabulary
    /// are never allowed. Words beyond `out` are not written (those ids are left out).
    pub fn fill_mask(&mut self, out: &mut [u32]) -> Result<(), GuideError> {
        let words = &self.current_mask()?.words;
        out.fill(0);
        for (i, &w) in words.iter().enumerate() {
            if let Some(lo) = out.get_mut(2 * i) {
                *lo = w as u32;
            }
            if let Some(hi) = out.get_mut(2 * i + 1) {
                *hi = (w >> 32) as u32;
            }
        }
        Ok(())
    }

    /// Where `token` leads from `state` (no mask needed: only the token's bytes are walked).
    fn step(&self, state: State, token: u32) -> Result<Step, GuideError> {
        let vocab = self.index.vocabulary();
        if token as usize >= vocab.len() {
            return Err(GuideError::UnknownToken {
                token,
                len: vocab.len(),
            });
        }
        if state == self.state {
            if let Some(mask) = self.known_mask() {
                if !mask.contains(token) {
                    return Err(GuideError::NotAllowed { token });
                }
            }
        }
        if vocab.is_eos(token) {
            return if self.index.is_accepting(state)? {
                Ok(Step::Eos)
            } else {
                Err(GuideError::NotAllowed { token })
            };
        }
        let bytes = vocab
            .token_bytes(token)
            .filter(|b| !b.is_empty())
            .ok_or(GuideError::NotAllowed { token })?;
        match self.index.next_state(state, bytes)? {
            Some(next) => Ok(Step::To(next)),
            None => Err(GuideError::NotAllowed { token }),
        }
    }

    /// Whether `token` is allowed now (walks the token's bytes; no mask is computed).
    /// Ids outside the vocabulary and anything after EOS are not allowed.
    pub fn is_allowed(&self, token: u32) -> Result<bool, GuideError> {
        if self.finished {
            return Ok(false);
        }
        match self.step(self.state, token) {
            Ok(_) => Ok(true),
            Err(GuideError::NotAllowed { .. } | GuideError::UnknownToken { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn remember(&mut self) {
        if self.max_rollback == 0 {
            return;
        }
        if self.history.len() == self.max_rollback {
            self.history.pop_front();
        }
        self.history.push_back(self.state);
    }

    /// Consume `token`. A token that is not allowed is an error and leaves the guide
    /// unchanged. EOS (when the document is complete) finishes the guide.
    pub fn advance(&mut self, token: u32) -> Result<(), GuideError> {
        if self.finished {
            return Err(GuideError::Finished);
        }
        let step = self.step(self.state, token)?;
        self.remember();
        match step {
            Step::Eos => self.finished = true,
            Step::To(next) => {
                if next != self.state {
                    self.mask = None;
                }
                self.state = next;
            }
        }
        Ok(())
    }

    /// How many of `tokens` would be accepted in a row from here (the guide is not
    /// changed). EOS counts when the document is complete at that point; nothing after
    /// it counts.
    pub fn validate_tokens(&self, tokens: &[u32]) -> Result<usize, GuideError> {
        if self.finished {
            return Ok(0);
        }
        let mut state = self.state;
        for (i, &token) in tokens.iter().enumerate() {
            match self.step(state, token) {
                Ok(Step::To(next)) => state = next,
                Ok(Step::Eos) => return Ok(i + 1),
                Err(GuideError::NotAllowed { .. } | GuideError::UnknownToken { .. }) => {
                    return Ok(i)
                }
                Err(e) => return Err(e),
            }
        }
        Ok(tokens.len())
    }

    /// Undo the last `n` consumed steps (tokens, EOS, or [`Guide::advance_bytes`] calls).
    /// Fails without changing anything when fewer than `n` steps are remembered.
    pub fn rollback(&mut self, n: usize) -> Result<(), GuideError> {
        if n > self.history.len() {
            return Err(GuideError::RollbackTooFar {
                requested: n,
                available: self.history.len(),
            });
        }
        if n == 0 {
            return Ok(());
        }
        let keep = self.history.len() - n;
        let state = self.history[keep];
        self.history.truncate(keep);
        self.state = state;
        self.finished = false;
        self.mask = None;
        Ok(())
    }

    /// How many steps [`Guide::rollback`] can undo now.
    pub fn rollback_available(&self) -> usize {
        self.history.len()
    }

    /// Whether the text so far is a complete document.
    pub fn is_accepting(&self) -> bool {
        if let Some(mask) = self.known_mask() {
            return mask.accepting;
        }
        self.index.is_accepting(self.state).unwrap_or(false)
    }

    /// Whether EOS was consumed, or the document is complete and nothing but EOS can
    /// follow.
    pub fn is_finished(&self) -> bool {
        if self.finished {
            return true;
        }
        self.is_accepting() && matches!(self.index.has_continuation(self.state), Ok(false))
    }

    /// The bytes that must come next (fast-forward): non-empty only when there is a
    /// single way to continue.
    pub fn forced_bytes(&self) -> Result<Vec<u8>, GuideError> {
        if self.finished {
            return Ok(Vec::new());
        }
        Ok(self.index.forced_bytes(self.state)?)
    }

    /// The forced continuation as tokens: `tokenize` gives the tokenizer's canonical
    /// tokenization of the forced text (without special tokens). Tokens that do not spell a
    /// prefix of the forced bytes, or that the guide would refuse, are cut off, and so is
    /// the last token unless nothing can follow it: its bytes could merge with what comes
    /// next, and the model must never see a split the tokenizer would not produce.
    pub fn forced_tokens(
        &self,
        tokenize: impl FnOnce(&str) -> Vec<u32>,
    ) -> Result<Vec<u32>, GuideError> {
        let forced = self.forced_bytes()?;
        if forced.is_empty() {
            return Ok(Vec::new());
        }
        let text = String::from_utf8_lossy(&forced).into_owned();
        let ids = tokenize(&text);
        let vocab = self.index.vocabulary();
        let mut kept = Vec::with_capacity(ids.len());
        let mut at = 0;
        for &id in &ids {
            match vocab.token_bytes(id) {
                Some(bytes) if !bytes.is_empty() && forced[at..].starts_with(bytes) => {
                    at += bytes.len();
                    kept.push(id);
                }
                _ => break,
            }
        }
        kept.truncate(self.validate_tokens(&kept)?);
        let spelled: usize = kept
            .iter()
            .filter_map(|&t| vocab.token_bytes(t))
            .map(<[u8]>::len)
            .sum();
        // Keep the last token only when the forced text ends the document.
        if !kept.is_empty() {
            let mut probe = self.clone();
            probe.max_rollback = 0;
            for &t in &kept {
                probe.advance(t)?;
            }
            if spelled < forced.len() || !probe.is_finished() {
                kept.pop();
            }
        }
        Ok(kept)
    }

    /// Consume raw bytes (e.g. forced bytes written by the caller), not tokens; one
    /// rollback step.
    pub fn advance_bytes(&mut self, bytes: &[u8]) -> Result<(), GuideError> {
        if self.finished {
            return Err(GuideError::Finished);
        }
        let next = self.index.next_state(self.state, bytes)?.ok_or_else(|| {
            GuideError::BytesNotAllowed {
                bytes: String::from_utf8_lossy(bytes).into_owned(),
            }
        })?;
        self.remember();
        self.state = next;
        self.mask = None;
        Ok(())
    }

    /// Go back to the start state and forget the history.
    pub fn reset(&mut self) {
        self.state = self.index.start();
        self.mask = None;
        self.finished = false;
        self.history.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Vocabulary;

    fn vocab() -> Vocabulary {
        // 0 `{`, 1 `}`, 2 `"a"`, 3 `:`, 4 `1`, 5 `{"`, 6 `a":`, 7 `"`, 8 `a`, 9 EOS, 10 EOT
        let tokens = ["{", "}", "\"a\"", ":", "1", "{\"", "a\":", "\"", "a"]
            .iter()
            .map(|t| Some(t.as_bytes().to_vec()))
            .chain([None, None])
            .collect();
        Vocabulary::from_bytes(tokens, vec![9, 10]).unwrap()
    }

    fn guide() -> Guide {
        Guide::new(Index::new(r#"\{"a":1\}"#, &vocab()).unwrap())
    }

    #[test]
    fn is_allowed_walks_bytes_without_mask() {
        let g = guide();
        assert!(g.is_allowed(0).unwrap());
        assert!(g.is_allowed(5).unwrap());
        assert!(!g.is_allowed(1).unwrap());
        assert!(!g.is_allowed(9).unwrap()); // EOS before the document is complete
        assert!(!g.is_allowed(11).unwrap()); // past the vocabulary
        assert_eq!(g.index().cached_masks(), 0);
        assert_eq!(
            g.clone().advance(11),
            Err(GuideError::UnknownToken { token: 11, len: 11 })
        );
    }

    #[test]
    fn every_eos_ends_only_a_complete_document() {
        let mut g = guide();
        for t in [0, 2, 3, 4] {
            g.advance(t).unwrap();
        }
        assert!(!g.is_allowed(9).unwrap());
        assert_eq!(g.advance(10), Err(GuideError::NotAllowed { token: 10 }));
        g.advance(1).unwrap();
        assert!(g.is_allowed(9).unwrap() && g.is_allowed(10).unwrap());
        assert!(g.is_finished());
        g.advance(10).unwrap();
        assert_eq!(g.advance(9), Err(GuideError::Finished));
    }

    #[test]
    fn fill_mask_pads_with_zeros() {
        let mut g = guide();
        let mut buf = vec![u32::MAX; 4];
        g.fill_mask(&mut buf).unwrap();
        assert_eq!(buf, vec![0b10_0001, 0, 0, 0]); // `{` and `{"`
    }

    #[test]
    fn validate_and_rollback() {
        let mut g = guide();
        assert_eq!(g.validate_tokens(&[5, 6, 4, 1, 9, 0]).unwrap(), 5);
        assert_eq!(g.validate_tokens(&[0, 0]).unwrap(), 1);
        for t in [5, 6, 4] {
            g.advance(t).unwrap();
        }
        assert_eq!(
            g.rollback(4),
            Err(GuideError::RollbackTooFar {
                requested: 4,
                available: 3
            })
        );
        g.rollback(2).unwrap();
        assert_eq!(g.validate_tokens(&[6, 4, 1, 9]).unwrap(), 4);
        let mut short = Guide::with_max_rollback(g.index().clone(), 1);
        short.advance(0).unwrap();
        short.advance(2).unwrap();
        assert_eq!(short.rollback_available(), 1);
    }

    #[test]
    fn advance_bytes_error_names_the_bytes() {
        let mut g = guide();
        assert_eq!(
            g.advance_bytes(b"}"),
            Err(GuideError::BytesNotAllowed { bytes: "}".into() })
        );
        g.advance_bytes(b"{\"a").unwrap();
        g.rollback(1).unwrap();
        assert_eq!(g.state(), g.index().start());
    }

    #[test]
    fn forced_tokens_back_off_the_last_token() {
        let g = guide();
        // The whole document is forced; `{"`, `a":` fit, the tokenizer's last token `1}`
        // does not exist here, so it spells `1`, `}`.
        let forced = g.forced_tokens(|text| {
            assert_eq!(text, "{\"a\":1}");
            vec![5, 6, 4, 1]
        });
        // The document ends with `}`: nothing can follow, so the last token is kept.
        assert_eq!(forced.unwrap(), vec![5, 6, 4, 1]);
        let open = Guide::new(Index::new(r#"\{"a":[0-9]+\}"#, &vocab()).unwrap());
        let forced = open.forced_tokens(|_| vec![5, 6]).unwrap();
        // `a":` could merge with the digits that follow.
        assert_eq!(forced, vec![5]);
        assert_eq!(open.forced_tokens(|_| vec![5, 8, 7]).unwrap(), vec![5, 8]);
        // A tokenization that departs from the forced bytes is cut there (`{`, `"`, not `:`).
        assert_eq!(open.forced_tokens(|_| vec![0, 7, 3]).unwrap(), vec![0]);
    }
}
