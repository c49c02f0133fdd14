//! The seed's requests (schemas and messages), shared by the examples and the tests.
#![allow(dead_code)]
use corral::Message;
use serde_json::{json, Value};

/// pydantic's `User.model_json_schema()` for `name: str = Field(description="user name")`,
/// `address: str = Field(description="address")`.
pub fn user_schema() -> Value {
    json!({
        "properties": {
            "name": {"description": "user name", "title": "Name", "type": "string"},
            "address": {"description": "address", "title": "Address", "type": "string"}
        },
        "required": ["name", "address"],
        "title": "User",
        "type": "object"
    })
}

pub fn user_messages() -> Vec<Message> {
    vec![
        Message::system("You are a helpful assistant that answers in JSON."),
        Message::user("Create a user named Alice, who lives in 42, Wonderland Avenue."),
    ]
}

/// `zodToJsonSchema(z.object({summary: z.string().describe(…), actionItems:
/// z.array(z.string()).describe(…)}), 'mySchema')`: the `$ref`/`definitions` wrapper.
pub fn action_items_schema() -> Value {
    json!({
        "$ref": "#/definitions/mySchema",
        "definitions": {
            "mySchema": {
                "type": "object",
                "properties": {
                    "summary": {"type": "string", "description": "A summary of the voice note"},
                    "actionItems": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "A list of action items from the voice note"
                    }
                },
                "required": ["summary", "actionItems"],
                "additionalProperties": false
            }
        },
        "$schema": "http://json-schema.org/draft-07/schema#"
    })
}

pub fn action_items_messages() -> Vec<Message> {
    vec![
        Message::system("The following is a voice message transcript. Only answer in JSON."),
        Message::user("I need to go pack my bags, hit the gym, and go on a run."),
    ]
}

/// The curl example's schema.
pub fn world_cup_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"team_name": {"type": "string"}},
        "required": ["team_name"]
    })
}

pub fn world_cup_messages() -> Vec<Message> {
    vec![
        Message::system("You are a helpful assistant that answers in JSON."),
        Message::user("Who won the world cup in 2022?"),
    ]
}

/// The benchmark's 8-property user schema (shared with `scripts/bench_serve.py`).
pub fn bench_schema() -> Value {
    serde_json::from_str(include_str!("bench_schema.json")).expect("bench_schema.json is JSON")
}
