//! [`Sampler`]: one token from one logits row.
use corral_index::Guide;

use crate::error::SamplerError;
use crate::noise::{gumbel, GUMBEL_MAX};
use crate::params::SamplingParams;
use crate::penalties::TokenCounts;

/// Counters of how tokens were chosen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SamplerStats {
    /// Tokens chosen.
    pub steps: u64,
    /// Constrained steps whose unmasked choice was allowed (no mask was needed).
    pub sample_first_hits: u64,
    /// Constrained steps that used the full mask (a rejected first choice, truncation, or
    /// mask-first mode).
    pub masked: u64,
}

/// Chooses tokens: penalties, temperature, top-k/top-p/min-p and seeded sampling, under an
/// optional constraint.
///
/// Sampling uses the Gumbel-max trick: token `t` scores `logit_t / T + G(seed, position, t)`
/// and the best score wins, which draws exactly from `softmax(logits / T)`. Because the
/// noise is fixed per token, the best *allowed* token is the same whether the mask is applied
/// first or only after the unconstrained winner was rejected ("sample first"): both
/// strategies give identical outputs, and the distribution is exactly the masked one.
/// With top-k, top-p or min-p the cut depends on which tokens are allowed, so the mask is
/// always applied first.
#[derive(Clone, Debug)]
pub struct Sampler {
    params: SamplingParams,
    seed: u64,
    mask_first: bool,
    top_logprobs: Option<usize>,
    last_logprobs: Option<TokenLogprobs>,
    stats: SamplerStats,
    scratch: Vec<(u32, f32)>,
}

/// The log-probability of a chosen token, and of the most likely alternatives, under the
/// distribution it was drawn from: after penalties, temperature (1 when greedy), the
/// constraint's mask and top-k/top-p/min-p.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprobs {
    /// The chosen token.
    pub token: u32,
    /// Its natural-log probability.
    pub logprob: f32,
    /// The most likely tokens with their log-probabilities, most likely first.
    pub top: Vec<(u32, f32)>,
}

impl Sampler {
    /// A sampler (the parameters are validated); without a seed in `params` one is drawn
    /// from the OS.
    pub fn new(params: SamplingParams) -> Result<Sampler, SamplerError> {
        params.validate()?;
        let seed = params.seed.unwrap_or_else(random_seed);
        Ok(Sampler {
            params,
            seed,
            mask_first: false,
            top_logprobs: None,
            last_logprobs: None,
            stats: SamplerStats::default(),
            scratch: Vec::new(),
        })
    }

    /// Always compute the full mask before choosing (the reference strategy; slower).
    pub fn mask_first(mut self, on: bool) -> Sampler {
        self.mask_first = on;
        self
    }

    /// Record the log-probability of every chosen token and of the `top` most likely
    /// alternatives ([`Sampler::last_logprobs`]). Under a constraint this computes the full
    /// mask at every step (the distribution's normalizer needs it).
    pub fn logprobs(mut self, top: Option<usize>) -> Sampler {
        self.top_logprobs = top;
        self
    }

    /// The log-probabilities of the last chosen token (when enabled).
    pub fn last_logprobs(&self) -> Option<&TokenLogprobs> {
        self.last_logprobs.as_ref()
    }

    /// The parameters.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// The seed in use.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Counters so far.
    pub fn stats(&self) -> SamplerStats {
        self.stats
    }

