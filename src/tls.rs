//! The -tls build's TLS (feature `tls`): the crypto provider, the PEM files trust comes from, and
//! the connector every `https://` request goes through. There is no built-in root store: every
//! certificate trusted is one the user mounts.
//!
//! The connector is ours, on ureq's transport API, because ureq's `TlsConfig` can neither verify
//! against a pinned certificate nor check a name other than the URL's host. It runs after ureq's
//! `TcpConnector` and builds the rustls client config at every connection from the files, so a
//! rotated CA, client certificate or pinned certificate is used at the next attempt.
//!
//! The provider is ring, assembled here instead of taken from
//! `rustls::crypto::ring::default_provider()`: that one's static lists keep every algorithm it
//! names alive through LTO. This one keeps what Go's crypto/tls servers and clients (Prometheus,
//! Alertmanager, exporter-toolkit) negotiate by default: TLS 1.3 and 1.2 with AES-GCM, key
//! exchange X25519, P-256 and P-384, and ECDSA and RSA signatures. It leaves out
//! ChaCha20-Poly1305 (AES-GCM is negotiated first by every peer on hardware with AES
//! instructions) and Ed25519 certificates (which Go's TLS stacks never issue by default).

use crate::trust::TlsOptions;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, Error, StreamOwned};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use ureq::unversioned::transport::time::{Duration as UDuration, Instant as UInstant};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector,
    Transport, TransportAdapter,
};

/// The provider every TLS connection, client or server, is made with.
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::{cipher_suite as cs, kx_group};
    use rustls::crypto::{GetRandomFailed, KeyProvider, SecureRandom, WebPkiSupportedAlgorithms};
    use rustls::SignatureScheme as S;
    use webpki::ring as alg;

    #[derive(Debug)]
    struct Ring;
    impl SecureRandom for Ring {
        fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), buf)
                .map_err(|_| GetRandomFailed)
        }
    }
    impl KeyProvider for Ring {
        fn load_private_key(
            &self,
            der: PrivateKeyDer<'static>,
        ) -> Result<Arc<dyn rustls::sign::SigningKey>, rustls::Error> {
            rustls::crypto::ring::sign::any_supported_type(&der)
        }
    }
    static ALGORITHMS: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
        all: &[
            alg::ECDSA_P256_SHA256,
            alg::ECDSA_P256_SHA384,
            alg::ECDSA_P384_SHA256,
            alg::ECDSA_P384_SHA384,
            alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
            alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
            alg::RSA_PKCS1_2048_8192_SHA256,
            alg::RSA_PKCS1_2048_8192_SHA384,
            alg::RSA_PKCS1_2048_8192_SHA512,
            alg::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
            alg::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
            alg::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
        ],
        mapping: &[
            (
                S::ECDSA_NISTP384_SHA384,
                &[alg::ECDSA_P384_SHA384, alg::ECDSA_P256_SHA384],
            ),
            (
                S::ECDSA_NISTP256_SHA256,
                &[alg::ECDSA_P256_SHA256, alg::ECDSA_P384_SHA256],
            ),
            (
                S::RSA_PSS_SHA512,
                &[alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY],
            ),
            (
                S::RSA_PSS_SHA384,
                &[alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY],
            ),
            (
                S::RSA_PSS_SHA256,
                &[alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY],
            ),
            (S::RSA_PKCS1_SHA512, &[alg::RSA_PKCS1_2048_8192_SHA512]),
            (S::RSA_PKCS1_SHA384, &[alg::RSA_PKCS1_2048_8192_SHA384]),
            (S::RSA_PKCS1_SHA256, &[alg::RSA_PKCS1_2048_8192_SHA256]),
        ],
    };
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
        signature_verification_algorithms: ALGORITHMS,
        secure_random: &Ring,
        key_provider: &Ring,
    })
}

