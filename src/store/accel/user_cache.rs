//! Users as `GET /Users/{id}` and `userName eq` read them, kept in memory.
//!
//! Those two look-ups are most of what identity providers send, and with
//! PostgreSQL most of their cost is the database's process and the round
//! trip to it, not the row. So the rows read are kept (within a budget of
//! bytes), and a look-up of a kept row that is still current costs no
//! statement at all.
//!
//! **Current** is decided by generations, not by removing entries. A
//! change bumps a counter: the user's (one of [`USER_SHARDS`], chosen by
//! its id), the directory's (one of [`DIRECTORY_SHARDS`]) for changes that
//! touch many users (a group renamed, members added, a directory deleted),
//! or the epoch for everything. An entry carries the three counters as they
//! were *before* its row was read, and serves only while all three are
//! unchanged. Since every change bumps its counter after it committed, a
//! row read before a commit is stamped with a generation the commit has
//! already moved past, or is refused outright (see [`UserCache::fill`]):
//! a look-up that starts after a write was answered never sees what the
//! write replaced. A shared shard only costs a needless miss.
//!
//! This process's writes bump the counters themselves. On PostgreSQL other
//! processes' writes (other replicas, the CLI) reach it as notifications
//! sent by triggers in the same transactions (`migrations/postgres/
//! 0008_user_changes.sql`, [`crate::store::postgres::changes`]); while that feed is not
//! connected nothing is served from memory, and when it reconnects
//! everything held is dropped, since notices sent meanwhile are lost.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;
use uuid::Uuid;

use crate::store::users::{UserGroup, UserRow};

/// Counters for users' own changes; a change to one user also ends the
/// entries of the others in its shard, about one in 4,096.
const USER_SHARDS: usize = 4096;

/// Counters for changes to many users of one directory at once.
const DIRECTORY_SHARDS: usize = 256;

/// What an entry costs besides its strings: the entry itself, its
/// `Arc`, the index's slot and the name entry (measured roughly; the
/// budget is a bound, not an account).
const ENTRY_OVERHEAD: u64 = 256;

/// A user as the look-ups return it, with the generations it is good for.
pub(crate) struct CachedUser {
    pub directory_id: Uuid,
    pub user_name_ci: String,
    pub user: UserRow,
    pub groups: Vec<UserGroup>,
    stamp: Stamp,
}

/// The counters that decide whether an entry is current.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    user: u64,
    directory: u64,
    epoch: u64,
}

/// Taken before a look-up reads the database: what a row it reads may be
/// kept as.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Load {
    /// The number of changes so far: a fill is refused if any happened
    /// since, since the row read may predate it.
    changes: u64,
    /// For a look-up by id, the counters of that user: then only a change
    /// to them refuses the fill.
    counters: Option<Stamp>,
}

#[derive(Clone)]
struct ByteWeight;

impl Weighter<Uuid, Arc<CachedUser>> for ByteWeight {
    fn weight(&self, _id: &Uuid, entry: &Arc<CachedUser>) -> u64 {
        let groups: usize = entry.groups.iter().map(|g| g.display_name.len() + 48).sum();
        ENTRY_OVERHEAD + (entry.user.doc.len() + 2 * entry.user_name_ci.len() + groups) as u64
    }
}

/// The changes a write made, for [`UserCache::changed`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Change {
    /// One user's representation.
    User(Uuid),
    /// Any number of users of one directory (groups, deletes of many).
    Directory(Uuid),
    /// Anything (a lost notification feed).
    Everything,
}

pub(crate) struct UserCache {
    by_id: Option<Cache<Uuid, Arc<CachedUser>, ByteWeight>>,
    /// (directory, lowercased userName) → id. An entry only points: the
    /// user it names must be current and still so named.
    by_name: Option<Cache<(Uuid, String), Uuid>>,
    users: Box<[AtomicU64]>,
    directories: Box<[AtomicU64]>,
    epoch: AtomicU64,
    changes: AtomicU64,
    /// False while changes made elsewhere could go unheard (PostgreSQL's
    /// feed not connected): nothing is served or kept.
    serving: AtomicBool,
}

