//! String bodies: `pattern` (ECMA-262, unanchored), `format`, `minLength`/`maxLength`.
//!
//! A constraint on a string *value* is turned into a regex over the *JSON-escaped* string
//! body: `"`, `\` and control characters in the value appear escaped in the output
//! (`\"`, `\\`, `\n`, `\u001f`, …, in the canonical spelling serde_json and Python's
//! `json.dumps` use). Lengths count code points of the decoded value.
use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, Hir, HirKind, Look, Repetition};

use crate::cache::ProcessCache;
use crate::error::SchemaError;
use crate::json::STRING_CHAR;

/// Length bounds of a string value, in code points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lengths {
    pub min: u32,
    pub max: Option<u32>,
}

impl Lengths {
    /// Any length.
    pub(crate) const ANY: Lengths = Lengths { min: 0, max: None };

    fn is_unbounded(&self) -> bool {
        self.min == 0 && self.max.is_none()
    }

    fn contains_range(&self, lo: u32, hi: Option<u32>) -> bool {
        lo >= self.min
            && match (self.max, hi) {
                (None, _) => true,
                (Some(m), Some(h)) => h <= m,
                (Some(_), None) => false,
            }
    }
}

/// The body (without quotes) of any string whose length lies in `lengths`.
pub(crate) fn length_body(lengths: Lengths) -> String {
    match (lengths.min, lengths.max) {
        (0, None) => format!("{STRING_CHAR}*"),
        (min, None) => format!("{STRING_CHAR}{{{min},}}"),
        (min, Some(max)) if min == max => format!("{STRING_CHAR}{{{min}}}"),
        (min, Some(max)) => format!("{STRING_CHAR}{{{min},{max}}}"),
    }
}

/// The body of strings matching the ECMA-262 `pattern` (searched, not anchored, as JSON
/// Schema specifies) and `lengths`. `Ok(None)` means no string satisfies both.
pub(crate) fn pattern_body(
    pattern: &str,
    lengths: Lengths,
    pointer: &str,
) -> Result<Option<String>, SchemaError> {
    memoized(("pattern", pattern, lengths), || {
        pattern_body_uncached(pattern, lengths, pointer)
    })
}

/// Bodies already computed in this process, by (kind, pattern, lengths): the same
/// `format` or `pattern` recurs under many properties and across schemas, and each
/// computation parses and rewrites it. Errors are not kept (they name the pointer).
fn memoized(
    key: (&str, &str, Lengths),
    compute: impl FnOnce() -> Result<Option<String>, SchemaError>,
) -> Result<Option<String>, SchemaError> {
    use std::sync::OnceLock;
    type Key = (String, String, u32, Option<u32>);
    static CACHE: OnceLock<ProcessCache<Key, Option<String>>> = OnceLock::new();
    let (kind, text, lengths) = key;
    CACHE
        .get_or_init(|| ProcessCache::new(16 << 20))
        .get_or_try_insert(
            (kind.into(), text.into(), lengths.min, lengths.max),
            text.len(),
            compute,
        )
}

fn pattern_body_uncached(
    pattern: &str,
    lengths: Lengths,
    pointer: &str,
) -> Result<Option<String>, SchemaError> {
    let translated = translate_ecma(pattern)
        .map_err(|reason| SchemaError::unsupported("pattern", pointer, reason))?;
    let hir = parse(&translated).map_err(|e| {
        SchemaError::unsupported(
            "pattern",
            pointer,
            format!("cannot translate /{pattern}/: {e}"),
        )
    })?;
    searched_body(hir, lengths, "pattern", pointer)
}

/// The body of strings matching `regex` (regex-syntax dialect, anchored at both ends,
/// describing the decoded value) and `lengths`.
pub(crate) fn anchored_body(
    regex: &str,
    lengths: Lengths,
    keyword: &str,
    pointer: &str,
) -> Result<Option<String>, SchemaError> {
    memoized((keyword, regex, lengths), || {
        anchored_body_uncached(regex, lengths, keyword, pointer)
    })
}

