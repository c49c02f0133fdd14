//! Documents accepted and refused by compiled schemas, per lowering case.
use serde_json::json;

use crate::automaton::Matcher;
use crate::{compile, Options};

/// Compile `schema` (compact whitespace) and check documents against it.
fn check(schema: serde_json::Value, yes: &[&str], no: &[&str]) {
    check_with(Options::default(), schema, yes, no)
}

/// Like [`check`], with [`Options::any_property_order`].
fn check_any_order(schema: serde_json::Value, yes: &[&str], no: &[&str]) {
    let options = Options {
        any_property_order: true,
        ..Options::default()
    };
    check_with(options, schema, yes, no)
}

fn check_with(options: Options, schema: serde_json::Value, yes: &[&str], no: &[&str]) {
    let options = Options {
        whitespace: crate::Whitespace::Compact,
        ..options
    };
    let compiled = compile(&schema, &options).unwrap();
    let matcher = Matcher::new(&compiled.rx, 1 << 20).unwrap();
    for doc in yes {
        assert!(matcher.is_match(doc), "{schema}: should accept {doc}");
    }
    for doc in no {
        assert!(!matcher.is_match(doc), "{schema}: should refuse {doc}");
    }
}

#[test]
fn pattern_with_lengths_is_an_intersection() {
    check(
        json!({"type": "string", "pattern": "^(ab)+$", "maxLength": 4, "minLength": 2}),
        &[r#""ab""#, r#""abab""#],
        &[r#""ababab""#, r#""a""#, r#""""#],
    );
    // Groups that the lengths cannot be folded into: a counter automaton.
    check(
        json!({"type": "string", "pattern": "^([a-z0-9-]+):([a-z.]+):([a-z]+)?:([a-z]+)$",
               "maxLength": 12}),
        &[r#""a:b::c""#, r#""a-1:b.c:d:ef""#],
        &[r#""a:b:c""#, r#""aaaa:bbbb::cc""#],
    );
    check(
        json!({"type": "string", "pattern": "^x(y|zz)?", "maxLength": 3, "minLength": 2}),
        &[r#""xyz""#, r#""x\n""#, r#""xzz""#],
        &[r#""x""#, r#""xyzzy""#, r#""a""#],
    );
}

#[test]
fn pattern_with_a_format_is_an_intersection() {
    check(
        json!({"type": "string", "format": "date", "pattern": "^2024-"}),
        &[r#""2024-01-31""#],
        &[r#""2023-01-31""#, r#""2024-13-01""#, r#""2024-""#],
    );
}

#[test]
fn excluded_strings_with_other_constraints() {
    check(
        json!({"type": "string", "pattern": "^a", "not": {"enum": ["ab"]}}),
        &[r#""ac""#, r#""abc""#, r#""a""#],
        &[r#""ab""#, r#""a\u0062""#, r#""b""#],
    );
}

#[test]
fn additional_names_and_excluded_values_are_spelled_canonically() {
    // Any name but the listed ones, escapes where JSON needs them; no escape spells a
    // listed name.
    check(
        json!({"type": "object", "properties": {"error": {"type": "string"}, "a/b": {}},
               "required": ["error"], "additionalProperties": {"type": "integer"}}),
        &[
            r#"{"error":"x","error\"":1}"#,
            r#"{"error":"x","err\nor":1}"#,
            "{\"error\":\"x\",\"\u{e9}\":1}",
            r#"{"error":"x","a\\b":1}"#,
        ],
        &[
            r#"{"error":"x","\u0065rror":1}"#,
            r#"{"error":"x","erro\u0072":1}"#,
            r#"{"error":"x","a\/b":1}"#,
            r#"{"error":"x","a\u002Fb":1}"#,
            r#"{"error":"x","error\u":1}"#,
        ],
    );
    check(
        json!({"type": "string", "not": {"enum": ["a\"b", "\u{e9}", "\u{1f600}"]}}),
        &[r#""a\"c""#, r#""\\""#, "\"\u{e8}\""],
        &[
            r#""a\"b""#,
            r#""a\u0022b""#,
            r#""\u00E9""#,
            "\"\u{e9}\"",
            r#""\ud83d\udE00""#,
            "\"\u{1f600}\"",
        ],
    );
}

#[test]
fn negated_patterns_are_complements() {
    check(
        json!({"type": "string", "not": {"pattern": "^a"}}),
        &[r#""b""#, r#""""#, r#""\"a""#, r#""ba""#],
        &[r#""a""#, r#""ab""#, r#""\u0062""#],
    );
    // The value, not its spelling: `"` inside is written `\"`.
    check(
        json!({"type": "string", "not": {"pattern": "\""}}),
        &[r#""ab""#, r#""a\nb""#],
        &[r#""a\"b""#, r#""\"""#],
    );
    // Overlapping string branches of `oneOf`: exactly one pattern matches.
    check(
        json!({"type": "string", "oneOf": [{"pattern": "^a"}, {"pattern": "b$"}]}),
        &[r#""ax""#, r#""xb""#, r#""a""#],
        &[r#""ab""#, r#""xx""#, r#""a-b""#],
    );
}

#[test]
fn names_outside_the_patterns_are_additional() {
    check(
        json!({"type": "object", "properties": {"id": {"type": "integer"}},
               "patternProperties": {"^S_": {"type": "string"}}}),
        &[
            r#"{"id":1}"#,
            r#"{"id":1,"S_x":"a"}"#,
            r#"{"id":1,"other":[5]}"#,
            r#"{"id":1,"Sz":true}"#,
        ],
        &[
            r#"{"id":1,"S_x":5}"#,
            r#"{"id":1,"id":2}"#,
            r#"{"id":1,"\u0053_x":5}"#,
        ],
    );
}

#[test]
fn pattern_properties_that_also_match_listed_names() {
    // `.*` matches "default" too: the extra names are every other name, and the
    // listed name can neither repeat nor be spelled with an escape.
    check(
        json!({"type": "object", "properties": {"default": {"type": "string"}},
               "patternProperties": {".*": {"type": "string"}}, "required": ["default"],
               "additionalProperties": false}),
        &[
            r#"{"default":"a"}"#,
            r#"{"default":"a","print":"b","web":"c"}"#,
        ],
        &[
            r#"{"default":"a","default":"b"}"#,
            r#"{"default":"a","d\u0065fault":"b"}"#,
            r#"{"default":"a","print":1}"#,
            r#"{"print":"b"}"#,
        ],
    );
    check(
        json!({"type": "object", "properties": {"line1": {"type": "string"}},
               "patternProperties": {"^line[1-3]$": {"type": "string"}},
               "required": ["line1"], "additionalProperties": false}),
        &[r#"{"line1":"a","line2":"b","line3":"c"}"#],
        &[
            r#"{"line1":"a","line4":"b"}"#,
            r#"{"line1":"a","line1":"b"}"#,
        ],
    );
}

#[test]
fn bounded_lists_of_structures_call_one_copy() {
    // 200 optional copies of an object written out would be 200 objects' states; the item
    // is a procedure that each copy calls.
    let schema = json!({"type": "array", "maxItems": 200, "items": {"type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
        "required": ["a"], "additionalProperties": false}});
    let compiled = compile(&schema, &Options::compact()).unwrap();
    assert!(
        compiled.program.states().len() < 5_000,
        "{} states",
        compiled.program.states().len()
    );
    let item = r#"{"a":"x","b":1}"#;
    let items = |n: usize| format!("[{}]", vec![item; n].join(","));
    check(schema, &[&items(1), &items(200)], &[&items(201)]);
}

#[test]
fn enum_values_are_tested_without_an_automaton_where_possible() {
    check(
        json!({"enum": ["a", "bcd", 3, 7, null, [1]], "maxLength": 2, "maximum": 5}),
        &[r#""a""#, "3", "null", "[1]"],
        &[r#""bcd""#, "7"],
    );
    check(
        json!({"type": "string", "enum": ["a", "b"], "not": {"const": "a"}}),
        &[r#""b""#],
        &[r#""a""#],
    );
}

#[test]
fn mutual_recursion_is_bounded_by_lowering_the_depth() {
    // Eight definitions that all refer to each other: expanded to depth 3 they would
    // multiply into hundreds of thousands of subschemas.
    let names: Vec<String> = (0..8).map(|i| format!("d{i}")).collect();
    let mut defs = serde_json::Map::new();
    for name in &names {
        let properties: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .map(|m| (m.clone(), json!({"$ref": format!("#/$defs/{m}")})))
            .collect();
        defs.insert(
            name.clone(),
            json!({"type": "object", "properties": properties, "additionalProperties": false}),
        );
    }
    let schema = json!({"$defs": defs, "$ref": "#/$defs/d0"});
    let compiled = compile(&schema, &Options::compact()).unwrap();
    assert!(
        compiled.ignored.iter().any(|i| i.contains("recursive")),
        "{:?}",
        compiled.ignored
    );
    check(schema, &[r#"{}"#, r#"{"d1":{}}"#], &[r#"{"x":1}"#]);
}

#[test]
fn format_with_lengths_the_regex_cannot_fold_is_counted() {
    check(
        json!({"type": "string", "format": "uri", "maxLength": 20, "minLength": 12}),
        &[r#""http://a.example/""#, r#""https://ab.cd/e""#],
        &[
            r#""http://a.b/""#,
            r#""https://example.com/abcdefgh""#,
            r#""not a uri at all""#,
        ],
    );
}

#[test]
fn names_are_tested_even_against_patterns_the_automaton_cannot_hold() {
    // `(q$)+` has no automaton here (an anchor inside a repetition): names are searched
    // by a regex engine instead of being assumed to match (which once gave any required
    // name the pattern's schema instead of `additionalProperties: false`).
    check(
        json!({"type": "object", "required": ["aq"], "propertyNames": true,
            "patternProperties": {"(q$)+": {"type": "integer"}}, "additionalProperties": false}),
        &[r#"{"aq":1}"#],
        &[r#"{"aq":"s"}"#, r#"{"x":1}"#],
    );
    let unsatisfiable = json!({"type": "object", "required": ["x"], "propertyNames": true,
        "patternProperties": {"(q$)+": {}}, "additionalProperties": false});
    assert!(matches!(
        compile(&unsatisfiable, &Options::compact()),
        Err(crate::SchemaError::Unsatisfiable)
    ));
    // A pattern no engine here can test (`\b`) is refused, not guessed.
    let untestable = json!({"type": "object", "required": ["x"], "propertyNames": true,
        "patternProperties": {"\\bq": {}}, "additionalProperties": false});
    assert!(matches!(
        compile(&untestable, &Options::compact()),
        Err(crate::SchemaError::Unsupported { keyword, .. }) if keyword == "patternProperties"
    ));
}

#[test]
fn members_in_any_order_once_each() {
    let schema = json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"}},
        "required": ["b"],
        "additionalProperties": {"type": "null"}
    });
    check_any_order(
        schema.clone(),
        &[
            r#"{"b":"x"}"#,
            r#"{"c":true,"b":"x","a":1}"#,
            r#"{"x":null,"b":"","y":null,"a":2}"#,
        ],
        &[
            r#"{}"#,
            r#"{"a":1}"#,
            r#"{"b":"x","b":"y"}"#,
            r#"{"a":1,"b":"x","a":2}"#,
            r#"{"b":"x","x":1}"#,
            r#"{"b":"x",}"#,
        ],
    );
    // In `properties` order (the default), the same documents out of order are refused.
    check(
        schema,
        &[r#"{"a":1,"b":"x","c":true,"x":null}"#],
        &[r#"{"c":true,"b":"x","a":1}"#, r#"{"x":null,"b":""}"#],
    );
    // A member no value satisfies is never started; a required one makes the object
    // impossible.
    check_any_order(
        json!({"properties": {"a": false, "b": {"const": 1}}, "additionalProperties": false}),
        &[r#"{}"#, r#"{"b":1}"#],
        &[r#"{"a":1}"#, r#"{"b":1,"a":1}"#],
    );
    // dependentRequired: each variant in any order.
    check_any_order(
        json!({"properties": {"a": {}, "b": {}, "c": {}}, "dependentRequired": {"a": ["b"]},
               "additionalProperties": false}),
        &[r#"{"b":1,"a":2}"#, r#"{"c":1}"#, r#"{"c":1,"b":2,"a":3}"#],
        &[r#"{"a":1}"#, r#"{"c":1,"a":2}"#],
    );
}

#[test]
fn free_form_values_nest_ten_levels_by_default() {
    let nested = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
    check(
        json!({}),
        &[&nested(10), r#"{"a":[{"b":{}}]}"#],
        &[&nested(11)],
    );
}

#[test]
fn pattern_properties_give_each_name_the_schemas_it_matches() {
    // "/x" matches only the first pattern (a string), "ab" only the second (an object),
    // "/" and "a/" … each their own; a name matching both would need both.
    let schema = json!({
        "type": "object",
        "properties": {"/listed": {"minLength": 2}},
        "patternProperties": {"^/": {"type": "string"}, "^[^/]": {"type": "object"}},
        "additionalProperties": false
    });
    check(
        schema.clone(),
        &[
            r#"{"/x":"s"}"#,
            r#"{"ab":{}}"#,
            r#"{"/listed":"ab","/":"","a/":{}}"#,
        ],
        &[
            r#"{"/x":{}}"#,
            r#"{"ab":"s"}"#,
            r#"{"/listed":"a"}"#,
            r#"{"/listed":{}}"#,
            r#"{"":1}"#,
        ],
    );
    // Overlapping patterns: a name matching both takes both schemas.
    check(
        json!({"patternProperties": {"^a": {"type": "integer"}, "b$": {"minimum": 5}},
               "additionalProperties": false}),
        &[r#"{"ab":5}"#, r#"{"ax":1}"#, r#"{"xb":"s"}"#],
        &[
            r#"{"ab":1}"#,
            r#"{"ab":"s"}"#,
            r#"{"ax":"s"}"#,
            r#"{"x":1}"#,
        ],
    );
}

#[test]
fn keywords_are_read_as_the_declared_draft() {
    // Drafts 4 to 7: `$ref` hides its siblings (validators of those drafts ignore them).
    let with_siblings = |draft: &str| {
        json!({
            "$schema": draft,
            "definitions": {"file": {"type": "object", "properties": {"a": {"type": "integer"}}}},
            "$ref": "#/definitions/file",
            "properties": {"cache": {"type": "boolean"}},
            "additionalProperties": false
        })
    };
    check(
        with_siblings("http://json-schema.org/draft-07/schema#"),
        &[r#"{"a":1,"b":"x"}"#, r#"{"cache":"not checked"}"#],
        &[r#"{"a":"x"}"#],
    );
    check(
        with_siblings("https://json-schema.org/draft/2020-12/schema"),
        &[r#"{"cache":true}"#, r#"{}"#],
        &[r#"{"a":1}"#, r#"{"b":"x"}"#, r#"{"cache":"x"}"#],
    );
    // Draft 4 has no `if`/`then`/`const`: they constrain nothing there.
    let conditional = |draft: &str| {
        json!({
            "$schema": draft,
            "if": {"const": 1},
            "then": {"const": 1},
            "else": {"type": "string"},
        })
    };
    check(
        conditional("http://json-schema.org/draft-04/schema#"),
        &["1", "2", r#""s""#],
        &[],
    );
    check(
        conditional("http://json-schema.org/draft-07/schema#"),
        &["1", r#""s""#],
        &["2"],
    );
}
