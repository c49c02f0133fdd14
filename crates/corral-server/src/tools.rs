//! Function calling: `tools` + `tool_choice` turned into a constraint whose documents are
//! `{"name": <function>, "arguments": <valid under its parameters>}`.
use serde_json::{json, Value};

use crate::api::{Tool, ToolCall, ToolChoice};
use crate::error::ApiError;

/// What the tools of a request ask for.
#[derive(Clone, Debug, PartialEq)]
pub enum ToolPlan {
    /// No tools, or `tool_choice` `"none"`/`"auto"`: plain chat (tools, if any, are
    /// described in the prompt).
    Chat,
    /// The answer must be a call of one of these functions (`"required"` or a named one).
    Call {
        /// The constraint: one call document.
        schema: Value,
        /// The functions that may be called, with their index in `tools`.
        functions: Vec<(usize, String)>,
    },
}

/// The schema of the arguments of a function without `parameters`: no arguments.
fn no_parameters() -> Value {
    json!({"type": "object", "properties": {}})
}

/// The call document of one function.
pub fn call_schema(name: &str, parameters: Option<&Value>) -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"const": name},
            "arguments": parameters.cloned().unwrap_or_else(no_parameters),
        },
        "required": ["name", "arguments"],
    })
}

/// Check `tools` and `tool_choice` and say what to generate.
pub fn plan(tools: &[Tool], choice: Option<&ToolChoice>) -> Result<ToolPlan, ApiError> {
    for (i, tool) in tools.iter().enumerate() {
        if tool.kind != "function" {
            return Err(ApiError::invalid(
                format!("Unsupported tool type `{}`: only `function` is", tool.kind),
                Some(&format!("tools[{i}].type")),
            ));
        }
        let name = &tool.function.name;
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(ApiError::invalid(
                format!("Invalid function name `{name}`: use a-z, A-Z, 0-9, _ and -, at most 64"),
                Some(&format!("tools[{i}].function.name")),
            ));
        }
        if tools[..i].iter().any(|t| &t.function.name == name) {
            return Err(ApiError::invalid(
                format!("Function `{name}` is listed twice"),
                Some(&format!("tools[{i}].function.name")),
            ));
        }
        if let Some(p) = &tool.function.parameters {
            if !p.is_object() {
                return Err(ApiError::schema(
                    "Function parameters must be a JSON Schema object",
                    &format!("tools[{i}].function.parameters"),
                ));
            }
        }
    }
    let functions: Vec<(usize, String)> = match choice {
        None => return Ok(ToolPlan::Chat),
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "none" | "auto" => return Ok(ToolPlan::Chat),
            "required" => tools
                .iter()
                .enumerate()
                .map(|(i, t)| (i, t.function.name.clone()))
                .collect(),
            other => {
                return Err(ApiError::invalid(
                    format!(
                    "Invalid tool_choice `{other}`: use none, auto, required or a named function"
                ),
                    Some("tool_choice"),
                ))
            }
        },
        Some(ToolChoice::Named(named)) => {
            if named.kind != "function" {
                return Err(ApiError::invalid(
                    format!("Unsupported tool_choice type `{}`", named.kind),
                    Some("tool_choice.type"),
                ));
            }
            let name = &named.function.name;
            match tools.iter().position(|t| &t.function.name == name) {
                Some(i) => vec![(i, name.clone())],
                None => {
                    return Err(ApiError::invalid(
                        format!("tool_choice names `{name}`, which is not in `tools`"),
                        Some("tool_choice.function.name"),
                    ))
                }
            }
        }
    };
    if functions.is_empty() {
        return Err(ApiError::invalid(
            "tool_choice asks for a call but `tools` is empty",
            Some("tools"),
        ));
    }
    let mut calls: Vec<Value> = functions
        .iter()
        .map(|(i, name)| call_schema(name, tools[*i].function.parameters.as_ref()))
        .collect();
    let schema = if calls.len() == 1 {
        calls.remove(0)
    } else {
        json!({"anyOf": calls})
    };
    Ok(ToolPlan::Call { schema, functions })
}

/// The system text that describes the tools to the model.
pub fn describe(tools: &[Tool], calling: bool) -> String {
    let list = serde_json::to_string(&tools.iter().map(|t| &t.function).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut text = format!("You have access to these functions:\n{list}");
    if calling {
        text.push_str(
            "\n\nCall one of them: answer with a JSON object {\"name\": <the function's name>, \
             \"arguments\": <its arguments>}.",
        );
    }
    text
}

/// The call in a complete call document.
pub fn to_call(document: &Value, id: String) -> Option<ToolCall> {
    let name = document.get("name")?.as_str()?.to_string();
    let arguments = document.get("arguments")?;
    Some(ToolCall {
        id,
        kind: "function".into(),
        function: crate::api::FunctionCall {
            name,
            arguments: serde_json::to_string(arguments).ok()?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{FunctionDef, FunctionName, NamedToolChoice};

    fn tool(name: &str) -> Tool {
        Tool {
            kind: "function".into(),
            function: FunctionDef {
                name: name.into(),
                description: None,
                parameters: Some(
                    json!({"type": "object", "properties": {"x": {"type": "integer"}}}),
                ),
                strict: None,
            },
        }
    }

    #[test]
    fn plans() {
        let tools = [tool("a"), tool("b")];
        assert_eq!(plan(&tools, None).unwrap(), ToolPlan::Chat);
        assert_eq!(
            plan(&tools, Some(&ToolChoice::Mode("auto".into()))).unwrap(),
            ToolPlan::Chat
        );
        match plan(&tools, Some(&ToolChoice::Mode("required".into()))).unwrap() {
            ToolPlan::Call { schema, functions } => {
                assert_eq!(functions.len(), 2);
                assert_eq!(schema["anyOf"][1]["properties"]["name"]["const"], "b");
            }
            other => panic!("{other:?}"),
        }
        let named = ToolChoice::Named(NamedToolChoice {
            kind: "function".into(),
            function: FunctionName { name: "c".into() },
        });
        let err = plan(&tools, Some(&named)).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("tool_choice.function.name"));
        let err = plan(&[tool("a"), tool("a")], None).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("tools[1].function.name"));
    }
}
