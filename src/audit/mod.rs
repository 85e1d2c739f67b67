//! The audit log, in domain terms: what happened (an [`Action`]), to what
//! (a [`Target`]), by whom (an [`Actor`]), from where, and with what
//! outcome. Pure data and derivation rules; the store writes events inside
//! the transaction of the change they describe, so a committed change has
//! its event and a rolled-back one has none.
//!
//! Secrets and request bodies are never part of an event: an actor is the
//! visible id of an API key or admin token, and an update names the
//! attributes it changed, not their values.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::scim::schema::ResourceTypeDef;
use crate::scim::ScimError;

pub mod purge;

/// One day in microseconds, the stored time unit.
pub const DAY_MICROS: i64 = 86_400_000_000;

/// What an event records. The string forms are the stable names the
/// reports and their filters use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    UserCreated,
    UserUpdated,
    UserDeactivated,
    UserReactivated,
    UserDeleted,
    GroupCreated,
    GroupUpdated,
    GroupMembersAdded,
    GroupMembersRemoved,
    GroupDeleted,
    /// A `POST /Bulk` refused as a whole (its operations are recorded one
    /// by one under their own actions).
    BulkRejected,
    OrgCreated,
    DirectoryCreated,
    DirectoryDeleted,
    DirectoryKeyRotated,
    DirectorySettingsChanged,
    /// A sync run began and ended (its counts are the detail).
    SyncStarted,
    SyncFinished,
    /// An account gained access to products (a sync run or the continuous
    /// path), one event per account and run.
    AccessGranted,
    /// An account lost access to products.
    AccessRevoked,
    /// A group's product grants changed (added or removed).
    GrantsChanged,
    DomainVerified,
    DomainAdded,
    DomainUnverified,
    DomainDeleted,
    DomainDirectoryChanged,
    AccountDeactivated,
    AccountReactivated,
    AccountEmailChanged,
    AccountUnlinked,
    AccountRelinked,
    AccountDeleted,
    SiteCreated,
    SiteDeleted,
    ProductAdded,
    ProductRemoved,
    ProductSettingsChanged,
    OrgGroupCreated,
    OrgGroupUpdated,
    OrgGroupDeleted,
}

impl Action {
    pub const ALL: [Action; 40] = [
        Action::UserCreated,
        Action::UserUpdated,
        Action::UserDeactivated,
        Action::UserReactivated,
        Action::UserDeleted,
        Action::GroupCreated,
        Action::GroupUpdated,
        Action::GroupMembersAdded,
        Action::GroupMembersRemoved,
        Action::GroupDeleted,
        Action::BulkRejected,
        Action::OrgCreated,
        Action::DirectoryCreated,
        Action::DirectoryDeleted,
        Action::DirectoryKeyRotated,
        Action::DirectorySettingsChanged,
        Action::SyncStarted,
        Action::SyncFinished,
        Action::AccessGranted,
        Action::AccessRevoked,
        Action::GrantsChanged,
        Action::DomainVerified,
        Action::DomainAdded,
        Action::DomainUnverified,
        Action::DomainDeleted,
        Action::DomainDirectoryChanged,
        Action::AccountDeactivated,
        Action::AccountReactivated,
        Action::AccountEmailChanged,
        Action::AccountUnlinked,
        Action::AccountRelinked,
        Action::AccountDeleted,
        Action::SiteCreated,
        Action::SiteDeleted,
        Action::ProductAdded,
        Action::ProductRemoved,
        Action::ProductSettingsChanged,
        Action::OrgGroupCreated,
        Action::OrgGroupUpdated,
        Action::OrgGroupDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::UserCreated => "user.created",
            Action::UserUpdated => "user.updated",
            Action::UserDeactivated => "user.deactivated",
            Action::UserReactivated => "user.reactivated",
            Action::UserDeleted => "user.deleted",
            Action::GroupCreated => "group.created",
            Action::GroupUpdated => "group.updated",
            Action::GroupMembersAdded => "group.members_added",
            Action::GroupMembersRemoved => "group.members_removed",
            Action::GroupDeleted => "group.deleted",
            Action::BulkRejected => "bulk.rejected",
            Action::OrgCreated => "org.created",
            Action::DirectoryCreated => "directory.created",
            Action::DirectoryDeleted => "directory.deleted",
            Action::DirectoryKeyRotated => "directory.key_rotated",
            Action::DirectorySettingsChanged => "directory.settings_changed",
            Action::SyncStarted => "sync.started",
            Action::SyncFinished => "sync.finished",
            Action::AccessGranted => "access.granted",
            Action::AccessRevoked => "access.revoked",
            Action::GrantsChanged => "grants.changed",
            Action::DomainVerified => "domain.verified",
            Action::DomainAdded => "domain.added",
            Action::DomainUnverified => "domain.unverified",
            Action::DomainDeleted => "domain.deleted",
            Action::DomainDirectoryChanged => "domain.directory_changed",
            Action::AccountDeactivated => "account.deactivated",
            Action::AccountReactivated => "account.reactivated",
            Action::AccountEmailChanged => "account.email_changed",
            Action::AccountUnlinked => "account.unlinked",
            Action::AccountRelinked => "account.relinked",
            Action::AccountDeleted => "account.deleted",
            Action::SiteCreated => "site.created",
            Action::SiteDeleted => "site.deleted",
            Action::ProductAdded => "product.added",
            Action::ProductRemoved => "product.removed",
            Action::ProductSettingsChanged => "product.settings_changed",
            Action::OrgGroupCreated => "org_group.created",
            Action::OrgGroupUpdated => "org_group.updated",
            Action::OrgGroupDeleted => "org_group.deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// Whether the change happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        match s.trim().to_ascii_lowercase().as_str() {
            "success" => Some(Outcome::Success),
            "failure" => Some(Outcome::Failure),
            _ => None,
        }
    }
}

