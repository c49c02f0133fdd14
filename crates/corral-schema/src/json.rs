//! Regular expressions for the JSON grammar itself: whitespace, strings, literals and
//! "any value" up to a nesting depth.
use std::cell::RefCell;

use serde_json::Value;

use crate::rx::Rx;

/// Whitespace allowed between JSON tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Whitespace {
    /// No whitespace at all: `{"a":1,"b":[1,2]}`.
    Compact,
    /// What real serializers produce, bounded so that generation cannot loop on
    /// whitespace: at most one space (Python's `", "` / `": "`), or one newline followed
    /// by up to 32 spaces or tabs (pretty printing with 2 or 4 spaces up to depth 8),
    /// at each place between tokens. This is the default.
    #[default]
    Pretty,
    /// Any run of JSON whitespace `[ \t\n\r]*` (unbounded: a model may loop on it).
    Flexible,
    /// A custom regex (regex-syntax dialect) matched between tokens.
    Custom(String),
}

impl Whitespace {
    pub(crate) fn regex(&self) -> String {
        match self {
            Whitespace::Compact => String::new(),
            Whitespace::Pretty => r"(?:[ ]?|\r?\n[ \t]{0,32})".to_string(),
            Whitespace::Flexible => r"[ \t\n\r]*".to_string(),
            Whitespace::Custom(re) => format!("(?:{re})"),
        }
    }
}

/// One character of a JSON string body, in any valid spelling: an unescaped character
/// (no `"`, `\` or control character), a short escape, or a `\u` escape of a
/// non-surrogate code point or of a surrogate pair (lone surrogates are rejected because
/// most JSON parsers reject them).
pub(crate) const STRING_CHAR: &str = concat!(
    // Unescaped characters, spelled as their UTF-8 byte sequences: compiling the byte
    // classes is far cheaper than compiling a negated Unicode class every time.
    r#"(?:(?-u:[\x20\x21\x23-\x5B\x5D-\x7F]|[\xC2-\xDF][\x80-\xBF]|\xE0[\xA0-\xBF][\x80-\xBF])"#,
    r"|(?-u:[\xE1-\xEC\xEE\xEF][\x80-\xBF][\x80-\xBF]|\xED[\x80-\x9F][\x80-\xBF])",
    r"|(?-u:\xF0[\x90-\xBF][\x80-\xBF][\x80-\xBF]|[\xF1-\xF3][\x80-\xBF][\x80-\xBF][\x80-\xBF]|\xF4[\x80-\x8F][\x80-\xBF][\x80-\xBF])",
    r#"|\\["\\/bfnrt]"#,
    r"|\\u(?:[0-9a-cA-CefEF][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2})",
    r"|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})",
);

/// A matcher for a whole document described by one of our regexes. They spell string
/// characters as UTF-8 byte sequences, so the UTF-8 check of the regex syntax is off;
/// every construct we emit still only matches valid UTF-8.
pub(crate) fn matcher(
    regex: &str,
) -> Result<regex_automata::meta::Regex, Box<regex_automata::meta::BuildError>> {
    regex_automata::meta::Builder::new()
        .syntax(regex_automata::util::syntax::Config::new().utf8(false))
        .build(&format!("^(?:{regex})$"))
        .map_err(Box::new)
}

/// A JSON number, limited to what every JSON parser reads as a finite double: at most
/// 20 integer digits and a two-digit exponent (a schema without bounds is a license to
/// write *some* number, not an overflowing one).
pub(crate) const NUMBER: &str = r"-?(?:0|[1-9][0-9]{0,19})(?:\.[0-9]+)?(?:[eE][+-]?[0-9]{1,2})?";

/// An integer of at most 18 digits: within the 64-bit range every JSON parser reads
/// exactly (see [`NUMBER`]). Never `-0`: some parsers read it as the float -0.0, which
/// their validators do not count as an integer.
pub(crate) const INTEGER: &str = r"(?:0|-?[1-9][0-9]{0,17})";

/// The largest magnitude generated for integers bounded on one side only.
pub(crate) const LARGEST_INTEGER: &str = "999999999999999999";

/// The largest magnitude generated for numbers bounded on one side only.
pub(crate) const LARGEST: &str = "99999999999999999999";

/// Escape `text` so that it matches literally in a regex.
pub(crate) fn escape(text: &str) -> String {
    regex_syntax::escape(text)
}

/// The canonical JSON spelling of a string (as serde_json and Python's
/// `json.dumps(ensure_ascii=False)` write it), including the quotes.
pub(crate) fn canonical_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// The pieces of JSON syntax, built once per compilation and shared by every use.
#[derive(Clone, Debug)]
pub(crate) struct Syntax {
    pub ws: Rx,
    comma: Rx,
    colon: Rx,
    open_object: Rx,
    close_object: Rx,
    open_array: Rx,
    close_array: Rx,
    string: Rx,
    scalar: Rx,
    /// "Any value" by nesting depth, built on first use.
    any: RefCell<Vec<Rx>>,
}

impl Syntax {
    pub fn new(ws: &Whitespace) -> Syntax {
        let ws = Rx::text(ws.regex());
        let around = |token: &str| Rx::seq([ws.clone(), Rx::literal(token), ws.clone()]);
        let string = Rx::text(format!("\"{STRING_CHAR}*\""));
        let scalar = Rx::alt([
            Rx::text("null|true|false"),
            Rx::text(NUMBER),
            string.clone(),
        ])
        .unwrap_or_else(Rx::empty);
        Syntax {
            comma: around(","),
            colon: around(":"),
            open_object: Rx::seq([Rx::literal("{"), ws.clone()]),
            close_object: Rx::seq([ws.clone(), Rx::literal("}")]),
            open_array: Rx::seq([Rx::literal("["), ws.clone()]),
            close_array: Rx::seq([ws.clone(), Rx::literal("]")]),
            ws,
            string,
            scalar,
            any: RefCell::new(Vec::new()),
        }
    }

