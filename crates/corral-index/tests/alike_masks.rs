//! States inside a long counted repetition share masks (positions far from its bounds
//! allow the same tokens); every shared mask must still be exactly the tokens that lead
//! somewhere from its own state.
use std::sync::Arc;

use corral_index::{Index, State, Vocabulary};

/// Tokens of one to four pieces over an alphabet with a two-byte character, an escape
/// and the string's quote: no token is longer than 8 bytes.
fn vocabulary() -> Vocabulary {
    let pieces: [&[u8]; 7] = [b"a", b"b", "é".as_bytes(), b"\\n", b"\"", b"}", b"{"];
    let mut tokens: Vec<Option<Vec<u8>>> = Vec::new();
    let mut frontier: Vec<Vec<u8>> = vec![Vec::new()];
    for _ in 0..4 {
        let mut next = Vec::new();
        for prefix in &frontier {
            for piece in pieces {
                let mut t = prefix.clone();
                t.extend_from_slice(piece);
                tokens.push(Some(t.clone()));
                next.push(t);
            }
        }
        frontier = next;
    }
    tokens.push(None);
    let eos = tokens.len() as u32 - 1;
    Vocabulary::from_bytes(tokens, vec![eos]).unwrap()
}

/// A string of `{min,max}` characters: plain, `é`, or the escape `\n`.
fn regex(min: u32, max: Option<u32>) -> String {
    let max = max.map_or(String::new(), |m| m.to_string());
    format!(r#"\{{"(?:[ab]|é|\\n){{{min},{max}}}"\}}"#)
}

/// The tokens whose bytes lead somewhere from `state`, EOS when it is accepting.
fn brute_force(index: &Index, state: State) -> Vec<u32> {
    let vocab = index.vocabulary();
    let mut allowed: Vec<u32> = (0..vocab.len() as u32)
        .filter(|&t| {
            vocab
                .token_bytes(t)
                .is_some_and(|b| index.next_state(state, b).unwrap().is_some())
        })
        .collect();
    if index.is_accepting(state).unwrap() {
        allowed.extend_from_slice(vocab.eos_tokens());
    }
    allowed
}

fn allowed(index: &Index, state: State) -> Vec<u32> {
    let mask = index.mask(state).unwrap();
    (0..index.vocabulary().len() as u32)
        .filter(|&t| mask.contains(t))
        .collect()
}

/// The state after `{"` and `chars` characters, each `piece`.
fn inside(index: &Index, chars: usize, piece: &str) -> State {
    let text = format!("{{\"{}", piece.repeat(chars));
    index
        .next_state(index.start(), text.as_bytes())
        .unwrap()
        .expect("alive")
}

/// Check the mask of every position of `{min,max}` (each `(min, max)` of `bounds`),
/// reached through each of `pieces` in turn: the masks of earlier walks are in the
/// cache when later ones look, so shared masks get checked.
fn check_every_position(
    regex: impl Fn(u32, Option<u32>) -> String,
    bounds: &[(u32, Option<u32>)],
    pieces: &[&str],
) {
    let vocab = vocabulary();
    for &(min, max) in bounds {
        let index = Index::new(&regex(min, max), &vocab).unwrap();
        let last = max.unwrap_or(min + 20) as usize;
        for piece in pieces {
            for chars in 0..=last {
                let state = inside(&index, chars, piece);
                assert_eq!(
                    allowed(&index, state),
                    brute_force(&index, state),
                    "{} after {chars} × {piece:?}",
                    regex(min, max)
                );
            }
        }
    }
}

#[test]
fn every_position_of_a_counted_string_gets_exactly_its_tokens() {
    check_every_position(
        regex,
        &[(12, Some(40)), (0, Some(30)), (12, None), (3, Some(9))],
        &["a", "é", "\\n", "b"],
    );
}

/// A name of `{min,max}` one-byte characters (written-out copies, no procedure).
fn one_byte_regex(min: u32, max: Option<u32>) -> String {
    let max = max.map_or(String::new(), |m| m.to_string());
    format!(r#"\{{"[ab\-]{{{min},{max}}}"\}}"#)
}

#[test]
fn every_position_of_written_out_copies_gets_exactly_its_tokens() {
    check_every_position(
        one_byte_regex,
        &[(12, Some(40)), (1, Some(30)), (12, None), (0, Some(9))],
        &["a", "b"],
    );
    let vocab = vocabulary();
    let index = Index::new(&one_byte_regex(12, Some(40)), &vocab).unwrap();
    let mask_at = |chars| index.mask(inside(&index, chars, "a")).unwrap();
    assert!(Arc::ptr_eq(&mask_at(14), &mask_at(31)));
    assert!(Arc::ptr_eq(&mask_at(0), &mask_at(3)));
    assert!(!Arc::ptr_eq(&mask_at(32), &mask_at(33)));
}

#[test]
fn positions_far_from_the_bounds_share_one_mask() {
    let vocab = vocabulary();
    assert_eq!(vocab.max_token_bytes(), 8);
    let index = Index::new(&regex(12, Some(40)), &vocab).unwrap();
    let mask_at = |chars| index.mask(inside(&index, chars, "a")).unwrap();
    // Past the minimum, 8 bytes (so 8 characters) from the maximum or more.
    assert!(Arc::ptr_eq(&mask_at(14), &mask_at(20)));
    assert!(Arc::ptr_eq(&mask_at(13), &mask_at(31)));
    // More than 8 characters below the minimum.
    assert!(Arc::ptr_eq(&mask_at(1), &mask_at(3)));
    // Near a bound each position is its own.
    assert!(!Arc::ptr_eq(&mask_at(33), &mask_at(34)));
    assert!(!Arc::ptr_eq(&mask_at(5), &mask_at(6)));
    // Tokens hold at most four characters: three left allow more than two.
    assert_ne!(mask_at(37).count(), mask_at(38).count());
}

#[test]
fn a_body_that_may_be_empty_shares_nothing_and_stays_exact() {
    let vocab = vocabulary();
    // `(?:a?é?){0,30}`: a copy may match nothing, so copies are not counted by bytes.
    let index = Index::new(r#"\{"(?:a?é?|\\n){0,30}"\}"#, &vocab).unwrap();
    for chars in 0..=40 {
        let Some(state) = index
            .next_state(
                index.start(),
                format!("{{\"{}", "a".repeat(chars)).as_bytes(),
            )
            .unwrap()
        else {
            break;
        };
        assert_eq!(allowed(&index, state), brute_force(&index, state));
    }
}
