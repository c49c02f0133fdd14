//! Token masks equal the brute-force answer (every token's bytes run through the
//! automaton one by one) on the Llama-3 and Mistral vocabularies, in states where the
//! index takes its shortcuts (inside free strings: plain text tokens set at once; property
//! names that may be any name: plain text set in bulk below the first bytes) and in
//! states where it walks the whole trie.
mod common;

use corral_index::{Index, Vocabulary};
use corral_schema::{compile, Options};
use serde_json::json;

fn brute_force(index: &Index, vocab: &Vocabulary, state: corral_index::State) -> Vec<u32> {
    (0..vocab.len() as u32)
        .filter(|&t| {
            if vocab.is_eos(t) {
                return index.is_accepting(state).unwrap();
            }
            vocab
                .token_bytes(t)
                .is_some_and(|b| index.next_state(state, b).unwrap().is_some())
        })
        .collect()
}

#[test]
fn masks_equal_brute_force() {
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "code": {"type": "string", "maxLength": 3},
            "text": {"type": "string", "maxLength": 300},
            "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}},
            "n": {"type": "integer"}
        },
        "required": ["name", "code"]
    });
    let compiled = compile(&schema, &Options::default()).unwrap();
    for name in ["llama-3", "mistral-7b-v0.1"] {
        let path = common::data(&format!("tokenizers/{name}/tokenizer.json"));
        let vocab = Vocabulary::from_tokenizer_file(&path).unwrap();
        let index = Index::from_program(compiled.program.clone(), &vocab).unwrap();
        for prefix in [
            "",
            "{\"name\": \"",
            "{\"name\": \"ab é",
            "{\"name\": \"x\\",
            "{\"name\": \"x\", \"code\": \"a",
            "{\"name\": \"x\", \"code\": \"\", \"text\": \"a",
            "{\"name\": \"x\", \"code\": \"\", \"text\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            // 50 characters left: short plain text tokens in bulk, long ones walked.
            &format!("{{\"name\": \"x\", \"code\": \"\", \"text\": \"{}", "a".repeat(250)),
            // 10 left: the whole trie walked.
            &format!("{{\"name\": \"x\", \"code\": \"\", \"text\": \"{}é", "a".repeat(289)),
            "{\"name\": \"x\", \"code\": \"\", \"tags\": [\"q",
            "{\"name\": \"x\", \"code\": \"\", \"extra\": {\"k\": [\"v",
            "{\"name\": \"x\", \"code\": \"\", \"n\": -1",
            // Property names: listed ones or any other (plain text taken in bulk a few
            // bytes in, where the name can no longer be a listed one).
            "{\"name\": \"x\", \"code\": \"\", \"",
            "{\"name\": \"x\", \"code\": \"\", \"te",
            "{\"name\": \"x\", \"code\": \"\", \"tagz",
            // Inside an escape of another name (canonically spelled).
            "{\"name\": \"x\", \"code\": \"\", \"te\\",
        ] {
            let state = index
                .next_state(index.start(), prefix.as_bytes())
                .unwrap()
                .unwrap_or_else(|| panic!("{prefix:?} is a valid prefix"));
            let mask = index.mask(state).unwrap();
            let allowed: Vec<u32> = (0..vocab.len() as u32)
                .filter(|&t| mask.contains(t))
                .collect();
            assert_eq!(allowed, brute_force(&index, &vocab, state), "{name}: {prefix:?}");
            assert!(!allowed.is_empty(), "{name}: {prefix:?}");
        }
    }
}
