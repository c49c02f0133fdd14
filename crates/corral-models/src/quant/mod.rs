//! Fast CPU matmuls for GGML Q4_0, Q4_1, Q8_0 and Q4_K weights (candle 0.11 has only scalar
//! code for Q4_1, and a one-row-at-a-time dot product for the others).
//!
//! # Layout
//! At load time a matrix is repacked into groups of [`ROWS`] = 8 rows. For each group and each
//! block of 32 columns the group keeps its 8 rows' f16 scales (and Q4_1 mins) side by side,
//! and interleaves the rows' quantized values in chunks of 4 columns: one 32-byte load holds
//! the same 4 columns (Q8_0), or twice 4 columns in the two nibbles (Q4), of all 8 rows. One
//! byte multiply-add instruction (`vpdpbusd`) of such a load against 4 activation bytes
//! broadcast to every lane advances the 8 rows' dot products at once, the 8 block sums come
//! out in one register, and the scales are applied by one vector multiply per block — no
//! horizontal reductions. (llama.cpp's repacked CPU kernels rest on the same idea.) For the
//! 512-bit kernels, which take two groups at once, groups are stored in pairs, block by block
//! (values, and scales likewise), so that they read one sequential stream of each (a core
//! streams one run from memory faster than two runs 16 KiB apart: +16% decode on a 7B-shape
//! Q4_0 file, +21% Q4_K); for the others, one after the other (read in pairs, a one-group
//! kernel would skip every other run of bytes: half the speed from memory). The bytes per
//! weight are GGML's own: values as packed as in the file, scales kept in f16. Q4_K
//! keeps its super-blocks' f16 `d`/`dmin`, unpacks the 6-bit block scales and mins to a byte
//! each (0.58 bytes per weight against GGML's 0.5625) and lays its values out as Q4_1's.
//!
//! # Arithmetic
//! Activations are quantized per call to 8 bits per block of 32 (`x ≈ s·p`, `p` in −127..=127,
//! as GGML's Q8_0/Q8_1). A block's dot product with a weight block `w = d·q + m` is
//! `(d·s)·Σ q·p + m·(s·Σ p)`: the integer sum `Σ q·p` is exact (whatever the instruction
//! sequence), the float steps per block are one product `d·s`, one fused multiply-add into
//! the row's accumulator and, for the formats with an offset, one fused multiply-add into a
//! second accumulator; the result is their sum. Q4_0 (`w = d·(q − 8)`) is `m = −8·d`, Q8_0
//! has no offset. Every kernel — AVX-512 VNNI, AVX2 and the portable scalar code, chosen at
//! run time by CPU feature detection — performs exactly these float operations in this
//! order, so they agree **bit for bit** (tested).

mod kernels;
#[cfg(test)]
mod tests;

use rayon::prelude::*;

use crate::error::{ModelError, Result};

pub use kernels::Kernel;

/// Values per block.
const BLOCK: usize = 32;
/// Rows interleaved in one group.
const ROWS: usize = 8;
/// Tokens computed together by the kernels (each weight block is unpacked once per tile).
const TILE: usize = 4;
/// Tokens computed together by the two-group 512-bit kernels, which have the registers for it
/// (batched decoding of 8 sequences is one such tile).
const WIDE_TILE: usize = 8;

/// The supported GGML block formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockFormat {
    /// f16 scale, 32 unsigned 4-bit values `q`; `w = d·(q − 8)`.
    Q4_0,
    /// f16 scale, f16 min, 32 unsigned 4-bit values; `w = d·q + m`.
    Q4_1,
    /// f16 scale, 32 signed bytes; `w = d·q`.
    Q8_0,
    /// Super-blocks of 256 values: f16 `d` and `dmin`, and per block of 32 a 6-bit scale
    /// `s` and min `n`; 4-bit values; `w = (d·s)·q − dmin·n`.
    Q4K,
}

impl BlockFormat {
    /// Bytes of one GGML block (a super-block of 256 values for Q4K).
    fn ggml_bytes(self) -> usize {
        match self {
            BlockFormat::Q4K => 144,
            _ => self.header_bytes() + self.value_bytes(),
        }
    }

    /// Values per GGML block.
    fn ggml_values(self) -> usize {
        match self {
            BlockFormat::Q4K => 8 * BLOCK,
            _ => BLOCK,
        }
    }

    /// Bytes of the GGML block header (scale, min).
    fn header_bytes(self) -> usize {
        match self {
            BlockFormat::Q4_0 | BlockFormat::Q8_0 => 2,
            BlockFormat::Q4_1 | BlockFormat::Q4K => 4,
        }
    }

    /// Bytes of quantized values per block of 32.
    fn value_bytes(self) -> usize {
        match self {
            BlockFormat::Q8_0 => 32,
            _ => 16,
        }
    }

