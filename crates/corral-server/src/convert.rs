//! From an OpenAI request to what the library runs: messages, constraint, options.
use corral::{Constraint, GenerateOptions, Message, SamplingParams};

use crate::api::{ChatMessage, ChatRequest, Content, ResponseFormat};
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::tools::{self, ToolPlan};

/// Most stop strings (OpenAI's limit).
const MAX_STOP: usize = 4;
/// Most alternatives per token in `top_logprobs` (OpenAI's limit).
const MAX_TOP_LOGPROBS: i64 = 20;

/// A validated request.
#[derive(Clone, Debug)]
pub struct Plan {
    pub messages: Vec<Message>,
    pub constraint: Constraint,
    /// Where the constraint came from (for errors): `response_format` or a tool's path.
    pub constraint_param: String,
    pub options: GenerateOptions,
    pub n: usize,
    pub stream: bool,
    pub include_usage: bool,
    pub tools: ToolPlan,
}

fn range(value: f32, name: &str, lo: f32, hi: f32) -> Result<f32, ApiError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::invalid(
            format!("`{name}` must be between {lo} and {hi}, got {value}"),
            Some(name),
        ))
    }
}

/// Validate `request` against the server's limits.
pub fn plan(request: ChatRequest, config: &ServerConfig) -> Result<Plan, ApiError> {
    let n = request.n.unwrap_or(1);
    if n < 1 || n as usize > config.max_n() {
        return Err(ApiError::invalid(
            format!("`n` must be between 1 and {}, got {n}", config.max_n()),
            Some("n"),
        ));
    }
    let (max_tokens, max_param) = match (request.max_completion_tokens, request.max_tokens) {
        (Some(m), _) => (Some(m), "max_completion_tokens"),
        (None, m) => (m, "max_tokens"),
    };
    let max_tokens = match max_tokens {
        None => config.max_tokens_default.min(config.max_tokens_cap),
        Some(0) => {
            return Err(ApiError::invalid(
                format!("`{max_param}` must be at least 1"),
                Some(max_param),
            ))
        }
        Some(m) if m as usize > config.max_tokens_cap => {
            return Err(ApiError::invalid(
                format!(
                    "`{max_param}` is {m}; this server allows at most {}",
                    config.max_tokens_cap
                ),
                Some(max_param),
            ))
        }
        Some(m) => m as usize,
    };
    let mut sampling = SamplingParams {
        seed: None,
        ..config.default_sampling.clone()
    };
    if let Some(t) = request.temperature {
        sampling.temperature = range(t, "temperature", 0.0, 2.0)?;
    }
    if let Some(p) = request.top_p {
        sampling.top_p = range(p, "top_p", 0.0, 1.0)?;
        if sampling.top_p == 0.0 {
            return Err(ApiError::invalid("`top_p` must be above 0", Some("top_p")));
        }
    }
    match request.top_k {
        None | Some(-1) | Some(0) => {}
        Some(k) if k > 0 => sampling.top_k = Some(k as usize),
        Some(k) => {
            return Err(ApiError::invalid(
                format!("`top_k` must be positive (0 or -1: off), got {k}"),
                Some("top_k"),
            ))
        }
    }
    if let Some(p) = request.min_p {
        sampling.min_p = range(p, "min_p", 0.0, 1.0)?;
    }
    if let Some(p) = request.frequency_penalty {
        sampling.frequency_penalty = range(p, "frequency_penalty", -2.0, 2.0)?;
    }
    if let Some(p) = request.presence_penalty {
        sampling.presence_penalty = range(p, "presence_penalty", -2.0, 2.0)?;
    }
    if let Some(p) = request.repetition_penalty {
        sampling.repetition_penalty = range(p, "repetition_penalty", 0.01, 10.0)?;
    }
    sampling.seed = request.seed.map(|s| s as u64);
    sampling.validate().map_err(ApiError::from_sampler)?;

    let stop = request.stop.map(|s| s.into_vec()).unwrap_or_default();
    if stop.len() > MAX_STOP || stop.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            format!("`stop` takes up to {MAX_STOP} non-empty strings"),
            Some("stop"),
        ));
    }
    let logprobs = match (request.logprobs.unwrap_or(false), request.top_logprobs) {
        (false, Some(_)) => {
            return Err(ApiError::invalid(
                "`top_logprobs` needs `logprobs: true`",
                Some("top_logprobs"),
            ))
        }
        (false, None) => None,
        (true, top) => {
            let top = top.unwrap_or(0);
            if !(0..=MAX_TOP_LOGPROBS).contains(&top) {
                return Err(ApiError::invalid(
                    format!("`top_logprobs` must be between 0 and {MAX_TOP_LOGPROBS}"),
                    Some("top_logprobs"),
                ));
            }
            Some(top as usize)
        }
    };

    let tool_list = request.tools.unwrap_or_default();
    let tool_plan = tools::plan(&tool_list, request.tool_choice.as_ref())?;
    let (constraint, constraint_param) = match (&tool_plan, request.response_format) {
        (ToolPlan::Call { .. }, Some(f)) if !matches!(f, ResponseFormat::Text) => {
            return Err(ApiError::invalid(
                "A tool call and a response_format cannot both constrain the answer",
                Some("response_format"),
            ))
        }
        (ToolPlan::Call { schema, functions }, _) => {
            let param = match functions.as_slice() {
                [(i, _)] => format!("tools[{i}].function.parameters"),
                _ => "tools".to_string(),
            };
            (Constraint::JsonSchema(schema.clone()), param)
        }
        (ToolPlan::Chat, format) => (constraint_of(format)?, "response_format".to_string()),
    };

    let mut messages = messages(request.messages)?;
    if !tool_list.is_empty() {
        let calling = matches!(tool_plan, ToolPlan::Call { .. });
        messages = corral::with_system_text(&messages, &tools::describe(&tool_list, calling));
    }
    let options = GenerateOptions {
        sampling,
        max_tokens,
        stop,
        schema_in_prompt: config.schema_in_prompt,
        logprobs,
        ..GenerateOptions::default()
    };
    Ok(Plan {
        messages,
        constraint,
        constraint_param,
        options,
        n: n as usize,
        stream: request.stream.unwrap_or(false),
        include_usage: request
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        tools: tool_plan,
    })
}

