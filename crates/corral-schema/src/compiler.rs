//! The compiler: a schema document in, an automaton out, in phases —
//!
//! 0. [`resolve`](crate::resolve): `$id`/`$anchor`, `$ref` targets;
//! 1. [`parse`](crate::parse): each schema object read once into a typed
//!    [`Node`](crate::ir::Node);
//! 2. [`normalize`](crate::normalize): applicators expanded into a disjunction of branches;
//! 3. [`intersect`](crate::intersect): conjunctions merged keyword by keyword;
//! 4. [`negate`](crate::negate): `not`, `else` and overlapping `oneOf` pushed inward;
//! 5. [`lower`](crate::lower): each branch's constraints into an [`Rx`], then a program.
//!
//! This file holds the state they share.
use std::collections::HashMap;
use std::sync::Arc;

use regex_automata::meta::Regex;
use serde_json::Value;

use crate::automaton::{self, LowerError, Matcher};
use crate::error::SchemaError;
use crate::ir::{Node, Sub};
use crate::json::Syntax;
use crate::parse::{parse_node, Draft};
use crate::resolve::References;
use crate::rx::Rx;
use crate::{Compiled, Options};

/// An expression, or `None` when no value is possible.
pub(crate) type Re = Option<Rx>;

pub(crate) struct Compiler<'a> {
    pub(crate) root: &'a Value,
    pub(crate) options: &'a Options,
    pub(crate) syntax: Syntax,
    pub(crate) ignored: Vec<String>,
    /// `$ref` targets currently being expanded, outermost first.
    pub(crate) open_refs: Vec<String>,
    pub(crate) references: References<'a>,
    /// Parsed schema objects, by their place in the document.
    nodes: HashMap<*const Value, Arc<Node<'a>>>,
    /// Compiled `pattern`s for property-name tests.
    pub(crate) pattern_cache: HashMap<String, Option<NameTest>>,
    /// Objects/arrays entered on the current path.
    pub(crate) nesting: usize,
    /// Compiled bare `$ref`s by (target, references open around the use).
    pub(crate) ref_memo: HashMap<(String, Vec<String>), Re>,
    /// Leaves by text (see [`Compiler::leaf`]).
    pub(crate) leaves: HashMap<String, Rx>,
    /// Additional property names by the listed names they avoid.
    pub(crate) other_names: HashMap<Vec<String>, Rx>,
    /// `$ref` expansions so far (bounded by [`MAX_EXPANSIONS`]).
    pub(crate) expansions: usize,
    /// The draft the root declares: which keywords exist, and whether `$ref` hides its
    /// siblings.
    draft: Draft,
}

/// Most `$ref` expansions in one compilation: mutually recursive definitions, each cut
/// off at the recursion depth, multiply; past this the compilation is retried with a
/// smaller depth (see [`crate::compile`]).
pub(crate) const MAX_EXPANSIONS: usize = 10_000;

