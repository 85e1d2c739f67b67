//! SCIM filter AST -> parameterised SQL for either dialect.
//!
//! Values are always bound, never spliced: the only text this module puts
//! into SQL is column names and schema-defined attribute names (static
//! strings from `scim::schema`), never anything the client typed. Hot
//! attributes map to indexed columns (`userName` to the lowercased shadow
//! column, so `userName eq` is an index lookup); the rest read the JSON
//! document with the dialect's JSON functions, so no filter ever loads a
//! directory into memory.

use uuid::Uuid;

use super::Dialect;
use crate::scim::filter::{CompValue, CompareOp, Filter};
use crate::scim::list::ListRequest;
use crate::scim::path::AttrPath;
use crate::scim::schema::{AttrType, ResourceTypeDef};
use crate::scim::ScimError;

/// A value bound to a placeholder.
#[derive(Clone, Debug, PartialEq)]
pub enum Bind {
    Text(String),
    Uuid(Uuid),
    Int(i64),
    Float(f64),
    Bool(bool),
}

/// A listed row's place in the default order: creation time, then id.
pub(crate) trait ListKey {
    fn list_key(&self) -> (i64, uuid::Uuid);
}

/// `startIndex` and `count`: the protocol's page, which the compiled SQL
/// pages by.
pub use crate::scim::list::Page;

/// A list query over one directory's rows: the WHERE clause compiled from a
/// filter and the ORDER BY from `sortBy`. Placeholder `$1` is always the
/// directory id; the filter's own values follow from `$2`.
#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    where_sql: Option<String>,
    binds: Vec<Bind>,
    /// `expr ASC|DESC NULLS LAST`, when sorted by an attribute.
    order_by: Option<String>,
    /// The lowercased value when the filter is exactly `userName eq "…"`,
    /// the look-up identity providers make before every create: it can
    /// be answered by a keyed look-up instead of a list query.
    user_name_eq: Option<String>,
}

impl ListQuery {
    /// The SQL for a resolved list request, in this store's dialect.
    pub fn build(dialect: Dialect, request: &ListRequest<'_>) -> Result<Self, ScimError> {
        Self::compile(
            request.resource_type(),
            dialect,
            request.filter(),
            request.sort_by(),
            request.descending(),
        )
    }

    /// Compiles a filter and `sortBy`. Paths [`ListRequest::resolve`]
    /// accepts always compile; this refuses the others with the same
    /// errors.
    fn compile(
        rt: &'static ResourceTypeDef,
        dialect: Dialect,
        filter: Option<&Filter>,
        sort_by: Option<&AttrPath>,
        descending: bool,
    ) -> Result<Self, ScimError> {
        let mut c = Compiler {
            d: dialect,
            rt,
            binds: Vec::new(),
        };
        let user_name_eq = match filter {
            Some(Filter::Compare {
                path,
                op: CompareOp::Eq,
                value: CompValue::Str(value),
            }) if matches!(
                c.target(path)?,
                Target::Scalar { expr, .. } if expr == "users.user_name_ci"
            ) =>
            {
                Some(value.to_lowercase())
            }
            _ => None,
        };
        let where_sql = match &user_name_eq {
            // What `expr` compiles it to (a unit test holds them equal),
            // without resolving the path a second time.
            Some(name) => Some(format!(
                "users.user_name_ci = {}",
                c.bind(Bind::Text(name.clone()))
            )),
            None => filter.map(|f| c.expr(f)).transpose()?,
        };
        let order_by = sort_by
            .map(|path| c.sort_key(path))
            .transpose()?
            .map(|key| {
                let dir = if descending { "DESC" } else { "ASC" };
                // Absent values sort last either way (RFC 7644 §3.4.2.3).
                format!("{key} {dir} NULLS LAST")
            });
        Ok(ListQuery {
            where_sql,
            binds: c.binds,
            order_by,
            user_name_eq,
        })
    }

    /// The lowercased userName, when the filter is exactly `userName eq`.
    pub fn user_name_eq(&self) -> Option<&str> {
        self.user_name_eq.as_deref()
    }

