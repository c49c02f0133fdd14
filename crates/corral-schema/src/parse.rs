//! Phase 1: read a schema object into a typed [`Node`]. Each keyword is read (and its
//! value checked) here and nowhere else; older drafts' spellings are read as their
//! draft 2020-12 meaning (array-valued `items` + `additionalItems`, boolean
//! `exclusiveMinimum`/`exclusiveMaximum`, `dependencies`, `const`).
use indexmap::IndexMap;
use serde_json::{Map, Number, Value};

use crate::error::SchemaError;
use std::sync::Arc;

use crate::ir::{Constraints, Node, Sub, TypeSet};
use crate::json::json_equal;

/// Keywords that never constrain an instance.
pub(crate) const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "id",
    "$anchor",
    "$dynamicAnchor",
    "$comment",
    "$defs",
    "definitions",
    "$vocabulary",
    "title",
    "description",
    "default",
    "examples",
    "example",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
];

/// The draft a schema declares with `$schema` at its root, as far as it changes what the
/// keywords mean: validators (Python's `jsonschema`, Rust's `jsonschema`) pick their rules
/// by it.
/// In order: a draft has every keyword of the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Draft {
    Draft4,
    Draft6,
    Draft7,
    /// 2019-09, 2020-12, or none declared.
    Modern,
}

impl Draft {
    /// The draft `root` declares (draft 3 read as draft 4).
    pub fn of(root: &Value) -> Draft {
        let declared = root.get("$schema").and_then(Value::as_str).unwrap_or("");
        if declared.contains("draft-03") || declared.contains("draft-04") {
            Draft::Draft4
        } else if declared.contains("draft-06") {
            Draft::Draft6
        } else if declared.contains("draft-07") {
            Draft::Draft7
        } else {
            Draft::Modern
        }
    }

    /// Whether `keyword` came after this draft: its validators ignore it like any
    /// unknown keyword.
    fn is_later(self, keyword: &str) -> bool {
        const SINCE_2019: &[&str] = &[
            "dependentRequired",
            "dependentSchemas",
            "prefixItems",
            "unevaluatedProperties",
            "unevaluatedItems",
            "minContains",
            "maxContains",
        ];
        (self < Draft::Modern && SINCE_2019.contains(&keyword))
            || (self < Draft::Draft7 && matches!(keyword, "if" | "then" | "else"))
            || (self < Draft::Draft6 && matches!(keyword, "const" | "contains" | "propertyNames"))
    }

    /// Whether `$ref` makes its sibling keywords ignored (drafts 4 to 7).
    fn ref_overrides_siblings(self) -> bool {
        self != Draft::Modern
    }
}

/// Validation keywords we know and cannot (yet) enforce.
const UNSUPPORTED: &[&str] = &["$dynamicRef", "$recursiveRef", "$recursiveAnchor"];

