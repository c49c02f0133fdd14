//! Lowering [`Rx`] into a [`Program`] with corral-automaton's [`Builder`], state by
//! state — no regex text on the way.
//!
//! A node that several parents refer to (the JSON string grammar, whitespace, "any
//! value", separators, a `$ref`'s body) becomes a *procedure*, built once and called from
//! each use; the lazy DFA carries the return states. Sharing is counted in the expression
//! itself (parents per node), not by who else holds a node. Shapes that the text form had to write twice are built with
//! one copy: a list's back edge goes through its separator (`c_at_least` in
//! regex-automata's compiler), and an object's members are threaded through two frontier
//! states, "nothing written yet" and "something written", so each member is built once.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use corral_automaton::{BuildError, Builder, Combine, Frag, LazyDfa, Program, StateId};
use regex_syntax::hir::Hir;

use crate::cache::ProcessCache;
use crate::rx::{Node, Rx, Slot};

/// Why an [`Rx`] could not be lowered.
#[derive(Debug)]
pub(crate) enum LowerError {
    /// More program states than the limit.
    TooLarge,
    /// A leaf that does not parse, or uses a construct the byte automaton cannot hold.
    Leaf(String),
}

impl From<BuildError> for LowerError {
    fn from(e: BuildError) -> LowerError {
        match e {
            BuildError::TooLarge { .. } => LowerError::TooLarge,
            BuildError::Regex(reason) => LowerError::Leaf(reason),
        }
    }
}

type Result<T> = std::result::Result<T, LowerError>;

/// Leaves parsed by any compilation in this process: the JSON grammar's own leaves
/// (string characters, numbers, whitespace) recur in every schema.
fn cached_leaf(text: &str) -> Result<Hir> {
    use std::sync::OnceLock;
    static CACHE: OnceLock<ProcessCache<String, Hir>> = OnceLock::new();
    CACHE
        .get_or_init(|| ProcessCache::new(16 << 20))
        .get_or_try_insert(text.to_string(), text.len(), || {
            Ok(corral_automaton::parse_regex(text)?)
        })
}

struct Lowering {
    builder: Builder,
    /// Nodes reached from more than one parent in the expression, by identity.
    shared: HashSet<usize>,
    /// Entry state of each shared node's procedure, by node identity.
    procedures: HashMap<usize, StateId>,
    /// The limit on states, for leaves built as programs of their own.
    max_states: usize,
}

/// The non-empty nodes of `root` that are built more than once: more than one parent
/// refers to them (a node used twice by the same parent counts twice), or their parent
/// writes them out several times — the copies of a bounded repetition or list
/// (`maxItems: 256` of an object would otherwise hold 256 objects). Leaves are the
/// exception there: a copy of a leaf costs less than a call.
fn shared_nodes(root: &Rx) -> HashSet<usize> {
    let mut parents: HashMap<usize, u32> = HashMap::new();
    let mut stack = vec![root];
    while let Some(rx) = stack.pop() {
        let copied = rx.copies_of_children() > 1;
        for child in rx.children() {
            let count = parents.entry(child.identity()).or_insert(0);
            let first = *count == 0;
            *count += if copied && !child.is_leaf() { 2 } else { 1 };
            if first {
                stack.push(child);
            }
        }
    }
    parents
        .into_iter()
        .filter(|&(_, count)| count > 1)
        .map(|(id, _)| id)
        .collect()
}

impl AsMut<Builder> for Lowering {
    fn as_mut(&mut self) -> &mut Builder {
        &mut self.builder
    }
}

/// Build the program matching exactly the strings of `rx` (anchored at both ends), with
/// at most `max_states` states.
pub(crate) fn build_program(rx: &Rx, max_states: usize) -> Result<Program> {
    let mut lowering = Lowering {
        builder: Builder::new(max_states),
        shared: shared_nodes(rx),
        procedures: HashMap::new(),
        max_states,
    };
    let frag = lowering.rx(rx)?;
    Ok(lowering.builder.finish(frag)?)
}

