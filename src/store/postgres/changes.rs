//! Other processes' changes to users, heard from PostgreSQL.
//!
//! Triggers on `users`, `group_members` and `groups` (which a deleted
//! directory reaches by cascade; `migrations/postgres/0008_user_changes.sql`)
//! send a notice on the channel `scimd.<schema>` in the transaction of
//! every change that alters how a user reads: `u:<id>,<id>,…` for up to
//! 100 users, `d:<id>` for a directory when more changed at once or a
//! group was renamed. PostgreSQL delivers a notice only
//! after its transaction committed, so a notice always follows the change.
//! This task listens on its own connection and ends the cache entries each
//! notice names. Until it listens, and from the moment its connection is
//! lost until it listens again, the cache serves nothing (notices sent
//! meanwhile are not kept for it).

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use uuid::Uuid;

use crate::store::accel::user_cache::{Change, UserCache};

/// Wait between attempts to connect again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// How long the feed waits for its own test notice before it gives up and
/// tries again.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// The start of the payload of the notice a feed sends itself once it
/// listens (`ready:<token>`); other servers ignore it.
const READY: &str = "ready:";

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
        // Said once an outage, not at every attempt.
        let mut failing = false;
        loop {
            let outcome = listen(&options, &cache, &mut failing).await;
            cache.set_serving(false);
            if !failing {
                match outcome {
                    Ok(()) => tracing::warn!(
                        "lost the change feed; users are read from the database until it is back"
                    ),
                    Err(e) => tracing::warn!(
                        error = %e,
                        "no change feed; users are read from the database until there is one"
                    ),
                }
            }
            failing = true;
            tokio::time::sleep(RETRY_AFTER).await;
        }
    })
}

/// Connects, listens and applies notices until the connection is lost.
///
/// Before serving anything from memory it sends itself a notice and waits
/// for it: through a proxy that pools transactions (PgBouncer's
/// transaction mode) `LISTEN` succeeds but nothing ever arrives, and a
/// feed that hears nothing must never serve.
async fn listen(
    options: &PgConnectOptions,
    cache: &UserCache,
    failing: &mut bool,
) -> sqlx::Result<()> {
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
    let channel = channel(&schema);
    listener.listen(&channel).await?;
    let ready = format!("{READY}{}", Uuid::new_v4().simple());
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(&channel)
        .bind(&ready)
        .execute(&mut listener)
        .await?;
    let heard = tokio::time::timeout(READY_WITHIN, async {
        while let Some(notice) = listener.try_recv().await? {
            if notice.payload() == ready {
                return Ok(true);
            }
        }
        Ok::<_, sqlx::Error>(false)
    })
    .await
    .map_err(|_| {
        sqlx::Error::Protocol(format!(
            "LISTEN on {channel} heard nothing within {READY_WITHIN:?} \
             (a proxy that pools transactions in between?)"
        ))
    })??;
    if !heard {
        return Ok(());
    }
    // Listening from here on: what changed before is unknown, so start
    // from nothing.
    cache.set_serving(true);
    if std::mem::take(failing) {
        tracing::info!("change feed back; users are kept in memory again");
    }
    while let Some(notice) = listener.try_recv().await? {
        for change in parse(notice.payload()) {
            cache.changed(change);
        }
    }
    Ok(())
}

/// The channel of the store in `schema` (as the triggers name it).
fn channel(schema: &str) -> String {
    format!("scimd.{schema}")
}

/// The changes a notice names. One it cannot read ends everything: a
/// notice is never ignored.
fn parse(payload: &str) -> Vec<Change> {
    if payload.starts_with(READY) {
        // A server's test of its own feed.
        return Vec::new();
    }
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
    fn test_notices_change_nothing() {
        assert!(parse("ready:0f3c").is_empty());
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