impl UserCache {
    /// A cache holding about `bytes` of users; none at all for 0.
    /// `serving` is false where a feed of others' changes must connect
    /// first.
    pub(crate) fn new(bytes: u64, serving: bool) -> UserCache {
        let (by_id, by_name) = if bytes == 0 {
            (None, None)
        } else {
            // quick_cache sizes its tables from the estimate: bounded, so
            // that a huge budget does not allocate them all up front.
            let items = (bytes / 1024).clamp(16, 1 << 22) as usize;
            (
                Some(Cache::with_weighter(items, bytes, ByteWeight)),
                Some(Cache::new(items)),
            )
        };
        UserCache {
            by_id,
            by_name,
            users: (0..USER_SHARDS).map(|_| AtomicU64::new(0)).collect(),
            directories: (0..DIRECTORY_SHARDS).map(|_| AtomicU64::new(0)).collect(),
            epoch: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            serving: AtomicBool::new(serving),
        }
    }

    pub(crate) fn is_enabled(&self) -> bool {
        self.by_id.is_some()
    }

    fn user_shard(&self, id: Uuid) -> &AtomicU64 {
        &self.users[id.as_u128() as usize % USER_SHARDS]
    }

    fn directory_shard(&self, id: Uuid) -> &AtomicU64 {
        &self.directories[id.as_u128() as usize % DIRECTORY_SHARDS]
    }

    fn stamp(&self, directory_id: Uuid, id: Uuid) -> Stamp {
        Stamp {
            user: self.user_shard(id).load(SeqCst),
            directory: self.directory_shard(directory_id).load(SeqCst),
            epoch: self.epoch.load(SeqCst),
        }
    }

    /// User `id` of `directory_id`, if kept and current.
    pub(crate) fn user(&self, directory_id: Uuid, id: Uuid) -> Option<Arc<CachedUser>> {
        if !self.serving.load(SeqCst) {
            return None;
        }
        let entry = self.by_id.as_ref()?.get(&id)?;
        (entry.directory_id == directory_id && entry.stamp == self.stamp(directory_id, id))
            .then_some(entry)
    }

    /// The user of `directory_id` whose lowercased userName is `name_ci`,
    /// if kept and current.
    pub(crate) fn user_named(&self, directory_id: Uuid, name_ci: &str) -> Option<Arc<CachedUser>> {
        if !self.serving.load(SeqCst) {
            return None;
        }
        let id = self
            .by_name
            .as_ref()?
            .get(&(directory_id, name_ci.to_owned()))?;
        self.user(directory_id, id)
            .filter(|entry| entry.user_name_ci == name_ci)
    }

    /// To be called before a look-up reads the database; `None` if what it
    /// reads is not to be kept.
    pub(crate) fn begin(&self) -> Option<Load> {
        (self.is_enabled() && self.serving.load(SeqCst)).then(|| Load {
            changes: self.changes.load(SeqCst),
            counters: None,
        })
    }

    /// [`Self::begin`] for a look-up of user `id` of `directory_id`, whose
    /// row is refused only if a change to its own counters is made
    /// meanwhile (not any change at all, which under a steady write load
    /// would refuse most).
    pub(crate) fn begin_user(&self, directory_id: Uuid, id: Uuid) -> Option<Load> {
        let mut load = self.begin()?;
        load.counters = Some(self.stamp(directory_id, id));
        Some(load)
    }

