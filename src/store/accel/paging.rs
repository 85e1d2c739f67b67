//! Pages of a directory's users or groups with as few statements as the
//! page allows, seeking from remembered positions ([`super::cursors`])
//! when it can.

use std::collections::HashMap;

use sqlx::{ColumnIndex, Decode, FromRow, Type};
use uuid::Uuid;

use super::cursors::{Mark, PageCursors, SETTLE_MICROS};
use crate::store::conn::{Arg, Conn, Record, SqlBuilder};
use crate::store::filter_sql::{Bind, Keyset, ListKey, ListQuery, Page};
use crate::store::Result;
use crate::time::now_micros;

/// One page and the total count, with as few queries as the page allows:
/// - the first page is read directly; if it is not full, its length is the
///   total and no `COUNT(*)` runs (a `userName eq` look-up is one query);
/// - a later page of the whole directory in its default order seeks from a
///   remembered position ([`fetch_from_marks`]);
/// - any other later page reads its ids first (an index-only scan for the
///   default order) and then only those rows, so a deep page skips index
///   entries, not whole documents.
///
/// Returns `(total, rows in page order)`.
pub(crate) async fn fetch_page<C: Conn, R: Record + ListKey>(
    c: &mut C,
    cursors: &PageCursors,
    query: &ListQuery,
    table: &'static str,
    columns: &str,
    directory_id: Uuid,
    page: Page,
) -> Result<(i64, Vec<R>)> {
    if query.is_plain() && page.count > 0 {
        let from_marks = fetch_from_marks(c, cursors, table, columns, directory_id, page).await?;
        if let Some(found) = from_marks {
            return Ok(found);
        }
    }
    let mut rows: Vec<R> = Vec::new();
    if page.count > 0 && page.start_index <= 1 {
        let (sql, binds) = query.select_sql(table, columns, page);
        rows = c
            .fetch_all(&sql, &in_directory(directory_id, &binds))
            .await?;
    } else if page.count > 0 {
        let (sql, binds) = query.select_sql(table, &format!("{table}.id"), page);
        let ids: Vec<(Uuid,)> = c
            .fetch_all(&sql, &in_directory(directory_id, &binds))
            .await?;
        if !ids.is_empty() {
            let mut q = SqlBuilder::new(
                C::DIALECT,
                format!("SELECT {columns} FROM {table} WHERE directory_id = "),
            );
            q.push_bind(directory_id).push(" AND id IN (");
            q.push_list(ids.iter().map(|(id,)| *id)).push(")");
            let mut found: HashMap<Uuid, R> = c
                .fetch_all::<R>(q.sql(), q.args())
                .await?
                .into_iter()
                .map(|r| (r.list_key().1, r))
                .collect();
            rows.extend(ids.iter().filter_map(|(id,)| found.remove(id)));
        }
    }
    let len = rows.len() as i64;
    // A page that is neither empty nor full ends the result set.
    let total = if len > 0 && len < page.count {
        page.start_index.max(1) - 1 + len
    } else if len == 0 && page.count > 0 && page.start_index <= 1 {
        0
    } else {
        let (sql, binds) = query.count_sql(table);
        let (count,): (i64,) = c
            .fetch_one(&sql, &in_directory(directory_id, &binds))
            .await?;
        count
    };
    Ok((total, rows))
}

/// A keyset page (RFC 9865 cursors): up to `count` rows after the key in
/// the default order, or up to `count` rows before it (read nearest first,
/// then turned back to the default order), whether more follow in that
/// direction, and the total count. The rows are one index seek wherever
/// the page is, either way; the total is counted as a first page counts
/// it ([`fetch_page`]: from the marks for a whole directory, so deep in a
/// large one it counts only the rows after the last mark).
///
/// Returns `(total, rows in order, more)`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn fetch_keyset<C: Conn, R: Record + ListKey>(
    c: &mut C,
    cursors: &PageCursors,
    query: &ListQuery,
    table: &'static str,
    columns: &str,
    directory_id: Uuid,
    keyset: Keyset,
    count: i64,
) -> Result<(i64, Vec<R>, bool)> {
    let (rows, more) =
        fetch_keyset_rows(c, query, table, columns, directory_id, keyset, count).await?;
    let first = Page {
        start_index: 1,
        count: 1,
    };
    let (total, _) =
        fetch_page::<C, R>(c, cursors, query, table, columns, directory_id, first).await?;
    Ok((total, rows, more))
}

