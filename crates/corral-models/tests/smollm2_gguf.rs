//! The real model: SmolLM2-135M-Instruct, Q4_1 GGUF (fetched by `scripts/fetch-model.sh`).
//!
//! Reference (`tests/fixtures/smollm2-135m/reference.json`): transformers on the dequantized f32
//! weights. The dequantized path must reproduce the greedy ids exactly; the quantized path
//! (candle's Q4_1/Q8_0 kernels with 8-bit activations) is compared by argmax and top-k overlap.
//!
//! The model file is looked for at `$CORRAL_SMOLLM2_GGUF` or `models/SmolLM2-135M-Instruct.Q4_1.gguf`
//! at the repository root. When it is absent the tests fail (the README's test command fetches it
//! first).

mod common;

use std::path::PathBuf;

use common::{argmax, fixture};
use corral_models::gguf::GgufModel;
use corral_models::{Architecture, LanguageModel, LoadOptions, LogitsRequest, Model};

fn model_path() -> PathBuf {
    let path = match std::env::var_os("CORRAL_SMOLLM2_GGUF") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf"),
    };
    assert!(
        path.is_file(),
        "SmolLM2 GGUF not found at {}: run `bash scripts/fetch-model.sh` (or set CORRAL_SMOLLM2_GGUF)",
        path.display()
    );
    path
}

struct Prompt {
    name: String,
    text: String,
    ids: Vec<u32>,
    greedy: Vec<u32>,
    margins: Vec<f32>,
    top20: Vec<(u32, f32)>,
}

fn prompts() -> Vec<Prompt> {
    let text = std::fs::read_to_string(fixture("smollm2-135m/reference.json")).expect("reference");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_u64().expect("id") as u32)
            .collect()
    };
    json["prompts"]
        .as_array()
        .expect("prompts")
        .iter()
        .map(|p| Prompt {
            name: p["name"].as_str().expect("name").to_string(),
            text: p["text"].as_str().expect("text").to_string(),
            ids: ids(&p["prompt_ids"]),
            greedy: ids(&p["greedy_ids"]),
            margins: p["greedy_step_margin"]
                .as_array()
                .expect("margins")
                .iter()
                .map(|m| m.as_f64().expect("margin") as f32)
                .collect(),
            top20: p["prefill_last_position_top20"]
                .as_array()
                .expect("top20")
                .iter()
                .map(|e| {
                    (
                        e["id"].as_u64().expect("id") as u32,
                        e["logit"].as_f64().expect("logit") as f32,
                    )
                })
                .collect(),
        })
        .collect()
}

fn top_k(row: &[f32], k: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..row.len() as u32).collect();
    idx.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]));
    idx.truncate(k);
    idx
}

/// Teacher forcing: logits at every position of `prompt + greedy` in one forward pass.
fn teacher_forced(model: &Model, p: &Prompt) -> corral_models::Logits {
    let mut all = p.ids.clone();
    all.extend(&p.greedy);
    let mut seq = model.new_sequence();
    model
        .forward(&mut seq, &all, LogitsRequest::All)
        .expect("teacher-forced forward")
}

#[test]
fn gguf_tokenizer_matches_reference_ids_and_tokenizer_json() {
    let path = model_path();
    let gguf = GgufModel::open(&path, &LoadOptions::default()).expect("open");
    let tokenizer = gguf.tokenizer().expect("tokenizer from GGUF");
    let reference = tokenizers::Tokenizer::from_file(fixture("smollm2-135m/tokenizer.json"))
        .expect("reference tokenizer");
    assert_eq!(tokenizer.get_vocab_size(true), 49152);
    for p in prompts() {
        let enc = tokenizer.encode(p.text.as_str(), false).expect("encode");
        assert_eq!(enc.get_ids(), p.ids.as_slice(), "prompt {}", p.name);
    }
    let samples = [
        "The capital of France is",
        "{\"name\": \"Alice\", \"age\": 42, \"tags\": [\"a\", \"b\"]}",
        "  leading spaces, tabs\tand\nnewlines\n\n",
        "digits 1234567890 and 3.14159e-10",
        "Ünïcödé — 日本語 🙂 emoji",
        "<|im_start|>user\nHi<|im_end|>\n",
    ];
    for s in samples {
        let ours = tokenizer.encode(s, false).expect("encode");
        let theirs = reference.encode(s, false).expect("encode");
        assert_eq!(ours.get_ids(), theirs.get_ids(), "{s:?}");
        let decoded = tokenizer.decode(ours.get_ids(), false).expect("decode");
        assert_eq!(decoded, s, "round trip");
    }
    let template = gguf
        .chat_template()
        .expect("metadata")
        .expect("chat template");
    assert!(
        template.contains("<|im_start|>"),
        "ChatML template: {template}"
    );
}

