//! The -tls build's TLS (feature `tls`): the crypto provider, and reading the PEM files trust
//! comes from. There is no built-in root store: every certificate trusted is one the user mounts.
//!
//! The provider is ring, assembled here instead of taken from
//! `rustls::crypto::ring::default_provider()`: that one's static lists keep every algorithm it
//! names alive through LTO. This one keeps what Go's crypto/tls servers and clients (Prometheus,
//! Alertmanager, exporter-toolkit) negotiate by default: TLS 1.3 and 1.2 with AES-GCM, key
//! exchange X25519, P-256 and P-384, and ECDSA and RSA signatures. It leaves out
//! ChaCha20-Poly1305 (AES-GCM is negotiated first by every peer on hardware with AES
//! instructions) and Ed25519 certificates (which Go's TLS stacks never issue by default).

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

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
