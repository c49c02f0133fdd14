//! The digit-wise generator: the regex of unsigned literals within a range, position
//! by position.
use super::*;
use std::cmp::Ordering;
use std::collections::HashMap;

/// State of the comparison with the lower bound.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) enum Lo {
    /// The digits so far equal the bound's.
    Tight,
    /// The digits so far equal the (exclusive) bound, whose remaining digits are all zero:
    /// some non-zero digit must follow.
    Nz,
    /// Already greater.
    Done,
}

/// State of the comparison with the upper bound.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) enum Hi {
    Tight,
    /// Equal to the (inclusive) bound whose remaining digits are zero: only zeros follow.
    Zeros,
    /// Already smaller.
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(super) struct St {
    pub(super) lo: Lo,
    pub(super) hi: Hi,
    /// Residue modulo `m` of the `multipleOf` block digits read so far.
    pub(super) r: u64,
}

pub(super) const FREE: St = St {
    lo: Lo::Done,
    hi: Hi::Done,
    r: 0,
};

/// Suffix language: whether the empty suffix is accepted, and a regex of the non-empty
/// suffixes (if any).
#[derive(Clone)]
pub(super) struct Lang {
    pub(super) eps: bool,
    pub(super) ne: Option<String>,
}

impl Lang {
    const DEAD: Lang = Lang {
        eps: false,
        ne: None,
    };
    pub(super) fn is_dead(&self) -> bool {
        !self.eps && self.ne.is_none()
    }
    pub(super) fn regex(&self) -> String {
        match (&self.ne, self.eps) {
            (Some(ne), true) if ne == "[0-9]+" => "[0-9]*".into(),
            (Some(ne), true) if ne == "0+" => "0*".into(),
            (Some(ne), true) if is_atom(ne) => format!("{ne}?"),
            (Some(ne), true) => format!("(?:{ne})?"),
            (Some(ne), false) => ne.clone(),
            (None, _) => String::new(),
        }
    }
}

/// Generates the regex of unsigned literals (no sign) with magnitude in
/// `[lo, hi]` (inclusiveness per flag; `hi` may be absent), digit by digit. Positions are
/// identified by their power of ten (`j`), which is independent of the literal's length.
pub(super) struct Gen<'a> {
    pub(super) lo: &'a Decimal,
    pub(super) lo_incl: bool,
    pub(super) hi: Option<(&'a Decimal, bool)>,
    pub(super) frac: bool,
    pub(super) mult: Option<(u64, i64, i64)>,
    /// Powers `>= t` are unconstrained by `multipleOf`.
    pub(super) t: i64,
    pub(super) memo_int: HashMap<(i64, St, bool), Option<String>>,
    pub(super) memo_frac: HashMap<(i64, St), Lang>,
}

pub(super) fn rep(class: &str, n: i64) -> String {
    match n {
        i64::MIN..=0 => String::new(),
        1 => class.to_string(),
        _ => format!("{class}{{{n}}}"),
    }
}

/// Whether `s` is a single group `(?:…)`, a single bracket class or a single digit, so
/// that a quantifier can be appended directly (keeps the nesting depth low).
pub(super) fn is_atom(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() == 1 && b[0].is_ascii_digit() {
        return true;
    }
    if b.first() == Some(&b'[') {
        return s.find(']') == Some(s.len() - 1);
    }
    if !s.starts_with("(?:") {
        return false;
    }
    // Generated text never contains parentheses inside classes or escaped parentheses.
    let mut depth = 0i32;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return i == b.len() - 1;
                }
            }
            _ => {}
        }
    }
    false
}

/// `class{a,b}` (concatenation-safe; empty for `b <= 0`).
pub(super) fn rep_range(class: &str, a: i64, b: i64) -> String {
    if b <= 0 {
        String::new()
    } else if a == b {
        rep(class, a)
    } else if a == 0 && b == 1 {
        format!("{class}?")
    } else {
        format!("{class}{{{a},{b}}}")
    }
}

/// Concatenation-safe alternation.
pub(super) fn alt(parts: Vec<String>) -> Option<String> {
    match parts.len() {
        0 => None,
        1 => parts.into_iter().next(),
        _ => Some(format!("(?:{})", parts.join("|"))),
    }
}

/// Character class for a set of ASCII digits.
pub(super) fn digit_class(ds: &[u8]) -> String {
    if ds.len() == 1 {
        return ((b'0' + ds[0]) as char).to_string();
    }
    let mut s = String::from("[");
    let mut i = 0;
    while i < ds.len() {
        let mut j = i;
        while j + 1 < ds.len() && ds[j + 1] == ds[j] + 1 {
            j += 1;
        }
        s.push((b'0' + ds[i]) as char);
        if j > i {
            if j > i + 1 {
                s.push('-');
            }
            s.push((b'0' + ds[j]) as char);
        }
        i = j + 1;
    }
    s.push(']');
    s
}

