//! `corral serve`: an OpenAI/Together-compatible Chat Completions server with JSON mode.
//!
//! - `POST /v1/chat/completions` (and `/chat/completions`): OpenAI's request and response
//!   shapes, server-sent-event streaming, `response_format` (`text`, `json_object` with or
//!   without Together's `schema`, OpenAI's `json_schema`, `regex`), function calling,
//!   `n`, `logprobs`.
//! - `GET /v1/models`, `GET /health`, `GET /metrics` (Prometheus).
//! - Errors in OpenAI's envelope; bad input is a 4xx, never a 500.
//!
//! Requests are decoded together by one [`Scheduler`](engine::Scheduler) (continuous
//! batching through `LanguageModel::forward_batch`).
pub mod api;
pub mod config;
pub mod convert;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod server;
pub mod tools;

pub use config::ServerConfig;
pub use error::ApiError;
pub use server::Server;
