//! The resolve step of a list request: a filter's and `sortBy`'s paths,
//! checked against the resource type's schema, become a
//! [`ResolvedFilter`] and a [`SortKey`] that name where each value is kept,
//! what kind of value it is, and the value already checked against that
//! kind. Every error a client gets for a filter or `sortBy` comes from
//! here; the store compiles what this gives without checking it again.

use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::path::AttrPath;
use crate::scim::schema::{AttrType, AttributeDef, ResourceTypeDef};
use crate::scim::ScimError;

/// A filter whose paths are resolved and whose values are checked.
#[derive(Clone, Debug, PartialEq)]
pub enum ResolvedFilter<'a> {
    And(Box<ResolvedFilter<'a>>, Box<ResolvedFilter<'a>>),
    Or(Box<ResolvedFilter<'a>>, Box<ResolvedFilter<'a>>),
    Not(Box<ResolvedFilter<'a>>),
    /// `attr pr` on one value (a string must also not be empty).
    Present(Operand),
    /// `attr op value` on one value.
    Compare(Operand, Comparison<'a>),
    /// `attr pr` on a multi-valued attribute: an element exists (and, when
    /// `element` names its value, that value is not null).
    HasElements {
        list: ElementList,
        element: Option<Operand>,
    },
    /// Some element of `list` satisfies `filter`, whose operands are that
    /// element's: `emails[type eq "work"]`, and `emails.type eq "work"`.
    AnyElement {
        list: ElementList,
        filter: Box<ResolvedFilter<'a>>,
    },
    /// `eq` on a list with an index of its own (`emails.value`, a group's
    /// `members.value`, a user's `groups.value`).
    ListedValue(IndexedList, &'a str),
}

/// A value a filter tests: where it is kept and what kind it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operand {
    pub field: Field,
    pub kind: ValueKind,
}

/// Where a filtered value is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// `id`.
    Id,
    /// `externalId`.
    ExternalId,
    /// `meta.created`.
    Created,
    /// `meta.lastModified`.
    LastModified,
    /// A user's `userName`, kept lowercased.
    UserName,
    /// A user's `active`.
    Active,
    /// `displayName` (a group's is kept lowercased).
    DisplayName,
    /// The resource's document, at these names (an extension's URN first).
    Document(Vec<&'static str>),
    /// An element of a multi-valued attribute: the element itself, or one
    /// of its sub-attributes.
    Element(Option<&'static str>),
    /// A group member's id.
    MemberId,
    /// A group member's type.
    MemberType,
    /// The id of a group a user is a member of.
    GroupId,
}

/// What kind of value a path holds, which decides how it compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// A string, compared as typed when `case_exact`, else ignoring case.
    Text {
        case_exact: bool,
    },
    /// A resource id.
    Id,
    Boolean,
    Number,
    /// `meta.created`, `meta.lastModified`.
    DateTime,
    /// A complex value (e.g. `name`): it can be present, not compared.
    Complex,
}

/// The elements a test on a multi-valued attribute ranges over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElementList {
    /// The array at these names in the resource's document.
    Document(Vec<&'static str>),
    /// A group's members.
    Members,
    /// The groups a user is a member of.
    Groups,
}

/// A list with an index of its own, so `eq` on its values is a look-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexedList {
    /// A user's email addresses, compared ignoring case.
    Emails,
    /// A group's members, by id.
    Members,
    /// A user's groups, by id.
    Groups,
}

/// An operator and a value that fit the kind they are compared with.
#[derive(Clone, Debug, PartialEq)]
pub enum Comparison<'a> {
    /// `eq null` (`equal`) or `ne null`.
    Null {
        equal: bool,
    },
    /// A string: every operator.
    Text {
        op: CompareOp,
        value: &'a str,
    },
    /// An id, `eq` (`equal`) or `ne`: one that is not a UUID matches
    /// nothing (identity providers probe with ids of their own).
    Id {
        equal: bool,
        value: &'a str,
    },
    /// A boolean, `eq` (`equal`) or `ne`.
    Boolean {
        equal: bool,
        value: bool,
    },
    Number {
        op: OrderedOp,
        value: f64,
    },
    /// A dateTime, as microseconds since the epoch.
    DateTime {
        op: OrderedOp,
        micros: i64,
    },
}

