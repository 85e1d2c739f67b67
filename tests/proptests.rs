//! Property tests for the filter printer/parser and PATCH application: a
//! printed filter re-parses to the same AST, parsers never panic, and PATCH
//! never corrupts a resource (a failed request leaves it untouched). PATCH
//! runs on the server's own schemas and value parser, on documents made by
//! the same parser that stores POST bodies.

// Test and benchmark code: an unexpected value ends the run, and the
// failure is the report (the crate denies these lints elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use scimd::scim::filter::{matches, parse_filter, CompValue, CompareOp, Filter};
use scimd::scim::patch::{apply_patch, parse_patch};
use scimd::scim::path::{parse_attr_path, parse_patch_path, AttrPath};
use scimd::scim::resource::{parse_attribute_value, parse_resource};
use scimd::scim::schema::{
    AttrType, Mutability, ResourceTypeDef, ENTERPRISE_USER_URN as ENT, GROUP_RESOURCE, GROUP_URN,
    USER_RESOURCE, USER_URN as CORE,
};
use serde_json::{json, Map, Value};

// ---- filters ----

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-zA-Z][a-zA-Z0-9_-]{0,6}",
        1 => Just("$ref".to_string()),
        1 => prop::sample::select(vec!["not", "and", "or", "pr", "eq", "true", "null"]).prop_map(String::from),
    ]
}

fn attr_path() -> impl Strategy<Value = AttrPath> {
    (
        prop::option::weighted(0.2, prop::sample::select(vec![ENT, CORE, "urn:x:y"])),
        name(),
        prop::option::weighted(0.3, name()),
    )
        .prop_map(|(urn, attr, sub_attr)| AttrPath {
            urn: urn.map(String::from),
            attr,
            sub_attr,
        })
}

fn comp_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        // U+0000 is refused in filter strings (no store can hold it).
        any::<String>().prop_map(|s| CompValue::Str(s.replace('\0', ""))),
        any::<i64>().prop_map(|n| CompValue::Num(n.into())),
        any::<u64>().prop_map(|n| CompValue::Num(n.into())),
        any::<f64>()
            .prop_filter_map("finite", serde_json::Number::from_f64)
            .prop_map(CompValue::Num),
        any::<bool>().prop_map(CompValue::Bool),
        Just(CompValue::Null),
    ]
}

fn compare_op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(vec![
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ])
}

fn leaf() -> impl Strategy<Value = Filter> {
    prop_oneof![
        (attr_path(), compare_op(), comp_value()).prop_map(|(path, op, value)| Filter::Compare {
            path,
            op,
            value
        }),
        attr_path().prop_map(Filter::Present),
    ]
}

/// Filters without value paths (what may appear inside `[…]`).
fn flat_filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

