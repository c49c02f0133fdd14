use super::*;
use crate::test_noise::noise;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// Random GGML bytes: f16 scales (one block with scale 0), Q4_1 mins, and values covering
/// the whole range (including -128 for Q8_0).
fn random_ggml(format: BlockFormat, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    if format == BlockFormat::Q4K {
        return random_q4k(rows, cols, seed);
    }
    let per = 2 + format.value_bytes();
    let vals = noise(rows * cols / BLOCK * per, seed);
    let mut out = vec![];
    for (i, chunk) in vals.chunks_exact(per).enumerate() {
        let d = if i == 3 { 0.0 } else { chunk[0].abs() * 0.05 };
        out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
        if format == BlockFormat::Q4_1 {
            out.extend_from_slice(&f32_to_f16(chunk[1] * 0.4).to_le_bytes());
        }
        for &v in &chunk[2..] {
            out.push(((v + 1.0) * 127.99) as u8);
        }
    }
    out
}

/// Random Q4K super-blocks: f16 `d` and `dmin` (one super-block with `d` 0), random packed
/// 6-bit scales and mins (all 64 values of each), random 4-bit values.
fn random_q4k(rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let vals = noise(rows * cols / 256 * 144, seed);
    let mut out = vec![];
    for (i, chunk) in vals.chunks_exact(144).enumerate() {
        let d = if i == 2 { 0.0 } else { chunk[0].abs() * 0.003 };
        out.extend_from_slice(&f32_to_f16(d).to_le_bytes());
        out.extend_from_slice(&f32_to_f16(chunk[1].abs() * 0.004).to_le_bytes());
        out.extend(chunk[4..].iter().map(|&v| ((v + 1.0) * 127.99) as u8));
    }
    out
}

/// Round-to-nearest f32 → f16 for |x| < 65504 (test data only; tiny values flush to 0).
fn f32_to_f16(x: f32) -> u16 {
    if x.abs() < 2f32.powi(-14) {
        return 0;
    }
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    let frac = bits & 0x7f_ffff;
    let mut h = ((exp as u32) << 10) | (frac >> 13);
    if frac & 0x1000 != 0 {
        h += 1;
    }
    sign | h as u16
}

#[test]
fn f16_conversion_is_exact() {
    assert_eq!(f16_to_f32(0x3c00), 1.0);
    assert_eq!(f16_to_f32(0xc000), -2.0);
    assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
    assert_eq!(f16_to_f32(0x7bff), 65504.0);
    assert!(f16_to_f32(0x7c00).is_infinite());
}

const FORMATS: [BlockFormat; 4] = [
    BlockFormat::Q4_0,
    BlockFormat::Q4_1,
    BlockFormat::Q8_0,
    BlockFormat::Q4K,
];

#[test]
fn simd_kernels_are_bit_identical_to_scalar() {
    for format in FORMATS {
        // Odd rows (a padded group); K-quants need multiples of 256 columns.
        let (rows, cols) = (67, if format == BlockFormat::Q4K { 512 } else { 320 });
        let data = random_ggml(format, rows, cols, 7);
        let w = QuantMatrix::from_ggml(format, &data, rows, cols).unwrap();
        for tokens in [1, 3, 4, 9, 16] {
            let mut x = noise(tokens * cols, 11 + tokens as u64);
            x[..32].iter_mut().for_each(|v| *v = 0.0); // an all-zero activation block
            let reference = w.matmul(&x, Kernel::Scalar).unwrap();
            for kernel in [Kernel::Avx2, Kernel::Avx512Vnni, Kernel::Avx512] {
                if !kernel.is_supported() {
                    eprintln!("{kernel:?} not supported on this CPU: not compared");
                    continue;
                }
                let got = w.matmul(&x, kernel).unwrap();
                let same = got
                    .iter()
                    .zip(&reference)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{format:?} {kernel:?} differs from scalar ({tokens} tokens)"
                );
            }
        }
    }
}

#[test]
fn matmul_approximates_the_dequantized_product() {
    let (rows, cols) = (40, 256);
    for format in FORMATS {
        let data = random_ggml(format, rows, cols, 3);
        let w = QuantMatrix::from_ggml(format, &data, rows, cols).unwrap();
        let dense = w.dequantize();
        let x = noise(2 * cols, 5);
        let y = w.matmul(&x, Kernel::detect()).unwrap();
        for t in 0..2 {
            for r in 0..rows {
                let terms = (0..cols).map(|c| x[t * cols + c] * dense[r * cols + c]);
                let exact: f32 = terms.clone().sum();
                let scale: f32 = terms.map(f32::abs).sum();
                let err = (y[t * rows + r] - exact).abs();
                assert!(err <= 0.02 * scale + 1e-4, "{format:?} row {r}: {err}");
            }
        }
    }
}

#[test]
fn unpacking_matches_candle_dequantization() {
    // Three groups: a pair side by side and a last one alone.
    let (rows, cols) = (24, 512);
    let t = Tensor::from_vec(noise(rows * cols, 9), (rows, cols), &Device::Cpu).unwrap();
    for (format, dtype) in [
        (BlockFormat::Q4_0, GgmlDType::Q4_0),
        (BlockFormat::Q4_1, GgmlDType::Q4_1),
        (BlockFormat::Q8_0, GgmlDType::Q8_0),
        (BlockFormat::Q4K, GgmlDType::Q4K),
    ] {
        let q = QTensor::quantize(&t, dtype).unwrap();
        let ours = QuantMatrix::from_ggml(format, &q.data().unwrap(), rows, cols).unwrap();
        let theirs = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
        assert_eq!(
            ours.dequantize(),
            theirs.to_vec1::<f32>().unwrap(),
            "{format:?}"
        );
        let some = ours.dequantize_rows(&[5, 2, 17, 9]).unwrap();
        let all = ours.dequantize();
        for (k, r) in [5, 2, 17, 9].into_iter().enumerate() {
            assert_eq!(
                some[k * cols..(k + 1) * cols],
                all[r * cols..(r + 1) * cols]
            );
        }
    }
}

#[test]
fn rejects_bad_shapes() {
    let q4 = BlockFormat::Q4_1;
    assert!(QuantMatrix::from_ggml(q4, &[0; 20], 1, 16).is_err());
    assert!(QuantMatrix::from_ggml(q4, &[0; 19], 1, 32).is_err());
    assert!(QuantMatrix::from_ggml(BlockFormat::Q8_0, &[0; 20], 1, 32).is_err());
    let w = QuantMatrix::from_ggml(q4, &[0; 20], 1, 32).unwrap();
    assert!(w.matmul(&[0.0; 31], Kernel::Scalar).is_err());
    assert!(w.dequantize_rows(&[1]).is_err());
}