    /// Blocks of 32 that share one entry of `scale` (and `min`): 8 for Q4K's super-blocks.
    fn blocks_per_scale(self) -> usize {
        match self {
            BlockFormat::Q4K => 8,
            _ => 1,
        }
    }
}

/// IEEE half to single precision (exact; the same as the `vcvtph2ps` instruction).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
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

/// A Q4_0, Q4_1, Q8_0 or Q4_K matrix `[rows, cols]` repacked for the kernels (see the module
/// docs).
#[derive(Debug, Clone)]
pub struct QuantMatrix {
    format: BlockFormat,
    rows: usize,
    cols: usize,
    /// f16 scales, `[pair][block][group of the pair][ROWS]` if `paired`, otherwise
    /// `[pair][group of the pair][block][ROWS]` (Q4K: the super-blocks' `d`, by super-block).
    scale: Vec<u16>,
    /// f16 mins, laid out as `scale` (Q4_1; Q4K: the super-blocks' `dmin`; empty otherwise).
    min: Vec<u16>,
    /// Q4K only: the 6-bit block scales and mins, by block laid out as `scale`.
    block_scale: Vec<u8>,
    block_min: Vec<u8>,
    /// `[pair of groups][block][group of the pair][chunk][ROWS][4 bytes]` (if `paired`;
    /// otherwise `[pair][group of the pair][block][chunk][ROWS][4 bytes]`): chunk `c` holds
    /// columns `4c..4c+4` of the block (Q8_0, 8 chunks), or the GGML bytes `4c..4c+4` —
    /// columns `4c..4c+4` in the low nibbles, `16+4c..16+4c+4` in the high ones — (Q4, 4
    /// chunks). The 512-bit kernels take two groups at once: with their blocks side by side
    /// they read one stream of memory instead of two (a core streams one sequential run
    /// faster than two runs 16 KiB apart; the scales are paired the same way). A last odd
    /// group has a zero partner.
    values: Vec<u8>,
    /// Whether groups are stored in pairs, block by block (for [`Kernel::Avx512`]).
    paired: bool,
}

/// One group of [`ROWS`] interleaved rows.
pub(crate) struct GroupRef<'a> {
    format: BlockFormat,
    /// Bytes from one block's values to the next one's in `values` (the pair's other
    /// group lies between).
    stride: usize,
    /// Entries from one block's (or Q4K super-block's) 8 scales to the next ones' in
    /// `scale`, `min`, `block_scale` and `block_min` (`ROWS`, or twice that in pairs).
    meta: usize,
    scale: &'a [u16],
    min: &'a [u16],
    block_scale: &'a [u8],
    block_min: &'a [u8],
    values: &'a [u8],
}

impl QuantMatrix {
    /// Repacks the GGML bytes of a `[rows, cols]` matrix, laid out for the kernel this
    /// process uses ([`Kernel::detect`], or the one `CORRAL_KERNEL` names).
    pub fn from_ggml(format: BlockFormat, data: &[u8], rows: usize, cols: usize) -> Result<Self> {
        let paired = crate::layers::simd_kernel() == Kernel::Avx512;
        Self::from_ggml_laid_out(format, data, rows, cols, paired)
    }

