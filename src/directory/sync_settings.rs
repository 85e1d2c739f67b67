//! A directory's sync settings: when the sync engine runs, which users and
//! groups it takes, which domains it claims accounts in, whether it emails
//! new users. Only the settings live here; the engine that applies them
//! reads them from the store.
//!
//! Each value is parsed into a type that cannot hold a bad setting, so the
//! store and the engine never check ranges again.

use std::collections::HashSet;

use uuid::Uuid;

use super::domain::{DomainName, DomainNameError};

/// How often a directory syncs when it was never configured: every 4 hours.
pub const DEFAULT_INTERVAL_MINUTES: u32 = 240;
/// The shortest interval between scheduled syncs.
pub const MIN_INTERVAL_MINUTES: u32 = 15;
/// The longest interval between scheduled syncs: a week.
pub const MAX_INTERVAL_MINUTES: u32 = 10_080;
/// The most groups a scope may select.
pub const MAX_SCOPE_GROUPS: usize = 1000;
/// The most domains a selection may name.
pub const MAX_DOMAINS: usize = 1000;
/// The users one group may bring in one sync when the directory sets no
/// limit of its own.
pub const DEFAULT_GROUP_USER_LIMIT: u32 = 10_000;
/// The largest limit a directory may set.
pub const MAX_GROUP_USER_LIMIT: u32 = 1_000_000;

/// When the engine syncs the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Every change the identity provider pushes is applied as it comes.
    Continuous,
    /// The directory is synced every [`SyncInterval`].
    Scheduled,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::Continuous => "continuous",
            SyncMode::Scheduled => "scheduled",
        }
    }

    /// The stored form back; anything else is not a mode.
    pub fn parse(raw: &str) -> Option<SyncMode> {
        match raw {
            "continuous" => Some(SyncMode::Continuous),
            "scheduled" => Some(SyncMode::Scheduled),
            _ => None,
        }
    }
}

/// Minutes between scheduled syncs, [`MIN_INTERVAL_MINUTES`] to
/// [`MAX_INTERVAL_MINUTES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncInterval(u32);

impl SyncInterval {
    pub fn parse(minutes: i64) -> Result<SyncInterval, String> {
        match u32::try_from(minutes) {
            Ok(m) if (MIN_INTERVAL_MINUTES..=MAX_INTERVAL_MINUTES).contains(&m) => {
                Ok(SyncInterval(m))
            }
            _ => Err(format!(
                "intervalMinutes must be {MIN_INTERVAL_MINUTES} to {MAX_INTERVAL_MINUTES}"
            )),
        }
    }

    pub fn minutes(self) -> u32 {
        self.0
    }
}

impl Default for SyncInterval {
    fn default() -> Self {
        SyncInterval(DEFAULT_INTERVAL_MINUTES)
    }
}

/// Which users and groups the engine syncs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncScope {
    /// Every user and group of the directory, new ones included.
    All,
    /// These groups (with their members), each once, in the order given.
    Groups(Vec<Uuid>),
}

impl SyncScope {
    /// Selected groups, at most [`MAX_SCOPE_GROUPS`] ids (counted as sent,
    /// as the document's `maxItems` counts them), duplicates folded.
    /// Whether they are groups of the directory is the store's to say.
    pub fn groups(ids: &[Uuid]) -> Result<SyncScope, String> {
        if ids.len() > MAX_SCOPE_GROUPS {
            return Err(format!(
                "scope.groupIds names at most {MAX_SCOPE_GROUPS} groups"
            ));
        }
        let mut seen = HashSet::new();
        let ids: Vec<Uuid> = ids.iter().copied().filter(|g| seen.insert(*g)).collect();
        Ok(SyncScope::Groups(ids))
    }
}

/// Which domains the engine claims accounts in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainSelection {
    /// Every verified domain of the org.
    All,
    /// These domains, normalised, each once, in the order given.
    List(Vec<DomainName>),
}

impl DomainSelection {
    /// Names as typed, at most [`MAX_DOMAINS`], normalised with
    /// [`DomainName`]; duplicates (after normalising) folded.
    pub fn list<S: AsRef<str>>(names: &[S]) -> Result<DomainSelection, DomainListError> {
        if names.len() > MAX_DOMAINS {
            return Err(DomainListError::TooMany);
        }
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for raw in names {
            let name = DomainName::parse(raw.as_ref())?;
            if seen.insert(name.clone()) {
                out.push(name);
            }
        }
        Ok(DomainSelection::List(out))
    }
}

/// Why a list of domains is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainListError {
    #[error("domains.names names at most {MAX_DOMAINS} domains")]
    TooMany,
    #[error(transparent)]
    Invalid(#[from] DomainNameError),
}

/// The users one group may bring in one sync: the directory's own limit,
/// or none for the server's default ([`DEFAULT_GROUP_USER_LIMIT`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupUserLimit(Option<u32>);

