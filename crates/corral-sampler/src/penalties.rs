//! Repetition, frequency and presence penalties.
use std::collections::HashMap;

use crate::params::SamplingParams;

/// How often each token occurred in the prompt and in the completion so far.
#[derive(Clone, Debug, Default)]
pub struct TokenCounts {
    prompt: HashMap<u32, u32>,
    completion: HashMap<u32, u32>,
}

impl TokenCounts {
    /// Counts of a prompt (no completion yet).
    pub fn from_prompt(prompt: &[u32]) -> TokenCounts {
        let mut counts = TokenCounts::default();
        for &t in prompt {
            *counts.prompt.entry(t).or_default() += 1;
        }
        counts
    }

    /// Record a completion token.
    pub fn push(&mut self, token: u32) {
        *self.completion.entry(token).or_default() += 1;
    }

    /// Occurrences of `token` in the completion.
    pub fn completion_count(&self, token: u32) -> u32 {
        self.completion.get(&token).copied().unwrap_or(0)
    }

    /// Apply the penalties of `params` to `logits` in place: repetition (Hugging Face:
    /// prompt and completion tokens), then frequency and presence (OpenAI: completion
    /// tokens only).
    pub fn apply(&self, params: &SamplingParams, logits: &mut [f32]) {
        let r = params.repetition_penalty;
        if r != 1.0 {
            let seen = self.prompt.keys().chain(
                self.completion
                    .keys()
                    .filter(|t| !self.prompt.contains_key(t)),
            );
            for &t in seen {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l > 0.0 { *l / r } else { *l * r };
                }
            }
        }
        let (f, p) = (params.frequency_penalty, params.presence_penalty);
        if f != 0.0 || p != 0.0 {
            for (&t, &n) in &self.completion {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l -= n as f32 * f + p;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_and_hf_semantics() {
        let mut counts = TokenCounts::from_prompt(&[0]);
        counts.push(1);
        counts.push(1);
        counts.push(2);
        let params = SamplingParams {
            repetition_penalty: 2.0,
            frequency_penalty: 0.5,
            presence_penalty: 0.25,
            ..SamplingParams::default()
        };
        let mut logits = vec![4.0, -4.0, 1.0, 3.0];
        counts.apply(&params, &mut logits);
        // token 0: prompt only → 4/2; token 1: -4*2 - 2*0.5 - 0.25; token 2: 1/2 - 0.5 - 0.25.
        assert_eq!(logits, vec![2.0, -9.25, -0.25, 3.0]);
    }
}
