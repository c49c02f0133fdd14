//! [`ServerConfig`]: names, key and limits of a server.
use std::time::Duration;

use corral::SamplingParams;

/// How a server behaves; `corral serve`'s flags fill it.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Names clients may put in `model` (the first is reported in answers).
    pub served_names: Vec<String>,
    /// Required `Authorization: Bearer` key, if any.
    pub api_key: Option<String>,
    /// Most sequences decoded together (a request with `n` choices takes `n`).
    pub max_concurrent: usize,
    /// Most requests waiting for a slot; beyond it, 429.
    pub max_queue: usize,
    /// `max_tokens` when a request gives none.
    pub max_tokens_default: usize,
    /// Largest `max_tokens` a request may ask for (400 beyond).
    pub max_tokens_cap: usize,
    /// Limit on a request from arrival to its last token.
    pub request_timeout: Duration,
    /// Limit on compiling one schema or regex (400 beyond).
    pub compile_timeout: Duration,
    /// Largest request body in bytes (413 beyond).
    pub body_limit: usize,
    /// Put the schema into the prompt (as the library does by default).
    pub schema_in_prompt: bool,
    /// Requests without a `seed` draw theirs from this one and their arrival order, so a
    /// server restarted with the same seed answers the same requests alike (`None`: fresh
    /// randomness per request).
    pub seed: Option<u64>,
    /// Keep the KV state of recent prompts and start new prompts that share a prefix from
    /// it. The reused positions are the same numbers, but the prompt's last positions are
    /// computed in a different grouping than a whole prefill, so a greedy answer can differ
    /// at a near-tie (as with any prefix cache); off for bit-reproducible runs.
    pub prefix_cache: bool,
    /// Sampling settings for what a request leaves out (as llama.cpp's server's `--temp`,
    /// `--top-p`, `--repeat-penalty`): a deployment sets its model's recommended values
    /// here. The defaults are OpenAI's (temperature 1, no truncation, no penalty).
    pub default_sampling: SamplingParams,
}

impl ServerConfig {
    /// Defaults for a model known by `name`.
    pub fn new(name: impl Into<String>) -> ServerConfig {
        ServerConfig {
            served_names: vec![name.into()],
            api_key: None,
            max_concurrent: 16,
            max_queue: 256,
            max_tokens_default: 1024,
            max_tokens_cap: 8192,
            request_timeout: Duration::from_secs(600),
            compile_timeout: Duration::from_secs(30),
            body_limit: 4 * 1024 * 1024,
            schema_in_prompt: true,
            seed: None,
            prefix_cache: true,
            default_sampling: SamplingParams::default(),
        }
    }

    /// Most choices (`n`) per request.
    pub fn max_n(&self) -> usize {
        self.max_concurrent.clamp(1, 16)
    }
}
