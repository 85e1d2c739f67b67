//! The sync engine: turns a directory's users and groups into effective
//! product access on the organisation's sites.
//!
//! A **run** reconciles a whole directory and is the source of truth: it
//! reads the directory, works out which groups are in scope and applied
//! ([`plan`]), and writes each account's access in batches of at most
//! [`MAX_BATCH`] accounts, one transaction each, moving the run's cursor in
//! the same transaction so a run taken over after a crash finishes without
//! counting anything twice. A run holds a lease in the database; one run per
//! directory runs at a time, across processes.
//!
//! In **continuous** mode the SCIM handlers tell the engine what they
//! change ([`Engine::will_change`], [`Change::touch`]), with a durable mark
//! so that a process dying before it applied a change cannot lose it
//! ([`pending`]): a change to users is applied to their
//! accounts at once with what the last run decided about the groups; a
//! change to groups (membership, nesting, deletion), which can move a group
//! over the limit or out of scope, starts a run. In **scheduled** mode
//! nothing happens until a run: every interval, or on demand.

mod pending;
pub mod plan;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::audit::AuditContext;
use crate::config::SyncEngineConfig;
use crate::directory::sync_settings::{DomainSelection, SyncMode, SyncScope, SyncSettings};
use crate::store::{
    BatchWrite, DirectoryContents, GroupStateRow, RunLease, RunRow, StartRunError, Store,
    StoreError, StoredAnalysis,
};
use crate::time::now_micros;
use plan::{Analysis, DomainRule, Grant, GroupGraph, Nesting};

/// The most accounts one transaction of a run writes.
pub const MAX_BATCH: u32 = 10_000;

/// Why a run is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Manual,
    Scheduled,
    Continuous,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Manual => "manual",
            Trigger::Scheduled => "scheduled",
            Trigger::Continuous => "continuous",
        }
    }
}

/// What a SCIM write changed, for the continuous path.
#[derive(Clone, Debug)]
pub enum Touch {
    /// These users' attributes (active, emails, …) or existence.
    Users(Uuid, Vec<Uuid>),
    /// Members added to or removed from one group (users or groups, by
    /// id).
    Members(Uuid, Uuid, Vec<Uuid>),
    /// A group created, with its members.
    GroupCreated(Uuid, Uuid, Vec<Uuid>),
    /// A grant given to one of the directory's groups.
    Granted(Uuid, Uuid),
    /// A user deleted: its account, and the groups it was a member of.
    UserDeleted(Uuid, Option<Uuid>, Vec<Uuid>),
    /// A group deleted (its grants' access went with it), and whether it
    /// was nested, in another group or with groups in it.
    GroupDeleted(Uuid, bool),
    /// The directory's groups: membership, nesting, names, deletions.
    Groups(Uuid),
}

impl Touch {
    fn directory_id(&self) -> Uuid {
        match self {
            Touch::Users(d, _)
            | Touch::Members(d, _, _)
            | Touch::GroupCreated(d, _, _)
            | Touch::Granted(d, _)
            | Touch::UserDeleted(d, _, _)
            | Touch::GroupDeleted(d, _)
            | Touch::Groups(d) => *d,
        }
    }
}

impl Touch {
    /// What a group PATCH's member changes touch: those members, or the
    /// whole group when it was emptied or replaced.
    pub fn of_member_changes(
        directory_id: Uuid,
        group_id: Uuid,
        changes: &[crate::directory::MemberChange],
    ) -> Touch {
        use crate::directory::MemberChange;
        let mut members = Vec::new();
        for c in changes {
            match c {
                MemberChange::Add(ids) | MemberChange::Remove(ids) => {
                    members.extend(ids.iter().copied())
                }
                MemberChange::RemoveAll | MemberChange::Replace(_) => {
                    return Touch::Groups(directory_id)
                }
            }
        }
        Touch::Members(directory_id, group_id, members)
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("run {0} is running")]
    Running(Uuid),
    #[error("sync is disabled for this directory")]
    Disabled,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<StartRunError> for SyncError {
    fn from(e: StartRunError) -> Self {
        match e {
            StartRunError::Running(id) => SyncError::Running(id),
            StartRunError::Store(e) => SyncError::Store(e),
        }
    }
}

/// The settings a run applies, as it recorded them when it started.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub mode: String,
    pub interval_minutes: u32,
    /// None: all groups and users.
    pub scope_group_ids: Option<Vec<Uuid>>,
    /// None: all verified domains.
    pub domains: Option<Vec<String>>,
    pub email_new_users: bool,
    pub group_user_limit: u32,
}

impl Snapshot {
    pub fn of(settings: &SyncSettings, default_limit: u32) -> Snapshot {
        Snapshot {
            mode: settings.mode.as_str().to_owned(),
            interval_minutes: settings.interval.minutes(),
            scope_group_ids: match &settings.scope {
                SyncScope::All => None,
                SyncScope::Groups(ids) => Some(ids.clone()),
            },
            domains: match &settings.domains {
                DomainSelection::All => None,
                DomainSelection::List(names) => {
                    Some(names.iter().map(|n| n.as_str().to_owned()).collect())
                }
            },
            email_new_users: settings.email_new_users,
            group_user_limit: settings.group_user_limit.own().unwrap_or(default_limit),
        }
    }

