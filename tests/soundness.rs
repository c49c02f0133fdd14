//! Soundness: random walks through [`Guide`] over real schemas and real tokenizers.
//! Every finished output must parse as JSON and validate against the schema with the
//! independent `jsonschema` crate.
mod common;

use std::time::Instant;

use corral_index::{Guide, Index, Vocabulary};
use corral_schema::{compile, Options};
use serde_json::Value;

/// SplitMix64: a small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const MAX_TOKENS: usize = 600;
const WALKS: usize = 3;

#[derive(Default, Debug)]
struct Tally {
    schemas: usize,
    compiled: usize,
    walks: usize,
    finished: usize,
    failures: Vec<String>,
}

/// One walk: uniform among allowed tokens (EOS only when allowed) until EOS or the cap.
fn walk(index: &Index, rng: &mut Rng) -> Option<Vec<u8>> {
    let mut guide = Guide::new(index.clone());
    let vocab = index.vocabulary();
    let mut out = Vec::new();
    for _ in 0..MAX_TOKENS {
        let words = guide.allowed_tokens().ok()?;
        let allowed: Vec<u32> = words
            .iter()
            .enumerate()
            .flat_map(|(w, &word)| {
                (0..64)
                    .filter(move |b| word >> b & 1 == 1)
                    .map(move |b| (w * 64 + b) as u32)
            })
            .collect();
        assert!(
            !allowed.is_empty(),
            "dead end: no token allowed after {:?}",
            String::from_utf8_lossy(&out)
        );
        let token = allowed[rng.below(allowed.len())];
        guide.advance(token).expect("an allowed token must advance");
        if vocab.is_eos(token) {
            assert!(guide.is_finished());
            return Some(out);
        }
        out.extend_from_slice(vocab.token_bytes(token).expect("allowed tokens have bytes"));
    }
    None
}

fn run(tokenizer: &str, options: &Options) -> Tally {
    let vocab = Vocabulary::from_tokenizer_file(common::data(&format!(
        "tokenizers/{tokenizer}/tokenizer.json"
    )))
    .unwrap();
    let schemas: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(common::data("soundness/schemas.json")).unwrap(),
    )
    .unwrap();
    let mut tally = Tally::default();
    let mut rng = Rng(0x5EED);
    let started = Instant::now();
    for entry in &schemas {
        let name = entry["name"].as_str().unwrap();
        let schema = &entry["schema"];
        tally.schemas += 1;
        let Ok(compiled) = compile(schema, options) else {
            continue;
        };
        let Ok(index) = Index::from_program(compiled.program.clone(), &vocab) else {
            continue;
        };
        let Ok(validator) = jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
        else {
            continue;
        };
        tally.compiled += 1;
        for _ in 0..WALKS {
            tally.walks += 1;
            let Some(bytes) = walk(&index, &mut rng) else {
                continue;
            };
            tally.finished += 1;
            let text = match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(e) => {
                    tally
                        .failures
                        .push(format!("{name}: output is not UTF-8: {e}"));
                    continue;
                }
            };
            match serde_json::from_str::<Value>(&text) {
                Ok(value) if validator.is_valid(&value) => {}
                Ok(value) => {
                    let errors: Vec<String> = validator
                        .iter_errors(&value)
                        .map(|e| e.to_string())
                        .collect();
                    tally.failures.push(format!(
                        "{name}: output does not validate ({errors:?}): {text}"
                    ))
                }
                Err(e) => tally
                    .failures
                    .push(format!("{name}: output is not JSON ({e}): {text}")),
            }
        }
    }
    println!("{tokenizer}: {tally:?} in {:.1?}", started.elapsed());
    tally
}

fn check(tokenizer: &str, options: &Options) {
    let tally = run(tokenizer, options);
    assert!(
        tally.compiled * 2 > tally.schemas,
        "too few schemas compiled: {tally:?}"
    );
    assert!(
        tally.finished * 4 > tally.walks,
        "too few walks finished: {tally:?}"
    );
    assert!(
        tally.failures.is_empty(),
        "unsound outputs:\n{}",
        tally.failures.join("\n")
    );
}

#[test]
fn random_walks_llama3() {
    check("llama-3", &Options::default());
}

#[test]
fn random_walks_mistral() {
    check("mistral-7b-v0.1", &Options::default());
}

/// Members in any order: the walks must still validate and never reach a dead end (a
/// separator where no member can follow, an object that cannot close).
#[test]
fn random_walks_llama3_any_property_order() {
    check(
        "llama-3",
        &Options {
            any_property_order: true,
            ..Options::default()
        },
    );
}
