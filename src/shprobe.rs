//! prometheus-operator's exec probe, answered without a shell. With `listenLocal` the operator
//! probes its config reloader with `sh -c 'if [ -x "$(command -v curl)" ]; then exec curl --fail
//! URL; elif ...wget... URL; else exit 1; fi'` (pkg/operator/prober.go). The image is FROM
//! scratch, so its /bin/sh is this binary under another name: it takes that one script, and only
//! for an http:// URL on loopback, and does what `exec curl --fail URL` would: one GET, curl's
//! exit code. Anything else is refused with the shell's "command not found" code, 127, which is
//! what the probe got from an image without a shell.

use crate::target::{self, HttpUrl};
use std::ffi::OsString;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::time::Duration;

/// The operator's template around its two copies of the URL.
const HEAD: &str = r#"if [ -x "$(command -v curl)" ]; then exec curl --fail "#;
const MIDDLE: &str = r#"; elif [ -x "$(command -v wget)" ]; then exec wget -q -O /dev/null "#;
const TAIL: &str = "; else exit 1; fi";

/// curl has no timeout of its own here; the kubelet kills the probe after its timeoutSeconds
/// (1 s unless set), so this only bounds a probe run by hand.
const TIMEOUT: Duration = Duration::from_secs(5);

/// curl's exit codes (its man page, EXIT CODES), which `exec curl` would have returned.
const COULDNT_CONNECT: i32 = 7;
const HTTP_ERROR: i32 = 22;
const TIMED_OUT: i32 = 28;
const RECV_ERROR: i32 = 56;
/// The shell's "command not found".
const REFUSED: i32 = 127;