    fn domain_rule(&self) -> DomainRule {
        domain_rule(self.domains.as_deref())
    }
}

fn domain_rule(domains: Option<&[String]>) -> DomainRule {
    match domains {
        None => DomainRule::All,
        Some(names) => DomainRule::List(names.iter().cloned().collect()),
    }
}

/// A group in scope, as a run decided about it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupInScope {
    pub group_id: Uuid,
    pub group_name: String,
    /// Distinct users after flattening nested groups.
    pub size: i64,
    /// `applied`, or `too_large` (its access left as it was).
    pub state: String,
}

/// Something a run could not do, with the reason and what to do.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// `group_too_large`, or `error` (the run stopped).
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A group synced by the previous run and not in scope now.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DroppedGroup {
    pub group_id: Uuid,
    pub group_name: String,
    /// `deleted` (by the identity provider) or `deselected` (by the scope).
    pub reason: String,
}

/// A group in scope now that the previous run did not sync.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddedGroup {
    pub group_id: Uuid,
    pub group_name: String,
}

/// Changes since the last run.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Changes {
    /// Their grants' access is revoked; granting again is the admin's act
    /// (put the group back in scope).
    pub groups_dropped: Vec<DroppedGroup>,
    pub groups_added: Vec<AddedGroup>,
}

/// What a run applies: worked out when it starts.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub groups_in_scope: Vec<GroupInScope>,
    /// The domains whose managed accounts sync (external accounts always
    /// do).
    pub domains_in_scope: Vec<String>,
    pub users_in_scope: u64,
    pub groups_over_limit: Vec<Failure>,
    pub changes_since_last_run: Changes,
}

/// What a run would change now.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// Always true: nothing was written.
    pub dry_run: bool,
    pub settings: Snapshot,
    #[serde(flatten)]
    pub plan: Plan,
    /// Active accounts in scope never synced before.
    pub accounts_to_create: u64,
    pub access_to_grant: u64,
    pub access_to_revoke: u64,
    pub emails_to_queue: u64,
    pub users_skipped_by_domain: u64,
}

/// A stored run's settings, plan and failures, read back.
pub fn decode_run(run: &RunRow) -> Result<(Snapshot, Option<Plan>, Vec<Failure>), StoreError> {
    let corrupt = |what: &str| {
        StoreError::Database(sqlx::Error::Protocol(format!(
            "a stored sync run holds an invalid {what}"
        )))
    };
    let settings = serde_json::from_str(&run.settings).map_err(|_| corrupt("settings"))?;
    let plan = match &run.plan {
        Some(p) => Some(serde_json::from_str(p).map_err(|_| corrupt("plan"))?),
        None => None,
    };
    let failures = match &run.failures {
        Some(f) => serde_json::from_str(f).map_err(|_| corrupt("failure list"))?,
        None => Vec::new(),
    };
    Ok((settings, plan, failures))
}

/// What a run (or a dry run) works out before writing.
pub struct Computed {
    pub analysis: Analysis,
    pub groups: Vec<GroupStateRow>,
    pub plan: Plan,
    pub desired: plan::Desired,
    /// Accounts the run goes through, in order.
    pub accounts: Vec<Uuid>,
    pub frozen: HashSet<Uuid>,
    pub grants: HashMap<Uuid, Grant>,
    pub account_active: HashMap<Uuid, bool>,
    pub domains: Vec<String>,
}

