//! Where deep pages start: positions in a directory's creation order,
//! remembered so that `startIndex=900001` is a keyset seek, not a walk over
//! 900,000 index entries.
//!
//! SCIM pages by position (`startIndex`), but an index can only seek by
//! key. A [`Mark`] says "the row at position `q` has key `k`", where the key
//! is `(created_at, id)`, the default list order. A page at `s` starts from
//! the nearest mark at or before it: `WHERE key >= k ORDER BY key OFFSET
//! s - q`. Marks come from the pages served (so an identity provider paging
//! through a directory seeks from the last row of the previous page) and
//! from hops of [`HOP`] rows taken on the way to a deep page nobody has
//! asked for yet, so every later page of the directory is at most `HOP`
//! entries away from a mark.
//!
//! A mark stays true while no row before it disappears and no row appears
//! before it. Rows disappear only by deletion, and every deletion bumps the
//! directory's `list_epoch` in the same transaction; every page read from a
//! mark reads that epoch in the same statement and is discarded if it has
//! moved, so marks stay correct across replicas. New rows are stamped with
//! the time of their transaction and land at the end; only a transaction
//! still in flight can add a row behind a recent one, so rows younger than
//! [`SETTLE_MICROS`] are never marked.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use uuid::Uuid;

/// Default distance between the marks laid on the way to a deep page: the
/// most index entries a page ever skips once a directory has been seeked.
pub const HOP: i64 = 10_000;

/// Rows newer than this are not marked: a write transaction that began
/// earlier may still commit a row that sorts before them.
pub const SETTLE_MICROS: i64 = 60_000_000;

/// Bounds on memory (about 100 KB per list, 25 MB in all): marks per
/// directory and table, and lists.
const MAX_MARKS: usize = 2_048;
const MAX_LISTS: usize = 256;

/// The row at `position` (1-based) has the key `(created_at, id)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    pub position: i64,
    pub created_at: i64,
    pub id: Uuid,
}

impl Mark {
    /// Position 1 is at or after the smallest possible key.
    pub const START: Mark = Mark {
        position: 1,
        created_at: i64::MIN,
        id: Uuid::nil(),
    };
}

#[derive(Default)]
struct List {
    epoch: i64,
    marks: BTreeMap<i64, (i64, Uuid)>,
}

/// Marks per `(directory, table)`, shared by every request of the process.
pub struct PageCursors {
    hop: i64,
    lists: Mutex<HashMap<(Uuid, &'static str), List>>,
    /// One walk at a time per list (see [`PageCursors::walking`]).
    walks: Mutex<HashMap<(Uuid, &'static str), WalkLock>>,
}

/// Held by the one request walking a list.
type WalkLock = std::sync::Arc<tokio::sync::Mutex<()>>;

impl Default for PageCursors {
    fn default() -> Self {
        PageCursors::with_hop(HOP)
    }
}

impl PageCursors {
    /// Marks laid every `hop` rows (tests use a small hop to exercise it).
    pub fn with_hop(hop: i64) -> Self {
        PageCursors {
            hop: hop.max(1),
            lists: Mutex::default(),
            walks: Mutex::default(),
        }
    }

    /// Waits for the right to walk a list towards a deep page. Requests
    /// that arrive together at a page nobody has asked for yet would each
    /// walk the directory; in turn, each after the first finds the marks
    /// the others laid and walks only what is left.
    pub async fn walking(
        &self,
        directory_id: Uuid,
        table: &'static str,
    ) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut walks = self.walks.lock().unwrap_or_else(PoisonError::into_inner);
            if walks.len() >= MAX_LISTS {
                // Keep only the lists being walked now.
                walks.retain(|_, lock| std::sync::Arc::strong_count(lock) > 1);
            }
            walks.entry((directory_id, table)).or_default().clone()
        };
        lock.lock_owned().await
    }

    pub fn hop(&self) -> i64 {
        self.hop
    }

    /// The nearest mark at or before `start`, the last mark of the list,
    /// and the epoch they belong to (`None` when nothing is known about the
    /// list yet). [`Mark::START`] stands in for a missing mark.
    pub fn seek(
        &self,
        directory_id: Uuid,
        table: &'static str,
        start: i64,
    ) -> (Mark, Mark, Option<i64>) {
        let lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(list) = lists.get(&(directory_id, table)) else {
            return (Mark::START, Mark::START, None);
        };
        let to_mark = |(&position, &(created_at, id)): (&i64, &(i64, Uuid))| Mark {
            position,
            created_at,
            id,
        };
        let before = list.marks.range(..=start).next_back().map(to_mark);
        let last = list.marks.last_key_value().map(to_mark);
        (
            before.unwrap_or(Mark::START),
            last.unwrap_or(Mark::START),
            Some(list.epoch),
        )
    }

