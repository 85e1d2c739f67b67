//! The sync engine's persistence: a directory's contents as the engine
//! reads them, runs with their leases and counts, what the last run
//! decided, and the batches that write effective access.
//!
//! A run writes in batches of accounts, each batch one transaction that
//! also moves the run's cursor and adds to its counts; a batch is refused
//! (and rolled back) if the run's lease is no longer this process's, so two
//! processes never write one run.

use std::collections::{BTreeSet, HashMap, HashSet};

use uuid::Uuid;

use super::audit::{insert_event, insert_events};
use super::conn::{Conn, SqlBuilder};
use super::events::{insert_directory_events, insert_org_events, NewEvent};
use super::{read, transaction, Result, Store, StoreError};
use crate::audit::{Action, AuditContext, Event, Target, TargetType};
use crate::sync::plan::{Analysis, Grant, UserFacts};
use crate::time::now_micros;

/// Ids a statement binds at most (SQLite's limit is 32,766 values).
const CHUNK: usize = 5_000;

/// The ids as one JSON array of their hex forms, read back with `unhex`
/// (SQLite) or `::uuid` (PostgreSQL).
fn json_ids(ids: &[Uuid]) -> String {
    let mut keys = String::with_capacity(ids.len() * 35 + 2);
    keys.push('[');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            keys.push(',');
        }
        keys.push('"');
        keys.push_str(id.simple().encode_lower(&mut Uuid::encode_buffer()));
        keys.push('"');
    }
    keys.push(']');
    keys
}

/// `column IN` the `ids`, bound as one JSON array however many there are:
/// one statement for a 10,000-member change, which PostgreSQL parses and
/// plans once (a list of 5,000 placeholders took it 100–250 ms a statement
/// on a loaded machine). On PostgreSQL `= ANY` of the array computed once:
/// an index condition on an indexed `column` (as a subquery, the planner,
/// which guesses 100 ids, may run it once for each row of the table). As
/// a filter it compares each row with the ids one after another: for a
/// column it does not search by, see [`Store::any_groups`].
fn push_in_ids(q: &mut SqlBuilder<'_>, d: super::Dialect, column: &str, ids: &[Uuid]) {
    q.push(column);
    match d {
        super::Dialect::Sqlite => {
            q.push(" IN (SELECT unhex(value) FROM json_each(");
            q.push_bind(json_ids(ids)).push("))");
        }
        super::Dialect::Postgres => {
            q.push(" = ANY(ARRAY(SELECT k::uuid FROM jsonb_array_elements_text(");
            q.push_bind(json_ids(ids)).push("::jsonb) AS k))");
        }
    }
}

/// Everything of a directory the engine needs for a run.
#[derive(Debug, Default)]
pub struct DirectoryContents {
    pub org_id: Uuid,
    pub users: Vec<UserFacts>,
    pub groups: Vec<(Uuid, String)>,
    /// `(group, member group)`.
    pub nested: Vec<(Uuid, Uuid)>,
    pub grants: Vec<Grant>,
    /// The access the directory's grants give now: account → grants.
    pub held: HashMap<Uuid, BTreeSet<Uuid>>,
    /// Accounts never synced yet, with their email when they have one.
    pub unsynced: HashMap<Uuid, Option<String>>,
    /// The org's verified domains.
    pub verified_domains: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct UserLine {
    id: Uuid,
    account_id: Option<Uuid>,
    active: bool,
    account_active: Option<bool>,
    email_domain: Option<String>,
    managed: Option<bool>,
    synced_at: Option<i64>,
    email: Option<String>,
}

const USER_LINES: &str = "SELECT u.id, u.account_id, u.active, a.active AS account_active, \
     a.email_domain, (d.name IS NOT NULL) AS managed, a.synced_at, a.email \
     FROM users u LEFT JOIN accounts a ON a.id = u.account_id \
     LEFT JOIN domains d ON d.org_id = a.org_id AND d.name = a.email_domain \
     AND d.status = 'verified' WHERE u.directory_id = $1";

fn user_facts(
    lines: Vec<UserLine>,
    unsynced: &mut HashMap<Uuid, Option<String>>,
) -> Vec<UserFacts> {
    lines
        .into_iter()
        .map(|l| {
            if let (Some(a), None) = (l.account_id, l.synced_at) {
                unsynced.insert(a, l.email.clone());
            }
            UserFacts {
                id: l.id,
                account: l.account_id,
                active: l.active,
                account_active: l.account_active.unwrap_or(false),
                managed_domain: l.email_domain.filter(|_| l.managed == Some(true)),
                groups: Vec::new(),
            }
        })
        .collect()
}

fn attach_groups(users: &mut [UserFacts], memberships: Vec<(Uuid, Uuid)>) {
    let index: HashMap<Uuid, usize> = users.iter().enumerate().map(|(i, u)| (u.id, i)).collect();
    for (group, member) in memberships {
        if let Some(&i) = index.get(&member) {
            users[i].groups.push(group);
        }
    }
}

/// A grant as read: (id, group, site, product, role).
type GrantLine = (Uuid, Uuid, Uuid, String, String);

fn grant_of((id, group_id, site_id, product_key, role): GrantLine) -> Grant {
    Grant {
        id,
        group_id,
        site_id,
        product_key,
        role,
    }
}

async fn grants_of<C: Conn>(c: &mut C, directory_id: Uuid) -> Result<Vec<Grant>> {
    let rows: Vec<GrantLine> = c
        .fetch_all(
            "SELECT g.id, g.scim_group_id, g.site_id, g.product_key, g.role \
             FROM product_grants g JOIN groups sg ON sg.id = g.scim_group_id \
             WHERE sg.directory_id = $1 ORDER BY g.id",
            &[directory_id.into()],
        )
        .await?;
    Ok(rows.into_iter().map(grant_of).collect())
}

async fn nested_of<C: Conn>(c: &mut C, directory_id: Uuid) -> Result<Vec<(Uuid, Uuid)>> {
    Ok(c.fetch_all(
        "SELECT gm.group_id, gm.member_id FROM group_members gm \
             JOIN groups g ON g.id = gm.group_id \
             WHERE g.directory_id = $1 AND gm.member_type = 'Group'",
        &[directory_id.into()],
    )
    .await?)
}

/// The held access of the directory's grants, for all its accounts.
async fn held_of<C: Conn>(c: &mut C, directory_id: Uuid) -> Result<HashMap<Uuid, BTreeSet<Uuid>>> {
    let rows: Vec<(Uuid, Uuid)> = c
        .fetch_all(
            "SELECT e.account_id, e.grant_id FROM effective_access e \
             JOIN product_grants g ON g.id = e.grant_id JOIN groups sg ON sg.id = g.scim_group_id \
             WHERE sg.directory_id = $1",
            &[directory_id.into()],
        )
        .await?;
    Ok(held_map(rows))
}

/// The held access of `grants` (the directory's) for these accounts. Read
/// by account and filtered here: joined with the grants, SQLite reads every
/// access row of the directory's grants through their index (125,000 rows
/// at 100 granted groups of 1,250) to keep a few.
async fn held_by<C: Conn>(
    c: &mut C,
    accounts: &[Uuid],
    grants: &[Grant],
) -> Result<HashMap<Uuid, BTreeSet<Uuid>>> {
    if accounts.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: HashSet<Uuid> = grants.iter().map(|g| g.id).collect();
    let mut q = SqlBuilder::new(
        C::DIALECT,
        "SELECT account_id, grant_id FROM effective_access WHERE ",
    );
    push_in_ids(&mut q, C::DIALECT, "account_id", accounts);
    let rows: Vec<(Uuid, Uuid)> = c.fetch_all(q.sql(), q.args()).await?;
    Ok(held_map(
        rows.into_iter().filter(|(_, g)| ids.contains(g)).collect(),
    ))
}

fn held_map(rows: Vec<(Uuid, Uuid)>) -> HashMap<Uuid, BTreeSet<Uuid>> {
    let mut held: HashMap<Uuid, BTreeSet<Uuid>> = HashMap::new();
    for (a, g) in rows {
        held.entry(a).or_default().insert(g);
    }
    held
}

async fn verified_domains<C: Conn>(c: &mut C, org_id: Uuid) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = c
        .fetch_all(
            "SELECT name FROM domains WHERE org_id = $1 AND status = 'verified' ORDER BY name",
            &[org_id.into()],
        )
        .await?;
    Ok(rows.into_iter().map(|(n,)| n).collect())
}