/// Works out a run from a directory's contents and the previous run's
/// group states.
pub fn compute(
    contents: &DirectoryContents,
    previous: &[GroupStateRow],
    snapshot: &Snapshot,
) -> Computed {
    let user_index: HashMap<Uuid, u32> = contents
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id, i as u32))
        .collect();
    let mut graph = GroupGraph::default();
    for (group, member) in &contents.nested {
        graph.children.entry(*group).or_default().push(*member);
    }
    for u in &contents.users {
        for g in &u.groups {
            graph.users.entry(*g).or_default().push(user_index[&u.id]);
        }
    }
    let all_groups: Vec<Uuid> = contents.groups.iter().map(|(id, _)| *id).collect();
    // Selected groups deleted since the settings were saved are gone.
    let known: HashSet<Uuid> = all_groups.iter().copied().collect();
    let selected: Option<Vec<Uuid>> = snapshot
        .scope_group_ids
        .as_ref()
        .map(|ids| ids.iter().copied().filter(|g| known.contains(g)).collect());
    let (analysis, sizes) = plan::analyse(
        &graph,
        &all_groups,
        selected.as_deref(),
        contents.users.len(),
        u64::from(snapshot.group_user_limit),
    );
    let names: HashMap<Uuid, &str> = contents
        .groups
        .iter()
        .map(|(id, n)| (*id, n.as_str()))
        .collect();
    let mut groups: Vec<GroupStateRow> = analysis
        .in_scope
        .iter()
        .map(|g| GroupStateRow {
            group_id: *g,
            name: names.get(g).copied().unwrap_or_default().to_owned(),
            state: if analysis.too_large.contains(g) {
                "too_large"
            } else {
                "applied"
            }
            .to_owned(),
            size: sizes.get(g).copied().unwrap_or(0) as i64,
        })
        .collect();
    groups.sort_by(|a, b| (&a.name, a.group_id).cmp(&(&b.name, b.group_id)));
    let groups_over_limit = groups
        .iter()
        .filter(|g| g.state == "too_large")
        .map(|g| Failure {
            reason: "group_too_large".to_owned(),
            message: format!(
                "group {} has {} users after flattening nested groups, over the limit of {} \
                 per group per sync; its access was left as it was. Split it into groups of \
                 at most {} users each.",
                g.name, g.size, snapshot.group_user_limit, snapshot.group_user_limit
            ),
            group_id: Some(g.group_id),
            group_name: Some(g.name.clone()),
            size: Some(g.size),
            limit: Some(snapshot.group_user_limit),
        })
        .collect();
    let before: HashSet<Uuid> = previous.iter().map(|g| g.group_id).collect();
    let groups_dropped = previous
        .iter()
        .filter(|g| !analysis.in_scope.contains(&g.group_id))
        .map(|g| DroppedGroup {
            group_id: g.group_id,
            group_name: g.name.clone(),
            reason: if known.contains(&g.group_id) {
                "deselected"
            } else {
                "deleted"
            }
            .to_owned(),
        })
        .collect();
    let groups_added = groups
        .iter()
        .filter(|g| !before.contains(&g.group_id) && !previous.is_empty())
        .map(|g| AddedGroup {
            group_id: g.group_id,
            group_name: g.name.clone(),
        })
        .collect();
    let grants: HashMap<Uuid, Grant> = contents.grants.iter().map(|g| (g.id, g.clone())).collect();
    let grants_by_group = plan::grants_by_group(&contents.grants);
    let frozen = plan::frozen(&contents.grants, &analysis);
    let nesting = Nesting::new(contents.nested.iter().copied());
    let desired = plan::desired(
        &contents.users,
        &nesting,
        &analysis,
        &snapshot.domain_rule(),
        &grants_by_group,
    );
    let accounts: BTreeSet<Uuid> = desired
        .accounts
        .keys()
        .chain(contents.held.keys())
        .copied()
        .collect();
    let account_active = plan::account_active(&contents.users);
    let domains = match &snapshot.domains {
        None => contents.verified_domains.clone(),
        Some(list) => list.clone(),
    };
    let plan = Plan {
        groups_in_scope: groups.iter().map(group_in_scope).collect(),
        domains_in_scope: domains.clone(),
        users_in_scope: desired.users_in_scope,
        groups_over_limit,
        changes_since_last_run: Changes {
            groups_dropped,
            groups_added,
        },
    };
    Computed {
        analysis,
        groups,
        plan,
        desired,
        accounts: accounts.into_iter().collect(),
        frozen,
        grants,
        account_active,
        domains,
    }
}

/// The batch of `accounts`: their rows to add and remove, the accounts to
/// provision.
fn batch_of(
    accounts: &[Uuid],
    desired: &plan::Desired,
    held: &HashMap<Uuid, BTreeSet<Uuid>>,
    frozen: &HashSet<Uuid>,
    account_active: &HashMap<Uuid, bool>,
    email_new_users: bool,
) -> BatchWrite {
    let empty = BTreeSet::new();
    let mut batch = BatchWrite {
        email_new_users,
        accounts: accounts.len() as i64,
        last_account: accounts.last().copied(),
        ..BatchWrite::default()
    };
    for a in accounts {
        let wanted = desired.accounts.get(a).unwrap_or(&empty);
        let (add, remove) = plan::diff(held.get(a).unwrap_or(&empty), wanted, frozen);
        batch.add.extend(add.into_iter().map(|g| (*a, g)));
        batch.remove.extend(remove.into_iter().map(|g| (*a, g)));
        if desired.active_accounts.contains(a) {
            batch.provision.push(*a);
        } else if !account_active.get(a).copied().unwrap_or(true) {
            batch.deactivated.insert(*a);
        }
    }
    batch
}

struct Inner {
    store: Store,
    config: SyncEngineConfig,
    /// This process, as lease owner.
    owner: String,
    audit_enabled: bool,
    touches: mpsc::UnboundedSender<Touch>,
    marks: pending::Marks,
}

/// The engine: cheap to clone; its background tasks stop with the last
/// clone's runtime.
#[derive(Clone)]
pub struct Engine(Arc<Inner>);

