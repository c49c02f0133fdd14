//! The answers themselves: every response format, n, logprobs, streaming, tool calls, a
//! 32-request load test, cancellation on disconnect and the queue limit.
mod common;

use std::time::Duration;

use common::{assert_valid, start, tiny_model, user, TestServer};
use futures_util::StreamExt;
use serde_json::{json, Value};

/// Bounded schemas (a random model must finish within 256 positions).
fn schemas() -> Vec<Value> {
    vec![
        json!({"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 6},
            "age": {"type": "integer", "minimum": 0, "maximum": 120}},
            "required": ["name", "age"], "additionalProperties": false}),
        json!({"type": "object", "properties": {
            "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "minItems": 1, "maxItems": 3}},
            "required": ["tags"]}),
        json!({"anyOf": [{"type": "boolean"}, {"type": "integer", "minimum": -5, "maximum": 5}]}),
        json!({"type": "object", "properties": {
            "ok": {"type": "boolean"},
            "score": {"type": "number", "minimum": 0, "maximum": 1}},
            "required": ["ok", "score"]}),
    ]
}

fn json_request(schema: &Value, seed: u64) -> Value {
    json!({
        "model": "tiny",
        "messages": user("Answer in JSON."),
        "response_format": {"type": "json_object", "schema": schema},
        "temperature": 1.0,
        "seed": seed,
        "max_tokens": 200,
    })
}

fn content(body: &Value, choice: usize) -> &str {
    body["choices"][choice]["message"]["content"]
        .as_str()
        .unwrap_or_else(|| panic!("no content in {body}"))
}

