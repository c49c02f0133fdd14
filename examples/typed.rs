//! The typed API: the schema comes from `#[derive(JsonSchema)]`, the answer is a `User`.
//!
//! ```text
//! cargo run --release --example typed [-- --model PATH]
//! ```
mod common;

use corral::{GenerateOptions, Message};
use schemars::JsonSchema;
use serde::Deserialize;

/// A user of the service.
#[derive(Debug, Deserialize, JsonSchema)]
#[allow(dead_code)]
struct User {
    /// The user's name.
    name: String,
    /// Where the user lives.
    address: String,
    /// The user's role.
    role: Role,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Role {
    Admin,
    Editor,
    Viewer,
}

fn main() -> Result<(), corral::Error> {
    let model = common::load_model();
    let messages = [
        Message::system("You are a helpful assistant that answers in JSON."),
        Message::user(
            "Create a user named Alice, who lives in 42, Wonderland Avenue. She edits articles.",
        ),
    ];
    // `model.generate::<User>(…)` returns just the value; `generate_typed` also the details.
    let (user, generation) = model.generate_typed::<User>(&messages, &GenerateOptions::greedy())?;
    println!("{user:#?}");
    common::report(&generation);
    Ok(())
}
