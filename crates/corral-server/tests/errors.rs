//! Every refusal is a 4xx in OpenAI's error envelope, and the server keeps serving.
mod common;

use common::{assert_error, start, tiny_model, user};
use serde_json::{json, Value};

fn chat(extra: Value) -> Value {
    let mut body = json!({"model": "tiny", "messages": user("Hi"), "max_tokens": 8});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_400s_in_openai_shape() {
    let s = start(tiny_model(), |c| c.max_tokens_cap = 100).await;
    let url = format!("{}/v1/chat/completions", s.base);

    // Malformed JSON.
    let r = s
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    let got = (r.status().as_u16(), r.json::<Value>().await.unwrap());
    assert_error(&got, 400, None, None);
    assert_eq!(got.1["error"]["type"], "invalid_request_error");

    // Known fields of the wrong type or out of range name the parameter.
    for (extra, param) in [
        (json!({"temperature": "hot"}), "temperature"),
        (json!({"messages": "hello"}), "messages"),
        (json!({"n": 0}), "n"),
        (json!({"n": 1000}), "n"),
        (json!({"max_tokens": 0}), "max_tokens"),
        (json!({"max_tokens": 101}), "max_tokens"),
        (json!({"max_completion_tokens": 0}), "max_completion_tokens"),
        (json!({"temperature": 2.5}), "temperature"),
        (json!({"top_p": 1.5}), "top_p"),
        (json!({"top_k": -5}), "top_k"),
        (json!({"min_p": -0.1}), "min_p"),
        (json!({"frequency_penalty": 3}), "frequency_penalty"),
        (json!({"presence_penalty": -3}), "presence_penalty"),
        (json!({"repetition_penalty": 0}), "repetition_penalty"),
        (json!({"top_logprobs": 2}), "top_logprobs"),
        (
            json!({"logprobs": true, "top_logprobs": 21}),
            "top_logprobs",
        ),
        (json!({"stop": ["a", "b", "c", "d", "e"]}), "stop"),
        (json!({"messages": []}), "messages"),
        (
            json!({"messages": [{"role": "wizard", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
            "messages[0].content[0]",
        ),
        (
            json!({"response_format": {"type": "yaml"}}),
            "response_format.type",
        ),
        (json!({"tool_choice": "required"}), "tools"),
    ] {
        let got = s.chat(&chat(extra.clone())).await;
        assert_error(&got, 400, Some(param), None);
        assert_eq!(got.1["error"]["type"], "invalid_request_error", "{extra}");
    }

    // A prompt longer than the context (256 positions).
    let long = "word ".repeat(400);
    let got = s.chat(&chat(json!({"messages": user(&long)}))).await;
    assert_error(&got, 400, Some("messages"), Some("context_length_exceeded"));

    // Unknown fields are ignored.
    let (status, body) = s
        .chat(&chat(json!({"frobnicate": true, "user": "me"})))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schemas_and_regexes_are_invalid_json_schema() {
    let s = start(tiny_model(), |_| {}).await;
    let format =
        |schema: Value| json!({"response_format": {"type": "json_object", "schema": schema}});
    // Invalid, unsupported and unsatisfiable schemas (llama.cpp answers the last with a
    // number).
    for (schema, needle) in [
        (json!({"type": "strnig"}), "strnig"),
        (
            json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "(?<=x)a"}}}),
            "/properties/a",
        ),
        (json!({"type": "integer", "minimum": 5, "maximum": 1}), ""),
        (json!({"$ref": "#/definitions/missing"}), "missing"),
    ] {
        let got = s.chat(&chat(format(schema.clone()))).await;
        assert_error(
            &got,
            400,
            Some("response_format"),
            Some("invalid_json_schema"),
        );
        let message = got.1["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{schema}: {message}");
    }
    // OpenAI's form.
    let got = s
        .chat(&chat(json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "integer", "minimum": 5, "maximum": 1}}}})))
        .await;
    assert_error(
        &got,
        400,
        Some("response_format"),
        Some("invalid_json_schema"),
    );
    let got = s
        .chat(&chat(
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}),
        ))
        .await;
    assert_error(
        &got,
        400,
        Some("response_format.json_schema.schema"),
        Some("invalid_json_schema"),
    );
    // Regexes.
    for pattern in ["((", "a{5}b{"] {
        let got = s
            .chat(&chat(
                json!({"response_format": {"type": "regex", "pattern": pattern}}),
            ))
            .await;
        assert_error(
            &got,
            400,
            Some("response_format"),
            Some("invalid_json_schema"),
        );
    }
    // A tool whose parameters are not a valid schema names the tool's path.
    let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "integer", "minimum": 3, "maximum": 2}}, "required": ["x"]}}}]);
    let got = s
        .chat(&chat(json!({"tools": tools, "tool_choice": "required"})))
        .await;
    assert_error(
        &got,
        400,
        Some("tools[0].function.parameters"),
        Some("invalid_json_schema"),
    );
    let got = s
        .chat(&chat(
            json!({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "g"}}}),
        ))
        .await;
    assert_error(&got, 400, Some("tool_choice.function.name"), None);
    // Still serving.
    let (status, body) = s.chat(&chat(json!({}))).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_compiles_end_in_a_400() {
    let s = start(tiny_model(), |c| {
        c.compile_timeout = std::time::Duration::from_micros(1)
    })
    .await;
    // Hundreds of required properties with patterns: far more than the timer's 1 ms
    // resolution to compile.
    let properties: serde_json::Map<String, Value> = (0..300)
        .map(|i| {
            let pattern = format!("([a-z]{{2,9}}\\.){{1,{}}}[a-z0-9]{{3,20}}@k{i}", 2 + i % 5);
            (
                format!("field_{i}"),
                json!({"type": "string", "pattern": pattern}),
            )
        })
        .collect();
    let required: Vec<&String> = properties.keys().collect();
    let schema = json!({"type": "object", "properties": properties, "required": required});
    let got = s
        .chat(&chat(
            json!({"response_format": {"type": "json_object", "schema": schema}}),
        ))
        .await;
    assert_error(
        &got,
        400,
        Some("response_format"),
        Some("invalid_json_schema"),
    );
    assert!(got.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("longer than"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_model_path_and_size_errors() {
    let s = start(tiny_model(), |c| {
        c.api_key = Some("sekrit".into());
        c.body_limit = 2048;
    })
    .await;
    let url = format!("{}/v1/chat/completions", s.base);
    let send = |key: Option<&'static str>, body: Value| {
        let mut r = s.client.post(&url).json(&body);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        async move {
            let r = r.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    assert_error(
        &send(None, chat(json!({}))).await,
        401,
        None,
        Some("invalid_api_key"),
    );
    assert_error(
        &send(Some("wrong"), chat(json!({}))).await,
        401,
        None,
        Some("invalid_api_key"),
    );
    assert_error(
        &send(Some("sekrit"), chat(json!({"model": "gpt-9"}))).await,
        404,
        Some("model"),
        Some("model_not_found"),
    );
    let huge = chat(json!({"messages": user(&"x".repeat(4096))}));
    assert_error(
        &send(Some("sekrit"), huge).await,
        413,
        None,
        Some("request_too_large"),
    );
    let (status, body) = send(Some("sekrit"), chat(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    // Health and metrics stay open; unknown paths are 404s in the envelope.
    let health = s
        .client
        .get(format!("{}/health", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let r = s
        .client
        .get(format!("{}/v1/nothing", s.base))
        .bearer_auth("sekrit")
        .send()
        .await
        .unwrap();
    let got = (r.status().as_u16(), r.json::<Value>().await.unwrap());
    assert_error(&got, 404, None, Some("unknown_url"));
    let r = s
        .client
        .get(format!("{}/v1/chat/completions", s.base))
        .bearer_auth("sekrit")
        .send()
        .await
        .unwrap();
    let got = (r.status().as_u16(), r.json::<Value>().await.unwrap());
    assert_error(&got, 405, None, Some("method_not_allowed"));
    let metrics = s.metrics().await;
    assert!(
        metrics.contains("corral_http_requests_total{route=\"chat_completions\",status=\"401\"} 2"),
        "{metrics}"
    );
}
