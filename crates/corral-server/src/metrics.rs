//! [`Metrics`]: Prometheus counters, gauges and histograms of the server.
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// The server's metrics, in their own registry (served at `GET /metrics`).
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Answered requests by route and HTTP status.
    pub requests: IntCounterVec,
    pub prompt_tokens: IntCounter,
    pub completion_tokens: IntCounter,
    /// From the request's arrival to its first completion token.
    pub time_to_first_token: Histogram,
    /// Between consecutive completion tokens of one sequence.
    pub time_per_output_token: Histogram,
    /// Whole request, arrival to last token.
    pub request_duration: Histogram,
    /// Requests waiting for a decoding slot.
    pub queue_length: IntGauge,
    /// Sequences being decoded.
    pub active_sequences: IntGauge,
    /// Generations ended because the client went away.
    pub cancelled: IntCounter,
    pub schema_cache_hits: IntCounter,
    pub schema_cache_misses: IntCounter,
    /// Compiling a constraint (cache misses only).
    pub schema_compile_seconds: Histogram,
    /// Sequences per scheduler step.
    pub batch_size: Histogram,
    /// Memory held by the compiled-schema cache.
    pub schema_cache_bytes: IntGauge,
    /// Prompts that started from a cached prefix, and the prompt tokens that saved.
    pub prefix_cache_hits: IntCounter,
    pub prefix_tokens_reused: IntCounter,
}

fn buckets(from: f64, factor: f64, count: usize) -> Vec<f64> {
    prometheus::exponential_buckets(from, factor, count).unwrap_or_default()
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry =
            Registry::new_custom(Some("corral".into()), None).unwrap_or_else(|_| Registry::new());
        let histogram = |name: &str, help: &str, b: Vec<f64>| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(b))
                .expect("static histogram options are valid")
        };
        let counter = |name: &str, help: &str| {
            IntCounter::new(name, help).expect("static counter options are valid")
        };
        let gauge = |name: &str, help: &str| {
            IntGauge::new(name, help).expect("static gauge options are valid")
        };
        let m = Metrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "Answered HTTP requests by route and status",
                ),
                &["route", "status"],
            )
            .expect("static counter options are valid"),
            prompt_tokens: counter("prompt_tokens_total", "Prompt tokens processed"),
            completion_tokens: counter("completion_tokens_total", "Completion tokens generated"),
            time_to_first_token: histogram(
                "time_to_first_token_seconds",
                "From a request's arrival to its first completion token",
                buckets(0.005, 2.0, 14),
            ),
            time_per_output_token: histogram(
                "time_per_output_token_seconds",
                "Between consecutive completion tokens of one sequence",
                buckets(0.001, 1.6, 16),
            ),
            request_duration: histogram(
                "request_duration_seconds",
                "Chat completion requests, arrival to last token",
                buckets(0.01, 2.0, 14),
            ),
            queue_length: gauge("queue_length", "Requests waiting for a decoding slot"),
            active_sequences: gauge("active_sequences", "Sequences being decoded"),
            cancelled: counter(
                "cancelled_total",
                "Generations cancelled because the client disconnected",
            ),
            schema_cache_hits: counter("schema_cache_hits_total", "Constraints found compiled"),
            schema_cache_misses: counter("schema_cache_misses_total", "Constraints compiled"),
            schema_compile_seconds: histogram(
                "schema_compile_seconds",
                "Compiling a constraint (cache misses)",
                buckets(0.0005, 2.0, 16),
            ),
            batch_size: histogram(
                "batch_size",
                "Sequences stepped together per scheduler iteration",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0],
            ),
            schema_cache_bytes: gauge(
                "schema_cache_bytes",
                "Memory held by the compiled-schema cache (automata and masks)",
            ),
            prefix_cache_hits: counter(
                "prefix_cache_hits_total",
                "Prompts that started from a cached prefix",
            ),
            prefix_tokens_reused: counter(
                "prefix_tokens_reused_total",
                "Prompt tokens not prefilled thanks to the prefix cache",
            ),
            registry,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 16] = [
            Box::new(m.prefix_cache_hits.clone()),
            Box::new(m.prefix_tokens_reused.clone()),
            Box::new(m.schema_cache_bytes.clone()),
            Box::new(m.requests.clone()),
            Box::new(m.prompt_tokens.clone()),
            Box::new(m.completion_tokens.clone()),
            Box::new(m.time_to_first_token.clone()),
            Box::new(m.time_per_output_token.clone()),
            Box::new(m.request_duration.clone()),
            Box::new(m.queue_length.clone()),
            Box::new(m.active_sequences.clone()),
            Box::new(m.cancelled.clone()),
            Box::new(m.schema_cache_hits.clone()),
            Box::new(m.schema_cache_misses.clone()),
            Box::new(m.schema_compile_seconds.clone()),
            Box::new(m.batch_size.clone()),
        ];
        for c in collectors {
            // Names are distinct constants: registration cannot collide.
            let _ = m.registry.register(c);
        }
        m
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
