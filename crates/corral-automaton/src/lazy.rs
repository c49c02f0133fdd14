//! The lazy DFA: sets of threads, determinized on demand.
use std::collections::HashMap;
use std::sync::Arc;

use crate::program::{Program, State, StateId};
use crate::Exhausted;

/// A state's threads with the copies of counted repetitions replaced by those that
/// stand for them ([`LazyDfa::lookahead_class`]): equal classes, equal tokens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LookaheadClass {
    threads: Box<[Thread]>,
    accepting: bool,
}

impl LookaheadClass {
    /// Heap bytes of the class.
    pub fn memory_bytes(&self) -> usize {
        self.threads.len() * std::mem::size_of::<Thread>() + std::mem::size_of::<Self>()
    }
}

/// A state of a [`LazyDfa`] (valid for the DFA that returned it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DState(u32);

impl DState {
    /// A dense index (0, 1, 2, … in order of discovery).
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The state with dense index `index`, for callers that keep their own tables by
    /// index. Meaningful only for the DFA that issued it and below its
    /// [`LazyDfa::state_count`] (the DFA's methods panic on other ids).
    pub fn from_index(index: u32) -> DState {
        DState(index)
    }
}

/// Transition not computed yet.
const UNKNOWN: u32 = u32::MAX;
/// Transition to the dead state (no thread survives).
const DEAD: u32 = u32::MAX - 1;

/// The stack of return states, hash-consed: id 0 is the empty stack.
type StackId = u32;

/// A set of written members ([`State::Claim`]), hash-consed: id 0 is the empty set.
type ClaimsId = u32;

/// One call's frame: where it returns, the caller's stack, and the members of its
/// object written so far.
type Frame = (StateId, StackId, ClaimsId);

/// A thread: a byte-consuming program state and its call stack.
type Thread = (StateId, StackId);

struct Determinized {
    /// This state's threads: `LazyDfa::threads[start..end]` (all threads of all states
    /// live in one array: a state costs no allocation of its own).
    threads: (u32, u32),
    accepting: bool,
    /// Whether every plain text character leads back here (see
    /// [`LazyDfa::absorbs_plain_text`]); computed on first question.
    absorbs: Option<bool>,
    /// [`LazyDfa::plain_text_depth`]: the bound it was computed for, the depth found, and
    /// — when the search stopped at the bound on a single state — that state, from which
    /// a later question can go on (a string with a `maxLength` moves one state per
    /// character: the next position need not walk the whole window again).
    plain_depth: Option<PlainDepth>,
}

/// The states whose (threads, accepting) share one hash (almost always one state).
enum SameHash {
    One(u32),
    Many(Vec<u32>),
}

/// A set of byte classes (at most 256).
#[derive(Clone, Copy, Default)]
struct ClassSet([u64; 4]);

impl ClassSet {
    /// Classes `0..n`.
    fn full(n: usize) -> ClassSet {
        match n {
            0 => ClassSet::default(),
            _ => ClassSet::span(0, n - 1),
        }
    }

    /// Classes `lo..=hi`.
    fn span(lo: usize, hi: usize) -> ClassSet {
        let mut set = ClassSet::default();
        for (w, word) in set.0.iter_mut().enumerate() {
            let (from, to) = (w * 64, w * 64 + 63);
            if hi < from || lo > to {
                continue;
            }
            let a = lo.max(from) - from;
            let b = hi.min(to) - from;
            *word = (u64::MAX >> (63 - b)) & (u64::MAX << a);
        }
        set
    }

    fn keep(&mut self, other: &ClassSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a &= b;
        }
    }

    fn remove(&mut self, other: &ClassSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a &= !b;
        }
    }

    fn add(&mut self, other: &ClassSet) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let i = bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    w * 64 + i
                })
            })
        })
    }
}

/// A fast hash for the automata's own integer keys (no untrusted input reaches it: keys
/// are state and stack ids the DFA or a product construction assigns).
pub(crate) type FastHash = std::hash::BuildHasherDefault<MultiplyHasher>;

#[derive(Default)]
pub(crate) struct MultiplyHasher(u64);

impl std::hash::Hasher for MultiplyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[derive(Clone, Copy, Debug)]
struct PlainDepth {
    bound: u32,
    depth: u32,
    frontier: Option<DState>,
}