    /// Keeps a row read by the look-up that took `load`, unless a change
    /// was made since (then the row may be older than that change, and the
    /// next look-up reads again).
    ///
    /// Why this is enough: a change bumps `changes` first and its own
    /// counter second, both after it committed. If `changes` is still as
    /// it was before the read, no change finished its first step in
    /// between, so the counters read now are those from before the read;
    /// a change whose first step comes after this check bumps its counter
    /// after that too, ending the entry. For a look-up by id the same
    /// holds of the user's own counters: unchanged since before the read,
    /// no change to them was counted in between, and one counted later
    /// ends the entry.
    pub(crate) fn fill(
        &self,
        load: Load,
        directory_id: Uuid,
        user_name_ci: String,
        user: UserRow,
        groups: Vec<UserGroup>,
    ) {
        let (Some(by_id), Some(by_name)) = (&self.by_id, &self.by_name) else {
            return;
        };
        let id = user.id;
        let stamp = self.stamp(directory_id, id);
        let unchanged = match load.counters {
            Some(before) => before == stamp,
            None => self.changes.load(SeqCst) == load.changes,
        };
        if !unchanged {
            return;
        }
        by_name.insert((directory_id, user_name_ci.clone()), id);
        by_id.insert(
            id,
            Arc::new(CachedUser {
                directory_id,
                user_name_ci,
                user,
                groups,
                stamp,
            }),
        );
    }

    /// Records a change, once it has committed: what it touched is no
    /// longer served from memory.
    pub(crate) fn changed(&self, change: Change) {
        self.changes.fetch_add(1, SeqCst);
        match change {
            Change::User(id) => self.user_shard(id).fetch_add(1, SeqCst),
            Change::Directory(id) => self.directory_shard(id).fetch_add(1, SeqCst),
            Change::Everything => self.epoch.fetch_add(1, SeqCst),
        };
    }

    /// Starts or stops serving (the feed of others' changes connected or
    /// lost). Either way everything held so far is dropped: what changed
    /// while nobody listened is unknown.
    pub(crate) fn set_serving(&self, serving: bool) {
        self.changed(Change::Everything);
        self.serving.store(serving, SeqCst);
        self.changed(Change::Everything);
        if let (Some(by_id), Some(by_name)) = (&self.by_id, &self.by_name) {
            by_id.clear();
            by_name.clear();
        }
    }

    /// A guard that records `change` when dropped: it travels with a
    /// write's result, which every path drops only after the transaction
    /// ended (see [`crate::store::Store::change_guard`]).
    pub(crate) fn on_drop(self: &Arc<Self>, change: Change) -> ChangeGuard {
        ChangeGuard {
            cache: self.clone(),
            change,
        }
    }
}

/// Records a change when dropped (see [`UserCache::on_drop`]).
#[must_use = "the change is recorded when the guard is dropped"]
pub(crate) struct ChangeGuard {
    cache: Arc<UserCache>,
    change: Change,
}