    /// [`QuantMatrix::from_ggml`] with groups in pairs, block by block (`paired`: for the
    /// two-group 512-bit kernels, which then read one stream), or one after the other (for
    /// the one-group kernels, which would otherwise read every other run of bytes). Every
    /// kernel computes the same results on either layout.
    pub(crate) fn from_ggml_laid_out(
        format: BlockFormat,
        data: &[u8],
        rows: usize,
        cols: usize,
        paired: bool,
    ) -> Result<Self> {
        let per_block = format.ggml_values();
        if !cols.is_multiple_of(per_block) {
            return Err(ModelError::InvalidConfig(format!(
                "{format:?} matrix with {cols} columns (not a multiple of {per_block})"
            )));
        }
        let bpr = cols / BLOCK;
        if data.len() != rows * (cols / per_block) * format.ggml_bytes() {
            return Err(ModelError::InvalidConfig(format!(
                "{format:?} data of {} bytes for a {rows}x{cols} matrix",
                data.len()
            )));
        }
        if format == BlockFormat::Q4K {
            return Ok(Self::from_q4k(data, rows, cols, paired));
        }
        let vb = format.value_bytes();
        // Rows past `rows` (padding of the last group, and a last odd group's zero partner:
        // whole pairs) stay zero: scale 0, so they add 0.
        let groups = rows.div_ceil(ROWS).div_ceil(2) * 2;
        let mut scale = vec![0u16; groups * bpr * ROWS];
        let mut min = match format {
            BlockFormat::Q4_1 => vec![0u16; groups * bpr * ROWS],
            _ => Vec::new(),
        };
        let mut values = vec![0u8; groups * bpr * ROWS * vb];
        let gb = format.ggml_bytes();
        // Pairs of groups are independent: repack them in parallel (this also spreads the
        // page faults of the fresh allocation over the threads).
        let group_bytes = |g: usize| &data[(g * ROWS * bpr * gb).min(data.len())..];
        values
            .par_chunks_mut(2 * bpr * ROWS * vb)
            .zip(scale.par_chunks_mut(2 * bpr * ROWS))
            .enumerate()
            .for_each(|(pair, (values, scale))| {
                for h in 0..2 {
                    let src_rows = group_bytes(2 * pair + h).chunks_exact(bpr * gb).take(ROWS);
                    for (i, row) in src_rows.enumerate() {
                        for (b, block) in row.chunks_exact(gb).enumerate() {
                            let at = Self::block_at(paired, bpr, h, b);
                            scale[at * ROWS + i] = u16::from_le_bytes([block[0], block[1]]);
                            let src = &block[format.header_bytes()..];
                            for c in 0..vb / 4 {
                                let dst = at * ROWS * vb + c * 4 * ROWS + i * 4;
                                values[dst..dst + 4].copy_from_slice(&src[4 * c..4 * c + 4]);
                            }
                        }
                    }
                }
            });
        if format == BlockFormat::Q4_1 {
            for (index, block) in data.chunks_exact(gb).enumerate() {
                let (r, b) = (index / bpr, index % bpr);
                let g = r / ROWS;
                let at = (g / 2) * 2 * bpr + Self::block_at(paired, bpr, g % 2, b);
                min[at * ROWS + r % ROWS] = u16::from_le_bytes([block[2], block[3]]);
            }
        }
        Ok(Self {
            format,
            rows,
            cols,
            scale,
            min,
            block_scale: Vec::new(),
            block_min: Vec::new(),
            values,
            paired,
        })
    }

    /// Where block `b` of group `h` (0 or 1) of a pair lies among the pair's blocks.
    fn block_at(paired: bool, bpr: usize, h: usize, b: usize) -> usize {
        match paired {
            true => 2 * b + h,
            false => h * bpr + b,
        }
    }

    /// Repacks Q4K super-blocks (sizes checked by the caller): the super-blocks' `d` and
    /// `dmin` stay f16, the packed 6-bit block scales and mins become one byte each, and the
    /// values of each block of 32 are laid out as Q4_1's (columns `e` and `e + 16` in one
    /// byte), so that the Q4 kernels read them.
    fn from_q4k(data: &[u8], rows: usize, cols: usize, paired: bool) -> Self {
        let format = BlockFormat::Q4K;
        let (bpr, spr) = (cols / BLOCK, cols / (8 * BLOCK));
        // Whole pairs (a last odd group has a zero partner).
        let groups = rows.div_ceil(ROWS).div_ceil(2) * 2;
        let mut scale = vec![0u16; groups * spr * ROWS];
        let mut min = vec![0u16; groups * spr * ROWS];
        let mut block_scale = vec![0u8; groups * bpr * ROWS];
        let mut block_min = vec![0u8; groups * bpr * ROWS];
        let mut values = vec![0u8; groups * bpr * ROWS * 16];
        let row_bytes = spr * format.ggml_bytes();
        values
            .par_chunks_mut(2 * bpr * ROWS * 16)
            .zip(
                scale
                    .par_chunks_mut(2 * spr * ROWS)
                    .zip(min.par_chunks_mut(2 * spr * ROWS)),
            )
            .zip(
                block_scale
                    .par_chunks_mut(2 * bpr * ROWS)
                    .zip(block_min.par_chunks_mut(2 * bpr * ROWS)),
            )
            .enumerate()
            .for_each(
                |(pair, ((values, (scale, min)), (block_scale, block_min)))| {
                    for h in 0..2 {
                        let first = ((2 * pair + h) * ROWS * row_bytes).min(data.len());
                        let src_rows = data[first..].chunks_exact(row_bytes).take(ROWS);
                        for (i, row) in src_rows.enumerate() {
                            for (sb, block) in row.chunks_exact(format.ggml_bytes()).enumerate() {
                                let at = Self::block_at(paired, spr, h, sb) * ROWS + i;
                                scale[at] = u16::from_le_bytes([block[0], block[1]]);
                                min[at] = u16::from_le_bytes([block[2], block[3]]);
                                let (packed, qs) = (&block[4..16], &block[16..144]);
                                for j in 0..8 {
                                    let b = sb * 8 + j;
                                    let (s, m) = q4k_scale_min(packed, j);
                                    let at = Self::block_at(paired, bpr, h, b);
                                    block_scale[at * ROWS + i] = s;
                                    block_min[at * ROWS + i] = m;
                                    // Block j's values: the low (even j) or high (odd j) nibbles
                                    // of the 32 bytes of its pair.
                                    let two = &qs[32 * (j / 2)..32 * (j / 2) + 32];
                                    let shift = 4 * (j % 2);
                                    let bytes: [u8; 16] = std::array::from_fn(|e| {
                                        ((two[e] >> shift) & 0x0f)
                                            | (((two[e + 16] >> shift) & 0x0f) << 4)
                                    });
                                    for c in 0..4 {
                                        let dst = at * ROWS * 16 + c * 4 * ROWS + i * 4;
                                        values[dst..dst + 4]
                                            .copy_from_slice(&bytes[4 * c..4 * c + 4]);
                                    }
                                }
                            }
                        }
                    }
                },
            );
        Self {
            format,
            rows,
            cols,
            scale,
            min,
            block_scale,
            block_min,
            values,
            paired,
        }
    }