    /// Remembers `marks`, read at `epoch`. A newer epoch drops every older
    /// mark; marks from an older epoch than the list's are ignored.
    pub fn record(
        &self,
        directory_id: Uuid,
        table: &'static str,
        epoch: i64,
        now_micros: i64,
        marks: impl IntoIterator<Item = Mark>,
    ) {
        let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        if lists.len() >= MAX_LISTS && !lists.contains_key(&(directory_id, table)) {
            // Rarely reached; forgetting is always safe, marks only save work.
            lists.clear();
        }
        let list = lists.entry((directory_id, table)).or_default();
        if epoch < list.epoch {
            return;
        }
        if epoch > list.epoch {
            list.epoch = epoch;
            list.marks.clear();
        }
        for mark in marks {
            if mark.position > 1 && mark.created_at < now_micros - SETTLE_MICROS {
                list.marks.insert(mark.position, (mark.created_at, mark.id));
            }
        }
        if list.marks.len() > MAX_MARKS {
            // Page ends accumulate as clients page; the marks laid every
            // `hop` rows bound every seek, so they go last.
            let hop = self.hop;
            list.marks.retain(|position, _| (position - 1) % hop == 0);
            while list.marks.len() > MAX_MARKS {
                list.marks.pop_first();
            }
        }
    }

    /// Drops what is known about a list whose epoch moved to `epoch`.
    pub fn invalidate(&self, directory_id: Uuid, table: &'static str, epoch: i64) {
        self.record(directory_id, table, epoch, i64::MIN, []);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000_000_000;
    const OLD: i64 = NOW - SETTLE_MICROS - 1;

    fn mark(position: i64, created_at: i64) -> Mark {
        Mark {
            position,
            created_at,
            id: Uuid::from_u128(position as u128),
        }
    }

    #[test]
    fn seeks_the_nearest_mark_at_or_before_the_start() {
        let c = PageCursors::default();
        let d = Uuid::from_u128(1);
        assert_eq!(c.seek(d, "users", 500), (Mark::START, Mark::START, None));
        c.record(d, "users", 3, NOW, [mark(100, OLD), mark(400, OLD)]);
        let last = mark(400, OLD);
        assert_eq!(c.seek(d, "users", 399), (mark(100, OLD), last, Some(3)));
        assert_eq!(c.seek(d, "users", 400), (mark(400, OLD), last, Some(3)));
        assert_eq!(c.seek(d, "users", 90), (Mark::START, last, Some(3)));
        assert_eq!(c.seek(d, "groups", 400), (Mark::START, Mark::START, None));
    }

    #[test]
    fn a_newer_epoch_forgets_and_an_older_one_is_ignored() {
        let c = PageCursors::default();
        let d = Uuid::from_u128(1);
        c.record(d, "users", 3, NOW, [mark(100, OLD)]);
        c.record(d, "users", 2, NOW, [mark(200, OLD)]);
        assert_eq!(
            c.seek(d, "users", 300),
            (mark(100, OLD), mark(100, OLD), Some(3))
        );
        c.invalidate(d, "users", 4);
        assert_eq!(c.seek(d, "users", 300), (Mark::START, Mark::START, Some(4)));
    }

    #[test]
    fn recent_rows_are_not_marked() {
        let c = PageCursors::default();
        let d = Uuid::from_u128(1);
        c.record(d, "users", 0, NOW, [mark(100, NOW - 5)]);
        assert_eq!(c.seek(d, "users", 300), (Mark::START, Mark::START, Some(0)));
    }

    /// One walker per list; other lists are not held up.
    #[tokio::test]
    async fn walks_of_one_list_take_turns() {
        use std::time::Duration;
        let cursors = PageCursors::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let first = cursors.walking(a, "users").await;
        let other_list =
            tokio::time::timeout(Duration::from_millis(50), cursors.walking(b, "users"));
        assert!(other_list.await.is_ok());
        let other_table =
            tokio::time::timeout(Duration::from_millis(50), cursors.walking(a, "groups"));
        assert!(other_table.await.is_ok());
        let same = tokio::time::timeout(Duration::from_millis(50), cursors.walking(a, "users"));
        assert!(same.await.is_err());
        drop(first);
        let again = tokio::time::timeout(Duration::from_millis(50), cursors.walking(a, "users"));
        assert!(again.await.is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let c = PageCursors::default();
        let d = Uuid::from_u128(1);
        c.record(d, "users", 0, NOW, (2..100_000).map(|p| mark(p, OLD)));
        let lists = c.lists.lock().unwrap();
        let marks = &lists[&(d, "users")].marks;
        assert!(marks.len() <= MAX_MARKS);
        // The marks laid every hop survive.
        assert!(marks.contains_key(&(1 + HOP)));
        assert!(marks.contains_key(&(1 + 9 * HOP)));
    }
}