/// Groups `(digit, continuation)` pairs with equal continuations into classes.
pub(super) fn group(items: Vec<(u8, String)>) -> Option<String> {
    let mut by: Vec<(String, Vec<u8>)> = Vec::new();
    for (d, c) in items {
        match by.iter_mut().find(|(k, _)| *k == c) {
            Some((_, ds)) => ds.push(d),
            None => by.push((c, vec![d])),
        }
    }
    alt(by
        .into_iter()
        .map(|(c, ds)| format!("{}{c}", digit_class(&ds)))
        .collect())
}

impl<'a> Gen<'a> {
    pub(super) fn new(
        lo: &'a Decimal,
        lo_incl: bool,
        hi: Option<(&'a Decimal, bool)>,
        frac: bool,
        mult: Option<(u64, i64, i64)>,
    ) -> Self {
        let t = mult.map_or(0, |(_, e, k)| (e + k).max(0));
        Gen {
            lo,
            lo_incl,
            hi,
            frac,
            mult,
            t,
            memo_int: HashMap::new(),
            memo_frac: HashMap::new(),
        }
    }

    /// Applies the "remaining bound digits are all zero" transitions before reading the
    /// digit at power `j`. `None` if nothing can follow.
    pub(super) fn normalize(&self, mut st: St, j: i64) -> Option<St> {
        if st.lo == Lo::Tight && !self.lo.has_nonzero_at_or_below(j) {
            st.lo = if self.lo_incl { Lo::Done } else { Lo::Nz };
        }
        if st.hi == Hi::Tight {
            let (h, incl) = self.hi.expect("tight upper bound");
            if !h.has_nonzero_at_or_below(j) {
                if incl {
                    st.hi = Hi::Zeros;
                } else {
                    return None;
                }
            }
        }
        if st.lo == Lo::Nz && st.hi == Hi::Zeros {
            return None;
        }
        Some(st)
    }

    /// Transition on digit `d` at power `j`.
    pub(super) fn step(&self, st: St, j: i64, d: u8) -> Option<St> {
        let lo = match st.lo {
            Lo::Tight => match d.cmp(&self.lo.digit_at(j)) {
                Ordering::Less => return None,
                Ordering::Equal => Lo::Tight,
                Ordering::Greater => Lo::Done,
            },
            Lo::Nz => {
                if d > 0 {
                    Lo::Done
                } else {
                    Lo::Nz
                }
            }
            Lo::Done => Lo::Done,
        };
        let hi = match st.hi {
            Hi::Tight => match d.cmp(&self.hi.expect("tight upper bound").0.digit_at(j)) {
                Ordering::Greater => return None,
                Ordering::Equal => Hi::Tight,
                Ordering::Less => Hi::Done,
            },
            Hi::Zeros => {
                if d == 0 {
                    Hi::Zeros
                } else {
                    return None;
                }
            }
            Hi::Done => Hi::Done,
        };
        let r = match self.mult {
            None => 0,
            Some((m, e, k)) => {
                if j >= e + k {
                    0
                } else if j >= e {
                    let r = (st.r * 10 + d as u64) % m;
                    if j == e && r != 0 {
                        return None;
                    }
                    r
                } else if d == 0 {
                    0
                } else {
                    return None;
                }
            }
        };
        Some(St { lo, hi, r })
    }

    /// Whether all-zero digits at powers `<= j` are acceptable (`st` normalised at `j`).
    pub(super) fn accept_zeros(&self, st: St, j: i64) -> bool {
        if st.lo != Lo::Done {
            return false;
        }
        match self.mult {
            None => true,
            Some((m, e, k)) => {
                if j >= e + k || j < e {
                    st.r == 0
                } else {
                    let mut r = st.r;
                    for _ in e..=j {
                        r = (r * 10) % m;
                    }
                    r == 0
                }
            }
        }
    }

    /// Regex of the part after the integer digits (state after power 0).
    pub(super) fn after_int(&mut self, st: St) -> Option<String> {
        if !self.frac {
            let st = self.normalize(st, -1)?;
            return self.accept_zeros(st, -1).then(String::new);
        }
        let l = self.gen_frac(-1, st);
        match (l.eps, l.ne) {
            (true, Some(ne)) => Some(format!("(?:\\.{ne})?")),
            (true, None) => Some(String::new()),
            (false, Some(ne)) => Some(format!("\\.{ne}")),
            (false, None) => None,
        }
    }

    /// Suffix language of fraction digits from power `j < 0` on.
    pub(super) fn gen_frac(&mut self, j: i64, st: St) -> Lang {
        let Some(st) = self.normalize(st, j) else {
            return Lang::DEAD;
        };
        if let Some(l) = self.memo_frac.get(&(j, st)) {
            return l.clone();
        }
        let stationary =
            st.lo != Lo::Tight && st.hi != Hi::Tight && self.mult.is_none_or(|(_, e, _)| j < e);
        let zero_run_lo = st.lo == Lo::Tight && st.hi == Hi::Done && self.lo.digit_at(j) == 0;
        let zero_run_hi = st.lo == Lo::Done
            && st.hi == Hi::Tight
            && self.hi.is_some_and(|(h, _)| h.digit_at(j) == 0);
        let l = if stationary {
            let zeros_only = self.mult.is_some() || st.hi == Hi::Zeros;
            match (st.lo, zeros_only) {
                (Lo::Done, true) => Lang {
                    eps: true,
                    ne: Some("0+".into()),
                },
                (Lo::Done, false) => Lang {
                    eps: true,
                    ne: Some("[0-9]+".into()),
                },
                (Lo::Nz, true) => Lang::DEAD,
                (Lo::Nz, false) => Lang {
                    eps: false,
                    ne: Some("0*[1-9][0-9]*".into()),
                },
                (Lo::Tight, _) => unreachable!(),
            }
        } else if self.mult.is_none() && zero_run_lo {
            // A run of `c` zero digits in the lower bound: a non-zero digit within the run
            // makes the literal greater; all zeros keep it tight (flat, to limit nesting).
            let c = j - self.lo.nonzero_at_or_below(j);
            let mut parts = vec![format!("{}[1-9][0-9]*", rep_range("0", 0, c - 1))];
            if let Some(ne) = self.gen_frac(j - c, st).ne {
                parts.push(format!("{}{ne}", rep("0", c)));
            }
            Lang {
                eps: false,
                ne: alt(parts),
            }
        } else if self.mult.is_none() && zero_run_hi {
            // A run of `c` zero digits in the upper bound: only zeros, and the literal may
            // end anywhere in the run.
            let c = j - self.hi.expect("tight upper bound").0.nonzero_at_or_below(j);
            let mut parts = vec![rep_range("0", 1, c)];
            if let Some(ne) = self.gen_frac(j - c, st).ne {
                parts.push(format!("{}{ne}", rep("0", c)));
            }
            Lang {
                eps: true,
                ne: alt(parts),
            }
        } else if let (Some((_, e, k)), Lo::Done, Hi::Done) = (self.mult, st.lo, st.hi) {
            if j >= e + k {
                // Unconstrained digits down to the multipleOf block (flat).
                let c = j - (e + k) + 1;
                let mut parts = vec![rep_range("[0-9]", 1, c)];
                if let Some(ne) = self.gen_frac(e + k - 1, FREE).ne {
                    parts.push(format!("{}{ne}", rep("[0-9]", c)));
                }
                Lang {
                    eps: true,
                    ne: alt(parts),
                }
            } else {
                self.gen_frac_digits(j, st)
            }
        } else {
            self.gen_frac_digits(j, st)
        };
        self.memo_frac.insert((j, st), l.clone());
        l
    }

    /// Digit-by-digit expansion of [`Gen::gen_frac`].
    pub(super) fn gen_frac_digits(&mut self, j: i64, st: St) -> Lang {
        {
            let eps = self.accept_zeros(st, j);
            let mut items = Vec::new();
            for d in 0..=9u8 {
                let Some(ns) = self.step(st, j, d) else {
                    continue;
                };
                let next = self.gen_frac(j - 1, ns);
                if next.is_dead() {
                    continue;
                }
                items.push((d, next.regex()));
            }
            Lang {
                eps,
                ne: group(items),
            }
        }
    }

    /// Continuation after the digit at power `j` (in state `st`).
    pub(super) fn after_digit(&mut self, j: i64, st: St) -> Option<String> {
        if j == 0 {
            self.after_int(st)
        } else {
            self.gen_int(j - 1, st, false)
        }
    }

    /// Regex of the integer digits at powers `j..=0` followed by the fraction. `first`:
    /// the digit at `j` is the literal's first one (non-zero unless `j == 0`).
    pub(super) fn gen_int(&mut self, j: i64, st: St, first: bool) -> Option<String> {
        let st = self.normalize(st, j)?;
        if let Some(r) = self.memo_int.get(&(j, st, first)) {
            return r.clone();
        }
        let r = self.gen_int_uncached(j, st, first);
        self.memo_int.insert((j, st, first), r.clone());
        r
    }

    pub(super) fn zeros_tail(&self) -> &'static str {
        if self.frac {
            "(?:\\.0+)?"
        } else {
            ""
        }
    }

