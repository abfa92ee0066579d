//! Command lines, ours and the incumbents' spellings: NUL separates arguments. Any input gives
//! a result or a one-line usage error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = data
        .split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    // No environment: the fuzzer's own must not leak in.
    if let Err(e) = hashreload::cli::parse_with_env(args, |_| None) {
        assert!(!e.0.contains('\n'), "a usage error is one line: {:?}", e.0);
        assert!(!e.0.is_empty());
    }
});
