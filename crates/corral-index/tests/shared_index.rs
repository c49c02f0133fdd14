//! One index shared by many threads, and a memory budget shared by many indexes.
use std::sync::Arc;

use corral_index::{Guide, Index, IndexError, IndexOptions, MemoryBudget, Vocabulary};

/// Single characters, pairs and triples of them and a few longer pieces: 18,000+ tokens
/// (masks of 2 KiB: they, not the automaton, fill a budget).
fn vocabulary() -> Vocabulary {
    let alphabet: Vec<u8> = b"{}[]\":, abcxyz0123456789-.".to_vec();
    let mut tokens: Vec<Option<Vec<u8>>> = alphabet.iter().map(|&c| Some(vec![c])).collect();
    for &a in &alphabet {
        for &b in &alphabet {
            tokens.push(Some(vec![a, b]));
            for &c in &alphabet {
                tokens.push(Some(vec![a, b, c]));
            }
        }
    }
    for piece in ["\"abc\"", "{\"", "\":", "\",\"", "123", "xyz", "\"}"] {
        tokens.push(Some(piece.as_bytes().to_vec()));
    }
    tokens.push(None);
    let eos = tokens.len() as u32 - 1;
    Vocabulary::from_bytes(tokens, vec![eos]).unwrap()
}

const REGEX: &str = r#"\{"[a-z]{1,6}":(-?[0-9]{1,4}|"[a-z ]{0,8}")(,"[a-z]{1,6}":(-?[0-9]{1,4}|"[a-z ]{0,8}")){0,3}\}"#;

/// Walk a few fixed paths through the index, collecting every mask on the way.
fn walk(index: &Index, seed: usize) -> Vec<Vec<u64>> {
    let vocab = index.vocabulary();
    let mut out = Vec::new();
    let mut guide = Guide::new(index.clone());
    for step in 0..40 {
        let mask = guide.allowed_tokens().unwrap().to_vec();
        out.push(mask.clone());
        // Pick an allowed token by a fixed rule (not EOS, unless it is the only one).
        let allowed: Vec<u32> = (0..vocab.len() as u32)
            .filter(|&t| mask[t as usize / 64] >> (t % 64) & 1 == 1)
            .collect();
        let non_eos: Vec<u32> = allowed
            .iter()
            .copied()
            .filter(|t| !vocab.eos_tokens().contains(t))
            .collect();
        let Some(&token) = non_eos.get((seed * 31 + step * 7) % non_eos.len().max(1)) else {
            break;
        };
        guide.advance(token).unwrap();
    }
    out
}

#[test]
fn threads_sharing_one_index_see_the_masks_of_a_private_one() {
    let vocab = vocabulary();
    let shared = Index::new(REGEX, &vocab).unwrap();
    let expected: Vec<Vec<Vec<u64>>> = (0..8)
        .map(|seed| walk(&Index::new(REGEX, &vocab).unwrap(), seed))
        .collect();
    let results: Vec<Vec<Vec<u64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|seed| {
                let index = shared.clone();
                scope.spawn(move || walk(&index, seed))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results, expected);
    assert!(shared.cached_masks() > 10);
}

#[test]
fn a_state_of_another_index_is_an_error() {
    let vocab = vocabulary();
    let small = Index::new("a", &vocab).unwrap();
    let big = Index::new(REGEX, &vocab).unwrap();
    let mut state = big.start();
    for b in br#"{"abc":12"# {
        state = big.next_state(state, &[*b]).unwrap().unwrap();
    }
    assert_eq!(small.mask(state).unwrap_err(), IndexError::UnknownState);
    assert_eq!(
        small.is_accepting(state).unwrap_err(),
        IndexError::UnknownState
    );
    assert_eq!(
        small.next_state(state, b"1").unwrap_err(),
        IndexError::UnknownState
    );
}

#[test]
fn the_budget_drops_masks_of_cold_indexes_and_they_come_back() {
    let vocab = vocabulary();
    let budget = MemoryBudget::new(usize::MAX);
    let options = IndexOptions {
        budget: Some(budget.clone()),
        ..IndexOptions::default()
    };
    let cold = Index::from_regex_with_options(REGEX, &vocab, &options).unwrap();
    let before: Vec<_> = (0..4).map(|seed| walk(&cold, seed)).collect();
    let cold_masks = cold.cached_masks();
    assert!(cold_masks > 10);
    // A second index, used after the first, under a budget that holds about one of them.
    let hot = Index::from_regex_with_options(&format!("x{REGEX}"), &vocab, &options).unwrap();
    let guide_on_cold = {
        let mut g = Guide::new(cold.clone());
        g.advance_bytes(br#"{"ab":"#).unwrap();
        g
    };
    budget.set_limit(budget.used() + 32 * 1024);
    let mut g = Guide::new(hot.clone());
    g.advance_bytes(b"x").unwrap();
    for seed in 0..4 {
        walk(&hot, seed);
    }
    assert!(budget.evictions() > 0);
    assert!(cold.cached_masks() < cold_masks);
    // The cold index still works: a guide made before the eviction goes on (and lets go
    // of the dropped masks, which it held until now), and the masks come back equal.
    let mut guide_on_cold = guide_on_cold;
    assert!(guide_on_cold.allowed_tokens().is_ok());
    assert!(budget.used() <= budget.limit(), "{budget:?}");
    let after: Vec<_> = (0..4).map(|seed| walk(&cold, seed)).collect();
    assert_eq!(after, before);
    // Dropping every index gives everything back.
    drop((cold, hot, g, guide_on_cold));
    assert_eq!(budget.used(), 0);
    assert!(Arc::strong_count(&budget) >= 1);
}