/// Who made a change: never a secret, only the visible id of a credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A directory's API key, by its key id.
    ApiKey(String),
    /// An admin token, by its id (`env` for `SCIMD_ADMIN_TOKEN`).
    AdminToken(String),
    /// The server itself or its command line (`cli`).
    System(&'static str),
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::ApiKey(_) => "api_key",
            Actor::AdminToken(_) => "admin_token",
            Actor::System(_) => "system",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Actor::ApiKey(id) | Actor::AdminToken(id) => id,
            Actor::System(name) => name,
        }
    }
}

/// The kind of thing an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetType {
    User,
    Group,
    Directory,
    Org,
    Domain,
    /// An org-level account (its SCIM users are `User` targets).
    Account,
    Site,
    /// A product of a site.
    Product,
    /// A group the admin keeps in the org, not a SCIM group.
    OrgGroup,
    /// A whole request (a rejected `POST /Bulk`).
    Request,
}

impl TargetType {
    pub const ALL: [TargetType; 10] = [
        TargetType::User,
        TargetType::Group,
        TargetType::Directory,
        TargetType::Org,
        TargetType::Domain,
        TargetType::Account,
        TargetType::Site,
        TargetType::Product,
        TargetType::OrgGroup,
        TargetType::Request,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::User => "user",
            TargetType::Group => "group",
            TargetType::Directory => "directory",
            TargetType::Org => "org",
            TargetType::Domain => "domain",
            TargetType::Account => "account",
            TargetType::Site => "site",
            TargetType::Product => "product",
            TargetType::OrgGroup => "org_group",
            TargetType::Request => "request",
        }
    }

    pub fn parse(s: &str) -> Option<TargetType> {
        TargetType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// What an event is about, with the identifiers it had at the time (so a
/// deleted or renamed user's history is still found by its old names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub kind: TargetType,
    pub id: Option<Uuid>,
    /// When the target was created (microseconds), when known: it keys the
    /// store's target index, so new targets' events append to it.
    pub created_at: Option<i64>,
    /// userName (users), displayName (groups), name (directories, orgs).
    pub identifier: Option<String>,
    /// The primary email, lowercased (users).
    pub email: Option<String>,
    pub external_id: Option<String>,
}

impl Target {
    pub fn new(kind: TargetType, id: Option<Uuid>) -> Target {
        Target {
            kind,
            id,
            created_at: None,
            identifier: None,
            email: None,
            external_id: None,
        }
    }

