//! [`LeafDfa`]: a small, fully built DFA for one leaf of a document (a string's
//! content, a property name), closed under intersection and complement — what an NFA
//! cannot do — and embedded back into a [`Program`] with [`Builder::dfa`].
use std::collections::HashMap;
use std::sync::Arc;

use crate::lazy::{DState, LazyDfa};
use crate::program::{Alternatives, Program};
use crate::{BuildError, Builder, Frag};

/// One state: whether the bytes so far are a match, and where each byte leads (sorted,
/// disjoint ranges; a byte in no range leads nowhere).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafState {
    pub accepting: bool,
    pub edges: Vec<(u8, u8, u32)>,
}

/// A DFA over bytes with every state built (see the [module docs](self)). State 0 is the
/// start.
///
/// ```
/// use corral_automaton::LeafDfa;
/// // Lowercase words of at most 3 letters, but not "abc": an intersection with a
/// // complement, which a regex has no syntax for.
/// let words = LeafDfa::from_regex("[a-z]{1,3}", 1000).unwrap();
/// let abc = LeafDfa::from_regex("abc", 1000).unwrap();
/// let both = words.intersect(&abc.complement(), 1000).unwrap();
/// assert!(both.accepts(b"abd") && both.accepts(b"ab") && !both.accepts(b"abc"));
/// assert!(!both.accepts(b"abcd") && !both.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafDfa {
    states: Vec<LeafState>,
}

impl LeafDfa {
    /// The DFA of a regex (the [`Program::from_regex`] dialect) matched as a whole; at
    /// most `max_states` states.
    pub fn from_regex(regex: &str, max_states: usize) -> Result<LeafDfa, BuildError> {
        let program = Program::from_regex(regex, max_states.saturating_mul(64))?;
        LeafDfa::from_program(Arc::new(program), max_states)
    }

    /// Determinize `program` completely (it must have a finite DFA: no recursive
    /// procedures); at most `max_states` states.
    pub fn from_program(program: Arc<Program>, max_states: usize) -> Result<LeafDfa, BuildError> {
        let too_large = || BuildError::TooLarge { limit: max_states };
        // Runs of bytes in one class, as (lo, hi, class).
        let mut runs: Vec<(u8, u8, usize)> = Vec::new();
        for b in 0..=255u8 {
            let class = program.byte_class(b);
            match runs.last_mut() {
                Some((_, hi, c)) if *c == class => *hi = b,
                _ => runs.push((b, b, class)),
            }
        }
        let mut dfa = LazyDfa::new(program, usize::MAX);
        // The lazy DFA numbers its states densely in discovery order from the start
        // (0): its ids are ours, and the states still to visit are those past `states`.
        let mut states = Vec::new();
        while states.len() < dfa.state_count() {
            let s = DState::from_index(states.len() as u32);
            let mut edges: Vec<(u8, u8, u32)> = Vec::new();
            for &(lo, hi, _) in &runs {
                if let Some(next) = dfa.next(s, lo).map_err(|_| too_large())? {
                    push_edge(&mut edges, lo, hi, next.index() as u32);
                }
            }
            if dfa.state_count() > max_states {
                return Err(too_large());
            }
            states.push(LeafState {
                accepting: dfa.is_accepting(s),
                edges,
            });
        }
        Ok(LeafDfa { states })
    }

