//! The vocabulary as byte strings: what each token id appends to the output.
use std::path::Path;
use std::sync::Arc;

use tokenizers::{DecoderWrapper, Tokenizer};

use crate::error::VocabularyError;
use crate::toktrie::TokenTrie;

/// Names of special tokens that end a generation, across common model families.
const EOS_NAMES: &[&str] = &[
    "</s>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|end|>",
    "<eos>",
    "<|eom_id|>",
];

/// How a tokenizer spells bytes in its token strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenEncoding {
    /// GPT-2 byte-level BPE (Llama-3, SmolLM2, …): each byte is one printable character.
    ByteLevel,
    /// SentencePiece (Llama-2, Mistral, …): `▁` is a space, `<0xNN>` is a raw byte.
    SentencePiece,
    /// Token strings are the text itself.
    Plain,
}

/// Token id → bytes, plus the end-of-sequence tokens and the token trie.
///
/// Cheap to clone (shared). Special tokens other than EOS have no bytes and are never
/// allowed by an index.
#[derive(Clone, Debug)]
pub struct Vocabulary {
    inner: Arc<VocabInner>,
}

#[derive(Debug)]
struct VocabInner {
    tokens: Vec<Option<Vec<u8>>>,
    eos: Vec<u32>,
    trie: TokenTrie,
    /// Tokens that are plain text (see [`plain_text_chars`]), as a mask.
    plain_text: Box<[u64]>,
    /// The plain text tokens of at most [`SHORT_PLAIN_CHARS`] characters, as a mask.
    short_plain: Box<[u64]>,
    /// Entry `c`: the plain text tokens of at most `c` characters, as a mask (`c` below
    /// [`SHORT_PLAIN_CHARS`]).
    plain_up_to: Vec<Box<[u64]>>,
    /// The trie of the plain text tokens of more than [`SHORT_PLAIN_CHARS`] characters.
    long_plain_trie: TokenTrie,
    /// The trie of every other token.
    other_trie: TokenTrie,
    /// `trie`'s nodes mapped to `other_trie`'s ([`TokenTrie::node_map`]).
    other_map: Vec<u32>,
    /// The most characters in a plain text token.
    max_plain_chars: u32,
    /// The most bytes in a token (EOS tokens aside).
    max_token_bytes: u32,
}

/// Plain text tokens up to this many characters are taken in bulk inside a string that
/// has at least this many characters left (most of a vocabulary: 121k of Llama-3's 122k
/// plain text tokens); the few longer ones are walked one by one. The length left is
/// then found by looking this far ahead, not as far as the longest token (128
/// characters in Llama-3), which costs a few DFA states per character.
pub(crate) const SHORT_PLAIN_CHARS: u32 = 16;

/// The number of characters of a *plain text* token — complete UTF-8 characters, none of
/// them a control character, `"` or `\` — or `None` for other tokens. Inside a JSON
/// string plain text tokens are usually all allowed at once (see
/// `LazyDfa::plain_text_depth`).
pub(crate) fn plain_text_chars(bytes: &[u8]) -> Option<u32> {
    let text = std::str::from_utf8(bytes).ok()?;
    let plain = !text.is_empty() && text.chars().all(|c| c >= ' ' && c != '"' && c != '\\');
    plain.then(|| text.chars().count() as u32)
}

impl Vocabulary {
    /// Build from explicit byte strings (`None` for tokens that can never be emitted as
    /// text) and the EOS token ids.
    ///
    /// ```
    /// use corral_index::Vocabulary;
    /// let vocab = Vocabulary::from_bytes(vec![Some(b"a".to_vec()), Some(b"{".to_vec()), None], vec![2]).unwrap();
    /// assert_eq!(vocab.len(), 3);
    /// assert_eq!(vocab.token_bytes(1), Some(&b"{"[..]));
    /// ```
    pub fn from_bytes(
        tokens: Vec<Option<Vec<u8>>>,
        eos: Vec<u32>,
    ) -> Result<Vocabulary, VocabularyError> {
        if let Some(&bad) = eos.iter().find(|&&e| e as usize >= tokens.len()) {
            return Err(VocabularyError::EosOutOfRange {
                id: bad,
                len: tokens.len(),
            });
        }
        if tokens.len() > u32::MAX as usize {
            return Err(VocabularyError::TooLarge(tokens.len()));
        }
        let texts = || {
            tokens
                .iter()
                .enumerate()
                .filter(|(id, _)| !eos.contains(&(*id as u32)))
                .filter_map(|(id, b)| b.as_deref().map(|b| (id as u32, b)))
        };
        let trie = TokenTrie::new(texts());
        let mut plain_text = vec![0u64; tokens.len().div_ceil(64)].into_boxed_slice();
        let mut short_plain = plain_text.clone();
        // Plain text tokens by their number of characters, below SHORT_PLAIN_CHARS.
        let mut by_chars: Vec<Vec<u32>> = vec![Vec::new(); SHORT_PLAIN_CHARS as usize];
        let mut max_plain_chars = 0;
        let max_token_bytes = texts().map(|(_, b)| b.len()).max().unwrap_or(0);
        let mut others = Vec::new();
        let mut long_plain = Vec::new();
        for (id, bytes) in texts() {
            match plain_text_chars(bytes) {
                Some(chars) => {
                    plain_text[id as usize / 64] |= 1 << (id % 64);
                    max_plain_chars = max_plain_chars.max(chars);
                    if let Some(ids) = by_chars.get_mut(chars as usize) {
                        ids.push(id);
                    }
                    if chars <= SHORT_PLAIN_CHARS {
                        short_plain[id as usize / 64] |= 1 << (id % 64);
                    } else {
                        long_plain.push((id, bytes));
                    }
                }
                None => others.push((id, bytes)),
            }
        }
        let mut plain_up_to = vec![plain_text.iter().map(|_| 0).collect::<Box<[u64]>>()];
        for ids in &by_chars[1..] {
            let mut mask = plain_up_to[plain_up_to.len() - 1].clone();
            for &id in ids {
                mask[id as usize / 64] |= 1 << (id % 64);
            }
            plain_up_to.push(mask);
        }
        let other_trie = TokenTrie::new(others);
        let long_plain_trie = TokenTrie::new(long_plain);
        let other_map = trie.node_map(&other_trie);
        Ok(Vocabulary {
            inner: Arc::new(VocabInner {
                tokens,
                eos,
                trie,
                plain_text,
                short_plain,
                plain_up_to,
                long_plain_trie,
                other_trie,
                other_map,
                max_plain_chars,
                max_token_bytes: u32::try_from(max_token_bytes).unwrap_or(u32::MAX),
            }),
        })
    }