fn filter() -> impl Strategy<Value = Filter> {
    let value_path = (attr_path(), flat_filter()).prop_map(|(mut path, f)| {
        path.sub_attr = None;
        Filter::ValuePath {
            path,
            filter: Box::new(f),
        }
    });
    prop_oneof![3 => leaf(), 1 => value_path].prop_recursive(5, 48, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn display_reparses_to_same_ast(f in filter()) {
        let printed = f.to_string();
        let reparsed = parse_filter(&printed);
        prop_assert_eq!(reparsed.as_ref().ok(), Some(&f), "printed: {} -> {:?}", printed, reparsed);
        // Printing is a fixed point.
        if let Ok(g) = reparsed {
            prop_assert_eq!(g.to_string(), printed);
        }
    }

    #[test]
    fn matching_never_panics(f in filter(), v in json_value()) {
        let _ = matches(&f, &v, &|p: &AttrPath| p.attr.len().is_multiple_of(2));
    }

    #[test]
    fn parsers_never_panic(s in "\\PC{0,40}") {
        let _ = parse_filter(&s);
        let _ = parse_attr_path(&s);
        let _ = parse_patch_path(&s);
    }

    #[test]
    fn parsers_never_panic_on_filterish_input(
        parts in prop::collection::vec(prop::sample::select(vec![
            "emails", "[", "]", "(", ")", " ", "not", "and", "or", "eq", "pr", "\"x\"", "\"",
            "\\u", "12", "-", ".", ":", "urn:a:b", "value", "true", "$ref", "gt", "1e5", "\\",
        ]), 0..20)
    ) {
        let s: String = parts.concat();
        if let Ok(f) = parse_filter(&s) {
            prop_assert_eq!(parse_filter(&f.to_string()).ok(), Some(f));
        }
        let _ = parse_patch_path(&s);
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(vec!["work", "home", "x@y", "True", "false", "", "m1"])
            .prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "value",
                    "type",
                    "primary",
                    "givenName",
                    "active",
                    "emails",
                    "department",
                    "manager",
                    "userName",
                    "id",
                    "members",
                    "externalId",
                    "displayName",
                    "atlassianAccountId",
                    ENT,
                    "name.givenName",
                ])
                .prop_map(String::from),
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

// ---- PATCH ----

/// Every path PATCH may be given on `rt`, written the ways clients write
/// them: each attribute and sub-attribute, unqualified and under its
/// schema's URN, each schema URN alone, and value filters on the
/// multi-valued complex attributes.
fn schema_paths(rt: &ResourceTypeDef) -> Vec<String> {
    let mut paths = Vec::new();
    for schema in std::iter::once(rt.schema).chain(rt.extensions.iter().map(|(s, _)| *s)) {
        paths.push(schema.id.to_owned());
        for attr in schema.attributes {
            let names = [attr.name.to_owned(), format!("{}:{}", schema.id, attr.name)];
            for name in names {
                for sub in attr.sub_attributes {
                    paths.push(format!("{name}.{}", sub.name));
                }
                if attr.multi_valued && attr.ty == AttrType::Complex {
                    paths.push(format!("{name}[type eq \"work\"]"));
                    paths.push(format!("{name}[type eq \"work\"].value"));
                    paths.push(format!("{name}[value eq \"a@x\"]"));
                }
                paths.push(name);
            }
        }
    }
    paths
}

/// The real user schema's paths, with the multi-valued `emails` and the
/// enterprise extension drawn as often as all the rest.
fn user_paths() -> Vec<String> {
    let mut paths = schema_paths(&USER_RESOURCE);
    let focus = paths
        .iter()
        .filter(|p| p.starts_with("emails") || p.starts_with(ENT) || p.starts_with("manager"))
        .cloned()
        .collect::<Vec<_>>();
    let weight = paths.len() / focus.len().max(1);
    for _ in 0..weight {
        paths.extend(focus.iter().cloned());
    }
    paths.extend(
        [
            "department",
            "emails[type eq \"work\"].value",
            "emails[type eq \"home\" or primary eq true].primary",
            "emails[value co \"@\"]",
            "emails[value eq \"a@x\"].type",
            // invalid ones, rarer
            "groups",
            "id",
            "schemas",
            "nope",
            "name.nope",
            "emails[",
            "urn:ietf:params:scim:schemas:core:2.0:User:department",
        ]
        .map(String::from),
    );
    paths
}

fn group_paths() -> Vec<String> {
    let mut paths = schema_paths(&GROUP_RESOURCE);
    paths.extend(
        [
            "members",
            "members[value eq \"u1\"]",
            "members[value eq \"u1\" or value eq \"u2\"]",
            "externalId",
            // invalid ones
            "members[type eq \"x\"]",
            "nope",
        ]
        .map(String::from),
    );
    paths
}

fn patch_path(paths: Vec<String>) -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(0.9, prop::sample::select(paths))
}

/// Mostly plausible values (strings, email-like objects, lists of them),
/// sometimes arbitrary JSON.
fn patch_value() -> impl Strategy<Value = Value> {
    let email = (
        prop::sample::select(vec!["a@x", "w@x", "h@x", "u1", "u2"]),
        prop::option::of(prop::sample::select(vec!["work", "home", "WORK"])),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(v, t, p)| {
            let mut o = Map::new();
            o.insert("value".into(), Value::from(v));
            if let Some(t) = t {
                o.insert("type".into(), Value::from(t));
            }
            if let Some(p) = p {
                o.insert("primary".into(), Value::from(p));
            }
            Value::Object(o)
        });
    prop_oneof![
        3 => prop::sample::select(vec!["x", "True", "false", "m1", "Eng"]).prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        3 => email.clone(),
        3 => prop::collection::vec(email, 0..3).prop_map(Value::Array),
        2 => json_value(),
        1 => Just(Value::Null),
    ]
}

