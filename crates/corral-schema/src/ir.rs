//! The typed schema IR: what each keyword means, read once.
//!
//! A schema object of the document is parsed once ([`crate::parse`]) into a [`Node`]: its
//! applicators (`$ref`, `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else`,
//! `dependentSchemas`) and its [`Constraints`], the keywords that test an instance
//! directly. Subschemas are [`Sub`]s: a place in the document, or a schema the compiler
//! built (a conjunction, a disjunction, the negation of a keyword). The phases after
//! parsing — normalize, intersect, negate, lower — work on these types only; no phase
//! edits JSON.
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Number, Value};

use crate::json::json_equal;

/// A subschema, not yet normalized.
#[derive(Clone, Debug)]
pub(crate) enum Sub<'a> {
    /// `true` (every instance) or `false` (none).
    Bool(bool),
    /// A schema of the document (an object or a boolean), parsed when first used.
    Doc(&'a Value),
    /// Instances valid under every part.
    All(Arc<[Sub<'a>]>),
    /// Instances valid under some part.
    Any(Arc<[Sub<'a>]>),
    /// A schema built by the compiler, with constraints only.
    Leaf(Arc<Constraints<'a>>),
}

impl<'a> Sub<'a> {
    /// The schema with exactly these constraints.
    pub fn leaf(constraints: Constraints<'a>) -> Sub<'a> {
        Sub::Leaf(Arc::new(constraints))
    }

    /// Whether the subschema is `false` as written.
    pub fn is_false(&self) -> bool {
        matches!(self, Sub::Bool(false) | Sub::Doc(Value::Bool(false)))
    }

    /// Whether the subschema is `true` (or the empty schema) for certain.
    pub fn is_true(&self) -> bool {
        match self {
            Sub::Bool(b) => *b,
            Sub::Doc(Value::Bool(b)) => *b,
            Sub::Doc(Value::Object(m)) => m.is_empty(),
            _ => false,
        }
    }

    /// `a ∧ b`, flattening nested conjunctions and dropping `true`.
    pub fn and(a: &Sub<'a>, b: &Sub<'a>) -> Sub<'a> {
        let mut parts = Vec::new();
        for s in [a, b] {
            match s {
                s if s.is_true() => {}
                Sub::All(inner) => parts.extend(inner.iter().cloned()),
                other => parts.push(other.clone()),
            }
        }
        match parts.len() {
            0 => Sub::Bool(true),
            1 => parts.pop().unwrap_or(Sub::Bool(true)),
            _ => Sub::All(parts.into()),
        }
    }

    /// Whether two subschemas are the same schema (the same place in the document, JSON
    /// equal values, or the same built schema); `false` when unknown.
    pub fn same(&self, other: &Sub<'a>) -> bool {
        match (self, other) {
            (Sub::Bool(a), Sub::Bool(b)) => a == b,
            (Sub::Doc(a), Sub::Doc(b)) => std::ptr::eq(*a, *b) || json_equal(a, b),
            (Sub::All(a), Sub::All(b)) | (Sub::Any(a), Sub::Any(b)) => Arc::ptr_eq(a, b),
            (Sub::Leaf(a), Sub::Leaf(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// A parsed schema object.
#[derive(Clone, Debug, Default)]
pub(crate) struct Node<'a> {
    /// `$ref`.
    pub reference: Option<&'a str>,
    /// `allOf`.
    pub all_of: Vec<Sub<'a>>,
    /// `anyOf` (an empty list admits nothing).
    pub any_of: Option<Vec<Sub<'a>>>,
    /// `oneOf`.
    pub one_of: Option<Vec<Sub<'a>>>,
    /// `not`.
    pub not: Option<Sub<'a>>,
    /// `if`, `then`, `else`.
    pub condition: Option<Sub<'a>>,
    pub then: Option<Sub<'a>>,
    pub otherwise: Option<Sub<'a>>,
    /// `dependentSchemas` (and schema-valued draft-07 `dependencies`).
    pub dependent_schemas: Vec<(String, Sub<'a>)>,
    /// `uniqueItems: true`.
    pub unique_items: bool,
    /// Keywords present that corral knows and cannot enforce (`$dynamicRef`, …).
    pub unsupported: Vec<&'static str>,
    /// The keywords that test an instance directly (shared by every branch built from
    /// this node).
    pub own: Arc<Constraints<'a>>,
}

impl Node<'_> {
    /// Whether the node is a `$ref` and nothing else (annotations aside).
    pub fn is_bare_ref(&self) -> bool {
        self.reference.is_some()
            && self.all_of.is_empty()
            && self.any_of.is_none()
            && self.one_of.is_none()
            && self.not.is_none()
            && self.condition.is_none()
            && self.then.is_none()
            && self.otherwise.is_none()
            && self.dependent_schemas.is_empty()
            && !self.unique_items
            && self.unsupported.is_empty()
            && self.own.is_unconstrained()
    }
}

/// The JSON types an instance may have, as bits; "number" is integers and non-integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TypeSet(pub u8);

impl TypeSet {
    pub const NONE: TypeSet = TypeSet(0);
    pub const ALL: TypeSet = TypeSet(0b111_1111);
    pub const NULL: TypeSet = TypeSet(1);
    pub const BOOLEAN: TypeSet = TypeSet(2);
    pub const INTEGER: TypeSet = TypeSet(4);
    /// Integers and the other numbers.
    pub const NUMBER: TypeSet = TypeSet(4 | 8);
    pub const STRING: TypeSet = TypeSet(16);
    pub const ARRAY: TypeSet = TypeSet(32);
    pub const OBJECT: TypeSet = TypeSet(64);
    pub const SCALARS: TypeSet = TypeSet(1 | 2 | 4 | 8 | 16);

    /// The set a `type` name stands for, `None` for an unknown name.
    pub fn named(name: &str) -> Option<TypeSet> {
        Some(match name {
            "null" => TypeSet::NULL,
            "boolean" => TypeSet::BOOLEAN,
            "integer" => TypeSet::INTEGER,
            "number" => TypeSet::NUMBER,
            "string" => TypeSet::STRING,
            "array" => TypeSet::ARRAY,
            "object" => TypeSet::OBJECT,
            _ => return None,
        })
    }

    /// The types of these values (an integral number counts as an integer).
    pub fn of_values(values: &[Value]) -> TypeSet {
        TypeSet(values.iter().fold(0, |acc, v| {
            acc | match v {
                Value::Null => 1,
                Value::Bool(_) => 2,
                Value::Number(n) if n.is_i64() || n.is_u64() => 4,
                Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => 4,
                Value::Number(_) => 8,
                Value::String(_) => 16,
                Value::Array(_) => 32,
                Value::Object(_) => 64,
            }
        }))
    }

    pub fn and(self, other: TypeSet) -> TypeSet {
        TypeSet(self.0 & other.0)
    }

    pub fn or(self, other: TypeSet) -> TypeSet {
        TypeSet(self.0 | other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every type of `other` is in this set.
    pub fn contains(self, other: TypeSet) -> bool {
        !other.is_empty() && self.and(other) == other
    }

    /// Whether `value` has one of these types.
    pub fn admits(self, value: &Value) -> bool {
        !self
            .and(TypeSet::of_values(std::slice::from_ref(value)))
            .is_empty()
    }
}

/// The keywords of one schema object that test an instance directly. After
/// normalization a branch is one `Constraints` (its applicators merged in).
#[derive(Clone, Debug, Default)]
pub(crate) struct Constraints<'a> {
    /// `type` (`None`: every type).
    pub types: Option<TypeSet>,
    /// `enum` (and `const`, a one-value enum).
    pub values: Option<Vec<Value>>,
    /// Strings whose value is none of these (from a negated `enum`).
    pub excluded_strings: Vec<String>,

    pub minimum: Option<Number>,
    pub exclusive_minimum: Option<Number>,
    pub maximum: Option<Number>,
    pub exclusive_maximum: Option<Number>,
    pub multiple_of: Option<Number>,

    pub min_length: Option<u32>,
    pub max_length: Option<u32>,
    pub pattern: Option<String>,
    /// Strings matching none of these patterns (from a negated `pattern`).
    pub avoided_patterns: Vec<String>,
    pub format: Option<String>,

    pub prefix_items: Option<Vec<Sub<'a>>>,
    pub items: Option<Sub<'a>>,
    pub unevaluated_items: Option<Sub<'a>>,
    pub min_items: Option<u32>,
    pub max_items: Option<u32>,
    pub contains: Option<Sub<'a>>,
    pub min_contains: Option<u64>,
    pub max_contains: Option<u64>,

    pub properties: Option<IndexMap<String, Sub<'a>>>,
    pub pattern_properties: Option<IndexMap<String, Sub<'a>>>,
    pub additional_properties: Option<Sub<'a>>,
    pub unevaluated_properties: Option<Sub<'a>>,
    pub required: Option<Vec<String>>,
    pub min_properties: Option<u32>,
    pub max_properties: Option<u32>,
    pub property_names: Option<Sub<'a>>,
    pub dependent_required: Option<IndexMap<String, Vec<String>>>,

    /// Keywords nobody defines (annotations under the spec, reported as ignored).
    pub unknown: Vec<String>,
}

impl Constraints<'_> {
    /// Whether no keyword constrains the instance (the schema is `true`).
    pub fn is_unconstrained(&self) -> bool {
        self.is_untyped_unconstrained() && self.types.is_none()
    }

    /// Whether nothing but `type` constrains the instance.
    pub fn is_untyped_unconstrained(&self) -> bool {
        let Constraints {
            types: _,
            values,
            excluded_strings,
            minimum,
            exclusive_minimum,
            maximum,
            exclusive_maximum,
            multiple_of,
            min_length,
            max_length,
            pattern,
            avoided_patterns,
            format,
            prefix_items,
            items,
            unevaluated_items,
            min_items,
            max_items,
            contains,
            min_contains,
            max_contains,
            properties,
            pattern_properties,
            additional_properties,
            unevaluated_properties,
            required,
            min_properties,
            max_properties,
            property_names,
            dependent_required,
            unknown,
        } = self;
        values.is_none()
            && excluded_strings.is_empty()
            && minimum.is_none()
            && exclusive_minimum.is_none()
            && maximum.is_none()
            && exclusive_maximum.is_none()
            && multiple_of.is_none()
            && min_length.is_none()
            && max_length.is_none()
            && pattern.is_none()
            && avoided_patterns.is_empty()
            && format.is_none()
            && prefix_items.is_none()
            && items.is_none()
            && unevaluated_items.is_none()
            && min_items.is_none()
            && max_items.is_none()
            && contains.is_none()
            && min_contains.is_none()
            && max_contains.is_none()
            && properties.is_none()
            && pattern_properties.is_none()
            && additional_properties.is_none()
            && unevaluated_properties.is_none()
            && required.is_none()
            && min_properties.is_none()
            && max_properties.is_none()
            && property_names.is_none()
            && dependent_required.is_none()
            && unknown.is_empty()
    }

    /// `unevaluatedProperties` / `unevaluatedItems` present.
    pub fn has_unevaluated(&self) -> bool {
        self.unevaluated_properties.is_some() || self.unevaluated_items.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_are_numbers() {
        assert_eq!(TypeSet::NUMBER.and(TypeSet::INTEGER), TypeSet::INTEGER);
        assert!(TypeSet::NUMBER.contains(TypeSet::INTEGER));
        assert!(!TypeSet::INTEGER.contains(TypeSet::NUMBER));
        assert!(TypeSet::INTEGER.admits(&json!(3.0)));
        assert!(!TypeSet::INTEGER.admits(&json!(3.5)));
    }

    #[test]
    fn conjunctions_flatten_and_drop_true() {
        let a = json!({"type": "string"});
        let b = json!({"minLength": 1});
        let t = json!({});
        let ab = Sub::and(&Sub::Doc(&a), &Sub::Doc(&b));
        assert!(matches!(&ab, Sub::All(parts) if parts.len() == 2));
        let abt = Sub::and(&ab, &Sub::Doc(&t));
        assert!(matches!(&abt, Sub::All(parts) if parts.len() == 2));
        assert!(matches!(
            Sub::and(&Sub::Bool(true), &Sub::Doc(&a)),
            Sub::Doc(_)
        ));
        assert!(Sub::Doc(&a).same(&Sub::Doc(&json!({"type": "string"}))));
    }
}
