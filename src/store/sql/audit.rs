//! The audit log's INSERT, alone or joined to the write it records.

use std::sync::LazyLock;

use crate::store::Dialect;

/// The columns of an event, in the order `audit::event_args` binds them.
pub(crate) const EVENT_WRITTEN_COLUMNS: &str =
    "occurred_at, id, org_id, directory_id, actor_type, actor_id, source_ip, request_id, \
     action, outcome, status, scim_type, detail, target_type, target_id, target_created_at, \
     target_identifier, identifier_ci, email_ci, external_id, changed_attributes, \
     members_added, members_removed";

/// `INSERT INTO audit_events (…)` naming [`EVENT_WRITTEN_COLUMNS`] (a unit
/// test holds the two lists equal).
pub(crate) const EVENT_INSERT_COLUMNS: &str =
    "INSERT INTO audit_events (occurred_at, id, org_id, directory_id, actor_type, actor_id, \
     source_ip, request_id, action, outcome, status, scim_type, detail, target_type, target_id, \
     target_created_at, target_identifier, identifier_ci, email_ci, external_id, \
     changed_attributes, members_added, members_removed)";

/// Values of one event (`audit::event_args`).
pub(crate) const EVENT_VALUES: usize = 23;

/// The placeholders of one event's values, after `offset` others.
pub(crate) fn event_params(offset: usize) -> String {
    (offset + 1..=offset + EVENT_VALUES)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserting one event.
pub(crate) static INSERT_EVENT: LazyLock<String> =
    LazyLock::new(|| format!("{EVENT_INSERT_COLUMNS} VALUES ({})", event_params(0)));

/// `write` (an INSERT or UPDATE of exactly one row, with parameters `$1`
/// to `$n`) and the INSERT of its event as one statement, so recording the
/// event costs no extra round trip to the database. The event's values are
/// bound after the write's (`audit::event_args`).
pub(crate) fn with_event(d: Dialect, write: &str, n: usize) -> String {
    one_statement(d, write, &[], Some(n))
}

/// `write` (an INSERT or UPDATE of exactly one row), then `also` (inserts
/// of rows that belong to it), then, with `event_after = Some(n)`, the
/// INSERT of its event with parameters after `$n`, as one call: statements
/// sharing numbered parameters on SQLite (one hand-off to the connection's
/// thread), data-modifying CTEs on PostgreSQL (one round trip, and one
/// statement, atomic on its own; foreign keys are checked at its end).
pub(crate) fn one_statement(
    d: Dialect,
    write: &str,
    also: &[&str],
    event_after: Option<usize>,
) -> String {
    let insert_columns = EVENT_INSERT_COLUMNS;
    match d {
        Dialect::Sqlite => {
            let mut parts: Vec<String> = vec![write.to_owned()];
            parts.extend(also.iter().map(|s| (*s).to_owned()));
            if let Some(n) = event_after {
                parts.push(format!("{insert_columns} VALUES ({})", event_params(n)));
            }
            parts.join("; ")
        }
        Dialect::Postgres => {
            let mut sql = format!("WITH written AS ({write} RETURNING 1)");
            for (i, statement) in also.iter().enumerate() {
                sql.push_str(&format!(", also{i} AS ({statement})"));
            }
            match event_after {
                Some(n) => sql.push_str(&format!(
                    " {insert_columns} SELECT {} FROM written",
                    event_params(n)
                )),
                None => sql.push_str(" SELECT 1 FROM written"),
            }
            sql
        }
    }
}
