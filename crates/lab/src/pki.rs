//! The lab's certificate authority, and a certificate for each service
//! that speaks TLS, named as the lab's DNS names it.
//!
//! The CA is made when the lab is built, in memory: its private key is
//! never written anywhere and goes with the process. Its certificate is
//! what namespaces and the user trust (the binary writes it out); each TLS
//! service gets a key and a certificate signed by it, for the names the
//! lab's zones give its address (and those that are CNAMEs of them), its
//! own name and its address.
//!
//! What trusting it costs is bounded: name constraints (RFC 5280
//! 4.2.1.10) let it sign for those names and addresses alone, and it and
//! its certificates are valid for [`VALIDITY`] from the lab's start, not
//! rcgen's 1975-4096. Certificates carry the Authority Key Identifier
//! (RFC 5280 4.2.1.1), which strict verifiers (Python's, sslyze) demand.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rcgen::{CidrSubnet, GeneralSubtree, NameConstraints};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use time::OffsetDateTime;

/// How long the CA and its certificates are valid, from an hour before
/// the lab started (a clock a little behind still accepts them).
pub const VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);

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
    /// A new CA for lab `lab`, started at `now`, that may sign for
    /// `names` (and names below them) and `addrs` alone.
    pub fn new(
        lab: &str,
        names: &[String],
        addrs: &[IpAddr],
        now: SystemTime,
    ) -> Result<LabCa, rcgen::Error> {
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
        let permitted = names
            .iter()
            .map(|n| GeneralSubtree::DnsName(n.clone()))
            .chain(addrs.iter().map(|a| {
                let host = if a.is_ipv4() { 32 } else { 128 };
                GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(*a, host))
            }))
            .collect();
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: permitted,
            excluded_subtrees: Vec::new(),
        });
        valid_from(&mut params, now);
        let cert = params.self_signed(&key)?;
        Ok(LabCa { params, key, cert })
    }

    /// The CA's certificate, PEM: what clients trust.
    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `names` (DNS names) and `ips`, with its chain.
    pub fn issue(&self, names: &[String], ips: &[IpAddr]) -> Result<Issued, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut sans = names.to_vec();
        sans.extend(ips.iter().map(|ip| ip.to_string()));
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
        params.use_authority_key_identifier_extension = true;
        params.not_before = self.params.not_before;
        params.not_after = self.params.not_after;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            chain: vec![cert.der().clone(), self.cert.der().clone()],
            key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            names: names.to_vec(),
        })
    }
}

/// Makes `params` valid for [`VALIDITY`] from an hour before `now`.
fn valid_from(params: &mut CertificateParams, now: SystemTime) {
    let start = now.checked_sub(Duration::from_secs(3600)).unwrap_or(now);
    params.not_before = OffsetDateTime::from(start);
    params.not_after = OffsetDateTime::from(start + VALIDITY);
}

/// A shared CA.
pub type SharedCa = Arc<LabCa>;

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;
    use rustls::client::WebPkiServerVerifier;
    use rustls::pki_types::{ServerName, UnixTime};

    fn verify(ca: &LabCa, issued: &Issued, name: &str, at: SystemTime) -> Result<(), String> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca.cert.der().clone())
            .map_err(|e| e.to_string())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
        let at = UnixTime::since_unix_epoch(
            at.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        );
        let name = ServerName::try_from(name.to_owned()).map_err(|e| e.to_string())?;
        verifier
            .verify_server_cert(&issued.chain[0], &issued.chain[1..], &name, &[], at)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_ca_signs_for_the_lab_s_names_alone_and_for_days() {
        let now = SystemTime::now();
        let names = vec!["www.example.com".to_owned(), "lb".to_owned()];
        let addrs: Vec<IpAddr> = ["203.0.113.10", "2001:db8:113::10"]
            .iter()
            .map(|a| a.parse().expect("ip"))
            .collect();
        let ca = LabCa::new("t", &names, &addrs, now).expect("ca");
        let good = ca.issue(&names, &addrs).expect("issue");
        assert_eq!(verify(&ca, &good, "www.example.com", now), Ok(()));
        assert_eq!(verify(&ca, &good, "203.0.113.10", now), Ok(()));
        assert_eq!(verify(&ca, &good, "2001:db8:113::10", now), Ok(()));
        // What it was never meant to sign fails name constraints, even
        // though the CA's key signed it.
        let evil = ca
            .issue(
                &["bank.test".to_owned()],
                &["192.0.2.1".parse().expect("ip")],
            )
            .expect("issue");
        assert!(verify(&ca, &evil, "bank.test", now).is_err());
        // Valid for days, not centuries.
        let later = now + VALIDITY + Duration::from_secs(3600);
        assert!(verify(&ca, &good, "www.example.com", later).is_err());
    }
}