fn anchored_body_uncached(
    regex: &str,
    lengths: Lengths,
    keyword: &str,
    pointer: &str,
) -> Result<Option<String>, SchemaError> {
    let hir = parse(&format!("^(?:{regex})$"))
        .map_err(|e| SchemaError::invalid(pointer, format!("internal regex for {keyword}: {e}")))?;
    searched_body(hir, lengths, keyword, pointer)
}

fn parse(regex: &str) -> Result<Hir, Box<regex_syntax::Error>> {
    regex_syntax::ParserBuilder::new()
        .unicode(true)
        .utf8(false)
        .build()
        .parse(regex)
        .map_err(Box::new)
}

fn string_char_hir() -> Hir {
    static HIR: std::sync::OnceLock<Hir> = std::sync::OnceLock::new();
    // STRING_CHAR is a constant we wrote; it always parses.
    HIR.get_or_init(|| parse(STRING_CHAR).unwrap_or_else(|_| Hir::fail()))
        .clone()
}

/// One branch of a searched pattern: `prefix_free` when not anchored at the start, etc.
struct Branch {
    parts: Vec<Hir>,
}

fn searched_body(
    hir: Hir,
    lengths: Lengths,
    keyword: &str,
    pointer: &str,
) -> Result<Option<String>, SchemaError> {
    let unsupported = |reason: String| SchemaError::unsupported(keyword, pointer, reason);
    let alternatives = anchored_alternatives(hir);
    let mut branches = Vec::new();
    for alt in alternatives {
        let mut parts = match strip_captures(alt).into_kind() {
            HirKind::Concat(subs) => subs,
            HirKind::Empty => vec![],
            other => vec![from_kind(other)],
        };
        let anchored_start = matches!(
            parts.first().map(Hir::kind),
            Some(HirKind::Look(Look::Start))
        );
        if anchored_start {
            parts.remove(0);
        }
        let anchored_end = matches!(parts.last().map(Hir::kind), Some(HirKind::Look(Look::End)));
        if anchored_end {
            parts.pop();
        }
        let mut escaped = Vec::with_capacity(parts.len() + 2);
        if !anchored_start {
            escaped.push(padding());
        }
        for part in parts {
            escaped.push(escape_hir(&part).map_err(&unsupported)?);
        }
        if !anchored_end {
            escaped.push(padding());
        }
        branches.push(Branch { parts: escaped });
    }
    let mut out = Vec::new();
    for branch in branches {
        if let Some(hir) = restrict_lengths(branch, lengths).map_err(&unsupported)? {
            out.push(hir);
        }
    }
    if out.is_empty() {
        return Ok(None);
    }
    Ok(Some(erase_captures(Hir::alternation(out)).to_string()))
}

/// Remove capture groups (the [`UNIT`] markers and the pattern's own groups): the index
/// needs only the language, and repeated group names would not parse.
fn erase_captures(hir: Hir) -> Hir {
    match hir.into_kind() {
        HirKind::Capture(cap) => erase_captures(*cap.sub),
        HirKind::Repetition(rep) => {
            let sub = erase_captures(*rep.sub);
            // regex-syntax prints a repetition of a repetition without a group: `(b+)?`
            // would come out as `b+?`, a lazy `+` that needs at least one `b`. Keep a
            // group (unnamed, so it may repeat) around such a body.
            let sub = match sub.kind() {
                HirKind::Repetition(_) => Hir::capture(regex_syntax::hir::Capture {
                    index: 1,
                    name: None,
                    sub: Box::new(sub),
                }),
                _ => sub,
            };
            Hir::repetition(Repetition {
                sub: Box::new(sub),
                ..rep
            })
        }
        HirKind::Concat(subs) => Hir::concat(subs.into_iter().map(erase_captures).collect()),
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.into_iter().map(erase_captures).collect())
        }
        other => from_kind(other),
    }
}