impl Lowering {
    fn rx(&mut self, rx: &Rx) -> Result<Frag> {
        if matches!(rx.get(), Node::Empty) || !self.shared.contains(&rx.identity()) {
            return self.node(rx);
        }
        let target = match self.procedures.get(&rx.identity()) {
            Some(&target) => target,
            None => {
                let body = self.node(rx)?;
                let target = self.builder.procedure(body)?;
                self.procedures.insert(rx.identity(), target);
                target
            }
        };
        Ok(self.builder.call(target)?)
    }

    fn node(&mut self, rx: &Rx) -> Result<Frag> {
        match rx.get() {
            Node::Empty => Ok(self.builder.empty_frag()?),
            Node::Text(text) => Ok(self.builder.hir(&cached_leaf(text)?)?),
            Node::Dfa(dfa) => Ok(self.builder.dfa(dfa)?),
            Node::Restricted { regex, dfa } => {
                let program = corral_automaton::Program::from_regex_flat(regex, self.max_states)?;
                Ok(self.builder.restricted(&program, dfa)?)
            }
            Node::Seq(parts) => self.concat(parts, |l, p| l.rx(p)),
            Node::Alt(parts) => self.alternation(parts, |l, p| l.rx(p)),
            Node::Repeat { body, min, max } => self.repeat(*min, *max, |l| l.rx(body)),
            Node::List {
                item,
                sep,
                min,
                max,
            } => self.list(item, sep, *min, *max),
            Node::Members {
                slots,
                sep,
                allow_empty,
            } => self.members(slots, sep, *allow_empty),
            Node::Unordered {
                members,
                extra,
                sep,
                allow_empty,
            } => self.unordered(members, extra.as_ref(), sep, *allow_empty),
        }
    }

    /// Members in any order, as a procedure whose call frame holds the members written
    /// so far ([`corral_automaton::State::Claim`]): each listed member is claimed as it
    /// starts, which passes once; the end passes only when every required member is
    /// claimed, and a separator is written only where some member is still unclaimed (or
    /// an extra member may follow), so every state keeps a way to finish the object.
    /// One separator after a member, whichever follows: an object of many members would
    /// otherwise carry a separator per member through every state where a value may end.
    fn unordered(
        &mut self,
        members: &[crate::rx::Member],
        extra: Option<&Rx>,
        sep: &Rx,
        allow_empty: bool,
    ) -> Result<Frag> {
        let entry = self.builder.union()?;
        let after = self.builder.union()?;
        let end = self.builder.empty()?;
        let mut claims = Vec::with_capacity(members.len());
        for (i, member) in members.iter().enumerate() {
            let item = self.rx(&member.item)?;
            let claim = self.builder.claim(i as u32)?;
            self.builder.patch(entry, claim.start)?;
            self.builder.patch(claim.end, item.start)?;
            self.builder.patch(item.end, after)?;
            claims.push((i as u32, claim.start));
        }
        let required: Vec<(u32, StateId)> = claims
            .iter()
            .copied()
            .filter(|&(i, _)| members[i as usize].required)
            .collect();
        if required.is_empty() {
            self.builder.patch(after, end)?;
        } else {
            let done = self.builder.all_claimed(&required)?;
            self.builder.patch(after, done.start)?;
            self.builder.patch(done.end, end)?;
        }
        if !claims.is_empty() {
            let more = self.builder.some_unclaimed(&claims)?;
            let lead = self.rx(sep)?;
            self.builder.patch(after, more.start)?;
            self.builder.patch(more.end, lead.start)?;
            self.builder.patch(lead.end, entry)?;
        }
        if let Some(extra) = extra {
            // Its own separator: where no listed member is left, the separator leads to
            // extras only (and is dead where there are none).
            let item = self.rx(extra)?;
            self.builder.patch(entry, item.start)?;
            self.builder.patch(item.end, after)?;
            let lead = self.rx(sep)?;
            self.builder.patch(after, lead.start)?;
            self.builder.patch(lead.end, item.start)?;
        }
        let start = if allow_empty && required.is_empty() {
            let start = self.builder.union()?;
            self.builder.patch(start, entry)?;
            self.builder.patch(start, end)?;
            start
        } else {
            entry
        };
        let target = self.builder.procedure(Frag { start, end })?;
        Ok(self.builder.call(target)?)
    }

