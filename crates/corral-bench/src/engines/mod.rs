//! The constrained-decoding engines measured side by side.
//!
//! Each engine loads its vocabulary once per process ([`load`]), outside any timing.
//! [`Engine::compile`] plus [`Grammar::matcher`] plus one [`Matcher::compute_mask`] is
//! the timed "time to first mask" (TTFM); each [`Matcher::step`] is one timed
//! "time between masks" (TBM) sample.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

#[cfg(feature = "corral")]
pub mod corral;
pub mod llguidance;
pub mod outlines;

/// A constrained-decoding engine with its vocabulary loaded.
pub trait Engine {
    fn name(&self) -> &'static str;
    /// Compiles a JSON Schema. An unsupported or invalid schema is an `Err` (a compile
    /// error row), never a panic.
    fn compile(&self, schema: &Value) -> Result<Box<dyn Grammar>, String>;
}

/// A compiled schema, from which a fresh matcher is made for every test instance.
pub trait Grammar {
    fn matcher(&self) -> Result<Box<dyn Matcher>, String>;
    /// Heap footprint of the compiled artifact, where the engine reports one.
    fn memory_bytes(&self) -> Option<usize> {
        None
    }
    /// The intermediate regular expression, for engines that have one (`trace`).
    fn regex(&self) -> Option<String> {
        None
    }
}

/// Matching state for one instance.
pub trait Matcher {
    /// Computes the token mask of the current state (used once for TTFM).
    fn compute_mask(&mut self) -> Result<(), String>;
    /// One TBM sample: compute the mask of the current state, check `token`'s bit and,
    /// if it is set, advance by it. Returns whether the token was allowed.
    fn step(&mut self, token: u32) -> Result<bool, String>;
    /// Whether the document may end here (EOS allowed / accepting state).
    fn is_accepting(&mut self) -> bool;
}

/// Engine names accepted by `--engine`.
pub const ENGINE_NAMES: &[&str] = &["corral", "corral-any-order", "llguidance", "outlines"];

/// Whether this binary was built with the given engine.
pub fn available(name: &str) -> bool {
    matches!(name, "llguidance" | "outlines")
        || (matches!(name, "corral" | "corral-any-order") && cfg!(feature = "corral"))
}

/// Loads an engine's vocabulary from a Hugging Face `tokenizer.json`.
pub fn load(name: &str, tokenizer_json: &Path) -> Result<Box<dyn Engine>> {
    match name {
        "llguidance" => Ok(Box::new(llguidance::LlgEngine::load(tokenizer_json)?)),
        "outlines" => Ok(Box::new(outlines::OutlinesEngine::load(tokenizer_json)?)),
        #[cfg(feature = "corral")]
        "corral" => Ok(Box::new(corral::CorralEngine::load(tokenizer_json, false)?)),
        #[cfg(feature = "corral")]
        "corral-any-order" => Ok(Box::new(corral::CorralEngine::load(tokenizer_json, true)?)),
        #[cfg(not(feature = "corral"))]
        "corral" | "corral-any-order" => anyhow::bail!(
            "this corral-bench was built without the corral engine; \
             rebuild with `--features corral`"
        ),
        other => anyhow::bail!("unknown engine {other:?} (known: {ENGINE_NAMES:?})"),
    }
}

/// Sets bit `token` in a 32-bit-word mask; out-of-range ids are ignored.
pub(crate) fn set_bit32(mask: &mut [u32], token: u32) {
    if let Some(w) = mask.get_mut(token as usize / 32) {
        *w |= 1 << (token % 32);
    }
}

/// Reads bit `token` of a 32-bit-word mask; out-of-range ids read as unset.
pub(crate) fn get_bit32(mask: &[u32], token: u32) -> bool {
    mask.get(token as usize / 32)
        .is_some_and(|w| (w >> (token % 32)) & 1 == 1)
}