/// Rebuild a [`Hir`] from its kind (regex-syntax has no public constructor for this).
fn from_kind(kind: HirKind) -> Hir {
    match kind {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(lit) => Hir::literal(lit.0),
        HirKind::Class(class) => Hir::class(class),
        HirKind::Look(look) => Hir::look(look),
        HirKind::Repetition(rep) => Hir::repetition(rep),
        HirKind::Capture(cap) => Hir::capture(cap),
        HirKind::Concat(subs) => Hir::concat(subs),
        HirKind::Alternation(subs) => Hir::alternation(subs),
    }
}

fn padding() -> Hir {
    Hir::repetition(Repetition {
        min: 0,
        max: None,
        greedy: true,
        sub: Box::new(unit(string_char_hir())),
    })
}

/// Most alternatives a pattern is split into to bring its anchors to the ends.
const MAX_ANCHORED_ALTERNATIVES: usize = 64;

/// The top-level alternatives of a pattern, with alternations that hold anchors
/// distributed over the concatenation around them: `^$|^a+$` is parsed with its common
/// `^` lifted out (`^(?:$|a+$)`), and `^(?:a$|b)` has an anchor inside a group; as
/// `^$`, `^a+$` (and `^a$`, `^b`) each alternative has its anchors at its ends.
fn anchored_alternatives(hir: Hir) -> Vec<Hir> {
    let hir = strip_captures(hir);
    let parts = match hir.kind() {
        HirKind::Alternation(subs) => {
            let mut out = Vec::new();
            for sub in subs {
                out.extend(anchored_alternatives(sub.clone()));
            }
            return out;
        }
        HirKind::Concat(parts) => parts.clone(),
        _ => return vec![hir],
    };
    let split = parts.iter().position(|part| {
        matches!(strip_captures(part.clone()).kind(), HirKind::Alternation(_)) && has_look(part)
    });
    let Some(i) = split else {
        return vec![hir];
    };
    let HirKind::Alternation(choices) = strip_captures(parts[i].clone()).into_kind() else {
        return vec![hir];
    };
    let mut out = Vec::new();
    for choice in choices {
        let mut concat = parts[..i].to_vec();
        concat.push(choice);
        concat.extend(parts[i + 1..].iter().cloned());
        out.extend(anchored_alternatives(Hir::concat(concat)));
        if out.len() > MAX_ANCHORED_ALTERNATIVES {
            // Left as it was: the anchors inside are reported as unsupported.
            return vec![hir];
        }
    }
    out
}

/// Whether `hir` contains an anchor or another look-around assertion.
fn has_look(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Look(_) => true,
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) => false,
        HirKind::Repetition(rep) => has_look(&rep.sub),
        HirKind::Capture(cap) => has_look(&cap.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().any(has_look),
    }
}

fn strip_captures(hir: Hir) -> Hir {
    match hir.into_kind() {
        HirKind::Capture(cap) => strip_captures(*cap.sub),
        other => from_kind(other),
    }
}

