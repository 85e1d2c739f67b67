//! The module boundaries, checked by reading the sources: the protocol and
//! the domain know nothing of HTTP or SQL, the store nothing of HTTP, and
//! handlers never build SQL. A compiler cannot say "this module must not
//! use that crate", so a test does.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/<dir>`.
fn sources(dir: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let mut out = Vec::new();
    walk(&root, &mut out);
    assert!(!out.is_empty(), "no sources under {}", root.display());
    out
}

/// Lines of code (not comments, not tests) under `src/<dir>` that contain
/// any of `needles`, as `file:line: text`. Tests may build what they check
/// (a `sqlx::Error` to map to a response, say), so a file is read up to its
/// test module.
fn offending(dir: &str, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for path in sources(dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if needles.iter().any(|needle| code.contains(needle)) {
                found.push(format!("{}:{}: {code}", path.display(), n + 1));
            }
        }
    }
    found
}

#[test]
fn the_protocol_and_the_domain_know_no_http_and_no_sql() {
    let forbidden = [
        "sqlx",
        "axum",
        "tower",
        "crate::store",
        "crate::http",
        "crate::auth",
    ];
    for dir in ["scim", "directory"] {
        let found = offending(dir, &forbidden);
        assert!(
            found.is_empty(),
            "{dir}/ reaches past its layer:\n{}",
            found.join("\n")
        );
    }
    let found = offending("scim", &["crate::directory", "crate::audit"]);
    assert!(
        found.is_empty(),
        "scim/ is the bottom layer:\n{}",
        found.join("\n")
    );
}

#[test]
fn handlers_never_build_sql() {
    let found = offending("http", &["dialect()", "store::query", "sqlx"]);
    assert!(found.is_empty(), "SQL in http/:\n{}", found.join("\n"));
}

#[test]
fn the_store_knows_no_http() {
    let found = offending("store", &["axum", "crate::http"]);
    assert!(found.is_empty(), "HTTP in store/:\n{}", found.join("\n"));
}