/// The directory's org; NotFound when it is gone.
async fn org_of<C: Conn>(c: &mut C, directory_id: Uuid) -> Result<Uuid> {
    let row: Option<(Uuid,)> = c
        .fetch_optional(
            "SELECT org_id FROM directories WHERE id = $1",
            &[directory_id.into()],
        )
        .await?;
    row.map(|(o,)| o).ok_or(StoreError::NotFound)
}

/// What the last run stored for the continuous path to go on with.
#[derive(Clone, Debug)]
pub struct StoredAnalysis {
    pub analysis: Analysis,
    /// None: all verified domains.
    pub domains: Option<Vec<String>>,
    pub email_new_users: bool,
    /// The limit it applied.
    pub group_user_limit: u32,
}

/// One group as the last run left it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct GroupStateRow {
    pub group_id: Uuid,
    pub name: String,
    pub state: String,
    pub size: i64,
}

/// The part of a directory one change touches: the users linked to some
/// accounts, with what the last run decided.
#[derive(Debug)]
pub struct AccountsContents {
    pub org_id: Uuid,
    pub users: Vec<UserFacts>,
    pub nested: Vec<(Uuid, Uuid)>,
    pub grants: Vec<Grant>,
    pub held: HashMap<Uuid, BTreeSet<Uuid>>,
    pub unsynced: HashMap<Uuid, Option<String>>,
    /// None: the directory never ran.
    pub stored: Option<StoredAnalysis>,
}

/// A run as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RunRow {
    pub id: Uuid,
    pub directory_id: Uuid,
    pub org_id: Uuid,
    pub trigger: String,
    pub state: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub settings: String,
    pub plan: Option<String>,
    pub cursor: Option<Uuid>,
    pub accounts_total: i64,
    pub accounts_done: i64,
    pub accounts_created: i64,
    pub accounts_updated: i64,
    pub accounts_deactivated: i64,
    pub access_granted: i64,
    pub access_revoked: i64,
    pub emails_queued: i64,
    pub users_skipped_by_domain: i64,
    pub failures: Option<String>,
    pub actor: String,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
}

