//! Exact decimals: numbers as written in a schema, without binary rounding.
use super::*;
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// An exact decimal number `(-1)^neg · digits · 10^exp`, parsed from a literal as written
/// in a schema (`"0.1"`, `"-5"`, `"1e3"`, `"1.5E-2"`), without any binary rounding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Decimal {
    pub(super) neg: bool,
    /// Decimal digits (values 0..=9), most significant first; no leading or trailing
    /// zeros. Empty for zero.
    pub(super) digits: Vec<u8>,
    pub(super) exp: i64,
}

/// Exponents beyond this magnitude are rejected when parsing (they cannot be meaningful
/// bounds and would risk overflows).
pub(super) const MAX_PARSE_EXP: i64 = 1_000_000_000_000;

impl Decimal {
    /// Zero.
    pub fn zero() -> Self {
        Decimal {
            neg: false,
            digits: Vec::new(),
            exp: 0,
        }
    }

    /// Parses a decimal literal: optional `-` (or `+`), digits with an optional `.` and
    /// fraction, optional exponent `e`/`E` with optional sign. Leading zeros are allowed.
    pub fn parse(s: &str) -> Result<Self, NumberError> {
        let err = || NumberError::InvalidLiteral(s.to_string());
        let b = s.trim().as_bytes();
        let mut i = 0;
        let mut neg = false;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            neg = b[i] == b'-';
            i += 1;
        }
        let mut mant: Vec<u8> = Vec::new();
        let mut frac_len: i64 = 0;
        let mut any = false;
        while i < b.len() && b[i].is_ascii_digit() {
            mant.push(b[i] - b'0');
            any = true;
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                mant.push(b[i] - b'0');
                frac_len += 1;
                any = true;
                i += 1;
            }
        }
        if !any {
            return Err(err());
        }
        let mut e: i64 = 0;
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let mut eneg = false;
            if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
                eneg = b[i] == b'-';
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                e = e
                    .checked_mul(10)
                    .and_then(|e| e.checked_add((b[i] - b'0') as i64))
                    .ok_or_else(err)?;
                if e > MAX_PARSE_EXP {
                    return Err(err());
                }
                i += 1;
            }
            if i == start {
                return Err(err());
            }
            if eneg {
                e = -e;
            }
        }
        if i != b.len() {
            return Err(err());
        }
        let mut exp = e - frac_len;
        let first = mant.iter().position(|&d| d != 0);
        let Some(first) = first else {
            return Ok(Decimal::zero());
        };
        mant.drain(..first);
        while mant.last() == Some(&0) {
            mant.pop();
            exp += 1;
        }
        Ok(Decimal {
            neg,
            digits: mant,
            exp,
        })
    }

    /// Converts a finite `f64` through its shortest round-trip decimal representation
    /// (so `0.1` becomes exactly `0.1`).
    #[allow(dead_code)] // API for callers holding an `f64`
    pub fn from_f64(x: f64) -> Result<Self, NumberError> {
        if !x.is_finite() {
            return Err(NumberError::NotFinite(format!("{x}")));
        }
        Decimal::parse(&format!("{x:e}"))
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Whether the value is strictly negative.
    pub fn is_negative(&self) -> bool {
        self.neg && !self.is_zero()
    }

    pub(super) fn abs(&self) -> Decimal {
        Decimal {
            neg: false,
            ..self.clone()
        }
    }

    pub(super) fn negated(&self) -> Decimal {
        if self.is_zero() {
            return self.clone();
        }
        Decimal {
            neg: !self.neg,
            ..self.clone()
        }
    }

    /// Power of ten of the most significant digit (meaningless for zero).
    pub(super) fn top(&self) -> i64 {
        self.exp + self.digits.len() as i64 - 1
    }

    /// Digit at power `p` (0 outside the significant digits).
    pub(super) fn digit_at(&self, p: i64) -> u8 {
        if self.is_zero() || p < self.exp || p > self.top() {
            return 0;
        }
        self.digits[(self.top() - p) as usize]
    }

    /// Whether some digit at power `<= p` is non-zero.
    pub(super) fn has_nonzero_at_or_below(&self, p: i64) -> bool {
        !self.is_zero() && self.exp <= p
    }

    /// Highest power `<= j` holding a non-zero digit (requires one to exist).
    pub(super) fn nonzero_at_or_below(&self, j: i64) -> i64 {
        let mut p = j.min(self.top());
        while self.digit_at(p) == 0 {
            p -= 1;
        }
        p
    }

    /// Number of digits of the canonical integer part (1 for values below 1).
    pub(super) fn int_len(&self) -> i64 {
        if self.is_zero() || self.top() < 0 {
            1
        } else {
            self.top() + 1
        }
    }

    pub(super) fn cmp_mag(&self, other: &Decimal) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        self.top()
            .cmp(&other.top())
            .then_with(|| self.digits.cmp(&other.digits))
    }

    pub(super) fn pow10(p: i64) -> Decimal {
        Decimal {
            neg: false,
            digits: vec![1],
            exp: p,
        }
    }

    /// Rounds the magnitude to a multiple of `10^p`: away from zero if `away`, else
    /// towards zero. Keeps the sign (a result of zero is non-negative).
    pub(super) fn round_mag(&self, p: i64, away: bool) -> Decimal {
        if self.is_zero() || self.exp >= p {
            return self.clone();
        }
        // Digits at powers >= p.
        let keep = self.top() - p + 1; // may be <= 0
        let mut digits: Vec<u8> = if keep > 0 {
            self.digits[..keep as usize].to_vec()
        } else {
            Vec::new()
        };
        // Something non-zero is truncated (`exp < p` and the last digit is non-zero).
        if away {
            // Add one unit at power p.
            let mut i = digits.len();
            loop {
                if i == 0 {
                    digits.insert(0, 1);
                    break;
                }
                i -= 1;
                if digits[i] == 9 {
                    digits[i] = 0;
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
        let mut exp = p;
        let first = digits.iter().position(|&d| d != 0);
        let Some(first) = first else {
            return Decimal::zero();
        };
        digits.drain(..first);
        while digits.last() == Some(&0) {
            digits.pop();
            exp += 1;
        }
        Decimal {
            neg: self.neg,
            digits,
            exp,
        }
    }

    /// Rounds to a multiple of `10^p` towards +∞ (`up`) or −∞.
    pub(super) fn round_dir(&self, p: i64, up: bool) -> Decimal {
        self.round_mag(p, up != self.is_negative())
    }

    /// The value times `10^s` as an `i128`, if it is an integer that fits.
    pub(super) fn scaled_i128(&self, s: i64) -> Option<i128> {
        if self.is_zero() {
            return Some(0);
        }
        let exp = self.exp.checked_add(s)?;
        if exp < 0 || self.top() + s > 37 {
            return None;
        }
        let mut v: i128 = 0;
        for &d in &self.digits {
            v = v * 10 + d as i128;
        }
        for _ in 0..exp {
            v *= 10;
        }
        Some(if self.neg { -v } else { v })
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.is_negative(), other.is_negative()) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_mag(other),
            (true, true) => other.cmp_mag(self),
        }
    }
}

impl FromStr for Decimal {
    type Err = NumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::parse(s)
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        if self.neg {
            f.write_str("-")?;
        }
        let ds: String = self.digits.iter().map(|d| (b'0' + d) as char).collect();
        let top = self.top();
        if self.exp >= 0 && top < 21 {
            write!(f, "{ds}{}", "0".repeat(self.exp as usize))
        } else if self.exp < 0 && (-7..21).contains(&top) {
            if top >= 0 {
                let (i, fr) = ds.split_at((top + 1) as usize);
                write!(f, "{i}.{fr}")
            } else {
                write!(f, "0.{}{ds}", "0".repeat((-top - 1) as usize))
            }
        } else {
            let (h, t) = ds.split_at(1);
            if t.is_empty() {
                write!(f, "{h}e{top}")
            } else {
                write!(f, "{h}.{t}e{top}")
            }
        }
    }
}
