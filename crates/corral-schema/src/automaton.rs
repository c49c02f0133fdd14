//! Lowering [`Rx`] into a Thompson NFA with regex-automata's [`Builder`], state by
//! state, as regex-automata's own compiler does for a parsed regex — without the text.
//!
//! Every fragment has one entry and one exit state (the exit is an empty or union state
//! patched to what follows). Shapes that the text form had to write twice are built with
//! one copy: a list's back edge goes through its separator (`c_at_least` in
//! regex-automata's compiler), and an object's members are threaded through two frontier
//! states, "nothing written yet" and "something written", so each member is built once.
use std::collections::HashMap;

use regex_automata::nfa::thompson::{Builder, Transition, NFA};
use regex_automata::util::primitives::StateID;
use regex_syntax::hir::{Class, Hir, HirKind};
use regex_syntax::utf8::Utf8Sequences;

use crate::rx::{Node, Rx, Slot};

/// Why an [`Rx`] could not be lowered.
#[derive(Debug)]
pub(crate) enum LowerError {
    /// More NFA states than the limit.
    TooLarge,
    /// A leaf that does not parse, or uses a construct the byte automaton cannot hold.
    Leaf(String),
}

impl From<regex_automata::nfa::thompson::BuildError> for LowerError {
    fn from(e: regex_automata::nfa::thompson::BuildError) -> LowerError {
        if e.size_limit().is_some() {
            LowerError::TooLarge
        } else {
            LowerError::Leaf(e.to_string())
        }
    }
}

type Result<T> = std::result::Result<T, LowerError>;

/// A built fragment: enter at `start`, patch `end` to what follows.
#[derive(Clone, Copy)]
struct Frag {
    start: StateID,
    end: StateID,
}

/// Parse a leaf regex in the dialect the compiler writes (Unicode on, UTF-8 check off:
/// string characters are spelled as UTF-8 byte sequences).
pub(crate) fn parse_leaf(text: &str) -> std::result::Result<Hir, String> {
    regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(text)
        .map_err(|e| e.to_string())
}

/// Leaves parsed by any compilation in this process: the JSON grammar's own leaves
/// (string characters, numbers, whitespace) recur in every schema.
fn cached_leaf(text: &str) -> Result<Hir> {
    use std::sync::{Mutex, OnceLock};
    /// Leaves longer than this are parsed each time (they are rare and their own cost
    /// is small next to their lowering).
    const MAX_CACHED_LEN: usize = 4096;
    const MAX_CACHED: usize = 4096;
    static CACHE: OnceLock<Mutex<HashMap<String, Hir>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(hir) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(text) {
        return Ok(hir.clone());
    }
    let hir = parse_leaf(text).map_err(LowerError::Leaf)?;
    if text.len() <= MAX_CACHED_LEN {
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(text.to_string(), hir.clone());
    }
    Ok(hir)
}

struct Lowering {
    builder: Builder,
    max_states: usize,
    states: usize,
    /// Parsed leaves by text: the same leaf (string characters, whitespace, numbers)
    /// occurs many times in a document automaton.
    parsed: HashMap<String, Hir>,
}

/// Build the NFA matching exactly the strings of `rx` (anchored at both ends), with at
/// most `max_states` states.
pub(crate) fn build_nfa(rx: &Rx, max_states: usize) -> Result<NFA> {
    let mut lowering = Lowering {
        builder: Builder::new(),
        max_states,
        states: 0,
        parsed: HashMap::new(),
    };
    lowering.builder.set_utf8(false);
    lowering.builder.start_pattern()?;
    let frag = lowering.rx(rx)?;
    let done = lowering.builder.add_match()?;
    lowering.builder.patch(frag.end, done)?;
    lowering.builder.finish_pattern(frag.start)?;
    Ok(lowering.builder.build(frag.start, frag.start)?)
}

impl Lowering {
    fn count(&mut self, n: usize) -> Result<()> {
        self.states += n;
        if self.states > self.max_states {
            return Err(LowerError::TooLarge);
        }
        Ok(())
    }

    fn empty(&mut self) -> Result<StateID> {
        self.count(1)?;
        Ok(self.builder.add_empty()?)
    }

    fn union(&mut self) -> Result<StateID> {
        self.count(1)?;
        Ok(self.builder.add_union(vec![])?)
    }

    fn patch(&mut self, from: StateID, to: StateID) -> Result<()> {
        Ok(self.builder.patch(from, to)?)
    }

    fn empty_frag(&mut self) -> Result<Frag> {
        let e = self.empty()?;
        Ok(Frag { start: e, end: e })
    }

    fn rx(&mut self, rx: &Rx) -> Result<Frag> {
        match rx.get() {
            Node::Empty => self.empty_frag(),
            Node::Text(text) => {
                let hir = match self.parsed.get(text) {
                    Some(hir) => hir.clone(),
                    None => {
                        let hir = cached_leaf(text)?;
                        self.parsed.insert(text.clone(), hir.clone());
                        hir
                    }
                };
                self.hir(&hir)
            }
            Node::Seq(parts) => self.concat(parts.iter(), |l, p| l.rx(p)),
            Node::Alt(parts) => self.alternation(parts.iter(), |l, p| l.rx(p)),
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
        }
    }