/// The rows of [`fetch_keyset`] without its total, for browsing where
/// nothing needs the count: one index seek, however large the directory.
///
/// Returns `(rows in order, more)`.
pub(crate) async fn fetch_keyset_rows<C: Conn, R: Record>(
    c: &mut C,
    query: &ListQuery,
    table: &'static str,
    columns: &str,
    directory_id: Uuid,
    keyset: Keyset,
    count: i64,
) -> Result<(Vec<R>, bool)> {
    let mut rows: Vec<R> = Vec::new();
    let mut more = false;
    if count > 0 {
        // One row past the page says whether another page follows.
        let (sql, binds) = match keyset {
            Keyset::After(created_at, id) => {
                query.select_after_sql(table, columns, (created_at, id), count + 1)
            }
            Keyset::Before(created_at, id) => {
                query.select_before_sql(table, columns, (created_at, id), count + 1)
            }
        };
        rows = c
            .fetch_all(&sql, &in_directory(directory_id, &binds))
            .await?;
        if rows.len() as i64 > count {
            rows.truncate(count as usize);
            more = true;
        }
        if matches!(keyset, Keyset::Before(..)) {
            rows.reverse();
        }
    }
    Ok((rows, more))
}

/// `$1`, the directory, then the filter's own values.
fn in_directory(directory_id: Uuid, binds: &[Bind]) -> Vec<Arg<'_>> {
    let mut args = Vec::with_capacity(binds.len() + 1);
    args.push(directory_id.into());
    args.extend(binds.iter().map(Arg::from));
    args
}

/// The statements of [`fetch_from_marks`] for one table and column list.
struct MarkSql {
    hop: String,
    end: String,
    page: String,
}

/// `(SELECT list_epoch …)`: the directory's epoch, read with each seek.
const EPOCH_SQL: &str = "(SELECT list_epoch FROM directories WHERE id = $1)";

impl MarkSql {
    fn new(table: &str, columns: &str) -> Self {
        let epoch_sql = EPOCH_SQL;
        let order = format!("ORDER BY {table}.created_at, {table}.id");
        let hop = format!(
            "SELECT {table}.created_at, {table}.id, {epoch_sql} FROM {table} \
             WHERE {table}.directory_id = $1 AND ({table}.created_at, {table}.id) >= ($2, $3) \
             {order} LIMIT 1 OFFSET $4"
        );
        let tail_sql = count_from(table, 4);
        // The last row old enough to be marked (created before `$4`), if it
        // is after the key `$2, $3`: its key, how many rows from that key
        // to it, and the epoch. A seek, and a count only when there is
        // something to mark.
        let end = format!(
            "SELECT e.created_at, e.id, ({} AND (tail.created_at, tail.id) <= (e.created_at, e.id)), \
             {epoch_sql} FROM (SELECT created_at, id FROM {table} WHERE directory_id = $1 \
             AND created_at < $4 ORDER BY created_at DESC, id DESC LIMIT 1) e \
             WHERE (e.created_at, e.id) > ($2, $3)",
            count_from(table, 2)
        );
        // The page's ids are found first (in the index alone), then only
        // those rows are read, by primary key: rows skipped by OFFSET never
        // have their documents read or converted. (The subquery keeps to
        // the directory; repeating that outside made SQLite walk the whole
        // directory testing each row against the id list.)
        let page = format!(
            "SELECT {columns}, {epoch_sql} AS list_epoch, ({tail_sql}) AS tail FROM {table} \
             WHERE {table}.id IN (\
             SELECT page.id FROM {table} page WHERE page.directory_id = $1 \
             AND (page.created_at, page.id) >= ($2, $3) \
             ORDER BY page.created_at, page.id LIMIT $6 OFFSET $7) {order}"
        );
        MarkSql { hop, end, page }
    }
}

/// Rows from the key bound at `$n, $n+1` to the end of the list.
fn count_from(table: &str, n: usize) -> String {
    format!(
        "SELECT COUNT(*) FROM {table} tail WHERE tail.directory_id = $1 \
         AND (tail.created_at, tail.id) >= (${n}, ${})",
        n + 1
    )
}

/// A row of a page read from a mark, with the directory's epoch and the
/// count of rows after the last mark, read in the same statement.
struct OnPage<R> {
    row: R,
    list_epoch: i64,
    tail: i64,
}

impl<'r, X, R> FromRow<'r, X> for OnPage<R>
where
    X: sqlx::Row,
    R: FromRow<'r, X>,
    i64: Decode<'r, X::Database> + Type<X::Database>,
    &'static str: ColumnIndex<X>,
{
    fn from_row(row: &'r X) -> Result<Self, sqlx::Error> {
        Ok(OnPage {
            row: R::from_row(row)?,
            list_epoch: row.try_get("list_epoch")?,
            tail: row.try_get("tail")?,
        })
    }
}

/// The row `hop` rows after `from`, if there is one, the epoch it was
/// read at, and whether it is old enough to mark.
async fn hop_from<C: Conn>(
    c: &mut C,
    sql: &MarkSql,
    directory_id: Uuid,
    from: Mark,
    hop: i64,
    now: i64,
) -> Result<Option<(Mark, i64, bool)>> {
    let args = [
        directory_id.into(),
        from.created_at.into(),
        from.id.into(),
        hop.into(),
    ];
    let landed: Option<(i64, Uuid, i64)> = c.fetch_optional(&sql.hop, &args).await?;
    Ok(landed.map(|(created_at, id, epoch)| {
        let next = Mark {
            position: from.position + hop,
            created_at,
            id,
        };
        (next, epoch, created_at < now - SETTLE_MICROS)
    }))
}

