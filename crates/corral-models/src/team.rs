//! A team of spinning threads for the parallel regions of one forward pass.
//!
//! A decode step of a small model runs about five parallel regions per layer (the projections,
//! attention, the FFN), 150 for SmolLM2, each a few tens of microseconds of work. Through
//! rayon's pool each region wakes a sleeping worker (a futex wake, and in a VM an
//! inter-processor interrupt), which took a large share of a batched step: with 8 sequences
//! two threads ran the matmuls at about 60% of twice one thread's speed. Here the pool's other
//! workers stay for the whole forward pass in a loop that spins on the next region
//! ([`with_team`]), and each region ([`for_each_task`]) hands them its tasks through a few
//! atomics — no sleeping, no wake-ups. The helpers leave when the pass ends (and, should the
//! pass go quiet for 50 ms, before: a helper never waits on the pass forever).
//!
//! Off a team (the tensor path, direct calls) [`for_each_task`] runs on rayon's pool.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rayon::prelude::*;

/// One region's tasks, on the leader's stack while the region runs.
struct Region<'a> {
    run: &'a (dyn Fn(usize) + Sync),
    tasks: usize,
    /// The next task index to claim.
    next: AtomicUsize,
    /// Tasks completed (or panicked).
    done: AtomicUsize,
    /// The payload of the first task that panicked: re-raised on the leader, which would
    /// otherwise wait forever for a task a helper never finished.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl Region<'_> {
    /// Claims and runs tasks until none is left.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.tasks {
                return;
            }
            let run = std::panic::AssertUnwindSafe(|| (self.run)(i));
            if let Err(payload) = std::panic::catch_unwind(run) {
                if let Ok(mut first) = self.panic.lock() {
                    first.get_or_insert(payload);
                }
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

/// What the leader and the helpers share.
struct Team {
    /// The current region (null between regions). Its lifetime is erased: the leader keeps it
    /// alive until no helper holds it (`holding` is 0 after the pointer was cleared).
    region: AtomicPtr<Region<'static>>,
    /// Helpers between loading `region` and being done with it.
    holding: AtomicUsize,
    stop: AtomicBool,
}

thread_local! {
    /// The team this thread leads, while it runs a forward pass.
    static LEADING: Cell<*const Team> = const { Cell::new(std::ptr::null()) };
}

/// How long a helper spins without a region before it leaves.
const IDLE: Duration = Duration::from_millis(50);

impl Team {
    fn help(&self) {
        // When this helper last found no region after 1024 spins (`None` after a region):
        // the clock is read only then, not after every region (a `clock_gettime` per region
        // was about 2% of a batched step).
        let mut idle_since: Option<Instant> = None;
        let mut spins = 0u32;
        while !self.stop.load(Ordering::Acquire) {
            let region = self.region.load(Ordering::SeqCst);
            if region.is_null() {
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(1024) {
                    match idle_since {
                        None => idle_since = Some(Instant::now()),
                        Some(since) if since.elapsed() > IDLE => return,
                        Some(_) => {}
                    }
                }
                std::hint::spin_loop();
                continue;
            }
            self.holding.fetch_add(1, Ordering::SeqCst);
            // Only a region still published may be used: after the leader cleared it, it
            // waits for `holding` to drop to 0 before the region goes away.
            if self.region.load(Ordering::SeqCst) == region {
                // SAFETY: published and not yet cleared after `holding` was raised, so the
                // leader keeps it alive until this helper lowers `holding`.
                unsafe { &*region }.work();
            }
            self.holding.fetch_sub(1, Ordering::SeqCst);
            idle_since = None;
            spins = 0;
        }
    }

    fn run(&self, tasks: usize, run: &(dyn Fn(usize) + Sync)) {
        let region = Region {
            run,
            tasks,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panic: Mutex::new(None),
        };
        let erased = &region as *const Region<'_> as *mut Region<'static>;
        self.region.store(erased, Ordering::SeqCst);
        region.work();
        while region.done.load(Ordering::Acquire) < tasks {
            std::hint::spin_loop();
        }
        self.region.store(std::ptr::null_mut(), Ordering::SeqCst);
        while self.holding.load(Ordering::SeqCst) != 0 {
            std::hint::spin_loop();
        }
        if let Some(payload) = region.panic.into_inner().ok().flatten() {
            std::panic::resume_unwind(payload);
        }
    }
}

/// Runs `body` on a worker of rayon's pool with the pool's other workers as a spinning team
/// for the [`for_each_task`] regions inside it.
pub(crate) fn with_team<R: Send>(body: impl FnOnce() -> R + Send) -> R {
    let threads = rayon::current_num_threads();
    let team = Team {
        region: AtomicPtr::new(std::ptr::null_mut()),
        holding: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    };
    rayon::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(|_| {
                // The leader itself may run a helper job while it waits inside rayon: it must
                // not spin on its own team.
                if !std::ptr::eq(LEADING.with(Cell::get), &team) {
                    team.help();
                }
            });
        }
        let outer = LEADING.with(|l| l.replace(&team));
        let result = body();
        LEADING.with(|l| l.set(outer));
        team.stop.store(true, Ordering::Release);
        result
    })
}

