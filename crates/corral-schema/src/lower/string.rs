//! Strings: `minLength`/`maxLength`, `pattern`, `format`, and what negations exclude
//! (listed values, patterns). One regex is a text leaf; more constraints are combined
//! as automata — the first regex an NFA, everything else one DFA, the leaf their
//! product.
use std::sync::OnceLock;

use corral_automaton::LeafDfa;

use crate::compiler::{Compiler, Re};
use crate::error::SchemaError;
use crate::format;
use crate::ir::Constraints;
use crate::json::STRING_CHAR;
use crate::pattern::{self, Lengths};
use crate::rx::Rx;

/// Most states of a DFA built for one string leaf ([`LeafDfa`]): products of a pattern
/// and long length bounds grow with the bound.
const MAX_LEAF_DFA_STATES: usize = 10_000;

impl<'a> Compiler<'a> {
    /// The strings (quoted) whose content matches `parts`.
    /// One regex alone is a text leaf. Otherwise the first regex (the pattern, usually)
    /// stays an NFA and everything else becomes one DFA — the other regexes determinized,
    /// the lengths as a counter of JSON string characters, the excluded names as a small
    /// DFA — and the leaf is their product ([`Rx::restricted`]): what a regex cannot say
    /// (`pattern` with lengths it cannot be folded with, `pattern` with `format`, names
    /// other than some). `Ok(None)` when no string is left.
    pub(crate) fn string_intersection(
        &mut self,
        parts: &StringParts,
        keyword: &str,
        ptr: &str,
    ) -> Result<Re, SchemaError> {
        let Some((first, rest)) = parts.bodies.split_first() else {
            return Ok(None);
        };
        if rest.is_empty()
            && parts.lengths == Lengths::ANY
            && parts.excluded.is_empty()
            && parts.avoided.is_empty()
        {
            return Ok(Some(self.leaf(&format!("\"{first}\""))));
        }
        let too_large = |e: corral_automaton::BuildError| {
            SchemaError::unsupported(
                keyword,
                ptr,
                format!("the intersection of its string constraints is too large ({e})"),
            )
        };
        let mut side: Vec<LeafDfa> = Vec::new();
        for body in rest {
            side.push(LeafDfa::from_regex(body, MAX_LEAF_DFA_STATES).map_err(too_large)?);
        }
        if parts.lengths != Lengths::ANY {
            let counted = string_char_dfa()
                .map_err(too_large)?
                .counted(parts.lengths.min, parts.lengths.max, MAX_LEAF_DFA_STATES)
                .map_err(too_large)?;
            side.push(counted);
        }
        if !parts.excluded.is_empty() {
            side.push(strings_except(&parts.excluded).map_err(too_large)?);
        }
        if !parts.avoided.is_empty() {
            // A negation that is too large to build contributes no strings.
            match strings_avoiding(&parts.avoided) {
                Some(dfa) => side.push(dfa),
                None => return Ok(None),
            }
        }
        let mut dfas = side.into_iter();
        let Some(mut product) = dfas.next() else {
            return Ok(Some(self.leaf(&format!("\"{first}\""))));
        };
        for dfa in dfas {
            product = product
                .intersect(&dfa, MAX_LEAF_DFA_STATES)
                .map_err(too_large)?;
        }
        if product.is_empty() {
            return Ok(None);
        }
        Ok(Some(Rx::seq([
            Rx::literal("\""),
            Rx::restricted(first, product),
            Rx::literal("\""),
        ])))
    }

