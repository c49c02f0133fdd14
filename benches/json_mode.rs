//! JSON mode vs unconstrained generation on SmolLM2-135M-Instruct (Q4_1, CPU), temperature 0:
//! generation-phase tokens/s, per-token time outside the model forward, the share of steps
//! served by "sample first", and fast-forward on/off.
//!
//! ```text
//! bash scripts/fetch-model.sh
//! cargo bench --bench json_mode [-- --reps 5]
//! ```
#[path = "../examples/common/seed.rs"]
mod seed;

use std::time::Duration;

use corral::{Constraint, GenerateOptions, Generation, Message, Model};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

struct Row {
    name: &'static str,
    tok_s: Vec<f64>,
    outside_us: Vec<f64>,
    first: Generation,
}

fn run(
    model: &Model,
    name: &'static str,
    messages: &[Message],
    constraint: &Constraint,
    options: &GenerateOptions,
    reps: usize,
) -> Row {
    let mut tok_s = Vec::new();
    let mut outside_us = Vec::new();
    let mut first = None;
    // One untimed run first: compiles the schema and fills the mask cache (reported apart).
    for rep in 0..=reps {
        let out = model
            .generate_with(messages, constraint, options, &mut |_| {})
            .expect("generation");
        if rep > 0 {
            let s = &out.stats;
            tok_s.push(out.tokens_per_second().unwrap_or(0.0));
            let generation_phase = s.total.saturating_sub(s.prefill);
            let outside = generation_phase.saturating_sub(s.decode_forward);
            outside_us
                .push(outside.as_secs_f64() * 1e6 / out.usage.completion_tokens.max(1) as f64);
        }
        first.get_or_insert(out);
    }
    Row {
        name,
        tok_s,
        outside_us,
        first: first.expect("at least one run"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(5);
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let model = Model::load(&path).unwrap_or_else(|e| {
        eprintln!(
            "{}: {e} (run `bash scripts/fetch-model.sh`)",
            path.display()
        );
        std::process::exit(2)
    });
    let schema = Constraint::JsonSchema(seed::bench_schema());
    let greedy = GenerateOptions::greedy();
    let messages = seed::user_messages();
    // The unconstrained run sees the same prompt (with the schema in the system message).
    let with_schema = schema.prompt_messages(&messages);
    let json = run(
        &model,
        "json (sample first)",
        &messages,
        &schema,
        &greedy,
        reps,
    );
    let n = json.first.usage.completion_tokens;
    let rows = [
        run(
            &model,
            "json (mask first)",
            &messages,
            &schema,
            &GenerateOptions {
                mask_first: true,
                ..greedy.clone()
            },
            reps,
        ),
        run(
            &model,
            "json + fast-forward",
            &messages,
            &schema,
            &GenerateOptions {
                fast_forward: true,
                ..greedy.clone()
            },
            reps,
        ),
        // Same prompt, no constraint, the same number of tokens (EOS ignored).
        run(
            &model,
            "unconstrained",
            &with_schema,
            &Constraint::Text,
            &GenerateOptions {
                max_tokens: n,
                ignore_eos: true,
                ..greedy.clone()
            },
            reps,
        ),
    ];
    let base = median(rows[2].tok_s.clone());
    println!(
        "SmolLM2-135M-Instruct Q4_1, {} threads, {} reps (medians)",
        rayon_threads(),
        reps
    );
    println!(
        "{:<22} {:>7} {:>9} {:>8} {:>14} {:>8} {:>8} {:>10}",
        "mode", "tokens", "tok/s", "ratio", "outside µs/tok", "forced", "masked", "1st run ms"
    );
    for row in std::iter::once(&json).chain(&rows) {
        let t = median(row.tok_s.clone());
        let s = &row.first.stats;
        println!(
            "{:<22} {:>7} {:>9.1} {:>8.3} {:>14.1} {:>8} {:>8} {:>10.1}",
            row.name,
            row.first.usage.completion_tokens,
            t,
            t / base,
            median(row.outside_us.clone()),
            s.forced_tokens,
            s.sampler.masked,
            ms(s.total),
        );
    }
    println!("json output: {}", json.first.text);
    println!("fast-forward output: {}", rows[1].first.text);
    println!(
        "same greedy output with fast-forward: {}",
        json.first.text == rows[1].first.text
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