    /// Choose the token at sequence position `position` from `logits` (modified in place by
    /// the penalties). With a guide, the token is one the guide allows (the guide is not
    /// advanced). `logits` may be longer than the guide's vocabulary; ids past it are never
    /// chosen under a guide.
    pub fn sample(
        &mut self,
        logits: &mut [f32],
        guide: Option<&mut Guide>,
        counts: &TokenCounts,
        position: usize,
    ) -> Result<u32, SamplerError> {
        self.stats.steps += 1;
        if self.params.penalizes() {
            counts.apply(&self.params, logits);
        }
        let inv_t = if self.params.is_greedy() {
            None
        } else {
            Some(1.0 / self.params.temperature)
        };
        let Some(guide) = guide else {
            return if self.params.truncates() && inv_t.is_some() {
                self.truncated(logits, None, position)
            } else {
                let token = best_of_row(logits, inv_t, self.seed, position)
                    .ok_or(SamplerError::NoFiniteLogit)?;
                if let Some(top) = self.top_logprobs {
                    let all = (0..logits.len() as u32).map(|t| (t, logits[t as usize]));
                    self.last_logprobs = Some(logprobs_of(all, inv_t, token, top));
                }
                Ok(token)
            };
        };
        let truncated = self.params.truncates() && inv_t.is_some();
        if !self.mask_first && !truncated && self.top_logprobs.is_none() {
            if let Some(t) = best_of_row(logits, inv_t, self.seed, position) {
                if guide.is_allowed(t)? {
                    self.stats.sample_first_hits += 1;
                    return Ok(t);
                }
            }
        }
        self.stats.masked += 1;
        let words = guide.allowed_tokens()?;
        if truncated {
            return self.truncated(logits, Some(words), position);
        }
        let allowed = set_bits(words, logits.len());
        let token = best(logits, inv_t, self.seed, position, allowed.clone())
            .ok_or(SamplerError::NoTokenAllowed { position })?;
        if let Some(top) = self.top_logprobs {
            let allowed = allowed.map(|t| (t, logits[t as usize]));
            self.last_logprobs = Some(logprobs_of(allowed, inv_t, token, top));
        }
        Ok(token)
    }

    /// Mask first, then top-k, top-p and min-p on the tempered distribution, then the
    /// Gumbel-max choice among the kept tokens.
    fn truncated(
        &mut self,
        logits: &[f32],
        mask: Option<&[u64]>,
        position: usize,
    ) -> Result<u32, SamplerError> {
        let inv_t = 1.0 / self.params.temperature;
        let cands = &mut self.scratch;
        cands.clear();
        match mask {
            Some(words) => cands.extend(
                set_bits(words, logits.len())
                    .map(|t| (t, logits[t as usize] * inv_t))
                    .filter(|(_, v)| !v.is_nan() && *v > f32::NEG_INFINITY),
            ),
            None => cands.extend(
                logits
                    .iter()
                    .enumerate()
                    .map(|(t, &l)| (t as u32, l * inv_t))
                    .filter(|(_, v)| !v.is_nan() && *v > f32::NEG_INFINITY),
            ),
        }
        if cands.is_empty() {
            return Err(match mask {
                Some(_) => SamplerError::NoTokenAllowed { position },
                None => SamplerError::NoFiniteLogit,
            });
        }
        let by_value = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if let Some(k) = self.params.top_k.filter(|&k| k > 0 && k < cands.len()) {
            cands.select_nth_unstable_by(k - 1, by_value);
            cands.truncate(k);
        }
        let vmax = cands.iter().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
        let z: f64 = cands.iter().map(|c| ((c.1 - vmax) as f64).exp()).sum();
        if self.params.top_p < 1.0 {
            // Only the most likely tokens need sorting: those within 30 nats of the best
            // hold all but a negligible mass; fall back to all when they do not reach p.
            let head_mass: f64 = cands
                .iter()
                .filter(|c| c.1 >= vmax - 30.0)
                .map(|c| ((c.1 - vmax) as f64).exp())
                .sum();
            if head_mass / z >= self.params.top_p as f64 {
                cands.retain(|c| c.1 >= vmax - 30.0);
            }
            cands.sort_unstable_by(by_value);
            let mut cum = 0.0;
            let mut keep = cands.len();
            for (i, c) in cands.iter().enumerate() {
                cum += ((c.1 - vmax) as f64).exp() / z;
                if cum >= self.params.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            cands.truncate(keep.max(1));
        }
        if self.params.min_p > 0.0 {
            // p_i >= min_p * p_max  ⇔  v_i - v_max >= ln(min_p).
            let floor = vmax + self.params.min_p.ln();
            cands.retain(|c| c.1 >= floor);
        }
        let mut best_tok = None;
        let mut best_score = f64::NEG_INFINITY;
        for &(t, v) in cands.iter() {
            let s = v as f64 + gumbel(self.seed, position, t);
            if s > best_score || (s == best_score && best_tok.is_some_and(|b| t < b)) {
                best_score = s;
                best_tok = Some(t);
            }
        }
        let token = best_tok.ok_or(SamplerError::NoTokenAllowed { position })?;
        if let Some(top) = self.top_logprobs {
            // The kept candidates, already tempered.
            let kept = cands.iter().copied();
            self.last_logprobs = Some(logprobs_of(kept, None, token, top));
        }
        Ok(token)
    }
}

/// Log-probabilities of `chosen` and of the `top` most likely among `cands` (token,
/// logit) under `softmax(logit * inv_t)` (`None`: as given). Tokens at -inf or NaN have no
/// mass.
fn logprobs_of(
    cands: impl Iterator<Item = (u32, f32)> + Clone,
    inv_t: Option<f32>,
    chosen: u32,
    top: usize,
) -> TokenLogprobs {
    let scale = inv_t.unwrap_or(1.0);
    let live = cands
        .map(move |(t, l)| (t, l * scale))
        .filter(|(_, v)| *v > f32::NEG_INFINITY);
    let max = live.clone().map(|c| c.1).fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = live.clone().map(|c| ((c.1 - max) as f64).exp()).sum();
    let log_z = max as f64 + sum.ln();
    let logprob = |v: f32| (v as f64 - log_z) as f32;
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(top + 1);
    let mut chosen_logprob = f32::NEG_INFINITY;
    for (t, v) in live {
        if t == chosen {
            chosen_logprob = logprob(v);
        }
        if top == 0 || best.len() == top && best[top - 1].1 >= v {
            continue;
        }
        let at = best.partition_point(|b| b.1 >= v);
        best.insert(at, (t, v));
        best.truncate(top);
    }
    TokenLogprobs {
        token: chosen,
        logprob: chosen_logprob,
        top: best.into_iter().map(|(t, v)| (t, logprob(v))).collect(),
    }
}

/// The ids of the set bits of `words` below `limit`, ascending.
fn set_bits(words: &[u64], limit: usize) -> impl Iterator<Item = u32> + Clone + '_ {
    words.iter().enumerate().flat_map(move |(w, &word)| {
        let mut bits = word;
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let t = w * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            Some(t)
        })
        .filter(move |&t| t < limit)
        .map(|t| t as u32)
    })
}

