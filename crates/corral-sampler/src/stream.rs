//! [`TextStream`]: token bytes in, text deltas out (cut at UTF-8 boundaries, held back
//! while they could start a stop string).

/// Turns a sequence of token byte strings into text deltas.
///
/// A delta never ends inside a UTF-8 sequence (the rest comes with the next token), and text
/// that could be the start of a stop string is held back until it is known not to be. The
/// first occurrence of a stop string ends the text, the stop string excluded (OpenAI
/// semantics).
///
/// ```
/// use corral_sampler::TextStream;
/// let mut s = TextStream::new(vec!["\n\n".into()]);
/// assert_eq!(s.push("é".as_bytes()[..1].as_ref()), "");   // half a character: held
/// assert_eq!(s.push(&"é".as_bytes()[1..]), "é");
/// assert_eq!(s.push(b"ok\n"), "ok");                      // "\n" could start "\n\n"
/// assert_eq!(s.push(b"\nmore"), "");                      // stop string found
/// assert!(s.is_stopped());
/// assert_eq!(s.text(), "éok");
/// ```
#[derive(Clone, Debug, Default)]
pub struct TextStream {
    bytes: Vec<u8>,
    emitted: usize,
    stop: Vec<String>,
    stopped_at: Option<usize>,
}

impl TextStream {
    /// A stream that ends at the first of `stop` (empty strings are ignored).
    pub fn new(stop: Vec<String>) -> TextStream {
        TextStream {
            stop: stop.into_iter().filter(|s| !s.is_empty()).collect(),
            ..TextStream::default()
        }
    }

    /// Whether a stop string was found.
    pub fn is_stopped(&self) -> bool {
        self.stopped_at.is_some()
    }

    /// Append one token's bytes; returns the text that became final (may be empty).
    /// After a stop string, nothing more is taken.
    pub fn push(&mut self, token: &[u8]) -> String {
        if self.stopped_at.is_some() {
            return String::new();
        }
        let before = self.bytes.len();
        self.bytes.extend_from_slice(token);
        let longest = self.stop.iter().map(String::len).max().unwrap_or(0);
        let from = before.saturating_sub(longest.saturating_sub(1));
        let found = self
            .stop
            .iter()
            .filter_map(|s| find(&self.bytes[from..], s.as_bytes()).map(|i| from + i))
            .min();
        let end = match found {
            Some(at) => {
                self.stopped_at = Some(at);
                at
            }
            None => self.bytes.len() - self.held_suffix(),
        };
        self.emit_until(end, false)
    }

    /// Everything not emitted yet (held-back text and incomplete UTF-8 at the end, the
    /// latter as U+FFFD); call once after the last token.
    pub fn finish(&mut self) -> String {
        let end = self.stopped_at.unwrap_or(self.bytes.len());
        self.emit_until(end, true)
    }

    /// The whole text (up to a stop string), incomplete UTF-8 as U+FFFD.
    pub fn text(&self) -> String {
        let end = self.stopped_at.unwrap_or(self.bytes.len());
        String::from_utf8_lossy(&self.bytes[..end]).into_owned()
    }

    /// The bytes taken so far (up to a stop string).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.stopped_at.unwrap_or(self.bytes.len())]
    }

    /// Length of the longest suffix that is a proper prefix of a stop string.
    fn held_suffix(&self) -> usize {
        let mut held = 0;
        for s in &self.stop {
            let s = s.as_bytes();
            for n in (1..s.len().min(self.bytes.len() + 1)).rev() {
                if n > held && self.bytes.ends_with(&s[..n]) {
                    held = n;
                    break;
                }
            }
        }
        held
    }

    fn emit_until(&mut self, end: usize, last: bool) -> String {
        let mut out = String::new();
        while self.emitted < end {
            match std::str::from_utf8(&self.bytes[self.emitted..end]) {
                Ok(text) => {
                    out.push_str(text);
                    self.emitted = end;
                }
                Err(e) => {
                    let valid = self.emitted + e.valid_up_to();
                    // Checked just above: the bytes up to `valid` are UTF-8.
                    out.push_str(&String::from_utf8_lossy(&self.bytes[self.emitted..valid]));
                    self.emitted = valid;
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{FFFD}');
                            self.emitted += n;
                        }
                        // Incomplete sequence at the end: wait for the next token.
                        None if !last => break,
                        None => {
                            out.push('\u{FFFD}');
                            self.emitted = end;
                        }
                    }
                }
            }
        }
        out
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_concatenate_to_the_text() {
        let mut s = TextStream::new(vec!["END".into(), "xyz".into()]);
        let pieces: [&[u8]; 6] = [b"ab", b"E", b"N", b"x", b"\xF0\x9F", b"\x98\x80 EN"];
        let mut out = String::new();
        for p in pieces {
            out.push_str(&s.push(p));
        }
        out.push_str(&s.finish());
        assert_eq!(out, "abENx😀 EN");
        assert_eq!(s.text(), out);
        assert!(!s.is_stopped());
    }

    #[test]
    fn stop_spanning_tokens() {
        let mut s = TextStream::new(vec!["</ans>".into()]);
        assert_eq!(s.push(b"42</"), "42");
        assert_eq!(s.push(b"an"), "");
        assert_eq!(s.push(b"s> tail"), "");
        assert_eq!(s.finish(), "");
        assert_eq!(s.text(), "42");
        assert_eq!(s.push(b"more"), "");
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        let mut s = TextStream::new(vec![]);
        assert_eq!(s.push(b"a\xFFb"), "a\u{FFFD}b");
        assert_eq!(s.push(b"\xE2\x82"), "");
        assert_eq!(s.finish(), "\u{FFFD}");
    }
}
