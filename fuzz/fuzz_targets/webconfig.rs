//! The web config: any text gives a config or a one-line error, never a panic; the headers it
//! keeps are safe to write into a response and read back the same from a file that sets them.
#![no_main]

use hashreload::webconfig::parse;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("web-config.yaml");
    let config = match parse("--web-config-file", path, text) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.contains(['\n', '\r']), "{e:?}");
            return;
        }
    };
    let mut again = String::from("http_server_config:\n  headers:\n");
    for (name, value) in &config.headers {
        assert!(!value.contains(['\n', '\r']), "{text:?}");
        let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
        again.push_str(&format!("    {name}: \"{quoted}\"\n"));
    }
    let back =
        parse("--web-config-file", path, &again).unwrap_or_else(|e| panic!("{again:?}: {e}"));
    assert_eq!(back.headers, config.headers, "{text:?}");
});
