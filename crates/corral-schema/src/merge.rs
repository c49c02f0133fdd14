//! Intersecting schemas (`allOf`, `$ref` with siblings) and reading older drafts.
//!
//! Two schema objects are merged keyword by keyword into one object whose instances are
//! exactly those valid under both. Where a pair of keywords has no exact merged form
//! (two different `pattern`s, say), merging fails with an explicit error.
use serde_json::{json, Map, Value};

use crate::error::SchemaError;

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

/// Rewrite draft-04/06/07 spellings into draft 2020-12 ones, in place:
/// `items: [..]` + `additionalItems` → `prefixItems` + `items`; boolean
/// `exclusiveMinimum`/`exclusiveMaximum`; array-valued `dependencies` →
/// `dependentRequired`; `const` → a one-element `enum`.
pub(crate) fn upgrade(map: &mut Map<String, Value>, pointer: &str) -> Result<(), SchemaError> {
    if let Some(Value::Array(_)) = map.get("items") {
        let Some(Value::Array(items)) = map.remove("items") else {
            unreachable!()
        };
        let mut prefix = items;
        if let Some(Value::Array(existing)) = map.remove("prefixItems") {
            prefix = existing;
        }
        map.insert("prefixItems".into(), Value::Array(prefix));
        if let Some(additional) = map.remove("additionalItems") {
            map.insert("items".into(), additional);
        }
    } else {
        // `additionalItems` only applies next to an array-valued `items`.
        map.remove("additionalItems");
    }
    for (flag, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(Value::Bool(exclusive)) = map.get(flag).cloned() {
            map.remove(flag);
            if exclusive {
                match map.remove(bound) {
                    Some(value) => {
                        map.insert(flag.into(), value);
                    }
                    None => {
                        return Err(SchemaError::invalid(
                            pointer,
                            format!("boolean `{flag}` without `{bound}`"),
                        ))
                    }
                }
            }
        }
    }
    if let Some(Value::Object(deps)) = map.get("dependencies").cloned() {
        let mut required = Map::new();
        let mut schemas = Map::new();
        for (key, dep) in deps {
            match dep {
                Value::Array(_) => {
                    required.insert(key, dep);
                }
                other => {
                    schemas.insert(key, other);
                }
            }
        }
        map.remove("dependencies");
        if !required.is_empty() {
            merge_into(map, "dependentRequired", Value::Object(required), pointer)?;
        }
        if !schemas.is_empty() {
            merge_into(map, "dependentSchemas", Value::Object(schemas), pointer)?;
        }
    }
    if let Some(value) = map.remove("const") {
        let value = match map.remove("enum") {
            Some(Value::Array(values)) => {
                if values.iter().any(|v| json_equal(v, &value)) {
                    json!([value])
                } else {
                    json!([])
                }
            }
            _ => json!([value]),
        };
        map.insert("enum".into(), value);
    }
    Ok(())
}

/// JSON Schema equality: numbers compare by value.
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// `{"allOf": [a, b]}`, flattening nested conjunctions and dropping `true`.
pub(crate) fn all_of(a: &Value, b: &Value) -> Value {
    let mut parts = Vec::new();
    for v in [a, b] {
        match v {
            Value::Bool(true) => {}
            Value::Object(m) if m.is_empty() => {}
            Value::Object(m) if m.len() == 1 && m.contains_key("allOf") => {
                if let Some(Value::Array(items)) = m.get("allOf") {
                    parts.extend(items.iter().cloned());
                }
            }
            other => parts.push(other.clone()),
        }
    }
    match parts.len() {
        0 => Value::Bool(true),
        1 => parts.pop().unwrap_or(Value::Bool(true)),
        _ => json!({ "allOf": parts }),
    }
}

fn merge_into(
    map: &mut Map<String, Value>,
    key: &str,
    value: Value,
    pointer: &str,
) -> Result<(), SchemaError> {
    let mut other = Map::new();
    other.insert(key.to_string(), value);
    let merged = merge(map, &other, pointer, &|_, _| false)?;
    *map = merged.unwrap_or_else(|| {
        let mut m = Map::new();
        m.insert("enum".into(), json!([]));
        m
    });
    Ok(())
}

fn type_set(value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        ),
        _ => None,
    }
}

