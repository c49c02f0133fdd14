//! A prefix tree of the vocabulary's byte strings, flattened in depth-first order.
//!
//! Walking it over an automaton visits each distinct token prefix once and skips a whole
//! subtree as soon as its prefix leads to a dead state: this is what makes computing a
//! token mask cheap compared with running every token separately.

/// One trie node: the byte on the edge from its parent, its depth, where its subtree
/// ends in the flat array, and the tokens spelled by the path to it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    pub byte: u8,
    /// Depth (1 for children of the root). Tokens longer than `u16::MAX` bytes are not
    /// representable and are left out of the trie.
    pub depth: u16,
    /// Index one past the last node of this node's subtree.
    pub subtree_end: u32,
    /// Range `tokens_start..tokens_start + tokens_len` into [`TokenTrie::token_ids`].
    pub tokens_start: u32,
    pub tokens_len: u16,
    /// Whether the path to this node ends at a UTF-8 character boundary.
    pub boundary: bool,
    /// Index into [`TokenTrie::token_ids`] of the first token of this node's subtree
    /// (tokens are stored in depth-first order, so a subtree's tokens are contiguous).
    pub first_token: u32,
}

/// What [`TokenTrie::walk_absorbing`] walks: an automaton that can also say whether a
/// state takes any *plain text* (complete UTF-8 characters other than control
/// characters, `"` and `\`) and stays where it is.
pub(crate) trait PlainTextAutomaton {
    type State: Copy;
    type Error;
    fn step(&mut self, state: Self::State, byte: u8) -> Result<Option<Self::State>, Self::Error>;
    fn absorbs_plain_text(&mut self, state: Self::State) -> Result<bool, Self::Error>;
    /// [`PlainTextAutomaton::absorbs_plain_text`] where it is already known.
    fn known_absorbs(&self, state: Self::State) -> Option<bool>;
}

/// Subtrees with fewer tokens than this are walked node by node unless their state is
/// already known to absorb plain text (checking whether a state absorbs plain text
/// costs about as much as walking a few tokens).
const MIN_BULK_TOKENS: u32 = 32;

/// The token trie; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct TokenTrie {
    pub(crate) nodes: Vec<Node>,
    pub(crate) token_ids: Vec<u32>,
    /// Whether each token of `token_ids` (same order) is plain text.
    plain: Vec<bool>,
    max_depth: usize,
}