/// The operators numbers and dateTimes compare with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderedOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// What `sortBy` sorts by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// `emails`: a user's primary email.
    PrimaryEmail,
    /// A single value that is not complex.
    Value(Operand),
}

/// What a filter path names: one value per resource, or the elements of a
/// multi-valued attribute (`element` is `None` when only their presence
/// can be tested).
enum FilterTarget {
    Single(Operand),
    Elements {
        list: ElementList,
        element: Option<Operand>,
    },
}

fn operand(field: Field, kind: ValueKind) -> Operand {
    Operand { field, kind }
}

fn kind_of(attr: &AttributeDef) -> ValueKind {
    match attr.ty {
        AttrType::Boolean => ValueKind::Boolean,
        AttrType::Integer | AttrType::Decimal => ValueKind::Number,
        _ => ValueKind::Text {
            case_exact: attr.case_exact,
        },
    }
}

fn unsupported(path: &AttrPath, why: &str) -> ScimError {
    ScimError::invalid_filter(format!("cannot filter on '{path}': {why}"))
}

/// Resolves filter and `sortBy` paths against one resource type. The
/// filterable attributes are the common `id`, `externalId`,
/// `meta.created` and `meta.lastModified`, and every attribute of the
/// type's schemas, except that of a group's `members` only `value` and
/// `type`, and of a user's `groups` only `value`, can be filtered.
pub(super) struct Resolver {
    pub(super) rt: &'static ResourceTypeDef,
}

