//! JSON mode end to end on the three tiny random models (Llama with a tied head, Mistral with
//! a sliding window, Mixtral with experts) at temperature 1: random weights make the model
//! wander over every allowed token, so this exercises the constraint far from the "likely"
//! paths. Every finished output must validate (jsonschema crate as the oracle).
mod common;

use std::path::PathBuf;

use corral::{Constraint, FinishReason, GenerateOptions, Message, Model, SamplingParams};
use serde_json::{json, Value};

const MODELS: [&str; 3] = ["tiny-llama", "tiny-mistral", "tiny-mixtral"];

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn load(name: &str) -> Model {
    Model::load_with_tokenizer(
        repo(&format!("crates/corral-models/tests/fixtures/{name}")),
        repo("tests/data/tokenizers/mistral-7b-v0.1"),
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Schemas whose every part is bounded (string lengths, array sizes, enums), so that a
/// random model finishes within the tiny models' 256-position context.
fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "nested objects",
            json!({"type": "object", "properties": {
                "user": {"type": "object", "properties": {
                    "name": {"type": "string", "maxLength": 6},
                    "age": {"type": "integer", "minimum": 0, "maximum": 120}},
                    "required": ["name", "age"], "additionalProperties": false},
                "active": {"type": "boolean"}},
              "required": ["user", "active"], "additionalProperties": false}),
        ),
        (
            "array with min/max items",
            json!({"type": "array", "items": {"type": "integer", "minimum": -5, "maximum": 5},
                   "minItems": 1, "maxItems": 4}),
        ),
        (
            "enums",
            json!({"type": "object", "properties": {
                "role": {"enum": ["admin", "editor", "viewer"]}, "level": {"const": 3}},
              "required": ["role", "level"], "additionalProperties": false}),
        ),
        (
            "anyOf",
            json!({"anyOf": [{"type": "integer", "minimum": 0, "maximum": 9},
                             {"type": "string", "maxLength": 3}, {"type": "null"}]}),
        ),
        (
            "bounded numbers",
            json!({"type": "object", "properties": {
                "score": {"type": "number", "minimum": 0, "maximum": 1},
                "count": {"type": "integer", "exclusiveMinimum": 10, "maximum": 20}},
              "required": ["score", "count"], "additionalProperties": false}),
        ),
        (
            "pattern and format",
            json!({"type": "object", "properties": {
                "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
                "day": {"type": "string", "format": "date"},
                "id": {"type": "string", "format": "uuid"}},
              "required": ["code", "day", "id"], "additionalProperties": false}),
        ),
        (
            "$ref recursion",
            json!({"$defs": {"node": {"type": "object", "properties": {
                    "v": {"type": "integer", "minimum": 0, "maximum": 9},
                    "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
                  "required": ["v"], "additionalProperties": false}},
                   "$ref": "#/$defs/node"}),
        ),
    ]
}

fn messages() -> Vec<Message> {
    vec![Message::user("Make a record.")]
}

fn options(seed: u64) -> GenerateOptions {
    GenerateOptions {
        sampling: SamplingParams::with_temperature(1.0, seed),
        max_tokens: 200,
        // The schema text would not fit the tiny models' 256-token context.
        schema_in_prompt: false,
        ..GenerateOptions::default()
    }
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("the oracle compiles the schema")
}

#[test]
fn fifty_seeded_generations_per_model_validate() {
    let schemas = schemas();
    let validators: Vec<_> = schemas.iter().map(|(_, s)| validator(s)).collect();
    for name in MODELS {
        let model = load(name);
        let mut lengths = Vec::new();
        for seed in 0..50u64 {
            let i = seed as usize % schemas.len();
            let (what, schema) = &schemas[i];
            let out = model
                .generate_json(&messages(), schema, &options(seed))
                .unwrap_or_else(|e| panic!("{name}/{what}/seed {seed}: {e}"));
            assert_eq!(
                out.finish_reason,
                FinishReason::Stop,
                "{name}/{what}/seed {seed}: cut off: {:?}",
                out.text
            );
            let value = out.json().expect("complete");
            assert!(
                validators[i].is_valid(value),
                "{name}/{what}/seed {seed}: invalid output {}",
                out.text
            );
            lengths.push(out.usage.completion_tokens);
        }
        eprintln!(
            "{name}: 50 valid documents, {} completion tokens in all, {} constraints cached",
            lengths.iter().sum::<usize>(),
            model.cached_constraints()
        );
        assert_eq!(model.cached_constraints(), schemas.len());
    }
}

#[test]
fn same_seed_same_output_and_strategies_agree() {
    let model = load("tiny-mistral");
    let (_, schema) = &schemas()[0];
    for seed in [3u64, 4, 5] {
        let a = model
            .generate_json(&messages(), schema, &options(seed))
            .unwrap();
        let b = model
            .generate_json(&messages(), schema, &options(seed))
            .unwrap();
        assert_eq!(a.text, b.text, "seed {seed}: not deterministic");
        // Masking first gives exactly the same tokens as sampling first.
        let masked = GenerateOptions {
            mask_first: true,
            ..options(seed)
        };
        let c = model.generate_json(&messages(), schema, &masked).unwrap();
        assert_eq!(a.text, c.text, "seed {seed}: mask-first differs");
        assert_eq!(c.stats.sampler.sample_first_hits, 0);
    }
    let greedy = GenerateOptions {
        sampling: SamplingParams::greedy(),
        ..options(0)
    };
    let masked = GenerateOptions {
        mask_first: true,
        ..greedy.clone()
    };
    let a = model.generate_json(&messages(), schema, &greedy).unwrap();
    let b = model.generate_json(&messages(), schema, &masked).unwrap();
    assert_eq!(a.text, b.text);
    assert!(a.stats.sampler.masked <= b.stats.sampler.masked);
}

