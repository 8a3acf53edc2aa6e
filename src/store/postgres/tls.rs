//! TLS to PostgreSQL, as libpq's `sslmode` and `sslrootcert` ask for it, through rustls (the
//! TLS stack reqwest already brings) with Mozilla's root certificates.
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | if the server offers it | not checked |
//! | `require` | always | not checked; with `sslrootcert`, checked as for `verify-ca` (as libpq does) |
//! | `verify-ca` | always | signed by a trusted root |
//! | `verify-full` | always | signed by a trusted root, and issued for the host connected to |
//!
//! The trusted roots are those in the PEM file `sslrootcert` names, or else Mozilla's (the
//! `webpki-roots` crate), which is what a managed service with a public certificate needs;
//! one with a private authority (Amazon RDS, for instance) needs its bundle as `sslrootcert`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode as DriverSslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it, the certificate unchecked.
    Prefer,
    /// TLS, the certificate unchecked (unless a root certificate is given).
    Require,
    /// TLS, the certificate signed by a trusted root.
    VerifyCa,
    /// TLS, the certificate signed by a trusted root and issued for the host.
    VerifyFull,
}

impl SslMode {
    /// Parses libpq's names.
    pub(super) fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(format!(
                "sslmode {value:?} is not one of disable, prefer, require, verify-ca, verify-full"
            ))
            }
        })
    }

    /// libpq's name.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the driver must use TLS, may, or must not; what is checked is up to the
    /// connector.
    pub(super) fn driver_mode(self) -> DriverSslMode {
        match self {
            SslMode::Disable => DriverSslMode::Disable,
            SslMode::Prefer => DriverSslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => DriverSslMode::Require,
        }
    }
}

/// How the connection is secured: the mode, and the root certificates to trust instead of
/// Mozilla's.
#[derive(Debug, Clone)]
pub(super) struct TlsSettings {
    mode: SslMode,
    root_cert: Option<PathBuf>,
}

impl TlsSettings {
    /// `mode`, trusting the certificates in `root_cert` (a PEM file) when given.
    pub(super) fn new(mode: SslMode, root_cert: Option<PathBuf>) -> Self {
        TlsSettings { mode, root_cert }
    }

    /// The mode.
    pub(super) fn mode(&self) -> SslMode {
        self.mode
    }

    /// The root certificates' file, if one is given.
    #[cfg(test)]
    pub(super) fn root_cert(&self) -> Option<&PathBuf> {
        self.root_cert.as_ref()
    }

    /// The connector the pool and the listener connect with. Fails when the root certificates
    /// cannot be read.
    pub(super) fn connector(&self) -> Result<MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (self.mode, &self.root_cert) {
            (SslMode::VerifyFull, _) => self.chain_verifier(&provider)?,
            (SslMode::VerifyCa, _) | (SslMode::Require, Some(_)) => Arc::new(Lenient {
                chain: Some(self.chain_verifier(&provider)?),
                provider: provider.clone(),
            }),
            (SslMode::Disable | SslMode::Prefer | SslMode::Require, _) => Arc::new(Lenient {
                chain: None,
                provider: provider.clone(),
            }),
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }

    /// Checks that the certificate chains up to a trusted root and names the host.
    fn chain_verifier(
        &self,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Arc<WebPkiServerVerifier>, String> {
        let mut roots = RootCertStore::empty();
        match &self.root_cert {
            Some(path) => {
                for cert in read_certificates(path)? {
                    roots
                        .add(cert)
                        .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| format!("cannot set up TLS: {e}"))
    }
}

/// The certificates of a PEM file; at least one.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let unreadable = |e: &dyn std::fmt::Display| format!("sslrootcert {}: {e}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| unreadable(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&e))?;
    if certs.is_empty() {
        return Err(unreadable(&"no PEM certificate in the file"));
    }
    Ok(certs)
}

/// What `prefer`, `require` and `verify-ca` check of the server's certificate: never the host
/// name it was issued for (a certificate for another name of the same server is accepted, as
/// libpq does), the chain up to a trusted root only when `chain` is given (`verify-ca`, or
/// `require` with a root certificate). The handshake's signatures are always checked, so the
/// connection is encrypted to the holder of the certificate's key.
#[derive(Debug)]
struct Lenient {
    /// Checks the chain (and the name, whose failure is ignored).
    chain: Option<Arc<WebPkiServerVerifier>>,
    /// The signature algorithms.
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            checked => checked,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
