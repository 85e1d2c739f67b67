//! What a sync gives: which groups of a directory are in scope and applied,
//! and which of the grants on them each account holds. Pure: the store
//! loads a directory's contents (all of it for a run, the part one change
//! touches for the continuous path) and both call the same functions here,
//! so a change applied as it comes gives what a run would.
//!
//! Groups may be members of groups. Membership stays nested in SCIM; for
//! access it is flattened: a user in a group nested (at any depth) in a
//! granted group receives that group's grants. A cycle in the nesting
//! (A in B, B in A) is walked once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::rc::Rc;

use uuid::Uuid;

/// A grant on one of the directory's groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub id: Uuid,
    pub group_id: Uuid,
    pub site_id: Uuid,
    pub product_key: String,
    pub role: String,
}

/// A SCIM user as the engine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFacts {
    pub id: Uuid,
    /// None: the user is linked to no account (written around SCIM).
    pub account: Option<Uuid>,
    pub active: bool,
    pub account_active: bool,
    /// The account's email domain when the organisation verified it (the
    /// account is managed); None for an external account, which the domain
    /// rule always lets through.
    pub managed_domain: Option<String>,
    /// The groups that hold the user directly.
    pub groups: Vec<Uuid>,
}

/// Which domains' managed accounts the directory syncs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainRule {
    /// Every verified domain of the organisation.
    All,
    /// These (normalised) names.
    List(HashSet<String>),
}

impl DomainRule {
    /// External accounts always sync; managed ones when their domain is
    /// selected.
    pub fn admits(&self, managed_domain: Option<&str>) -> bool {
        match (self, managed_domain) {
            (_, None) | (DomainRule::All, Some(_)) => true,
            (DomainRule::List(names), Some(domain)) => names.contains(domain),
        }
    }
}

/// Groups as members of groups, upwards: for each group, the groups that
/// hold it.
#[derive(Clone, Debug, Default)]
pub struct Nesting {
    parents: HashMap<Uuid, Vec<Uuid>>,
    /// Each group with every group above it (itself included), worked out
    /// once per group.
    closures: std::cell::RefCell<HashMap<Uuid, Rc<[Uuid]>>>,
}

impl Nesting {
    /// From `(group, member group)` pairs.
    pub fn new(edges: impl IntoIterator<Item = (Uuid, Uuid)>) -> Nesting {
        let mut parents: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (group, member) in edges {
            parents.entry(member).or_default().push(group);
        }
        Nesting {
            parents,
            closures: Default::default(),
        }
    }

    /// `group` and every group that holds it, at any depth, each once.
    pub fn above(&self, group: Uuid) -> Rc<[Uuid]> {
        if let Some(found) = self.closures.borrow().get(&group) {
            return found.clone();
        }
        let mut seen = HashSet::from([group]);
        let mut out = vec![group];
        let mut next = 0;
        while next < out.len() {
            if let Some(parents) = self.parents.get(&out[next]) {
                for p in parents {
                    if seen.insert(*p) {
                        out.push(*p);
                    }
                }
            }
            next += 1;
        }
        let out: Rc<[Uuid]> = out.into();
        self.closures.borrow_mut().insert(group, out.clone());
        out
    }
}

/// What a run decided about the directory's groups; the continuous path
/// reads it back as the last run stored it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Every group and user of the directory is in scope.
    pub all: bool,
    /// The groups in scope: the selected ones and the groups nested in
    /// them, or all of them.
    pub in_scope: HashSet<Uuid>,
    /// The groups in scope whose flattened size is over the limit: their
    /// grants' access is left as it was.
    pub too_large: HashSet<Uuid>,
}

impl Analysis {
    pub fn applied(&self, group: Uuid) -> bool {
        self.in_scope.contains(&group) && !self.too_large.contains(&group)
    }
}

/// The directory's groups and their direct members, for working out scope
/// and sizes in a run.
#[derive(Debug, Default)]
pub struct GroupGraph {
    /// Member groups of each group.
    pub children: HashMap<Uuid, Vec<Uuid>>,
    /// Member users of each group (dense user indexes).
    pub users: HashMap<Uuid, Vec<u32>>,
}

impl GroupGraph {
    /// `start` and every group nested in them, each once.
    pub fn below(&self, start: impl IntoIterator<Item = Uuid>) -> HashSet<Uuid> {
        let mut seen: HashSet<Uuid> = HashSet::new();
        let mut stack: Vec<Uuid> = start.into_iter().collect();
        while let Some(g) = stack.pop() {
            if seen.insert(g) {
                if let Some(children) = self.children.get(&g) {
                    stack.extend(children.iter().copied().filter(|c| !seen.contains(c)));
                }
            }
        }
        seen
    }

    /// Distinct users in `group` and the groups nested in it. `stamp` is
    /// scratch space of one slot per user, reused across calls (`mark`
    /// must differ between calls), so sizing every group costs the sum of
    /// their sizes, not a set each.
    pub fn flattened_size(&self, group: Uuid, stamp: &mut [u32], mark: u32) -> u64 {
        let mut size = 0;
        for g in self.below([group]) {
            for &u in self.users.get(&g).map(Vec::as_slice).unwrap_or(&[]) {
                let slot = &mut stamp[u as usize];
                if *slot != mark {
                    *slot = mark;
                    size += 1;
                }
            }
        }
        size
    }
}

/// A group in scope whose flattened size is over the limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooLarge {
    pub group_id: Uuid,
    pub size: u64,
}