    /// The whole directory in its default order: pages can seek from
    /// remembered positions.
    pub fn is_plain(&self) -> bool {
        self.where_sql.is_none() && self.order_by.is_none()
    }

    fn where_clause(&self, table: &str) -> String {
        match &self.where_sql {
            Some(w) => format!("{table}.directory_id = $1 AND ({w})"),
            None => format!("{table}.directory_id = $1"),
        }
    }

    pub fn count_sql(&self, table: &str) -> (String, Vec<Bind>) {
        (
            format!(
                "SELECT COUNT(*) FROM {table} WHERE {}",
                self.where_clause(table)
            ),
            self.binds.clone(),
        )
    }

    /// One page. Ties (and unsorted lists) fall back to creation order and
    /// then id, so paging is stable.
    ///
    /// A first page has no `OFFSET`: PostgreSQL prices a generic plan with
    /// an unknown offset above the custom one, and so would plan every
    /// execution of the statement again (a `userName eq` look-up spent
    /// five times as long planning as running).
    pub fn select_sql(&self, table: &str, columns: &str, page: Page) -> (String, Vec<Bind>) {
        let mut binds = self.binds.clone();
        let limit = binds.len() + 2;
        binds.push(Bind::Int(page.count));
        let offset = page.start_index.max(1) - 1;
        let offset_sql = if offset > 0 {
            binds.push(Bind::Int(offset));
            format!(" OFFSET ${}", limit + 1)
        } else {
            String::new()
        };
        let sort = match &self.order_by {
            Some(key) => format!("{key}, "),
            None => String::new(),
        };
        (
            format!(
                "SELECT {columns} FROM {table} WHERE {} ORDER BY {sort}{table}.created_at, {table}.id \
                 LIMIT ${limit}{offset_sql}",
                self.where_clause(table),
            ),
            binds,
        )
    }
}

/// How a filtered value is stored, which decides how it compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Text compared case-insensitively; `lowered` when the stored value is
    /// already lowercase (shadow column), so indexes are usable.
    TextCi {
        lowered: bool,
    },
    TextExact,
    Uuid,
    /// A boolean column.
    Bool,
    /// A boolean inside the JSON document (1/0 on SQLite, text on PostgreSQL).
    JsonBool,
    Number,
    /// Microseconds since the epoch, compared with RFC 3339 literals.
    Micros,
    /// A complex value (e.g. `name`): it can be present, not compared.
    Complex,
}

/// Where a filtered attribute lives.
enum Target {
    /// A scalar SQL expression (a column or a JSON extraction).
    Scalar { expr: String, kind: Kind },
    /// A multi-valued attribute: `elements` is a FROM item yielding one row
    /// per element as `e`; `elem` an expression over it (or None when the
    /// test is only about presence).
    Elements {
        from: String,
        elem: Option<(String, Kind)>,
    },
}

struct Compiler {
    d: Dialect,
    rt: &'static ResourceTypeDef,
    binds: Vec<Bind>,
}

fn unsupported(path: &AttrPath, why: &str) -> ScimError {
    ScimError::invalid_filter(format!("cannot filter on '{}': {why}", display_path(path)))
}

fn display_path(p: &AttrPath) -> String {
    let mut s = String::new();
    if let Some(urn) = &p.urn {
        s.push_str(urn);
        s.push(':');
    }
    s.push_str(&p.attr);
    if let Some(sub) = &p.sub_attr {
        s.push('.');
        s.push_str(sub);
    }
    s
}