impl Engine {
    /// The engine and the receiver its continuous worker reads; call
    /// [`Engine::spawn_background`] to start its tasks.
    pub fn new(
        store: Store,
        config: SyncEngineConfig,
        audit_enabled: bool,
    ) -> (Engine, mpsc::UnboundedReceiver<Touch>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let engine = Engine(Arc::new(Inner {
            store,
            config,
            owner: format!("{}:{}", std::process::id(), Uuid::new_v4().simple()),
            audit_enabled,
            touches: tx,
            marks: pending::Marks::new(),
        }));
        (engine, rx)
    }

    fn lease(&self, run_id: Uuid) -> RunLease {
        RunLease {
            run_id,
            owner: self.0.owner.clone(),
            expires_at: now_micros() + self.0.config.sync_lease_seconds as i64 * 1_000_000,
        }
    }

    fn audit(&self, actor: crate::audit::Actor) -> AuditContext {
        AuditContext::new(actor, None, None, self.0.audit_enabled)
    }

    /// Announces a write to the directory that may change access, before
    /// it is made: once this returns, the change cannot be lost by this
    /// process dying before its worker applies it (see [`pending`]). Tell
    /// the worker what changed with [`Change::touch`] once the write
    /// committed; a write that failed just drops the [`Change`].
    pub async fn will_change(&self, directory_id: Uuid) -> Result<Change, StoreError> {
        let (generation, written) = self.0.marks.open(directory_id);
        let change = Change {
            engine: self.clone(),
            directory_id,
            settled: false,
        };
        let expires_at = self.lease(Uuid::nil()).expires_at;
        written
            .get_or_try_init(|| {
                self.0
                    .store
                    .mark_sync_pending(directory_id, &self.0.owner, generation, expires_at)
            })
            .await?;
        Ok(change)
    }

    /// Renews this process's marks and takes over those of processes that
    /// died: their directories are reconciled by a run.
    async fn recover_pending(&self) -> Result<(), SyncError> {
        let store = &self.0.store;
        let expires = self.lease(Uuid::nil()).expires_at;
        // An idle process writes nothing: it holds no marks to renew.
        if self.0.marks.any() {
            store.renew_sync_pending(&self.0.owner, expires).await?;
        }
        let now = now_micros();
        for (directory_id, dead) in store.abandoned_sync_pending(&self.0.owner, now).await? {
            // Ours first, so a death here loses nothing either.
            let change = self.will_change(directory_id).await?;
            if store.claim_sync_pending(directory_id, &dead, now).await? {
                tracing::info!(directory = %directory_id, "taking over the unapplied changes of a process that stopped");
                change.touch(Touch::Groups(directory_id));
            }
        }
        Ok(())
    }

    /// The settings a run would apply now.
    pub async fn snapshot(
        &self,
        org_id: Uuid,
        directory_id: Uuid,
    ) -> Result<(Snapshot, bool), SyncError> {
        let stored = self.0.store.get_sync_settings(org_id, directory_id).await?;
        Ok((
            Snapshot::of(&stored.settings, self.0.config.sync_group_user_limit),
            stored.settings.enabled,
        ))
    }

    /// Starts a run of the directory now; it goes on in the background.
    pub async fn start_run(
        &self,
        org_id: Uuid,
        directory_id: Uuid,
        trigger: Trigger,
        audit: &AuditContext,
    ) -> Result<RunRow, SyncError> {
        let (snapshot, enabled) = self.snapshot(org_id, directory_id).await?;
        if !enabled {
            return Err(SyncError::Disabled);
        }
        let settings = serde_json::to_string(&snapshot).unwrap_or_default();
        let lease = self.lease(Uuid::new_v4());
        let actor = format!("{}:{}", audit.actor.kind(), audit.actor.id());
        // The continuous path's own runs are not audited as runs: the
        // access they change is.
        let started = audit.in_directory(org_id, directory_id);
        let started = (trigger != Trigger::Continuous).then_some(&started);
        let run = self
            .0
            .store
            .insert_sync_run(
                org_id,
                directory_id,
                trigger.as_str(),
                &settings,
                &lease,
                &actor,
                started,
            )
            .await?;
        let engine = self.clone();
        let audit = audit.clone();
        let started = run.clone();
        tokio::spawn(async move { engine.execute(started, audit).await });
        Ok(run)
    }

    /// What a run would change now, writing nothing.
    pub async fn dry_run(&self, org_id: Uuid, directory_id: Uuid) -> Result<DryRun, SyncError> {
        let (snapshot, _) = self.snapshot(org_id, directory_id).await?;
        let contents = self.0.store.sync_contents(directory_id).await?;
        let previous = self.0.store.sync_group_states(directory_id).await?;
        let c = compute(&contents, &previous, &snapshot);
        let batch = batch_of(
            &c.accounts,
            &c.desired,
            &contents.held,
            &c.frozen,
            &c.account_active,
            snapshot.email_new_users,
        );
        let to_create: Vec<&Uuid> = c
            .desired
            .active_accounts
            .iter()
            .filter(|a| contents.unsynced.contains_key(a))
            .collect();
        let emails = if snapshot.email_new_users {
            to_create
                .iter()
                .filter(|a| matches!(contents.unsynced.get(a), Some(Some(_))))
                .count()
        } else {
            0
        };
        Ok(DryRun {
            dry_run: true,
            settings: snapshot,
            plan: c.plan,
            accounts_to_create: to_create.len() as u64,
            access_to_grant: batch.add.len() as u64,
            access_to_revoke: batch.remove.len() as u64,
            emails_to_queue: emails as u64,
            users_skipped_by_domain: c.desired.users_skipped_by_domain,
        })
    }

