//! Building a [`Program`] fragment by fragment.
use regex_syntax::hir::{Class, Hir, HirKind};
use regex_syntax::utf8::Utf8Sequences;

use crate::program::{Alternatives, Program, State, StateId};
use crate::repetition::{Recorded, RecordedCopy};
use crate::BuildError;

type Result<T> = std::result::Result<T, BuildError>;

/// A built fragment: enter at `start`; `end` is patched to what follows.
#[derive(Clone, Copy, Debug)]
pub struct Frag {
    pub start: StateId,
    pub end: StateId,
}

/// Parse a regex in the dialect the builder takes (Unicode on, UTF-8 check off: callers
/// may spell characters as UTF-8 byte sequences).
pub fn parse(text: &str) -> Result<Hir> {
    regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(text)
        .map_err(|e| BuildError::Regex(e.to_string()))
}

/// The ways of combining fragments, for the [`Builder`] and for any lowering that owns
/// one (its closures then get the lowering back, with its own error type).
pub trait Combine: AsMut<Builder> + Sized {
    /// `whole` followed by `frag`.
    fn append(&mut self, whole: Option<Frag>, frag: Frag) -> Result<Frag> {
        Ok(match whole {
            None => frag,
            Some(w) => {
                self.as_mut().patch(w.end, frag.start)?;
                Frag {
                    start: w.start,
                    end: frag.end,
                }
            }
        })
    }

    /// The parts one after the other.
    fn concat<T, E: From<BuildError>>(
        &mut self,
        parts: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Self, T) -> std::result::Result<Frag, E>,
    ) -> std::result::Result<Frag, E> {
        let mut whole: Option<Frag> = None;
        for part in parts {
            let frag = each(self, part)?;
            whole = Some(self.append(whole, frag)?);
        }
        match whole {
            Some(w) => Ok(w),
            None => Ok(self.as_mut().empty_frag()?),
        }
    }

    /// Any one of the parts.
    fn alternation<T, E: From<BuildError>>(
        &mut self,
        parts: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Self, T) -> std::result::Result<Frag, E>,
    ) -> std::result::Result<Frag, E> {
        let start = self.as_mut().union()?;
        let end = self.as_mut().empty()?;
        for part in parts {
            let frag = each(self, part)?;
            self.as_mut().patch(start, frag.start)?;
            self.as_mut().patch(frag.end, end)?;
        }
        Ok(Frag { start, end })
    }

    /// `body{min,max}`: `min` copies, then either the last copy looping on itself
    /// (unbounded; one copy for `body*`) or `max - min` nested optional copies.
    ///
    /// The copies are recorded: the lazy DFA can then tell which of them look alike.
    fn repeat<E: From<BuildError>>(
        &mut self,
        min: u32,
        max: Option<u32>,
        mut body: impl FnMut(&mut Self) -> std::result::Result<Frag, E>,
    ) -> std::result::Result<Frag, E> {
        let mut copies: Vec<RecordedCopy> = Vec::new();
        let mut body = |b: &mut Self| {
            let first = b.as_mut().states.len() as StateId;
            let frag = body(b)?;
            let end = b.as_mut().states.len() as StateId;
            copies.push(RecordedCopy { frag, first, end });
            Ok::<Frag, E>(frag)
        };
        let frag = self.repeat_copies(min, max, &mut body)?;
        self.as_mut().record_repetition(copies, min, max.is_some());
        Ok(frag)
    }

    /// [`Combine::repeat`] without the record.
    fn repeat_copies<E: From<BuildError>>(
        &mut self,
        min: u32,
        max: Option<u32>,
        mut body: impl FnMut(&mut Self) -> std::result::Result<Frag, E>,
    ) -> std::result::Result<Frag, E> {
        let mut whole: Option<Frag> = None;
        let mut last: Option<Frag> = None;
        for _ in 0..min {
            let frag = body(self)?;
            whole = Some(self.append(whole, frag)?);
            last = Some(frag);
        }
        let whole = match whole {
            Some(w) => w,
            None => self.as_mut().empty_frag()?,
        };
        match max {
            None => {
                let looped = match last {
                    Some(frag) => frag,
                    None => body(self)?,
                };
                let b = self.as_mut();
                let again = b.union()?;
                b.patch(whole.end, again)?;
                if min == 0 {
                    b.patch(looped.end, again)?;
                }
                b.patch(again, looped.start)?;
                let out = b.empty()?;
                b.patch(again, out)?;
                Ok(Frag {
                    start: whole.start,
                    end: out,
                })
            }
            Some(max) => self.optional_copies(whole, max.saturating_sub(min), body),
        }
    }

    /// `whole` followed by `count` nested optional copies of `body`: `(b(b(b)?)?)?`.
    fn optional_copies<E: From<BuildError>>(
        &mut self,
        mut whole: Frag,
        count: u32,
        mut body: impl FnMut(&mut Self) -> std::result::Result<Frag, E>,
    ) -> std::result::Result<Frag, E> {
        let out = self.as_mut().empty()?;
        for _ in 0..count {
            let choice = self.as_mut().union()?;
            self.as_mut().patch(whole.end, choice)?;
            self.as_mut().patch(choice, out)?;
            let frag = body(self)?;
            self.as_mut().patch(choice, frag.start)?;
            whole.end = frag.end;
        }
        self.as_mut().patch(whole.end, out)?;
        Ok(Frag {
            start: whole.start,
            end: out,
        })
    }
}

