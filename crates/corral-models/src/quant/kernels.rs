//! The block dot-product kernels: one group of [`ROWS`] interleaved weight rows times `T`
//! quantized activation rows. Each kernel computes the same exact integer block sums and the
//! same float steps in the same order as [`group_scalar`], the portable reference.

use super::{ActRef, BlockFormat, GroupRef, BLOCK, ROWS};

/// The SIMD kernel used for the block dot products.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Portable Rust.
    Scalar,
    /// x86-64 AVX2 + FMA + F16C.
    Avx2,
    /// x86-64 AVX-512 VNNI (256-bit, with AVX-512 VL) + FMA + F16C.
    Avx512Vnni,
    /// [`Kernel::Avx512Vnni`] plus AVX-512 F and BW: two groups (16 rows) at once in 512-bit
    /// registers.
    Avx512,
}

impl Kernel {
    /// The fastest kernel this CPU supports.
    pub fn detect() -> Self {
        [Kernel::Avx512, Kernel::Avx512Vnni, Kernel::Avx2]
            .into_iter()
            .find(|k| k.is_supported())
            .unwrap_or(Kernel::Scalar)
    }

    /// The kernel named `name` (`scalar`, `avx2`, `avx512vnni`, `avx512`), as the
    /// `CORRAL_KERNEL` variable and the benchmark examples name them.
    pub fn from_name(name: &str) -> Option<Kernel> {
        match name {
            "scalar" => Some(Kernel::Scalar),
            "avx2" => Some(Kernel::Avx2),
            "avx512vnni" => Some(Kernel::Avx512Vnni),
            "avx512" => Some(Kernel::Avx512),
            _ => None,
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
                    && is_x86_feature_detected!("f16c")
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Vnni => {
                Kernel::Avx2.is_supported()
                    && is_x86_feature_detected!("avx512vnni")
                    && is_x86_feature_detected!("avx512vl")
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                Kernel::Avx512Vnni.is_supported()
                    && is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx512bw")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }
}

/// `[token][row]` dot products of one group with `T` tokens.
pub(super) fn group_tile<const T: usize>(
    kernel: Kernel,
    group: &GroupRef<'_>,
    x: &[ActRef<'_>; T],
) -> [[f32; ROWS]; T] {
    debug_assert!(x.iter().all(|a| a.q.len() == BLOCK * a.scale.len()));
    debug_assert!(group.holds(x[0].scale.len()));
    // The SIMD kernels read every token's scales and sums through raw pointers.
    let blocks = x[0].scale.len();
    assert!(x
        .iter()
        .all(|a| a.scale.len() == blocks && a.sum.len() == blocks));
    match (kernel, group.format) {
        // SAFETY (all): `matmul_many` checked that the CPU supports the kernel's features,
        // and the slices have the lengths asserted above.
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx512Vnni | Kernel::Avx512, BlockFormat::Q8_0) => unsafe {
            x86::q8_vnni(group, x)
        },
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx512Vnni | Kernel::Avx512, _) => unsafe { x86::q4_vnni(group, x) },
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx2, BlockFormat::Q8_0) => unsafe { x86::q8_avx2(group, x) },
        #[cfg(target_arch = "x86_64")]
        (Kernel::Avx2, _) => unsafe { x86::q4_avx2(group, x) },
        _ => std::array::from_fn(|t| group_scalar(group, &x[t])),
    }
}

/// `[token][group][row]` dot products of two groups of the same matrix with `T` tokens: with
/// [`Kernel::Avx512`] in one pass of 512-bit registers, otherwise one group after the other.
#[inline]
pub(super) fn pair_tile<const T: usize>(
    kernel: Kernel,
    groups: [&GroupRef<'_>; 2],
    x: &[ActRef<'_>; T],
) -> [[[f32; ROWS]; 2]; T] {
    let [a, b] = groups;
    let blocks = x.first().map_or(0, |t| t.scale.len());
    debug_assert!(a.holds(blocks) && b.holds(blocks));
    #[cfg(target_arch = "x86_64")]
    if kernel == Kernel::Avx512 && a.format == b.format {
        // The kernels read every token's activations through raw pointers: a few length
        // comparisons per token, checked per tile (as `group_tile` does).
        assert!(x.iter().all(|t| t.scale.len() == blocks
            && t.sum.len() == blocks
            && t.qsum.len() == blocks
            && t.q.len() == BLOCK * blocks));
        // SAFETY: `matmul_many` checked the CPU's features; groups of one matrix hold all
        // of its blocks (`QuantMatrix::group`; asserted in debug builds only, as in
        // `group_tile`: `holds` computes an extent per array, too much for every tile).
        return match a.format {
            BlockFormat::Q8_0 => unsafe { x86::q8_vnni512(a, b, x) },
            _ => unsafe { x86::q4_vnni512(a, b, x) },
        };
    }
    let (ya, yb) = (group_tile(kernel, a, x), group_tile(kernel, b, x));
    std::array::from_fn(|t| [ya[t], yb[t]])
}

/// Quantizes one block of 32 activations into `q`: returns the scale `max|x|/127` and `Σ q`.
pub(super) fn quantize_block(kernel: Kernel, x: &[f32], q: &mut [i8]) -> (f32, i32) {
    debug_assert!(x.len() == BLOCK && q.len() == BLOCK);
    #[cfg(target_arch = "x86_64")]
    if kernel != Kernel::Scalar && x.len() == BLOCK && q.len() == BLOCK {
        // SAFETY: `matmul_many` checked the CPU's features; both blocks hold 32 values.
        return unsafe { x86::quantize_block(x, q) };
    }
    let _ = kernel;
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
    let mut sum = 0;
    for (q, &v) in q.iter_mut().zip(x) {
        *q = (v * inv).round_ties_even().clamp(-127.0, 127.0) as i8;
        sum += *q as i32;
    }
    (d, sum)
}

/// Portable reference for one token: per block, the exact integer sum `Σ q·p`, then
/// `acc = (d·s)·sum + acc` and `offset = m·(s·Σp) + offset` (both fused), result
/// `acc + offset` (just `acc` for Q8_0).
fn group_scalar(group: &GroupRef<'_>, x: &ActRef<'_>) -> [f32; ROWS] {
    std::array::from_fn(|i| {
        let (mut acc, mut offset) = (0f32, 0f32);
        for b in 0..x.scale.len() {
            let q = group.block_values(b, i);
            let p = &x.q[b * BLOCK..(b + 1) * BLOCK];
            let sum: i32 = q.iter().zip(p).map(|(&q, &p)| q * p as i32).sum();
            let (d, m) = group.scales(b, i);
            acc = (d * x.scale[b]).mul_add(sum as f32, acc);
            if group.format != BlockFormat::Q8_0 {
                offset = m.mul_add(x.sum[b], offset);
            }
        }
        match group.format {
            BlockFormat::Q8_0 => acc,
            _ => acc + offset,
        }
    })
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::{ActRef, BlockFormat, GroupRef, BLOCK, ROWS};
    use std::arch::x86_64::*;

    /// Four activation bytes (columns `4c..4c+4` of block `b`) broadcast to every lane.
    #[inline(always)]
    unsafe fn broadcast(x: &ActRef<'_>, b: usize, c: usize) -> __m256i {
        let at = x.q.as_ptr().add(b * BLOCK + 4 * c) as *const i32;
        _mm256_set1_epi32(at.read_unaligned())
    }

    /// The group's 8 f16 values (scales or mins) at entry `at` as f32.
    #[inline(always)]
    unsafe fn halves(h: &[u16], at: usize) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(h.as_ptr().add(at) as *const __m128i))
    }

    /// The 8 rows' scales `d` and offsets `m` of block `b` (see `GroupRef::scales`). The
    /// kernels call it with a constant `format` inside a loop of their own per format, so the
    /// match folds away.
    #[inline(always)]
    unsafe fn block_scales(
        format: BlockFormat,
        group: &GroupRef<'_>,
        b: usize,
    ) -> (__m256, Option<__m256>) {
        let at = b * group.meta;
        match format {
            BlockFormat::Q4_0 => {
                let d = halves(group.scale, at);
                (d, Some(_mm256_mul_ps(d, _mm256_set1_ps(-8.0))))
            }
            BlockFormat::Q4_1 => (halves(group.scale, at), Some(halves(group.min, at))),
            BlockFormat::Q8_0 => (halves(group.scale, at), None),
            BlockFormat::Q4K => {
                let bytes = |v: &[u8]| {
                    let eight = _mm_loadl_epi64(v.as_ptr().add(at) as *const __m128i);
                    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(eight))
                };
                let sup = (b / 8) * group.meta;
                let d = _mm256_mul_ps(halves(group.scale, sup), bytes(group.block_scale));
                let m = _mm256_mul_ps(halves(group.min, sup), bytes(group.block_min));
                (d, Some(_mm256_sub_ps(_mm256_setzero_ps(), m)))
            }
        }
    }