    /// Runs `run` to its end (from its cursor, when taken over).
    async fn execute(&self, run: RunRow, audit: AuditContext) {
        let lease = self.lease(run.id);
        let audit = audit.in_directory(run.org_id, run.directory_id);
        let outcome = self.work(&run, &lease, &audit).await;
        let (failures, failed) = match outcome {
            Ok(failures) => (failures, false),
            Err(StoreError::Refused(why)) if why.contains("lease") => {
                tracing::warn!(run = %run.id, "a sync run's lease was taken over; this process stops it");
                return;
            }
            Err(e) => {
                tracing::error!(run = %run.id, error = %crate::telemetry::ErrorChain(&e), "a sync run failed");
                let failure = Failure {
                    reason: "error".to_owned(),
                    message: format!("the run stopped: {e}"),
                    group_id: None,
                    group_name: None,
                    size: None,
                    limit: None,
                };
                (vec![failure], true)
            }
        };
        let failures = serde_json::to_string(&failures).unwrap_or_default();
        let audit = if run.trigger == Trigger::Continuous.as_str() {
            AuditContext {
                enabled: false,
                ..audit
            }
        } else {
            audit
        };
        match self
            .0
            .store
            .finish_sync_run(&lease, run.org_id, &failures, failed, &audit)
            .await
        {
            Ok(_) => {}
            Err(e) => {
                tracing::error!(run = %run.id, error = %crate::telemetry::ErrorChain(&e), "a sync run could not be finished");
            }
        }
    }

