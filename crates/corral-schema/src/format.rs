//! Regular expressions for JSON Schema `format` values.
//!
//! [`format_regex`] returns, for the formats that are asserted (`date-time`, `date`, `time`,
//! `duration`, `email`, `hostname`, `ipv4`, `ipv6`, `uuid`, `uri`), an unanchored regex in
//! the `regex-syntax` 0.8 dialect (wrapped in `(?:…)`) describing the *decoded* string value.
//! Every such regex only matches printable ASCII other than `"` and `\`, so it can be
//! embedded in a JSON string body without escaping.
//!
//! The regexes are sound with respect to the JSON-Schema-Test-Suite (draft 2020-12,
//! `optional/format`): they never accept an instance marked invalid there. Where the exact
//! language is not regular or too large, they accept a documented subset:
//!
//! * `date-time`, `time`: leap seconds (`:60`) are accepted only as `23:59:60` with
//!   `Z`/`z`/`+00:00`/`-00:00` (on any date, like the suite); leap seconds written with
//!   another offset (`15:59:60-08:00`) are rejected to keep the DFA small (see
//!   `LEAP_SECONDS_ALL_OFFSETS` to accept them with every offset ending in :00/:30/:45).
//! * `hostname` (and `email` domains): labels whose 3rd and 4th characters are both `-`
//!   (which includes every IDNA `xn--` label, whose punycode cannot be checked by a regex)
//!   are rejected; the 253-character limit is enforced through a label-count/length
//!   scheme: up to 4 labels (the first up to 63 characters, the others up to 62), or 5 to
//!   11 labels of up to 22 characters each.
//! * `email`: quoted local parts (`"joe bloggs"@…`) are rejected (they contain `"`); the
//!   64-character local-part limit is enforced through a similar atom count/length scheme.
//! * `uri`: exact RFC 3986 `URI` syntax (ASCII only, so never IRIs).
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Why a recognised format has no regex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The format is asserted but cannot be expressed.
    #[error("format {format:?} cannot be expressed as a regular expression: {reason}")]
    #[allow(dead_code)] // every asserted format currently has a regex
    Unsupported { format: String, reason: String },
}

/// Formats that common validators assert (Python `jsonschema`'s `FormatChecker`, the
/// `jsonschema` crate with format validation on) and that corral cannot express exactly:
/// an output could pass corral and fail them, so they are refused, never ignored (unless
/// `lenient`). Other unknown formats (OpenAPI's `int32`, `byte`, …) are annotations.
pub const ASSERTED_ELSEWHERE: &[&str] = &[
    "regex",
    "uri-template",
    "idn-email",
    "idn-hostname",
    "color",
];

