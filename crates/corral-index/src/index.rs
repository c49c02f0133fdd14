//! [`Index`]: a lazily determinized DFA over a vocabulary, with per-state token masks.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use corral_automaton::{DState, LazyDfa, Program};

use crate::error::IndexError;
use crate::vocab::Vocabulary;

/// Limits for building an [`Index`].
#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// Memory the lazy DFA may use for its states before building fails (bytes).
    pub dfa_cache_bytes: usize,
    /// Most program states a regex given as text may compile to.
    pub max_program_states: usize,
    /// Compute the masks of all reachable states when building (otherwise each state's
    /// mask is computed on first use and cached).
    pub eager: bool,
}

impl Default for IndexOptions {
    fn default() -> IndexOptions {
        IndexOptions {
            dfa_cache_bytes: 512 << 20,
            max_program_states: 4 << 20,
            eager: false,
        }
    }
}

/// The allowed tokens of one automaton state.
#[derive(Debug)]
pub struct StateMask {
    /// Bit `t % 64` of word `t / 64` is set when token `t` is allowed.
    pub words: Box<[u64]>,
    /// Whether the text so far is a complete document (EOS tokens are then allowed).
    pub accepting: bool,
}

impl StateMask {
    /// Whether token `t` is allowed.
    #[inline]
    pub fn contains(&self, token: u32) -> bool {
        let t = token as usize;
        self.words
            .get(t / 64)
            .is_some_and(|w| w >> (t % 64) & 1 == 1)
    }

    /// Number of allowed tokens.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }
}

/// An automaton state (opaque).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct State(pub(crate) DState);

/// A compiled regex indexed against a vocabulary: shareable between threads and
/// sequences (`Clone` is an `Arc` clone). Use a [`Guide`](crate::Guide) per sequence.
///
/// ```
/// use corral_index::{Index, Vocabulary};
/// let vocab = Vocabulary::from_bytes(
///     vec![Some(b"{".to_vec()), Some(b"}".to_vec()), Some(b"{}".to_vec()), Some(b"x".to_vec()), None],
///     vec![4],
/// ).unwrap();
/// let index = Index::new(r"\{\}", &vocab).unwrap();
/// let mask = index.mask(index.start()).unwrap();
/// assert!(mask.contains(0) && mask.contains(2) && !mask.contains(1) && !mask.contains(4));
/// ```
#[derive(Clone, Debug)]
pub struct Index {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dfa: Mutex<LazyDfa>,
    program: Arc<Program>,
    start: DState,
    vocab: Vocabulary,
    masks: RwLock<HashMap<DState, Arc<StateMask>>>,
    cache_limit: usize,
}

impl Index {
    /// Build with default [`IndexOptions`].
    pub fn new(regex: &str, vocab: &Vocabulary) -> Result<Index, IndexError> {
        Index::with_options(regex, vocab, &IndexOptions::default())
    }

    /// Build an index for documents matching `regex` (as a whole) over `vocab`.
    pub fn with_options(
        regex: &str,
        vocab: &Vocabulary,
        options: &IndexOptions,
    ) -> Result<Index, IndexError> {
        let program = Program::from_regex(regex, options.max_program_states)
            .map_err(|e| IndexError::Build(e.to_string()))?;
        Index::from_program_with_options(Arc::new(program), vocab, options)
    }

    /// Build with default [`IndexOptions`] from an automaton built elsewhere (e.g.
    /// `corral_schema::Compiled::program`).
    pub fn from_program(program: Arc<Program>, vocab: &Vocabulary) -> Result<Index, IndexError> {
        Index::from_program_with_options(program, vocab, &IndexOptions::default())
    }

    /// Build an index for documents matched as a whole by `program` over `vocab`.
    pub fn from_program_with_options(
        program: Arc<Program>,
        vocab: &Vocabulary,
        options: &IndexOptions,
    ) -> Result<Index, IndexError> {
        let dfa = LazyDfa::new(program.clone(), options.dfa_cache_bytes);
        let start = dfa.start();
        if !dfa.is_accepting(start) && !dfa.has_continuation(start) {
            return Err(IndexError::Empty);
        }
        let index = Index {
            inner: Arc::new(Inner {
                dfa: Mutex::new(dfa),
                program,
                start,
                vocab: vocab.clone(),
                masks: RwLock::new(HashMap::new()),
                cache_limit: options.dfa_cache_bytes,
            }),
        };
        if options.eager {
            index.compute_all()?;
        }
        Ok(index)
    }

    /// Number of states of the automaton's program.
    pub fn program_states(&self) -> usize {
        self.inner.program.states().len()
    }

