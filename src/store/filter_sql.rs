//! A resolved list request (`scim::list`) -> parameterised SQL for either
//! dialect. `ListRequest::resolve` has checked every path, operator and
//! value, so compiling checks nothing and cannot fail.
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
use crate::scim::filter::CompareOp;
use crate::scim::list::{
    Comparison, ElementList, Field, IndexedList, ListRequest, Operand, OrderedOp, ResolvedFilter,
    SortKey, ValueKind,
};
use crate::scim::schema::ResourceTypeDef;

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
    /// [`ListRequest::resolve`] checked every path and value, so this
    /// cannot fail.
    pub fn build(dialect: Dialect, request: &ListRequest<'_>) -> Self {
        let mut c = Compiler {
            d: dialect,
            rt: request.resource_type(),
            binds: Vec::new(),
        };
        let user_name_eq = match request.filter() {
            Some(ResolvedFilter::Compare(
                Operand {
                    field: Field::UserName,
                    ..
                },
                Comparison::Text {
                    op: CompareOp::Eq,
                    value,
                },
            )) => Some(value.to_lowercase()),
            _ => None,
        };
        let where_sql = match &user_name_eq {
            // What `expr` compiles it to (a unit test holds them equal),
            // without lowering the value a second time.
            Some(name) => Some(format!(
                "users.user_name_ci = {}",
                c.bind(Bind::Text(name.clone()))
            )),
            None => request.filter().map(|f| c.expr(f)),
        };
        let order_by = request.sort_key().map(|key| {
            let key = c.sort_key(key);
            let dir = if request.descending() { "DESC" } else { "ASC" };
            // Absent values sort last either way (RFC 7644 §3.4.2.3).
            format!("{key} {dir} NULLS LAST")
        });
        ListQuery {
            where_sql,
            binds: c.binds,
            order_by,
            user_name_eq,
        }
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

impl ListQuery {
    /// Up to `limit` rows after the key `(created_at, id)`, in the default
    /// order: a keyset page (RFC 9865 cursors), an index seek wherever it
    /// starts. The key follows the filter's values; `LIMIT` is last.
    pub fn select_after_sql(
        &self,
        table: &str,
        columns: &str,
        after: (i64, Uuid),
        limit: i64,
    ) -> (String, Vec<Bind>) {
        let mut binds = self.binds.clone();
        let key = binds.len() + 2;
        binds.push(Bind::Int(after.0));
        binds.push(Bind::Uuid(after.1));
        binds.push(Bind::Int(limit));
        (
            format!(
                "SELECT {columns} FROM {table} WHERE {} \
                 AND ({table}.created_at, {table}.id) > (${key}, ${}) \
                 ORDER BY {table}.created_at, {table}.id LIMIT ${}",
                self.where_clause(table),
                key + 1,
                key + 2,
            ),
            binds,
        )
    }
}

/// How a filtered value is stored, which decides the SQL that compares it.
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
    /// Microseconds since the epoch.
    Micros,
    /// A complex value (e.g. `name`): it can be present, not compared.
    Complex,
}

/// How a value of `kind` is stored in the JSON document.
fn json_kind(kind: ValueKind) -> Kind {
    match kind {
        ValueKind::Text { case_exact: true } => Kind::TextExact,
        ValueKind::Text { case_exact: false } => Kind::TextCi { lowered: false },
        ValueKind::Id => Kind::Uuid,
        ValueKind::Boolean => Kind::JsonBool,
        ValueKind::Number => Kind::Number,
        ValueKind::DateTime => Kind::Micros,
        ValueKind::Complex => Kind::Complex,
    }
}

struct Compiler {
    d: Dialect,
    rt: &'static ResourceTypeDef,
    binds: Vec<Bind>,
}

