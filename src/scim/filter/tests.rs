use super::*;
use crate::scim::error::ScimType;
use serde_json::json;

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn ap(attr: &str) -> AttrPath {
    AttrPath {
        urn: None,
        attr: attr.into(),
        sub_attr: None,
    }
}

fn ap2(attr: &str, sub: &str) -> AttrPath {
    AttrPath {
        urn: None,
        attr: attr.into(),
        sub_attr: Some(sub.into()),
    }
}

fn eq(path: AttrPath, s: &str) -> Filter {
    Filter::Compare {
        path,
        op: CompareOp::Eq,
        value: CompValue::Str(s.into()),
    }
}

fn pr(attr: &str) -> Filter {
    Filter::Present(ap(attr))
}

fn and(a: Filter, b: Filter) -> Filter {
    Filter::And(Box::new(a), Box::new(b))
}

fn or(a: Filter, b: Filter) -> Filter {
    Filter::Or(Box::new(a), Box::new(b))
}

fn p(s: &str) -> Filter {
    match parse_filter(s) {
        Ok(f) => f,
        Err(e) => panic!("{s:?} failed: {e}"),
    }
}

fn perr(s: &str) -> FilterError {
    match parse_filter(s) {
        Ok(f) => panic!("{s:?} unexpectedly parsed as {f:?}"),
        Err(e) => e,
    }
}

#[test]
fn simple_comparisons_all_operators() {
    for (kw, op) in [
        ("eq", CompareOp::Eq),
        ("NE", CompareOp::Ne),
        ("Co", CompareOp::Co),
        ("sw", CompareOp::Sw),
        ("ew", CompareOp::Ew),
        ("gt", CompareOp::Gt),
        ("GE", CompareOp::Ge),
        ("lt", CompareOp::Lt),
        ("le", CompareOp::Le),
    ] {
        assert_eq!(
            p(&format!("userName {kw} \"bjensen\"")),
            Filter::Compare {
                path: ap("userName"),
                op,
                value: CompValue::Str("bjensen".into())
            }
        );
    }
    assert_eq!(p("title pr"), pr("title"));
    assert_eq!(p("title PR"), pr("title"));
}