    /// The vocabulary.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.inner.vocab
    }

    /// The initial state.
    pub fn start(&self) -> State {
        State(self.inner.start)
    }

    fn exhausted(&self) -> IndexError {
        IndexError::CacheExhausted {
            limit: self.inner.cache_limit,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LazyDfa> {
        // A panic while holding the lock cannot leave the DFA inconsistent for our use
        // (states are only added), so recover from poisoning.
        self.inner.dfa.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state after `bytes` from `state`, or `None` if they lead nowhere.
    pub fn next_state(&self, state: State, bytes: &[u8]) -> Result<Option<State>, IndexError> {
        let mut dfa = self.lock();
        let mut s = state.0;
        for &b in bytes {
            match dfa.next(s, b).map_err(|_| self.exhausted())? {
                Some(next) => s = next,
                None => return Ok(None),
            }
        }
        Ok(Some(State(s)))
    }

    /// Whether the text leading to `state` is a complete document.
    pub fn is_accepting(&self, state: State) -> Result<bool, IndexError> {
        Ok(self.lock().is_accepting(state.0))
    }

    /// Whether some byte continues the document from `state` (when not, and the state is
    /// accepting, only end-of-sequence may follow).
    pub fn has_continuation(&self, state: State) -> Result<bool, IndexError> {
        Ok(self.lock().has_continuation(state.0))
    }

    /// The mask of `state` if it was already computed (never computes it).
    pub fn cached_mask(&self, state: State) -> Option<Arc<StateMask>> {
        self.inner
            .masks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&state.0)
            .cloned()
    }

    /// The mask of `state`, computed on first use and cached.
    pub fn mask(&self, state: State) -> Result<Arc<StateMask>, IndexError> {
        if let Some(mask) = self
            .inner
            .masks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&state.0)
        {
            return Ok(mask.clone());
        }
        let mask = Arc::new(self.compute_mask(state.0)?);
        let mut masks = self.inner.masks.write().unwrap_or_else(|e| e.into_inner());
        Ok(masks.entry(state.0).or_insert(mask).clone())
    }

    fn compute_mask(&self, state: DState) -> Result<StateMask, IndexError> {
        let vocab = &self.inner.vocab;
        let mut words = vec![0u64; vocab.len().div_ceil(64)].into_boxed_slice();
        let mut dfa = self.lock();
        // Inside a string that can take any plain text at least as long as the longest
        // plain text token (a free string, or far enough from its `maxLength`), every
        // plain text token is allowed: set them at once and walk only the other tokens.
        let bound = vocab.max_plain_chars();
        let depth = dfa
            .plain_text_depth(state, bound)
            .map_err(|_| self.exhausted())?;
        let trie = if depth >= bound {
            words.copy_from_slice(vocab.plain_text());
            vocab.other_trie()
        } else {
            vocab.trie()
        };
        trie.walk(
            state,
            |s, byte| dfa.next(s, byte),
            |t| words[t as usize / 64] |= 1 << (t % 64),
        )
        .map_err(|_| self.exhausted())?;
        let accepting = dfa.is_accepting(state);
        if accepting {
            for &eos in vocab.eos_tokens() {
                words[eos as usize / 64] |= 1 << (eos % 64);
            }
        }
        Ok(StateMask { words, accepting })
    }

    /// The bytes every continuation from `state` must start with (empty when there is a
    /// choice, including the choice to stop).
    pub fn forced_bytes(&self, state: State) -> Result<Vec<u8>, IndexError> {
        let mut out = Vec::new();
        let mut s = state.0;
        let mut dfa = self.lock();
        while !dfa.is_accepting(s) {
            let mut only: Option<(u8, DState)> = None;
            let mut choices = 0;
            for b in 0..=255u8 {
                if let Some(next) = dfa.next(s, b).map_err(|_| self.exhausted())? {
                    choices += 1;
                    only = Some((b, next));
                    if choices > 1 {
                        break;
                    }
                }
            }
            match (choices, only) {
                (1, Some((b, next))) => {
                    out.push(b);
                    s = next;
                }
                _ => break,
            }
            if out.len() > 4096 {
                break;
            }
        }
        // Stop before an incomplete UTF-8 sequence so the forced text is valid UTF-8.
        while std::str::from_utf8(&out).is_err() {
            out.pop();
        }
        Ok(out)
    }

    /// Compute the masks of every state reachable by tokens from the start state.
    pub fn compute_all(&self) -> Result<usize, IndexError> {
        let mut seen = std::collections::HashSet::new();
        let mut queue = vec![self.start()];
        seen.insert(self.start());
        while let Some(state) = queue.pop() {
            let mask = self.mask(state)?;
            for (w, &word) in mask.words.iter().enumerate() {
                let mut bits = word;
                while bits != 0 {
                    let t = (w * 64 + bits.trailing_zeros() as usize) as u32;
                    bits &= bits - 1;
                    let Some(bytes) = self.inner.vocab.token_bytes(t) else {
                        continue;
                    };
                    if let Some(next) = self.next_state(state, bytes)? {
                        if seen.insert(next) {
                            queue.push(next);
                        }
                    }
                }
            }
        }
        Ok(seen.len())
    }

    /// Heap memory of this index: automaton, cache and masks (the shared vocabulary is
    /// reported by [`Vocabulary::memory_bytes`]).
    pub fn memory_bytes(&self) -> usize {
        let masks = self.inner.masks.read().unwrap_or_else(|e| e.into_inner());
        let mask_bytes: usize = masks.values().map(|m| m.words.len() * 8 + 48).sum();
        self.lock().memory_usage() + mask_bytes + self.inner.program.memory_usage()
    }

    /// Number of masks computed so far.
    pub fn cached_masks(&self) -> usize {
        self.inner
            .masks
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}