impl Compiler {
    fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len() + 1)
    }

    fn expr(&mut self, f: &Filter) -> Result<String, ScimError> {
        Ok(match f {
            Filter::And(a, b) => format!("({} AND {})", self.expr(a)?, self.expr(b)?),
            Filter::Or(a, b) => format!("({} OR {})", self.expr(a)?, self.expr(b)?),
            // Comparisons with an absent attribute are NULL in SQL; NOT must
            // see them as false first, or `not (title eq "x")` would skip
            // users without a title.
            Filter::Not(a) => format!("NOT COALESCE({}, FALSE)", self.expr(a)?),
            Filter::Present(path) => {
                let target = self.target(path)?;
                self.present(target)
            }
            Filter::Compare { path, op, value } => {
                if let (CompareOp::Eq, CompValue::Str(v)) = (op, value) {
                    if let Some(sql) = self.indexed_eq(path, v) {
                        return Ok(sql);
                    }
                }
                let target = self.target(path)?;
                match target {
                    Target::Scalar { expr, kind } => self.compare(&expr, kind, *op, value, path)?,
                    Target::Elements {
                        from,
                        elem: Some((elem, kind)),
                    } => {
                        let test = self.compare(&elem, kind, *op, value, path)?;
                        format!("EXISTS (SELECT 1 FROM {from} AND {test})")
                    }
                    Target::Elements { elem: None, .. } => {
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

    /// Equality on a multi-valued attribute that has its own indexed table
    /// (`emails.value`, group `members.value`, user `groups.value`): an
    /// `IN (subquery)` the planner drives from that table's index, instead
    /// of testing every row of the directory.
    fn indexed_eq(&mut self, path: &AttrPath, value: &str) -> Option<String> {
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
            ("User", "emails") => {
                let p = self.bind(Bind::Text(value.to_lowercase()));
                Some(format!(
                    "users.id IN (SELECT ue.user_id FROM user_emails ue \
                     WHERE ue.directory_id = $1 AND ue.value_ci = {p})"
                ))
            }
            ("Group", "members") => Some(match Uuid::parse_str(value) {
                Ok(id) => {
                    let p = self.bind(Bind::Uuid(id));
                    format!("groups.id IN (SELECT gm.group_id FROM group_members gm WHERE gm.member_id = {p})")
                }
                Err(_) => "FALSE".to_owned(),
            }),
            ("User", "groups") => Some(match Uuid::parse_str(value) {
                Ok(id) => {
                    let p = self.bind(Bind::Uuid(id));
                    format!("users.id IN (SELECT gm.member_id FROM group_members gm WHERE gm.group_id = {p})")
                }
                Err(_) => "FALSE".to_owned(),
            }),
            _ => None,
        }
    }

    /// The ORDER BY expression for `sortBy`: case-insensitive strings sort
    /// by their lowercase form, in byte order on both stores.
    fn sort_key(&mut self, path: &AttrPath) -> Result<String, ScimError> {
        let bad = |why: &str| {
            ScimError::invalid_value(format!("cannot sort by '{}': {why}", display_path(path)))
        };
        let is_emails = self.rt.name == "User"
            && path.attr.eq_ignore_ascii_case("emails")
            && path
                .sub_attr
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case("value"));
        let (key, is_text) = if is_emails {
            // A multi-valued attribute sorts by its primary value.
            ("users.primary_email".to_owned(), true)
        } else {
            match self.target(path).map_err(|e| bad(&e.detail))? {
                Target::Scalar { expr, kind } => match kind {
                    Kind::TextCi { lowered: false } => (format!("lower({expr})"), true),
                    Kind::TextCi { lowered: true } | Kind::TextExact => (expr, true),
                    Kind::Complex => return Err(bad("it is complex; name a sub-attribute")),
                    _ => (expr, false),
                },
                Target::Elements { .. } => return Err(bad("it is multi-valued")),
            }
        };
        Ok(match self.d {
            Dialect::Postgres if is_text => format!("{key} COLLATE \"C\""),
            _ => key,
        })
    }

    fn present(&mut self, target: Target) -> String {
        match target {
            Target::Scalar { expr, kind } => match kind {
                Kind::TextCi { .. } | Kind::TextExact => {
                    format!("({expr} IS NOT NULL AND {expr} <> '')")
                }
                _ => format!("{expr} IS NOT NULL"),
            },
            Target::Elements { from, elem } => match elem {
                Some((e, _)) => format!("EXISTS (SELECT 1 FROM {from} AND {e} IS NOT NULL)"),
                None => format!("EXISTS (SELECT 1 FROM {from})"),
            },
        }
    }

    /// Resolves a filter path to where its value is stored.
    fn target(&mut self, path: &AttrPath) -> Result<Target, ScimError> {
        let resolved = self
            .rt
            .resolve(path.urn.as_deref(), &path.attr, path.sub_attr.as_deref())
            .ok_or_else(|| unsupported(path, "no such attribute"))?;
        let attr = resolved.attr;
        let sub = resolved.sub;
        let is_user = self.rt.name == "User";
        let table = if is_user { "users" } else { "groups" };
        let col = |name: &str, kind: Kind| Target::Scalar {
            expr: format!("{table}.{name}"),
            kind,
        };
        if resolved.schema.is_none() {
            // Common attributes: id, externalId, meta.
            return match (attr.name, sub.map(|s| s.name)) {
                ("id", None) => Ok(col("id", Kind::Uuid)),
                ("externalId", None) => Ok(col("external_id", Kind::TextExact)),
                ("meta", Some("created")) => Ok(col("created_at", Kind::Micros)),
                ("meta", Some("lastModified")) => Ok(col("updated_at", Kind::Micros)),
                _ => Err(unsupported(path, "not a filterable attribute")),
            };
        }
        let in_core = resolved
            .schema
            .is_some_and(|s| std::ptr::eq(s, self.rt.schema));
        if in_core && sub.is_none() {
            match (is_user, attr.name) {
                (true, "userName") => {
                    return Ok(col("user_name_ci", Kind::TextCi { lowered: true }))
                }
                (true, "active") => return Ok(col("active", Kind::Bool)),
                (true, "displayName") => {
                    return Ok(col("display_name", Kind::TextCi { lowered: false }))
                }
                (false, "displayName") => {
                    return Ok(col("display_name_ci", Kind::TextCi { lowered: true }))
                }
                _ => {}
            }
        }
        if in_core && !is_user && attr.name == "members" {
            return self.members_target(path, sub.map(|s| s.name));
        }
        if in_core && is_user && attr.name == "groups" {
            return match sub.map(|s| s.name) {
                None | Some("value") => Ok(Target::Elements {
                    from: "group_members e WHERE e.member_id = users.id".to_owned(),
                    elem: Some(("e.group_id".into(), Kind::Uuid)),
                }),
                _ => Err(unsupported(path, "only groups.value is filterable")),
            };
        }
        // Everything else lives in the JSON document.
        let mut keys: Vec<&'static str> = Vec::new();
        if let Some(schema) = resolved.schema {
            if !std::ptr::eq(schema, self.rt.schema) {
                keys.push(schema.id);
            }
        }
        keys.push(attr.name);
        let leaf = sub.unwrap_or(attr);
        if attr.ty == AttrType::Complex && sub.is_none() && !attr.multi_valued {
            return Ok(Target::Scalar {
                expr: self.json_node(&keys),
                kind: Kind::Complex,
            });
        }
        if attr.multi_valued {
            let elem_attr = match sub {
                Some(s) => Some(s),
                // `emails eq "x"` means `emails.value eq "x"`.
                None if attr.ty == AttrType::Complex => attr.sub("value"),
                None => Some(attr),
            };
            let from = self.elements(&keys);
            let elem = elem_attr.map(|a| {
                let kind = kind_of(a.ty, a.case_exact);
                let e = if a.ty == AttrType::Complex || std::ptr::eq(a, attr) {
                    self.element_value(None, kind)
                } else {
                    self.element_value(Some(a.name), kind)
                };
                (e, kind)
            });
            return Ok(Target::Elements { from, elem });
        }
        if let Some(s) = sub {
            keys.push(s.name);
        }
        let kind = kind_of(leaf.ty, leaf.case_exact);
        Ok(Target::Scalar {
            expr: self.json_scalar(&keys, kind),
            kind,
        })
    }

    fn members_target(&mut self, path: &AttrPath, sub: Option<&str>) -> Result<Target, ScimError> {
        let from = "group_members e WHERE e.group_id = groups.id".to_owned();
        match sub {
            None | Some("value") => Ok(Target::Elements {
                from,
                elem: Some(("e.member_id".into(), Kind::Uuid)),
            }),
            Some("type") => Ok(Target::Elements {
                from,
                elem: Some(("e.member_type".into(), Kind::TextCi { lowered: false })),
            }),
            _ => Err(unsupported(
                path,
                "only members.value and members.type are filterable",
            )),
        }
    }

    /// `emails[type eq "work" and value co "@x"]`: one element must satisfy
    /// the whole inner filter.
    fn value_path(&mut self, path: &AttrPath, inner: &Filter) -> Result<String, ScimError> {
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
        let from = if self.rt.name == "Group" && attr.name == "members" {
            "group_members e WHERE e.group_id = groups.id".to_owned()
        } else if self.rt.name == "User" && attr.name == "groups" {
            "group_members e WHERE e.member_id = users.id".to_owned()
        } else {
            let mut keys = Vec::new();
            if let Some(schema) = resolved.schema {
                if !std::ptr::eq(schema, self.rt.schema) {
                    keys.push(schema.id);
                }
            }
            keys.push(attr.name);
            self.elements(&keys)
        };
        let test = self.element_expr(attr, inner)?;
        Ok(format!("EXISTS (SELECT 1 FROM {from} AND {test})"))
    }

    /// An inner (relative) filter over one element `e` of `attr`.
    fn element_expr(
        &mut self,
        attr: &'static crate::scim::schema::AttributeDef,
        f: &Filter,
    ) -> Result<String, ScimError> {
        Ok(match f {
            Filter::And(a, b) => format!(
                "({} AND {})",
                self.element_expr(attr, a)?,
                self.element_expr(attr, b)?
            ),
            Filter::Or(a, b) => format!(
                "({} OR {})",
                self.element_expr(attr, a)?,
                self.element_expr(attr, b)?
            ),
            Filter::Not(a) => format!("NOT COALESCE({}, FALSE)", self.element_expr(attr, a)?),
            Filter::ValuePath { path, .. } => {
                return Err(unsupported(path, "value filters cannot be nested"))
            }
            Filter::Present(path) | Filter::Compare { path, .. } => {
                let sub = attr
                    .sub(&path.attr)
                    .filter(|_| path.sub_attr.is_none())
                    .ok_or_else(|| unsupported(path, "no such sub-attribute"))?;
                let kind = kind_of(sub.ty, sub.case_exact);
                let expr = match (self.rt.name, attr.name, sub.name) {
                    ("Group", "members", "value") | ("User", "groups", "value") => {
                        let col = if attr.name == "members" {
                            "e.member_id"
                        } else {
                            "e.group_id"
                        };
                        (col.to_owned(), Kind::Uuid)
                    }
                    ("Group", "members", "type") => {
                        ("e.member_type".to_owned(), Kind::TextCi { lowered: false })
                    }
                    ("Group", "members", _) | ("User", "groups", _) => {
                        return Err(unsupported(path, "only value and type are filterable"))
                    }
                    _ => (self.element_value(Some(sub.name), kind), kind),
                };
                match f {
                    Filter::Compare { op, value, .. } => {
                        self.compare(&expr.0, expr.1, *op, value, path)?
                    }
                    _ => self.present(Target::Scalar {
                        expr: expr.0,
                        kind: expr.1,
                    }),
                }
            }
        })
    }

    fn compare(
        &mut self,
        lhs: &str,
        kind: Kind,
        op: CompareOp,
        value: &CompValue,
        path: &AttrPath,
    ) -> Result<String, ScimError> {
        use CompareOp::*;
        if let CompValue::Null = value {
            return match op {
                Eq => Ok(format!("{lhs} IS NULL")),
                Ne => Ok(format!("{lhs} IS NOT NULL")),
                _ => Err(unsupported(path, "null compares only with eq and ne")),
            };
        }
        let ordering = |op: CompareOp| match op {
            Gt => Some(">"),
            Ge => Some(">="),
            Lt => Some("<"),
            Le => Some("<="),
            Eq => Some("="),
            _ => None,
        };
        match kind {
            Kind::Complex => Err(unsupported(
                path,
                "a complex attribute needs a sub-attribute",
            )),
            Kind::TextCi { .. } | Kind::TextExact => {
                let CompValue::Str(s) = value else {
                    return Err(unsupported(path, "expects a string value"));
                };
                let ci = matches!(kind, Kind::TextCi { .. });
                let lhs_cmp = match kind {
                    Kind::TextCi { lowered: false } => format!("lower({lhs})"),
                    _ => lhs.to_owned(),
                };
                let v = if ci { s.to_lowercase() } else { s.clone() };
                Ok(match op {
                    Eq => format!("{lhs_cmp} = {}", self.bind(Bind::Text(v))),
                    Ne => format!(
                        "({lhs} IS NULL OR {lhs_cmp} <> {})",
                        self.bind(Bind::Text(v))
                    ),
                    Co | Sw | Ew if ci => {
                        let esc = escape_like(&v);
                        let pattern = match op {
                            Co => format!("%{esc}%"),
                            Sw => format!("{esc}%"),
                            _ => format!("%{esc}"),
                        };
                        format!(
                            "{lhs_cmp} LIKE {} ESCAPE '\\'",
                            self.bind(Bind::Text(pattern))
                        )
                    }
                    Co => {
                        let p = self.bind(Bind::Text(v));
                        match self.d {
                            Dialect::Sqlite => format!("instr({lhs}, {p}) > 0"),
                            Dialect::Postgres => format!("strpos({lhs}, {p}) > 0"),
                        }
                    }
                    Sw | Ew => {
                        let n = self.bind(Bind::Int(v.chars().count() as i64));
                        let p = self.bind(Bind::Text(v));
                        match (self.d, op) {
                            (Dialect::Sqlite, Sw) => format!("substr({lhs}, 1, {n}) = {p}"),
                            (Dialect::Postgres, Sw) => format!("left({lhs}, {n}) = {p}"),
                            (Dialect::Sqlite, _) => {
                                format!("({n} = 0 OR substr({lhs}, -{n}) = {p})")
                            }
                            (Dialect::Postgres, _) => format!("right({lhs}, {n}) = {p}"),
                        }
                    }
                    Gt | Ge | Lt | Le => {
                        let sym = ordering(op).unwrap_or("=");
                        let p = self.bind(Bind::Text(v));
                        // Byte order in both stores, so results agree.
                        match self.d {
                            Dialect::Sqlite => format!("{lhs_cmp} {sym} {p}"),
                            Dialect::Postgres => format!("{lhs_cmp} COLLATE \"C\" {sym} {p}"),
                        }
                    }
                })
            }
            Kind::Uuid => {
                let CompValue::Str(s) = value else {
                    return Err(unsupported(path, "expects a string value"));
                };
                // An id that is not a UUID matches nothing rather than erring:
                // IdPs probe with ids of their own.
                let parsed = Uuid::parse_str(s).ok();
                Ok(match (op, parsed) {
                    (Eq, Some(u)) => format!("{lhs} = {}", self.bind(Bind::Uuid(u))),
                    (Eq, None) => "FALSE".to_owned(),
                    (Ne, Some(u)) => format!("{lhs} <> {}", self.bind(Bind::Uuid(u))),
                    (Ne, None) => format!("{lhs} IS NOT NULL"),
                    _ => return Err(unsupported(path, "ids compare only with eq and ne")),
                })
            }
            Kind::Bool | Kind::JsonBool => {
                let CompValue::Bool(b) = value else {
                    return Err(unsupported(path, "expects true or false"));
                };
                let p = match (kind, self.d) {
                    (Kind::Bool, _) => self.bind(Bind::Bool(*b)),
                    (_, Dialect::Sqlite) => self.bind(Bind::Int(i64::from(*b))),
                    (_, Dialect::Postgres) => self.bind(Bind::Text(b.to_string())),
                };
                Ok(match op {
                    Eq => format!("{lhs} = {p}"),
                    Ne => format!("({lhs} IS NULL OR {lhs} <> {p})"),
                    _ => return Err(unsupported(path, "booleans compare only with eq and ne")),
                })
            }
            Kind::Number => {
                let CompValue::Num(n) = value else {
                    return Err(unsupported(path, "expects a number"));
                };
                let p = self.bind(Bind::Float(n.as_f64().unwrap_or(0.0)));
                let lhs = match self.d {
                    Dialect::Sqlite => lhs.to_owned(),
                    Dialect::Postgres => format!("({lhs})::float8"),
                };
                match (op, ordering(op)) {
                    (Ne, _) => Ok(format!("({lhs} IS NULL OR {lhs} <> {p})")),
                    (_, Some(sym)) => Ok(format!("{lhs} {sym} {p}")),
                    _ => Err(unsupported(
                        path,
                        "numbers compare only with eq ne gt ge lt le",
                    )),
                }
            }
            Kind::Micros => {
                let CompValue::Str(s) = value else {
                    return Err(unsupported(path, "expects an RFC 3339 dateTime string"));
                };
                let t = chrono::DateTime::parse_from_rfc3339(s)
                    .map_err(|_| unsupported(path, "expects an RFC 3339 dateTime string"))?;
                let p = self.bind(Bind::Int(t.timestamp_micros()));
                match (op, ordering(op)) {
                    (Ne, _) => Ok(format!("{lhs} <> {p}")),
                    (_, Some(sym)) => Ok(format!("{lhs} {sym} {p}")),
                    _ => Err(unsupported(
                        path,
                        "dateTimes compare only with eq ne gt ge lt le",
                    )),
                }
            }
        }
    }

    /// A scalar JSON value at `keys` as SQL (text, or native where typed).
    fn json_scalar(&self, keys: &[&str], kind: Kind) -> String {
        match self.d {
            Dialect::Sqlite => format!("json_extract(doc, '{}')", sqlite_path(keys)),
            Dialect::Postgres => {
                let text = format!("(doc #>> '{}')", pg_path(keys));
                match kind {
                    Kind::Number => format!("({text})::float8"),
                    _ => text,
                }
            }
        }
    }

    /// A JSON node (object) at `keys`, for presence tests.
    fn json_node(&self, keys: &[&str]) -> String {
        match self.d {
            Dialect::Sqlite => format!("json_extract(doc, '{}')", sqlite_path(keys)),
            Dialect::Postgres => format!("(doc #> '{}')", pg_path(keys)),
        }
    }

    /// FROM item: one row `e` per element of the JSON array at `keys`.
    fn elements(&self, keys: &[&str]) -> String {
        match self.d {
            Dialect::Sqlite => format!("json_each(doc, '{}') AS e WHERE TRUE", sqlite_path(keys)),
            Dialect::Postgres => format!(
                "jsonb_array_elements(CASE WHEN jsonb_typeof(doc #> '{p}') = 'array' \
                 THEN doc #> '{p}' ELSE '[]'::jsonb END) AS e(value) WHERE TRUE",
                p = pg_path(keys)
            ),
        }
    }

    /// The element itself (`sub == None`) or its sub-attribute.
    fn element_value(&self, sub: Option<&str>, kind: Kind) -> String {
        match (self.d, sub) {
            (Dialect::Sqlite, None) => "e.value".to_owned(),
            (Dialect::Sqlite, Some(s)) => format!("json_extract(e.value, '{}')", sqlite_path(&[s])),
            (Dialect::Postgres, None) => match kind {
                Kind::Number => "(e.value #>> '{}')::float8".to_owned(),
                _ => "(e.value #>> '{}')".to_owned(),
            },
            (Dialect::Postgres, Some(s)) => format!("(e.value ->> '{s}')"),
        }
    }
}

fn kind_of(ty: AttrType, case_exact: bool) -> Kind {
    match ty {
        AttrType::Boolean => Kind::JsonBool,
        AttrType::Integer | AttrType::Decimal => Kind::Number,
        _ if case_exact => Kind::TextExact,
        _ => Kind::TextCi { lowered: false },
    }
}

/// `$."a"."b"` — schema names only, which never contain quotes.
fn sqlite_path(keys: &[&str]) -> String {
    let mut p = String::from("$");
    for k in keys {
        p.push_str(".\"");
        p.push_str(k);
        p.push('"');
    }
    p
}

/// `{"a","b"}` — schema names only.
fn pg_path(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!("{{{}}}", quoted.join(","))
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::filter::parse_filter;
    use crate::scim::path::parse_attr_path;
    use crate::scim::schema::{GROUP_RESOURCE, USER_RESOURCE};

    fn users(dialect: Dialect, filter: &str) -> ListQuery {
        let f = parse_filter(filter).unwrap();
        ListQuery::compile(&USER_RESOURCE, dialect, Some(&f), None, false).unwrap()
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
        let f = parse_filter(r#"displayName eq "Eng""#).unwrap();
        let q =
            ListQuery::compile(&GROUP_RESOURCE, Dialect::Sqlite, Some(&f), None, false).unwrap();
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
        let f = parse_filter(r#"displayName eq "Eng""#).unwrap();
        let q =
            ListQuery::compile(&GROUP_RESOURCE, Dialect::Sqlite, Some(&f), None, false).unwrap();
        assert_eq!(q.user_name_eq(), None);
        // The look-up's WHERE clause is what the compiler writes for it.
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            let f = parse_filter(r#"userName eq "Ada@Example.com""#).unwrap();
            let mut c = Compiler {
                d,
                rt: &USER_RESOURCE,
                binds: Vec::new(),
            };
            let compiled = c.expr(&f).unwrap();
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
        let f = parse_filter(r#"userName sw "a""#).unwrap();
        let sort = parse_attr_path("name.familyName").unwrap();
        let q = ListQuery::compile(
            &USER_RESOURCE,
            Dialect::Postgres,
            Some(&f),
            Some(&sort),
            true,
        )
        .unwrap();
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
            let err = ListQuery::compile(rt, Dialect::Sqlite, Some(&f), None, false).unwrap_err();
            assert_eq!(
                err.scim_type,
                Some(crate::scim::ScimType::InvalidFilter),
                "{filter}"
            );
        }
    }

    /// Every path of every schema, with every operator and kind of value,
    /// alone and combined: what `ListRequest::resolve` accepts compiles,
    /// and what it refuses the compiler refuses with the same error, so
    /// the store is never handed a request it cannot compile and clients
    /// see the errors the compiler gives.
    #[test]
    fn resolving_agrees_with_compiling() {
        use crate::scim::list::ListRequest;
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
        let mut checked = 0;
        for rt in [&USER_RESOURCE, &GROUP_RESOURCE] {
            for text in &filters {
                let Ok(f) = parse_filter(text) else {
                    continue;
                };
                let resolved = ListRequest::resolve(rt, Some(&f), None, false).map(drop);
                let compiled = ListQuery::compile(rt, Dialect::Sqlite, Some(&f), None, false);
                assert_eq!(resolved, compiled.map(drop), "{} {text}", rt.name);
                checked += 1;
            }
            for text in &paths {
                let sort = parse_attr_path(text).unwrap();
                let resolved = ListRequest::resolve(rt, None, Some(&sort), true).map(drop);
                let compiled = ListQuery::compile(rt, Dialect::Postgres, None, Some(&sort), true);
                assert_eq!(resolved, compiled.map(drop), "{} sortBy={text}", rt.name);
            }
        }
        assert!(checked > 10_000, "{checked}");
    }
}