/// A DFA built lazily over a [`Program`] (see the [crate docs](crate)).
pub struct LazyDfa {
    program: Arc<Program>,
    /// Stack id → its top frame.
    stacks: Vec<Frame>,
    stack_ids: HashMap<Frame, StackId, FastHash>,
    /// Claims id → the members written, as a bit set without trailing zero words.
    claims: Vec<Box<[u64]>>,
    claims_ids: HashMap<Box<[u64]>, ClaimsId>,
    states: Vec<Determinized>,
    /// The threads of every state (see [`Determinized::threads`]).
    threads: Vec<Thread>,
    /// Next state by state and byte class: entry `state * classes + class`
    /// ([`Program::byte_class`]).
    transitions: Vec<u32>,
    /// Number of byte classes of the program.
    classes: usize,
    /// States by a hash of (threads, accepting): the threads are kept once, in the state.
    state_ids: HashMap<u64, SameHash, FastHash>,
    start: DState,
    memory: usize,
    limit: usize,
    /// Scratch for the closure: threads to visit, and those visited — by program state
    /// the generation and stack of the first visit (`visited`), others in `seen` (a state
    /// is rarely reached with two stacks in one closure, so this is mostly a hash-free
    /// array lookup).
    todo: Vec<Thread>,
    seen: std::collections::HashSet<Thread, FastHash>,
    visited: Vec<(u32, StackId)>,
    generation: u32,
    /// Scratch for the seeds of a transition.
    seeds: Vec<Thread>,
    /// Scratch for the threads a closure reaches (given back after interning them).
    reached: Vec<Thread>,
}

impl std::fmt::Debug for LazyDfa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyDfa")
            .field("states", &self.states.len())
            .field("stacks", &self.stacks.len())
            .field("memory", &self.memory)
            .finish()
    }
}

impl LazyDfa {
    /// A lazy DFA over `program` that may use about `limit` bytes for its states.
    pub fn new(program: Arc<Program>, limit: usize) -> LazyDfa {
        let mut dfa = LazyDfa {
            stacks: vec![(StateId::MAX, 0, 0)],
            stack_ids: HashMap::default(),
            claims: vec![Box::new([])],
            claims_ids: HashMap::default(),
            states: Vec::new(),
            threads: Vec::new(),
            transitions: Vec::new(),
            classes: program.byte_classes(),
            state_ids: HashMap::default(),
            start: DState(0),
            memory: 0,
            limit,
            todo: Vec::new(),
            seen: std::collections::HashSet::default(),
            visited: vec![(0, 0); program.states.len()],
            generation: 0,
            seeds: Vec::new(),
            reached: Vec::new(),
            program,
        };
        let start = dfa.program.start;
        // The first state always fits: the budget applies to what follows.
        let (threads, accepting) = dfa.closure(&[(start, 0)]);
        dfa.start = DState(dfa.intern(&threads, accepting));
        dfa.reached = threads;
        dfa
    }

    /// The initial state.
    pub fn start(&self) -> DState {
        self.start
    }

    /// Whether the bytes leading to `s` form a complete document.
    pub fn is_accepting(&self, s: DState) -> bool {
        self.states[s.index()].accepting
    }

    /// Whether some byte leads on from `s` (`false` when only the end may follow).
    pub fn has_continuation(&self, s: DState) -> bool {
        let (start, end) = self.states[s.index()].threads;
        start != end
    }

    /// Number of states discovered so far (their dense indexes are `0..state_count()`).
    pub fn state_count(&self) -> usize {
        self.states.len()
    }

    /// Memory used by discovered states and stacks.
    pub fn memory_usage(&self) -> usize {
        self.memory
    }

    /// The state after `byte`, or `None` when no document continues this way.
    #[inline]
    pub fn next(&mut self, s: DState, byte: u8) -> Result<Option<DState>, Exhausted> {
        let class = self.program.byte_class(byte);
        let known = self.transitions[s.index() * self.classes + class];
        match known {
            DEAD => Ok(None),
            UNKNOWN => self.compute(s, byte),
            id => Ok(Some(DState(id))),
        }
    }

    /// Whether every *plain text character* — a complete UTF-8 character other than a
    /// control character (below U+0020), `"` and `\` — leads from `s` back to `s`.
    /// Then every byte string of such characters does, and a caller may accept all of
    /// them at once (inside a JSON string, most of a vocabulary) instead of walking
    /// them byte by byte. Each byte range of each UTF-8 length is followed as a set of
    /// states, so the check costs a few hundred transitions, once per state.
    pub fn absorbs_plain_text(&mut self, s: DState) -> Result<bool, Exhausted> {
        if let Some(known) = self.states[s.index()].absorbs {
            return Ok(known);
        }
        let absorbs = self.check_absorbs(s)?;
        self.states[s.index()].absorbs = Some(absorbs);
        Ok(absorbs)
    }

