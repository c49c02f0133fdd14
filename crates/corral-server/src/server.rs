//! [`Server`]: the HTTP routes over one model and its [`Scheduler`].
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use corral::sampler::{ActiveSequence, DecodeOutput, FinishReason, TokenLogprobs};
use corral::{Constraint, Model};
use tokio::sync::mpsc;
use tracing::{info, info_span, Instrument};

use crate::api::{
    ChatChunk, ChatRequest, ChatResponse, Choice, ChoiceLogprobs, ChunkChoice, Delta, ModelCard,
    ModelList, ResponseMessage, TokenLogprob, ToolCallDelta, TopLogprob, Usage,
};
use crate::config::ServerConfig;
use crate::convert::{self, Plan};
use crate::engine::{Event, Job, Scheduler, SchedulerLimits};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::tools::{self, ToolPlan};

struct AppState {
    model: Arc<Model>,
    config: ServerConfig,
    metrics: Metrics,
    scheduler: Scheduler,
    started: u64,
    /// Requests so far (seeds of requests without one, with `--seed`).
    requests: AtomicU64,
    /// Compiles running at once. A compile that ran past its time limit keeps its permit
    /// until it really ends, so slow schemas cannot pile up threads that compete with
    /// decoding: later ones wait, and time out into a 400.
    compiles: Arc<tokio::sync::Semaphore>,
}

/// Constraints compiled at once.
const CONCURRENT_COMPILES: usize = 2;

/// A server over one loaded model.
#[derive(Clone)]
pub struct Server {
    state: Arc<AppState>,
}

/// The id of one HTTP request (in logs and the `x-request-id` header).
#[derive(Clone, Debug)]
struct RequestId(String);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A unique, unguessable-enough id: random per process, then a counter.
fn random_id(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SALT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let salt = *SALT.get_or_init(|| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(unix_now());
        h.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(salt ^ n);
    format!("{prefix}{:016x}{n:x}", h.finish())
}

impl Server {
    /// A server for `model`; starts its decoding thread.
    pub fn new(model: Arc<Model>, config: ServerConfig) -> Server {
        let metrics = Metrics::new();
        let scheduler = Scheduler::start(
            model.clone(),
            SchedulerLimits {
                max_concurrent: config.max_concurrent.max(1),
                // Every request passes through the queue, if only for an instant.
                max_queue: config.max_queue.max(1),
                prefix_cache: config.prefix_cache,
            },
            metrics.clone(),
        );
        Server {
            state: Arc::new(AppState {
                model,
                config,
                metrics,
                scheduler,
                started: unix_now(),
                requests: AtomicU64::new(0),
                compiles: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_COMPILES)),
            }),
        }
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// The routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/chat/completions", post(chat_completions))
            .route("/v1/models", get(list_models))
            .route("/models", get(list_models))
            .route("/health", get(health))
            .route("/metrics", get(render_metrics))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(middleware::from_fn_with_state(self.state.clone(), observe))
            .layer(DefaultBodyLimit::max(self.state.config.body_limit))
            .with_state(self.state.clone())
    }

    /// Serve on `listener` until Ctrl-C / SIGTERM.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown_signal())
            .await
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// Authentication, a request id and span, and the request counter by route and status.
async fn observe(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let route = match path.as_str() {
        "/v1/chat/completions" | "/chat/completions" => "chat_completions",
        "/v1/models" | "/models" => "models",
        "/health" => "health",
        "/metrics" => "metrics",
        _ => "other",
    };
    let id = random_id("req-");
    let span = info_span!("request", id = %id, route);
    let open = matches!(route, "health" | "metrics");
    let response = async {
        if let (Some(key), false) = (&state.config.api_key, open) {
            let given = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if given != Some(key.as_str()) {
                return ApiError::unauthorized().into_response();
            }
        }
        req.extensions_mut().insert(RequestId(id.clone()));
        next.run(req).await
    }
    .instrument(span.clone())
    .await;
    let status = response.status();
    span.in_scope(|| info!(status = status.as_u16(), "answered"));
    state
        .metrics
        .requests
        .with_label_values(&[route, status.as_str()])
        .inc();
    let mut response = response;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn not_found(req: Request) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!("Unknown path {} {}", req.method(), req.uri().path()),
        kind: "invalid_request_error",
        param: None,
        code: Some("unknown_url"),
    }
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{} is not allowed on {}", req.method(), req.uri().path()),
        kind: "invalid_request_error",
        param: None,
        code: Some("method_not_allowed"),
    }
}

