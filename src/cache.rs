//! [`IndexCache`]: compiled constraints keyed by what they were compiled from.
use std::collections::HashMap;
use std::sync::Mutex;

use corral_index::Index;

/// A compiled constraint: the index and the schema keywords that were not enforced.
#[derive(Clone, Debug)]
pub(crate) struct Compiled {
    pub(crate) index: Index,
    pub(crate) ignored: Vec<String>,
}

/// Most cached constraints per model; the least recently used one is dropped beyond it.
const CAPACITY: usize = 64;

/// Most memory the cached constraints may hold (automata and the masks computed so far,
/// which grow as they are used); the least recently used ones are dropped beyond it.
const MEMORY_BUDGET: usize = 512 << 20;

/// Compiled constraints of one model (so one tokenizer), keyed by the constraint's text
/// and its compile options: a repeated schema costs a hash lookup. Bounded by count and by
/// memory, least recently used first out.
#[derive(Debug, Default)]
pub(crate) struct IndexCache {
    entries: Mutex<HashMap<String, (Compiled, u64)>>,
    clock: std::sync::atomic::AtomicU64,
}

impl IndexCache {
    pub(crate) fn get_or_build(
        &self,
        key: String,
        build: impl FnOnce() -> crate::Result<Compiled>,
    ) -> crate::Result<(Compiled, bool)> {
        let now = self
            .clock
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some((compiled, used)) = self.lock().get_mut(&key) {
            *used = now;
            return Ok((compiled.clone(), true));
        }
        // Built outside the lock: other requests keep going meanwhile.
        let compiled = build()?;
        let mut entries = self.lock();
        entries.insert(key, (compiled.clone(), now));
        let mut memory: usize = entries.values().map(|(c, _)| c.index.memory_bytes()).sum();
        while entries.len() > CAPACITY || (memory > MEMORY_BUDGET && entries.len() > 1) {
            let Some((oldest, bytes)) = entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, (c, _))| (k.clone(), c.index.memory_bytes()))
            else {
                break;
            };
            entries.remove(&oldest);
            memory = memory.saturating_sub(bytes);
        }
        Ok((compiled, false))
    }

    /// Memory the cached constraints hold now.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.lock()
            .values()
            .map(|(c, _)| c.index.memory_bytes())
            .sum()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Compiled, u64)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
