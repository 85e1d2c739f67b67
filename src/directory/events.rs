//! Which audit events a change to the directory produces. The store writes
//! them in the transaction of the change; these rules decide what they say.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{GroupDraft, UserDraft};
use crate::audit::{self, Action, AuditContext, Event, Target, TargetType};
use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};

/// Most member ids one `group.members_added` or `group.members_removed`
/// event of the feed lists; a larger change is several events.
pub const FEED_MEMBERS_PER_EVENT: usize = 1_000;

/// The types of the event feed, as its `types` filter names them.
pub const FEED_TYPES: [&str; 23] = [
    "user.created",
    "user.updated",
    "user.deactivated",
    "user.reactivated",
    "user.deleted",
    "group.created",
    "group.updated",
    "group.deleted",
    "group.members_added",
    "group.members_removed",
    "account.deactivated",
    "account.reactivated",
    "account.email_changed",
    "account.unlinked",
    "account.relinked",
    "account.deleted",
    "access.granted",
    "access.revoked",
    "sync.run_started",
    "sync.run_finished",
    "directory.created",
    "directory.deleted",
    "directory.key_rotated",
];

/// Whether `filter` names feed types: one type, or a prefix of them with
/// `*` (`user.*`). Evaluates to the type, or the prefix with its dot.
pub fn feed_type_filter(filter: &str) -> Option<String> {
    let filter = filter.trim();
    match filter.strip_suffix('*') {
        Some(prefix) if prefix.ends_with('.') => FEED_TYPES
            .iter()
            .any(|t| t.starts_with(prefix))
            .then(|| prefix.to_owned()),
        Some(_) => None,
        None => FEED_TYPES.contains(&filter).then(|| filter.to_owned()),
    }
}

/// The data of an `access.granted` or `access.revoked` event of the feed:
/// the account and each grant that gave or took its access, as (grant,
/// group, site, product, role).
pub fn access_event_data<'a>(
    account_id: Uuid,
    run_id: Option<Uuid>,
    trigger: &str,
    grants: impl Iterator<Item = (Uuid, Uuid, Uuid, &'a str, &'a str)>,
) -> String {
    let grants: Vec<Value> = grants
        .map(|(id, group, site, product, role)| {
            serde_json::json!({
                "grantId": id, "groupId": group, "siteId": site,
                "productKey": product, "role": role,
            })
        })
        .collect();
    serde_json::json!({
        "accountId": account_id, "runId": run_id, "trigger": trigger, "grants": grants,
    })
    .to_string()
}

/// A stored resource's id and creation time (microseconds): what every
/// event about it is keyed by.
pub type Stored = (Uuid, i64);

/// An event about a user of `directory_id`, with its identifiers as of
/// this change (so its history is found by the names it had then).
pub fn user_event(
    audit: &AuditContext,
    directory_id: Uuid,
    action: Action,
    (id, created_at): Stored,
    user_name: &str,
    email: Option<&str>,
    external_id: Option<&str>,
) -> Event {
    let mut event = audit.event(action).target(Target {
        kind: TargetType::User,
        id: Some(id),
        created_at: Some(created_at),
        identifier: Some(user_name.to_owned()),
        email: email.map(str::to_owned),
        external_id: external_id.map(str::to_owned),
    });
    event.directory_id = Some(directory_id);
    event
}

/// `user.created`.
pub fn user_created(
    audit: &AuditContext,
    directory_id: Uuid,
    user: Stored,
    draft: &UserDraft,
) -> Event {
    user_event(
        audit,
        directory_id,
        Action::UserCreated,
        user,
        &draft.user_name,
        draft.primary_email.as_deref(),
        draft.external_id.as_deref(),
    )
}

/// What an update of a user records: its event and the identifiers the
/// user no longer has, which the store keeps so that its history is still
/// found by them.
pub struct UserUpdated {
    pub event: Event,
    pub gone: Vec<String>,
}

/// The record of a user's update from `before` (stored) to `after`:
/// `user.deactivated`, `user.reactivated` or `user.updated` (see
/// [`audit::user_update`]), listing the changed attributes.
pub fn user_updated(
    audit: &AuditContext,
    directory_id: Uuid,
    user: Stored,
    before: &Map<String, Value>,
    after: &UserDraft,
) -> UserUpdated {
    let after_doc = match serde_json::from_str(&after.doc) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let (action, changed) = audit::user_update(&USER_RESOURCE, before, &after_doc);
    let now_known = audit::user_doc_subject_keys(&after_doc);
    let gone = audit::user_doc_subject_keys(before)
        .into_iter()
        .filter(|k| !now_known.contains(k))
        .collect();
    let event = user_event(
        audit,
        directory_id,
        action,
        user,
        &after.user_name,
        after.primary_email.as_deref(),
        after.external_id.as_deref(),
    )
    .changed(changed);
    UserUpdated { event, gone }
}

/// The identifiers a deleted user stays findable by in reports: its
/// userName, every email, its externalId and its id.
pub fn deleted_user_subjects(
    id: Uuid,
    user_name: &str,
    emails: Vec<String>,
    external_id: Option<&str>,
) -> std::collections::BTreeSet<String> {
    let mut keys = audit::user_subject_keys(user_name, emails, external_id);
    keys.insert(audit::id_subject_key(id));
    keys
}

/// An event about a group of `directory_id`, named as of this change.
pub fn group_event(
    audit: &AuditContext,
    directory_id: Uuid,
    action: Action,
    (id, created_at): Stored,
    display_name: &str,
    external_id: Option<&str>,
) -> Event {
    let mut event = audit.event(action).target(Target {
        external_id: external_id.map(str::to_owned),
        ..Target::named(TargetType::Group, id, created_at, display_name)
    });
    event.directory_id = Some(directory_id);
    event
}

