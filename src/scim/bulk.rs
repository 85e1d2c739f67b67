//! Bulk requests (RFC 7644 §3.7): the operations a BulkRequest carries and
//! the order they run in. An operation may name a resource another
//! operation of the same request creates, by that operation's `bulkId`
//! (`bulkId:x`, in its data or its path): it runs once the resource exists,
//! with the reference replaced by the resource's id.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::json::get_ci;
use super::ScimError;

pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
const BULK_ID_PREFIX: &str = "bulkId:";

/// One operation as the client sent it.
#[derive(Clone, Debug)]
pub struct Operation {
    /// Uppercase.
    pub method: String,
    pub path: String,
    pub bulk_id: Option<String>,
    /// The `version` (an ETag) the operation is conditional on, as sent.
    pub version: Option<String>,
    pub data: Value,
    /// `bulkId`s this operation refers to (in its path or data).
    needs: HashSet<String>,
}

/// The resource type an operation's path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Users,
    Groups,
}

/// Collects every `bulkId:x` reference in a JSON value.
fn references(value: &Value, out: &mut HashSet<String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(BULK_ID_PREFIX) {
                out.insert(id.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        Value::Object(map) => map.values().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// Replaces `bulkId:x` references with the ids they were resolved to.
fn substitute(value: &mut Value, resolved: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(BULK_ID_PREFIX).and_then(|b| resolved.get(b)) {
                *s = id.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, resolved)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, resolved)),
        _ => {}
    }
}

/// A BulkRequest body: its operations, in request order, and
/// `failOnErrors`. More than `max_operations` operations is a 413.
pub fn parse_request(
    body: &Value,
    max_operations: usize,
) -> Result<(Vec<Operation>, Option<usize>), ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a BulkRequest must be a JSON object"))?;
    if let Some(schemas) = get_ci(obj, "schemas") {
        let ok = schemas.as_array().is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(BULK_REQUEST))
            })
        });
        if !ok {
            return Err(ScimError::invalid_value(format!(
                "'schemas' must contain {BULK_REQUEST}"
            )));
        }
    }
    let fail_on_errors = match get_ci(obj, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(n as usize),
            _ => {
                return Err(ScimError::invalid_value(
                    "'failOnErrors' must be a positive integer",
                ))
            }
        },
    };
    let ops = get_ci(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("a BulkRequest needs an 'Operations' array"))?;
    if ops.len() > max_operations {
        return Err(ScimError::payload_too_large(format!(
            "the request has {} operations; at most {max_operations} are accepted",
            ops.len()
        )));
    }
    let mut parsed = Vec::with_capacity(ops.len());
    let mut seen_bulk_ids = HashSet::new();
    for (i, op) in ops.iter().enumerate() {
        let o = op.as_object().ok_or_else(|| {
            ScimError::invalid_syntax(format!("Operations[{i}] must be an object"))
        })?;
        let text = |name: &str| get_ci(o, name).and_then(Value::as_str).map(str::to_owned);
        let method = text("method")
            .ok_or_else(|| ScimError::invalid_syntax(format!("Operations[{i}] needs a 'method'")))?
            .to_ascii_uppercase();
        let path = text("path")
            .ok_or_else(|| ScimError::invalid_syntax(format!("Operations[{i}] needs a 'path'")))?;
        let bulk_id = text("bulkId");
        if method == "POST" && bulk_id.is_none() {
            return Err(ScimError::invalid_syntax(format!(
                "Operations[{i}]: POST needs a 'bulkId'"
            )));
        }
        if let Some(b) = &bulk_id {
            if !seen_bulk_ids.insert(b.clone()) {
                return Err(ScimError::invalid_value(format!(
                    "Operations[{i}]: bulkId '{b}' is used twice"
                )));
            }
        }
        let version = text("version");
        let data = get_ci(o, "data").cloned().unwrap_or(Value::Null);
        let mut needs = HashSet::new();
        references(&data, &mut needs);
        references(&Value::String(path.clone()), &mut needs);
        if let Some(rest) = path.split('/').next_back() {
            references(&Value::String(rest.to_owned()), &mut needs);
        }
        parsed.push(Operation {
            method,
            path,
            bulk_id,
            version,
            data,
            needs,
        });
    }
    Ok((parsed, fail_on_errors))
}