/// The constraint a `response_format` asks for.
fn constraint_of(format: Option<ResponseFormat>) -> Result<Constraint, ApiError> {
    Ok(match format {
        None | Some(ResponseFormat::Text) => Constraint::Text,
        Some(ResponseFormat::JsonObject { schema: None }) => Constraint::JsonObject,
        Some(ResponseFormat::JsonObject {
            schema: Some(schema),
        }) => Constraint::JsonSchema(schema),
        Some(ResponseFormat::JsonSchema { json_schema }) => match json_schema.schema {
            Some(schema) => Constraint::JsonSchema(schema),
            None => {
                return Err(ApiError::schema(
                    "`json_schema.schema` is required",
                    "response_format.json_schema.schema",
                ))
            }
        },
        Some(ResponseFormat::Regex { pattern }) => Constraint::Regex(pattern),
    })
}

/// The library's messages: text parts joined, earlier tool calls written as the call
/// documents the model is constrained to produce.
fn messages(list: Vec<ChatMessage>) -> Result<Vec<Message>, ApiError> {
    if list.is_empty() {
        return Err(ApiError::invalid(
            "`messages` must hold at least one message",
            Some("messages"),
        ));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, m)| {
            let role = match m.role.as_str() {
                "system" | "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                "tool" => "tool",
                other => {
                    return Err(ApiError::invalid(
                        format!("Unknown role `{other}`: use system, user, assistant or tool"),
                        Some(&format!("messages[{i}].role")),
                    ))
                }
            };
            let mut content = match m.content {
                None => String::new(),
                Some(Content::Text(text)) => text,
                Some(Content::Parts(parts)) => {
                    let mut text = String::new();
                    for (j, part) in parts.into_iter().enumerate() {
                        match (part.kind.as_str(), part.text) {
                            ("text", Some(t)) => text.push_str(&t),
                            (kind, _) => {
                                return Err(ApiError::invalid(
                                    format!(
                                        "Unsupported content part `{kind}`: only text parts are"
                                    ),
                                    Some(&format!("messages[{i}].content[{j}]")),
                                ))
                            }
                        }
                    }
                    text
                }
            };
            for call in m.tool_calls.unwrap_or_default() {
                let arguments: serde_json::Value = serde_json::from_str(&call.function.arguments)
                    .map_err(|e| {
                    ApiError::invalid(
                        format!("Tool call arguments are not JSON: {e}"),
                        Some(&format!("messages[{i}].tool_calls")),
                    )
                })?;
                if !content.is_empty() {
                    content.push('\n');
                }
                content.push_str(
                    &serde_json::json!({"name": call.function.name, "arguments": arguments})
                        .to_string(),
                );
            }
            Ok(Message::new(role, content))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> ChatRequest {
        serde_json::from_value(json).expect("request parses")
    }

    /// The server's default sampling fills what a request leaves out; what it gives wins.
    #[test]
    fn default_sampling_fills_omitted_fields() {
        let mut config = ServerConfig::new("m");
        config.default_sampling = SamplingParams {
            temperature: 0.2,
            top_p: 0.9,
            repetition_penalty: 1.05,
            ..SamplingParams::default()
        };
        let messages = serde_json::json!([{"role": "user", "content": "hi"}]);
        let plain = plan(
            request(serde_json::json!({"model": "m", "messages": messages})),
            &config,
        )
        .expect("plan");
        let s = &plain.options.sampling;
        assert_eq!(
            (s.temperature, s.top_p, s.repetition_penalty),
            (0.2, 0.9, 1.05)
        );
        let given = plan(
            request(serde_json::json!({
                "model": "m", "messages": messages, "temperature": 0.7, "top_p": 1.0
            })),
            &config,
        )
        .expect("plan");
        let s = &given.options.sampling;
        assert_eq!(
            (s.temperature, s.top_p, s.repetition_penalty),
            (0.7, 1.0, 1.05)
        );
    }
}