impl TokenTrie {
    /// Build the trie of `tokens` (`(id, bytes)`; empty byte strings are skipped).
    pub fn new<'a>(tokens: impl IntoIterator<Item = (u32, &'a [u8])>) -> TokenTrie {
        let mut sorted: Vec<(&[u8], u32)> = tokens
            .into_iter()
            .filter(|(_, b)| !b.is_empty() && b.len() <= u16::MAX as usize)
            .map(|(id, b)| (b, id))
            .collect();
        sorted.sort_unstable();
        let root = Node {
            byte: 0,
            depth: 0,
            subtree_end: 0,
            tokens_start: 0,
            tokens_len: 0,
            boundary: true,
            first_token: 0,
        };
        let mut nodes = vec![root];
        // Continuation bytes still expected after each node of the current path.
        let mut pending: Vec<u8> = vec![0];
        let mut token_ids = Vec::with_capacity(sorted.len());
        let mut plain = Vec::with_capacity(sorted.len());
        // Node indices along the current path (path[d] = node at depth d).
        let mut path: Vec<usize> = vec![0];
        let mut prev: &[u8] = &[];
        let mut max_depth = 0;
        for (bytes, id) in sorted {
            let common = prev.iter().zip(bytes).take_while(|(a, b)| a == b).count();
            // Close the nodes deeper than the common prefix.
            while path.len() > common + 1 {
                let done = path.pop().unwrap_or(0);
                pending.pop();
                nodes[done].subtree_end = nodes.len() as u32;
            }
            for (d, &byte) in bytes.iter().enumerate().skip(common) {
                let before = pending.last().copied().unwrap_or(0);
                let after = match byte {
                    0x80..=0xBF => before.saturating_sub(1),
                    0xC0..=0xDF => 1,
                    0xE0..=0xEF => 2,
                    0xF0..=0xF7 => 3,
                    _ => 0,
                };
                path.push(nodes.len());
                pending.push(after);
                nodes.push(Node {
                    byte,
                    depth: (d + 1) as u16,
                    subtree_end: 0,
                    tokens_start: 0,
                    tokens_len: 0,
                    boundary: after == 0,
                    first_token: token_ids.len() as u32,
                });
            }
            let last = *path.last().unwrap_or(&0);
            if nodes[last].tokens_len == 0 {
                nodes[last].tokens_start = token_ids.len() as u32;
            }
            nodes[last].tokens_len += 1;
            token_ids.push(id);
            plain.push(crate::vocab::plain_text_chars(bytes).is_some());
            max_depth = max_depth.max(bytes.len());
            prev = bytes;
        }
        let end = nodes.len() as u32;
        for idx in path {
            nodes[idx].subtree_end = end;
        }
        TokenTrie {
            nodes,
            token_ids,
            plain,
            max_depth,
        }
    }

    /// The range of [`TokenTrie::token_ids`] holding the tokens of node `i`'s subtree.
    fn subtree_tokens(&self, i: usize) -> std::ops::Range<usize> {
        let end = self
            .nodes
            .get(self.nodes[i].subtree_end as usize)
            .map_or(self.token_ids.len(), |n| n.first_token as usize);
        self.nodes[i].first_token as usize..end
    }

    /// For each node, the node of `sub` (a trie of some of this trie's tokens) with the
    /// same path, or `u32::MAX` when `sub` has none.
    pub(crate) fn node_map(&self, sub: &TokenTrie) -> Vec<u32> {
        let mut map = vec![u32::MAX; self.nodes.len()];
        map[0] = 0;
        let mut stack = vec![(0usize, 0usize)];
        while let Some((i, j)) = stack.pop() {
            let (end_i, end_j) = (
                self.nodes[i].subtree_end as usize,
                sub.nodes[j].subtree_end as usize,
            );
            let (mut ci, mut cj) = (i + 1, j + 1);
            while ci < end_i && cj < end_j {
                match self.nodes[ci].byte.cmp(&sub.nodes[cj].byte) {
                    std::cmp::Ordering::Equal => {
                        map[ci] = cj as u32;
                        stack.push((ci, cj));
                        ci = self.nodes[ci].subtree_end as usize;
                        cj = sub.nodes[cj].subtree_end as usize;
                    }
                    std::cmp::Ordering::Less => ci = self.nodes[ci].subtree_end as usize,
                    std::cmp::Ordering::Greater => cj = sub.nodes[cj].subtree_end as usize,
                }
            }
        }
        map
    }

    /// Walk the subtree below node `top` from `state` (the state after `top`'s path),
    /// emitting the tokens reached (those of `top` itself included).
    fn walk_below<S: Copy, E>(
        &self,
        top: usize,
        state: S,
        step: &mut impl FnMut(S, u8) -> Result<Option<S>, E>,
        emit: &mut impl FnMut(u32),
    ) -> Result<(), E> {
        for &t in self.tokens_of(&self.nodes[top]) {
            emit(t);
        }
        let base = self.nodes[top].depth as usize;
        let mut states: Vec<S> = vec![state; self.max_depth + 1 - base];
        let end = self.nodes[top].subtree_end as usize;
        let mut i = top + 1;
        while i < end {
            let node = &self.nodes[i];
            let depth = node.depth as usize - base;
            match step(states[depth - 1], node.byte)? {
                None => i = node.subtree_end as usize,
                Some(next) => {
                    states[depth] = next;
                    for &t in self.tokens_of(node) {
                        emit(t);
                    }
                    i += 1;
                }
            }
        }
        Ok(())
    }

    /// Like [`TokenTrie::walk`], setting the allowed tokens in `words` (bit `t % 64` of
    /// word `t / 64`), but where a node's state absorbs plain text
    /// ([`PlainTextAutomaton::absorbs_plain_text`]) every plain text token of its subtree
    /// is allowed at once and the subtree's other tokens are walked in `others` (the trie
    /// of the tokens that are not plain text; `map` from [`TokenTrie::node_map`]). Inside
    /// a JSON string next to a few fixed names (a property name that may be a listed name
    /// or any other), most of the vocabulary is then set without stepping a byte.
    /// `plain_mask` holds exactly the plain text tokens of this trie: when the subtrees
    /// taken at once hold most tokens, it is copied and the rest cleared instead.
    pub(crate) fn walk_absorbing<A: PlainTextAutomaton>(
        &self,
        others: &TokenTrie,
        map: &[u32],
        automaton: &mut A,
        start: A::State,
        words: &mut [u64],
        plain_mask: &[u64],
    ) -> Result<(), A::Error> {
        let set = |words: &mut [u64], t: u32| words[t as usize / 64] |= 1 << (t % 64);
        let mut states: Vec<A::State> = vec![start; self.max_depth + 1];
        // Token ranges (depth-first order) whose plain tokens are all allowed.
        let mut bulk: Vec<std::ops::Range<usize>> = Vec::new();
        let mut i = 1;
        while i < self.nodes.len() {
            let node = &self.nodes[i];
            let depth = node.depth as usize;
            let Some(next) = automaton.step(states[depth - 1], node.byte)? else {
                i = node.subtree_end as usize;
                continue;
            };
            states[depth] = next;
            // A free state met again (the free text after a few bytes of a property
            // name, say) takes even small subtrees at once; a leaf is its own tokens
            // either way. The subtree's token range is looked up only when needed: its
            // end lies a whole subtree away in the node array.
            let leaf = node.subtree_end as usize == i + 1;
            let absorbs = node.boundary
                && !leaf
                && match automaton.known_absorbs(next) {
                    Some(known) => known,
                    None => {
                        self.subtree_tokens(i).len() >= MIN_BULK_TOKENS as usize
                            && automaton.absorbs_plain_text(next)?
                    }
                };
            if absorbs {
                bulk.push(self.subtree_tokens(i));
                if let Some(&j) = map.get(i).filter(|&&j| j != u32::MAX) {
                    others.walk_below(
                        j as usize,
                        next,
                        &mut |s, b| automaton.step(s, b),
                        &mut |t| set(words, t),
                    )?;
                }
                i = node.subtree_end as usize;
                continue;
            }
            for &t in self.tokens_of(node) {
                set(words, t);
            }
            i += 1;
        }
        let taken: usize = bulk.iter().map(|r| r.len()).sum();
        if taken * 2 > self.token_ids.len() {
            // Most of the vocabulary: copy the plain mask and clear the plain tokens
            // outside the ranges (fewer than inside).
            let mut plain: Vec<u64> = plain_mask.to_vec();
            // The gaps between the ranges (and after the last one).
            let starts = bulk
                .iter()
                .map(|r| r.start)
                .chain(Some(self.token_ids.len()));
            let ends = std::iter::once(0).chain(bulk.iter().map(|r| r.end));
            for (from, to) in ends.zip(starts) {
                for k in from..to {
                    if self.plain[k] {
                        let t = self.token_ids[k] as usize;
                        plain[t / 64] &= !(1 << (t % 64));
                    }
                }
            }
            for (w, p) in words.iter_mut().zip(plain) {
                *w |= p;
            }
        } else {
            for range in bulk {
                for k in range {
                    if self.plain[k] {
                        set(words, self.token_ids[k]);
                    }
                }
            }
        }
        Ok(())
    }

    /// Number of nodes, the root included.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Length in bytes of the longest token.
    pub fn max_depth(&self) -> usize {
        self.max_depth
    }

    /// Heap memory used, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.token_ids.capacity() * 4
            + self.plain.capacity()
    }

    pub(crate) fn tokens_of(&self, node: &Node) -> &[u32] {
        let start = node.tokens_start as usize;
        &self.token_ids[start..start + node.tokens_len as usize]
    }

    /// Walk the trie: `step(parent_state, byte)` gives the child state or `None` to prune
    /// the subtree; `emit(token)` is called for each token whose bytes all step.
    pub(crate) fn walk<S: Copy, E>(
        &self,
        start: S,
        mut step: impl FnMut(S, u8) -> Result<Option<S>, E>,
        mut emit: impl FnMut(u32),
    ) -> Result<(), E> {
        self.walk_below(0, start, &mut step, &mut emit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// State 2: expects `x`, then free text (state 0) until `"` (state 1, the end).
    /// `known`: whether the walk is told up front that state 0 absorbs plain text (then
    /// small subtrees are taken at once too).
    struct FreeAfterX {
        known: bool,
    }

    impl FreeAfterX {
        fn next(state: u8, byte: u8) -> Option<u8> {
            match (state, byte) {
                (2, b'x') => Some(0),
                (0, b'"') => Some(1),
                (0, b) if b >= b' ' && b != b'\\' => Some(0),
                _ => None,
            }
        }
    }

    impl PlainTextAutomaton for FreeAfterX {
        type State = u8;
        type Error = ();
        fn step(&mut self, state: u8, byte: u8) -> Result<Option<u8>, ()> {
            Ok(FreeAfterX::next(state, byte))
        }
        fn absorbs_plain_text(&mut self, state: u8) -> Result<bool, ()> {
            Ok(state == 0)
        }
        fn known_absorbs(&self, state: u8) -> Option<bool> {
            self.known.then_some(state == 0)
        }
    }

    #[test]
    fn absorbing_walk_emits_what_the_plain_walk_does() {
        let mut words: Vec<Vec<u8>> = vec![b"x".to_vec(), b"x\"".to_vec(), b"xa\"".to_vec()];
        for a in b'a'..=b'z' {
            for b in [b'a', b'"', b'\\', b'q'] {
                words.push(vec![b'x', a, b]);
                words.push(vec![b'y', a, b]);
                words.push(vec![a, b]);
            }
            words.push(vec![b'x', a]);
            words.push(vec![b'x', a, b'\n']);
        }
        words.push("xé".as_bytes().to_vec());
        words.push(vec![b'x', 0xC3]);
        let trie = TokenTrie::new(words.iter().enumerate().map(|(i, w)| (i as u32, &w[..])));
        let mut plain = Vec::new();
        trie.walk::<u8, ()>(2, |s, b| Ok(FreeAfterX::next(s, b)), |t| plain.push(t))
            .unwrap();
        let words_len = words.len().div_ceil(64);
        plain.sort();
        assert!(plain.len() > 60);
        // Both ways of taking the bulk: by ranges, and by clearing the rest of the plain
        // mask (when the bulk is most of the trie: here the "x…" tokens and, to be
        // cleared, the few "ya…" ones).
        for (only_x, known) in [(false, false), (true, false), (false, true), (true, true)] {
            let picked: Vec<(u32, &[u8])> = words
                .iter()
                .enumerate()
                .filter(|(_, w)| !only_x || w[0] == b'x' || w.starts_with(b"ya"))
                .map(|(i, w)| (i as u32, &w[..]))
                .collect();
            let mut mask = vec![0u64; words_len];
            for &(i, w) in &picked {
                if crate::vocab::plain_text_chars(w).is_some() {
                    mask[i as usize / 64] |= 1 << (i % 64);
                }
            }
            let trie = TokenTrie::new(picked.iter().copied());
            let others = TokenTrie::new(
                picked
                    .iter()
                    .copied()
                    .filter(|(_, w)| crate::vocab::plain_text_chars(w).is_none()),
            );
            let map = trie.node_map(&others);
            let mut bulk_words = vec![0u64; words_len];
            let mut automaton = FreeAfterX { known };
            trie.walk_absorbing(&others, &map, &mut automaton, 2, &mut bulk_words, &mask)
                .unwrap();
            let bulk: Vec<u32> = (0..words.len() as u32)
                .filter(|&t| bulk_words[t as usize / 64] >> (t % 64) & 1 == 1)
                .collect();
            let expected: Vec<u32> = plain
                .iter()
                .copied()
                .filter(|&t| !only_x || words[t as usize][0] == b'x')
                .collect();
            assert_eq!(bulk, expected, "only_x={only_x} known={known}");
        }
    }

    #[test]
    fn walk_prunes_subtrees() {
        let words: Vec<(u32, &[u8])> = vec![
            (0, b"a"),
            (1, b"ab"),
            (2, b"abc"),
            (3, b"b"),
            (4, b"ba"),
            (5, b"ab"),
            (6, b""),
        ];
        let trie = TokenTrie::new(words);
        assert_eq!(trie.max_depth(), 3);
        // Accept only strings over {a, b} of length <= 2 that do not start with 'b'.
        let mut seen = Vec::new();
        trie.walk::<usize, ()>(
            0,
            |depth, byte| {
                Ok(if depth == 0 && byte == b'b' || depth == 2 {
                    None
                } else {
                    Some(depth + 1)
                })
            },
            |t| seen.push(t),
        )
        .unwrap();
        seen.sort();
        assert_eq!(seen, vec![0, 1, 5]);
    }
}