    /// Chunk `k` of a Q4 block: (columns `4k..4k+4`, columns `16+4k..16+4k+4`) of 8 rows.
    #[inline(always)]
    unsafe fn nibbles(values: *const u8, k: usize) -> (__m256i, __m256i) {
        let raw = _mm256_loadu_si256(values.add(32 * k) as *const __m256i);
        let mask = _mm256_set1_epi8(0x0f);
        (
            _mm256_and_si256(raw, mask),
            _mm256_and_si256(_mm256_srli_epi16(raw, 4), mask),
        )
    }

    /// The block loops of the one-group kernels: `$isum` gives a block's exact integer sums
    /// (`[__m256i; T]`) from the block's values (`$values`, `$vb` bytes per row) and index
    /// (`$b`), for the formats listed. The float steps are those of `group_scalar`, split in two passes that keep
    /// its order per accumulator: first `acc = (d·s)·sum + acc` with the integer sums, then
    /// `offset = m·(s·Σp) + offset` (the offsets depend on no integer sum, and out of the
    /// first loop they leave its registers to the sums). One copy of the loops per format,
    /// so the per-block scale code has no branch; activations are read through raw
    /// pointers (every slice holds `blocks` entries, asserted by `group_tile`).
    macro_rules! group_blocks {
        ($group:expr, $x:expr, $vb:expr, [$($format:ident),+], |$values:ident, $b:ident| $isum:expr) => {{
            let (group, x) = ($group, $x);
            macro_rules! with_format {
                ($fmt:expr) => {{
                    let blocks = x[0].scale.len();
                    let scale: [*const f32; T] = std::array::from_fn(|t| x[t].scale.as_ptr());
                    let mut acc = [_mm256_setzero_ps(); T];
                    for $b in 0..blocks {
                        let $values = group.values.as_ptr().add($b * group.stride);
                        prefetch($values, ROWS * $vb, false);
                        let isum: [__m256i; T] = $isum;
                        let (d, _) = block_scales($fmt, group, $b);
                        for t in 0..T {
                            let ds = _mm256_mul_ps(d, _mm256_set1_ps(*scale[t].add($b)));
                            acc[t] = _mm256_fmadd_ps(ds, _mm256_cvtepi32_ps(isum[t]), acc[t]);
                        }
                    }
                    if $fmt != BlockFormat::Q8_0 {
                        let sum: [*const f32; T] = std::array::from_fn(|t| x[t].sum.as_ptr());
                        let mut offset = [_mm256_setzero_ps(); T];
                        for b in 0..blocks {
                            if let (_, Some(m)) = block_scales($fmt, group, b) {
                                for t in 0..T {
                                    let s = _mm256_set1_ps(*sum[t].add(b));
                                    offset[t] = _mm256_fmadd_ps(m, s, offset[t]);
                                }
                            }
                        }
                        for t in 0..T {
                            acc[t] = _mm256_add_ps(acc[t], offset[t]);
                        }
                    }
                    results(acc)
                }};
            }
            match group.format {
                $(BlockFormat::$format => with_format!(BlockFormat::$format),)+
                _ => unreachable!("`group_tile` picks the kernel by format"),
            }
        }};
    }

