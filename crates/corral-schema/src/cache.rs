//! A process-wide cache: the same leaves, `format`s and `pattern`s recur under many
//! properties and across schemas, and each costs a parse to compute.
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

/// Values by key, shared by every compilation in the process; emptied whole once the
/// costs of its entries pass the budget (bounded memory, no bookkeeping per entry).
pub(crate) struct ProcessCache<K, V> {
    entries: Mutex<(HashMap<K, V>, usize)>,
    budget: usize,
}

impl<K: Hash + Eq, V: Clone> ProcessCache<K, V> {
    pub fn new(budget: usize) -> ProcessCache<K, V> {
        ProcessCache {
            entries: Mutex::new((HashMap::new(), 0)),
            budget,
        }
    }

    /// The cached value of `key`, or `compute()`'s, kept when it succeeds (errors are not
    /// cached: they name the place that asked).
    pub fn get_or_try_insert<E>(
        &self,
        key: K,
        cost: usize,
        compute: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        // A panic while holding the lock leaves at worst a missing entry.
        let lock = || self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(value) = lock().0.get(&key) {
            return Ok(value.clone());
        }
        let value = compute()?;
        let mut entries = lock();
        if entries.1 + cost > self.budget {
            *entries = (HashMap::new(), 0);
        }
        entries.1 += cost;
        entries.0.insert(key, value.clone());
        Ok(value)
    }
}
