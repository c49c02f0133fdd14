//! Fast CPU matmuls for GGML Q4_1 and Q8_0 weights (candle 0.11 has only scalar code for Q4_1).
//!
//! Weights are unpacked once at load time into `f32` block scales (and mins) plus the raw
//! quantized bytes:
//! - Q4_1: blocks of 32 values `w = d·q + m`, `q` 4-bit (GGML layout: 16 bytes, element `e < 16`
//!   in the low nibble of byte `e`, element `e ≥ 16` in the high nibble of byte `e-16`);
//! - Q8_0: blocks of 32 values `w = d·q`, `q` a signed byte.
//!
//! Activations are quantized per call to 8 bits per block of 32 (`x ≈ s·p`, `p` in −127..=127,
//! as GGML's Q8_1/Q8_0), so a block's dot product is `d·s·Σ q·p` (`+ m·s·Σ p` for Q4_1), with
//! the integer sum computed exactly by SIMD.
//!
//! Kernels: AVX-512 VNNI (`vpdpbusd`), AVX2 (`vpmaddubsw` + `vpmaddwd`) and a portable scalar
//! path, chosen at run time by CPU feature detection. All three produce **bit-identical**
//! results: the integer sums are split into the same 8 lanes of 4 products, every float step
//! (fused multiply-add per lane, the final lane reduction) happens in the same order, and the
//! tests check equality of the bits. The SIMD kernels compute tiles of 4 rows × 4 tokens.

use rayon::prelude::*;

use crate::error::{ModelError, Result};

/// Values per block.
const BLOCK: usize = 32;

/// The supported GGML block formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockFormat {
    /// f16 scale, f16 min, 32 unsigned 4-bit values.
    Q4_1,
    /// f16 scale, 32 signed bytes.
    Q8_0,
}

impl BlockFormat {
    /// Bytes of one GGML block.
    fn ggml_bytes(self) -> usize {
        match self {
            BlockFormat::Q4_1 => 20,
            BlockFormat::Q8_0 => 34,
        }
    }

    /// Bytes of quantized values per block (after the header).
    fn value_bytes(self) -> usize {
        match self {
            BlockFormat::Q4_1 => 16,
            BlockFormat::Q8_0 => 32,
        }
    }
}

/// The SIMD kernel used for the block dot products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Portable Rust.
    Scalar,
    /// x86-64 AVX2 + FMA.
    Avx2,
    /// x86-64 AVX-512 VNNI (256-bit, with AVX-512 VL) + FMA.
    Avx512Vnni,
}

impl Kernel {
    /// The fastest kernel this CPU supports.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            if avx2
                && is_x86_feature_detected!("avx512vnni")
                && is_x86_feature_detected!("avx512vl")
            {
                return Kernel::Avx512Vnni;
            }
            if avx2 {
                return Kernel::Avx2;
            }
        }
        Kernel::Scalar
    }

    /// Whether this CPU can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => {
                Kernel::Avx2.is_supported()
                    && is_x86_feature_detected!("avx512vnni")
                    && is_x86_feature_detected!("avx512vl")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// IEEE half to single precision (exact).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // Subnormal: value = frac · 2^-24.
            let v = frac as f32 * f32::from_bits(0x3380_0000); // 2^-24
            return if sign != 0 { -v } else { v };
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 112) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// A Q4_1 or Q8_0 matrix `[rows, cols]` unpacked for the kernels.
#[derive(Debug, Clone)]
pub struct QuantMatrix {
    format: BlockFormat,
    rows: usize,
    cols: usize,
    scale: Vec<f32>,
    /// Per-block minimum (Q4_1 only; empty for Q8_0).
    min: Vec<f32>,
    values: Vec<u8>,
}