const RUN_COLUMNS: &str = "id, directory_id, org_id, trigger, state, started_at, finished_at, \
     settings, plan, cursor, accounts_total, accounts_done, accounts_created, accounts_updated, \
     accounts_deactivated, access_granted, access_revoked, emails_queued, \
     users_skipped_by_domain, failures, actor, lease_owner, lease_expires_at";

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartRunError {
    /// Another run of the directory is running (its id).
    #[error("run {0} is running")]
    Running(Uuid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one batch writes, account by account.
#[derive(Debug, Default)]
pub struct BatchWrite {
    /// `(account, grant)` rows to add.
    pub add: Vec<(Uuid, Uuid)>,
    /// `(account, grant)` rows to remove.
    pub remove: Vec<(Uuid, Uuid)>,
    /// Active accounts in scope: those never synced are synced now.
    pub provision: Vec<Uuid>,
    /// Accounts whose access changed and that are inactive.
    pub deactivated: HashSet<Uuid>,
    /// Whether newly synced accounts get a welcome email.
    pub email_new_users: bool,
    /// Accounts this batch covers (its progress).
    pub accounts: i64,
    /// The last account of the batch (the run's cursor).
    pub last_account: Option<Uuid>,
}

/// What a batch wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchCounts {
    pub accounts_created: i64,
    pub accounts_updated: i64,
    pub accounts_deactivated: i64,
    pub access_granted: i64,
    pub access_revoked: i64,
    pub emails_queued: i64,
}

/// The run a batch belongs to: its id and the lease owner that must still
/// hold it.
#[derive(Clone, Debug)]
pub struct RunLease {
    pub run_id: Uuid,
    pub owner: String,
    pub expires_at: i64,
}

fn grant_detail(
    directory_id: Option<Uuid>,
    run_id: Option<Uuid>,
    trigger: &str,
    grants: &[&Grant],
) -> String {
    // An event's detail holds 1,024 characters: the first grants are
    // listed whole and the rest counted, so the detail stays valid JSON.
    const LISTED: usize = 3;
    let list: Vec<serde_json::Value> = grants
        .iter()
        .take(LISTED)
        .map(|g| {
            serde_json::json!({
                "grantId": g.id, "groupId": g.group_id, "siteId": g.site_id,
                "productKey": g.product_key, "role": g.role,
            })
        })
        .collect();
    let mut detail = serde_json::json!({
        "directoryId": directory_id, "runId": run_id, "trigger": trigger, "grants": list,
    });
    if grants.len() > LISTED {
        detail["moreGrants"] = serde_json::json!(grants.len() - LISTED);
    }
    detail.to_string()
}

/// Queues a welcome email to each account the batch synced for the first
/// time, naming what it can now use; an account is welcomed once however
/// often its run is resumed (the outbox's key). Returns the emails queued.
async fn queue_welcomes<C: Conn>(
    c: &mut C,
    org_id: Uuid,
    directory_id: Uuid,
    grants: &HashMap<Uuid, Grant>,
    batch: &BatchWrite,
    accounts: &[(Uuid, String, Option<String>)],
) -> Result<i64> {
    use crate::mail::welcome::{welcome_email, ProductAccess, Welcome};
    use crate::mail::Recipient;
    let (org_name,): (String,) = c
        .fetch_one("SELECT name FROM orgs WHERE id = $1", &[org_id.into()])
        .await?;
    let sites: Vec<(Uuid, String, String)> = c
        .fetch_all(
            "SELECT id, name, url FROM sites WHERE org_id = $1",
            &[org_id.into()],
        )
        .await?;
    let sites: HashMap<Uuid, (String, String)> = sites
        .into_iter()
        .map(|(id, name, url)| (id, (name, url)))
        .collect();
    let mut access: HashMap<Uuid, BTreeSet<(String, String, String)>> = HashMap::new();
    for (a, g) in &batch.add {
        if let Some((g, (site, url))) = grants
            .get(g)
            .and_then(|g| sites.get(&g.site_id).map(|s| (g, s)))
        {
            access.entry(*a).or_default().insert((
                site.clone(),
                url.clone(),
                g.product_key.clone(),
            ));
        }
    }
    let mut queued = 0;
    for (account, email, name) in accounts {
        let recipient = match Recipient::parse(email) {
            Ok(r) => r,
            Err(why) => {
                tracing::warn!(account = %account, why, "no welcome email: the account's address cannot take one");
                continue;
            }
        };
        let products: Vec<ProductAccess> = access
            .get(account)
            .into_iter()
            .flatten()
            .map(|(site, url, product)| ProductAccess {
                site: site.clone(),
                site_url: Some(url.clone()),
                product: product.clone(),
            })
            .collect();
        let message = welcome_email(&Welcome {
            org_id,
            org_name: &org_name,
            directory_id: Some(directory_id),
            account_id: *account,
            recipient,
            display_name: name.as_deref(),
            access: &products,
        });
        if super::outbox::enqueue_email(c, &message).await? {
            queued += 1;
        }
    }
    Ok(queued)
}

/// Takes the directory's row in share mode before anything else, on
/// PostgreSQL. Deleting a directory locks its row first and then cascades
/// through its users, groups, grants, access and runs; a sync write that
/// reached the row only later (a foreign key to it) would wait for the
/// deletion while holding rows the cascade needs: a deadlock, one of them
/// refused. Taken first, the two wait for each other whole. SQLite's
/// single writer runs them one after the other anyway.
async fn hold_directory<C: Conn>(c: &mut C, directory_id: Uuid) -> Result<()> {
    if C::DIALECT == super::Dialect::Postgres {
        let _: Option<(i32,)> = c
            .fetch_optional(
                "SELECT 1 FROM directories WHERE id = $1 FOR KEY SHARE",
                &[directory_id.into()],
            )
            .await?;
    }
    Ok(())
}

/// Why the continuous path's write was refused: a run is running.
pub const RUN_RUNNING: &str = "a sync run of the directory is running";

/// Writes one batch in the caller's transaction: access rows, newly synced
/// accounts, audit events, and (for a run) the run's cursor and counts,
/// refused when the lease is no longer the caller's.
#[allow(clippy::too_many_arguments)]
async fn write_batch<C: Conn>(
    c: &mut C,
    org_id: Uuid,
    directory_id: Uuid,
    grants: &HashMap<Uuid, Grant>,
    batch: &BatchWrite,
    run: Option<&RunLease>,
    trigger: &str,
    audit: &AuditContext,
) -> Result<BatchCounts> {
    let now = now_micros();
    let mut counts = BatchCounts::default();
    hold_directory(c, directory_id).await?;
    if run.is_none() {
        // The continuous path writes nothing while a run runs: the run may
        // have read the directory before the change and would write over
        // it; the change is applied again once the run ends.
        let running: Option<(Uuid,)> = c
            .fetch_optional(
                "SELECT id FROM sync_runs WHERE directory_id = $1 AND state = 'running'",
                &[directory_id.into()],
            )
            .await?;
        if running.is_some() {
            return Err(StoreError::Refused(RUN_RUNNING.to_owned()));
        }
    }
    if let Some(lease) = run {
        let held = c
            .execute(
                "UPDATE sync_runs SET lease_expires_at = $1 \
                 WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
                &[
                    lease.expires_at.into(),
                    lease.run_id.into(),
                    lease.owner.as_str().into(),
                ],
            )
            .await?;
        if held == 0 {
            return Err(StoreError::Refused(
                "the run's lease was taken over by another process".to_owned(),
            ));
        }
    }
    // Seven values a row.
    for chunk in batch.add.chunks(CHUNK / 2) {
        let mut q = SqlBuilder::new(
            C::DIALECT,
            "INSERT INTO effective_access (site_id, product_key, account_id, grant_id, org_id, \
             role, granted_at, computed_at) ",
        );
        q.push_values(
            chunk
                .iter()
                .filter_map(|(a, g)| grants.get(g).map(|g| (*a, g))),
            |(a, g)| {
                vec![
                    g.site_id.into(),
                    g.product_key.as_str().into(),
                    a.into(),
                    g.id.into(),
                    org_id.into(),
                    g.role.as_str().into(),
                    now.into(),
                    now.into(),
                ]
            },
        );
        q.push(" ON CONFLICT (site_id, product_key, account_id, grant_id) DO NOTHING");
        counts.access_granted += c.execute(q.sql(), q.args()).await? as i64;
    }
    for chunk in batch.remove.chunks(CHUNK) {
        let mut q = SqlBuilder::new(
            C::DIALECT,
            "DELETE FROM effective_access WHERE (account_id, grant_id) IN (",
        );
        match C::DIALECT {
            super::Dialect::Sqlite => {
                q.push_values(chunk.iter().copied(), |(a, g)| vec![a.into(), g.into()]);
            }
            super::Dialect::Postgres => {
                for (i, (a, g)) in chunk.iter().enumerate() {
                    q.push(if i == 0 { "(" } else { ", (" });
                    q.push_bind(*a).push(", ").push_bind(*g).push(")");
                }
            }
        }
        q.push(")");
        counts.access_revoked += c.execute(q.sql(), q.args()).await? as i64;
    }
    let mut created: HashSet<Uuid> = HashSet::new();
    let mut new_emails: Vec<(Uuid, String, Option<String>)> = Vec::new();
    if !batch.provision.is_empty() {
        let mut q = SqlBuilder::new(C::DIALECT, "UPDATE accounts SET synced_at = ");
        q.push_bind(now).push(" WHERE org_id = ");
        q.push_bind(org_id).push(" AND synced_at IS NULL AND ");
        push_in_ids(&mut q, C::DIALECT, "id", &batch.provision);
        q.push(" RETURNING id, email, display_name");
        let rows: Vec<(Uuid, Option<String>, Option<String>)> =
            c.fetch_all(q.sql(), q.args()).await?;
        for (id, email, name) in rows {
            created.insert(id);
            if let Some(email) = email {
                new_emails.push((id, email, name));
            }
        }
    }
    counts.accounts_created = created.len() as i64;
    if batch.email_new_users && !new_emails.is_empty() {
        counts.emails_queued =
            queue_welcomes(c, org_id, directory_id, grants, batch, &new_emails).await?;
    }
    let mut added: HashMap<Uuid, Vec<&Grant>> = HashMap::new();
    for (a, g) in &batch.add {
        if let Some(g) = grants.get(g) {
            added.entry(*a).or_default().push(g);
        }
    }
    let mut removed: HashMap<Uuid, Vec<&Grant>> = HashMap::new();
    for (a, g) in &batch.remove {
        if let Some(g) = grants.get(g) {
            removed.entry(*a).or_default().push(g);
        }
    }
    let changed: HashSet<Uuid> = added.keys().chain(removed.keys()).copied().collect();
    for a in &changed {
        if batch.deactivated.contains(a) {
            counts.accounts_deactivated += 1;
        } else if !created.contains(a) {
            counts.accounts_updated += 1;
        }
    }
    let run_id = run.map(|r| r.run_id);
    let mut feed: Vec<NewEvent> = Vec::with_capacity(added.len() + removed.len());
    for (kind, by_account) in [("access.granted", &added), ("access.revoked", &removed)] {
        let mut accounts: Vec<&Uuid> = by_account.keys().collect();
        accounts.sort();
        for a in accounts {
            feed.push(NewEvent {
                kind,
                data: crate::directory::events::access_event_data(
                    *a,
                    run_id,
                    trigger,
                    by_account[a]
                        .iter()
                        .map(|g| (g.id, g.group_id, g.site_id, &*g.product_key, &*g.role)),
                ),
            });
        }
    }
    if !feed.is_empty() {
        insert_directory_events(&mut *c, directory_id, &feed).await?;
    }
    if audit.enabled {
        let ctx = audit.in_directory(org_id, directory_id);
        let mut events: Vec<Event> = Vec::with_capacity(added.len() + removed.len());
        for (action, by_account) in [
            (Action::AccessGranted, &added),
            (Action::AccessRevoked, &removed),
        ] {
            let mut accounts: Vec<&Uuid> = by_account.keys().collect();
            accounts.sort();
            for a in accounts {
                let mut event = ctx
                    .event(action)
                    .target(Target::new(TargetType::Account, Some(*a)));
                event.detail = Some(grant_detail(
                    Some(directory_id),
                    run_id,
                    trigger,
                    &by_account[a],
                ));
                events.push(event);
            }
        }
        insert_events(&mut *c, &events).await?;
    }
    if let Some(lease) = run {
        c.execute(
            "UPDATE sync_runs SET cursor = $1, accounts_done = accounts_done + $2, \
             accounts_created = accounts_created + $3, accounts_updated = accounts_updated + $4, \
             accounts_deactivated = accounts_deactivated + $5, \
             access_granted = access_granted + $6, access_revoked = access_revoked + $7, \
             emails_queued = emails_queued + $8 WHERE id = $9",
            &[
                batch.last_account.into(),
                batch.accounts.into(),
                counts.accounts_created.into(),
                counts.accounts_updated.into(),
                counts.accounts_deactivated.into(),
                counts.access_granted.into(),
                counts.access_revoked.into(),
                counts.emails_queued.into(),
                lease.run_id.into(),
            ],
        )
        .await?;
    }
    Ok(counts)
}

impl Store {
    /// A directory's contents for a run, read on one connection.
    pub async fn sync_contents(&self, directory_id: Uuid) -> Result<DirectoryContents> {
        read!(self, |_d, c| {
            let org_id = org_of(&mut *c, directory_id).await?;
            let lines: Vec<UserLine> = c.fetch_all(USER_LINES, &[directory_id.into()]).await?;
            let mut unsynced = HashMap::new();
            let mut users = user_facts(lines, &mut unsynced);
            let memberships: Vec<(Uuid, Uuid)> = c
                .fetch_all(
                    "SELECT gm.group_id, gm.member_id FROM group_members gm \
                     JOIN groups g ON g.id = gm.group_id \
                     WHERE g.directory_id = $1 AND gm.member_type = 'User'",
                    &[directory_id.into()],
                )
                .await?;
            attach_groups(&mut users, memberships);
            let groups: Vec<(Uuid, String)> = c
                .fetch_all(
                    "SELECT id, display_name FROM groups WHERE directory_id = $1 ORDER BY id",
                    &[directory_id.into()],
                )
                .await?;
            let nested = nested_of(&mut *c, directory_id).await?;
            let grants = grants_of(&mut *c, directory_id).await?;
            let held = held_of(&mut *c, directory_id).await?;
            let verified_domains = verified_domains(&mut *c, org_id).await?;
            Ok(DirectoryContents {
                org_id,
                users,
                groups,
                nested,
                grants,
                held,
                unsynced,
                verified_domains,
            })
        })
    }

    /// The part of a directory that the users of `users` and the accounts
    /// named touch, for the continuous path: every user of the directory
    /// linked to one of those accounts, with what the last run decided.
    pub async fn sync_contents_for(
        &self,
        directory_id: Uuid,
        users: &[Uuid],
        accounts: &[Uuid],
    ) -> Result<AccountsContents> {
        read!(self, |d, c| {
            let org_id = org_of(&mut *c, directory_id).await?;
            let mut account_ids: BTreeSet<Uuid> = accounts.iter().copied().collect();
            if !users.is_empty() {
                let mut q = SqlBuilder::new(
                    d,
                    "SELECT account_id FROM users WHERE account_id IS NOT NULL AND directory_id = ",
                );
                q.push_bind(directory_id).push(" AND ");
                push_in_ids(&mut q, d, "id", users);
                let rows: Vec<(Uuid,)> = c.fetch_all(q.sql(), q.args()).await?;
                account_ids.extend(rows.into_iter().map(|(a,)| a));
            }
            let account_ids: Vec<Uuid> = account_ids.into_iter().collect();
            let mut lines: Vec<UserLine> = Vec::new();
            if !account_ids.is_empty() {
                let mut q = SqlBuilder::new(d, USER_LINES.replace("$1", ""));
                q.push_bind(directory_id).push(" AND ");
                push_in_ids(&mut q, d, "u.account_id", &account_ids);
                lines = c.fetch_all::<UserLine>(q.sql(), q.args()).await?;
            }
            let mut unsynced = HashMap::new();
            let mut users = user_facts(lines, &mut unsynced);
            let user_ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
            let mut memberships: Vec<(Uuid, Uuid)> = Vec::new();
            if !user_ids.is_empty() {
                let mut q =
                    SqlBuilder::new(d, "SELECT group_id, member_id FROM group_members WHERE ");
                push_in_ids(&mut q, d, "member_id", &user_ids);
                memberships = c.fetch_all(q.sql(), q.args()).await?;
            }
            attach_groups(&mut users, memberships);
            let nested = nested_of(&mut *c, directory_id).await?;
            let grants = grants_of(&mut *c, directory_id).await?;
            let held = held_by(&mut *c, &account_ids, &grants).await?;
            let stored = stored_analysis(&mut *c, directory_id).await?;
            Ok(AccountsContents {
                org_id,
                users,
                nested,
                grants,
                held,
                unsynced,
                stored,
            })
        })
    }

    /// Starts a run: refused while another run of the directory runs
    /// (the partial unique index decides between processes). With
    /// `started`, its `sync.started` event is written in the same
    /// transaction, so a run is never recorded without it.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_sync_run(
        &self,
        org_id: Uuid,
        directory_id: Uuid,
        trigger: &str,
        settings: &str,
        lease: &RunLease,
        actor: &str,
        started: Option<&AuditContext>,
    ) -> std::result::Result<RunRow, StartRunError> {
        let now = now_micros();
        let sql = format!(
            "INSERT INTO sync_runs (id, directory_id, org_id, trigger, state, started_at, \
             settings, actor, lease_owner, lease_expires_at) \
             VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8, $9) RETURNING {RUN_COLUMNS}"
        );
        let inserted: Result<std::result::Result<RunRow, Uuid>> = async {
            Ok(transaction!(self, |_d, tx| {
                hold_directory(&mut *tx, directory_id).await?;
                let running: Option<(Uuid,)> = Conn::fetch_optional(
                    &mut *tx,
                    "SELECT id FROM sync_runs WHERE directory_id = $1 AND state = 'running'",
                    &[directory_id.into()],
                )
                .await?;
                match running {
                    Some((id,)) => Err(id),
                    None => {
                        let row = Conn::fetch_one::<RunRow>(
                            &mut *tx,
                            &sql,
                            &[
                                lease.run_id.into(),
                                directory_id.into(),
                                org_id.into(),
                                trigger.into(),
                                now.into(),
                                settings.into(),
                                actor.into(),
                                lease.owner.as_str().into(),
                                lease.expires_at.into(),
                            ],
                        )
                        .await?;
                        if let Some(audit) = started.filter(|a| a.enabled) {
                            let event = run_event(audit, &row, Action::SyncStarted);
                            insert_event(&mut *tx, &event).await?;
                        }
                        Ok(row)
                    }
                }
            }))
        }
        .await;
        match inserted {
            Ok(Ok(row)) => Ok(row),
            Ok(Err(running)) => Err(StartRunError::Running(running)),
            // Another process's run was inserted between the check and the
            // insert: the unique index refused ours.
            Err(StoreError::Database(sqlx::Error::Database(db)))
                if db.kind() == sqlx::error::ErrorKind::UniqueViolation =>
            {
                match self.running_sync_run(directory_id).await? {
                    Some(run) => Err(StartRunError::Running(run.id)),
                    None => Err(StartRunError::Store(StoreError::Refused(
                        "another run was starting; try again".to_owned(),
                    ))),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    pub async fn running_sync_run(&self, directory_id: Uuid) -> Result<Option<RunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE directory_id = $1 AND state = 'running'"
        );
        read!(self, |_d, c| Ok(c
            .fetch_optional(&sql, &[directory_id.into()])
            .await?))
    }

    pub async fn get_sync_run(&self, directory_id: Uuid, run_id: Uuid) -> Result<RunRow> {
        let sql =
            format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE directory_id = $1 AND id = $2");
        read!(self, |_d, c| c
            .fetch_optional(&sql, &[directory_id.into(), run_id.into()])
            .await?
            .ok_or(StoreError::NotFound))
    }

    /// The directory's runs, newest first, before `before` (started_at, id).
    pub async fn list_sync_runs(
        &self,
        directory_id: Uuid,
        before: Option<(i64, Uuid)>,
        limit: i64,
    ) -> Result<Vec<RunRow>> {
        read!(self, |d, c| {
            let mut q = SqlBuilder::new(
                d,
                format!("SELECT {RUN_COLUMNS} FROM sync_runs WHERE directory_id = "),
            );
            q.push_bind(directory_id);
            if let Some((at, id)) = before {
                q.push(" AND (started_at < ");
                q.push_bind(at).push(" OR (started_at = ");
                q.push_bind(at).push(" AND id < ");
                q.push_bind(id).push("))");
            }
            q.push(" ORDER BY started_at DESC, id DESC LIMIT ");
            q.push_bind(limit);
            Ok(c.fetch_all(q.sql(), q.args()).await?)
        })
    }

    /// The last finished run of the directory.
    pub async fn last_finished_sync_run(&self, directory_id: Uuid) -> Result<Option<RunRow>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs WHERE directory_id = $1 AND state <> 'running' \
             ORDER BY started_at DESC, id DESC LIMIT 1"
        );
        read!(self, |_d, c| Ok(c
            .fetch_optional(&sql, &[directory_id.into()])
            .await?))
    }

    /// Takes over runs whose process stopped renewing their lease.
    pub async fn claim_abandoned_sync_runs(
        &self,
        owner: &str,
        expires_at: i64,
    ) -> Result<Vec<RunRow>> {
        let now = now_micros();
        let candidates: Vec<(Uuid,)> = read!(self, |_d, c| c
            .fetch_all(
                "SELECT id FROM sync_runs WHERE state = 'running' AND lease_expires_at < $1",
                &[now.into()],
            )
            .await?);
        let mut claimed = Vec::new();
        for (id,) in candidates {
            let sql = format!(
                "UPDATE sync_runs SET lease_owner = $1, lease_expires_at = $2 \
                 WHERE id = $3 AND state = 'running' AND lease_expires_at < $4 \
                 RETURNING {RUN_COLUMNS}"
            );
            let row: Option<RunRow> = transaction!(self, |_d, tx| Conn::fetch_optional(
                &mut *tx,
                &sql,
                &[owner.into(), expires_at.into(), id.into(), now.into()],
            )
            .await?);
            claimed.extend(row);
        }
        Ok(claimed)
    }

    /// Extends the run's lease; false when it is no longer the owner's.
    pub async fn renew_sync_lease(&self, lease: &RunLease) -> Result<bool> {
        let n = transaction!(self, |_d, tx| Conn::execute(
            &mut *tx,
            "UPDATE sync_runs SET lease_expires_at = $1 \
             WHERE id = $2 AND lease_owner = $3 AND state = 'running'",
            &[
                lease.expires_at.into(),
                lease.run_id.into(),
                lease.owner.as_str().into(),
            ],
        )
        .await?);
        Ok(n == 1)
    }

    /// Records the run's plan and what it decides about the directory's
    /// groups and settings, for the status and the continuous path.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_sync_plan(
        &self,
        lease: &RunLease,
        directory_id: Uuid,
        plan: &str,
        accounts_total: i64,
        users_skipped_by_domain: i64,
        groups: &[GroupStateRow],
        stored: &StoredAnalysis,
        synced: (i64, i64, i64),
    ) -> Result<()> {
        let now = now_micros();
        let domains = stored
            .domains
            .as_ref()
            .map(|d| serde_json::to_string(d).unwrap_or_default());
        let groups = groups.to_vec();
        transaction!(self, |d, tx| {
            hold_directory(&mut *tx, directory_id).await?;
            let held = Conn::execute(
                &mut *tx,
                "UPDATE sync_runs SET plan = $1, accounts_total = $2, \
                 users_skipped_by_domain = $3, lease_expires_at = $4 \
                 WHERE id = $5 AND lease_owner = $6 AND state = 'running'",
                &[
                    plan.into(),
                    accounts_total.into(),
                    users_skipped_by_domain.into(),
                    lease.expires_at.into(),
                    lease.run_id.into(),
                    lease.owner.as_str().into(),
                ],
            )
            .await?;
            if held == 0 {
                return Err(StoreError::Refused(
                    "the run's lease was taken over by another process".to_owned(),
                ));
            }
            Conn::execute(
                &mut *tx,
                "DELETE FROM sync_group_state WHERE directory_id = $1",
                &[directory_id.into()],
            )
            .await?;
            for chunk in groups.chunks(CHUNK / 5) {
                let mut q = SqlBuilder::new(
                    d,
                    "INSERT INTO sync_group_state (directory_id, group_id, name, state, size) ",
                );
                q.push_values(chunk.iter(), |g| {
                    vec![
                        directory_id.into(),
                        g.group_id.into(),
                        g.name.as_str().into(),
                        g.state.as_str().into(),
                        g.size.into(),
                    ]
                });
                // A group created during the run may have been recorded
                // (`record_sync_group`) after the DELETE above read the
                // table; the run's own view of the group wins.
                q.push(
                    " ON CONFLICT (directory_id, group_id) DO UPDATE SET \
                     name = excluded.name, state = excluded.state, size = excluded.size",
                );
                Conn::execute(&mut *tx, q.sql(), q.args()).await?;
            }
            Conn::execute(
                &mut *tx,
                "DELETE FROM sync_state WHERE directory_id = $1",
                &[directory_id.into()],
            )
            .await?;
            Conn::execute(
                &mut *tx,
                "INSERT INTO sync_state (directory_id, run_id, scope_all, domains, \
                 email_new_users, synced_users, synced_groups, synced_domains, updated_at, \
                 group_user_limit) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    directory_id.into(),
                    lease.run_id.into(),
                    stored.analysis.all.into(),
                    domains.into(),
                    stored.email_new_users.into(),
                    synced.0.into(),
                    synced.1.into(),
                    synced.2.into(),
                    now.into(),
                    i64::from(stored.group_user_limit).into(),
                ],
            )
            .await?;
        });
        Ok(())
    }

    /// What the last run decided about the directory's groups.
    pub async fn sync_group_states(&self, directory_id: Uuid) -> Result<Vec<GroupStateRow>> {
        read!(self, |_d, c| Ok(c
            .fetch_all(
                "SELECT group_id, name, state, size FROM sync_group_state \
                 WHERE directory_id = $1 ORDER BY name, group_id",
                &[directory_id.into()],
            )
            .await?))
    }

    /// What the last run synced: users, groups, domains; none before the
    /// first run.
    pub async fn sync_synced_counts(&self, directory_id: Uuid) -> Result<Option<(i64, i64, i64)>> {
        read!(self, |_d, c| Ok(c
            .fetch_optional(
                "SELECT synced_users, synced_groups, synced_domains FROM sync_state \
                 WHERE directory_id = $1",
                &[directory_id.into()],
            )
            .await?))
    }

    /// Writes one batch of a run (with its lease) or of the continuous path
    /// (without), in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn write_sync_batch(
        &self,
        org_id: Uuid,
        directory_id: Uuid,
        grants: &HashMap<Uuid, Grant>,
        batch: &BatchWrite,
        run: Option<&RunLease>,
        trigger: &str,
        audit: &AuditContext,
    ) -> Result<BatchCounts> {
        let counts = transaction!(self, |_d, tx| write_batch(
            &mut *tx,
            org_id,
            directory_id,
            grants,
            batch,
            run,
            trigger,
            audit
        )
        .await?);
        if counts.emails_queued > 0 {
            self.wake_outbox();
        }
        Ok(counts)
    }

    /// Ends a run: the org groups' access reconciled for the whole org (it
    /// is cheap and set-based), the counts of that added, the failures and
    /// the end recorded, and `sync.finished` written.
    pub async fn finish_sync_run(
        &self,
        lease: &RunLease,
        org_id: Uuid,
        failures: &str,
        failed: bool,
        audit: &AuditContext,
    ) -> Result<RunRow> {
        let now = now_micros();
        let state = if failed { "failed" } else { "succeeded" };
        Ok(transaction!(self, |d, tx| {
            if d == super::Dialect::Postgres {
                // As `hold_directory`, for the run's directory.
                let _: Option<(i32,)> = Conn::fetch_optional(
                    &mut *tx,
                    "SELECT 1 FROM directories WHERE id = \
                     (SELECT directory_id FROM sync_runs WHERE id = $1) FOR KEY SHARE",
                    &[lease.run_id.into()],
                )
                .await?;
            }
            let (granted, revoked) = if failed {
                (0, 0)
            } else {
                reconcile_org_group_access(&mut *tx, org_id, now).await?
            };
            let sql = format!(
                "UPDATE sync_runs SET state = $1, finished_at = $2, failures = $3, \
                 access_granted = access_granted + $4, access_revoked = access_revoked + $5, \
                 lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $6 AND lease_owner = $7 AND state = 'running' RETURNING {RUN_COLUMNS}"
            );
            let row: Option<RunRow> = Conn::fetch_optional(
                &mut *tx,
                &sql,
                &[
                    state.into(),
                    now.into(),
                    failures.into(),
                    granted.into(),
                    revoked.into(),
                    lease.run_id.into(),
                    lease.owner.as_str().into(),
                ],
            )
            .await?;
            let row = row.ok_or_else(|| {
                StoreError::Refused("the run's lease was taken over by another process".to_owned())
            })?;
            if audit.enabled {
                let event = run_event(audit, &row, Action::SyncFinished);
                insert_event(&mut *tx, &event).await?;
            }
            row
        }))
    }

    /// Claims the scheduled directories whose time has come: each is
    /// moved to its next time by a conditional update, so across processes
    /// one claims it. Directories that became scheduled get their first
    /// time, an interval after their settings were saved.
    pub async fn claim_due_scheduled_syncs(&self) -> Result<Vec<Uuid>> {
        let now = now_micros();
        transaction!(self, |_d, tx| {
            Conn::execute(
                &mut *tx,
                "INSERT INTO sync_schedule (directory_id, next_run_at) \
                 SELECT s.directory_id, s.updated_at + s.interval_minutes * 60000000 \
                 FROM sync_settings s WHERE s.mode = 'scheduled' AND s.enabled \
                 AND NOT EXISTS (SELECT 1 FROM sync_schedule x WHERE x.directory_id = s.directory_id)",
                &[],
            )
            .await?;
            Conn::execute(
                &mut *tx,
                "DELETE FROM sync_schedule WHERE directory_id NOT IN \
                 (SELECT directory_id FROM sync_settings WHERE mode = 'scheduled' AND enabled)",
                &[],
            )
            .await?;
        });
        let due: Vec<(Uuid, i64, i64)> = read!(self, |_d, c| c
            .fetch_all(
                "SELECT x.directory_id, x.next_run_at, s.interval_minutes FROM sync_schedule x \
                 JOIN sync_settings s ON s.directory_id = x.directory_id \
                 WHERE x.next_run_at <= $1",
                &[now.into()],
            )
            .await?);
        let mut claimed = Vec::new();
        for (directory_id, at, minutes) in due {
            let next = now + minutes * 60_000_000;
            let n = transaction!(self, |_d, tx| Conn::execute(
                &mut *tx,
                "UPDATE sync_schedule SET next_run_at = $1 \
                 WHERE directory_id = $2 AND next_run_at = $3",
                &[next.into(), directory_id.into(), at.into()],
            )
            .await?);
            if n == 1 {
                claimed.push(directory_id);
            }
        }
        Ok(claimed)
    }

    /// Whether any of `ids` is a group of the directory.
    pub async fn any_groups(&self, directory_id: Uuid, ids: &[Uuid]) -> Result<bool> {
        if ids.is_empty() {
            return Ok(false);
        }
        // PostgreSQL: the ids drive, each looked up by key; `= ANY` would
        // be a filter on the directory's groups, each compared with every
        // id (1,000 groups and 10,000 ids: 50-120 ms).
        let sql = match self.dialect() {
            super::Dialect::Sqlite => {
                "SELECT id FROM groups WHERE directory_id = $1 \
                 AND id IN (SELECT unhex(value) FROM json_each($2)) LIMIT 1"
            }
            super::Dialect::Postgres => {
                "SELECT g.id FROM jsonb_array_elements_text($2::jsonb) AS k \
                 JOIN groups g ON g.id = k::uuid WHERE g.directory_id = $1 LIMIT 1"
            }
        };
        let keys = json_ids(ids);
        read!(self, |_d, c| {
            let row: Option<(Uuid,)> = c
                .fetch_optional(sql, &[directory_id.into(), keys.as_str().into()])
                .await?;
            Ok(row.is_some())
        })
    }

    /// What the last run stored for the continuous path.
    pub async fn stored_sync_analysis(&self, directory_id: Uuid) -> Result<Option<StoredAnalysis>> {
        read!(self, |_d, c| Ok(
            stored_analysis(&mut *c, directory_id).await?
        ))
    }

    /// The directory's `(group, member group)` pairs.
    pub async fn sync_nesting(&self, directory_id: Uuid) -> Result<Vec<(Uuid, Uuid)>> {
        read!(self, |_d, c| Ok(nested_of(&mut *c, directory_id).await?))
    }

    /// Distinct users in a group and the groups nested in it (a cycle is
    /// walked once).
    pub async fn flattened_group_size(&self, group_id: Uuid) -> Result<i64> {
        read!(self, |d, c| {
            let sql = format!(
                "{} SELECT COUNT(DISTINCT gm.member_id) FROM group_members gm \
                 WHERE gm.group_id IN (SELECT id FROM below) AND gm.member_type = 'User'",
                below_cte(d)
            );
            let (n,): (i64,) = c.fetch_one(&sql, &[group_id.into()]).await?;
            Ok(n)
        })
    }

    /// The users in a group and the groups nested in it.
    pub async fn users_below(&self, group_id: Uuid) -> Result<Vec<Uuid>> {
        read!(self, |d, c| {
            let sql = format!(
                "{} SELECT DISTINCT gm.member_id FROM group_members gm \
                 WHERE gm.group_id IN (SELECT id FROM below) AND gm.member_type = 'User'",
                below_cte(d)
            );
            let rows: Vec<(Uuid,)> = c.fetch_all(&sql, &[group_id.into()]).await?;
            Ok(rows.into_iter().map(|(u,)| u).collect())
        })
    }

    /// Records a group created after the last run of an `all` scope as
    /// applied, as the next run would.
    pub async fn record_sync_group(
        &self,
        directory_id: Uuid,
        group_id: Uuid,
        size: i64,
    ) -> Result<()> {
        transaction!(self, |_d, tx| {
            hold_directory(&mut *tx, directory_id).await?;
            Conn::execute(
                &mut *tx,
                "INSERT INTO sync_group_state (directory_id, group_id, name, state, size) \
                 SELECT directory_id, id, display_name, 'applied', $1 FROM groups \
                 WHERE directory_id = $2 AND id = $3 \
                 ON CONFLICT (directory_id, group_id) DO NOTHING",
                &[size.into(), directory_id.into(), group_id.into()],
            )
            .await?;
        });
        Ok(())
    }

    /// When a scheduled directory syncs next.
    pub async fn next_scheduled_sync(&self, directory_id: Uuid) -> Result<Option<i64>> {
        let row: Option<(i64,)> = read!(self, |_d, c| c
            .fetch_optional(
                "SELECT next_run_at FROM sync_schedule WHERE directory_id = $1",
                &[directory_id.into()],
            )
            .await?);
        Ok(row.map(|(t,)| t))
    }
}