    /// `item (sep item){min-1,max-1}`, `min >= 1`; unbounded lists keep one copy of the
    /// last mandatory item and loop back to it through `sep`.
    fn list(&mut self, item: &Rx, sep: &Rx, min: u32, max: Option<u32>) -> Result<Frag> {
        let first = self.rx(item)?;
        let mut whole = first;
        let mut last = first;
        for _ in 1..min {
            let s = self.rx(sep)?;
            let i = self.rx(item)?;
            whole = self.append(Some(whole), s)?;
            whole = self.append(Some(whole), i)?;
            last = i;
        }
        match max {
            None => {
                let after = self.builder.union()?;
                self.builder.patch(whole.end, after)?;
                let s = self.rx(sep)?;
                self.builder.patch(after, s.start)?;
                self.builder.patch(s.end, last.start)?;
                let out = self.builder.empty()?;
                self.builder.patch(after, out)?;
                whole.end = out;
                Ok(whole)
            }
            Some(max) => self.optional_copies(whole, max.saturating_sub(min), |l| {
                let s = l.rx(sep)?;
                let i = l.rx(item)?;
                Ok(l.append(Some(s), i)?)
            }),
        }
    }

    /// Slots threaded through three frontiers: `nothing[j]` (no member written yet, slot
    /// `j` next: no separator before it), `after_sep[j]` (a separator written, slot `j`
    /// or a later one must follow) and, per slot, the union after its members. Skipping
    /// optional slots is a chain of the first two only: after a member, the state holds
    /// one separator and perhaps the end, not a separator for each later optional slot
    /// (an object of many optional members would otherwise carry them all through every
    /// state inside a value that may end, and each transition from there).
    fn members(&mut self, slots: &[Slot], sep: &Rx, allow_empty: bool) -> Result<Frag> {
        let n = slots.len();
        // Whether every slot from `j` on may be skipped.
        let mut rest_skippable = vec![true; n + 1];
        for j in (0..n).rev() {
            rest_skippable[j] = rest_skippable[j + 1] && slots[j].min == 0;
        }
        let end = self.builder.empty()?;
        let nothing: Vec<StateId> = (0..=n)
            .map(|_| self.builder.union())
            .collect::<std::result::Result<_, _>>()?;
        let after_sep: Vec<StateId> = (0..n)
            .map(|_| self.builder.union())
            .collect::<std::result::Result<_, _>>()?;
        for (j, slot) in slots.iter().enumerate() {
            let run = self.list(&slot.item, sep, slot.min.max(1), slot.max)?;
            self.builder.patch(nothing[j], run.start)?;
            self.builder.patch(after_sep[j], run.start)?;
            if slot.min == 0 {
                self.builder.patch(nothing[j], nothing[j + 1])?;
                if j + 1 < n {
                    self.builder.patch(after_sep[j], after_sep[j + 1])?;
                }
            }
            let written = self.builder.union()?;
            self.builder.patch(run.end, written)?;
            if rest_skippable[j + 1] {
                self.builder.patch(written, end)?;
            }
            if j + 1 < n {
                let lead = self.rx(sep)?;
                self.builder.patch(written, lead.start)?;
                self.builder.patch(lead.end, after_sep[j + 1])?;
            }
        }
        if allow_empty {
            self.builder.patch(nothing[n], end)?;
        }
        Ok(Frag {
            start: nothing[0],
            end,
        })
    }
}

/// Whole-string matching against an [`Rx`] (for the compiler's own checks: which `enum`
/// values satisfy their sibling keywords, which names satisfy `propertyNames`).
pub(crate) struct Matcher {
    dfa: std::cell::RefCell<LazyDfa>,
}

impl Matcher {
    pub fn new(rx: &Rx, max_states: usize) -> Result<Matcher> {
        let program = build_program(rx, max_states)?;
        Ok(Matcher {
            dfa: std::cell::RefCell::new(LazyDfa::new(Arc::new(program), 64 << 20)),
        })
    }

