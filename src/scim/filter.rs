//! SCIM filter grammar (RFC 7644 §3.4.2.2) -> AST, its canonical printing,
//! and in-memory evaluation (used by PATCH value filters).
//!
//! The parser is a hand-written recursive descent over `char`s so that error
//! positions are character offsets a client can relate to its own input.
//! Only parentheses, `not (…)` and value-path brackets recurse; `and`/`or`
//! chains are built iteratively, so hostile input is bounded by
//! [`MAX_DEPTH`] and [`MAX_TERMS`].

use std::fmt;

use serde_json::{Map, Value};

use crate::scim::error::ScimError;
use crate::scim::path::AttrPath;

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

/// Characters that can appear in an attribute-path token: name characters,
/// `$` (for `$ref`) and the `:`/`.` separators (URNs contain both).
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$' | ':' | '.')
}

/// RFC 7643 §2.1: `ATTRNAME = ALPHA *(nameChar)`, plus `$ref`.
pub(crate) fn is_attr_name(s: &str) -> bool {
    if s == "$ref" {
        return true;
    }
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Shared lexer/parser state for filters and PATCH paths.
pub(crate) struct Parser {
    chars: Vec<char>,
    pub(crate) pos: usize,
    depth: usize,
    terms: usize,
    /// Inside `attr[…]`: paths are relative and brackets may not nest.
    in_brackets: bool,
}

impl Parser {
    pub(crate) fn new(input: &str) -> Parser {
        Parser {
            chars: input.chars().collect(),
            pos: 0,
            depth: 0,
            terms: 0,
            in_brackets: false,
        }
    }

    pub(crate) fn err(&self, position: usize, message: impl Into<String>) -> FilterError {
        let near: String = self
            .chars
            .iter()
            .skip(position)
            .take_while(|c| !c.is_whitespace())
            .take(20)
            .collect();
        FilterError {
            position,
            message: message.into(),
            near,
        }
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    pub(crate) fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Fail unless the whole input has been consumed, explaining stray
    /// closing brackets specifically.
    pub(crate) fn expect_end(&self, otherwise: &str) -> Result<(), FilterError> {
        match self.peek() {
            None => Ok(()),
            Some(')') => Err(self.err(self.pos, "unbalanced ')' without a matching '('")),
            Some(']') => Err(self.err(self.pos, "unbalanced ']' without a matching '['")),
            Some(_) => Err(self.err(self.pos, otherwise)),
        }
    }

    /// The run of ASCII letters at `from` (keywords, operators, literals).
    fn word_at(&self, from: usize) -> String {
        self.chars
            .iter()
            .skip(from)
            .take_while(|c| c.is_ascii_alphabetic())
            .collect()
    }

    /// Whether the keyword `kw` starts at the cursor as a whole word.
    fn keyword_here(&self, kw: &str) -> bool {
        let word = self.word_at(self.pos);
        word.eq_ignore_ascii_case(kw)
            && !self
                .chars
                .get(self.pos + word.len())
                .is_some_and(|&c| is_path_char(c))
    }

    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(
                self.pos,
                format!("filter is nested too deeply (at most {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn count_term(&mut self, at: usize) -> Result<(), FilterError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(self.err(
                at,
                format!("filter has too many comparisons (at most {MAX_TERMS})"),
            ));
        }
        Ok(())
    }

    /// `or`-chain: lowest precedence, left-associative.
    pub(crate) fn parse_or(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.parse_and()?;
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.keyword_here("or") {
                self.pos += 2;
                let right = self.parse_and()?;
                left = Filter::Or(Box::new(left), Box::new(right));
            } else {
                self.pos = save;
                return Ok(left);
            }
        }
    }

    fn parse_and(&mut self) -> Result<Filter, FilterError> {
        let mut left = self.parse_unary()?;
        loop {
            let save = self.pos;
            self.skip_ws();
            if self.keyword_here("and") {
                self.pos += 3;
                let right = self.parse_unary()?;
                left = Filter::And(Box::new(left), Box::new(right));
            } else {
                self.pos = save;
                return Ok(left);
            }
        }
    }

    /// `( FILTER )`, `not ( FILTER )` or an attribute expression.
    fn parse_unary(&mut self) -> Result<Filter, FilterError> {
        self.skip_ws();
        if self.at_end() {
            return Err(self.err(self.pos, "expected an expression"));
        }
        if self.peek() == Some('(') {
            return self.parse_group();
        }
        if self.keyword_here("not") {
            let save = self.pos;
            self.pos += 3;
            self.skip_ws();
            if self.peek() == Some('(') {
                let inner = self.parse_group()?;
                return Ok(Filter::Not(Box::new(inner)));
            }
            // Not a negation: maybe an attribute that happens to be
            // called "not"; parse it as such and explain if that fails.
            self.pos = save;
        }
        self.parse_attr_exp()
    }

    /// A parenthesised filter; the cursor is on `(`.
    fn parse_group(&mut self) -> Result<Filter, FilterError> {
        let open = self.pos;
        self.enter()?;
        self.pos += 1;
        let inner = self.parse_or()?;
        self.skip_ws();
        if self.peek() != Some(')') {
            return Err(self.err(
                self.pos,
                format!("expected ')' to close the '(' at position {open}"),
            ));
        }
        self.pos += 1;
        self.leave();
        Ok(inner)
    }

    /// `attrPath pr`, `attrPath op value` or `attrPath [ valFilter ]`.
    fn parse_attr_exp(&mut self) -> Result<Filter, FilterError> {
        let start = self.pos;
        let path = self.parse_attr_path()?;
        if self.peek() == Some('[') {
            let mut inner = self.parse_brackets(&path, start)?;
            if self.peek() == Some('.') {
                // Not RFC grammar, but what Microsoft Entra ID sends when the
                // work email is a matching attribute:
                // `emails[type eq "work"].value eq "x"` means
                // `emails[type eq "work" and value eq "x"]`.
                self.pos += 1;
                let sub_start = self.pos;
                let sub = AttrPath {
                    urn: None,
                    attr: self.parse_name()?,
                    sub_attr: None,
                };
                let leaf = self.parse_comparison(sub, sub_start)?;
                inner = Filter::And(Box::new(inner), Box::new(leaf));
            }
            return Ok(Filter::ValuePath {
                path,
                filter: Box::new(inner),
            });
        }
        self.parse_comparison(path, start)
    }

    /// `pr` or `op value` after an attribute path.
    fn parse_comparison(&mut self, path: AttrPath, start: usize) -> Result<Filter, FilterError> {
        self.skip_ws();
        let op_pos = self.pos;
        let word = self.word_at(op_pos);
        let is_not = path.urn.is_none() && path.sub_attr.is_none() && path.attr == "not";
        if word.is_empty() {
            let msg = if is_not {
                "expected '(' after 'not'".to_string()
            } else if self.at_end() {
                format!("expected a comparison operator after '{path}'")
            } else {
                "expected a comparison operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)"
                    .to_string()
            };
            return Err(self.err(op_pos, msg));
        }
        if word.eq_ignore_ascii_case("pr") {
            self.pos += 2;
            self.count_term(start)?;
            return Ok(Filter::Present(path));
        }
        let Some(op) = CompareOp::from_keyword(&word) else {
            let msg = if is_not {
                "expected '(' after 'not'".to_string()
            } else {
                format!(
                    "unknown operator '{word}': expected eq, ne, co, sw, ew, gt, ge, lt, le or pr"
                )
            };
            return Err(self.err(op_pos, msg));
        };
        self.pos += word.len();
        self.skip_ws();
        let value = self.parse_value(op)?;
        self.count_term(start)?;
        Ok(Filter::Compare { path, op, value })
    }

    /// `[ valFilter ]` after `path`; the cursor is on `[`.
    pub(crate) fn parse_brackets(
        &mut self,
        path: &AttrPath,
        path_start: usize,
    ) -> Result<Filter, FilterError> {
        let open = self.pos;
        if self.in_brackets {
            return Err(self.err(
                open,
                "nested value filters ('[' inside '[…]') are not allowed",
            ));
        }
        if path.sub_attr.is_some() {
            return Err(self.err(
                path_start,
                "a value filter must follow an attribute name, not a sub-attribute",
            ));
        }
        self.enter()?;
        self.in_brackets = true;
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(']') {
            return Err(self.err(self.pos, "empty value filter"));
        }
        let inner = self.parse_or()?;
        self.skip_ws();
        if self.peek() != Some(']') {
            return Err(self.err(
                self.pos,
                format!("expected ']' to close the '[' at position {open}"),
            ));
        }
        self.pos += 1;
        self.in_brackets = false;
        self.leave();
        Ok(inner)
    }

    /// An attribute path token: `[urn ":"] attr ["." sub]`. The URN is
    /// everything before the last ':' (URNs contain dots, e.g. "2.0").
    pub(crate) fn parse_attr_path(&mut self) -> Result<AttrPath, FilterError> {
        let start = self.pos;
        while self.peek().is_some_and(is_path_char) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.err(start, "expected an attribute name"));
        }
        let token: String = self
            .chars
            .iter()
            .skip(start)
            .take(self.pos - start)
            .collect();
        let (urn, rest, rest_start) = match token.rsplit_once(':') {
            Some((urn, rest)) => {
                // Byte length == char count: the token is ASCII only.
                if urn.len() <= 4 || !urn.get(..4).is_some_and(|u| u.eq_ignore_ascii_case("urn:")) {
                    return Err(self.err(
                        start,
                        "a qualified attribute must start with a 'urn:' schema URN",
                    ));
                }
                (Some(urn.to_string()), rest, start + urn.len() + 1)
            }
            None => (None, token.as_str(), start),
        };
        let mut parts = rest.splitn(2, '.');
        let attr = parts.next().unwrap_or_default();
        if !is_attr_name(attr) {
            return Err(self.err(rest_start, "invalid attribute name"));
        }
        let sub_attr = match parts.next() {
            None => None,
            Some(sub) => {
                let sub_start = rest_start + attr.len() + 1;
                if !is_attr_name(sub) {
                    let msg = if sub.contains('.') {
                        "too many '.': only attribute.subAttribute is allowed"
                    } else {
                        "invalid sub-attribute name"
                    };
                    return Err(self.err(sub_start, msg));
                }
                Some(sub.to_string())
            }
        };
        Ok(AttrPath {
            urn,
            attr: attr.to_string(),
            sub_attr,
        })
    }

    /// A bare attribute name (the sub-attribute after `]` in a PATCH path).
    pub(crate) fn parse_name(&mut self) -> Result<String, FilterError> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$'))
        {
            self.pos += 1;
        }
        let name: String = self
            .chars
            .iter()
            .skip(start)
            .take(self.pos - start)
            .collect();
        if !is_attr_name(&name) {
            return Err(self.err(start, "expected a sub-attribute name"));
        }
        Ok(name)
    }

    /// `compValue = false / null / true / number / string`.
    fn parse_value(&mut self, op: CompareOp) -> Result<CompValue, FilterError> {
        match self.peek() {
            None => Err(self.err(self.pos, format!("expected a value after '{op}'"))),
            Some('"') => self.parse_string().map(CompValue::Str),
            Some(c) if c == '-' || c.is_ascii_digit() => self.parse_number().map(CompValue::Num),
            Some(c) if c.is_ascii_alphabetic() => {
                let word = self.word_at(self.pos);
                let lit = if word.eq_ignore_ascii_case("true") {
                    Some(CompValue::Bool(true))
                } else if word.eq_ignore_ascii_case("false") {
                    Some(CompValue::Bool(false))
                } else if word.eq_ignore_ascii_case("null") {
                    Some(CompValue::Null)
                } else {
                    None
                };
                let followed_by_name = self
                    .chars
                    .get(self.pos + word.len())
                    .is_some_and(|&c| is_path_char(c));
                match lit {
                    Some(v) if !followed_by_name => {
                        self.pos += word.len();
                        Ok(v)
                    }
                    _ => Err(self.err(
                        self.pos,
                        "expected a value (a string in double quotes, a number, true, false or null)",
                    )),
                }
            }
            Some(_) => Err(self.err(
                self.pos,
                "expected a value (a string in double quotes, a number, true, false or null)",
            )),
        }
    }

    /// A JSON string literal with all JSON escapes; the cursor is on `"`.
    fn parse_string(&mut self) -> Result<String, FilterError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err(open, "unterminated string: missing closing '\"'"));
            };
            self.pos += 1;
            match c {
                // PostgreSQL text cannot hold U+0000, and no directory
                // value needs it: refused on every store alike.
                '"' if out.contains('\0') => {
                    return Err(self.err(open, "strings may not contain U+0000"))
                }
                '"' => return Ok(out),
                '\\' => {
                    let esc_pos = self.pos - 1;
                    let Some(e) = self.peek() else {
                        return Err(self.err(open, "unterminated string: missing closing '\"'"));
                    };
                    self.pos += 1;
                    match e {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '/' => out.push('/'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => out.push(self.parse_unicode_escape(esc_pos)?),
                        _ => return Err(self.err(esc_pos, "invalid escape sequence in string")),
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex4(&mut self, esc_pos: usize) -> Result<u32, FilterError> {
        let mut v = 0u32;
        for _ in 0..4 {
            let d = self
                .peek()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| self.err(esc_pos, "invalid \\u escape: expected 4 hex digits"))?;
            v = v * 16 + d;
            self.pos += 1;
        }
        Ok(v)
    }

    /// After `\u`: one code point, combining a UTF-16 surrogate pair.
    fn parse_unicode_escape(&mut self, esc_pos: usize) -> Result<char, FilterError> {
        let hi = self.hex4(esc_pos)?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if self.peek() != Some('\\') || self.chars.get(self.pos + 1) != Some(&'u') {
                return Err(self.err(esc_pos, "unpaired UTF-16 surrogate in \\u escape"));
            }
            let lo_pos = self.pos;
            self.pos += 2;
            let lo = self.hex4(lo_pos)?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(self.err(esc_pos, "unpaired UTF-16 surrogate in \\u escape"));
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else if (0xDC00..0xE000).contains(&hi) {
            return Err(self.err(esc_pos, "unpaired UTF-16 surrogate in \\u escape"));
        } else {
            hi
        };
        char::from_u32(code).ok_or_else(|| self.err(esc_pos, "invalid \\u escape"))
    }

    /// JSON number syntax: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn parse_number(&mut self) -> Result<serde_json::Number, FilterError> {
        let start = self.pos;
        let bad = |p: &Parser| p.err(start, "invalid number");
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        match self.peek() {
            Some('0') => self.pos += 1,
            Some(c) if c.is_ascii_digit() => self.eat_digits(),
            _ => return Err(bad(self)),
        }
        if self.peek() == Some('.') {
            self.pos += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(bad(self));
            }
            self.eat_digits();
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(bad(self));
            }
            self.eat_digits();
        }
        if self.peek().is_some_and(is_path_char) {
            return Err(bad(self));
        }
        let text: String = self
            .chars
            .iter()
            .skip(start)
            .take(self.pos - start)
            .collect();
        // Integers stay exact; everything else goes through std's correctly
        // rounded float parser (serde_json's default one is not, which
        // would break print/parse round trips).
        if !text.contains(['.', 'e', 'E']) {
            if let Ok(n) = text.parse::<i64>() {
                return Ok(n.into());
            }
            if let Ok(n) = text.parse::<u64>() {
                return Ok(n.into());
            }
        }
        text.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .ok_or_else(|| self.err(start, "number out of range"))
    }

    fn eat_digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }
}