fn run_event(audit: &AuditContext, run: &RunRow, action: Action) -> Event {
    let mut event = audit
        .in_directory(run.org_id, run.directory_id)
        .event(action)
        .target(Target::new(TargetType::Directory, Some(run.directory_id)));
    event.detail = Some(
        serde_json::json!({
            "runId": run.id, "trigger": run.trigger, "state": run.state,
            "accountsCreated": run.accounts_created, "accountsUpdated": run.accounts_updated,
            "accountsDeactivated": run.accounts_deactivated,
            "accessGranted": run.access_granted, "accessRevoked": run.access_revoked,
        })
        .to_string(),
    );
    event
}

/// `below(id)`: the group bound to `$1` and every group nested in it, a
/// cycle walked once (`UNION`). Read the members of those groups with
/// `gm.group_id IN (SELECT id FROM below)`, not a join: SQLite plans a join
/// with the CTE as a scan of every membership of every directory probing
/// `below` (0.7–1.4 s at 500,000 memberships), the `IN` as a search of
/// `group_members`' key for each group below.
fn below_cte(d: super::Dialect) -> String {
    let start = match d {
        super::Dialect::Sqlite => "$1",
        super::Dialect::Postgres => "CAST($1 AS UUID)",
    };
    format!(
        "WITH RECURSIVE below(id) AS (SELECT {start} UNION \
         SELECT gm.member_id FROM group_members gm JOIN below b ON gm.group_id = b.id \
         WHERE gm.member_type = 'Group')"
    )
}