    /// The run's work; its failures (groups over the limit) on success.
    async fn work(
        &self,
        run: &RunRow,
        lease: &RunLease,
        audit: &AuditContext,
    ) -> Result<Vec<Failure>, StoreError> {
        let snapshot: Snapshot = serde_json::from_str(&run.settings).map_err(|_| {
            StoreError::Database(sqlx::Error::Protocol(
                "a sync run holds invalid settings".to_owned(),
            ))
        })?;
        let contents = self.0.store.sync_contents(run.directory_id).await?;
        let previous = self.0.store.sync_group_states(run.directory_id).await?;
        // A run taken over has already replaced the group states with its
        // own: its changes since the last run are in its plan.
        let c = compute(&contents, &previous, &snapshot);
        if run.plan.is_none() {
            let plan = serde_json::to_string(&c.plan).unwrap_or_default();
            let stored = StoredAnalysis {
                analysis: c.analysis.clone(),
                domains: snapshot.domains.clone(),
                email_new_users: snapshot.email_new_users,
                group_user_limit: snapshot.group_user_limit,
            };
            self.0
                .store
                .record_sync_plan(
                    lease,
                    run.directory_id,
                    &plan,
                    c.accounts.len() as i64,
                    c.desired.users_skipped_by_domain as i64,
                    &c.groups,
                    &stored,
                    (
                        c.desired.users_in_scope as i64,
                        c.groups.len() as i64,
                        c.domains.len() as i64,
                    ),
                )
                .await?;
        }
        let start = match run.cursor {
            Some(cursor) => c.accounts.partition_point(|a| *a <= cursor),
            None => 0,
        };
        let size = self.0.config.sync_batch_size.clamp(1, MAX_BATCH) as usize;
        let pause = Duration::from_millis(self.0.config.sync_batch_pause_ms);
        for chunk in c.accounts[start..].chunks(size) {
            let batch = batch_of(
                chunk,
                &c.desired,
                &contents.held,
                &c.frozen,
                &c.account_active,
                snapshot.email_new_users,
            );
            let lease = self.lease(run.id);
            self.0
                .store
                .write_sync_batch(
                    run.org_id,
                    run.directory_id,
                    &c.grants,
                    &batch,
                    Some(&lease),
                    &run.trigger,
                    audit,
                )
                .await?;
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        Ok(c.plan.groups_over_limit)
    }

    /// Whether members added to or removed from `groups` can be applied to
    /// those members alone: they are all users (a nested group changes
    /// what is below it), the last run knew the groups, and no group's
    /// size crossed the limit. Otherwise a run decides.
    async fn members_change_is_local(
        &self,
        directory_id: Uuid,
        members: &BTreeSet<Uuid>,
        groups: &BTreeSet<Uuid>,
        created: &BTreeSet<Uuid>,
    ) -> Result<bool, SyncError> {
        let store = &self.0.store;
        let members: Vec<Uuid> = members.iter().copied().collect();
        if store.any_groups(directory_id, &members).await? {
            return Ok(false);
        }
        let Some(stored) = store.stored_sync_analysis(directory_id).await? else {
            return Ok(false);
        };
        if stored.analysis.all
            && groups
                .iter()
                .any(|g| !stored.analysis.in_scope.contains(g) && !created.contains(g))
        {
            // A group the last run did not see: a run takes it in.
            return Ok(false);
        }
        if stored.analysis.all {
            // A new group is in an `all` scope: recorded as a run would,
            // unless it is over the limit from the start.
            for g in created {
                let size = store.flattened_group_size(*g).await?;
                if size > i64::from(stored.group_user_limit) {
                    return Ok(false);
                }
                store.record_sync_group(directory_id, *g, size).await?;
            }
        }
        let edges = store.sync_nesting(directory_id).await?;
        let above: BTreeSet<Uuid> = {
            let nesting = Nesting::new(edges);
            groups
                .iter()
                .flat_map(|g| nesting.above(*g).to_vec())
                .collect()
        };
        for g in above
            .into_iter()
            .filter(|g| stored.analysis.in_scope.contains(g))
        {
            let size = store.flattened_group_size(g).await?;
            let over = size > i64::from(stored.group_user_limit);
            if over != stored.analysis.too_large.contains(&g) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether users deleted from `shrunk` (direct groups) can be applied
    /// to their accounts alone: no group they were in, directly or
    /// through nesting, was over the limit, since a smaller group might
    /// now be under it. Before any run, a run decides.
    async fn deletion_is_local(
        &self,
        directory_id: Uuid,
        shrunk: &BTreeSet<Uuid>,
    ) -> Result<bool, SyncError> {
        let store = &self.0.store;
        let Some(stored) = store.stored_sync_analysis(directory_id).await? else {
            return Ok(false);
        };
        if stored.analysis.too_large.is_empty() {
            return Ok(true);
        }
        let nesting = Nesting::new(store.sync_nesting(directory_id).await?);
        Ok(!shrunk.iter().any(|g| {
            stored.analysis.too_large.contains(g)
                || nesting
                    .above(*g)
                    .iter()
                    .any(|a| stored.analysis.too_large.contains(a))
        }))
    }

    /// Whether new grants can be applied to their groups' users alone
    /// (added to `users`): a grant changes no scope and no size. A group
    /// the last run did not apply gives nothing yet; before any run, a run
    /// decides.
    async fn grant_is_local(
        &self,
        directory_id: Uuid,
        granted: &BTreeSet<Uuid>,
        users: &mut BTreeSet<Uuid>,
    ) -> Result<bool, SyncError> {
        let store = &self.0.store;
        let Some(stored) = store.stored_sync_analysis(directory_id).await? else {
            return Ok(false);
        };
        for g in granted {
            if stored.analysis.applied(*g) {
                users.extend(store.users_below(*g).await?);
            }
        }
        Ok(true)
    }

    /// Starts a run for changes only a run can apply; false when one is
    /// running already (whose snapshot may predate them): to try again.
    async fn start_continuous_run(
        &self,
        org_id: Uuid,
        directory_id: Uuid,
    ) -> Result<bool, SyncError> {
        let audit = self.audit(crate::audit::Actor::System("sync"));
        match self
            .start_run(org_id, directory_id, Trigger::Continuous, &audit)
            .await
        {
            Ok(_) => Ok(true),
            Err(SyncError::Running(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Applies a change to some users' accounts at once, as a run would
    /// with what the last run decided; none stored yet: starts a run.
    /// False when a run started meanwhile: to apply again once it ends.
    async fn apply_to_users(
        &self,
        org_id: Uuid,
        directory_id: Uuid,
        users: &[Uuid],
        accounts: &[Uuid],
    ) -> Result<bool, SyncError> {
        let contents = self
            .0
            .store
            .sync_contents_for(directory_id, users, accounts)
            .await?;
        let Some(stored) = contents.stored else {
            return self.start_continuous_run(org_id, directory_id).await;
        };
        let grants_by_group = plan::grants_by_group(&contents.grants);
        let frozen = plan::frozen(&contents.grants, &stored.analysis);
        let desired = plan::desired(
            &contents.users,
            &Nesting::new(contents.nested.iter().copied()),
            &stored.analysis,
            &domain_rule(stored.domains.as_deref()),
            &grants_by_group,
        );
        let accounts: Vec<Uuid> = contents
            .users
            .iter()
            .filter_map(|u| u.account)
            .chain(contents.held.keys().copied())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let account_active = plan::account_active(&contents.users);
        let batch = batch_of(
            &accounts,
            &desired,
            &contents.held,
            &frozen,
            &account_active,
            stored.email_new_users,
        );
        if batch.add.is_empty()
            && batch.remove.is_empty()
            && batch
                .provision
                .iter()
                .all(|a| !contents.unsynced.contains_key(a))
        {
            return Ok(true);
        }
        let grants: HashMap<Uuid, Grant> =
            contents.grants.iter().map(|g| (g.id, g.clone())).collect();
        let audit = self.audit(crate::audit::Actor::System("sync"));
        match self
            .0
            .store
            .write_sync_batch(
                contents.org_id,
                directory_id,
                &grants,
                &batch,
                None,
                Trigger::Continuous.as_str(),
                &audit,
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(StoreError::Refused(why)) if why == crate::store::RUN_RUNNING => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts the scheduler (due scheduled syncs, abandoned runs) and the
    /// continuous worker.
    pub fn spawn_background(&self, touches: mpsc::UnboundedReceiver<Touch>) -> Background {
        let scheduler = {
            let engine = self.clone();
            tokio::spawn(async move { engine.schedule().await })
        };
        let worker = {
            let engine = self.clone();
            tokio::spawn(async move { engine.continuous(touches).await })
        };
        Background(vec![scheduler, worker])
    }

    async fn schedule(&self) {
        let tick = Duration::from_millis(self.0.config.sync_tick_ms);
        loop {
            if let Err(e) = self.schedule_once().await {
                tracing::warn!(error = %crate::telemetry::ErrorChain(&e), "the sync scheduler could not look for work");
            }
            tokio::time::sleep(tick).await;
        }
    }

    async fn schedule_once(&self) -> Result<(), SyncError> {
        self.recover_pending().await?;
        let expires = self.lease(Uuid::nil()).expires_at;
        for run in self
            .0
            .store
            .claim_abandoned_sync_runs(&self.0.owner, expires)
            .await?
        {
            tracing::info!(run = %run.id, "taking over an abandoned sync run");
            let audit = self.audit(crate::audit::Actor::System("sync"));
            let engine = self.clone();
            tokio::spawn(async move { engine.execute(run, audit).await });
        }
        for directory_id in self.0.store.claim_due_scheduled_syncs().await? {
            let Some(org_id) = self.0.store.directory_org(directory_id).await? else {
                continue;
            };
            let audit = self.audit(crate::audit::Actor::System("scheduler"));
            match self
                .start_run(org_id, directory_id, Trigger::Scheduled, &audit)
                .await
            {
                Ok(_) | Err(SyncError::Running(_)) | Err(SyncError::Disabled) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The continuous worker: takes what SCIM writes changed, a directory
    /// at a time, coalescing what arrives meanwhile. A change is settled
    /// (its mark may go) only once applied: one the store keeps refusing
    /// is retried as a run until it goes through.
    async fn continuous(&self, mut touches: mpsc::UnboundedReceiver<Touch>) {
        /// Tries of a change the store refused before it is handed to a
        /// run, and the pause between a run's tries.
        const TRIES: u32 = 5;
        const RETRY: Duration = Duration::from_secs(2);
        let mut pending: HashMap<Uuid, Pending> = HashMap::new();
        loop {
            // Deferred work (a run was running, the store refused) is
            // looked at again shortly; idle marks go when their time
            // comes; anything new wakes the worker at once.
            let wake = match (pending.is_empty(), self.0.marks.next_removal()) {
                (false, _) => Some(Instant::now() + Duration::from_millis(100)),
                (true, at) => at,
            };
            // `None`: the timer, not a touch.
            let received = match wake {
                None => Some(touches.recv().await),
                Some(at) => tokio::select! {
                    t = touches.recv() => Some(t),
                    _ = tokio::time::sleep_until(at.into()) => None,
                },
            };
            match received {
                Some(Some(t)) => add(&mut pending, t),
                Some(None) => return,
                None => {}
            }
            if self.0.config.sync_apply_pause_ms > 0 {
                let pause = Duration::from_millis(self.0.config.sync_apply_pause_ms);
                tokio::time::sleep(pause).await;
            }
            while let Ok(t) = touches.try_recv() {
                add(&mut pending, t);
            }
            let now = Instant::now();
            let directories: Vec<Uuid> = pending
                .iter()
                .filter(|(_, p)| p.not_before.is_none_or(|t| t <= now))
                .map(|(d, _)| *d)
                .collect();
            for directory_id in directories {
                let Some(mut p) = pending.remove(&directory_id) else {
                    continue;
                };
                match self.apply_pending(directory_id, &p).await {
                    Ok(true) => self.0.marks.settle(directory_id, p.notices),
                    Ok(false) => {
                        // A run is running: once it ends.
                        pending.insert(directory_id, p);
                    }
                    Err(e) => {
                        p.failures += 1;
                        if p.failures < TRIES {
                            tracing::warn!(directory = %directory_id, error = %e, "the continuous sync could not apply a change; trying again");
                        } else {
                            tracing::error!(directory = %directory_id, error = %e, "the continuous sync could not apply a change; a run will, once the store takes it");
                            p.groups = true;
                            p.not_before = Some(Instant::now() + RETRY);
                        }
                        let again = pending.entry(directory_id).or_default();
                        again.merge(p);
                    }
                }
            }
            for (directory_id, generation) in self.0.marks.take_idle() {
                if let Err(e) = self
                    .0
                    .store
                    .clear_sync_pending(directory_id, &self.0.owner, generation)
                    .await
                {
                    // Left to expire; another process (or this one
                    // restarted) takes it over: at worst one run too many.
                    tracing::warn!(directory = %directory_id, error = %e, "a sync mark could not be removed");
                }
            }
        }

        fn add(pending: &mut HashMap<Uuid, Pending>, touch: Touch) {
            let p = pending.entry(touch.directory_id()).or_default();
            p.notices += 1;
            match touch {
                Touch::Users(_, users) => p.users.extend(users),
                Touch::Members(_, group, members) => {
                    p.members_of.insert(group);
                    p.users.extend(members);
                }
                Touch::GroupCreated(_, group, members) => {
                    p.members_of.insert(group);
                    p.created.insert(group);
                    p.users.extend(members);
                }
                Touch::Granted(_, group) => {
                    p.granted.insert(group);
                }
                Touch::UserDeleted(_, account, groups) => {
                    p.accounts.extend(account);
                    p.shrunk.extend(groups);
                }
                // Its grants' access went with it; a nested group changes
                // what is above or below it, which only a run works out.
                Touch::GroupDeleted(_, nested) => p.groups |= nested,
                Touch::Groups(_) => p.groups = true,
            }
        }
    }

    /// Applies one directory's pending changes; false to try again later
    /// (a run is running, whose snapshot may predate them).
    async fn apply_pending(&self, directory_id: Uuid, p: &Pending) -> Result<bool, SyncError> {
        let Some(org_id) = self.0.store.directory_org(directory_id).await? else {
            return Ok(true);
        };
        let stored = self.0.store.get_sync_settings(org_id, directory_id).await?;
        if stored.settings.mode != SyncMode::Continuous || !stored.settings.enabled {
            return Ok(true);
        }
        if self.0.store.running_sync_run(directory_id).await?.is_some() {
            return Ok(false);
        }
        let mut users = p.users.clone();
        let groups = p.groups
            || (!p.members_of.is_empty()
                && !self
                    .members_change_is_local(directory_id, &p.users, &p.members_of, &p.created)
                    .await?)
            || (!p.granted.is_empty()
                && !self
                    .grant_is_local(directory_id, &p.granted, &mut users)
                    .await?)
            || (!p.shrunk.is_empty() && !self.deletion_is_local(directory_id, &p.shrunk).await?);
        if groups {
            return self.start_continuous_run(org_id, directory_id).await;
        }
        if users.is_empty() && p.accounts.is_empty() {
            // A group deleted alone: its grants' access went with it.
            return Ok(true);
        }
        let users: Vec<Uuid> = users.into_iter().collect();
        let accounts: Vec<Uuid> = p.accounts.iter().copied().collect();
        self.apply_to_users(org_id, directory_id, &users, &accounts)
            .await
    }
}

fn group_in_scope(g: &GroupStateRow) -> GroupInScope {
    GroupInScope {
        group_id: g.group_id,
        group_name: g.name.clone(),
        size: g.size,
        state: g.state.clone(),
    }
}

/// What SCIM writes changed in one directory, waiting for the continuous
/// worker.
#[derive(Default)]
struct Pending {
    users: BTreeSet<Uuid>,
    /// Groups whose members changed (the members are in `users`).
    members_of: BTreeSet<Uuid>,
    /// Groups created (also in `members_of`).
    created: BTreeSet<Uuid>,
    /// Groups given a grant.
    granted: BTreeSet<Uuid>,
    /// Accounts whose user was deleted.
    accounts: BTreeSet<Uuid>,
    /// Groups that lost a member by its deletion.
    shrunk: BTreeSet<Uuid>,
    /// A change only a run can apply.
    groups: bool,
    failures: u32,
    /// Changes counted in here, settled once applied.
    notices: u32,
    /// Not before then (the store refused it).
    not_before: Option<Instant>,
}

impl Pending {
    /// Takes in `other`'s changes (a retry of them).
    fn merge(&mut self, other: Pending) {
        self.users.extend(other.users);
        self.members_of.extend(other.members_of);
        self.created.extend(other.created);
        self.granted.extend(other.granted);
        self.accounts.extend(other.accounts);
        self.shrunk.extend(other.shrunk);
        self.groups |= other.groups;
        self.failures = self.failures.max(other.failures);
        self.notices += other.notices;
        self.not_before = self.not_before.max(other.not_before);
    }
}

/// A write about to be made to a directory, counted by the engine until
/// the worker applied it (see [`Engine::will_change`]).
pub struct Change {
    engine: Engine,
    directory_id: Uuid,
    settled: bool,
}

impl Change {
    /// Tells the worker what the committed write changed.
    pub fn touch(mut self, touch: Touch) {
        debug_assert_eq!(touch.directory_id(), self.directory_id);
        self.settled = true;
        if self.engine.0.touches.send(touch).is_err() {
            // The worker is gone (shutting down): the mark stays and is
            // taken over.
        }
    }
}

impl Drop for Change {
    fn drop(&mut self) {
        if !self.settled {
            self.engine.0.marks.settle(self.directory_id, 1);
        }
    }
}

/// The engine's background tasks, stopped when dropped.
pub struct Background(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}