    /// `whole` followed by `frag`.
    fn append(&mut self, whole: Option<Frag>, frag: Frag) -> Result<Frag> {
        Ok(match whole {
            None => frag,
            Some(w) => {
                self.patch(w.end, frag.start)?;
                Frag {
                    start: w.start,
                    end: frag.end,
                }
            }
        })
    }

    fn concat<T>(
        &mut self,
        parts: impl Iterator<Item = T>,
        mut each: impl FnMut(&mut Self, T) -> Result<Frag>,
    ) -> Result<Frag> {
        let mut whole: Option<Frag> = None;
        for part in parts {
            let frag = each(self, part)?;
            whole = Some(self.append(whole, frag)?);
        }
        match whole {
            Some(w) => Ok(w),
            None => self.empty_frag(),
        }
    }

    fn alternation<T>(
        &mut self,
        parts: impl Iterator<Item = T>,
        mut each: impl FnMut(&mut Self, T) -> Result<Frag>,
    ) -> Result<Frag> {
        let start = self.union()?;
        let end = self.empty()?;
        for part in parts {
            let frag = each(self, part)?;
            self.patch(start, frag.start)?;
            self.patch(frag.end, end)?;
        }
        Ok(Frag { start, end })
    }

    /// `body{min,max}`: `min` copies, then either one looping copy (unbounded) or
    /// `max - min` nested optional copies.
    fn repeat(
        &mut self,
        min: u32,
        max: Option<u32>,
        mut body: impl FnMut(&mut Self) -> Result<Frag>,
    ) -> Result<Frag> {
        let mut whole: Option<Frag> = None;
        let mut last: Option<Frag> = None;
        for _ in 0..min {
            let frag = body(self)?;
            whole = Some(self.append(whole, frag)?);
            last = Some(frag);
        }
        let whole = match whole {
            Some(w) => w,
            None => self.empty_frag()?,
        };
        match max {
            None => {
                // The last mandatory copy loops on itself; `body*` gets one copy.
                let looped = match last {
                    Some(frag) => frag,
                    None => body(self)?,
                };
                let again = self.union()?;
                self.patch(whole.end, again)?;
                if min == 0 {
                    self.patch(looped.end, again)?;
                }
                self.patch(again, looped.start)?;
                let out = self.empty()?;
                self.patch(again, out)?;
                Ok(Frag {
                    start: whole.start,
                    end: out,
                })
            }
            Some(max) => self.optional_copies(whole, max.saturating_sub(min), &mut body),
        }
    }