async fn health(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok", "model": state.config.served_names.first()}))
}

async fn render_metrics(State(state): State<Arc<AppState>>) -> Response {
    state
        .metrics
        .schema_cache_bytes
        .set(state.model.constraint_cache_bytes() as i64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

async fn list_models(State(state): State<Arc<AppState>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: state
            .config
            .served_names
            .iter()
            .map(|id| ModelCard {
                id: id.clone(),
                object: "model",
                created: state.started,
                owned_by: "corral",
            })
            .collect(),
    })
}

async fn chat_completions(
    State(state): State<Arc<AppState>>,
    Extension(id): Extension<RequestId>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match chat(state, id, body).await {
        Ok(response) => response,
        Err(e) => {
            info!(status = e.status.as_u16(), error = %e.message, "refused");
            e.into_response()
        }
    }
}

/// Parse the body; errors name the field.
fn parse(body: &[u8]) -> Result<ChatRequest, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::invalid(
                format!("We could not parse the JSON body of your request: {inner}"),
                None,
            )
        } else if path == "." {
            ApiError::invalid(format!("Invalid request: {inner}"), None)
        } else {
            ApiError::invalid(format!("Invalid value for `{path}`: {inner}"), Some(&path))
        }
    })
}

async fn chat(
    state: Arc<AppState>,
    id: RequestId,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        ApiError {
            status,
            message: if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "The request body is larger than the limit of {} bytes",
                    state.config.body_limit
                )
            } else {
                rejection.body_text()
            },
            kind: "invalid_request_error",
            param: None,
            code: (status == StatusCode::PAYLOAD_TOO_LARGE).then_some("request_too_large"),
        }
    })?;
    let request = parse(&body)?;
    if !state.config.served_names.contains(&request.model) {
        return Err(ApiError::unknown_model(
            &request.model,
            &state.config.served_names,
        ));
    }
    let model_name = request.model.clone();
    let plan = convert::plan(request, &state.config)?;

    // Compile off the decoding thread, under its own time limit.
    let model = state.model.clone();
    let (messages, constraint, options) = (
        plan.messages.clone(),
        plan.constraint.clone(),
        plan.options.clone(),
    );
    let compiles = state.compiles.clone();
    let task = async move {
        let permit = compiles.acquire_owned().await;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            model.prepare(&messages, &constraint, &options)
        })
        .await
    };
    let limit = state.config.compile_timeout;
    let prepared = match tokio::time::timeout(limit, task).await {
        Err(_) => {
            return Err(ApiError::schema(
                format!(
                    "Compiling the constraint took longer than the limit of {} s",
                    limit.as_secs_f64()
                ),
                &plan.constraint_param,
            ))
        }
        Ok(Err(e)) => return Err(ApiError::internal(format!("compile task failed: {e}"))),
        Ok(Ok(result)) => result.map_err(|e| ApiError::from_corral(e, &plan.constraint_param))?,
    };
    if plan.constraint != Constraint::Text {
        if prepared.constraint_cached {
            state.metrics.schema_cache_hits.inc();
        } else {
            state.metrics.schema_cache_misses.inc();
            state
                .metrics
                .schema_compile_seconds
                .observe(prepared.compile_time.as_secs_f64());
        }
    }
    let mut prepared = prepared;
    if let (None, Some(seed)) = (prepared.request.params.seed, state.config.seed) {
        let nth = state.requests.fetch_add(1, Ordering::Relaxed);
        prepared.request.params.seed = Some(seed ^ nth.wrapping_mul(0xD1B5_4A32_D192_ED03));
    }
    let mut choices = Vec::with_capacity(plan.n);
    for i in 0..plan.n {
        let mut request = prepared.request.clone();
        if i > 0 {
            // Each choice draws its own noise.
            request.params.seed = request
                .params
                .seed
                .map(|s| s.wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        }
        choices.push(
            ActiveSequence::new(state.model.backend(), request).map_err(ApiError::from_sampler)?,
        );
    }
    let prompt_tokens = prepared.request.prompt.len();
    state.metrics.prompt_tokens.inc_by(prompt_tokens as u64);
    let (events, rx) = mpsc::unbounded_channel();
    state.scheduler.submit(Job {
        choices,
        events,
        arrived,
        deadline: arrived
            .checked_add(state.config.request_timeout)
            .unwrap_or_else(|| arrived + std::time::Duration::from_secs(365 * 24 * 3600)),
        request_id: id.0,
    })?;
    let answer = Answer {
        id: random_id("chatcmpl-"),
        created: unix_now(),
        model: model_name,
        state: state.clone(),
        plan,
        prompt_tokens,
        arrived,
    };
    if answer.plan.stream {
        Ok(answer.stream(rx).into_response())
    } else {
        Ok(Json(answer.collect(rx).await?).into_response())
    }
}

