//! The program: states of a Thompson NFA over bytes, plus calls and returns.
use crate::repetition::{Recorded, Repetitions};

/// Index of a state in a [`Program`].
pub type StateId = u32;

/// The targets of a [`State::Union`]: up to four held in place. Most unions have two
/// (a repetition's "another copy or stop"), and a program of a `maxLength` of 65,535
/// has that many of them: a heap allocation each was much of the time to build one.
pub type Alternatives = smallvec::SmallVec<[StateId; 4]>;

/// One state of a [`Program`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Consume one byte in `lo..=hi`, then go to `next`.
    Range { lo: u8, hi: u8, next: StateId },
    /// Consume one byte in one of the (disjoint, sorted) ranges, going to its target.
    Sparse(Box<[(u8, u8, StateId)]>),
    /// Go to any of the alternatives without consuming anything.
    Union(Alternatives),
    /// Go to the next state without consuming anything.
    Empty(StateId),
    /// Run the procedure starting at `target`; when it returns, continue at `ret`.
    Call { target: StateId, ret: StateId },
    /// End of a procedure: continue at the state its caller named.
    Return,
    /// Continue at `next` only if member `member` of the object that the innermost
    /// procedure call writes is not written yet, and mark it written. The written
    /// members are part of the call's stack frame, so members may come in any order
    /// and each at most once.
    Claim { member: u32, next: StateId },
    /// Continue at `next` only if every member of set `set` ([`Program::member_set`]) is
    /// written in the innermost call's frame.
    AllClaimed { set: u32, next: StateId },
    /// Continue at `next` only if some member of set `set` is not written yet (and can
    /// be: members no value can follow do not count).
    SomeUnclaimed { set: u32, next: StateId },
    /// The whole document matched (only at the outermost level).
    Match,
    /// No way forward.
    Fail,
}

/// A built automaton (see the [crate docs](crate)).
#[derive(Clone, Debug)]
pub struct Program {
    pub(crate) states: Vec<State>,
    pub(crate) start: StateId,
    /// The member sets that [`State::AllClaimed`] and [`State::SomeUnclaimed`] name, as
    /// bit sets (bit `m` of word `m / 64`).
    pub(crate) member_sets: Vec<Box<[u64]>>,
    /// Whether a state can still reach the end of its procedure (or the match): threads
    /// in other states are dropped, so every live DFA state can finish a document.
    pub(crate) live: Vec<bool>,
    /// Counted repetitions whose copies may stand for each other.
    pub(crate) repetitions: Repetitions,
    /// First byte of each class of bytes no state tells apart (sorted, starts with 0).
    class_starts: Vec<u8>,
    /// [`Program::plain_char_paths`], computed on first use.
    plain_char_paths: std::sync::OnceLock<Vec<Vec<Box<[u8]>>>>,
    /// The class of each byte (an index into `class_starts`).
    class_of: [u8; 256],
}

impl Program {
    /// `member_sets`: per set, its members with the [`State::Claim`] state that writes
    /// each.
    /// `repetitions`: the counted repetitions whose copies call one procedure.
    pub(crate) fn new(
        states: Vec<State>,
        start: StateId,
        member_sets: Vec<Vec<(u32, StateId)>>,
        repetitions: &[Recorded],
    ) -> Program {
        let (live, member_sets) = liveness_with_members(&states, &member_sets);
        let repetitions = Repetitions::new(&states, repetitions);
        let class_starts = byte_classes(&states);
        let mut class_of = [0u8; 256];
        let mut class = 0usize;
        for (b, slot) in class_of.iter_mut().enumerate() {
            if class + 1 < class_starts.len() && class_starts[class + 1] as usize == b {
                class += 1;
            }
            *slot = class as u8;
        }
        Program {
            states,
            start,
            member_sets,
            live,
            repetitions,
            class_starts,
            plain_char_paths: std::sync::OnceLock::new(),
            class_of,
        }
    }

    /// The class of `byte`: bytes of one class lead every state to the same place.
    #[inline]
    pub fn byte_class(&self, byte: u8) -> usize {
        self.class_of[byte as usize] as usize
    }

