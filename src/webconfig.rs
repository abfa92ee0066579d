//! `--web-config-file`: the Prometheus exporter-toolkit web config that prometheus-operator hands
//! its config reloader (https://prometheus.io/docs/prometheus/latest/configuration/https/).
//!
//! It takes extra response headers and `basic_auth_users`; what this build cannot serve (TLS,
//! rate limits) is refused by name instead of silently serving less than was asked. The file is read line by line, only as deep as the format goes, and only in
//! the YAML that yaml.v2 writes for it: block mappings, plain and quoted
//! scalars (also as it wraps them past 80 columns). Anything else is refused naming its line, so
//! nothing is read differently than exporter-toolkit would. Errors name the line, never its
//! content: the file holds password hashes.

use crate::basicauth::Hash;
use std::path::Path;

/// What the web config asks of the metrics and health server.
#[derive(Debug, Default, PartialEq)]
pub struct WebConfig {
    /// Added to every response, in file order.
    pub headers: Vec<(String, String)>,
    /// `basic_auth_users`: each name and its bcrypt hash, in file order. Empty: no auth.
    pub users: Vec<(String, Hash)>,
    /// Settings accepted but without effect here, to log as warnings.
    pub notes: Vec<String>,
}

/// The operator writes well under a KiB; this only keeps a wrong path from being read whole.
const MAX_SIZE: u64 = 64 * 1024;

/// Reads and checks the file `flag` names.
pub fn load(flag: &str, path: &Path) -> Result<WebConfig, String> {
    // A regular file's length is known before it is read; a device or a pipe could be endless.
    let text = std::fs::metadata(path).and_then(|m| match (m.is_file(), m.len() > MAX_SIZE) {
        (true, false) => std::fs::read_to_string(path),
        (false, _) => Err(std::io::Error::other("not a regular file")),
        (true, true) => Err(std::io::Error::other("larger than 64 KiB")),
    });
    let text = text.map_err(|e| fail(flag, path, 0, &e.to_string()))?;
    parse(flag, path, &text)
}

/// Checks the text of a web config; `path` only names it in messages.
pub fn parse(flag: &str, path: &Path, text: &str) -> Result<WebConfig, String> {
    let mut ls = Lines {
        rest: text.strip_prefix('\u{feff}').unwrap_or(text),
        read: 0,
        no: 0,
        gap: false,
        next: None,
    };
    config(&mut ls).map_err(|what| fail(flag, path, ls.no, what))
}

/// The one-line message for what is wrong on line `no` (0: with the whole file).
fn fail(flag: &str, path: &Path, no: usize, what: &str) -> String {
    let path = path.display();
    match no {
        0 => format!("{flag} {path}: {what}"),
        _ => format!("{flag} {path}: line {no}: {what}"),
    }
}

/// The mappings of the format; each is opened once, by its key in the one above.
const TOP: u8 = 0;
const HTTP: u8 = 1;
const HEADERS: u8 = 2;
const USERS: u8 = 3;

/// The error for a key the mapping does not have; after its colon, the keys it has.
fn known(mapping: u8) -> &'static str {
    match mapping {
        TOP => {
            "unknown key (exporter-toolkit knows: tls_server_config basic_auth_users \
              rate_limit http_server_config)"
        }
        HTTP => "unknown key in http_server_config (exporter-toolkit knows: http2 headers)",
        _ => {
            "this header cannot be set (exporter-toolkit allows: Content-Security-Policy \
              Strict-Transport-Security X-Content-Type-Options X-Frame-Options \
              X-XSS-Protection)"
        }
    }
}

