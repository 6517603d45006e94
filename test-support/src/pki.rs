//! Certificates made at test time (rcgen, with ring like the project's
//! rustls): a certificate authority, leaves it signs, and the PEM files of
//! one mutual-TLS set-up (the daemon's TCP uplink, a Spice TLS port and
//! `media-client` all take these files).
//!
//! The TLS tests of the daemon, the end-to-end tests and `cargo xtask demo
//! --uplink tls` each made their own; this is the one copy.

use std::io;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate with its private key, in DER and PEM.
pub struct Identity {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
}

/// A certificate authority that signs leaves.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// Its self-signed certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its self-signed certificate, PEM.
    pub cert_pem: String,
}

impl Authority {
    /// A new CA named `name` (its common name).
    pub fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("generate a key pair");
        let cert = params.self_signed(&key).expect("self-sign the CA");
        Authority {
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `names` (DNS names or IP addresses) with one extended
    /// key usage (server or client authentication).
    pub fn sign(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Identity {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("valid subject names");
        params.distinguished_name.push(DnType::CommonName, "leaf");
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("generate a key pair");
        let cert = params.signed_by(&key, &self.issuer).expect("sign the leaf");
        Identity {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// The PEM files of one mutual-TLS set-up: a CA, a server certificate for
/// `localhost`/`127.0.0.1` and a client certificate, both signed by it.
pub struct Pki {
    /// The CA certificate (the server's client CA and the client's CA).
    pub ca: PathBuf,
    /// The server's certificate.
    pub server_cert: PathBuf,
    /// The server's key.
    pub server_key: PathBuf,
    /// The client's certificate.
    pub client_cert: PathBuf,
    /// The client's key.
    pub client_key: PathBuf,
}

impl Pki {
    /// Makes the set-up and writes its files into `dir`.
    pub fn write(dir: &Path) -> io::Result<Pki> {
        let ca = Authority::new("media test CA");
        let server = ca.sign(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let client = ca.sign(&["client"], ExtendedKeyUsagePurpose::ClientAuth);
        let write = |name: &str, pem: &str| -> io::Result<PathBuf> {
            let path = dir.join(name);
            std::fs::write(&path, pem)?;
            Ok(path)
        };
        Ok(Pki {
            ca: write("ca.pem", &ca.cert_pem)?,
            server_cert: write("server.pem", &server.cert_pem)?,
            server_key: write("server.key", &server.key_pem)?,
            client_cert: write("client.pem", &client.cert_pem)?,
            client_key: write("client.key", &client.key_pem)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_pem_files_that_differ() {
        let dir = std::env::temp_dir().join(format!("test-support-pki-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki::write(&dir).unwrap();
        let ca = std::fs::read_to_string(&pki.ca).unwrap();
        let server = std::fs::read_to_string(&pki.server_cert).unwrap();
        let key = std::fs::read_to_string(&pki.server_key).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(server.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.contains("PRIVATE KEY"));
        assert_ne!(ca, server);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
