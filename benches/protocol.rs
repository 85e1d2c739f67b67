//! Micro-benchmarks of the pure protocol code (`scimd::scim`): filter
//! parsing, PATCH parsing and application, user (de)serialisation and
//! projection. Nothing here touches the network or a database.
//!
//! ```sh
//! cargo bench --bench protocol
//! cargo bench --bench protocol -- --warm-up-time 1 --measurement-time 2  # quick
//! cargo bench --bench protocol -- patch/                                 # one group
//! ```

// Test and benchmark code: an unexpected value ends the run, and the
// failure is the report (the crate denies these lints elsewhere).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion};
use scimd::scim::filter::parse_filter;
use scimd::scim::patch::{apply_patch, parse_patch};
use scimd::scim::resource::{parse_attr_list, parse_attribute_value, parse_resource, project};
use scimd::scim::schema::{ResourceTypeDef, GROUP_RESOURCE, USER_RESOURCE};
use serde_json::{json, Map, Value};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A user as Microsoft Entra ID provisions one (POST body), with the
/// enterprise extension.
fn entra_user_body() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            ENT
        ],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c12aed4b",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com",
        "active": true,
        "displayName": "Barbara Jensen",
        "title": "Senior Tour Guide",
        "userType": "Employee",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "name": {
            "formatted": "Ms. Barbara J Jensen III",
            "familyName": "Jensen",
            "givenName": "Barbara",
            "middleName": "Jane",
            "honorificPrefix": "Ms.",
            "honorificSuffix": "III"
        },
        "emails": [
            {"primary": true, "type": "work", "value": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1@contoso.com"},
            {"type": "home", "value": "babs@jensen.org"}
        ],
        "phoneNumbers": [
            {"type": "work", "value": "+1 425 555 0100"},
            {"type": "mobile", "value": "+1 425 555 0199"},
            {"type": "fax", "value": "+1 425 555 0150"}
        ],
        "addresses": [{
            "type": "work",
            "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
            "streetAddress": "100 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "US",
            "primary": true
        }],
        "roles": [{"value": "guide", "display": "Tour guide", "primary": true}],
        ENT: {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "organization": "Universal Studios",
            "division": "Theme Park",
            "department": "Tour Operations",
            "manager": {"value": "26118915"}
        }
    })
}

/// The stored (canonical) form of the Entra user.
fn entra_user_doc() -> Map<String, Value> {
    parse_resource(&USER_RESOURCE, &entra_user_body()).expect("benchmark user parses")
}

/// The user as `GET /Users/{id}` renders it: the stored document plus
/// `id`, `groups` and `meta`.
fn rendered_user() -> Value {
    let mut doc = entra_user_doc();
    let base = "https://scim.example.com/scim/directory/7d0e5d8a-52a4-4b7b-8d4f-f1c1f1d3b0a7";
    let id = "2819c223-7f76-453a-919d-413861904646";
    doc.insert("id".into(), json!(id));
    let groups: Vec<Value> = (0..5)
        .map(|i| {
            let gid = format!("e9e30dba-f08f-4109-8486-d5c6a33166{i:02}");
            json!({
                "value": gid,
                "$ref": format!("{base}/Groups/{gid}"),
                "display": format!("Group {i}"),
                "type": "direct"
            })
        })
        .collect();
    doc.insert("groups".into(), Value::Array(groups));
    doc.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": "2024-03-01T09:12:44.123Z",
            "lastModified": "2024-05-13T04:42:34.456Z",
            "location": format!("{base}/Users/{id}"),
            "version": "W/\"7\""
        }),
    );
    Value::Object(doc)
}

