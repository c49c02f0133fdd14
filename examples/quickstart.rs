//! The seed's first example: a pydantic `User {name, address}` schema, answered by a real
//! model (SmolLM2-135M-Instruct by default).
//!
//! ```text
//! bash scripts/fetch-model.sh && cargo run --release --example quickstart [-- --model PATH]
//! ```
mod common;
#[path = "common/seed.rs"]
mod seed;

use corral::GenerateOptions;

fn main() -> Result<(), corral::Error> {
    let model = common::load_model();
    // What pydantic's `User.model_json_schema()` gives for
    // `class User(BaseModel): name: str = Field(description="user name"); address: str = ...`.
    let schema = seed::user_schema();
    let messages = seed::user_messages();
    let answer = model.generate_json(&messages, &schema, &GenerateOptions::greedy())?;
    println!(
        "{}",
        serde_json::to_string_pretty(answer.json()?).unwrap_or_default()
    );
    common::report(&answer);
    Ok(())
}
