//! Exact regular expressions for JSON number literals constrained by
//! `minimum` / `maximum` / `exclusiveMinimum` / `exclusiveMaximum` / `multipleOf`.
//!
//! Every function returns an unanchored fragment in the `regex-syntax` 0.8 dialect, wrapped
//! in `(?:…)` so that it can be embedded anywhere. The fragments only ever match ASCII
//! digits, `-`, `.`, and (for the unbounded number grammar) `e`, `E`, `+`.
//!
//! Soundness contract: a returned regex never matches a literal whose value violates the
//! constraints. It may reject some valid *spellings* (documented per function):
//!
//! * Negative zero is never produced: `-0`, `-0.0`, `-0e1`, … are always rejected (the value
//!   `0` is still accepted as `0`, `0.0`, …). This holds for integers and numbers alike.
//! * Integers are only accepted in the canonical form `-?(0|[1-9][0-9]*)`; `1.0` or `1e2`
//!   are rejected by [`integer_regex`].
//! * Bounded numbers (any bound or any `multipleOf`) are only accepted without an exponent:
//!   `-?(0|[1-9][0-9]*)(\.[0-9]+)?`. Trailing fractional zeros are accepted (`0.50`).
//! * Bounds are exact, with these documented narrowings (always towards the inside of the
//!   range, hence sound): an upper magnitude of `10^400` or more is replaced by "at most
//!   400 integer digits" (a lower one is an error); bounds are rounded inwards to at most [`MAX_SIGNIFICANT_DIGITS`]
//!   significant digits (only [`HUGE_BOUND_SIGNIFICANT_DIGITS`] for magnitudes of `10^20`
//!   and more, so `maximum: 1.7976931348623157e308` acts as `1.7e308`), and bounds of
//!   numbers to at most [`MAX_FRACTION_DIGITS`] fractional digits; a `multipleOf` finer
//!   than `10^-MAX_FRACTION_DIGITS` is replaced by a coarser multiple of itself. These keep
//!   the nesting depth of the regexes below 100 and their DFAs small.

mod bounds;
mod decimal;
mod digits;
mod multiples;

pub use bounds::Bounds;
pub use decimal::Decimal;

use bounds::*;
use digits::*;
use multiples::*;

use std::cmp::Ordering;

/// Bounds of magnitude `10^MAX_INTEGER_DIGITS` or more are clamped (upper magnitude: to
/// fewer than `10^400`) or rejected (lower magnitude).
pub const MAX_INTEGER_DIGITS: i64 = 400;
/// Bounds of numbers are rounded inwards to this many fractional digits.
pub const MAX_FRACTION_DIGITS: i64 = 100;
/// Bounds are rounded inwards to this many significant digits.
pub const MAX_SIGNIFICANT_DIGITS: i64 = 20;
/// Bounds with an integer part of more than this many digits (magnitude `>= 10^20`, beyond
/// every 64-bit integer) are rounded inwards to [`HUGE_BOUND_SIGNIFICANT_DIGITS`]
/// significant digits: the DFA of a bound with `s` significant digits and `n` integer
/// digits has about `s·n` states before minimisation (±`f64::MAX` exactly: 11k states).
pub const HUGE_BOUND_DIGITS: i64 = 20;
/// See [`HUGE_BOUND_DIGITS`].
pub const HUGE_BOUND_SIGNIFICANT_DIGITS: i64 = 2;
/// At most this many values are enumerated for a `multipleOf` that has no digit-wise
/// characterisation (e.g. `3`, `0.3`, `7`).
pub const MAX_ENUMERATED_MULTIPLES: u128 = 1000;
/// A `multipleOf` of the form `m·10^e` with `m | 10^k` is expressed digit-wise when
/// `10^k / m` (the number of admissible blocks of `k` trailing digits) is at most this.
const MAX_DIGIT_BLOCKS: u64 = 1000;