/// Every certificate in the PEM file at `path`, in order; an error names the path (never the
/// content) and says what is wrong.
pub fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {}", path.display(), pem_error(e)))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in the PEM file at `path`.
pub fn key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: {}", path.display(), pem_error(e)))
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => "no PEM private key in it".to_string(),
        _ => "not valid PEM".to_string(),
    }
}

/// Checks at start what the flags name, so a wrong path is a usage error naming its flag rather
/// than a failed reload later.
pub fn check(o: &TlsOptions) -> Result<(), String> {
    let named = |flag: &str, r: Result<(), String>| r.map_err(|e| format!("{flag} {e}"));
    if let Some(f) = &o.ca_file {
        named("--tls-ca-file", roots(f).map(drop))?;
    }
    if let Some(f) = &o.cert_file {
        named("--tls-cert-file", certs(f).map(drop))?;
    }
    if let Some(f) = &o.key_file {
        named("--tls-key-file", key(f).map(drop))?;
    }
    if let Some(f) = &o.pin_file {
        named("--web-config-file's cert_file", certs(f).map(drop))?;
    }
    if let Some(name) = &o.server_name {
        ServerName::try_from(name.as_str())
            .map_err(|_| format!("--tls-server-name '{name}': not a DNS name or IP address"))?;
    }
    // The whole config once, when there is trust to build it on: a key that does not belong to
    // its certificate shows here.
    match o.ca_file.is_some() || o.pin_file.is_some() || o.insecure_skip_verify {
        true => client_config(o).map(drop),
        false => Ok(()),
    }
}

/// The certificates of a CA file, as a root store; an error if none is usable.
fn roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs(path)?);
    if added == 0 {
        return Err(format!(
            "{}: no usable CA certificate in it",
            path.display()
        ));
    }
    Ok(roots)
}

