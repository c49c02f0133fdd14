//! Whether `oneOf` branches can overlap: a coarse over-approximation of each branch's
//! instances (types, constant values, and for objects the names they must have, the
//! names they may have and what their values may be). Disjoint branches need no
//! negation of each other.
use serde_json::Value;

use crate::compiler::Compiler;
use crate::ir::{Constraints, Node, Sub, TypeSet};
use crate::json::json_equal;

/// Deepest subschema nesting looked into.
const MAX_DEPTH: usize = 8;

/// Most comparisons of property values spent on one pair of branches: shared or recursive
/// `$ref`s under many required names would otherwise multiply at every level. Past it
/// the pair counts as overlapping (negated: still sound).
const MAX_COMPARISONS: usize = 256;

/// Over-approximation of a schema's instances.
#[derive(Clone, Debug)]
pub(crate) struct Shape<'a> {
    types: TypeSet,
    /// The instance is one of these values.
    values: Option<Vec<Value>>,
    /// Names an object instance has (`required`).
    required: Vec<String>,
    /// Schemas the value of a property satisfies when the property is present (compared
    /// only where the other side requires the name: shapes of values are computed
    /// lazily, most are never needed).
    properties: Vec<(String, Sub<'a>)>,
    /// The only names an object instance may have (`additionalProperties: false` with
    /// no `patternProperties`).
    only_names: Option<Vec<String>>,
}

impl<'a> Shape<'a> {
    fn any() -> Shape<'a> {
        Shape {
            types: TypeSet::ALL,
            values: None,
            required: vec![],
            properties: vec![],
            only_names: None,
        }
    }

    fn none() -> Shape<'a> {
        Shape {
            types: TypeSet::NONE,
            values: Some(vec![]),
            ..Shape::any()
        }
    }

    fn and(mut self, other: Shape<'a>) -> Shape<'a> {
        self.types = self.types.and(other.types);
        if let Some(v) = other.values {
            self.values = Some(match self.values {
                Some(mine) => mine.into_iter().filter(|x| holds(&v, x)).collect(),
                None => v,
            });
        }
        self.required.extend(other.required);
        self.properties.extend(other.properties);
        if let Some(theirs) = other.only_names {
            self.only_names = Some(match self.only_names {
                Some(mine) => mine.into_iter().filter(|n| theirs.contains(n)).collect(),
                None => theirs,
            });
        }
        self
    }
}