/// What the last run stored, or none before the first.
async fn stored_analysis<C: Conn>(c: &mut C, directory_id: Uuid) -> Result<Option<StoredAnalysis>> {
    let state: Option<(bool, Option<String>, bool, i64)> = c
        .fetch_optional(
            "SELECT scope_all, domains, email_new_users, group_user_limit FROM sync_state \
             WHERE directory_id = $1",
            &[directory_id.into()],
        )
        .await?;
    let Some((all, domains, email_new_users, limit)) = state else {
        return Ok(None);
    };
    let groups: Vec<(Uuid, String)> = c
        .fetch_all(
            "SELECT group_id, state FROM sync_group_state WHERE directory_id = $1",
            &[directory_id.into()],
        )
        .await?;
    let mut analysis = Analysis {
        all,
        ..Analysis::default()
    };
    for (g, state) in groups {
        analysis.in_scope.insert(g);
        if state == "too_large" {
            analysis.too_large.insert(g);
        }
    }
    let domains = match domains {
        Some(json) => Some(serde_json::from_str(&json).map_err(|_| {
            StoreError::Database(sqlx::Error::Protocol(
                "stored sync state holds an invalid domain list".to_owned(),
            ))
        })?),
        None => None,
    };
    Ok(Some(StoredAnalysis {
        analysis,
        domains,
        email_new_users,
        group_user_limit: u32::try_from(limit).unwrap_or(u32::MAX),
    }))
}

