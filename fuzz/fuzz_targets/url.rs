//! Reload URLs: parsing never panics, and the password of `http://user:password@host/` never
//! shows in the name used for logs and metrics, nor in the error for a bad URL.
#![no_main]

use hashreload::target::HttpUrl;
use libfuzzer_sys::fuzz_target;

fn shown(s: &str) -> String {
    match HttpUrl::parse(s) {
        Ok(u) => u.name().to_string(),
        Err(e) => e,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let shown_as = shown(s);
    // The secret: what sits between the authority's first ':' and its last '@'.
    let Some(rest) = s.strip_prefix("http://") else {
        return;
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let Some((userinfo, _)) = authority.rsplit_once('@') else {
        return;
    };
    let Some((user, password)) = userinfo.split_once(':') else {
        return;
    };
    if password.is_empty() || !shown_as.contains(password) {
        return;
    }
    // It shows: a leak only if it comes from the password, not from the rest of the URL or our
    // own words. With another password of the same length, it must show the same way.
    let other: String = password
        .chars()
        .map(|c| if c == 'Q' { 'R' } else { 'Q' })
        .collect();
    let swapped = format!("http://{user}:{other}@{}", &rest[userinfo.len() + 1..]);
    assert!(
        shown(&swapped).contains(password),
        "{s:?} shows its password: {shown_as:?}"
    );
});