/// What an answer is made of, besides the generated outputs.
struct Answer {
    id: String,
    created: u64,
    model: String,
    state: Arc<AppState>,
    plan: Plan,
    prompt_tokens: usize,
    arrived: Instant,
}

impl Answer {
    fn calling(&self) -> bool {
        matches!(self.plan.tools, ToolPlan::Call { .. })
    }

    /// The message and finish reason of a finished choice.
    fn message(&self, output: &DecodeOutput) -> Result<(ResponseMessage, &'static str), ApiError> {
        let stopped = output.finish_reason == FinishReason::Stop;
        if self.calling() && stopped {
            let document: serde_json::Value = serde_json::from_str(&output.text)
                .map_err(|e| ApiError::internal(format!("the call is not JSON: {e}")))?;
            let call = tools::to_call(&document, random_id("call_"))
                .ok_or_else(|| ApiError::internal("the call document has no name"))?;
            return Ok((
                ResponseMessage {
                    role: "assistant",
                    content: None,
                    tool_calls: Some(vec![call]),
                },
                "tool_calls",
            ));
        }
        Ok((
            ResponseMessage {
                role: "assistant",
                content: Some(output.text.clone()),
                tool_calls: None,
            },
            if stopped { "stop" } else { "length" },
        ))
    }

    fn logprobs(&self, list: &[TokenLogprobs]) -> ChoiceLogprobs {
        let vocab = self.state.model.vocabulary();
        let entry = |t: u32| {
            let bytes = vocab.token_bytes(t).unwrap_or_default().to_vec();
            (String::from_utf8_lossy(&bytes).into_owned(), bytes)
        };
        ChoiceLogprobs {
            content: list
                .iter()
                .map(|lp| {
                    let (token, bytes) = entry(lp.token);
                    TokenLogprob {
                        token,
                        logprob: lp.logprob,
                        bytes,
                        top_logprobs: lp
                            .top
                            .iter()
                            .map(|&(t, logprob)| {
                                let (token, bytes) = entry(t);
                                TopLogprob {
                                    token,
                                    logprob,
                                    bytes,
                                }
                            })
                            .collect(),
                    }
                })
                .collect(),
        }
    }

    fn finished(&self) {
        self.state
            .metrics
            .request_duration
            .observe(self.arrived.elapsed().as_secs_f64());
    }

    /// Wait for every choice and answer in one body.
    async fn collect(
        self,
        mut rx: mpsc::UnboundedReceiver<Event>,
    ) -> Result<ChatResponse, ApiError> {
        let mut outputs: Vec<Option<Box<DecodeOutput>>> = (0..self.plan.n).map(|_| None).collect();
        while outputs.iter().any(Option::is_none) {
            match rx.recv().await {
                Some(Event::Delta { .. }) => {}
                Some(Event::Done { choice, output }) => {
                    if let Some(slot) = outputs.get_mut(choice) {
                        *slot = Some(output);
                    }
                }
                Some(Event::Failed(e)) => return Err(e),
                None => return Err(ApiError::internal("the generation ended without an answer")),
            }
        }
        self.finished();
        let mut choices = Vec::with_capacity(outputs.len());
        let mut completion_tokens = 0;
        for (index, output) in outputs.into_iter().flatten().enumerate() {
            let (message, finish_reason) = self.message(&output)?;
            completion_tokens += output.completion_tokens;
            choices.push(Choice {
                index,
                message,
                logprobs: self
                    .plan
                    .options
                    .logprobs
                    .map(|_| self.logprobs(&output.logprobs)),
                finish_reason,
            });
        }
        Ok(ChatResponse {
            id: self.id,
            object: "chat.completion",
            created: self.created,
            model: self.model,
            choices,
            usage: Usage {
                prompt_tokens: self.prompt_tokens,
                completion_tokens,
                total_tokens: self.prompt_tokens + completion_tokens,
            },
            system_fingerprint: None,
        })
    }

