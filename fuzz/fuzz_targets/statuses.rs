//! `--status` lists: a result holds only real status codes, an error is one line naming the flag.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match hashreload::cli::parse_statuses("--status", s) {
        Ok(codes) => {
            assert!(!codes.is_empty());
            assert!(
                codes.iter().all(|c| (100..=599).contains(c)),
                "{s:?}: {codes:?}"
            );
        }
        Err(e) => {
            assert!(
                e.0.starts_with("--status") && !e.0.contains('\n'),
                "{:?}",
                e.0
            );
        }
    }
});