// ---------------------------------------------------------------------------
// In-memory evaluation
// ---------------------------------------------------------------------------

/// Evaluate a filter against one JSON object (a resource, or one element of
/// a multi-valued complex attribute for a relative filter).
///
/// * keys are looked up case-insensitively; a URN-qualified path looks
///   inside the object under that URN key when there is one (extension
///   attributes), else at the top level (core attributes);
/// * a multi-valued attribute matches if any of its values matches; a
///   complex value compared without a sub-attribute uses its `value`;
/// * strings compare case-insensitively unless `case_exact(path)`; inside
///   `attr[…]` the callback gets `attr.sub` so callers see full paths;
/// * `gt`/`ge`/`lt`/`le` order strings lexicographically (fine for RFC 3339
///   dateTimes) and numbers numerically; booleans support only `eq`/`ne`;
/// * `pr` means present and not null, `[]`, `{}` or `""`; `eq null` means
///   "not present" and `ne null` "present"; `ne x` is `not (eq x)`.
pub fn matches(filter: &Filter, value: &Value, case_exact: &dyn Fn(&AttrPath) -> bool) -> bool {
    match filter {
        Filter::And(l, r) => matches(l, value, case_exact) && matches(r, value, case_exact),
        Filter::Or(l, r) => matches(l, value, case_exact) || matches(r, value, case_exact),
        Filter::Not(inner) => !matches(inner, value, case_exact),
        Filter::Present(path) => raw_values(value, path).into_iter().any(is_non_empty),
        Filter::ValuePath { path, filter } => {
            let base = AttrPath {
                urn: path.urn.clone(),
                attr: path.attr.clone(),
                sub_attr: None,
            };
            let nested = |p: &AttrPath| {
                case_exact(&AttrPath {
                    urn: path.urn.clone(),
                    attr: path.attr.clone(),
                    sub_attr: Some(p.attr.clone()),
                })
            };
            raw_values(value, &base)
                .into_iter()
                .any(|elem| elem.is_object() && matches(filter, elem, &nested))
        }
        Filter::Compare {
            path,
            op,
            value: lit,
        } => {
            let exact = case_exact(path);
            let candidates: Vec<&Value> = raw_values(value, path)
                .into_iter()
                .filter_map(|v| match v {
                    // `emails eq "x"` means `emails.value eq "x"`.
                    Value::Object(o) if path.sub_attr.is_none() => get_ci(o, "value"),
                    v => Some(v),
                })
                .collect();
            match (op, lit) {
                (CompareOp::Eq, CompValue::Null) => !candidates.into_iter().any(is_non_empty),
                (CompareOp::Ne, CompValue::Null) => candidates.into_iter().any(is_non_empty),
                (_, CompValue::Null) => false,
                (CompareOp::Ne, lit) => !candidates
                    .into_iter()
                    .any(|c| compare(c, CompareOp::Eq, lit, exact)),
                (op, lit) => candidates.into_iter().any(|c| compare(c, *op, lit, exact)),
            }
        }
    }
}

