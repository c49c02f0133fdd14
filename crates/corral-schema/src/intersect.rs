//! Phase 3: the intersection of two branches (`allOf`, `$ref` with siblings, the
//! combinations of normalization). Keyword by keyword, the result accepts exactly the
//! instances both accept; where a pair has no exact merged form (two different
//! `pattern`s, say), it is an explicit error.
use indexmap::IndexMap;
use serde_json::Number;

use crate::error::SchemaError;
use crate::ir::{Constraints, Sub};
use crate::json::json_equal;
use crate::number::{is_multiple, Decimal};

/// Tells whether a `patternProperties` pattern matches a property name (an error when it
/// cannot tell).
pub(crate) type PatternTest<'t> = dyn FnMut(&str, &str) -> Result<bool, SchemaError> + 't;

/// `a ∧ b`. `Ok(None)` when the intersection is provably empty.
pub(crate) fn intersect<'a>(
    a: &Constraints<'a>,
    b: &Constraints<'a>,
    ptr: &str,
    matches_pattern: &mut PatternTest<'_>,
) -> Result<Option<Constraints<'a>>, SchemaError> {
    let cannot = |keyword: &str| {
        SchemaError::unsupported(
            keyword,
            ptr,
            "cannot intersect in allOf/$ref: the two values differ",
        )
    };
    let mut out = a.clone();
    if let Some(tb) = b.types {
        let both = a.types.map_or(tb, |ta| ta.and(tb));
        if both.is_empty() {
            return Ok(None);
        }
        out.types = Some(both);
    }
    if let Some(vb) = &b.values {
        out.values = Some(match &a.values {
            Some(va) => va
                .iter()
                .filter(|x| vb.iter().any(|y| json_equal(x, y)))
                .cloned()
                .collect(),
            None => vb.clone(),
        });
    }
    union(&mut out.excluded_strings, &b.excluded_strings);
    union(&mut out.avoided_patterns, &b.avoided_patterns);
    union(&mut out.unknown, &b.unknown);
    if let Some(rb) = &b.required {
        union(out.required.get_or_insert_with(Vec::new), rb);
    }

    out.minimum = tighter(&a.minimum, &b.minimum, Bound::Lower);
    out.exclusive_minimum = tighter(&a.exclusive_minimum, &b.exclusive_minimum, Bound::Lower);
    out.maximum = tighter(&a.maximum, &b.maximum, Bound::Upper);
    out.exclusive_maximum = tighter(&a.exclusive_maximum, &b.exclusive_maximum, Bound::Upper);
    if let (Some(x), Some(y)) = (&a.multiple_of, &b.multiple_of) {
        // Both hold exactly when one is a multiple of the other: keep the larger.
        let exact = |n: &Number| Decimal::parse(&n.to_string()).ok();
        let kept = match (exact(x), exact(y)) {
            (Some(dx), Some(dy)) if is_multiple(&dx, &dy) == Some(true) => Some(x),
            (Some(dx), Some(dy)) if is_multiple(&dy, &dx) == Some(true) => Some(y),
            _ => None,
        };
        let Some(kept) = kept else {
            return Err(SchemaError::unsupported(
                "multipleOf",
                ptr,
                "cannot intersect in allOf/$ref: neither value divides the other",
            ));
        };
        out.multiple_of = Some(kept.clone());
    } else if b.multiple_of.is_some() {
        out.multiple_of = b.multiple_of.clone();
    }

    out.min_length = larger(a.min_length, b.min_length);
    out.max_length = smaller(a.max_length, b.max_length);
    out.min_items = larger(a.min_items, b.min_items);
    out.max_items = smaller(a.max_items, b.max_items);
    out.min_properties = larger(a.min_properties, b.min_properties);
    out.max_properties = smaller(a.max_properties, b.max_properties);
    // `minContains`/`maxContains` mean something only next to their own `contains`: a
    // side without one must not loosen (`minContains: 0`) the other side's.
    let counts_of = |c: &Constraints<'a>| {
        c.contains
            .is_some()
            .then_some((c.min_contains, c.max_contains))
    };
    let (min_contains, max_contains) = match (counts_of(a), counts_of(b)) {
        (Some((amin, amax)), Some((bmin, bmax))) => (larger(amin, bmin), smaller(amax, bmax)),
        (Some(counts), None) | (None, Some(counts)) => counts,
        (None, None) => (None, None),
    };
    out.min_contains = min_contains;
    out.max_contains = max_contains;

    out.pattern = same_or(&a.pattern, &b.pattern, |x, y| x == y).map_err(|()| cannot("pattern"))?;
    out.format = same_or(&a.format, &b.format, |x, y| x == y).map_err(|()| cannot("format"))?;
    out.contains =
        same_or(&a.contains, &b.contains, |x, y| x.same(y)).map_err(|()| cannot("contains"))?;

    out.items = both(&a.items, &b.items);
    out.unevaluated_items = both(&a.unevaluated_items, &b.unevaluated_items);
    out.additional_properties = both(&a.additional_properties, &b.additional_properties);
    out.unevaluated_properties = both(&a.unevaluated_properties, &b.unevaluated_properties);
    out.property_names = both(&a.property_names, &b.property_names);

    if let (Some(pa), Some(pb)) = (&a.prefix_items, &b.prefix_items) {
        // Position by position; past one side's prefix, its `items` apply.
        let n = pa.len().max(pb.len());
        let side = |prefix: &[Sub<'a>], items: &Option<Sub<'a>>, i: usize| {
            prefix
                .get(i)
                .or(items.as_ref())
                .cloned()
                .unwrap_or(Sub::Bool(true))
        };
        out.prefix_items = Some(
            (0..n)
                .map(|i| Sub::and(&side(pa, &a.items, i), &side(pb, &b.items, i)))
                .collect(),
        );
    } else if b.prefix_items.is_some() {
        out.prefix_items = b.prefix_items.clone();
    }
    // `items` on one side constrains every position of the other side's `prefixItems`.
    for (from, other) in [(a, b), (b, a)] {
        if let (Some(items), Some(prefix), None) =
            (&from.items, &other.prefix_items, &from.prefix_items)
        {
            out.prefix_items = Some(prefix.iter().map(|p| Sub::and(p, items)).collect());
        }
    }

    merge_schema_maps(&mut out.properties, &b.properties);
    merge_schema_maps(&mut out.pattern_properties, &b.pattern_properties);
    if let Some(db) = &b.dependent_required {
        let all = out.dependent_required.get_or_insert_with(IndexMap::new);
        for (name, needed) in db {
            union(all.entry(name.clone()).or_default(), needed);
        }
    }
    // Properties listed on one side only are constrained by the other side's
    // patternProperties, or else its additionalProperties.
    for (from, other) in [(a, b), (b, a)] {
        let Some(props) = &from.properties else {
            continue;
        };
        let merged = out.properties.get_or_insert_with(IndexMap::new);
        for (key, schema) in props {
            if other
                .properties
                .as_ref()
                .is_some_and(|p| p.contains_key(key))
            {
                continue;
            }
            let mut constraint = Sub::Bool(true);
            let mut matched = false;
            for (pattern, s) in other.pattern_properties.iter().flatten() {
                if matches_pattern(pattern, key)? {
                    matched = true;
                    constraint = Sub::and(&constraint, s);
                }
            }
            if !matched {
                if let Some(additional) = &other.additional_properties {
                    constraint = additional.clone();
                }
            }
            merged.insert(key.clone(), Sub::and(schema, &constraint));
        }
    }
    // Pattern properties on one side are also constrained by the other side's
    // additionalProperties (conservatively: even where the other side's patterns match).
    for (from, other) in [(a, b), (b, a)] {
        if let (Some(patterns), Some(additional)) =
            (&from.pattern_properties, &other.additional_properties)
        {
            let merged = out.pattern_properties.get_or_insert_with(IndexMap::new);
            for (pattern, schema) in patterns {
                if other
                    .pattern_properties
                    .as_ref()
                    .is_some_and(|p| p.contains_key(pattern))
                {
                    continue;
                }
                merged.insert(pattern.clone(), Sub::and(schema, additional));
            }
        }
    }
    Ok(Some(out))
}