    pub(crate) fn compile_string(
        &mut self,
        c: &Constraints<'a>,
        ptr: &str,
    ) -> Result<Re, SchemaError> {
        let lengths = Lengths {
            min: c.min_length.unwrap_or(0),
            max: c.max_length,
        };
        if lengths.max.is_some_and(|m| m < lengths.min) {
            return Ok(None);
        }
        let format_regex = match &c.format {
            None => None,
            Some(name) => match format::format_regex(name) {
                None if format::ASSERTED_ELSEWHERE.contains(&name.as_str()) => {
                    self.unsupported(
                        "format",
                        ptr,
                        &format!(
                            "`{name}` is checked by common validators and cannot be \
                             enforced exactly"
                        ),
                    )?;
                    None
                }
                None => {
                    self.ignored
                        .push(format!("{ptr}/format: `{name}` is not enforced"));
                    None
                }
                Some(Ok(re)) => Some(re),
                Some(Err(e)) => return Err(SchemaError::unsupported("format", ptr, e.to_string())),
            },
        };
        // From negations: string values and patterns the strings must avoid.
        let excluded = c.excluded_strings.clone();
        let mut avoided = Vec::new();
        for p in &c.avoided_patterns {
            match pattern::pattern_body(p, Lengths::ANY, ptr) {
                Ok(Some(body)) => avoided.push(body),
                Ok(None) => {}
                // A negated pattern that does not translate: no such strings are
                // generated (a sound subset).
                Err(_) => return Ok(None),
            }
        }
        let keyword = if excluded.is_empty() && avoided.is_empty() {
            "pattern"
        } else {
            "not"
        };
        match self.string_bodies(c, format_regex, lengths, ptr)? {
            Some(parts) => {
                let parts = StringParts {
                    excluded,
                    avoided,
                    ..parts
                };
                self.string_intersection(&parts, keyword, ptr)
            }
            None => Ok(None),
        }
    }

    /// The string-content regexes a string must match all of (`pattern`, `format`) and
    /// the lengths they could not take in, or `None` when no string can match.
    fn string_bodies(
        &mut self,
        c: &Constraints<'a>,
        format_regex: Option<String>,
        lengths: Lengths,
        ptr: &str,
    ) -> Result<Option<StringParts>, SchemaError> {
        let pattern = c.pattern.as_ref();
        let pattern_ptr = format!("{ptr}/pattern");
        Ok(match (pattern, &format_regex) {
            (Some(p), None) => match pattern::pattern_body(p, lengths, &pattern_ptr) {
                Ok(body) => body.map(StringParts::matching),
                // Lengths the pattern's text cannot take in: an automaton counts them.
                // (A pattern that does not translate fails again here, without lengths.)
                Err(_) if lengths != Lengths::ANY => {
                    pattern::pattern_body(p, Lengths::ANY, &pattern_ptr)?.map(|body| StringParts {
                        lengths,
                        ..StringParts::matching(body)
                    })
                }
                Err(e) => return Err(e),
            },
            (Some(p), Some(re)) => {
                let body = pattern::pattern_body(p, Lengths::ANY, &pattern_ptr)?;
                format_parts(re, lengths, ptr)?.and_then(|format| {
                    body.map(|body| StringParts {
                        bodies: vec![body, format.bodies[0].clone()],
                        ..format
                    })
                })
            }
            (None, Some(re)) => format_parts(re, lengths, ptr)?,
            (None, None) => Some(StringParts::matching(pattern::length_body(lengths))),
        })
    }
}

/// The strings of a `format`'s regex with `lengths`: folded into the regex where its
/// shape allows, otherwise counted by an automaton (as for a `pattern`). `None` when no
/// string is left.
fn format_parts(
    regex: &str,
    lengths: Lengths,
    ptr: &str,
) -> Result<Option<StringParts>, SchemaError> {
    match pattern::anchored_body(regex, lengths, "format", ptr) {
        Ok(body) => Ok(body.map(StringParts::matching)),
        Err(_) if lengths != Lengths::ANY => {
            Ok(
                pattern::anchored_body(regex, Lengths::ANY, "format", ptr)?.map(|body| {
                    StringParts {
                        lengths,
                        ..StringParts::matching(body)
                    }
                }),
            )
        }
        Err(e) => Err(e),
    }
}

/// What a string's content must match: all of `bodies` (regexes) and `lengths`; and, from
/// negations or listed property names, none of the values `excluded` nor any value
/// matching a body of `avoided` (pattern bodies).
#[derive(Default)]
pub(crate) struct StringParts {
    pub bodies: Vec<String>,
    pub lengths: Lengths,
    pub excluded: Vec<String>,
    pub avoided: Vec<String>,
}