impl QuantMatrix {
    /// Unpacks the GGML bytes of a `[rows, cols]` matrix.
    pub fn from_ggml(format: BlockFormat, data: &[u8], rows: usize, cols: usize) -> Result<Self> {
        if !cols.is_multiple_of(BLOCK) {
            return Err(ModelError::InvalidConfig(format!(
                "{format:?} matrix with {cols} columns (not a multiple of {BLOCK})"
            )));
        }
        let blocks = rows * cols / BLOCK;
        if data.len() != blocks * format.ggml_bytes() {
            return Err(ModelError::InvalidConfig(format!(
                "{format:?} data of {} bytes for a {rows}x{cols} matrix",
                data.len()
            )));
        }
        let mut scale = Vec::with_capacity(blocks);
        let mut min = Vec::new();
        let mut values = Vec::with_capacity(blocks * format.value_bytes());
        for block in data.chunks_exact(format.ggml_bytes()) {
            scale.push(f16_to_f32(u16::from_le_bytes([block[0], block[1]])));
            let header = match format {
                BlockFormat::Q4_1 => {
                    min.push(f16_to_f32(u16::from_le_bytes([block[2], block[3]])));
                    4
                }
                BlockFormat::Q8_0 => 2,
            };
            values.extend_from_slice(&block[header..]);
        }
        Ok(Self {
            format,
            rows,
            cols,
            scale,
            min,
            values,
        })
    }

    /// The block format.
    pub fn format(&self) -> BlockFormat {
        self.format
    }