    /// Whether all of `text` matches. A search that outgrows the budget counts as no
    /// match (the callers then generate less, never more).
    pub fn is_match(&self, text: &str) -> bool {
        let mut dfa = self.dfa.borrow_mut();
        let mut state = dfa.start();
        for &b in text.as_bytes() {
            match dfa.next(state, b) {
                Ok(Some(next)) => state = next,
                _ => return false,
            }
        }
        dfa.is_accepting(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rx::{Rx, Slot};

    fn matcher(rx: &Rx) -> Matcher {
        Matcher::new(rx, 1 << 20).unwrap()
    }

    /// The NFA and the debug text view agree on `cases`.
    fn check(rx: &Rx, yes: &[&str], no: &[&str]) {
        let m = matcher(rx);
        let text = crate::json::matcher(&rx.to_string()).unwrap();
        for s in yes {
            assert!(m.is_match(s), "{rx} should match {s:?}");
            assert!(text.is_match(s), "text {rx} should match {s:?}");
        }
        for s in no {
            assert!(!m.is_match(s), "{rx} should not match {s:?}");
            assert!(!text.is_match(s), "text {rx} should not match {s:?}");
        }
    }

    #[test]
    fn repeats_and_lists() {
        let a = Rx::text("a");
        check(&Rx::repeat(a.clone(), 0, None), &["", "a", "aaa"], &["b"]);
        check(&Rx::repeat(a.clone(), 2, None), &["aa", "aaaa"], &["", "a"]);
        check(
            &Rx::repeat(a.clone(), 1, Some(3)),
            &["a", "aaa"],
            &["", "aaaa"],
        );
        let list = Rx::list(Rx::text("[0-9]+"), Rx::literal(","), 0, None).unwrap();
        check(&list, &["", "1", "1,22,3"], &[",", "1,", ",1", "1,,2"]);
        let list = Rx::list(Rx::text("x"), Rx::literal(","), 2, Some(3)).unwrap();
        check(&list, &["x,x", "x,x,x"], &["x", "x,x,x,x", ""]);
        assert!(Rx::list(a, Rx::empty(), 3, Some(2)).is_none());
    }

    #[test]
    fn members_need_one_separator_between_written_ones() {
        let sep = Rx::literal(",");
        let slots = vec![
            Slot::optional(Rx::literal("a")),
            Slot::required(Rx::literal("b")),
            Slot::optional(Rx::literal("c")),
            Slot {
                item: Rx::literal("x"),
                min: 0,
                max: None,
            },
        ];
        let rx = Rx::members(slots, sep.clone(), false).unwrap();
        check(
            &rx,
            &["b", "a,b", "b,c", "a,b,c,x,x", "b,x"],
            &["", "a", "a,c", "b,", ",b", "ab", "c,b", "b,x,c"],
        );
        let all_optional = vec![
            Slot::optional(Rx::literal("a")),
            Slot::optional(Rx::literal("b")),
        ];
        let nonempty = Rx::members(all_optional.clone(), sep.clone(), false).unwrap();
        check(&nonempty, &["a", "b", "a,b"], &["", "b,a", ","]);
        let maybe_empty = Rx::members(all_optional, sep, true).unwrap();
        check(&maybe_empty, &["", "a", "a,b"], &[","]);
    }

    #[test]
    fn unordered_members_once_each_required_ones_present() {
        use crate::rx::Member;
        let member = |text: &str, required: bool| Member {
            item: Rx::literal(text),
            required,
        };
        let members = vec![member("a", false), member("b", true), member("c", false)];
        let rx = Rx::unordered(members, Some(Rx::literal("x")), Rx::literal(","), true).unwrap();
        let m = matcher(&rx);
        for yes in ["b", "a,b", "b,a", "c,b,a", "x,b,x", "b,x,a", "a,x,x,c,b"] {
            assert!(m.is_match(yes), "{yes}");
        }
        for no in ["", "a", "a,a,b", "b,b", "a,c", ",b", "b,", "ab", "a,c,x"] {
            assert!(!m.is_match(no), "{no}");
        }
        // Every state a prefix reaches can still finish: a separator only where a
        // member can follow it.
        let no_extra = vec![member("a", false), member("b", true)];
        let rx = Rx::unordered(no_extra, None, Rx::literal(","), false).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(build_program(&rx, 1 << 20).unwrap()), 1 << 24);
        let mut prefixes: Vec<Vec<u8>> = vec![vec![]];
        for _ in 0..5 {
            let mut next = Vec::new();
            for p in &prefixes {
                for &c in b"ab," {
                    let mut q = p.clone();
                    q.push(c);
                    next.push(q);
                }
            }
            for p in &next {
                let mut s = Some(dfa.start());
                for &b in p {
                    s = s.and_then(|s| dfa.next(s, b).unwrap());
                }
                if let Some(s) = s {
                    assert!(dfa.is_accepting(s) || dfa.has_continuation(s));
                    let text = String::from_utf8_lossy(p).to_string();
                    assert!(
                        ["a", "b", "a,", "b,", "a,b", "b,a"].contains(&text.as_str()),
                        "{text}"
                    );
                }
            }
            prefixes = next;
        }
    }

    #[test]
    fn unordered_members_no_value_satisfies_are_never_started() {
        use crate::rx::Member;
        let never = || Rx::seq([Rx::literal("n"), Rx::text(r"[^\x{0}-\x{10FFFF}]")]);
        let members = vec![
            Member {
                item: never(),
                required: false,
            },
            Member {
                item: Rx::literal("b"),
                required: true,
            },
        ];
        let rx = Rx::unordered(members, None, Rx::literal(","), false).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(build_program(&rx, 1 << 20).unwrap()), 1 << 24);
        let b = dfa.next(dfa.start(), b'b').unwrap().unwrap();
        assert!(dfa.is_accepting(b));
        // No separator: the only member left can never be written.
        assert!(dfa.next(b, b',').unwrap().is_none());
        // A required member that can never be written: no document at all.
        let members = vec![
            Member {
                item: never(),
                required: true,
            },
            Member {
                item: Rx::literal("b"),
                required: false,
            },
        ];
        let rx = Rx::unordered(members, None, Rx::literal(","), false).unwrap();
        let mut dfa = LazyDfa::new(Arc::new(build_program(&rx, 1 << 20).unwrap()), 1 << 24);
        assert!(dfa.next(dfa.start(), b'b').unwrap().is_none());
        assert!(!dfa.has_continuation(dfa.start()));
    }

