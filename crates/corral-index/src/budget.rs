//! [`MemoryBudget`]: one bound on the memory of many indexes, kept by dropping the masks
//! of the least recently used ones.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Memory a process's indexes may hold by default (see [`MemoryBudget::global`]).
pub const DEFAULT_BUDGET_BYTES: usize = 2 << 30;

/// What an index offers the budget: when it was last used, and a way to give back the
/// memory that can be recomputed (its masks).
pub(crate) trait Evictable: Send + Sync {
    /// A stamp from [`MemoryBudget::tick`] taken at the last use.
    fn last_used(&self) -> u64;
    /// Drop every cached mask; returns the bytes that were charged for them.
    fn evict_masks(&self) -> usize;
}

/// A memory bound shared by indexes (by default every index of the process:
/// [`MemoryBudget::global`]).
///
/// Every index charges what it grows by — the lazy DFA's states, its state table and the
/// masks it computes — and gives it back when dropped. When a charge takes the total past
/// the limit, the masks of the least recently used indexes are dropped (they are
/// recomputed on their next use) until the total is at three quarters of the limit. The
/// automaton states themselves are never dropped: sequences hold their ids, so a
/// generation in progress never fails for memory another index used.
///
/// ```
/// use corral_index::{Index, IndexOptions, MemoryBudget, Vocabulary};
/// let vocab = Vocabulary::from_bytes(
///     vec![Some(b"a".to_vec()), Some(b"b".to_vec()), None], vec![2]).unwrap();
/// let budget = MemoryBudget::new(1 << 20);
/// let options = IndexOptions { budget: Some(budget.clone()), ..IndexOptions::default() };
/// let index = Index::from_regex_with_options("a+b", &vocab, &options).unwrap();
/// index.mask(index.start()).unwrap();
/// assert!(budget.used() > 0 && budget.used() <= budget.limit());
/// drop(index);
/// assert_eq!(budget.used(), 0);
/// ```
pub struct MemoryBudget {
    limit: AtomicUsize,
    used: AtomicUsize,
    clock: AtomicU64,
    evicted: AtomicUsize,
    indexes: Mutex<Vec<Weak<dyn Evictable>>>,
}

impl std::fmt::Debug for MemoryBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBudget")
            .field("limit", &self.limit())
            .field("used", &self.used())
            .field("evictions", &self.evictions())
            .finish()
    }
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit: AtomicUsize::new(limit),
            used: AtomicUsize::new(0),
            clock: AtomicU64::new(0),
            evicted: AtomicUsize::new(0),
            indexes: Mutex::new(Vec::new()),
        })
    }

    /// The process-wide budget every index uses unless its options name another one
    /// ([`DEFAULT_BUDGET_BYTES`] until [`MemoryBudget::set_limit`] changes it).
    pub fn global() -> Arc<MemoryBudget> {
        static GLOBAL: OnceLock<Arc<MemoryBudget>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| MemoryBudget::new(DEFAULT_BUDGET_BYTES))
            .clone()
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// Change the limit (applies from the next charge).
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// How many times an index's masks were dropped to stay within the limit.
    pub fn evictions(&self) -> usize {
        self.evicted.load(Ordering::Relaxed)
    }

    /// A stamp for "used now" (increasing).
    pub(crate) fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn register(&self, index: Weak<dyn Evictable>) {
        let mut indexes = self.indexes.lock().unwrap_or_else(|e| e.into_inner());
        indexes.retain(|i| i.strong_count() > 0);
        indexes.push(index);
    }

    /// Add `bytes`; past the limit, drop masks of the least recently used indexes.
    pub(crate) fn charge(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let used = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if used > self.limit() {
            self.evict();
        }
    }

    /// Give back `bytes` charged earlier.
    pub(crate) fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        // Saturating: never wraps even if a caller releases more than it charged.
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(bytes))
            });
    }

    fn evict(&self) {
        let mut candidates: Vec<(u64, Arc<dyn Evictable>)> = {
            let mut indexes = self.indexes.lock().unwrap_or_else(|e| e.into_inner());
            indexes.retain(|i| i.strong_count() > 0);
            indexes
                .iter()
                .filter_map(Weak::upgrade)
                .map(|i| (i.last_used(), i))
                .collect()
        };
        candidates.sort_by_key(|(used, _)| *used);
        let target = self.limit() / 4 * 3;
        for (_, index) in candidates {
            if self.used() <= target {
                break;
            }
            // The dropped table releases its bytes when its last holder lets go of it:
            // at once, or when a guide that still holds it asks for its next mask.
            if index.evict_masks() > 0 {
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