/// Regex of the decoded string values of `format`.
///
/// `None` for formats treated as annotations (unknown formats: `int32`, `byte`, …; see
/// [`ASSERTED_ELSEWHERE`] for known formats the caller must refuse). `Some(Ok(regex))`
/// for `date-time`, `date`, `time`, `duration`, `email`, `hostname`, `ipv4`, `ipv6`,
/// `uuid`, `uri`, `uri-reference`, `iri`, `iri-reference`, `json-pointer`,
/// `relative-json-pointer` (and the draft-3 spellings `host-name`, `ip-address`); see the
/// module documentation for the accepted subsets.
pub fn format_regex(format: &str) -> Option<Result<String, FormatError>> {
    // Built once per process: some are long (`uri`, `ipv6`) and recur under many
    // properties.
    static BUILT: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let lock = || {
        built
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    if let Some(regex) = lock().get(format) {
        return Some(Ok(regex.clone()));
    }
    let regex = build_format_regex(format)?;
    lock().insert(format.to_string(), regex.clone());
    Some(Ok(regex))
}

/// [`format_regex`] of a known format, built.
fn build_format_regex(format: &str) -> Option<String> {
    let r = match format {
        "host-name" => hostname(),
        "ip-address" => ipv4(),
        "date-time" => date_time(),
        "date" => date(),
        "time" => time(),
        "duration" => duration(),
        "email" => email(),
        "hostname" => hostname(),
        "ipv4" => ipv4(),
        "ipv6" => ipv6(),
        "uuid" => uuid(),
        "uri" => uri(),
        "uri-reference" => uri_with(true, false),
        "iri" => uri_with(false, true),
        "iri-reference" => uri_with(true, true),
        "json-pointer" => json_pointer(),
        "relative-json-pointer" => relative_json_pointer(),
        _ => return None,
    };
    Some(format!("(?:{r})"))
}

// ---------------------------------------------------------------------------------------
// Dates and times (RFC 3339 section 5.6, appendix A)
// ---------------------------------------------------------------------------------------

/// Years divisible by 4 and not by 100, or divisible by 400 (`0000` included).
const LEAP_YEAR: &str =
    "(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)";

/// `full-date`: `YYYY-MM-DD` with the number of days of each month, Feb 29 in leap years.
fn date() -> String {
    format!(
        "[0-9]{{4}}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)\
         |02-(?:0[1-9]|1[0-9]|2[0-8]))|{LEAP_YEAR}-02-29"
    )
}

const FRAC: &str = "(?:\\.[0-9]+)?";
const OFFSET: &str = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])";

/// Whether leap seconds are accepted with every offset whose minutes are 00, 30 or 45 (all
/// offsets in use) rather than only with `Z`/`z`/`+00:00`/`-00:00`. Each extra offset makes
/// the DFA remember the local time across the fraction digits: the full set triples the
/// size of the `time` / `date-time` DFAs by more than ten (a minimized dense DFA of about
/// 110 KB instead of 8 KB for `date-time`), for a value that generated text practically
/// never contains.
const LEAP_SECONDS_ALL_OFFSETS: bool = false;

/// `full-time`: `HH:MM:SS[.frac]` with a mandatory offset. A leap second `:60` is accepted
/// only when the UTC-equivalent time is `23:59:60`, with `Z`/`z`/`+00:00`/`-00:00` (or,
/// with [`LEAP_SECONDS_ALL_OFFSETS`], any offset ending in :00, :30 or :45).
fn time() -> String {
    time_with(LEAP_SECONDS_ALL_OFFSETS)
}

fn time_with(leap_all_offsets: bool) -> String {
    // Local times whose UTC equivalent is 23:59, with the offsets that make it so.
    let mut by_local: std::collections::BTreeMap<(u32, u32), Vec<String>> = Default::default();
    by_local.entry((23, 59)).or_default().push("[Zz]".into());
    let (hours, minutes): (u32, &[u32]) = if leap_all_offsets {
        (24, &[0, 30, 45])
    } else {
        (1, &[0])
    };
    for sign in ['+', '-'] {
        for hh in 0..hours {
            for &mm in minutes {
                let off = (hh * 60 + mm) as i64;
                let local =
                    (23 * 60 + 59 + if sign == '+' { off } else { -off }).rem_euclid(1440) as u32;
                let esc = if sign == '+' { "\\+" } else { "-" };
                by_local
                    .entry((local / 60, local % 60))
                    .or_default()
                    .push(format!("{esc}{hh:02}:{mm:02}"));
            }
        }
    }
    let leap: Vec<String> = by_local
        .into_iter()
        .map(|((h, m), offs)| format!("{h:02}:{m:02}:60{FRAC}(?:{})", offs.join("|")))
        .collect();
    format!(
        "(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]{FRAC}{OFFSET}|{})",
        leap.join("|")
    )
}

/// `date-time`: `full-date` `T`/`t` `full-time`.
fn date_time() -> String {
    format!("(?:{})[Tt]{}", date(), time())
}