    /// `[rows, cols]`.
    pub fn dims(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The dequantized matrix, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.rows * self.cols);
        self.dequantize_blocks(0..self.scale.len(), &mut out);
        out
    }

    /// The dequantized rows `ids` (e.g. token embeddings), row-major.
    pub fn dequantize_rows(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let bpr = self.cols / BLOCK;
        let mut out = Vec::with_capacity(ids.len() * self.cols);
        for &id in ids {
            let r = id as usize;
            if r >= self.rows {
                return Err(ModelError::TokenOutOfRange {
                    id,
                    vocab_size: self.rows,
                });
            }
            self.dequantize_blocks(r * bpr..(r + 1) * bpr, &mut out);
        }
        Ok(out)
    }

    fn dequantize_blocks(&self, blocks: std::ops::Range<usize>, out: &mut Vec<f32>) {
        let vb = self.format.value_bytes();
        for b in blocks {
            let q = &self.values[b * vb..(b + 1) * vb];
            let d = self.scale[b];
            match self.format {
                BlockFormat::Q4_1 => {
                    let m = self.min[b];
                    out.extend(q.iter().map(|&x| d * (x & 0x0f) as f32 + m));
                    out.extend(q.iter().map(|&x| d * (x >> 4) as f32 + m));
                }
                BlockFormat::Q8_0 => out.extend(q.iter().map(|&x| d * (x as i8) as f32)),
            }
        }
    }

    /// `y = x · Wᵀ` for `x` of shape `[tokens, cols]` (row-major): returns `[tokens, rows]`.
    pub fn matmul(&self, x: &[f32], kernel: Kernel) -> Result<Vec<f32>> {
        let mut out = Self::matmul_many(&[self], x, kernel)?;
        Ok(out.pop().unwrap_or_default())
    }

    /// `x · Wᵢᵀ` for several matrices with the same number of columns (e.g. Q, K and V): the
    /// activations are quantized once and all rows run in one parallel region.
    pub fn matmul_many(mats: &[&QuantMatrix], x: &[f32], kernel: Kernel) -> Result<Vec<Vec<f32>>> {
        let Some(cols) = mats.first().map(|m| m.cols) else {
            return Ok(vec![]);
        };
        if mats.iter().any(|m| m.cols != cols) || !x.len().is_multiple_of(cols) {
            return Err(ModelError::InvalidRequest(format!(
                "activation of {} values for matrices of {:?} columns",
                x.len(),
                mats.iter().map(|m| m.cols).collect::<Vec<_>>()
            )));
        }
        if !kernel.is_supported() {
            return Err(ModelError::InvalidRequest(format!(
                "kernel {kernel:?} is not supported by this CPU"
            )));
        }
        let tokens = x.len() / cols;
        let acts = Q8Activations::quantize(x, cols);
        // Tasks are chunks of rows of one matrix, each producing `[rows_in_chunk, tokens]`.
        let total_rows: usize = mats.iter().map(|m| m.rows).sum();
        let chunk_rows = (total_rows / (4 * rayon::current_num_threads()).max(1)).clamp(16, 256);
        let tasks: Vec<(usize, usize)> = mats
            .iter()
            .enumerate()
            .flat_map(|(i, m)| (0..m.rows).step_by(chunk_rows).map(move |r| (i, r)))
            .collect();
        let parts: Vec<Vec<f32>> = tasks
            .par_iter()
            .map(|&(i, start)| {
                let m = mats[i];
                m.rows_times(
                    start..(start + chunk_rows).min(m.rows),
                    &acts,
                    tokens,
                    kernel,
                )
            })
            .collect();
        let mut outs: Vec<Vec<f32>> = mats.iter().map(|m| vec![0f32; tokens * m.rows]).collect();
        for (&(i, start), part) in tasks.iter().zip(parts) {
            let rows = mats[i].rows;
            if tokens == 1 {
                // A decode step: the part is already in output order.
                outs[i][start..start + part.len()].copy_from_slice(&part);
                continue;
            }
            for (k, row) in part.chunks_exact(tokens).enumerate() {
                for (t, &y) in row.iter().enumerate() {
                    outs[i][t * rows + start + k] = y;
                }
            }
        }
        Ok(outs)
    }

    /// Rows `range` times every token of `acts`, laid out `[rows, tokens]`.
    fn rows_times(
        &self,
        range: std::ops::Range<usize>,
        acts: &Q8Activations,
        tokens: usize,
        kernel: Kernel,
    ) -> Vec<f32> {
        let (start, end) = (range.start, range.end);
        let blocks_per_row = self.cols / BLOCK;
        let vb = self.format.value_bytes();
        let row = |r: usize| {
            let b0 = r * blocks_per_row;
            let b1 = b0 + blocks_per_row;
            RowRef {
                scale: &self.scale[b0..b1],
                min: self.min.get(b0..b1).unwrap_or(&[]),
                values: &self.values[b0 * vb..b1 * vb],
            }
        };
        let mut part = vec![0f32; (end - start) * tokens];
        // Tiles of GROUP rows × TILE tokens: each weight block is unpacked once per tile and
        // each activation block loaded once per tile, and the CPU gets independent
        // accumulation chains. Leftover rows and tokens go one at a time.
        let mut r = start;
        while r < end {
            let out = &mut part[(r - start) * tokens..];
            if r + GROUP <= end {
                let rows: [RowRef<'_>; GROUP] = std::array::from_fn(|i| row(r + i));
                self.row_tile(kernel, &rows, acts, tokens, out);
                r += GROUP;
            } else {
                self.row_tile(kernel, &[row(r)], acts, tokens, out);
                r += 1;
            }
        }
        part
    }

    /// `R` rows times every token, written to `out` as `[R, tokens]`.
    fn row_tile<const R: usize>(
        &self,
        kernel: Kernel,
        rows: &[RowRef<'_>; R],
        acts: &Q8Activations,
        tokens: usize,
        out: &mut [f32],
    ) {
        let mut t = 0;
        while t < tokens {
            if t + TILE <= tokens {
                let xs: [ActRef<'_>; TILE] = std::array::from_fn(|i| acts.row(t + i));
                let ys = dot_tile(kernel, self.format, rows, &xs);
                for (i, row) in ys.iter().enumerate() {
                    out[i * tokens + t..i * tokens + t + TILE].copy_from_slice(row);
                }
                t += TILE;
            } else {
                let ys = dot_tile(kernel, self.format, rows, &[acts.row(t)]);
                for (i, row) in ys.iter().enumerate() {
                    out[i * tokens + t] = row[0];
                }
                t += 1;
            }
        }
    }
}

/// One weight row.
struct RowRef<'a> {
    scale: &'a [f32],
    /// Empty for Q8_0.
    min: &'a [f32],
    values: &'a [u8],
}

/// Activations quantized to 8 bits per block of 32.
struct Q8Activations {
    cols: usize,
    scale: Vec<f32>,
    /// `scale · Σ p` per block.
    sum: Vec<f32>,
    q: Vec<i8>,
}

/// One token's quantized activations.
struct ActRef<'a> {
    scale: &'a [f32],
    sum: &'a [f32],
    q: &'a [i8],
}

