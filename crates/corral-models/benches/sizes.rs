//! Large shapes on the CPU: load time, resident memory and decode speed of a GGUF file, next
//! to this machine's memory bandwidth and the decode speed it allows.
//!
//! ```text
//! bash scripts/bench-sizes.sh          # writes the random-weight files, runs this and llama.cpp
//! cargo bench -p corral-models --bench sizes -- --model models/random/mistral-7b.Q4_0.gguf
//! ```
//!
//! A decode step reads every weight it uses once, so on a machine whose caches are far smaller
//! than the model, `bandwidth ÷ bytes of weights read per token` bounds decode tok/s. The
//! bandwidth is measured here: every thread of the pool sums its share of a buffer much larger
//! than the last-level cache (`--buffer-gib`, default 2), best of 5 passes. Weights read per
//! token are counted from the file's tensor directory: every matrix but the token embedding,
//! and of stacked expert tensors the share of experts a token uses.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use corral_models::{LanguageModel, LoadOptions, LogitsRequest};
use rayon::prelude::*;

struct Args {
    model: PathBuf,
    prompt: usize,
    decode: usize,
    runs: usize,
    buffer_gib: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        model: PathBuf::from("models/random/mistral-7b.Q4_0.gguf"),
        prompt: 16,
        decode: 16,
        runs: 3,
        buffer_gib: 2,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--prompt" => args.prompt = value("--prompt").max(1),
            "--decode" => args.decode = value("--decode").max(1),
            "--runs" => args.runs = value("--runs").max(1),
            "--buffer-gib" => args.buffer_gib = value("--buffer-gib").max(1),
            "--model" => args.model = PathBuf::from(it.next().expect("--model needs a path")),
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    args
}

/// Read bandwidth in GB/s: all pool threads summing disjoint parts of a large buffer.
fn bandwidth(gib: usize) -> f64 {
    let words = gib << 27; // u64 words
    let buffer: Vec<u64> = (0..words as u64).collect();
    let mut best = 0f64;
    for _ in 0..5 {
        let t = Instant::now();
        let sum: u64 = buffer
            .par_chunks(1 << 20)
            .map(|c| c.iter().fold(0u64, |a, &x| a.wrapping_add(x)))
            .reduce(|| 0, u64::wrapping_add);
        let s = t.elapsed().as_secs_f64();
        std::hint::black_box(sum);
        best = best.max((words * 8) as f64 / s / 1e9);
    }
    best
}

/// Bytes of weights a decode step reads, from the file's tensor directory.
fn weight_bytes_per_token(path: &PathBuf) -> f64 {
    let mut file = std::fs::File::open(path).expect("open model");
    let content = gguf_file::Content::read(&mut file).expect("read gguf header");
    let experts = content
        .metadata
        .get("llama.expert_count")
        .and_then(|v| v.to_u32().ok())
        .unwrap_or(0) as f64;
    let used = content
        .metadata
        .get("llama.expert_used_count")
        .and_then(|v| v.to_u32().ok())
        .unwrap_or(0) as f64;
    let mut total = 0f64;
    for (name, info) in &content.tensor_infos {
        let elems = info.shape.elem_count();
        let bytes = (elems / info.ggml_dtype.block_size() * info.ggml_dtype.type_size()) as f64;
        total += if name == "token_embd.weight" {
            bytes / info.shape.dims()[0] as f64 // one row
        } else if name.contains("_exps.") && experts > 0.0 {
            bytes * used / experts
        } else {
            bytes
        };
    }
    total
}

/// (resident, peak resident) GiB of this process.
fn resident_gib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / (1 << 20) as f64)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let args = parse_args();
    if !args.model.is_file() {
        eprintln!(
            "model not found at {}: run `bash scripts/bench-sizes.sh`",
            args.model.display()
        );
        std::process::exit(2);
    }
    let threads = rayon::current_num_threads();
    let t = Instant::now();
    let model = corral_models::load(&args.model, &LoadOptions::default()).expect("load model");
    let load_s = t.elapsed().as_secs_f64();
    let bytes = weight_bytes_per_token(&args.model);
    let (rss, peak) = resident_gib();
    let vocab = model.vocab_size() as u32;
    let prompt: Vec<u32> = (0..args.prompt as u32)
        .map(|i| 300 + (i * 7919) % (vocab - 300))
        .collect();
    let mut rates = Vec::new();
    for run in 0..args.runs + 1 {
        let mut seq = model.new_sequence();
        let logits = model
            .forward(&mut seq, &prompt, LogitsRequest::Last)
            .expect("prefill");
        let mut next = logits.argmax(0).unwrap_or(0);
        let t = Instant::now();
        for _ in 0..args.decode {
            let logits = model
                .forward(&mut seq, &[next], LogitsRequest::Last)
                .expect("decode");
            next = logits.argmax(0).unwrap_or(0);
        }
        if run > 0 {
            rates.push(args.decode as f64 / t.elapsed().as_secs_f64());
        }
    }
    drop(model);
    let decode = median(rates);
    let gbps = bandwidth(args.buffer_gib);
    let limit = gbps * 1e9 / bytes;
    println!(
        "{} ({threads} threads, prompt {}, decode {}, median of {} runs)",
        args.model.display(),
        args.prompt,
        args.decode,
        args.runs
    );
    println!(
        "corral-models   load {load_s:.2} s   resident {rss:.2} GiB (peak {peak:.2})   \
         decode {decode:.2} tok/s"
    );
    println!(
        "weights read per token {:.2} GB; read bandwidth {gbps:.1} GB/s -> limit {limit:.2} tok/s; \
         corral at {:.0}% of it",
        bytes / 1e9,
        100.0 * decode / limit
    );
}
