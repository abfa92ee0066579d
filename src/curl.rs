//! curl emulation: a `curl ...` COMMAND where no curl is installed (a FROM scratch image) is turned
//! into an HTTP target with curl's meaning, so the 2017 watch line
//! `curl -X POST --fail -o - -sS http://localhost:80/-/reload` works unchanged.
//!
//! Understood: `-X/--request`, `-f/--fail`, `-o/--output` (the body is not written anywhere),
//! `-s/--silent`, `-S/--show-error`, `-H/--header`, `-u/--user`, `-m/--max-time`, `-d/--data`
//! and the URL; short flags may be bundled (`-sS`, `-fsS`). In the -tls build also
//! `--cacert`, `-E/--cert`, `--key` and `-k/--insecure`, which set the process's TLS options
//! (`--tls-ca-file`, `--tls-cert-file`, `--tls-key-file`, `--tls-insecure-skip-verify`). Anything
//! else is refused at start.
//! Success is curl's: without `-f` any HTTP answer, with `-f` any status below 400; redirects
//! are never followed (curl's default without `-L`).

use crate::target::{parse_header, parse_method, Accept, HttpOptions, HttpUrl};
use crate::trust::TlsOptions;
use std::ffi::OsString;
use std::time::Duration;

#[derive(Debug)]
pub struct Curl {
    pub url: HttpUrl,
    pub options: HttpOptions,
    /// `-f` was given.
    pub fail: bool,
    /// `--cacert`, `--cert`, `--key`, `-k`.
    pub tls: TlsOptions,
}

/// Parses curl's arguments (the COMMAND after `curl`). `timeout` applies unless `-m` is given.
pub fn parse(args: &[OsString], timeout: Duration) -> Result<Curl, String> {
    let mut method = None;
    let mut fail = false;
    let mut headers = Vec::new();
    let mut user = None;
    let mut max_time = None;
    let mut data: Vec<String> = Vec::new();
    let mut url = None;
    let mut tls = TlsOptions::default();
    let mut args = args
        .iter()
        .map(|a| a.to_str().ok_or("arguments must be valid UTF-8"));
    while let Some(arg) = args.next() {
        let arg = arg?;
        // Every option as (name, value): long ones by name, short ones one letter at a time.
        // Long options by their short letter; the two without one by their long name.
        let mut opts: Vec<(String, Option<String>)> = Vec::new();
        if let Some(long) = arg.strip_prefix("--") {
            let short = match long {
                "request" => "X",
                "fail" => "f",
                "output" => "o",
                "silent" => "s",
                "show-error" => "S",
                "header" => "H",
                "user" => "u",
                "max-time" => "m",
                "data" => "d",
                "cert" => "E",
                "insecure" => "k",
                "cacert" | "key" => long,
                _ => {
                    return Err(format!(
                        "option '--{long}' is not supported by the curl emulation"
                    ))
                }
            };
            opts.push((short.to_string(), None));
        } else if arg.len() > 1 && arg.starts_with('-') {
            for (i, c) in arg[1..].char_indices() {
                let name = c.to_string();
                if takes_value(&name) {
                    let rest = &arg[1 + i + c.len_utf8()..];
                    opts.push((name, (!rest.is_empty()).then(|| rest.to_string())));
                    break;
                }
                opts.push((name, None));
            }
        } else {
            if url.is_some() {
                return Err(format!(
                    "a second URL '{}' (one request per COMMAND)",
                    redact_arg(arg)
                ));
            }
            url = Some(arg.to_string());
            continue;
        }
        for (name, inline) in opts {
            let dash = if name.len() > 1 { "--" } else { "-" };
            let value = if takes_value(&name) {
                match inline {
                    Some(v) => Some(v),
                    None => Some(
                        args.next()
                            .ok_or(format!("option {dash}{name} needs a value"))??
                            .to_string(),
                    ),
                }
            } else {
                None
            };
            let value = value.unwrap_or_default();
            if !cfg!(feature = "tls") && matches!(name.as_str(), "cacert" | "key" | "E" | "k") {
                return Err(format!(
                    "option '{dash}{name}' needs the hashreload -tls image (this build speaks \
                     plain http:// only)"
                ));
            }
            match name.as_str() {
                "cacert" => tls.ca_file = Some(value.into()),
                "E" => tls.cert_file = Some(value.into()),
                "key" => tls.key_file = Some(value.into()),
                "k" => tls.insecure_skip_verify = true,
                "X" => method = Some(parse_method("-X", &value)?),
                "f" => fail = true,
                "s" | "S" | "o" => {}
                "H" => headers.push(parse_header("-H", &value)?),
                "u" => {
                    if !value.contains(':') {
                        return Err("-u needs user:password (curl would prompt for it)".into());
                    }
                    user = Some(value);
                }
                "m" => {
                    // Seconds, whole or not: our duration parser with the unit added (a float
                    // parser would cost the binary kilobytes).
                    let seconds = value.bytes().all(|b| b.is_ascii_digit() || b == b'.');
                    let d = crate::duration::parse_duration(&format!("{value}s"))
                        .filter(|d| {
                            seconds && !d.is_zero() && *d < Duration::from_secs(1_000_000_000)
                        })
                        .ok_or(format!("-m {value}: expected seconds, such as 10 or 2.5"))?;
                    max_time = Some(d);
                }
                "d" => {
                    if value.starts_with('@') {
                        return Err("-d @FILE is not supported by the curl emulation".into());
                    }
                    data.push(value);
                }
                _ => {
                    return Err(format!(
                        "option '{dash}{name}' is not supported by the curl emulation"
                    ))
                }
            }
        }
    }
    let url = url.ok_or("no URL")?;
    // curl takes a URL without a scheme as http.
    let url = if url.contains("://") {
        url
    } else {
        format!("http://{url}")
    };
    let mut url = HttpUrl::parse(&url)?;
    if let Some(user) = user {
        if url.has_userinfo() {
            return Err("-u and userinfo in the URL: give one".into());
        }
        url = url.with_userinfo(user);
    }
    let body = (!data.is_empty()).then(|| {
        (
            data.join("&").into_bytes(),
            "application/x-www-form-urlencoded",
        )
    });
    let method = method.unwrap_or_else(|| if body.is_some() { "POST" } else { "GET" }.into());
    Ok(Curl {
        url,
        options: HttpOptions {
            method,
            accept: if fail { Accept::Below400 } else { Accept::Any },
            headers,
            bearer_token_file: None,
            timeout: max_time.unwrap_or(timeout),
            body,
        },
        fail,
        tls,
    })
}