/// RFC 3339 appendix A `duration` (weeks only alone; no fractions).
fn duration() -> String {
    let d = "[0-9]+";
    let dur_time = format!("T(?:{d}H(?:{d}M(?:{d}S)?)?|{d}M(?:{d}S)?|{d}S)");
    let dur_date = format!("(?:{d}D|{d}M(?:{d}D)?|{d}Y(?:{d}M(?:{d}D)?)?)(?:{dur_time})?");
    format!("P(?:{dur_date}|{dur_time}|{d}W)")
}

// ---------------------------------------------------------------------------------------
// Internet addresses and names
// ---------------------------------------------------------------------------------------

/// Decimal octet 0–255 without leading zeros.
const DEC_OCTET: &str = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";

/// Dotted-quad IPv4 address without leading zeros.
fn ipv4() -> String {
    format!("(?:{DEC_OCTET}\\.){{3}}{DEC_OCTET}")
}

/// RFC 3986 `IPv6address` (all `::` compressions, optional trailing IPv4, no zone id).
fn ipv6() -> String {
    let h = "[0-9A-Fa-f]{1,4}";
    let ls32 = format!("(?:{h}:{h}|{})", ipv4());
    // `[ *n( h16 ":" ) h16 ]`
    let pre = |n: usize| -> String {
        if n == 0 {
            format!("(?:{h})?")
        } else {
            format!("(?:(?:{h}:){{0,{n}}}{h})?")
        }
    };
    let alts = [
        format!("(?:{h}:){{6}}{ls32}"),
        format!("::(?:{h}:){{5}}{ls32}"),
        format!("{}::(?:{h}:){{4}}{ls32}", pre(0)),
        format!("{}::(?:{h}:){{3}}{ls32}", pre(1)),
        format!("{}::(?:{h}:){{2}}{ls32}", pre(2)),
        format!("{}::{h}:{ls32}", pre(3)),
        format!("{}::{ls32}", pre(4)),
        format!("{}::{h}", pre(5)),
        format!("{}::", pre(6)),
    ];
    format!("(?:{})", alts.join("|"))
}

/// Hex 8-4-4-4-12, case-insensitive.
fn uuid() -> String {
    let x = "[0-9A-Fa-f]";
    format!("{x}{{8}}-{x}{{4}}-{x}{{4}}-{x}{{4}}-{x}{{12}}")
}

/// An LDH label of 1..=`max` characters (`max >= 5`): letters, digits and hyphens, not
/// starting or ending with a hyphen, and without hyphens at both positions 3 and 4.
fn label(max: usize) -> String {
    let a = "[0-9A-Za-z]";
    let h = "[0-9A-Za-z-]";
    format!(
        "{a}(?:{h}{{0,2}}{a}|{h}(?:{a}{h}|-{a}){h}{{0,{}}}{a})?",
        max - 5
    )
}

/// RFC 1123 host name (see the module documentation for the length scheme).
fn hostname() -> String {
    let l63 = label(63);
    let l62 = label(62);
    let l22 = label(22);
    // 63 + 3 * (1 + 62) = 252 and 11 * 22 + 10 = 252: both stay within 253.
    format!("(?:{l63}(?:\\.{l62}){{0,3}}|{l22}(?:\\.{l22}){{4,10}})")
}

/// RFC 5321 `Mailbox` with a dot-atom local part and a host-name or address-literal
/// domain.
fn email() -> String {
    let local = email_local();
    let domain = format!(
        "(?:{}|\\[{}\\]|\\[[Ii][Pp][Vv]6:{}\\])",
        hostname(),
        ipv4(),
        ipv6()
    );
    format!("{local}@{domain}")
}

/// Dot-atom local part of at most 64 characters: one atom of <= 64, two of <= 31 + 32,
/// three of <= 20, or four to six of <= 9 each (6 * 9 + 5 = 59).
fn email_local() -> String {
    let a = "[0-9A-Za-z!#$%&'*+/=?^_`{|}~-]";
    format!(
        "(?:{a}{{1,64}}|{a}{{1,31}}\\.{a}{{1,32}}|{a}{{1,20}}(?:\\.{a}{{1,20}}){{2}}|{a}{{1,9}}(?:\\.{a}{{1,9}}){{3,5}})"
    )
}