/// What exporter-toolkit's `Config` does with the document. It unmarshals strictly, so unknown
/// and duplicate keys are errors at every level; null and `{}` are its defaults. Errors are
/// about the line last read (`ls.no`), or the whole file when it is 0.
// Not inlined into its one caller: that makes the binary smaller.
#[inline(never)]
fn config(ls: &mut Lines) -> Result<WebConfig, &'static str> {
    let mut wc = WebConfig::default();
    // At each level open: the column of its keys, which mapping it is, which keys were seen.
    let (mut at, mut mapping, mut seen, mut depth) = ([0; 3], [TOP; 3], [0u16; 3], 0);
    if ls.peek()?.is_some_and(|(i, t)| i == 0 && trim(t) == "---") {
        ls.take();
    }
    while let Some((indent, text)) = ls.peek()? {
        ls.take();
        while indent < at[depth] {
            depth -= 1;
        }
        if indent != at[depth] {
            return Err("unexpected line (check the indentation)");
        }
        let Some(i) = colon(text).filter(|&i| i > 0) else {
            return Err("expected key: value");
        };
        let (key, value) = (&text[..i], &text[i + 1..]);
        let m = mapping[depth];
        if m == USERS {
            user(ls, &mut wc.users, key, value, indent)?;
            continue;
        }
        let known = known(m);
        let list = known.bytes().position(|b| b == b':').unwrap_or(0);
        let Some(k) = find(&known[list + 2..known.len() - 1], key) else {
            return Err(known);
        };
        if seen[depth] & 1 << k != 0 {
            return Err("duplicate key");
        }
        seen[depth] |= 1 << k;
        if m == HEADERS {
            let no = ls.no;
            let v = ls.scalar(value, indent)?;
            ls.no = no;
            if k == 2 && v != "nosniff" {
                return Err("X-Content-Type-Options must be nosniff");
            }
            if k == 3 && v != "deny" && v != "sameorigin" {
                return Err("X-Frame-Options must be deny or sameorigin");
            }
            // Go trims header values when it writes them.
            wc.headers.push((key.to_string(), trim(&v).to_string()));
            continue;
        }
        if m == HTTP && k == 0 {
            if !is_bool(plain(value).0) {
                return Err("http2 must be true or false");
            }
            wc.notes
                .push("http2 is ignored: hashreload serves HTTP/1.1".into());
            continue;
        }
        // A mapping: null or {} after the colon, or entries on the lines below.
        let v = plain(value).0;
        if !v.is_empty() {
            if v == "{}" || is_null(v) {
                continue;
            }
            return Err("a mapping was expected (key: value lines, or {})");
        }
        let Some((child, _)) = ls.peek()?.filter(|l| l.0 > indent) else {
            continue;
        };
        if m == TOP && (k == 0 || k == 2) {
            ls.no = 0;
            return Err(match k {
                0 => {
                    "tls_server_config needs the hashreload -tls image \
                      (this build serves plain HTTP only)"
                }
                _ => "rate_limit is not supported by hashreload",
            });
        }
        depth += 1;
        at[depth] = child;
        seen[depth] = 0;
        mapping[depth] = match (m, k) {
            (TOP, 1) => USERS,
            (TOP, _) => HTTP,
            _ => HEADERS,
        };
    }
    Ok(wc)
}

/// A `basic_auth_users` entry: a name (plain, or quoted on one line) and its bcrypt hash.
fn user<'a>(
    ls: &mut Lines<'a>,
    users: &mut Vec<(String, Hash)>,
    key: &str,
    value: &'a str,
    at: usize,
) -> Result<(), &'static str> {
    let name = match key.as_bytes()[0] {
        q @ (b'\'' | b'"') => {
            let inner = key[1..].strip_suffix(q as char).unwrap_or("\\");
            if q == b'"' && inner.contains(['\\', '"']) || q == b'\'' && inner.contains('\'') {
                return Err("basic_auth_users: a quoted name with escapes or quotes in it");
            }
            inner
        }
        _ => key,
    };
    let no = ls.no;
    let hash = ls.scalar(value, at)?;
    ls.no = no;
    let Some(hash) = Hash::parse(&hash) else {
        return Err(
            "basic_auth_users: not a bcrypt hash ($2a$, $2b$ or $2y$, a cost of 04 \
                    to 31, 53 characters of salt and hash)",
        );
    };
    if users.iter().any(|(u, _)| u == name) {
        return Err("duplicate key");
    }
    users.push((name.to_string(), hash));
    Ok(())
}

/// The YAML 1.1 booleans yaml.v2 reads into a bool (unquoted only), and null.
fn is_bool(v: &str) -> bool {
    let words = "y Y yes Yes YES n N no No NO true True TRUE false False FALSE \
                 on On ON off Off OFF";
    is_null(v) || find(words, v).is_some()
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Without the spaces and tabs around it (YAML's blanks; Go trims the same from header values).
fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    let (mut i, mut j) = (0, b.len());
    while i < j && is_blank(b[i]) {
        i += 1;
    }
    while j > i && is_blank(b[j - 1]) {
        j -= 1;
    }
    &s[i..j]
}

/// Where a `: ` (or `:` at the end) is, the indicator of a mapping entry.
fn colon(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len()).find(|&i| b[i] == b':' && b.get(i + 1).is_none_or(|&n| is_blank(n)))
}