/// Exact key first (canonical documents), then case-insensitive.
pub(crate) fn get_ci<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn is_non_empty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => a.iter().any(is_non_empty),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// All values `path` denotes in `root`, arrays flattened one level.
fn raw_values<'v>(root: &'v Value, path: &AttrPath) -> Vec<&'v Value> {
    let Value::Object(obj) = root else {
        return Vec::new();
    };
    let base = match &path.urn {
        Some(urn) => match get_ci(obj, urn) {
            Some(Value::Object(ext)) => ext,
            _ => obj,
        },
        None => obj,
    };
    let Some(top) = get_ci(base, &path.attr) else {
        return Vec::new();
    };
    let tops = flatten(top);
    match &path.sub_attr {
        None => tops,
        Some(sub) => tops
            .into_iter()
            .filter_map(|v| v.as_object().and_then(|o| get_ci(o, sub)))
            .flat_map(flatten)
            .collect(),
    }
}

fn flatten(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    }
}

fn compare(candidate: &Value, op: CompareOp, lit: &CompValue, exact: bool) -> bool {
    use std::cmp::Ordering;
    let ordering_ok = |o: Ordering| match op {
        CompareOp::Eq => o == Ordering::Equal,
        CompareOp::Ne => o != Ordering::Equal,
        CompareOp::Gt => o == Ordering::Greater,
        CompareOp::Ge => o != Ordering::Less,
        CompareOp::Lt => o == Ordering::Less,
        CompareOp::Le => o != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    };
    match (candidate, lit) {
        (Value::String(c), CompValue::Str(l)) => {
            let (c, l) = if exact {
                (c.clone(), l.clone())
            } else {
                (c.to_lowercase(), l.to_lowercase())
            };
            match op {
                CompareOp::Co => c.contains(&l),
                CompareOp::Sw => c.starts_with(&l),
                CompareOp::Ew => c.ends_with(&l),
                _ => ordering_ok(c.cmp(&l)),
            }
        }
        (Value::Number(c), CompValue::Num(l)) => compare_numbers(c, l).is_some_and(ordering_ok),
        (Value::Bool(c), CompValue::Bool(l)) => match op {
            CompareOp::Eq => c == l,
            CompareOp::Ne => c != l,
            _ => false,
        },
        _ => false,
    }
}

/// Integers compare exactly; anything involving a float goes through f64.
fn compare_numbers(a: &serde_json::Number, b: &serde_json::Number) -> Option<std::cmp::Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    if a.is_i64() && b.is_u64() {
        // a is negative (else as_u64 would have succeeded), b non-negative.
        return Some(std::cmp::Ordering::Less);
    }
    if a.is_u64() && b.is_i64() {
        return Some(std::cmp::Ordering::Greater);
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

#[cfg(test)]
mod tests;
