//! Phase 2: a schema into a disjunction of [`Branch`]es, each one set of constraints.
//! `$ref`, `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else` and `dependentSchemas`
//! are expanded; the conjuncts of a schema object are merged by
//! [`intersect`](crate::intersect), distributed over their alternatives.
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::Value;

use crate::compiler::{pattern_matches, Compiler, MAX_EXPANSIONS};
use crate::error::SchemaError;
use crate::intersect::intersect;
use crate::ir::{Constraints, Node, Sub, TypeSet};
use crate::pointer;
use crate::shape::Shape;

/// Most branches one schema node may normalize into (anyOf × anyOf products).
pub(crate) const MAX_BRANCHES: usize = 256;

/// One alternative of a normalized schema, with the `$ref`s expanded to produce it
/// (their expansion stays "open" while its subschemas are compiled, for recursion
/// limits).
#[derive(Clone, Debug)]
pub(crate) struct Branch<'a> {
    pub constraints: Arc<Constraints<'a>>,
    pub refs: Vec<String>,
    /// Built from a negation (`not`, the `else` side of `if`, overlapping `oneOf`): its
    /// properties must not count as evaluated for an enclosing `unevaluated*`.
    pub negated: bool,
}

impl<'a> Branch<'a> {
    fn of(constraints: Arc<Constraints<'a>>) -> Branch<'a> {
        Branch {
            constraints,
            refs: vec![],
            negated: false,
        }
    }
}

fn mark_negated(mut branches: Vec<Branch<'_>>) -> Vec<Branch<'_>> {
    for b in &mut branches {
        b.negated = true;
    }
    branches
}

fn too_many(keyword: &str, ptr: &str, what: &str) -> SchemaError {
    SchemaError::unsupported(
        keyword,
        ptr,
        format!("{what} to more than {MAX_BRANCHES} alternatives"),
    )
}

impl<'a> Compiler<'a> {
    /// The branches of `schema` (found at `ptr`).
    pub(crate) fn normalize(
        &mut self,
        schema: &Sub<'a>,
        ptr: &str,
    ) -> Result<Vec<Branch<'a>>, SchemaError> {
        match schema {
            Sub::Bool(true) | Sub::Doc(Value::Bool(true)) => {
                Ok(vec![Branch::of(Arc::new(Constraints::default()))])
            }
            Sub::Bool(false) | Sub::Doc(Value::Bool(false)) => Ok(vec![]),
            Sub::Doc(value) => {
                let node = self.node(value, ptr)?;
                self.normalize_node(&node, ptr)
            }
            Sub::All(parts) => {
                let mut conjuncts = Vec::with_capacity(parts.len());
                for part in parts.iter() {
                    conjuncts.push(self.normalize(part, ptr)?);
                }
                self.distribute(conjuncts, ptr)
            }
            Sub::Any(parts) => {
                let mut branches = Vec::new();
                for part in parts.iter() {
                    branches.extend(self.normalize(part, ptr)?);
                }
                if branches.len() > MAX_BRANCHES {
                    return Err(too_many("anyOf", ptr, "the alternatives expand"));
                }
                Ok(branches)
            }
            Sub::Leaf(constraints) => Ok(vec![Branch::of(constraints.clone())]),
        }
    }

    fn normalize_node(
        &mut self,
        node: &Node<'a>,
        ptr: &str,
    ) -> Result<Vec<Branch<'a>>, SchemaError> {
        for keyword in &node.unsupported {
            self.unsupported(keyword, ptr, "this keyword is not supported")?;
        }
        // Enforceable only when at most one item can exist.
        if node.unique_items && node.own.max_items.is_none_or(|m| m > 1) {
            self.unsupported(
                "uniqueItems",
                ptr,
                "uniqueness of array items is not regular",
            )?;
        }
        let base_has_unevaluated = node.own.has_unevaluated();
        let mut conjuncts: Vec<Vec<Branch<'a>>> = vec![vec![Branch::of(node.own.clone())]];
        if let Some(reference) = node.reference {
            let (target_ptr, target) = self.references.resolve(reference, ptr)?;
            let expansions = self.open_refs.iter().filter(|r| **r == target_ptr).count();
            if expansions > self.options.max_recursion_depth {
                return Ok(vec![]);
            }
            self.expansions += 1;
            if self.expansions > MAX_EXPANSIONS {
                return Err(SchemaError::TooManyExpansions {
                    limit: MAX_EXPANSIONS,
                    pointer: ptr.to_string(),
                });
            }
            self.open_refs.push(target_ptr.clone());
            let branches = self.normalize(&Sub::Doc(target), &target_ptr);
            self.open_refs.pop();
            let mut branches = branches?;
            for b in &mut branches {
                b.refs.insert(0, target_ptr.clone());
            }
            conjuncts.push(branches);
        }
        for (i, sub) in node.all_of.iter().enumerate() {
            conjuncts.push(self.normalize(sub, &format!("{ptr}/allOf/{i}"))?);
        }
        if let Some(any) = &node.any_of {
            let mut branches = Vec::new();
            for (i, sub) in any.iter().enumerate() {
                branches.extend(self.normalize(sub, &format!("{ptr}/anyOf/{i}"))?);
            }
            conjuncts.push(branches);
        }
        if let Some(one) = &node.one_of {
            let context = self.node_shape(node, 0);
            conjuncts.push(self.one_of(one, &context, base_has_unevaluated, ptr)?);
        }
        // if/then/else = (if ∧ then) ∨ (¬if ∧ else); `if` alone, or `then`/`else` without
        // `if`, have no effect.
        if let Some(condition) = node
            .condition
            .as_ref()
            .filter(|_| node.then.is_some() || node.otherwise.is_some())
        {
            let p = format!("{ptr}/if");
            if base_has_unevaluated {
                // The negated condition's properties would count as evaluated.
                self.unsupported(
                    "if",
                    ptr,
                    "`if` next to `unevaluatedProperties`/`unevaluatedItems`",
                )?;
            }
            let not_condition = self.negate(condition, &p, 0)?;
            let or_true = |s: &Option<Sub<'a>>| s.clone().unwrap_or(Sub::Bool(true));
            let yes = Sub::and(condition, &or_true(&node.then));
            let no = Sub::and(&not_condition, &or_true(&node.otherwise));
            conjuncts.push(mark_negated(
                self.normalize(&Sub::Any(Arc::new([yes, no])), &p)?,
            ));
        }
        // dependentSchemas {a: S}: a non-object, an object without `a`, or `a` present and S.
        for (name, schema) in &node.dependent_schemas {
            let p = pointer::join(&format!("{ptr}/dependentSchemas"), name);
            let not_object = Sub::leaf(Constraints {
                types: Some(TypeSet(TypeSet::ALL.0 & !TypeSet::OBJECT.0)),
                ..Constraints::default()
            });
            let without = Sub::leaf(Constraints {
                types: Some(TypeSet::OBJECT),
                properties: Some(IndexMap::from([(name.clone(), Sub::Bool(false))])),
                ..Constraints::default()
            });
            let with = Sub::and(
                &Sub::leaf(Constraints {
                    required: Some(vec![name.clone()]),
                    ..Constraints::default()
                }),
                schema,
            );
            let either = Sub::Any(Arc::new([not_object, without, with]));
            conjuncts.push(self.normalize(&either, &p)?);
        }
        if let Some(negated) = &node.not {
            // Annotations from `not` never count as evaluated; merging its positive form
            // with `unevaluated*` (here or in a combined branch) would.
            if conjuncts
                .iter()
                .flatten()
                .any(|b| b.constraints.has_unevaluated())
            {
                self.unsupported(
                    "not",
                    ptr,
                    "`not` next to `unevaluatedProperties`/`unevaluatedItems`",
                )?;
            }
            let p = format!("{ptr}/not");
            let positive = self.negate(negated, &p, 0)?;
            conjuncts.push(mark_negated(self.normalize(&positive, &p)?));
        }
        if base_has_unevaluated && conjuncts.iter().skip(1).flatten().any(|b| b.negated) {
            self.unsupported(
                "unevaluatedProperties",
                ptr,
                "`unevaluated*` over a subschema built from a negation",
            )?;
        }
        let mut result = self.distribute(conjuncts, ptr)?;
        // `unevaluated*` sees the in-place applicators of its own schema object, which are
        // all merged now: from here on (for a parent that merges this branch) it acts like
        // `additionalProperties` / `items` of the merged object.
        for branch in &mut result {
            if !branch.constraints.has_unevaluated() {
                continue;
            }
            let c = Arc::make_mut(&mut branch.constraints);
            if let Some(unevaluated) = c.unevaluated_properties.take() {
                c.additional_properties = Some(match &c.additional_properties {
                    Some(existing) => Sub::and(existing, &unevaluated),
                    None => unevaluated,
                });
            }
            if let Some(unevaluated) = c.unevaluated_items.take() {
                c.items = Some(match &c.items {
                    Some(existing) => Sub::and(existing, &unevaluated),
                    None => unevaluated,
                });
            }
        }
        Ok(result)
    }

