//! `--web-config-file`: the Prometheus exporter-toolkit web config that prometheus-operator hands
//! its config reloader (https://prometheus.io/docs/prometheus/latest/configuration/https/).
//!
//! This build serves plain HTTP only, so it takes what a file without TLS asks for (extra
//! response headers) and refuses TLS, basic auth and rate limits by name instead of silently
//! serving less than was asked. The file is read with a strict YAML subset: the block mappings,
//! lists and scalars that yaml.v2 writes (including the scalars it wraps at 80 columns), and
//! nothing that could make it mean something else (anchors, tags, flow content, block scalars,
//! duplicate keys). Errors name the line, never its content: the file may hold password hashes.

use std::io::Read;
use std::path::Path;

/// What the web config asks of the metrics and health server.
#[derive(Debug, Default, PartialEq)]
pub struct WebConfig {
    /// Added to every response, in file order.
    pub headers: Vec<(String, String)>,
    /// Settings accepted but without effect here, to log as warnings.
    pub notes: Vec<String>,
}

/// The operator writes well under a KiB; this only keeps a wrong path from being read whole.
const MAX_SIZE: u64 = 64 * 1024;
/// The format nests four levels; the bound keeps the recursion's stack small.
const MAX_DEPTH: usize = 16;
const WS: [char; 2] = [' ', '\t'];

/// Reads and checks the file `flag` names.
pub fn load(flag: &str, path: &Path) -> Result<WebConfig, String> {
    let mut text = String::new();
    let read = std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SIZE + 1).read_to_string(&mut text))
        .map_err(|e| e.to_string());
    let read = read.and_then(|n| match n as u64 > MAX_SIZE {
        true => Err("larger than 64 KiB".to_string()),
        false => Ok(()),
    });
    read.map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    parse(flag, path, &text)
}

/// Checks the text of a web config; `path` only names it in messages.
pub fn parse(flag: &str, path: &Path, text: &str) -> Result<WebConfig, String> {
    document(text)
        .and_then(config)
        .map_err(|e| format!("{flag} {}: {e}", path.display()))
}

/// What exporter-toolkit's `Config` does with the document (it unmarshals strictly: unknown
/// keys are errors at every level).
fn config(root: Node) -> Result<WebConfig, String> {
    let mut wc = WebConfig::default();
    let entries = match root {
        Node::Null => return Ok(wc), // an empty file: what the operator writes without web settings
        Node::Map(e) => e,
        _ => return Err("the file must be a mapping (key: value)".into()),
    };
    for (key, no, value) in entries {
        // Null and {} are exporter-toolkit's defaults: no TLS, no users, no limit.
        let need = match key.as_str() {
            "tls_server_config" => {
                "needs the hashreload -tls image (this build serves plain HTTP only)"
            }
            "basic_auth_users" => {
                "needs the hashreload -tls image (this build has no authentication)"
            }
            "rate_limit" => "is not supported by hashreload",
            "http_server_config" => {
                http(mapping(value, no, &key)?, &mut wc)?;
                continue;
            }
            _ => {
                return Err(unknown(
                    no,
                    &key,
                    "",
                    "tls_server_config, http_server_config, basic_auth_users, rate_limit",
                ))
            }
        };
        if !mapping(value, no, &key)?.is_empty() {
            return Err(format!("{key} {need}"));
        }
    }
    Ok(wc)
}

fn unknown(no: usize, key: &str, place: &str, known: &str) -> String {
    at(
        no,
        &format!("unknown key {key:?}{place} (exporter-toolkit knows {known})"),
    )
}

type Entries = Vec<(String, usize, Node)>;

/// The entries of a mapping; null is an empty one.
fn mapping(value: Node, no: usize, key: &str) -> Result<Entries, String> {
    match value {
        Node::Null => Ok(Vec::new()),
        Node::Map(e) => Ok(e),
        _ => Err(at(no, &format!("{key} must be a mapping"))),
    }
}

