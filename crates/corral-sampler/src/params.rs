//! [`SamplingParams`].
use crate::error::SamplerError;

/// Temperatures below this are greedy.
pub const GREEDY_BELOW: f32 = 1e-5;

/// How to choose each token. Applied in this order: constraint mask, penalties,
/// temperature, top-k, top-p, min-p, seeded sampling.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; `0` (or below [`GREEDY_BELOW`]) is greedy (argmax).
    pub temperature: f32,
    /// Keep only the `k` most likely tokens (`None` or `0`: off).
    pub top_k: Option<usize>,
    /// Keep the smallest set of most likely tokens whose probability reaches `p` (1 = off).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one (0 = off).
    pub min_p: f32,
    /// Hugging Face repetition penalty over prompt and completion tokens: a seen token's
    /// logit is divided by it when positive, multiplied when negative (1 = off).
    pub repetition_penalty: f32,
    /// OpenAI frequency penalty: `count × value` is subtracted from the logit of each token
    /// generated so far (0 = off; -2..2).
    pub frequency_penalty: f32,
    /// OpenAI presence penalty: `value` is subtracted once from every token generated so far
    /// (0 = off; -2..2).
    pub presence_penalty: f32,
    /// Seed of the noise; `None` draws one per sampler.
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    /// OpenAI's defaults: temperature 1, everything else off.
    fn default() -> SamplingParams {
        SamplingParams {
            temperature: 1.0,
            top_k: None,
            top_p: 1.0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            seed: None,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding (temperature 0).
    pub fn greedy() -> SamplingParams {
        SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        }
    }

    /// Plain temperature sampling with a seed.
    pub fn with_temperature(temperature: f32, seed: u64) -> SamplingParams {
        SamplingParams {
            temperature,
            seed: Some(seed),
            ..SamplingParams::default()
        }
    }

    /// Whether the choice is the argmax: temperature 0, or below [`GREEDY_BELOW`] (where
    /// `logit / T` would overflow and the distribution is the argmax anyway).
    pub fn is_greedy(&self) -> bool {
        self.temperature < GREEDY_BELOW
    }

    /// Whether top-k, top-p or min-p cut the distribution (then the mask must come first:
    /// the cut depends on which tokens are allowed).
    pub fn truncates(&self) -> bool {
        self.top_k.is_some_and(|k| k > 0) || self.top_p < 1.0 || self.min_p > 0.0
    }

    /// Whether any penalty is active.
    pub fn penalizes(&self) -> bool {
        self.repetition_penalty != 1.0
            || self.frequency_penalty != 0.0
            || self.presence_penalty != 0.0
    }

    /// Check ranges; the error names the parameter.
    pub fn validate(&self) -> Result<(), SamplerError> {
        let bad = |name, reason: &str| {
            Err(SamplerError::InvalidParameter {
                name,
                reason: reason.to_string(),
            })
        };
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad("temperature", "must be a finite number >= 0");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", "must be in (0, 1]");
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min_p", "must be in [0, 1]");
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad("repetition_penalty", "must be a finite number > 0");
        }
        if !(-2.0..=2.0).contains(&self.frequency_penalty) {
            return bad("frequency_penalty", "must be in [-2, 2]");
        }
        if !(-2.0..=2.0).contains(&self.presence_penalty) {
            return bad("presence_penalty", "must be in [-2, 2]");
        }
        Ok(())
    }
}