/// Read the schema object `map` (found at `ptr`, for errors) as `draft` reads it.
pub(crate) fn parse_node<'a>(
    map: &'a Map<String, Value>,
    ptr: &str,
    draft: Draft,
) -> Result<Node<'a>, SchemaError> {
    let invalid = |reason: String| SchemaError::invalid(ptr, reason);
    let schemas = |key: &str, v: &'a Value| -> Result<Vec<Sub<'a>>, SchemaError> {
        let items = v
            .as_array()
            .ok_or_else(|| invalid(format!("`{key}` must be an array")))?;
        Ok(items.iter().map(Sub::Doc).collect())
    };
    let schema_map = |key: &str, v: &'a Value| -> Result<IndexMap<String, Sub<'a>>, SchemaError> {
        let items = v
            .as_object()
            .ok_or_else(|| invalid(format!("`{key}` must be an object")))?;
        Ok(items
            .iter()
            .map(|(k, s)| (k.clone(), Sub::Doc(s)))
            .collect())
    };
    let number = |key: &str, v: &Value| -> Result<Number, SchemaError> {
        match v {
            Value::Number(n) => Ok(n.clone()),
            _ => Err(invalid(format!("`{key}` must be a number"))),
        }
    };
    let count = |key: &str, v: &Value| -> Result<u32, SchemaError> {
        match v.as_f64() {
            Some(f) if f >= 0.0 && f.fract() == 0.0 => Ok(f.min(u32::MAX as f64) as u32),
            _ => Err(invalid(format!("`{key}` must be a non-negative integer"))),
        }
    };
    let string = |key: &str, v: &Value| -> Result<String, SchemaError> {
        v.as_str()
            .map(String::from)
            .ok_or_else(|| invalid(format!("`{key}` must be a string")))
    };
    let names = |key: &str, v: &Value| -> Result<Vec<String>, SchemaError> {
        v.as_array()
            .ok_or_else(|| invalid(format!("`{key}` must be an array")))?
            .iter()
            .map(|n| n.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| invalid(format!("`{key}` entries must be strings")))
    };
    let dependent_required =
        |key: &str, v: &Value| -> Result<IndexMap<String, Vec<String>>, SchemaError> {
            let deps = v
                .as_object()
                .ok_or_else(|| invalid(format!("`{key}` must be an object")))?;
            deps.iter()
                .map(|(name, needed)| Ok((name.clone(), names(key, needed)?)))
                .collect()
        };

    let mut node = Node::default();
    let mut own = Constraints::default();
    let c = &mut own;
    let mut constant = None;
    let mut exclusive_flags = Vec::new();
    let array_items = matches!(map.get("items"), Some(Value::Array(_)));
    let only_ref = draft.ref_overrides_siblings() && map.contains_key("$ref");
    for (key, v) in map {
        let key = key.as_str();
        if (only_ref && key != "$ref") || draft.is_later(key) {
            continue;
        }
        match key {
            k if ANNOTATIONS.contains(&k) => {}
            "$ref" => {
                node.reference = Some(
                    v.as_str()
                        .ok_or_else(|| invalid("`$ref` must be a string".into()))?,
                )
            }
            "allOf" => node.all_of = schemas(key, v)?,
            "anyOf" => node.any_of = Some(schemas(key, v)?),
            "oneOf" => node.one_of = Some(schemas(key, v)?),
            "not" => node.not = Some(Sub::Doc(v)),
            "if" => node.condition = Some(Sub::Doc(v)),
            "then" => node.then = Some(Sub::Doc(v)),
            "else" => node.otherwise = Some(Sub::Doc(v)),
            "dependentSchemas" => {
                node.dependent_schemas.extend(schema_map(key, v)?);
            }
            "dependencies" if v.is_object() => {
                for (name, dep) in v.as_object().into_iter().flatten() {
                    if dep.is_array() {
                        let needed = names(key, dep)?;
                        let all = c.dependent_required.get_or_insert_with(IndexMap::new);
                        let entry = all.entry(name.clone()).or_default();
                        for n in needed {
                            if !entry.contains(&n) {
                                entry.push(n);
                            }
                        }
                    } else {
                        node.dependent_schemas.push((name.clone(), Sub::Doc(dep)));
                    }
                }
            }
            "uniqueItems" => node.unique_items = v == &Value::Bool(true),
            k if UNSUPPORTED.contains(&k) => {
                if let Some(k) = UNSUPPORTED.iter().find(|u| **u == k) {
                    node.unsupported.push(k);
                }
            }
            "type" => c.types = Some(types(v, ptr)?),
            "enum" => {
                c.values = Some(
                    v.as_array()
                        .ok_or_else(|| invalid("`enum` must be an array".into()))?
                        .clone(),
                )
            }
            "const" => constant = Some(v.clone()),
            "minimum" => c.minimum = Some(number(key, v)?),
            "maximum" => c.maximum = Some(number(key, v)?),
            "exclusiveMinimum" | "exclusiveMaximum" if v.is_boolean() => {
                exclusive_flags.push((key, v == &Value::Bool(true)))
            }
            "exclusiveMinimum" => c.exclusive_minimum = Some(number(key, v)?),
            "exclusiveMaximum" => c.exclusive_maximum = Some(number(key, v)?),
            "multipleOf" => c.multiple_of = Some(number(key, v)?),
            "minLength" => c.min_length = Some(count(key, v)?),
            "maxLength" => c.max_length = Some(count(key, v)?),
            "pattern" => c.pattern = Some(string(key, v)?),
            "format" => c.format = Some(string(key, v)?),
            "items" if array_items => {
                // Draft 4–2019: `items: [..]` is the prefix; `additionalItems` the rest.
                if !map.contains_key("prefixItems") {
                    c.prefix_items = Some(schemas(key, v)?);
                }
                if let Some(rest) = map.get("additionalItems") {
                    c.items = Some(Sub::Doc(rest));
                }
            }
            "items" => c.items = Some(Sub::Doc(v)),
            // Only applies next to an array-valued `items`.
            "additionalItems" => {}
            "prefixItems" => c.prefix_items = Some(schemas(key, v)?),
            "unevaluatedItems" => c.unevaluated_items = Some(Sub::Doc(v)),
            "minItems" => c.min_items = Some(count(key, v)?),
            "maxItems" => c.max_items = Some(count(key, v)?),
            "contains" => c.contains = Some(Sub::Doc(v)),
            "minContains" | "maxContains" => {
                let n = v
                    .as_u64()
                    .ok_or_else(|| invalid(format!("`{key}` must be an integer")))?;
                if key == "minContains" {
                    c.min_contains = Some(n);
                } else {
                    c.max_contains = Some(n);
                }
            }
            "properties" => c.properties = Some(schema_map(key, v)?),
            "patternProperties" => c.pattern_properties = Some(schema_map(key, v)?),
            "additionalProperties" => c.additional_properties = Some(Sub::Doc(v)),
            "unevaluatedProperties" => c.unevaluated_properties = Some(Sub::Doc(v)),
            "required" => c.required = Some(names(key, v)?),
            "minProperties" => c.min_properties = Some(count(key, v)?),
            "maxProperties" => c.max_properties = Some(count(key, v)?),
            "propertyNames" => c.property_names = Some(Sub::Doc(v)),
            "dependentRequired" => {
                let deps = dependent_required(key, v)?;
                let all = c.dependent_required.get_or_insert_with(IndexMap::new);
                for (name, needed) in deps {
                    let entry = all.entry(name).or_default();
                    for n in needed {
                        if !entry.contains(&n) {
                            entry.push(n);
                        }
                    }
                }
            }
            other => c.unknown.push(other.to_string()),
        }
    }
    for (flag, exclusive) in exclusive_flags {
        // Draft 4: a boolean flag makes `minimum`/`maximum` exclusive.
        if !exclusive {
            continue;
        }
        let (bound, exclusive_bound) = if flag == "exclusiveMinimum" {
            (&mut c.minimum, &mut c.exclusive_minimum)
        } else {
            (&mut c.maximum, &mut c.exclusive_maximum)
        };
        let bound_name = if flag == "exclusiveMinimum" {
            "minimum"
        } else {
            "maximum"
        };
        match bound.take() {
            Some(value) => *exclusive_bound = Some(value),
            None => return Err(invalid(format!("boolean `{flag}` without `{bound_name}`"))),
        }
    }
    if let Some(value) = constant {
        c.values = Some(match c.values.take() {
            Some(values) if values.iter().any(|v| json_equal(v, &value)) => vec![value],
            Some(_) => vec![],
            None => vec![value],
        });
    }
    node.own = Arc::new(own);
    Ok(node)
}

