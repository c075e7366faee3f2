//! The lab's certificate authority, and a certificate for each service
//! that speaks TLS, named as the lab's DNS names it.
//!
//! The CA is made when the lab is built, in memory: its private key is
//! never written anywhere and goes with the process. Its certificate is
//! what namespaces and the user trust (the binary writes it out); each TLS
//! service gets a key and a certificate signed by it, for the names the
//! lab's zones give its address (and those that are CNAMEs of them), its
//! own name and its address.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use std::net::Ipv4Addr;
use std::sync::Arc;

/// A lab's certificate authority.
pub struct LabCa {
    params: CertificateParams,
    key: KeyPair,
    cert: rcgen::Certificate,
}

impl std::fmt::Debug for LabCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabCa").finish_non_exhaustive()
    }
}

/// A service's certificate chain and private key, for rustls.
#[derive(Debug)]
pub struct Issued {
    pub chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    pub key: rustls::pki_types::PrivateKeyDer<'static>,
    /// The names it is valid for, for the log and the docs.
    pub names: Vec<String>,
}

impl LabCa {
    /// A new CA for lab `lab`.
    pub fn new(lab: &str) -> Result<LabCa, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, format!("scratchnet lab CA ({lab})"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "scratchnet");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(LabCa { params, key, cert })
    }

    /// The CA's certificate, PEM: what clients trust.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `names` (DNS names) and `ip`, with its chain.
    pub fn issue(&self, names: &[String], ip: Ipv4Addr) -> Result<Issued, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut sans = names.to_vec();
        sans.push(ip.to_string());
        let mut params = CertificateParams::new(sans)?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, first);
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            chain: vec![cert.der().clone(), self.cert.der().clone()],
            key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            names: names.to_vec(),
        })
    }
}

/// A shared CA.
pub type SharedCa = Arc<LabCa>;
