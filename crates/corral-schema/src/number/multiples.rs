//! Enumerating the multiples of a `multipleOf` without a digit-wise form, as a trie.
use super::*;
use std::collections::BTreeMap;

#[derive(Default)]
pub(super) struct Trie {
    pub(super) children: BTreeMap<u8, Trie>,
    /// Terminal: `Some(true)` if the literal so far has a fraction.
    pub(super) end: Option<bool>,
}

impl Trie {
    pub(super) fn insert(&mut self, s: &str, has_frac: bool) {
        let mut n = self;
        for b in s.bytes() {
            n = n.children.entry(b).or_default();
        }
        n.end = Some(has_frac);
    }

    pub(super) fn regex(&self, number: bool) -> String {
        let mut items: Vec<(u8, String)> = Vec::new();
        let mut parts: Vec<String> = Vec::new();
        for (&b, child) in &self.children {
            let c = child.regex(number);
            if b == b'.' {
                parts.push(format!("\\.{c}"));
            } else {
                items.push((b - b'0', c));
            }
        }
        if let Some(g) = group(items) {
            parts.insert(0, g);
        }
        match self.end {
            None => alt(parts).unwrap_or_default(),
            Some(has_frac) => {
                if has_frac {
                    parts.push("0+".into());
                } else if number {
                    parts.push("\\.0+".into());
                }
                if parts.is_empty() {
                    String::new()
                } else {
                    format!("(?:{})?", parts.join("|"))
                }
            }
        }
    }
}

pub(super) fn enumerate(
    lo: &(Decimal, bool),
    hi: &(Decimal, bool),
    p: u128,
    s: i64,
    number: bool,
    q: String,
    describe: &str,
) -> Result<String, NumberError> {
    let too_many = |count: String| NumberError::TooManyMultiples {
        multiple_of: q.clone(),
        range: describe.to_string(),
        count,
        limit: MAX_ENUMERATED_MULTIPLES,
    };
    // Scaled integer bounds K in [a, b].
    let a_dec = lo.0.round_dir(-s, true);
    let b_dec = hi.0.round_dir(-s, false);
    let (Some(mut a), Some(mut b)) = (a_dec.scaled_i128(s), b_dec.scaled_i128(s)) else {
        return Err(too_many("too many to count".into()));
    };
    if a_dec == lo.0 && !lo.1 {
        a += 1;
    }
    if b_dec == hi.0 && !hi.1 {
        b -= 1;
    }
    if a > b {
        return Err(NumberError::EmptyRange(describe.to_string()));
    }
    if s > 36 {
        return Err(too_many("too many to count".into()));
    }
    let p = i128::try_from(p).map_err(|_| NumberError::MultipleOfTooLarge(q.clone()))?;
    let first = a.div_euclid(p) + i128::from(a.rem_euclid(p) != 0);
    let last = b.div_euclid(p);
    if first > last {
        return Err(NumberError::EmptyRange(describe.to_string()));
    }
    let count = (last - first + 1) as u128;
    if count > MAX_ENUMERATED_MULTIPLES {
        return Err(too_many(count.to_string()));
    }
    let mut pos = Trie::default();
    let mut neg = Trie::default();
    let p10 = 10i128.pow(s as u32);
    for i in first..=last {
        let k = i * p;
        let mag = k.unsigned_abs();
        let int = mag / p10 as u128;
        let fr = mag % p10 as u128;
        let mut lit = int.to_string();
        let mut has_frac = false;
        if fr != 0 {
            let f = format!("{:0width$}", fr, width = s as usize);
            lit.push('.');
            lit.push_str(f.trim_end_matches('0'));
            has_frac = true;
        }
        if !number && has_frac {
            continue; // cannot happen for integers (s == 0)
        }
        if k < 0 {
            neg.insert(&lit, has_frac);
        } else {
            pos.insert(&lit, has_frac);
        }
    }
    let mut parts = Vec::new();
    if !pos.children.is_empty() {
        parts.push(pos.regex(number));
    }
    if !neg.children.is_empty() {
        parts.push(format!("-{}", neg.regex(number)));
    }
    Ok(format!("(?:{})", parts.join("|")))
}
