//! The control plane's PKI: one CA, the API server's serving certificate, the admin client
//! certificate (`kubernetes-admin`, group `system:masters`) and the service-account signing
//! key pair. Every key is ECDSA P-256 in PKCS#8 PEM, which kube-apiserver, the
//! controller-manager and client-go all accept; key files are written with mode 0600.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// The first address of `--service-cluster-ip-range=10.96.0.0/16`: the `kubernetes` Service.
pub const FIRST_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);

/// DNS names of the `kubernetes` Service the serving certificate covers.
pub const SERVICE_DNS_NAMES: [&str; 5] = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("failed to generate the {what}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("failed to create the PKI directory {}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// PEM contents of every certificate and key, as generated (nothing written yet).
pub struct Pki {
    pub ca_cert: String,
    pub ca_key: String,
    pub apiserver_cert: String,
    pub apiserver_key: String,
    pub admin_cert: String,
    pub admin_key: String,
    /// Service-account token signing key (private, PKCS#8 PEM).
    pub sa_key: String,
    /// Its public half (SPKI PEM), for `--service-account-key-file`.
    pub sa_pub: String,
    /// The CA, kept to issue the nodes' certificates ([`Pki::issue`]).
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    pub cert: String,
    pub key: String,
}

/// What a certificate the CA issues is for.
#[derive(Clone, Debug)]
pub enum Usage<'a> {
    /// A client identity: `CN=<user>, O=<group>` (e.g. `system:node:<name>`, `system:nodes`).
    Client {
        user: &'a str,
        group: Option<&'a str>,
    },
    /// A serving certificate for this name and these addresses (e.g. a kubelet's).
    Server { name: &'a str, ips: &'a [Ipv4Addr] },
}

/// Where [`Pki::write`] put each file.
#[derive(Clone, Debug)]
pub struct PkiFiles {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub apiserver_cert: PathBuf,
    pub apiserver_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub sa_key: PathBuf,
    pub sa_pub: PathBuf,
}

fn generate(what: &'static str) -> impl FnOnce(rcgen::Error) -> PkiError {
    move |source| PkiError::Generate { what, source }
}

impl Pki {
    /// Generates a fresh PKI; the serving certificate also covers `host_ip` (the address
    /// the API server binds and advertises).
    pub fn generate(host_ip: Ipv4Addr) -> Result<Pki, PkiError> {
        // CA
        let ca_key = KeyPair::generate().map_err(generate("CA key"))?;
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).map_err(generate("CA certificate"))?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sts-conformance-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(generate("CA certificate"))?;
        let ca_key_pem = ca_key.serialize_pem();
        let issuer = Issuer::new(ca_params, ca_key);