    /// The DFA matching exactly these byte strings: their trie, built directly (one
    /// state per distinct prefix; no regex, no determinization — thousands of property
    /// names cost their bytes, not a subset construction).
    pub fn from_literals<'s>(literals: impl IntoIterator<Item = &'s [u8]>) -> LeafDfa {
        let mut accepting = vec![false];
        let mut children: Vec<std::collections::BTreeMap<u8, u32>> = vec![Default::default()];
        for literal in literals {
            let mut s = 0usize;
            for &b in literal {
                let next = match children[s].get(&b) {
                    Some(&next) => next,
                    None => {
                        let next = accepting.len() as u32;
                        accepting.push(false);
                        children.push(Default::default());
                        children[s].insert(b, next);
                        next
                    }
                };
                s = next as usize;
            }
            accepting[s] = true;
        }
        let states = children
            .into_iter()
            .zip(accepting)
            .map(|(kids, accepting)| LeafState {
                accepting,
                edges: kids.into_iter().map(|(b, to)| (b, b, to)).collect(),
            })
            .collect();
        LeafDfa { states }
    }

    /// The DFA of the strings of `regex` that `within` accepts: the regex's NFA is
    /// restricted by `within` first ([`Builder::restricted`]), so only that part is
    /// determinized (a pattern over plain characters, without the escape sequences that
    /// multiply its states).
    pub fn from_regex_within(
        regex: &str,
        within: &LeafDfa,
        max_states: usize,
    ) -> Result<LeafDfa, BuildError> {
        let program = Program::from_regex_flat(regex, max_states.saturating_mul(64))?;
        let mut builder = Builder::new(max_states.saturating_mul(64));
        let frag = builder.restricted(&program, within)?;
        let restricted = builder.finish(frag)?;
        LeafDfa::from_program(Arc::new(restricted), max_states)
    }

    /// `min..=max` strings of `self` one after the other (`max` `None`: unbounded),
    /// built directly: a copy of `self` per count, no determinization. `self` must be
    /// prefix-free — an accepting state leads nowhere, as for one JSON string character
    /// — so that the end of each string is known at once.
    pub fn counted(
        &self,
        min: u32,
        max: Option<u32>,
        max_states: usize,
    ) -> Result<LeafDfa, BuildError> {
        if self
            .states
            .iter()
            .any(|s| s.accepting && !s.edges.is_empty())
            || self.states[0].accepting
        {
            return Err(BuildError::Regex(
                "internal: a counted DFA needs a prefix-free unit".into(),
            ));
        }
        let n = self.states.len() as u32;
        // Copies 0..=last: copy `i` means `i` strings are complete. Unbounded: the last
        // copy (`min`) loops back to its own start.
        let last = max.unwrap_or(min);
        let total = (last as usize + 1) * n as usize;
        if total > max_states {
            return Err(BuildError::TooLarge { limit: max_states });
        }
        let mut states = Vec::with_capacity(total);
        for i in 0..=last {
            for state in &self.states {
                let mut edges = Vec::new();
                for &(lo, hi, to) in &state.edges {
                    let target = if !self.states[to as usize].accepting {
                        Some(i * n + to)
                    } else if i < last {
                        Some((i + 1) * n)
                    } else if max.is_none() {
                        Some(i * n)
                    } else {
                        None
                    };
                    if let Some(target) = target {
                        push_edge(&mut edges, lo, hi, target);
                    }
                }
                states.push(LeafState {
                    accepting: false,
                    edges,
                });
            }
            states[(i * n) as usize].accepting = i >= min;
        }
        Ok(LeafDfa { states })
    }

    /// The states (state 0 is the start).
    pub fn states(&self) -> &[LeafState] {
        &self.states
    }

    /// Whether `bytes` are matched as a whole.
    pub fn accepts(&self, bytes: &[u8]) -> bool {
        let mut s = 0usize;
        for &b in bytes {
            match self.states[s]
                .edges
                .iter()
                .find(|&&(lo, hi, _)| lo <= b && b <= hi)
            {
                Some(&(_, _, next)) => s = next as usize,
                None => return false,
            }
        }
        self.states[s].accepting
    }

    /// Whether no byte string is matched.
    pub fn is_empty(&self) -> bool {
        let mut seen = vec![false; self.states.len()];
        let mut todo = vec![0usize];
        seen[0] = true;
        while let Some(s) = todo.pop() {
            if self.states[s].accepting {
                return false;
            }
            for &(_, _, next) in &self.states[s].edges {
                if !std::mem::replace(&mut seen[next as usize], true) {
                    todo.push(next as usize);
                }
            }
        }
        true
    }

    /// Every byte string this DFA does not match (one state more: where the strings go
    /// once they can no longer match).
    pub fn complement(&self) -> LeafDfa {
        let sink = self.states.len() as u32;
        let mut states: Vec<LeafState> = self
            .states
            .iter()
            .map(|state| {
                let mut edges = Vec::new();
                let mut next_byte = 0u16;
                for &(lo, hi, to) in &state.edges {
                    if u16::from(lo) > next_byte {
                        push_edge(&mut edges, next_byte as u8, lo - 1, sink);
                    }
                    push_edge(&mut edges, lo, hi, to);
                    next_byte = u16::from(hi) + 1;
                }
                if next_byte <= 255 {
                    push_edge(&mut edges, next_byte as u8, 255, sink);
                }
                LeafState {
                    accepting: !state.accepting,
                    edges,
                }
            })
            .collect();
        states.push(LeafState {
            accepting: true,
            edges: vec![(0, 255, sink)],
        });
        LeafDfa { states }
    }

    /// The byte strings both DFAs match (the product automaton, built from the start
    /// pair outwards; at most `max_states` states).
    pub fn intersect(&self, other: &LeafDfa, max_states: usize) -> Result<LeafDfa, BuildError> {
        let mut ids: HashMap<(u32, u32), u32> = HashMap::from([((0, 0), 0)]);
        let mut order = vec![(0u32, 0u32)];
        let mut states = Vec::new();
        let mut i = 0;
        while let Some(&(a, b)) = order.get(i) {
            i += 1;
            let (sa, sb) = (&self.states[a as usize], &other.states[b as usize]);
            let mut edges = Vec::new();
            let (mut x, mut y) = (0, 0);
            while x < sa.edges.len() && y < sb.edges.len() {
                let (alo, ahi, ato) = sa.edges[x];
                let (blo, bhi, bto) = sb.edges[y];
                let (lo, hi) = (alo.max(blo), ahi.min(bhi));
                if lo <= hi {
                    let id = match ids.get(&(ato, bto)) {
                        Some(&id) => id,
                        None => {
                            if order.len() >= max_states {
                                return Err(BuildError::TooLarge { limit: max_states });
                            }
                            let id = order.len() as u32;
                            ids.insert((ato, bto), id);
                            order.push((ato, bto));
                            id
                        }
                    };
                    push_edge(&mut edges, lo, hi, id);
                }
                if ahi < bhi {
                    x += 1;
                } else {
                    y += 1;
                }
            }
            states.push(LeafState {
                accepting: sa.accepting && sb.accepting,
                edges,
            });
        }
        Ok(LeafDfa { states })
    }
}