/// The access the org groups give to these accounts, added where missing
/// (an account joining an org group, by the admin or as a default group of
/// a new account, has it at once). Returns the rows added.
pub(crate) async fn grant_org_group_access<C: Conn>(
    c: &mut C,
    org_id: Uuid,
    account_ids: &[Uuid],
) -> Result<u64> {
    let now = now_micros();
    let mut added = 0;
    for chunk in account_ids.chunks(CHUNK) {
        let mut q = SqlBuilder::new(
            C::DIALECT,
            "INSERT INTO effective_access (site_id, product_key, account_id, grant_id, org_id, \
             role, granted_at, computed_at) SELECT g.site_id, g.product_key, m.account_id, g.id, \
             a.org_id, g.role, ",
        );
        q.push_bind(now).push(", ").push_bind(now).push(
            " FROM product_grants g JOIN org_group_members m ON m.group_id = g.org_group_id \
             JOIN accounts a ON a.id = m.account_id WHERE a.active AND a.org_id = ",
        );
        q.push_bind(org_id).push(" AND m.account_id IN (");
        q.push_list(chunk.iter().copied())
            .push(") ON CONFLICT (site_id, product_key, account_id, grant_id) DO NOTHING");
        added += c.execute(q.sql(), q.args()).await?;
    }
    Ok(added)
}

