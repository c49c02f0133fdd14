//! Regexes against every literal of small ranges, bounds, multiples and exact decimals.
use super::*;
use regex_automata::meta::Regex;

/// Generated regexes must leave room for the enclosing document regex within the
/// default `regex-syntax` nest limit of 250.
const NEST: u32 = 100;

fn re(pat: &str) -> Regex {
    assert!(
        regex_syntax::ParserBuilder::new()
            .nest_limit(NEST)
            .build()
            .parse(pat)
            .is_ok(),
        "nesting deeper than {NEST}: {pat}"
    );
    Regex::new(&format!("^(?:{pat})$")).unwrap_or_else(|e| panic!("bad regex {pat}: {e}"))
}

fn dec(s: &str) -> Decimal {
    Decimal::parse(s).unwrap()
}

fn bounds(min: Option<&str>, xmin: bool, max: Option<&str>, xmax: bool) -> Bounds {
    Bounds {
        minimum: min.map(dec),
        exclusive_minimum: xmin,
        maximum: max.map(dec),
        exclusive_maximum: xmax,
    }
}

/// Independent oracle: a literal (no exponent) scaled by 10^6, as i128.
fn scaled(lit: &str) -> i128 {
    let (neg, body) = match lit.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, lit),
    };
    let (i, f) = body.split_once('.').unwrap_or((body, ""));
    assert!(f.len() <= 6);
    let v: i128 = format!("{i}{f:0<6}").parse().unwrap();
    if neg {
        -v
    } else {
        v
    }
}