/// `/Users`, `/Users/{id}`, `/Groups`, `/Groups/{id}`.
pub fn route(path: &str) -> Result<(Kind, Option<&str>), ScimError> {
    let trimmed = path.trim().trim_start_matches('/');
    let (head, id) = match trimmed.split_once('/') {
        Some((h, id)) => (h, Some(id)),
        None => (trimmed, None),
    };
    let kind = if head.eq_ignore_ascii_case("Users") {
        Kind::Users
    } else if head.eq_ignore_ascii_case("Groups") {
        Kind::Groups
    } else {
        return Err(ScimError::not_found(format!("no such endpoint '{path}'")));
    };
    Ok((kind, id.filter(|s| !s.is_empty())))
}

/// `/Groups/bulkId:x` after substitution is already `/Groups/<id>`; this
/// also accepts the reference as the whole last segment.
fn resolve_path_reference(path: &str, resolved: &HashMap<String, String>) -> String {
    match path.rsplit_once('/') {
        Some((head, last)) => match last
            .strip_prefix(BULK_ID_PREFIX)
            .and_then(|b| resolved.get(b))
        {
            Some(id) => format!("{head}/{id}"),
            None => path.to_owned(),
        },
        None => path.to_owned(),
    }
}

/// What to do with an operation, in the order a [`Schedule`] gives.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Run it: every `bulkId` it refers to is resolved, and replaced in
    /// `path` and `data`.
    Run { path: String, data: Value },
    /// It refers to a `bulkId` that no operation defines, or whose
    /// operation failed: it fails with `error` (a 409), as if it had run.
    Unresolved {
        path: String,
        data: Value,
        error: ScimError,
    },
    /// It waits on operations that wait on it: it never runs, and fails
    /// with `error` (a 409).
    Circular(ScimError),
}

/// The order a request's operations run in. Operations run in request
/// order; one that refers to a `bulkId` created later waits for it, so
/// passes repeat until nothing more can run. The caller reports each
/// outcome ([`Schedule::succeeded`], [`Schedule::failed`]) before it asks
/// for the next step.
pub struct Schedule<'a> {
    operations: &'a [Operation],
    defined: HashSet<&'a str>,
    resolved: HashMap<String, String>,
    failed: HashSet<String>,
    /// This pass's operations, by index, and how far it has come.
    pass: Vec<usize>,
    next_in_pass: usize,
    /// Operations of this pass that wait for a later one.
    waiting: Vec<usize>,
    progressed: bool,
    /// The pass that made no progress: each of its operations is circular.
    circular: bool,
}

impl<'a> Schedule<'a> {
    pub fn new(operations: &'a [Operation]) -> Self {
        Schedule {
            operations,
            defined: operations
                .iter()
                .filter_map(|o| o.bulk_id.as_deref())
                .collect(),
            resolved: HashMap::new(),
            failed: HashSet::new(),
            pass: (0..operations.len()).collect(),
            next_in_pass: 0,
            waiting: Vec::new(),
            progressed: false,
            circular: false,
        }
    }

    /// The operation at `index` created the resource `id`: references to
    /// its `bulkId` now resolve to it.
    pub fn succeeded(&mut self, index: usize, id: &str) {
        if let Some(b) = &self.operations[index].bulk_id {
            self.resolved.insert(b.clone(), id.to_owned());
        }
    }

    /// The operation at `index` failed: operations that refer to its
    /// `bulkId` fail too.
    pub fn failed(&mut self, index: usize) {
        if let Some(b) = &self.operations[index].bulk_id {
            self.failed.insert(b.clone());
        }
    }
}

