//! [`Index`]: a lazily determinized DFA over a vocabulary, with per-state token masks.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::hybrid::LazyStateID;
use regex_automata::util::start;
use regex_automata::{nfa::thompson, Anchored, MatchKind};

use crate::error::IndexError;
use crate::vocab::Vocabulary;

/// Limits for building an [`Index`].
#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// Memory the lazy DFA may use for its states before building fails (bytes).
    pub dfa_cache_bytes: usize,
    /// Size limit of the intermediate NFA (bytes).
    pub nfa_size_limit: usize,
    /// Compute the masks of all reachable states when building (otherwise each state's
    /// mask is computed on first use and cached).
    pub eager: bool,
}

impl Default for IndexOptions {
    fn default() -> IndexOptions {
        IndexOptions {
            dfa_cache_bytes: 512 << 20,
            nfa_size_limit: 256 << 20,
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

/// The lazy DFA's mutable search state, plus the liveness of match states.
#[derive(Debug)]
struct Search {
    cache: Cache,
    /// regex-automata reports a match one byte late: the state after the byte that
    /// follows a complete document is tagged "match" but may have no way forward. Such
    /// states are checked once for a live continuation.
    match_live: HashMap<LazyStateID, bool>,
}

impl Search {
    /// The next state, or `None` when no accepted document continues this way.
    #[inline]
    fn step(&mut self, dfa: &DFA, s: LazyStateID, byte: u8) -> Result<Option<LazyStateID>, ()> {
        let next = dfa.next_state(&mut self.cache, s, byte).map_err(|_| ())?;
        if next.is_dead() {
            return Ok(None);
        }
        if next.is_match() && !self.is_live(dfa, next)? {
            return Ok(None);
        }
        Ok(Some(next))
    }

    fn is_live(&mut self, dfa: &DFA, s: LazyStateID) -> Result<bool, ()> {
        if let Some(&live) = self.match_live.get(&s) {
            return Ok(live);
        }
        let mut live = dfa
            .next_eoi_state(&mut self.cache, s)
            .map_err(|_| ())?
            .is_match();
        for b in 0..=255u8 {
            if live {
                break;
            }
            let next = dfa.next_state(&mut self.cache, s, b).map_err(|_| ())?;
            // A match-tagged successor is live at least in that it ended a match at `b`.
            live = !next.is_dead();
        }
        self.match_live.insert(s, live);
        Ok(live)
    }
}

/// An automaton state (opaque).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct State(pub(crate) LazyStateID);

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
    dfa: DFA,
    cache: Mutex<Search>,
    start: LazyStateID,
    vocab: Vocabulary,
    masks: RwLock<HashMap<LazyStateID, Arc<StateMask>>>,
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
        let nfa = thompson::Compiler::new()
            .syntax(
                regex_automata::util::syntax::Config::new()
                    .unicode(true)
                    .utf8(false),
            )
            .configure(
                thompson::Config::new()
                    .nfa_size_limit(Some(options.nfa_size_limit))
                    .which_captures(thompson::WhichCaptures::None)
                    .shrink(false),
            )
            .build(regex)
            .map_err(|e| IndexError::Build(error_chain(&e)))?;
        Index::from_nfa_with_options(nfa, vocab, options)
    }

    /// Build with default [`IndexOptions`] from an automaton built elsewhere (e.g.
    /// `corral_schema::Compiled::nfa`). It must be anchored: documents match it as a whole.
    pub fn from_nfa(nfa: thompson::NFA, vocab: &Vocabulary) -> Result<Index, IndexError> {
        Index::from_nfa_with_options(nfa, vocab, &IndexOptions::default())
    }

    /// Build an index for documents matched as a whole by `nfa` over `vocab`.
    pub fn from_nfa_with_options(
        nfa: thompson::NFA,
        vocab: &Vocabulary,
        options: &IndexOptions,
    ) -> Result<Index, IndexError> {
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .cache_capacity(options.dfa_cache_bytes)
                    .minimum_cache_clear_count(Some(0)),
            )
            .build_from_nfa(nfa)
            .map_err(|e| IndexError::Build(error_chain(&e)))?;
        let mut cache = dfa.create_cache();
        let start = dfa
            .start_state(&mut cache, &start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| IndexError::Build(e.to_string()))?;
        if start.is_dead() {
            return Err(IndexError::Empty);
        }
        let index = Index {
            inner: Arc::new(Inner {
                dfa,
                cache: Mutex::new(Search {
                    cache,
                    match_live: HashMap::new(),
                }),
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Search> {
        // A panic while holding the lock cannot leave the cache inconsistent for our use
        // (states are only added), so recover from poisoning.
        self.inner.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state after `bytes` from `state`, or `None` if they lead nowhere.
    pub fn next_state(&self, state: State, bytes: &[u8]) -> Result<Option<State>, IndexError> {
        let mut search = self.lock();
        let mut s = state.0;
        for &b in bytes {
            match search
                .step(&self.inner.dfa, s, b)
                .map_err(|()| self.exhausted())?
            {
                Some(next) => s = next,
                None => return Ok(None),
            }
        }
        Ok(Some(State(s)))
    }

    /// Whether the text leading to `state` is a complete document.
    pub fn is_accepting(&self, state: State) -> Result<bool, IndexError> {
        let mut search = self.lock();
        let eoi = self
            .inner
            .dfa
            .next_eoi_state(&mut search.cache, state.0)
            .map_err(|_| self.exhausted())?;
        Ok(eoi.is_match())
    }

    /// Whether some byte continues the document from `state` (when not, and the state is
    /// accepting, only end-of-sequence may follow).
    pub fn has_continuation(&self, state: State) -> Result<bool, IndexError> {
        let mut search = self.lock();
        for b in 0..=255u8 {
            if search
                .step(&self.inner.dfa, state.0, b)
                .map_err(|()| self.exhausted())?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(false)
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

    fn compute_mask(&self, state: LazyStateID) -> Result<StateMask, IndexError> {
        let vocab = &self.inner.vocab;
        let mut words = vec![0u64; vocab.len().div_ceil(64)].into_boxed_slice();
        let dfa = &self.inner.dfa;
        let mut search = self.lock();
        let search = &mut *search;
        vocab
            .trie()
            .walk(
                state,
                |s, byte| search.step(dfa, s, byte),
                |t| words[t as usize / 64] |= 1 << (t % 64),
            )
            .map_err(|()| self.exhausted())?;
        let accepting = dfa
            .next_eoi_state(&mut search.cache, state)
            .map_err(|_| self.exhausted())?
            .is_match();
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
        let mut search = self.lock();
        let dfa = &self.inner.dfa;
        loop {
            if dfa
                .next_eoi_state(&mut search.cache, s)
                .map_err(|_| self.exhausted())?
                .is_match()
            {
                break;
            }
            let mut only: Option<(u8, LazyStateID)> = None;
            let mut choices = 0;
            for b in 0..=255u8 {
                let next = search.step(dfa, s, b).map_err(|()| self.exhausted())?;
                if let Some(next) = next {
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
        self.inner.dfa.memory_usage()
            + self.lock().cache.memory_usage()
            + mask_bytes
            + self.inner.dfa.get_nfa().memory_usage()
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

/// An error and its sources, joined (regex-automata's build errors keep the detail in
/// the source chain).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