#[test]
fn literals() {
    let v = |s: &str| match p(&format!("a eq {s}")) {
        Filter::Compare { value, .. } => value,
        f => panic!("{f:?}"),
    };
    assert_eq!(v("true"), CompValue::Bool(true));
    assert_eq!(v("False"), CompValue::Bool(false));
    assert_eq!(v("NULL"), CompValue::Null);
    assert_eq!(v("42"), CompValue::Num(42.into()));
    assert_eq!(v("-7"), CompValue::Num((-7).into()));
    assert_eq!(v("1.5e3").to_json(), json!(1500.0));
    assert_eq!(v("0.25").to_json(), json!(0.25));
    assert_eq!(
        v(r#""a\"b\\c\/d\n\t\r\b\f""#),
        CompValue::Str("a\"b\\c/d\n\t\r\u{8}\u{c}".into())
    );
    assert_eq!(v(r#""\u00e9\u4e2d""#), CompValue::Str("é中".into()));
    assert_eq!(v(r#""\ud83d\ude00""#), CompValue::Str("😀".into()));
    assert_eq!(v(r#""""#), CompValue::Str(String::new()));
    for nul in [r#"title eq "a\u0000b""#, "title eq \"a\0b\""] {
        let err = parse_filter(nul).unwrap_err();
        assert!(err.to_string().contains("U+0000"), "{err}");
    }
}

#[test]
fn bad_literals() {
    assert!(perr(r#"a eq "\ud83d""#).message.contains("surrogate"));
    assert!(perr(r#"a eq "\ude00x""#).message.contains("surrogate"));
    assert!(perr(r#"a eq "\u12""#).message.contains("hex"));
    assert!(perr(r#"a eq "\x""#).message.contains("escape"));
    assert!(perr("a eq 01").message.contains("invalid number"));
    assert!(perr("a eq 1.").message.contains("invalid number"));
    assert!(perr("a eq -").message.contains("invalid number"));
    assert!(perr("a eq 1e").message.contains("invalid number"));
    assert!(perr("a eq 1e999").message.contains("out of range"));
    assert!(perr("a eq 12abc").message.contains("invalid number"));
    assert!(perr("a eq truex").message.contains("expected a value"));
    assert!(perr("a eq bjensen").message.contains("expected a value"));
    assert!(perr("a eq 'x'").message.contains("expected a value"));
}

#[test]
fn paths() {
    assert_eq!(
        p("name.familyName co \"O'Malley\""),
        eq_op(ap2("name", "familyName"), CompareOp::Co, "O'Malley")
    );
    assert_eq!(
        p(&format!("{ENT}:department eq \"X\"")),
        eq(
            AttrPath {
                urn: Some(ENT.into()),
                attr: "department".into(),
                sub_attr: None
            },
            "X"
        )
    );
    assert_eq!(
        p(&format!("{ENT}:manager.value eq \"X\"")),
        eq(
            AttrPath {
                urn: Some(ENT.into()),
                attr: "manager".into(),
                sub_attr: Some("value".into())
            },
            "X"
        )
    );
    assert_eq!(
        p("members.$ref pr"),
        Filter::Present(ap2("members", "$ref"))
    );
    assert_eq!(p("x-y_z9 pr"), pr("x-y_z9"));
    assert!(perr("9abc pr").message.contains("attribute name"));
    assert!(perr("a.b.c pr").message.contains("too many"));
    assert!(perr("a.9 pr").message.contains("sub-attribute"));
    assert!(perr("foo:bar pr").message.contains("urn:"));
    assert!(perr(&format!("{ENT}: pr"))
        .message
        .contains("attribute name"));
}

fn eq_op(path: AttrPath, op: CompareOp, s: &str) -> Filter {
    Filter::Compare {
        path,
        op,
        value: CompValue::Str(s.into()),
    }
}

#[test]
fn precedence_and_associativity() {
    assert_eq!(
        p("a pr or b pr and c pr"),
        or(pr("a"), and(pr("b"), pr("c")))
    );
    assert_eq!(
        p("a pr and b pr or c pr"),
        or(and(pr("a"), pr("b")), pr("c"))
    );
    assert_eq!(
        p("a pr and b pr and c pr"),
        and(and(pr("a"), pr("b")), pr("c"))
    );
    assert_eq!(p("a pr or b pr or c pr"), or(or(pr("a"), pr("b")), pr("c")));
    assert_eq!(
        p("a pr and (b pr or c pr)"),
        and(pr("a"), or(pr("b"), pr("c")))
    );
    assert_eq!(
        p("a pr AND b pr Or c pr"),
        or(and(pr("a"), pr("b")), pr("c"))
    );
}

#[test]
fn not_and_groups() {
    assert_eq!(p("not (a pr)"), Filter::Not(Box::new(pr("a"))));
    assert_eq!(p("NOT(a pr)"), Filter::Not(Box::new(pr("a"))));
    assert_eq!(p("((a pr))"), pr("a"));
    assert_eq!(
        p("a pr and not (b pr or c pr)"),
        and(pr("a"), Filter::Not(Box::new(or(pr("b"), pr("c")))))
    );
    // An attribute may be called "not".
    assert_eq!(p("not pr"), pr("not"));
    assert!(perr("not a pr").message.contains("'(' after 'not'"));
}

#[test]
fn whitespace_is_lenient() {
    assert_eq!(
        p("  a   eq  \"x\"   and\tb pr  "),
        and(eq(ap("a"), "x"), pr("b"))
    );
    assert_eq!(p("( a pr )"), pr("a"));
    assert_eq!(p("a eq\"x\""), eq(ap("a"), "x"));
    assert_eq!(p("a eq \"x\"and b pr"), and(eq(ap("a"), "x"), pr("b")));
}

#[test]
fn value_paths() {
    let f = p(r#"emails[type eq "work" and value co "@example.com"]"#);
    assert_eq!(
        f,
        Filter::ValuePath {
            path: ap("emails"),
            filter: Box::new(and(
                eq(ap("type"), "work"),
                eq_op(ap("value"), CompareOp::Co, "@example.com")
            ))
        }
    );
    let f = p(r#"userType eq "Employee" and emails[type eq "work" or not (primary eq false)]"#);
    assert!(matches!(f, Filter::And(_, r) if matches!(*r, Filter::ValuePath { .. })));
    let f = p(&format!("{ENT}:manager[value eq \"x\"]"));
    assert!(matches!(f, Filter::ValuePath { path, .. } if path.urn.as_deref() == Some(ENT)));
    // Microsoft Entra ID's form, read as the RFC form it means.
    assert_eq!(
        p(r#"emails[type eq "work"].value eq "x""#),
        p(r#"emails[type eq "work" and value eq "x"]"#)
    );
    assert_eq!(
        p(r#"emails[type eq "work"].value pr"#),
        p(r#"emails[type eq "work" and value pr]"#)
    );
    assert!(perr(r#"emails[type eq "work"]. eq "x""#)
        .message
        .contains("sub-attribute name"));
    assert!(perr(r#"emails[type eq "work"].value"#)
        .message
        .contains("comparison operator"));
    assert!(perr(r#"emails[type[value eq "x"] pr]"#)
        .message
        .contains("nested"));
    assert!(perr(r#"emails.type[value eq "x"]"#)
        .message
        .contains("sub-attribute"));
    assert!(perr("emails[]").message.contains("empty value filter"));
}

#[test]
fn error_positions() {
    let e = perr(r#"userName foo "bjensen""#);
    assert_eq!(e.position, 9);
    assert!(e.message.contains("unknown operator 'foo'"));
    assert_eq!(
        e.to_string(),
        "invalid filter at position 9 near 'foo': unknown operator 'foo': expected eq, ne, co, sw, ew, gt, ge, lt, le or pr"
    );

    let e = perr("userName eq");
    assert_eq!(e.position, 11);
    assert!(e.message.contains("expected a value"));
    assert!(e.to_string().contains("(end of input)"));

    let e = perr("userName eq \"abc");
    assert_eq!(e.position, 12);
    assert!(e.message.contains("unterminated string"));

    let e = perr("(a pr");
    assert_eq!(e.position, 5);
    assert!(e.message.contains("expected ')'"));

    let e = perr("a pr)");
    assert_eq!(e.position, 4);
    assert!(e.message.contains("unbalanced ')'"));

    let e = perr("emails[type pr");
    assert_eq!(e.position, 14);
    assert!(e.message.contains("expected ']'"));

    let e = perr("a pr]");
    assert!(e.message.contains("unbalanced ']'"));

    let e = perr("a pr b pr");
    assert_eq!(e.position, 5);
    assert!(e.message.contains("expected 'and', 'or'"));

    let e = perr("");
    assert_eq!(e.position, 0);
    assert!(e.message.contains("empty"));
    let e = perr("   ");
    assert!(e.message.contains("empty"));

    let e = perr("a pr and");
    assert_eq!(e.position, 8);
    assert!(e.message.contains("expected an expression"));

    let e = perr("userName");
    assert!(e.message.contains("comparison operator"));

    // Positions count characters, not bytes.
    let e = perr("a eq \"é\" b");
    assert_eq!(e.position, 9);
}

#[test]
fn error_converts_to_scim_invalid_filter() {
    let e: ScimError = perr("a zz 1").into();
    assert_eq!(e.status, 400);
    assert_eq!(e.scim_type, Some(ScimType::InvalidFilter));
    assert!(e.detail.contains("position 2"));
}

#[test]
fn limits() {
    let deep = format!("{}a pr{}", "(".repeat(32), ")".repeat(32));
    assert_eq!(p(&deep), pr("a"));
    let too_deep = format!("{}a pr{}", "(".repeat(33), ")".repeat(33));
    assert!(perr(&too_deep).message.contains("nested too deeply"));
    let very_deep = format!("{}a pr{}", "not (".repeat(100_000), ")".repeat(100_000));
    assert!(perr(&very_deep).message.contains("nested too deeply"));

    let many = vec!["a pr"; 256].join(" or ");
    assert!(parse_filter(&many).is_ok());
    let too_many = vec!["a pr"; 257].join(" and ");
    assert!(perr(&too_many).message.contains("too many"));
}

#[test]
fn display_is_canonical_and_reparses() {
    for (input, canonical) in [
        ("userName Eq \"x\"", "userName eq \"x\""),
        ("a pr and (b pr or c pr)", "a pr and (b pr or c pr)"),
        ("(a pr or b pr) and c pr", "(a pr or b pr) and c pr"),
        ("a pr or (b pr or c pr)", "a pr or (b pr or c pr)"),
        ("a pr and (b pr and c pr)", "a pr and (b pr and c pr)"),
        ("(a pr and b pr) or c pr", "a pr and b pr or c pr"),
        ("NOT ( a pr )", "not (a pr)"),
        (
            "emails[type eq \"w\\\"k\" and primary eq TRUE]",
            "emails[type eq \"w\\\"k\" and primary eq true]",
        ),
        ("a eq \"\\u0001\\n\"", "a eq \"\\u0001\\n\""),
        ("a gt -1.5", "a gt -1.5"),
        ("a eq null", "a eq null"),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"m\"",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"m\"",
        ),
    ] {
        let f = p(input);
        assert_eq!(f.to_string(), canonical, "{input}");
        assert_eq!(p(canonical), f);
    }
}

// ---- evaluation ----

fn no_exact(_: &AttrPath) -> bool {
    false
}

fn m(filter: &str, v: &Value) -> bool {
    matches(&p(filter), v, &no_exact)
}

#[test]
fn evaluation_basics() {
    let user = json!({
        "userName": "BJensen",
        "active": true,
        "title": "",
        "nickName": null,
        "loginCount": 12,
        "ratio": 0.5,
        "meta": {"lastModified": "2011-05-13T04:42:34Z"},
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "department": "Sales",
            "manager": {"value": "26118915"}
        }
    });
    assert!(m("username eq \"bjensen\"", &user));
    assert!(!m("userName ne \"bjensen\"", &user));
    assert!(m(
        "userName sw \"bj\" and userName ew \"SEN\" and userName co \"jen\"",
        &user
    ));
    assert!(m("name.familyName eq \"jensen\"", &user));
    assert!(m("emails eq \"babs@jensen.org\"", &user));
    assert!(m("emails.value ew \"example.com\"", &user));
    assert!(m("emails.type eq \"home\"", &user));
    assert!(m(
        r#"emails[type eq "work" and value co "@example.com"]"#,
        &user
    ));
    assert!(!m(
        r#"emails[type eq "home" and value co "@example.com"]"#,
        &user
    ));
    assert!(m("emails[primary eq true]", &user));
    // Entra's string booleans match a boolean value, in any case; other
    // strings never do.
    assert!(m("emails[primary eq \"true\"]", &user));
    assert!(m(
        "emails[primary eq \"TRUE\"] and active ne \"False\"",
        &user
    ));
    assert!(!m("emails[primary eq \"false\"]", &user));
    assert!(!m("emails[primary eq \"yes\"]", &user));
    assert!(!m("emails[primary eq \"1\"]", &user));
    assert!(m("active eq true and not (active eq false)", &user));
    assert!(!m("active gt false", &user));
    assert!(m(
        "loginCount gt 11 and loginCount le 12 and loginCount ne 13",
        &user
    ));
    assert!(m("ratio lt 1 and ratio ge 0.5", &user));
    assert!(!m("loginCount co 1", &user));
    assert!(m("meta.lastModified gt \"2011-05-13T04:42:33Z\"", &user));
    assert!(!m("meta.lastModified lt \"2011-05-13T04:42:34Z\"", &user));
    assert!(m(&format!("{ENT}:department eq \"sales\""), &user));
    assert!(m(&format!("{ENT}:manager.value eq \"26118915\""), &user));
    assert!(m(
        "urn:ietf:params:scim:schemas:core:2.0:User:userName pr",
        &user
    ));
    // pr and null
    assert!(m("userName pr and emails pr and name pr", &user));
    assert!(!m("title pr", &user));
    assert!(!m("nickName pr", &user));
    assert!(!m("missing pr", &user));
    assert!(m(
        "nickName eq null and missing eq null and title eq null",
        &user
    ));
    assert!(!m("userName eq null", &user));
    assert!(m("userName ne null", &user));
    assert!(m("missing ne \"x\"", &user));
    assert!(!m("missing eq \"x\"", &user));
    assert!(!m("userName gt null", &user));
    assert!(!m("emails[type pr]", &json!({"emails": [{"type": ""}]})));
    assert!(!m("emails pr", &json!({"emails": []})));
    assert!(!m("a pr", &json!("not an object")));
}

#[test]
fn evaluation_case_exact() {
    let v = json!({"id": "AbC", "emails": [{"value": "X@y", "type": "Work"}]});
    let exact = |p: &AttrPath| p.attr == "id" || p.sub_attr.as_deref() == Some("type");
    assert!(!matches(&p("id eq \"abc\""), &v, &exact));
    assert!(matches(&p("id eq \"AbC\""), &v, &exact));
    assert!(matches(&p("emails[value eq \"x@Y\"]"), &v, &exact));
    assert!(!matches(&p("emails[type eq \"work\"]"), &v, &exact));
    assert!(matches(&p("emails[type eq \"Work\"]"), &v, &exact));
}

#[test]
fn evaluation_numbers() {
    let v = json!({"n": u64::MAX, "neg": -5, "f": 2.5});
    assert!(m("n gt 9223372036854775807", &v));
    assert!(m("n eq 18446744073709551615", &v));
    assert!(m("neg lt 18446744073709551615", &v));
    assert!(m("f gt 2 and f lt 3", &v));
    assert!(m("neg eq -5.0", &v));
    assert!(!m("n eq \"18446744073709551615\"", &v));
}
