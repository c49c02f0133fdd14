//! Phase 4: negation. `not` is pushed inward keyword by keyword (¬(A∧B) = ¬A ∨ ¬B) into a
//! schema accepting exactly — or, where a keyword's negation is not expressible, a
//! subset of — the instances the original rejects. A keyword whose negation cannot be
//! expressed contributes nothing: a smaller, still sound set.
use indexmap::IndexMap;
use serde_json::Value;

use crate::compiler::Compiler;
use crate::error::SchemaError;
use crate::ir::{Constraints, Node, Sub, TypeSet};
use crate::pointer;

/// Deepest nesting of negations inside negations.
const MAX_DEPTH: usize = 8;

/// The types named in negations, one at a time ("number" covers integers).
const NEGATABLE_TYPES: [TypeSet; 6] = [
    TypeSet::NULL,
    TypeSet::BOOLEAN,
    TypeSet::STRING,
    TypeSet::ARRAY,
    TypeSet::OBJECT,
    TypeSet::NUMBER,
];

fn typed<'a>(types: TypeSet, rest: Constraints<'a>) -> Sub<'a> {
    Sub::leaf(Constraints {
        types: Some(types),
        ..rest
    })
}

/// The union of `alternatives` (`false` when there is none).
fn any_of(mut alternatives: Vec<Sub<'_>>) -> Sub<'_> {
    match alternatives.len() {
        0 => Sub::Bool(false),
        1 => alternatives.pop().unwrap_or(Sub::Bool(false)),
        _ => Sub::Any(alternatives.into()),
    }
}

/// The types not in `excluded` (a type partly excluded, as "number" by "integer", is
/// dropped: a subset).
fn other_types(excluded: TypeSet) -> TypeSet {
    NEGATABLE_TYPES
        .into_iter()
        .filter(|t| t.and(excluded).is_empty())
        .fold(TypeSet::NONE, TypeSet::or)
}

impl<'a> Compiler<'a> {
    /// A schema accepting the instances `schema` (found at `ptr`) rejects, or a subset.
    pub(crate) fn negate(
        &mut self,
        schema: &Sub<'a>,
        ptr: &str,
        depth: usize,
    ) -> Result<Sub<'a>, SchemaError> {
        if depth > MAX_DEPTH {
            return Err(SchemaError::unsupported(
                "not",
                ptr,
                "negation nested too deeply",
            ));
        }
        Ok(match schema {
            Sub::Bool(b) | Sub::Doc(Value::Bool(b)) => Sub::Bool(!b),
            Sub::Doc(value) => {
                let node = self.node(value, ptr)?;
                self.negate_node(&node, ptr, depth)?
            }
            Sub::All(parts) => {
                let mut negated = Vec::with_capacity(parts.len());
                for part in parts.iter() {
                    negated.push(self.negate(part, ptr, depth + 1)?);
                }
                any_of(negated)
            }
            Sub::Any(parts) => {
                let mut negated = Vec::with_capacity(parts.len());
                for part in parts.iter() {
                    negated.push(self.negate(part, ptr, depth + 1)?);
                }
                Sub::All(negated.into())
            }
            Sub::Leaf(constraints) => any_of(self.negate_constraints(constraints, ptr, depth)?),
        })
    }

    fn negate_node(
        &mut self,
        node: &Node<'a>,
        ptr: &str,
        depth: usize,
    ) -> Result<Sub<'a>, SchemaError> {
        let mut alternatives = Vec::new();
        if let Some(not) = &node.not {
            alternatives.push(not.clone());
        }
        if !node.all_of.is_empty() {
            let mut parts = Vec::new();
            for (i, sub) in node.all_of.iter().enumerate() {
                parts.push(self.negate(sub, &format!("{ptr}/allOf/{i}"), depth + 1)?);
            }
            alternatives.push(Sub::Any(parts.into()));
        }
        // ¬anyOf: no branch. ¬oneOf = (no branch) ∨ (two or more branches): the first
        // part only.
        for (keyword, branches) in [("anyOf", &node.any_of), ("oneOf", &node.one_of)] {
            if let Some(branches) = branches {
                let mut parts = Vec::new();
                for (i, sub) in branches.iter().enumerate() {
                    parts.push(self.negate(sub, &format!("{ptr}/{keyword}/{i}"), depth + 1)?);
                }
                alternatives.push(Sub::All(parts.into()));
            }
        }
        if let Some(reference) = node.reference {
            let (target_ptr, target) = self.references.resolve(reference, ptr)?;
            alternatives.push(self.negate(&Sub::Doc(target), &target_ptr, depth + 1)?);
        }
        // `if`/`then`/`else`, `dependentSchemas`, `uniqueItems`: not expressed (a subset).
        alternatives.extend(self.negate_constraints(&node.own, ptr, depth)?);
        Ok(any_of(alternatives))
    }

    /// The instances violating each keyword, one alternative per keyword that can be
    /// expressed.
    fn negate_constraints(
        &mut self,
        c: &Constraints<'a>,
        ptr: &str,
        depth: usize,
    ) -> Result<Vec<Sub<'a>>, SchemaError> {
        let mut alternatives = Vec::new();
        let none = Constraints::default;
        if let Some(types) = c.types {
            let kept = other_types(types);
            if !kept.is_empty() {
                alternatives.push(typed(kept, none()));
            }
        }
        if let Some(values) = &c.values {
            let mut alts = Vec::new();
            // Values of other types; strings other than the listed ones; the other
            // boolean. (Other numbers, arrays and objects than the listed ones: not
            // generated.)
            let kept = other_types(TypeSet::of_values(values));
            if !kept.is_empty() {
                alts.push(typed(kept, none()));
            }
            let strings: Vec<String> = values
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            if !strings.is_empty() {
                alts.push(typed(
                    TypeSet::STRING,
                    Constraints {
                        excluded_strings: strings,
                        ..none()
                    },
                ));
            }
            let bools: Vec<bool> = values.iter().filter_map(Value::as_bool).collect();
            if let [only] = bools[..] {
                alts.push(Sub::leaf(Constraints {
                    values: Some(vec![Value::Bool(!only)]),
                    ..none()
                }));
            }
            alternatives.push(Sub::Any(alts.into()));
        }
        if let Some(required) = c.required.as_ref().filter(|r| !r.is_empty()) {
            let alts: Vec<Sub<'a>> = required
                .iter()
                .map(|name| {
                    typed(
                        TypeSet::OBJECT,
                        Constraints {
                            properties: Some(IndexMap::from([(name.clone(), Sub::Bool(false))])),
                            ..none()
                        },
                    )
                })
                .collect();
            alternatives.push(Sub::Any(alts.into()));
        }
        if let Some(properties) = &c.properties {
            let mut alts = Vec::new();
            for (name, sub) in properties {
                let p = pointer::join(&format!("{ptr}/properties"), name);
                let negated = self.negate(sub, &p, depth + 1)?;
                if !matches!(negated, Sub::Bool(false)) {
                    alts.push(typed(
                        TypeSet::OBJECT,
                        Constraints {
                            required: Some(vec![name.clone()]),
                            properties: Some(IndexMap::from([(name.clone(), negated)])),
                            ..none()
                        },
                    ));
                }
            }
            if !alts.is_empty() {
                alternatives.push(Sub::Any(alts.into()));
            }
        }
        if let Some(items) = c
            .items
            .as_ref()
            .filter(|_| c.prefix_items.as_ref().is_none_or(Vec::is_empty))
        {
            let negated = self.negate(items, &format!("{ptr}/items"), depth + 1)?;
            if !matches!(negated, Sub::Bool(false)) {
                alternatives.push(typed(
                    TypeSet::ARRAY,
                    Constraints {
                        contains: Some(negated),
                        ..none()
                    },
                ));
            }
        }
        if let Some(pattern) = &c.pattern {
            alternatives.push(typed(
                TypeSet::STRING,
                Constraints {
                    avoided_patterns: vec![pattern.clone()],
                    ..none()
                },
            ));
        }
        // Bounds and counts flip: below the minimum or above the maximum (of the same
        // type), each one alternative with the opposite keyword.
        let mut flip = |types: TypeSet, set: &dyn Fn(&mut Constraints<'a>)| {
            let mut flipped = none();
            set(&mut flipped);
            alternatives.push(typed(types, flipped));
        };
        let number = TypeSet::NUMBER;
        if let Some(v) = &c.minimum {
            flip(number, &|f| f.exclusive_maximum = Some(v.clone()));
        }
        if let Some(v) = &c.exclusive_minimum {
            flip(number, &|f| f.maximum = Some(v.clone()));
        }
        if let Some(v) = &c.maximum {
            flip(number, &|f| f.exclusive_minimum = Some(v.clone()));
        }
        if let Some(v) = &c.exclusive_maximum {
            flip(number, &|f| f.minimum = Some(v.clone()));
        }
        let below = |min: Option<u32>| min.filter(|n| *n > 0).map(|n| n - 1);
        let above = |max: Option<u32>| max.map(|n| n.saturating_add(1));
        if let Some(n) = below(c.min_length) {
            flip(TypeSet::STRING, &|f| f.max_length = Some(n));
        }
        if let Some(n) = above(c.max_length) {
            flip(TypeSet::STRING, &|f| f.min_length = Some(n));
        }
        if let Some(n) = below(c.min_items) {
            flip(TypeSet::ARRAY, &|f| f.max_items = Some(n));
        }
        if let Some(n) = above(c.max_items) {
            flip(TypeSet::ARRAY, &|f| f.min_items = Some(n));
        }
        if let Some(n) = below(c.min_properties) {
            flip(TypeSet::OBJECT, &|f| f.max_properties = Some(n));
        }
        if let Some(n) = above(c.max_properties) {
            flip(TypeSet::OBJECT, &|f| f.min_properties = Some(n));
        }
        // Not expressible here (multiples, formats, other arrays/objects' keywords): the
        // negation contributes no instances for them (a sound subset).
        Ok(alternatives)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use serde_json::json;
    use std::sync::Arc;

    fn leaf_of<'s, 'a>(sub: &'s Sub<'a>) -> &'s Arc<Constraints<'a>> {
        match sub {
            Sub::Leaf(c) => c,
            other => panic!("not a leaf: {other:?}"),
        }
    }

    fn negated(schema: &Value) -> Sub<'_> {
        let options = Box::leak(Box::new(Options::default()));
        let mut compiler = Compiler::new(schema, options);
        compiler.negate(&Sub::Doc(schema), "#", 0).unwrap()
    }

    #[test]
    fn types_flip() {
        let v = json!({"type": ["string", "integer"]});
        let n = negated(&v);
        // "number" is partly excluded by "integer": dropped (a subset).
        assert_eq!(
            leaf_of(&n).types,
            Some(
                TypeSet::NULL
                    .or(TypeSet::BOOLEAN)
                    .or(TypeSet::ARRAY)
                    .or(TypeSet::OBJECT)
            )
        );
        assert!(matches!(negated(&json!(true)), Sub::Bool(false)));
    }

    #[test]
    fn bounds_and_counts_flip() {
        let v = json!({"minimum": 3, "maxLength": 4});
        let Sub::Any(alts) = negated(&v) else {
            panic!("expected alternatives")
        };
        let bound = leaf_of(&alts[0]);
        assert_eq!(bound.types, Some(TypeSet::NUMBER));
        assert_eq!(
            bound.exclusive_maximum.as_ref().map(|n| n.to_string()),
            Some("3".into())
        );
        let count = leaf_of(&alts[1]);
        assert_eq!(
            (count.types, count.min_length),
            (Some(TypeSet::STRING), Some(5))
        );
    }

    #[test]
    fn enums_exclude_their_strings_and_patterns_are_avoided() {
        let v = json!({"enum": ["a", "b"]});
        let Sub::Any(alts) = negated(&v) else {
            panic!("expected alternatives")
        };
        let strings = leaf_of(&alts[1]);
        assert_eq!(
            strings.excluded_strings,
            vec!["a".to_string(), "b".to_string()]
        );
        let p = json!({"pattern": "^x"});
        assert_eq!(
            leaf_of(&negated(&p)).avoided_patterns,
            vec!["^x".to_string()]
        );
    }

    #[test]
    fn negations_nest_with_a_limit() {
        let v = json!({"not": {"not": {"type": "null"}}});
        assert!(matches!(negated(&v), Sub::Doc(_)));
        let mut deep = json!({"type": "null"});
        for _ in 0..12 {
            deep = json!({"properties": {"a": deep}});
        }
        let options = Options::default();
        let mut compiler = Compiler::new(&deep, &options);
        assert!(compiler.negate(&Sub::Doc(&deep), "#", 0).is_err());
    }
}
