//! Byte automata for constrained decoding.
//!
//! A [`Program`] is a Thompson NFA over bytes with one addition: **procedures**. A
//! sub-automaton used in many places (the JSON string grammar, "any value", a `$ref`'s
//! body) is built once and *called*; a call pushes its return state on a stack that the
//! automaton's threads carry. Programs are built state by state with a [`Builder`]
//! (fragments with one entry and one exit, combined like regex-automata's Thompson
//! compiler does, without any regex text), or from a regex ([`Program::from_regex`]).
//!
//! A [`LazyDfa`] determinizes a program on demand: a DFA state is the set of threads
//! (program state, call stack) after a prefix, computed the first time a byte leads to
//! it and then cached. Nothing is built for parts of the document never visited, so a
//! schema's automaton costs what its structure costs, not what its expansion would.
//!
//! ```
//! use corral_automaton::{LazyDfa, Program};
//! let program = Program::from_regex("(ab|cd)+", 1 << 16).unwrap();
//! let mut dfa = LazyDfa::new(std::sync::Arc::new(program), 1 << 20);
//! let mut s = dfa.start();
//! for &b in b"abcd" {
//!     s = dfa.next(s, b).unwrap().expect("alive");
//! }
//! assert!(dfa.is_accepting(s));
//! assert!(dfa.next(s, b'x').unwrap().is_none());
//! ```
mod builder;
mod lazy;
mod leaf;
mod program;
mod repetition;

pub use builder::{parse as parse_regex, Builder, Combine, Frag};
pub use lazy::{DState, LazyDfa, LookaheadClass};
pub use leaf::{LeafDfa, LeafState};
pub use program::{Alternatives, Program, State, StateId};

use thiserror::Error;

/// Why a program could not be built.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum BuildError {
    /// More states than the limit given to the builder.
    #[error("the automaton grew past the limit of {limit} states")]
    TooLarge { limit: usize },
    /// A regex that does not parse, or uses a construct a byte automaton without
    /// look-around cannot hold.
    #[error("regex: {0}")]
    Regex(String),
}

/// The lazy DFA outgrew its memory budget.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("the lazy DFA grew past its memory budget of {limit} bytes")]
pub struct Exhausted {
    pub limit: usize,
}
