use super::*;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn user(n: u128, groups: &[u128]) -> UserFacts {
    UserFacts {
        id: id(1000 + n),
        account: Some(id(2000 + n)),
        active: true,
        account_active: true,
        managed_domain: None,
        groups: groups.iter().map(|g| id(*g)).collect(),
    }
}

#[test]
fn nesting_walks_a_cycle_once() {
    // 1 in 2, 2 in 3, 3 in 1.
    let nesting = Nesting::new([(id(2), id(1)), (id(3), id(2)), (id(1), id(3))]);
    let mut above: Vec<Uuid> = nesting.above(id(1)).to_vec();
    above.sort();
    assert_eq!(above, vec![id(1), id(2), id(3)]);
    let graph = GroupGraph {
        children: HashMap::from([
            (id(2), vec![id(1)]),
            (id(3), vec![id(2)]),
            (id(1), vec![id(3)]),
        ]),
        users: HashMap::from([(id(1), vec![0, 1]), (id(3), vec![1, 2])]),
    };
    assert_eq!(graph.below([id(2)]).len(), 3);
    let mut stamp = vec![0; 3];
    assert_eq!(graph.flattened_size(id(2), &mut stamp, 1), 3);
}

#[test]
fn nested_members_receive_the_outer_groups_grants() {
    // Group 10 (granted) holds group 11, which holds user 1.
    let nesting = Nesting::new([(id(10), id(11))]);
    let graph = GroupGraph {
        children: HashMap::from([(id(10), vec![id(11)])]),
        users: HashMap::from([(id(11), vec![0])]),
    };
    let (analysis, sizes) = analyse(&graph, &[id(10), id(11)], Some(&[id(10)]), 1, 10);
    assert!(analysis.applied(id(11)), "nested groups are in scope");
    assert_eq!(sizes[&id(10)], 1);
    let grants = HashMap::from([(id(10), vec![id(99)])]);
    let verdict = user_verdict(
        &user(1, &[11]),
        &nesting,
        &analysis,
        &DomainRule::All,
        &grants,
    );
    assert_eq!(
        verdict,
        UserVerdict::InScope {
            active: true,
            grants: vec![id(99)]
        }
    );
}

#[test]
fn users_outside_the_selected_groups_are_out_of_scope() {
    let nesting = Nesting::default();
    let graph = GroupGraph::default();
    let (analysis, _) = analyse(&graph, &[id(10), id(12)], Some(&[id(10)]), 0, 10);
    let v = user_verdict(
        &user(1, &[12]),
        &nesting,
        &analysis,
        &DomainRule::All,
        &HashMap::new(),
    );
    assert_eq!(v, UserVerdict::OutOfScope);
    let (all, _) = analyse(&graph, &[id(10), id(12)], None, 0, 10);
    let v = user_verdict(
        &user(1, &[]),
        &nesting,
        &all,
        &DomainRule::All,
        &HashMap::new(),
    );
    assert_eq!(
        v,
        UserVerdict::InScope {
            active: true,
            grants: vec![]
        }
    );
}

#[test]
fn a_group_over_the_limit_is_not_applied_and_its_access_kept() {
    let graph = GroupGraph {
        children: HashMap::new(),
        users: HashMap::from([(id(10), vec![0, 1, 2]), (id(11), vec![0])]),
    };
    let (analysis, sizes) = analyse(&graph, &[id(10), id(11)], None, 3, 2);
    assert!(analysis.too_large.contains(&id(10)));
    assert!(analysis.applied(id(11)));
    assert_eq!(sizes[&id(10)], 3);
    let grants = HashMap::from([(id(10), vec![id(90)]), (id(11), vec![id(91)])]);
    let v = user_verdict(
        &user(0, &[10, 11]),
        &Nesting::default(),
        &analysis,
        &DomainRule::All,
        &grants,
    );
    assert_eq!(
        v,
        UserVerdict::InScope {
            active: true,
            grants: vec![id(91)]
        }
    );
    let held = BTreeSet::from([id(90)]);
    let wanted = BTreeSet::from([id(91)]);
    let frozen = HashSet::from([id(90)]);
    assert_eq!(diff(&held, &wanted, &frozen), (vec![id(91)], vec![]));
}

#[test]
fn the_domain_rule_skips_managed_accounts_outside_the_list_but_never_external_ones() {
    let rule = DomainRule::List(HashSet::from(["acme.com".to_owned()]));
    assert!(rule.admits(Some("acme.com")));
    assert!(!rule.admits(Some("other.com")));
    assert!(rule.admits(None));
    assert!(DomainRule::All.admits(Some("other.com")));
    let mut managed = user(1, &[]);
    managed.managed_domain = Some("other.com".to_owned());
    let analysis = Analysis {
        all: true,
        ..Analysis::default()
    };
    let out = desired(
        &[managed, user(2, &[])],
        &Nesting::default(),
        &analysis,
        &rule,
        &HashMap::new(),
    );
    assert_eq!(out.users_skipped_by_domain, 1);
    assert_eq!(out.users_in_scope, 1);
}

#[test]
fn inactive_users_and_accounts_hold_nothing() {
    let grants = HashMap::from([(id(10), vec![id(90)])]);
    let analysis = Analysis {
        all: true,
        in_scope: HashSet::from([id(10)]),
        ..Analysis::default()
    };
    let mut inactive = user(1, &[10]);
    inactive.active = false;
    let mut account_inactive = user(2, &[10]);
    account_inactive.account_active = false;
    let out = desired(
        &[inactive, account_inactive, user(3, &[10])],
        &Nesting::default(),
        &analysis,
        &DomainRule::All,
        &grants,
    );
    assert_eq!(out.accounts[&id(2001)], BTreeSet::new());
    assert_eq!(out.accounts[&id(2002)], BTreeSet::new());
    assert_eq!(out.accounts[&id(2003)], BTreeSet::from([id(90)]));
    assert_eq!(out.active_accounts, BTreeSet::from([id(2003)]));
}

#[test]
fn two_users_of_one_account_hold_the_union_of_their_grants() {
    let grants = HashMap::from([(id(10), vec![id(90)]), (id(11), vec![id(91)])]);
    let analysis = Analysis {
        all: true,
        in_scope: HashSet::from([id(10), id(11)]),
        ..Analysis::default()
    };
    let mut a = user(1, &[10]);
    let mut b = user(2, &[11]);
    b.account = a.account;
    a.active = true;
    let out = desired(
        &[a, b],
        &Nesting::default(),
        &analysis,
        &DomainRule::All,
        &grants,
    );
    assert_eq!(out.accounts[&id(2001)], BTreeSet::from([id(90), id(91)]));
}
