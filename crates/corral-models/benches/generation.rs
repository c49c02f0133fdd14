//! Prefill and decode throughput of SmolLM2-135M-Instruct Q4_1 on the CPU: corral-models next
//! to candle-transformers' `quantized_llama` on the same file, in the same binary.
//!
//! ```text
//! bash scripts/fetch-model.sh
//! cargo bench -p corral-models --bench generation [-- --runs 5 --prompt 128 --decode 64 --kv-cache f32]
//! ```
//!
//! Then batched decoding: 1, 2, 4, 8 and 16 sequences stepped together through
//! `forward_batch` (`--decode` steps each, after a `--prompt`-token prefill of each), as
//! aggregate tok/s and its ratio to one sequence. Each run measures every batch size in turn,
//! so that the ratio compares sizes measured minutes apart at most, not a whole table apart
//! (on a shared machine one sequence's speed drifts by tens of percent over minutes): the
//! ratio is the median over runs of each run's own ratio.
//!
//! The thread count is candle's (rayon's) pool size: all cores unless `RAYON_NUM_THREADS` is
//! set. Each figure is the median over `--runs` runs; every run starts from an empty cache.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama;
use corral_models::{KvCacheDtype, LanguageModel, LoadOptions, Logits, LogitsRequest};

struct Args {
    model: PathBuf,
    runs: usize,
    prompt: usize,
    decode: usize,
    /// Batch sizes of the batched-decode table.
    sizes: Vec<usize>,
    /// Only the batched-decode table (for profiling).
    batched_only: bool,
    /// corral's KV cache element type (`--kv-cache auto|f32|f16`).
    kv_cache: KvCacheDtype,
}

impl Args {
    fn load_options(&self) -> LoadOptions {
        LoadOptions {
            kv_cache: self.kv_cache,
            ..LoadOptions::default()
        }
    }
}

fn parse_args() -> Args {
    let mut args = Args {
        model: std::env::var_os("CORRAL_SMOLLM2_GGUF")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf")
            }),
        runs: 5,
        prompt: 128,
        decode: 64,
        sizes: vec![1, 2, 4, 8, 16],
        batched_only: false,
        kv_cache: KvCacheDtype::Auto,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--runs" => args.runs = value("--runs").max(1),
            "--prompt" => args.prompt = value("--prompt").max(1),
            "--decode" => args.decode = value("--decode").max(1),
            "--model" => args.model = PathBuf::from(it.next().expect("--model needs a path")),
            "--sizes" => {
                args.sizes = it
                    .next()
                    .expect("--sizes needs a list")
                    .split(',')
                    .map(|n| n.parse().expect("--sizes: numbers separated by commas"))
                    .collect()
            }
            "--batched-only" => args.batched_only = true,
            "--kv-cache" => {
                args.kv_cache = match it.next().as_deref() {
                    Some("auto") => KvCacheDtype::Auto,
                    Some("f32") => KvCacheDtype::F32,
                    Some("f16") => KvCacheDtype::F16,
                    other => panic!("--kv-cache auto|f32|f16, not {other:?}"),
                }
            }
            _ => {} // `cargo bench` passes `--bench`
        }
    }
    args
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// A deterministic prompt of `n` ordinary token ids.
fn prompt_ids(n: usize) -> Vec<u32> {
    (0..n as u32).map(|i| 100 + (i * 7919) % 48000).collect()
}

/// The first index of the largest value of candle's logits (corral's use [`Logits::argmax`]).
fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// The greedy pick from the last row of corral's logits.
fn last_argmax(logits: &Logits) -> u32 {
    logits.argmax(logits.rows().saturating_sub(1)).unwrap_or(0)
}

/// (prefill tok/s, decode tok/s) of one run.
type Run = (f64, f64);

fn bench_corral(args: &Args) -> Vec<Run> {
    let model = corral_models::load(&args.model, &args.load_options()).expect("load model");
    let prompt = prompt_ids(args.prompt);
    let mut seq = model.new_sequence();
    let mut runs = vec![];
    for _ in 0..args.runs + 1 {
        seq.reset();
        let t = Instant::now();
        let logits = model
            .forward(&mut seq, &prompt, LogitsRequest::Last)
            .expect("prefill");
        let prefill = t.elapsed().as_secs_f64();
        let mut next = last_argmax(&logits);
        let t = Instant::now();
        for _ in 0..args.decode {
            let logits = model
                .forward(&mut seq, &[next], LogitsRequest::Last)
                .expect("decode");
            next = last_argmax(&logits);
        }
        let decode = t.elapsed().as_secs_f64();
        runs.push((args.prompt as f64 / prefill, args.decode as f64 / decode));
    }
    runs.remove(0); // warm-up
    runs
}

