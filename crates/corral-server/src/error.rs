//! [`ApiError`]: every failure as an HTTP status and OpenAI's error envelope
//! `{"error":{"message","type","param","code"}}`.
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use corral::sampler::SamplerError;

/// An error answered to the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    /// 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>, param: Option<&str>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_string),
            code: None,
        }
    }

    /// 400 `invalid_json_schema` for `param` (`response_format` or a tool's path).
    pub fn schema(message: impl Into<String>, param: &str) -> ApiError {
        ApiError {
            code: Some("invalid_json_schema"),
            ..ApiError::invalid(message, Some(param))
        }
    }

    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    /// 401.
    pub fn unauthorized() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: "Incorrect or missing API key: send `Authorization: Bearer <key>`".into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key"),
        }
    }

    /// 404 for a model this server does not serve.
    pub fn unknown_model(name: &str, served: &[String]) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!(
                "The model `{name}` does not exist; this server serves: {}",
                served.join(", ")
            ),
            kind: "invalid_request_error",
            param: Some("model".into()),
            code: Some("model_not_found"),
        }
    }

    /// 429 when the queue is full.
    pub fn overloaded(queued: usize) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!("The server is busy ({queued} requests waiting); retry later"),
            kind: "rate_limit_exceeded",
            param: None,
            code: Some("queue_full"),
        }
    }

    /// 504 when a request ran past the server's time limit.
    pub fn timeout(what: &str, seconds: f64) -> ApiError {
        ApiError {
            status: StatusCode::GATEWAY_TIMEOUT,
            message: format!("{what} took longer than the limit of {seconds} s"),
            kind: "timeout_error",
            param: None,
            code: Some("timeout"),
        }
    }

    /// 500: a failure of the server, not of the request.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }

    /// The envelope.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }

    /// A failure of the library on a request: bad input is a 400 naming the parameter;
    /// `constraint_param` is where the schema or regex came from.
    pub fn from_corral(error: corral::Error, constraint_param: &str) -> ApiError {
        use corral::Error as E;
        match error {
            E::Schema(e) => ApiError::schema(e.to_string(), constraint_param),
            E::Constraint(e) => ApiError::schema(e.to_string(), constraint_param),
            E::Generation(e) => ApiError::from_sampler(e),
            E::Template(e) => ApiError::invalid(
                format!("The chat template refused the messages: {e}"),
                Some("messages"),
            ),
            E::Tokenizer(e) => ApiError::invalid(format!("tokenizer: {e}"), Some("messages")),
            other => ApiError::internal(other.to_string()),
        }
    }

    pub fn from_sampler(error: SamplerError) -> ApiError {
        match &error {
            SamplerError::InvalidParameter { name, reason } => {
                ApiError::invalid(format!("Invalid `{name}`: {reason}"), Some(name))
            }
            SamplerError::ContextExceeded { prompt, context } => ApiError::invalid(
                format!(
                    "This model's maximum context length is {context} tokens; the messages \
                     take {prompt}"
                ),
                Some("messages"),
            )
            .with_code("context_length_exceeded"),
            SamplerError::EmptyPrompt => ApiError::invalid("The prompt is empty", Some("messages")),
            SamplerError::PromptTokenOutOfRange { .. } => {
                ApiError::invalid(error.to_string(), Some("messages"))
            }
            // The constraint could not go on (its automaton ran out of memory, or no token
            // of the vocabulary continues it): a property of the request's schema or regex.
            SamplerError::NoTokenAllowed { .. } | SamplerError::Guide(_) => ApiError::schema(
                format!("The constraint cannot be followed: {error}"),
                "response_format",
            ),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}
