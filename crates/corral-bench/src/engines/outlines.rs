//! outlines-core 0.2.14, used like the public MaskBench runner (`outlines_engine.py`):
//! `build_regex_from_schema(schema)` with the default whitespace pattern and recursion
//! depth, then `Index(regex, vocabulary)`; the mask of a state is the set of tokens
//! `Index::allowed_tokens` lists for it, written into a bitmask the way the Python
//! binding's `Guide.write_mask_into` does.
//!
//! `Vocabulary::from_pretrained` needs the Hugging Face hub (the `hugginface-hub`
//! feature, which is off here), so the vocabulary is built from the local
//! `tokenizer.json` with the same rules outlines-core applies internally
//! (`vocabulary/processor.rs`): a `ByteLevel` decoder means GPT-2 byte-to-unicode
//! tokens, a decoder `Sequence` with `ByteFallback` means SentencePiece pieces
//! (`<0xNN>` byte tokens, the `Replace` decoder's space character mapped back to a
//! space); non-special added tokens are inserted verbatim; the EOS token is left out.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use outlines_core::prelude::{Index, Vocabulary};
use serde_json::Value;
use tokenizers::{DecoderWrapper, Tokenizer};

use super::{get_bit32, set_bit32, Engine, Grammar, Matcher};

pub struct OutlinesEngine {
    vocabulary: Vocabulary,
    /// Number of token ids (mask width), including special tokens.
    vocab_size: usize,
}

impl OutlinesEngine {
    pub fn load(tokenizer_json: &Path) -> Result<OutlinesEngine> {
        let tok = Tokenizer::from_file(tokenizer_json)
            .map_err(|e| anyhow::anyhow!("outlines: loading {}: {e}", tokenizer_json.display()))?;
        let eos = eos_token_id(tokenizer_json, &tok)?;
        let vocabulary = build_vocabulary(&tok, eos)?;
        Ok(OutlinesEngine {
            vocabulary,
            vocab_size: tok.get_vocab_size(true),
        })
    }
}

impl Engine for OutlinesEngine {
    fn name(&self) -> &'static str {
        "outlines"
    }

    fn compile(&self, schema: &Value) -> Result<Box<dyn Grammar>, String> {
        let regex = outlines_core::json_schema::regex_from_value(schema, None, None)
            .map_err(|e| format!("regex: {e}"))?;
        let index = Index::new(&regex, &self.vocabulary).map_err(|e| format!("index: {e}"))?;
        Ok(Box::new(OutlinesGrammar {
            regex,
            index: Arc::new(index),
            words: self.vocab_size.div_ceil(32),
        }))
    }
}

struct OutlinesGrammar {
    regex: String,
    index: Arc<Index>,
    words: usize,
}

impl Grammar for OutlinesGrammar {
    fn regex(&self) -> Option<String> {
        Some(self.regex.clone())
    }

    fn matcher(&self) -> Result<Box<dyn Matcher>, String> {
        Ok(Box::new(OutlinesGuide {
            state: self.index.initial_state(),
            index: Arc::clone(&self.index),
            mask: vec![0; self.words],
        }))
    }
}

struct OutlinesGuide {
    index: Arc<Index>,
    state: u32,
    mask: Vec<u32>,
}

impl OutlinesGuide {
    fn fill_mask(&mut self) {
        self.mask.fill(0);
        if let Some(tokens) = self.index.allowed_tokens_iter(&self.state) {
            for &t in tokens {
                set_bit32(&mut self.mask, t);
            }
        }
    }
}

impl Matcher for OutlinesGuide {
    fn compute_mask(&mut self) -> Result<(), String> {
        self.fill_mask();
        Ok(())
    }

    fn step(&mut self, token: u32) -> Result<bool, String> {
        self.fill_mask();
        if !get_bit32(&self.mask, token) {
            return Ok(false);
        }
        match self.index.next_state(&self.state, &token) {
            Some(next) => {
                self.state = next;
                Ok(true)
            }
            None => Err(format!(
                "token {token} is in the mask of state {} but has no transition",
                self.state
            )),
        }
    }

    fn is_accepting(&mut self) -> bool {
        self.index.is_final_state(&self.state)
    }
}