impl Resolver {
    pub(super) fn filter<'a>(&self, f: &'a Filter) -> Result<ResolvedFilter<'a>, ScimError> {
        Ok(match f {
            Filter::And(a, b) => {
                let a = self.filter(a)?;
                ResolvedFilter::And(Box::new(a), Box::new(self.filter(b)?))
            }
            Filter::Or(a, b) => {
                let a = self.filter(a)?;
                ResolvedFilter::Or(Box::new(a), Box::new(self.filter(b)?))
            }
            Filter::Not(a) => ResolvedFilter::Not(Box::new(self.filter(a)?)),
            Filter::Present(path) => match self.target(path)? {
                FilterTarget::Single(operand) => ResolvedFilter::Present(operand),
                FilterTarget::Elements { list, element } => {
                    ResolvedFilter::HasElements { list, element }
                }
            },
            Filter::Compare { path, op, value } => {
                if let (CompareOp::Eq, CompValue::Str(value)) = (op, value) {
                    if let Some(list) = self.indexed_list(path) {
                        return Ok(ResolvedFilter::ListedValue(list, value));
                    }
                }
                match self.target(path)? {
                    FilterTarget::Single(operand) => {
                        let comparison = compare(operand.kind, *op, value, path)?;
                        ResolvedFilter::Compare(operand, comparison)
                    }
                    FilterTarget::Elements {
                        list,
                        element: Some(element),
                    } => {
                        let comparison = compare(element.kind, *op, value, path)?;
                        ResolvedFilter::AnyElement {
                            list,
                            filter: Box::new(ResolvedFilter::Compare(element, comparison)),
                        }
                    }
                    FilterTarget::Elements { element: None, .. } => {
                        return Err(unsupported(
                            path,
                            "a complex attribute needs a sub-attribute",
                        ))
                    }
                }
            }
            Filter::ValuePath { path, filter } => self.value_path(path, filter)?,
        })
    }

    /// `emails.value`, a group's `members.value` or a user's
    /// `groups.value` (or the attribute alone) compared with `eq` to a
    /// string: any string fits, an id that is no UUID matches nothing.
    fn indexed_list(&self, path: &AttrPath) -> Option<IndexedList> {
        let resolved =
            self.rt
                .resolve(path.urn.as_deref(), &path.attr, path.sub_attr.as_deref())?;
        let in_core = resolved
            .schema
            .is_some_and(|s| std::ptr::eq(s, self.rt.schema));
        if !in_core || resolved.sub.is_some_and(|s| s.name != "value") {
            return None;
        }
        match (self.rt.name, resolved.attr.name) {
            ("User", "emails") => Some(IndexedList::Emails),
            ("Group", "members") => Some(IndexedList::Members),
            ("User", "groups") => Some(IndexedList::Groups),
            _ => None,
        }
    }

    /// `sortBy`: a single-valued attribute that is not complex, or
    /// `emails` (a user's primary email).
    pub(super) fn sort_key(&self, path: &AttrPath) -> Result<SortKey, ScimError> {
        let bad = |why: &str| ScimError::invalid_value(format!("cannot sort by '{path}': {why}"));
        let is_emails = self.rt.name == "User"
            && path.attr.eq_ignore_ascii_case("emails")
            && path
                .sub_attr
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case("value"));
        if is_emails {
            return Ok(SortKey::PrimaryEmail);
        }
        match self.target(path).map_err(|e| bad(&e.detail))? {
            FilterTarget::Single(Operand {
                kind: ValueKind::Complex,
                ..
            }) => Err(bad("it is complex; name a sub-attribute")),
            FilterTarget::Single(operand) => Ok(SortKey::Value(operand)),
            FilterTarget::Elements { .. } => Err(bad("it is multi-valued")),
        }
    }

    fn target(&self, path: &AttrPath) -> Result<FilterTarget, ScimError> {
        let resolved = self
            .rt
            .resolve(path.urn.as_deref(), &path.attr, path.sub_attr.as_deref())
            .ok_or_else(|| unsupported(path, "no such attribute"))?;
        let attr = resolved.attr;
        let sub = resolved.sub;
        let is_user = self.rt.name == "User";
        let single = |field, kind| Ok(FilterTarget::Single(operand(field, kind)));
        if resolved.schema.is_none() {
            // Common attributes: id, externalId, meta.
            return match (attr.name, sub.map(|s| s.name)) {
                ("id", None) => single(Field::Id, ValueKind::Id),
                ("externalId", None) => {
                    single(Field::ExternalId, ValueKind::Text { case_exact: true })
                }
                ("meta", Some("created")) => single(Field::Created, ValueKind::DateTime),
                ("meta", Some("lastModified")) => single(Field::LastModified, ValueKind::DateTime),
                _ => Err(unsupported(path, "not a filterable attribute")),
            };
        }
        let in_core = resolved
            .schema
            .is_some_and(|s| std::ptr::eq(s, self.rt.schema));
        let text_ci = ValueKind::Text { case_exact: false };
        if in_core && sub.is_none() {
            match (is_user, attr.name) {
                (true, "userName") => return single(Field::UserName, text_ci),
                (true, "active") => return single(Field::Active, ValueKind::Boolean),
                (_, "displayName") => return single(Field::DisplayName, text_ci),
                _ => {}
            }
        }
        let list_of = |list, field, kind| {
            Ok(FilterTarget::Elements {
                list,
                element: Some(operand(field, kind)),
            })
        };
        if in_core && !is_user && attr.name == "members" {
            return match sub.map(|s| s.name) {
                None | Some("value") => {
                    list_of(ElementList::Members, Field::MemberId, ValueKind::Id)
                }
                Some("type") => list_of(ElementList::Members, Field::MemberType, text_ci),
                _ => Err(unsupported(
                    path,
                    "only members.value and members.type are filterable",
                )),
            };
        }
        if in_core && is_user && attr.name == "groups" {
            return match sub.map(|s| s.name) {
                None | Some("value") => list_of(ElementList::Groups, Field::GroupId, ValueKind::Id),
                _ => Err(unsupported(path, "only groups.value is filterable")),
            };
        }
        // Everything else lives in the document.
        let mut keys: Vec<&'static str> = Vec::new();
        if let Some(schema) = resolved.schema {
            if !std::ptr::eq(schema, self.rt.schema) {
                keys.push(schema.id);
            }
        }
        keys.push(attr.name);
        if attr.ty == AttrType::Complex && sub.is_none() && !attr.multi_valued {
            // `manager eq "x"` means `manager.value eq "x"`, as for a
            // multi-valued attribute below: Entra checks a user's manager
            // that way.
            if let Some(value) = attr.sub("value") {
                keys.push(value.name);
                return single(Field::Document(keys), kind_of(value));
            }
            return single(Field::Document(keys), ValueKind::Complex);
        }
        if attr.multi_valued {
            let element = match sub {
                Some(s) => Some(s),
                // `emails eq "x"` means `emails.value eq "x"`.
                None if attr.ty == AttrType::Complex => attr.sub("value"),
                None => Some(attr),
            };
            let element = element.map(|a| {
                let name = if a.ty == AttrType::Complex || std::ptr::eq(a, attr) {
                    None
                } else {
                    Some(a.name)
                };
                operand(Field::Element(name), kind_of(a))
            });
            return Ok(FilterTarget::Elements {
                list: ElementList::Document(keys),
                element,
            });
        }
        if let Some(s) = sub {
            keys.push(s.name);
        }
        single(Field::Document(keys), kind_of(sub.unwrap_or(attr)))
    }

    /// `emails[type eq "work" and value co "@x"]`.
    fn value_path<'a>(
        &self,
        path: &AttrPath,
        inner: &'a Filter,
    ) -> Result<ResolvedFilter<'a>, ScimError> {
        let resolved = self
            .rt
            .resolve(path.urn.as_deref(), &path.attr, None)
            .ok_or_else(|| unsupported(path, "no such attribute"))?;
        let attr = resolved.attr;
        if !attr.multi_valued || attr.ty != AttrType::Complex {
            return Err(unsupported(
                path,
                "[…] needs a multi-valued complex attribute",
            ));
        }
        let list = if self.rt.name == "Group" && attr.name == "members" {
            ElementList::Members
        } else if self.rt.name == "User" && attr.name == "groups" {
            ElementList::Groups
        } else {
            let mut keys = Vec::new();
            if let Some(schema) = resolved.schema {
                if !std::ptr::eq(schema, self.rt.schema) {
                    keys.push(schema.id);
                }
            }
            keys.push(attr.name);
            ElementList::Document(keys)
        };
        let filter = Box::new(self.element_filter(attr, inner)?);
        Ok(ResolvedFilter::AnyElement { list, filter })
    }

    /// An inner filter of a value path: its paths name sub-attributes of
    /// `attr`.
    fn element_filter<'a>(
        &self,
        attr: &'static AttributeDef,
        f: &'a Filter,
    ) -> Result<ResolvedFilter<'a>, ScimError> {
        Ok(match f {
            Filter::And(a, b) => {
                let a = self.element_filter(attr, a)?;
                ResolvedFilter::And(Box::new(a), Box::new(self.element_filter(attr, b)?))
            }
            Filter::Or(a, b) => {
                let a = self.element_filter(attr, a)?;
                ResolvedFilter::Or(Box::new(a), Box::new(self.element_filter(attr, b)?))
            }
            Filter::Not(a) => ResolvedFilter::Not(Box::new(self.element_filter(attr, a)?)),
            Filter::ValuePath { path, .. } => {
                return Err(unsupported(path, "value filters cannot be nested"))
            }
            Filter::Present(path) | Filter::Compare { path, .. } => {
                let sub = attr
                    .sub(&path.attr)
                    .filter(|_| path.sub_attr.is_none())
                    .ok_or_else(|| unsupported(path, "no such sub-attribute"))?;
                let element = match (self.rt.name, attr.name, sub.name) {
                    ("Group", "members", "value") => operand(Field::MemberId, ValueKind::Id),
                    ("User", "groups", "value") => operand(Field::GroupId, ValueKind::Id),
                    ("Group", "members", "type") => {
                        operand(Field::MemberType, ValueKind::Text { case_exact: false })
                    }
                    ("Group", "members", _) | ("User", "groups", _) => {
                        return Err(unsupported(path, "only value and type are filterable"))
                    }
                    _ => operand(Field::Element(Some(sub.name)), kind_of(sub)),
                };
                match f {
                    Filter::Compare { op, value, .. } => {
                        let comparison = compare(element.kind, *op, value, path)?;
                        ResolvedFilter::Compare(element, comparison)
                    }
                    _ => ResolvedFilter::Present(element),
                }
            }
        })
    }
}

