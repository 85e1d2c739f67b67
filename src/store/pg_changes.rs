//! Other processes' changes to users, heard from PostgreSQL.
//!
//! Triggers on `users`, `groups`, `group_members` and `directories`
//! (`migrations/postgres/0008_user_changes.sql`) send a notice on the
//! channel `scimd.<schema>` in the transaction of every change that alters
//! how a user reads: `u:<id>,<id>,…` for up to 100 users, `d:<id>` for a
//! directory when more changed at once. PostgreSQL delivers a notice only
//! after its transaction committed, so a notice always follows the change.
//! This task listens on its own connection and ends the cache entries each
//! notice names. Until it listens, and from the moment its connection is
//! lost until it listens again, the cache serves nothing (notices sent
//! meanwhile are not kept for it).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use uuid::Uuid;

use super::user_cache::{Change, UserCache};

/// Wait between attempts to connect again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Listens for as long as the returned task is not aborted.
pub(crate) fn start(
    options: PgConnectOptions,
    cache: Arc<UserCache>,
) -> tokio::task::JoinHandle<()> {
    let name = match options.get_application_name() {
        Some(name) => format!("{name}/changes"),
        None => "scimd/changes".to_owned(),
    };
    let options = options.application_name(&name);
    tokio::spawn(async move {
        loop {
            match listen(&options, &cache).await {
                Ok(()) => tracing::warn!("lost the change feed; users are read from the database"),
                Err(e) => {
                    tracing::warn!(error = %e, "change feed unavailable; users are read from the database")
                }
            }
            cache.set_serving(false);
            tokio::time::sleep(RETRY_AFTER).await;
        }
    })
}

/// Connects, listens and applies notices until the connection is lost.
async fn listen(options: &PgConnectOptions, cache: &UserCache) -> sqlx::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .min_connections(0)
        .max_lifetime(None)
        .idle_timeout(None)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options.clone());
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.eager_reconnect(false);
    let schema: String = sqlx::query_scalar("SELECT current_schema()")
        .fetch_one(&mut listener)
        .await?;
    listener.listen(&channel(&schema)).await?;
    // Listening from here on: what changed before is unknown, so start
    // from nothing.
    cache.set_serving(true);
    while let Some(notice) = listener.try_recv().await? {
        for change in parse(notice.payload()) {
            cache.changed(change);
        }
    }
    Ok(())
}

/// The channel of the store in `schema` (as the triggers name it).
pub(crate) fn channel(schema: &str) -> String {
    format!("scimd.{schema}")
}

/// The changes a notice names. One it cannot read ends everything: a
/// notice is never ignored.
fn parse(payload: &str) -> Vec<Change> {
    let ids = |list: &str| -> Option<Vec<Uuid>> {
        list.split(',').map(|id| Uuid::parse_str(id).ok()).collect()
    };
    let changes = match payload.split_once(':') {
        Some(("u", list)) => ids(list).map(|ids| ids.into_iter().map(Change::User).collect()),
        Some(("d", list)) => ids(list).map(|ids| ids.into_iter().map(Change::Directory).collect()),
        _ => None,
    };
    changes.unwrap_or_else(|| {
        tracing::warn!(
            payload,
            "unreadable change notice; dropping every cached user"
        );
        vec![Change::Everything]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_name_users_or_directories() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let users = parse(&format!("u:{a},{b}"));
        assert!(matches!(users[..], [Change::User(x), Change::User(y)] if x == a && y == b));
        let dirs = parse(&format!("d:{a}"));
        assert!(matches!(dirs[..], [Change::Directory(x)] if x == a));
    }

    #[test]
    fn an_unreadable_notice_ends_everything() {
        for payload in ["", "u:", "u:nope", "x:1", "hello"] {
            assert!(
                matches!(parse(payload)[..], [Change::Everything]),
                "{payload}"
            );
        }
    }
}
