//! Helpers shared by the integration tests: fixture paths and reference data.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};

/// `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// The reference of one tiny model: `reference.json` and `reference.safetensors`.
pub struct Reference {
    pub json: serde_json::Value,
    pub tensors: HashMap<String, Tensor>,
}

impl Reference {
    pub fn load(model: &str) -> Self {
        let dir = fixture(model);
        let text = std::fs::read_to_string(dir.join("reference.json")).expect("reference.json");
        let json = serde_json::from_str(&text).expect("reference.json parses");
        let tensors =
            candle_core::safetensors::load(dir.join("reference.safetensors"), &Device::Cpu)
                .expect("reference.safetensors");
        Self { json, tensors }
    }

    pub fn ids(&self, key: &str) -> Vec<u32> {
        self.json[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key} is an array"))
            .iter()
            .map(|v| v.as_u64().expect("id") as u32)
            .collect()
    }

    /// A float array at a JSON pointer (`/a/b`).
    pub fn floats_at(&self, pointer: &str) -> Vec<f32> {
        self.json
            .pointer(pointer)
            .and_then(|v| v.as_array())
            .unwrap_or_else(|| panic!("{pointer} is an array"))
            .iter()
            .map(|v| v.as_f64().expect("float") as f32)
            .collect()
    }

    /// Rows of a 2-D reference tensor.
    pub fn rows(&self, key: &str) -> Vec<Vec<f32>> {
        self.tensors[key].to_vec2::<f32>().expect("2-D f32 tensor")
    }
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Index of the largest value (first on ties).
pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Five prompts of different lengths made from one (itself, its start, reversed, its end,
/// a longer start): four or more sequences, for [`assert_batch_matches_sequential`].
pub fn batch_prompts(prompt: &[u32]) -> Vec<Vec<u32>> {
    vec![
        prompt.to_vec(),
        prompt[..3].to_vec(),
        prompt.iter().rev().copied().collect(),
        prompt[2..].to_vec(),
        prompt[..5].to_vec(),
    ]
}

/// `forward_batch` over sequences of different lengths (prompts of different lengths
/// prefilled together, then greedy steps with one sequence fed two tokens at once) gives the
/// logits the one-by-one `forward` gives, within `tolerance`, and the same argmax.
///
/// It runs on a pool of two threads, whatever the machine: with four prompts or more, every
/// step then has two rows per thread, where the forward pass gives each task whole rows (and
/// in the steps that feed every sequence one token, appends each row's keys and values in
/// its task) — paths one-by-one decoding never takes.
pub fn assert_batch_matches_sequential(
    model: &corral_models::Model,
    prompts: &[Vec<u32>],
    tolerance: f32,
) {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("thread pool")
        .install(|| batch_matches_sequential(model, prompts, tolerance));
}

fn batch_matches_sequential(model: &corral_models::Model, prompts: &[Vec<u32>], tolerance: f32) {
    use corral_models::{LanguageModel, LogitsRequest};
    let mut batched: Vec<_> = prompts.iter().map(|_| model.new_sequence()).collect();
    let mut single: Vec<_> = prompts.iter().map(|_| model.new_sequence()).collect();
    let mut feeds: Vec<Vec<u32>> = prompts.to_vec();
    let mut worst = 0f32;
    for step in 0..6 {
        let mut batch: Vec<(&mut corral_models::Sequence, &[u32])> = batched
            .iter_mut()
            .zip(&feeds)
            .map(|(s, f)| (s, f.as_slice()))
            .collect();
        let together = model
            .forward_batch(&mut batch, LogitsRequest::Last)
            .expect("batched forward");
        assert_eq!(together.len(), prompts.len());
        let mut next = Vec::new();
        for (i, logits) in together.iter().enumerate() {
            let alone = model
                .forward(&mut single[i], &feeds[i], LogitsRequest::Last)
                .expect("single forward");
            assert_eq!(logits.first_position(), alone.first_position());
            assert_eq!(batched[i].len(), single[i].len());
            let diff = max_abs_diff(logits.last(), alone.last());
            worst = worst.max(diff);
            assert!(
                diff <= tolerance,
                "step {step}, sequence {i}: max |Δ| {diff}"
            );
            let token = argmax(logits.last());
            assert_eq!(token, argmax(alone.last()), "step {step}, sequence {i}");
            next.push(token);
        }
        // Greedy continuation; the second sequence is fed two tokens at step 2.
        feeds = next
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                if i == 1 && step == 2 {
                    vec![t, t]
                } else {
                    vec![t]
                }
            })
            .collect();
    }
    println!("batched vs one by one: max |Δ| {worst}");
}
