//! Attribute paths (RFC 7644 §3.10, §3.5.2 PATH grammar).
//!
//! Parsing shares the filter lexer (`filter::Parser`) so that attribute
//! names, URN splitting and the filter inside `[…]` follow exactly the same
//! rules in filters and in PATCH paths.

use std::fmt;

use crate::scim::error::ScimError;
use crate::scim::filter::{Filter, FilterError, Parser};

/// `[urn ":"] attr ["." subAttr]`, names as written by the client; resolve
/// them against the schema case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// Schema URN when the path is fully qualified, e.g.
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    pub urn: Option<String>,
    pub attr: String,
    pub sub_attr: Option<String>,
}

/// A PATCH `path`: `attrPath`, or `valuePath ["." subAttr]`, e.g.
/// `members[value eq "x"]` or `emails[type eq "work"].value`.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchPath {
    /// When `filter` is set, `attr.sub_attr` is always `None` and the
    /// sub-attribute after the brackets is in `sub_attr` below.
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    pub sub_attr: Option<String>,
}

fn path_error(e: FilterError) -> ScimError {
    ScimError::invalid_path(e.describe("path"))
}

/// Parse a plain attribute path (`attributes=`/`sortBy=` parameters, keys
/// of a path-less PATCH value). Surrounding whitespace is ignored.
pub fn parse_attr_path(s: &str) -> Result<AttrPath, ScimError> {
    let mut p = Parser::new(s);
    p.skip_ws();
    if p.at_end() {
        return Err(path_error(p.err(p.pos, "empty attribute path")));
    }
    let path = p.parse_attr_path().map_err(path_error)?;
    p.skip_ws();
    p.expect_end("unexpected characters after the attribute path")
        .map_err(path_error)?;
    Ok(path)
}

/// Parse a PATCH operation `path`: `attrPath` or
/// `attrPath "[" valFilter "]" ["." subAttr]`. The filter's attribute paths
/// are relative to the bracketed attribute. Any syntax error, including one
/// inside the brackets, is `invalidPath`.
pub fn parse_patch_path(s: &str) -> Result<PatchPath, ScimError> {
    let mut p = Parser::new(s);
    p.skip_ws();
    if p.at_end() {
        return Err(path_error(p.err(p.pos, "empty path")));
    }
    let start = p.pos;
    let attr = p.parse_attr_path().map_err(path_error)?;
    let mut filter = None;
    let mut sub_attr = None;
    if p.peek() == Some('[') {
        filter = Some(p.parse_brackets(&attr, start).map_err(path_error)?);
        if p.peek() == Some('.') {
            p.pos += 1;
            sub_attr = Some(p.parse_name().map_err(path_error)?);
        }
    }
    p.skip_ws();
    p.expect_end("unexpected characters after the path")
        .map_err(path_error)?;
    Ok(PatchPath {
        attr,
        filter,
        sub_attr,
    })
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Display for PatchPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::error::ScimType;
    use crate::scim::filter::{CompValue, CompareOp};

    const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    fn pp(s: &str) -> PatchPath {
        match parse_patch_path(s) {
            Ok(p) => p,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    fn bad(s: &str) -> ScimError {
        match parse_patch_path(s) {
            Ok(p) => panic!("{s:?} parsed as {p:?}"),
            Err(e) => e,
        }
    }

    fn simple(attr: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            urn: None,
            attr: attr.into(),
            sub_attr: sub.map(Into::into),
        }
    }

    fn eq(attr: &str, v: &str) -> Filter {
        Filter::Compare {
            path: simple(attr, None),
            op: CompareOp::Eq,
            value: CompValue::Str(v.into()),
        }
    }

    #[test]
    fn attr_paths() {
        assert_eq!(parse_attr_path("userName"), Ok(simple("userName", None)));
        assert_eq!(
            parse_attr_path(" name.familyName "),
            Ok(simple("name", Some("familyName")))
        );
        assert_eq!(
            parse_attr_path(&format!("{ENT}:manager.value")),
            Ok(AttrPath {
                urn: Some(ENT.into()),
                attr: "manager".into(),
                sub_attr: Some("value".into())
            })
        );
        for s in ["", "a b", "a.b.c", "1a", "a[b pr]", "x:y", "a)"] {
            let e = match parse_attr_path(s) {
                Ok(p) => panic!("{s:?} parsed as {p:?}"),
                Err(e) => e,
            };
            assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{s:?}");
        }
    }

    #[test]
    fn patch_paths() {
        assert_eq!(
            pp(r#"members[value eq "2819c223"]"#),
            PatchPath {
                attr: simple("members", None),
                filter: Some(eq("value", "2819c223")),
                sub_attr: None
            }
        );
        assert_eq!(
            pp(r#"emails[type eq "work"].value"#),
            PatchPath {
                attr: simple("emails", None),
                filter: Some(eq("type", "work")),
                sub_attr: Some("value".into())
            }
        );
        assert_eq!(
            pp(r#"addresses[type eq "work"].streetAddress"#)
                .sub_attr
                .as_deref(),
            Some("streetAddress")
        );
        assert_eq!(
            pp("name.familyName"),
            PatchPath {
                attr: simple("name", Some("familyName")),
                filter: None,
                sub_attr: None
            }
        );
        let p = pp(&format!("{ENT}:manager.value"));
        assert_eq!(p.attr.urn.as_deref(), Some(ENT));
        assert_eq!(p.attr.attr, "manager");
        assert_eq!(p.attr.sub_attr.as_deref(), Some("value"));
        let p = pp(&format!("{ENT}:department"));
        assert_eq!(p.attr.attr, "department");
        assert_eq!(p.attr.sub_attr, None);
        let p = pp(&format!("{ENT}:emails[type eq \"work\"].value"));
        assert_eq!(p.attr.urn.as_deref(), Some(ENT));
        assert!(p.filter.is_some());
    }

    #[test]
    fn bad_patch_paths() {
        for s in [
            "",
            "emails[type eq \"work\"",
            "emails[type eq]",
            "emails[type eq \"work\"].",
            "emails[type eq \"work\"].value.x",
            "emails[type eq \"work\"]x",
            "emails[type[value pr]]",
            "emails.value[type pr]",
            "name.givenName.x",
            "emails]",
            "emails[]",
            "a b",
        ] {
            let e = bad(s);
            assert_eq!(e.status, 400);
            assert_eq!(e.scim_type, Some(ScimType::InvalidPath), "{s:?}: {e}");
            assert!(
                e.detail.starts_with("invalid path at position"),
                "{}",
                e.detail
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "userName",
            "name.familyName",
            "members[value eq \"2819c223\"]",
            "emails[type eq \"work\" and primary eq true].value",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        ] {
            let p = pp(s);
            assert_eq!(p.to_string(), s);
            assert_eq!(pp(&p.to_string()), p);
        }
        assert_eq!(
            simple("name", Some("givenName")).to_string(),
            "name.givenName"
        );
    }
}