    /// The block format.
    pub fn format(&self) -> BlockFormat {
        self.format
    }

    /// `[rows, cols]`.
    pub fn dims(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// Bytes of weights held (what a matmul reads).
    pub fn memory_bytes(&self) -> usize {
        self.values.len()
            + 2 * (self.scale.len() + self.min.len())
            + self.block_scale.len()
            + self.block_min.len()
    }

    fn blocks_per_row(&self) -> usize {
        self.cols / BLOCK
    }

    // Inlined: built for every pair of groups of every matmul, a call returning the view
    // through memory cost about 4% of a batched decode step.
    #[inline(always)]
    fn group(&self, g: usize) -> GroupRef<'_> {
        let bpr = self.blocks_per_row();
        let spr = bpr / self.format.blocks_per_scale();
        // Each array from this group's first block to the end of its pair's blocks.
        let (pair, h) = (g / 2, g % 2);
        let span = |per_row: usize, unit: usize| {
            let start = (pair * 2 * per_row + Self::block_at(self.paired, per_row, h, 0)) * unit;
            start..(pair + 1) * 2 * per_row * unit
        };
        let vb = self.format.value_bytes();
        let (blocks, scales) = (span(bpr, ROWS), span(spr, ROWS));
        let step = if self.paired { 2 * ROWS } else { ROWS };
        GroupRef {
            format: self.format,
            stride: step * vb,
            meta: step,
            scale: &self.scale[scales.clone()],
            min: self.min.get(scales).unwrap_or(&[]),
            block_scale: self.block_scale.get(blocks.clone()).unwrap_or(&[]),
            block_min: self.block_min.get(blocks).unwrap_or(&[]),
            values: &self.values[span(bpr, ROWS * vb)],
        }
    }