fn intersect_types(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for t in a {
        for u in b {
            let both = match (t.as_str(), u.as_str()) {
                (x, y) if x == y => Some(x),
                ("integer", "number") | ("number", "integer") => Some("integer"),
                _ => None,
            };
            if let Some(both) = both {
                if !out.iter().any(|o: &String| o == both) {
                    out.push(both.to_string());
                }
            }
        }
    }
    out
}

fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Merge two (upgraded) schema objects into their intersection. `Ok(None)` when the
/// intersection is provably empty. `matches_pattern(pattern, key)` tells whether a
/// `patternProperties` pattern matches a property name.
pub(crate) fn merge(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    pointer: &str,
    matches_pattern: &dyn Fn(&str, &str) -> bool,
) -> Result<Option<Map<String, Value>>, SchemaError> {
    let mut out = a.clone();
    let cannot = |keyword: &str, why: &str| {
        SchemaError::unsupported(
            keyword,
            pointer,
            format!("cannot intersect in allOf/$ref: {why}"),
        )
    };
    // Properties defined on one side are constrained by the other side's
    // patternProperties / additionalProperties.
    let cross =
        |from: &Map<String, Value>, other: &Map<String, Value>, out: &mut Map<String, Value>| {
            let Some(Value::Object(props)) = from.get("properties") else {
                return;
            };
            let other_props = other.get("properties").and_then(Value::as_object);
            let other_patterns = other.get("patternProperties").and_then(Value::as_object);
            let mut merged_props = out
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (key, schema) in props {
                if other_props.is_some_and(|p| p.contains_key(key)) {
                    continue;
                }
                let mut constraint = Value::Bool(true);
                let mut matched = false;
                if let Some(patterns) = other_patterns {
                    for (pattern, s) in patterns {
                        if matches_pattern(pattern, key) {
                            matched = true;
                            constraint = all_of(&constraint, s);
                        }
                    }
                }
                if !matched {
                    if let Some(additional) = other.get("additionalProperties") {
                        constraint = additional.clone();
                    }
                }
                merged_props.insert(key.clone(), all_of(schema, &constraint));
            }
            out.insert("properties".into(), Value::Object(merged_props));
        };
    for (key, vb) in b {
        if ANNOTATIONS.contains(&key.as_str()) {
            continue;
        }
        let Some(va) = a.get(key) else {
            out.insert(key.clone(), vb.clone());
            continue;
        };
        if json_equal(va, vb) && key != "properties" {
            continue;
        }
        let merged = match key.as_str() {
            "type" => {
                let (Some(ta), Some(tb)) = (type_set(Some(va)), type_set(Some(vb))) else {
                    return Err(SchemaError::invalid(
                        pointer,
                        "`type` must be a string or an array",
                    ));
                };
                let both = intersect_types(&ta, &tb);
                if both.is_empty() {
                    return Ok(None);
                }
                Value::Array(both.into_iter().map(Value::String).collect())
            }
            "enum" => {
                let (Some(ea), Some(eb)) = (va.as_array(), vb.as_array()) else {
                    return Err(SchemaError::invalid(pointer, "`enum` must be an array"));
                };
                Value::Array(
                    ea.iter()
                        .filter(|x| eb.iter().any(|y| json_equal(x, y)))
                        .cloned()
                        .collect(),
                )
            }
            "required" | "x-corral-not-strings" | "x-corral-not-patterns" => {
                let mut all: Vec<Value> = va.as_array().cloned().unwrap_or_default();
                for r in vb.as_array().into_iter().flatten() {
                    if !all.contains(r) {
                        all.push(r.clone());
                    }
                }
                Value::Array(all)
            }
            "properties" | "patternProperties" | "dependentRequired" => {
                let (Some(ma), Some(mb)) = (va.as_object(), vb.as_object()) else {
                    return Err(SchemaError::invalid(
                        pointer,
                        format!("`{key}` must be an object"),
                    ));
                };
                let mut m = ma.clone();
                for (k, s) in mb {
                    let v = match (m.get(k), key.as_str()) {
                        (None, _) => s.clone(),
                        (Some(Value::Array(x)), "dependentRequired") => {
                            let mut all = x.clone();
                            for r in s.as_array().into_iter().flatten() {
                                if !all.contains(r) {
                                    all.push(r.clone());
                                }
                            }
                            Value::Array(all)
                        }
                        (Some(existing), _) => all_of(existing, s),
                    };
                    m.insert(k.clone(), v);
                }
                Value::Object(m)
            }
            "additionalProperties"
            | "items"
            | "propertyNames"
            | "unevaluatedProperties"
            | "unevaluatedItems" => all_of(va, vb),
            "prefixItems" => {
                let (Some(pa), Some(pb)) = (va.as_array(), vb.as_array()) else {
                    return Err(SchemaError::invalid(
                        pointer,
                        "`prefixItems` must be an array",
                    ));
                };
                let n = pa.len().max(pb.len());
                let mut items = Vec::with_capacity(n);
                for i in 0..n {
                    let x = pa
                        .get(i)
                        .or(a.get("items"))
                        .cloned()
                        .unwrap_or(Value::Bool(true));
                    let y = pb
                        .get(i)
                        .or(b.get("items"))
                        .cloned()
                        .unwrap_or(Value::Bool(true));
                    items.push(all_of(&x, &y));
                }
                Value::Array(items)
            }
            "minimum" | "exclusiveMinimum" | "minLength" | "minItems" | "minProperties"
            | "minContains" => {
                let (Some(x), Some(y)) = (as_f64(va), as_f64(vb)) else {
                    return Err(SchemaError::invalid(
                        pointer,
                        format!("`{key}` must be a number"),
                    ));
                };
                if x >= y {
                    va.clone()
                } else {
                    vb.clone()
                }
            }
            "maximum" | "exclusiveMaximum" | "maxLength" | "maxItems" | "maxProperties"
            | "maxContains" => {
                let (Some(x), Some(y)) = (as_f64(va), as_f64(vb)) else {
                    return Err(SchemaError::invalid(
                        pointer,
                        format!("`{key}` must be a number"),
                    ));
                };
                if x <= y {
                    va.clone()
                } else {
                    vb.clone()
                }
            }
            "multipleOf" => {
                let (Some(x), Some(y)) = (as_f64(va), as_f64(vb)) else {
                    return Err(SchemaError::invalid(
                        pointer,
                        "`multipleOf` must be a number",
                    ));
                };
                let (big, small) = if x >= y { (x, y) } else { (y, x) };
                let ratio = big / small;
                if (ratio - ratio.round()).abs() < 1e-9 {
                    json!(big)
                } else {
                    return Err(cannot("multipleOf", "neither value divides the other"));
                }
            }
            "uniqueItems" => Value::Bool(va.as_bool() == Some(true) || vb.as_bool() == Some(true)),
            // Validation keywords without an exact merged form.
            "pattern" | "format" | "contains" | "dependentSchemas" => {
                return Err(cannot(key, "the two values differ"))
            }
            // Unknown keywords are annotations: keep one of them.
            _ => va.clone(),
        };
        out.insert(key.clone(), merged);
    }
    cross(a, b, &mut out);
    cross(b, a, &mut out);
    // `items` on one side constrains every position the other side's `prefixItems` names.
    for (from, other) in [(a, b), (b, a)] {
        if let (Some(items), Some(Value::Array(prefix)), None) = (
            from.get("items"),
            other.get("prefixItems"),
            from.get("prefixItems"),
        ) {
            let constrained: Vec<Value> = prefix.iter().map(|p| all_of(p, items)).collect();
            out.insert("prefixItems".into(), Value::Array(constrained));
        }
    }
    // Pattern properties on one side are also constrained by the other side's
    // additionalProperties (conservatively: even where the other side's patterns match).
    for (from, other) in [(a, b), (b, a)] {
        if let (Some(Value::Object(patterns)), Some(additional)) = (
            from.get("patternProperties"),
            other.get("additionalProperties"),
        ) {
            let other_patterns = other.get("patternProperties").and_then(Value::as_object);
            let mut merged = out
                .get("patternProperties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (pattern, schema) in patterns {
                if other_patterns.is_some_and(|p| p.contains_key(pattern)) {
                    continue;
                }
                merged.insert(pattern.clone(), all_of(schema, additional));
            }
            out.insert("patternProperties".into(), Value::Object(merged));
        }
    }
    Ok(Some(out))
}
