//! Counted repetitions (`STRING_CHAR{0,1024}` of a `maxLength`, `[0-9a-z_-]{1,255}` of
//! a pattern), and which of their copies are alike as far as a bounded look ahead sees.
//!
//! Inside such a repetition the lazy DFA's states differ only in the copy being
//! matched: the return state of one stack frame when each copy calls one procedure, the
//! thread's own state when the copies are written out. Far from both bounds the copies
//! behave the same for any text short enough: a token of at most `horizon` bytes
//! completes at most `horizon` copies (each copy takes a byte at least), and whether it
//! may stop or go on after each of them is the same from copy 40 as from copy 400 of a
//! thousand. States that differ only in such copies allow the same tokens;
//! [`Repetitions::alike_return`] and [`Repetitions::alike_state`] name one copy for all
//! of them, so a mask computed for one serves the others.
use crate::program::{State, StateId};
use crate::Frag;

/// One copy as the builder made it: its fragment and the states it added.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordedCopy {
    pub frag: Frag,
    /// The states `first..end` were added while building the copy.
    pub first: StateId,
    pub end: StateId,
}

/// A repetition as the builder records it.
#[derive(Clone, Debug)]
pub(crate) struct Recorded {
    /// The copies in order: copy `i` is matched after `i` others.
    pub copies: Vec<RecordedCopy>,
    /// Copies that must be matched.
    pub min: u32,
    /// Whether the copies end (`{m,n}`) or the last one loops (`{m,}`).
    pub bounded: bool,
}

/// How the copies of a repetition are told apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Each copy calls one procedure: copy `i` by its call's return state.
    Calls,
    /// The copies are written out, each a translate of the first: copy `i` by its first
    /// state (a state's offset from it is the same in every copy), `width` states each.
    Inline { width: u32 },
}

/// Copies `first_copy..first_copy + count` of repetition `rep`, named (by return
/// state, or first state) `lo + k * stride`: copies come one after the other in the
/// program, so a million copies are a few runs, not a million entries.
#[derive(Clone, Copy, Debug)]
struct Run {
    lo: StateId,
    stride: u32,
    count: u32,
    first_copy: u32,
    rep: u32,
}

impl Run {
    /// The runs of the copies named `ids` (in copy order), or `None` when two runs
    /// overlap (a name could then stand for two copies).
    fn split(ids: &[StateId], rep: u32) -> Option<Vec<Run>> {
        let mut runs: Vec<Run> = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            if let Some(run) = runs.last_mut() {
                let last = run.lo + (run.count - 1) * run.stride;
                if id > last && (run.count == 1 || id - last == run.stride) {
                    run.stride = id - last;
                    run.count += 1;
                    continue;
                }
            }
            runs.push(Run {
                lo: id,
                stride: 1,
                count: 1,
                first_copy: i as u32,
                rep,
            });
        }
        let mut spans: Vec<(StateId, StateId)> = runs
            .iter()
            .map(|r| (r.lo, r.lo + (r.count - 1) * r.stride))
            .collect();
        spans.sort_unstable();
        spans.windows(2).all(|w| w[0].1 < w[1].0).then_some(runs)
    }
}

#[derive(Clone, Debug)]
struct Repetition {
    kind: Kind,
    /// The copies' names, in copy order.
    runs: Vec<Run>,
    count: u32,
    min: u32,
    bounded: bool,
}

impl Repetition {
    /// The name of copy `copy`.
    fn name(&self, copy: u32) -> StateId {
        let at = self
            .runs
            .partition_point(|r| r.first_copy + r.count <= copy)
            .min(self.runs.len() - 1);
        let run = &self.runs[at];
        run.lo + (copy - run.first_copy) * run.stride
    }
}

/// The repetitions of a program whose copies may stand for each other (see the
/// [module docs](self)).
#[derive(Clone, Debug, Default)]
pub(crate) struct Repetitions {
    repetitions: Vec<Repetition>,
    /// The runs of copies that call, by return state (sorted by `lo`).
    returns: Vec<Run>,
    /// The runs of written-out copies, by first state (sorted by `lo`).
    states: Vec<Run>,
}

