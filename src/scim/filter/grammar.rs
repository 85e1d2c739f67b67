//! The filter grammar (RFC 7644 §3.4.2.2), and the lexer PATCH paths share.

use super::{CompValue, CompareOp, Filter, FilterError, MAX_DEPTH, MAX_TERMS};
use crate::scim::path::AttrPath;

/// Characters that can appear in an attribute-path token: name characters,
/// `$` (for `$ref`) and the `:`/`.` separators (URNs contain both).
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$' | ':' | '.')
}

/// RFC 7643 §2.1: `ATTRNAME = ALPHA *(nameChar)`, plus `$ref`.
fn is_attr_name(s: &str) -> bool {
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