/// The text of a plain scalar's line before a comment (a `#` after a blank), trimmed, and
/// whether there was a comment (a plain scalar ends there).
fn plain(s: &str) -> (&str, bool) {
    let b = s.as_bytes();
    match (0..b.len()).find(|&i| b[i] == b'#' && (i == 0 || is_blank(b[i - 1]))) {
        Some(i) => (trim(&s[..i]), true),
        None => (trim(s), false),
    }
}

fn is_null(v: &str) -> bool {
    v.is_empty() || find("~ null Null NULL", v).is_some()
}

/// Where `word` is in the space-separated `list`.
fn find(list: &str, word: &str) -> Option<usize> {
    list.split(' ').position(|w| w == word)
}

/// The lines of the file, one content line ahead.
struct Lines<'a> {
    rest: &'a str,
    /// How many lines were read.
    read: usize,
    /// The line an error is about: the last one taken, or read when it is refused.
    no: usize,
    /// A blank or comment line comes before the next line: a plain value does not go on.
    gap: bool,
    /// The next line that is neither blank nor a comment: its number, its indentation and the
    /// rest.
    next: Option<(usize, usize, &'a str)>,
}

impl<'a> Lines<'a> {
    /// The next line, without its line break. Control characters and the line breaks YAML has
    /// beyond LF and CRLF (CR, NEL, LS, PS) are refused everywhere, comments included, as they
    /// would change where a line ends; so are the characters YAML does not allow.
    fn raw(&mut self) -> Result<Option<&'a str>, &'static str> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (line, rest) = self.rest.split_once('\n').unwrap_or((self.rest, ""));
        self.rest = rest;
        self.read += 1;
        self.no = self.read;
        let line = line.strip_suffix('\r').unwrap_or(line);
        let bad = |c: char| {
            (c.is_control() && c != '\t')
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}')
        };
        if line.chars().any(bad) {
            return Err("a control character or a line break other than LF or CRLF");
        }
        Ok(Some(line))
    }

    fn peek(&mut self) -> Result<Option<(usize, &'a str)>, &'static str> {
        while self.next.is_none() {
            let Some(raw) = self.raw()? else { break };
            let indent = raw.bytes().take_while(|&c| c == b' ').count();
            let text = &raw[indent..];
            // yaml.v2 refuses it on any line, blank and comment lines too.
            if text.starts_with('\t') {
                return Err("a tab in the indentation (YAML indents with spaces)");
            }
            let content = trim(text);
            if content.is_empty() || content.starts_with('#') {
                self.gap = true;
            } else {
                self.next = Some((self.read, indent, text));
            }
        }
        Ok(self.next.map(|(_, indent, text)| (indent, text)))
    }

    /// Moves past the peeked line; errors are about it from now.
    fn take(&mut self) {
        if let Some((no, _, _)) = self.next.take() {
            self.no = no;
        }
        self.gap = false;
    }

    /// A text value that starts after the colon of a key at column `at`: null, plain or
    /// quoted; lines indented deeper continue it, as yaml.v2 wraps long values.
    fn scalar(&mut self, value: &'a str, at: usize) -> Result<String, &'static str> {
        let first = trim(value);
        if matches!(first.as_bytes().first(), Some(b'\'' | b'"')) {
            return self.quoted(first, at);
        }
        let (mut t, mut ended) = plain(first);
        if is_null(t) {
            return Ok(String::new());
        }
        let (c, spaced) = (t.as_bytes()[0], t.len() == 1 || is_blank(t.as_bytes()[1]));
        if b"&*!|>{}[],%@`".contains(&c) || (b"-?:".contains(&c) && spaced) {
            return Err(
                "anchors, aliases, tags, block scalars, lists and flow collections \
                        are not supported (quote the value)",
            );
        }
        let mut out = String::new();
        loop {
            if colon(t).is_some() {
                return Err("': ' in a plain value (quote the value)");
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(t);
            match self.peek()? {
                Some((i, text)) if i > at && !self.gap && !ended => {
                    self.take();
                    (t, ended) = plain(text);
                }
                _ => return Ok(out),
            }
        }
    }

    /// A single- or double-quoted value; a line break inside folds to one space, as YAML reads
    /// a value yaml.v2 wrapped. Escapes: only the ones yaml.v2 writes for text a header can hold.
    fn quoted(&mut self, first: &'a str, at: usize) -> Result<String, &'static str> {
        let (q, start_no) = (first.as_bytes()[0], self.no);
        let mut out = String::new();
        // Escaped blanks before a line break stay; only the ones after them are trimmed.
        let mut keep = 0;
        let mut s = &first[1..];
        loop {
            let b = s.as_bytes();
            let (mut start, mut i) = (0, 0);
            while i < b.len() {
                let c = b[i];
                i += 1;
                if c != q && (q == b'\'' || c != b'\\') {
                    continue;
                }
                out.push_str(&s[start..i - 1]);
                let n = b.get(i).copied().unwrap_or(0);
                start = i + 1;
                if c == b'\\' {
                    out.push(match n {
                        b'\\' | b'"' | b'/' | b' ' | b'\t' => n as char,
                        b't' => '\t',
                        _ => return Err("an escape other than \\\\ \\\" \\/ \\t and \\ (space)"),
                    });
                    keep = out.len();
                } else if q == b'\'' && n == b'\'' {
                    out.push('\'');
                } else {
                    let after = &s[i..];
                    let rest = trim(after);
                    if !(rest.is_empty() || rest.starts_with('#') && is_blank(after.as_bytes()[0]))
                    {
                        return Err("text after the closing quote");
                    }
                    return Ok(out);
                }
                i += 1;
            }
            out.push_str(&s[start..]);
            while out.len() > keep && is_blank(out.as_bytes()[out.len() - 1]) {
                out.pop();
            }
            out.push(' ');
            // The next line goes on with the value, even where it looks like a comment.
            let next = self.raw()?.filter(|raw| {
                let b = raw.as_bytes();
                b.len() > at && b[..=at].iter().all(|&c| c == b' ') && !trim(raw).is_empty()
            });
            let Some(raw) = next else {
                self.no = start_no;
                return Err("a quoted value without its closing quote");
            };
            s = trim(raw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> WebConfig {
        parse("--web-config-file", Path::new("/w/web-config.yaml"), text)
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn fails(text: &str) -> String {
        let e = parse("--web-config-file", Path::new("/w/web-config.yaml"), text)
            .err()
            .unwrap_or_else(|| panic!("accepted {text:?}"));
        e.strip_prefix("--web-config-file /w/web-config.yaml: ")
            .unwrap_or_else(|| panic!("{e}"))
            .to_string()
    }

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// A file from its lines.
    fn y(lines: &[&str]) -> String {
        lines.join("\n") + "\n"
    }

    /// The value of the one header a file sets.
    fn value(text: &str) -> String {
        let c = ok(text);
        assert_eq!(c.headers.len(), 1, "{text:?}");
        c.headers[0].1.clone()
    }

    const HASH: &str = "$2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze";
    const NOTE: &str = "http2 is ignored: hashreload serves HTTP/1.1";

    /// What prometheus-operator writes without TLS (pkg/webconfig, yaml.v2 Marshal), the same
    /// for Prometheus, Alertmanager and ThanosRuler.
    #[test]
    fn operator_files_without_tls() {
        // No tlsConfig and no httpConfig (Alertmanager and ThanosRuler always get the flag).
        assert_eq!(ok(""), WebConfig::default());
        // httpConfig: {}
        assert_eq!(ok("http_server_config: {}\n"), WebConfig::default());
        // httpConfig: {headers: {}}
        assert_eq!(
            ok("http_server_config:\n  headers: {}\n"),
            WebConfig::default()
        );
        // httpConfig: {http2: false}
        let c = ok("http_server_config:\n  http2: false\n");
        assert_eq!((c.headers.len(), c.notes), (0, vec![NOTE.to_string()]));
        // testdata/HTTP_config_with_all_parameters.golden
        let c = ok(&y(&[
            "http_server_config:",
            "  http2: false",
            "  headers:",
            "    Content-Security-Policy: test",
            "    Strict-Transport-Security: test",
            "    X-Content-Type-Options: nosniff",
            "    X-Frame-Options: sameorigin",
            "    X-XSS-Protection: test",
        ]));
        let want = headers(&[
            ("Content-Security-Policy", "test"),
            ("Strict-Transport-Security", "test"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "sameorigin"),
            ("X-XSS-Protection", "test"),
        ]);
        assert_eq!(c.headers, want);
        assert_eq!(c.notes, vec![NOTE.to_string()]);
    }

    /// yaml.v2 v2.4.0 (the operator does not call FutureLineWrap) wraps a scalar at a space past
    /// column 80, indented two more than its key; quoted when plain is not allowed.
    #[test]
    fn values_yaml_v2_wrapped() {
        let plain = y(&[
            "http_server_config:",
            "  headers:",
            "    Content-Security-Policy: default-src 'self'; script-src 'self' 'unsafe-inline'",
            "      'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;",
            "      - a",
            "    X-Frame-Options: deny",
        ]);
        let csp = concat!(
            "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; ",
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; - a"
        );
        let want = headers(&[
            ("Content-Security-Policy", csp),
            ("X-Frame-Options", "deny"),
        ]);
        assert_eq!(ok(&plain).headers, want);
        // Plain is not allowed with ": " or " #" inside.
        let single = y(&[
            "http_server_config:",
            "  headers:",
            "    Content-Security-Policy: 'default-src ''self''; img-src ''self'' data: https:;",
            "      connect-src ''self'' https://prometheus.example.com'",
        ]);
        let csp = concat!(
            "default-src 'self'; img-src 'self' data: https:; ",
            "connect-src 'self' https://prometheus.example.com"
        );
        assert_eq!(value(&single), csp);
        let hash = "http_server_config:\n  headers:\n    X-XSS-Protection: 'a\n      #b'\n";
        assert_eq!(value(hash), "a #b");
        // Double-quoted (a tab, or text that would read as another type): a blank after the
        // break is escaped at the start of the next line.
        let double = y(&[
            "http_server_config:",
            "  headers:",
            r#"    X-XSS-Protection: "1;  mode=block"#,
            r#"      \ x\ty\/\"\\""#,
        ]);
        assert_eq!(value(&double), "1;  mode=block  x\ty/\"\\");
        assert_eq!(
            value("http_server_config:\n  headers:\n    X-XSS-Protection: \"0\"\n"),
            "0"
        );
    }

    /// testdata/TLS_config_with_all_parameters_from_secrets.golden
    const ALL_TLS: &[&str] = &[
        "tls_server_config:",
        "  cert_file: /web_certs_path_prefix/secret/test-secret-cert/tls.crt",
        "  key_file: /web_certs_path_prefix/secret/test-secret-key/tls.keySecret",
        "  client_auth_type: RequireAnyClientCert",
        "  client_ca_file: /web_certs_path_prefix/secret/test-secret-ca/tls.ca",
        "  min_version: TLS11",
        "  max_version: TLS13",
        "  cipher_suites:",
        "  - cipher-1",
        "  - cipher-2",
        "  prefer_server_cipher_suites: false",
        "  curve_preferences:",
        "  - curve-1",
        "  - curve-2",
    ];

    #[test]
    fn tls_needs_the_tls_image() {
        let want =
            "tls_server_config needs the hashreload -tls image (this build serves plain HTTP only)";
        assert_eq!(fails(&y(ALL_TLS)), want);
        let tls_and_http = y(&[
            "tls_server_config:",
            "  cert_file: /etc/ssl/certs/tls.crt",
            "  key_file: /etc/ssl/secrets/tls.key",
            "http_server_config:",
            "  http2: true",
        ]);
        assert_eq!(fails(&tls_and_http), want);
    }

    #[test]
    fn rate_limit_is_refused_and_null_is_the_default() {
        assert_eq!(
            fails("rate_limit:\n  burst: 10\n  interval: 1s\n"),
            "rate_limit is not supported by hashreload"
        );
        // Null and {} are exporter-toolkit's defaults: plain HTTP, no users, no limit.
        let empty = "tls_server_config: {}\nbasic_auth_users:\n# none\nrate_limit: ~ # c\n\
                     http_server_config:\n";
        assert_eq!(ok(empty), WebConfig::default());
        assert_eq!(
            fails("tls_server_config: on\n"),
            "line 1: a mapping was expected (key: value lines, or {})"
        );
    }

    // htpasswd -nbBC 4 alice wonderland, and -C 5 for bob (see src/basicauth.rs).
    const ALICE: &str = "$2y$04$bFxPnHhtrdqdvRPFvgJ/Xuq9daAaQzq3dDdgJy3BboprdYOmqGdiy";
    const BOB: &str = "$2y$05$TR4TAIPShKp3tDkRfOWp9e/E4daxbZZPB3Go5g2Y6.Hj.wl.LHifi";

    #[test]
    fn basic_auth_users_in_every_build() {
        let c = ok(&y(&[
            "basic_auth_users:",
            &format!("  alice: {ALICE}"),
            &format!("  'bob': \"{BOB}\" # ops"),
            &format!("  \"prom-scraper\": '{HASH}'"),
            "http_server_config:",
            "  headers:",
            "    X-Frame-Options: deny",
        ]));
        let names: Vec<&str> = c.users.iter().map(|u| u.0.as_str()).collect();
        assert_eq!(names, ["alice", "bob", "prom-scraper"]);
        let hashes = [ALICE, BOB, HASH].map(|h| Hash::parse(h).unwrap());
        assert!(c.users.iter().zip(&hashes).all(|(u, h)| u.1 == *h));
        assert_eq!(c.headers, headers(&[("X-Frame-Options", "deny")]));
        // Debug (Config derives it) shows names, never hashes.
        let debug = format!("{c:?}");
        assert!(
            debug.contains("alice") && !debug.contains("bFxP"),
            "{debug}"
        );
        assert_eq!(ok("basic_auth_users: {}\n").users, vec![]);
        let not_hash = "basic_auth_users: not a bcrypt hash ($2a$, $2b$ or $2y$, a cost of 04 \
                        to 31, 53 characters of salt and hash)";
        let user = |rest: &str| fails(&format!("basic_auth_users:\n  alice: {ALICE}\n  {rest}\n"));
        assert_eq!(user("bob:"), format!("line 3: {not_hash}"));
        assert_eq!(user("bob: secret"), format!("line 3: {not_hash}"));
        assert_eq!(
            user(&format!("bob: {}", &BOB[1..])),
            format!("line 3: {not_hash}")
        );
        assert_eq!(
            user(&format!("bob: $2x{}", &BOB[3..])),
            format!("line 3: {not_hash}")
        );
        assert_eq!(user(&format!("alice: {BOB}")), "line 3: duplicate key");
        assert_eq!(user(&format!("'alice': {BOB}")), "line 3: duplicate key");
        assert_eq!(
            user(&format!("'al''ice': {BOB}")),
            "line 3: basic_auth_users: a quoted name with escapes or quotes in it"
        );
        assert!(user(&format!("bob: [{BOB}]")).starts_with("line 3: anchors, aliases"));
        assert_eq!(
            user(&format!("  bob: {BOB}")),
            "line 3: ': ' in a plain value (quote the value)"
        );
        assert_eq!(
            fails(&format!("basic_auth_users: alice {ALICE}\n")),
            "line 1: a mapping was expected (key: value lines, or {})"
        );
    }

    #[test]
    fn unknown_and_duplicate_keys_are_refused_as_exporter_toolkit_does() {
        assert!(fails("http_server_config: {}\ntls_config: {}\n")
            .starts_with("line 2: unknown key (exporter-toolkit knows: "));
        assert!(
            fails("http_server_config:\n  header:\n    X-Frame-Options: deny\n")
                .starts_with("line 2: unknown key in http_server_config")
        );
        assert_eq!(fails("- a\n"), "line 1: expected key: value");
        assert_eq!(fails("a\n"), "line 1: expected key: value");
        let dup = "http_server_config: {}\nhttp_server_config: {}\n";
        assert_eq!(fails(dup), "line 2: duplicate key");
        let dup = "http_server_config:\n  headers:\n    X-Frame-Options: deny\n  \
                   http2: true\n  headers: {}\n";
        assert_eq!(fails(dup), "line 5: duplicate key");
    }

    #[test]
    fn headers_are_checked_as_exporter_toolkit_does() {
        let c = ok(&y(&[
            "http_server_config:",
            "  headers:",
            "    X-XSS-Protection: '1; mode=block'",
            "    Content-Security-Policy:",
            r#"    Strict-Transport-Security: "  max-age=31536000 ""#,
        ]));
        let want = headers(&[
            ("X-XSS-Protection", "1; mode=block"),
            ("Content-Security-Policy", ""),
            ("Strict-Transport-Security", "max-age=31536000"),
        ]);
        assert_eq!(c.headers, want);
        // Null is "" to yaml.v2, and "" is not an allowed X-Frame-Options.
        let h = |rest: &str| fails(&format!("http_server_config:\n  headers:\n    {rest}\n"));
        assert_eq!(
            h("X-Frame-Options: ~"),
            "line 3: X-Frame-Options must be deny or sameorigin"
        );
        assert!(h("Server: x").starts_with("line 3: this header cannot be set"));
        // Names are exact, as in exporter-toolkit's map.
        assert!(h("x-frame-options: deny").starts_with("line 3: this header cannot be set"));
        assert_eq!(
            h("X-Frame-Options: DENY"),
            "line 3: X-Frame-Options must be deny or sameorigin"
        );
        assert_eq!(
            h("X-Content-Type-Options: 'no'\n    X-Frame-Options: deny"),
            "line 3: X-Content-Type-Options must be nosniff"
        );
        assert_eq!(
            h("X-Content-Type-Options: nosniff\n      extra"),
            "line 3: X-Content-Type-Options must be nosniff"
        );
        assert_eq!(
            h("X-XSS-Protection: \"1\\r\\nSet-Cookie: a=b\""),
            "line 3: an escape other than \\\\ \\\" \\/ \\t and \\ (space)"
        );
        assert_eq!(
            h("X-XSS-Protection: 1\rSet-Cookie: a=b"),
            "line 3: a control character or a line break other than LF or CRLF"
        );
        assert_eq!(
            h("X-XSS-Protection:\n      - 1"),
            "line 4: unexpected line (check the indentation)"
        );
        assert_eq!(
            fails("http_server_config:\n  headers: []\n"),
            "line 2: a mapping was expected (key: value lines, or {})"
        );
    }

    #[test]
    fn http2_takes_yaml_v2_booleans_only() {
        for v in ["true", "false", "yes", "Off", "", "~"] {
            let c = ok(&format!("http_server_config:\n  http2: {v}\n"));
            assert_eq!(c.notes, vec![NOTE.to_string()], "{v}");
        }
        for v in ["'true'", "1", "enabled", "tRue", "true false"] {
            let e = fails(&format!("http_server_config:\n  http2: {v}\n"));
            assert_eq!(e, "line 2: http2 must be true or false", "{v}");
        }
    }

    #[test]
    fn comments_crlf_and_document_start() {
        let text = y(&[
            "# web config",
            "---",
            "",
            "http_server_config: # the server",
            "  # headers next",
            "  headers:",
            "    X-Frame-Options: deny # not sameorigin",
            r#"    X-XSS-Protection: "a # b" # c"#,
            "    Content-Security-Policy: a#b 'it''s' é",
            "",
        ]);
        let want = headers(&[
            ("X-Frame-Options", "deny"),
            ("X-XSS-Protection", "a # b"),
            ("Content-Security-Policy", "a#b 'it''s' é"),
        ]);
        assert_eq!(ok(&text).headers, want);
        let crlf =
            "\u{feff}---\r\nhttp_server_config:\r\n  headers:\r\n    X-Frame-Options: deny\r\n";
        assert_eq!(value(crlf), "deny");
        assert_eq!(ok("# nothing\n\n   \n"), WebConfig::default());
    }

    #[test]
    fn refused_constructs_name_their_line() {
        let unsupported = "anchors, aliases, tags, block scalars, lists and flow collections \
                           are not supported (quote the value)";
        let unexpected = "unexpected line (check the indentation)";
        let unterminated = "a quoted value without its closing quote";
        let colon = "': ' in a plain value (quote the value)";
        let escape = "an escape other than \\\\ \\\" \\/ \\t and \\ (space)";
        let after = "text after the closing quote";
        let unknown = "this header cannot be set";
        let tab = "a tab in the indentation (YAML indents with spaces)";
        let control = "a control character or a line break other than LF or CRLF";
        let cases = [
            ("X-XSS-Protection: &x 1", 3, unsupported),
            ("X-XSS-Protection: *x", 3, unsupported),
            ("X-XSS-Protection: !!str 1", 3, unsupported),
            ("X-XSS-Protection: |\n      x", 3, unsupported),
            ("X-XSS-Protection: >-\n      x", 3, unsupported),
            ("X-XSS-Protection: {b: 1}", 3, unsupported),
            ("X-XSS-Protection: [1, 2]", 3, unsupported),
            ("X-XSS-Protection: - 1", 3, unsupported),
            ("X-XSS-Protection: a: b", 3, colon),
            ("X-XSS-Protection: a\n      b:", 4, colon),
            ("X-XSS-Protection: 'b", 3, unterminated),
            ("X-XSS-Protection: 'b\n\n      c'", 3, unterminated),
            ("X-XSS-Protection: 'b\n    c'", 3, unterminated),
            ("X-XSS-Protection: \"b\\", 3, escape),
            ("X-XSS-Protection: \"b\\x41\"", 3, escape),
            ("X-XSS-Protection: \"b\" c", 3, after),
            ("X-XSS-Protection: \"b\"#c", 3, after),
            ("X-XSS-Protection: 'b\n      c' d", 4, after),
            ("X-XSS-Protection: 'b'\n      c", 4, unexpected),
            ("X-XSS-Protection: b # c\n      d", 4, unexpected),
            ("X-XSS-Protection: b\n\n      c", 5, unexpected),
            ("X-XSS-Protection: b\n   c", 4, unexpected),
            ("'X-XSS-Protection': b", 3, unknown),
            ("X-XSS-Protection : b", 3, unknown),
            ("? X-XSS-Protection\n    : b", 3, "expected key: value"),
            ("\tX-XSS-Protection: b", 3, tab),
            ("X-XSS-Protection: b\n\t# c", 4, tab),
            ("X-XSS-Protection: b\u{85}", 3, control),
            ("X-XSS-Protection: b\u{2028}", 3, control),
            ("# \r X-XSS-Protection: b", 3, control),
        ];
        for (rest, no, want) in cases {
            let text = format!("http_server_config:\n  headers:\n    {rest}\n");
            let e = fails(&text);
            assert!(
                e.starts_with(&format!("line {no}: {want}")),
                "{text:?}: {e}"
            );
        }
        let top = [
            ("http_server_config: {}\n  http2: true\n", "line 2: "),
            ("http_server_config: ~\n  http2: true\n", "line 2: "),
            (
                "http_server_config:\n    http2: true\n  headers: {}\n",
                "line 3: ",
            ),
            ("  http_server_config: {}\n", "line 1: "),
            ("http_server_config: {}\n---\n", "line 2: expected"),
            ("http_server_config: {}\n...\n", "line 2: expected"),
            ("--- # c\n", "line 1: expected"),
            ("{}\n", "line 1: expected"),
        ];
        for (text, want) in top {
            assert!(fails(text).starts_with(want), "{text:?}: {}", fails(text));
        }
    }

    #[test]
    fn errors_hold_no_content() {
        for text in [
            format!("basic_auth_users:\n  alice: {}\n", &HASH[1..]),
            format!("basic_auth_users:\n  alice: '{HASH}\n"),
            format!("basic_auth_users:\n  alice: {HASH}: x\n"),
            format!("basic_auth_users:\n  alice: !x {HASH}\n"),
            format!("basic_auth_users:\n  alice: {HASH}\x01\n"),
            format!("basic_auth_users:\n\talice: {HASH}\n"),
            format!("basic_auth_users: alice {HASH}\n"),
        ] {
            let e = fails(&text);
            assert!(!e.contains("mDwo") && !e.contains("alice"), "{e}");
        }
    }

    #[test]
    fn load_names_the_flag_and_path() {
        let dir = std::env::temp_dir().join(format!("hashreload-webconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("web-config.yaml");
        std::fs::write(
            &file,
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        )
        .unwrap();
        let c = load("--web-config-file", &file).unwrap();
        assert_eq!(c.headers, headers(&[("X-Frame-Options", "deny")]));
        std::fs::write(&file, "a: 1\n").unwrap();
        let e = load("--web-config-file", &file).unwrap_err();
        let want = format!(
            "--web-config-file {}: line 1: unknown key (",
            file.display()
        );
        assert!(e.starts_with(&want), "{e}");
        std::fs::write(&file, vec![b' '; 70_000]).unwrap();
        let e = load("--web-config-file", &file).unwrap_err();
        assert!(e.ends_with(": larger than 64 KiB"), "{e}");
        let e = load("--web-config-file", &dir).unwrap_err();
        assert!(e.ends_with(": not a regular file"), "{e}");
        let e = load("--web-config-file", &dir.join("missing")).unwrap_err();
        assert!(
            e.starts_with("--web-config-file ") && e.contains("missing: "),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