impl Q8Activations {
    fn quantize(x: &[f32], cols: usize) -> Self {
        let blocks = x.len() / BLOCK;
        let mut scale = Vec::with_capacity(blocks);
        let mut sum = Vec::with_capacity(blocks);
        let mut q = Vec::with_capacity(x.len());
        for block in x.chunks_exact(BLOCK) {
            let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
            let d = amax / 127.0;
            let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
            let mut s = 0i32;
            for &v in block {
                let p = (v * inv).round().clamp(-127.0, 127.0) as i8;
                s += p as i32;
                q.push(p);
            }
            scale.push(d);
            sum.push(d * s as f32);
        }
        Self {
            cols,
            scale,
            sum,
            q,
        }
    }

    fn row(&self, t: usize) -> ActRef<'_> {
        let bpr = self.cols / BLOCK;
        ActRef {
            scale: &self.scale[t * bpr..(t + 1) * bpr],
            sum: &self.sum[t * bpr..(t + 1) * bpr],
            q: &self.q[t * self.cols..(t + 1) * self.cols],
        }
    }
}

/// Rows computed together by the SIMD kernels.
const GROUP: usize = 4;
/// Tokens computed together by the SIMD kernels.
const TILE: usize = 4;

/// Dot products of `R` weight rows with `T` activation rows. Every result depends only on its
/// row and token (same operations in the same order as [`dot_scalar`]), whatever `R` and `T`.
fn dot_tile<const R: usize, const T: usize>(
    kernel: Kernel,
    format: BlockFormat,
    w: &[RowRef<'_>; R],
    x: &[ActRef<'_>; T],
) -> [[f32; T]; R] {
    match (kernel, format) {
        // SAFETY (all four): `matmul` checked that the CPU supports the kernel's features.
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx2, BlockFormat::Q4_1) => unsafe { x86::q4_1_avx2(w, x) },
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx512Vnni, BlockFormat::Q4_1) => unsafe { x86::q4_1_vnni(w, x) },
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx2, BlockFormat::Q8_0) => unsafe { x86::q8_0_avx2(w, x) },
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx512Vnni, BlockFormat::Q8_0) => unsafe { x86::q8_0_vnni(w, x) },
        _ => std::array::from_fn(|r| std::array::from_fn(|t| dot_scalar(format, &w[r], &x[t]))),
    }
}

/// The final reduction of the 8 lane accumulators, in the order the SIMD code uses.
#[inline(always)]
fn reduce_lanes(a: [f32; 8]) -> f32 {
    let t = [a[0] + a[4], a[1] + a[5], a[2] + a[6], a[3] + a[7]];
    (t[0] + t[2]) + (t[1] + t[3])
}

