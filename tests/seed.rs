//! The schemas from the product brief compile and accept their example outputs, in
//! every common serialization (compact, Python `json.dumps`, pretty-printed).
mod common;

use corral_index::Index;
use corral_schema::{compile, Options};
use serde_json::{json, Value};

fn check(schema: Value, valid: &[Value], invalid: &[&str]) {
    let compiled = compile(&schema, &Options::default()).unwrap();
    let index = Index::from_program(compiled.program, &common::byte_vocabulary()).unwrap();
    for value in valid {
        for text in [
            serde_json::to_string(value).unwrap(),
            common::python_dumps(value),
            serde_json::to_string_pretty(value).unwrap(),
        ] {
            assert!(common::accepts(&index, &text), "rejected {text}");
        }
    }
    for text in invalid {
        assert!(!common::accepts(&index, text), "accepted {text}");
    }
}

#[test]
fn pydantic_user() {
    check(
        json!({"properties": {"name": {"title": "Name", "type": "string"},
               "address": {"title": "Address", "type": "string"}},
               "required": ["name", "address"], "title": "User", "type": "object"}),
        &[json!({"name": "Alice", "address": "42, Wonderland Avenue"})],
        &[
            r#"{"name": "Alice"}"#,
            r#"{"name": 1, "address": "x"}"#,
            r#"{"name": "A", "address": "x""#,
        ],
    );
}

#[test]
fn zod_definitions_ref() {
    check(
        json!({"$ref": "#/definitions/mySchema", "definitions": {"mySchema": {"type": "object",
               "properties": {"summary": {"type": "string", "description": "…"},
               "actionItems": {"type": "array", "items": {"type": "string"}, "description": "…"}},
               "required": ["summary", "actionItems"], "additionalProperties": false}},
               "$schema": "http://json-schema.org/draft-07/schema#"}),
        &[
            json!({"summary": "Weekly sync", "actionItems": ["Ship v1", "Write docs"]}),
            json!({"summary": "", "actionItems": []}),
        ],
        &[
            r#"{"summary": "x", "actionItems": [], "extra": 1}"#,
            r#"{"actionItems": []}"#,
        ],
    );
}

#[test]
fn team_name() {
    check(
        json!({"type": "object", "properties": {"team_name": {"type": "string"}}, "required": ["team_name"]}),
        &[
            json!({"team_name": "Wolves"}),
            json!({"team_name": "Wolves", "city": "Berlin"}),
        ],
        &[
            r#"{"team": "Wolves"}"#,
            r#"{"team_name": "Wolves", "team_name": "x"}"#,
        ],
    );
}
