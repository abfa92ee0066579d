//! `--expect @FILE` compares the mounted content with a manifest the pipeline published, bytes
//! the sidecar does not control: any two texts give a verdict without panicking, equal texts are
//! approved with nothing listed, and every name listed comes from the side it is said to be on.
#![no_main]

use hashreload::approval::{check, differences, Expect};
use hashreload::digest::manifest_lines;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (text, expected) = rest.split_at(usize::from(split).min(rest.len()));
    let names = |t| -> Vec<&[u8]> { manifest_lines(t).into_iter().map(|(n, _)| n).collect() };
    let (have, want) = (names(text), names(expected));
    let d = differences(text, expected);
    assert!(d
        .changed
        .iter()
        .all(|n| have.contains(n) && want.contains(n)));
    assert!(d
        .missing
        .iter()
        .all(|n| want.contains(n) && !have.contains(n)));
    assert!(d
        .unexpected
        .iter()
        .all(|n| have.contains(n) && !want.contains(n)));
    let found = Expect::Manifest(text.to_vec(), "/mounted".into()).digest();
    let expect = Expect::Manifest(expected.to_vec(), "/approved".into());
    let verdict = check(text, &found, &expect, false);
    assert_eq!(verdict.is_ok(), text == expected);
    if text == expected {
        assert!(d.changed.is_empty() && d.missing.is_empty() && d.unexpected.is_empty());
    }
});