/// Length range in code points of the *decoded* value matched by an escaped HIR part.
/// Escaped parts are built so that each `STRING_CHAR`-like unit is one code point: we
/// track lengths on the original structure instead, see [`char_len`].
fn char_len(hir: &Hir) -> (u32, Option<u32>) {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => (0, Some(0)),
        // Escaped literals are wrapped as `Unit` captures (see `unit`); a raw literal is
        // made of unescaped characters only.
        HirKind::Literal(lit) => {
            let n = String::from_utf8_lossy(&lit.0).chars().count() as u32;
            (n, Some(n))
        }
        HirKind::Class(_) => (1, Some(1)),
        HirKind::Capture(cap) if cap.name.as_deref() == Some(UNIT) => (1, Some(1)),
        HirKind::Capture(cap) => char_len(&cap.sub),
        HirKind::Repetition(rep) => {
            let (lo, hi) = char_len(&rep.sub);
            let min = lo.saturating_mul(rep.min);
            let max = match (hi, rep.max) {
                (Some(0), _) => Some(0),
                (Some(h), Some(m)) => Some(h.saturating_mul(m)),
                _ => None,
            };
            (min, max)
        }
        HirKind::Concat(subs) => subs.iter().fold((0, Some(0)), |(lo, hi), sub| {
            let (l, h) = char_len(sub);
            (
                lo.saturating_add(l),
                hi.zip(h).map(|(a, b)| a.saturating_add(b)),
            )
        }),
        HirKind::Alternation(subs) => {
            let mut lo = u32::MAX;
            let mut hi = Some(0);
            for sub in subs {
                let (l, h) = char_len(sub);
                lo = lo.min(l);
                hi = hi.zip(h).map(|(a, b)| a.max(b));
            }
            (lo, hi)
        }
    }
}

/// Name of the capture group marking one code point written as several bytes of escape
/// syntax (e.g. `\u001f`), so that [`char_len`] counts it once. Captures are erased when
/// the final regex is built by the index (it only needs the language).
const UNIT: &str = "u";

fn unit(hir: Hir) -> Hir {
    // Capture indices are irrelevant to us (the index never reports groups); a fixed
    // index keeps the printed regex stable.
    Hir::capture(regex_syntax::hir::Capture {
        index: 1,
        name: Some(UNIT.into()),
        sub: Box::new(hir),
    })
}

