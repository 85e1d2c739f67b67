//! Durable notice of the changes the continuous path has yet to apply.
//!
//! The SCIM handlers tell the engine's worker what they changed through a
//! channel in memory; a process that dies between a change's commit and
//! its application would lose the notice, and in continuous mode no run
//! might come to repair it. So before the first change to a directory
//! commits, the process writes a mark (`sync_pending`) that stays until
//! its worker has applied every change since; while the process lives it
//! renews its marks, and a mark left to expire is taken over by a process
//! that reconciles the directory with a run. The mark is written once per
//! busy spell of a directory, not once per change: changes made while it
//! stands only count themselves in memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use uuid::Uuid;

/// How long a directory's mark outlives its last applied change: a busy
/// directory keeps one mark instead of writing and removing one per
/// worker pass.
pub(super) const KEEP_IDLE_MARK: Duration = Duration::from_secs(1);

/// The marks of this process, by directory.
pub(super) struct Marks {
    by_directory: Mutex<HashMap<Uuid, Mark>>,
    next_generation: AtomicI64,
}

struct Mark {
    /// Changes counted and not yet applied (or given up by their writer).
    open: u32,
    generation: i64,
    /// Written once per generation; the changes that arrive while it is
    /// being written wait for it.
    written: Arc<OnceCell<()>>,
    /// Since when nothing is open.
    idle_since: Option<Instant>,
}

impl Marks {
    pub(super) fn new() -> Marks {
        Marks {
            by_directory: Mutex::new(HashMap::new()),
            next_generation: AtomicI64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Mark>> {
        // A panic while holding the lock leaves counts that are still
        // usable: at worst a mark is kept longer than needed.
        self.by_directory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a change about to be written; returns the mark's generation
    /// and the cell through which it is written.
    pub(super) fn open(&self, directory_id: Uuid) -> (i64, Arc<OnceCell<()>>) {
        let mut marks = self.lock();
        let mark = marks.entry(directory_id).or_insert_with(|| Mark {
            open: 0,
            generation: self.next_generation.fetch_add(1, Ordering::Relaxed),
            written: Arc::new(OnceCell::new()),
            idle_since: None,
        });
        mark.open += 1;
        mark.idle_since = None;
        (mark.generation, mark.written.clone())
    }

    /// `n` changes to the directory applied, or abandoned before commit.
    pub(super) fn settle(&self, directory_id: Uuid, n: u32) {
        let mut marks = self.lock();
        if let Some(mark) = marks.get_mut(&directory_id) {
            mark.open = mark.open.saturating_sub(n);
            if mark.open == 0 {
                mark.idle_since = Some(Instant::now());
            }
        }
    }

    /// Whether this process holds a mark (then it renews them).
    pub(super) fn any(&self) -> bool {
        !self.lock().is_empty()
    }

    /// When the next idle mark may go, if any is idle.
    pub(super) fn next_removal(&self) -> Option<Instant> {
        self.lock()
            .values()
            .filter_map(|m| m.idle_since)
            .min()
            .map(|t| t + KEEP_IDLE_MARK)
    }

    /// The marks idle long enough, forgotten here: (directory,
    /// generation) to remove from the store. A change that comes after
    /// starts a new generation and writes its mark again.
    pub(super) fn take_idle(&self) -> Vec<(Uuid, i64)> {
        let now = Instant::now();
        let mut marks = self.lock();
        let idle: Vec<(Uuid, i64)> = marks
            .iter()
            .filter(|(_, m)| m.open == 0 && m.idle_since.is_some_and(|t| now >= t + KEEP_IDLE_MARK))
            .map(|(d, m)| (*d, m.generation))
            .collect();
        for (d, _) in &idle {
            marks.remove(d);
        }
        idle
    }

    /// Changes counted and not applied, all directories (for tests and
    /// metrics).
    #[cfg(test)]
    fn open_total(&self) -> u32 {
        self.lock().values().map(|m| m.open).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_is_shared_while_changes_are_open_and_renewed_after_it_goes() {
        let marks = Marks::new();
        let d = Uuid::new_v4();
        let (first, cell) = marks.open(d);
        let (again, same) = marks.open(d);
        assert_eq!(first, again);
        assert!(Arc::ptr_eq(&cell, &same));
        marks.settle(d, 1);
        assert!(marks.next_removal().is_none(), "one change is still open");
        assert!(marks.take_idle().is_empty());
        marks.settle(d, 1);
        assert_eq!(marks.open_total(), 0);
        assert!(marks.next_removal().is_some());
        // Not idle long enough yet.
        assert!(marks.take_idle().is_empty());
        std::thread::sleep(KEEP_IDLE_MARK + Duration::from_millis(20));
        assert_eq!(marks.take_idle(), vec![(d, first)]);
        let (next, cell) = marks.open(d);
        assert!(next > first, "a new spell writes a new generation");
        assert!(cell.get().is_none());
    }

    #[test]
    fn a_change_during_the_idle_wait_keeps_the_mark() {
        let marks = Marks::new();
        let d = Uuid::new_v4();
        let (first, _) = marks.open(d);
        marks.settle(d, 1);
        let (again, _) = marks.open(d);
        assert_eq!(first, again);
        std::thread::sleep(KEEP_IDLE_MARK + Duration::from_millis(20));
        assert!(marks.take_idle().is_empty());
        assert!(marks.next_removal().is_none());
    }
}