impl Drop for ChangeGuard {
    fn drop(&mut self) {
        self.cache.changed(self.change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: Uuid, doc: &str) -> UserRow {
        UserRow {
            id,
            doc: doc.to_owned(),
            version: 1,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn kept(cache: &UserCache, dir: Uuid, id: Uuid, name: &str) {
        let load = cache.begin().expect("serving");
        cache.fill(load, dir, name.to_owned(), row(id, "{}"), Vec::new());
    }

    #[test]
    fn a_kept_user_is_served_by_id_and_by_name_in_its_directory_only() {
        let cache = UserCache::new(1 << 20, true);
        let (dir, other, id) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        kept(&cache, dir, id, "ada");
        assert_eq!(cache.user(dir, id).expect("kept").user.id, id);
        assert_eq!(cache.user_named(dir, "ada").expect("kept").user.id, id);
        assert!(cache.user(other, id).is_none());
        assert!(cache.user_named(other, "ada").is_none());
        assert!(cache.user_named(dir, "bob").is_none());
    }

    #[test]
    fn a_change_ends_what_it_touched() {
        let cache = UserCache::new(1 << 20, true);
        let (dir, a, b) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        kept(&cache, dir, a, "a");
        kept(&cache, dir, b, "b");
        cache.changed(Change::User(a));
        assert!(cache.user(dir, a).is_none());
        assert!(cache.user_named(dir, "a").is_none());
        // Unless the two share a shard, the other stays.
        if a.as_u128() as usize % USER_SHARDS != b.as_u128() as usize % USER_SHARDS {
            assert!(cache.user(dir, b).is_some());
        }
        cache.changed(Change::Directory(dir));
        assert!(cache.user(dir, b).is_none());
        kept(&cache, dir, b, "b");
        cache.changed(Change::Everything);
        assert!(cache.user(dir, b).is_none());
    }

    #[test]
    fn a_row_read_across_a_change_is_not_kept() {
        let cache = UserCache::new(1 << 20, true);
        let (dir, id, unrelated) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let load = cache.begin().expect("serving");
        // The read may have seen the row before this change committed:
        // even a change to another user refuses the fill.
        cache.changed(Change::User(unrelated));
        cache.fill(load, dir, "a".into(), row(id, "{}"), Vec::new());
        assert!(cache.user(dir, id).is_none());
    }

    #[test]
    fn a_look_up_by_id_is_refused_only_by_changes_to_its_own_counters() {
        let cache = UserCache::new(1 << 20, true);
        let dir = Uuid::new_v4();
        let id = Uuid::from_u128(7);
        let neighbour = Uuid::from_u128(7 + USER_SHARDS as u128);
        let stranger = Uuid::from_u128(8);
        let load = cache.begin_user(dir, id).expect("serving");
        cache.changed(Change::User(stranger));
        cache.fill(load, dir, "a".into(), row(id, "{}"), Vec::new());
        assert!(cache.user(dir, id).is_some(), "another shard's change");
        for change in [
            Change::User(id),
            Change::User(neighbour),
            Change::Directory(dir),
            Change::Everything,
        ] {
            let load = cache.begin_user(dir, id).expect("serving");
            cache.changed(change);
            cache.fill(load, dir, "a".into(), row(id, "{}"), Vec::new());
            assert!(cache.user(dir, id).is_none(), "{change:?}");
        }
    }

    #[test]
    fn a_renamed_user_is_not_found_by_its_old_name() {
        let cache = UserCache::new(1 << 20, true);
        let (dir, id) = (Uuid::new_v4(), Uuid::new_v4());
        kept(&cache, dir, id, "old");
        cache.changed(Change::User(id));
        kept(&cache, dir, id, "new");
        assert!(cache.user_named(dir, "old").is_none());
        assert!(cache.user_named(dir, "new").is_some());
    }

    #[test]
    fn nothing_is_served_or_kept_while_not_serving() {
        let cache = UserCache::new(1 << 20, true);
        let (dir, id) = (Uuid::new_v4(), Uuid::new_v4());
        kept(&cache, dir, id, "a");
        let load = cache.begin().expect("serving");
        cache.set_serving(false);
        assert!(cache.user(dir, id).is_none());
        assert!(cache.begin().is_none());
        cache.set_serving(true);
        // Held before the gap: dropped. Read before it: refused.
        assert!(cache.user(dir, id).is_none());
        cache.fill(load, dir, "a".into(), row(id, "{}"), Vec::new());
        assert!(cache.user(dir, id).is_none());
    }

    #[test]
    fn a_guard_records_its_change_when_dropped() {
        let cache = Arc::new(UserCache::new(1 << 20, true));
        let (dir, id) = (Uuid::new_v4(), Uuid::new_v4());
        kept(&cache, dir, id, "a");
        let guard = cache.on_drop(Change::User(id));
        assert!(cache.user(dir, id).is_some());
        drop(guard);
        assert!(cache.user(dir, id).is_none());
    }

    #[test]
    fn the_budget_bounds_what_is_kept() {
        let cache = UserCache::new(64 * 1024, true);
        let dir = Uuid::new_v4();
        let doc = "x".repeat(1000);
        for i in 0..1000 {
            let load = cache.begin().expect("serving");
            cache.fill(
                load,
                dir,
                format!("u{i}"),
                row(Uuid::new_v4(), &doc),
                Vec::new(),
            );
        }
        let by_id = cache.by_id.as_ref().expect("enabled");
        assert!(by_id.weight() <= 64 * 1024, "{}", by_id.weight());
        assert!(by_id.len() < 1000);
    }

    #[test]
    fn a_cache_of_no_bytes_keeps_nothing() {
        let cache = UserCache::new(0, true);
        assert!(cache.begin().is_none());
        assert!(cache.user(Uuid::new_v4(), Uuid::new_v4()).is_none());
    }
}