impl Repetitions {
    /// The table of the `recorded` repetitions of `states` that qualify: copies that
    /// cannot match the empty string, and either each one call of the same procedure
    /// (told apart by their return states) or each a translate of the first copy whose
    /// only way out is its end.
    pub(crate) fn new(states: &[State], recorded: &[Recorded]) -> Repetitions {
        let mut table = Repetitions::default();
        for rep in recorded {
            if rep.copies.len() < 2 {
                continue;
            }
            let r = table.repetitions.len() as u32;
            let (kind, ids) = match calls(states, &rep.copies) {
                Some(returns) => (Kind::Calls, returns),
                None if written_out(states, &rep.copies) => (
                    Kind::Inline {
                        width: rep.copies[0].end - rep.copies[0].first,
                    },
                    rep.copies.iter().map(|c| c.first).collect(),
                ),
                None => continue,
            };
            let Some(runs) = Run::split(&ids, r) else {
                continue;
            };
            match kind {
                Kind::Calls => table.returns.extend_from_slice(&runs),
                Kind::Inline { .. } => table.states.extend_from_slice(&runs),
            }
            table.repetitions.push(Repetition {
                kind,
                runs,
                count: rep.copies.len() as u32,
                min: rep.min,
                bounded: rep.bounded,
            });
        }
        table.returns.sort_unstable_by_key(|r| r.lo);
        table.states.sort_unstable_by_key(|r| r.lo);
        table
    }

    /// Whether no repetition qualified.
    pub(crate) fn is_empty(&self) -> bool {
        self.repetitions.is_empty()
    }

    /// The repetition, copy and offset in the copy of `id` among `runs` (each copy
    /// `width` states of its repetition from its name on; 1 for return states).
    fn find(&self, runs: &[Run], id: StateId) -> Option<(&Repetition, u32, u32)> {
        let at = runs.partition_point(|r| r.lo <= id).checked_sub(1)?;
        let run = &runs[at];
        let rep = &self.repetitions[run.rep as usize];
        let width = match rep.kind {
            Kind::Calls => 1,
            Kind::Inline { width } => width,
        };
        let (k, offset) = ((id - run.lo) / run.stride, (id - run.lo) % run.stride);
        (k < run.count && offset < width).then_some((rep, run.first_copy + k, offset))
    }

    /// The return state of the copy that stands for the one returning to `ret` when the
    /// text ahead is at most `horizon` bytes (`ret` itself when no other copy does), or
    /// `None` when `ret` is no copy's or no two copies of its repetition are alike
    /// (`[ \t]{0,32}` with tokens of up to 128 bytes).
    pub(crate) fn alike_return(&self, ret: StateId, horizon: u32) -> Option<StateId> {
        let (rep, copy, _) = self.find(&self.returns, ret)?;
        rep.shares(horizon)
            .then(|| rep.name(rep.alike_copy(copy, horizon)))
    }

    /// The state in the copy that stands for `state`'s copy (as
    /// [`Repetitions::alike_return`]), or `None` when `state` is in no written-out copy
    /// or none of its copies stands for another.
    pub(crate) fn alike_state(&self, state: StateId, horizon: u32) -> Option<StateId> {
        let (rep, copy, offset) = self.find(&self.states, state)?;
        rep.shares(horizon)
            .then(|| rep.name(rep.alike_copy(copy, horizon)) + offset)
    }
}

impl Repetition {
    /// Whether two copies are alike when the text ahead is at most `horizon` bytes (see
    /// [`Repetition::alike_copy`]): two past `min - 1` and far from the last copy, or
    /// two far below `min`.
    fn shares(&self, horizon: u32) -> bool {
        let (count, min, horizon) = (self.count as u64, self.min as u64, horizon as u64);
        (self.bounded && count > horizon + min.max(1)) || min >= horizon + 2
    }