        // API server serving certificate
        let apiserver_key = KeyPair::generate().map_err(generate("API server key"))?;
        let mut params = CertificateParams::new(
            SERVICE_DNS_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .map_err(generate("API server certificate"))?;
        for ip in [Ipv4Addr::LOCALHOST, host_ip, FIRST_SERVICE_IP] {
            params
                .subject_alt_names
                .push(SanType::IpAddress(IpAddr::V4(ip)));
        }
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let apiserver_cert = params
            .signed_by(&apiserver_key, &issuer)
            .map_err(generate("API server certificate"))?;

        // Admin client certificate
        let admin_key = KeyPair::generate().map_err(generate("admin key"))?;
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(generate("admin certificate"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "kubernetes-admin");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_cert = params
            .signed_by(&admin_key, &issuer)
            .map_err(generate("admin certificate"))?;

        // Service-account signing key
        let sa = KeyPair::generate().map_err(generate("service-account key"))?;

        Ok(Pki {
            ca_cert: ca_cert.pem(),
            ca_key: ca_key_pem,
            apiserver_cert: apiserver_cert.pem(),
            apiserver_key: apiserver_key.serialize_pem(),
            admin_cert: admin_cert.pem(),
            admin_key: admin_key.serialize_pem(),
            sa_key: sa.serialize_pem(),
            sa_pub: sa.public_key_pem(),
            issuer,
        })
    }

    /// Issues a certificate signed by this PKI's CA.
    pub fn issue(&self, usage: &Usage<'_>) -> Result<Issued, PkiError> {
        let what = match usage {
            Usage::Client { .. } => "client certificate",
            Usage::Server { .. } => "serving certificate",
        };
        let key = KeyPair::generate().map_err(generate(what))?;
        let mut params = match usage {
            Usage::Client { user, group } => {
                let mut params =
                    CertificateParams::new(Vec::<String>::new()).map_err(generate(what))?;
                params.distinguished_name.push(DnType::CommonName, *user);
                if let Some(group) = group {
                    params
                        .distinguished_name
                        .push(DnType::OrganizationName, *group);
                }
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                params
            }
            Usage::Server { name, ips } => {
                let mut params =
                    CertificateParams::new(vec![(*name).to_owned()]).map_err(generate(what))?;
                params.distinguished_name.push(DnType::CommonName, *name);
                for ip in *ips {
                    params
                        .subject_alt_names
                        .push(SanType::IpAddress(IpAddr::V4(*ip)));
                }
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                params
            }
        };
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(generate(what))?;
        Ok(Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }

    /// Writes every file under `dir` (created 0700); keys get mode 0600.
    pub fn write(&self, dir: &Path) -> Result<PkiFiles, PkiError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| PkiError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        let files = PkiFiles {
            dir: dir.to_owned(),
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            apiserver_cert: dir.join("apiserver.crt"),
            apiserver_key: dir.join("apiserver.key"),
            admin_cert: dir.join("admin.crt"),
            admin_key: dir.join("admin.key"),
            sa_key: dir.join("sa.key"),
            sa_pub: dir.join("sa.pub"),
        };
        write_file(&files.ca_cert, &self.ca_cert, 0o644)?;
        write_file(&files.ca_key, &self.ca_key, 0o600)?;
        write_file(&files.apiserver_cert, &self.apiserver_cert, 0o644)?;
        write_file(&files.apiserver_key, &self.apiserver_key, 0o600)?;
        write_file(&files.admin_cert, &self.admin_cert, 0o644)?;
        write_file(&files.admin_key, &self.admin_key, 0o600)?;
        write_file(&files.sa_key, &self.sa_key, 0o600)?;
        write_file(&files.sa_pub, &self.sa_pub, 0o644)?;
        Ok(files)
    }
}

/// Writes `contents` to a new file created with `mode` (never briefly world-readable).
pub(crate) fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    let err = |source| PkiError::Write {
        path: path.to_owned(),
        source,
    };
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    file.write_all(contents.as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use x509_parser::prelude::*;

    fn parse(pem: &str) -> Vec<u8> {
        let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("pem");
        p.contents
    }

    #[test]
    fn serving_certificate_covers_every_name_the_clients_use() {
        let host = Ipv4Addr::new(10, 250, 0, 1);
        let pki = Pki::generate(host).expect("generate");
        let der = parse(&pki.apiserver_cert);
        let (_, cert) = X509Certificate::from_der(&der).expect("x509");
        let san = cert
            .subject_alternative_name()
            .expect("ext")
            .expect("san present");
        let mut dns = vec![];
        let mut ips = vec![];
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push(d.to_string()),
                GeneralName::IPAddress(b) => ips.push(b.to_vec()),
                _ => {}
            }
        }
        for d in SERVICE_DNS_NAMES {
            assert!(dns.contains(&d.to_string()), "{d} missing from {dns:?}");
        }
        for ip in [Ipv4Addr::LOCALHOST, host, FIRST_SERVICE_IP] {
            assert!(ips.contains(&ip.octets().to_vec()), "{ip} missing");
        }
        let eku = cert.extended_key_usage().expect("ext").expect("eku");
        assert!(eku.value.server_auth);
    }

    #[test]
    fn admin_certificate_is_kubernetes_admin_in_system_masters_signed_by_the_ca() {
        let pki = Pki::generate(Ipv4Addr::new(10, 250, 0, 1)).expect("generate");
        let ca_der = parse(&pki.ca_cert);
        let (_, ca) = X509Certificate::from_der(&ca_der).expect("ca");
        assert!(ca.is_ca());
        let der = parse(&pki.admin_cert);
        let (_, cert) = X509Certificate::from_der(&der).expect("x509");
        let cn: Vec<_> = cert
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        let o: Vec<_> = cert
            .subject()
            .iter_organization()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(cn, ["kubernetes-admin"]);
        assert_eq!(o, ["system:masters"]);
        assert_eq!(cert.issuer(), ca.subject());
        cert.verify_signature(Some(ca.public_key()))
            .expect("signed by the CA");
        let eku = cert.extended_key_usage().expect("ext").expect("eku");
        assert!(eku.value.client_auth);
    }

    #[test]
    fn node_certificates_name_the_node_and_are_signed_by_the_ca() {
        let pki = Pki::generate(Ipv4Addr::new(10, 250, 0, 1)).expect("generate");
        let ca_der = parse(&pki.ca_cert);
        let (_, ca) = X509Certificate::from_der(&ca_der).expect("ca");
        let client = pki
            .issue(&Usage::Client {
                user: "system:node:upstream-worker",
                group: Some("system:nodes"),
            })
            .expect("client");
        let der = parse(&client.cert);
        let (_, cert) = X509Certificate::from_der(&der).expect("x509");
        let cn: Vec<_> = cert
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(cn, ["system:node:upstream-worker"]);
        cert.verify_signature(Some(ca.public_key()))
            .expect("signed by the CA");
        assert!(
            cert.extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .client_auth
        );

        let node_ip = Ipv4Addr::new(10, 250, 0, 2);
        let serving = pki
            .issue(&Usage::Server {
                name: "upstream-worker",
                ips: &[node_ip],
            })
            .expect("serving");
        let der = parse(&serving.cert);
        let (_, cert) = X509Certificate::from_der(&der).expect("x509");
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert!(
            san.value.general_names.iter().any(
                |n| matches!(n, GeneralName::IPAddress(b) if *b == node_ip.octets().as_slice())
            )
        );
        assert!(
            cert.extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .server_auth
        );
        assert!(
            !cert
                .extended_key_usage()
                .unwrap()
                .unwrap()
                .value
                .client_auth
        );
    }

    #[test]
    fn service_account_key_pair_is_p256_pem() {
        let pki = Pki::generate(Ipv4Addr::new(10, 250, 0, 1)).expect("generate");
        assert!(pki.sa_key.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(pki.sa_pub.starts_with("-----BEGIN PUBLIC KEY-----"));
        let key = KeyPair::from_pem(&pki.sa_key).expect("parse");
        assert_eq!(key.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(key.public_key_pem(), pki.sa_pub);
    }

    #[test]
    fn keys_are_written_0600_and_certificates_0644() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::generate(Ipv4Addr::new(10, 250, 0, 1)).expect("generate");
        let files = pki.write(&dir.path().join("pki")).expect("write");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for key in [
            &files.ca_key,
            &files.apiserver_key,
            &files.admin_key,
            &files.sa_key,
        ] {
            assert_eq!(mode(key), 0o600, "{}", key.display());
        }
        for cert in [&files.ca_cert, &files.apiserver_cert, &files.admin_cert] {
            assert_eq!(mode(cert), 0o644, "{}", cert.display());
        }
        assert_eq!(mode(&files.dir), 0o700);
        assert_eq!(fs::read_to_string(&files.ca_cert).unwrap(), pki.ca_cert);
        // Writing again replaces the files.
        pki.write(&files.dir).expect("rewrite");
    }
}