    /// The dequantized matrix, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.rows * self.cols);
        for r in 0..self.rows {
            self.dequantize_row(r, &mut out);
        }
        out
    }

    /// The dequantized rows `ids` (e.g. token embeddings), row-major.
    pub fn dequantize_rows(&self, ids: &[u32]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(ids.len() * self.cols);
        for &id in ids {
            if id as usize >= self.rows {
                return Err(ModelError::TokenOutOfRange {
                    id,
                    vocab_size: self.rows,
                });
            }
            self.dequantize_row(id as usize, &mut out);
        }
        Ok(out)
    }

    /// Appends row `r`, computed as candle computes it (`d·q + m`, `d·(q − 8)`, `d·q`).
    fn dequantize_row(&self, r: usize, out: &mut Vec<f32>) {
        let group = self.group(r / ROWS);
        let i = r % ROWS;
        for b in 0..self.blocks_per_row() {
            let q = group.block_values(b, i);
            let (d, m) = group.scales(b, i);
            match self.format {
                BlockFormat::Q4_0 => out.extend(q.iter().map(|&q| (q - 8) as f32 * d)),
                BlockFormat::Q4_1 | BlockFormat::Q4K => {
                    out.extend(q.iter().map(|&q| d * q as f32 + m))
                }
                BlockFormat::Q8_0 => out.extend(q.iter().map(|&q| d * q as f32)),
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
        Self::matmul_many_of(mats, Activations::Given(x), kernel)
    }

    /// [`QuantMatrix::matmul_many`] of activations that are given or produced (then each task
    /// quantizes the rows it produced).
    pub(crate) fn matmul_many_of(
        mats: &[&QuantMatrix],
        x: Activations<'_>,
        kernel: Kernel,
    ) -> Result<Vec<Vec<f32>>> {
        let Some(cols) = mats.first().map(|m| m.cols) else {
            return Ok(vec![]);
        };
        let tokens = match x {
            Activations::Given(x) if x.len().is_multiple_of(cols) => Some(x.len() / cols),
            Activations::Given(_) => None,
            Activations::Produced { rows, .. } => Some(rows),
        };
        let Some(tokens) = tokens.filter(|_| mats.iter().all(|m| m.cols == cols)) else {
            return Err(ModelError::InvalidRequest(format!(
                "activation of {} values for matrices of {:?} columns",
                x.value_count(cols),
                mats.iter().map(|m| m.cols).collect::<Vec<_>>()
            )));
        };
        if !kernel.is_supported() {
            return Err(ModelError::InvalidRequest(format!(
                "kernel {kernel:?} is not supported by this CPU"
            )));
        }
        if tokens == 0 {
            return Ok(mats.iter().map(|_| Vec::new()).collect());
        }
        let quantized = Q8Activations::new(x, tokens, cols, kernel);
        // Every token's activation slices, made once for all tasks, groups and tiles.
        let acts: Vec<ActRef<'_>> = (0..tokens).map(|t| quantized.row(t)).collect();
        // Tasks are runs of groups of one matrix; each writes its own columns of every token
        // row straight into that matrix's output.
        let total_groups: usize = mats.iter().map(|m| m.rows.div_ceil(ROWS)).sum();
        // Even, so that the two-group kernels take the pairs that lie side by side.
        let per_task = (total_groups / (4 * rayon::current_num_threads()).max(1))
            .clamp(2, 32)
            .next_multiple_of(2);
        let tasks: Vec<(usize, usize)> = mats
            .iter()
            .enumerate()
            .flat_map(|(i, m)| {
                (0..m.rows.div_ceil(ROWS))
                    .step_by(per_task)
                    .map(move |g| (i, g))
            })
            .collect();
        // Left unfilled (tasks write every element; zeroing first was a pass over the outputs).
        let mut outs: Vec<Vec<f32>> = mats
            .iter()
            .map(|m| Vec::with_capacity(tokens * m.rows))
            .collect();
        let columns: Vec<ColumnWriter<'_>> = outs
            .iter_mut()
            .zip(mats)
            .map(|(out, m)| ColumnWriter::new(out, tokens * m.rows))
            .collect();
        crate::team::for_each_task(tasks.len(), |k| {
            let (i, first) = tasks[k];
            let m = mats[i];
            let last = (first + per_task).min(m.rows.div_ceil(ROWS));
            // SAFETY: the tasks' group ranges are disjoint, so are the columns they write.
            unsafe { m.groups_times(first..last, &acts, kernel, &columns[i]) };
        });
        drop(columns);
        for (out, m) in outs.iter_mut().zip(mats) {
            // SAFETY: the tasks cover every group of every matrix, and each writes its
            // groups' columns of every token row: all `tokens · rows` elements.
            unsafe { out.set_len(tokens * m.rows) };
        }
        drop(acts);
        quantized.recycle();
        Ok(outs)
    }

    /// Groups `range` times every token of `acts` (one row per token), written into those groups' columns of
    /// `out` (`[tokens, rows]`; the padding rows of the last group are dropped).
    ///
    /// # Safety
    /// No other thread writes these columns of `out` meanwhile.
    unsafe fn groups_times(
        &self,
        range: std::ops::Range<usize>,
        acts: &[ActRef<'_>],
        kernel: Kernel,
        out: &ColumnWriter<'_>,
    ) {
        #[cfg(target_arch = "x86_64")]
        if kernel == Kernel::Avx512 {
            return self.groups_times_avx512(range, acts, out);
        }
        self.groups_times_with(range, acts, kernel, out)
    }

    /// [`QuantMatrix::groups_times`] compiled with the 512-bit kernels' features, so that
    /// they are inlined into the loop over pairs and tiles (results straight from registers
    /// to the output, the groups' views never through the stack).
    ///
    /// # Safety
    /// As `groups_times`; the CPU has the features (`matmul_many` checked the kernel).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn groups_times_avx512(
        &self,
        range: std::ops::Range<usize>,
        acts: &[ActRef<'_>],
        out: &ColumnWriter<'_>,
    ) {
        self.groups_times_with(range, acts, Kernel::Avx512, out)
    }

    /// The body of [`QuantMatrix::groups_times`].
    #[inline(always)]
    unsafe fn groups_times_with(
        &self,
        range: std::ops::Range<usize>,
        acts: &[ActRef<'_>],
        kernel: Kernel,
        out: &ColumnWriter<'_>,
    ) {
        let (rows, tokens) = (self.rows, acts.len());
        let mut g = range.start;
        while g < range.end {
            let column = g * ROWS;
            let mut write = |t: usize, ys: &[[f32; ROWS]]| {
                let ys = ys.as_flattened();
                let kept = ys.len().min(rows - column);
                // SAFETY: these columns belong to this call (the caller's promise).
                unsafe { out.write(t * rows + column, &ys[..kept]) };
            };
            let (first, second) = (self.group(g), self.group((g + 1).min(range.end - 1)));
            if kernel == Kernel::Avx512 && g + 1 < range.end {
                // Two groups at once in 512-bit registers, 8 tokens at a time.
                let pair = [&first, &second];
                let t = each_tile::<WIDE_TILE, 2>(0..tokens, acts, &mut write, |x| {
                    kernels::pair_tile(kernel, pair, x)
                });
                let t = each_tile::<TILE, 2>(t..tokens, acts, &mut write, |x| {
                    kernels::pair_tile(kernel, pair, x)
                });
                each_tile::<1, 2>(t..tokens, acts, &mut write, |x| {
                    kernels::pair_tile(kernel, pair, x)
                });
                g += 2;
            } else {
                let t = each_tile::<TILE, 1>(0..tokens, acts, &mut write, |x| {
                    kernels::group_tile(kernel, &first, x).map(|y| [y])
                });
                each_tile::<1, 1>(t..tokens, acts, &mut write, |x| {
                    kernels::group_tile(kernel, &first, x).map(|y| [y])
                });
                g += 1;
            }
        }
    }
}

/// A matrix output that the tasks of one region fill concurrently, each in columns no other
/// task writes (a run of groups): a raw view, because the columns of a row-major output are
/// not disjoint slices.
struct ColumnWriter<'a> {
    at: *mut f32,
    len: usize,
    _out: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: writers touch disjoint elements (the contract of `write`).
unsafe impl Sync for ColumnWriter<'_> {}

impl<'a> ColumnWriter<'a> {
    /// A writer of the first `len` elements of `out`'s buffer (its capacity).
    fn new(out: &'a mut Vec<f32>, len: usize) -> Self {
        assert!(len <= out.capacity(), "output buffer too small");
        Self {
            at: out.as_mut_ptr(),
            len,
            _out: std::marker::PhantomData,
        }
    }

    /// Copies `values` to `start..start + values.len()` (bounds checked).
    ///
    /// # Safety
    /// No other thread reads or writes those elements meanwhile.
    unsafe fn write(&self, start: usize, values: &[f32]) {
        assert!(
            start + values.len() <= self.len,
            "output written out of bounds"
        );
        // A whole pair of groups (the common case) as one fixed-size copy: a copy of a
        // length known only at run time is a call to `memmove`, for 64 bytes.
        if let Ok(pair) = <&[f32; 2 * ROWS]>::try_from(values) {
            self.at
                .add(start)
                .cast::<[f32; 2 * ROWS]>()
                .write_unaligned(*pair);
        } else {
            std::ptr::copy_nonoverlapping(values.as_ptr(), self.at.add(start), values.len());
        }
    }
}

/// Runs a kernel over the whole tiles of `T` tokens in `tokens` (rows of `acts`) and hands
/// each token's `N` groups of row results to `write`; returns the first token left over
/// (fewer than `T`).
fn each_tile<const T: usize, const N: usize>(
    tokens: std::ops::Range<usize>,
    acts: &[ActRef<'_>],
    write: &mut impl FnMut(usize, &[[f32; ROWS]]),
    mut kernel: impl FnMut(&[ActRef<'_>; T]) -> [[[f32; ROWS]; N]; T],
) -> usize {
    let mut t = tokens.start;
    while t + T <= tokens.end {
        let Ok(tile) = <&[ActRef<'_>; T]>::try_from(&acts[t..t + T]) else {
            unreachable!("a slice of T rows")
        };
        for (k, ys) in kernel(tile).iter().enumerate() {
            write(t + k, ys);
        }
        t += T;
    }
    t
}

/// The 6-bit scale and min of block `j` (0..8) from a Q4K super-block's 12 packed bytes
/// (GGML's `get_scale_min_k4`).
fn q4k_scale_min(packed: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (packed[j] & 63, packed[j + 4] & 63)
    } else {
        (
            (packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4),
            (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4),
        )
    }
}

impl GroupRef<'_> {
    /// Row `i`'s scale `d` and offset `m` of block `b` (`w = d·q + m`; `m` is 0 for Q8_0 and
    /// `−8·d` for Q4_0). Exact: Q4K's `d·s` and `dmin·n` fit in f32's mantissa.
    fn scales(&self, b: usize, i: usize) -> (f32, f32) {
        match self.format {
            BlockFormat::Q4K => {
                let at = (b / 8) * self.meta + i;
                let d = f16_to_f32(self.scale[at]) * self.block_scale[b * self.meta + i] as f32;
                let m = f16_to_f32(self.min[at]) * self.block_min[b * self.meta + i] as f32;
                (d, -m)
            }
            format => {
                let d = f16_to_f32(self.scale[b * self.meta + i]);
                let m = match format {
                    BlockFormat::Q4_0 => -8.0 * d,
                    BlockFormat::Q4_1 => f16_to_f32(self.min[b * self.meta + i]),
                    _ => 0.0,
                };
                (d, m)
            }
        }
    }

    /// Whether the group holds `blocks` blocks of values and scales (what the kernels read,
    /// unchecked, for a row of `blocks` blocks).
    fn holds(&self, blocks: usize) -> bool {
        let bytes = ROWS * self.format.value_bytes();
        let supers = blocks / self.format.blocks_per_scale();
        let holds = |len: usize, entries: usize, step: usize, unit: usize| {
            entries == 0 || len >= (entries - 1) * step + unit
        };
        let q4k = self.format == BlockFormat::Q4K;
        blocks.is_multiple_of(self.format.blocks_per_scale())
            && holds(self.values.len(), blocks, self.stride, bytes)
            && holds(self.scale.len(), supers, self.meta, ROWS)
            && (self.format != BlockFormat::Q4_1 || holds(self.min.len(), blocks, self.meta, ROWS))
            && (!q4k || holds(self.min.len(), supers, self.meta, ROWS))
            && (!q4k || holds(self.block_scale.len(), blocks, self.meta, ROWS))
            && (!q4k || holds(self.block_min.len(), blocks, self.meta, ROWS))
    }

    /// The 32 quantized values of row `i` in block `b` (4-bit values as 0..=15).
    fn block_values(&self, b: usize, i: usize) -> [i32; BLOCK] {
        let vb = self.format.value_bytes();
        let base = &self.values[b * self.stride..b * self.stride + ROWS * vb];
        let byte = |c: usize, j: usize| base[c * 4 * ROWS + i * 4 + j];
        std::array::from_fn(|e| match self.format {
            BlockFormat::Q8_0 => byte(e / 4, e % 4) as i8 as i32,
            _ if e < 16 => (byte(e / 4, e % 4) & 0x0f) as i32,
            _ => (byte((e - 16) / 4, e % 4) >> 4) as i32,
        })
    }
}

/// The activation rows of a matmul. Not `Clone`: produced rows are produced exactly once
/// (a producer may have effects, such as appending keys and values to a cache).
pub(crate) enum Activations<'a> {
    /// `[tokens, cols]`, row-major.
    Given(&'a [f32]),
    /// `rows` rows that a row-wise step (a norm, SwiGLU's gate, attention) writes:
    /// `produce(range, out)` writes rows `range`, row-major, into `out`. Each task of the
    /// quantization produces its rows and quantizes them while they are in its cache — one
    /// parallel region for both, where there were two.
    Produced {
        rows: usize,
        produce: &'a (dyn Fn(std::ops::Range<usize>, &mut [f32]) + Sync),
    },
}

impl<'a> Activations<'a> {
    /// How many values the rows hold (for error messages).
    fn value_count(&self, cols: usize) -> usize {
        match self {
            Activations::Given(x) => x.len(),
            Activations::Produced { rows, .. } => rows * cols,
        }
    }

    /// The rows as f32 values (produced rows in runs of rows, as
    /// [`crate::team::rows_in_parallel`] cuts them), for matmuls that are not corral's.
    pub(crate) fn materialize(self, cols: usize) -> std::borrow::Cow<'a, [f32]> {
        match self {
            Activations::Given(x) => std::borrow::Cow::Borrowed(x),
            Activations::Produced { rows, produce } => {
                std::borrow::Cow::Owned(crate::team::rows_in_parallel(rows, cols, produce))
            }
        }
    }
}

/// The largest 8-bit values buffer (`q`; the per-block buffers add about a third) a
/// thread keeps between matmuls: 16 rows of 16k columns.
const SPARE_Q8_BYTES: usize = 1 << 18;

thread_local! {
    /// Buffers of a [`Q8Activations`] that this thread used before.
    static SPARE_Q8: std::cell::RefCell<Option<Q8Activations>> = const { std::cell::RefCell::new(None) };
    /// Each thread's scratch space for a run of produced rows (at most 8) before they are
    /// quantized.
    static PRODUCED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Activations quantized to 8 bits per block of 32.
pub(crate) struct Q8Activations {
    cols: usize,
    scale: Vec<f32>,
    /// `scale · Σ p` per block.
    sum: Vec<f32>,
    /// `Σ p` per block.
    qsum: Vec<i32>,
    q: Vec<i8>,
}

/// One token's quantized activations.
pub(crate) struct ActRef<'a> {
    scale: &'a [f32],
    sum: &'a [f32],
    qsum: &'a [i32],
    q: &'a [i8],
}

/// A run of rows of [`Q8Activations`] being written.
struct Q8RowsMut<'a> {
    scale: &'a mut [f32],
    sum: &'a mut [f32],
    qsum: &'a mut [i32],
    q: &'a mut [i8],
}

impl Q8RowsMut<'_> {
    /// Quantizes `x` (as many values as the run holds) into the run.
    fn quantize(&mut self, x: &[f32], kernel: Kernel) {
        let blocks = x.chunks_exact(BLOCK).zip(self.q.chunks_exact_mut(BLOCK));
        let outs = self
            .scale
            .iter_mut()
            .zip(&mut *self.sum)
            .zip(&mut *self.qsum);
        for ((x, q), ((scale, sum), qsum)) in blocks.zip(outs) {
            let (d, s) = kernels::quantize_block(kernel, x, q);
            (*scale, *sum, *qsum) = (d, d * s as f32, s);
        }
    }
}

impl Q8Activations {
    /// Quantizes each block of 32 of the `rows` rows of `x`: `s = max|x|/127`,
    /// `p = round_half_even(x/s)` (multiplying by `1/s`), in runs of rows
    /// ([`crate::team::row_runs`]: tasks of one parallel region when there are two rows per
    /// thread or more — several sequences decoding together, a prompt). Produced rows are
    /// produced by the task that quantizes them.
    fn new(x: Activations<'_>, rows: usize, cols: usize, kernel: Kernel) -> Self {
        let per_row = cols / BLOCK;
        let mut this = Self::with_size(rows, cols);
        let (per, parallel) = crate::team::row_runs(rows);
        let mut runs: Vec<Q8RowsMut<'_>> = this
            .scale
            .chunks_mut((per * per_row).max(1))
            .zip(this.sum.chunks_mut((per * per_row).max(1)))
            .zip(this.qsum.chunks_mut((per * per_row).max(1)))
            .zip(this.q.chunks_mut((per * cols).max(1)))
            .map(|(((scale, sum), qsum), q)| Q8RowsMut {
                scale,
                sum,
                qsum,
                q,
            })
            .collect();
        let quantize_run = |i: usize, run: &mut Q8RowsMut<'_>| {
            let first = i * per;
            let range = first..first + run.q.len() / cols.max(1);
            match &x {
                Activations::Given(x) => {
                    run.quantize(&x[range.start * cols..range.end * cols], kernel)
                }
                Activations::Produced { produce, .. } => {
                    // Taken out of the thread's slot while in use (should `produce` itself
                    // quantize, it finds the slot empty instead of borrowed). Not cleared:
                    // `produce` writes every value.
                    let mut scratch = PRODUCED.with_borrow_mut(std::mem::take);
                    let len = range.len() * cols;
                    if scratch.len() < len {
                        scratch.resize(len, 0.0);
                    }
                    produce(range, &mut scratch[..len]);
                    run.quantize(&scratch[..len], kernel);
                    PRODUCED.with_borrow_mut(|slot| *slot = scratch);
                }
            }
        };
        crate::team::for_each_run(&mut runs, parallel, quantize_run);
        drop(runs);
        this
    }

    /// Buffers for `rows` rows of `cols` columns: this thread's from an earlier call, if
    /// any. Every value is written before it is read, so only what they lack is allocated
    /// (and zeroed) — with a few sequences decoding, allocating and zeroing them was about
    /// 1% of a step, on the leader alone.
    fn with_size(rows: usize, cols: usize) -> Self {
        let per_row = cols / BLOCK;
        let mut this = SPARE_Q8
            .with_borrow_mut(Option::take)
            .unwrap_or_else(|| Self {
                cols,
                scale: Vec::new(),
                sum: Vec::new(),
                qsum: Vec::new(),
                q: Vec::new(),
            });
        this.cols = cols;
        this.scale.resize(rows * per_row, 0.0);
        this.sum.resize(rows * per_row, 0.0);
        this.qsum.resize(rows * per_row, 0);
        this.q.resize(rows * cols, 0);
        this
    }

    /// Keeps the buffers for this thread's next call, unless they are large (a long
    /// prompt's).
    fn recycle(self) {
        if self.q.capacity() <= SPARE_Q8_BYTES {
            SPARE_Q8.with_borrow_mut(|spare| *spare = Some(self));
        }
    }

    fn row(&self, t: usize) -> ActRef<'_> {
        let bpr = self.cols / BLOCK;
        ActRef {
            scale: &self.scale[t * bpr..(t + 1) * bpr],
            sum: &self.sum[t * bpr..(t + 1) * bpr],
            qsum: &self.qsum[t * bpr..(t + 1) * bpr],
            q: &self.q[t * self.cols..(t + 1) * self.cols],
        }
    }
}
