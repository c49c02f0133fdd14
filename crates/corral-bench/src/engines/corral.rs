//! corral: JSON Schema → regex (`corral_schema::compile`) → token index
//! (`corral_index::Index::new`); the guide exposes the mask of the current state as
//! 64-bit words (bit `i % 64` of word `i / 64` is token `i`).
//!
//! The index computes masks lazily and caches them in the (shared) `Index`, so later
//! tests of the same schema reuse masks computed by earlier ones; `memory_bytes` is
//! read after all tests of a schema and includes those cached masks.

use std::path::Path;

use anyhow::Result;
use corral_index::{Guide, Index, Vocabulary};
use serde_json::Value;

use super::{Engine, Grammar, Matcher};

pub struct CorralEngine {
    vocabulary: Vocabulary,
    options: corral_schema::Options,
    name: &'static str,
}

impl CorralEngine {
    /// `any_property_order`: [`corral_schema::Options::any_property_order`] (the engine
    /// is then named `corral-any-order`).
    pub fn load(tokenizer_json: &Path, any_property_order: bool) -> Result<CorralEngine> {
        let tok = tokenizers::Tokenizer::from_file(tokenizer_json)
            .map_err(|e| anyhow::anyhow!("corral: loading {}: {e}", tokenizer_json.display()))?;
        let vocabulary = Vocabulary::from_tokenizer(&tok)
            .map_err(|e| anyhow::anyhow!("corral: building the vocabulary: {e}"))?;
        Ok(CorralEngine {
            vocabulary,
            options: corral_schema::Options {
                any_property_order,
                ..corral_schema::Options::default()
            },
            name: if any_property_order {
                "corral-any-order"
            } else {
                "corral"
            },
        })
    }
}

impl Engine for CorralEngine {
    fn name(&self) -> &'static str {
        self.name
    }

    fn compile(&self, schema: &Value) -> Result<Box<dyn Grammar>, String> {
        let compiled =
            corral_schema::compile(schema, &self.options).map_err(|e| format!("schema: {e}"))?;
        let index = Index::from_program(compiled.program.clone(), &self.vocabulary)
            .map_err(|e| format!("index: {e}"))?;
        Ok(Box::new(CorralGrammar { index }))
    }
}

struct CorralGrammar {
    index: Index,
}

impl Grammar for CorralGrammar {
    fn regex(&self) -> Option<String> {
        // The automaton is built without a regex; its text view writes shared parts out
        // in full and can be far too large to print. Describe the automaton instead.
        Some(format!(
            "(no regex: an automaton of {} states)",
            self.index.program_states()
        ))
    }

    fn matcher(&self) -> Result<Box<dyn Matcher>, String> {
        Ok(Box::new(CorralMatcher {
            guide: Guide::new(self.index.clone()),
        }))
    }

    fn memory_bytes(&self) -> Option<usize> {
        Some(self.index.memory_bytes())
    }
}

struct CorralMatcher {
    guide: Guide,
}

impl Matcher for CorralMatcher {
    fn compute_mask(&mut self) -> Result<(), String> {
        let words = self
            .guide
            .allowed_tokens()
            .map_err(|e| format!("mask: {e}"))?;
        std::hint::black_box(words);
        Ok(())
    }

    fn step(&mut self, token: u32) -> Result<bool, String> {
        let words = self
            .guide
            .allowed_tokens()
            .map_err(|e| format!("mask: {e}"))?;
        let allowed = words
            .get(token as usize / 64)
            .is_some_and(|w| (w >> (token % 64)) & 1 == 1);
        if allowed {
            self.guide
                .advance(token)
                .map_err(|e| format!("advance: {e}"))?;
        }
        Ok(allowed)
    }

    fn is_accepting(&mut self) -> bool {
        self.guide.is_accepting()
    }
}