impl<B: AsMut<Builder>> Combine for B {}

impl AsMut<Builder> for Builder {
    fn as_mut(&mut self) -> &mut Builder {
        self
    }
}

/// Whether `hir` is at most one byte-consuming state (a byte, or a class of bytes).
fn is_one_byte(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Literal(lit) => lit.0.len() <= 1,
        HirKind::Class(Class::Bytes(_)) => true,
        HirKind::Class(Class::Unicode(class)) => class.ranges().iter().all(|r| r.end() < '\u{80}'),
        HirKind::Capture(cap) => is_one_byte(&cap.sub),
        _ => false,
    }
}

/// Builds a [`Program`] (see the [crate docs](crate)).
///
/// ```
/// use corral_automaton::{Builder, LazyDfa};
/// // "a" (, "a")* with one copy of the item: the back edge goes through the separator.
/// let mut b = Builder::new(1000);
/// let item = b.byte_range(b'a', b'a').unwrap();
/// let after = b.union().unwrap();
/// b.patch(item.end, after).unwrap();
/// let sep = b.byte_range(b',', b',').unwrap();
/// b.patch(after, sep.start).unwrap();
/// b.patch(sep.end, item.start).unwrap();
/// let program = b.finish(corral_automaton::Frag { start: item.start, end: after }).unwrap();
/// let mut dfa = LazyDfa::new(std::sync::Arc::new(program), 1 << 20);
/// let s = b"a,a,a".iter().fold(dfa.start(), |s, &c| dfa.next(s, c).unwrap().unwrap());
/// assert!(dfa.is_accepting(s));
/// ```
#[derive(Debug)]
pub struct Builder {
    pub(crate) states: Vec<State>,
    max_states: usize,
    /// Whether counted repetitions may call a procedure for their body (off for
    /// programs that [`Builder::restricted`] takes, which must have none).
    procedures: bool,
    /// See [`Program::member_set`]: the members, each with the state that claims it.
    member_sets: Vec<Vec<(u32, StateId)>>,
    /// Counted repetitions, copy by copy.
    repetitions: Vec<Recorded>,
}

impl Builder {
    /// A builder that fails with [`BuildError::TooLarge`] past `max_states` states.
    pub fn new(max_states: usize) -> Builder {
        Builder {
            states: Vec::new(),
            max_states,
            procedures: true,
            member_sets: Vec::new(),
            repetitions: Vec::new(),
        }
    }

    /// A builder whose regex lowering writes counted repetitions out in full instead
    /// of calling a procedure (see [`Builder::restricted`]).
    pub fn without_procedures(max_states: usize) -> Builder {
        Builder {
            procedures: false,
            ..Builder::new(max_states)
        }
    }

    fn add(&mut self, state: State) -> Result<StateId> {
        if self.states.len() >= self.max_states {
            return Err(BuildError::TooLarge {
                limit: self.max_states,
            });
        }
        self.states.push(state);
        Ok((self.states.len() - 1) as StateId)
    }

