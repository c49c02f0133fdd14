//! The real clients against `corral serve` with SmolLM2-135M-Instruct: the seed's Python
//! example (`openai` + pydantic) and OpenAI's forms, the seed's Node example (`openai`, zod
//! and zod-to-json-schema) and the seed's curl request. The clients are installed by
//! `scripts/setup-clients.sh` (the README's test command runs it); without them these tests
//! fail.
mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{assert_valid, repo, smollm2};
use corral::SamplingParams;
use corral_server::ServerConfig;
use serde_json::{json, Value};

fn clients() -> PathBuf {
    repo("crates/corral-server/tests/clients")
}

/// A server as `corral serve --served-name … --api-key dummy-key --seed 0
/// --default-temperature 0.2 --default-top-p 0.9` runs it: SmolLM2's recommended sampling
/// (its model card) for the requests that set none, as a deployment of it would configure.
/// (At OpenAI's default temperature 1 the 135M model rambles past `max_tokens` on the seed's
/// transcript, depending on the seed.)
async fn serve() -> common::TestServer {
    common::start(smollm2(), |c: &mut ServerConfig| {
        c.served_names = vec![
            "mistralai/Mixtral-8x7B-Instruct-v0.1".into(),
            "mistralai/Mistral-7B-Instruct-v0.1".into(),
        ];
        c.api_key = Some("dummy-key".into());
        c.schema_in_prompt = true;
        c.seed = Some(0);
        c.default_sampling = SamplingParams {
            temperature: 0.2,
            top_p: 0.9,
            ..SamplingParams::default()
        };
    })
    .await
}

/// Run a client program against the server; its output is shown, its failure fails the test.
async fn run(mut command: Command, base: &str) -> String {
    command.env("CORRAL_BASE_URL", format!("{base}/v1"));
    let shown = format!("{command:?}");
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("client task")
        .unwrap_or_else(|e| {
            panic!("cannot run {shown}: {e} (run `bash scripts/setup-clients.sh`)")
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{shown}\n{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "{shown} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_openai_and_pydantic() {
    let python = clients().join("python/.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash scripts/setup-clients.sh`",
        python.display()
    );
    let s = serve().await;
    let mut command = Command::new(python);
    command.arg(clients().join("python/seed_examples.py"));
    let out = run(command, &s.base).await;
    assert!(out.contains("python clients: all passed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_openai_zod_and_zod_to_json_schema() {
    let node_dir = clients().join("node");
    assert!(
        node_dir.join("node_modules/openai").exists(),
        "the Node clients are missing: run `bash scripts/setup-clients.sh`"
    );
    let s = serve().await;
    let mut command = Command::new("node");
    command.current_dir(&node_dir).arg("seed_example.mjs");
    let out = run(command, &s.base).await;
    assert!(out.contains("node client: passed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_curl_request() {
    let s = serve().await;
    let schema = json!({"type": "object", "properties": {"team_name": {"type": "string"}}, "required": ["team_name"]});
    let body = json!({
        "model": "mistralai/Mistral-7B-Instruct-v0.1",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant that answers in JSON."},
            {"role": "user", "content": "Who won the world cup in 2022? Answer in JSON."}
        ],
        "response_format": {"type": "json_object", "schema": schema},
        "temperature": 0.7
    });
    let mut command = Command::new("curl");
    command.args([
        "-sS",
        "-X",
        "POST",
        &format!("{}/chat/completions", s.base),
        "-H",
        "Authorization: Bearer dummy-key",
        "-H",
        "Content-Type: application/json",
        "-d",
        &body.to_string(),
    ]);
    let out = run(command, &s.base).await;
    let response: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(
        response["choices"][0]["finish_reason"], "stop",
        "{response}"
    );
    let content = response["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert_valid(&schema, &serde_json::from_str(content).unwrap());
}
