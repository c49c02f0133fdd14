//! Criterion benchmarks: index build (time to first mask) and per-token mask time, for
//! the seed schemas and a large Kubernetes schema from MaskBench, with the Mistral (32k)
//! and Llama-3 (128k) tokenizers.
//!
//! `cargo bench --bench mask`
use std::path::Path;
use std::time::Duration;

use corral_index::{Guide, Index, Vocabulary};
use corral_schema::{compile, Options};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::{json, Value};
use tokenizers::Tokenizer;

fn data(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// Python `json.dumps` spelling, as models trained on Python-produced JSON write it.
fn python_dumps(value: &Value) -> String {
    match value {
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(python_dumps)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    serde_json::to_string(k).unwrap_or_default(),
                    python_dumps(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

fn cases() -> Vec<(&'static str, Value, Value)> {
    let kubernetes: Value = serde_json::from_str(
        &std::fs::read_to_string(data("bench/kubernetes.json")).expect("bench data"),
    )
    .expect("json");
    vec![
        (
            "pydantic-user",
            json!({"properties": {"name": {"title": "Name", "type": "string"},
                   "address": {"title": "Address", "type": "string"}},
                   "required": ["name", "address"], "title": "User", "type": "object"}),
            json!({"name": "Alice", "address": "42, Wonderland Avenue"}),
        ),
        (
            "zod-action-items",
            json!({"$ref": "#/definitions/mySchema", "definitions": {"mySchema": {"type": "object",
                   "properties": {"summary": {"type": "string"},
                   "actionItems": {"type": "array", "items": {"type": "string"}}},
                   "required": ["summary", "actionItems"], "additionalProperties": false}}}),
            json!({"summary": "Weekly sync about the release", "actionItems": ["Ship v1", "Write the docs", "Book a room"]}),
        ),
        (
            "team-name",
            json!({"type": "object", "properties": {"team_name": {"type": "string"}}, "required": ["team_name"]}),
            json!({"team_name": "Wolverhampton Wanderers"}),
        ),
        (
            "kubernetes",
            kubernetes["schema"].clone(),
            kubernetes["example"].clone(),
        ),
    ]
}

fn benches(c: &mut Criterion) {
    for tokenizer_name in ["mistral-7b-v0.1", "llama-3"] {
        let path = data(&format!("tokenizers/{tokenizer_name}/tokenizer.json"));
        let tokenizer = Tokenizer::from_file(&path).expect("tokenizer");
        let vocab = Vocabulary::from_tokenizer(&tokenizer).expect("vocabulary");
        for (name, schema, example) in cases() {
            let program = compile(&schema, &Options::default())
                .expect("schema compiles")
                .program;
            let id = format!("{name}/{tokenizer_name}");

            let mut group = c.benchmark_group("index_build");
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(5));
            group.bench_function(BenchmarkId::from_parameter(&id), |b| {
                b.iter(|| {
                    let program = compile(&schema, &Options::default())
                        .expect("compiles")
                        .program;
                    let index = Index::from_program(program, &vocab).expect("index");
                    index.mask(index.start()).expect("first mask");
                    index
                })
            });
            group.finish();

            let text = python_dumps(&example);
            let tokens: Vec<u32> = tokenizer
                .encode(text.as_str(), false)
                .expect("encode")
                .get_ids()
                .to_vec();
            let mut group = c.benchmark_group("mask_per_token");
            group.throughput(Throughput::Elements(tokens.len() as u64));
            // Warm: masks cached by earlier sequences (the steady state of a server).
            let index = Index::from_program(program.clone(), &vocab).expect("index");
            group.bench_function(BenchmarkId::new("warm", &id), |b| {
                b.iter(|| {
                    let mut guide = Guide::new(index.clone());
                    for &t in &tokens {
                        guide.allowed_tokens().expect("mask");
                        guide.advance(t).expect("token allowed");
                    }
                    guide.is_accepting()
                })
            });
            // Warm, two threads walking the same index at once (sequences of one schema
            // in a server): reads of known masks and transitions must not wait.
            group.throughput(Throughput::Elements(40 * tokens.len() as u64));
            group.bench_function(BenchmarkId::new("warm_2_threads", &id), |b| {
                b.iter(|| {
                    std::thread::scope(|scope| {
                        let walkers: Vec<_> = (0..2)
                            .map(|_| {
                                let index = index.clone();
                                let tokens = &tokens;
                                scope.spawn(move || {
                                    let mut guide = Guide::new(index);
                                    for _ in 0..20 {
                                        guide.reset();
                                        for &t in tokens {
                                            guide.allowed_tokens().expect("mask");
                                            guide.advance(t).expect("token allowed");
                                        }
                                    }
                                    guide.is_accepting()
                                })
                            })
                            .collect();
                        walkers.into_iter().all(|w| w.join().unwrap_or(false))
                    })
                })
            });
            group.throughput(Throughput::Elements(tokens.len() as u64));
            // Cold: a fresh index, every mask computed on first visit.
            group.sample_size(10);
            group.bench_function(BenchmarkId::new("cold", &id), |b| {
                b.iter_batched(
                    || Index::from_program(program.clone(), &vocab).expect("index"),
                    |index| {
                        let mut guide = Guide::new(index);
                        for &t in &tokens {
                            guide.allowed_tokens().expect("mask");
                            guide.advance(t).expect("token allowed");
                        }
                        guide.is_accepting()
                    },
                    criterion::BatchSize::PerIteration,
                )
            });
            group.finish();
        }
    }
}

criterion_group!(mask, benches);
criterion_main!(mask);