/// Runs `sh ARGS`: the probe's exit code, 127 for anything but the probe.
pub fn main(args: Vec<OsString>) -> i32 {
    let url = match probe_url(&args) {
        Ok(url) => url,
        Err(Refusal::Https) => {
            // The operator writes http:// (pkg/operator/config_reloader.go); with https:// curl
            // would verify against a system CA store, which a FROM scratch image has not.
            eprintln!("sh: the probe's URL is https://: this probe speaks plain http:// only, as the operator writes it (curl would need a CA store the image does not have)");
            return REFUSED;
        }
        Err(Refusal::Other) => {
            eprintln!("sh: not a shell: this is hashreload, which runs only prometheus-operator's probe, sh -c '{HEAD}URL{MIDDLE}URL{TAIL}', with one http:// URL on localhost, *.localhost, 127.0.0.1 or [::1]");
            return REFUSED;
        }
    };
    // curl --fail: any status below 400 is a success (redirects are not followed).
    match target::get_status(&url, TIMEOUT) {
        Ok(status) if status < 400 => 0,
        Ok(status) => {
            eprintln!("sh: ({HTTP_ERROR}) {} returned HTTP {status}", url.name());
            HTTP_ERROR
        }
        Err(e) => {
            let code = curl_code(&e);
            eprintln!("sh: ({code}) {}: {e}", url.name());
            code
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    Https,
    Other,
}

/// The URL of `-c SCRIPT` when SCRIPT is the operator's template with the same http:// URL on a
/// loopback host in both places.
fn probe_url(args: &[OsString]) -> Result<HttpUrl, Refusal> {
    let [c, script] = args else {
        return Err(Refusal::Other);
    };
    let script = script
        .to_str()
        .filter(|_| c == "-c")
        .ok_or(Refusal::Other)?;
    let (curl, wget) = script
        .strip_prefix(HEAD)
        .and_then(|s| s.strip_suffix(TAIL))
        .and_then(|s| s.split_once(MIDDLE))
        .ok_or(Refusal::Other)?;
    // The shell would expand, split or glob a word with anything else in it (`[` `]` only as
    // the IPv6 brackets: a pattern starting `http:` matches nothing in the image's root).
    let literal = |b: u8| b.is_ascii_alphanumeric() || b"-._~:/%[]".contains(&b);
    if curl != wget || !curl.bytes().all(literal) {
        return Err(Refusal::Other);
    }
    if curl.starts_with("https://") {
        return Err(Refusal::Https);
    }
    let authority = curl.strip_prefix("http://").ok_or(Refusal::Other)?;
    let authority = authority.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    if !is_loopback(host) {
        return Err(Refusal::Other);
    }
    HttpUrl::parse(curl).map_err(|_| Refusal::Other)
}

/// The names our resolver sends to loopback without asking anyone, and loopback addresses.
fn is_loopback(host: &str) -> bool {
    target::is_local_name(host) || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// What curl says when no HTTP answer came: 7 when nothing took the connection, 28 after its
/// time, 56 for a connection that broke or answered with something other than HTTP.
fn curl_code(e: &ureq::Error) -> i32 {
    match e {
        ureq::Error::Timeout(_) => TIMED_OUT,
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => COULDNT_CONNECT,
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::ConnectionRefused
            | ErrorKind::AddrNotAvailable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::HostUnreachable => COULDNT_CONNECT,
            _ => RECV_ERROR,
        },
        _ => RECV_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe as pkg/operator/prober.go writes it for `url`, spelled out here on purpose.
    fn operator(url: &str) -> String {
        format!(
            r#"if [ -x "$(command -v curl)" ]; then exec curl --fail {url}; elif [ -x "$(command -v wget)" ]; then exec wget -q -O /dev/null {url}; else exit 1; fi"#
        )
    }

    fn probe(script: &str) -> Result<String, Refusal> {
        probe_url(&["-c".into(), script.into()]).map(|u| u.name().to_string())
    }

    #[test]
    fn takes_the_operators_probe() {
        // config_reloader.go: the reloader's probe; promcfg.go: Prometheus' own, route prefix.
        for url in [
            "http://localhost:8080/healthz",
            "http://localhost:9090/-/ready",
            "http://localhost:9090/prefix/-/healthy",
            "http://127.0.0.1:8080/healthz",
            "http://[::1]:8080/healthz",
            "http://prometheus.localhost:8080/healthz",
            "http://LocalHost:8080/healthz",
            "http://127.0.0.1/healthz",
        ] {
            assert_eq!(probe(&operator(url)).as_deref(), Ok(url), "{url}");
        }
    }

    #[test]
    fn refuses_anything_else() {
        let good = operator("http://localhost:8080/healthz");
        let mut tampered = vec![
            String::new(),
            "exit 0".to_string(),
            good.replace("curl --fail ", "curl "), // before 2022: no --fail
            good.replace("; else exit 1; fi", "; else exit 0; fi"),
            good.replace("-q -O", "-O"),
            good.replacen("then exec", "then  exec", 1),
            format!(" {good}"),
            format!("{good}\n"),
            format!("{good}; rm -rf /"),
        ];
        tampered.push(good.replacen("8080", "8081", 1));
        for url in [
            "http://localhost:8080/healthz;id",
            "http://localhost:8080/$(id)",
            "http://localhost:8080/`id`",
            "http://localhost:8080/*",
            "http://localhost:8080/a b",
            "http://localhost:8080/?x=1&y",
            "http://u:p@localhost:8080/healthz",
            "http://10.0.0.1:8080/healthz",
            "http://example.com/healthz",
            "http://localhost.example.com/healthz",
            "http://[::2]:8080/healthz",
            "http://localhost:99999/healthz",
            "ftp://localhost/healthz",
            "localhost:8080/healthz",
        ] {
            tampered.push(operator(url));
        }
        for script in &tampered {
            assert_eq!(probe(script).err(), Some(Refusal::Other), "{script}");
        }
        let args = |a: &[&str]| probe_url(&a.iter().map(OsString::from).collect::<Vec<_>>());
        assert!(args(&[]).is_err());
        assert!(args(&["-c"]).is_err());
        assert!(args(&["-e", &good]).is_err());
        assert!(args(&["-c", &good, "sh"]).is_err());
        assert!(args(&["-c", &good]).is_ok());
    }

    #[test]
    fn https_is_refused_with_its_own_reason() {
        let script = operator("https://localhost:8080/healthz");
        assert_eq!(probe(&script).err(), Some(Refusal::Https));
    }

    #[test]
    fn errors_map_to_curls_exit_codes() {
        let io = |kind| ureq::Error::Io(std::io::Error::from(kind));
        assert_eq!(curl_code(&io(ErrorKind::ConnectionRefused)), 7);
        assert_eq!(curl_code(&io(ErrorKind::AddrNotAvailable)), 7);
        assert_eq!(curl_code(&ureq::Error::ConnectionFailed), 7);
        assert_eq!(curl_code(&ureq::Error::Timeout(ureq::Timeout::Global)), 28);
        assert_eq!(curl_code(&io(ErrorKind::ConnectionReset)), 56);
    }
}
