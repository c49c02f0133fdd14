//! The seed's curl example: `{"team_name": string}` at temperature 0.7, streamed.
//!
//! ```text
//! cargo run --release --example world_cup [-- --model PATH] [--seed N]
//! ```
mod common;
#[path = "common/seed.rs"]
mod seed;

use std::io::Write;

use corral::{Constraint, GenerateOptions, SamplingParams};

fn main() -> Result<(), corral::Error> {
    let model = common::load_model();
    let args: Vec<String> = std::env::args().collect();
    let seed = args
        .iter()
        .position(|a| a == "--seed")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(7);
    let schema = seed::world_cup_schema();
    let messages = seed::world_cup_messages();
    let options = GenerateOptions {
        sampling: SamplingParams::with_temperature(0.7, seed),
        ..GenerateOptions::default()
    };
    let mut out = std::io::stdout();
    let answer = model.generate_with(
        &messages,
        &Constraint::JsonSchema(schema),
        &options,
        &mut |delta| {
            let _ = out.write_all(delta.as_bytes());
            let _ = out.flush();
        },
    )?;
    println!();
    answer.json()?;
    common::report(&answer);
    Ok(())
}
