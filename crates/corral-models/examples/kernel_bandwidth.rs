//! One-token matmul speed at Mistral-7B's FFN shape (14336 × 4096), by format: GB/s of
//! weights read, with the weights in the cache (one small matrix, called again and again)
//! and from memory (matrices cycled through, far more than the L3 holds). Where the second
//! falls short of the machine's bandwidth and the first is not far above it, the kernel's
//! arithmetic, not memory, sets the decode speed of a large model.
//!
//! ```text
//! cargo run --release -p corral-models --example kernel_bandwidth [-- Q4_0,Q4_K [avx512vnni|avx512|avx2|scalar]]
//! ```
use std::time::Instant;

use corral_models::quant::{BlockFormat, Kernel, QuantMatrix};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let formats: Vec<BlockFormat> = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "Q4_0,Q4_K,Q8_0".into())
        .split(',')
        .map(|f| match f {
            "Q4_0" => Ok(BlockFormat::Q4_0),
            "Q4_1" => Ok(BlockFormat::Q4_1),
            "Q8_0" => Ok(BlockFormat::Q8_0),
            "Q4_K" => Ok(BlockFormat::Q4K),
            other => Err(format!("unknown format {other}")),
        })
        .collect::<Result<_, _>>()?;
    let kernel = match std::env::args().nth(2) {
        None => Kernel::detect(),
        Some(name) => Kernel::from_name(&name).ok_or(format!("unknown kernel {name}"))?,
    };
    println!(
        "kernel {kernel:?}, {} threads, 1 token",
        rayon::current_num_threads()
    );
    println!("format   cached GB/s   memory GB/s");
    let mut seed = 0x9e3779b97f4a7c15u64;
    let mut random = |format: BlockFormat, rows: usize, cols: usize| {
        let (per_block, bytes) = match format {
            BlockFormat::Q4K => (256, 144),
            BlockFormat::Q4_0 => (32, 18),
            BlockFormat::Q4_1 => (32, 20),
            BlockFormat::Q8_0 => (32, 34),
        };
        let blocks = rows * cols / per_block;
        let mut data = Vec::with_capacity(blocks * bytes);
        for _ in 0..blocks {
            let start = data.len();
            for _ in 0..bytes {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                data.push((seed >> 32) as u8);
            }
            // Small finite f16 scales (and mins) in the header.
            data[start..start + 2].copy_from_slice(&0x2000u16.to_le_bytes());
            if matches!(format, BlockFormat::Q4_1 | BlockFormat::Q4K) {
                data[start + 2..start + 4].copy_from_slice(&0x1800u16.to_le_bytes());
            }
        }
        QuantMatrix::from_ggml(format, &data, rows, cols)
    };
    let cols = 4096;
    let x: Vec<f32> = (0..cols)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    rayon::scope(
        |_| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            for &format in &formats {
                // 256 rows: about half a MiB in 4 bits, inside each core's L2.
                let small = random(format, 256, cols)?;
                let big: Vec<QuantMatrix> = (0..8)
                    .map(|_| random(format, 14336, cols))
                    .collect::<Result<_, _>>()?;
                // The best of 9 rounds: on a shared machine the others lost time to neighbours.
                let rate =
                    |mats: &[QuantMatrix],
                     reps: usize|
                     -> Result<f64, Box<dyn std::error::Error + Send + Sync>> {
                        for m in mats {
                            m.matmul(&x, kernel)?;
                        }
                        let bytes: usize = mats.iter().map(|m| m.memory_bytes()).sum();
                        let mut best = 0f64;
                        for _ in 0..9 {
                            let start = Instant::now();
                            for _ in 0..reps {
                                for m in mats {
                                    m.matmul(&x, kernel)?;
                                }
                            }
                            best = best
                                .max((bytes * reps) as f64 / start.elapsed().as_secs_f64() / 1e9);
                        }
                        Ok(best)
                    };
                let cached = rate(std::slice::from_ref(&small), 300)?;
                let memory = rate(&big, 2)?;
                println!("{format:?}   {cached:>11.1}   {memory:>11.1}");
            }
            Ok(())
        },
    )
    .map_err(|e| e.to_string().into())
}