/// The rustls client config the options describe, read from their files now.
fn client_config(o: &TlsOptions) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match (&o.ca_file, &o.pin_file) {
        (Some(ca), _) if !o.insecure_skip_verify => {
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots(ca)?),
                provider,
            )
            .build()
            .map_err(|e| format!("{}: {e}", ca.display()))?;
            builder.with_webpki_verifier(verifier)
        }
        (_, pin) => {
            // Accepting any certificate takes the explicit flag: no trust configured is an error
            // (the command line refuses it first), never an open door.
            let pin = match (pin, o.insecure_skip_verify) {
                (_, true) => None,
                (Some(f), false) => Some(certs(f)?.swap_remove(0)),
                (None, false) => return Err(NO_TRUST.into()),
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned { pin, provider }))
        }
    };
    let config = match (&o.cert_file, &o.key_file) {
        (Some(c), Some(k)) => builder
            .with_client_auth_cert(certs(c)?, key(k)?)
            .map_err(|e| format!("{}: {e}", c.display()))?,
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

const NO_TRUST: &str = "https:// needs --tls-ca-file, a pinned certificate or \
                        --tls-insecure-skip-verify";

/// Trust without a CA: exactly the pinned certificate, and only while it is valid; or, with
/// `--tls-insecure-skip-verify` (`pin` None), any certificate. No name is checked: the pinned
/// certificate names a service while the URL says localhost. The handshake's signatures are
/// still verified, so the peer holds the key of what it presented.
#[derive(Debug)]
struct Pinned {
    pin: Option<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let Some(pin) = &self.pin else {
            return Ok(ServerCertVerified::assertion());
        };
        if end_entity.as_ref() != pin.as_ref() {
            return Err(Error::General(PIN_MISMATCH.into()));
        }
        let (not_before, not_after) =
            validity(pin).ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
        match now.as_secs() {
            t if t < not_before => Err(Error::InvalidCertificate(CertificateError::NotValidYet)),
            t if t > not_after => Err(Error::InvalidCertificate(CertificateError::Expired)),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

const PIN_MISMATCH: &str = "pin mismatch";

/// A certificate's validity (not before, not after) in Unix seconds, read from its DER:
/// Certificate > TBSCertificate > [version], serial, signature, issuer, validity.
#[doc(hidden)] // for the fuzz target
pub fn validity(der: &[u8]) -> Option<(u64, u64)> {
    let (_, cert, _) = tlv(der).filter(|t| t.0 == 0x30)?;
    let (_, tbs, _) = tlv(cert).filter(|t| t.0 == 0x30)?;
    let mut rest = tbs;
    if tbs.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    for _serial_signature_issuer in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (_, validity, _) = tlv(rest).filter(|t| t.0 == 0x30)?;
    let (tag, not_before, rest) = tlv(validity)?;
    let not_before = time(tag, not_before)?;
    let (tag, not_after, _) = tlv(rest)?;
    Some((not_before, time(tag, not_after)?))
}

/// One DER element: (tag, content, what follows).
fn tlv(d: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, d) = d.split_first()?;
    let (&first, mut d) = d.split_first()?;
    let mut len = first as usize;
    if first >= 0x80 {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || d.len() < n {
            return None;
        }
        len = d[..n].iter().fold(0, |l, &b| l << 8 | b as usize);
        d = &d[n..];
    }
    (d.len() >= len).then(|| (tag, &d[..len], &d[len..]))
}

/// UTCTime (YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ) in Unix seconds;
/// None before 1970, which no certificate worth pinning has.
fn time(tag: u8, s: &[u8]) -> Option<u64> {
    let digits = |s: &[u8]| -> Option<u64> {
        s.iter().try_fold(0, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + (b - b'0') as u64)
        })
    };
    let (year, rest) = match (tag, s.len()) {
        (0x17, 13) => {
            let yy = digits(&s[..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &s[2..])
        }
        (0x18, 15) => (digits(&s[..4])?, &s[4..]),
        _ => return None,
    };
    if rest[10] != b'Z' || year < 1970 {
        return None;
    }
    let f = |i: usize| digits(&rest[i..i + 2]);
    let (month, day, hour, min, sec) = (f(0)?, f(2)?, f(4)?, f(6)?, f(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    // Days from 1970-01-01 to the civil date (Howard Hinnant's days_from_civil).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hour * 3600 + min * 60 + sec)
}

/// Why a TLS connection failed, in the words an operator acts on; never certificate content.
/// `client_cert`: whether we presented one, which tells apart the alerts a server sends when it
/// wants one (Go sends bad_certificate in TLS 1.2, certificate_required in TLS 1.3; OpenSSL
/// handshake_failure in TLS 1.2) from a refusal of the one we sent.
pub fn reason(e: &Error, client_cert: bool) -> String {
    use rustls::AlertDescription as Alert;
    use CertificateError as C;
    match e {
        Error::General(m) if m == PIN_MISMATCH => {
            "pin mismatch: the server presented another certificate than the first in \
             --web-config-file's cert_file"
                .into()
        }
        Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "unknown CA: the server's certificate is not signed by a CA in \
                                 --tls-ca-file"
                .into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "name mismatch: the server's certificate is not for the URL's host \
                 (or --tls-server-name)"
                    .into()
            }
            C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet".into()
            }
            c => format!("the server's certificate is refused: {c:?}"),
        },
        Error::AlertReceived(
            Alert::CertificateRequired | Alert::BadCertificate | Alert::UnknownCA,
        ) if !client_cert => {
            "client certificate required: the server wants one (--tls-cert-file, --tls-key-file)"
                .into()
        }
        // OpenSSL's answer in TLS 1.2 to a missing client certificate, and anyone's to a
        // handshake with no version or cipher suite in common.
        Error::AlertReceived(Alert::HandshakeFailure) if !client_cert => {
            "handshake failure: the server requires a client certificate (--tls-cert-file, \
             --tls-key-file), or shares no TLS version or cipher suite with us"
                .into()
        }
        Error::AlertReceived(
            a @ (Alert::BadCertificate | Alert::UnknownCA | Alert::CertificateExpired),
        ) => {
            format!("the server refused our client certificate ({a:?})")
        }
        e => e.to_string(),
    }
}