impl<'a> Compiler<'a> {
    pub fn new(root: &'a Value, options: &'a Options) -> Compiler<'a> {
        Compiler {
            root,
            options,
            syntax: Syntax::new(&options.whitespace),
            ignored: Vec::new(),
            open_refs: Vec::new(),
            references: References::new(root),
            nodes: HashMap::new(),
            pattern_cache: HashMap::new(),
            nesting: 0,
            ref_memo: HashMap::new(),
            leaves: HashMap::new(),
            other_names: HashMap::new(),
            expansions: 0,
            draft: Draft::of(root),
        }
    }

    pub fn compile_root(mut self) -> Result<Compiled, SchemaError> {
        let value = self
            .compile(&Sub::Doc(self.root), "#")?
            .ok_or(SchemaError::Unsatisfiable)?;
        // Whitespace may surround the document: SentencePiece models often start their
        // answer with a space-prefixed token (`▁{`), and many end it with a newline.
        let rx = Rx::seq([self.syntax.ws.clone(), value, self.syntax.ws.clone()]);
        let program = automaton::build_program(&rx, self.options.max_states)
            .map_err(|e| self.lower_error(e, "#"))?;
        self.ignored.sort();
        self.ignored.dedup();
        Ok(Compiled {
            rx,
            program: Arc::new(program),
            ignored: self.ignored,
        })
    }

    /// The parsed form of the document's schema object `value` (found at `ptr`).
    pub(crate) fn node(
        &mut self,
        value: &'a Value,
        ptr: &str,
    ) -> Result<Arc<Node<'a>>, SchemaError> {
        let key = value as *const Value;
        if let Some(node) = self.nodes.get(&key) {
            return Ok(node.clone());
        }
        let map = value
            .as_object()
            .ok_or_else(|| SchemaError::invalid(ptr, "a schema must be an object or a boolean"))?;
        let node = Arc::new(parse_node(map, ptr, self.draft)?);
        self.nodes.insert(key, node.clone());
        Ok(node)
    }

    pub(crate) fn lower_error(&self, e: LowerError, ptr: &str) -> SchemaError {
        match e {
            LowerError::TooLarge => SchemaError::TooLarge {
                limit: self.options.max_states,
                pointer: ptr.into(),
            },
            LowerError::Leaf(reason) => {
                SchemaError::invalid(ptr, format!("internal regex: {reason}"))
            }
        }
    }

    /// A whole-string matcher for `rx` (the compiler's own membership checks).
    pub(crate) fn matcher(&self, rx: &Rx, ptr: &str) -> Result<Matcher, SchemaError> {
        Matcher::new(rx, self.options.max_states).map_err(|e| self.lower_error(e, ptr))
    }

    /// An unsupported keyword: an error, or with `lenient` a note in `ignored`.
    pub(crate) fn unsupported(
        &mut self,
        keyword: &str,
        ptr: &str,
        reason: &str,
    ) -> Result<(), SchemaError> {
        if self.options.lenient {
            self.ignored.push(format!("{ptr}/{keyword}: {reason}"));
            Ok(())
        } else {
            Err(SchemaError::unsupported(keyword, ptr, reason))
        }
    }

    /// Whether an ECMA `pattern` matches the property name `key` (an error naming
    /// `patternProperties` when the pattern cannot be tested at all).
    pub(crate) fn pattern_matches(
        &mut self,
        pattern: &str,
        key: &str,
        ptr: &str,
    ) -> Result<bool, SchemaError> {
        pattern_matches(&mut self.pattern_cache, pattern, key, ptr)
    }
}

/// How a `patternProperties` pattern is tested against property names.
pub(crate) enum NameTest {
    /// The pattern's own automaton, on the quoted canonical name.
    Automaton(Regex),
    /// A pattern the automaton cannot hold (`\b`, …), searched in the name by a regex
    /// engine that can.
    Searched(Regex),
}

/// Whether an ECMA `pattern` matches `key`. A pattern no engine here can test is an
/// error: guessing either way could let a name take the wrong schema.
pub(crate) fn pattern_matches(
    cache: &mut HashMap<String, Option<NameTest>>,
    pattern: &str,
    key: &str,
    ptr: &str,
) -> Result<bool, SchemaError> {
    let test = cache.entry(pattern.to_string()).or_insert_with(|| {
        let body = crate::pattern::pattern_body(pattern, crate::pattern::Lengths::ANY, "#");
        if let Ok(Some(body)) = body {
            if let Ok(re) = crate::json::matcher(&format!("\"(?:{body})\"")) {
                return Some(NameTest::Automaton(re));
            }
        }
        let translated = crate::pattern::translate_ecma(pattern).ok()?;
        Regex::new(&translated).ok().map(NameTest::Searched)
    });
    match test {
        Some(NameTest::Automaton(re)) => Ok(re.is_match(&crate::json::canonical_string(key))),
        Some(NameTest::Searched(re)) => Ok(re.is_match(key)),
        None => Err(SchemaError::unsupported(
            "patternProperties",
            ptr,
            format!("the pattern /{pattern}/ cannot be tested against property names"),
        )),
    }
}