    /// Number of byte classes (at most 256).
    pub fn byte_classes(&self) -> usize {
        self.class_starts.len()
    }

    /// One byte of each byte class that meets `lo..=hi`: every state treats all bytes
    /// of a class alike, so following these stands for following the whole range.
    pub fn class_representatives(&self, lo: u8, hi: u8) -> impl Iterator<Item = u8> + '_ {
        std::iter::once(lo).chain(
            self.class_starts
                .iter()
                .copied()
                .filter(move |&c| c > lo && c <= hi),
        )
    }

    /// Every *plain text character* — a complete UTF-8 character from U+0020 other than
    /// `"`, `\\` and the surrogates — as byte paths: per UTF-8 byte sequence of those
    /// characters, the representatives ([`Program::class_representatives`]) of each of
    /// its byte ranges. Following them from a state follows every plain character.
    pub fn plain_char_paths(&self) -> &[Vec<Box<[u8]>>] {
        self.plain_char_paths.get_or_init(|| {
            const PLAIN: [(char, char); 4] = [
                (' ', '!'),
                ('#', '['),
                (']', '\u{D7FF}'),
                ('\u{E000}', '\u{10FFFF}'),
            ];
            let mut paths = Vec::new();
            for (lo, hi) in PLAIN {
                for seq in regex_syntax::utf8::Utf8Sequences::new(lo, hi) {
                    paths.push(
                        seq.as_slice()
                            .iter()
                            .map(|r| self.class_representatives(r.start, r.end).collect())
                            .collect(),
                    );
                }
            }
            paths
        })
    }

    /// Build the program of a regex (regex-syntax dialect, Unicode on, UTF-8 check off;
    /// no look-around) that documents must match as a whole.
    pub fn from_regex(regex: &str, max_states: usize) -> Result<Program, crate::BuildError> {
        Program::lower_regex(regex, crate::Builder::new(max_states))
    }

    /// Like [`Program::from_regex`], without procedures (counted repetitions written out
    /// in full), as [`crate::Builder::restricted`] needs.
    pub fn from_regex_flat(regex: &str, max_states: usize) -> Result<Program, crate::BuildError> {
        Program::lower_regex(regex, crate::Builder::without_procedures(max_states))
    }

    fn lower_regex(regex: &str, mut builder: crate::Builder) -> Result<Program, crate::BuildError> {
        let hir = crate::builder::parse(regex)?;
        let frag = builder.hir(&hir)?;
        builder.finish(frag)
    }

    /// The states.
    pub fn states(&self) -> &[State] {
        &self.states
    }

    /// The initial state.
    pub fn start(&self) -> StateId {
        self.start
    }

    /// The members of set `set` (named by [`State::AllClaimed`] and
    /// [`State::SomeUnclaimed`]) as a bit set: bit `m % 64` of word `m / 64`. Members
    /// that no document can write are left out.
    pub fn member_set(&self, set: u32) -> &[u64] {
        self.member_sets
            .get(set as usize)
            .map(|s| &s[..])
            .unwrap_or(&[])
    }

    /// Heap memory of the program.
    pub fn memory_usage(&self) -> usize {
        let extra: usize = self
            .states
            .iter()
            .map(|s| match s {
                State::Sparse(r) => r.len() * 8,
                State::Union(a) if a.spilled() => a.capacity() * 4,
                _ => 0,
            })
            .sum();
        self.states.len() * (std::mem::size_of::<State>() + 1) + extra
    }
}

/// The starts of the byte classes: a class ends wherever some state's range starts or
/// ends.
fn byte_classes(states: &[State]) -> Vec<u8> {
    let mut boundary = [false; 257];
    boundary[0] = true;
    let mut mark = |lo: u8, hi: u8| {
        boundary[lo as usize] = true;
        boundary[hi as usize + 1] = true;
    };
    for s in states {
        match s {
            State::Range { lo, hi, .. } => mark(*lo, *hi),
            State::Sparse(ranges) => ranges.iter().for_each(|&(lo, hi, _)| mark(lo, hi)),
            _ => {}
        }
    }
    (0..=255u8).filter(|&b| boundary[b as usize]).collect()
}