    /// `[token][row]` results from the accumulators.
    #[inline(always)]
    unsafe fn results<const T: usize>(acc: [__m256; T]) -> [[f32; ROWS]; T] {
        std::array::from_fn(|t| {
            let mut out = [0f32; ROWS];
            _mm256_storeu_ps(out.as_mut_ptr(), acc[t]);
            out
        })
    }

    /// [`super::quantize_block`] with AVX2: the same maximum, products and rounding (half to
    /// even); the conversions saturate where the scalar code clamps (|x/s| ≤ 127 anyway).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn quantize_block(x: &[f32], q: &mut [i8]) -> (f32, i32) {
        let p = x.as_ptr();
        let v: [__m256; 4] = std::array::from_fn(|i| _mm256_loadu_ps(p.add(8 * i)));
        let sign = _mm256_set1_ps(-0.0);
        let abs = |v: __m256| _mm256_andnot_ps(sign, v);
        let m = _mm256_max_ps(
            _mm256_max_ps(abs(v[0]), abs(v[1])),
            _mm256_max_ps(abs(v[2]), abs(v[3])),
        );
        let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
        let d = _mm_cvtss_f32(m) / 127.0;
        let inv = _mm256_set1_ps(if d > 0.0 { 1.0 / d } else { 0.0 });
        let i: [__m256i; 4] = std::array::from_fn(|k| {
            _mm256_cvtps_epi32(_mm256_round_ps::<
                { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
            >(_mm256_mul_ps(v[k], inv)))
        });
        // Σ q from the 32-bit values, then pack 32 → 16 → 8 bits (packs work per 128-bit
        // lane, so a final permutation restores the order).
        let s = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
        let s = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        let w01 = _mm256_packs_epi32(i[0], i[1]);
        let w23 = _mm256_packs_epi32(i[2], i[3]);
        let b = _mm256_packs_epi16(w01, w23);
        let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(q.as_mut_ptr() as *mut __m256i, b);
        (d, _mm_cvtsi128_si32(s))
    }