    fn chunk(&self, choices: Vec<ChunkChoice>, usage: Option<Usage>) -> SseEvent {
        let chunk = ChatChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            choices,
            usage,
        };
        SseEvent::default().data(serde_json::to_string(&chunk).unwrap_or_default())
    }

    /// A chunk of one choice.
    fn choice_chunk(
        &self,
        index: usize,
        delta: Delta,
        logprobs: Option<ChoiceLogprobs>,
        finish_reason: Option<&'static str>,
    ) -> SseEvent {
        self.chunk(
            vec![ChunkChoice {
                index,
                delta,
                logprobs,
                finish_reason,
            }],
            None,
        )
    }

    /// Server-sent events: a role chunk per choice, content deltas, a finish chunk per
    /// choice, the usage chunk when asked for, then `[DONE]`.
    fn stream(
        self,
        rx: mpsc::UnboundedReceiver<Event>,
    ) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
        let mut pending = VecDeque::new();
        for index in 0..self.plan.n {
            pending.push_back(self.choice_chunk(
                index,
                Delta {
                    role: Some("assistant"),
                    content: Some(String::new()),
                    tool_calls: None,
                },
                None,
                None,
            ));
        }
        let state = StreamState {
            answer: self,
            rx,
            pending,
            done: 0,
            completion_tokens: 0,
            finished: false,
        };
        let stream = futures_util::stream::unfold(state, |mut st| async move {
            loop {
                if let Some(event) = st.pending.pop_front() {
                    return Some((Ok(event), st));
                }
                if st.finished {
                    return None;
                }
                let event = st.rx.recv().await;
                st.on(event);
            }
        });
        Sse::new(stream).keep_alive(KeepAlive::default())
    }
}

struct StreamState {
    answer: Answer,
    rx: mpsc::UnboundedReceiver<Event>,
    pending: VecDeque<SseEvent>,
    done: usize,
    completion_tokens: usize,
    finished: bool,
}

impl StreamState {
    fn fail(&mut self, error: ApiError) {
        self.pending.push_back(
            SseEvent::default().data(serde_json::to_string(&error.body()).unwrap_or_default()),
        );
        self.pending.push_back(SseEvent::default().data("[DONE]"));
        self.finished = true;
    }

    fn on(&mut self, event: Option<Event>) {
        let a = &self.answer;
        match event {
            None => self.fail(ApiError::internal("the generation ended without an answer")),
            Some(Event::Failed(e)) => self.fail(e),
            Some(Event::Delta {
                choice,
                text,
                logprobs,
            }) => {
                // A call is sent whole when it is complete.
                if a.calling() {
                    return;
                }
                let event = a.choice_chunk(
                    choice,
                    Delta {
                        content: Some(text),
                        ..Delta::default()
                    },
                    a.plan.options.logprobs.map(|_| a.logprobs(&logprobs)),
                    None,
                );
                self.pending.push_back(event);
            }
            Some(Event::Done { choice, output }) => {
                let (message, finish_reason) = match a.message(&output) {
                    Ok(m) => m,
                    Err(e) => return self.fail(e),
                };
                if a.calling() {
                    // The call was held back until complete; cut off by max_tokens, its text
                    // goes out as content, as in the non-streamed answer.
                    if let Some(text) = message.content.clone().filter(|t| !t.is_empty()) {
                        let event = a.choice_chunk(
                            choice,
                            Delta {
                                content: Some(text),
                                ..Delta::default()
                            },
                            None,
                            None,
                        );
                        self.pending.push_back(event);
                    }
                }
                if let Some(calls) = message.tool_calls {
                    let deltas = calls
                        .into_iter()
                        .enumerate()
                        .map(|(index, call)| ToolCallDelta {
                            index,
                            id: call.id,
                            kind: "function",
                            function: call.function,
                        })
                        .collect();
                    let event = a.choice_chunk(
                        choice,
                        Delta {
                            tool_calls: Some(deltas),
                            ..Delta::default()
                        },
                        None,
                        None,
                    );
                    self.pending.push_back(event);
                }
                let event = a.choice_chunk(choice, Delta::default(), None, Some(finish_reason));
                self.pending.push_back(event);
                self.completion_tokens += output.completion_tokens;
                self.done += 1;
                if self.done == a.plan.n {
                    a.finished();
                    if a.plan.include_usage {
                        let usage = Usage {
                            prompt_tokens: a.prompt_tokens,
                            completion_tokens: self.completion_tokens,
                            total_tokens: a.prompt_tokens + self.completion_tokens,
                        };
                        let event = a.chunk(Vec::new(), Some(usage));
                        self.pending.push_back(event);
                    }
                    self.pending.push_back(SseEvent::default().data("[DONE]"));
                    self.finished = true;
                }
            }
        }
    }
}