/// Intersect a searched branch with the length bounds, exactly.
fn restrict_lengths(branch: Branch, lengths: Lengths) -> Result<Option<Hir>, String> {
    let whole = Hir::concat(branch.parts.clone());
    let (lo, hi) = char_len(&whole);
    if lengths.contains_range(lo, hi) || lengths.is_unbounded() {
        return Ok(Some(whole));
    }
    if let Some(max) = lengths.max {
        if lo > max || max < lengths.min {
            return Ok(None);
        }
    }
    if let Some(h) = hi {
        if h < lengths.min {
            return Ok(None);
        }
    }
    // The variable parts: repetitions of single code points (e.g. `[a-z]+`, padding).
    let variable: Vec<usize> = branch
        .parts
        .iter()
        .enumerate()
        .filter(|(_, p)| {
            let (l, h) = char_len(p);
            Some(l) != h
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    let single_unit_rep = |p: &Hir| match p.kind() {
        HirKind::Repetition(rep) => char_len(&rep.sub) == (1, Some(1)),
        _ => false,
    };
    if !variable.iter().all(|&i| single_unit_rep(&branch.parts[i])) || variable.len() > 2 {
        return Err(
            "pattern combined with minLength/maxLength: only patterns whose variable parts are \
             repetitions of single characters can be intersected with length bounds"
                .into(),
        );
    }
    let fixed: u32 = lo
        - variable
            .iter()
            .map(|&i| char_len(&branch.parts[i]).0)
            .sum::<u32>();
    let rep_of = |p: &Hir| match p.kind() {
        HirKind::Repetition(rep) => rep.clone(),
        _ => unreachable!("checked above"),
    };
    let with_bounds = |parts: &[Hir], bounds: &[(usize, u32, Option<u32>)]| -> Option<Hir> {
        let mut out = parts.to_vec();
        for &(i, min, max) in bounds {
            let rep = rep_of(&parts[i]);
            let min = min.max(rep.min);
            let max = match (max, rep.max) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if max.is_some_and(|m| m < min) {
                return None;
            }
            out[i] = Hir::repetition(Repetition {
                min,
                max,
                greedy: true,
                sub: rep.sub.clone(),
            });
        }
        Some(Hir::concat(out))
    };
    let total_min = lengths.min.saturating_sub(fixed);
    let total_max = lengths.max.map(|m| m.saturating_sub(fixed));
    match variable.as_slice() {
        [] => Ok(None), // fixed length outside the bounds (checked above)
        [i] => Ok(with_bounds(&branch.parts, &[(*i, total_min, total_max)])),
        [i, j] => {
            // Two variable runs: split the budget between them, one alternative per
            // length of the first run.
            let Some(max) = total_max else {
                return Err(
                    "pattern with two unbounded parts and minLength cannot be intersected".into(),
                );
            };
            if max > 256 {
                return Err(
                    "pattern combined with maxLength over 256 is too large to intersect".into(),
                );
            }
            let mut alts = Vec::new();
            for first in 0..=max {
                let second_min = total_min.saturating_sub(first);
                let second_max = max - first;
                if let Some(h) = with_bounds(
                    &branch.parts,
                    &[(*i, first, Some(first)), (*j, second_min, Some(second_max))],
                ) {
                    alts.push(h);
                }
            }
            Ok(if alts.is_empty() {
                None
            } else {
                Some(Hir::alternation(alts))
            })
        }
        _ => unreachable!("at most two variable parts"),
    }
}

/// The canonical JSON escape of a character that cannot appear raw in a string.
fn json_escape(c: char) -> Option<String> {
    Some(match c {
        '"' => "\\\"".into(),
        '\\' => "\\\\".into(),
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        '\u{8}' => "\\b".into(),
        '\u{c}' => "\\f".into(),
        c if (c as u32) < 0x20 => format!("\\u{:04x}", c as u32),
        _ => return None,
    })
}

fn specials() -> ClassUnicode {
    ClassUnicode::new([
        ClassUnicodeRange::new('\0', '\u{1f}'),
        ClassUnicodeRange::new('"', '"'),
        ClassUnicodeRange::new('\\', '\\'),
    ])
}

/// Rewrite a HIR over decoded characters into one over JSON-escaped text.
fn escape_hir(hir: &Hir) -> Result<Hir, String> {
    Ok(match hir.kind() {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(lit) => {
            let text =
                std::str::from_utf8(&lit.0).map_err(|_| "pattern matches non-UTF-8 bytes")?;
            let mut parts = Vec::new();
            let mut plain = String::new();
            for c in text.chars() {
                match json_escape(c) {
                    Some(esc) => {
                        if !plain.is_empty() {
                            parts.push(Hir::literal(std::mem::take(&mut plain).into_bytes()));
                        }
                        parts.push(unit(Hir::literal(esc.into_bytes())));
                    }
                    None => plain.push(c),
                }
            }
            if !plain.is_empty() {
                parts.push(Hir::literal(plain.into_bytes()));
            }
            Hir::concat(parts)
        }
        HirKind::Class(Class::Unicode(class)) => {
            let mut normal = class.clone();
            normal.difference(&specials());
            let mut special = class.clone();
            special.intersect(&specials());
            let mut alts = vec![Hir::class(Class::Unicode(normal))];
            for range in special.ranges() {
                for c in range.start()..=range.end() {
                    if let Some(esc) = json_escape(c) {
                        alts.push(unit(Hir::literal(esc.into_bytes())));
                    }
                }
            }
            Hir::alternation(alts)
        }
        HirKind::Class(Class::Bytes(_)) => return Err("byte classes are not supported".into()),
        HirKind::Look(look) => {
            return Err(format!(
                "assertion {look:?} is only supported at the start or end of the pattern"
            ))
        }
        HirKind::Repetition(rep) => Hir::repetition(Repetition {
            min: rep.min,
            max: rep.max,
            greedy: true,
            sub: Box::new(escape_hir(&rep.sub)?),
        }),
        HirKind::Capture(cap) => escape_hir(&cap.sub)?,
        HirKind::Concat(subs) => {
            Hir::concat(subs.iter().map(escape_hir).collect::<Result<_, _>>()?)
        }
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.iter().map(escape_hir).collect::<Result<_, _>>()?)
        }
    })
}