    /// `oneOf`: branch i and the negation of every other branch that may overlap it
    /// (none when the branches are provably disjoint), so that an accepted instance
    /// matches exactly one (negations that cannot be expressed shrink the branch: still
    /// sound).
    fn one_of(
        &mut self,
        items: &[Sub<'a>],
        context: &Shape<'a>,
        has_unevaluated: bool,
        ptr: &str,
    ) -> Result<Vec<Branch<'a>>, SchemaError> {
        let disjoint = self.disjoint_pairs(items, context);
        let mut branches = Vec::new();
        for (i, sub) in items.iter().enumerate() {
            let p = format!("{ptr}/oneOf/{i}");
            let overlapping: Vec<usize> = (0..items.len())
                .filter(|&j| j != i && !disjoint[i][j])
                .collect();
            if overlapping.is_empty() {
                branches.extend(self.normalize(sub, &p)?);
                continue;
            }
            if has_unevaluated {
                self.unsupported("oneOf", ptr, "overlapping branches next to `unevaluated*`")?;
            }
            let mut parts = vec![sub.clone()];
            for j in overlapping {
                parts.push(self.negate(&items[j], &format!("{ptr}/oneOf/{j}"), 0)?);
            }
            branches.extend(mark_negated(self.normalize(&Sub::All(parts.into()), &p)?));
            if branches.len() > MAX_BRANCHES {
                return Err(too_many("oneOf", ptr, "overlapping branches expand"));
            }
        }
        Ok(branches)
    }