/// Removes every access row of an account (deactivated by an admin), with
/// one `access.revoked` event naming what it held.
pub(crate) async fn revoke_all_access<C: Conn>(
    c: &mut C,
    org_id: Uuid,
    account_id: Uuid,
    audit: &AuditContext,
) -> Result<()> {
    let rows: Vec<GrantLine> = c
        .fetch_all(
            "SELECT g.id, COALESCE(g.scim_group_id, g.org_group_id), g.site_id, \
             g.product_key, g.role \
             FROM effective_access e JOIN product_grants g ON g.id = e.grant_id \
             WHERE e.account_id = $1 ORDER BY g.id",
            &[account_id.into()],
        )
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    c.execute(
        "DELETE FROM effective_access WHERE account_id = $1",
        &[account_id.into()],
    )
    .await?;
    let grants: Vec<Grant> = rows.into_iter().map(grant_of).collect();
    let revoked = NewEvent {
        kind: "access.revoked",
        data: crate::directory::events::access_event_data(
            account_id,
            None,
            "admin",
            grants
                .iter()
                .map(|g| (g.id, g.group_id, g.site_id, &*g.product_key, &*g.role)),
        ),
    };
    insert_org_events(&mut *c, org_id, &[revoked]).await?;
    if audit.enabled {
        let refs: Vec<&Grant> = grants.iter().collect();
        let mut event = audit
            .in_org(org_id)
            .event(Action::AccessRevoked)
            .target(Target::new(TargetType::Account, Some(account_id)));
        event.detail = Some(grant_detail(None, None, "admin", &refs));
        insert_events(&mut *c, &[event]).await?;
    }
    Ok(())
}