impl StringParts {
    /// Strings matching `body`.
    pub fn matching(body: String) -> StringParts {
        StringParts {
            bodies: vec![body],
            ..StringParts::default()
        }
    }
}

/// String contents in the one spelling serde_json writes for the characters it needs
/// (plain characters, `\"`, `\\`, `\n`, `\r`, `\t`) whose value matches none of the
/// pattern `bodies`. A pattern body takes every spelling of a matching value, so its
/// complement within this one spelling holds exactly the values that do not match
/// (within all spellings it would hold other spellings of matching values). `None` when
/// a pattern's DFA would be too large.
fn strings_avoiding(bodies: &[String]) -> Option<LeafDfa> {
    static CANONICAL: OnceLock<Option<LeafDfa>> = OnceLock::new();
    let canonical = CANONICAL
        .get_or_init(|| {
            LeafDfa::from_regex(r#"(?:[^"\\\x00-\x1F]|\\["\\nrt])*"#, MAX_LEAF_DFA_STATES).ok()
        })
        .as_ref()?;
    avoiding(canonical.clone(), canonical, bodies)
}

/// `start` minus the strings of `within` that match one of the pattern `bodies` (each
/// determinized within `within` and complemented, so kept small); `None` when one is too
/// large.
fn avoiding(start: LeafDfa, within: &LeafDfa, bodies: &[String]) -> Option<LeafDfa> {
    /// Each pattern is determinized to be complemented: keep that cheap.
    const MAX_PATTERN_STATES: usize = 2_000;
    let mut out = start;
    for body in bodies {
        let matching = LeafDfa::from_regex_within(body, within, MAX_PATTERN_STATES).ok()?;
        out = out
            .intersect(&matching.complement(), MAX_LEAF_DFA_STATES)
            .ok()?;
    }
    Some(out)
}

/// One character of a JSON string's content (prefix-free: see [`LeafDfa::counted`]).
fn string_char_dfa() -> Result<LeafDfa, corral_automaton::BuildError> {
    LeafDfa::from_regex(STRING_CHAR, 1_000)
}

/// String contents written without escapes: plain characters only.
fn plain_strings() -> Option<&'static LeafDfa> {
    static PLAIN: OnceLock<Option<LeafDfa>> = OnceLock::new();
    PLAIN
        .get_or_init(|| LeafDfa::from_regex(r#"[^"\\\x00-\x1F]*"#, MAX_LEAF_DFA_STATES).ok())
        .as_ref()
}

/// The string contents written without escapes (plain characters only) other than
/// `names`: a DFA of a few states per name character. Without escapes, no other spelling
/// of an excluded name gets through.
pub(crate) fn plain_strings_except(
    names: &[String],
) -> Result<LeafDfa, corral_automaton::BuildError> {
    let plain = plain_strings().ok_or(corral_automaton::BuildError::TooLarge {
        limit: MAX_LEAF_DFA_STATES,
    })?;
    if names.is_empty() {
        return Ok(plain.clone());
    }
    let names = LeafDfa::from_literals(names.iter().map(|n| n.as_bytes()));
    // About one state per distinct prefix of a name, and the plain-text states.
    plain.intersect(
        &names.complement(),
        names.states().len() + MAX_LEAF_DFA_STATES,
    )
}

/// The string contents, canonically spelled ([`super::spelling`]), whose value is none
/// of `names`.
pub(crate) fn strings_except(names: &[String]) -> Result<LeafDfa, corral_automaton::BuildError> {
    super::spelling::canonical_strings_except(names, MAX_LEAF_DFA_STATES)
}

/// Plain-text names (see [`plain_strings_except`]) that are none of `listed` and match
/// none of `bodies` (pattern bodies): the names `additionalProperties` governs next to
/// `patternProperties`. `None` when a pattern's automaton is too large to complement
/// (then no such names are generated: a sound subset).
pub(crate) fn names_outside_patterns(listed: &[String], bodies: &[String]) -> Option<LeafDfa> {
    let names = avoiding(plain_strings_except(listed).ok()?, plain_strings()?, bodies)?;
    (!names.is_empty()).then_some(names)
}
