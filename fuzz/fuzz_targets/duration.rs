//! Durations: parsing never panics, and what `format_duration` prints parses back to within a
//! millisecond and prints the same again.
#![no_main]

use hashreload::duration::{format_duration, parse_duration};
use libfuzzer_sys::fuzz_target;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Some(d) = parse_duration(s) else { return };
    let printed = format_duration(d);
    let again = parse_duration(&printed).unwrap_or_else(|| panic!("{s:?} -> {printed:?}"));
    let diff = if again > d { again - d } else { d - again };
    assert!(
        diff < Duration::from_millis(1),
        "{s:?} -> {printed:?} -> {again:?}"
    );
    assert_eq!(format_duration(again), printed, "{s:?}");
});
