//! The regular-expression IR the schema compiler produces: a tree of shared nodes that is
//! lowered straight into an NFA ([`crate::automaton`]), never printed and parsed again.
//!
//! Sub-expressions are reference-counted, so a value used in many places (the string
//! grammar, a `$ref`'s body, "any value") is built once. Two node kinds say what the text
//! form could only say by writing their parts out twice:
//! - [`Rx::list`]: `item (sep item)*` with bounds, lowered with one copy of `item` when
//!   the count is unbounded (the back edge goes through `sep`);
//! - [`Rx::members`]: the members of an object in order, each required, optional or
//!   repeated, separated by `sep` — one copy of each member however many of the earlier
//!   ones are optional;
//! - [`Rx::unordered`]: the members of an object in any order, each listed one at most
//!   once and every required one present — the automaton keeps the written members in
//!   the object's call frame, so no order or subset of them is written out.
//!
//! Leaves are small regexes in the `regex-syntax` dialect (number ranges, string
//! patterns, formats). [`Rx`] implements `Display` as the equivalent regex text, which is
//! a debug view only.
use std::fmt;
use std::sync::Arc;

/// A regular expression over bytes (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Rx(Arc<Node>);

#[derive(Debug)]
pub(crate) enum Node {
    /// The empty string.
    Empty,
    /// A leaf in the `regex-syntax` dialect (Unicode on, UTF-8 check off).
    Text(String),
    /// A leaf built as a DFA: what regex text cannot say (an intersection, a
    /// complement).
    Dfa(Arc<corral_automaton::LeafDfa>),
    /// The strings of a leaf regex that a DFA accepts too (built as the product of the
    /// regex's NFA and the DFA, without determinizing the regex).
    Restricted {
        regex: String,
        dfa: Arc<corral_automaton::LeafDfa>,
    },
    Seq(Vec<Rx>),
    Alt(Vec<Rx>),
    Repeat {
        body: Rx,
        min: u32,
        max: Option<u32>,
    },
    /// `item (sep item)*` with `min..=max` items, `min >= 1`.
    List {
        item: Rx,
        sep: Rx,
        min: u32,
        max: Option<u32>,
    },
    /// Slots in order, each occurring `min..=max` times, every two occurrences separated
    /// by `sep`; the empty sequence only when `allow_empty`.
    Members {
        slots: Vec<Slot>,
        sep: Rx,
        allow_empty: bool,
    },
    /// `members` in any order, each at most once and the required ones exactly once,
    /// `extra` any number of times anywhere among them, every two separated by `sep`;
    /// the empty sequence only when `allow_empty`.
    Unordered {
        members: Vec<Member>,
        extra: Option<Rx>,
        sep: Rx,
        allow_empty: bool,
    },
}

/// One member of [`Rx::unordered`].
#[derive(Clone, Debug)]
pub struct Member {
    pub item: Rx,
    pub required: bool,
}

/// One slot of [`Rx::members`].
#[derive(Clone, Debug)]
pub struct Slot {
    pub item: Rx,
    pub min: u32,
    pub max: Option<u32>,
}

impl Slot {
    pub fn required(item: Rx) -> Slot {
        Slot {
            item,
            min: 1,
            max: Some(1),
        }
    }

    pub fn optional(item: Rx) -> Slot {
        Slot {
            item,
            min: 0,
            max: Some(1),
        }
    }
}

impl Rx {
    fn node(node: Node) -> Rx {
        Rx(Arc::new(node))
    }

    pub(crate) fn get(&self) -> &Node {
        &self.0
    }

    /// Identity of the node (shared nodes are one node reached from several parents).
    pub(crate) fn identity(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }

    /// The node's direct sub-expressions.
    pub(crate) fn children(&self) -> Vec<&Rx> {
        match self.get() {
            Node::Empty | Node::Text(_) | Node::Dfa(_) | Node::Restricted { .. } => vec![],
            Node::Seq(parts) | Node::Alt(parts) => parts.iter().collect(),
            Node::Repeat { body, .. } => vec![body],
            Node::List { item, sep, .. } => vec![item, sep],
            Node::Members { slots, sep, .. } => {
                slots.iter().map(|s| &s.item).chain([sep]).collect()
            }
            // The separator twice: it is built before each member (a procedure).
            Node::Unordered {
                members,
                extra,
                sep,
                ..
            } => members
                .iter()
                .map(|m| &m.item)
                .chain(extra)
                .chain([sep, sep])
                .collect(),
        }
    }