/// ECMA-262 `\s`: white space and line terminators.
const ECMA_SPACE: &str = r"\t\n\x0B\x0C\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}";

/// Translate the ECMA-262 dialect of JSON Schema patterns into regex-syntax's.
///
/// Differences handled: `\d`/`\w` are ASCII-only and `\s` is ECMA's set; `.` excludes all
/// line terminators; `[^]` is any character; `\cX`, `\0`, `\uXXXX` (incl. surrogate
/// pairs) and `\/` escapes. Backreferences and look-around are rejected.
pub(crate) fn translate_ecma(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    return Err("pattern ends with a lone backslash".into());
                };
                i += 2;
                let class_body = |set: &str, negated: bool| -> String {
                    match (in_class, negated) {
                        (true, false) => set.to_string(),
                        (false, false) => format!("[{set}]"),
                        (false, true) => format!("[^{set}]"),
                        // A negated shorthand inside a class: use a nested negated class.
                        (true, true) => format!("[^{set}]"),
                    }
                };
                match next {
                    'd' => out.push_str(&class_body("0-9", false)),
                    'D' => out.push_str(&class_body("0-9", true)),
                    'w' => out.push_str(&class_body("A-Za-z0-9_", false)),
                    'W' => out.push_str(&class_body("A-Za-z0-9_", true)),
                    's' => out.push_str(&class_body(ECMA_SPACE, false)),
                    'S' => out.push_str(&class_body(ECMA_SPACE, true)),
                    'b' if in_class => out.push_str(r"\x08"),
                    'b' | 'B' => return Err("word boundaries (\\b, \\B) are not supported".into()),
                    '1'..='9' => return Err("backreferences are not supported".into()),
                    '0' => out.push_str(r"\x00"),
                    'c' => {
                        let letter = chars.get(i).filter(|l| l.is_ascii_alphabetic());
                        let Some(letter) = letter else {
                            return Err("invalid \\c escape".into());
                        };
                        out.push_str(&format!(r"\x{{{:X}}}", (*letter as u32) % 32));
                        i += 1;
                    }
                    'u' => {
                        let (cp, used) = read_unicode_escape(&chars[i..])?;
                        i += used;
                        out.push_str(&format!(r"\x{{{cp:X}}}"));
                    }
                    'x' => {
                        let hex: String = chars
                            .get(i..i + 2)
                            .map(|s| s.iter().collect())
                            .unwrap_or_default();
                        let v = u32::from_str_radix(&hex, 16).map_err(|_| "invalid \\x escape")?;
                        i += 2;
                        out.push_str(&format!(r"\x{{{v:X}}}"));
                    }
                    'k' => return Err("named backreferences are not supported".into()),
                    'p' | 'P' => {
                        // \p{...} property classes share regex-syntax's spelling.
                        out.push('\\');
                        out.push(next);
                    }
                    'n' | 'r' | 't' | 'f' | 'v' => out.push_str(match next {
                        'n' => r"\n",
                        'r' => r"\r",
                        't' => r"\t",
                        'f' => r"\x0C",
                        _ => r"\x0B",
                    }),
                    c if c.is_ascii_alphanumeric() => {
                        return Err(format!("unknown escape \\{c}"));
                    }
                    c => {
                        // Identity escape of punctuation: emit as an escaped literal.
                        out.push_str(&regex_syntax::escape(&c.to_string()));
                    }
                }
                continue;
            }
            '[' if !in_class => {
                if chars.get(i + 1) == Some(&'^') && chars.get(i + 2) == Some(&']') {
                    out.push_str("(?s:.)");
                    i += 3;
                    continue;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push_str(r"[^\x{0}-\x{10FFFF}]");
                    i += 2;
                    continue;
                }
                in_class = true;
                out.push('[');
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                i += 1;
                continue;
            }
            '[' if in_class => out.push_str(r"\["),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' | '-' if in_class => {
                // regex-syntax gives `&&`, `~~`, `--` set-operation meanings; ECMA does not.
                if c == '-' {
                    out.push('-');
                } else {
                    out.push('\\');
                    out.push(c);
                }
            }
            '.' if !in_class => out.push_str(r"[^\n\r\x{2028}\x{2029}]"),
            '(' if !in_class && chars.get(i + 1) == Some(&'?') => {
                match chars.get(i + 2) {
                    Some(':') => out.push_str("(?:"),
                    Some('<') if !matches!(chars.get(i + 3), Some('=') | Some('!')) => {
                        out.push_str("(?P<");
                        i += 3;
                        continue;
                    }
                    _ => return Err("look-around assertions are not supported".into()),
                }
                i += 3;
                continue;
            }
            '{' if !in_class => {
                // ECMA treats a `{` that does not start a valid quantifier as a literal.
                let close = chars[i..].iter().position(|&c| c == '}').map(|p| i + p);
                let quantifier = close.and_then(|end| {
                    let body: String = chars[i + 1..end].iter().collect();
                    let mut parts = body.splitn(2, ',');
                    let lo = parts.next()?;
                    let valid = !lo.is_empty()
                        && lo.chars().all(|c| c.is_ascii_digit())
                        && parts
                            .next()
                            .is_none_or(|hi| hi.chars().all(|c| c.is_ascii_digit()));
                    valid.then_some((body, end))
                });
                match quantifier {
                    Some((body, end)) => {
                        out.push('{');
                        out.push_str(&body);
                        out.push('}');
                        i = end + 1;
                        continue;
                    }
                    None => out.push_str(r"\{"),
                }
            }
            '}' if !in_class => out.push_str(r"\}"),
            '#' | ' ' => out.push_str(&regex_syntax::escape(&c.to_string())),
            c => out.push(c),
        }
        i += 1;
    }
    if in_class {
        return Err("unterminated character class".into());
    }
    Ok(out)
}