fn takes_value(name: &str) -> bool {
    matches!(
        name,
        "X" | "o" | "H" | "u" | "m" | "d" | "E" | "cacert" | "key"
    )
}

/// An argument quoted in an error, with any userinfo dropped.
fn redact_arg(arg: &str) -> String {
    HttpUrl::parse(arg).map_or_else(|_| "…".to_string(), |u| u.name().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curl(line: &str) -> Result<Curl, String> {
        let args: Vec<OsString> = line.split(' ').map(OsString::from).collect();
        parse(&args, Duration::from_secs(10))
    }

    #[test]
    fn the_2017_watch_line() {
        let c = curl("-X POST --fail -o - -sS http://localhost:80/-/reload").unwrap();
        assert!(c.fail);
        assert_eq!(c.options.method, "POST");
        assert_eq!(c.options.accept, Accept::Below400);
        assert_eq!(c.url.name(), "http://localhost:80/-/reload");
        assert_eq!(c.options.timeout, Duration::from_secs(10));
    }

    #[test]
    fn bundles_attached_values_and_defaults() {
        let c = curl("-fsSXPUT -m 2.5 -H X-A:1 --header X-B:2 -u admin:pw 127.0.0.1:9/r").unwrap();
        assert_eq!(c.options.method, "PUT");
        assert_eq!(c.options.timeout, Duration::from_millis(2500));
        assert_eq!(
            c.options.headers,
            vec![("X-A".into(), "1".into()), ("X-B".into(), "2".into())]
        );
        assert!(c.url.has_userinfo());
        assert_eq!(c.url.name(), "http://127.0.0.1:9/r");
        let c = curl("http://h/").unwrap();
        assert_eq!(
            (c.options.method.as_str(), c.options.accept.clone()),
            ("GET", Accept::Any)
        );
        let c = curl("-d a=1 -d b=2 http://h/").unwrap();
        assert_eq!(c.options.method, "POST");
        assert_eq!(
            c.options.body,
            Some((b"a=1&b=2".to_vec(), "application/x-www-form-urlencoded"))
        );
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        for (line, says) in [
            ("-L http://h/", "'-L'"),
            ("--location http://h/", "'--location'"),
            ("-fsSL http://h/", "'-L'"),
            ("--proxy-insecure http://h/", "'--proxy-insecure'"),
            ("-X", "needs a value"),
            ("-s", "no URL"),
            ("-u admin http://h/", "user:password"),
            ("-m soon http://h/", "-m soon"),
            ("-m 1m http://h/", "-m 1m"),
            ("-m 0 http://h/", "-m 0"),
            ("-m -1 http://h/", "-m -1"),
            ("-d @file http://h/", "@FILE"),
            ("-H bad http://h/", "-H"),
            ("http://a/ http://u:secret@b/", "second URL"),
        ] {
            let e = curl(line).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn tls_options_name_the_tls_image() {
        for (line, says) in [
            (
                "https://h/",
                "'https://': this build speaks plain http:// only",
            ),
            (
                "-k http://h/",
                "option '-k' needs the hashreload -tls image",
            ),
            (
                "--insecure http://h/",
                "option '-k' needs the hashreload -tls image",
            ),
            (
                "--cacert ca.pem http://h/",
                "option '--cacert' needs the hashreload -tls image",
            ),
            (
                "-E c.pem http://h/",
                "option '-E' needs the hashreload -tls image",
            ),
        ] {
            let e = curl(line).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
        }
    }

    #[cfg(feature = "tls")]
    #[test]
    fn tls_options_map_onto_ours() {
        let c = curl("-fsSk --cacert /ca.pem --cert /c.pem --key=x https://h/").unwrap_err();
        assert!(c.contains("'--key=x'"), "{c}");
        let c = curl("-fsSk --cacert /ca.pem -E/c.pem --key /k.pem https://h/").unwrap();
        assert!(c.url.is_https());
        let want = TlsOptions {
            ca_file: Some("/ca.pem".into()),
            cert_file: Some("/c.pem".into()),
            key_file: Some("/k.pem".into()),
            insecure_skip_verify: true,
            ..TlsOptions::default()
        };
        assert_eq!(c.tls, want);
        assert_eq!(
            curl("--cacert").unwrap_err(),
            "option --cacert needs a value"
        );
    }
}
