//! SCIM filter grammar (RFC 7644 §3.4.2.2) -> AST, its canonical printing,
//! and in-memory evaluation (used by PATCH value filters).
//!
//! The parser is a hand-written recursive descent over `char`s so that error
//! positions are character offsets a client can relate to its own input.
//! Only parentheses, `not (…)` and value-path brackets recurse; `and`/`or`
//! chains are built iteratively, so hostile input is bounded by
//! [`MAX_DEPTH`] and [`MAX_TERMS`].

mod eval;
mod grammar;

use std::fmt;

use serde_json::Value;

use crate::scim::error::ScimError;
use crate::scim::path::AttrPath;

pub use eval::matches;
pub(crate) use grammar::Parser;

/// A parsed filter expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// `attrPath op value`
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: CompValue,
    },
    /// `attrPath pr`
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `emails[type eq "work" and value co "@x"]`: paths inside `filter` are
    /// relative to the complex attribute `path` (their `attr` is the
    /// sub-attribute name, e.g. `type`).
    ValuePath {
        path: AttrPath,
        filter: Box<Filter>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CompValue {
    Str(String),
    Num(serde_json::Number),
    Bool(bool),
    Null,
}

/// Deepest allowed nesting of parentheses, `not (…)` and `[…]`. Keeps the
/// recursive parser (and everything that later walks the AST) off the end
/// of the stack whatever the client sends.
pub const MAX_DEPTH: usize = 32;

/// Most comparisons (`attr op value` and `attr pr`) in one filter; bounds
/// evaluation and SQL translation cost.
pub const MAX_TERMS: usize = 256;

/// A syntax error in a filter (or in a PATCH path, which shares the lexer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterError {
    /// Character (not byte) offset into the input.
    pub position: usize,
    pub message: String,
    /// A short excerpt of the input at `position`; empty at end of input.
    pub near: String,
}

impl FilterError {
    /// Same text as `Display` but naming the thing parsed ("filter",
    /// "path"), so path errors read naturally.
    pub(crate) fn describe(&self, what: &str) -> String {
        if self.near.is_empty() {
            format!(
                "invalid {what} at position {} (end of input): {}",
                self.position, self.message
            )
        } else {
            format!(
                "invalid {what} at position {} near '{}': {}",
                self.position, self.near, self.message
            )
        }
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe("filter"))
    }
}

impl std::error::Error for FilterError {}

impl From<FilterError> for ScimError {
    fn from(e: FilterError) -> Self {
        ScimError::invalid_filter(e.to_string())
    }
}

/// Parse a complete filter expression (the `filter` query parameter or the
/// `filter` member of a `.search` body).
pub fn parse_filter(input: &str) -> Result<Filter, FilterError> {
    let mut p = Parser::new(input);
    p.skip_ws();
    if p.at_end() {
        return Err(p.err(p.pos, "empty filter"));
    }
    let f = p.parse_or()?;
    p.skip_ws();
    p.expect_end("expected 'and', 'or' or end of filter")?;
    Ok(f)
}

impl CompareOp {
    /// The lower-case operator keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// Case-insensitive keyword lookup (`pr` is not a `CompareOp`).
    pub fn from_keyword(word: &str) -> Option<CompareOp> {
        const ALL: [CompareOp; 9] = [
            CompareOp::Eq,
            CompareOp::Ne,
            CompareOp::Co,
            CompareOp::Sw,
            CompareOp::Ew,
            CompareOp::Gt,
            CompareOp::Ge,
            CompareOp::Lt,
            CompareOp::Le,
        ];
        ALL.into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CompValue {
    /// The JSON value this literal denotes.
    /// The boolean this value stands for on a boolean attribute: the
    /// literal, or the string `"true"`/`"false"` in any case, which
    /// Microsoft Entra ID sends (`primary eq "True"`).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            CompValue::Bool(b) => Some(*b),
            CompValue::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            CompValue::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            CompValue::Str(s) => Value::String(s.clone()),
            CompValue::Num(n) => Value::Number(n.clone()),
            CompValue::Bool(b) => Value::Bool(*b),
            CompValue::Null => Value::Null,
        }
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompValue::Str(s) => write_json_string(f, s),
            CompValue::Num(n) => write!(f, "{n}"),
            CompValue::Bool(b) => write!(f, "{b}"),
            CompValue::Null => f.write_str("null"),
        }
    }
}

/// JSON string escaping, written by hand so `Display` never needs a
/// fallible serializer.
fn write_json_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    use fmt::Write;
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

/// Canonical syntax: lower-case keywords, single spaces, JSON string
/// literals, and parentheses exactly where the left-associative
/// `and`-over-`or` grammar needs them, so printing then parsing yields the
/// same AST.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::And(l, r) => {
                write_operand(f, l, matches!(**l, Filter::Or(..)))?;
                f.write_str(" and ")?;
                write_operand(f, r, matches!(**r, Filter::Or(..) | Filter::And(..)))
            }
            Filter::Or(l, r) => {
                write_operand(f, l, false)?;
                f.write_str(" or ")?;
                write_operand(f, r, matches!(**r, Filter::Or(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { path, filter } => write!(f, "{path}[{filter}]"),
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, op: &Filter, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({op})")
    } else {
        write!(f, "{op}")
    }
}

#[cfg(test)]
mod tests;
