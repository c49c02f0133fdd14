//! Rewrites a GGUF file with its matrices in another GGML type, with candle's quantizer (for
//! speed comparisons on the same model in several formats).
//!
//! ```text
//! cargo run --release -p corral-models --example requantize -- IN.gguf OUT.gguf q8_0
//! ```
//!
//! Types: `q4_0`, `q4_1`, `q8_0`, `q4_k`, `q5_k`, `q6_k`. Every quantized or f16/f32 matrix
//! whose row length is a multiple of the type's block size is dequantized and quantized
//! again; vectors (norms) and matrices whose rows do not fit the block (K-quants need 256
//! columns) keep their type, as llama.cpp's quantizer falls back for such shapes. Metadata is
//! copied unchanged.

use std::fs::File;
use std::io::BufReader;
use std::process::ExitCode;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::Device;

fn parse_type(name: &str) -> Option<GgmlDType> {
    Some(match name.to_ascii_lowercase().as_str() {
        "q4_0" => GgmlDType::Q4_0,
        "q4_1" => GgmlDType::Q4_1,
        "q8_0" => GgmlDType::Q8_0,
        "q4_k" => GgmlDType::Q4K,
        "q5_k" => GgmlDType::Q5K,
        "q6_k" => GgmlDType::Q6K,
        _ => return None,
    })
}

fn run(input: &str, output: &str, target: GgmlDType) -> candle_core::Result<()> {
    let mut reader = BufReader::new(File::open(input)?);
    let content = gguf_file::Content::read(&mut reader)?;
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    // Keep the file's tensor order (by data offset) for readers that care.
    names.sort_by_key(|n| content.tensor_infos[*n].offset);
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    let (mut converted, mut kept) = (0, 0);
    for name in names {
        let t = content.tensor(&mut reader, name, &Device::Cpu)?;
        let dims = t.shape().dims().to_vec();
        let cols = dims.last().copied().unwrap_or(0);
        let fits = dims.len() >= 2 && cols.is_multiple_of(target.block_size());
        let t = if fits && t.dtype() != target {
            converted += 1;
            QTensor::quantize(&t.dequantize(&Device::Cpu)?, target)?
        } else {
            kept += 1;
            t
        };
        tensors.push((name.clone(), t));
    }
    let metadata: Vec<(&str, &gguf_file::Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut out = std::io::BufWriter::new(File::create(output)?);
    gguf_file::write(&mut out, &metadata, &refs)?;
    eprintln!("{output}: {converted} tensors as {target:?}, {kept} kept as they were");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(input), Some(output), Some(target)) = (
        args.first(),
        args.get(1),
        args.get(2).and_then(|t| parse_type(t)),
    ) else {
        eprintln!("usage: requantize IN.gguf OUT.gguf q4_0|q4_1|q8_0|q4_k|q5_k|q6_k");
        return ExitCode::from(2);
    };
    match run(input, output, target) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("requantize: {e}");
            ExitCode::FAILURE
        }
    }
}