    /// How many times a builder writes out the children of this node: a repetition's
    /// body or a list's item once per mandatory and per optional copy (an unbounded tail
    /// is one copy), 1 for the other nodes.
    pub(crate) fn copies_of_children(&self) -> u32 {
        match self.get() {
            Node::Repeat { min, max, .. } | Node::List { min, max, .. } => {
                let optional = max.map_or(1, |m| m.saturating_sub(*min));
                min.saturating_add(optional)
            }
            _ => 1,
        }
    }

    /// Whether this is a leaf (text, DFA or restricted regex).
    pub(crate) fn is_leaf(&self) -> bool {
        matches!(
            self.get(),
            Node::Text(_) | Node::Dfa(_) | Node::Restricted { .. }
        )
    }

    pub fn empty() -> Rx {
        Rx::node(Node::Empty)
    }

    /// A leaf regex in the `regex-syntax` dialect.
    pub fn text(regex: impl Into<String>) -> Rx {
        let regex = regex.into();
        if regex.is_empty() {
            return Rx::empty();
        }
        Rx::node(Node::Text(regex))
    }

    /// A leaf given as a DFA.
    pub fn dfa(dfa: corral_automaton::LeafDfa) -> Rx {
        Rx::node(Node::Dfa(Arc::new(dfa)))
    }

    /// The strings of `regex` (a leaf) that `dfa` accepts.
    pub fn restricted(regex: impl Into<String>, dfa: corral_automaton::LeafDfa) -> Rx {
        Rx::node(Node::Restricted {
            regex: regex.into(),
            dfa: Arc::new(dfa),
        })
    }

    /// `text` matched literally.
    pub fn literal(text: &str) -> Rx {
        Rx::text(regex_syntax::escape(text))
    }

    pub fn seq(parts: impl IntoIterator<Item = Rx>) -> Rx {
        let mut flat = Vec::new();
        for part in parts {
            match part.get() {
                Node::Empty => {}
                Node::Seq(inner) => flat.extend(inner.iter().cloned()),
                _ => flat.push(part),
            }
        }
        match flat.len() {
            0 => Rx::empty(),
            1 => flat.pop().unwrap_or_else(Rx::empty),
            _ => Rx::node(Node::Seq(flat)),
        }
    }

    /// The alternation of `parts`, or `None` when there are none (no string matches).
    pub fn alt(parts: impl IntoIterator<Item = Rx>) -> Option<Rx> {
        let mut flat: Vec<Rx> = Vec::new();
        for part in parts {
            match part.get() {
                Node::Alt(inner) => flat.extend(inner.iter().cloned()),
                _ => flat.push(part),
            }
        }
        match flat.len() {
            0 => None,
            1 => flat.pop(),
            _ => Some(Rx::node(Node::Alt(flat))),
        }
    }

    /// `self` or the empty string.
    pub fn opt(self) -> Rx {
        Rx::repeat(self, 0, Some(1))
    }

    pub fn repeat(body: Rx, min: u32, max: Option<u32>) -> Rx {
        if max == Some(0) || matches!(body.get(), Node::Empty) {
            return Rx::empty();
        }
        if min == 1 && max == Some(1) {
            return body;
        }
        Rx::node(Node::Repeat { body, min, max })
    }

    /// `item (sep item)*` with between `min` and `max` items (`min` may be 0: then the
    /// empty string too). `None` when `max < min`.
    pub fn list(item: Rx, sep: Rx, min: u32, max: Option<u32>) -> Option<Rx> {
        if max.is_some_and(|m| m < min) {
            return None;
        }
        if max == Some(0) {
            return Some(Rx::empty());
        }
        let list = Rx::node(Node::List {
            item,
            sep,
            min: min.max(1),
            max,
        });
        Some(if min == 0 { list.opt() } else { list })
    }

    /// The members in any order (see [`Node::Unordered`]). With fewer than two kinds of
    /// member there is no order to choose, and the members are [`Rx::members`] in order.
    /// `None` when no sequence is possible.
    pub fn unordered(
        members: Vec<Member>,
        extra: Option<Rx>,
        sep: Rx,
        allow_empty: bool,
    ) -> Option<Rx> {
        let allow_empty = allow_empty && !members.iter().any(|m| m.required);
        if members.len() + usize::from(extra.is_some()) < 2 {
            let slot = |m: &Member| match m.required {
                true => Slot::required(m.item.clone()),
                false => Slot::optional(m.item.clone()),
            };
            let extras = extra.map(|item| Slot {
                item,
                min: 0,
                max: None,
            });
            let slots = members.iter().map(slot).chain(extras).collect();
            return Rx::members(slots, sep, allow_empty);
        }
        Some(Rx::node(Node::Unordered {
            members,
            extra,
            sep,
            allow_empty,
        }))
    }

