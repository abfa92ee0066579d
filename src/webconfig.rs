//! `--web-config-file`: the Prometheus exporter-toolkit web config that prometheus-operator hands
//! its config reloader (https://prometheus.io/docs/prometheus/latest/configuration/https/).
//!
//! It takes extra response headers and `basic_auth_users` in every build, and `tls_server_config`
//! in the -tls build; what this build cannot serve (TLS without the -tls image, rate limits,
//! client certificates taken unverified) is refused by name instead of silently serving less
//! than was asked. The file is read line by line, only as deep as the format goes, and only in
//! the YAML that yaml.v2 writes for it: block mappings, block lists of scalars, plain and quoted
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
    /// `tls_server_config`, when it names a certificate: the server speaks only TLS.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls_server::ServerTls>,
    /// Settings accepted but without effect here, to log as warnings.
    pub notes: Vec<String>,
}

/// The operator writes well under a KiB; this only keeps a wrong path from being read whole.
const MAX_SIZE: u64 = 64 * 1024;

/// Reads and checks the file `flag` names. In the -tls build the certificate, key and client
/// CA are read too, so a missing or broken one is an error at start, naming its path.
pub fn load(flag: &str, path: &Path) -> Result<WebConfig, String> {
    // A regular file's length is known before it is read; a device or a pipe could be endless.
    let text = std::fs::metadata(path).and_then(|m| match (m.is_file(), m.len() > MAX_SIZE) {
        (true, false) => std::fs::read_to_string(path),
        (false, _) => Err(std::io::Error::other("not a regular file")),
        (true, true) => Err(std::io::Error::other("larger than 64 KiB")),
    });
    let text = text.map_err(|e| fail(flag, path, 0, &e.to_string()))?;
    let wc = parse(flag, path, &text)?;
    #[cfg(feature = "tls")]
    if let Some(tls) = &wc.tls {
        let e = |e| fail(flag, path, 0, &format!("tls_server_config: {e}"));
        crate::tls_server::server_config(tls).map_err(e)?;
    }
    Ok(wc)
}