fn union(into: &mut Vec<String>, from: &[String]) {
    for x in from {
        if !into.contains(x) {
            into.push(x.clone());
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Bound {
    Lower,
    Upper,
}

/// The tighter of two numeric bounds, compared exactly (as decimals, not doubles:
/// 9007199254740993 is above 9007199254740992).
fn tighter(a: &Option<Number>, b: &Option<Number>, bound: Bound) -> Option<Number> {
    match (a, b) {
        (Some(x), Some(y)) => {
            let exact = |n: &Number| Decimal::parse(&n.to_string()).ok();
            let order = match (exact(x), exact(y)) {
                (Some(dx), Some(dy)) => dx.cmp(&dy),
                // Literals serde_json wrote always parse; doubles as a fallback.
                _ => x
                    .as_f64()
                    .partial_cmp(&y.as_f64())
                    .unwrap_or(std::cmp::Ordering::Equal),
            };
            let keep_x = match bound {
                Bound::Lower => order.is_ge(),
                Bound::Upper => order.is_le(),
            };
            Some(if keep_x { x.clone() } else { y.clone() })
        }
        _ => a.clone().or_else(|| b.clone()),
    }
}

fn larger<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    a.max(b)
}

fn smaller<T: Ord + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        _ => a.or(b),
    }
}

/// One side's value when the other has none or the same; `Err` when both differ.
fn same_or<T: Clone>(
    a: &Option<T>,
    b: &Option<T>,
    same: impl Fn(&T, &T) -> bool,
) -> Result<Option<T>, ()> {
    match (a, b) {
        (Some(x), Some(y)) if !same(x, y) => Err(()),
        _ => Ok(a.clone().or_else(|| b.clone())),
    }
}

/// Both subschemas apply.
fn both<'a>(a: &Option<Sub<'a>>, b: &Option<Sub<'a>>) -> Option<Sub<'a>> {
    match (a, b) {
        (Some(x), Some(y)) if x.same(y) => Some(x.clone()),
        (Some(x), Some(y)) => Some(Sub::and(x, y)),
        _ => a.clone().or_else(|| b.clone()),
    }
}