/// Index of the largest value of `values` (first one on ties), `None` when none is above
/// -inf. Two branch-free passes, so the compiler vectorizes both.
fn argmax(values: &[f32]) -> Option<u32> {
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return None;
    }
    values.iter().position(|&v| v == max).map(|i| i as u32)
}

/// The best token of the whole row: the argmax when `inv_t` is `None`, else the argmax of
/// `logit / T + gumbel` (ties: smaller id).
fn best_of_row(logits: &[f32], inv_t: Option<f32>, seed: u64, position: usize) -> Option<u32> {
    let top = argmax(logits)?;
    Some(match inv_t {
        None => top,
        Some(inv_t) => perturbed_best(logits, top, inv_t, seed, position, 0..logits.len() as u32),
    })
}

/// The best token among `ids` (ascending), like [`best_of_row`]. `None` when no logit among
/// them is above -inf.
fn best(
    logits: &[f32],
    inv_t: Option<f32>,
    seed: u64,
    position: usize,
    ids: impl Iterator<Item = u32> + Clone,
) -> Option<u32> {
    // The largest logit first (ties: smallest id).
    let mut top: Option<(u32, f32)> = None;
    for t in ids.clone() {
        let l = logits[t as usize];
        if l > f32::NEG_INFINITY && top.is_none_or(|(_, b)| l > b) {
            top = Some((t, l));
        }
    }
    let (top, _) = top?;
    Some(match inv_t {
        None => top,
        Some(inv_t) => perturbed_best(logits, top, inv_t, seed, position, ids),
    })
}