/// Append a range, merging it into the last one when they touch and lead to one state.
fn push_edge(edges: &mut Vec<(u8, u8, u32)>, lo: u8, hi: u8, to: u32) {
    match edges.last_mut() {
        Some((_, last_hi, last_to))
            if *last_to == to && u16::from(*last_hi) + 1 == u16::from(lo) =>
        {
            *last_hi = hi
        }
        _ => edges.push((lo, hi, to)),
    }
}

impl Builder {
    /// The fragment of a [`LeafDfa`]: one choice state per DFA state (go on by a byte,
    /// or leave when accepting). States that cannot reach an accepting one are pruned
    /// with the rest of the program.
    pub fn dfa(&mut self, dfa: &LeafDfa) -> Result<Frag, BuildError> {
        let end = self.empty()?;
        let first = self.union_block(dfa.states.len())?;
        for (i, state) in dfa.states.iter().enumerate() {
            let choice = first + i as u32;
            if !state.edges.is_empty() {
                let edges = state
                    .edges
                    .iter()
                    .map(|&(lo, hi, to)| (lo, hi, first + to))
                    .collect();
                let step = self.sparse(edges)?;
                self.patch(choice, step)?;
            }
            if state.accepting {
                self.patch(choice, end)?;
            }
        }
        Ok(Frag { start: first, end })
    }