    /// The product of the conjuncts' alternatives, each combination intersected.
    fn distribute(
        &mut self,
        conjuncts: Vec<Vec<Branch<'a>>>,
        ptr: &str,
    ) -> Result<Vec<Branch<'a>>, SchemaError> {
        let mut result = vec![Branch::of(Arc::new(Constraints::default()))];
        for alternatives in conjuncts {
            let mut next = Vec::new();
            for left in &result {
                for right in &alternatives {
                    if let Some(constraints) =
                        self.intersect(&left.constraints, &right.constraints, ptr)?
                    {
                        let mut refs = left.refs.clone();
                        refs.extend(right.refs.iter().cloned());
                        next.push(Branch {
                            constraints,
                            refs,
                            negated: left.negated || right.negated,
                        });
                    }
                }
            }
            if next.len() > MAX_BRANCHES {
                return Err(too_many("anyOf", ptr, "the combination expands"));
            }
            result = next;
        }
        Ok(result)
    }

    /// `a ∧ b` (see [`intersect`]); with `lenient`, a pair without a merged form keeps
    /// `a` and is listed as ignored.
    fn intersect(
        &mut self,
        a: &Arc<Constraints<'a>>,
        b: &Arc<Constraints<'a>>,
        ptr: &str,
    ) -> Result<Option<Arc<Constraints<'a>>>, SchemaError> {
        if a.is_unconstrained() {
            return Ok(Some(b.clone()));
        }
        if b.is_unconstrained() {
            return Ok(Some(a.clone()));
        }
        let cache = &mut self.pattern_cache;
        let result = intersect(a, b, ptr, &mut |p, k| pattern_matches(cache, p, k, ptr));
        match result {
            Ok(merged) => Ok(merged.map(Arc::new)),
            Err(e) if self.options.lenient => {
                self.ignored.push(e.to_string());
                Ok(Some(a.clone()))
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use serde_json::json;

    fn branches(schema: &Value) -> Result<Vec<Branch<'_>>, SchemaError> {
        let options = Box::leak(Box::new(Options::default()));
        let mut compiler = Compiler::new(schema, options);
        compiler.normalize(&Sub::Doc(schema), "#")
    }

    #[test]
    fn applicators_become_branches() {
        let schema = json!({
            "type": ["string", "integer"],
            "anyOf": [{"type": "string"}, {"minimum": 1}, {"type": "null"}],
            "allOf": [{"$ref": "#/$defs/short"}],
            "$defs": {"short": {"maxLength": 3}}
        });
        let b = branches(&schema).unwrap();
        // `null` contradicts `type`: two branches are left.
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].constraints.types, Some(TypeSet::STRING));
        assert_eq!(b[0].constraints.max_length, Some(3));
        assert_eq!(b[0].refs, vec!["#/$defs/short".to_string()]);
        assert_eq!(
            b[1].constraints.types,
            Some(TypeSet::STRING.or(TypeSet::INTEGER))
        );
        assert!(b[1].constraints.minimum.is_some());
    }

    #[test]
    fn overlapping_one_of_and_not_are_negated_branches() {
        let schema =
            json!({"oneOf": [{"type": "string"}, {"maxLength": 2}], "not": {"type": "null"}});
        let b = branches(&schema).unwrap();
        assert!(!b.is_empty());
        assert!(b.iter().all(|b| b.negated));
        assert!(branches(&json!(false)).unwrap().is_empty());
    }

    #[test]
    fn unevaluated_becomes_additional_after_merging() {
        let schema =
            json!({"allOf": [{"properties": {"a": true}}], "unevaluatedProperties": false});
        let b = branches(&schema).unwrap();
        assert_eq!(b.len(), 1);
        assert!(b[0].constraints.unevaluated_properties.is_none());
        assert!(b[0].constraints.additional_properties.is_some());
    }

    #[test]
    fn recursion_is_cut_off() {
        let schema = json!({"$ref": "#"});
        assert!(branches(&schema).unwrap().is_empty());
        let unique = json!({"uniqueItems": true});
        assert!(matches!(
            branches(&unique),
            Err(SchemaError::Unsupported { .. })
        ));
    }
}