fn bench_candle_transformers(args: &Args) -> Vec<Run> {
    let device = Device::Cpu;
    let mut file = std::fs::File::open(&args.model).expect("open model");
    let content = gguf_file::Content::read(&mut file).expect("read gguf");
    let mut model =
        quantized_llama::ModelWeights::from_gguf(content, &mut file, &device).expect("load");
    let prompt = prompt_ids(args.prompt);
    let mut runs = vec![];
    for _ in 0..args.runs + 1 {
        // quantized_llama resets its cache when called at position 0.
        let input = Tensor::new(prompt.as_slice(), &device)
            .and_then(|t| t.unsqueeze(0))
            .expect("input");
        let t = Instant::now();
        let logits = model.forward(&input, 0).expect("prefill");
        let logits = logits
            .squeeze(0)
            .and_then(|l| l.to_vec1::<f32>())
            .expect("logits");
        let prefill = t.elapsed().as_secs_f64();
        let mut next = argmax(&logits);
        let t = Instant::now();
        for i in 0..args.decode {
            let input = Tensor::new(&[next], &device)
                .and_then(|t| t.unsqueeze(0))
                .expect("input");
            let logits = model.forward(&input, args.prompt + i).expect("decode");
            let logits = logits
                .squeeze(0)
                .and_then(|l| l.to_vec1::<f32>())
                .expect("logits");
            next = argmax(&logits);
        }
        let decode = t.elapsed().as_secs_f64();
        runs.push((args.prompt as f64 / prefill, args.decode as f64 / decode));
    }
    runs.remove(0);
    runs
}

fn main() {
    let args = parse_args();
    if !args.model.is_file() {
        eprintln!(
            "model not found at {}: run `bash scripts/fetch-model.sh` or pass --model",
            args.model.display()
        );
        std::process::exit(2);
    }
    let threads = candle_core::utils::get_num_threads();
    println!(
        "{}, {threads} threads, prompt {} tokens, decode {} tokens, \
         median of {} runs (avx2: {}, avx512: {})",
        args.model.file_name().unwrap_or_default().to_string_lossy(),
        args.prompt,
        args.decode,
        args.runs,
        candle_core::utils::with_avx(),
        has_avx512(),
    );
    println!(
        "{:<28} {:>14} {:>14}",
        "implementation", "prefill tok/s", "decode tok/s"
    );
    if !args.batched_only {
        for (name, runs) in [
            ("corral-models", bench_corral(&args)),
            ("candle-transformers 0.11", bench_candle_transformers(&args)),
        ] {
            let prefill = median(runs.iter().map(|r| r.0).collect());
            let decode = median(runs.iter().map(|r| r.1).collect());
            println!("{name:<28} {prefill:>14.1} {decode:>14.1}");
        }
    }
    let model = corral_models::load(&args.model, &args.load_options()).expect("load model");
    println!("\nbatched decode (forward_batch), aggregate over the batch");
    println!("{:>10} {:>14} {:>12}", "sequences", "tok/s", "vs 1");
    // rates[run][size]; the first run warms up and is dropped.
    let rates: Vec<Vec<f64>> = (0..args.runs + 1)
        .map(|_| {
            let sizes = args.sizes.iter();
            sizes.map(|&n| bench_batched(&args, &model, n)).collect()
        })
        .skip(1)
        .collect();
    for (i, &n) in args.sizes.iter().enumerate() {
        let rate = median(rates.iter().map(|run| run[i]).collect());
        let ratio = median(rates.iter().map(|run| run[i] / run[0]).collect());
        println!("{n:>10} {rate:>14.1} {ratio:>11.2}x");
    }
}

/// Aggregate decode tok/s of `n` sequences stepped together (one run).
fn bench_batched(args: &Args, model: &corral_models::Model, n: usize) -> f64 {
    let mut seqs: Vec<_> = (0..n).map(|_| model.new_sequence()).collect();
    let mut next = Vec::with_capacity(n);
    for (i, seq) in seqs.iter_mut().enumerate() {
        // Different prompts per sequence.
        let prompt: Vec<u32> = prompt_ids(args.prompt + i)[i..].to_vec();
        let logits = model
            .forward(seq, &prompt, LogitsRequest::Last)
            .expect("prefill");
        next.push(vec![last_argmax(&logits)]);
    }
    let t = Instant::now();
    for _ in 0..args.decode {
        let mut batch: Vec<(&mut corral_models::Sequence, &[u32])> = seqs
            .iter_mut()
            .zip(&next)
            .map(|(s, f)| (s, f.as_slice()))
            .collect();
        let logits = model
            .forward_batch(&mut batch, LogitsRequest::Last)
            .expect("batched decode");
        next = logits.iter().map(|l| vec![last_argmax(l)]).collect();
    }
    (n * args.decode) as f64 / t.elapsed().as_secs_f64()
}

/// Whether the CPU has AVX-512F (false on other architectures).
fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
