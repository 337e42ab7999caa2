//! Certificates made at run time for the TLS tests: a CA, a certificate for
//! each service, and a client certificate from another CA (which must be refused).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// One PEM identity on disk.
#[derive(Clone)]
pub struct PemFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// PEM files for both services under one CA, and a stranger from another CA.
#[derive(Clone)]
pub struct TestCerts {
    pub ca: PathBuf,
    pub notifier: PemFiles,
    pub settings: PemFiles,
    pub stranger: PemFiles,
    pub stranger_ca: PathBuf,
}

impl TestCerts {
    pub fn generate(dir: &Path) -> Self {
        let (ca, ca_pem) = certificate_authority("dialin test CA");
        let (stranger_ca, stranger_ca_pem) = certificate_authority("some other CA");
        let write = |name: &str, contents: &str| {
            let path = dir.join(name);
            std::fs::write(&path, contents).expect("write a PEM file");
            path
        };
        let leaf = |name: &str, issuer: &CertifiedIssuer<'_, KeyPair>| {
            let key = KeyPair::generate().expect("a key pair");
            let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("SANs");
            let cert = params.signed_by(&key, issuer).expect("sign a leaf certificate");
            PemFiles {
                cert: write(&format!("{name}.crt"), &cert.pem()),
                key: write(&format!("{name}.key"), &key.serialize_pem()),
            }
        };
        Self {
            ca: write("ca.crt", &ca_pem),
            notifier: leaf("notifier", &ca),
            settings: leaf("settings", &ca),
            stranger: leaf("stranger", &stranger_ca),
            stranger_ca: write("stranger-ca.crt", &stranger_ca_pem),
        }
    }
}

fn certificate_authority(name: &str) -> (CertifiedIssuer<'static, KeyPair>, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a key pair")).expect("a CA");
    let pem = issuer.pem();
    (issuer, pem)
}