/// The argmax of `logit / T + gumbel` over `ids`, starting from `top` (the largest logit).
/// Both strategies (whole row, allowed tokens only) go through here, so they score every
/// token identically and break ties the same way (smaller id).
fn perturbed_best(
    logits: &[f32],
    top: u32,
    inv_t: f32,
    seed: u64,
    position: usize,
    ids: impl Iterator<Item = u32>,
) -> u32 {
    let mut best_id = top;
    let mut best_score = (logits[top as usize] * inv_t) as f64 + gumbel(seed, position, top);
    // A token can only win if `logit / T + GUMBEL_MAX > best_score`: compare in f32 against a
    // threshold lowered by a safety margin for rounding, then check exactly.
    let threshold = |best: f64| {
        let floor = (best - GUMBEL_MAX) / inv_t as f64;
        (floor - 1e-3 * (1.0 + best.abs()) - 1e-5 * floor.abs()) as f32
    };
    let mut floor = threshold(best_score);
    for t in ids {
        let l = logits[t as usize];
        if l <= floor || t == top {
            continue;
        }
        let v = (l * inv_t) as f64;
        if v + GUMBEL_MAX <= best_score {
            continue;
        }
        let s = v + gumbel(seed, position, t);
        if s > best_score || (s == best_score && t < best_id) {
            best_score = s;
            best_id = t;
            floor = threshold(best_score);
        }
    }
    best_id
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_index::{Index, Vocabulary};

    /// Tokens 0..=9 are the digits, 10 is EOS; the constraint allows even digits only.
    fn even_guide() -> Guide {
        let mut tokens: Vec<Option<Vec<u8>>> = (b'0'..=b'9').map(|d| Some(vec![d])).collect();
        tokens.push(None);
        let vocab = Vocabulary::from_bytes(tokens, vec![10]).unwrap();
        Guide::new(Index::new("[02468]+", &vocab).unwrap())
    }

    fn pseudo_logits(seed: u64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|t| (gumbel(seed, 999, t as u32) * 1.5) as f32)
            .collect()
    }

    #[test]
    fn logprobs_are_of_the_masked_tempered_distribution() {
        let logits = pseudo_logits(3, 11);
        for (params, inv_t) in [
            (SamplingParams::greedy(), 1.0f64),
            (SamplingParams::with_temperature(0.5, 4), 2.0),
        ] {
            let mut sampler = Sampler::new(params).unwrap().logprobs(Some(3));
            let mut guide = even_guide();
            let token = sampler
                .sample(
                    &mut logits.clone(),
                    Some(&mut guide),
                    &TokenCounts::default(),
                    0,
                )
                .unwrap();
            let lp = sampler.last_logprobs().unwrap().clone();
            assert_eq!(lp.token, token);
            assert!(token.is_multiple_of(2) && token < 10);
            // Exact softmax over the allowed (even) digits.
            let z: f64 = (0..10)
                .step_by(2)
                .map(|t| (logits[t] as f64 * inv_t).exp())
                .sum();
            let expect = |t: usize| ((logits[t] as f64 * inv_t).exp() / z).ln();
            assert!((lp.logprob as f64 - expect(token as usize)).abs() < 1e-4);
            assert_eq!(lp.top.len(), 3);
            assert!(lp.top.windows(2).all(|w| w[0].1 >= w[1].1));
            for &(t, l) in &lp.top {
                assert!(t.is_multiple_of(2) && t < 10);
                assert!((l as f64 - expect(t as usize)).abs() < 1e-4);
            }
        }
        // Unconstrained: the mass of the whole row sums to one.
        let mut sampler = Sampler::new(SamplingParams::with_temperature(1.0, 5))
            .unwrap()
            .logprobs(Some(11));
        sampler
            .sample(&mut logits.clone(), None, &TokenCounts::default(), 0)
            .unwrap();
        let total: f64 = sampler
            .last_logprobs()
            .unwrap()
            .top
            .iter()
            .map(|(_, l)| (*l as f64).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-4);
    }

    #[test]
    fn sample_first_equals_mask_first() {
        for params in [
            SamplingParams::greedy(),
            SamplingParams::with_temperature(1.0, 11),
            SamplingParams::with_temperature(0.4, 12),
        ] {
            let mut a = Sampler::new(params.clone()).unwrap();
            let mut b = Sampler::new(params).unwrap().mask_first(true);
            let counts = TokenCounts::default();
            for step in 0..300 {
                let logits = pseudo_logits(step, 11);
                let (mut ga, mut gb) = (even_guide(), even_guide());
                let ta = a.sample(&mut logits.clone(), Some(&mut ga), &counts, step as usize);
                let tb = b.sample(&mut logits.clone(), Some(&mut gb), &counts, step as usize);
                assert_eq!(ta.unwrap(), tb.unwrap());
            }
            assert!(a.stats().sample_first_hits > 0);
            assert_eq!(b.stats().sample_first_hits, 0);
        }
    }

    #[test]
    fn masked_distribution_is_renormalized() {
        // logits ln(p): allowed tokens 0, 2, 4 with p 0.1, 0.2, 0.1 → 0.25, 0.5, 0.25.
        let p = [0.1f32, 0.3, 0.2, 0.2, 0.1, 0.1];
        let mut logits: Vec<f32> = p.iter().map(|x| x.ln()).collect();
        logits.extend([f32::NEG_INFINITY; 5]);
        let mut sampler = Sampler::new(SamplingParams::with_temperature(1.0, 5)).unwrap();
        let mut hist = [0u32; 11];
        let n = 40_000;
        for pos in 0..n {
            let mut guide = even_guide();
            let t = sampler
                .sample(
                    &mut logits.clone(),
                    Some(&mut guide),
                    &TokenCounts::default(),
                    pos,
                )
                .unwrap();
            hist[t as usize] += 1;
        }
        let freq = |t: usize| hist[t] as f64 / n as f64;
        assert!((freq(0) - 0.25).abs() < 0.01, "{hist:?}");
        assert!((freq(2) - 0.5).abs() < 0.01, "{hist:?}");
        assert!((freq(4) - 0.25).abs() < 0.01, "{hist:?}");
        assert_eq!(hist[1] + hist[3] + hist[5], 0);
    }

    #[test]
    fn unconstrained_distribution_and_determinism() {
        let p = [0.5f32, 0.3, 0.2];
        let logits: Vec<f32> = p.iter().map(|x| x.ln()).collect();
        let mut s = Sampler::new(SamplingParams::with_temperature(1.0, 1)).unwrap();
        let mut hist = [0u32; 3];
        let n = 40_000;
        let picks: Vec<u32> = (0..n)
            .map(|pos| {
                s.sample(&mut logits.clone(), None, &TokenCounts::default(), pos)
                    .unwrap()
            })
            .collect();
        for &t in &picks {
            hist[t as usize] += 1;
        }
        for (t, &pt) in p.iter().enumerate() {
            assert!(
                (hist[t] as f64 / n as f64 - pt as f64).abs() < 0.01,
                "{hist:?}"
            );
        }
        let mut again = Sampler::new(SamplingParams::with_temperature(1.0, 1)).unwrap();
        for (pos, &t) in picks.iter().enumerate().take(500) {
            let u = again.sample(&mut logits.clone(), None, &TokenCounts::default(), pos);
            assert_eq!(u.unwrap(), t);
        }
    }

    #[test]
    fn truncation_keeps_the_head() {
        let logits: Vec<f32> = [0.4f32, 0.3, 0.2, 0.1].iter().map(|x| x.ln()).collect();
        let run = |params: SamplingParams| {
            let mut s = Sampler::new(params).unwrap();
            let mut seen = [false; 4];
            for pos in 0..2000 {
                let t = s.sample(&mut logits.clone(), None, &TokenCounts::default(), pos);
                seen[t.unwrap() as usize] = true;
            }
            seen
        };
        let base = SamplingParams::with_temperature(1.0, 3);
        let top_k = SamplingParams {
            top_k: Some(2),
            ..base.clone()
        };
        assert_eq!(run(top_k), [true, true, false, false]);
        let top_p = SamplingParams {
            top_p: 0.65,
            ..base.clone()
        };
        assert_eq!(run(top_p), [true, true, false, false]);
        let min_p = SamplingParams {
            min_p: 0.5,
            ..base.clone()
        };
        assert_eq!(run(min_p), [true, true, true, false]);
        let mut guide = even_guide();
        let mut s = Sampler::new(SamplingParams {
            top_k: Some(1),
            ..base
        })
        .unwrap();
        let mut l = vec![5.0, 9.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        // top-1 of the *allowed* tokens: 0, although 1 is the overall best.
        let t = s.sample(&mut l, Some(&mut guide), &TokenCounts::default(), 0);
        assert_eq!(t.unwrap(), 0);
    }

    #[test]
    fn no_allowed_token_is_an_error() {
        let mut guide = even_guide();
        let mut s = Sampler::new(SamplingParams::greedy()).unwrap();
        let mut logits = vec![f32::NEG_INFINITY; 11];
        let r = s.sample(&mut logits, Some(&mut guide), &TokenCounts::default(), 4);
        assert!(matches!(
            r,
            Err(SamplerError::NoTokenAllowed { position: 4 })
        ));
    }
}