#[test]
fn max_tokens_cuts_off_and_reports_length() {
    let model = load("tiny-llama");
    let (_, schema) = &schemas()[0];
    let out = model
        .generate_json(
            &messages(),
            schema,
            &GenerateOptions {
                max_tokens: 3,
                ..options(1)
            },
        )
        .unwrap();
    assert_eq!(out.finish_reason, FinishReason::Length);
    assert_eq!(out.usage.completion_tokens, 3);
    assert!(out.value.is_none());
    assert!(!out.text.is_empty());
    assert!(matches!(
        out.json(),
        Err(corral::Error::Truncated {
            completion_tokens: 3,
            ..
        })
    ));
}

#[test]
fn other_constraints_and_errors() {
    let model = load("tiny-mixtral");
    let regex = model
        .generate_regex(&messages(), r"(yes|no) [0-9]{2}", &options(2))
        .unwrap();
    assert!(
        regex_automata::meta::Regex::new(r"^(yes|no) [0-9]{2}$")
            .unwrap()
            .is_match(&regex.text),
        "{:?}",
        regex.text
    );
    // Unsupported keyword: a typed error naming it, before any token.
    let err = model
        .generate_json(
            &messages(),
            &json!({"type": "array", "uniqueItems": true}),
            &options(0),
        )
        .unwrap_err();
    assert!(err.to_string().contains("uniqueItems"), "{err}");
    // Bad sampling parameters.
    let bad = GenerateOptions {
        sampling: SamplingParams {
            top_p: 0.0,
            ..SamplingParams::default()
        },
        ..options(0)
    };
    let err = model.chat(&messages(), &bad).unwrap_err();
    assert!(err.to_string().contains("top_p"), "{err}");
    // Plain chat streams the same text it returns.
    let mut streamed = String::new();
    let chat = model
        .generate_with(
            &messages(),
            &Constraint::Text,
            &GenerateOptions {
                max_tokens: 20,
                ..options(5)
            },
            &mut |d| streamed.push_str(d),
        )
        .unwrap();
    assert_eq!(streamed, chat.text);
}

#[test]
fn a_model_is_shared_between_threads() {
    fn shareable<T: Send + Sync>(_: &T) {}
    let model = std::sync::Arc::new(load("tiny-llama"));
    shareable(&*model);
    let (_, schema) = &schemas()[2];
    let texts: Vec<String> = (0..2u64)
        .map(|seed| {
            let model = model.clone();
            let schema = schema.clone();
            std::thread::spawn(move || {
                model
                    .generate_json(&messages(), &schema, &options(seed))
                    .map(|g| g.text)
            })
        })
        .map(|h| h.join().expect("thread").expect("generation"))
        .collect();
    for (seed, text) in texts.iter().enumerate() {
        let alone = model
            .generate_json(&messages(), schema, &options(seed as u64))
            .unwrap();
        assert_eq!(&alone.text, text);
    }
}

#[test]
fn schema_goes_into_the_user_message_when_the_template_refuses_system() {
    // A Gemma-style template: no system role.
    let dir = std::env::temp_dir().join(format!("corral-no-system-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tokenizers = repo("tests/data/tokenizers/mistral-7b-v0.1");
    std::fs::copy(
        tokenizers.join("tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();
    let template = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}\
        {{ raise_exception('System role not supported') }}{% endif %}\
        {{ '[INST] ' + m['content'] + ' [/INST]' }}{% endfor %}";
    let config = json!({"bos_token": "<s>", "eos_token": "</s>", "chat_template": template});
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    let model = Model::load_with_tokenizer(
        repo("crates/corral-models/tests/fixtures/tiny-llama"),
        &dir,
        &Default::default(),
    )
    .unwrap();
    let schema = json!({"enum": ["a", "b"]});
    let with_system = [Message::system("Be brief."), Message::user("Pick.")];
    let err = model
        .generate_json(&with_system, &schema, &options(0))
        .unwrap_err();
    assert!(
        err.to_string().contains("System role not supported"),
        "{err}"
    );
    let out = model
        .generate_json(
            &messages(),
            &schema,
            &GenerateOptions {
                schema_in_prompt: true,
                ..options(0)
            },
        )
        .unwrap();
    assert!(out.json().unwrap().is_string());
    let prompt = model
        .render(&Constraint::JsonSchema(schema).prompt_messages_in_user(&messages()))
        .unwrap();
    assert!(prompt.starts_with("<s>[INST] Answer in JSON"), "{prompt}");
    std::fs::remove_dir_all(&dir).ok();
}