#[test]
fn gguf_config_is_read_from_metadata() {
    let path = model_path();
    let gguf = GgufModel::open(&path, &LoadOptions::default()).expect("open");
    let c = gguf.config();
    assert_eq!(c.architecture, Architecture::Llama);
    assert_eq!(
        (c.num_layers, c.hidden_size, c.intermediate_size),
        (30, 576, 1536)
    );
    assert_eq!((c.num_heads, c.num_kv_heads, c.head_dim), (9, 3, 64));
    assert_eq!((c.vocab_size, c.max_position_embeddings), (49152, 8192));
    assert_eq!(c.rope_theta, 100_000.0);
    assert!(c.tie_word_embeddings);
    assert_eq!(
        (c.bos_token_id, c.eos_token_ids.as_slice()),
        (Some(1), &[2][..])
    );
}

#[test]
fn dequantized_f32_reproduces_reference_greedy_ids() {
    let path = model_path();
    let options = LoadOptions {
        dequantize: true,
        ..LoadOptions::default()
    };
    let model = GgufModel::open(&path, &options)
        .and_then(GgufModel::into_model)
        .expect("load");
    for p in prompts() {
        // Free-running greedy decode with the KV cache.
        let mut seq = model.new_sequence();
        let mut logits = model
            .forward(&mut seq, &p.ids, LogitsRequest::Last)
            .expect("prefill");
        let last = logits.last().to_vec();
        let diff = p
            .top20
            .iter()
            .map(|&(id, l)| (last[id as usize] - l).abs())
            .fold(0f32, f32::max);
        eprintln!("{} dequantized f32: top-20 max |Δlogit| {diff:.2e}", p.name);
        assert!(diff <= 1e-3, "{}: top-20 logits differ by {diff}", p.name);
        let mut generated = vec![];
        for _ in 0..p.greedy.len() {
            let next = logits.argmax(0).expect("argmax");
            generated.push(next);
            logits = model
                .forward(&mut seq, &[next], LogitsRequest::Last)
                .expect("decode");
        }
        assert_eq!(generated, p.greedy, "{}: greedy ids", p.name);
    }
}

#[test]
fn quantized_matmuls_agree_with_reference() {
    let path = model_path();
    let model = corral_models::load(&path, &LoadOptions::default()).expect("load");
    for p in prompts() {
        let logits = teacher_forced(&model, &p);
        let n = p.ids.len();
        let prefill = logits.row(n - 1).expect("row");
        let ours = top_k(prefill, 20);
        let overlap = p.top20.iter().filter(|(id, _)| ours.contains(id)).count();
        let diff = p
            .top20
            .iter()
            .map(|&(id, l)| (prefill[id as usize] - l).abs())
            .fold(0f32, f32::max);
        let mut agree = 0;
        let mut confident = 0;
        for (step, &expected) in p.greedy.iter().enumerate() {
            let got = argmax(logits.row(n - 1 + step).expect("row"));
            agree += usize::from(got == expected);
            if p.margins[step] > 0.5 {
                confident += 1;
                assert_eq!(got, expected, "{}: teacher-forced step {step}", p.name);
            }
        }
        eprintln!(
            "{} Q4_1: top-20 overlap {overlap}/20, top-20 max |Δlogit| {diff:.3}, teacher-forced \
             argmax {agree}/{} (all {confident} steps with margin > 0.5 match)",
            p.name,
            p.greedy.len()
        );
        assert!(overlap >= 15, "{}: top-20 overlap {overlap}", p.name);
        if p.name == "plain" {
            assert_eq!(argmax(prefill), 7042, "plain step 0 is ' Paris'");
        }
    }
}

#[test]
fn batched_forward_equals_one_by_one() {
    let model = corral_models::load(&model_path(), &LoadOptions::default()).expect("load");
    let mut prompts: Vec<Vec<u32>> = prompts().into_iter().map(|p| p.ids).collect();
    // Four sequences or more: two rows per thread (see `assert_batch_matches_sequential`).
    let shorter: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| p[..p.len() / 2 + 1].to_vec())
        .collect();
    prompts.extend(shorter);
    // The quantized kernels quantize each activation row on its own: stacking rows changes
    // nothing but the order of independent work.
    common::assert_batch_matches_sequential(&model, &prompts, 0.0);
}