/// [`liveness`] where members may be written in any order ([`State::Claim`]): the
/// guards pass in the first round; an end that needs a member no document can write
/// ([`State::AllClaimed`] over a dead claim) is then a dead end, which may kill the
/// members of an enclosing object in turn: rounds until nothing changes (at most the
/// nesting depth). Returns the live states and the member sets as bit sets of the
/// members that can be written.
fn liveness_with_members(
    states: &[State],
    member_sets: &[Vec<(u32, StateId)>],
) -> (Vec<bool>, Vec<Box<[u64]>>) {
    let ends: Vec<(usize, &[(u32, StateId)])> = states
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            State::AllClaimed { set, .. } => Some((i, member_sets.get(*set as usize)?.as_slice())),
            _ => None,
        })
        .collect();
    let mut blocked = vec![false; states.len()];
    let mut live = liveness(states, &blocked);
    let is_live = |live: &[bool], s: StateId| live.get(s as usize).copied().unwrap_or(false);
    loop {
        let mut changed = false;
        for &(i, members) in &ends {
            if !blocked[i] && members.iter().any(|&(_, claim)| !is_live(&live, claim)) {
                blocked[i] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        live = liveness(states, &blocked);
    }
    let bits = member_sets
        .iter()
        .map(|members| {
            let writable: Vec<u32> = members
                .iter()
                .filter(|&&(_, claim)| is_live(&live, claim))
                .map(|&(m, _)| m)
                .collect();
            let words = writable
                .iter()
                .map(|&m| m as usize / 64 + 1)
                .max()
                .unwrap_or(0);
            let mut set = vec![0u64; words];
            for m in writable {
                set[m as usize / 64] |= 1 << (m % 64);
            }
            set.into_boxed_slice()
        })
        .collect();
    (live, bits)
}

/// Which states can reach a `Return` or `Match` (a call only through a procedure that
/// can itself return), taking `blocked` states as dead ends. Worklist over reverse
/// edges: linear in the program size.
fn liveness(states: &[State], blocked: &[bool]) -> Vec<bool> {
    let n = states.len();
    // Reverse edges in one array (predecessors of state t at `preds[first[t]..first[t + 1]]`):
    // programs reach hundreds of thousands of states, one vector each was most of the cost.
    let successors = |s: &State, f: &mut dyn FnMut(StateId)| match s {
        State::Range { next, .. }
        | State::Empty(next)
        | State::Claim { next, .. }
        | State::AllClaimed { next, .. }
        | State::SomeUnclaimed { next, .. } => f(*next),
        State::Sparse(ranges) => ranges.iter().for_each(|&(_, _, t)| f(t)),
        State::Union(alts) => alts.iter().for_each(|&t| f(t)),
        State::Call { target, ret } => {
            f(*target);
            f(*ret);
        }
        State::Return | State::Match | State::Fail => {}
    };
    let mut first = vec![0usize; n + 1];
    for s in states {
        successors(s, &mut |t| {
            if let Some(c) = first.get_mut(t as usize + 1) {
                *c += 1;
            }
        });
    }
    for i in 0..n {
        first[i + 1] += first[i];
    }
    let mut fill = first.clone();
    let mut preds: Vec<StateId> = vec![0; first[n]];
    for (i, s) in states.iter().enumerate() {
        successors(s, &mut |t| {
            if let Some(slot) = fill.get_mut(t as usize) {
                preds[*slot] = i as StateId;
                *slot += 1;
            }
        });
    }
    let mut live = vec![false; n];
    let mut queue: Vec<StateId> = Vec::new();
    for (i, s) in states.iter().enumerate() {
        if matches!(s, State::Return | State::Match) {
            live[i] = true;
            queue.push(i as StateId);
        }
    }
    let get = |live: &[bool], id: StateId| live.get(id as usize).copied().unwrap_or(false);
    while let Some(t) = queue.pop() {
        for &p in &preds[first[t as usize]..first[t as usize + 1]] {
            if live[p as usize] || blocked[p as usize] {
                continue;
            }
            let now = match &states[p as usize] {
                State::Call { target, ret } => get(&live, *target) && get(&live, *ret),
                _ => true,
            };
            if now {
                live[p as usize] = true;
                queue.push(p);
            }
        }
    }
    live
}