    /// [`LazyDfa::absorbs_plain_text`] where it was already checked for `s`.
    pub fn known_absorbs_plain_text(&self, s: DState) -> Option<bool> {
        self.states[s.index()].absorbs
    }

    fn check_absorbs(&mut self, s: DState) -> Result<bool, Exhausted> {
        // Path by path, stopping at the first character that leads elsewhere: most
        // states that do not absorb show it on an ASCII character, before the states
        // inside multi-byte characters are built.
        let program = Arc::clone(&self.program);
        let mut scratch = Vec::new();
        for path in program.plain_char_paths() {
            match self.follow_path(&[s], path, &mut scratch)? {
                Some(reached) if reached == [s] => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The states reached from `level` by the characters of one plain-character path
    /// ([`Program::plain_char_paths`]), or `None` when one of them leads nowhere.
    fn follow_path(
        &mut self,
        level: &[DState],
        path: &[Box<[u8]>],
        scratch: &mut Vec<DState>,
    ) -> Result<Option<Vec<DState>>, Exhausted> {
        let mut current = level.to_vec();
        for reps in path {
            scratch.clear();
            for &q in &current {
                for &b in reps.iter() {
                    match self.next(q, b)? {
                        Some(n) => scratch.push(n),
                        None => return Ok(None),
                    }
                }
            }
            scratch.sort_unstable();
            scratch.dedup();
            std::mem::swap(&mut current, scratch);
        }
        Ok(Some(current))
    }

    /// How many plain text characters, in any combination, can follow `s` (up to
    /// `bound`): all plain text tokens of at most that many characters are then allowed
    /// from `s`. Inside a free string it is unbounded ([`LazyDfa::absorbs_plain_text`]);
    /// inside a string with a `maxLength` it is the length left. A lower bound: the
    /// search stops early when the set of states it follows grows large.
    pub fn plain_text_depth(&mut self, s: DState, bound: u32) -> Result<u32, Exhausted> {
        /// Most states followed at once before settling for the depth reached.
        const MAX_LEVEL: usize = 8;
        let memo = |dfa: &Self, q: DState| {
            dfa.states[q.index()]
                .plain_depth
                .filter(|m| m.bound == bound)
        };
        let (mut depth, mut level) = match memo(self, s) {
            Some(m) if m.frontier.is_none() || m.depth >= bound => return Ok(m.depth.min(bound)),
            Some(PlainDepth {
                depth,
                frontier: Some(f),
                ..
            }) => (depth, vec![f]),
            _ => (0, vec![s]),
        };
        // Single states met on the way, with the depth they were met at.
        let mut path: Vec<(DState, u32)> = Vec::new();
        let mut open = true;
        while depth < bound {
            if let [only] = level[..] {
                if only != s || depth == 0 {
                    path.push((only, depth));
                }
                if let Some(m) = memo(self, only).filter(|m| m.frontier.is_none()) {
                    depth = depth.saturating_add(m.depth);
                    open = false;
                    break;
                }
            }
            let Some(next) = self.after_plain_char(&level)? else {
                open = false;
                break;
            };
            if let [only] = level[..] {
                let absorbs = next == [only];
                self.states[only.index()].absorbs = Some(absorbs);
                if absorbs {
                    depth = u32::MAX;
                    open = false;
                    break;
                }
            }
            if next.len() > MAX_LEVEL {
                open = false;
                break;
            }
            level = next;
            depth += 1;
        }
        let frontier = match level[..] {
            [only] if open => Some(only),
            _ => None,
        };
        for &(state, at) in &path {
            self.states[state.index()].plain_depth = Some(PlainDepth {
                bound,
                depth: depth.saturating_sub(at),
                frontier,
            });
        }
        if !path.iter().any(|&(q, _)| q == s) {
            self.states[s.index()].plain_depth = Some(PlainDepth {
                bound,
                depth,
                frontier,
            });
        }
        Ok(depth.min(bound))
    }

    /// The state every plain text character leads `s` to, when they all lead to one
    /// (inside a string with a `maxLength`, the next position).
    pub fn plain_char_successor(&mut self, s: DState) -> Result<Option<DState>, Exhausted> {
        Ok(match self.after_plain_char(&[s])?.as_deref() {
            Some(&[only]) => Some(only),
            _ => None,
        })
    }

    /// `Some(d)` when the plain text that can follow `s` is exactly the strings of at
    /// most `d` plain text characters (`d < bound`): the end of a string with a
    /// `maxLength`, where the plain text tokens allowed are those of at most `d`
    /// characters, whatever they are. `None` when some plain strings of a length can
    /// follow and others cannot (a pattern, a listed name), or none stops before `bound`.
    pub fn plain_text_limit(&mut self, s: DState, bound: u32) -> Result<Option<u32>, Exhausted> {
        /// Most states followed at once before giving up.
        const MAX_LEVEL: usize = 8;
        let mut level = vec![s];
        for depth in 0..bound {
            if !self.some_plain_char(&level)? {
                return Ok(Some(depth));
            }
            match self.after_plain_char(&level)? {
                Some(next) if next.len() <= MAX_LEVEL => level = next,
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Whether some plain text character leads somewhere from some state of `level`.
    fn some_plain_char(&mut self, level: &[DState]) -> Result<bool, Exhausted> {
        let program = Arc::clone(&self.program);
        let mut current = Vec::new();
        let mut next = Vec::new();
        for path in program.plain_char_paths() {
            current.clear();
            current.extend_from_slice(level);
            for reps in path {
                next.clear();
                for &q in &current {
                    for &b in reps.iter() {
                        if let Some(n) = self.next(q, b)? {
                            next.push(n);
                        }
                    }
                }
                next.sort_unstable();
                next.dedup();
                std::mem::swap(&mut current, &mut next);
                if current.is_empty() {
                    break;
                }
            }
            if !current.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The states reached from `level` by one plain text character, or `None` when some
    /// such character leads nowhere. Only one byte per byte class is followed.
    fn after_plain_char(&mut self, level: &[DState]) -> Result<Option<Vec<DState>>, Exhausted> {
        let program = Arc::clone(&self.program);
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        for path in program.plain_char_paths() {
            match self.follow_path(level, path, &mut scratch)? {
                Some(reached) => out.extend(reached),
                None => return Ok(None),
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(Some(out))
    }

    /// Determinize the transition from `s` by `byte`, and record it for every byte class
    /// that leads `s` to the same threads: inside a string, the dozens of classes of
    /// plain characters (as many as the schema's literals split them into) make one
    /// closure, not one each.
    #[cold]
    fn compute(&mut self, s: DState, byte: u8) -> Result<Option<DState>, Exhausted> {
        let program = Arc::clone(&self.program);
        let mut seeds = std::mem::take(&mut self.seeds);
        seeds.clear();
        // The classes whose seeds are the same as `byte`'s, narrowed thread by thread:
        // a thread that takes `byte` keeps the classes where it goes to the same place,
        // a thread that does not drops the classes it takes.
        let mut same = ClassSet::full(self.classes);
        let span = |lo: u8, hi: u8| ClassSet::span(program.byte_class(lo), program.byte_class(hi));
        let (start, end) = self.states[s.index()].threads;
        for &(state, stack) in &self.threads[start as usize..end as usize] {
            let single;
            let ranges = match &program.states[state as usize] {
                State::Range { lo, hi, next } => {
                    single = [(*lo, *hi, *next)];
                    &single[..]
                }
                State::Sparse(ranges) => &ranges[..],
                _ => continue,
            };
            let hit = ranges
                .iter()
                .find(|&&(lo, hi, _)| lo <= byte && byte <= hi)
                .map(|&(_, _, next)| next);
            let mut taken = ClassSet::default();
            for &(lo, hi, next) in ranges {
                if hit.is_none() || hit == Some(next) {
                    taken.add(&span(lo, hi));
                }
            }
            match hit {
                Some(next) => {
                    seeds.push((next, stack));
                    same.keep(&taken);
                }
                None => same.remove(&taken),
            }
        }
        let (threads, accepting) = self.closure(&seeds);
        self.seeds = seeds;
        let id = if threads.is_empty() && !accepting {
            DEAD
        } else {
            if self.memory > self.limit {
                return Err(Exhausted { limit: self.limit });
            }
            self.intern(&threads, accepting)
        };
        self.reached = threads;
        // `byte`'s own class is in `same`; the others may be known already, to `id`.
        let row = s.index() * self.classes;
        for class in same.iter() {
            self.transitions[row + class] = id;
        }
        Ok((id != DEAD).then_some(DState(id)))
    }

    /// The class of `s` among states that allow the same byte strings of at most
    /// `horizon` bytes, as far as counted repetitions tell: its threads with every copy
    /// of a repetition (`{0,1024}`, `{1,255}`) replaced by the copy that stands for it —
    /// far from both bounds, copies differ in nothing a text of `horizon` bytes can
    /// reach. States of one class allow the same
    /// tokens of at most `horizon` bytes (a caller's mask of one serves all); `None`
    /// when no thread of `s` is inside such a repetition (its class is itself).
    pub fn lookahead_class(&mut self, s: DState, horizon: u32) -> Option<LookaheadClass> {
        if self.program.repetitions.is_empty() {
            return None;
        }
        let (start, end) = self.states[s.index()].threads;
        let mut inside = false;
        let mut threads = Vec::with_capacity((end - start) as usize);
        for i in start..end {
            let (state, stack) = self.threads[i as usize];
            let (alike, counted) = self.alike_stack(stack, horizon);
            inside |= counted;
            let state = match self.program.repetitions.alike_state(state, horizon) {
                Some(alike) => {
                    inside = true;
                    alike
                }
                None => state,
            };
            threads.push((state, alike));
        }
        if !inside {
            return None;
        }
        threads.sort_unstable();
        threads.dedup();
        Some(LookaheadClass {
            threads: threads.into_boxed_slice(),
            accepting: self.states[s.index()].accepting,
        })
    }

    /// `stack` with each frame's return state replaced by the one that stands for it
    /// ([`LookaheadClass`]), and whether some frame returns into a repetition's copy.
    fn alike_stack(&mut self, stack: StackId, horizon: u32) -> (StackId, bool) {
        let program = Arc::clone(&self.program);
        let mut frames = Vec::new();
        let (mut id, mut counted, mut changed) = (stack, false, false);
        while id != 0 {
            let (ret, parent, claims) = self.stacks[id as usize];
            let alike = match program.repetitions.alike_return(ret, horizon) {
                Some(alike) => {
                    counted = true;
                    alike
                }
                None => ret,
            };
            changed |= alike != ret;
            frames.push((alike, claims));
            id = parent;
        }
        if !changed {
            return (stack, counted);
        }
        let mut id = 0;
        for &(ret, claims) in frames.iter().rev() {
            id = self.push_stack((ret, id, claims));
        }
        (id, counted)
    }

    fn intern(&mut self, threads: &[Thread], accepting: bool) -> u32 {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut hasher = FastHash::default().build_hasher();
        threads.hash(&mut hasher);
        accepting.hash(&mut hasher);
        let hash = hasher.finish();
        let pool = &self.threads;
        let same = |state: &Determinized| {
            let (start, end) = state.threads;
            state.accepting == accepting && pool[start as usize..end as usize] == threads[..]
        };
        match self.state_ids.get(&hash) {
            Some(SameHash::One(id)) if same(&self.states[*id as usize]) => return *id,
            Some(SameHash::Many(ids)) => {
                if let Some(&id) = ids.iter().find(|&&id| same(&self.states[id as usize])) {
                    return id;
                }
            }
            _ => {}
        }
        let id = self.states.len() as u32;
        self.memory += self.classes * 4 + threads.len() * 8 + 64;
        match self.state_ids.entry(hash) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(SameHash::One(id));
            }
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let ids = match e.get() {
                    SameHash::One(other) => vec![*other, id],
                    SameHash::Many(ids) => ids.iter().copied().chain([id]).collect(),
                };
                e.insert(SameHash::Many(ids));
            }
        }
        let start = self.threads.len() as u32;
        self.threads.extend_from_slice(threads);
        self.states.push(Determinized {
            threads: (start, self.threads.len() as u32),
            accepting,
            absorbs: None,
            plain_depth: None,
        });
        self.transitions
            .resize(self.transitions.len() + self.classes, UNKNOWN);
        id
    }

    fn push_stack(&mut self, frame: Frame) -> StackId {
        if let Some(&id) = self.stack_ids.get(&frame) {
            return id;
        }
        let id = self.stacks.len() as StackId;
        self.stacks.push(frame);
        self.stack_ids.insert(frame, id);
        self.memory += 28;
        id
    }

    /// The stack `stack` with member `member` marked written in its top frame, or
    /// `None` when it was written already (or there is no frame to mark).
    fn claim(&mut self, stack: StackId, member: u32) -> Option<StackId> {
        if stack == 0 {
            return None;
        }
        let (ret, parent, claims) = self.stacks[stack as usize];
        let (word, bit) = (member as usize / 64, 1u64 << (member % 64));
        let current = &self.claims[claims as usize];
        if current.get(word).is_some_and(|w| w & bit != 0) {
            return None;
        }
        let mut next = current.to_vec();
        if next.len() <= word {
            next.resize(word + 1, 0);
        }
        next[word] |= bit;
        let next = next.into_boxed_slice();
        let id = match self.claims_ids.get(&next) {
            Some(&id) => id,
            None => {
                let id = self.claims.len() as ClaimsId;
                self.memory += next.len() * 16 + 48;
                self.claims.push(next.clone());
                self.claims_ids.insert(next, id);
                id
            }
        };
        Some(self.push_stack((ret, parent, id)))
    }

    /// Whether the top frame of `stack` has written every member of `set`.
    fn claims_cover(&self, stack: StackId, set: &[u64]) -> bool {
        let claims = &self.claims[self.stacks[stack as usize].2 as usize];
        set.iter()
            .enumerate()
            .all(|(w, &s)| s & !claims.get(w).copied().unwrap_or(0) == 0)
    }

    /// Follow every transition that consumes nothing from `seeds`: the sorted
    /// byte-consuming threads reached, and whether the match is reached.
    fn closure(&mut self, seeds: &[Thread]) -> (Vec<Thread>, bool) {
        let program = Arc::clone(&self.program);
        let mut todo = std::mem::take(&mut self.todo);
        let mut seen = std::mem::take(&mut self.seen);
        todo.clear();
        seen.clear();
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Stamps of 2^32 closures ago could be mistaken for this one's.
            self.visited.fill((0, 0));
            self.generation = 1;
        }
        let generation = self.generation;
        todo.extend_from_slice(seeds);
        let mut out = std::mem::take(&mut self.reached);
        out.clear();
        let mut accepting = false;
        while let Some((state, stack)) = todo.pop() {
            if !program.live[state as usize] {
                continue;
            }
            let first = &mut self.visited[state as usize];
            if first.0 != generation {
                *first = (generation, stack);
            } else if first.1 == stack || !seen.insert((state, stack)) {
                continue;
            }
            match &program.states[state as usize] {
                State::Range { .. } | State::Sparse(_) => out.push((state, stack)),
                State::Union(alts) => todo.extend(alts.iter().rev().map(|&a| (a, stack))),
                State::Empty(next) => todo.push((*next, stack)),
                State::Call { target, ret } => {
                    let inner = self.push_stack((*ret, stack, 0));
                    todo.push((*target, inner));
                }
                State::Return => {
                    let (ret, parent, _) = self.stacks[stack as usize];
                    if stack != 0 {
                        todo.push((ret, parent));
                    }
                }
                State::Claim { member, next } => {
                    if let Some(claimed) = self.claim(stack, *member) {
                        todo.push((*next, claimed));
                    }
                }
                State::AllClaimed { set, next } => {
                    if self.claims_cover(stack, program.member_set(*set)) {
                        todo.push((*next, stack));
                    }
                }
                State::SomeUnclaimed { set, next } => {
                    if !self.claims_cover(stack, program.member_set(*set)) {
                        todo.push((*next, stack));
                    }
                }
                State::Match => accepting |= stack == 0,
                State::Fail => {}
            }
        }
        out.sort_unstable();
        out.dedup();
        self.todo = todo;
        self.seen = seen;
        (out, accepting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dfa: &mut LazyDfa, text: &[u8]) -> Option<DState> {
        let mut s = dfa.start();
        for &b in text {
            s = dfa.next(s, b).unwrap()?;
        }
        Some(s)
    }

    fn accepts(dfa: &mut LazyDfa, text: &[u8]) -> bool {
        run(dfa, text).is_some_and(|s| dfa.is_accepting(s))
    }

    /// Agrees with regex-automata on every string over a small alphabet up to length 6.
    fn agree(regex: &str, alphabet: &[u8]) {
        let program = Program::from_regex(regex, 1 << 20).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(program), 1 << 24);
        let re = regex_automata::meta::Builder::new()
            .syntax(regex_automata::util::syntax::Config::new().utf8(false))
            .build(&format!("^(?:{regex})$"))
            .unwrap();
        let mut strings: Vec<Vec<u8>> = vec![vec![]];
        for _ in 0..6 {
            let mut next = Vec::new();
            for s in &strings {
                for &c in alphabet {
                    let mut t = s.clone();
                    t.push(c);
                    next.push(t);
                }
            }
            for s in &strings {
                assert_eq!(
                    accepts(&mut dfa, s),
                    re.is_match(regex_automata::Input::new(s)),
                    "{regex} on {:?}",
                    String::from_utf8_lossy(s)
                );
                // A live state can always finish a document.
                if let Some(st) = run(&mut dfa, s) {
                    assert!(dfa.is_accepting(st) || dfa.has_continuation(st));
                }
            }
            strings = next;
        }
    }

    #[test]
    fn class_sets_hold_their_spans() {
        let span = ClassSet::span(60, 130);
        let got: Vec<usize> = span.iter().collect();
        assert_eq!(got, (60..=130).collect::<Vec<_>>());
        assert_eq!(ClassSet::full(256).iter().count(), 256);
        assert_eq!(ClassSet::full(0).iter().count(), 0);
        let mut set = ClassSet::full(10);
        set.remove(&ClassSet::span(2, 4));
        set.keep(&ClassSet::span(0, 6));
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 1, 5, 6]);
    }

    /// A transition computed for one byte and recorded for its whole group of classes
    /// is the one each byte of the group computes on its own.
    #[test]
    fn grouped_transitions_match_transitions_byte_by_byte() {
        // Literals split the plain characters into many classes; inside the string
        // they all lead the same way, at the start of a name they do not.
        let regex =
            r#"\{"(alpha|beta|gamma|delta)":"[^"\\]{0,3}"(,"[a-f]+x":[0-9]|,"zz":(true|false))?\}"#;
        let program = Arc::new(Program::from_regex(regex, 1 << 20).unwrap());
        let texts: [&[u8]; 4] = [b"", b"{\"", b"{\"beta\":\"", b"{\"beta\":\"q\",\""];
        for text in texts {
            check_grouped(&program, text);
        }
        // A sparse state whose ranges go to different states (as a leaf DFA's do):
        // `[a-c]1 | [d-f]2`, with `b` and `e` in classes of their own.
        let mut b = crate::Builder::new(100);
        let one = b.byte_range(b'1', b'1').unwrap();
        let two = b.byte_range(b'2', b'2').unwrap();
        let end = b.empty_frag().unwrap();
        b.patch(one.end, end.start).unwrap();
        b.patch(two.end, end.start).unwrap();
        let edges = vec![
            (b'a', b'a', one.start),
            (b'b', b'b', one.start),
            (b'c', b'c', one.start),
            (b'd', b'd', two.start),
            (b'e', b'e', two.start),
            (b'f', b'f', two.start),
        ];
        let start = b.sparse(edges).unwrap();
        let program = Arc::new(
            b.finish(crate::Frag {
                start,
                end: end.end,
            })
            .unwrap(),
        );
        check_grouped(&program, b"");
    }

    fn check_grouped(program: &Arc<Program>, text: &[u8]) {
        let mut grouped = LazyDfa::new(program.clone(), 1 << 24);
        let s = run(&mut grouped, text).unwrap();
        let mut expected = Vec::new();
        for b in 0..=255u8 {
            // A fresh DFA per byte: nothing recorded for another byte.
            let mut single = LazyDfa::new(program.clone(), 1 << 24);
            let t = run(&mut single, text).unwrap();
            let next = single.next(t, b).unwrap();
            expected.push(next.map(|n| {
                let (a, z) = single.states[n.index()].threads;
                single.threads[a as usize..z as usize].to_vec()
            }));
        }
        for b in 0..=255u8 {
            let next = grouped.next(s, b).unwrap();
            let got = next.map(|n| {
                let (a, z) = grouped.states[n.index()].threads;
                grouped.threads[a as usize..z as usize].to_vec()
            });
            assert_eq!(got, expected[b as usize], "byte {b} after {text:?}");
        }
    }

    #[test]
    fn agrees_with_regex_automata() {
        agree("(ab|a)*b?", b"ab");
        agree("a{2,4}(,a){0,2}", b"a,");
        agree("(a|b)*abb", b"ab");
        agree("[a-c]+x|[^x]{3}", b"abx");
        agree("(a*)*|b+", b"ab");
        agree("(ab|b){2,5}", b"ab");
        agree("(a|bb){0,4}a", b"ab");
    }

    #[test]
    fn procedures_return_to_their_callers() {
        use crate::{Builder, Combine};
        // P = "x" | "y"; document = "[" P "]" | "(" P ")": one copy of P, two callers.
        let mut b = Builder::new(100);
        let x = b.byte_range(b'x', b'y').unwrap();
        let p = b.procedure(x).unwrap();
        let call_in = |b: &mut Builder, open: u8, close: u8| {
            let o = b.byte_range(open, open).unwrap();
            let c = b.call(p).unwrap();
            let e = b.byte_range(close, close).unwrap();
            let w = b.append(Some(o), c).unwrap();
            b.append(Some(w), e).unwrap()
        };
        let square = call_in(&mut b, b'[', b']');
        let round = call_in(&mut b, b'(', b')');
        let whole = b
            .alternation([square, round], |_, f| Ok::<_, crate::BuildError>(f))
            .unwrap();
        let program = b.finish(whole).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(program), 1 << 20);
        for ok in ["[x]", "(y)"] {
            assert!(accepts(&mut dfa, ok.as_bytes()), "{ok}");
        }
        for bad in ["[x)", "(y]", "[]", "x"] {
            assert!(!accepts(&mut dfa, bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn dead_ends_are_pruned() {
        // "a" followed by nothing possible: the state after "a" is dead, not live.
        use crate::Combine;
        let mut b = crate::Builder::new(100);
        let a = b.byte_range(b'a', b'a').unwrap();
        let never = b.never().unwrap();
        let seq = b.append(Some(a), never).unwrap();
        let ok = b.byte_range(b'b', b'b').unwrap();
        let whole = b
            .alternation([seq, ok], |_, f| Ok::<_, crate::BuildError>(f))
            .unwrap();
        let program = b.finish(whole).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(program), 1 << 20);
        let start = dfa.start();
        assert!(dfa.next(start, b'a').unwrap().is_none());
        assert!(dfa.next(start, b'b').unwrap().is_some());
    }

    #[test]
    fn plain_text_absorption() {
        let string = r#""(?:[^"\\\x00-\x1F]|\\["\\/bfnrt])*""#;
        let program = Program::from_regex(string, 1 << 20).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(program), 1 << 24);
        let start = dfa.start();
        assert!(!dfa.absorbs_plain_text(start).unwrap());
        let inside = dfa.next(start, b'"').unwrap().unwrap();
        assert!(dfa.absorbs_plain_text(inside).unwrap());
        // A length bound: a character leads to another state.
        let bounded = Program::from_regex(r#""[^"\\\x00-\x1F]{0,3}""#, 1 << 20).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(bounded), 1 << 24);
        let start = dfa.start();
        let inside = dfa.next(start, b'"').unwrap().unwrap();
        assert!(!dfa.absorbs_plain_text(inside).unwrap());
        // ASCII only: multi-byte characters are refused.
        let ascii = Program::from_regex(r#""[ -!#-\[\]-~\x7F]*""#, 1 << 20).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(ascii), 1 << 24);
        let start = dfa.start();
        let inside = dfa.next(start, b'"').unwrap().unwrap();
        assert!(!dfa.absorbs_plain_text(inside).unwrap());
    }

    #[test]
    fn plain_text_depth_counts_what_is_left() {
        let bounded = Program::from_regex(r#""[^"\\\x00-\x1F]{0,10}""#, 1 << 20).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(bounded), 1 << 24);
        let start = dfa.start();
        let mut s = dfa.next(start, b'"').unwrap().unwrap();
        assert_eq!(dfa.plain_text_depth(s, 100).unwrap(), 10);
        assert_eq!(dfa.plain_text_depth(s, 4).unwrap(), 4);
        for _ in 0..3 {
            s = dfa.next(s, b'x').unwrap().unwrap();
        }
        assert_eq!(dfa.plain_text_depth(s, 100).unwrap(), 7);
        assert_eq!(dfa.plain_text_depth(start, 100).unwrap(), 0);
    }

    #[test]
    fn plain_text_limit_is_the_length_left_only_where_every_character_counts_alike() {
        let bounded = Program::from_regex(r#""[^"\\\x00-\x1F]{0,10}""#, 1 << 20).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(bounded), 1 << 24);
        let start = dfa.start();
        let mut s = dfa.next(start, b'"').unwrap().unwrap();
        // Ten left: more than the bound looks.
        assert_eq!(dfa.plain_text_limit(s, 8).unwrap(), None);
        for _ in 0..7 {
            s = dfa.next(s, b'x').unwrap().unwrap();
        }
        assert_eq!(dfa.plain_text_limit(s, 8).unwrap(), Some(3));
        // Before the opening quote no plain character follows; `"` is not plain.
        assert_eq!(dfa.plain_text_limit(start, 8).unwrap(), Some(0));
        // A pattern: some characters go on where others stop.
        let pattern = Program::from_regex(r#""[a-c]{0,3}""#, 1 << 20).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(pattern), 1 << 24);
        let s = dfa.next(dfa.start(), b'"').unwrap().unwrap();
        assert_eq!(dfa.plain_text_limit(s, 8).unwrap(), None);
    }

    #[test]
    fn budget_is_an_error_not_a_panic() {
        let program = Program::from_regex("[a-z]{0,200}", 1 << 20).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(program), 4096);
        let mut s = dfa.start();
        let mut failed = false;
        for _ in 0..100 {
            match dfa.next(s, b'q') {
                Ok(Some(n)) => s = n,
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(failed);
    }
}
