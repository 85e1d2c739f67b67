//! Cursors of cursor-based paging (RFC 9865): what a `nextCursor` says and
//! how it is checked when it comes back.
//!
//! A cursor is the key of the last row served, in the lists' default order
//! (creation time, then id), so the next page is a keyset seek that costs
//! the same wherever it starts. It also carries which list it walks (a
//! root `/.search` walks the users, then the groups), the `count` it was
//! made for and when it expires, and it is authenticated: an HMAC-SHA-256
//! over those bytes, the directory and a fingerprint of the query (the
//! endpoint and the filter). A cursor altered, made for another directory
//! or another query fails that check and is `invalidCursor`; an authentic
//! one past its time is `expiredCursor`; one used with another `count` is
//! `invalidCount` (RFC 9865 §2.1).
//!
//! The text is unpadded base64url, only characters of RFC 3986's
//! unreserved set, as RFC 9865 §2 requires. Pure: the key and the clock
//! are the caller's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::filter::Filter;
use super::ScimError;

const VERSION: u8 = 1;
/// Bytes of the MAC kept in a cursor: 128 bits.
const MAC_LEN: usize = 16;
/// version, list, created_at, id, expires_at, count.
const BODY_LEN: usize = 1 + 1 + 8 + 16 + 8 + 8;

/// The list a cursor walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorList {
    Users,
    Groups,
}

impl CursorList {
    fn byte(self) -> u8 {
        match self {
            CursorList::Users => 0,
            CursorList::Groups => 1,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(CursorList::Users),
            1 => Some(CursorList::Groups),
            _ => None,
        }
    }
}

/// Where a page starts: after the row with this key in `list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub list: CursorList,
    pub created_at: i64,
    pub id: Uuid,
}

impl Position {
    /// Before every row of `list`.
    pub fn start(list: CursorList) -> Self {
        Position {
            list,
            created_at: i64::MIN,
            id: Uuid::nil(),
        }
    }
}

/// What a cursor is bound to: a directory and a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CursorScope {
    directory_id: Uuid,
    query: [u8; 32],
}

impl CursorScope {
    /// The query is the endpoint (`"Users"`, `"Groups"`, `"search"`) and
    /// the filter in its canonical printing, so the same filter written
    /// with other spacing or case of its keywords is the same query.
    pub fn new(directory_id: Uuid, endpoint: &str, filter: Option<&Filter>) -> Self {
        let mut h = Sha256::new();
        h.update(endpoint.as_bytes());
        h.update([0]);
        if let Some(f) = filter {
            h.update([1]);
            h.update(f.to_string().as_bytes());
        }
        CursorScope {
            directory_id,
            query: h.finalize().into(),
        }
    }
}

/// The secret cursors are authenticated with.
#[derive(Clone)]
pub struct CursorKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(…)")
    }
}

impl CursorKey {
    pub fn new(secret: &[u8]) -> Self {
        CursorKey {
            key: secret.to_vec(),
        }
    }

    fn mac(&self, scope: &CursorScope, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes a key of any length; `new_from_slice` cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(scope.directory_id.as_bytes());
        mac.update(&scope.query);
        mac.update(body);
        mac
    }

    /// A cursor for the page after `at`, valid until `expires_at` (seconds
    /// since the epoch), for pages of `count`.
    pub fn encode(&self, scope: &CursorScope, at: Position, count: i64, expires_at: i64) -> String {
        let mut bytes = Vec::with_capacity(BODY_LEN + MAC_LEN);
        bytes.push(VERSION);
        bytes.push(at.list.byte());
        bytes.extend_from_slice(&at.created_at.to_be_bytes());
        bytes.extend_from_slice(at.id.as_bytes());
        bytes.extend_from_slice(&expires_at.to_be_bytes());
        bytes.extend_from_slice(&count.to_be_bytes());
        let tag = self.mac(scope, &bytes).finalize().into_bytes();
        bytes.extend_from_slice(&tag[..MAC_LEN]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position a cursor names, if it is one this server made for this
    /// directory and query, has not expired at `now` (seconds since the
    /// epoch) and was made for pages of `count`.
    pub fn decode(
        &self,
        token: &str,
        scope: &CursorScope,
        count: i64,
        now: i64,
    ) -> Result<Position, ScimError> {
        let invalid = || {
            ScimError::invalid_cursor(
                "the cursor is not one this server returned for this query; \
                 start again with an empty cursor",
            )
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| invalid())?;
        if bytes.len() != BODY_LEN + MAC_LEN || bytes[0] != VERSION {
            return Err(invalid());
        }
        let (body, tag) = bytes.split_at(BODY_LEN);
        self.mac(scope, body)
            .verify_truncated_left(tag)
            .map_err(|_| invalid())?;
        let int = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&body[at..at + 8]);
            i64::from_be_bytes(b)
        };
        let list = CursorList::from_byte(body[1]).ok_or_else(invalid)?;
        let created_at = int(2);
        let id = Uuid::from_slice(&body[10..26]).map_err(|_| invalid())?;
        let expires_at = int(26);
        let made_for = int(34);
        if now > expires_at {
            return Err(ScimError::expired_cursor(
                "the cursor has expired; start again with an empty cursor",
            ));
        }
        if made_for != count {
            return Err(ScimError::invalid_count(format!(
                "count must stay {made_for}, the count this cursor's query began with"
            )));
        }
        Ok(Position {
            list,
            created_at,
            id,
        })
    }
}

#[cfg(test)]
mod tests;