fn http(entries: Entries, wc: &mut WebConfig) -> Result<(), String> {
    for (key, no, value) in entries {
        match key.as_str() {
            "http2" => {
                let plain_bool = matches!(&value, Node::Str(s, true) if yaml_bool(s));
                if !plain_bool && !matches!(value, Node::Null) {
                    return Err(at(no, "http2 must be true or false"));
                }
                wc.notes
                    .push("http2 is ignored: hashreload serves HTTP/1.1".into());
            }
            "headers" => headers(mapping(value, no, &key)?, wc)?,
            _ => {
                return Err(unknown(
                    no,
                    &key,
                    " in http_server_config",
                    "http2, headers",
                ))
            }
        }
    }
    Ok(())
}

/// The headers exporter-toolkit lets a config set, and the values it allows where it checks them.
const HEADERS: [(&str, &[&str]); 5] = [
    ("Content-Security-Policy", &[]),
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
];

fn headers(entries: Entries, wc: &mut WebConfig) -> Result<(), String> {
    for (name, no, value) in entries {
        let Some((_, allowed)) = HEADERS.iter().find(|h| h.0 == name) else {
            let names: Vec<&str> = HEADERS.iter().map(|h| h.0).collect();
            let msg = format!(
                "header {name:?} cannot be set (exporter-toolkit allows {})",
                names.join(", ")
            );
            return Err(at(no, &msg));
        };
        // yaml.v2 reads any scalar into a string, null as "".
        let value = match value {
            Node::Null => String::new(),
            Node::Str(s, _) => s,
            _ => return Err(at(no, &format!("{name} must be a text value"))),
        };
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(at(no, &format!("{name} must be {}", allowed.join(" or "))));
        }
        // Go would turn a line break into a space; here it is refused, as is any other control.
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(at(
                no,
                &format!("the value of {name} has a control character"),
            ));
        }
        // Go trims header values when it writes them.
        wc.headers.push((name, value.trim_matches(WS).to_string()));
    }
    Ok(())
}

/// The YAML 1.1 booleans yaml.v2 reads into a bool.
fn yaml_bool(s: &str) -> bool {
    let b = [
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no",
        "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF",
    ];
    b.contains(&s)
}

fn at(no: usize, msg: &str) -> String {
    format!("line {no}: {msg}")
}

/// A parsed YAML node. Mapping entries keep their key's line for messages.
#[derive(Debug, PartialEq)]
enum Node {
    Null,
    /// The text, and whether it was plain (unquoted): only plain scalars are booleans.
    Str(String, bool),
    Map(Entries),
    List(Vec<Node>),
}

/// A line that is neither blank nor a comment.
#[derive(Clone, Copy)]
struct Line<'a> {
    no: usize,
    /// Columns of leading spaces; for a list item's content, the column the content starts at.
    indent: usize,
    /// After the indentation, trailing comment and spaces still on.
    text: &'a str,
    /// A blank or comment line comes before it: a scalar does not continue across one.
    gap: bool,
}

fn document(text: &str) -> Result<Node, String> {
    let mut p = Parser {
        lines: lines(text)?,
        pos: 0,
    };
    if p.lines.is_empty() {
        return Ok(Node::Null);
    }
    let root = p.node(0, 0)?;
    match p.lines.get(p.pos) {
        Some(l) => Err(at(l.no, "unexpected line (check the indentation)")),
        None => Ok(root),
    }
}

/// Splits the text into content lines; drops blank and comment lines and the `---` start.
fn lines(text: &str) -> Result<Vec<Line<'_>>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out: Vec<Line> = Vec::new();
    let (mut gap, mut started) = (false, false);
    for (i, raw) in text.split('\n').enumerate() {
        let no = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let text = raw.trim_start_matches(' ');
        let content = text.trim_start_matches(WS);
        if content.is_empty() || content.starts_with('#') {
            gap = true;
            continue;
        }
        if text.starts_with('\t') {
            return Err(at(
                no,
                "a tab in the indentation (YAML indents with spaces)",
            ));
        }
        let indent = raw.len() - text.len();
        let marker = text.starts_with("---") || text.starts_with("...");
        if indent == 0 && marker && (text.len() == 3 || text[3..].starts_with(WS)) {
            if text.starts_with("...") || started || !out.is_empty() {
                return Err(at(
                    no,
                    "a document marker after the start (one document only)",
                ));
            }
            let rest = text[3..].trim_start_matches(WS);
            if !(rest.is_empty() || rest.starts_with('#')) {
                return Err(at(no, "content after --- is not supported"));
            }
            (started, gap) = (true, true);
            continue;
        }
        out.push(Line {
            no,
            indent,
            text,
            gap,
        });
        gap = false;
    }
    Ok(out)
}

