use super::*;
use crate::scim::filter::parse_filter;
use crate::scim::path::parse_attr_path;
use crate::scim::schema::{AttrType, GROUP_RESOURCE, USER_RESOURCE};
use crate::scim::{ScimError, ScimType};

/// A filter (and `sortBy`) as a client sends it, resolved and compiled.
fn compile(
    rt: &'static ResourceTypeDef,
    dialect: Dialect,
    filter: Option<&str>,
    sort_by: Option<&str>,
    descending: bool,
) -> ListQuery {
    let f = filter.map(|f| parse_filter(f).unwrap());
    let sort = sort_by.map(|s| parse_attr_path(s).unwrap());
    let request = ListRequest::resolve(rt, f.as_ref(), sort.as_ref(), descending).unwrap();
    ListQuery::build(dialect, &request)
}

fn users(dialect: Dialect, filter: &str) -> ListQuery {
    compile(&USER_RESOURCE, dialect, Some(filter), None, false)
}

#[test]
fn values_are_bound_never_spliced() {
    for d in [Dialect::Sqlite, Dialect::Postgres] {
        let q = users(d, r#"title eq "x' OR 1=1 --" or userName co "%_""#);
        let (sql, binds) = q.count_sql("users");
        assert!(!sql.contains("OR 1=1"), "{sql}");
        assert!(binds.contains(&Bind::Text("x' or 1=1 --".into())));
        assert!(binds.contains(&Bind::Text("%\\%\\_%".into())), "{binds:?}");
    }
}

#[test]
fn hot_attributes_use_their_indexed_columns() {
    let q = users(Dialect::Sqlite, r#"userName eq "Ada@Example.com""#);
    let (sql, binds) = q.count_sql("users");
    assert!(sql.contains("users.user_name_ci = $2"), "{sql}");
    assert_eq!(binds, vec![Bind::Text("ada@example.com".into())]);
    let (sql, _) = users(Dialect::Postgres, r#"externalId eq "A1""#).count_sql("users");
    assert!(sql.contains("users.external_id = $2"), "{sql}");
    let (sql, _) = users(Dialect::Postgres, r#"emails.value eq "a@x""#).count_sql("users");
    assert!(sql.contains("user_emails"), "{sql}");
    let q = compile(
        &GROUP_RESOURCE,
        Dialect::Sqlite,
        Some(r#"displayName eq "Eng""#),
        None,
        false,
    );
    assert!(q
        .count_sql("groups")
        .0
        .contains("groups.display_name_ci = $2"));
}

/// Only a filter that is exactly `userName eq "…"` becomes a keyed
/// look-up; anything that narrows or widens it stays a list query.
#[test]
fn only_a_bare_user_name_eq_is_a_look_up() {
    for f in [
        r#"userName eq "Ada@Example.com""#,
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "ADA@example.com""#,
    ] {
        assert_eq!(
            users(Dialect::Postgres, f).user_name_eq(),
            Some("ada@example.com"),
            "{f}"
        );
    }
    for f in [
        r#"userName eq "a" and active eq true"#,
        r#"userName eq "a" or userName eq "b""#,
        r#"not (userName eq "a")"#,
        r#"userName sw "a""#,
        r#"userName ne "a""#,
        r#"displayName eq "a""#,
        r#"externalId eq "a""#,
    ] {
        assert_eq!(users(Dialect::Sqlite, f).user_name_eq(), None, "{f}");
    }
    let q = compile(
        &GROUP_RESOURCE,
        Dialect::Sqlite,
        Some(r#"displayName eq "Eng""#),
        None,
        false,
    );
    assert_eq!(q.user_name_eq(), None);
    // The look-up's WHERE clause is what the compiler writes for it.
    for d in [Dialect::Sqlite, Dialect::Postgres] {
        let f = parse_filter(r#"userName eq "Ada@Example.com""#).unwrap();
        let request = ListRequest::resolve(&USER_RESOURCE, Some(&f), None, false).unwrap();
        let mut c = Compiler {
            d,
            rt: &USER_RESOURCE,
            binds: Vec::new(),
        };
        let compiled = c.expr(request.filter().unwrap());
        let q = users(d, r#"userName eq "Ada@Example.com""#);
        assert_eq!(q.where_sql.as_deref(), Some(compiled.as_str()));
        assert_eq!(q.binds, c.binds);
    }
}

#[test]
fn not_treats_absent_values_as_false() {
    let (sql, _) = users(Dialect::Sqlite, r#"not (title eq "x")"#).count_sql("users");
    assert!(sql.contains("NOT COALESCE("), "{sql}");
}

#[test]
fn paging_and_sorting_come_after_the_filter_binds() {
    let q = compile(
        &USER_RESOURCE,
        Dialect::Postgres,
        Some(r#"userName sw "a""#),
        Some("name.familyName"),
        true,
    );
    let page = Page {
        start_index: 11,
        count: 5,
    };
    let (sql, binds) = q.select_sql("users", "id", page);
    assert!(sql.contains("DESC NULLS LAST"), "{sql}");
    assert!(sql.contains("LIMIT $3 OFFSET $4"), "{sql}");
    assert_eq!(binds[1..], [Bind::Int(5), Bind::Int(10)]);
    let first = Page {
        start_index: 1,
        count: 5,
    };
    let (sql, binds) = q.select_sql("users", "id", first);
    assert!(sql.ends_with("LIMIT $3"), "{sql}");
    assert_eq!(binds[1..], [Bind::Int(5)]);
}

/// The store is never handed these: `ListRequest::resolve` refuses them,
/// and its error is the client's.
#[test]
fn unfilterable_paths_are_invalid_filters() {
    for (rt, filter) in [
        (&USER_RESOURCE, r#"nope eq "x""#),
        (&USER_RESOURCE, r#"name eq "x""#),
        (&USER_RESOURCE, r#"active gt true"#),
        (&USER_RESOURCE, r#"meta.created gt "yesterday""#),
        (&GROUP_RESOURCE, r#"members.display eq "x""#),
    ] {
        let f = parse_filter(filter).unwrap();
        let err = ListRequest::resolve(rt, Some(&f), None, false).unwrap_err();
        assert_eq!(
            err.scim_type,
            Some(crate::scim::ScimType::InvalidFilter),
            "{filter}"
        );
    }
}

/// Every path of every schema, with every operator and kind of value,
/// alone and combined, as filters, and every path as `sortBy`.
fn corpus() -> (Vec<String>, Vec<String>) {
    use crate::scim::schema::{all_schemas, COMMON_ATTRIBUTES};

    let mut paths: Vec<String> = ["nope", "nope.value", "meta.nope", "urn:x:y:nope"]
        .map(String::from)
        .to_vec();
    let common = COMMON_ATTRIBUTES.iter().map(|a| (None, a));
    let schemas = all_schemas();
    let declared = schemas
        .iter()
        .flat_map(|s| s.attributes.iter().map(move |a| (Some(s.id), a)));
    let mut complex = Vec::new();
    for (urn, attr) in common.chain(declared) {
        let prefixes = match urn {
            Some(urn) => vec![String::new(), format!("{urn}:")],
            None => vec![String::new()],
        };
        for prefix in prefixes {
            paths.push(format!("{prefix}{}", attr.name));
            for sub in attr.sub_attributes.iter().map(|s| s.name).chain(["nope"]) {
                paths.push(format!("{prefix}{}.{sub}", attr.name));
                if attr.ty == AttrType::Complex {
                    complex.push(format!("{prefix}{}[{sub}", attr.name));
                }
            }
        }
    }
    let ops = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];
    let values = [
        r#""x""#,
        r#""2024-05-01T10:00:00Z""#,
        r#""2b9a1a4e-1f6e-4b8e-9a53-3c4b5d6e7f80""#,
        "1",
        "2.5",
        "true",
        "null",
    ];
    let mut leaves = Vec::new();
    for path in &paths {
        leaves.push(format!("{path} pr"));
        for op in ops {
            leaves.extend(values.iter().map(|v| format!("{path} {op} {v}")));
        }
    }
    for open in &complex {
        leaves.push(format!("{open} pr]"));
        for op in ops {
            leaves.extend(values.iter().map(|v| format!("{open} {op} {v}]")));
        }
        leaves.push(format!(r#"{open} eq "x" and value[type eq "y"]]"#));
    }
    let mut filters = leaves.clone();
    // About 100 × 100 pairs, spread over every kind of leaf.
    for a in leaves.iter().step_by(leaves.len() / 100 + 1) {
        for b in leaves.iter().step_by(leaves.len() / 97 + 1) {
            filters.push(format!("{a} and {b}"));
            filters.push(format!("not ({a}) or {b}"));
        }
    }
    (filters, paths)
}

/// What `ListRequest::resolve` accepts compiles, in both dialects, with a
/// placeholder for each bound value; what it refuses is refused with the
/// errors a client is shown. `ListQuery::build` has no error of its own,
/// so these are every error a filter or `sortBy` can get.
#[test]
fn resolved_requests_compile_and_refusals_are_the_clients_errors() {
    fn placeholders_match(sql: &str, binds: &[Bind]) -> bool {
        (1..=binds.len() + 1).all(|n| sql.contains(&format!("${n}")))
            && !sql.contains(&format!("${}", binds.len() + 2))
    }
    fn refusal(e: &ScimError, scim_type: ScimType, prefix: &str) -> bool {
        e.status == 400 && e.scim_type == Some(scim_type) && e.detail.starts_with(prefix)
    }
    let (filters, paths) = corpus();
    let (mut accepted, mut refused) = (0, 0);
    for rt in [&USER_RESOURCE, &GROUP_RESOURCE] {
        for text in &filters {
            let Ok(f) = parse_filter(text) else {
                continue;
            };
            match ListRequest::resolve(rt, Some(&f), None, false) {
                Ok(request) => {
                    for d in [Dialect::Sqlite, Dialect::Postgres] {
                        let (sql, binds) = ListQuery::build(d, &request).count_sql("t");
                        assert!(
                            placeholders_match(&sql, &binds),
                            "{} {text}: {sql}",
                            rt.name
                        );
                    }
                    accepted += 1;
                }
                Err(e) => {
                    assert!(
                        refusal(&e, ScimType::InvalidFilter, "cannot filter on '"),
                        "{} {text}: {e:?}",
                        rt.name
                    );
                    refused += 1;
                }
            }
        }
        for text in &paths {
            let sort = parse_attr_path(text).unwrap();
            match ListRequest::resolve(rt, None, Some(&sort), true) {
                Ok(request) => {
                    for d in [Dialect::Sqlite, Dialect::Postgres] {
                        let q = ListQuery::build(d, &request);
                        let (sql, _) = q.select_sql(
                            "t",
                            "id",
                            Page {
                                start_index: 1,
                                count: 1,
                            },
                        );
                        assert!(sql.contains(" DESC NULLS LAST, t.created_at"), "{sql}");
                    }
                }
                Err(e) => assert!(
                    refusal(&e, ScimType::InvalidValue, "cannot sort by '"),
                    "{} sortBy={text}: {e:?}",
                    rt.name
                ),
            }
        }
    }
    assert!(accepted > 5_000 && refused > 5_000, "{accepted} {refused}");
}

/// A keyset page: the key follows the filter's values, the limit is last,
/// and the order ends with the key's columns, so the seek and the order
/// are the same index's.
#[test]
fn keyset_pages_seek_after_the_key() {
    let id = Uuid::from_u128(7);
    for d in [Dialect::Sqlite, Dialect::Postgres] {
        let q = users(d, r#"title eq "x""#);
        let (sql, binds) = q.select_after_sql("users", "users.id", (42, id), 11);
        assert!(
            sql.ends_with(
                "AND (users.created_at, users.id) > ($3, $4) \
                 ORDER BY users.created_at, users.id LIMIT $5"
            ),
            "{sql}"
        );
        assert_eq!(&binds[1..], [Bind::Int(42), Bind::Uuid(id), Bind::Int(11)]);
        let plain = compile(&USER_RESOURCE, d, None, None, false);
        let (sql, binds) = plain.select_after_sql("users", "users.id", (1, id), 3);
        assert_eq!(
            sql,
            "SELECT users.id FROM users WHERE users.directory_id = $1 \
             AND (users.created_at, users.id) > ($2, $3) \
             ORDER BY users.created_at, users.id LIMIT $4"
        );
        assert_eq!(binds, [Bind::Int(1), Bind::Uuid(id), Bind::Int(3)]);
    }
}
