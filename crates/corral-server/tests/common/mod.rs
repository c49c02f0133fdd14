//! A server over a tiny random model (or SmolLM2), on a free loopback port, per test.
#![allow(dead_code)]
use std::path::PathBuf;
use std::sync::Arc;

use corral::Model;
use corral_server::{Server, ServerConfig};
use serde_json::{json, Value};

pub fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// The tiny random Llama with the Mistral tokenizer (256 positions).
pub fn tiny_model() -> Arc<Model> {
    let model = Model::load_with_tokenizer(
        repo("crates/corral-models/tests/fixtures/tiny-llama"),
        repo("tests/data/tokenizers/mistral-7b-v0.1"),
        &Default::default(),
    )
    .unwrap_or_else(|e| panic!("tiny-llama: {e}"));
    Arc::new(model)
}

/// SmolLM2-135M-Instruct (fetched by `scripts/fetch-model.sh`; required).
pub fn smollm2() -> Arc<Model> {
    let path = repo("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let model = Model::load(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run `bash scripts/fetch-model.sh` first)",
            path.display()
        )
    });
    Arc::new(model)
}

pub struct TestServer {
    pub base: String,
    pub server: Server,
    pub client: reqwest::Client,
}

/// Start a server for `model` named `tiny` (the schema stays out of the 256-token prompt).
pub async fn start(model: Arc<Model>, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let mut config = ServerConfig::new("tiny");
    config.schema_in_prompt = false;
    config.seed = Some(7);
    configure(&mut config);
    let server = Server::new(model, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let address = listener.local_addr().expect("bound address");
    tokio::spawn(server.clone().serve(listener));
    TestServer {
        base: format!("http://{address}"),
        server,
        client: reqwest::Client::new(),
    }
}

impl TestServer {
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let value = response.json().await.unwrap_or(Value::Null);
        (status, value)
    }

    pub async fn chat(&self, body: &Value) -> (u16, Value) {
        self.post("/v1/chat/completions", body).await
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// The value of an unlabelled metric.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("corral_{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric corral_{name} in\n{text}"))
    }
}

pub fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

/// Assert the OpenAI error envelope with this status, type, param and code.
pub fn assert_error(
    (status, body): &(u16, Value),
    want_status: u16,
    param: Option<&str>,
    code: Option<&str>,
) {
    assert_eq!(*status, want_status, "{body}");
    let error = &body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(error["type"].is_string(), "{body}");
    assert_eq!(error["param"].as_str(), param, "{body}");
    assert_eq!(error["code"].as_str(), code, "{body}");
}

/// Validate `document` against `schema` with the jsonschema crate (independent oracle).
pub fn assert_valid(schema: &Value, document: &Value) {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("schema compiles in jsonschema");
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{document} violates {schema}: {errors:?}"
    );
}
