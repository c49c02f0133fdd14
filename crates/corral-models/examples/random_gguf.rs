//! Writes a GGUF file with the real shapes of a large model and random weights (nothing to
//! download), for speed and memory measurements at the sizes users run.
//!
//! ```text
//! cargo run --release -p corral-models --example random_gguf -- mistral-7b q4_0 OUT.gguf
//! cargo run --release -p corral-models --example random_gguf -- mixtral-8x7b q4_0 OUT.gguf --layers 4
//! ```
//!
//! Shapes: `mistral-7b` (Mistral-7B-v0.1: 32 layers, hidden 4096, FFN 14336, 32 query / 8 KV
//! heads of 128, 32000 tokens, sliding window 4096) and `mixtral-8x7b` (the same attention,
//! 8 experts of FFN 14336 with 2 per token, stacked `*_exps` tensors as llama.cpp writes
//! them; `--layers` keeps the first few layers so that it fits in memory). Types: `q4_0`,
//! `q4_1`, `q8_0`, `q4_k` (every matrix in that type; norms in f32, the router in f32).
//!
//! The weights are random quantized blocks with small scales, so activations stay finite.
//! The vocabulary is synthetic (`<unk>`, `<s>`, `</s>`, the 256 byte tokens, then `t{i}`),
//! enough for llama.cpp to load the file; the speed of a forward pass does not depend on it.

use std::borrow::Cow;
use std::fs::File;
use std::process::ExitCode;

use candle_core::quantized::{gguf_file, GgmlDType, QStorage, QTensor};
use candle_core::{Device, Tensor};

struct Shape {
    name: &'static str,
    layers: usize,
    hidden: usize,
    ffn: usize,
    heads: usize,
    kv_heads: usize,
    vocab: usize,
    experts: usize,
    rope_theta: f32,
    window: Option<u32>,
}

fn shape(name: &str) -> Option<Shape> {
    let mistral = Shape {
        name: "Mistral-7B-v0.1 shape, random weights",
        layers: 32,
        hidden: 4096,
        ffn: 14336,
        heads: 32,
        kv_heads: 8,
        vocab: 32000,
        experts: 0,
        rope_theta: 10_000.0,
        window: Some(4096),
    };
    match name {
        "mistral-7b" => Some(mistral),
        "mixtral-8x7b" => Some(Shape {
            name: "Mixtral-8x7B layer shape, random weights",
            experts: 8,
            rope_theta: 1_000_000.0,
            window: None,
            ..mistral
        }),
        _ => None,
    }
}

/// xorshift64 bytes.
struct Noise(u64);

impl Noise {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// The f16 bits (little-endian) of a positive `x` in f16's normal range, truncated.
fn f16_bits(x: f32) -> [u8; 2] {
    let bits = x.to_bits();
    let exp = ((bits >> 23) & 0xff) - 127 + 15;
    let frac = (bits >> 13) & 0x3ff;
    (((exp << 10) | frac) as u16).to_le_bytes()
}

/// A random `[rows, cols]` matrix (or `[experts, rows, cols]`) in `dtype`.
fn random_matrix(
    noise: &mut Noise,
    dtype: GgmlDType,
    dims: &[usize],
) -> candle_core::Result<QTensor> {
    let elems: usize = dims.iter().product();
    let blocks = elems / dtype.block_size();
    let block_bytes = dtype.type_size();
    let mut data = vec![0u8; blocks * block_bytes];
    noise.fill(&mut data);
    // Scales small enough that a row's dot product stays near the size of its input.
    let (scale, min) = match dtype {
        GgmlDType::Q4_0 | GgmlDType::Q4_1 => (f16_bits(0.004), f16_bits(0.03)),
        GgmlDType::Q8_0 => (f16_bits(0.0003), [0, 0]),
        GgmlDType::Q4K => (f16_bits(0.0002), f16_bits(0.0005)),
        _ => return Err(candle_core::Error::Msg(format!("unsupported {dtype:?}"))),
    };
    for block in data.chunks_exact_mut(block_bytes) {
        block[..2].copy_from_slice(&scale);
        if matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q4K) {
            block[2..4].copy_from_slice(&min);
        }
    }
    let storage = QStorage::from_data(Cow::Owned(data), &Device::Cpu, dtype)?;
    QTensor::new(storage, dims.to_vec())
}

fn f32_vector(len: usize, value: f32) -> candle_core::Result<QTensor> {
    QTensor::quantize(&Tensor::full(value, len, &Device::Cpu)?, GgmlDType::F32)
}

