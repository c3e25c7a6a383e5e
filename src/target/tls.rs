//! TLS for remote servers with libpq's `sslmode` semantics, on rustls (no system OpenSSL).
//!
//! tokio-postgres knows only disable/prefer/require and rejects `verify-ca`, `verify-full` and
//! `sslrootcert`, so those are taken out of the connection string here and enforced by the
//! certificate verifier instead.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use postgres::config::SslMode;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{failure, Exit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl TlsMode {
    pub fn parse(text: &str) -> anyhow::Result<TlsMode> {
        Ok(match text {
            "disable" => TlsMode::Disable,
            // libpq's allow is "plaintext first"; prefer is the closest jobdbctl offers.
            "allow" | "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => {
                return Err(failure(
                    Exit::Usage,
                    format!("invalid sslmode {other:?}; use disable, prefer, require, verify-ca or verify-full"),
                ))
            }
        })
    }

    /// What tokio-postgres is told: whether TLS is attempted and whether it is mandatory.
    pub fn wire(self) -> SslMode {
        match self {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsParams {
    pub mode: TlsMode,
    pub root_cert: Option<PathBuf>,
}

/// Removes `sslmode` and `sslrootcert` from a URL or key=value connection string, returning
/// the rest (for tokio-postgres) and what they said.
pub fn extract(conn: &str) -> anyhow::Result<(String, Option<TlsMode>, Option<PathBuf>)> {
    let mut mode = None;
    let mut root = None;
    let mut take = |key: &str, value: &str| -> anyhow::Result<bool> {
        match key {
            "sslmode" => mode = Some(TlsMode::parse(value)?),
            "sslrootcert" => root = Some(PathBuf::from(value)),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let is_url = conn.starts_with("postgres://") || conn.starts_with("postgresql://");
    if is_url {
        let Some((base, query)) = conn.split_once('?') else {
            return Ok((conn.to_string(), None, None));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(key, &percent_decode(value))? {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, mode, root));
    }
    let mut kept = Vec::new();
    for token in conn.split_whitespace() {
        let (key, value) = token.split_once('=').unwrap_or((token, ""));
        if !take(key.trim(), value.trim().trim_matches('\''))? {
            kept.push(token);
        }
    }
    Ok((kept.join(" "), mode, root))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// libpq's default root certificate location.
fn default_root_cert() -> Option<PathBuf> {
    directories::BaseDirs::new()
        .map(|d| d.home_dir().join(".postgresql/root.crt"))
        .filter(|p| p.is_file())
}

pub fn connector(params: &TlsParams) -> anyhow::Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let root_file = params.root_cert.clone().or_else(default_root_cert);
    // As libpq: require with a root certificate available verifies the chain (verify-ca).
    let mode = match (params.mode, &root_file) {
        (TlsMode::Require, Some(_)) => TlsMode::VerifyCa,
        (mode, _) => mode,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let config = match mode {
        TlsMode::VerifyCa | TlsMode::VerifyFull => {
            let Some(file) = root_file else {
                return Err(failure(Exit::Usage, format!(
                    "sslmode={} needs the CA certificate: set sslrootcert in the URL or PGSSLROOTCERT, or put it in ~/.postgresql/root.crt",
                    if mode == TlsMode::VerifyCa { "verify-ca" } else { "verify-full" }
                )));
            };
            let roots = Arc::new(load_roots(&file)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .context("cannot build the certificate verifier")?;
            let verifier: Arc<dyn ServerCertVerifier> = if mode == TlsMode::VerifyCa {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            };
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
            .with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

fn load_roots(file: &Path) -> anyhow::Result<RootCertStore> {
    let pem = std::fs::read(file)
        .with_context(|| format!("cannot read sslrootcert {}", file.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert =
            cert.with_context(|| format!("{} is not a PEM certificate file", file.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("cannot use a certificate in {}", file.display()))?;
    }
    if roots.is_empty() {
        bail!("{} holds no certificates", file.display());
    }
    Ok(roots)
}

/// `verify-ca`: the chain must lead to the given CA; the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer`/`require` without a CA: encrypted, but the certificate is not checked (libpq's
/// documented behaviour for these modes).
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_tls_params_are_taken_out() {
        let (rest, mode, root) =
            extract("postgresql://u@h/db?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem").unwrap();
        assert_eq!(rest, "postgresql://u@h/db?application_name=x");
        assert_eq!(mode, Some(TlsMode::VerifyFull));
        assert_eq!(root, Some(PathBuf::from("/tmp/ca.pem")));
    }

    #[test]
    fn key_value_tls_params_are_taken_out() {
        let (rest, mode, root) =
            extract("host=h sslmode=verify-ca sslrootcert=/ca.pem dbname=d").unwrap();
        assert_eq!(rest, "host=h dbname=d");
        assert_eq!(mode, Some(TlsMode::VerifyCa));
        assert_eq!(root, Some(PathBuf::from("/ca.pem")));
    }

    #[test]
    fn bad_sslmode_is_a_usage_error() {
        assert!(extract("postgresql://h/db?sslmode=sometimes").is_err());
    }
}