/// A page of a whole directory in creation order, read from the nearest
/// remembered position (see [`super::cursors`]):
/// - hops of [`HOP`](super::cursors::HOP) rows lay marks up to the page;
/// - one statement then reads the page, the directory's `list_epoch` and
///   the number of rows from the last mark on: `totalResults` is that mark's
///   position plus a count of the rows after it;
/// - when that count is long, the last row old enough to be marked is
///   marked (a seek, and a count up to it), so the next page's count is
///   short.
///
/// `None` when the epoch kept moving (deletions while seeking); the caller
/// then reads the page by offset.
async fn fetch_from_marks<C: Conn, R: Record + ListKey>(
    c: &mut C,
    cursors: &PageCursors,
    table: &'static str,
    columns: &str,
    directory_id: Uuid,
    page: Page,
) -> Result<Option<(i64, Vec<R>)>> {
    let start = page.start_index.max(1);
    let hop = cursors.hop();
    let now = now_micros();
    let sql = MarkSql::new(table, columns);
    let (mut mark, mut last, mut epoch) = cursors.seek(directory_id, table, start);
    let mut out: Option<(i64, Vec<R>)> = None;
    // A second attempt starts over after the epoch moved; a third
    // would chase a directory being deleted from, so it gives up.
    'attempt: for _ in 0..2 {
        // Up to the page, one walker of the list at a time (the others
        // then start from the marks it laid); the lock is let go
        // before the page itself is read.
        let walking = if start - mark.position >= hop {
            let walking = cursors.walking(directory_id, table).await;
            let (seen, seen_last, seen_epoch) = cursors.seek(directory_id, table, start);
            if seen.position > mark.position && seen_epoch.is_some() {
                (mark, last, epoch) = (seen, seen_last, seen_epoch);
            }
            Some(walking)
        } else {
            None
        };
        while start - mark.position >= hop {
            let Some((next, now_epoch, settled)) =
                hop_from(c, &sql, directory_id, mark, hop, now).await?
            else {
                break;
            };
            if epoch.is_some_and(|e| e != now_epoch) {
                cursors.invalidate(directory_id, table, now_epoch);
                (mark, last, epoch) = (Mark::START, Mark::START, Some(now_epoch));
                continue 'attempt;
            }
            epoch = Some(now_epoch);
            if !settled {
                break;
            }
            cursors.record(directory_id, table, now_epoch, now, [next]);
            mark = next;
        }
        drop(walking);
        if mark.position > last.position {
            last = mark;
        }
        let args = [
            directory_id.into(),
            mark.created_at.into(),
            mark.id.into(),
            last.created_at.into(),
            last.id.into(),
            page.count.into(),
            (start - mark.position).into(),
        ];
        let raw: Vec<OnPage<R>> = c.fetch_all(&sql.page, &args).await?;
        let (now_epoch, tail): (i64, i64) = match raw.first() {
            Some(first) => (first.list_epoch, first.tail),
            None => {
                let sql = format!("SELECT {EPOCH_SQL}, ({})", count_from(table, 2));
                let args = [directory_id.into(), last.created_at.into(), last.id.into()];
                c.fetch_one(&sql, &args).await?
            }
        };
        if epoch.is_some_and(|e| e != now_epoch) {
            cursors.invalidate(directory_id, table, now_epoch);
            (mark, last, epoch) = (Mark::START, Mark::START, Some(now_epoch));
            continue 'attempt;
        }
        let rows: Vec<R> = raw.into_iter().map(|r| r.row).collect();
        let ends = [rows.first(), rows.last()];
        let ends = ends
            .iter()
            .zip([0, rows.len().max(1) as i64 - 1])
            .filter_map(|(r, i)| {
                r.map(|r| {
                    let (created_at, id) = r.list_key();
                    Mark {
                        position: start + i,
                        created_at,
                        id,
                    }
                })
            });
        cursors.record(directory_id, table, now_epoch, now, ends);
        out = Some((last.position - 1 + tail, rows));
        // A long count after the last mark: mark the last row old enough
        // to be marked, so the next pages count only the rows after it.
        if tail > (hop / 10).max(1) {
            let args = [
                directory_id.into(),
                last.created_at.into(),
                last.id.into(),
                (now - SETTLE_MICROS).into(),
            ];
            let end: Option<(i64, Uuid, i64, i64)> = c.fetch_optional(&sql.end, &args).await?;
            if let Some((created_at, id, rows, end_epoch)) = end {
                // A deletion since the page was read moved `last`: its
                // position no longer holds, so neither would the end's.
                if end_epoch == now_epoch {
                    let position = last.position + rows - 1;
                    let end = Mark {
                        position,
                        created_at,
                        id,
                    };
                    cursors.record(directory_id, table, now_epoch, now, [end]);
                } else {
                    cursors.invalidate(directory_id, table, end_epoch);
                }
            }
        }
        break;
    }
    Ok(out)
}