impl<'a> Compiler<'a> {
    /// For each pair of `oneOf` branches, whether they provably never both accept an
    /// instance that also fits `context` (the shape of the schema around them):
    /// `disjoint[i][j]`.
    pub(crate) fn disjoint_pairs(
        &mut self,
        branches: &[Sub<'a>],
        context: &Shape<'a>,
    ) -> Vec<Vec<bool>> {
        let shapes: Vec<Shape<'a>> = branches
            .iter()
            .map(|b| context.clone().and(self.shape(b, 0)))
            .collect();
        let n = shapes.len();
        let mut disjoint = vec![vec![false; n]; n];
        for i in 0..n {
            for j in i + 1..n {
                let mut budget = MAX_COMPARISONS;
                let d = self.shapes_disjoint(&shapes[i], &shapes[j], 0, &mut budget);
                disjoint[i][j] = d;
                disjoint[j][i] = d;
            }
        }
        disjoint
    }

    /// Whether no instance fits both over-approximations (`false` when unsure, or when
    /// `budget` comparisons of property values are spent).
    fn shapes_disjoint(
        &mut self,
        a: &Shape<'a>,
        b: &Shape<'a>,
        depth: usize,
        budget: &mut usize,
    ) -> bool {
        let common = a.types.and(b.types);
        if common.is_empty() {
            return true;
        }
        if let (Some(x), Some(y)) = (&a.values, &b.values) {
            if !x.iter().any(|v| holds(y, v)) {
                return true;
            }
        }
        // Object constraints separate only when no other type is common to both.
        if common != TypeSet::OBJECT || depth > MAX_DEPTH {
            return false;
        }
        for (x, y) in [(a, b), (b, a)] {
            for name in &x.required {
                if y.only_names
                    .as_ref()
                    .is_some_and(|names| !names.contains(name))
                {
                    return true;
                }
                // Values of a name both require: compared once, in the first order.
                if std::ptr::eq(x, b) && a.required.contains(name) {
                    continue;
                }
                for (key, sx) in x.properties.iter().filter(|(k, _)| k == name) {
                    for (_, sy) in y.properties.iter().filter(|(k, _)| k == key) {
                        if *budget == 0 {
                            return false;
                        }
                        *budget -= 1;
                        let (sx, sy) = (self.shape(sx, depth + 1), self.shape(sy, depth + 1));
                        if self.shapes_disjoint(&sx, &sy, depth + 1, budget) {
                            return true;
                        }
                    }
                }
            }
        }
        false
    }

    fn shape(&mut self, schema: &Sub<'a>, depth: usize) -> Shape<'a> {
        if depth > MAX_DEPTH {
            return Shape::any();
        }
        match schema {
            Sub::Bool(false) | Sub::Doc(Value::Bool(false)) => Shape::none(),
            Sub::Bool(true) | Sub::Doc(Value::Bool(true)) => Shape::any(),
            Sub::Doc(value) => {
                // A schema that does not parse is an error elsewhere.
                let Ok(node) = self.node(value, "#") else {
                    return Shape::any();
                };
                let mut shape = self.node_shape(&node, depth);
                for alternatives in [&node.any_of, &node.one_of].into_iter().flatten() {
                    shape.types = shape.types.and(self.types_of_any(alternatives, depth));
                }
                shape
            }
            Sub::All(parts) => parts
                .iter()
                .fold(Shape::any(), |s, p| s.and(self.shape(p, depth + 1))),
            Sub::Any(parts) => Shape {
                types: self.types_of_any(parts, depth),
                ..Shape::any()
            },
            Sub::Leaf(c) => self.constraints_shape(c),
        }
    }

    /// The shape of a node's own constraints, `$ref` and `allOf` (what every branch of
    /// its `anyOf`/`oneOf` is conjoined with).
    pub(crate) fn node_shape(&mut self, node: &Node<'a>, depth: usize) -> Shape<'a> {
        let mut shape = self.constraints_shape(&node.own);
        if let Some(reference) = node.reference {
            if let Ok((_, target)) = self.references.resolve(reference, "#") {
                shape = shape.and(self.shape(&Sub::Doc(target), depth + 1));
            }
        }
        for sub in &node.all_of {
            shape = shape.and(self.shape(sub, depth + 1));
        }
        shape
    }

    fn types_of_any(&mut self, alternatives: &[Sub<'a>], depth: usize) -> TypeSet {
        alternatives
            .iter()
            .fold(TypeSet::NONE, |t, s| t.or(self.shape(s, depth + 1).types))
    }

    fn constraints_shape(&mut self, c: &Constraints<'a>) -> Shape<'a> {
        let mut shape = Shape::any();
        if let Some(types) = c.types {
            shape.types = types;
        }
        if let Some(values) = &c.values {
            shape.types = shape.types.and(TypeSet::of_values(values));
            shape.values = Some(values.clone());
        }
        if let Some(required) = &c.required {
            shape.required = required.clone();
        }
        if let Some(props) = &c.properties {
            shape.properties = props.iter().map(|(k, s)| (k.clone(), s.clone())).collect();
        }
        let no_patterns = c.pattern_properties.as_ref().is_none_or(|p| p.is_empty());
        if no_patterns && c.additional_properties.as_ref().is_some_and(Sub::is_false) {
            shape.only_names = Some(
                c.properties
                    .iter()
                    .flat_map(|p| p.keys().cloned())
                    .collect(),
            );
        }
        shape
    }
}

/// Whether `values` holds `v` (as JSON values: 1 and 1.0 are equal).
fn holds(values: &[Value], v: &Value) -> bool {
    values.iter().any(|y| json_equal(v, y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use serde_json::json;

    /// Whether every pair of the schema's `oneOf` branches is disjoint, in the context of
    /// the schema's own keywords.
    fn disjoint(schema: &Value) -> bool {
        let options = Options::default();
        let mut compiler = Compiler::new(schema, &options);
        let node = compiler.node(schema, "#").unwrap();
        let context = compiler.node_shape(&node, 0);
        let branches = node.one_of.clone().unwrap();
        let pairs = compiler.disjoint_pairs(&branches, &context);
        pairs
            .iter()
            .enumerate()
            .all(|(i, row)| row.iter().enumerate().all(|(j, d)| i == j || *d))
    }

    #[test]
    fn comparisons_of_shared_recursive_references_stop_at_the_budget() {
        // Eight required names whose values are the same recursive definition: each
        // level multiplies the comparisons by 16 (half a minute without the budget).
        let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
        let properties: serde_json::Map<String, Value> = names
            .iter()
            .map(|n| (n.to_string(), json!({"$ref": "#/$defs/T"})))
            .collect();
        let schema = json!({
            "$defs": {"T": {"type": "object", "required": names, "properties": properties}},
            "oneOf": [{"$ref": "#/$defs/T"}, {"$ref": "#/$defs/T"}]
        });
        let options = Options::default();
        let mut compiler = Compiler::new(&schema, &options);
        let node = compiler.node(&schema, "#").unwrap();
        let branches = node.one_of.clone().unwrap();
        let shapes: Vec<Shape<'_>> = branches.iter().map(|b| compiler.shape(b, 0)).collect();
        let mut budget = MAX_COMPARISONS;
        assert!(!compiler.shapes_disjoint(&shapes[0], &shapes[1], 0, &mut budget));
        // Undecided because the budget ran out, not because the search finished.
        assert_eq!(budget, 0);
    }

    #[test]
    fn closed_objects_and_property_values_separate_branches() {
        // A name one branch requires and the other's `additionalProperties: false`
        // forbids, once the context says the instance is an object.
        let closed = |ty: Value| {
            json!({"type": ty, "oneOf": [
                {"properties": {"a": {}, "b": {}}, "required": ["a", "b"],
                 "additionalProperties": false},
                {"properties": {"a": {}}, "required": ["a"], "additionalProperties": false}
            ]})
        };
        assert!(disjoint(&closed(json!("object"))));
        // Without the context both accept any string.
        assert!(!disjoint(&closed(json!(["object", "string"]))));
        // With `patternProperties` the other name may be allowed.
        assert!(!disjoint(&json!({"type": "object", "oneOf": [
            {"required": ["b"]},
            {"patternProperties": {"^b": {}}, "additionalProperties": false}
        ]})));
        // A required property's value against the other branch's (optional) property,
        // compared as shapes, nested.
        assert!(disjoint(&json!({"type": "object", "oneOf": [
            {"required": ["mode"], "properties": {"mode": {"enum": ["a", "b"]}}},
            {"properties": {"mode": {"const": "c"}}, "required": ["x"]}
        ]})));
        assert!(disjoint(&json!({"type": "object", "oneOf": [
            {"required": ["c"], "properties": {"c": {"type": "object", "required": ["k"],
                                                     "properties": {"k": {"const": 1}}}}},
            {"required": ["c"], "properties": {"c": {"type": "object", "required": ["k"],
                                                     "properties": {"k": {"const": 2}}}}}
        ]})));
        // Neither requires the name: an instance without it fits both.
        assert!(!disjoint(&json!({"type": "object", "oneOf": [
            {"properties": {"mode": {"const": "a"}}},
            {"properties": {"mode": {"const": "b"}}}
        ]})));
    }

    #[test]
    fn types_values_and_tags_separate_branches() {
        assert!(disjoint(
            &json!({"oneOf": [{"type": "string"}, {"type": "integer"}]})
        ));
        assert!(!disjoint(
            &json!({"oneOf": [{"type": "number"}, {"type": "integer"}]})
        ));
        assert!(disjoint(
            &json!({"oneOf": [{"const": 1}, {"enum": [2, 3]}]})
        ));
        let tagged = json!({"oneOf": [
            {"type": "object", "required": ["kind"], "properties": {"kind": {"const": "a"}}},
            {"$ref": "#/$defs/b"}
        ], "$defs": {"b": {"type": "object", "required": ["kind"],
                           "properties": {"kind": {"const": "b"}}}}});
        assert!(disjoint(&tagged));
        assert!(!disjoint(
            &json!({"oneOf": [{"minimum": 1}, {"maximum": 5}]})
        ));
    }
}