/// Runs `run(i)` for every `i < tasks`: on the team this thread leads, if any, otherwise on
/// rayon's pool.
pub(crate) fn for_each_task(tasks: usize, run: impl Fn(usize) + Sync) {
    let team = LEADING.with(Cell::get);
    if team.is_null() || tasks <= 1 {
        if tasks <= 1 {
            (0..tasks).for_each(run);
        } else {
            let run = &run;
            (0..tasks).into_par_iter().for_each(run);
        }
        return;
    }
    // SAFETY: `LEADING` points to the team of a `with_team` call still running on this thread
    // (it is reset before the team goes away).
    unsafe { &*team }.run(tasks, &run);
}

/// How row-wise work over `rows` rows (a norm, an activation, attention rows, their
/// quantization) is cut into tasks: `(rows per task, whether the tasks run in parallel)`.
/// Runs of at most 8 rows, about four per thread once there are two rows per thread
/// (several sequences decoding together, a prompt): rows may take unequal time (attention
/// over caches of different lengths) and tasks are claimed as threads come free; with
/// fewer rows the runs go one after the other on this thread.
pub(crate) fn row_runs(rows: usize) -> (usize, bool) {
    let threads = rayon::current_num_threads();
    if threads > 1 && rows >= 2 * threads {
        ((rows / (4 * threads)).clamp(1, 8), true)
    } else {
        (rows.clamp(1, 8), false)
    }
}

/// The `rows` rows of `width` values that `f` writes (`f(range, out)`: rows `range` into
/// `out`), in runs of [`row_runs`]. Row-wise steps between the matmuls would otherwise
/// leave the other threads waiting, for longer the more rows there are.
pub(crate) fn rows_in_parallel(
    rows: usize,
    width: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [f32]) + Sync,
) -> Vec<f32> {
    let mut out = vec![0f32; rows * width];
    let (per, parallel) = row_runs(rows);
    let mut parts: Vec<&mut [f32]> = out.chunks_mut((per * width).max(1)).collect();
    for_each_run(&mut parts, parallel, |i, part| {
        f(i * per..i * per + part.len() / width.max(1), part);
    });
    out
}

/// [`for_each_mut`] over runs of rows cut by [`row_runs`] (`parallel` is its second
/// answer), or one run after the other on this thread.
pub(crate) fn for_each_run<T: Send>(
    runs: &mut [T],
    parallel: bool,
    run: impl Fn(usize, &mut T) + Sync,
) {
    if parallel {
        for_each_mut(runs, run);
    } else {
        runs.iter_mut()
            .enumerate()
            .for_each(|(i, item)| run(i, item));
    }
}

/// Runs `run(i, &mut items[i])` for every item, as [`for_each_task`] does: each task has its
/// own item (an output slot, a chunk of an output, a run of rows), so nothing is shared
/// mutably between tasks.
pub(crate) fn for_each_mut<T: Send>(items: &mut [T], run: impl Fn(usize, &mut T) + Sync) {
    // A lock per item, never contended (task `i` alone takes item `i`): safe disjoint access.
    let slots: Vec<Mutex<&mut T>> = items.iter_mut().map(Mutex::new).collect();
    for_each_task(slots.len(), |i| {
        if let Ok(mut item) = slots[i].lock() {
            run(i, &mut item);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every task of every region runs exactly once, inside and outside a team, including
    /// regions nested in a rayon call inside the team.
    #[test]
    fn every_task_runs_once() {
        let counts: Vec<AtomicUsize> = (0..1000).map(|_| AtomicUsize::new(0)).collect();
        with_team(|| {
            for round in 0..200 {
                for_each_task(round % 17 + 1, |i| {
                    counts[i * 50 + round % 50].fetch_add(1, Ordering::Relaxed);
                });
            }
            let inner = Mutex::new(0);
            (0..4)
                .into_par_iter()
                .for_each(|_| *inner.lock().unwrap() += 1);
            assert_eq!(*inner.lock().unwrap(), 4);
        });
        for_each_task(5, |i| {
            counts[i].fetch_add(1, Ordering::Relaxed);
        });
        // A panicking task reaches the leader (instead of leaving it waiting), and the team
        // goes on serving regions.
        let caught = std::panic::catch_unwind(|| {
            with_team(|| {
                for_each_task(8, |i| assert!(i != 5, "task 5"));
            })
        });
        assert!(caught.is_err());
        with_team(|| for_each_task(3, |_| ()));
        // Each item seen by its own task only.
        let mut items = vec![0usize; 37];
        with_team(|| for_each_mut(&mut items, |i, item| *item += i + 1));
        assert!(items.iter().enumerate().all(|(i, &v)| v == i + 1));
        let total: usize = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        let expected: usize = (0..200).map(|r| r % 17 + 1).sum::<usize>() + 5;
        assert_eq!(total, expected);
    }
}
