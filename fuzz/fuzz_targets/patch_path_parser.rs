//! Any UTF-8 text as a PATCH `path` and as a plain attribute path. The
//! parsers must never panic, and whatever parses must print to a path that
//! parses back to the same value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scimd::scim::path::{parse_attr_path, parse_patch_path};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = parse_patch_path(input) {
        let printed = path.to_string();
        match parse_patch_path(&printed) {
            Ok(again) => assert_eq!(
                again, path,
                "{input:?} printed as {printed:?}, which parses differently"
            ),
            Err(e) => panic!("{input:?} printed as {printed:?}, which does not parse: {e}"),
        }
    }
    if let Ok(path) = parse_attr_path(input) {
        let printed = path.to_string();
        match parse_attr_path(&printed) {
            Ok(again) => assert_eq!(
                again, path,
                "{input:?} printed as {printed:?}, which parses differently"
            ),
            Err(e) => panic!("{input:?} printed as {printed:?}, which does not parse: {e}"),
        }
    }
});