#[test]
fn decimal_parse_and_order() {
    assert_eq!(dec("1e3"), dec("1000"));
    assert_eq!(dec("1.5E-2"), dec("0.015"));
    assert_eq!(dec("-0"), Decimal::zero());
    assert_eq!(dec("0.10"), dec("0.1"));
    assert!(dec("-5") < dec("-4.9"));
    assert!(dec("0.1") < dec("0.11"));
    assert!(dec("10") > dec("9.99"));
    assert_eq!(Decimal::from_f64(0.1).unwrap(), dec("0.1"));
    assert_eq!(Decimal::from_f64(1e300).unwrap(), dec("1e300"));
    assert!(Decimal::from_f64(f64::NAN).is_err());
    assert!(Decimal::from_f64(f64::INFINITY).is_err());
    for bad in [
        "",
        "-",
        "e5",
        "1e",
        "1x",
        "1e99999999999999999999",
        "--1",
        ".",
    ] {
        assert!(Decimal::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(dec("1.25").to_string(), "1.25");
    assert_eq!(dec("-0.001").to_string(), "-0.001");
    assert_eq!(dec("1e300").to_string(), "1e300");
    assert_eq!(dec("12e-20").to_string(), "1.2e-19");
}

#[test]
fn unbounded() {
    let i = re(&integer_regex(&Bounds::unbounded(), None).unwrap());
    for ok in ["0", "1", "-1", "1234567890123456789012345", "-10"] {
        assert!(i.is_match(ok), "{ok}");
    }
    for bad in ["-0", "01", "1.0", "1e2", "", "-", "+1", "00"] {
        assert!(!i.is_match(bad), "{bad}");
    }
    let n = re(&number_regex(&Bounds::unbounded(), None).unwrap());
    for ok in [
        "0", "0.0", "1.5e10", "-1.5E-10", "1e+5", "-0.5", "12.000", "0e5",
    ] {
        assert!(n.is_match(ok), "{ok}");
    }
    for bad in [
        "-0", "-0.0", "-0e3", "01", "1.", ".5", "1e", "+1", "--1", "1.5.5", "0x1",
    ] {
        assert!(!n.is_match(bad), "{bad}");
    }
}

fn all_ints() -> Vec<(i64, String)> {
    (-1300..=1300).map(|v| (v, v.to_string())).collect()
}

#[test]
fn integer_ranges_exhaustive() {
    let vals: [Option<i64>; 20] = [
        None,
        Some(-1200),
        Some(-1000),
        Some(-999),
        Some(-101),
        Some(-100),
        Some(-10),
        Some(-9),
        Some(-1),
        Some(0),
        Some(1),
        Some(9),
        Some(10),
        Some(11),
        Some(99),
        Some(100),
        Some(109),
        Some(999),
        Some(1000),
        Some(1200),
    ];
    let ints = all_ints();
    let extra_bad = ["-0", "00", "01", "1.0", "-1.0", "1e1", "0.0", "+1"];
    for lo in vals {
        for hi in vals {
            for xl in [false, true] {
                for xh in [false, true] {
                    if (lo.is_none() && xl) || (hi.is_none() && xh) {
                        continue;
                    }
                    let b = Bounds {
                        minimum: lo.map(|v| dec(&v.to_string())),
                        exclusive_minimum: xl,
                        maximum: hi.map(|v| dec(&v.to_string())),
                        exclusive_maximum: xh,
                    };
                    let in_range = |v: i64| {
                        lo.is_none_or(|l| if xl { v > l } else { v >= l })
                            && hi.is_none_or(|h| if xh { v < h } else { v <= h })
                    };
                    let any = ints.iter().any(|(v, _)| in_range(*v));
                    match integer_regex(&b, None) {
                        Err(NumberError::EmptyRange(_)) => assert!(!any, "{b:?}"),
                        Err(e) => panic!("{b:?}: {e}"),
                        Ok(pat) => {
                            let r = re(&pat);
                            for (v, s) in &ints {
                                assert_eq!(r.is_match(s), in_range(*v), "{b:?} {s} {pat}");
                            }
                            for s in extra_bad {
                                assert!(!r.is_match(s), "{b:?} {s} {pat}");
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn integer_fractional_bounds() {
    let b = bounds(Some("0.5"), false, Some("10.5"), true);
    let r = re(&integer_regex(&b, None).unwrap());
    for (v, s) in all_ints() {
        assert_eq!(r.is_match(&s), (1..=10).contains(&v), "{s}");
    }
    let b = bounds(Some("-2.5"), true, Some("-0.1"), false);
    let r = re(&integer_regex(&b, None).unwrap());
    for (v, s) in all_ints() {
        assert_eq!(r.is_match(&s), (-2..=-1).contains(&v), "{s}");
    }
    assert!(matches!(
        integer_regex(&bounds(Some("0.1"), false, Some("0.9"), false), None),
        Err(NumberError::EmptyRange(_))
    ));
    assert!(matches!(
        integer_regex(&bounds(Some("5"), false, Some("4"), false), None),
        Err(NumberError::EmptyRange(_))
    ));
    assert!(matches!(
        integer_regex(&bounds(Some("5"), true, Some("5"), false), None),
        Err(NumberError::EmptyRange(_))
    ));
    let r = re(&integer_regex(&bounds(Some("5"), false, Some("5"), false), None).unwrap());
    assert!(r.is_match("5") && !r.is_match("4") && !r.is_match("6"));
}

/// Literals from -3.000 to 3.000 in steps of 0.001, in several spellings.
fn decimal_literals() -> Vec<String> {
    let mut out = Vec::new();
    for k in -3000i64..=3000 {
        let neg = k < 0;
        let m = k.unsigned_abs();
        let (i, f) = (m / 1000, m % 1000);
        let sign = if neg { "-" } else { "" };
        let full = format!("{sign}{i}.{f:03}");
        let trimmed = full.trim_end_matches('0').trim_end_matches('.').to_string();
        if trimmed != "-0" {
            out.push(trimmed.clone());
        }
        if full != "-0.000" {
            out.push(full.clone());
            out.push(format!("{full}0"));
        }
        if f == 0 && !neg {
            out.push(format!("{i}.0"));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn check_number(b: &Bounds, mult: Option<&str>, pred: impl Fn(i128) -> bool) {
    let lits = decimal_literals();
    let q = mult.map(dec);
    let pat = match number_regex_exact(b, q.as_ref()) {
        Ok(p) => p,
        Err(NumberError::EmptyRange(_)) => {
            assert!(
                !lits.iter().any(|l| pred(scaled(l))),
                "{b:?} {mult:?} reported empty"
            );
            return;
        }
        Err(e) => panic!("{b:?}: {e}"),
    };
    let r = re(&pat);
    for l in &lits {
        assert_eq!(
            r.is_match(l),
            pred(scaled(l)),
            "{b:?} mult {mult:?}: {l}  {pat}"
        );
    }
    for bad in [
        "-0", "-0.0", "00", "01.5", "1.", ".5", "1e0", "+1", "1.5e-1",
    ] {
        assert!(!r.is_match(bad), "{bad} {pat}");
    }
}

#[test]
fn number_bounds() {
    let pts = [
        "-2.5", "-1", "-0.75", "-0.001", "0", "0.5", "0.999", "1", "1.5", "2.05", "2.999",
    ];
    let mut specs: Vec<Option<&str>> = vec![None];
    specs.extend(pts.iter().map(|s| Some(*s)));
    for lo in &specs {
        for hi in &specs {
            for xl in [false, true] {
                for xh in [false, true] {
                    if (lo.is_none() && xl)
                        || (hi.is_none() && xh)
                        || (lo.is_none() && hi.is_none())
                    {
                        continue;
                    }
                    let b = bounds(*lo, xl, *hi, xh);
                    let (l, h) = (lo.map(scaled), hi.map(scaled));
                    check_number(&b, None, |v| {
                        l.is_none_or(|l| if xl { v > l } else { v >= l })
                            && h.is_none_or(|h| if xh { v < h } else { v <= h })
                    });
                }
            }
        }
    }
}

#[test]
fn number_brief_examples() {
    let r = re(&number_regex(&bounds(Some("0.5"), false, None, false), None).unwrap());
    for ok in ["0.5", "0.50", "0.51", "1", "123.25", "0.5000001"] {
        assert!(r.is_match(ok), "{ok}");
    }
    for bad in ["0.49999", "0.4", "0", "-1", "0.499999999999999999999"] {
        assert!(!r.is_match(bad), "{bad}");
    }
    let r = re(&number_regex(&bounds(None, false, Some("1.5"), true), None).unwrap());
    for ok in ["1.4999999", "1", "-100.5", "0", "1.49"] {
        assert!(r.is_match(ok), "{ok}");
    }
    for bad in ["1.5", "1.50", "1.5000", "1.51", "2", "-0"] {
        assert!(!r.is_match(bad), "{bad}");
    }
}

#[test]
fn integer_multiple_of() {
    let ranges: [(Option<i64>, Option<i64>); 6] = [
        (Some(-1200), Some(1200)),
        (Some(-37), Some(1199)),
        (Some(3), Some(3)),
        (Some(0), None),
        (None, Some(-7)),
        (Some(-1000), Some(-1)),
    ];
    let ints = all_ints();
    for q in [
        "2", "5", "10", "100", "4", "25", "20", "50", "1", "0.5", "3", "7", "12", "0.3", "1.5",
        "8", "16", "125",
    ] {
        let qd = dec(q);
        for (lo, hi) in ranges {
            for (xl, xh) in [(false, false), (true, true)] {
                let b = Bounds {
                    minimum: lo.map(|v| dec(&v.to_string())),
                    exclusive_minimum: xl && lo.is_some(),
                    maximum: hi.map(|v| dec(&v.to_string())),
                    exclusive_maximum: xh && hi.is_some(),
                };
                let is_mult = |v: i64| {
                    // v / q integer, with q = num/10^s.
                    let (num, s) = match q.split_once('.') {
                        Some((a, f)) => (format!("{a}{f}").parse::<i64>().unwrap(), f.len() as u32),
                        None => (q.parse::<i64>().unwrap(), 0),
                    };
                    (v * 10i64.pow(s)) % num == 0
                };
                let pred = |v: i64| {
                    lo.is_none_or(|l| if b.exclusive_minimum { v > l } else { v >= l })
                        && hi.is_none_or(|h| if b.exclusive_maximum { v < h } else { v <= h })
                        && is_mult(v)
                };
                match integer_regex_exact(&b, Some(&qd)) {
                    Ok(pat) => {
                        let r = re(&pat);
                        for (v, s) in &ints {
                            assert_eq!(r.is_match(s), pred(*v), "q={q} {b:?} {s} {pat}");
                        }
                        // Beyond the tested window, spot-check soundness.
                        for v in [12345678i64, -12345678, 1234567890, 100000, -100000] {
                            if r.is_match(&v.to_string()) {
                                assert!(pred(v), "q={q} {b:?} {v}");
                            }
                        }
                        assert!(!r.is_match("-0"));
                    }
                    Err(NumberError::EmptyRange(_)) => {
                        assert!(!ints.iter().any(|(v, _)| pred(*v)))
                    }
                    Err(NumberError::UnboundedMultipleOf(_)) => {
                        assert!(lo.is_none() || hi.is_none(), "q={q}");
                        assert!(["3", "7", "12", "0.3", "1.5"].contains(&q), "q={q}");
                    }
                    Err(NumberError::TooManyMultiples { .. }) => {
                        assert!(["3", "7", "12", "0.3", "1.5"].contains(&q), "q={q}");
                    }
                    Err(e) => panic!("q={q} {b:?}: {e}"),
                }
            }
        }
    }
}

#[test]
fn number_multiple_of() {
    type Case<'a> = (&'a str, Option<&'a str>, bool, Option<&'a str>, bool);
    let cases: [Case; 12] = [
        ("0.01", None, false, None, false),
        ("0.01", Some("-1.5"), false, Some("2.005"), false),
        ("0.25", Some("-2"), true, Some("2.75"), false),
        ("0.5", None, false, Some("1"), true),
        ("0.5", Some("0"), false, None, false),
        ("0.125", Some("-3"), false, Some("3"), false),
        ("2", Some("-3"), false, Some("3"), false),
        ("0.3", Some("-3"), false, Some("3"), false),
        ("0.7", Some("-2.1"), true, Some("2.8"), false),
        ("1.5", Some("-3"), false, Some("3"), true),
        ("0.002", Some("-0.5"), false, Some("0.5"), false),
        ("0.04", Some("-1"), false, Some("1"), false),
    ];
    for (q, lo, xl, hi, xh) in cases {
        let b = bounds(lo, xl, hi, xh);
        let qs = scaled(q);
        let (l, h) = (lo.map(scaled), hi.map(scaled));
        check_number(&b, Some(q), |v| {
            l.is_none_or(|l| if xl { v > l } else { v >= l })
                && h.is_none_or(|h| if xh { v < h } else { v <= h })
                && v % qs == 0
        });
    }
    // Unbounded non-decimal multipleOf is an error with the documented message.
    let e = number_regex(&Bounds::unbounded(), Some(0.3)).unwrap_err();
    assert_eq!(
        e.to_string().split(" (").next().unwrap(),
        "multipleOf 0.3 with an unbounded range cannot be expressed as a regular expression"
    );
    assert!(matches!(
        number_regex(&bounds(Some("0"), false, Some("1000"), false), Some(0.3)),
        Err(NumberError::TooManyMultiples { .. })
    ));
}

#[test]
fn invalid_inputs_are_errors() {
    for q in [0.0, -1.0, -0.5] {
        assert!(matches!(
            number_regex(&Bounds::unbounded(), Some(q)),
            Err(NumberError::InvalidMultipleOf(_))
        ));
        assert!(matches!(
            integer_regex(&Bounds::unbounded(), Some(q)),
            Err(NumberError::InvalidMultipleOf(_))
        ));
    }
    for q in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(
            number_regex(&Bounds::unbounded(), Some(q)),
            Err(NumberError::NotFinite(_))
        ));
    }
    assert!(Decimal::from_f64(f64::NAN).is_err());
    // Huge and tiny values do not hang and stay sound.
    assert!(integer_regex(&Bounds::unbounded(), Some(1e300)).is_ok());
    assert!(number_regex(&Bounds::unbounded(), Some(1e-300)).is_ok());
    assert!(number_regex(&Bounds::unbounded(), Some(f64::MAX)).is_err());
    assert!(number_regex(&Bounds::unbounded(), Some(3e-300)).is_err());
    assert!(matches!(
        integer_regex(&bounds(Some("1e500"), false, None, false), None),
        Err(NumberError::BoundTooLarge(_))
    ));
}

#[test]
fn huge_bounds() {
    let b = bounds(Some("-1e300"), false, Some("1e300"), true);
    let r = re(&integer_regex(&b, None).unwrap());
    let big = format!("9{}", "9".repeat(299));
    assert!(r.is_match(&big) && r.is_match(&format!("-1{}", "0".repeat(300))));
    assert!(!r.is_match(&format!("1{}", "0".repeat(300))));
    assert!(!r.is_match(&format!("-1{}1", "0".repeat(299))));
    let b = bounds(None, false, Some("1e500"), false);
    let r = re(&number_regex(&b, None).unwrap());
    assert!(r.is_match("12.5") && r.is_match(&format!("-1{}", "0".repeat(600))));
    let b = bounds(Some("1e300"), true, None, false);
    let r = re(&number_regex(&b, None).unwrap());
    assert!(!r.is_match(&format!("1{}", "0".repeat(300))));
    assert!(r.is_match(&format!("1{}.01", "0".repeat(300))));
    assert!(r.is_match(&format!("1{}1", "0".repeat(299))));
    let b = bounds(Some("5e-324"), true, Some("1.7976931348623157e308"), false);
    let r = re(&number_regex(&b, None).unwrap());
    assert!(r.is_match("0.5") && !r.is_match("0") && !r.is_match("-0.1") && !r.is_match("0.0000"));
    // Tiny minimum is rounded inwards: sound but rejects values below 10^-100.
    assert!(!r.is_match(&format!("0.{}1", "0".repeat(150))));
    let f = Decimal::from_f64(f64::MAX).unwrap();
    let b = Bounds {
        maximum: Some(f.clone()),
        minimum: Some(f.negated()),
        ..Bounds::default()
    };
    assert!(re(&number_regex(&b, Some(0.01)).unwrap()).is_match("-12.34"));
    assert!(matches!(
        integer_regex(&b, Some(7.0)),
        Err(NumberError::TooManyMultiples { .. })
    ));
}

#[test]
fn long_bounds_stay_shallow() {
    let long = "1234567890123456789012345678901234567891";
    for (lo, hi) in [
        (format!("-{long}"), long.to_string()),
        (format!("0.{long}"), format!("0.{long}9")),
        (format!("-1.{long}e-30"), format!("{long}e-45")),
        ("1e-99".to_string(), format!("9.{long}")),
    ] {
        for (xl, xh) in [(false, false), (true, true)] {
            let b = bounds(Some(&lo), xl, Some(&hi), xh);
            match number_regex(&b, None) {
                Ok(p) => drop(re(&p)),
                Err(e) => assert!(matches!(e, NumberError::TooPrecise(_)), "{e}"),
            }
            let _ = number_regex(&b, Some(0.25)).map(|p| re(&p));
            let _ = integer_regex(&b, None).map(|p| re(&p));
            let b = bounds(Some(&lo), xl, None, false);
            re(&number_regex(&b, None).unwrap());
            let b = bounds(None, false, Some(&hi), xh);
            re(&number_regex(&b, None).unwrap());
        }
    }
}

/// Pseudo-random bounds with up to 4 fractional digits against literals with up to 5.
#[test]
fn number_random() {
    let mut seed: u64 = 0x9E3779B97F4A7C15;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let lit = |v: i64, fd: usize| {
        // v scaled by 10^5, written with fd fraction digits (must be exact).
        let neg = v < 0;
        let m = v.unsigned_abs();
        let (i, f) = (m / 100_000, m % 100_000);
        let fs = format!("{f:05}");
        let fs = if fd < 5 { &fs[..fd] } else { &fs[..] };
        let mut s = format!("{}{i}", if neg { "-" } else { "" });
        if !fs.is_empty() {
            s.push('.');
            s.push_str(fs);
        }
        s
    };
    for _ in 0..300 {
        let a = next(400_000) as i64 - 200_000;
        let b = a + next(300_000) as i64;
        let a = a / 10i64.pow(next(5) as u32 + 1) * 10i64.pow(0); // vary precision
        let (xl, xh) = (next(2) == 0, next(2) == 0);
        let lo_s = lit(a, 5);
        let hi_s = lit(b, 5);
        let bd = bounds(Some(&lo_s), xl, Some(&hi_s), xh);
        let (l, h) = ((scaled(&lo_s) / 10) as i64, (scaled(&hi_s) / 10) as i64);
        let Ok(pat) = number_regex(&bd, None) else {
            assert!(a > b || (a == b && (xl || xh)));
            continue;
        };
        let r = re(&pat);
        for _ in 0..300 {
            let v = next(600_000) as i64 - 300_000;
            let fd = next(6) as usize;
            let v = v - v % 10i64.pow(5 - fd as u32);
            let s = lit(v, fd);
            if s == "-0" || s.starts_with("-0") && v == 0 {
                continue;
            }
            let ok = (if xl { v > l } else { v >= l }) && (if xh { v < h } else { v <= h });
            assert_eq!(r.is_match(&s), ok, "[{lo_s} {xl}, {hi_s} {xh}] {s}");
        }
    }
}

/// Random strings over the number alphabet: whatever a bounded regex accepts is a JSON
/// number (checked by serde_json), has no exponent, and satisfies the constraints.
#[test]
fn fuzz_soundness() {
    let mut seed: u64 = 0x2545F4914F6CDD1D;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let alphabet = b"0123456789.-eE+0011";
    // (min, exclusive, max, exclusive, multipleOf, integer?)
    type Spec<'a> = (&'a str, bool, &'a str, bool, Option<&'a str>, bool);
    let specs: [Spec; 8] = [
        ("-10.5", false, "99.25", true, None, false),
        ("0", true, "1", false, None, false),
        ("-1", false, "1", false, Some("0.05"), false),
        ("-100", true, "200", false, Some("0.3"), false),
        ("-9999", false, "9999", false, None, true),
        ("-0.5", false, "987", true, Some("4"), true),
        ("0.001", false, "0.2", true, None, false),
        ("-50", false, "50", false, Some("7"), true),
    ];
    let scale = |lit: &str| -> i128 {
        let (neg, body) = lit.strip_prefix('-').map_or((false, lit), |b| (true, b));
        let (i, f) = body.split_once('.').unwrap_or((body, ""));
        let v: i128 = format!("{i}{f:0<8}").parse().unwrap();
        if neg {
            -v
        } else {
            v
        }
    };
    for (lo, xl, hi, xh, q, int) in specs {
        let b = bounds(Some(lo), xl, Some(hi), xh);
        let qd = q.map(dec);
        let pat = if int {
            integer_regex_exact(&b, qd.as_ref())
        } else {
            number_regex_exact(&b, qd.as_ref())
        }
        .unwrap();
        let r = re(&pat);
        let (l, h) = (scale(lo), scale(hi));
        let mut accepted = 0;
        for _ in 0..200_000 {
            let len = 1 + next(8) as usize;
            let s: String = (0..len)
                .map(|_| alphabet[next(alphabet.len() as u64) as usize] as char)
                .collect();
            if !r.is_match(&s) {
                continue;
            }
            accepted += 1;
            assert!(
                serde_json::from_str::<serde_json::Number>(&s).is_ok(),
                "{s} {pat}"
            );
            assert!(!s.contains(['e', 'E', '+']), "{s}");
            assert!(!int || !s.contains('.'), "{s}");
            let v = scale(&s);
            assert!(v != 0 || !s.starts_with('-'), "negative zero {s}");
            assert!(if xl { v > l } else { v >= l }, "{s} {pat}");
            assert!(if xh { v < h } else { v <= h }, "{s} {pat}");
            if let Some(q) = q {
                assert_eq!(v % scale(q), 0, "{s} {pat}");
            }
        }
        assert!(accepted > 10, "{pat}");
    }
}

#[test]
fn tighten() {
    let mut b = Bounds::unbounded();
    b.tighten_minimum(dec("1"), false);
    b.tighten_minimum(dec("1"), true);
    b.tighten_minimum(dec("0"), false);
    assert_eq!(
        (b.minimum.clone(), b.exclusive_minimum),
        (Some(dec("1")), true)
    );
    b.tighten_maximum(dec("5"), true);
    b.tighten_maximum(dec("4"), false);
    assert_eq!(
        (b.maximum.clone(), b.exclusive_maximum),
        (Some(dec("4")), false)
    );
}