    /// The slots in order, separated by `sep` (see [`Node::Members`]). `None` when no
    /// sequence is possible.
    pub fn members(slots: Vec<Slot>, sep: Rx, allow_empty: bool) -> Option<Rx> {
        let slots: Vec<Slot> = slots.into_iter().filter(|s| s.max != Some(0)).collect();
        if slots.iter().any(|s| s.max.is_some_and(|m| m < s.min)) {
            return None;
        }
        if slots.is_empty() {
            return allow_empty.then(Rx::empty);
        }
        Some(Rx::node(Node::Members {
            slots,
            sep,
            allow_empty,
        }))
    }
}

fn repeat_suffix(f: &mut fmt::Formatter<'_>, min: u32, max: Option<u32>) -> fmt::Result {
    match (min, max) {
        (0, Some(1)) => write!(f, "?"),
        (0, None) => write!(f, "*"),
        (1, None) => write!(f, "+"),
        (lo, None) => write!(f, "{{{lo},}}"),
        (lo, Some(hi)) if lo == hi => write!(f, "{{{lo}}}"),
        (lo, Some(hi)) => write!(f, "{{{lo},{hi}}}"),
    }
}

/// The equivalent regex text (a debug view; it writes shared parts out in full, and DFA
/// leaves only as their size).
impl fmt::Display for Rx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Node::Empty => Ok(()),
            Node::Text(t) => write!(f, "(?:{t})"),
            // No regex text for it: the debug view names it.
            Node::Dfa(dfa) => write!(f, "(?:<DFA of {} states>)", dfa.states().len()),
            Node::Restricted { regex, dfa } => {
                write!(f, "(?:{regex}<and a DFA of {} states>)", dfa.states().len())
            }
            Node::Seq(parts) => parts.iter().try_for_each(|p| write!(f, "{p}")),
            Node::Alt(parts) => {
                write!(f, "(?:")?;
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        write!(f, "|")?;
                    }
                    write!(f, "{p}")?;
                }
                write!(f, ")")
            }
            Node::Repeat { body, min, max } => {
                write!(f, "(?:{body})")?;
                repeat_suffix(f, *min, *max)
            }
            Node::List {
                item,
                sep,
                min,
                max,
            } => {
                write!(f, "(?:{item}(?:{sep}{item})")?;
                repeat_suffix(f, min - 1, max.map(|m| m - 1))?;
                write!(f, ")")
            }
            Node::Members {
                slots,
                sep,
                allow_empty,
            } => {
                // N(i): nothing written before slot i; S(i): something written. Written
                // backwards from the end: N(end) = allow_empty ? "" : fail, S(end) = "".
                let fail = "[^\\x{0}-\\x{10FFFF}]".to_string();
                let mut nothing = if *allow_empty {
                    String::new()
                } else {
                    fail.clone()
                };
                let mut something = String::new();
                for slot in slots.iter().rev() {
                    let item = &slot.item;
                    let tail = format!("(?:{sep}{item})");
                    let mut reps = String::new();
                    {
                        use fmt::Write;
                        let rest_min = slot.min.saturating_sub(1);
                        let rest_max = slot.max.map(|m| m.saturating_sub(1));
                        let _ = write!(reps, "{tail}");
                        let _ = match (rest_min, rest_max) {
                            (0, Some(0)) => {
                                reps.clear();
                                Ok(())
                            }
                            (lo, None) => write!(reps, "{{{lo},}}"),
                            (lo, Some(hi)) => write!(reps, "{{{lo},{hi}}}"),
                        };
                    }
                    let run = format!("{item}{reps}");
                    let skip = slot.min == 0;
                    nothing = if skip {
                        format!("(?:{run}{something}|{nothing})")
                    } else {
                        format!("{run}{something}")
                    };
                    something = if skip {
                        format!("(?:{sep}{run})?{something}")
                    } else {
                        format!("{sep}{run}{something}")
                    };
                }
                write!(f, "{nothing}")
            }
            // Regex text cannot say "each at most once, the required ones present": the
            // debug view shows the members in any order and number.
            Node::Unordered {
                members,
                extra,
                sep,
                allow_empty,
            } => {
                let mut any = String::from("(?:");
                for (i, item) in members.iter().map(|m| &m.item).chain(extra).enumerate() {
                    if i > 0 {
                        any.push('|');
                    }
                    any.push_str(&item.to_string());
                }
                any.push(')');
                let opt = if *allow_empty { "?" } else { "" };
                write!(f, "(?:{any}(?:{sep}{any})*){opt}")
            }
        }
    }
}
