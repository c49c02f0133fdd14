//! Mixtral: the Mistral decoder whose MLP is a sparse mixture of SwiGLU experts.
//!
//! Routing: `p = softmax(router(x))` over all experts (in f32), keep the `k` largest, renormalize
//! them to sum to 1, and sum the chosen experts' outputs weighted by them.

use candle_core::{DType, Tensor};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::layers::{softmax_f32, Linear, Mlp};
use crate::model::FeedForward;
use crate::weights::{TensorName, WeightSource};

/// Mixtral needs experts (checked by [`ModelConfig::validate`]); nothing else to check.
pub(crate) fn check_config(config: &ModelConfig) -> Result<()> {
    if config.num_experts == 0 {
        return Err(ModelError::InvalidConfig(
            "a Mixtral model needs num_local_experts > 0".into(),
        ));
    }
    Ok(())
}

/// The sparse MoE block of layer `layer`.
pub(crate) fn feed_forward(
    source: &dyn WeightSource,
    layer: usize,
    config: &ModelConfig,
    dtype: DType,
) -> Result<FeedForward> {
    let (hidden, ff) = (config.hidden_size, config.intermediate_size);
    let router = source.matrix(TensorName::Router(layer), config.num_experts, hidden, dtype)?;
    let experts = (0..config.num_experts)
        .map(|e| {
            Ok(Mlp::new(
                source.matrix(TensorName::ExpertGate(layer, e), ff, hidden, dtype)?,
                source.matrix(TensorName::ExpertUp(layer, e), ff, hidden, dtype)?,
                source.matrix(TensorName::ExpertDown(layer, e), hidden, ff, dtype)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(FeedForward::Sparse(SparseMoe {
        router,
        experts,
        top_k: config.experts_per_token,
    }))
}

/// A router and its experts.
#[derive(Debug, Clone)]
pub struct SparseMoe {
    pub(crate) router: Linear,
    pub(crate) experts: Vec<Mlp>,
    pub(crate) top_k: usize,
}

impl SparseMoe {
    /// The router's logits `[tokens, experts]` (before the softmax).
    pub fn router_logits(&self, x: &Tensor) -> Result<Tensor> {
        self.router.forward(x)
    }

    /// For each token, the chosen experts and their renormalized weights.
    pub fn route(&self, x: &Tensor) -> Result<Vec<Vec<(usize, f32)>>> {
        let probs = softmax_f32(&self.router_logits(x)?)?.to_vec2::<f32>()?;
        Ok(probs
            .iter()
            .map(|p| top_k_renormalized(p, self.top_k))
            .collect())
    }

    /// Applies the block to `[tokens, hidden]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let routes = self.route(x)?;
        // Group tokens by expert so every expert runs once on all of its tokens.
        let mut per_expert: Vec<(Vec<u32>, Vec<f32>)> = vec![(vec![], vec![]); self.experts.len()];
        for (t, chosen) in routes.iter().enumerate() {
            for &(e, w) in chosen {
                per_expert[e].0.push(t as u32);
                per_expert[e].1.push(w);
            }
        }
        let mut out = x.zeros_like()?;
        for (expert, (tokens, weights)) in self.experts.iter().zip(per_expert) {
            if tokens.is_empty() {
                continue;
            }
            let n = tokens.len();
            let idx = Tensor::from_vec(tokens, n, x.device())?;
            let w = Tensor::from_vec(weights, (n, 1), x.device())?.to_dtype(x.dtype())?;
            let y = expert
                .forward(&x.index_select(&idx, 0)?)?
                .broadcast_mul(&w)?;
            out = out.index_add(&idx, &y, 0)?;
        }
        Ok(out)
    }
}

/// The `k` largest probabilities (lowest index first on ties), scaled to sum to 1.
pub(crate) fn top_k_renormalized(probs: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order.truncate(k);
    let sum: f32 = order.iter().map(|&e| probs[e]).sum();
    order.into_iter().map(|e| (e, probs[e] / sum)).collect()
}

#[cfg(test)]
mod tests {
    use super::top_k_renormalized;

    #[test]
    fn top_two_are_renormalized() {
        let r = top_k_renormalized(&[0.1, 0.4, 0.2, 0.3], 2);
        assert_eq!(r.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 3]);
        assert!((r[0].1 - 4.0 / 7.0).abs() < 1e-6);
        assert!((r[1].1 - 3.0 / 7.0).abs() < 1e-6);
    }

    #[test]
    fn ties_prefer_the_lower_index() {
        let r = top_k_renormalized(&[0.25, 0.25, 0.25, 0.25], 2);
        assert_eq!(r.iter().map(|x| x.0).collect::<Vec<_>>(), vec![0, 1]);
    }
}