    pub(super) fn gen_int_uncached(&mut self, j: i64, st: St, first: bool) -> Option<String> {
        let nonzero_first = first && j > 0;
        // Below the multipleOf block: only zeros.
        if let Some((_, e, _)) = self.mult {
            if j < e {
                if st.lo != Lo::Done || nonzero_first || st.r != 0 {
                    return None;
                }
                return Some(format!("{}{}", rep("0", j + 1), self.zeros_tail()));
            }
        }
        // Only zeros may follow.
        if st.hi == Hi::Zeros {
            if nonzero_first || !self.accept_zeros(st, j) {
                return None;
            }
            return Some(format!("{}{}", rep("0", j + 1), self.zeros_tail()));
        }
        // Unconstrained digits down to power t.
        if st.lo == Lo::Done && st.hi == Hi::Done && j >= self.t {
            let cnt = j - self.t + 1;
            let prefix = if nonzero_first {
                format!("[1-9]{}", rep("[0-9]", cnt - 1))
            } else {
                rep("[0-9]", cnt)
            };
            let tail = if self.t == 0 {
                self.after_int(FREE)?
            } else {
                self.gen_int(self.t - 1, FREE, false)?
            };
            return Some(prefix + &tail);
        }
        // Some non-zero digit must follow: flat alternation over the first non-zero one.
        if st.lo == Lo::Nz && st.hi == Hi::Done && !first && j >= self.t {
            let c = j - self.t + 1;
            let nz = St { lo: Lo::Nz, ..FREE };
            let (free_tail, nz_tail) = if self.t == 0 {
                (self.after_int(FREE), self.after_int(nz))
            } else {
                (
                    self.gen_int(self.t - 1, FREE, false),
                    self.gen_int(self.t - 1, nz, false),
                )
            };
            let mut parts = Vec::new();
            if let Some(ft) = free_tail {
                let heads: Vec<String> = (0..c)
                    .map(|i| format!("{}[1-9]{}", rep("0", i), rep("[0-9]", c - 1 - i)))
                    .collect();
                parts.push(format!("{}{ft}", alt(heads).expect("c >= 1")));
            }
            if let Some(nt) = nz_tail {
                parts.push(format!("{}{nt}", rep("0", c)));
            }
            return alt(parts);
        }
        let dmin = if nonzero_first { 1 } else { 0 };
        let mut items = Vec::new();
        for d in dmin..=9u8 {
            let Some(ns) = self.step(st, j, d) else {
                continue;
            };
            if let Some(c) = self.after_digit(j, ns) {
                items.push((d, c));
            }
        }
        group(items)
    }

