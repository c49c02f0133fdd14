//! Numeric bounds of a schema: `minimum`/`exclusiveMinimum`, `maximum`/`exclusiveMaximum`.
use super::*;
use std::cmp::Ordering;

/// Numeric bounds of a schema. `exclusive_minimum` / `exclusive_maximum` say whether the
/// corresponding bound is strict. Combine `minimum` and `exclusiveMinimum` (and bounds from
/// several subschemas) with [`Bounds::tighten_minimum`] / [`Bounds::tighten_maximum`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bounds {
    pub minimum: Option<Decimal>,
    pub exclusive_minimum: bool,
    pub maximum: Option<Decimal>,
    pub exclusive_maximum: bool,
}

impl Bounds {
    /// No bounds.
    pub fn unbounded() -> Self {
        Bounds::default()
    }

    /// Adds a lower bound, keeping the stricter of it and the current one.
    pub fn tighten_minimum(&mut self, value: Decimal, exclusive: bool) {
        let replace = match &self.minimum {
            None => true,
            Some(cur) => match value.cmp(cur) {
                Ordering::Greater => true,
                Ordering::Equal => exclusive && !self.exclusive_minimum,
                Ordering::Less => false,
            },
        };
        if replace {
            self.minimum = Some(value);
            self.exclusive_minimum = exclusive;
        }
    }

    /// Adds an upper bound, keeping the stricter of it and the current one.
    pub fn tighten_maximum(&mut self, value: Decimal, exclusive: bool) {
        let replace = match &self.maximum {
            None => true,
            Some(cur) => match value.cmp(cur) {
                Ordering::Less => true,
                Ordering::Equal => exclusive && !self.exclusive_maximum,
                Ordering::Greater => false,
            },
        };
        if replace {
            self.maximum = Some(value);
            self.exclusive_maximum = exclusive;
        }
    }

    /// Whether neither bound is set.
    pub fn is_unbounded(&self) -> bool {
        self.minimum.is_none() && self.maximum.is_none()
    }

    pub(super) fn describe(&self) -> String {
        let lo = match &self.minimum {
            None => "(-inf".to_string(),
            Some(d) => format!("{}{d}", if self.exclusive_minimum { "(" } else { "[" }),
        };
        let hi = match &self.maximum {
            None => "+inf)".to_string(),
            Some(d) => format!("{d}{}", if self.exclusive_maximum { ")" } else { "]" }),
        };
        format!("{lo}, {hi}")
    }
}

/// A bound on one side: value and inclusiveness.
pub(super) type Bound = Option<(Decimal, bool)>;