    /// Point `from`'s exit at `to`: the next state of a range, empty or (as its return
    /// state) a call; one more alternative of a union.
    pub fn patch(&mut self, from: StateId, to: StateId) -> Result<()> {
        match self.states.get_mut(from as usize) {
            Some(State::Range { next, .. })
            | Some(State::Empty(next))
            | Some(State::Claim { next, .. })
            | Some(State::AllClaimed { next, .. })
            | Some(State::SomeUnclaimed { next, .. }) => *next = to,
            Some(State::Call { ret, .. }) => *ret = to,
            Some(State::Union(alts)) => alts.push(to),
            Some(State::Return) | Some(State::Match) | Some(State::Fail) => {}
            Some(State::Sparse(_)) | None => {
                return Err(BuildError::Regex(format!(
                    "internal: cannot patch state {from}"
                )))
            }
        }
        Ok(())
    }

    pub fn empty(&mut self) -> Result<StateId> {
        self.add(State::Empty(StateId::MAX))
    }

    pub fn union(&mut self) -> Result<StateId> {
        self.add(State::Union(Alternatives::new()))
    }

    /// The empty string.
    pub fn empty_frag(&mut self) -> Result<Frag> {
        let e = self.empty()?;
        Ok(Frag { start: e, end: e })
    }

    /// One byte in `lo..=hi`; the range state is its own exit.
    pub fn byte_range(&mut self, lo: u8, hi: u8) -> Result<Frag> {
        let s = self.add(State::Range {
            lo,
            hi,
            next: StateId::MAX,
        })?;
        Ok(Frag { start: s, end: s })
    }

    /// One byte in any of `ranges` (sorted, disjoint).
    pub fn byte_class(&mut self, ranges: &[(u8, u8)]) -> Result<Frag> {
        match ranges {
            [] => self.never(),
            [(lo, hi)] => self.byte_range(*lo, *hi),
            _ => {
                let end = self.empty()?;
                let start = self.add(State::Sparse(
                    ranges.iter().map(|&(lo, hi)| (lo, hi, end)).collect(),
                ))?;
                Ok(Frag { start, end })
            }
        }
    }

    /// `count` choice states with consecutive ids (none chosen yet); returns the first.
    pub fn union_block(&mut self, count: usize) -> Result<StateId> {
        let first = self.states.len() as StateId;
        for _ in 0..count {
            self.union()?;
        }
        Ok(first)
    }

    /// One byte in any of `edges` (sorted, disjoint), each going to its own state.
    pub fn sparse(&mut self, edges: Vec<(u8, u8, StateId)>) -> Result<StateId> {
        self.add(State::Sparse(edges.into_boxed_slice()))
    }

    /// A fragment no string passes through.
    pub fn never(&mut self) -> Result<Frag> {
        let end = self.empty()?;
        let start = self.add(State::Fail)?;
        Ok(Frag { start, end })
    }

    /// Make `body` a procedure: its exit returns to the caller. Returns its entry, for
    /// [`Builder::call`].
    pub fn procedure(&mut self, body: Frag) -> Result<StateId> {
        let ret = self.add(State::Return)?;
        self.patch(body.end, ret)?;
        Ok(body.start)
    }

    /// A call of the procedure entered at `target`; patching the fragment's exit sets
    /// where the call returns to.
    pub fn call(&mut self, target: StateId) -> Result<Frag> {
        let s = self.add(State::Call {
            target,
            ret: StateId::MAX,
        })?;
        Ok(Frag { start: s, end: s })
    }

    /// Pass only where member `member` of the innermost call's object is not written
    /// yet, marking it written ([`State::Claim`]). Only inside a procedure: the written
    /// members live in the call's frame.
    pub fn claim(&mut self, member: u32) -> Result<Frag> {
        self.needs_procedures()?;
        let s = self.add(State::Claim {
            member,
            next: StateId::MAX,
        })?;
        Ok(Frag { start: s, end: s })
    }

