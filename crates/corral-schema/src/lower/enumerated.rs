//! `enum` (and `const`): the listed values that also satisfy the other constraints of
//! their branch. A value is tested directly where the keywords that apply to its type
//! can be evaluated on it (lengths, bounds, excluded strings; keywords of other types do
//! not apply); otherwise against an automaton of the rest of the branch.
use serde_json::Value;

use crate::compiler::{Compiler, Re};
use crate::error::SchemaError;
use crate::ir::{Constraints, TypeSet};
use crate::number::Decimal;
use crate::rx::Rx;

impl<'a> Compiler<'a> {
    /// The literals of `types` among `values` that satisfy `c` (but for its `enum`).
    pub(crate) fn compile_enum(
        &mut self,
        c: &Constraints<'a>,
        values: &[Value],
        types: TypeSet,
        ptr: &str,
    ) -> Result<Re, SchemaError> {
        let rest = Constraints {
            values: None,
            ..c.clone()
        };
        // Whether each value (by position) is kept.
        let mut kept = vec![false; values.len()];
        let mut undecided: Vec<usize> = Vec::new();
        for (i, value) in values.iter().enumerate() {
            if !types.admits(value) {
                continue;
            }
            match decide(value, &rest) {
                Some(keep) => kept[i] = keep,
                None => undecided.push(i),
            }
        }
        if !undecided.is_empty() {
            // Built only when some value needs it.
            if let Some(re) = self.compile_branch(&rest, ptr)? {
                let checker = self.matcher(&re, ptr)?;
                for i in undecided {
                    let text = serde_json::to_string(&values[i]).unwrap_or_default();
                    kept[i] = checker.is_match(&text);
                }
            }
        }
        // In the order listed.
        let alternatives: Vec<Rx> = values
            .iter()
            .zip(&kept)
            .filter(|(_, keep)| **keep)
            .map(|(v, _)| self.syntax.literal(v))
            .collect();
        Ok(Rx::alt(alternatives))
    }
}

/// Whether `value` satisfies `c` (its `type` aside), when the keywords that apply to the
/// value's type can be evaluated directly; `None` when one needs an automaton
/// (`pattern`, `format`, `multipleOf`, anything about arrays and objects).
fn decide(value: &Value, c: &Constraints<'_>) -> Option<bool> {
    match value {
        Value::Null | Value::Bool(_) => Some(true),
        Value::String(s) => {
            if c.pattern.is_some() || c.format.is_some() || !c.avoided_patterns.is_empty() {
                return None;
            }
            let length = s.chars().count();
            let length = u32::try_from(length).unwrap_or(u32::MAX);
            Some(
                !c.excluded_strings.iter().any(|e| e == s)
                    && c.min_length.is_none_or(|min| length >= min)
                    && c.max_length.is_none_or(|max| length <= max),
            )
        }
        Value::Number(n) => {
            if c.multiple_of.is_some() {
                return None;
            }
            let decimal = |n: &serde_json::Number| Decimal::parse(&n.to_string()).ok();
            let v = decimal(n)?;
            let mut ok = true;
            for (bound, holds) in [
                (
                    &c.minimum,
                    (|v, b| v >= b) as fn(&Decimal, &Decimal) -> bool,
                ),
                (&c.exclusive_minimum, |v, b| v > b),
                (&c.maximum, |v, b| v <= b),
                (&c.exclusive_maximum, |v, b| v < b),
            ] {
                if let Some(b) = bound {
                    ok &= holds(&v, &decimal(b)?);
                }
            }
            Some(ok)
        }
        Value::Array(_) => {
            let array_keywords = c.prefix_items.is_some()
                || c.items.is_some()
                || c.unevaluated_items.is_some()
                || c.min_items.is_some()
                || c.max_items.is_some()
                || c.contains.is_some();
            (!array_keywords).then_some(true)
        }
        Value::Object(_) => {
            let object_keywords = c.properties.is_some()
                || c.pattern_properties.is_some()
                || c.additional_properties.is_some()
                || c.unevaluated_properties.is_some()
                || c.required.is_some()
                || c.min_properties.is_some()
                || c.max_properties.is_some()
                || c.property_names.is_some()
                || c.dependent_required.is_some();
            (!object_keywords).then_some(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_tested_by_the_keywords_of_their_type() {
        let c = Constraints {
            excluded_strings: vec!["b".into()],
            max_length: Some(2),
            minimum: Some(serde_json::Number::from(3)),
            required: Some(vec!["x".into()]),
            ..Constraints::default()
        };
        assert_eq!(decide(&json!("a"), &c), Some(true));
        assert_eq!(decide(&json!("b"), &c), Some(false));
        assert_eq!(decide(&json!("abc"), &c), Some(false));
        assert_eq!(decide(&json!(3), &c), Some(true));
        assert_eq!(decide(&json!(2.5), &c), Some(false));
        assert_eq!(decide(&json!(null), &c), Some(true));
        assert_eq!(decide(&json!([1]), &c), Some(true));
        // `required` applies to objects: an automaton decides.
        assert_eq!(decide(&json!({"x": 1}), &c), None);
        let patterned = Constraints {
            pattern: Some("^a".into()),
            ..Constraints::default()
        };
        assert_eq!(decide(&json!("a"), &patterned), None);
        assert_eq!(decide(&json!(5), &patterned), Some(true));
    }
}
