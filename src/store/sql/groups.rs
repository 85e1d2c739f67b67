//! The statements over `groups` and `group_members` read in more than one
//! place.

use crate::store::Dialect;

/// A group's columns as `GroupRow` reads them.
pub(crate) fn group_columns(d: Dialect) -> String {
    format!(
        "id, {} AS doc, version, created_at, updated_at",
        d.doc_out()
    )
}

/// Members with the name to show for each. A user's comes from the
/// covering index `users_member_display` (migration 0006); a group is
/// looked up only for members that are groups, so a large group of users
/// costs one index search per member.
pub(crate) const MEMBER_SELECT: &str = "SELECT gm.group_id, gm.member_id, gm.member_type, \
     CASE gm.member_type \
     WHEN 'Group' THEN (SELECT g.display_name FROM groups g WHERE g.id = gm.member_id) \
     ELSE COALESCE(u.display_name, u.user_name) END AS display \
     FROM group_members gm LEFT JOIN users u ON u.id = gm.member_id";