/// RFC 3986 `URI`: scheme, hierarchical part, optional query and fragment.
fn uri() -> String {
    uri_with(false, false)
}

/// RFC 3986 `URI-reference`, RFC 3987 `IRI` / `IRI-reference`: `reference` adds relative
/// references; `international` adds the (BMP) `ucschar` ranges to the unreserved set.
fn uri_with(reference: bool, international: bool) -> String {
    let ucs = if international {
        "\\x{A0}-\\x{D7FF}\\x{F900}-\\x{FDCF}\\x{FDF0}-\\x{FFEF}"
    } else {
        ""
    };
    let unreserved = format!("0-9A-Za-z._~\\-{ucs}");
    let sub_delims = "!$&'()*+,;=";
    let pct = "%[0-9A-Fa-f]{2}";
    let pchar = format!("(?:[{unreserved}{sub_delims}:@]|{pct})");
    let userinfo = format!("(?:[{unreserved}{sub_delims}:]|{pct})*");
    let reg_name = format!("(?:[{unreserved}{sub_delims}]|{pct})*");
    let ipvfuture = format!("[Vv][0-9A-Fa-f]+\\.[{unreserved}{sub_delims}:]+");
    let host = format!("(?:\\[(?:{}|{ipvfuture})\\]|{reg_name})", ipv6());
    let authority = format!("(?:{userinfo}@)?{host}(?::[0-9]*)?");
    let segment = format!("{pchar}*");
    let segment_nz = format!("{pchar}+");
    let path_abempty = format!("(?:/{segment})*");
    let path_absolute = format!("/(?:{segment_nz}(?:/{segment})*)?");
    let path_rootless = format!("{segment_nz}(?:/{segment})*");
    let hier = format!("(?://{authority}{path_abempty}|{path_absolute}|{path_rootless})?");
    let qf = format!("(?:[{unreserved}{sub_delims}:@/?]|{pct})*");
    let absolute = format!("[A-Za-z][0-9A-Za-z+.-]*:{hier}(?:\\?{qf})?(?:#{qf})?");
    if !reference {
        return absolute;
    }
    // A relative reference's first segment has no colon (it would read as a scheme).
    let segment_nz_nc = format!("(?:[{unreserved}{sub_delims}@]|{pct})+");
    let path_noscheme = format!("{segment_nz_nc}(?:/{segment})*");
    let relative = format!(
        "(?://{authority}{path_abempty}|{path_absolute}|{path_noscheme})?(?:\\?{qf})?(?:#{qf})?"
    );
    format!("(?:{absolute}|{relative})")
}

/// RFC 6901 JSON pointer (reference tokens without `"` and `\\`, a subset).
fn json_pointer() -> String {
    "(?:/(?:[^~/\"\\\\\\x00-\\x1F]|~[01])*)*".to_string()
}

