//! The seed's second example: a zod schema passed through `zodToJsonSchema(schema,
//! 'mySchema')`, which wraps it in `{"$ref": "#/definitions/mySchema", "definitions": …}`.
//!
//! ```text
//! cargo run --release --example action_items [-- --model PATH]
//! ```
mod common;
#[path = "common/seed.rs"]
mod seed;

use corral::{GenerateOptions, SamplingParams};

fn main() -> Result<(), corral::Error> {
    let model = common::load_model();
    let schema = seed::action_items_schema();
    let messages = seed::action_items_messages();
    // SmolLM2-135M loops on the summary at temperature 0 ("I'm on the go, I'm on the go,
    // …"): a mild repetition penalty keeps greedy decoding out of it. The system message
    // already asks for JSON, and the constraint holds either way.
    let options = GenerateOptions {
        schema_in_prompt: false,
        sampling: SamplingParams {
            repetition_penalty: 1.05,
            ..SamplingParams::greedy()
        },
        ..GenerateOptions::greedy()
    };
    let answer = model.generate_json(&messages, &schema, &options)?;
    println!(
        "{}",
        serde_json::to_string_pretty(answer.json()?).unwrap_or_default()
    );
    common::report(&answer);
    Ok(())
}
