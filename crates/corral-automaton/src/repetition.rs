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
use std::collections::HashMap;

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
#[derive(Clone, Debug)]
enum Copies {
    /// Each copy calls one procedure: copy `i` by its call's return state.
    Calls(Vec<StateId>),
    /// The copies are written out, each a translate of the first: copy `i` by its first
    /// state (a state's offset from it is the same in every copy).
    Inline(Vec<StateId>),
}

#[derive(Clone, Debug)]
struct Repetition {
    copies: Copies,
    count: u32,
    min: u32,
    bounded: bool,
}

/// The repetitions of a program whose copies may stand for each other (see the
/// [module docs](self)).
#[derive(Clone, Debug, Default)]
pub(crate) struct Repetitions {
    repetitions: Vec<Repetition>,
    /// Return state → (repetition, copy), for copies that call.
    returns: HashMap<StateId, (u32, u32)>,
    /// State → (repetition, copy), for the states of written-out copies.
    states: HashMap<StateId, (u32, u32)>,
}

impl Repetitions {
    /// The table of the `recorded` repetitions of `states` that qualify: copies that
    /// cannot match the empty string, and either each one call of the same procedure
    /// (told apart by return states that no other copy shares) or each a translate of
    /// the first copy whose only way out is its end.
    pub(crate) fn new(states: &[State], recorded: &[Recorded]) -> Repetitions {
        let mut table = Repetitions::default();
        let mut returns_seen: HashMap<StateId, u32> = HashMap::new();
        for rep in recorded {
            if rep.copies.len() < 2 {
                continue;
            }
            let copies = match calls(states, &rep.copies) {
                Some(returns) => {
                    for &ret in &returns {
                        *returns_seen.entry(ret).or_insert(0) += 1;
                    }
                    Copies::Calls(returns)
                }
                None if written_out(states, &rep.copies) => {
                    Copies::Inline(rep.copies.iter().map(|c| c.first).collect())
                }
                None => continue,
            };
            let r = table.repetitions.len() as u32;
            if let Copies::Inline(_) = copies {
                for (i, copy) in rep.copies.iter().enumerate() {
                    for s in copy.first..copy.end {
                        table.states.insert(s, (r, i as u32));
                    }
                }
            }
            if let Copies::Calls(returns) = &copies {
                for (i, &ret) in returns.iter().enumerate() {
                    table.returns.insert(ret, (r, i as u32));
                }
            }
            table.repetitions.push(Repetition {
                copies,
                count: rep.copies.len() as u32,
                min: rep.min,
                bounded: rep.bounded,
            });
        }
        // A return state shared by two copies would make its copy ambiguous: leave it out.
        table
            .returns
            .retain(|ret, _| returns_seen.get(ret) == Some(&1));
        table
    }

    /// Whether no repetition qualified.
    pub(crate) fn is_empty(&self) -> bool {
        self.returns.is_empty() && self.states.is_empty()
    }

    /// The return state of the copy that stands for the one returning to `ret` when the
    /// text ahead is at most `horizon` bytes (`ret` itself when no other copy does), or
    /// `None` when `ret` is no copy's.
    pub(crate) fn alike_return(&self, ret: StateId, horizon: u32) -> Option<StateId> {
        let &(r, i) = self.returns.get(&ret)?;
        let rep = &self.repetitions[r as usize];
        match &rep.copies {
            Copies::Calls(returns) => Some(returns[rep.alike_copy(i, horizon) as usize]),
            Copies::Inline(_) => None,
        }
    }

    /// The state in the copy that stands for `state`'s copy (as
    /// [`Repetitions::alike_return`]), or `None` when `state` is in no written-out copy.
    pub(crate) fn alike_state(&self, state: StateId, horizon: u32) -> Option<StateId> {
        let &(r, i) = self.states.get(&state)?;
        let rep = &self.repetitions[r as usize];
        match &rep.copies {
            Copies::Inline(firsts) => {
                let j = rep.alike_copy(i, horizon);
                Some(firsts[j as usize] + (state - firsts[i as usize]))
            }
            Copies::Calls(_) => None,
        }
    }
}

impl Repetition {
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
    let mut seen = vec![false; states.len()];
    let mut todo = vec![start];
    while let Some(s) = todo.pop() {
        if !inside(s) {
            return true;
        }
        let Some(visited) = seen.get_mut(s as usize) else {
            return true;
        };
        if std::mem::replace(visited, true) {
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
            copies: Copies::Inline((0..count).collect()),
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
    }

    #[test]
    fn the_builder_records_called_and_written_out_copies() {
        let called = Program::from_regex("(?:ab|é){0,50}", 1 << 16).unwrap();
        assert_eq!(called.repetitions.returns.len(), 50);
        assert!(called.repetitions.states.is_empty());
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