/// The `data:` payloads of a server-sent-event body.
fn sse_data(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(|d| d.trim().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_formats_n_and_logprobs() {
    let s = start(tiny_model(), |_| {}).await;
    for (i, schema) in schemas().iter().enumerate() {
        // Together's form and OpenAI's form.
        let (status, body) = s.chat(&json_request(schema, i as u64)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["choices"][0]["finish_reason"], "stop", "{body}");
        assert_valid(schema, &serde_json::from_str(content(&body, 0)).unwrap());
        let mut openai = json_request(schema, 100 + i as u64);
        openai["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": true}});
        let (status, body) = s.chat(&openai).await;
        assert_eq!(status, 200, "{body}");
        assert_valid(schema, &serde_json::from_str(content(&body, 0)).unwrap());
    }
    // Any JSON object.
    let mut any = json_request(&json!({}), 5);
    any["response_format"] = json!({"type": "json_object"});
    let (status, body) = s.chat(&any).await;
    assert_eq!(status, 200, "{body}");
    // The random model writes an unbounded string here and runs out of tokens, so what is
    // checked is that the constraint holds: an object begins (and is whole if it ended).
    let text = content(&body, 0);
    assert!(text.trim_start().starts_with('{'), "{text}");
    match body["choices"][0]["finish_reason"].as_str() {
        Some("stop") => assert!(serde_json::from_str::<Value>(text).unwrap().is_object()),
        other => assert_eq!(other, Some("length"), "{body}"),
    }
    // A regex.
    let mut regex = json_request(&json!({}), 6);
    regex["response_format"] = json!({"type": "regex", "pattern": "(yes|no), [0-9]{2}"});
    let (status, body) = s.chat(&regex).await;
    assert_eq!(status, 200, "{body}");
    let text = content(&body, 0);
    assert!(
        text.starts_with("yes, ") || text.starts_with("no, "),
        "{text}"
    );
    assert_eq!(text.len(), text.find(", ").unwrap() + 4, "{text}");
    // n choices share one prefill; each is valid; usage counts the prompt once.
    let schema = &schemas()[0];
    let mut many = json_request(schema, 9);
    many["n"] = json!(3);
    let (status, body) = s.chat(&many).await;
    assert_eq!(status, 200, "{body}");
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    for (i, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], i);
        assert_valid(schema, &serde_json::from_str(content(&body, i)).unwrap());
    }
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        )
    );
    let texts: Vec<&str> = (0..3).map(|i| content(&body, i)).collect();
    assert!(
        texts[0] != texts[1] || texts[1] != texts[2],
        "n choices should differ: {texts:?}"
    );
    // Choices that end on their first token (choice 0 included) do not hold up the others.
    for (format, max_tokens) in [
        (json!({"type": "regex", "pattern": "(yes|no)"}), 5),
        (json!({"type": "text"}), 1),
    ] {
        let body = json!({"model": "tiny", "messages": user("Yes?"), "n": 3, "seed": 4,
            "response_format": format, "max_tokens": max_tokens});
        let (status, body) = s.chat(&body).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["choices"].as_array().unwrap().len(), 3, "{body}");
    }
    // Logprobs: one entry per completion token, alternatives sorted, probabilities ≤ 1.
    let mut lp = json_request(schema, 10);
    lp["logprobs"] = json!(true);
    lp["top_logprobs"] = json!(3);
    let (status, body) = s.chat(&lp).await;
    assert_eq!(status, 200, "{body}");
    let entries = body["choices"][0]["logprobs"]["content"]
        .as_array()
        .unwrap();
    assert_eq!(
        entries.len() as u64,
        body["usage"]["completion_tokens"].as_u64().unwrap()
    );
    for e in entries {
        assert!(e["logprob"].as_f64().unwrap() <= 1e-6, "{e}");
        let top = e["top_logprobs"].as_array().unwrap();
        assert!(!top.is_empty() && top.len() <= 3, "{e}");
        let values: Vec<f64> = top.iter().map(|t| t["logprob"].as_f64().unwrap()).collect();
        assert!(values.windows(2).all(|w| w[0] >= w[1]), "{e}");
        assert!(e["logprob"].as_f64().unwrap() <= values[0] + 1e-5, "{e}");
    }
    // max_tokens cuts a document off: finish_reason length.
    let mut short = json_request(schema, 11);
    short["max_tokens"] = json!(3);
    let (status, body) = s.chat(&short).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_and_tool_calls() {
    let s = start(tiny_model(), |_| {}).await;
    let schema = &schemas()[3];
    let mut request = json_request(schema, 3);
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});
    let response = s
        .client
        .post(format!("{}/v1/chat/completions", s.base))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let data = sse_data(&response.text().await.unwrap());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_valid(schema, &serde_json::from_str(&text).unwrap());
    let finish: Vec<&Value> = chunks
        .iter()
        .map(|c| &c["choices"][0]["finish_reason"])
        .filter(|f| !f.is_null())
        .collect();
    assert_eq!(finish, [&json!("stop")]);
    let usage = &chunks.last().unwrap()["usage"];
    assert!(chunks.last().unwrap()["choices"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"]));

    // A required tool call: arguments valid under the function's parameters.
    let parameters = json!({"type": "object", "properties": {
        "city": {"enum": ["Paris", "Rome"]}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "days"]});
    let tools = json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather forecast", "parameters": parameters}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
    ]);
    for (choice, seed) in [
        (json!("required"), 1),
        (
            json!({"type": "function", "function": {"name": "get_weather"}}),
            2,
        ),
    ] {
        let body = json!({"model": "tiny", "messages": user("Weather?"), "tools": tools, "tool_choice": choice, "seed": seed, "max_tokens": 200});
        let (status, body) = s.chat(&body).await;
        assert_eq!(status, 200, "{body}");
        let c = &body["choices"][0];
        assert_eq!(c["finish_reason"], "tool_calls", "{body}");
        assert!(c["message"]["content"].is_null());
        let call = &c["message"]["tool_calls"][0];
        assert_eq!(call["type"], "function");
        assert!(call["id"].as_str().unwrap().starts_with("call_"));
        let arguments: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        match call["function"]["name"].as_str().unwrap() {
            "get_weather" => assert_valid(&parameters, &arguments),
            "get_time" => assert!(arguments.is_object()),
            other => panic!("unknown function {other}"),
        }
    }
    // Streamed tool call: one tool_calls delta, then finish_reason tool_calls.
    let body = json!({"model": "tiny", "messages": user("Weather?"), "tools": tools, "stream": true,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}}, "seed": 4, "max_tokens": 200});
    let text = s
        .client
        .post(format!("{}/v1/chat/completions", s.base))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data = sse_data(&text);
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let call = chunks
        .iter()
        .find_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .expect("a tool call chunk");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_valid(
        &parameters,
        &serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap(),
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_requests_all_answered_valid() {
    let s = start(tiny_model(), |c| c.max_concurrent = 16).await;
    let s = &s;
    let all = schemas();
    let requests = (0..32).map(|i| {
        let schema = all[i % all.len()].clone();
        async move {
            let response = s
                .client
                .post(format!("{}/v1/chat/completions", s.base))
                .timeout(Duration::from_secs(300))
                .json(&json_request(&schema, 1000 + i as u64))
                .send()
                .await
                .unwrap_or_else(|e| panic!("request {i}: {e}"));
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (i, schema, status, body)
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    assert_eq!(answers.len(), 32);
    for (i, schema, status, body) in answers {
        assert_eq!(status, 200, "request {i}: {body}");
        assert_eq!(
            body["choices"][0]["finish_reason"], "stop",
            "request {i}: {body}"
        );
        assert_valid(&schema, &serde_json::from_str(content(&body, 0)).unwrap());
    }
    let metrics = s.metrics().await;
    assert!(
        metrics
            .contains("corral_http_requests_total{route=\"chat_completions\",status=\"200\"} 32"),
        "{metrics}"
    );
    // Sequences were stepped together: some batch held more than one.
    let batched: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("corral_batch_size_bucket{le=\"1\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap();
    let steps = s.metric("batch_size_count").await;
    assert!(batched < steps, "every step held one sequence");
}

/// Open a streaming request for 4,000 letters: on SmolLM2 (~15 ms a token here) it holds
/// its slot for about a minute, far longer than the test needs it to.
async fn open_stream(s: &TestServer, seed: u64) -> reqwest::Response {
    let body = json!({"model": "tiny", "messages": user("Letters."), "stream": true, "seed": seed,
        "response_format": {"type": "regex", "pattern": "[a-z]{4000}"}, "max_tokens": 4000});
    let response = s
        .client
        .post(format!("{}/v1/chat/completions", s.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_prompt_is_prefilled_in_chunks_beside_other_requests() {
    let s = start(common::smollm2(), |_| {}).await;
    let text = "The quick brown fox jumps over the lazy dog. ".repeat(150);
    let schema = json!({"type": "object", "properties": {"animal": {"enum": ["fox", "dog"]}},
        "required": ["animal"]});
    let long_request = json!({"model": "tiny", "seed": 1, "max_tokens": 30,
        "messages": user(&format!("{text}\nWhich animal jumps?")),
        "response_format": {"type": "json_object", "schema": schema}});
    let short_request = json!({"model": "tiny", "seed": 2, "max_tokens": 30,
        "messages": user("Which animal barks?"),
        "response_format": {"type": "json_object", "schema": schema}});
    let (long, short) = tokio::join!(s.chat(&long_request), s.chat(&short_request));
    for (status, body) in [long.clone(), short] {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["choices"][0]["finish_reason"], "stop", "{body}");
        assert_valid(&schema, &serde_json::from_str(content(&body, 0)).unwrap());
    }
    // Several chunks of 512.
    let prompt_tokens = long.1["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(prompt_tokens > 1200, "{}", long.1);
    // The same long text with another question starts from the cached prefix.
    let mut again = long_request.clone();
    again["messages"] = user(&format!("{text}\nWhich animal is lazy?"));
    let (status, body) = s.chat(&again).await;
    assert_eq!(status, 200, "{body}");
    assert_valid(&schema, &serde_json::from_str(content(&body, 0)).unwrap());
    assert!(s.metric("prefix_cache_hits_total").await >= 1.0);
    assert!(s.metric("prefix_tokens_reused_total").await > 1000.0);
}

async fn wait_for(s: &TestServer, name: &str, value: f64) {
    for _ in 0..600 {
        if s.metric(name).await == value {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "corral_{name} never reached {value}:\n{}",
        s.metrics().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_frees_the_sequence_and_a_full_queue_is_a_429() {
    // A real model with a long context: the tiny models finish any generation in a fraction
    // of a second, before the test could observe the queue.
    let s = start(common::smollm2(), |c| {
        c.max_concurrent = 1;
        c.max_queue = 1;
    })
    .await;
    // A long generation holds the only slot.
    let response = open_stream(&s, 1).await;
    let mut chunks = response.bytes_stream();
    chunks.next().await.unwrap().unwrap();
    wait_for(&s, "active_sequences", 1.0).await;
    // One more waits in the queue...
    let waiting = {
        let client = s.client.clone();
        let url = format!("{}/v1/chat/completions", s.base);
        let mut body = json_request(&schemas()[0], 5);
        body["max_tokens"] = json!(8);
        tokio::spawn(async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    wait_for(&s, "queue_length", 1.0).await;
    // ...and the next is refused.
    let got = s.chat(&json_request(&schemas()[0], 6)).await;
    common::assert_error(&got, 429, None, Some("queue_full"));
    // The client of the long generation goes away: its sequence is freed, the waiting
    // request runs and is answered.
    drop(chunks);
    wait_for(&s, "cancelled_total", 1.0).await;
    assert_eq!(waiting.await.unwrap(), 200);
    wait_for(&s, "active_sequences", 0.0).await;
    wait_for(&s, "queue_length", 0.0).await;
}