/// The scope of a run: `selected` None for all groups, and the sizes of
/// the groups in scope checked against `limit`.
pub fn analyse(
    graph: &GroupGraph,
    all_groups: &[Uuid],
    selected: Option<&[Uuid]>,
    user_count: usize,
    limit: u64,
) -> (Analysis, HashMap<Uuid, u64>) {
    let in_scope: HashSet<Uuid> = match selected {
        None => all_groups.iter().copied().collect(),
        Some(groups) => graph.below(groups.iter().copied()),
    };
    let mut stamp = vec![0u32; user_count];
    let mut sizes = HashMap::with_capacity(in_scope.len());
    let mut too_large = HashSet::new();
    // Sorted, so the marks (and the scratch reuse) do not depend on hashing.
    let mut ordered: Vec<Uuid> = in_scope.iter().copied().collect();
    ordered.sort();
    for (i, g) in ordered.into_iter().enumerate() {
        let size = graph.flattened_size(g, &mut stamp, i as u32 + 1);
        if size > limit {
            too_large.insert(g);
        }
        sizes.insert(g, size);
    }
    (
        Analysis {
            all: selected.is_none(),
            in_scope,
            too_large,
        },
        sizes,
    )
}

/// What one user brings its account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserVerdict {
    /// Not in any group in scope (scope by groups).
    OutOfScope,
    /// In scope, but a managed account outside the selected domains: no
    /// access, reported.
    SkippedByDomain,
    /// In scope; access through these grants (none when the user or its
    /// account is inactive, or it is in no applied granted group).
    InScope { active: bool, grants: Vec<Uuid> },
}

pub fn user_verdict(
    user: &UserFacts,
    nesting: &Nesting,
    analysis: &Analysis,
    domains: &DomainRule,
    grants_by_group: &HashMap<Uuid, Vec<Uuid>>,
) -> UserVerdict {
    let mut above: Vec<Uuid> = Vec::new();
    for g in &user.groups {
        above.extend(nesting.above(*g).iter().copied());
    }
    above.sort_unstable();
    above.dedup();
    if !analysis.all && !above.iter().any(|g| analysis.in_scope.contains(g)) {
        return UserVerdict::OutOfScope;
    }
    if !domains.admits(user.managed_domain.as_deref()) {
        return UserVerdict::SkippedByDomain;
    }
    let active = user.active && user.account_active && user.account.is_some();
    let mut grants = Vec::new();
    if active {
        for g in above.iter().filter(|g| analysis.applied(**g)) {
            if let Some(ids) = grants_by_group.get(g) {
                grants.extend(ids.iter().copied());
            }
        }
        grants.sort_unstable();
        grants.dedup();
    }
    UserVerdict::InScope { active, grants }
}

/// Each account's access from this directory, and what the directory's
/// users came to.
#[derive(Debug, Default)]
pub struct Desired {
    /// Every account with a user in scope, with the grants it should hold
    /// (possibly none).
    pub accounts: BTreeMap<Uuid, BTreeSet<Uuid>>,
    /// In scope and active: the accounts a run provisions.
    pub active_accounts: BTreeSet<Uuid>,
    pub users_in_scope: u64,
    pub users_skipped_by_domain: u64,
}

pub fn desired(
    users: &[UserFacts],
    nesting: &Nesting,
    analysis: &Analysis,
    domains: &DomainRule,
    grants_by_group: &HashMap<Uuid, Vec<Uuid>>,
) -> Desired {
    let mut out = Desired::default();
    for user in users {
        match user_verdict(user, nesting, analysis, domains, grants_by_group) {
            UserVerdict::OutOfScope => {}
            UserVerdict::SkippedByDomain => out.users_skipped_by_domain += 1,
            UserVerdict::InScope { active, grants } => {
                out.users_in_scope += 1;
                if let Some(account) = user.account {
                    out.accounts.entry(account).or_default().extend(grants);
                    if active {
                        out.active_accounts.insert(account);
                    }
                }
            }
        }
    }
    out
}

/// Each group's grants, by id.
pub fn grants_by_group(grants: &[Grant]) -> HashMap<Uuid, Vec<Uuid>> {
    let mut by_group: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for g in grants {
        by_group.entry(g.group_id).or_default().push(g.id);
    }
    by_group
}

/// The grants of groups over the limit, whose access is left as it was.
pub fn frozen(grants: &[Grant], analysis: &Analysis) -> HashSet<Uuid> {
    grants
        .iter()
        .filter(|g| analysis.too_large.contains(&g.group_id))
        .map(|g| g.id)
        .collect()
}

/// Whether each linked account is active.
pub fn account_active(users: &[UserFacts]) -> HashMap<Uuid, bool> {
    users
        .iter()
        .filter_map(|u| u.account.map(|a| (a, u.account_active)))
        .collect()
}

/// One account's change: grants to add and to remove. Grants in `frozen`
/// (those of groups over the limit) are never removed.
pub fn diff(
    held: &BTreeSet<Uuid>,
    wanted: &BTreeSet<Uuid>,
    frozen: &HashSet<Uuid>,
) -> (Vec<Uuid>, Vec<Uuid>) {
    let add = wanted
        .iter()
        .filter(|g| !held.contains(g) && !frozen.contains(g))
        .copied()
        .collect();
    let remove = held
        .iter()
        .filter(|g| !wanted.contains(g) && !frozen.contains(g))
        .copied()
        .collect();
    (add, remove)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