/// Relative JSON pointer: a non-negative integer, then `#` or a JSON pointer.
fn relative_json_pointer() -> String {
    format!("(?:0|[1-9][0-9]*)(?:#|{})", json_pointer())
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::meta::Regex;
    use regex_syntax::hir::{Class, Hir, HirKind};

    /// The JSON-Schema-Test-Suite `optional/format` directory of draft 2020-12, relative to
    /// this crate's manifest directory (an absolute path also works).
    const SUITE_FORMAT_DIR: &str =
        "../../tests/data/json-schema-test-suite/draft2020-12/optional/format";

    const FORMATS: [&str; 10] = [
        "date-time",
        "date",
        "time",
        "duration",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "uuid",
        "uri",
    ];

    fn re(format: &str) -> Regex {
        let pat = format_regex(format)
            .expect("asserted format")
            .expect("regex");
        Regex::new(&format!("^{pat}$")).unwrap_or_else(|e| panic!("{format}: {e}"))
    }

    /// Every character a HIR can match is printable ASCII other than `"` and `\`.
    fn check_chars(h: &Hir) -> Result<(), String> {
        let ok = |c: u32| (0x20..0x7f).contains(&c) && c != b'"' as u32 && c != b'\\' as u32;
        match h.kind() {
            HirKind::Empty => Ok(()),
            HirKind::Literal(l) => match l.0.iter().find(|&&b| !ok(b as u32)) {
                Some(b) => Err(format!("literal byte {b:#x}")),
                None => Ok(()),
            },
            HirKind::Class(Class::Unicode(c)) => {
                for r in c.ranges() {
                    for ch in r.start()..=r.end() {
                        if !ok(ch as u32) {
                            return Err(format!("class char {ch:?}"));
                        }
                    }
                }
                Ok(())
            }
            HirKind::Class(Class::Bytes(c)) => {
                for r in c.ranges() {
                    for b in r.start()..=r.end() {
                        if !ok(b as u32) {
                            return Err(format!("class byte {b:#x}"));
                        }
                    }
                }
                Ok(())
            }
            HirKind::Look(l) => Err(format!("look-around {l:?}")),
            HirKind::Repetition(r) => check_chars(&r.sub),
            HirKind::Capture(c) => check_chars(&c.sub),
            HirKind::Concat(hs) | HirKind::Alternation(hs) => hs.iter().try_for_each(check_chars),
        }
    }

    #[test]
    fn only_safe_printable_ascii() {
        for f in FORMATS {
            let pat = format_regex(f).unwrap().unwrap();
            assert!(pat.starts_with("(?:") && pat.ends_with(')'));
            let hir = regex_syntax::Parser::new().parse(&pat).unwrap();
            check_chars(&hir).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }

    #[test]
    fn annotations_are_none() {
        for f in [
            "int32",
            "byte",
            "regex",
            "uri-template",
            "idn-hostname",
            "idn-email",
            "unknown",
            "",
        ] {
            assert!(format_regex(f).is_none(), "{f}");
        }
    }

    #[test]
    fn formats_validators_assert_are_refused_not_ignored() {
        use crate::{compile, Options, SchemaError};
        for f in ASSERTED_ELSEWHERE {
            let schema = serde_json::json!({"type": "string", "format": f});
            match compile(&schema, &Options::default()) {
                Err(SchemaError::Unsupported {
                    keyword, pointer, ..
                }) => assert_eq!((keyword.as_str(), pointer.as_str()), ("format", "#"), "{f}"),
                other => panic!("{f}: {other:?}"),
            }
            let lenient = Options {
                lenient: true,
                ..Options::default()
            };
            let compiled = compile(&schema, &lenient).unwrap();
            assert!(
                compiled.ignored.iter().any(|i| i.contains("/format")),
                "{f}"
            );
        }
        // Formats no validator knows stay annotations.
        let schema = serde_json::json!({"type": "string", "format": "int32"});
        let compiled = compile(&schema, &Options::default()).unwrap();
        assert!(compiled.ignored.iter().any(|i| i.contains("int32")));
    }

    /// Soundness against the test suite: no invalid instance is accepted. Valid instances
    /// that are rejected are listed (and must be exactly the documented ones).
    #[test]
    fn json_schema_test_suite() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SUITE_FORMAT_DIR);
        let mut rejected_valid: Vec<String> = Vec::new();
        for f in FORMATS {
            let path = dir.join(format!("{f}.json"));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let groups: serde_json::Value = serde_json::from_str(&text).unwrap();
            let r = re(f);
            let (mut valid, mut accepted) = (0, 0);
            for g in groups.as_array().unwrap() {
                assert_eq!(g["schema"]["format"], f);
                for t in g["tests"].as_array().unwrap() {
                    let Some(s) = t["data"].as_str() else {
                        continue;
                    };
                    let is_valid = t["valid"].as_bool().unwrap();
                    let m = r.is_match(s);
                    assert!(
                        !m || is_valid,
                        "{f}: accepted invalid {s:?} ({})",
                        t["description"]
                    );
                    if is_valid {
                        valid += 1;
                        if m {
                            accepted += 1;
                        } else {
                            rejected_valid.push(format!("{f}: {s:?}"));
                        }
                    }
                }
            }
            eprintln!("{f}: accepts {accepted}/{valid} valid instances");
        }
        eprintln!(
            "rejected valid instances:\n  {}",
            rejected_valid.join("\n  ")
        );
        // The documented under-approximations, and nothing else.
        for r in &rejected_valid {
            let documented = (r.contains(":60") && !LEAP_SECONDS_ALL_OFFSETS) // leap seconds
                || r.contains("xn--") // IDNA labels
                || (r.starts_with("email") && r.contains("\\\"")); // quoted local parts
            assert!(documented, "undocumented rejection: {r}");
        }
    }

    /// The exact leap-second variant agrees with the suite on every `time` instance.
    #[test]
    fn leap_seconds_all_offsets() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(SUITE_FORMAT_DIR)
            .join("time.json");
        let groups: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let r = Regex::new(&format!("^(?:{})$", time_with(true))).unwrap();
        for t in groups[0]["tests"].as_array().unwrap() {
            let Some(s) = t["data"].as_str() else {
                continue;
            };
            assert_eq!(r.is_match(s), t["valid"].as_bool().unwrap(), "{s}");
        }
        for ok in ["05:44:60+05:45", "18:14:60-05:45", "23:59:60.5z"] {
            assert!(r.is_match(ok), "{ok}");
        }
        for bad in ["05:45:60+05:45", "23:59:60+00:01", "00:00:60+00:01"] {
            assert!(!r.is_match(bad), "{bad}");
        }
        let r = re("time");
        for ok in ["23:59:60Z", "23:59:60.25+00:00", "23:59:60-00:00"] {
            assert!(r.is_match(ok), "{ok}");
        }
        assert!(!r.is_match("15:59:60-08:00"));
    }

    #[test]
    fn dates() {
        let r = re("date");
        for ok in [
            "2000-02-29",
            "2400-02-29",
            "1996-02-29",
            "0000-02-29",
            "2023-12-31",
            "2023-02-28",
            "9999-11-30",
        ] {
            assert!(r.is_match(ok), "{ok}");
        }
        for bad in [
            "1900-02-29",
            "2023-02-29",
            "2023-04-31",
            "2023-13-01",
            "2023-00-10",
            "2023-1-01",
            "2023-01-32",
        ] {
            assert!(!r.is_match(bad), "{bad}");
        }
        // Leap years exhaustively.
        for y in 0..10000u32 {
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            assert_eq!(r.is_match(&format!("{y:04}-02-29")), leap, "{y}");
        }
        let dt = re("date-time");
        for ok in [
            "2023-01-01T00:00:00Z",
            "2023-01-01t23:59:59.5+23:59",
            "2016-12-31T23:59:60Z",
            "2016-12-31T23:59:60.1-00:00",
        ] {
            assert!(dt.is_match(ok), "{ok}");
        }
        for bad in [
            "2023-01-01T00:00:00",
            "2023-01-01 00:00:00Z",
            "2023-01-01T00:00:60Z",
            "2023-01-01T24:00:00Z",
            "2023-01-01T00:00:00+24:00",
            "2023-01-01T00:00:00.Z",
        ] {
            assert!(!dt.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn durations() {
        let r = re("duration");
        for ok in [
            "P1Y", "P1Y2M", "P1Y2M3D", "P1M3D", "P3D", "PT1H", "PT1H2M3S", "PT2M3S", "PT3S", "P1W",
            "P1YT1S", "P0D",
        ] {
            assert!(r.is_match(ok), "{ok}");
        }
        for bad in [
            "P", "PT", "P1Y3D", "P1W1D", "P1DT", "PT1H3S", "P1.5D", "P1S", "P-1D", "p1D", "P1H",
        ] {
            assert!(!r.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn addresses() {
        let v4 = re("ipv4");
        for v in 0..=255u32 {
            assert!(v4.is_match(&format!("{v}.0.{v}.255")));
            assert!(!v4.is_match(&format!("{v:03}.1.1.1")) || v >= 100);
        }
        assert!(!v4.is_match("256.0.0.0") && !v4.is_match("1.2.3") && !v4.is_match("01.2.3.4"));
        let v6 = re("ipv6");
        for ok in [
            "::",
            "::1",
            "1::",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:1.2.3.4",
            "::1.2.3.4",
            "1::8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "fe80::1:2",
        ] {
            assert!(v6.is_match(ok), "{ok}");
        }
        for bad in [
            "1:2:3:4:5:6:7:8:9",
            ":::",
            "1::2::3",
            "12345::",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:1.2.3.4",
            "::1%eth0",
            "g::",
        ] {
            assert!(!v6.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn hostnames_and_emails() {
        let h = re("hostname");
        let l63 = "a".repeat(63);
        let l62 = "b".repeat(62);
        assert!(h.is_match(&format!("{l63}.{l62}.{l62}.{l62}"))); // 252 characters
        assert!(!h.is_match(&format!("{l63}.{l63}.{l63}.{l63}"))); // 255 characters
        assert!(!h.is_match(&"a".repeat(64)));
        assert!(h.is_match("a.b.c.d.e.f.g.h.i.j.k"));
        assert!(!h.is_match("a.b.c.d.e.f.g.h.i.j.k.l")); // 12 labels: approximation
        for ok in [
            "a",
            "a-b",
            "ab-c",
            "abc-d",
            "a--b",
            "a-b-c",
            "A1.b2-c.COM",
            "abc",
            "1host",
            "a-b.c--d",
        ] {
            assert!(h.is_match(ok), "{ok}");
        }
        for bad in ["ab--c", "xn--a", "-a", "a-", "a..b", "a_b", "a.", ".a", ""] {
            assert!(!h.is_match(bad), "{bad}");
        }
        // Length limits hold for every string of the languages.
        let max_len = |p: &str| {
            regex_syntax::Parser::new()
                .parse(p)
                .unwrap()
                .properties()
                .maximum_len()
        };
        assert!(max_len(&hostname()).unwrap() <= 253);
        assert!(max_len(&email_local()).unwrap() <= 64);
        for n in 1..=63 {
            assert!(max_len(&label(n.max(5))).unwrap() <= n.max(5));
        }
        let e = re("email");
        for ok in [
            "a@b",
            "a.b.c.d@x.org",
            "!#$%&'*+/=?^_`{|}~-@x.org",
            "a@[1.2.3.4]",
            "a@[IPv6:::1]",
        ] {
            assert!(e.is_match(ok), "{ok}");
        }
        for bad in [
            "a..b@x",
            ".a@x",
            "a.@x",
            "a@",
            "@x",
            "a@b@c",
            "a@[1.2.3.256]",
            "a b@x",
            &format!("{}@x", "a".repeat(65)),
        ] {
            assert!(!e.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn uris() {
        let u = re("uri");
        for ok in [
            "a:",
            "http://h",
            "http://[v7.x]/",
            "http://u:p@h:80/p?q#f",
            "urn:x:y",
            "file:///etc/passwd",
            "http://h/%20",
        ] {
            assert!(u.is_match(ok), "{ok}");
        }
        for bad in [
            "http://h/%2",
            "http://h:8a",
            "1a:b",
            ":x",
            "http://h/a b",
            "http://[::1",
            "http://h/#a#b",
            "http://h/{x}",
        ] {
            assert!(!u.is_match(bad), "{bad}");
        }
    }
}