    /// The fragment of the strings `program` matches that `dfa` accepts too, built as
    /// the product of the NFA and the DFA: pairs (program state, DFA state) reached from
    /// the start, so the program is never determinized (a searched pattern's DFA can be
    /// large where the product with a small DFA — "none of these names" — is not).
    /// `program` must have no procedures ([`Program::from_regex_flat`]).
    pub fn restricted(&mut self, program: &Program, dfa: &LeafDfa) -> Result<Frag, BuildError> {
        use crate::program::State;
        let end = self.empty()?;
        // Keys are pairs of state ids this function assigns: no untrusted input.
        let mut ids: HashMap<(u32, u32), u32, crate::lazy::FastHash> = HashMap::default();
        let mut todo: Vec<(u32, u32)> = Vec::new();
        /// The builder state of a pair, created (as a placeholder that the loop below
        /// replaces) and queued when new.
        /// A chain of `Empty` states is one state in the product: each pair of the
        /// chain would otherwise be a state of its own, for every state of the DFA.
        fn id_of(
            b: &mut Builder,
            program: &Program,
            ids: &mut HashMap<(u32, u32), u32, crate::lazy::FastHash>,
            todo: &mut Vec<(u32, u32)>,
            mut pair: (u32, u32),
        ) -> Result<u32, BuildError> {
            // Bounded: a chain longer than the program would be a cycle of `Empty`s.
            for _ in 0..program.states().len() {
                match program.states()[pair.0 as usize] {
                    State::Empty(next) => pair.0 = next,
                    _ => break,
                }
            }
            if let Some(&id) = ids.get(&pair) {
                return Ok(id);
            }
            let id = b.empty()?;
            ids.insert(pair, id);
            todo.push(pair);
            Ok(id)
        }
        let start = id_of(self, program, &mut ids, &mut todo, (program.start(), 0))?;
        while let Some((q, d)) = todo.pop() {
            let here = ids[&(q, d)];
            let edges = &dfa.states[d as usize].edges;
            // Byte ranges of the program state with where they lead in it.
            let single;
            let ranges: &[(u8, u8, u32)] = match &program.states()[q as usize] {
                State::Range { lo, hi, next } => {
                    single = [(*lo, *hi, *next)];
                    &single
                }
                State::Sparse(ranges) => ranges,
                State::Union(alts) => {
                    let mut targets = Alternatives::with_capacity(alts.len());
                    for &alt in alts {
                        targets.push(id_of(self, program, &mut ids, &mut todo, (alt, d))?);
                    }
                    self.states[here as usize] = State::Union(targets);
                    continue;
                }
                State::Empty(next) => {
                    let to = id_of(self, program, &mut ids, &mut todo, (*next, d))?;
                    self.states[here as usize] = State::Empty(to);
                    continue;
                }
                State::Match => {
                    self.states[here as usize] = if dfa.states[d as usize].accepting {
                        State::Empty(end)
                    } else {
                        State::Fail
                    };
                    continue;
                }
                State::Fail => {
                    self.states[here as usize] = State::Fail;
                    continue;
                }
                State::Call { .. }
                | State::Return
                | State::Claim { .. }
                | State::AllClaimed { .. }
                | State::SomeUnclaimed { .. } => {
                    return Err(BuildError::Regex(
                        "internal: a restricted program has procedures".into(),
                    ))
                }
            };
            let mut out: Vec<(u8, u8, u32)> = Vec::new();
            for &(lo, hi, next) in ranges {
                for &(elo, ehi, eto) in edges {
                    let (a, b) = (lo.max(elo), hi.min(ehi));
                    if a <= b {
                        out.push((
                            a,
                            b,
                            id_of(self, program, &mut ids, &mut todo, (next, eto))?,
                        ));
                    }
                }
            }
            out.sort_unstable();
            self.states[here as usize] = if out.is_empty() {
                State::Fail
            } else {
                State::Sparse(out.into_boxed_slice())
            };
        }
        Ok(Frag { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_strings(alphabet: &[u8], max_len: usize) -> Vec<Vec<u8>> {
        let mut out = vec![vec![]];
        let mut level = vec![vec![]];
        for _ in 0..max_len {
            let mut next = Vec::new();
            for s in &level {
                for &c in alphabet {
                    let mut t: Vec<u8> = s.clone();
                    t.push(c);
                    next.push(t);
                }
            }
            out.extend(next.iter().cloned());
            level = next;
        }
        out
    }

    fn full_match(regex: &str, s: &[u8]) -> bool {
        regex_automata::meta::Builder::new()
            .syntax(regex_automata::util::syntax::Config::new().utf8(false))
            .build(&format!("^(?:{regex})$"))
            .unwrap()
            .is_match(regex_automata::Input::new(s))
    }

    #[test]
    fn literals_are_a_trie() {
        let words: [&[u8]; 4] = [b"ab", b"ac", b"b", b"abc"];
        let dfa = LeafDfa::from_literals(words);
        // Root, a, ab, ac, b, abc.
        assert_eq!(dfa.states().len(), 6);
        for s in all_strings(b"abc", 4) {
            assert_eq!(dfa.accepts(&s), words.contains(&&s[..]), "{s:?}");
            assert_eq!(
                dfa.complement().accepts(&s),
                !words.contains(&&s[..]),
                "{s:?}"
            );
        }
        assert!(LeafDfa::from_literals([]).is_empty());
    }

    #[test]
    fn products_and_complements_agree_with_their_definition() {
        let (ra, rb) = ("(ab|a)*b?", "[ab]{0,3}");
        let a = LeafDfa::from_regex(ra, 1000).unwrap();
        let b = LeafDfa::from_regex(rb, 1000).unwrap();
        let both = a.intersect(&b, 1000).unwrap();
        let a_not_b = a.intersect(&b.complement(), 1000).unwrap();
        for s in all_strings(b"abc", 5) {
            let (in_a, in_b) = (full_match(ra, &s), full_match(rb, &s));
            assert_eq!(a.accepts(&s), in_a);
            assert_eq!(a.complement().accepts(&s), !in_a);
            assert_eq!(both.accepts(&s), in_a && in_b, "{s:?}");
            assert_eq!(a_not_b.accepts(&s), in_a && !in_b, "{s:?}");
        }
        assert!(a.intersect(&a.complement(), 1000).unwrap().is_empty());
    }

    #[test]
    fn embedded_in_a_program() {
        let words = LeafDfa::from_regex("[a-z]+", 100).unwrap();
        let names = LeafDfa::from_regex("id|name", 100).unwrap();
        let others = words.intersect(&names.complement(), 100).unwrap();
        let mut b = Builder::new(1000);
        let frag = b.dfa(&others).unwrap();
        let program = b.finish(frag).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(program), 1 << 20);
        let mut run = |text: &[u8]| {
            let mut s = dfa.start();
            for &c in text {
                match dfa.next(s, c).unwrap() {
                    Some(n) => s = n,
                    None => return false,
                }
            }
            dfa.is_accepting(s)
        };
        assert!(run(b"idx") && run(b"nam") && run(b"i"));
        assert!(!run(b"id") && !run(b"name") && !run(b"") && !run(b"ID"));
    }

    #[test]
    fn program_restricted_by_a_dfa() {
        // Searched "ab" over [a-c], minus the strings "ab" and "cab".
        let program = Program::from_regex("[a-c]*ab[a-c]*", 1000).unwrap();
        let names = LeafDfa::from_regex("ab|cab", 100).unwrap().complement();
        let mut b = Builder::new(10_000);
        let frag = b.restricted(&program, &names).unwrap();
        let restricted = b.finish(frag).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(restricted), 1 << 20);
        for s in all_strings(b"abc", 5) {
            let expected = full_match("[a-c]*ab[a-c]*", &s) && s != b"ab" && s != b"cab";
            let mut state = Some(dfa.start());
            for &c in &s {
                state = state.and_then(|q| dfa.next(q, c).unwrap());
            }
            let got = state.is_some_and(|q| dfa.is_accepting(q));
            assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(&s));
        }
    }

