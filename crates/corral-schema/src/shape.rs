//! Whether `oneOf` branches can overlap: a coarse over-approximation of each branch's
//! instances (types, constant values, required properties with constant or typed
//! values). Disjoint branches need no negation of each other.
use serde_json::Value;

use crate::compiler::Compiler;
use crate::ir::{Constraints, Sub, TypeSet};
use crate::json::json_equal;

/// Deepest subschema nesting looked into.
const MAX_DEPTH: usize = 8;

/// Over-approximation of a schema's instances.
#[derive(Clone, Debug)]
pub(crate) struct Shape {
    types: TypeSet,
    /// The instance is one of these values.
    values: Option<Vec<Value>>,
    /// Required properties whose value is one of these constants.
    tags: Vec<(String, Vec<Value>)>,
    /// Required properties whose value has one of these types.
    tag_types: Vec<(String, TypeSet)>,
}

impl Shape {
    fn any() -> Shape {
        Shape {
            types: TypeSet::ALL,
            values: None,
            tags: vec![],
            tag_types: vec![],
        }
    }

    fn none() -> Shape {
        Shape {
            types: TypeSet::NONE,
            values: Some(vec![]),
            tags: vec![],
            tag_types: vec![],
        }
    }

    fn and(mut self, other: Shape) -> Shape {
        self.types = self.types.and(other.types);
        if let Some(v) = other.values {
            self.values = Some(match self.values {
                Some(mine) => mine
                    .into_iter()
                    .filter(|x| v.iter().any(|y| json_equal(x, y)))
                    .collect(),
                None => v,
            });
        }
        self.tags.extend(other.tags);
        self.tag_types.extend(other.tag_types);
        self
    }

    fn disjoint(&self, other: &Shape) -> bool {
        if self.types.and(other.types).is_empty() {
            return true;
        }
        if let (Some(a), Some(b)) = (&self.values, &other.values) {
            if !a.iter().any(|x| b.iter().any(|y| json_equal(x, y))) {
                return true;
            }
        }
        let objects_only = |s: &Shape| s.types == TypeSet::OBJECT;
        if objects_only(self) || objects_only(other) {
            for (key, values) in &self.tags {
                for (k2, v2) in &other.tags {
                    if key == k2 && !values.iter().any(|x| v2.iter().any(|y| json_equal(x, y))) {
                        return true;
                    }
                }
            }
            for (key, types) in &self.tag_types {
                for (k2, t2) in &other.tag_types {
                    if key == k2 && types.and(*t2).is_empty() {
                        return true;
                    }
                }
            }
        }
        false
    }
}

impl<'a> Compiler<'a> {
    /// Whether the `oneOf` branches provably never both accept an instance.
    pub(crate) fn pairwise_disjoint(&mut self, branches: &[Sub<'a>]) -> bool {
        let shapes: Vec<Shape> = branches.iter().map(|b| self.shape(b, 0)).collect();
        for i in 0..shapes.len() {
            for j in i + 1..shapes.len() {
                if !shapes[i].disjoint(&shapes[j]) {
                    return false;
                }
            }
        }
        true
    }

    fn shape(&mut self, schema: &Sub<'a>, depth: usize) -> Shape {
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
                let mut shape = self.constraints_shape(&node.own, depth);
                if let Some(reference) = node.reference {
                    if let Ok((_, target)) = self.references.resolve(reference, "#") {
                        shape = shape.and(self.shape(&Sub::Doc(target), depth + 1));
                    }
                }
                for sub in &node.all_of {
                    shape = shape.and(self.shape(sub, depth + 1));
                }
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
            Sub::Leaf(c) => self.constraints_shape(c, depth),
        }
    }

    fn types_of_any(&mut self, alternatives: &[Sub<'a>], depth: usize) -> TypeSet {
        alternatives
            .iter()
            .fold(TypeSet::NONE, |t, s| t.or(self.shape(s, depth + 1).types))
    }

    fn constraints_shape(&mut self, c: &Constraints<'a>, depth: usize) -> Shape {
        let mut shape = Shape::any();
        if let Some(types) = c.types {
            shape.types = types;
        }
        if let Some(values) = &c.values {
            shape.types = shape.types.and(TypeSet::of_values(values));
            shape.values = Some(values.clone());
        }
        if let (Some(props), Some(required)) = (&c.properties, &c.required) {
            for key in required {
                if let Some(sub) = props.get(key) {
                    let s = self.shape(sub, depth + 1);
                    if let Some(values) = s.values {
                        shape.tags.push((key.clone(), values));
                    } else if s.types != TypeSet::ALL {
                        shape.tag_types.push((key.clone(), s.types));
                    }
                }
            }
        }
        shape
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use serde_json::json;

    fn disjoint(schema: &Value) -> bool {
        let options = Options::default();
        let mut compiler = Compiler::new(schema, &options);
        let branches: Vec<Sub<'_>> = schema["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(Sub::Doc)
            .collect();
        compiler.pairwise_disjoint(&branches)
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