    pub fn named(kind: TargetType, id: Uuid, created_at: i64, identifier: &str) -> Target {
        Target {
            created_at: Some(created_at),
            identifier: Some(identifier.to_owned()),
            ..Target::new(kind, Some(id))
        }
    }

    /// Best-effort identifiers from a request body that may be invalid (a
    /// failed create is still found by the userName it tried to use).
    pub fn from_body(kind: TargetType, id: Option<Uuid>, body: &Value) -> Target {
        let mut target = Target::new(kind, id);
        let Some(obj) = body.as_object() else {
            return target;
        };
        let text = |name: &str| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_str())
                .map(|s| truncate(s, MAX_IDENTIFIER))
        };
        target.identifier = match kind {
            TargetType::Group => text("displayName"),
            _ => text("userName"),
        };
        target.external_id = text("externalId");
        if kind == TargetType::User {
            target.email = obj
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("emails"))
                .and_then(|(_, v)| v.as_array())
                .and_then(|list| crate::directory::user::primary_email(list))
                .map(|s| truncate(&s.to_lowercase(), MAX_IDENTIFIER));
        }
        target
    }
}

/// Longest identifier, detail and request id kept in an event: enough to
/// be useful, never a way to store a request body.
const MAX_IDENTIFIER: usize = 256;
const MAX_DETAIL: usize = 1024;
const MAX_REQUEST_ID: usize = 128;

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => s[..end].to_owned(),
        None => s.to_owned(),
    }
}

/// One audit event, ready to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub org_id: Uuid,
    pub directory_id: Option<Uuid>,
    pub actor: Actor,
    pub source_ip: Option<String>,
    pub request_id: Option<String>,
    pub action: Action,
    pub outcome: Outcome,
    /// For failures: the HTTP status, `scimType` and detail the client got.
    pub status: Option<u16>,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    pub target: Target,
    /// For updates: the top-level attributes whose values changed.
    pub changed_attributes: Vec<String>,
    pub members_added: Option<u64>,
    pub members_removed: Option<u64>,
}

impl Event {
    pub fn target(mut self, target: Target) -> Event {
        self.target = target;
        self
    }

    pub fn detail(mut self, detail: impl AsRef<str>) -> Event {
        self.detail = Some(truncate(detail.as_ref(), MAX_DETAIL));
        self
    }

    pub fn changed(mut self, attributes: Vec<String>) -> Event {
        self.changed_attributes = attributes;
        self
    }

    /// The failure a client was told about.
    pub fn failed(mut self, error: &ScimError) -> Event {
        self.outcome = Outcome::Failure;
        self.status = Some(error.status);
        self.scim_type = error.scim_type.map(|t| t.as_str().to_owned());
        self.detail(&error.detail)
    }
}

/// Who is acting, from where, on which organisation and directory: what
/// every event of one request shares.
#[derive(Clone, Debug)]
pub struct AuditContext {
    pub org_id: Uuid,
    pub directory_id: Option<Uuid>,
    pub actor: Actor,
    pub source_ip: Option<String>,
    pub request_id: Option<String>,
    /// False only when auditing is switched off (`--audit=false`, for
    /// measuring its cost): then no event is written at all.
    pub enabled: bool,
}

impl AuditContext {
    pub fn new(
        actor: Actor,
        source_ip: Option<String>,
        request_id: Option<&str>,
        enabled: bool,
    ) -> Self {
        AuditContext {
            org_id: Uuid::nil(),
            directory_id: None,
            actor,
            source_ip,
            request_id: request_id.map(|r| truncate(r, MAX_REQUEST_ID)),
            enabled,
        }
    }

    /// Changes made by the command line (`scimd directory create`, …).
    pub fn system(name: &'static str) -> Self {
        AuditContext::new(Actor::System(name), None, None, true)
    }

    pub fn in_org(&self, org_id: Uuid) -> Self {
        AuditContext {
            org_id,
            ..self.clone()
        }
    }

    pub fn in_directory(&self, org_id: Uuid, directory_id: Uuid) -> Self {
        AuditContext {
            org_id,
            directory_id: Some(directory_id),
            ..self.clone()
        }
    }

