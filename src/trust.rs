//! What `https://` requests trust, and the client certificate they present: the `--tls-*`
//! options as the command line checked them. In every build, so the default one can name them
//! in its refusals; only the -tls build's `tls` module acts on them.

use std::path::PathBuf;

/// How `https://` requests are verified and whom they present (`--tls-*`, curl's `--cacert`,
/// `--cert`, `--key` and `-k`, or the web config's certificate, pinned). Set once at start, for
/// every request the process makes; the files are read at each connection (`tls::connector`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
    /// Accept exactly the first certificate of this file (the server's own), without a CA.
    pub pin_file: Option<PathBuf>,
}

impl TlsOptions {
    /// Options that cannot go together: a client certificate without its key, or the other
    /// way round, and skipping verification while naming a CA to verify with.
    pub fn conflicts(&self) -> Result<(), &'static str> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => Err("--tls-cert-file: needs --tls-key-file"),
            (None, Some(_)) => Err("--tls-key-file: needs --tls-cert-file"),
            _ if self.insecure_skip_verify && self.ca_file.is_some() => Err(
                "--tls-insecure-skip-verify with --tls-ca-file: give one (skipping \
                 verification ignores the CA)",
            ),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_and_contradictions() {
        let with = |ca: bool, cert: bool, key: bool, insecure: bool| TlsOptions {
            ca_file: ca.then(|| "/ca".into()),
            cert_file: cert.then(|| "/c".into()),
            key_file: key.then(|| "/k".into()),
            insecure_skip_verify: insecure,
            ..TlsOptions::default()
        };
        assert_eq!(TlsOptions::default().conflicts(), Ok(()));
        assert_eq!(with(true, true, true, false).conflicts(), Ok(()));
        assert_eq!(with(false, true, true, true).conflicts(), Ok(()));
        let e = |o: TlsOptions| o.conflicts().unwrap_err();
        assert!(e(with(true, true, false, false)).starts_with("--tls-cert-file: needs"));
        assert!(e(with(true, false, true, false)).starts_with("--tls-key-file: needs"));
        assert!(e(with(true, false, false, true)).contains("give one"));
    }
}
