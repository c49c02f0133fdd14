//! Counter-based Gumbel noise: one value per `(seed, position, token)`, independent of the
//! order in which values are asked for, so results do not depend on threads or on which
//! tokens a fast path looked at.

/// Largest value [`gumbel`] can return: `-ln(-ln(u))` for the largest `u` below 1.
/// Tokens whose scaled logit is more than this below the best score so far cannot win.
pub(crate) const GUMBEL_MAX: f64 = 37.5;

#[inline]
fn mix(mut z: u64) -> u64 {
    // SplitMix64's finalizer (Steele, Lea, Flood 2014).
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A standard Gumbel sample for `(seed, position, token)`.
#[inline]
pub(crate) fn gumbel(seed: u64, position: usize, token: u32) -> f64 {
    let key = ((position as u64) << 32) | token as u64;
    let bits =
        mix(mix(seed ^ 0x9E37_79B9_7F4A_7C15) ^ mix(key.wrapping_add(0x6A09_E667_F3BC_C909)));
    // A uniform in (0, 1): 52 random bits, offset by half a step so that neither 0 nor 1
    // occurs (every value is exact in f64; the largest is 1 - 2^-53).
    let u = ((bits >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64);
    -(-u.ln()).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_roughly_standard() {
        let n = 200_000;
        let mut sum = 0.0;
        for t in 0..n {
            let g = gumbel(7, 3, t);
            assert!(g < GUMBEL_MAX && g.is_finite());
            sum += g;
        }
        // The mean of a standard Gumbel is the Euler–Mascheroni constant.
        let mean = sum / n as f64;
        assert!((mean - 0.5772).abs() < 0.01, "mean {mean}");
        assert_ne!(gumbel(7, 3, 1), gumbel(8, 3, 1));
        assert_ne!(gumbel(7, 3, 1), gumbel(7, 4, 1));
    }
}