fn operation(paths: Vec<String>) -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            10 => prop::sample::select(vec!["add", "Replace", "remove", "ADD"]),
            1 => Just("bogus"),
        ],
        patch_path(paths),
        prop::option::weighted(0.95, patch_value()),
    )
        .prop_map(|(op, path, value)| {
            let mut o = Map::new();
            o.insert("op".into(), Value::from(op));
            let is_remove = op == "remove";
            if let Some(p) = path {
                o.insert("path".into(), Value::from(p));
            }
            if let Some(v) = value {
                // Keep most removes value-less, as clients send them.
                if !is_remove || v.is_array() {
                    o.insert("value".into(), v);
                }
            }
            Value::Object(o)
        })
}

/// A stored user: a POST body of the real schema's attributes, some of
/// them left out, made canonical by the parser that stores POST bodies.
fn user_doc() -> impl Strategy<Value = Map<String, Value>> {
    let email = (
        prop::sample::select(vec!["w@x", "h@x", "a@x"]),
        prop::sample::select(vec!["work", "home", "other"]),
    )
        .prop_map(|(value, kind)| json!({"value": value, "type": kind}));
    (
        prop::sample::select(vec!["bjensen", "BJensen@x", "u1"]),
        prop::option::of(prop::sample::select(vec!["Barbara", "Babs"])),
        prop::option::of(any::<bool>()),
        prop::collection::vec(email, 0..3),
        prop::option::of(0..3usize),
        prop::option::of(prop::sample::select(vec!["Sales", "R&D"])),
        prop::option::of(prop::sample::select(vec!["m1", "m2"])),
    )
        .prop_map(
            |(user_name, given, active, mut emails, primary, department, manager)| {
                if let Some(email) = primary.and_then(|i| emails.get_mut(i)) {
                    email["primary"] = json!(true);
                }
                let mut body = json!({"schemas": [CORE], "userName": user_name, "emails": emails});
                if let Some(given) = given {
                    body["name"] = json!({"givenName": given, "familyName": "Jensen"});
                }
                if let Some(active) = active {
                    body["active"] = json!(active);
                }
                if let Some(department) = department {
                    body[ENT]["department"] = json!(department);
                }
                if let Some(manager) = manager {
                    body[ENT]["manager"] = json!({"value": manager});
                }
                parse_resource(&USER_RESOURCE, &body).unwrap_or_else(|e| panic!("{body}: {e}"))
            },
        )
}

fn start_group() -> Map<String, Value> {
    match json!({"schemas": [GROUP_URN], "displayName": "G"}) {
        Value::Object(o) => o,
        _ => Map::new(),
    }
}

/// Whether `doc` holds a value of an attribute or sub-attribute that is
/// readOnly in `rt`: a value a client may not write, which PATCH must
/// never put into a stored document.
fn holds_read_only(rt: &ResourceTypeDef, doc: &Map<String, Value>) -> bool {
    let in_object = |attrs: &[scimd::scim::schema::AttributeDef], obj: &Map<String, Value>| {
        attrs.iter().any(|a| match obj.get(a.name) {
            None => false,
            Some(_) if a.mutability == Mutability::ReadOnly => true,
            Some(v) => {
                let items = match v {
                    Value::Array(items) => items.iter().collect(),
                    v => vec![v],
                };
                items.into_iter().any(|item| {
                    item.as_object().is_some_and(|o| {
                        a.sub_attributes
                            .iter()
                            .any(|s| s.mutability == Mutability::ReadOnly && o.contains_key(s.name))
                    })
                })
            }
        })
    };
    in_object(rt.schema.attributes, doc)
        || rt.extensions.iter().any(|(ext, _)| {
            doc.get(ext.id)
                .and_then(Value::as_object)
                .is_some_and(|o| in_object(ext.attributes, o))
        })
}

