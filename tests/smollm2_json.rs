//! JSON mode on a real instruct model, SmolLM2-135M-Instruct (Q4_1 GGUF, fetched by
//! `scripts/fetch-model.sh`): the examples' requests produce documents that validate, and the
//! content the model really manages at temperature 0.
mod common;

#[path = "../examples/common/seed.rs"]
mod seed;

use std::path::PathBuf;
use std::sync::OnceLock;

use corral::{Constraint, FinishReason, GenerateOptions, Generation, Model, SamplingParams};
use serde_json::Value;

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        assert!(
            path.is_file(),
            "{} is missing: run `bash scripts/fetch-model.sh`",
            path.display()
        );
        Model::load(&path).expect("SmolLM2 loads")
    })
}

/// Greedy decoding with a mild repetition penalty: at pure temperature 0, SmolLM2-135M falls
/// into loops on some of these prompts ("I'm on the go, I'm on the go, …", a tag repeated
/// until `max_tokens`), and whether it does flips with the last bits of the arithmetic.
/// The constraint is what these tests check, so they decode the way a user of a model this
/// small would.
fn greedy_without_loops() -> GenerateOptions {
    GenerateOptions {
        sampling: SamplingParams {
            repetition_penalty: 1.05,
            ..SamplingParams::greedy()
        },
        ..GenerateOptions::greedy()
    }
}

fn valid(schema: &Value, out: &Generation) -> Value {
    assert_eq!(
        out.finish_reason,
        FinishReason::Stop,
        "cut off: {}",
        out.text
    );
    let value = out.json().expect("complete").clone();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("oracle compiles");
    assert!(validator.is_valid(&value), "invalid: {}", out.text);
    value
}

#[test]
fn eos_set_includes_the_end_of_turn_token() {
    let vocab = model().vocabulary();
    // <|im_end|> (2) is both the GGUF's EOS and ChatML's end of turn; <|endoftext|> (0) is
    // the tokenizer's conventional EOS name.
    assert!(
        vocab.is_eos(2) && vocab.is_eos(0),
        "{:?}",
        vocab.eos_tokens()
    );
}

#[test]
fn quickstart_user_alice() {
    let schema = seed::user_schema();
    let out = model()
        .generate_json(&seed::user_messages(), &schema, &GenerateOptions::greedy())
        .unwrap();
    let value = valid(&schema, &out);
    assert_eq!(value["name"], "Alice", "{}", out.text);
    let address = value["address"].as_str().unwrap_or_default();
    assert!(address.contains("Wonderland"), "{}", out.text);
}

#[test]
fn action_items_through_ref_and_definitions() {
    let schema = seed::action_items_schema();
    let out = model()
        .generate_json(
            &seed::action_items_messages(),
            &schema,
            &GenerateOptions {
                schema_in_prompt: false,
                ..greedy_without_loops()
            },
        )
        .unwrap();
    let value = valid(&schema, &out);
    // One of the transcript's errands (bags, gym, run) is in the summary or an action item.
    let text = out.text.to_lowercase();
    assert!(
        ["bag", "gym", "run"].iter().any(|e| text.contains(e)),
        "{}",
        out.text
    );
    assert!(value["actionItems"].is_array(), "{}", out.text);
}

#[test]
fn world_cup_at_temperature_07_is_seeded() {
    let schema = seed::world_cup_schema();
    let options = GenerateOptions {
        sampling: SamplingParams::with_temperature(0.7, 7),
        ..GenerateOptions::default()
    };
    let mut streamed = String::new();
    let out = model()
        .generate_with(
            &seed::world_cup_messages(),
            &Constraint::JsonSchema(schema.clone()),
            &options,
            &mut |d| streamed.push_str(d),
        )
        .unwrap();
    valid(&schema, &out);
    assert_eq!(streamed, out.text);
    let again = model()
        .generate_json(&seed::world_cup_messages(), &schema, &options)
        .unwrap();
    assert_eq!(again.text, out.text);
    assert!(again.constraint_cached);
}

#[test]
fn typed_generation() {
    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[allow(dead_code)]
    struct User {
        name: String,
        address: String,
    }
    let user: User = model()
        .generate(&seed::user_messages(), &GenerateOptions::greedy())
        .unwrap();
    assert_eq!(user.name, "Alice");
}

#[test]
fn benchmark_schema_with_and_without_fast_forward() {
    let schema = seed::bench_schema();
    let plain = model()
        .generate_json(&seed::user_messages(), &schema, &greedy_without_loops())
        .unwrap();
    valid(&schema, &plain);
    let ff = model()
        .generate_json(
            &seed::user_messages(),
            &schema,
            &GenerateOptions {
                fast_forward: true,
                ..greedy_without_loops()
            },
        )
        .unwrap();
    valid(&schema, &ff);
    assert!(ff.stats.forced_tokens > 0);
    eprintln!(
        "without fast-forward: {}\nwith fast-forward ({} forced): {}",
        plain.text, ff.stats.forced_tokens, ff.text
    );
}

#[test]
fn json_object_without_a_schema() {
    let out = model()
        .generate_json_object(
            &seed::user_messages(),
            &GenerateOptions {
                // Free-form JSON invites lists that go on (greedy SmolLM2 wrote 40 "skills"):
                // a presence penalty too, as the OpenAI API offers.
                sampling: SamplingParams {
                    repetition_penalty: 1.05,
                    presence_penalty: 1.0,
                    ..SamplingParams::greedy()
                },
                ..GenerateOptions::greedy()
            },
        )
        .unwrap();
    assert_eq!(
        out.finish_reason,
        FinishReason::Stop,
        "cut off: {}",
        out.text
    );
    assert!(out.json().unwrap().is_object(), "{}", out.text);
}