    /// The copy that stands for copy `i` when the text ahead is at most `horizon`
    /// bytes.
    ///
    /// Leaving copy `i` (0-based) means `i + 1` copies are done. After `c` more copies
    /// end (`1 ≤ c ≤ horizon`) the repetition may stop when `i + c ≥ min` and may go on
    /// when `i + c < count` (always, unbounded: the last copy loops). Copies with the
    /// same answers for every such `c` are alike: those far below `min`
    /// (`i + horizon < min`), and those past `min - 1` and far from the last copy.
    fn alike_copy(&self, i: u32, horizon: u32) -> u32 {
        let (i, min, horizon) = (i as u64, self.min as u64, horizon as u64);
        let far_from_last = !self.bounded || i + horizon < self.count as u64;
        let alike = if !far_from_last {
            i
        } else if i + 1 >= min {
            min.max(1) - 1
        } else if i + horizon < min {
            0
        } else {
            i
        };
        alike as u32
    }
}

/// The return states of copies that are each one call of the same procedure, which
/// cannot return without consuming a byte.
fn calls(states: &[State], copies: &[RecordedCopy]) -> Option<Vec<StateId>> {
    let call = |copy: &RecordedCopy| match states.get(copy.frag.start as usize) {
        Some(&State::Call { target, ret }) if copy.frag.start == copy.frag.end => {
            Some((target, ret))
        }
        _ => None,
    };
    let (target, _) = call(copies.first()?)?;
    if may_be_empty(states, target, |_| true) {
        return None;
    }
    copies
        .iter()
        .map(|copy| match call(copy) {
            Some((t, ret)) if t == target => Some(ret),
            _ => None,
        })
        .collect()
}

/// Whether every copy is the first one moved by a constant offset (same states, its
/// own states' targets moved with it) and leaves only through its end, and the first
/// one cannot be passed without consuming a byte.
fn written_out(states: &[State], copies: &[RecordedCopy]) -> bool {
    let first = copies[0];
    let len = first.end - first.first;
    let end_offset = first.frag.end.wrapping_sub(first.first);
    let within = |copy: &RecordedCopy, s: StateId| copy.first <= s && s < copy.end;
    if len == 0
        || !within(&first, first.frag.start)
        || !within(&first, first.frag.end)
        || first.end as usize > states.len()
        || may_be_empty(states, first.frag.start, |s| within(&first, s))
    {
        return false;
    }
    copies.iter().all(|copy| {
        copy.end - copy.first == len
            && copy.frag.start - copy.first == first.frag.start - first.first
            && copy.frag.end - copy.first == end_offset
            && (0..len).all(|k| {
                let (a, b) = (first.first + k, copy.first + k);
                let shift = |t: StateId, from: &RecordedCopy, to: &RecordedCopy| {
                    within(from, t).then(|| t - from.first + to.first)
                };
                // Targets inside the copy move with it; only the end may leave.
                let same = |ta: StateId, tb: StateId| match shift(ta, &first, copy) {
                    Some(moved) => moved == tb,
                    None => k == end_offset,
                };
                match (&states[a as usize], &states[b as usize]) {
                    (
                        State::Range { lo, hi, next },
                        State::Range {
                            lo: lo2,
                            hi: hi2,
                            next: next2,
                        },
                    ) => lo == lo2 && hi == hi2 && same(*next, *next2),
                    (State::Sparse(x), State::Sparse(y)) => {
                        x.len() == y.len()
                            && x.iter().zip(y.iter()).all(|(&(l, h, t), &(l2, h2, t2))| {
                                l == l2 && h == h2 && same(t, t2)
                            })
                    }
                    (State::Union(x), State::Union(y)) => {
                        x.len() == y.len() && x.iter().zip(y).all(|(&t, &t2)| same(t, t2))
                    }
                    (State::Empty(t), State::Empty(t2)) => same(*t, *t2),
                    (State::Fail, State::Fail) => true,
                    _ => false,
                }
            })
    })
}