    pub fn comma(&self) -> Rx {
        self.comma.clone()
    }

    pub fn colon(&self) -> Rx {
        self.colon.clone()
    }

    /// A JSON string with any content.
    pub fn any_string(&self) -> Rx {
        self.string.clone()
    }

    /// `{ body }`.
    pub fn object(&self, body: Rx) -> Rx {
        Rx::seq([self.open_object.clone(), body, self.close_object.clone()])
    }

    /// `[ body ]`.
    pub fn array(&self, body: Rx) -> Rx {
        Rx::seq([self.open_array.clone(), body, self.close_array.clone()])
    }

    /// `[ item (, item)* ]` or `[]`.
    pub fn array_of(&self, item: Rx) -> Rx {
        let items = Rx::list(item, self.comma(), 0, None).unwrap_or_else(Rx::empty);
        self.array(items)
    }

    /// Any JSON value nested at most `depth` levels deep (depth 0: scalars only).
    pub fn any_value(&self, depth: usize) -> Rx {
        if let Some(rx) = self.any.borrow().get(depth) {
            return rx.clone();
        }
        let rx = if depth == 0 {
            self.scalar.clone()
        } else {
            let inner = self.any_value(depth - 1);
            let member = Rx::seq([self.any_string(), self.colon(), inner.clone()]);
            let members = Rx::list(member, self.comma(), 0, None).unwrap_or_else(Rx::empty);
            Rx::alt([
                self.scalar.clone(),
                self.array_of(inner),
                self.object(members),
            ])
            .unwrap_or_else(Rx::empty)
        };
        let mut any = self.any.borrow_mut();
        if any.len() == depth {
            any.push(rx.clone());
        }
        rx
    }

    /// Matches exactly `value` (with whitespace allowed between tokens, keys in the given
    /// order, and strings and numbers in their canonical spelling).
    pub fn literal(&self, value: &Value) -> Rx {
        match value {
            Value::Null => Rx::text("null"),
            Value::Bool(b) => Rx::text(b.to_string()),
            Value::Number(n) => Rx::text(number_literal(n)),
            Value::String(s) => Rx::literal(&canonical_string(s)),
            Value::Array(items) => {
                let mut parts = Vec::new();
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        parts.push(self.comma());
                    }
                    parts.push(self.literal(v));
                }
                self.array(Rx::seq(parts))
            }
            Value::Object(map) => {
                let mut parts = Vec::new();
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        parts.push(self.comma());
                    }
                    parts.push(Rx::literal(&canonical_string(k)));
                    parts.push(self.colon());
                    parts.push(self.literal(v));
                }
                self.object(Rx::seq(parts))
            }
        }
    }
}

/// A number literal: integral values also match with a zero fraction (`1` and `1.0`)
/// since JSON Schema compares numbers by value.
fn number_literal(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return format!(r"{}(?:\.0+)?", escape(&i.to_string()));
    }
    if let Some(u) = n.as_u64() {
        return format!(r"{}(?:\.0+)?", escape(&u.to_string()));
    }
    let text = n.to_string();
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => {
            format!(r"{}(?:\.0+)?", escape(&format!("{}", f as i64)))
        }
        _ => escape(&text),
    }
}

/// JSON Schema equality: numbers compare by value.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full(rx: &Rx) -> crate::automaton::Matcher {
        crate::automaton::Matcher::new(rx, 1 << 22).unwrap()
    }

    #[test]
    fn strings_accept_valid_escapes_only() {
        let re = full(&Syntax::new(&Whitespace::Compact).any_string());
        for ok in [
            r#""""#,
            r#""a\"b""#,
            r#""\u00e9\ud83d\ude00""#,
            "\"é😀\"",
            r#""\/\b""#,
        ] {
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in ["\"\n\"", r#""\x""#, r#""\ud800""#, r#""a"b""#, r#""\""#] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn integers_are_never_negative_zero() {
        let re = full(&Rx::text(INTEGER));
        assert!(re.is_match("0") && re.is_match("-7") && re.is_match("10"));
        assert!(!re.is_match("-0") && !re.is_match("01"));
    }

    #[test]
    fn pretty_whitespace_is_bounded() {
        let syntax = Syntax::new(&Whitespace::Pretty);
        let re = full(&syntax.any_value(2));
        assert!(!re.is_match("[[[[[1]]]]]"));
        let deep = full(&syntax.any_value(6));
        assert!(deep.is_match("{\"a\": [{\"b\": [{\"c\": [1]}]}]}"));
        assert!(!deep.is_match("[[[[[[[1]]]]]]]"));
        assert!(re.is_match("{\"a\": [1, 2], \"b\": {\"c\": null}}"));
        assert!(re.is_match("{\n    \"a\": [\n        1\n    ]\n}"));
        assert!(!re.is_match(&format!("[1,{}2]", " ".repeat(40))));
        assert!(!re.is_match("[1,  2]"));
    }

    #[test]
    fn literals_match_by_value() {
        let syntax = Syntax::new(&Whitespace::Compact);
        let re = full(&syntax.literal(&json!({"a": [1, "x\"y"], "b": null})));
        assert!(re.is_match(r#"{"a":[1,"x\"y"],"b":null}"#));
        assert!(re.is_match(r#"{"a":[1.0,"x\"y"],"b":null}"#));
        assert!(!re.is_match(r#"{"b":null,"a":[1,"x\"y"]}"#));
    }
}