/// `op` and `value`, if they fit a value of `kind`.
fn compare<'a>(
    kind: ValueKind,
    op: CompareOp,
    value: &'a CompValue,
    path: &AttrPath,
) -> Result<Comparison<'a>, ScimError> {
    use CompareOp::*;
    if let CompValue::Null = value {
        return match op {
            Eq | Ne => Ok(Comparison::Null { equal: op == Eq }),
            _ => Err(unsupported(path, "null compares only with eq and ne")),
        };
    }
    let ordered = match op {
        Eq => Some(OrderedOp::Eq),
        Ne => Some(OrderedOp::Ne),
        Gt => Some(OrderedOp::Gt),
        Ge => Some(OrderedOp::Ge),
        Lt => Some(OrderedOp::Lt),
        Le => Some(OrderedOp::Le),
        Co | Sw | Ew => None,
    };
    match kind {
        ValueKind::Complex => Err(unsupported(
            path,
            "a complex attribute needs a sub-attribute",
        )),
        ValueKind::Text { .. } => match value {
            CompValue::Str(s) => Ok(Comparison::Text { op, value: s }),
            _ => Err(unsupported(path, "expects a string value")),
        },
        ValueKind::Id => match (value, op) {
            (CompValue::Str(s), Eq | Ne) => Ok(Comparison::Id {
                equal: op == Eq,
                value: s,
            }),
            (CompValue::Str(_), _) => Err(unsupported(path, "ids compare only with eq and ne")),
            _ => Err(unsupported(path, "expects a string value")),
        },
        // `"True"`/`"false"` in any case count as booleans: Entra sends them.
        ValueKind::Boolean => match (value.as_bool(), op) {
            (Some(b), Eq | Ne) => Ok(Comparison::Boolean {
                equal: op == Eq,
                value: b,
            }),
            (Some(_), _) => Err(unsupported(path, "booleans compare only with eq and ne")),
            (None, _) => Err(unsupported(path, "expects true or false")),
        },
        ValueKind::Number => match (value, ordered) {
            (CompValue::Num(n), Some(op)) => Ok(Comparison::Number {
                op,
                value: n.as_f64().unwrap_or(0.0),
            }),
            (CompValue::Num(_), None) => Err(unsupported(
                path,
                "numbers compare only with eq ne gt ge lt le",
            )),
            _ => Err(unsupported(path, "expects a number")),
        },
        ValueKind::DateTime => {
            let time = match value {
                CompValue::Str(s) => chrono::DateTime::parse_from_rfc3339(s).ok(),
                _ => None,
            };
            match (time, ordered) {
                (None, _) => Err(unsupported(path, "expects an RFC 3339 dateTime string")),
                (Some(t), Some(op)) => Ok(Comparison::DateTime {
                    op,
                    micros: t.timestamp_micros(),
                }),
                (Some(_), None) => Err(unsupported(
                    path,
                    "dateTimes compare only with eq ne gt ge lt le",
                )),
            }
        }
    }
}