struct Parser<'a> {
    lines: Vec<Line<'a>>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.pos).copied()
    }

    /// The node that starts at the current line; a scalar continues on lines indented at least
    /// `min`.
    fn node(&mut self, min: usize, depth: usize) -> Result<Node, String> {
        let line = self.lines[self.pos];
        if depth > MAX_DEPTH {
            return Err(at(line.no, "nested too deeply"));
        }
        if dash(line.text).is_some() {
            return self.list(line.indent, depth);
        }
        if key(line.text, line.no)?.is_some() {
            return self.map(line.indent, depth);
        }
        self.pos += 1;
        self.scalar(line.text, line.no, min)
    }

    fn map(&mut self, indent: usize, depth: usize) -> Result<Node, String> {
        let mut entries: Entries = Vec::new();
        while let Some(line) = self.peek().filter(|l| l.indent == indent) {
            let entry = match dash(line.text) {
                Some(_) => None,
                None => key(line.text, line.no)?,
            };
            let Some((k, rest)) = entry else {
                return Err(at(line.no, "expected key: value"));
            };
            if entries.iter().any(|e| e.0 == k) {
                return Err(at(line.no, "duplicate key"));
            }
            self.pos += 1;
            let rest = rest.trim_start_matches(WS);
            let value = if !rest.is_empty() && !rest.starts_with('#') {
                self.scalar(rest, line.no, indent + 1)?
            } else {
                match self.peek() {
                    Some(n) if n.indent > indent => self.node(indent + 1, depth + 1)?,
                    // yaml.v2 writes a list value at its key's indentation.
                    Some(n) if n.indent == indent && dash(n.text).is_some() => {
                        self.list(indent, depth + 1)?
                    }
                    _ => Node::Null,
                }
            };
            entries.push((k, line.no, value));
        }
        Ok(Node::Map(entries))
    }

    fn list(&mut self, indent: usize, depth: usize) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(line) = self.peek().filter(|l| l.indent == indent) {
            let Some(rest) = dash(line.text) else { break };
            let content = rest.trim_start_matches(' ');
            if content.starts_with('\t') {
                return Err(at(
                    line.no,
                    "a tab in the indentation (YAML indents with spaces)",
                ));
            }
            let item = if content.is_empty() || content.starts_with('#') {
                self.pos += 1;
                match self.peek() {
                    Some(n) if n.indent > indent => self.node(indent + 1, depth + 1)?,
                    _ => Node::Null,
                }
            } else {
                // `- value` or `- key: value`: the content is a node indented where it starts.
                let l = &mut self.lines[self.pos];
                l.indent = indent + 1 + rest.len() - content.len();
                l.text = content;
                self.node(indent + 1, depth + 1)?
            };
            items.push(item);
        }
        Ok(Node::List(items))
    }

    /// A scalar, `{}` or `[]` that starts with `first` on line `no`; the lines after it that are
    /// indented at least `min` continue it (yaml.v2 wraps long values at 80 columns).
    fn scalar(&mut self, first: &str, no: usize, min: usize) -> Result<Node, String> {
        let start = self.pos;
        while self.peek().is_some_and(|l| l.indent >= min && !l.gap) {
            self.pos += 1;
        }
        let more = &self.lines[start..self.pos];
        if first.starts_with(['"', '\'']) {
            let mut text = first.to_string();
            for l in more {
                text.push('\n');
                text.push_str(l.text);
            }
            let (value, rest) = quoted(&text).map_err(|e| at(no, e))?;
            let tail = rest.trim_start_matches(WS);
            let closed = text[..text.len() - rest.len()].matches('\n').count();
            if tail.contains('\n') {
                return Err(at(
                    more[closed].no,
                    "unexpected line (check the indentation)",
                ));
            }
            if !(tail.is_empty() || tail.starts_with('#')) {
                let no = closed.checked_sub(1).map_or(no, |i| more[i].no);
                return Err(at(no, "text after the closing quote"));
            }
            return Ok(Node::Str(value, false));
        }
        let (t, mut commented) = cut_comment(first);
        if t == "{}" || t == "[]" {
            if let Some(l) = more.first() {
                return Err(at(l.no, "unexpected line (check the indentation)"));
            }
            return Ok(if t == "{}" {
                Node::Map(Vec::new())
            } else {
                Node::List(Vec::new())
            });
        }
        if let Some(msg) = refused_start(t) {
            return Err(at(no, msg));
        }
        let mut out = String::new();
        let rest = more.iter().map(|l| (l.no, l.text));
        for (no, text) in std::iter::once((no, first)).chain(rest) {
            if commented && !out.is_empty() {
                return Err(at(no, "unexpected line (check the indentation)"));
            }
            let t;
            (t, commented) = cut_comment(text);
            if t.ends_with(':') || t.contains(": ") || t.contains(":\t") {
                return Err(at(no, "': ' in a plain value (quote the value)"));
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(t);
        }
        Ok(match out.as_str() {
            "~" | "null" | "Null" | "NULL" => Node::Null,
            _ => Node::Str(out, true),
        })
    }
}