fn check(
    rt: &ResourceTypeDef,
    mut doc: Map<String, Value>,
    ops: Vec<Value>,
) -> Result<(), TestCaseError> {
    let body = json!({"Operations": ops});
    let Ok(req) = parse_patch(&body) else {
        return Ok(());
    };
    let before = doc.clone();
    match apply_patch(rt, &mut doc, &req, &parse_attribute_value) {
        Err(e) => {
            prop_assert_eq!(&doc, &before, "failed patch changed the document: {}", e);
            prop_assert_eq!(e.status, 400);
            prop_assert!(e.scim_type.is_some());
        }
        Ok(out) => {
            // Required attributes survive; membership never lands in the doc.
            let required = if rt.name == "Group" {
                "displayName"
            } else {
                "userName"
            };
            prop_assert!(doc.get(required).is_some_and(|v| v.is_string()));
            prop_assert!(
                !doc.contains_key("members")
                    && !doc.contains_key("id")
                    && !doc.contains_key("groups")
            );
            // Each extension object exists exactly when schemas lists it.
            for (ext, _) in rt.extensions {
                let listed = doc
                    .get("schemas")
                    .and_then(Value::as_array)
                    .is_some_and(|s| s.iter().any(|u| u == ext.id));
                let present = doc
                    .get(ext.id)
                    .and_then(Value::as_object)
                    .is_some_and(|o| !o.is_empty());
                prop_assert_eq!(listed, present, "{}", ext.id);
                prop_assert!(doc.get(ext.id).is_none() || present);
            }
            // What the client may not write stays unwritten.
            prop_assert!(!holds_read_only(rt, &doc), "{}", Value::Object(doc.clone()));
            // changed_attributes is exactly what differs.
            let in_extension = |k: &str| rt.extensions.iter().any(|(ext, _)| k.starts_with(ext.id));
            for k in &out.changed_attributes {
                prop_assert!(k == "members" || in_extension(k) || before.get(k) != doc.get(k));
            }
            if out.changed_attributes.is_empty() {
                prop_assert_eq!(&doc, &before);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn user_patch_never_panics_and_is_atomic(
        doc in user_doc(),
        ops in prop::collection::vec(operation(user_paths()), 1..4),
    ) {
        check(&USER_RESOURCE, doc, ops)?;
    }

    #[test]
    fn group_patch_never_panics_and_is_atomic(ops in prop::collection::vec(operation(group_paths()), 1..4)) {
        check(&GROUP_RESOURCE, start_group(), ops)?;
    }
}

// ---- list parameters and Bulk ----

mod list_and_bulk {
    use proptest::prelude::*;
    use scimd::scim::bulk::{parse_request, Schedule, Step};
    use scimd::scim::list::QueryParams;
    use scimd::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};
    use serde_json::{json, Value};

    /// A query string of list parameters with values that are often
    /// almost right.
    fn query_string() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "filter",
            "sortBy",
            "sortOrder",
            "startIndex",
            "count",
            "attributes",
            "excludedAttributes",
            "FILTER",
            "other",
        ]);
        let value = prop_oneof![
            "[a-zA-Z0-9 .:\\[\\]\"()%+,=&-]{0,24}",
            prop::sample::select(vec![
                "userName eq \"a\"",
                "emails[type eq \"work\"]",
                "descending",
                "-1",
                "99999999999999999999",
                "name.familyName",
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
            ])
            .prop_map(String::from),
        ];
        prop::collection::vec((key, value), 0..5).prop_map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        })
    }

    /// Operations whose references follow `rank`: operation `i` refers to
    /// `j` only when `j` ranks lower, so the references have no cycle.
    fn acyclic_request() -> impl Strategy<Value = Value> {
        (1usize..10)
            .prop_flat_map(|n| {
                (
                    Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                    prop::collection::vec(prop::collection::vec(any::<bool>(), n), n),
                    prop::collection::vec(any::<bool>(), n),
                )
            })
            .prop_map(|(rank, refers, in_path)| {
                let n = rank.len();
                let operations: Vec<Value> = (0..n)
                    .map(|i| {
                        let used: Vec<Value> = (0..n)
                            .filter(|&j| refers[i][j] && rank[j] < rank[i])
                            .map(|j| json!({ "value": format!("bulkId:b{j}") }))
                            .collect();
                        match used.split_first() {
                            Some((first, rest)) if in_path[i] => json!({
                                "method": "PATCH",
                                "bulkId": format!("b{i}"),
                                "path": format!("/Groups/{}", first["value"].as_str().unwrap()),
                                "data": { "members": rest },
                            }),
                            _ => json!({
                                "method": "POST",
                                "bulkId": format!("b{i}"),
                                "path": "/Groups",
                                "data": { "members": used },
                            }),
                        }
                    })
                    .collect();
                json!({ "Operations": operations })
            })
    }

    fn mentions_bulk_id(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains("bulkId:"),
            Value::Array(items) => items.iter().any(mentions_bulk_id),
            Value::Object(map) => map.values().any(mentions_bulk_id),
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn list_parsing_never_panics(raw in query_string()) {
            if let Ok(params) = QueryParams::parse(Some(&raw)) {
                let _ = params.list_request(&USER_RESOURCE);
                let _ = params.list_request(&GROUP_RESOURCE);
                let page = params.page(1000);
                prop_assert!(page.start_index >= 1 && (0..=1000).contains(&page.count));
            }
        }

        #[test]
        fn bulk_ids_without_cycles_always_resolve(body in acyclic_request()) {
            let (ops, _) = parse_request(&body, 100).unwrap();
            let mut schedule = Schedule::new(&ops);
            let mut ran = Vec::new();
            while let Some((i, step)) = schedule.next() {
                let Step::Run { path, data } = step else {
                    return Err(TestCaseError::fail(format!("operation {i}: {step:?}")));
                };
                prop_assert!(!path.contains("bulkId:") && !mentions_bulk_id(&data), "{path} {data}");
                // Whatever it refers to has run already.
                let mut referred = data.to_string();
                referred.push_str(&path);
                for j in &ran {
                    referred = referred.replace(&format!("id-b{j}"), "");
                }
                prop_assert!(!referred.contains("id-b"), "operation {i} ran early: {referred}");
                schedule.succeeded(i, &format!("id-b{i}"));
                ran.push(i);
            }
            ran.sort_unstable();
            prop_assert_eq!(ran, (0..ops.len()).collect::<Vec<_>>());
        }

        /// With any references, cycles and unknown ids included, each
        /// operation gets exactly one step, and only one that refers to
        /// nothing unresolved runs.
        #[test]
        fn every_operation_gets_one_step(
            refers in prop::collection::vec(prop::collection::vec(0usize..12, 0..3), 1..10),
            failing in prop::collection::vec(any::<bool>(), 10),
        ) {
            let n = refers.len();
            let operations: Vec<Value> = refers
                .iter()
                .enumerate()
                .map(|(i, used)| json!({
                    "method": "POST",
                    "bulkId": format!("b{i}"),
                    "path": "/Users",
                    "data": used.iter().map(|j| format!("bulkId:b{j}")).collect::<Vec<_>>(),
                }))
                .collect();
            let (ops, _) = parse_request(&json!({ "Operations": operations }), 100).unwrap();
            let mut schedule = Schedule::new(&ops);
            let mut seen = vec![0; n];
            while let Some((i, step)) = schedule.next() {
                seen[i] += 1;
                match step {
                    Step::Run { data, .. } => {
                        prop_assert!(!mentions_bulk_id(&data), "{data}");
                        if failing[i] {
                            schedule.failed(i);
                        } else {
                            schedule.succeeded(i, &format!("id-b{i}"));
                        }
                    }
                    Step::Unresolved { error, .. } => {
                        prop_assert_eq!(error.status, 409);
                        schedule.failed(i);
                    }
                    Step::Circular(error) => prop_assert_eq!(error.status, 409),
                }
            }
            prop_assert_eq!(seen, vec![1; n]);
        }
    }
}