impl Compiler {
    fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len() + 1)
    }

    fn expr(&mut self, f: &ResolvedFilter<'_>) -> String {
        match f {
            ResolvedFilter::And(a, b) => format!("({} AND {})", self.expr(a), self.expr(b)),
            ResolvedFilter::Or(a, b) => format!("({} OR {})", self.expr(a), self.expr(b)),
            // Comparisons with an absent attribute are NULL in SQL; NOT must
            // see them as false first, or `not (title eq "x")` would skip
            // users without a title.
            ResolvedFilter::Not(a) => format!("NOT COALESCE({}, FALSE)", self.expr(a)),
            ResolvedFilter::Present(operand) => {
                let (expr, kind) = self.operand(operand);
                present(&expr, kind)
            }
            ResolvedFilter::Compare(operand, comparison) => {
                let (lhs, kind) = self.operand(operand);
                self.compare(&lhs, kind, comparison)
            }
            ResolvedFilter::HasElements { list, element } => {
                let from = self.elements_of(list);
                match element {
                    Some(element) => {
                        let (e, _) = self.operand(element);
                        format!("EXISTS (SELECT 1 FROM {from} AND {e} IS NOT NULL)")
                    }
                    None => format!("EXISTS (SELECT 1 FROM {from})"),
                }
            }
            // `emails[type eq "work" and value co "@x"]`: one element must
            // satisfy the whole inner filter.
            ResolvedFilter::AnyElement { list, filter } => {
                let from = self.elements_of(list);
                let test = self.expr(filter);
                format!("EXISTS (SELECT 1 FROM {from} AND {test})")
            }
            ResolvedFilter::ListedValue(list, value) => self.listed_value(*list, value),
        }
    }

    /// Equality on a multi-valued attribute that has its own indexed table
    /// (`emails.value`, group `members.value`, user `groups.value`): an
    /// `IN (subquery)` the planner drives from that table's index, instead
    /// of testing every row of the directory.
    fn listed_value(&mut self, list: IndexedList, value: &str) -> String {
        match list {
            IndexedList::Emails => {
                let p = self.bind(Bind::Text(value.to_lowercase()));
                format!(
                    "users.id IN (SELECT ue.user_id FROM user_emails ue \
                     WHERE ue.directory_id = $1 AND ue.value_ci = {p})"
                )
            }
            IndexedList::Members => match Uuid::parse_str(value) {
                Ok(id) => {
                    let p = self.bind(Bind::Uuid(id));
                    format!("groups.id IN (SELECT gm.group_id FROM group_members gm WHERE gm.member_id = {p})")
                }
                Err(_) => "FALSE".to_owned(),
            },
            IndexedList::Groups => match Uuid::parse_str(value) {
                Ok(id) => {
                    let p = self.bind(Bind::Uuid(id));
                    format!("users.id IN (SELECT gm.member_id FROM group_members gm WHERE gm.group_id = {p})")
                }
                Err(_) => "FALSE".to_owned(),
            },
        }
    }

    /// The ORDER BY expression for `sortBy`: case-insensitive strings sort
    /// by their lowercase form, in byte order on both stores.
    fn sort_key(&mut self, key: &SortKey) -> String {
        let (key, is_text) = match key {
            // A multi-valued attribute sorts by its primary value.
            SortKey::PrimaryEmail => ("users.primary_email".to_owned(), true),
            SortKey::Value(operand) => match self.operand(operand) {
                (expr, Kind::TextCi { lowered: false }) => (format!("lower({expr})"), true),
                (expr, Kind::TextCi { lowered: true } | Kind::TextExact) => (expr, true),
                (expr, _) => (expr, false),
            },
        };
        match self.d {
            Dialect::Postgres if is_text => format!("{key} COLLATE \"C\""),
            _ => key,
        }
    }

    /// Where an operand is stored, as SQL, and how it is stored.
    fn operand(&self, operand: &Operand) -> (String, Kind) {
        let is_user = self.rt.name == "User";
        let table = if is_user { "users" } else { "groups" };
        let col = |name: &str, kind: Kind| (format!("{table}.{name}"), kind);
        match &operand.field {
            Field::Id => col("id", Kind::Uuid),
            Field::ExternalId => col("external_id", Kind::TextExact),
            Field::Created => col("created_at", Kind::Micros),
            Field::LastModified => col("updated_at", Kind::Micros),
            Field::UserName => col("user_name_ci", Kind::TextCi { lowered: true }),
            Field::Active => col("active", Kind::Bool),
            Field::DisplayName if is_user => col("display_name", Kind::TextCi { lowered: false }),
            Field::DisplayName => col("display_name_ci", Kind::TextCi { lowered: true }),
            Field::Document(keys) => match json_kind(operand.kind) {
                Kind::Complex => (self.json_node(keys), Kind::Complex),
                kind => (self.json_scalar(keys, kind), kind),
            },
            Field::Element(sub) => {
                let kind = json_kind(operand.kind);
                (self.element_value(*sub, kind), kind)
            }
            Field::MemberId => ("e.member_id".to_owned(), Kind::Uuid),
            Field::MemberType => ("e.member_type".to_owned(), Kind::TextCi { lowered: false }),
            Field::GroupId => ("e.group_id".to_owned(), Kind::Uuid),
        }
    }

    /// FROM item: one row `e` per element of `list`, ready for `AND`.
    fn elements_of(&self, list: &ElementList) -> String {
        match list {
            ElementList::Document(keys) => self.elements(keys),
            ElementList::Members => "group_members e WHERE e.group_id = groups.id".to_owned(),
            ElementList::Groups => "group_members e WHERE e.member_id = users.id".to_owned(),
        }
    }

    fn compare(&mut self, lhs: &str, kind: Kind, comparison: &Comparison<'_>) -> String {
        match *comparison {
            Comparison::Null { equal: true } => format!("{lhs} IS NULL"),
            Comparison::Null { equal: false } => format!("{lhs} IS NOT NULL"),
            Comparison::Text { op, value } => self.compare_text(lhs, kind, op, value),
            Comparison::Id { equal, value } => {
                // An id that is not a UUID matches nothing rather than erring:
                // IdPs probe with ids of their own.
                let parsed = Uuid::parse_str(value).ok();
                match (equal, parsed) {
                    (true, Some(u)) => format!("{lhs} = {}", self.bind(Bind::Uuid(u))),
                    (true, None) => "FALSE".to_owned(),
                    (false, Some(u)) => format!("{lhs} <> {}", self.bind(Bind::Uuid(u))),
                    (false, None) => format!("{lhs} IS NOT NULL"),
                }
            }
            Comparison::Boolean { equal, value } => {
                let p = match (kind, self.d) {
                    (Kind::Bool, _) => self.bind(Bind::Bool(value)),
                    (_, Dialect::Sqlite) => self.bind(Bind::Int(i64::from(value))),
                    (_, Dialect::Postgres) => self.bind(Bind::Text(value.to_string())),
                };
                if equal {
                    format!("{lhs} = {p}")
                } else {
                    format!("({lhs} IS NULL OR {lhs} <> {p})")
                }
            }
            Comparison::Number { op, value } => {
                let p = self.bind(Bind::Float(value));
                let lhs = match self.d {
                    Dialect::Sqlite => lhs.to_owned(),
                    Dialect::Postgres => format!("({lhs})::float8"),
                };
                match op {
                    OrderedOp::Ne => format!("({lhs} IS NULL OR {lhs} <> {p})"),
                    _ => format!("{lhs} {} {p}", symbol(op)),
                }
            }
            Comparison::DateTime { op, micros } => {
                let p = self.bind(Bind::Int(micros));
                format!("{lhs} {} {p}", symbol(op))
            }
        }
    }

    fn compare_text(&mut self, lhs: &str, kind: Kind, op: CompareOp, s: &str) -> String {
        use CompareOp::*;
        let ci = matches!(kind, Kind::TextCi { .. });
        let lhs_cmp = match kind {
            Kind::TextCi { lowered: false } => format!("lower({lhs})"),
            _ => lhs.to_owned(),
        };
        let v = if ci { s.to_lowercase() } else { s.to_owned() };
        match op {
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
                let sym = match op {
                    Gt => ">",
                    Ge => ">=",
                    Lt => "<",
                    _ => "<=",
                };
                let p = self.bind(Bind::Text(v));
                // Byte order in both stores, so results agree.
                match self.d {
                    Dialect::Sqlite => format!("{lhs_cmp} {sym} {p}"),
                    Dialect::Postgres => format!("{lhs_cmp} COLLATE \"C\" {sym} {p}"),
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

/// A test that a value is there: a string must also not be empty.
fn present(expr: &str, kind: Kind) -> String {
    match kind {
        Kind::TextCi { .. } | Kind::TextExact => format!("({expr} IS NOT NULL AND {expr} <> '')"),
        _ => format!("{expr} IS NOT NULL"),
    }
}

/// The SQL operator of an ordered comparison.
fn symbol(op: OrderedOp) -> &'static str {
    match op {
        OrderedOp::Eq => "=",
        OrderedOp::Ne => "<>",
        OrderedOp::Gt => ">",
        OrderedOp::Ge => ">=",
        OrderedOp::Lt => "<",
        OrderedOp::Le => "<=",
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
mod tests;
