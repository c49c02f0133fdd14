//! String contents in their canonical JSON spelling: every character as itself except
//! those JSON must escape — `"` and `\` as `\"` and `\\`, control characters as their
//! short escape (`\n`, `\t`, …) or a lowercase `\u00xx` (serde_json's spelling, and
//! Python's with `ensure_ascii=False`). Each value has exactly one canonical spelling, so
//! excluding the spellings of some names excludes those names: no other escape can spell
//! them. Where a string must avoid listed values (the names `additionalProperties`
//! governs, a negated `enum`) it is written this way; any value can still be written, a
//! quote or a backslash in a name included.
use std::sync::OnceLock;

use corral_automaton::{BuildError, LeafDfa};

use crate::json::canonical_string;

/// The canonical spellings of all string contents.
fn canonical_strings() -> Option<&'static LeafDfa> {
    static CANONICAL: OnceLock<Option<LeafDfa>> = OnceLock::new();
    CANONICAL
        .get_or_init(|| {
            LeafDfa::from_regex(
                r#"(?:[^"\\\x00-\x1F]|\\["\\bfnrt]|\\u00(?:0[0-7be-f]|1[0-9a-f]))*"#,
                1_000,
            )
            .ok()
        })
        .as_ref()
}

/// The canonical spelling of `value`'s contents, without the quotes (the spelling
/// listed names are generated in: [`canonical_string`]).
fn canonical_contents(value: &str) -> String {
    let quoted = canonical_string(value);
    quoted[1..quoted.len() - 1].to_string()
}

/// The canonical spellings of every string value but `names`: a DFA of about one state
/// per distinct prefix of a name, and the few of the spelling itself; at most
/// `max_states` states beyond the names' trie.
pub(crate) fn canonical_strings_except(
    names: &[String],
    max_states: usize,
) -> Result<LeafDfa, BuildError> {
    let all = canonical_strings().ok_or(BuildError::TooLarge { limit: 1_000 })?;
    if names.is_empty() {
        return Ok(all.clone());
    }
    let spelled: Vec<String> = names.iter().map(|n| canonical_contents(n)).collect();
    let names = LeafDfa::from_literals(spelled.iter().map(|n| n.as_bytes()));
    all.intersect(&names.complement(), names.states().len() + max_states)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_per_value_and_listed_values_excluded() {
        assert_eq!(
            canonical_contents("a\"b\\c/\n\u{1}é"),
            r#"a\"b\\c/\n\u0001é"#
        );
        let dfa = canonical_strings_except(&["error".into(), "a\"b".into()], 1_000).unwrap();
        for yes in [
            r#"error\""#,
            r#"a\"c"#,
            r"a\\b",
            r"\t",
            r"\u001f",
            "é",
            "a/b",
            "",
        ] {
            assert!(dfa.accepts(yes.as_bytes()), "should accept {yes}");
        }
        // The listed values, and the spellings that are not canonical.
        for no in [
            "error",
            r#"a\"b"#,
            r"\u0065rror",
            r"a\/b",
            r"\u0009",
            r"\u001F",
            r"\u00e9",
        ] {
            assert!(!dfa.accepts(no.as_bytes()), "should refuse {no}");
        }
    }
}