/// A list item's text after the `-`, if the line is one.
fn dash(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('-')?;
    (rest.is_empty() || rest.starts_with(WS)).then_some(rest)
}

/// The key of a `key: value` line and what follows its colon; None when the line is no entry.
fn key(text: &str, no: usize) -> Result<Option<(String, &str)>, String> {
    if text.starts_with(['"', '\'']) {
        let (k, rest) = match quoted(text) {
            Ok(q) => q,
            Err(UNTERMINATED) => return Ok(None), // a quoted value going on to the next line
            Err(e) => return Err(at(no, e)),
        };
        let after = rest.trim_start_matches(WS).strip_prefix(':');
        return Ok(after
            .filter(|a| a.is_empty() || a.starts_with(WS))
            .map(|a| (k, a)));
    }
    let mut after_ws = false;
    for (i, c) in text.char_indices() {
        if c == '#' && after_ws {
            return Ok(None);
        }
        let after = &text[i + c.len_utf8()..];
        if c == ':' && (after.is_empty() || after.starts_with(WS)) {
            let k = text[..i].trim_end_matches(WS);
            if let Some(msg) = refused_start(k) {
                return Err(at(no, msg));
            }
            return Ok(Some((k.to_string(), after)));
        }
        after_ws = c == ' ' || c == '\t';
    }
    Ok(None)
}

/// Why a plain scalar cannot start like this, if it cannot: the indicators of the YAML this
/// subset leaves out.
fn refused_start(s: &str) -> Option<&'static str> {
    let mut chars = s.chars();
    let Some(c) = chars.next() else {
        return Some("an empty key");
    };
    let blank_after = chars.next().is_none_or(|n| n == ' ' || n == '\t');
    Some(match c {
        '&' => "anchors (&) are not supported",
        '*' => "aliases (*) are not supported",
        '!' => "tags (!) are not supported",
        '|' | '>' => "block scalars (| and >) are not supported",
        '{' | '[' | '}' | ']' | ',' => "flow collections are not supported (only {} and [])",
        '%' | '@' | '`' => "a reserved character (% @ `) at the start (quote the value)",
        '-' if blank_after => "a list item where a key or value was expected",
        '?' if blank_after => "complex keys (?) are not supported",
        _ => return None,
    })
}

/// The text before a comment (a `#` after a blank), trimmed, and whether there was one.
fn cut_comment(s: &str) -> (&str, bool) {
    let mut after_ws = true;
    for (i, c) in s.char_indices() {
        if c == '#' && after_ws {
            return (s[..i].trim_matches(WS), true);
        }
        after_ws = c == ' ' || c == '\t';
    }
    (s.trim_matches(WS), false)
}

const UNTERMINATED: &str = "a quoted value without its closing quote";