    /// Q4_0 / Q4_1 with `vpdpbusd` (unsigned 4-bit weights × signed activations).
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    pub(super) unsafe fn q4_vnni<const T: usize>(
        group: &GroupRef<'_>,
        x: &[ActRef<'_>; T],
    ) -> [[f32; ROWS]; T] {
        group_blocks!(group, x, 16, [Q4_0, Q4_1, Q4K], |values, b| {
            // Two independent chains per token (low and high nibbles), added at the end.
            let mut isum = [_mm256_setzero_si256(); T];
            let mut isum_hi = [_mm256_setzero_si256(); T];
            for k in 0..4 {
                let (lo, hi) = nibbles(values, k);
                for t in 0..T {
                    isum[t] = _mm256_dpbusd_epi32(isum[t], lo, broadcast(&x[t], b, k));
                    isum_hi[t] = _mm256_dpbusd_epi32(isum_hi[t], hi, broadcast(&x[t], b, k + 4));
                }
            }
            for t in 0..T {
                isum[t] = _mm256_add_epi32(isum[t], isum_hi[t]);
            }
            isum
        })
    }

    /// Q8_0 with `vpdpbusd`: the signed weights are stored as is and read as `q + 128`
    /// (flipping the top bit), so `Σ q·p = Σ (q+128)·p − 128·Σ p`, exact.
    #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
    pub(super) unsafe fn q8_vnni<const T: usize>(
        group: &GroupRef<'_>,
        x: &[ActRef<'_>; T],
    ) -> [[f32; ROWS]; T] {
        let flip = _mm256_set1_epi8(-128);
        group_blocks!(group, x, 32, [Q8_0], |values, b| {
            let mut isum: [__m256i; T] =
                std::array::from_fn(|t| _mm256_set1_epi32(-128 * x[t].qsum[b]));
            for c in 0..8 {
                let w = _mm256_loadu_si256(values.add(32 * c) as *const __m256i);
                let w = _mm256_xor_si256(w, flip);
                for t in 0..T {
                    isum[t] = _mm256_dpbusd_epi32(isum[t], w, broadcast(&x[t], b, c));
                }
            }
            isum
        })
    }

    /// How far ahead of the current block the kernels prefetch weights: for a model far
    /// larger than the caches they stream weights from memory, and the hardware prefetcher
    /// alone left a 7B decode at about 73% of the measured read bandwidth (81% with this).
    const PREFETCH: usize = 4096;

    /// Prefetches the `bytes` (a block of a group) that lie [`PREFETCH`] bytes past `at`,
    /// one request per cache line (prefetches never fault, whatever the address): into L1,
    /// or into L2 only (`to_l2`) where a kernel needs more bytes per cycle than L1's few
    /// outstanding misses bring from memory — the 512-bit kernels on 8-bit weights (32 bytes
    /// per row and block) in tiles of 4 or 8 tokens. A line prefetched into L1 holds one of
    /// those miss slots until it arrives, and there the weights' arithmetic and their
    /// reading from memory ran one after the other (README, "the waiting", for the
    /// measurements; 4-bit weights, one token and the AVX2 kernels were no faster that way).
    #[inline(always)]
    unsafe fn prefetch(at: *const u8, bytes: usize, to_l2: bool) {
        for line in (0..bytes).step_by(64) {
            let at = at.wrapping_add(PREFETCH + line) as *const i8;
            match to_l2 {
                true => _mm_prefetch::<_MM_HINT_T1>(at),
                false => _mm_prefetch::<_MM_HINT_T0>(at),
            }
        }
    }

    /// 32 bytes of each of two groups, side by side.
    #[inline(always)]
    unsafe fn load_pair(a: *const u8, b: *const u8) -> __m512i {
        let lo = _mm256_loadu_si256(a as *const __m256i);
        let hi = _mm256_loadu_si256(b as *const __m256i);
        _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
    }

    /// Two groups' f16 values at entry `at` (8 rows each) as 16 f32 lanes.
    #[inline(always)]
    unsafe fn halves512(a: &[u16], b: &[u16], at: usize) -> __m512 {
        let lo = _mm_loadu_si128(a.as_ptr().add(at) as *const __m128i);
        let hi = _mm_loadu_si128(b.as_ptr().add(at) as *const __m128i);
        _mm512_cvtph_ps(_mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), hi))
    }