fn bench_filters(c: &mut Criterion) {
    let mut g = c.benchmark_group("filter");
    let cases = [
        ("parse_simple", r#"userName eq "bjensen@example.com""#.to_string()),
        (
            "parse_complex",
            r#"(userType eq "Employee" or userType eq "Contractor") and not (active eq false) and (title sw "Senior" or name.familyName co "jen") and meta.lastModified gt "2024-01-01T00:00:00Z""#
                .to_string(),
        ),
        (
            "parse_value_path",
            r#"emails[type eq "work" and value co "@example.com"] or addresses[type eq "work" and locality eq "Hollywood"]"#
                .to_string(),
        ),
        (
            "parse_urn",
            format!(r#"{ENT}:manager.value eq "26118915" and {ENT}:department eq "Tour Operations""#),
        ),
    ];
    for (name, text) in &cases {
        parse_filter(text).expect("benchmark filter parses");
        g.bench_function(*name, |b| b.iter(|| parse_filter(black_box(text))));
    }
    g.finish();
}

/// `parse_patch` + `apply_patch` on a copy of `doc`, as the PATCH handler
/// runs them (the copy is made outside the timed part).
fn patch_case(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    rt: &'static ResourceTypeDef,
    doc: &Map<String, Value>,
    body: &Value,
) {
    {
        let mut d = doc.clone();
        let req = parse_patch(body).expect("benchmark PATCH parses");
        apply_patch(rt, &mut d, &req, &parse_attribute_value).expect("benchmark PATCH applies");
    }
    g.bench_function(name, |b| {
        b.iter_batched_ref(
            || doc.clone(),
            |d| {
                let req = parse_patch(black_box(body)).expect("parses");
                apply_patch(rt, d, &req, &parse_attribute_value).expect("applies")
            },
            BatchSize::SmallInput,
        )
    });
}

fn bench_patch(c: &mut Criterion) {
    let mut g = c.benchmark_group("patch");
    let user = entra_user_doc();

    // Entra disabling a user: booleans arrive as "False".
    let entra = json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
    });
    patch_case(
        &mut g,
        "entra_replace_active",
        &USER_RESOURCE,
        &user,
        &entra,
    );

    // Okta's profile update: one path-less replace whose value is an object
    // of attributes, echoing id and schemas back.
    let okta = json!({
        "schemas": [PATCH_OP],
        "Operations": [{
            "op": "replace",
            "value": {
                "id": "2819c223-7f76-453a-919d-413861904646",
                "active": false,
                "displayName": "Barbara Jensen-Smith",
                "name": {"familyName": "Jensen-Smith", "givenName": "Barbara"},
                "title": "Lead Tour Guide",
                ENT: {"department": "Guest Experience"}
            }
        }]
    });
    patch_case(&mut g, "okta_pathless_object", &USER_RESOURCE, &user, &okta);

    // A bulk membership add: 10,000 members in one operation.
    let group = parse_resource(&GROUP_RESOURCE, &json!({"displayName": "Everyone"}))
        .expect("benchmark group parses");
    let members: Vec<Value> = (0..10_000)
        .map(|i| json!({"value": format!("00000000-0000-4000-8000-{i:012}"), "type": "User"}))
        .collect();
    let add = json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": members}]
    });
    patch_case(&mut g, "add_10k_members", &GROUP_RESOURCE, &group, &add);

    // The same including decoding the request body from JSON text.
    let add_text = serde_json::to_string(&add).expect("serialises");
    g.bench_function("add_10k_members_from_json", |b| {
        b.iter_batched_ref(
            || group.clone(),
            |d| {
                let body: Value = serde_json::from_str(black_box(&add_text)).expect("decodes");
                let req = parse_patch(&body).expect("parses");
                apply_patch(&GROUP_RESOURCE, d, &req, &parse_attribute_value).expect("applies")
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn bench_user(c: &mut Criterion) {
    let mut g = c.benchmark_group("user");
    let body = entra_user_body();
    g.bench_function("parse_resource_enterprise", |b| {
        b.iter(|| parse_resource(&USER_RESOURCE, black_box(&body)))
    });
    let rendered = rendered_user();
    g.bench_function("to_string_rendered", |b| {
        b.iter(|| serde_json::to_string(black_box(&rendered)))
    });
    g.finish();
}

fn bench_projection(c: &mut Criterion) {
    let mut g = c.benchmark_group("project");
    let rendered = rendered_user();
    let attributes = parse_attr_list(&format!(
        "userName,name.familyName,emails.value,{ENT}:manager"
    ))
    .expect("attributes parse");
    let excluded = parse_attr_list("groups,addresses,phoneNumbers.type").expect("excluded parse");
    g.bench_function("attributes", |b| {
        b.iter(|| project(&USER_RESOURCE, black_box(&rendered), &attributes, &[]))
    });
    g.bench_function("excluded_attributes", |b| {
        b.iter(|| project(&USER_RESOURCE, black_box(&rendered), &[], &excluded))
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_filters,
    bench_patch,
    bench_user,
    bench_projection
);
criterion_main!(benches);