    /// Load a `tokenizer.json` file; see [`Vocabulary::from_tokenizer`].
    pub fn from_tokenizer_file(path: impl AsRef<Path>) -> Result<Vocabulary, VocabularyError> {
        let path = path.as_ref();
        let tokenizer = Tokenizer::from_file(path)
            .map_err(|e| VocabularyError::Tokenizer(format!("{}: {e}", path.display())))?;
        Vocabulary::from_tokenizer(&tokenizer)
    }

    /// Build from a Hugging Face tokenizer. EOS tokens are the special tokens with a
    /// conventional end-of-sequence name (`</s>`, `<|eot_id|>`, `<|end_of_text|>`,
    /// `<|im_end|>`, `<|endoftext|>`, …); use [`Vocabulary::with_eos`] to choose others.
    pub fn from_tokenizer(tokenizer: &Tokenizer) -> Result<Vocabulary, VocabularyError> {
        let encoding = detect_encoding(tokenizer);
        let vocab = tokenizer.get_vocab(true);
        let size = vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0);
        let mut tokens: Vec<Option<Vec<u8>>> = vec![None; size];
        let added = tokenizer.get_added_tokens_decoder();
        let mut eos = Vec::new();
        for (text, &id) in &vocab {
            let bytes = match added.get(&id) {
                Some(token) if token.special => {
                    if EOS_NAMES.contains(&token.content.as_str()) {
                        eos.push(id);
                    }
                    None
                }
                Some(token) => Some(token.content.as_bytes().to_vec()),
                None => token_bytes(text, encoding),
            };
            tokens[id as usize] = bytes;
        }
        eos.sort_unstable();
        Vocabulary::from_bytes(tokens, eos)
    }

    /// The same vocabulary with other EOS tokens.
    pub fn with_eos(&self, eos: Vec<u32>) -> Result<Vocabulary, VocabularyError> {
        Vocabulary::from_bytes(self.inner.tokens.clone(), eos)
    }

    /// Number of token ids (the size of a mask).
    pub fn len(&self) -> usize {
        self.inner.tokens.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.inner.tokens.is_empty()
    }

    /// The bytes token `id` appends, or `None` for special tokens and unknown ids.
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.inner.tokens.get(id as usize)?.as_deref()
    }

    /// End-of-sequence token ids.
    pub fn eos_tokens(&self) -> &[u32] {
        &self.inner.eos
    }

    /// Whether `id` is an EOS token.
    pub fn is_eos(&self, id: u32) -> bool {
        self.inner.eos.contains(&id)
    }

    pub(crate) fn trie(&self) -> &TokenTrie {
        &self.inner.trie
    }

    /// The plain text tokens, as a mask (bit `t % 64` of word `t / 64`).
    pub(crate) fn plain_text(&self) -> &[u64] {
        &self.inner.plain_text
    }

    /// The most characters in a plain text token.
    pub(crate) fn max_plain_chars(&self) -> u32 {
        self.inner.max_plain_chars
    }

    /// The most bytes in a token (EOS tokens aside, which end the text).
    pub fn max_token_bytes(&self) -> u32 {
        self.inner.max_token_bytes
    }

    /// The plain text tokens of at most [`SHORT_PLAIN_CHARS`] characters, as a mask.
    pub(crate) fn short_plain(&self) -> &[u64] {
        &self.inner.short_plain
    }

    /// The plain text tokens of at most `chars` characters (below
    /// [`SHORT_PLAIN_CHARS`]), as a mask.
    pub(crate) fn plain_up_to(&self, chars: u32) -> Option<&[u64]> {
        self.inner.plain_up_to.get(chars as usize).map(|m| &m[..])
    }

    /// The trie of the plain text tokens of more than [`SHORT_PLAIN_CHARS`] characters.
    pub(crate) fn long_plain_trie(&self) -> &TokenTrie {
        &self.inner.long_plain_trie
    }

    /// The trie of the tokens that are not plain text.
    pub(crate) fn other_trie(&self) -> &TokenTrie {
        &self.inner.other_trie
    }

    /// The full trie's nodes mapped to the other tokens' trie's.
    pub(crate) fn other_map(&self) -> &[u32] {
        &self.inner.other_map
    }

    /// Heap memory used, in bytes (shared between all indexes built on it).
    pub fn memory_bytes(&self) -> usize {
        self.inner.trie.memory_bytes()
            + self.inner.other_trie.memory_bytes()
            + self.inner.long_plain_trie.memory_bytes()
            + self.inner.short_plain.len() * 8
            + self.inner.other_map.len() * 4
            + self.inner.plain_text.len() * 8
            + self
                .inner
                .tokens
                .iter()
                .map(|t| t.as_ref().map_or(0, Vec::capacity) + 24)
                .sum::<usize>()
    }
}

