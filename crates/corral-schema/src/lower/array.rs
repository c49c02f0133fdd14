//! Arrays: `prefixItems`, `items`, `minItems`/`maxItems`, `contains`/`minContains`.
use crate::compiler::{Compiler, Re};
use crate::error::SchemaError;
use crate::ir::{Constraints, Sub};
use crate::rx::Rx;

use super::never;

impl<'a> Compiler<'a> {
    pub(crate) fn compile_array(
        &mut self,
        c: &Constraints<'a>,
        ptr: &str,
    ) -> Result<Re, SchemaError> {
        let (min, max) = (c.min_items.unwrap_or(0), c.max_items);
        if max.is_some_and(|m| m < min) {
            return Ok(None);
        }
        let mut prefix = Vec::new();
        for (i, item) in c.prefix_items.iter().flatten().enumerate() {
            prefix.push(self.compile(item, &format!("{ptr}/prefixItems/{i}"))?);
        }
        // (`unevaluatedItems` was folded into `items` by normalization.)
        let items = match &c.items {
            Some(schema) => self.compile(schema, &format!("{ptr}/items"))?,
            None => Some(self.syntax.any_value(self.options.max_any_depth)),
        };
        let min_contains = c.min_contains.unwrap_or(1);
        if c.contains.is_some() && c.max_contains.is_some() {
            self.unsupported(
                "maxContains",
                ptr,
                "an upper bound on matching items is not supported",
            )?;
        }
        let Some(contains) = c.contains.as_ref().filter(|_| min_contains > 0) else {
            return Ok(self.finish_array(&prefix, &items, min, max));
        };
        if !prefix.is_empty()
            || c.max_contains.is_some()
            || u64::from(min) > min_contains
            || max.is_some()
        {
            self.unsupported(
                "contains",
                ptr,
                "`contains` is supported without prefixItems, maxContains, and item-count bounds",
            )?;
            return Ok(self.finish_array(&prefix, &items, min, max));
        }
        let base = c.items.clone().unwrap_or(Sub::Bool(true));
        let matching = self.compile(&Sub::and(&base, contains), &format!("{ptr}/contains"))?;
        let Some(matching) = matching else {
            return Ok(None);
        };
        let items = items.unwrap_or_else(never);
        let comma = self.syntax.comma();
        // (item ,)* match ( , (item ,)* match ){m-1} (, item)*
        let before = Rx::repeat(Rx::seq([items.clone(), comma.clone()]), 0, None);
        let more = Rx::seq([comma.clone(), before.clone(), matching.clone()]);
        let count = min_contains.saturating_sub(1).min(u64::from(u32::MAX)) as u32;
        let elements = Rx::seq([
            before,
            matching,
            Rx::repeat(more, count, Some(count)),
            Rx::repeat(Rx::seq([comma, items]), 0, None),
        ]);
        Ok(Some(self.syntax.array(elements)))
    }

    /// `[ P0 , P1 , … , I , I … ]` with between `min` and `max` items.
    fn finish_array(&self, prefix: &[Re], items: &Re, min: u32, max: Option<u32>) -> Re {
        let comma = self.syntax.comma();
        // tail(j): what may follow once j items are written (j >= 1).
        // Items after the prefix, once the prefix is written.
        let mut tail: Re = {
            let written = prefix.len() as u32;
            let lo = min.saturating_sub(written);
            let hi = max.map(|m| m.saturating_sub(written));
            match items {
                Some(item) => Some(Rx::repeat(Rx::seq([comma.clone(), item.clone()]), lo, hi)),
                None if lo == 0 => Some(Rx::empty()),
                None => None,
            }
        };
        // Walk the prefix backwards: after writing j items, the (j+1)-th is prefix[j].
        for j in (1..prefix.len()).rev() {
            let written = j as u32;
            let next = match (&prefix[j], &tail) {
                (Some(p), Some(t)) if max.is_none_or(|m| m > written) => {
                    Some(Rx::seq([comma.clone(), p.clone(), t.clone()]))
                }
                _ => None,
            };
            tail = if written >= min {
                Some(next.map(Rx::opt).unwrap_or_else(Rx::empty))
            } else {
                next
            };
        }
        let first = if prefix.is_empty() {
            // No prefix: `items` items, one copy of the item however many there are.
            match items {
                Some(item) if max != Some(0) => Rx::list(item.clone(), comma, min.max(1), max),
                _ => None,
            }
        } else {
            match (&prefix[0], &tail) {
                (Some(p), Some(t)) if max != Some(0) => Some(Rx::seq([p.clone(), t.clone()])),
                _ => None,
            }
        };
        let elements = match (first, min) {
            (Some(f), 0) => f.opt(),
            (Some(f), _) => f,
            (None, 0) => Rx::empty(),
            (None, _) => return None,
        };
        Some(self.syntax.array(elements))
    }
}
