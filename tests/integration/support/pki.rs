//! Test certificates, generated fresh by every test run (rcgen): a CA the client is told to
//! trust through `ca_file`, and leaf certificates it signs (or that another CA signs).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate chain and its key, ready for a rustls server.
pub struct ServerCert {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for ServerCert {
    fn clone(&self) -> Self {
        ServerCert {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerCert")
    }
}

/// A test certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// What a server sends after its leaf: empty for a root, the CA's own certificate (and its
    /// parents') for an intermediate.
    above: Vec<CertificateDer<'static>>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let issuer =
            CertifiedIssuer::self_signed(ca_params(name), KeyPair::generate().unwrap()).unwrap();
        Ca {
            issuer,
            above: Vec::new(),
        }
    }

    /// An intermediate CA signed by this one; its leaves' chains carry it.
    pub fn intermediate(&self, name: &str) -> Ca {
        let issuer =
            CertifiedIssuer::signed_by(ca_params(name), KeyPair::generate().unwrap(), &self.issuer)
                .unwrap();
        let mut above = vec![issuer.der().clone()];
        above.extend(self.above.iter().cloned());
        Ca { issuer, above }
    }

    /// The CA certificate in PEM, for `ca_file`.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate for `names`, valid now.
    pub fn leaf(&self, names: &[&str]) -> ServerCert {
        self.leaf_with(names, |_| {})
    }

    /// A leaf certificate that expired in 2021.
    pub fn expired_leaf(&self, names: &[&str]) -> ServerCert {
        self.leaf_with(names, |p| {
            p.not_before = date_time_ymd(2020, 1, 1);
            p.not_after = date_time_ymd(2021, 1, 1);
        })
    }

    fn leaf_with(&self, names: &[&str], tweak: impl FnOnce(&mut CertificateParams)) -> ServerCert {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("localhost"),
        );
        tweak(&mut params);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let mut chain = vec![cert.der().clone()];
        chain.extend(self.above.iter().cloned());
        ServerCert {
            chain,
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// A certificate that signs itself (no CA at all), and its PEM (what `ca_file` would hold).
pub fn self_signed(names: &[&str]) -> (ServerCert, String) {
    let ck =
        rcgen::generate_simple_self_signed(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    let cert = ServerCert {
        chain: vec![ck.cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der())),
    };
    (cert, ck.cert.pem())
}

/// A self-signed CA certificate served as the server's own (what `openssl req -x509` makes by
/// default: basicConstraints CA:TRUE), with the server's names, and its PEM.
pub fn self_signed_ca(name: &str, names: &[&str]) -> (ServerCert, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = ca_params(name);
    params.subject_alt_names =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap()
            .subject_alt_names;
    let cert = params.self_signed(&key).unwrap();
    let server = ServerCert {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    };
    (server, cert.pem())
}