/// Decide how token strings encode bytes, from the tokenizer's decoder.
pub fn detect_encoding(tokenizer: &Tokenizer) -> TokenEncoding {
    fn of(decoder: &DecoderWrapper) -> Option<TokenEncoding> {
        match decoder {
            DecoderWrapper::ByteLevel(_) => Some(TokenEncoding::ByteLevel),
            DecoderWrapper::Metaspace(_) | DecoderWrapper::ByteFallback(_) => {
                Some(TokenEncoding::SentencePiece)
            }
            DecoderWrapper::Sequence(seq) => seq.get_decoders().iter().find_map(of),
            _ => None,
        }
    }
    if let Some(found) = tokenizer.get_decoder().and_then(of) {
        return found;
    }
    // Heuristics when the decoder says nothing: SentencePiece's word marker.
    let vocab = tokenizer.get_vocab(false);
    if vocab.keys().any(|k| k.starts_with('\u{2581}')) {
        TokenEncoding::SentencePiece
    } else if vocab.keys().any(|k| k.starts_with('\u{120}')) {
        TokenEncoding::ByteLevel
    } else {
        TokenEncoding::Plain
    }
}

/// The bytes of one (non-added) token string.
pub fn token_bytes(text: &str, encoding: TokenEncoding) -> Option<Vec<u8>> {
    match encoding {
        TokenEncoding::Plain => Some(text.as_bytes().to_vec()),
        TokenEncoding::SentencePiece => {
            if let Some(hex) = text.strip_prefix("<0x").and_then(|t| t.strip_suffix('>')) {
                if hex.len() == 2 {
                    if let Ok(b) = u8::from_str_radix(hex, 16) {
                        return Some(vec![b]);
                    }
                }
            }
            Some(text.replace('\u{2581}', " ").into_bytes())
        }
        TokenEncoding::ByteLevel => {
            let table = byte_level_decoder();
            text.chars().map(table).collect()
        }
    }
}

/// GPT-2's byte ↔ printable character table, decoding direction.
fn byte_level_decoder() -> impl Fn(char) -> Option<u8> {
    |c: char| {
        let cp = c as u32;
        let printable = |b: u32| {
            (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
        };
        if cp < 256 && printable(cp) {
            return Some(cp as u8);
        }
        // The other bytes are mapped, in increasing order, to 256, 257, …
        if (256..256 + 68).contains(&cp) {
            let mut n = 256;
            for b in 0u32..256 {
                if !printable(b) {
                    if n == cp {
                        return Some(b as u8);
                    }
                    n += 1;
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_table_round_trips() {
        let decode = byte_level_decoder();
        assert_eq!(decode('Ġ'), Some(b' '));
        assert_eq!(decode('Ċ'), Some(b'\n'));
        assert_eq!(decode('a'), Some(b'a'));
        assert_eq!(decode('ĉ'), Some(b'\t'));
        assert_eq!(decode('\u{100}'), Some(0));
        assert_eq!(decode('\u{143}'), Some(0xAD));
        assert_eq!(decode('中'), None);
    }

    #[test]
    fn sentencepiece_bytes() {
        assert_eq!(
            token_bytes("▁Hello", TokenEncoding::SentencePiece),
            Some(b" Hello".to_vec())
        );
        assert_eq!(
            token_bytes("<0x0A>", TokenEncoding::SentencePiece),
            Some(vec![10])
        );
        assert_eq!(
            token_bytes("<0xE2>", TokenEncoding::SentencePiece),
            Some(vec![0xE2])
        );
    }
}