/// `group.created`, with the number of members it was created with.
pub fn group_created(
    audit: &AuditContext,
    directory_id: Uuid,
    group: Stored,
    draft: &GroupDraft,
    members_added: u64,
) -> Event {
    let mut event = group_event(
        audit,
        directory_id,
        Action::GroupCreated,
        group,
        &draft.display_name,
        draft.external_id.as_deref(),
    );
    event.members_added = (members_added > 0).then_some(members_added);
    event
}

/// The events of a group's update: one per kind of fact —
/// `group.updated` (changed attributes), `group.members_added` and
/// `group.members_removed` (with counts) — and a write that changed nothing
/// is still one `group.updated`.
pub fn group_changed(
    audit: &AuditContext,
    directory_id: Uuid,
    group: Stored,
    before: &Map<String, Value>,
    after: &GroupDraft,
    (added, removed): (u64, u64),
) -> Vec<Event> {
    let after_doc = match serde_json::from_str(&after.doc) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let changed = audit::changed_attributes(&GROUP_RESOURCE, before, &after_doc);
    let event = |action| {
        group_event(
            audit,
            directory_id,
            action,
            group,
            &after.display_name,
            after.external_id.as_deref(),
        )
    };
    let mut events = Vec::with_capacity(3);
    if !changed.is_empty() {
        events.push(event(Action::GroupUpdated).changed(changed));
    }
    if added > 0 {
        let mut e = event(Action::GroupMembersAdded);
        e.members_added = Some(added);
        events.push(e);
    }
    if removed > 0 {
        let mut e = event(Action::GroupMembersRemoved);
        e.members_removed = Some(removed);
        events.push(e);
    }
    if events.is_empty() {
        events.push(event(Action::GroupUpdated));
    }
    events
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::audit::Actor;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(map) => map,
            _ => unreachable!("test documents are objects"),
        }
    }

    fn context() -> AuditContext {
        AuditContext::new(Actor::System("cli"), None, None, true)
    }

    #[test]
    fn feed_types_are_named_or_taken_by_prefix() {
        assert_eq!(
            feed_type_filter(" user.created "),
            Some("user.created".into())
        );
        assert_eq!(feed_type_filter("group.*"), Some("group.".into()));
        assert_eq!(feed_type_filter("account.*"), Some("account.".into()));
        for refused in [
            "",
            "*",
            "user",
            "user*",
            "user.nope",
            "nope.*",
            "USER.created",
            ".*",
        ] {
            assert_eq!(feed_type_filter(refused), None, "{refused}");
        }
        // Type names need no escaping in a LIKE pattern.
        for t in FEED_TYPES {
            assert!(
                t.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'),
                "{t}"
            );
            assert!(!t.contains('%'));
        }
    }

    #[test]
    fn access_data_lists_each_grant() {
        let (account, grant, group, site) = (
            Uuid::nil(),
            Uuid::from_u128(1),
            Uuid::nil(),
            Uuid::from_u128(2),
        );
        let data: Value = serde_json::from_str(&access_event_data(
            account,
            None,
            "continuous",
            [(grant, group, site, "jira-software", "user")].into_iter(),
        ))
        .unwrap();
        assert_eq!(data["runId"], Value::Null);
        assert_eq!(data["trigger"], "continuous");
        assert_eq!(data["grants"][0]["productKey"], "jira-software");
        assert_eq!(data["grants"][0]["grantId"], grant.to_string());
    }

    #[test]
    fn deactivating_a_user_is_its_own_event() {
        let before = map(json!({"userName": "a", "active": true, "title": "x"}));
        let after = UserDraft::from_doc(&map(json!({"userName": "a", "active": false}))).unwrap();
        let record = user_updated(&context(), Uuid::nil(), (Uuid::nil(), 1), &before, &after);
        assert_eq!(record.event.action, Action::UserDeactivated);
        assert_eq!(record.event.changed_attributes, ["active", "title"]);
    }

    #[test]
    fn a_renamed_user_keeps_its_old_name_as_a_subject() {
        let before = map(json!({"userName": "old@x", "emails": [{"value": "old@x"}]}));
        let after = UserDraft::from_doc(&map(json!({"userName": "new@x"}))).unwrap();
        let record = user_updated(&context(), Uuid::nil(), (Uuid::nil(), 1), &before, &after);
        assert_eq!(record.gone, ["i:old@x"]);
        assert_eq!(record.event.target.identifier.as_deref(), Some("new@x"));
    }

    #[test]
    fn a_group_update_has_one_event_per_kind_of_fact() {
        let before = map(json!({"displayName": "g"}));
        let renamed = GroupDraft::from_doc(&map(json!({"displayName": "h"}))).unwrap();
        let unchanged = GroupDraft::from_doc(&before).unwrap();
        let g = (Uuid::nil(), 1);
        let actions =
            |events: Vec<Event>| -> Vec<Action> { events.into_iter().map(|e| e.action).collect() };
        let all = group_changed(&context(), Uuid::nil(), g, &before, &renamed, (2, 1));
        assert_eq!(
            actions(all),
            [
                Action::GroupUpdated,
                Action::GroupMembersAdded,
                Action::GroupMembersRemoved
            ]
        );
        let members = group_changed(&context(), Uuid::nil(), g, &before, &unchanged, (0, 3));
        assert_eq!(members[0].members_removed, Some(3));
        assert_eq!(actions(members), [Action::GroupMembersRemoved]);
        let nothing = group_changed(&context(), Uuid::nil(), g, &before, &unchanged, (0, 0));
        assert_eq!(actions(nothing), [Action::GroupUpdated]);
    }
}
