//! Compile a JSON Schema into an automaton over the serialized JSON text.
//!
//! The automaton (a [`Program`]: a Thompson NFA with procedures, built state by state from
//! the [`Rx`] expression the compiler produces — no regex text is printed or parsed on the
//! way) describes a
//! *subset* of the JSON documents that are valid under the schema: every string it
//! matches parses as JSON and validates. Where the
//! schema uses a feature that cannot be expressed exactly, compilation fails with a
//! [`SchemaError`] naming the keyword and its JSON pointer, unless
//! [`Options::lenient`] asks to ignore it.
//!
//! The program is anchored at both ends and works on bytes; run it with a
//! [`LazyDfa`](corral_automaton::LazyDfa) (as `corral-index` does). [`Compiled::regex`]
//! prints the equivalent regular expression as a debug view.
//!
//! ```
//! use corral_schema::{compile, Options};
//! use serde_json::json;
//!
//! let schema = json!({
//!     "type": "object",
//!     "properties": {"team_name": {"type": "string"}},
//!     "required": ["team_name"],
//!     "additionalProperties": false
//! });
//! let compiled = compile(&schema, &Options::compact()).unwrap();
//! // A lazy DFA over the program; a document matches when the whole text leads to a match.
//! let mut dfa = corral_automaton::LazyDfa::new(compiled.program.clone(), 1 << 24);
//! let mut whole = |text: &str| {
//!     let mut s = dfa.start();
//!     for &b in text.as_bytes() {
//!         match dfa.next(s, b).unwrap() {
//!             Some(next) => s = next,
//!             None => return false,
//!         }
//!     }
//!     dfa.is_accepting(s)
//! };
//! assert!(whole(r#"{"team_name":"Wolves"}"#));
//! assert!(!whole(r#"{}"#));
//! ```
mod automaton;
mod cache;
mod compiler;
mod error;
mod format;
mod intersect;
mod ir;
mod json;
mod lower;
mod negate;
mod normalize;
mod number;
mod parse;
mod pattern;
mod pointer;
mod resolve;
mod rx;
mod shape;

pub use corral_automaton::Program;
pub use error::SchemaError;
pub use json::Whitespace;
pub use rx::{Rx, Slot};

use serde_json::Value;

/// Options for [`compile`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Whitespace allowed between JSON tokens.
    pub whitespace: Whitespace,
    /// Ignore unsupported keywords instead of failing. Ignored keywords are listed in
    /// [`Compiled::ignored`]; the output may then accept values the schema rejects.
    pub lenient: bool,
    /// How many times one `$ref` may be expanded inside itself before the recursion is
    /// cut off (the cut-off branch admits no value, so the output stays sound).
    pub max_recursion_depth: usize,
    /// Nesting depth of values described by `true` / absent schemas (e.g. values of
    /// additional properties): deeper values are not generated.
    pub max_any_depth: usize,
    /// Upper bound on the number of states of the produced program.
    pub max_states: usize,
    /// Allow additional properties where the schema does not forbid them (the JSON Schema
    /// default). When false, objects only contain the properties the schema lists.
    pub allow_additional_properties: bool,
    /// Object members in any order, as JSON Schema allows: each listed property at most
    /// once, every required one present, additional ones anywhere among them. Off by
    /// default: members then come in the order of `properties`, then the additional
    /// ones (as OpenAI's structured outputs write them), and documents written in
    /// another order are rejected. In any order, the automaton keeps the members
    /// written so far in each object's state, so fewer states (and their masks) are
    /// shared between documents: masks cost more (see the README's numbers).
    pub any_property_order: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            whitespace: Whitespace::default(),
            lenient: false,
            max_recursion_depth: 3,
            max_any_depth: 10,
            max_states: 4 << 20,
            allow_additional_properties: true,
            any_property_order: false,
        }
    }
}

impl Options {
    /// Default options with compact whitespace (no whitespace between tokens).
    pub fn compact() -> Options {
        Options {
            whitespace: Whitespace::Compact,
            ..Options::default()
        }
    }
}

/// The result of [`compile`].
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The expression the automaton was built from.
    pub rx: Rx,
    /// The automaton: matches exactly the accepted documents (anchored at both ends).
    pub program: std::sync::Arc<Program>,
    /// Keywords that were not enforced, with their JSON pointers: annotations such as
    /// unknown `format`s (spec behaviour), and with [`Options::lenient`] unsupported
    /// keywords.
    pub ignored: Vec<String>,
}

impl Compiled {
    /// The equivalent regular expression (a debug view: it writes shared parts out in
    /// full, so it can be far larger than the automaton).
    pub fn regex(&self) -> String {
        self.rx.to_string()
    }
}

/// Compile `schema` into an automaton; see the [crate docs](crate).
///
/// Mutually recursive `$ref`s whose expansion up to [`Options::max_recursion_depth`]
/// exceeds a fixed budget are compiled again with a smaller depth (deeper recursion is
/// then not generated: a sound subset, noted in [`Compiled::ignored`]).
pub fn compile(schema: &Value, options: &Options) -> Result<Compiled, SchemaError> {
    let mut depth = options.max_recursion_depth;
    loop {
        let attempt = Options {
            max_recursion_depth: depth,
            ..options.clone()
        };
        match compiler::Compiler::new(schema, &attempt).compile_root() {
            Err(SchemaError::TooManyExpansions { .. }) if depth > 0 => depth -= 1,
            Ok(mut compiled) => {
                if depth < options.max_recursion_depth {
                    compiled.ignored.push(format!(
                        "#: recursive `$ref`s expanded to depth {depth} (not {}) to bound \
                         compilation",
                        options.max_recursion_depth
                    ));
                }
                return Ok(compiled);
            }
            Err(e) => return Err(e),
        }
    }
}
