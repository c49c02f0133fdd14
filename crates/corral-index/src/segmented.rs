//! [`Segmented`]: an array indexed by dense ids that grows without moving its elements,
//! so readers hold `&T` without a lock while another thread extends it.
use std::sync::OnceLock;

/// Buckets of sizes 1, 2, 4, …: id `i` lives in bucket `log2(i + 1)`. 32 buckets hold
/// every `u32` id.
const BUCKETS: usize = 32;

/// A lock-free, append-only array of `T: Default` (elements start as `T::default()` and
/// change only through their own interior mutability, e.g. `OnceLock` or atomics).
pub(crate) struct Segmented<T> {
    buckets: [OnceLock<Box<[T]>>; BUCKETS],
}

impl<T> Default for Segmented<T> {
    fn default() -> Segmented<T> {
        Segmented {
            buckets: std::array::from_fn(|_| OnceLock::new()),
        }
    }
}

/// The bucket and the offset in it of id `i`.
#[inline]
fn locate(i: usize) -> (usize, usize) {
    let n = i + 1;
    let bucket = (usize::BITS - 1 - n.leading_zeros()) as usize;
    (bucket, n - (1 << bucket))
}

impl<T: Default> Segmented<T> {
    /// The element `i` if its bucket was allocated.
    #[inline]
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        let (bucket, offset) = locate(i);
        self.buckets.get(bucket)?.get().map(|b| &b[offset])
    }

    /// The element `i`, allocating its bucket on first use. `None` past `u32` ids.
    pub(crate) fn get_or_alloc(&self, i: usize) -> Option<&T> {
        let (bucket, offset) = locate(i);
        let slots = self
            .buckets
            .get(bucket)?
            .get_or_init(|| (0..1usize << bucket).map(|_| T::default()).collect());
        Some(&slots[offset])
    }

    /// Bytes allocated for elements.
    pub(crate) fn allocated_bytes(&self) -> usize {
        let elements: usize = self
            .buckets
            .iter()
            .filter_map(|b| b.get().map(|s| s.len()))
            .sum();
        elements * std::mem::size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn ids_map_to_distinct_slots() {
        let array: Segmented<AtomicU32> = Segmented::default();
        for i in 0..1000 {
            array
                .get_or_alloc(i)
                .unwrap()
                .store(i as u32, Ordering::Relaxed);
        }
        for i in 0..1000 {
            assert_eq!(array.get(i).unwrap().load(Ordering::Relaxed), i as u32);
        }
        assert!(array.get(5000).is_none());
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(1), (1, 0));
        assert_eq!(locate(2), (1, 1));
        assert_eq!(locate(3), (2, 0));
        assert_eq!(locate(u32::MAX as usize - 1).0, 31);
    }
}
