//! Throughput of corral's quantized matmuls at SmolLM2-135M's shapes, by tokens per call
//! (GMAC/s, all cores unless `RAYON_NUM_THREADS` says otherwise): where batched decoding
//! spends its time in the kernels. The calls run on rayon's pool, as outside a forward pass,
//! so with several threads each call includes waking the pool's other workers (a forward pass
//! keeps them spinning instead).
//!
//! ```text
//! cargo run --release -p corral-models --example kernel_speed [-- Q4_1 1,4,8,16 [avx512|avx512vnni|avx2|scalar]]
//! ```
use std::time::Instant;

use corral_models::quant::{BlockFormat, Kernel, QuantMatrix};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let format = match args.next().as_deref() {
        None | Some("Q4_1") => BlockFormat::Q4_1,
        Some("Q4_0") => BlockFormat::Q4_0,
        Some("Q8_0") => BlockFormat::Q8_0,
        Some(other) => return Err(format!("unknown format {other}").into()),
    };
    let tokens: Vec<usize> = args
        .next()
        .unwrap_or_else(|| "1,2,4,8,16".into())
        .split(',')
        .map(|t| t.parse())
        .collect::<Result<_, _>>()?;
    let (header, value) = match format {
        BlockFormat::Q4_1 => (4, 16),
        BlockFormat::Q4_0 => (2, 16),
        _ => (2, 32),
    };
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut random =
        |rows: usize, cols: usize| -> Result<QuantMatrix, Box<dyn std::error::Error>> {
            let blocks = rows * cols / 32;
            let mut data = Vec::with_capacity(blocks * (header + value));
            for _ in 0..blocks {
                data.extend_from_slice(&0x2000u16.to_le_bytes());
                if header == 4 {
                    data.extend_from_slice(&0xa000u16.to_le_bytes());
                }
                for _ in 0..value {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    data.push((seed >> 32) as u8);
                }
            }
            Ok(QuantMatrix::from_ggml(format, &data, rows, cols)?)
        };
    // One SmolLM2 layer (q, k, v, o, gate, up, down) and the LM head.
    let (h, kv, ffn, vocab) = (576, 192, 1536, 49152);
    let qkv = [random(h, h)?, random(kv, h)?, random(kv, h)?];
    let o = random(h, h)?;
    let gate_up = [random(ffn, h)?, random(ffn, h)?];
    let down = random(h, ffn)?;
    let head = random(vocab, h)?;
    let kernel = match args.next() {
        None => Kernel::detect(),
        Some(name) => Kernel::from_name(&name).ok_or(format!("unknown kernel {name}"))?,
    };
    println!(
        "{format:?}, kernel {kernel:?}, {} threads",
        rayon::current_num_threads()
    );
    println!("tokens  layer µs  head µs   GMAC/s (layer)  GMAC/s (head)");
    // On a worker of the pool, as a forward pass runs (see `Model::forward_batch`).
    Ok(rayon::scope(|_| {
        run(&tokens, &qkv, &o, &gate_up, &down, &head, kernel)
    })?)
}

fn run(
    tokens: &[usize],
    qkv: &[QuantMatrix; 3],
    o: &QuantMatrix,
    gate_up: &[QuantMatrix; 2],
    down: &QuantMatrix,
    head: &QuantMatrix,
    kernel: Kernel,
) -> Result<(), corral_models::ModelError> {
    let (vocab, h) = head.dims();
    let (kv, ffn) = (qkv[1].dims().0, down.dims().1);
    for &t in tokens {
        let x_h: Vec<f32> = (0..t * h)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let x_f: Vec<f32> = (0..t * ffn)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let reps = 200;
        let layer = || -> Result<(), corral_models::ModelError> {
            QuantMatrix::matmul_many(&qkv.iter().collect::<Vec<_>>(), &x_h, kernel)?;
            o.matmul(&x_h, kernel)?;
            QuantMatrix::matmul_many(&gate_up.iter().collect::<Vec<_>>(), &x_h, kernel)?;
            down.matmul(&x_f, kernel)?;
            Ok(())
        };
        layer()?;
        let start = Instant::now();
        for _ in 0..reps {
            layer()?;
        }
        let layer_s = start.elapsed().as_secs_f64() / reps as f64;
        let start = Instant::now();
        for _ in 0..reps / 10 {
            head.matmul(&x_h, kernel)?;
        }
        let head_s = start.elapsed().as_secs_f64() / (reps / 10) as f64;
        let layer_macs = (h * (h + 2 * kv) + h * h + 3 * h * ffn) as f64 * t as f64;
        let head_macs = (vocab * h) as f64 * t as f64;
        println!(
            "{t:>6}  {:>8.1}  {:>7.1}   {:>14.1}  {:>13.1}",
            layer_s * 1e6,
            head_s * 1e6,
            layer_macs / layer_s / 1e9,
            head_macs / head_s / 1e9
        );
    }
    Ok(())
}
