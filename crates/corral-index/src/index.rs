//! [`Index`]: a lazily determinized DFA over a vocabulary, with per-state token masks.
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use arc_swap::ArcSwap;
use corral_automaton::{DState, LazyDfa, LookaheadClass, Program};

use crate::budget::{Evictable, MemoryBudget};
use crate::error::IndexError;
use crate::segmented::Segmented;
use crate::toktrie::PlainTextAutomaton;
use crate::vocab::{Vocabulary, SHORT_PLAIN_CHARS};

/// Limits for building an [`Index`].
#[derive(Clone, Debug)]
pub struct IndexOptions {
    /// Memory the lazy DFA of this index may use for its states before walking it
    /// fails (bytes). Masks are not counted here: they are bounded by the budget.
    pub dfa_cache_bytes: usize,
    /// Most program states a regex given as text may compile to.
    pub max_program_states: usize,
    /// Compute the masks of all reachable states when building (otherwise each state's
    /// mask is computed on first use and cached).
    pub eager: bool,
    /// The budget this index charges its memory to (`None`: [`MemoryBudget::global`]).
    pub budget: Option<Arc<MemoryBudget>>,
}

impl Default for IndexOptions {
    fn default() -> IndexOptions {
        IndexOptions {
            dfa_cache_bytes: 512 << 20,
            max_program_states: 4 << 20,
            eager: false,
            budget: None,
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

    /// Heap bytes of this mask.
    pub fn memory_bytes(&self) -> usize {
        self.words.len() * 8 + std::mem::size_of::<StateMask>()
    }
}

/// The lazy DFA as the token trie walks it.
struct DfaWalk<'a>(&'a mut LazyDfa);

impl PlainTextAutomaton for DfaWalk<'_> {
    type State = DState;
    type Error = corral_automaton::Exhausted;

    #[inline]
    fn step(&mut self, state: DState, byte: u8) -> Result<Option<DState>, Self::Error> {
        self.0.next(state, byte)
    }

    fn absorbs_plain_text(&mut self, state: DState) -> Result<bool, Self::Error> {
        self.0.absorbs_plain_text(state)
    }

    fn known_absorbs(&self, state: DState) -> Option<bool> {
        self.0.known_absorbs_plain_text(state)
    }
}

/// An automaton state (opaque; valid for the [`Index`] that returned it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct State(pub(crate) DState);

/// Plain characters tried from a state that does not take free text itself, to see
/// whether free text is one character away (characters that rarely continue every
/// listed name at once).
const FREE_TEXT_PROBES: [u8; 3] = [b'x', b'Q', b'#'];

/// Transition not known to the index's table yet.
const UNKNOWN: u32 = u32::MAX;
/// Transition to no state.
const DEAD: u32 = u32::MAX - 1;

/// What the index knows of one state, readable without a lock.
struct StateInfo {
    accepting: bool,
    continues: bool,
    /// Next state by byte class: a state index, [`UNKNOWN`] or [`DEAD`]. Allocated when
    /// a transition from this state is first recorded: most states are met only inside
    /// the trie walks of masks and never stepped from by a token.
    next: OnceLock<Box<[AtomicU32]>>,
}

/// The masks computed so far, by state index. Replaced by an empty table when the
/// [`MemoryBudget`] evicts it; gives its bytes back when the last reader drops it.
pub(crate) struct MaskTable {
    masks: Segmented<OnceLock<Arc<StateMask>>>,
    bytes: AtomicUsize,
    budget: Arc<MemoryBudget>,
}

impl std::fmt::Debug for MaskTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskTable")
            .field("bytes", &self.bytes.load(Ordering::Relaxed))
            .finish()
    }
}

impl MaskTable {
    fn new(budget: Arc<MemoryBudget>) -> MaskTable {
        MaskTable {
            masks: Segmented::default(),
            bytes: AtomicUsize::new(0),
            budget,
        }
    }

    pub(crate) fn get(&self, state: DState) -> Option<&Arc<StateMask>> {
        self.masks.get(state.index())?.get()
    }

    /// Store `mask` for `state` (the first one stored wins) and return the stored one.
    fn insert(&self, state: DState, mask: Arc<StateMask>) -> Arc<StateMask> {
        self.store(state, mask, true)
    }

    /// [`MaskTable::insert`] for a mask this table holds already for another state:
    /// only the slot is charged.
    fn insert_shared(&self, state: DState, mask: Arc<StateMask>) -> Arc<StateMask> {
        self.store(state, mask, false)
    }