/// A single- or double-quoted scalar at the start of `s` and the text after it. A line break
/// inside folds to one space, as YAML reads a quoted value yaml.v2 wrapped.
fn quoted(s: &str) -> Result<(String, &str), &'static str> {
    let q = if s.starts_with('"') { '"' } else { '\'' };
    let mut out = String::new();
    // Escaped blanks before a line break are kept; only the ones up to here are trimmed.
    let mut keep = 0;
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' if q == '\'' => {
                if s[i + 1..].starts_with('\'') {
                    chars.next();
                    out.push('\'');
                } else {
                    return Ok((out, &s[i + 1..]));
                }
            }
            '"' if q == '"' => return Ok((out, &s[i + 1..])),
            '\\' if q == '"' => {
                let (_, e) = chars.next().ok_or(UNTERMINATED)?;
                let digits = match e {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => 0,
                };
                let c = if digits > 0 {
                    let hex: String = chars.by_ref().take(digits).map(|(_, c)| c).collect();
                    let n = u32::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == digits);
                    n.and_then(char::from_u32)
                        .ok_or("a bad \\x, \\u or \\U escape")?
                } else {
                    match e {
                        '"' | '\\' | '/' | ' ' => e,
                        'n' => '\n',
                        't' | '\t' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        _ => return Err("an unsupported escape in a double-quoted value"),
                    }
                };
                out.push(c);
                keep = out.len();
            }
            '\n' => {
                while out.len() > keep && out.ends_with(WS) {
                    out.pop();
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    Err(UNTERMINATED)
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
            "    X-Frame-Options: deny",
        ]);
        let csp = concat!(
            "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; ",
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
        );
        let want = headers(&[
            ("Content-Security-Policy", csp),
            ("X-Frame-Options", "deny"),
        ]);
        assert_eq!(ok(&plain).headers, want);
        // Plain is not allowed with ": " inside.
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
        assert_eq!(ok(&single).headers[0].1, csp);
        // Double-quoted: a blank after the break is escaped at the start of the next line.
        let double = y(&[
            "http_server_config:",
            "  headers:",
            r#"    X-XSS-Protection: "1;  mode=block"#,
            r#"      \ x\ty""#,
        ]);
        assert_eq!(ok(&double).headers[0].1, "1;  mode=block  x\ty");
    }

    #[test]
    fn tls_and_auth_are_refused_by_name() {
        // testdata/TLS_config_with_all_parameters_from_secrets.golden
        let tls = y(&[
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
        ]);
        let want =
            "tls_server_config needs the hashreload -tls image (this build serves plain HTTP only)";
        assert_eq!(fails(&tls), want);
        let tls_and_http = y(&[
            "tls_server_config:",
            "  cert_file: /etc/ssl/certs/tls.crt",
            "  key_file: /etc/ssl/secrets/tls.key",
            "http_server_config:",
            "  http2: true",
        ]);
        assert_eq!(fails(&tls_and_http), want);
        let e = fails(&y(&["basic_auth_users:", &format!("  alice: {HASH}")]));
        assert_eq!(
            e,
            "basic_auth_users needs the hashreload -tls image (this build has no authentication)"
        );
        assert_eq!(
            fails("rate_limit:\n  burst: 10\n  interval: 1s\n"),
            "rate_limit is not supported by hashreload"
        );
        // Null and {} are exporter-toolkit's defaults: plain HTTP, no users, no limit.
        let empty =
            "tls_server_config: {}\nbasic_auth_users:\nrate_limit: ~\nhttp_server_config:\n";
        assert_eq!(ok(empty), WebConfig::default());
        assert_eq!(
            fails("tls_server_config: on\n"),
            "line 1: tls_server_config must be a mapping"
        );
    }

    #[test]
    fn unknown_keys_are_refused_as_exporter_toolkit_does() {
        assert!(fails("http_server_config: {}\ntls_config: {}\n")
            .starts_with("line 2: unknown key \"tls_config\" (exporter-toolkit knows "));
        assert!(
            fails("http_server_config:\n  header:\n    X-Frame-Options: deny\n")
                .starts_with("line 2: unknown key \"header\" in http_server_config")
        );
        assert_eq!(fails("- a\n"), "the file must be a mapping (key: value)");
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
        let h = |rest: &str| fails(&format!("http_server_config:\n  headers:\n    {rest}\n"));
        assert!(h("Server: x").starts_with("line 3: header \"Server\" cannot be set"));
        // Names are exact, as in exporter-toolkit's map.
        assert!(h("x-frame-options: deny").starts_with("line 3: header \"x-frame-options\""));
        assert_eq!(
            h("X-Frame-Options: DENY"),
            "line 3: X-Frame-Options must be deny or sameorigin"
        );
        assert_eq!(
            h("X-Content-Type-Options: 'no'"),
            "line 3: X-Content-Type-Options must be nosniff"
        );
        assert_eq!(
            h("X-XSS-Protection: \"1\\r\\nSet-Cookie: a=b\""),
            "line 3: the value of X-XSS-Protection has a control character"
        );
        assert_eq!(
            h("X-XSS-Protection:\n      - 1"),
            "line 3: X-XSS-Protection must be a text value"
        );
        assert_eq!(
            fails("http_server_config:\n  headers: []\n"),
            "line 2: headers must be a mapping"
        );
    }

    #[test]
    fn http2_takes_yaml_v2_booleans_only() {
        for v in ["true", "false", "yes", "Off", ""] {
            let c = ok(&format!("http_server_config:\n  http2: {v}\n"));
            assert_eq!(c.notes, vec![NOTE.to_string()], "{v}");
        }
        for v in ["'true'", "1", "enabled"] {
            let e = fails(&format!("http_server_config:\n  http2: {v}\n"));
            assert_eq!(e, "line 2: http2 must be true or false", "{v}");
        }
    }

    #[test]
    fn comments_quoting_and_document_start() {
        let text = y(&[
            "# web config",
            "---",
            "",
            "http_server_config: # the server",
            "  # headers next",
            "  headers:",
            "    'X-Frame-Options': deny # not sameorigin",
            r#"    "X-XSS-Protection": "a # b \"c\" \\ \u00e9""#,
            "    Content-Security-Policy: a#b 'it''s'",
        ]);
        let want = headers(&[
            ("X-Frame-Options", "deny"),
            ("X-XSS-Protection", "a # b \"c\" \\ é"),
            ("Content-Security-Policy", "a#b 'it''s'"),
        ]);
        assert_eq!(ok(&text).headers, want);
        assert_eq!(ok("\u{feff}--- # x\r\n{}\r\n"), WebConfig::default());
        assert_eq!(ok("# nothing\n\n"), WebConfig::default());
    }

    #[test]
    fn the_yaml_subset() {
        let n = |t: &str| document(t).unwrap_or_else(|e| panic!("{t:?}: {e}"));
        let s = |t: &str, plain| Node::Str(t.to_string(), plain);
        assert_eq!(
            n("a:\n- x\n- 'y'\n-\n- - z\nb: 1\n"),
            Node::Map(vec![
                (
                    "a".into(),
                    1,
                    Node::List(vec![
                        s("x", true),
                        s("y", false),
                        Node::Null,
                        Node::List(vec![s("z", true)]),
                    ])
                ),
                ("b".into(), 6, s("1", true)),
            ])
        );
        assert_eq!(
            n("  -   k: v\n      l:\n        m\n  - []\n"),
            Node::List(vec![
                Node::Map(vec![
                    ("k".into(), 1, s("v", true)),
                    ("l".into(), 2, s("m", true)),
                ]),
                Node::List(vec![]),
            ])
        );
        assert_eq!(
            n("k: http://x:1/a b\n  c\n"),
            Node::Map(vec![("k".into(), 1, s("http://x:1/a b c", true))])
        );
        assert_eq!(
            n("é\u{feff}: ü:\u{feff} #\u{feff}\n"),
            Node::Map(vec![("é\u{feff}".into(), 1, s("ü:\u{feff}", true))])
        );
    }

    #[test]
    fn refused_constructs_name_their_line() {
        let cases = [
            ("a: &x 1\n", "line 1: anchors (&) are not supported"),
            ("a: 1\nb: *x\n", "line 2: aliases (*) are not supported"),
            ("a: !!str 1\n", "line 1: tags (!) are not supported"),
            ("a:\n  &x b: 1\n", "line 2: anchors (&) are not supported"),
            (
                "a: |\n  x\n",
                "line 1: block scalars (| and >) are not supported",
            ),
            (
                "a: >-\n  x\n",
                "line 1: block scalars (| and >) are not supported",
            ),
            (
                "a: {b: 1}\n",
                "line 1: flow collections are not supported (only {} and [])",
            ),
            (
                "a: [1, 2]\n",
                "line 1: flow collections are not supported (only {} and [])",
            ),
            (
                "a:\n\t b: 1\n",
                "line 2: a tab in the indentation (YAML indents with spaces)",
            ),
            (
                "a:\n-\tb\n",
                "line 2: a tab in the indentation (YAML indents with spaces)",
            ),
            ("a: 1\nb: 2\na: 3\n", "line 3: duplicate key"),
            ("a:\n  'b': 1\n  b: 2\n", "line 3: duplicate key"),
            (
                "a: b: c\n",
                "line 1: ': ' in a plain value (quote the value)",
            ),
            (
                "a: 'b\n",
                "line 1: a quoted value without its closing quote",
            ),
            (
                "a: 'b\n\n  c'\n",
                "line 1: a quoted value without its closing quote",
            ),
            (
                "a: \"b\\q\"\n",
                "line 1: an unsupported escape in a double-quoted value",
            ),
            ("a: \"b\" c\n", "line 1: text after the closing quote"),
            ("a: 'b\n  c' d\n", "line 2: text after the closing quote"),
            (
                "a: 'b'\n  c\n",
                "line 2: unexpected line (check the indentation)",
            ),
            (
                "a: b # c\n  d\n",
                "line 2: unexpected line (check the indentation)",
            ),
            (
                "a: b\n\n  c\n",
                "line 3: unexpected line (check the indentation)",
            ),
            (
                "a: {}\n  b\n",
                "line 2: unexpected line (check the indentation)",
            ),
            (
                "a:\n    b: 1\n  c: 2\n",
                "line 3: unexpected line (check the indentation)",
            ),
            ("a: 1\n- b\n", "line 2: expected key: value"),
            ("a: 1\nb\n", "line 2: expected key: value"),
            ("? a\n: b\n", "line 1: complex keys (?) are not supported"),
            (": b\n", "line 1: an empty key"),
            (
                "a: - b\n",
                "line 1: a list item where a key or value was expected",
            ),
            (
                "a: 1\n---\nb: 2\n",
                "line 2: a document marker after the start (one document only)",
            ),
            (
                "---\n--- \n",
                "line 2: a document marker after the start (one document only)",
            ),
            (
                "a: 1\n...\n",
                "line 2: a document marker after the start (one document only)",
            ),
            ("--- a: 1\n", "line 1: content after --- is not supported"),
            (
                "%YAML 1.1\n",
                "line 1: a reserved character (% @ `) at the start (quote the value)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(document(text).err().as_deref(), Some(want), "{text:?}");
        }
        let deep = "- ".repeat(40) + "x";
        assert_eq!(document(&deep).unwrap_err(), "line 1: nested too deeply");
    }

    #[test]
    fn errors_hold_no_content() {
        for text in [
            format!("basic_auth_users:\n  alice: {HASH}\n"),
            format!("basic_auth_users:\n  alice: '{HASH}\n"),
            format!("basic_auth_users:\n  alice: {HASH}: x\n"),
            format!("basic_auth_users:\n  alice: !x {HASH}\n"),
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
            "--web-config-file {}: line 1: unknown key \"a\"",
            file.display()
        );
        assert!(e.starts_with(&want), "{e}");
        std::fs::write(&file, vec![b' '; 70_000]).unwrap();
        let e = load("--web-config-file", &file).unwrap_err();
        assert!(e.ends_with(": larger than 64 KiB"), "{e}");
        let e = load("--web-config-file", &dir.join("missing")).unwrap_err();
        assert!(
            e.starts_with("--web-config-file ") && e.contains("missing: "),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