/// Whether the fragment entered at `start` may be passed without consuming a byte:
/// reaching a return or a state outside (`inside` false) without a byte counts, and so
/// do calls and member guards on the way (they might).
fn may_be_empty(states: &[State], start: StateId, inside: impl Fn(StateId) -> bool) -> bool {
    // A set, not a flag per program state: programs of 100,000 states hold hundreds of
    // repetitions, each of whose copies is a few states.
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![start];
    while let Some(s) = todo.pop() {
        if !inside(s) || s as usize >= states.len() {
            return true;
        }
        if !seen.insert(s) {
            continue;
        }
        match &states[s as usize] {
            State::Range { .. } | State::Sparse(_) | State::Fail => {}
            State::Union(alts) => todo.extend(alts.iter().copied()),
            State::Empty(next) => todo.push(*next),
            State::Return
            | State::Match
            | State::Call { .. }
            | State::Claim { .. }
            | State::AllClaimed { .. }
            | State::SomeUnclaimed { .. } => return true,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Program;

    fn repetition(min: u32, count: u32, bounded: bool) -> Repetition {
        Repetition {
            kind: Kind::Inline { width: 1 },
            runs: Run::split(&(0..count).collect::<Vec<_>>(), 0).unwrap(),
            count,
            min,
            bounded,
        }
    }

    #[test]
    fn copies_far_from_both_bounds_stand_for_each_other() {
        // {3,40} with tokens of at most 8 bytes: copies 2..=31 are alike (copy 2 ends
        // the minimum; from copy 31 on, 8 more end at most copy 39).
        let rep = repetition(3, 40, true);
        assert_eq!(rep.alike_copy(2, 8), 2);
        assert_eq!(rep.alike_copy(20, 8), 2);
        assert_eq!(rep.alike_copy(31, 8), 2);
        assert_eq!(rep.alike_copy(32, 8), 32);
        assert_eq!(rep.alike_copy(0, 8), 0);
        assert_eq!(rep.alike_copy(1, 8), 1);
        // {20,}: below the minimum by more than the horizon, all alike.
        let rep = repetition(20, 20, false);
        assert_eq!(rep.alike_copy(5, 8), 0);
        assert_eq!(rep.alike_copy(11, 8), 0);
        assert_eq!(rep.alike_copy(12, 8), 12);
        assert_eq!(rep.alike_copy(19, 8), 19);
        assert!(rep.shares(18) && !rep.shares(19));
        // Copies that a token can see to the end of: none alike.
        assert!(!repetition(0, 9, true).shares(8) && repetition(0, 10, true).shares(8));
        assert!(!repetition(3, 11, true).shares(8) && repetition(3, 12, true).shares(8));
    }

    #[test]
    fn the_builder_records_called_and_written_out_copies() {
        let called = Program::from_regex("(?:ab|é){0,50}", 1 << 16).unwrap();
        let reps = &called.repetitions;
        assert_eq!(reps.repetitions.len(), 1);
        assert!(reps.states.is_empty());
        // Every copy's return state is found, as its own copy, and nothing else is.
        let rep = &reps.repetitions[0];
        for copy in 0..50 {
            let (_, found, _) = reps.find(&reps.returns, rep.name(copy)).unwrap();
            assert_eq!(found, copy);
        }
        let named: Vec<StateId> = (0..50).map(|c| rep.name(c)).collect();
        let others = (0..called.states().len() as StateId).filter(|s| !named.contains(s));
        assert!(others
            .into_iter()
            .all(|s| reps.find(&reps.returns, s).is_none()));
        let written = Program::from_regex("[a-z]{1,50}", 1 << 16).unwrap();
        assert_eq!(written.repetitions.repetitions.len(), 1);
        assert!(written.repetitions.returns.is_empty());
        // Copies that may be empty tell nothing by their count.
        let empty = Program::from_regex("(?:a?b?){0,50}", 1 << 16).unwrap();
        assert!(empty.repetitions.is_empty());
        let empty = Program::from_regex("(?:a|){0,50}", 1 << 16).unwrap();
        assert!(empty.repetitions.is_empty());
    }
}
