//! HTTPS: the rustls server configuration (HTTP/2 and HTTP/1.1 offered by ALPN)
//! from PEM files, and the self-signed CA and certificate `serve --tls-self-signed`
//! and `demo --tls` make for the listen address.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// ALPN protocols offered, most preferred first.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the certificate PEM holds no certificate")]
    NoCertificate,
    #[error("the certificate PEM is invalid: {0}")]
    Certificate(String),
    #[error("the key PEM holds no usable private key (PKCS#8, PKCS#1 or SEC1): {0}")]
    Key(String),
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
    #[error("making a self-signed certificate failed: {0}")]
    Generate(String),
}

/// The server configuration for a certificate chain and its key (PEM).
pub fn server_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A throw-away CA and a server certificate it signed, all PEM.
pub struct SelfSigned {
    /// What clients trust (`NODE_EXTRA_CA_CERTS`, `SSL_CERT_FILE`, `curl --cacert`).
    pub ca_pem: String,
    /// The server's chain: its certificate, then the CA's.
    pub chain_pem: String,
    pub key_pem: String,
}

/// Makes a CA and a certificate for `hosts` (DNS names or IP addresses), valid
/// from a day ago for a year.
pub fn self_signed(hosts: &[String]) -> Result<SelfSigned, TlsError> {
    use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let now = time::OffsetDateTime::now_utc();
    let validity = |p: &mut CertificateParams| {
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(365);
    };

    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Patchbay self-signed CA");
    ca.distinguished_name = name;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    validity(&mut ca);
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;

    let key = KeyPair::generate().map_err(err)?;
    let mut leaf = CertificateParams::new(hosts.to_vec()).map_err(err)?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, hosts.first().map(String::as_str).unwrap_or("localhost"));
    leaf.distinguished_name = name;
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut leaf);
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).map_err(err)?;
    Ok(SelfSigned {
        ca_pem: ca_cert.pem(),
        chain_pem: format!("{}{}", cert.pem(), ca_cert.pem()),
        key_pem: key.serialize_pem(),
    })
}

/// The names a self-signed certificate for a listen address covers: `localhost`,
/// the loopback addresses, the listen host (unless it is the unspecified address)
/// and any `extra` host (the public base URL's).
pub fn hosts_for(listen: &str, extra: Option<&str>) -> Vec<String> {
    let mut hosts = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let host = listen.rsplit_once(':').map(|(h, _)| h).unwrap_or(listen).trim_start_matches('[').trim_end_matches(']');
    let unspecified = matches!(host, "" | "0.0.0.0" | "::");
    for h in [(!unspecified).then_some(host), extra].into_iter().flatten() {
        if !h.is_empty() && !hosts.iter().any(|x| x == h) {
            hosts.push(h.to_string());
        }
    }
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_chain_makes_a_server_config_offering_h2_then_http1() {
        let s = self_signed(&hosts_for("127.0.0.1:8443", Some("patchbay.test"))).unwrap();
        assert!(s.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(s.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
        let config = server_config(s.chain_pem.as_bytes(), s.key_pem.as_bytes()).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }

    #[test]
    fn bad_pem_is_refused_with_what_is_wrong() {
        let s = self_signed(&["localhost".into()]).unwrap();
        assert!(matches!(server_config(b"", s.key_pem.as_bytes()), Err(TlsError::NoCertificate)));
        assert!(matches!(server_config(s.chain_pem.as_bytes(), b"nope"), Err(TlsError::Key(_))));
        // A key that is not the certificate's.
        let other = self_signed(&["localhost".into()]).unwrap();
        assert!(matches!(server_config(s.chain_pem.as_bytes(), other.key_pem.as_bytes()), Err(TlsError::Config(_))));
    }

    #[test]
    fn hosts_cover_loopback_the_listen_host_and_the_public_host() {
        assert_eq!(hosts_for("0.0.0.0:8443", None), ["localhost", "127.0.0.1", "::1"]);
        assert_eq!(
            hosts_for("10.1.2.3:8443", Some("api.example")),
            ["localhost", "127.0.0.1", "::1", "10.1.2.3", "api.example"]
        );
        assert_eq!(hosts_for("[::1]:8443", None), ["localhost", "127.0.0.1", "::1"]);
    }
}