    /// All unsigned literals with magnitude in range.
    pub(super) fn unsigned(&mut self) -> Option<String> {
        let len_a = self.lo.int_len();
        let len_b = self.hi.map(|(h, _)| h.int_len());
        if len_b.is_some_and(|b| b < len_a) {
            return None;
        }
        let mut parts = Vec::new();
        let hi_first = if len_b == Some(len_a) {
            Hi::Tight
        } else {
            Hi::Done
        };
        if let Some(r) = self.gen_int(
            len_a - 1,
            St {
                lo: Lo::Tight,
                hi: hi_first,
                r: 0,
            },
            true,
        ) {
            parts.push(r);
        }
        // Lengths strictly between.
        let mid_lo = len_a + 1;
        let mid_hi = len_b.map(|b| b - 1);
        let indiv_hi = mid_hi.map_or(self.t, |h| h.min(self.t));
        for n in mid_lo..=indiv_hi {
            if let Some(r) = self.gen_int(n - 1, FREE, true) {
                parts.push(r);
            }
        }
        let grp_lo = mid_lo.max(self.t + 1);
        if mid_hi.is_none_or(|h| grp_lo <= h) {
            let tail = if self.t == 0 {
                self.after_int(FREE)
            } else {
                self.gen_int(self.t - 1, FREE, false)
            };
            if let Some(tail) = tail {
                let a = grp_lo - 1 - self.t;
                let reps = match mid_hi {
                    None => format!("[0-9]{{{a},}}"),
                    Some(h) if h - 1 - self.t == a => rep("[0-9]", a),
                    Some(h) => format!("[0-9]{{{a},{}}}", h - 1 - self.t),
                };
                parts.push(format!("[1-9]{reps}{tail}"));
            }
        }
        if let Some(lb) = len_b {
            if lb > len_a {
                if let Some(r) = self.gen_int(
                    lb - 1,
                    St {
                        lo: Lo::Done,
                        hi: Hi::Tight,
                        r: 0,
                    },
                    true,
                ) {
                    parts.push(r);
                }
            }
        }
        alt(parts)
    }
}