/// The EOS token: `eos_token` of a `tokenizer_config.json` next to the tokenizer file,
/// else the first of a few well-known EOS spellings present in the vocabulary.
fn eos_token_id(tokenizer_json: &Path, tok: &Tokenizer) -> Result<u32> {
    let config = tokenizer_json.with_file_name("tokenizer_config.json");
    if let Ok(text) = std::fs::read_to_string(&config) {
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", config.display()))?;
        let name = match v.get("eos_token") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).map(String::from),
            _ => None,
        };
        if let Some(id) = name.as_deref().and_then(|n| tok.token_to_id(n)) {
            return Ok(id);
        }
    }
    for name in [
        "<|eot_id|>",
        "<|end_of_text|>",
        "<|endoftext|>",
        "<|im_end|>",
        "</s>",
    ] {
        if let Some(id) = tok.token_to_id(name) {
            return Ok(id);
        }
    }
    bail!("outlines: cannot determine the EOS token (no tokenizer_config.json eos_token)")
}

enum Level {
    Byte,
    ByteFallback { spacechar: String },
}

fn level(tok: &Tokenizer) -> Result<Level> {
    match tok.get_decoder() {
        Some(DecoderWrapper::ByteLevel(_)) => Ok(Level::Byte),
        Some(DecoderWrapper::Sequence(seq)) => {
            let mut byte_fallback = false;
            let mut spacechar = " ".to_string();
            for d in seq.get_decoders() {
                match d {
                    DecoderWrapper::ByteFallback(_) => byte_fallback = true,
                    DecoderWrapper::Replace(r) => {
                        // The fields are private; read them back through serde, as
                        // outlines-core does.
                        let v = serde_json::to_value(r)?;
                        let content = v.get("content").and_then(Value::as_str);
                        let pattern = v.pointer("/pattern/String").and_then(Value::as_str);
                        if let (Some(" "), Some(p)) = (content, pattern) {
                            if p.chars().count() == 1 {
                                spacechar = p.to_string();
                            }
                        }
                    }
                    _ => {}
                }
            }
            if byte_fallback {
                Ok(Level::ByteFallback { spacechar })
            } else {
                bail!("outlines: unsupported tokenizer decoder (sequence without ByteFallback)")
            }
        }
        _ => bail!("outlines: unsupported tokenizer decoder"),
    }
}

/// GPT-2's byte-to-unicode table, reversed.
fn gpt2_char_map() -> HashMap<char, u8> {
    let mut map = HashMap::with_capacity(256);
    let mut next = 0x100u32;
    for b in 0..=255u8 {
        let c = b as char;
        if matches!(c, '!'..='~' | '\u{A1}'..='\u{AC}' | '\u{AE}'..='\u{FF}') {
            map.insert(c, b);
        } else if let Some(c) = char::from_u32(next) {
            map.insert(c, b);
            next += 1;
        }
    }
    map
}

fn token_bytes(level: &Level, map: &HashMap<char, u8>, token: &str) -> Result<Vec<u8>> {
    match level {
        Level::Byte => token
            .chars()
            .map(|c| {
                map.get(&c)
                    .copied()
                    .with_context(|| format!("outlines: token {token:?} is not byte-level"))
            })
            .collect(),
        Level::ByteFallback { spacechar } => {
            if token.len() == 6 && token.starts_with("<0x") && token.ends_with('>') {
                let b = u8::from_str_radix(&token[3..5], 16)
                    .with_context(|| format!("outlines: bad byte token {token:?}"))?;
                Ok(vec![b])
            } else {
                Ok(token.replace(spacechar.as_str(), " ").into_bytes())
            }
        }
    }
}

fn build_vocabulary(tok: &Tokenizer, eos: u32) -> Result<Vocabulary> {
    let level = level(tok)?;
    let map = gpt2_char_map();
    let mut vocabulary = Vocabulary::new(eos);
    let mut added: Vec<_> = tok.get_added_tokens_decoder().into_iter().collect();
    added.sort_by_key(|(id, _)| *id);
    for (id, t) in added {
        if !t.special && id != eos {
            vocabulary.try_insert(t.content.clone(), id)?;
        }
    }
    let mut model: Vec<_> = tok.get_vocab(false).into_iter().collect();
    model.sort_by_key(|(_, id)| *id);
    for (token, id) in model {
        if id != eos {
            vocabulary.try_insert(token_bytes(&level, &map, &token)?, id)?;
        }
    }
    Ok(vocabulary)
}