    /// `whole` followed by `count` nested optional copies of `body`: `(b(b(b)?)?)?`.
    fn optional_copies(
        &mut self,
        mut whole: Frag,
        count: u32,
        body: &mut impl FnMut(&mut Self) -> Result<Frag>,
    ) -> Result<Frag> {
        let out = self.empty()?;
        for _ in 0..count {
            let choice = self.union()?;
            self.patch(whole.end, choice)?;
            self.patch(choice, out)?;
            let frag = body(self)?;
            self.patch(choice, frag.start)?;
            whole.end = frag.end;
        }
        self.patch(whole.end, out)?;
        Ok(Frag {
            start: whole.start,
            end: out,
        })
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
                let after = self.union()?;
                self.patch(whole.end, after)?;
                let s = self.rx(sep)?;
                self.patch(after, s.start)?;
                self.patch(s.end, last.start)?;
                let out = self.empty()?;
                self.patch(after, out)?;
                whole.end = out;
                Ok(whole)
            }
            Some(max) => {
                let mut more = |l: &mut Self| {
                    let s = l.rx(sep)?;
                    let i = l.rx(item)?;
                    l.append(Some(s), i)
                };
                self.optional_copies(whole, max.saturating_sub(min), &mut more)
            }
        }
    }

    /// Slots threaded through two frontiers: `nothing` (no member written yet: the next
    /// one needs no separator) and `something`.
    fn members(&mut self, slots: &[Slot], sep: &Rx, allow_empty: bool) -> Result<Frag> {
        let start = self.union()?;
        let mut nothing = Some(start);
        let mut something: Option<StateID> = None;
        for slot in slots {
            let run = self.list(&slot.item, sep, slot.min.max(1), slot.max)?;
            let next_something = self.union()?;
            self.patch(run.end, next_something)?;
            let skip = slot.min == 0;
            let mut next_nothing = None;
            if let Some(n) = nothing {
                self.patch(n, run.start)?;
                if skip {
                    let u = self.union()?;
                    self.patch(n, u)?;
                    next_nothing = Some(u);
                }
            }
            if let Some(s) = something {
                let lead = self.rx(sep)?;
                self.patch(s, lead.start)?;
                self.patch(lead.end, run.start)?;
                if skip {
                    self.patch(s, next_something)?;
                }
            }
            nothing = next_nothing;
            something = Some(next_something);
        }
        let end = self.empty()?;
        if let Some(s) = something {
            self.patch(s, end)?;
        }
        if let Some(n) = nothing.filter(|_| allow_empty) {
            self.patch(n, end)?;
        }
        Ok(Frag { start, end })
    }

    fn hir(&mut self, hir: &Hir) -> Result<Frag> {
        match hir.kind() {
            HirKind::Empty => self.empty_frag(),
            HirKind::Literal(lit) => self.concat(lit.0.iter(), |l, &b| l.byte_range(b, b)),
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
                            self.count(1)?;
                            next = self.builder.add_range(Transition {
                                start: r.start,
                                end: r.end,
                                next,
                            })?;
                        }
                        self.patch(start, next)?;
                    }
                }
                Ok(Frag { start, end })
            }
            HirKind::Look(look) => Err(LowerError::Leaf(format!(
                "look-around assertion {look:?} inside a JSON value"
            ))),
            HirKind::Repetition(rep) => self.repeat(rep.min, rep.max, |l| l.hir(&rep.sub)),
            HirKind::Capture(cap) => self.hir(&cap.sub),
            HirKind::Concat(parts) => self.concat(parts.iter(), |l, h| l.hir(h)),
            HirKind::Alternation(parts) => self.alternation(parts.iter(), |l, h| l.hir(h)),
        }
    }

    /// One byte range; the range state is its own exit (patching sets its target).
    fn byte_range(&mut self, lo: u8, hi: u8) -> Result<Frag> {
        self.count(1)?;
        let state = self.builder.add_range(Transition {
            start: lo,
            end: hi,
            next: StateID::ZERO,
        })?;
        Ok(Frag {
            start: state,
            end: state,
        })
    }

    fn byte_class(&mut self, ranges: &[(u8, u8)]) -> Result<Frag> {
        match ranges {
            [] => self.never(),
            [(lo, hi)] => self.byte_range(*lo, *hi),
            _ => {
                let end = self.empty()?;
                self.count(1)?;
                let start = self.builder.add_sparse(
                    ranges
                        .iter()
                        .map(|&(start, end_byte)| Transition {
                            start,
                            end: end_byte,
                            next: end,
                        })
                        .collect(),
                )?;
                Ok(Frag { start, end })
            }
        }
    }

    /// A fragment no string passes through.
    fn never(&mut self) -> Result<Frag> {
        let end = self.empty()?;
        self.count(1)?;
        let start = self.builder.add_fail()?;
        Ok(Frag { start, end })
    }
}

/// Whole-string matching against an [`Rx`] (for the compiler's own checks: which `enum`
/// values satisfy their sibling keywords, which names satisfy `propertyNames`).
pub(crate) struct Matcher {
    dfa: regex_automata::hybrid::dfa::DFA,
    cache: std::cell::RefCell<regex_automata::hybrid::dfa::Cache>,
}

impl Matcher {
    pub fn new(rx: &Rx, max_states: usize) -> Result<Matcher> {
        let nfa = build_nfa(rx, max_states)?;
        let dfa = regex_automata::hybrid::dfa::DFA::builder()
            .configure(
                regex_automata::hybrid::dfa::DFA::config()
                    .match_kind(regex_automata::MatchKind::All)
                    .cache_capacity(8 << 20)
                    // Large automata get the minimum cache instead of an error.
                    .skip_cache_capacity_check(true),
            )
            .build_from_nfa(nfa)
            .map_err(|e| LowerError::Leaf(e.to_string()))?;
        let cache = std::cell::RefCell::new(dfa.create_cache());
        Ok(Matcher { dfa, cache })
    }

    /// Whether all of `text` matches. A search that outgrows the cache counts as no
    /// match (the callers then generate less, never more).
    pub fn is_match(&self, text: &str) -> bool {
        use regex_automata::util::start;
        let mut cache = self.cache.borrow_mut();
        let config = start::Config::new().anchored(regex_automata::Anchored::Yes);
        let Ok(mut state) = self.dfa.start_state(&mut cache, &config) else {
            return false;
        };
        for &b in text.as_bytes() {
            match self.dfa.next_state(&mut cache, state, b) {
                Ok(next) if !next.is_dead() => state = next,
                _ => return false,
            }
        }
        self.dfa
            .next_eoi_state(&mut cache, state)
            .is_ok_and(|s| s.is_match())
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
    fn unicode_and_byte_classes() {
        check(&Rx::text("[é-ü]x"), &["éx", "üx", "ñx"], &["ex", "x"]);
        check(&Rx::text(r"(?-u:\xC3[\xA9-\xBC])"), &["é"], &["e"]);
        check(&Rx::text(r"[^\x{0}-\x{10FFFF}]|a"), &["a"], &[""]);
    }

    #[test]
    fn size_limit_is_an_error() {
        let rx = Rx::repeat(Rx::text("[a-z]{10}"), 100, Some(100));
        assert!(matches!(build_nfa(&rx, 500), Err(LowerError::TooLarge)));
    }
}
