//! TLS for NBD (`NBD_OPT_STARTTLS`, X.509 through rustls): the server's
//! certificate and key, optionally a CA that client certificates must chain
//! to, and the mode. In [`TlsMode::Require`] (the spec's FORCEDTLS) every
//! option before the upgrade other than STARTTLS and ABORT is refused with
//! `NBD_REP_ERR_TLS_REQD` and EXPORT_NAME closes the connection; in
//! [`TlsMode::Allow`] (SELECTIVETLS with no TLS-only export) clients may
//! upgrade or stay in plaintext. Key material is read once at start and
//! never logged.

use crate::Error;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Whether clients must upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// STARTTLS is offered; plaintext clients are served too.
    Allow,
    /// Nothing but STARTTLS (or ABORT) is answered before the upgrade.
    Require,
}

/// Where the server's TLS material lives.
#[derive(Debug, Clone)]
pub struct TlsFiles<'a> {
    /// PEM certificate chain, server certificate first.
    pub cert: &'a Path,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: &'a Path,
    /// PEM CA certificates client certificates must chain to; without it
    /// clients are not asked for a certificate.
    pub client_ca: Option<&'a Path>,
}

/// A loaded TLS setup, shared by every connection.
#[derive(Clone)]
pub struct Tls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) mode: TlsMode,
    client_auth: bool,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of every log line.
        f.debug_struct("Tls")
            .field("mode", &self.mode)
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the certificate, key and optional client CA.
    pub fn load(files: &TlsFiles<'_>, mode: TlsMode) -> Result<Tls, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs = read_certs(files.cert)?;
        let key = PrivateKeyDer::from_pem_file(files.key).map_err(|e| {
            Error::Tls(format!(
                "reading the private key {}: {e}",
                files.key.display()
            ))
        })?;
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(format!("TLS versions: {e}")))?;
        let builder = match files.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in read_certs(ca)? {
                    roots
                        .add(c)
                        .map_err(|e| Error::Tls(format!("client CA {}: {e}", ca.display())))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| Error::Tls(format!("client CA {}: {e}", ca.display())))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(certs, key).map_err(|e| {
            Error::Tls(format!(
                "certificate {} and key {} do not make a server identity: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            mode,
            client_auth: files.client_ca.is_some(),
        })
    }

    /// The mode.
    pub fn mode(&self) -> TlsMode {
        self.mode
    }

    /// True when clients must present a certificate.
    pub fn client_auth(&self) -> bool {
        self.client_auth
    }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| Error::Tls(format!("reading certificates {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!("no certificate in {}", path.display())));
    }
    Ok(certs)
}