fn run(shape: &Shape, dtype: GgmlDType, out: &str, layers: usize) -> candle_core::Result<()> {
    use gguf_file::Value as V;
    let s = shape;
    let head_dim = s.hidden / s.heads;
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    tensors.push((
        "token_embd.weight".into(),
        random_matrix(&mut noise, dtype, &[s.vocab, s.hidden])?,
    ));
    for l in 0..layers {
        let mut put = |name: &str, t: QTensor| tensors.push((format!("blk.{l}.{name}.weight"), t));
        put("attn_norm", f32_vector(s.hidden, 1.0)?);
        put(
            "attn_q",
            random_matrix(&mut noise, dtype, &[s.hidden, s.hidden])?,
        );
        let kv = s.kv_heads * head_dim;
        put("attn_k", random_matrix(&mut noise, dtype, &[kv, s.hidden])?);
        put("attn_v", random_matrix(&mut noise, dtype, &[kv, s.hidden])?);
        put(
            "attn_output",
            random_matrix(&mut noise, dtype, &[s.hidden, s.hidden])?,
        );
        put("ffn_norm", f32_vector(s.hidden, 1.0)?);
        if s.experts == 0 {
            put(
                "ffn_gate",
                random_matrix(&mut noise, dtype, &[s.ffn, s.hidden])?,
            );
            put(
                "ffn_up",
                random_matrix(&mut noise, dtype, &[s.ffn, s.hidden])?,
            );
            put(
                "ffn_down",
                random_matrix(&mut noise, dtype, &[s.hidden, s.ffn])?,
            );
        } else {
            let router = Tensor::randn(0f32, 0.02, (s.experts, s.hidden), &Device::Cpu)?;
            put("ffn_gate_inp", QTensor::quantize(&router, GgmlDType::F32)?);
            let e = s.experts;
            put(
                "ffn_gate_exps",
                random_matrix(&mut noise, dtype, &[e, s.ffn, s.hidden])?,
            );
            put(
                "ffn_up_exps",
                random_matrix(&mut noise, dtype, &[e, s.ffn, s.hidden])?,
            );
            put(
                "ffn_down_exps",
                random_matrix(&mut noise, dtype, &[e, s.hidden, s.ffn])?,
            );
        }
    }
    tensors.push(("output_norm.weight".into(), f32_vector(s.hidden, 1.0)?));
    tensors.push((
        "output.weight".into(),
        random_matrix(&mut noise, dtype, &[s.vocab, s.hidden])?,
    ));

    let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
    tokens.extend((0..256).map(|b| format!("<0x{b:02X}>")));
    let first_plain = tokens.len();
    tokens.extend((first_plain..s.vocab).map(|i| format!("t{i}")));
    let token_type: Vec<V> = (0..s.vocab)
        .map(|i| {
            V::I32(match i {
                0 => 2,
                1 | 2 => 3,
                i if i < first_plain => 6,
                _ => 1,
            })
        })
        .collect();
    let u32v = |x: usize| V::U32(x as u32);
    let mut metadata: Vec<(&str, V)> = vec![
        ("general.architecture", V::String("llama".into())),
        ("general.name", V::String(s.name.into())),
        ("general.file_type", V::U32(file_type(dtype))),
        ("llama.context_length", u32v(32768)),
        ("llama.embedding_length", u32v(s.hidden)),
        ("llama.block_count", u32v(layers)),
        ("llama.feed_forward_length", u32v(s.ffn)),
        ("llama.rope.dimension_count", u32v(head_dim)),
        ("llama.attention.head_count", u32v(s.heads)),
        ("llama.attention.head_count_kv", u32v(s.kv_heads)),
        ("llama.attention.layer_norm_rms_epsilon", V::F32(1e-5)),
        ("llama.rope.freq_base", V::F32(s.rope_theta)),
        ("llama.vocab_size", u32v(s.vocab)),
        ("tokenizer.ggml.model", V::String("llama".into())),
        (
            "tokenizer.ggml.tokens",
            V::Array(tokens.into_iter().map(V::String).collect()),
        ),
        (
            "tokenizer.ggml.scores",
            V::Array((0..s.vocab).map(|i| V::F32(-(i as f32))).collect()),
        ),
        ("tokenizer.ggml.token_type", V::Array(token_type)),
        ("tokenizer.ggml.unknown_token_id", V::U32(0)),
        ("tokenizer.ggml.bos_token_id", V::U32(1)),
        ("tokenizer.ggml.eos_token_id", V::U32(2)),
    ];
    if let Some(w) = s.window {
        metadata.push(("llama.attention.sliding_window", V::U32(w)));
    }
    if s.experts > 0 {
        metadata.push(("llama.expert_count", u32v(s.experts)));
        metadata.push(("llama.expert_used_count", V::U32(2)));
    }
    let meta: Vec<(&str, &V)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut file = std::io::BufWriter::new(File::create(out)?);
    gguf_file::write(&mut file, &meta, &refs)?;
    Ok(())
}

/// llama.cpp's `general.file_type` for a file whose matrices are all `dtype`.
fn file_type(dtype: GgmlDType) -> u32 {
    match dtype {
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q8_0 => 7,
        _ => 15, // Q4_K_M
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dtype = match args.get(1).map(|t| t.to_ascii_lowercase()).as_deref() {
        Some("q4_0") => Some(GgmlDType::Q4_0),
        Some("q4_1") => Some(GgmlDType::Q4_1),
        Some("q8_0") => Some(GgmlDType::Q8_0),
        Some("q4_k") => Some(GgmlDType::Q4K),
        _ => None,
    };
    let (Some(shape), Some(dtype), Some(out)) =
        (args.first().and_then(|s| shape(s)), dtype, args.get(2))
    else {
        eprintln!(
            "usage: random_gguf mistral-7b|mixtral-8x7b q4_0|q4_1|q8_0|q4_k OUT.gguf [--layers N]"
        );
        return ExitCode::from(2);
    };
    let layers = match args.iter().position(|a| a == "--layers") {
        Some(i) => match args.get(i + 1).and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => {
                eprintln!("--layers needs a number");
                return ExitCode::from(2);
            }
        },
        None => shape.layers,
    };
    match run(&shape, dtype, out, layers.min(shape.layers)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("random_gguf: {e}");
            ExitCode::FAILURE
        }
    }
}