impl Iterator for Schedule<'_> {
    /// The next operation (by index) and what to do with it.
    type Item = (usize, Step);

    fn next(&mut self) -> Option<(usize, Step)> {
        loop {
            if self.circular {
                let i = *self.pass.get(self.next_in_pass)?;
                self.next_in_pass += 1;
                return Some((
                    i,
                    Step::Circular(ScimError::bulk_reference("circular bulkId references")),
                ));
            }
            while let Some(&i) = self.pass.get(self.next_in_pass) {
                self.next_in_pass += 1;
                let op = &self.operations[i];
                let unknown = op
                    .needs
                    .iter()
                    .find(|b| !self.defined.contains(b.as_str()) || self.failed.contains(*b))
                    .cloned();
                let waiting = op.needs.iter().any(|b| !self.resolved.contains_key(b));
                if unknown.is_none() && waiting {
                    self.waiting.push(i);
                    continue;
                }
                self.progressed = true;
                let mut data = op.data.clone();
                substitute(&mut data, &self.resolved);
                let mut path = Value::String(op.path.clone());
                substitute(&mut path, &self.resolved);
                let path = path.as_str().unwrap_or_default().to_owned();
                let path = resolve_path_reference(&path, &self.resolved);
                return Some((
                    i,
                    match unknown {
                        Some(b) => Step::Unresolved {
                            path,
                            data,
                            error: ScimError::bulk_reference(format!(
                                "bulkId '{b}' is not defined by a successful operation"
                            )),
                        },
                        None => Step::Run { path, data },
                    },
                ));
            }
            // The pass is over; the operations that waited make the next.
            self.pass = std::mem::take(&mut self.waiting);
            self.next_in_pass = 0;
            if self.pass.is_empty() {
                return None;
            }
            // Every remaining operation waits on another: a cycle.
            self.circular = !self.progressed;
            self.progressed = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn references_are_found_and_substituted() {
        let mut data = json!({ "members": [{ "value": "bulkId:u1" }, { "value": "x" }] });
        let mut refs = HashSet::new();
        references(&data, &mut refs);
        assert_eq!(refs, HashSet::from(["u1".to_owned()]));
        let id = "2b9a1a4e-1f6e-4b8e-9a53-3c4b5d6e7f80";
        substitute(
            &mut data,
            &HashMap::from([("u1".to_owned(), id.to_owned())]),
        );
        assert_eq!(data["members"][0]["value"], id);
        assert_eq!(data["members"][1]["value"], "x");
    }

    #[test]
    fn routes_and_limits() {
        assert!(matches!(route("/Users"), Ok((Kind::Users, None))));
        assert!(matches!(
            route("/groups/abc"),
            Ok((Kind::Groups, Some("abc")))
        ));
        assert!(route("/Nope").is_err());
        let body = json!({ "Operations": [
            { "method": "DELETE", "path": "/Users/x" },
            { "method": "DELETE", "path": "/Users/y" }
        ]});
        assert_eq!(parse_request(&body, 1).err().map(|e| e.status), Some(413));
        assert!(parse_request(&body, 2).is_ok());
        let no_bulk_id =
            json!({ "Operations": [{ "method": "POST", "path": "/Users", "data": {} }] });
        assert!(parse_request(&no_bulk_id, 10).is_err());
    }

    #[test]
    fn requests_are_read_case_insensitively() {
        let body = json!({
            "SCHEMAS": [BULK_REQUEST.to_uppercase()],
            "failonerrors": 2,
            "operations": [{
                "Method": "patch",
                "PATH": "/Users/u",
                "BulkId": "p",
                "Version": "W/\"3\"",
                "DATA": { "Operations": [] },
            }],
        });
        let (ops, fail_on_errors) = parse_request(&body, 10).unwrap();
        assert_eq!(fail_on_errors, Some(2));
        let op = &ops[0];
        assert_eq!(op.method, "PATCH");
        assert_eq!(op.path, "/Users/u");
        assert_eq!(op.bulk_id.as_deref(), Some("p"));
        assert_eq!(op.version.as_deref(), Some("W/\"3\""));
        assert_eq!(op.data, json!({ "Operations": [] }));
    }

    #[test]
    fn malformed_requests_are_refused() {
        for (body, status, detail) in [
            (json!([]), 400, "a BulkRequest must be a JSON object"),
            (
                json!({ "schemas": ["urn:x"], "Operations": [] }),
                400,
                "'schemas' must contain urn:ietf:params:scim:api:messages:2.0:BulkRequest",
            ),
            (
                json!({ "failOnErrors": 0, "Operations": [] }),
                400,
                "'failOnErrors' must be a positive integer",
            ),
            (json!({}), 400, "a BulkRequest needs an 'Operations' array"),
            (
                json!({ "Operations": ["x"] }),
                400,
                "Operations[0] must be an object",
            ),
            (
                json!({ "Operations": [{ "path": "/Users" }] }),
                400,
                "Operations[0] needs a 'method'",
            ),
            (
                json!({ "Operations": [{ "method": "DELETE" }] }),
                400,
                "Operations[0] needs a 'path'",
            ),
            (
                json!({ "Operations": [
                    { "method": "POST", "path": "/Users", "bulkId": "a" },
                    { "method": "POST", "path": "/Groups", "bulkId": "a" },
                ]}),
                400,
                "Operations[1]: bulkId 'a' is used twice",
            ),
        ] {
            let e = parse_request(&body, 10).expect_err(&body.to_string());
            assert_eq!((e.status, e.detail.as_str()), (status, detail), "{body}");
        }
        assert_eq!(
            parse_request(&json!({ "Operations": [] }), 0)
                .unwrap()
                .0
                .len(),
            0
        );
    }

    fn ops(list: Value) -> Vec<Operation> {
        parse_request(&json!({ "Operations": list }), 100)
            .unwrap()
            .0
    }

    /// Runs the schedule to its end, every operation succeeding (its id is
    /// `id-<bulkId>`) unless its index is in `failing`; the steps in order.
    fn run(ops: &[Operation], failing: &[usize]) -> Vec<(usize, Step)> {
        let mut schedule = Schedule::new(ops);
        let mut steps = Vec::new();
        while let Some((i, step)) = schedule.next() {
            match &step {
                Step::Run { .. } if !failing.contains(&i) => {
                    let id = format!("id-{}", ops[i].bulk_id.as_deref().unwrap_or("?"));
                    schedule.succeeded(i, &id);
                }
                Step::Run { .. } | Step::Unresolved { .. } => schedule.failed(i),
                Step::Circular(_) => {}
            }
            steps.push((i, step));
        }
        steps
    }

    #[test]
    fn forward_references_wait_for_their_operation() {
        let ops = ops(json!([
            { "method": "POST", "path": "/Groups", "bulkId": "g",
              "data": { "displayName": "G", "members": [{ "value": "bulkId:u" }] } },
            { "method": "PATCH", "path": "/Groups/bulkId:g", "data": { "x": ["bulkId:u"] } },
            { "method": "POST", "path": "/Users", "bulkId": "u", "data": { "userName": "u" } },
            { "method": "DELETE", "path": "/Users/x" },
        ]));
        let steps = run(&ops, &[]);
        let order: Vec<usize> = steps.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, [2, 3, 0, 1]);
        assert_eq!(
            steps[2].1,
            Step::Run {
                path: "/Groups".into(),
                data: json!({ "displayName": "G", "members": [{ "value": "id-u" }] }),
            }
        );
        // In a path, the reference may be the last segment.
        assert_eq!(
            steps[3].1,
            Step::Run {
                path: "/Groups/id-g".into(),
                data: json!({ "x": ["id-u"] }),
            }
        );
    }

    #[test]
    fn a_whole_path_can_be_a_reference() {
        let ops = ops(json!([
            { "method": "POST", "path": "/Users", "bulkId": "u" },
            { "method": "DELETE", "path": "bulkId:u" },
        ]));
        let steps = run(&ops, &[]);
        assert_eq!(
            steps[1],
            (
                1,
                Step::Run {
                    path: "id-u".into(),
                    data: Value::Null
                }
            )
        );
    }

    #[test]
    fn unknown_and_failed_bulk_ids_fail_the_operations_that_use_them() {
        let ops = ops(json!([
            { "method": "PATCH", "path": "/Groups/g", "data": { "v": "bulkId:nobody" } },
            { "method": "POST", "path": "/Users", "bulkId": "bad" },
            { "method": "DELETE", "path": "/Users/bulkId:bad" },
        ]));
        let steps = run(&ops, &[1]);
        let conflict = |b: &str| {
            ScimError::bulk_reference(format!(
                "bulkId '{b}' is not defined by a successful operation"
            ))
        };
        assert_eq!(
            steps[0],
            (
                0,
                Step::Unresolved {
                    path: "/Groups/g".into(),
                    data: json!({ "v": "bulkId:nobody" }),
                    error: conflict("nobody"),
                }
            )
        );
        assert!(matches!(steps[1], (1, Step::Run { .. })));
        assert_eq!(
            steps[2],
            (
                2,
                Step::Unresolved {
                    path: "/Users/bulkId:bad".into(),
                    data: Value::Null,
                    error: conflict("bad"),
                }
            )
        );
    }

    #[test]
    fn cycles_are_refused_and_the_rest_runs() {
        let ops = ops(json!([
            { "method": "POST", "path": "/Groups", "bulkId": "a", "data": { "m": "bulkId:b" } },
            { "method": "POST", "path": "/Groups", "bulkId": "b", "data": { "m": "bulkId:a" } },
            { "method": "POST", "path": "/Groups", "bulkId": "c", "data": { "m": "bulkId:c" } },
            { "method": "POST", "path": "/Users", "bulkId": "u" },
            { "method": "POST", "path": "/Groups", "bulkId": "g", "data": { "m": "bulkId:u" } },
        ]));
        let steps = run(&ops, &[]);
        let order: Vec<usize> = steps.iter().map(|(i, _)| *i).collect();
        assert_eq!(order, [3, 4, 0, 1, 2]);
        let circular = Step::Circular(ScimError::bulk_reference("circular bulkId references"));
        for (_, step) in &steps[2..] {
            assert_eq!(step, &circular);
        }
    }

    #[test]
    fn an_empty_request_has_no_steps() {
        assert!(Schedule::new(&[]).next().is_none());
    }
}