    #[test]
    fn unicode_and_byte_classes() {
        check(&Rx::text("[é-ü]x"), &["éx", "üx", "ñx"], &["ex", "x"]);
        check(&Rx::text(r"(?-u:\xC3[\xA9-\xBC])"), &["é"], &["e"]);
        check(&Rx::text(r"[^\x{0}-\x{10FFFF}]|a"), &["a"], &[""]);
    }

    #[test]
    fn nodes_with_several_parents_are_built_once() {
        use corral_automaton::State;
        let calls = |p: &Program| {
            p.states()
                .iter()
                .filter(|s| matches!(s, State::Call { .. }))
                .count()
        };
        let word = Rx::text("[a-z]{20}");
        let rx = Rx::seq((0..50).map(|_| word.clone()));
        let program = build_program(&rx, 1 << 20).unwrap();
        assert_eq!(calls(&program), 50);
        assert!(program.states().len() < 200, "{}", program.states().len());
        check(
            &rx,
            &["a".repeat(1000).as_str()],
            &["a".repeat(999).as_str()],
        );
        // A node held elsewhere but used once in the expression is built in place.
        let once = Rx::seq([word.clone(), Rx::literal("!")]);
        assert_eq!(calls(&build_program(&once, 1 << 20).unwrap()), 0);
    }

    #[test]
    fn size_limit_is_an_error() {
        let rx = Rx::repeat(Rx::text("[a-z]{10}"), 100, Some(100));
        assert!(matches!(build_program(&rx, 500), Err(LowerError::TooLarge)));
    }
}