/// Why no regular expression could be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// A bound or `multipleOf` string is not a decimal number literal.
    #[error("invalid number literal {0:?}")]
    InvalidLiteral(String),
    /// A bound or `multipleOf` given as `f64` is NaN or infinite.
    #[error("{0} is not a finite number")]
    #[allow(dead_code)] // only from `Decimal::from_f64`
    NotFinite(String),
    /// No value satisfies the bounds (and `multipleOf`).
    #[error("no value satisfies the constraints {0}")]
    EmptyRange(String),
    /// `multipleOf` is zero or negative.
    #[error("multipleOf must be strictly positive, got {0}")]
    InvalidMultipleOf(String),
    /// `multipleOf` without a digit-wise characterisation, on a range that is not bounded
    /// on both sides.
    #[error(
        "multipleOf {0} with an unbounded range cannot be expressed as a regular expression \
         (only multiples of m·10^e where m divides a power of ten are, e.g. 0.01, 0.25, 2, 5, 100)"
    )]
    UnboundedMultipleOf(String),
    /// `multipleOf` without a digit-wise characterisation on a range with too many multiples.
    #[error(
        "multipleOf {multiple_of} within {range} admits {count} values, more than the \
         {limit} that can be enumerated in a regular expression"
    )]
    TooManyMultiples {
        multiple_of: String,
        range: String,
        count: String,
        limit: u128,
    },
    /// A lower bound (or an upper bound of negative values) is too large in magnitude.
    #[error("bound {0} is too large: only magnitudes below 10^400 are supported")]
    BoundTooLarge(String),
    /// The range is non-empty only at a precision beyond [`MAX_SIGNIFICANT_DIGITS`]
    /// significant or [`MAX_FRACTION_DIGITS`] fractional digits.
    #[error(
        "the range {0} is too narrow: its bounds differ only beyond the supported precision \
         (20 significant digits, 2 from 10^20 on, 100 fractional digits)"
    )]
    TooPrecise(String),
    /// `multipleOf` is too large to be handled.
    #[error("multipleOf {0} is too large: only values below 10^400 are supported")]
    MultipleOfTooLarge(String),
}

// ----- public entry points -----------------------------------------------------------

/// Regex of JSON integers within `bounds` that are multiples of `multiple_of`.
///
/// Accepts only the canonical integer spelling `-?(0|[1-9][0-9]*)` (never `-0`, `1.0` or
/// `1e2`). Bounds may be fractional (`minimum 0.5` means `>= 1`). `multipleOf` is exact:
/// digit-wise for `m·10^e` with `m` dividing a power of ten (2, 5, 10, 25, 0.5, …),
/// otherwise by enumerating at most [`MAX_ENUMERATED_MULTIPLES`] values of a range bounded
/// on both sides. Returns [`NumberError::EmptyRange`] when no integer qualifies.
#[allow(dead_code)] // API for callers holding an `f64`
pub fn integer_regex(bounds: &Bounds, multiple_of: Option<f64>) -> Result<String, NumberError> {
    let m = multiple_of.map(Decimal::from_f64).transpose()?;
    integer_regex_exact(bounds, m.as_ref())
}

/// [`integer_regex`] with an exact decimal `multipleOf`.
pub fn integer_regex_exact(
    bounds: &Bounds,
    multiple_of: Option<&Decimal>,
) -> Result<String, NumberError> {
    compile(bounds, multiple_of, false)
}

