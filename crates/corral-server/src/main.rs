//! The `corral` command: `corral serve` (the HTTP server) and `corral generate` (one JSON
//! answer to stdout).
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use corral::{Constraint, GenerateOptions, Message, Model, SamplingParams};
use corral_server::{Server, ServerConfig};
use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

#[derive(Parser)]
#[command(
    name = "corral",
    version,
    about = "JSON-Schema-constrained generation for LLMs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve an OpenAI/Together-compatible Chat Completions API.
    Serve(ServeArgs),
    /// Generate one answer (JSON when a schema is given) and print it to stdout.
    Generate(GenerateArgs),
}

#[derive(Args)]
struct ModelArgs {
    /// A GGUF file, a Hugging Face model directory, or a Hugging Face repo id.
    #[arg(long)]
    model: String,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to bind (loopback by default).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// A name clients may put in `model` (repeatable; default: from the model's path).
    #[arg(long = "served-name")]
    served_names: Vec<String>,
    /// Require `Authorization: Bearer <KEY>`.
    #[arg(long, env = "CORRAL_API_KEY")]
    api_key: Option<String>,
    /// Most sequences decoded together.
    #[arg(long, default_value_t = 16)]
    max_concurrent: usize,
    /// Most requests waiting for a slot (429 beyond).
    #[arg(long, default_value_t = 256)]
    max_queue: usize,
    /// `max_tokens` when a request gives none.
    #[arg(long, default_value_t = 1024)]
    max_tokens_default: usize,
    /// Largest `max_tokens` a request may ask for.
    #[arg(long, default_value_t = 8192)]
    max_tokens_cap: usize,
    /// Limit on a request from arrival to its last token, in seconds.
    #[arg(long, default_value_t = 600.0)]
    request_timeout_s: f64,
    /// Limit on compiling one schema, in seconds.
    #[arg(long, default_value_t = 30.0)]
    compile_timeout_s: f64,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    body_limit: usize,
    /// Do not put the schema into the prompt (the constraint holds either way).
    #[arg(long)]
    no_schema_in_prompt: bool,
    /// Requests without a `seed` draw theirs from this one and their arrival order
    /// (reproducible runs); default: fresh randomness per request.
    #[arg(long)]
    seed: Option<u64>,
    /// Do not reuse the KV state of earlier prompts' common prefixes (bit-reproducible
    /// greedy answers whatever came before).
    #[arg(long)]
    no_prefix_cache: bool,
    /// Temperature for requests that give none (OpenAI's default: 1).
    #[arg(long, default_value_t = 1.0)]
    default_temperature: f32,
    /// `top_p` for requests that give none.
    #[arg(long, default_value_t = 1.0)]
    default_top_p: f32,
    /// Repetition penalty for requests that give none (1: off).
    #[arg(long, default_value_t = 1.0)]
    default_repetition_penalty: f32,
}

#[derive(Args)]
struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// JSON Schema file; without it, any JSON object.
    #[arg(long)]
    schema: Option<PathBuf>,
    /// The user message.
    #[arg(long)]
    prompt: String,
    /// A system message.
    #[arg(long)]
    system: Option<String>,
    /// Sampling temperature (0: greedy).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, default_value_t = 1024)]
    max_tokens: usize,
}

fn load(spec: &str) -> Result<Model, String> {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    let local = Path::new(spec).exists();
    bar.set_message(if local {
        format!("loading {spec}")
    } else {
        format!("fetching {spec} from the Hugging Face Hub")
    });
    let model = if local {
        Model::load(spec)
    } else {
        Model::from_hub(spec, None)
    };
    bar.finish_and_clear();
    model.map_err(|e| format!("cannot load the model {spec}: {e}"))
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let model = Arc::new(load(&args.model.model)?);
    let mut config = ServerConfig::new(model.name());
    if !args.served_names.is_empty() {
        config.served_names = args.served_names;
    }
    config.api_key = args.api_key;
    config.max_concurrent = args.max_concurrent.max(1);
    config.max_queue = args.max_queue;
    config.max_tokens_default = args.max_tokens_default;
    config.max_tokens_cap = args.max_tokens_cap;
    let seconds =
        |s: f64, name: &str| Duration::try_from_secs_f64(s).map_err(|e| format!("--{name}: {e}"));
    config.request_timeout = seconds(args.request_timeout_s, "request-timeout-s")?;
    config.compile_timeout = seconds(args.compile_timeout_s, "compile-timeout-s")?;
    config.body_limit = args.body_limit;
    config.schema_in_prompt = !args.no_schema_in_prompt;
    config.seed = args.seed;
    config.prefix_cache = !args.no_prefix_cache;
    config.default_sampling = SamplingParams {
        temperature: args.default_temperature,
        top_p: args.default_top_p,
        repetition_penalty: args.default_repetition_penalty,
        ..SamplingParams::default()
    };
    config
        .default_sampling
        .validate()
        .map_err(|e| format!("--default-*: {e}"))?;
    let names = config.served_names.join(", ");
    let server = Server::new(model, config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async {
        let address = format!("{}:{}", args.host, args.port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|e| format!("cannot listen on {address}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        info!("serving {names} on http://{bound}/v1");
        eprintln!("corral: serving {names} on http://{bound}/v1");
        server.serve(listener).await.map_err(|e| e.to_string())
    })
}

fn generate(args: GenerateArgs) -> Result<(), String> {
    let constraint = match &args.schema {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let schema = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
            Constraint::JsonSchema(schema)
        }
        None => Constraint::JsonObject,
    };
    let model = load(&args.model.model)?;
    let mut messages = Vec::new();
    if let Some(system) = args.system {
        messages.push(Message::system(system));
    }
    messages.push(Message::user(args.prompt));
    let options = GenerateOptions {
        sampling: SamplingParams {
            seed: args.seed,
            ..SamplingParams::with_temperature(args.temperature, 0)
        },
        max_tokens: args.max_tokens,
        ..GenerateOptions::default()
    };
    let generation = model
        .generate_with(&messages, &constraint, &options, &mut |_| {})
        .map_err(|e| e.to_string())?;
    let value = generation.json().map_err(|e| e.to_string())?;
    println!("{value}");
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::Generate(args) => generate(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corral: {e}");
            ExitCode::FAILURE
        }
    }
}