    fn store(&self, state: DState, mask: Arc<StateMask>, new: bool) -> Arc<StateMask> {
        let Some(slot) = self.masks.get_or_alloc(state.index()) else {
            return mask;
        };
        let before = self.masks.allocated_bytes();
        let mut stored = false;
        let kept = slot
            .get_or_init(|| {
                stored = true;
                mask.clone()
            })
            .clone();
        let grown = self.masks.allocated_bytes().saturating_sub(before)
            + if stored && new {
                kept.memory_bytes()
            } else {
                0
            };
        self.bytes.fetch_add(grown, Ordering::Relaxed);
        self.budget.charge(grown);
        kept
    }
}

impl Drop for MaskTable {
    fn drop(&mut self) {
        self.budget.release(*self.bytes.get_mut());
    }
}

/// The lazy DFA and how far the state table mirrors it: everything behind the one lock.
struct Discovery {
    dfa: LazyDfa,
    /// States `0..published` have their [`StateInfo`] in the table.
    published: usize,
    /// Bytes of DFA and state table charged to the budget so far.
    charged: usize,
    /// Bytes of the transition rows of [`StateInfo::next`] (charged on the next publish).
    rows: usize,
    /// A state whose mask was computed, by its class among states that allow the same
    /// tokens ([`LazyDfa::lookahead_class`]: the positions of a long `maxLength` string
    /// far from its bounds): the others take its mask instead of walking the vocabulary.
    alike: std::collections::HashMap<LookaheadClass, DState>,
}

/// A compiled regex indexed against a vocabulary: shareable between threads and
/// sequences (`Clone` is an `Arc` clone). Use a [`Guide`](crate::Guide) per sequence.
///
/// The index numbers its states densely and keeps, per state, its transitions (by byte
/// class, atomics) and its mask (set once): following known transitions and reading
/// computed masks takes no lock, so any number of sequences and threads share one index
/// without waiting. The lock is taken only to discover states and transitions and to
/// compute a mask that does not exist yet. Memory is charged to a [`MemoryBudget`]
/// (by default the process-wide one), which drops the masks of cold indexes when it
/// runs out.
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

struct Inner {
    program: Arc<Program>,
    vocab: Vocabulary,
    start: DState,
    discovery: Mutex<Discovery>,
    states: Segmented<OnceLock<StateInfo>>,
    masks: ArcSwap<MaskTable>,
    /// How many times `masks` was replaced (readers that keep a table compare it).
    mask_generation: AtomicU64,
    budget: Arc<MemoryBudget>,
    last_used: AtomicU64,
    cache_limit: usize,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("program_states", &self.program.states().len())
            .field("budget", &self.budget)
            .finish()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let discovery = self.discovery.get_mut().unwrap_or_else(|e| e.into_inner());
        self.budget.release(discovery.charged);
    }
}

impl Evictable for Inner {
    fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    fn evict_masks(&self) -> usize {
        let empty = Arc::new(MaskTable::new(self.budget.clone()));
        let old = self.masks.swap(empty);
        self.mask_generation.fetch_add(1, Ordering::Release);
        old.bytes.load(Ordering::Relaxed)
    }
}

impl Index {
    /// Build with default [`IndexOptions`] (a regex given as text; see
    /// [`Index::from_program`] for automata built by `corral-schema`).
    pub fn new(regex: &str, vocab: &Vocabulary) -> Result<Index, IndexError> {
        Index::from_regex_with_options(regex, vocab, &IndexOptions::default())
    }

    /// Build an index for documents matching `regex` (as a whole) over `vocab`.
    pub fn from_regex_with_options(
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
        let budget = options.budget.clone().unwrap_or_else(MemoryBudget::global);
        let inner = Arc::new(Inner {
            program,
            vocab: vocab.clone(),
            start,
            discovery: Mutex::new(Discovery {
                dfa,
                published: 0,
                charged: 0,
                rows: 0,
                alike: Default::default(),
            }),
            states: Segmented::default(),
            masks: ArcSwap::from_pointee(MaskTable::new(budget.clone())),
            mask_generation: AtomicU64::new(0),
            last_used: AtomicU64::new(budget.tick()),
            budget,
            cache_limit: options.dfa_cache_bytes,
        });
        let weak: Weak<dyn Evictable> = Arc::downgrade(&inner) as Weak<dyn Evictable>;
        inner.budget.register(weak);
        let index = Index { inner };
        {
            let mut discovery = index.lock();
            index.publish(&mut discovery)?;
        }
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

    /// The memory budget this index charges.
    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.inner.budget
    }