    /// Pass only where every one of `members` is written ([`State::AllClaimed`]); each
    /// member comes with its [`Builder::claim`] state (an end that needs a member no
    /// document can write is dead).
    pub fn all_claimed(&mut self, members: &[(u32, StateId)]) -> Result<Frag> {
        self.member_guard(members, |set| State::AllClaimed {
            set,
            next: StateId::MAX,
        })
    }

    /// Pass only where some of `members` (each with its [`Builder::claim`] state) is
    /// not written yet and can be ([`State::SomeUnclaimed`]).
    pub fn some_unclaimed(&mut self, members: &[(u32, StateId)]) -> Result<Frag> {
        self.member_guard(members, |set| State::SomeUnclaimed {
            set,
            next: StateId::MAX,
        })
    }

    /// A guard state over a new member set.
    fn member_guard(
        &mut self,
        members: &[(u32, StateId)],
        guard: impl FnOnce(u32) -> State,
    ) -> Result<Frag> {
        self.needs_procedures()?;
        self.member_sets.push(members.to_vec());
        let s = self.add(guard((self.member_sets.len() - 1) as u32))?;
        Ok(Frag { start: s, end: s })
    }

    fn needs_procedures(&self) -> Result<()> {
        if self.procedures {
            Ok(())
        } else {
            Err(BuildError::Regex(
                "internal: members in any order need procedures".into(),
            ))
        }
    }

    /// The fragment of a parsed regex.
    pub fn hir(&mut self, hir: &Hir) -> Result<Frag> {
        match hir.kind() {
            HirKind::Empty => self.empty_frag(),
            HirKind::Literal(lit) => self.concat(lit.0.iter(), |b, &byte| b.byte_range(byte, byte)),
            HirKind::Class(Class::Bytes(class)) => {
                let ranges: Vec<(u8, u8)> = class
                    .ranges()
                    .iter()
                    .map(|r| (r.start(), r.end()))
                    .collect();
                self.byte_class(&ranges)
            }
            HirKind::Class(Class::Unicode(class)) => {
                if class.ranges().is_empty() {
                    return self.never();
                }
                // One chain of byte ranges per UTF-8 sequence, all ending in one state.
                let end = self.empty()?;
                let start = self.union()?;
                for range in class.ranges() {
                    for seq in Utf8Sequences::new(range.start(), range.end()) {
                        let mut next = end;
                        for r in seq.as_slice().iter().rev() {
                            next = self.add(State::Range {
                                lo: r.start,
                                hi: r.end,
                                next,
                            })?;
                        }
                        self.patch(start, next)?;
                    }
                }
                Ok(Frag { start, end })
            }
            HirKind::Look(look) => Err(BuildError::Regex(format!(
                "look-around assertion {look:?} is not supported"
            ))),
            HirKind::Repetition(rep) => {
                let copies = rep.max.unwrap_or(rep.min);
                if self.procedures && copies > 2 && !is_one_byte(&rep.sub) {
                    // A counted repetition of a sub-expression larger than one byte
                    // (`STRING_CHAR{0,4096}`): build the body once and call it from
                    // each copy, so each copy costs a call instead of a body.
                    let body = self.hir(&rep.sub)?;
                    let target = self.procedure(body)?;
                    self.repeat(rep.min, rep.max, |b| b.call(target))
                } else {
                    self.repeat(rep.min, rep.max, |b| b.hir(&rep.sub))
                }
            }
            HirKind::Capture(cap) => self.hir(&cap.sub),
            HirKind::Concat(parts) => self.concat(parts.iter(), |b, h| b.hir(h)),
            HirKind::Alternation(parts) => self.alternation(parts.iter(), |b, h| b.hir(h)),
        }
    }

    /// Record a repetition (the [`Program`] keeps those whose copies it can tell apart).
    fn record_repetition(&mut self, copies: Vec<RecordedCopy>, min: u32, bounded: bool) {
        if copies.len() >= 2 {
            self.repetitions.push(Recorded {
                copies,
                min,
                bounded,
            });
        }
    }

    /// Finish with `frag` as the whole document.
    pub fn finish(mut self, frag: Frag) -> Result<Program> {
        let done = self.add(State::Match)?;
        self.patch(frag.end, done)?;
        Ok(Program::new(
            self.states,
            frag.start,
            self.member_sets,
            &self.repetitions,
        ))
    }
}