/// Name → schema maps, `b` merged into `out` (a copy of the first side's): names on
/// both sides take both schemas.
fn merge_schema_maps<'a>(
    out: &mut Option<IndexMap<String, Sub<'a>>>,
    b: &Option<IndexMap<String, Sub<'a>>>,
) {
    let Some(mb) = b else {
        return;
    };
    let Some(merged) = out else {
        *out = Some(mb.clone());
        return;
    };
    for (k, s) in mb {
        match merged.get_mut(k) {
            Some(existing) if existing.same(s) => {}
            Some(existing) => *existing = Sub::and(existing, s),
            None => {
                merged.insert(k.clone(), s.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::TypeSet;
    use crate::parse::{parse_node, Draft};
    use serde_json::{json, Value};

    fn both_of<'a>(a: &'a Value, b: &'a Value) -> Result<Option<Constraints<'a>>, SchemaError> {
        let na = parse_node(a.as_object().unwrap(), "#", Draft::Modern)?;
        let nb = parse_node(b.as_object().unwrap(), "#", Draft::Modern)?;
        intersect(&na.own, &nb.own, "#", &mut |p, k| Ok(k.starts_with(p)))
    }

    #[test]
    fn types_values_and_bounds() {
        let (a, b) = (
            json!({"type": ["number", "string"], "minimum": 1, "maxLength": 5, "enum": [1, "a", 2]}),
            json!({"type": "integer", "minimum": 3, "maxLength": 2, "enum": [2.0, 1]}),
        );
        let c = both_of(&a, &b).unwrap().unwrap();
        assert_eq!(c.types, Some(TypeSet::INTEGER));
        assert_eq!(c.minimum.map(|m| m.to_string()), Some("3".into()));
        assert_eq!(c.max_length, Some(2));
        assert_eq!(c.values, Some(vec![json!(1), json!(2)]));
        let (s, n) = (json!({"type": "string"}), json!({"type": "null"}));
        assert!(both_of(&s, &n).unwrap().is_none());
    }

    #[test]
    fn differing_patterns_are_refused_and_multiples_kept_when_they_divide() {
        let (a, b) = (json!({"pattern": "a"}), json!({"pattern": "b"}));
        assert!(matches!(
            both_of(&a, &b),
            Err(SchemaError::Unsupported { keyword, .. }) if keyword == "pattern"
        ));
        let (a, b) = (json!({"multipleOf": 2}), json!({"multipleOf": 6}));
        let c = both_of(&a, &b).unwrap().unwrap();
        assert_eq!(c.multiple_of.map(|m| m.to_string()), Some("6".into()));
        let (a, b) = (json!({"multipleOf": 4}), json!({"multipleOf": 6}));
        assert!(both_of(&a, &b).is_err());
    }

    #[test]
    fn properties_meet_the_other_sides_patterns_and_additional() {
        let a = json!({"properties": {"x_1": {"type": "string"}, "y": {}}});
        let b = json!({"patternProperties": {"x_": {"maxLength": 3}},
                       "additionalProperties": false, "required": ["y"]});
        let c = both_of(&a, &b).unwrap().unwrap();
        let props = c.properties.unwrap();
        assert!(matches!(&props["x_1"], Sub::All(parts) if parts.len() == 2));
        // `y` matched no pattern: the other side's `additionalProperties: false`.
        assert!(matches!(&props["y"], Sub::Doc(Value::Bool(false))));
        assert_eq!(c.required, Some(vec!["y".to_string()]));
    }

    #[test]
    fn exact_bounds_multiples_and_contains_counts() {
        let (a, b) = (
            json!({"minimum": 9007199254740992u64, "multipleOf": 1}),
            json!({"minimum": 9007199254740993u64, "multipleOf": 1.0000000001}),
        );
        assert!(both_of(&a, &b).is_err(), "1.0000000001 is no multiple of 1");
        let b = json!({"minimum": 9007199254740993u64, "multipleOf": 0.5});
        let c = both_of(&a, &b).unwrap().unwrap();
        assert_eq!(
            c.minimum.map(|m| m.to_string()),
            Some("9007199254740993".into())
        );
        assert_eq!(c.multiple_of.map(|m| m.to_string()), Some("1".into()));
        // `minContains: 0` without a `contains` of its own changes nothing.
        let (a, b) = (json!({"minContains": 0}), json!({"contains": {"const": 1}}));
        let c = both_of(&a, &b).unwrap().unwrap();
        assert!(c.contains.is_some() && c.min_contains.is_none());
    }

    #[test]
    fn items_constrain_the_other_prefix() {
        let (a, b) = (
            json!({"items": {"type": "integer"}}),
            json!({"prefixItems": [{"minimum": 0}, true]}),
        );
        let c = both_of(&a, &b).unwrap().unwrap();
        let prefix = c.prefix_items.unwrap();
        assert_eq!(prefix.len(), 2);
        assert!(matches!(&prefix[0], Sub::All(_)));
        assert!(matches!(&prefix[1], Sub::Doc(v) if v["type"] == "integer"));
    }
}