/// Checks the text of a web config; `path` names it in messages and is where relative paths
/// in it start.
pub fn parse(flag: &str, path: &Path, text: &str) -> Result<WebConfig, String> {
    let mut ls = Lines {
        rest: text.strip_prefix('\u{feff}').unwrap_or(text),
        read: 0,
        no: 0,
        gap: false,
        next: None,
    };
    #[allow(unused_mut)]
    let mut wc = config(&mut ls).map_err(|what| fail(flag, path, ls.no, what))?;
    #[cfg(feature = "tls")]
    if let Some(t) = &mut wc.tls {
        let dir = path.parent().unwrap_or(Path::new(""));
        let files = [&mut t.cert_file, &mut t.key_file];
        for f in files.into_iter().chain(t.client_ca_file.as_mut()) {
            *f = dir.join(&*f);
        }
    }
    Ok(wc)
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
#[cfg(feature = "tls")]
const TLS: u8 = 4;

/// The error for a key the mapping does not have; after its colon, the keys it has.
fn known(mapping: u8) -> &'static str {
    match mapping {
        TOP => {
            "unknown key (exporter-toolkit knows: tls_server_config basic_auth_users \
              rate_limit http_server_config)"
        }
        HTTP => "unknown key in http_server_config (exporter-toolkit knows: http2 headers)",
        #[cfg(feature = "tls")]
        TLS => {
            "unknown key in tls_server_config (exporter-toolkit knows: cert_file key_file \
              client_ca_file client_auth_type min_version max_version cipher_suites \
              curve_preferences prefer_server_cipher_suites client_allowed_sans cert key \
              client_ca)"
        }
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
    #[cfg(feature = "tls")]
    let mut tls = TlsKeys::default();
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
        #[cfg(feature = "tls")]
        if m == TLS {
            tls.key(ls, k, value, indent, &mut wc.notes)?;
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
        if m == TOP && (k == 2 || k == 0 && cfg!(not(feature = "tls"))) {
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
            #[cfg(feature = "tls")]
            (TOP, 0) => TLS,
            (TOP, 1) => USERS,
            (TOP, _) => HTTP,
            _ => HEADERS,
        };
    }
    #[cfg(feature = "tls")]
    {
        ls.no = 0;
        wc.tls = tls.check(&mut wc.notes)?;
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
    if hash.cost() > crate::basicauth::MAX_COST {
        return Err(
            "basic_auth_users: a bcrypt cost above 14: every new password would hold \
                    the listener for seconds (htpasswd -B makes 5, Go's bcrypt 10)",
        );
    }
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

/// `tls_server_config` as read, before it is checked as a whole.
#[cfg(feature = "tls")]
#[derive(Default)]
struct TlsKeys {
    /// cert_file, key_file, client_ca_file, client_auth_type; "" when not set.
    text: [String; 4],
    /// min_version and max_version: 10 to 13 for TLS10 to TLS13, 0 when not set.
    versions: [u8; 2],
    /// Whether any key is set (a config without a certificate still serves plain HTTP).
    any: bool,
}

#[cfg(feature = "tls")]
impl TlsKeys {
    /// Reads the value of key `k` (its place in `known(TLS)`).
    fn key<'a>(
        &mut self,
        ls: &mut Lines<'a>,
        k: usize,
        value: &'a str,
        at: usize,
        notes: &mut Vec<String>,
    ) -> Result<(), &'static str> {
        let no = ls.no;
        match k {
            0..=5 => {
                let v = ls.scalar(value, at)?;
                ls.no = no;
                self.any |= !v.is_empty();
                if k < 4 {
                    self.text[k] = v;
                    return Ok(());
                }
                let n = match v.strip_prefix("TLS1").map(str::as_bytes) {
                    _ if v.is_empty() => 0,
                    Some(&[d @ b'0'..=b'3']) => 10 + d - b'0',
                    _ => return Err("min_version and max_version are TLS10 to TLS13"),
                };
                self.versions[k - 4] = n;
            }
            6 | 7 | 9 => {
                let Some(items) = ls.list(value, at)? else {
                    return Ok(());
                };
                self.any = true;
                if k == 9 {
                    ls.no = no;
                    return Err("client_allowed_sans is not supported by hashreload \
                                (the client CA decides who connects)");
                }
                if items > 0 {
                    notes.push(if k == 6 {
                        "cipher_suites is ignored: hashreload offers TLS 1.3 and, in TLS 1.2, \
                         only ECDHE with AES-GCM"
                            .into()
                    } else {
                        "curve_preferences is ignored: hashreload offers X25519, P-256 and P-384"
                            .into()
                    });
                }
            }
            8 => {
                if !is_bool(plain(value).0) {
                    return Err("prefer_server_cipher_suites must be true or false");
                }
                if !is_null(plain(value).0) {
                    self.any = true;
                    notes.push(
                        "prefer_server_cipher_suites is ignored, as Go has done since 1.17".into(),
                    );
                }
            }
            _ => {
                let deeper = ls.peek()?.is_some_and(|l| l.0 > at);
                ls.no = no;
                if !is_null(plain(value).0) || deeper {
                    return Err(
                        "cert, key and client_ca (PEM in the file) are not supported: \
                                mount the files and name them in cert_file, key_file and \
                                client_ca_file",
                    );
                }
            }
        }
        Ok(())
    }

    /// What exporter-toolkit's `ConfigToTLSConfig` checks, and what hashreload refuses on top.
    fn check(
        self,
        notes: &mut Vec<String>,
    ) -> Result<Option<crate::tls_server::ServerTls>, &'static str> {
        let [cert, key, ca, auth] = self.text;
        if cert.is_empty() && key.is_empty() && ca.is_empty() && auth.is_empty() {
            if self.any {
                notes.push(
                    "tls_server_config names no certificate: serving plain HTTP, as \
                     exporter-toolkit does"
                        .into(),
                );
            }
            return Ok(None);
        }
        if cert.is_empty() || key.is_empty() {
            return Err("tls_server_config needs cert_file and key_file");
        }
        let require = match auth.as_str() {
            "" | "NoClientCert" => None,
            "VerifyClientCertIfGiven" => Some(false),
            "RequireAndVerifyClientCert" => Some(true),
            "RequestClientCert" | "RequireAnyClientCert" | "RequireClientCert" => {
                return Err(
                    "client_auth_type: RequestClientCert and RequireAnyClientCert take \
                            client certificates without verifying them; hashreload verifies \
                            them (VerifyClientCertIfGiven, RequireAndVerifyClientCert)",
                );
            }
            _ => {
                return Err("client_auth_type must be NoClientCert, RequestClientCert, \
                            RequireAnyClientCert, VerifyClientCertIfGiven or \
                            RequireAndVerifyClientCert");
            }
        };
        match (require, ca.is_empty()) {
            (None, false) => {
                return Err(
                    "client_ca_file needs client_auth_type VerifyClientCertIfGiven or \
                            RequireAndVerifyClientCert",
                );
            }
            (Some(_), true) => {
                return Err("client_auth_type VerifyClientCertIfGiven and \
                            RequireAndVerifyClientCert need client_ca_file (hashreload trusts \
                            no system CAs)");
            }
            _ => {}
        }
        let [min, max] = self.versions;
        if min == 10 || min == 11 {
            notes.push(
                "min_version TLS10 and TLS11 are raised to TLS12: hashreload speaks TLS 1.2 \
                 and 1.3 only"
                    .into(),
            );
        }
        if max == 10 || max == 11 {
            return Err(
                "max_version must be TLS12 or TLS13: hashreload speaks TLS 1.2 and \
                        1.3 only",
            );
        }
        if min == 13 && max == 12 {
            return Err("min_version is above max_version");
        }
        Ok(Some(crate::tls_server::ServerTls {
            cert_file: cert.into(),
            key_file: key.into(),
            client_ca_file: (!ca.is_empty()).then(|| ca.into()),
            require_client_cert: require == Some(true),
            tls12: min < 13,
            tls13: max != 12,
        }))
    }
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

    /// A list of scalars after the colon of a key at column `at`: null, `[]`, one line of flow
    /// (`[a, b]`), or `- item` lines at the key's column or deeper, as yaml.v2 writes them.
    /// Only how many items it has is kept; None for null.
    #[cfg(feature = "tls")]
    fn list(&mut self, value: &'a str, at: usize) -> Result<Option<usize>, &'static str> {
        let v = plain(value).0;
        if v.starts_with('[') && v.ends_with(']') {
            let inner = trim(&v[1..v.len() - 1]);
            return Ok(Some(
                inner.split(',').filter(|s| !trim(s).is_empty()).count(),
            ));
        }
        if !is_null(v) {
            return Err("a list was expected (- item lines, or [a, b])");
        }
        let (mut n, mut column) = (0, None);
        while let Some((i, text)) = self.peek()? {
            let item = text == "-" || text.starts_with("- ");
            if i < at || !item || column.is_some_and(|c| c != i) {
                break;
            }
            column = Some(i);
            self.take();
            self.scalar(&text[1..], i)?;
            n += 1;
        }
        Ok((n > 0).then_some(n))
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
    #[cfg(feature = "tls")]
    use crate::tls_server::ServerTls;

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

    #[cfg(not(feature = "tls"))]
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
        // Cost 15 is refused (it would hold the one server thread for seconds); 14 is taken.
        let cost = |c: &str| format!("bob: $2y${c}{}", &BOB[6..]);
        assert!(user(&cost("15")).starts_with("line 3: basic_auth_users: a bcrypt cost above 14"));
        assert!(
            ok(&format!("basic_auth_users:\n  bob: {}\n", &cost("14")[5..]))
                .users
                .len()
                == 1
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

    /// What `ok` gives for a web config with `tls_server_config` lines, its TLS and notes.
    #[cfg(feature = "tls")]
    fn tls(lines: &[&str]) -> (ServerTls, Vec<String>) {
        let c = ok(&(String::from("tls_server_config:\n") + &y(lines)));
        (c.tls.expect("TLS"), c.notes)
    }

    #[cfg(feature = "tls")]
    #[test]
    fn operator_files_with_tls() {
        // testdata/minimal_TLS_config_with_certificate_from_secret.golden
        let (t, notes) = tls(&[
            "  cert_file: /web_certs_path_prefix/secret/test-secret-cert/tls.crt",
            "  key_file: /web_certs_path_prefix/secret/test-secret-key/tls.key",
        ]);
        let want = ServerTls {
            cert_file: "/web_certs_path_prefix/secret/test-secret-cert/tls.crt".into(),
            key_file: "/web_certs_path_prefix/secret/test-secret-key/tls.key".into(),
            client_ca_file: None,
            require_client_cert: false,
            tls12: true,
            tls13: true,
        };
        assert_eq!((t, notes), (want, vec![]));
        // testdata/TLS_config_with_client_CA_cert_and_key_files.golden: a client CA without
        // client_auth_type is an error to exporter-toolkit too.
        let golden = "tls_server_config:\n  cert_file: /etc/ssl/certs/tls.crt\n  \
                      key_file: /etc/ssl/secrets/tls.key\n  client_ca_file: /etc/ssl/certs/tls.client_ca\n";
        assert_eq!(
            fails(golden),
            "client_ca_file needs client_auth_type VerifyClientCertIfGiven or \
             RequireAndVerifyClientCert"
        );
        // testdata/TLS_config_with_all_parameters_from_secrets.golden: RequireAnyClientCert
        // takes any certificate, unverified.
        let e = fails(&y(ALL_TLS));
        assert!(e.starts_with("client_auth_type: RequestClientCert and RequireAnyClientCert take client certificates without verifying them"), "{e}");
        // The same with the client certificate verified: every other key is taken.
        let all = y(ALL_TLS).replace("RequireAnyClientCert", "RequireAndVerifyClientCert");
        let c = ok(&all);
        let t = c.tls.unwrap();
        assert_eq!(
            t.client_ca_file.as_deref(),
            Some(Path::new(
                "/web_certs_path_prefix/secret/test-secret-ca/tls.ca"
            ))
        );
        assert!(t.require_client_cert && t.tls12 && t.tls13);
        let notes: Vec<&str> = c.notes.iter().map(|n| &n[..n.find(' ').unwrap()]).collect();
        assert_eq!(
            notes,
            [
                "cipher_suites",
                "prefer_server_cipher_suites",
                "curve_preferences",
                "min_version",
            ]
        );
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_keys_as_exporter_toolkit_reads_them() {
        let base = ["  cert_file: tls.crt", "  key_file: 'keys/tls.key'"];
        let with = |more: &[&str]| -> Vec<String> {
            base.iter().chain(more).map(|s| s.to_string()).collect()
        };
        fn lines(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        // Relative paths are from the web config's directory.
        let (t, _) = tls(&base);
        assert_eq!(t.cert_file, Path::new("/w/tls.crt"));
        assert_eq!(t.key_file, Path::new("/w/keys/tls.key"));
        let v = with(&[
            "  client_ca_file: ca.pem",
            "  client_auth_type: VerifyClientCertIfGiven",
        ]);
        let (t, _) = tls(&lines(&v));
        assert_eq!(t.client_ca_file.as_deref(), Some(Path::new("/w/ca.pem")));
        assert!(!t.require_client_cert);
        let (t, _) = tls(&lines(&with(&["  client_auth_type: NoClientCert"])));
        assert!(t.client_ca_file.is_none());
        for (min, max, tls12, tls13) in [
            ("TLS12", "TLS13", true, true),
            ("TLS13", "", false, true),
            ("TLS10", "TLS12", true, false),
            ("~", "~", true, true),
        ] {
            let v = with(&[
                &format!("  min_version: {min}"),
                &format!("  max_version: {max}"),
            ]);
            let (t, notes) = tls(&lines(&v));
            assert_eq!((t.tls12, t.tls13), (tls12, tls13), "{min} {max}");
            assert_eq!(notes.len(), usize::from(min == "TLS10"), "{notes:?}");
        }
        // Lists as yaml.v2 writes them, indented, or in flow; empty ones say nothing.
        for list in [
            "  cipher_suites:\n  - TLS_AES_128_GCM_SHA256\n  - 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'",
            "  cipher_suites:\n    - TLS_AES_128_GCM_SHA256",
            "  cipher_suites: [TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384]",
        ] {
            let (_, notes) = tls(&lines(&with(&[list])));
            assert!(notes[0].starts_with("cipher_suites is ignored"), "{list}");
        }
        for list in [
            "  cipher_suites: []",
            "  curve_preferences:",
            "  curve_preferences: ~",
        ] {
            assert_eq!(
                tls(&lines(&with(&[list]))).1,
                Vec::<String>::new(),
                "{list}"
            );
        }
        // No certificate at all: plain HTTP, as exporter-toolkit serves it.
        let c = ok("tls_server_config:\n  min_version: TLS13\n");
        assert_eq!(c.tls, None);
        assert!(c.notes[0].starts_with("tls_server_config names no certificate"));
        assert_eq!(ok("tls_server_config:\n  cert_file: ''\n").tls, None);
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_refusals_name_the_key() {
        let t = |rest: &str| {
            fails(&format!(
                "tls_server_config:\n  cert_file: c.pem\n  key_file: k.pem\n{rest}"
            ))
        };
        let cases = [
            ("  client_auth_type: RequestClientCert\n", "client_auth_type: RequestClientCert and RequireAnyClientCert take"),
            ("  client_auth_type: RequireClientCert\n", "client_auth_type: RequestClientCert and RequireAnyClientCert take"),
            ("  client_auth_type: requireandverifyclientcert\n", "client_auth_type must be NoClientCert"),
            ("  client_auth_type: RequireAndVerifyClientCert\n", "client_auth_type VerifyClientCertIfGiven and RequireAndVerifyClientCert need client_ca_file"),
            ("  client_allowed_sans:\n  - a.example\n", "line 4: client_allowed_sans is not supported"),
            ("  client_allowed_sans: []\n", "line 4: client_allowed_sans is not supported"),
            ("  cert: |\n    -----BEGIN CERTIFICATE-----\n", "line 4: cert, key and client_ca (PEM in the file) are not supported"),
            ("  key: x\n", "line 4: cert, key and client_ca (PEM in the file) are not supported"),
            ("  client_ca: x\n", "line 4: cert, key and client_ca (PEM in the file) are not supported"),
            ("  min_version: TLS14\n", "line 4: min_version and max_version are TLS10 to TLS13"),
            ("  max_version: tls13\n", "line 4: min_version and max_version are TLS10 to TLS13"),
            ("  max_version: TLS11\n", "max_version must be TLS12 or TLS13"),
            ("  min_version: TLS13\n  max_version: TLS12\n", "min_version is above max_version"),
            ("  prefer_server_cipher_suites: 1\n", "line 4: prefer_server_cipher_suites must be true or false"),
            ("  cipher_suites: a\n", "line 4: a list was expected"),
            ("  cipher_suites:\n  - a: b\n", "line 5: ': ' in a plain value"),
            ("  cipher_suites:\n  - - a\n", "line 5: anchors, aliases"),
            ("  cipher_suites:\n  - a\n - b\n", "line 6: unexpected line"),
            ("  tls_version: TLS13\n", "line 4: unknown key in tls_server_config (exporter-toolkit knows: cert_file"),
            ("  cert_file: d.pem\n", "line 4: duplicate key"),
        ];
        for (rest, want) in cases {
            let e = t(rest);
            assert!(e.starts_with(want), "{rest:?}: {e}");
        }
        assert_eq!(
            fails("tls_server_config:\n  key_file: k.pem\n"),
            "tls_server_config needs cert_file and key_file"
        );
        assert_eq!(
            fails("tls_server_config:\n  client_auth_type: NoClientCert\n"),
            "tls_server_config needs cert_file and key_file"
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
