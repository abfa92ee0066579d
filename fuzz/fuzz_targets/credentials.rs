//! What a client sends and a mounted file holds, read without a panic: the `Authorization:
//! Basic` header (any bytes; a header made from a name and password reads back as them), a
//! `basic_auth_users` hash, and the validity of a certificate to pin (any DER).
#![no_main]

use base64::Engine as _;
use hashreload::basicauth::{basic_credentials, Hash};
use hashreload::tls::validity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = basic_credentials(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Hash::parse(text);
    }
    let _ = validity(data);
    // Empty credentials read as none, as Go reads `Authorization: Basic ` (its value trimmed).
    if data.is_empty() {
        return;
    }
    let header = format!(
        "GET / HTTP/1.1\r\nAuthorization: Basic {}\r\n\r\n",
        base64::engine::general_purpose::STANDARD.encode(data)
    );
    assert_eq!(
        basic_credentials(header.as_bytes()).as_deref(),
        Some(data),
        "{data:?}"
    );
});