/// Portable reference: lane `j` of a block is `Σ_{e=4j}^{4j+3} q[e]·p[e]`.
fn dot_scalar(format: BlockFormat, w: &RowRef<'_>, x: &ActRef<'_>) -> f32 {
    let vb = format.value_bytes();
    let mut acc = [0f32; 8];
    let mut min_acc = 0f32;
    for b in 0..w.scale.len() {
        let v = &w.values[b * vb..(b + 1) * vb];
        let p = &x.q[b * BLOCK..(b + 1) * BLOCK];
        let dd = w.scale[b] * x.scale[b];
        for (j, lane) in acc.iter_mut().enumerate() {
            let mut s = 0i32;
            for e in 4 * j..4 * j + 4 {
                let q = match format {
                    BlockFormat::Q4_1 if e < 16 => (v[e] & 0x0f) as i32,
                    BlockFormat::Q4_1 => (v[e - 16] >> 4) as i32,
                    BlockFormat::Q8_0 => v[e] as i8 as i32,
                };
                s += q * p[e] as i32;
            }
            *lane = dd.mul_add(s as f32, *lane);
        }
        if format == BlockFormat::Q4_1 {
            min_acc = w.min[b].mul_add(x.sum[b], min_acc);
        }
    }
    reduce_lanes(acc) + min_acc
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{ActRef, RowRef, BLOCK};
    use std::arch::x86_64::*;

    /// The 32 unsigned 4-bit values of a block as bytes, in element order.
    #[inline(always)]
    unsafe fn unpack(nib: *const u8) -> __m256i {
        let packed = _mm_loadu_si128(nib as *const __m128i);
        let mask = _mm_set1_epi8(0x0f);
        let lo = _mm_and_si128(packed, mask);
        let hi = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
        _mm256_set_m128i(hi, lo)
    }

    #[inline(always)]
    unsafe fn finish(acc: __m256, min_acc: f32) -> f32 {
        let lo = _mm256_castps256_ps128(acc);
        let hi = _mm256_extractf128_ps(acc, 1);
        let s4 = _mm_add_ps(lo, hi); // [a0+a4, a1+a5, a2+a6, a3+a7]
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4)); // [t0+t2, t1+t3, ..]
        let s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
        _mm_cvtss_f32(s1) + min_acc
    }

    /// A Q8_0 weight block as (|q|, q): `|q|·(p·sign q) = q·p` turns the signed×signed product
    /// into the unsigned×signed one the instructions offer, exact also for q = −128 (|q| read
    /// as unsigned 128).
    #[inline(always)]
    unsafe fn signed_prep(v: *const u8) -> (__m256i, __m256i) {
        let q = _mm256_loadu_si256(v as *const __m256i);
        (_mm256_abs_epi8(q), q)
    }

    /// The block loop shared by the kernels: `$prep(values_ptr)` loads a weight block once per
    /// tile, `$lanes(prepared, p)` gives its 8 lane sums with an activation block, `$with_min`
    /// adds the Q4_1 `m·s·Σp` term.
    macro_rules! dot_tile {
        ($w:expr, $x:expr, $vb:expr, $with_min:expr, $prep:expr, $lanes:expr) => {{
            let (w, x) = ($w, $x);
            let mut acc = [[_mm256_setzero_ps(); T]; R];
            let mut min_acc = [[0f32; T]; R];
            for b in 0..w[0].scale.len() {
                let p: [__m256i; T] = std::array::from_fn(|t| {
                    _mm256_loadu_si256(x[t].q.as_ptr().add(b * BLOCK) as *const __m256i)
                });
                for r in 0..R {
                    let wv = $prep(w[r].values.as_ptr().add(b * $vb));
                    let ws = w[r].scale[b];
                    for t in 0..T {
                        let lanes = $lanes(wv, p[t]);
                        let dd = _mm256_set1_ps(ws * x[t].scale[b]);
                        acc[r][t] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(lanes), acc[r][t]);
                        if $with_min {
                            min_acc[r][t] = w[r].min[b].mul_add(x[t].sum[b], min_acc[r][t]);
                        }
                    }
                }
            }
            std::array::from_fn(|r| std::array::from_fn(|t| finish(acc[r][t], min_acc[r][t])))
        }};
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn q4_1_avx2<const R: usize, const T: usize>(
        w: &[RowRef<'_>; R],
        x: &[ActRef<'_>; T],
    ) -> [[f32; T]; R] {
        let ones = _mm256_set1_epi16(1);
        // No saturation in vpmaddubsw: 2·15·127 < 2^15.
        dot_tile!(w, x, 16, true, |v| unpack(v), |q, p| _mm256_madd_epi16(
            _mm256_maddubs_epi16(q, p),
            ones
        ))
    }

    #[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
    pub(super) unsafe fn q4_1_vnni<const R: usize, const T: usize>(
        w: &[RowRef<'_>; R],
        x: &[ActRef<'_>; T],
    ) -> [[f32; T]; R] {
        dot_tile!(w, x, 16, true, |v| unpack(v), |q, p| _mm256_dpbusd_epi32(
            _mm256_setzero_si256(),
            q,
            p
        ))
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn q8_0_avx2<const R: usize, const T: usize>(
        w: &[RowRef<'_>; R],
        x: &[ActRef<'_>; T],
    ) -> [[f32; T]; R] {
        let ones = _mm256_set1_epi16(1);
        // No saturation in vpmaddubsw: 2·128·127 < 2^15.
        dot_tile!(
            w,
            x,
            32,
            false,
            |v| signed_prep(v),
            |(a, q): (__m256i, __m256i), p| {
                _mm256_madd_epi16(_mm256_maddubs_epi16(a, _mm256_sign_epi8(p, q)), ones)
            }
        )
    }

    #[target_feature(enable = "avx2,fma,avx512vnni,avx512vl")]
    pub(super) unsafe fn q8_0_vnni<const R: usize, const T: usize>(
        w: &[RowRef<'_>; R],
        x: &[ActRef<'_>; T],
    ) -> [[f32; T]; R] {
        dot_tile!(
            w,
            x,
            32,
            false,
            |v| signed_prep(v),
            |(a, q): (__m256i, __m256i), p| {
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, _mm256_sign_epi8(p, q))
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers (xorshift) in [-1, 1).
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// Random GGML bytes: f16 scales (one block with scale 0), Q4_1 mins, and values covering
    /// the whole range (including -128 for Q8_0).
    fn random_ggml(format: BlockFormat, rows: usize, cols: usize, seed: u64) -> Vec<u8> {
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

    const FORMATS: [BlockFormat; 2] = [BlockFormat::Q4_1, BlockFormat::Q8_0];

    #[test]
    fn simd_kernels_are_bit_identical_to_scalar() {
        let (rows, cols) = (67, 320);
        for format in FORMATS {
            let data = random_ggml(format, rows, cols, 7);
            let w = QuantMatrix::from_ggml(format, &data, rows, cols).unwrap();
            for tokens in [1, 3, 4, 9, 16] {
                let mut x = noise(tokens * cols, 11 + tokens as u64);
                x[..32].iter_mut().for_each(|v| *v = 0.0); // an all-zero activation block
                let reference = w.matmul(&x, Kernel::Scalar).unwrap();
                for kernel in [Kernel::Avx2, Kernel::Avx512Vnni] {
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
        use candle_core::quantized::{GgmlDType, QTensor};
        use candle_core::{Device, Tensor};
        let (rows, cols) = (8, 128);
        let t = Tensor::from_vec(noise(rows * cols, 9), (rows, cols), &Device::Cpu).unwrap();
        for (format, dtype) in [
            (BlockFormat::Q4_1, GgmlDType::Q4_1),
            (BlockFormat::Q8_0, GgmlDType::Q8_0),
        ] {
            let q = QTensor::quantize(&t, dtype).unwrap();
            let ours = QuantMatrix::from_ggml(format, &q.data().unwrap(), rows, cols).unwrap();
            let theirs = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
            assert_eq!(
                ours.dequantize(),
                theirs.to_vec1::<f32>().unwrap(),
                "{format:?}"
            );
            let some = ours.dequantize_rows(&[5, 2]).unwrap();
            assert_eq!(some[..cols], ours.dequantize()[5 * cols..6 * cols]);
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
}