impl GroupUserLimit {
    pub fn parse(limit: Option<i64>) -> Result<GroupUserLimit, String> {
        match limit {
            None => Ok(GroupUserLimit(None)),
            Some(n) => match u32::try_from(n) {
                Ok(n) if (1..=MAX_GROUP_USER_LIMIT).contains(&n) => Ok(GroupUserLimit(Some(n))),
                _ => Err(format!(
                    "groupUserLimit must be null or 1 to {MAX_GROUP_USER_LIMIT}"
                )),
            },
        }
    }

    /// The directory's own limit, if it set one.
    pub fn own(self) -> Option<u32> {
        self.0
    }

    /// The limit the engine applies.
    pub fn effective(self) -> u32 {
        self.0.unwrap_or(DEFAULT_GROUP_USER_LIMIT)
    }
}

/// A directory's sync settings, whole: a write replaces all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncSettings {
    /// False: the directory is not synced (no run starts, nothing changes
    /// access); its users and groups are still provisioned by SCIM.
    pub enabled: bool,
    pub mode: SyncMode,
    /// Kept in continuous mode too, so switching to scheduled finds it.
    pub interval: SyncInterval,
    pub scope: SyncScope,
    pub domains: DomainSelection,
    pub email_new_users: bool,
    pub group_user_limit: GroupUserLimit,
}

impl Default for SyncSettings {
    /// The settings of a directory never configured.
    fn default() -> Self {
        SyncSettings {
            enabled: true,
            mode: SyncMode::Continuous,
            interval: SyncInterval::default(),
            scope: SyncScope::All,
            domains: DomainSelection::All,
            email_new_users: false,
            group_user_limit: GroupUserLimit::default(),
        }
    }
}

impl SyncSettings {
    /// The names of the settings that differ from `before`, as the API
    /// spells them (for the audit event).
    pub fn changed_from(&self, before: &SyncSettings) -> Vec<String> {
        let mut changed = Vec::new();
        if self.mode != before.mode {
            changed.push("mode");
        }
        if self.interval != before.interval {
            changed.push("intervalMinutes");
        }
        if self.scope != before.scope {
            changed.push("scope");
        }
        if self.domains != before.domains {
            changed.push("domains");
        }
        if self.email_new_users != before.email_new_users {
            changed.push("emailNewUsers");
        }
        if self.group_user_limit != before.group_user_limit {
            changed.push("groupUserLimit");
        }
        changed.into_iter().map(str::to_owned).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_is_fifteen_minutes_to_a_week() {
        assert_eq!(SyncInterval::parse(15).unwrap().minutes(), 15);
        assert_eq!(SyncInterval::parse(10_080).unwrap().minutes(), 10_080);
        for bad in [14, 10_081, 0, -1, i64::MAX] {
            assert!(SyncInterval::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(SyncInterval::default().minutes(), 240);
    }

    #[test]
    fn group_user_limit_is_null_or_in_range() {
        assert_eq!(GroupUserLimit::parse(None).unwrap().effective(), 10_000);
        assert_eq!(GroupUserLimit::parse(Some(1)).unwrap().own(), Some(1));
        assert_eq!(
            GroupUserLimit::parse(Some(1_000_000)).unwrap().effective(),
            1_000_000
        );
        for bad in [0, -5, 1_000_001] {
            assert!(GroupUserLimit::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn scope_folds_duplicates_and_caps_groups() {
        let a = Uuid::new_v4();
        let b = Uuid::new_v4();
        assert_eq!(
            SyncScope::groups(&[a, b, a]).unwrap(),
            SyncScope::Groups(vec![a, b])
        );
        let many: Vec<Uuid> = (0..=MAX_SCOPE_GROUPS).map(|_| Uuid::new_v4()).collect();
        assert!(SyncScope::groups(&many).is_err());
        // Counted as sent, as the document's maxItems counts.
        assert!(SyncScope::groups(&vec![a; MAX_SCOPE_GROUPS + 1]).is_err());
        assert_eq!(
            SyncScope::groups(&vec![a; MAX_SCOPE_GROUPS]).unwrap(),
            SyncScope::Groups(vec![a])
        );
    }

    #[test]
    fn domains_are_normalised_and_folded() {
        let DomainSelection::List(names) =
            DomainSelection::list(&["Example.COM.", "example.com", "b.example"]).unwrap()
        else {
            panic!("a list")
        };
        let names: Vec<&str> = names.iter().map(DomainName::as_str).collect();
        assert_eq!(names, ["example.com", "b.example"]);
        assert!(DomainSelection::list(&["not a domain"]).is_err());
    }

    #[test]
    fn changes_are_named_as_the_api_spells_them() {
        let before = SyncSettings::default();
        assert!(before.changed_from(&before).is_empty());
        let after = SyncSettings {
            mode: SyncMode::Scheduled,
            email_new_users: true,
            ..SyncSettings::default()
        };
        assert_eq!(after.changed_from(&before), ["mode", "emailNewUsers"]);
        assert_eq!(SyncMode::parse("scheduled"), Some(SyncMode::Scheduled));
        assert_eq!(SyncMode::parse("Scheduled"), None);
    }
}