    /// A successful event of this context, about nothing yet.
    pub fn event(&self, action: Action) -> Event {
        Event {
            org_id: self.org_id,
            directory_id: self.directory_id,
            actor: self.actor.clone(),
            source_ip: self.source_ip.clone(),
            request_id: self.request_id.clone(),
            action,
            outcome: Outcome::Success,
            status: None,
            scim_type: None,
            detail: None,
            target: Target::new(TargetType::Request, None),
            changed_attributes: Vec::new(),
            members_added: None,
            members_removed: None,
        }
    }
}

/// The action a write request attempts, from its method and resource kind
/// (for failures, where there is no change to derive it from).
pub fn attempted(kind: TargetType, method: &str) -> Option<Action> {
    Some(match (kind, method.to_ascii_uppercase().as_str()) {
        (TargetType::User, "POST") => Action::UserCreated,
        (TargetType::User, "PUT" | "PATCH") => Action::UserUpdated,
        (TargetType::User, "DELETE") => Action::UserDeleted,
        (TargetType::Group, "POST") => Action::GroupCreated,
        (TargetType::Group, "PUT" | "PATCH") => Action::GroupUpdated,
        (TargetType::Group, "DELETE") => Action::GroupDeleted,
        (TargetType::Request, "POST") => Action::BulkRejected,
        _ => return None,
    })
}