/// The access org groups give: every active member of an org group holds
/// its grants; nothing else does. Returns the rows added and removed.
async fn reconcile_org_group_access<C: Conn>(
    c: &mut C,
    org_id: Uuid,
    now: i64,
) -> Result<(i64, i64)> {
    let added = c
        .execute(
            "INSERT INTO effective_access (site_id, product_key, account_id, grant_id, org_id, \
             role, granted_at, computed_at) \
             SELECT g.site_id, g.product_key, m.account_id, g.id, a.org_id, g.role, $1, $1 \
             FROM product_grants g JOIN org_group_members m ON m.group_id = g.org_group_id \
             JOIN accounts a ON a.id = m.account_id WHERE a.org_id = $2 AND a.active \
             ON CONFLICT (site_id, product_key, account_id, grant_id) DO NOTHING",
            &[now.into(), org_id.into()],
        )
        .await? as i64;
    let removed = c
        .execute(
            "DELETE FROM effective_access WHERE org_id = $1 \
             AND grant_id IN (SELECT id FROM product_grants WHERE org_group_id IS NOT NULL) \
             AND NOT EXISTS (SELECT 1 FROM product_grants g \
               JOIN org_group_members m ON m.group_id = g.org_group_id \
               JOIN accounts a ON a.id = m.account_id \
               WHERE g.id = effective_access.grant_id AND m.account_id = effective_access.account_id \
               AND a.active)",
            &[org_id.into()],
        )
        .await? as i64;
    Ok((added, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_event_detail_stays_json_within_the_events_limit() {
        let grants: Vec<Grant> = (0..10)
            .map(|n| Grant {
                id: Uuid::new_v4(),
                group_id: Uuid::new_v4(),
                site_id: Uuid::new_v4(),
                product_key: format!("p{n}{}", "k".repeat(62)),
                role: "admin".to_owned(),
            })
            .collect();
        let refs: Vec<&Grant> = grants.iter().collect();
        let detail = grant_detail(
            Some(Uuid::new_v4()),
            Some(Uuid::new_v4()),
            "scheduled",
            &refs,
        );
        assert!(detail.len() <= 1024, "{} characters", detail.len());
        let parsed: serde_json::Value = serde_json::from_str(&detail).unwrap();
        assert_eq!(parsed["grants"].as_array().unwrap().len(), 3);
        assert_eq!(parsed["moreGrants"], 7);
        let one = grant_detail(None, None, "admin", &refs[..1]);
        let parsed: serde_json::Value = serde_json::from_str(&one).unwrap();
        assert!(parsed.get("moreGrants").is_none());
        assert_eq!(parsed["runId"], serde_json::Value::Null);
    }
}