    /// Mark the index as used now (for the budget's choice of what to evict). Done when
    /// a guide starts and when a mask is computed, not on every read: a shared counter
    /// written on every token would make threads wait on each other's cache lines.
    pub fn touch(&self) {
        self.inner
            .last_used
            .store(self.inner.budget.tick(), Ordering::Relaxed);
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Discovery> {
        // A panic while holding the lock cannot leave the DFA inconsistent for our use
        // (states are only added), so recover from poisoning.
        self.inner
            .discovery
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The table entry of `state`; an error for a state of another index.
    #[inline]
    fn info(&self, state: DState) -> Result<&StateInfo, IndexError> {
        self.inner
            .states
            .get(state.index())
            .and_then(OnceLock::get)
            .ok_or(IndexError::UnknownState)
    }

    /// Give every state the DFA discovered since the last call its table entry, and
    /// charge what the DFA and the table grew by. Called with the lock held.
    fn publish(&self, discovery: &mut Discovery) -> Result<(), IndexError> {
        let count = discovery.dfa.state_count();
        for i in discovery.published..count {
            let s = DState::from_index(i as u32);
            let slot = self
                .inner
                .states
                .get_or_alloc(i)
                .ok_or_else(|| self.exhausted())?;
            let _ = slot.set(StateInfo {
                accepting: discovery.dfa.is_accepting(s),
                continues: discovery.dfa.has_continuation(s),
                next: OnceLock::new(),
            });
        }
        discovery.published = count;
        let total =
            discovery.dfa.memory_usage() + self.inner.states.allocated_bytes() + discovery.rows;
        let grown = total.saturating_sub(discovery.charged);
        discovery.charged = total.max(discovery.charged);
        self.inner.budget.charge(grown);
        Ok(())
    }

    /// Follow `byte` from `s` through the DFA (lock held), recording the transition in
    /// the table.
    fn discover(
        &self,
        discovery: &mut Discovery,
        s: DState,
        byte: u8,
    ) -> Result<Option<DState>, IndexError> {
        let next = discovery.dfa.next(s, byte).map_err(|_| self.exhausted())?;
        self.publish(discovery)?;
        let class = self.inner.program.byte_class(byte);
        let code = next.map_or(DEAD, |n| n.index() as u32);
        let classes = self.inner.program.byte_classes();
        let row = self.info(s)?.next.get_or_init(|| {
            discovery.rows += classes * 4;
            (0..classes).map(|_| AtomicU32::new(UNKNOWN)).collect()
        });
        row[class].store(code, Ordering::Release);
        Ok(next)
    }

    /// The state after `bytes` from `state`, or `None` if they lead nowhere.
    pub fn next_state(&self, state: State, bytes: &[u8]) -> Result<Option<State>, IndexError> {
        let mut s = state.0;
        for (i, &b) in bytes.iter().enumerate() {
            let class = self.inner.program.byte_class(b);
            let code = self
                .info(s)?
                .next
                .get()
                .map_or(UNKNOWN, |row| row[class].load(Ordering::Acquire));
            match code {
                DEAD => return Ok(None),
                UNKNOWN => return self.next_state_locked(s, &bytes[i..]),
                id => s = DState::from_index(id),
            }
        }
        Ok(Some(State(s)))
    }

    #[cold]
    fn next_state_locked(&self, mut s: DState, bytes: &[u8]) -> Result<Option<State>, IndexError> {
        let mut discovery = self.lock();
        for &b in bytes {
            match self.discover(&mut discovery, s, b)? {
                Some(next) => s = next,
                None => return Ok(None),
            }
        }
        Ok(Some(State(s)))
    }

    /// Whether the text leading to `state` is a complete document.
    pub fn is_accepting(&self, state: State) -> Result<bool, IndexError> {
        Ok(self.info(state.0)?.accepting)
    }

    /// Whether some byte continues the document from `state` (when not, and the state is
    /// accepting, only end-of-sequence may follow).
    pub fn has_continuation(&self, state: State) -> Result<bool, IndexError> {
        Ok(self.info(state.0)?.continues)
    }

    /// The mask table in use now and its generation (see [`Index::mask_generation`]).
    pub(crate) fn mask_table(&self) -> (Arc<MaskTable>, u64) {
        // The generation first: a replacement in between shows as a change next time.
        let generation = self.mask_generation();
        (self.inner.masks.load_full(), generation)
    }

    /// How many times the budget dropped this index's masks.
    pub(crate) fn mask_generation(&self) -> u64 {
        self.inner.mask_generation.load(Ordering::Acquire)
    }

    /// The mask of `state` if it was already computed (never computes it).
    pub fn cached_mask(&self, state: State) -> Option<Arc<StateMask>> {
        self.inner.masks.load().get(state.0).cloned()
    }

    /// The mask of `state`, computed on first use and cached.
    pub fn mask(&self, state: State) -> Result<Arc<StateMask>, IndexError> {
        // A guard, not a clone of the table's `Arc`: readers on many threads write to
        // no shared counter but the mask's own.
        if let Some(mask) = self.inner.masks.load().get(state.0) {
            return Ok(mask.clone());
        }
        self.info(state.0)?;
        self.touch();
        let table = self.inner.masks.load_full();
        let mut discovery = self.lock();
        // Another thread may have computed it while this one waited for the lock.
        if let Some(mask) = table.get(state.0) {
            return Ok(mask.clone());
        }
        let horizon = self.inner.vocab.max_token_bytes();
        let class = discovery.dfa.lookahead_class(state.0, horizon);
        if let Some(class) = &class {
            let alike = discovery.alike.get(class).and_then(|&s| table.get(s));
            if let Some(mask) = alike.cloned() {
                drop(discovery);
                return Ok(table.insert_shared(state.0, mask));
            }
        }
        let mask = self.compute_mask(&mut discovery, state.0, class.as_ref())?;
        if let Some(class) = class {
            discovery.rows += class.memory_bytes() + 16;
            discovery.alike.insert(class, state.0);
        }
        drop(discovery);
        Ok(table.insert(state.0, Arc::new(mask)))
    }

    /// The mask of `state`, whose [`LazyDfa::lookahead_class`] is `class`.
    fn compute_mask(
        &self,
        discovery: &mut Discovery,
        state: DState,
        class: Option<&LookaheadClass>,
    ) -> Result<StateMask, IndexError> {
        let vocab = &self.inner.vocab;
        let mut words = vec![0u64; vocab.len().div_ceil(64)].into_boxed_slice();
        let dfa = &mut discovery.dfa;
        // Inside a string that can take any plain text (a free string), every plain text
        // token is allowed: set them at once and walk only the other tokens. Inside a
        // string with enough characters left (far enough from its `maxLength`), every
        // short plain text token is: set those and walk the long ones and the others.
        let short = vocab.max_plain_chars().min(SHORT_PLAIN_CHARS);
        let set = |words: &mut [u64], t: u32| words[t as usize / 64] |= 1 << (t % 64);
        let absorbs = dfa
            .absorbs_plain_text(state)
            .map_err(|_| self.exhausted())?;
        // Free text one character away (a property name that may be a listed name or
        // any other, a few bytes in): the trie walk takes plain text in bulk from there,
        // stepping only along the listed names, where looking 16 characters ahead
        // would build their states for every character.
        let mut free_soon = false;
        if !absorbs {
            for &b in &FREE_TEXT_PROBES {
                if let Some(next) = dfa.next(state, b).map_err(|_| self.exhausted())? {
                    if dfa.absorbs_plain_text(next).map_err(|_| self.exhausted())? {
                        free_soon = true;
                        break;
                    }
                }
            }
        }
        // Every plain text token at once: free text, or text that soon repeats itself
        // (then no need to look for how much plain text may follow).
        let all_plain = absorbs || (!free_soon && self.plain_text_repeats(dfa, state, class)?);
        let depth = if all_plain {
            short
        } else if free_soon {
            0
        } else {
            dfa.plain_text_depth(state, short)
                .map_err(|_| self.exhausted())?
        };
        if depth >= short {
            if all_plain {
                words.copy_from_slice(vocab.plain_text());
            } else {
                words.copy_from_slice(vocab.short_plain());
                vocab
                    .long_plain_trie()
                    .walk(state, |s, byte| dfa.next(s, byte), |t| set(&mut words, t))
                    .map_err(|_| self.exhausted())?;
            }
            vocab
                .other_trie()
                .walk(state, |s, byte| dfa.next(s, byte), |t| set(&mut words, t))
                .map_err(|_| self.exhausted())?;
        } else if let Some(plain) = self.plain_up_to_limit(dfa, state, depth, free_soon)? {
            // Near the end of a string with a `maxLength`: the plain text tokens allowed
            // are those short enough, whatever their characters; walk only the others.
            words.copy_from_slice(plain);
            vocab
                .other_trie()
                .walk(state, |s, byte| dfa.next(s, byte), |t| set(&mut words, t))
                .map_err(|_| self.exhausted())?;
        } else {
            // Not inside free text here, but perhaps a few bytes further (a property name
            // that may be a listed name or any other): take plain text in bulk there.
            vocab
                .trie()
                .walk_absorbing(
                    vocab.other_trie(),
                    vocab.other_map(),
                    &mut DfaWalk(dfa),
                    state,
                    &mut words,
                    vocab.plain_text(),
                )
                .map_err(|_| self.exhausted())?;
        }
        let accepting = dfa.is_accepting(state);
        if accepting {
            for &eos in vocab.eos_tokens() {
                words[eos as usize / 64] |= 1 << (eos % 64);
            }
        }
        self.publish(discovery)?;
        Ok(StateMask { words, accepting })
    }

    /// Whether every plain text token is allowed from `state` because plain text soon
    /// repeats itself: every plain text character leads from `state` to one state, and
    /// so on, until (within a few characters: a `minLength` to reach) a state
    /// leads to one of its own `class` — a position of a long `maxLength` string far from
    /// its bounds, whose next position no token can tell from it. From there every plain
    /// string of up to the longest token's bytes goes on (by induction on its length,
    /// each character landing where the rest behaves as before it), so the long plain
    /// tokens need no walk — a walk that would build their states 128 characters ahead.
    fn plain_text_repeats(
        &self,
        dfa: &mut LazyDfa,
        state: DState,
        class: Option<&LookaheadClass>,
    ) -> Result<bool, IndexError> {
        /// Plain characters followed before giving up.
        const REPEAT_SEARCH: usize = 4;
        let Some(class) = class else {
            return Ok(false);
        };
        let horizon = self.inner.vocab.max_token_bytes();
        let exhausted = |_| self.exhausted();
        let mut class = class.clone();
        let mut current = state;
        for _ in 0..REPEAT_SEARCH {
            let Some(next) = dfa.plain_char_successor(current).map_err(exhausted)? else {
                return Ok(false);
            };
            let Some(next_class) = dfa.lookahead_class(next, horizon) else {
                return Ok(false);
            };
            if next_class == class {
                return Ok(true);
            }
            (current, class) = (next, next_class);
        }
        Ok(false)
    }

    /// The plain text tokens allowed from `state` when they are exactly those of at most
    /// some number of characters ([`LazyDfa::plain_text_limit`]; all plain strings of
    /// `depth` characters are known to follow).
    fn plain_up_to_limit(
        &self,
        dfa: &mut LazyDfa,
        state: DState,
        depth: u32,
        free_soon: bool,
    ) -> Result<Option<&[u64]>, IndexError> {
        let vocab = &self.inner.vocab;
        if free_soon {
            return Ok(None);
        }
        let bound = vocab.max_plain_chars().min(SHORT_PLAIN_CHARS);
        let limit = dfa
            .plain_text_limit(state, bound)
            .map_err(|_| self.exhausted())?;
        Ok(limit
            .filter(|&d| d >= depth)
            .and_then(|d| vocab.plain_up_to(d)))
    }

    /// The bytes every continuation from `state` must start with (empty when there is a
    /// choice, including the choice to stop).
    pub fn forced_bytes(&self, state: State) -> Result<Vec<u8>, IndexError> {
        let mut out = Vec::new();
        let mut s = state.0;
        self.info(s)?;
        let mut discovery = self.lock();
        let dfa = &mut discovery.dfa;
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
        self.publish(&mut discovery)?;
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

    /// Heap memory of this index: automaton, state table and masks (the shared
    /// vocabulary is reported by [`Vocabulary::memory_bytes`]).
    pub fn memory_bytes(&self) -> usize {
        let masks = self.inner.masks.load().bytes.load(Ordering::Relaxed);
        self.lock().charged + masks + self.inner.program.memory_usage()
    }

    /// Number of masks cached now.
    pub fn cached_masks(&self) -> usize {
        let table = self.inner.masks.load();
        let discovered = self.lock().published;
        (0..discovered)
            .filter(|&i| table.get(DState::from_index(i as u32)).is_some())
            .count()
    }
}