/// ureq's TCP connector, then ours for `https://`.
pub fn connector(options: TlsOptions) -> impl Connector<()> {
    ().chain(TcpConnector::default())
        .chain(TlsConnector { options })
}

#[derive(Debug)]
struct TlsConnector {
    options: TlsOptions,
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let config =
            client_config(&self.options).map_err(|e| ureq::Error::Io(std::io::Error::other(e)))?;
        let host = match &self.options.server_name {
            Some(name) => name.as_str(),
            None => details.uri.host().unwrap_or(""),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host)
            .map_err(|_| ureq::Error::Tls("the URL's host is not a valid TLS server name"))?
            .to_owned();
        let mut conn = ClientConnection::new(config, name)
            .map_err(|e| ureq::Error::Io(std::io::Error::other(e)))?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        // The handshake gets what the TCP connect left of the timeout (ureq's own connector
        // does this with set_timeout_at, which it keeps to itself).
        let mut timeout = details.timeout;
        if let (UDuration::Exact(left), UInstant::Exact(start)) = (timeout.after, details.now) {
            timeout.after = UDuration::Exact(left.saturating_sub(start.elapsed()));
        }
        sock.set_timeout(timeout);
        conn.complete_io(&mut sock)?;
        Ok(Some(Either::B(TlsTransport {
            buffers: LazyBuffers::new(
                details.config.input_buffer_size(),
                details.config.output_buffer_size(),
            ),
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// A TLS stream as a ureq transport.
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsTransport")
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let n = self.stream.read(input)?;
        self.buffers.input_appended(n);
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_errors_name_the_path_not_the_content() {
        let dir = std::env::temp_dir().join(format!("hashreload-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("key.pem");
        std::fs::write(&secret, "-----BEGIN PRIVATE KEY-----\nc2VjcmV0!!\n").unwrap();
        let e = key(&secret).unwrap_err();
        assert!(e.starts_with(&secret.display().to_string()), "{e}");
        assert!(!e.contains("c2VjcmV0"), "{e}");
        let missing = dir.join("missing.pem");
        assert!(certs(&missing).unwrap_err().contains("No such file"));
        std::fs::write(dir.join("empty.pem"), "").unwrap();
        assert!(certs(&dir.join("empty.pem"))
            .unwrap_err()
            .contains("no PEM certificate"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `openssl req -x509 -days 36500` on 2026-12-01: not before as UTCTime, not after (2126)
    /// as GeneralizedTime.
    const LONG: &str = "-----BEGIN CERTIFICATE-----
MIIBcjCCARmgAwIBAgIUJt0RLwOZJvHih9SK/CMDERnDI8swCgYIKoZIzj0EAwIw
DjEMMAoGA1UEAwwDcGluMCAXDTI2MTIwMTA0NDA0MVoYDzIxMjYxMTA3MDQ0MDQx
WjAOMQwwCgYDVQQDDANwaW4wWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAQqH/c6
2T/4wQiuYd6/ECuYJKjKXZMz4wxvuuTWtJHY+dIdNXl/YayTgAHuMTpNVHiOyW/D
K34vXuUgYfNCNX6qo1MwUTAdBgNVHQ4EFgQUI5yQmOVV342XBN9CUbEmOxGOk/Aw
HwYDVR0jBBgwFoAUI5yQmOVV342XBN9CUbEmOxGOk/AwDwYDVR0TAQH/BAUwAwEB
/zAKBggqhkjOPQQDAgNHADBEAiAEO3LYUjazzl1dOf68ZxR5my/P5zoOxO1qQk5E
sgCKQQIgAzYLMz9/rwtNwg9xR4nnqhFF6q3O6x/7wB8iPBmqrTk=
-----END CERTIFICATE-----
";

    #[test]
    fn validity_is_read_from_the_der() {
        let der = CertificateDer::from_pem_slice(LONG.as_bytes()).unwrap();
        // `date -d "$(openssl x509 -noout -startdate ...)" +%s`, and the same for -enddate.
        assert_eq!(validity(&der), Some((1_796_100_041, 4_949_700_041)));
        for cut in [0, 1, 4, 40, der.len() - 1] {
            let _ = validity(&der[..cut]); // never panics on a truncated certificate
        }
        assert_eq!(validity(&der[..100]), None);
    }

    #[test]
    fn times_in_both_encodings() {
        assert_eq!(time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x18, b"20491231235959Z"), Some(2_524_607_999));
        assert_eq!(time(0x17, b"000229120000Z"), Some(951_825_600));
        for (tag, bad) in [
            (0x17, &b"7001010000Z"[..]),
            (0x17, b"701301000000Z"),
            (0x17, b"700101000000+"),
            (0x17, b"7001010000001"),
            (0x18, b"700101000000Z"),
            (0x02, b"700101000000Z"),
            (0x17, b"690101000000Z"), // 1969: before the epoch, never a valid pin
            (0x18, b"00000101000000Z"),
            (0x18, b"00000229000000Z"), // year 0 in January or February: no underflow
        ] {
            assert_eq!(time(tag, bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn pinning_accepts_only_the_pinned_certificate_while_valid() {
        let der = CertificateDer::from_pem_slice(LONG.as_bytes()).unwrap();
        let pinned = Pinned {
            pin: Some(der.clone()),
            provider: provider(),
        };
        let name = ServerName::try_from("localhost").unwrap();
        let at = |secs| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        let verify = |cert: &CertificateDer, secs| {
            pinned.verify_server_cert(cert, &[], &name, &[], at(secs))
        };
        assert!(verify(&der, 1_796_100_041).is_ok());
        assert!(verify(&der, 4_949_700_041).is_ok());
        let e = verify(&der, 1_796_100_040).unwrap_err();
        assert_eq!(
            reason(&e, false),
            "the server's certificate is not valid yet"
        );
        let e = verify(&der, 4_949_700_042).unwrap_err();
        assert_eq!(reason(&e, false), "the server's certificate has expired");
        let mut other = der.to_vec();
        let last = other.len() - 1;
        other[last] ^= 1;
        let e = verify(&CertificateDer::from(other), 1_796_100_041).unwrap_err();
        assert!(reason(&e, false).starts_with("pin mismatch"), "{e}");
        let insecure = Pinned {
            pin: None,
            provider: provider(),
        };
        let v = insecure.verify_server_cert(&der, &[], &name, &[], at(0));
        assert!(v.is_ok());
    }

    #[test]
    fn alerts_read_differently_with_and_without_a_client_certificate() {
        use rustls::AlertDescription as A;
        for alert in [A::CertificateRequired, A::BadCertificate, A::UnknownCA] {
            let e = Error::AlertReceived(alert);
            assert!(reason(&e, false).starts_with("client certificate required"));
        }
        let e = Error::AlertReceived(A::HandshakeFailure);
        assert!(reason(&e, false).contains("requires a client certificate"));
        assert_eq!(reason(&e, true), "received fatal alert: HandshakeFailure");
        let e = Error::AlertReceived(A::BadCertificate);
        assert_eq!(
            reason(&e, true),
            "the server refused our client certificate (BadCertificate)"
        );
        let e = Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(reason(&e, true).starts_with("unknown CA"));
    }

    #[test]
    fn no_trust_is_an_error_not_an_open_door() {
        assert_eq!(client_config(&TlsOptions::default()).unwrap_err(), NO_TRUST);
        let insecure = TlsOptions {
            insecure_skip_verify: true,
            ..TlsOptions::default()
        };
        assert!(client_config(&insecure).is_ok());
    }

    #[test]
    fn the_provider_is_consistent() {
        // rustls checks a provider when a config is built from it.
        let p = provider();
        rustls::ClientConfig::builder_with_provider(p.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        rustls::ServerConfig::builder_with_provider(p)
            .with_safe_default_protocol_versions()
            .unwrap();
    }
}