/// Regex of JSON numbers within `bounds` that are multiples of `multiple_of`.
///
/// Without bounds and `multipleOf`: the full JSON number grammar
/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` minus negative zero spellings.
/// Otherwise: exactly the exponent-free literals `-?(0|[1-9][0-9]*)(\.[0-9]+)?` (trailing
/// fractional zeros allowed, negative zero excluded) whose value satisfies the bounds and
/// `multipleOf` (see the module documentation for the inward rounding of extreme bounds).
/// `multipleOf` is digit-wise for `m·10^e` with `m` dividing a power of ten (0.01, 0.25,
/// 0.5, 2, 100, …); other values are enumerated (at most [`MAX_ENUMERATED_MULTIPLES`]) when
/// the range is bounded on both sides, and an error otherwise.
#[allow(dead_code)] // API for callers holding an `f64`
pub fn number_regex(bounds: &Bounds, multiple_of: Option<f64>) -> Result<String, NumberError> {
    let m = multiple_of.map(Decimal::from_f64).transpose()?;
    number_regex_exact(bounds, m.as_ref())
}

/// [`number_regex`] with an exact decimal `multipleOf`.
pub fn number_regex_exact(
    bounds: &Bounds,
    multiple_of: Option<&Decimal>,
) -> Result<String, NumberError> {
    compile(bounds, multiple_of, true)
}

/// The unbounded JSON number grammar without negative zero.
const FULL_NUMBER: &str = "(?:(?:(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?|-(?:[1-9][0-9]*(?:\\.[0-9]+)?|0\\.[0-9]*[1-9][0-9]*))(?:[eE][+-]?[0-9]+)?)";
/// All canonical integers without negative zero.
const FULL_INTEGER: &str = "(?:0|-?[1-9][0-9]*)";

/// How `multipleOf` is realised.
enum MultPlan {
    /// No constraint.
    None,
    /// Value = `N·10^e` with `N` an integer whose last `k` digits are divisible by `m`
    /// (`m | 10^k`).
    Digits { m: u64, e: i64, k: i64 },
    /// Values `K·10^-s` with `K` a multiple of `p`.
    Enumerate { p: u128, s: i64 },
}

/// Splits a positive decimal into `(mantissa as u128, exp)` if the mantissa fits.
fn mantissa(q: &Decimal) -> Option<(u128, i64)> {
    if q.digits.len() > 38 {
        return None;
    }
    let mut v: u128 = 0;
    for &d in &q.digits {
        v = v * 10 + d as u128;
    }
    Some((v, q.exp))
}

/// Whether `big` is an integral multiple of `small` (both positive), exactly; `None` when
/// their digits are too many to tell.
pub(crate) fn is_multiple(big: &Decimal, small: &Decimal) -> Option<bool> {
    let (mb, eb) = mantissa(big)?;
    let (ms, es) = mantissa(small)?;
    if ms == 0 {
        return None;
    }
    // big / small = (mb / ms) · 10^(eb - es)
    let e = eb - es;
    let pow = |n: i64| 10u128.checked_pow(u32::try_from(n).ok()?);
    if e >= 0 {
        Some(mb.checked_mul(pow(e)?)? % ms == 0)
    } else {
        Some(mb % ms.checked_mul(pow(-e)?)? == 0)
    }
}

/// For `d` = 2^a·5^b returns `(a, b)`, else `None`.
fn two_five(mut d: u128) -> Option<(u32, u32)> {
    let (mut a, mut b) = (0, 0);
    while d % 2 == 0 {
        d /= 2;
        a += 1;
    }
    while d % 5 == 0 {
        d /= 5;
        b += 1;
    }
    (d == 1).then_some((a, b))
}

fn plan_multiple(q: &Decimal, integer: bool) -> Result<MultPlan, NumberError> {
    let qs = q.to_string();
    if q.is_zero() || q.is_negative() {
        return Err(NumberError::InvalidMultipleOf(qs));
    }
    if q.top() >= MAX_INTEGER_DIGITS {
        return Err(NumberError::MultipleOfTooLarge(qs));
    }
    let Some((d, exp)) = mantissa(q) else {
        // More than 38 significant digits: an exotic value; only enumeration could work
        // and that needs a representable mantissa.
        return Err(NumberError::UnboundedMultipleOf(qs));
    };
    if integer {
        if exp >= 0 {
            // d has no factor ten: multiples of d·10^exp.
            if let Some(plan) = digit_plan(d, exp) {
                return Ok(plan);
            }
            let mut v = d;
            for _ in 0..exp {
                v = v
                    .checked_mul(10)
                    .ok_or_else(|| NumberError::MultipleOfTooLarge(qs.clone()))?;
            }
            return Ok(MultPlan::Enumerate { p: v, s: 0 });
        }
        // Integers that are multiples of d·10^exp (exp < 0) are the multiples of
        // M = d / gcd(d, 10^-exp).
        let mut m_int = d;
        for _ in 0..(-exp).min(200) {
            if m_int % 2 != 0 {
                break;
            }
            m_int /= 2;
        }
        for _ in 0..(-exp).min(200) {
            if m_int % 5 != 0 {
                break;
            }
            m_int /= 5;
        }
        if m_int == 1 {
            return Ok(MultPlan::None);
        }
        if let Some(plan) = digit_plan(m_int, 0) {
            return Ok(plan);
        }
        Ok(MultPlan::Enumerate { p: m_int, s: 0 })
    } else {
        if let Some(plan) = digit_plan(d, exp) {
            if let MultPlan::Digits { e, .. } = plan {
                if e < -MAX_FRACTION_DIGITS {
                    // Multiples of d·10^-MAX_FRACTION_DIGITS are multiples of q.
                    return Ok(digit_plan(d, -MAX_FRACTION_DIGITS).unwrap_or(plan));
                }
            }
            return Ok(plan);
        }
        if exp >= 0 {
            let mut v = d;
            for _ in 0..exp {
                v = v
                    .checked_mul(10)
                    .ok_or_else(|| NumberError::MultipleOfTooLarge(qs.clone()))?;
            }
            Ok(MultPlan::Enumerate { p: v, s: 0 })
        } else {
            Ok(MultPlan::Enumerate { p: d, s: -exp })
        }
    }
}

/// Digit-wise plan for multiples of `d·10^e` (`d` without factor ten), if `d` = 2^a·5^b
/// and the number of admissible trailing blocks is small.
fn digit_plan(d: u128, e: i64) -> Option<MultPlan> {
    let (a, b) = two_five(d)?;
    let k = a.max(b) as i64;
    if k > 18 {
        return None;
    }
    let m = d as u64;
    let blocks = 10u64.pow(k as u32) / m;
    if blocks > MAX_DIGIT_BLOCKS {
        return None;
    }
    if e + k > MAX_INTEGER_DIGITS {
        return None;
    }
    Some(MultPlan::Digits { m, e, k })
}

fn compile(
    bounds: &Bounds,
    multiple_of: Option<&Decimal>,
    number: bool,
) -> Result<String, NumberError> {
    let plan = match multiple_of {
        None => MultPlan::None,
        Some(q) => plan_multiple(q, !number)?,
    };
    let describe = bounds.describe();
    let empty = || NumberError::EmptyRange(describe.clone());

    // Sanity of the raw bounds.
    if let (Some(lo), Some(hi)) = (&bounds.minimum, &bounds.maximum) {
        match lo.cmp(hi) {
            Ordering::Greater => return Err(empty()),
            Ordering::Equal if bounds.exclusive_minimum || bounds.exclusive_maximum => {
                return Err(empty())
            }
            _ => {}
        }
    }

    if bounds.is_unbounded() {
        match plan {
            MultPlan::None => {
                return Ok(if number { FULL_NUMBER } else { FULL_INTEGER }.to_string())
            }
            MultPlan::Enumerate { .. } => {
                return Err(NumberError::UnboundedMultipleOf(
                    multiple_of.map(|q| q.to_string()).unwrap_or_default(),
                ))
            }
            MultPlan::Digits { .. } => {}
        }
    }

    // Normalise the bounds (inclusive flag = true means inclusive).
    let mut lo: Bound = bounds
        .minimum
        .clone()
        .map(|d| (d, !bounds.exclusive_minimum));
    let mut hi: Bound = bounds
        .maximum
        .clone()
        .map(|d| (d, !bounds.exclusive_maximum));
    // Magnitude clamps.
    if let Some((d, _)) = &lo {
        if !d.is_zero() && d.top() >= MAX_INTEGER_DIGITS {
            if d.is_negative() {
                lo = Some((Decimal::pow10(MAX_INTEGER_DIGITS).negated(), false));
            } else {
                return Err(NumberError::BoundTooLarge(d.to_string()));
            }
        }
    }
    if let Some((d, _)) = &hi {
        if !d.is_zero() && d.top() >= MAX_INTEGER_DIGITS {
            if d.is_negative() {
                return Err(NumberError::BoundTooLarge(d.to_string()));
            } else {
                hi = Some((Decimal::pow10(MAX_INTEGER_DIGITS), false));
            }
        }
    }
    // Inward rounding: to integers for integers, to the precision limits for numbers.
    // (For integers, rounding to integers is exact, so emptiness found then is genuine.)
    let round_int = |b: Bound, up: bool| -> Bound {
        b.map(|(d, incl)| {
            let r = d.round_dir(0, up);
            if r == d {
                (d, incl)
            } else {
                (r, true)
            }
        })
    };
    if !number {
        lo = round_int(lo, true);
        hi = round_int(hi, false);
        if let (Some((l, li)), Some((h, hi_incl))) = (&lo, &hi) {
            match l.cmp(h) {
                Ordering::Greater => return Err(empty()),
                Ordering::Equal if !(*li && *hi_incl) => return Err(empty()),
                _ => {}
            }
        }
    }
    let round = |b: Bound, up: bool| -> Bound {
        b.map(|(d, incl)| {
            let sig = if d.is_zero() {
                i64::MIN
            } else if d.top() >= HUGE_BOUND_DIGITS {
                d.top() - HUGE_BOUND_SIGNIFICANT_DIGITS + 1
            } else {
                d.top() - MAX_SIGNIFICANT_DIGITS + 1
            };
            let p = sig.max(if number { -MAX_FRACTION_DIGITS } else { 0 });
            let r = d.round_dir(p, up);
            if r == d {
                (d, incl)
            } else {
                (r, true)
            }
        })
    };
    lo = round(lo, true);
    hi = round(hi, false);
    if let (Some((l, li)), Some((h, hi_incl))) = (&lo, &hi) {
        let too_precise = || NumberError::TooPrecise(describe.clone());
        match l.cmp(h) {
            Ordering::Greater => return Err(too_precise()),
            Ordering::Equal if !(*li && *hi_incl) => return Err(too_precise()),
            _ => {}
        }
    }

    if let MultPlan::Enumerate { p, s } = plan {
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Err(NumberError::UnboundedMultipleOf(
                multiple_of.map(|q| q.to_string()).unwrap_or_default(),
            ));
        };
        return enumerate(
            &lo,
            &hi,
            p,
            s,
            number,
            multiple_of.map(|q| q.to_string()).unwrap_or_default(),
            &describe,
        );
    }
    let mult = match plan {
        MultPlan::Digits { m, e, k } => Some((m, e, k)),
        _ => None,
    };

    let mut parts: Vec<String> = Vec::new();
    // Non-negative values.
    let nonneg = match &hi {
        None => true,
        Some((h, incl)) => !h.is_negative() && (!h.is_zero() || *incl),
    };
    if nonneg {
        let (mlo, mlo_incl) = match &lo {
            Some((l, incl)) if !l.is_negative() => (l.clone(), *incl),
            _ => (Decimal::zero(), true),
        };
        let mhi = hi.as_ref().map(|(h, incl)| (h.clone(), *incl));
        let mut g = Gen::new(
            &mlo,
            mlo_incl,
            mhi.as_ref().map(|(h, i)| (h, *i)),
            number,
            mult,
        );
        if let Some(r) = g.unsigned() {
            parts.push(r);
        }
    }
    // Negative values, as magnitudes (never zero).
    let negative = match &lo {
        None => true,
        Some((l, _)) => l.is_negative(),
    };
    if negative {
        let (mlo, mlo_incl) = match &hi {
            Some((h, incl)) if h.is_negative() => (h.abs(), *incl),
            _ => (Decimal::zero(), false),
        };
        let mhi = lo.as_ref().map(|(l, incl)| (l.abs(), *incl));
        let mut g = Gen::new(
            &mlo,
            mlo_incl,
            mhi.as_ref().map(|(h, i)| (h, *i)),
            number,
            mult,
        );
        if let Some(r) = g.unsigned() {
            parts.push(format!("-{r}"));
        }
    }
    if parts.is_empty() {
        return Err(empty());
    }
    Ok(format!("(?:{})", parts.join("|")))
}

#[cfg(test)]
mod tests;
