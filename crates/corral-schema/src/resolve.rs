//! Phase 0: where references lead. `$id`/`$anchor` are collected once; a `$ref` resolves
//! to a JSON pointer into the document (`#/…`).
use std::collections::HashMap;

use serde_json::Value;

use crate::error::SchemaError;
use crate::pointer;

/// The document's identifiers, for resolving `$ref`.
pub(crate) struct References<'a> {
    root: &'a Value,
    /// `$id` / `$anchor` → JSON pointer fragment.
    ids: HashMap<String, String>,
}

impl<'a> References<'a> {
    pub fn new(root: &'a Value) -> References<'a> {
        let mut ids = HashMap::new();
        collect_ids(root, "", "", &mut ids);
        References { root, ids }
    }

    /// The JSON pointer (`#/…`) `reference` (found at `ptr`) resolves to, and the schema there.
    pub fn resolve(&self, reference: &str, ptr: &str) -> Result<(String, &'a Value), SchemaError> {
        let full = self.target(reference, ptr)?;
        let target =
            pointer::resolve(self.root, &full[1..]).ok_or_else(|| SchemaError::UnresolvedRef {
                reference: reference.to_string(),
                pointer: ptr.to_string(),
            })?;
        Ok((full, target))
    }

    /// The JSON pointer (`#/…`) a reference resolves to.
    pub fn target(&self, reference: &str, ptr: &str) -> Result<String, SchemaError> {
        let unresolved = || SchemaError::UnresolvedRef {
            reference: reference.to_string(),
            pointer: ptr.to_string(),
        };
        let (base, fragment) = match reference.split_once('#') {
            Some((base, fragment)) => (base, fragment),
            None => (reference, ""),
        };
        let mut root_fragment = String::new();
        if !base.is_empty() {
            let root_id = self.root.get("$id").and_then(Value::as_str).unwrap_or("");
            let absolute = resolve_uri(root_id, base);
            match self.ids.get(&absolute) {
                Some(p) => root_fragment = p.clone(),
                None if strip_fragment(root_id) == absolute => {}
                None => return Err(unresolved()),
            }
        }
        let full = if fragment.starts_with('/') || fragment.is_empty() {
            format!("{root_fragment}{fragment}")
        } else {
            // A plain-name fragment: `$anchor`.
            self.ids
                .get(&format!("#{fragment}"))
                .cloned()
                .ok_or_else(unresolved)?
        };
        pointer::resolve(self.root, &full).ok_or_else(unresolved)?;
        Ok(format!("#{full}"))
    }
}

fn strip_fragment(uri: &str) -> &str {
    uri.split('#').next().unwrap_or(uri)
}

/// Resolve a URI reference against a base URI (RFC 3986, enough for `$id`/`$ref`:
/// absolute URIs, absolute paths and relative paths; no dot-segment removal).
fn resolve_uri(base: &str, reference: &str) -> String {
    let base = strip_fragment(base);
    let reference = strip_fragment(reference);
    if reference.contains("://") || reference.starts_with("urn:") || base.is_empty() {
        return reference.to_string();
    }
    if reference.is_empty() {
        return base.to_string();
    }
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .map(|i| base[i..].find('/').map_or(base.len(), |j| i + j));
    if let Some(rest) = reference.strip_prefix('/') {
        return match authority_end {
            Some(end) => format!("{}/{rest}", &base[..end]),
            None => reference.to_string(),
        };
    }
    match base.rfind('/') {
        Some(i) if authority_end.is_none_or(|end| i >= end) => {
            format!("{}/{reference}", &base[..i])
        }
        _ => match authority_end {
            Some(end) => format!("{}/{reference}", &base[..end]),
            None => reference.to_string(),
        },
    }
}

fn collect_ids(value: &Value, ptr: &str, base: &str, ids: &mut HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            let mut base = base.to_string();
            if let Some(Value::String(id)) = map.get("$id") {
                base = resolve_uri(&base, id);
                ids.insert(base.clone(), ptr.to_string());
                if let Some((_, anchor)) = id.split_once('#') {
                    ids.insert(format!("#{anchor}"), ptr.to_string());
                }
            }
            if let Some(Value::String(anchor)) = map.get("$anchor") {
                ids.insert(format!("#{anchor}"), ptr.to_string());
            }
            for (k, v) in map {
                let here = pointer::join(ptr, k);
                match k.as_str() {
                    // Keywords whose values are maps of schemas.
                    "properties" | "patternProperties" | "$defs" | "definitions"
                    | "dependentSchemas" | "dependencies" => {
                        for (name, sub) in v.as_object().into_iter().flatten() {
                            collect_ids(sub, &pointer::join(&here, name), &base, ids);
                        }
                    }
                    // Keywords whose values are a schema or an array of schemas. Anything
                    // else (unknown keywords, `enum`, `examples`, …) holds data, not schemas.
                    "items"
                    | "prefixItems"
                    | "allOf"
                    | "anyOf"
                    | "oneOf"
                    | "not"
                    | "if"
                    | "then"
                    | "else"
                    | "additionalProperties"
                    | "additionalItems"
                    | "contains"
                    | "propertyNames"
                    | "unevaluatedProperties"
                    | "unevaluatedItems" => {
                        collect_ids(v, &here, &base, ids);
                    }
                    _ => {}
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_ids(v, &format!("{ptr}/{i}"), base, ids);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_by_pointer_id_and_anchor() {
        let root = json!({
            "$id": "https://example.com/root.json",
            "$defs": {
                "a": {"type": "string"},
                "b": {"$id": "other.json", "$defs": {"c": {"$anchor": "here", "type": "null"}}}
            }
        });
        let refs = References::new(&root);
        assert_eq!(refs.target("#/$defs/a", "#").unwrap(), "#/$defs/a");
        assert_eq!(refs.target("other.json", "#").unwrap(), "#/$defs/b");
        assert_eq!(
            refs.target("other.json#/$defs/c", "#").unwrap(),
            "#/$defs/b/$defs/c"
        );
        assert_eq!(refs.target("#here", "#").unwrap(), "#/$defs/b/$defs/c");
        let (_, target) = refs.resolve("#/$defs/a", "#").unwrap();
        assert_eq!(target, &json!({"type": "string"}));
        assert!(matches!(
            refs.target("#/$defs/missing", "#/x"),
            Err(SchemaError::UnresolvedRef { .. })
        ));
        assert_eq!(
            resolve_uri("https://example.com/a/b.json", "c.json"),
            "https://example.com/a/c.json"
        );
    }
}