    /// Two groups' bytes at entry `at` (8 rows each) as 16 f32 lanes.
    #[inline(always)]
    unsafe fn bytes512(a: &[u8], b: &[u8], at: usize) -> __m512 {
        let lo = _mm_loadl_epi64(a.as_ptr().add(at) as *const __m128i);
        let hi = _mm_loadl_epi64(b.as_ptr().add(at) as *const __m128i);
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi64(lo, hi)))
    }

    /// [`block_scales`] of two groups (16 rows) in 512-bit registers; `sup`: Q4K's
    /// super-block `d` and `dmin` of this block ([`super_scales512`]).
    #[inline(always)]
    unsafe fn block_scales512(
        format: BlockFormat,
        a: &GroupRef<'_>,
        b: &GroupRef<'_>,
        blk: usize,
        sup: (__m512, __m512),
    ) -> (__m512, Option<__m512>) {
        let at = blk * a.meta;
        match format {
            BlockFormat::Q4_0 => {
                let d = halves512(a.scale, b.scale, at);
                (d, Some(_mm512_mul_ps(d, _mm512_set1_ps(-8.0))))
            }
            BlockFormat::Q4_1 => (
                halves512(a.scale, b.scale, at),
                Some(halves512(a.min, b.min, at)),
            ),
            BlockFormat::Q8_0 => (halves512(a.scale, b.scale, at), None),
            BlockFormat::Q4K => {
                let d = _mm512_mul_ps(sup.0, bytes512(a.block_scale, b.block_scale, at));
                let m = _mm512_mul_ps(sup.1, bytes512(a.block_min, b.block_min, at));
                (d, Some(_mm512_sub_ps(_mm512_setzero_ps(), m)))
            }
        }
    }

    /// Q4K's super-block `d` and `dmin` for block `blk` of two groups (read once per
    /// super-block of 8 blocks instead of once per block; zeros for other formats).
    #[inline(always)]
    unsafe fn super_scales512(
        format: BlockFormat,
        a: &GroupRef<'_>,
        b: &GroupRef<'_>,
        blk: usize,
    ) -> (__m512, __m512) {
        match format {
            BlockFormat::Q4K => (
                halves512(a.scale, b.scale, (blk / 8) * a.meta),
                halves512(a.min, b.min, (blk / 8) * a.meta),
            ),
            _ => (_mm512_setzero_ps(), _mm512_setzero_ps()),
        }
    }

    /// [`group_blocks`] for two groups at once (`$va`, `$vb`: their block's values): one copy
    /// of the loops per format, the offsets in a second pass (as there, so that with 8
    /// tokens the first pass keeps its sums and accumulators in registers), activations read
    /// through raw pointers (every token's slices hold the row's blocks, asserted by
    /// `pair_tile`).
    macro_rules! pair_blocks {
        ($groups:expr, $x:expr, $bytes:expr, [$($format:ident),+], |$va:ident, $vb:ident, $blk:ident| $isum:expr) => {{
            let ([ga, gb], x) = ($groups, $x);
            macro_rules! with_format {
                ($fmt:expr) => {{
                    let blocks = x[0].scale.len();
                    let scale: [*const f32; T] = std::array::from_fn(|t| x[t].scale.as_ptr());
                    let mut acc = [_mm512_setzero_ps(); T];
                    let mut sup = (_mm512_setzero_ps(), _mm512_setzero_ps());
                    for $blk in 0..blocks {
                        if $fmt == BlockFormat::Q4K && $blk % 8 == 0 {
                            sup = super_scales512($fmt, ga, gb, $blk);
                        }
                        let $va = ga.values.as_ptr().add($blk * ga.stride);
                        let $vb = gb.values.as_ptr().add($blk * gb.stride);
                        prefetch($va, ROWS * $bytes, $bytes == 32 && T >= 4);
                        prefetch($vb, ROWS * $bytes, $bytes == 32 && T >= 4);
                        let isum: [__m512i; T] = $isum;
                        let (d, _) = block_scales512($fmt, ga, gb, $blk, sup);
                        for t in 0..T {
                            let ds = _mm512_mul_ps(d, _mm512_set1_ps(*scale[t].add($blk)));
                            acc[t] = _mm512_fmadd_ps(ds, _mm512_cvtepi32_ps(isum[t]), acc[t]);
                        }
                    }
                    if $fmt != BlockFormat::Q8_0 {
                        let sum: [*const f32; T] = std::array::from_fn(|t| x[t].sum.as_ptr());
                        let mut offset = [_mm512_setzero_ps(); T];
                        for b in 0..blocks {
                            if $fmt == BlockFormat::Q4K && b % 8 == 0 {
                                sup = super_scales512($fmt, ga, gb, b);
                            }
                            if let (_, Some(m)) = block_scales512($fmt, ga, gb, b, sup) {
                                for t in 0..T {
                                    let s = _mm512_set1_ps(*sum[t].add(b));
                                    offset[t] = _mm512_fmadd_ps(m, s, offset[t]);
                                }
                            }
                        }
                        for t in 0..T {
                            acc[t] = _mm512_add_ps(acc[t], offset[t]);
                        }
                    }
                    results512(acc)
                }};
            }
            match ga.format {
                $(BlockFormat::$format => with_format!(BlockFormat::$format),)+
                _ => unreachable!("`pair_tile` picks the kernel by format"),
            }
        }};
    }

    /// `[token][group][row]` results of the two-group accumulators.
    #[inline(always)]
    unsafe fn results512<const T: usize>(acc: [__m512; T]) -> [[[f32; ROWS]; 2]; T] {
        std::array::from_fn(|t| {
            let mut out = [[0f32; ROWS]; 2];
            _mm512_storeu_ps(out.as_mut_ptr() as *mut f32, acc[t]);
            out
        })
    }

    /// [`q4_vnni`] for two groups at once in 512-bit registers.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) unsafe fn q4_vnni512<const T: usize>(
        a: &GroupRef<'_>,
        b: &GroupRef<'_>,
        x: &[ActRef<'_>; T],
    ) -> [[[f32; ROWS]; 2]; T] {
        let mask = _mm512_set1_epi8(0x0f);
        pair_blocks!([a, b], x, 16, [Q4_0, Q4_1, Q4K], |va, vb, blk| {
            // Low and high nibbles in two chains per token, unless the tokens alone give
            // enough independent chains (and the registers are needed for them).
            let split = T < 8;
            let mut isum = [_mm512_setzero_si512(); T];
            let mut isum_hi = [_mm512_setzero_si512(); T];
            for k in 0..4 {
                let raw = load_pair(va.add(32 * k), vb.add(32 * k));
                let lo = _mm512_and_si512(raw, mask);
                let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(raw), mask);
                for t in 0..T {
                    let q = x[t].q.as_ptr().add(blk * BLOCK) as *const i32;
                    let (plo, phi) = (q.add(k).read_unaligned(), q.add(k + 4).read_unaligned());
                    isum[t] = _mm512_dpbusd_epi32(isum[t], lo, _mm512_set1_epi32(plo));
                    if split {
                        isum_hi[t] = _mm512_dpbusd_epi32(isum_hi[t], hi, _mm512_set1_epi32(phi));
                    } else {
                        isum[t] = _mm512_dpbusd_epi32(isum[t], hi, _mm512_set1_epi32(phi));
                    }
                }
            }
            if split {
                for t in 0..T {
                    isum[t] = _mm512_add_epi32(isum[t], isum_hi[t]);
                }
            }
            isum
        })
    }

    /// [`q8_vnni`] for two groups at once in 512-bit registers.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
    pub(super) unsafe fn q8_vnni512<const T: usize>(
        a: &GroupRef<'_>,
        b: &GroupRef<'_>,
        x: &[ActRef<'_>; T],
    ) -> [[[f32; ROWS]; 2]; T] {
        let flip = _mm512_set1_epi8(-128);
        pair_blocks!([a, b], x, 32, [Q8_0], |va, vb, blk| {
            let mut isum: [__m512i; T] =
                std::array::from_fn(|t| _mm512_set1_epi32(-128 * *x[t].qsum.as_ptr().add(blk)));
            for c in 0..8 {
                let w = _mm512_xor_si512(load_pair(va.add(32 * c), vb.add(32 * c)), flip);
                for t in 0..T {
                    let q = x[t].q.as_ptr().add(blk * BLOCK + 4 * c) as *const i32;
                    isum[t] =
                        _mm512_dpbusd_epi32(isum[t], w, _mm512_set1_epi32(q.read_unaligned()));
                }
            }
            isum
        })
    }

    /// Q4_0 / Q4_1 with AVX2: `vpmaddubsw` pairs (≤ 2·15·127) summed in 16 bits over the 8
    /// chunks of a block (≤ 8·3810 < 2^15, no saturation), then widened once per block.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn q4_avx2<const T: usize>(
        group: &GroupRef<'_>,
        x: &[ActRef<'_>; T],
    ) -> [[f32; ROWS]; T] {
        let ones = _mm256_set1_epi16(1);
        group_blocks!(group, x, 16, [Q4_0, Q4_1, Q4K], |values, b| {
            let mut pairs = [_mm256_setzero_si256(); T];
            for k in 0..4 {
                let (lo, hi) = nibbles(values, k);
                for t in 0..T {
                    let a = _mm256_maddubs_epi16(lo, broadcast(&x[t], b, k));
                    let c = _mm256_maddubs_epi16(hi, broadcast(&x[t], b, k + 4));
                    pairs[t] = _mm256_add_epi16(pairs[t], _mm256_add_epi16(a, c));
                }
            }
            let isum: [__m256i; T] = std::array::from_fn(|t| _mm256_madd_epi16(pairs[t], ones));
            isum
        })
    }

    /// Q8_0 with AVX2: `|q|·(p·sign q) = q·p` turns the signed product into the unsigned ×
    /// signed one `vpmaddubsw` offers (pairs ≤ 2·128·127 < 2^15), widened per chunk.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn q8_avx2<const T: usize>(
        group: &GroupRef<'_>,
        x: &[ActRef<'_>; T],
    ) -> [[f32; ROWS]; T] {
        let ones = _mm256_set1_epi16(1);
        group_blocks!(group, x, 32, [Q8_0], |values, b| {
            let mut isum = [_mm256_setzero_si256(); T];
            for c in 0..8 {
                let w = _mm256_loadu_si256(values.add(32 * c) as *const __m256i);
                let magnitude = _mm256_abs_epi8(w);
                for t in 0..T {
                    let p = _mm256_sign_epi8(broadcast(&x[t], b, c), w);
                    let pairs = _mm256_maddubs_epi16(magnitude, p);
                    isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(pairs, ones));
                }
            }
            isum
        })
    }
}