/// A user update's action and changed attributes: flipping `active` from
/// true to false is a deactivation (what identity providers call
/// suspending), false to true a reactivation, anything else an update. The
/// event lists every changed attribute either way.
pub fn user_update(
    rt: &ResourceTypeDef,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> (Action, Vec<String>) {
    let active =
        |doc: &Map<String, Value>| doc.get("active").and_then(Value::as_bool) != Some(false);
    let action = match (active(before), active(after)) {
        (true, false) => Action::UserDeactivated,
        (false, true) => Action::UserReactivated,
        _ => Action::UserUpdated,
    };
    (action, changed_attributes(rt, before, after))
}

/// Top-level attributes whose values differ (extension attributes as
/// `urn:…:name`), without `members`, which events count instead.
pub fn changed_attributes(
    rt: &ResourceTypeDef,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Vec<String> {
    let names: BTreeSet<String> = crate::scim::patch::changed_attributes(rt, before, after);
    names.into_iter().filter(|n| n != "members").collect()
}

/// The time of a new event: now, in microseconds, but always after the
/// previous event of this process, so the events of one transaction (and,
/// on SQLite's single writer, of all transactions) keep their order.
pub fn event_time() -> i64 {
    static LAST: AtomicI64 = AtomicI64::new(0);
    let now = crate::time::now_micros();
    let mut last = LAST.load(Ordering::Relaxed);
    loop {
        let t = now.max(last + 1);
        match LAST.compare_exchange_weak(last, t, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return t,
            Err(seen) => last = seen,
        }
    }
}

/// A new event's id: random, so replicas never coordinate; events are
/// keyed by org, time and id.
pub fn event_id() -> i64 {
    rand::random::<i64>() & i64::MAX
}

/// The keys a user is found by in reports: `i:` and its lowercased
/// userName or any lowercased email, `x:` and its exact externalId.
pub fn user_subject_keys(
    user_name: &str,
    emails: impl IntoIterator<Item = String>,
    external_id: Option<&str>,
) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    keys.insert(format!("i:{}", user_name.to_lowercase()));
    keys.extend(
        emails
            .into_iter()
            .map(|e| format!("i:{}", e.to_lowercase())),
    );
    keys.extend(external_id.map(|x| format!("x:{x}")));
    keys
}

/// The key a deleted user is found by under its id.
pub fn id_subject_key(id: Uuid) -> String {
    format!("u:{}", id.simple())
}

/// [`user_subject_keys`] of a stored user document.
pub fn user_doc_subject_keys(doc: &Map<String, Value>) -> BTreeSet<String> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let emails = doc
        .get("emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| text(e.get("value")));
    user_subject_keys(
        &text(doc.get("userName")).unwrap_or_default(),
        emails,
        text(doc.get("externalId")).as_deref(),
    )
}

/// A report cursor: the `(time, id)` of the last event of a page, opaque
/// to clients. The next page holds the events strictly older, so events
/// recorded meanwhile (always newer) never shift or repeat a page.
pub fn encode_cursor(occurred_at: i64, id: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{occurred_at}.{id}"))
}

pub fn decode_cursor(cursor: &str) -> Option<(i64, i64)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .ok()?;
    let (t, id) = std::str::from_utf8(&raw).ok()?.split_once('.')?;
    Some((t.parse().ok()?, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::schema::USER_RESOURCE;
    use serde_json::json;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn active_flips_name_the_action() {
        let on = doc(json!({ "userName": "a", "active": true }));
        let off = doc(json!({ "userName": "a", "active": false, "title": "x" }));
        let (action, changed) = user_update(&USER_RESOURCE, &on, &off);
        assert_eq!(action, Action::UserDeactivated);
        assert_eq!(changed, vec!["active", "title"]);
        assert_eq!(
            user_update(&USER_RESOURCE, &off, &on).0,
            Action::UserReactivated
        );
        let renamed = doc(json!({ "userName": "b", "active": true }));
        assert_eq!(
            user_update(&USER_RESOURCE, &on, &renamed),
            (Action::UserUpdated, vec!["userName".to_owned()])
        );
        // A missing `active` means active.
        let bare = doc(json!({ "userName": "a" }));
        assert_eq!(
            user_update(&USER_RESOURCE, &bare, &on).0,
            Action::UserUpdated
        );
    }

    #[test]
    fn extension_attributes_are_named_by_urn() {
        let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let before = doc(json!({ "userName": "a", ext: { "department": "R&D" } }));
        let after = doc(json!({ "userName": "a", ext: { "department": "Ops" } }));
        assert_eq!(
            changed_attributes(&USER_RESOURCE, &before, &after),
            vec![format!("{ext}:department")]
        );
    }

    #[test]
    fn actions_round_trip_and_attempts_are_named() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("user.nope"), None);
        for t in TargetType::ALL {
            assert_eq!(TargetType::parse(t.as_str()), Some(t));
        }
        assert_eq!(TargetType::parse(""), None);
        assert_eq!(
            attempted(TargetType::User, "patch"),
            Some(Action::UserUpdated)
        );
        assert_eq!(attempted(TargetType::Group, "GET"), None);
    }

    #[test]
    fn event_times_increase_and_subject_keys_cover_every_identifier() {
        let a = event_time();
        let b = event_time();
        assert!(b > a);
        let doc = doc(
            json!({ "userName": "Ada@Example.com", "externalId": "00u-X",
            "emails": [{ "value": "ADA@example.com" }, { "value": "ada.l@example.com" }] }),
        );
        let keys: Vec<String> = user_doc_subject_keys(&doc).into_iter().collect();
        assert_eq!(
            keys,
            ["i:ada.l@example.com", "i:ada@example.com", "x:00u-X"]
        );
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = encode_cursor(1_700_000_000_123_456, 42);
        assert_eq!(decode_cursor(&c), Some((1_700_000_000_123_456, 42)));
        assert_eq!(decode_cursor("not a cursor"), None);
        assert_eq!(decode_cursor(&encode_cursor(-1, 0)), Some((-1, 0)));
    }

    #[test]
    fn identifiers_come_from_invalid_bodies_too() {
        let body = json!({ "USERNAME": "Ada@Example.com", "active": 5,
            "emails": [{ "value": "x@example.com" }, { "value": "ADA@example.com", "primary": true }] });
        let t = Target::from_body(TargetType::User, None, &body);
        assert_eq!(t.identifier.as_deref(), Some("Ada@Example.com"));
        assert_eq!(t.email.as_deref(), Some("ada@example.com"));
        assert_eq!(
            Target::from_body(TargetType::User, None, &json!([1])).identifier,
            None
        );
        let long = "x".repeat(5000);
        let e = AuditContext::system("cli")
            .event(Action::UserCreated)
            .detail(&long);
        assert_eq!(e.detail.unwrap().len(), MAX_DETAIL);
    }
}