/// Read the part after `\u`: `XXXX`, `{X…}`, or a surrogate pair `XXXX\uYYYY`.
fn read_unicode_escape(rest: &[char]) -> Result<(u32, usize), String> {
    let hex4 = |s: &[char]| -> Option<u32> {
        if s.len() < 4 {
            return None;
        }
        u32::from_str_radix(&s[..4].iter().collect::<String>(), 16).ok()
    };
    if rest.first() == Some(&'{') {
        let end = rest
            .iter()
            .position(|&c| c == '}')
            .ok_or("unterminated \\u{...}")?;
        let cp = u32::from_str_radix(&rest[1..end].iter().collect::<String>(), 16)
            .map_err(|_| "invalid \\u{...} escape")?;
        return Ok((cp, end + 1));
    }
    let high = hex4(rest).ok_or("invalid \\u escape")?;
    if (0xD800..0xDC00).contains(&high) && rest.get(4) == Some(&'\\') && rest.get(5) == Some(&'u') {
        if let Some(low) = hex4(&rest[6..]) {
            if (0xDC00..0xE000).contains(&low) {
                return Ok((0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00), 10));
            }
        }
    }
    if (0xD800..0xE000).contains(&high) {
        return Err("lone surrogate escapes are not supported".into());
    }
    Ok((high, 4))
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::meta::Regex;

    fn body_re(pattern: &str, min: u32, max: Option<u32>) -> Option<Regex> {
        pattern_body(pattern, Lengths { min, max }, "#")
            .unwrap()
            .map(|b| crate::json::matcher(&format!("\"(?:{b})\"")).unwrap())
    }

    fn json(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }

    #[test]
    fn unanchored_patterns_search() {
        let re = body_re("a+b", 0, None).unwrap();
        for ok in ["ab", "xxaab", "ab\"q", "z\nab"] {
            assert!(re.is_match(&json(ok)), "{ok}");
        }
        assert!(!re.is_match(&json("ba")));
    }

    #[test]
    fn anchors_inside_alternations_are_distributed() {
        // `^$|^…$` is parsed with the common `^` lifted out; `(a$|b)` holds an anchor
        // inside a group.
        let re = body_re(r"^$|^\+?[0-9]{2,3}$", 0, None).unwrap();
        for ok in ["", "12", "+123"] {
            assert!(re.is_match(&json(ok)), "{ok}");
        }
        for no in [" ", "1", "+1234", "12 "] {
            assert!(!re.is_match(&json(no)), "{no}");
        }
        let re = body_re(r"^x(a$|b)", 0, None).unwrap();
        for ok in ["xa", "xb", "xbz"] {
            assert!(re.is_match(&json(ok)), "{ok}");
        }
        for no in ["xaz", "ya", "x"] {
            assert!(!re.is_match(&json(no)), "{no}");
        }
        // Anchors inside a repetition stay unsupported.
        assert!(pattern_body("^(a$)+", Lengths::ANY, "#").is_err());
    }

    #[test]
    fn optional_groups_of_repetitions_stay_optional() {
        // `(b+)?` once printed as `b+?` (a lazy `+`), which refused "ac".
        let re = body_re("^a(b+)?c$", 0, None).unwrap();
        for ok in ["ac", "abc", "abbc"] {
            assert!(re.is_match(&json(ok)), "{ok}");
        }
        let re = body_re("^x(y{2})*z$", 0, None).unwrap();
        assert!(re.is_match(&json("xz")) && re.is_match(&json("xyyyyz")));
        assert!(!re.is_match(&json("xyz")));
    }

    #[test]
    fn special_characters_are_escaped() {
        let re = body_re("^[\"\\\\\\n]+$", 0, None).unwrap();
        assert!(re.is_match(&json("\"\\\n")));
        assert!(!re.is_match("\"\"\""));
        let re = body_re("^.$", 0, None).unwrap();
        assert!(re.is_match(&json("\t")));
        assert!(!re.is_match(&json("\n")));
    }

    #[test]
    fn ecma_classes_are_ascii() {
        let re = body_re("^\\d+$", 0, None).unwrap();
        assert!(re.is_match(&json("123")));
        assert!(!re.is_match(&json("١٢٣")));
        let re = body_re("^[\\w.-]+@x$", 0, None).unwrap();
        assert!(re.is_match(&json("a.b-c_d@x")));
    }

    #[test]
    fn lengths_intersect_with_pattern() {
        let re = body_re("^[a-z]+$", 2, Some(3)).unwrap();
        assert!(!re.is_match(&json("a")));
        assert!(re.is_match(&json("ab")));
        assert!(re.is_match(&json("abc")));
        assert!(!re.is_match(&json("abcd")));
        let re = body_re("^ab", 0, Some(3)).unwrap();
        assert!(re.is_match(&json("ab\n")));
        assert!(!re.is_match(&json("ab\nx")));
        let re = body_re("x", 2, Some(3)).unwrap();
        assert!(re.is_match(&json("ax")) && re.is_match(&json("xab")));
        assert!(!re.is_match(&json("x")) && !re.is_match(&json("aaxa")));
        assert!(body_re("^abc$", 4, None).is_none());
    }

    #[test]
    fn unsupported_features_are_errors() {
        for p in ["(a)\\1", "(?=a)", "\\bword", "(?<!x)y"] {
            assert!(pattern_body(p, Lengths::ANY, "#/p").is_err(), "{p}");
        }
    }

    #[test]
    fn braces_and_unicode_escapes() {
        let re = body_re("^a{2}\\u00e9\\uD83D\\uDE00$", 0, None).unwrap();
        assert!(re.is_match(&json("aaé😀")));
        let re = body_re("^{x}$", 0, None).unwrap();
        assert!(re.is_match(&json("{x}")));
    }
}