/// A `type` value: a name or a list of names.
fn types(v: &Value, ptr: &str) -> Result<TypeSet, SchemaError> {
    let name = |n: &str| {
        TypeSet::named(n).ok_or_else(|| SchemaError::invalid(ptr, format!("unknown type `{n}`")))
    };
    match v {
        Value::String(s) => name(s),
        Value::Array(items) => items.iter().try_fold(TypeSet::NONE, |acc, item| {
            let n = item
                .as_str()
                .ok_or_else(|| SchemaError::invalid(ptr, "`type` entries must be strings"))?;
            Ok(acc.or(name(n)?))
        }),
        _ => Err(SchemaError::invalid(
            ptr,
            "`type` must be a string or an array",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: &Value) -> Node<'_> {
        parse_node(v.as_object().unwrap(), "#", Draft::Modern).unwrap()
    }

    #[test]
    fn keywords_are_typed() {
        let v = json!({"type": ["integer", "null"], "minimum": 1, "maxLength": 3.0,
                       "required": ["a"], "properties": {"a": true}, "title": "t", "x-y": 1});
        let n = node(&v);
        assert_eq!(n.own.types, Some(TypeSet::INTEGER.or(TypeSet::NULL)));
        assert_eq!(
            n.own.minimum.as_ref().map(|m| m.to_string()),
            Some("1".into())
        );
        assert_eq!(n.own.max_length, Some(3));
        assert_eq!(n.own.required, Some(vec!["a".to_string()]));
        assert_eq!(n.own.unknown, vec!["x-y".to_string()]);
        assert!(n
            .own
            .properties
            .as_ref()
            .is_some_and(|p| p.contains_key("a")));
    }

    #[test]
    fn older_drafts_read_as_2020_12() {
        let v = json!({"items": [{"type": "string"}], "additionalItems": false,
                       "minimum": 2, "exclusiveMinimum": true, "exclusiveMaximum": false,
                       "dependencies": {"a": ["b"], "c": {"required": ["d"]}},
                       "const": 5, "enum": [5, 6]});
        let n = node(&v);
        assert_eq!(n.own.prefix_items.as_ref().map(Vec::len), Some(1));
        assert!(matches!(n.own.items, Some(Sub::Doc(Value::Bool(false)))));
        assert!(n.own.minimum.is_none());
        assert_eq!(
            n.own.exclusive_minimum.as_ref().map(|m| m.to_string()),
            Some("2".into())
        );
        assert_eq!(
            n.own.dependent_required.as_ref().map(|d| d["a"].clone()),
            Some(vec!["b".into()])
        );
        assert_eq!(n.dependent_schemas.len(), 1);
        assert_eq!(n.own.values, Some(vec![json!(5)]));
        // `additionalItems` without an array `items` means nothing.
        assert!(node(&json!({"additionalItems": false}))
            .own
            .is_unconstrained());
    }

    #[test]
    fn bad_values_are_errors_naming_the_keyword() {
        for (schema, reason) in [
            (json!({"type": "text"}), "unknown type `text`"),
            (
                json!({"minLength": -1}),
                "`minLength` must be a non-negative integer",
            ),
            (json!({"required": "a"}), "`required` must be an array"),
            (
                json!({"exclusiveMaximum": true}),
                "boolean `exclusiveMaximum` without `maximum`",
            ),
            (json!({"$ref": 5}), "`$ref` must be a string"),
        ] {
            let err = parse_node(schema.as_object().unwrap(), "#/x", Draft::Modern).unwrap_err();
            assert_eq!(err, SchemaError::invalid("#/x", reason), "{schema}");
        }
    }

    #[test]
    fn bare_refs() {
        assert!(node(&json!({"$ref": "#/a", "description": "d"})).is_bare_ref());
        assert!(!node(&json!({"$ref": "#/a", "type": "string"})).is_bare_ref());
        assert!(!node(&json!({"$ref": "#/a", "x-unknown": 1})).is_bare_ref());
    }
}