    #[test]
    fn restricted_products_pair_no_empty_states() {
        // A chain of `Empty` states is one product state per DFA state, not one per link:
        // the pairs are of the program's other states (and the product's own end).
        let program = Program::from_regex_flat("(?:(?:a|b)?(?:c|d)?){3}e", 1000).unwrap();
        let dfa = LeafDfa::from_regex("[a-e]{0,4}", 100).unwrap();
        let others = program
            .states()
            .iter()
            .filter(|s| !matches!(s, crate::program::State::Empty(_)))
            .count();
        let mut b = Builder::new(100_000);
        let before = b.states.len();
        b.restricted(&program, &dfa).unwrap();
        let pairs = b.states.len() - before - 1;
        assert!(
            pairs <= others * dfa.states().len(),
            "{pairs} pairs of {others} states and {} DFA states",
            dfa.states().len()
        );
    }

    #[test]
    fn regex_within_a_dfa() {
        let lower = LeafDfa::from_regex("[a-z]*", 100).unwrap();
        let dfa = LeafDfa::from_regex_within("[a-zA-Z]*x[a-zA-Z]*", &lower, 100).unwrap();
        for s in all_strings(b"axX", 4) {
            let expected = full_match("[a-z]*x[a-z]*", &s);
            assert_eq!(
                dfa.accepts(&s),
                expected,
                "{:?}",
                String::from_utf8_lossy(&s)
            );
        }
    }

    #[test]
    fn counted_copies_of_a_prefix_free_unit() {
        // A unit: "a" or "bc".
        let unit = LeafDfa::from_regex("a|bc", 100).unwrap();
        for (min, max, regex) in [
            (1, Some(3), "(a|bc){1,3}"),
            (0, Some(2), "(a|bc){0,2}"),
            (2, None, "(a|bc){2,}"),
            (0, None, "(a|bc)*"),
        ] {
            let counted = unit.counted(min, max, 1000).unwrap();
            for s in all_strings(b"abc", 6) {
                assert_eq!(counted.accepts(&s), full_match(regex, &s), "{regex} {s:?}");
            }
        }
        let not_prefix_free = LeafDfa::from_regex("a|ab", 100).unwrap();
        assert!(not_prefix_free.counted(0, Some(2), 100).is_err());
    }

    #[test]
    fn limits_are_errors() {
        assert!(LeafDfa::from_regex("[ab]*a[ab]{12}", 100).is_err());
        let a = LeafDfa::from_regex("[a-z]{0,20}", 1000).unwrap();
        let b = LeafDfa::from_regex("[a-m]*x[a-z]{0,20}", 1000).unwrap();
        assert!(a.intersect(&b, 10).is_err());
    }
}
