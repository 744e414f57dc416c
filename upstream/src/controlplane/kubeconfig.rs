//! The admin kubeconfig the control plane writes (certificates inline, mode 0600) and a
//! kube client built from it.

use std::path::Path;

use base64::Engine;

use super::{ControlPlaneError, Result, create_dir};
use crate::pki::PkiFiles;

/// Writes an admin kubeconfig (CA, client certificate and key inline) with mode 0600.
pub fn write_kubeconfig(path: &Path, server: &str, pki: &PkiFiles) -> Result<()> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| ControlPlaneError::WriteFile {
            path: p.to_owned(),
            source,
        })
    };
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "upstream", "cluster": {
            "server": server,
            "certificate-authority-data": b64(read(&pki.ca_cert)?),
        }}],
        "users": [{"name": "kubernetes-admin", "user": {
            "client-certificate-data": b64(read(&pki.admin_cert)?),
            "client-key-data": b64(read(&pki.admin_key)?),
        }}],
        "contexts": [{"name": "upstream", "context": {"cluster": "upstream", "user": "kubernetes-admin"}}],
        "current-context": "upstream",
    });
    let text = serde_yaml::to_string(&config).unwrap_or_default();
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(parent, 0o755)?;
    }
    crate::pki::write_file(path, &text, 0o600).map_err(|e| ControlPlaneError::WriteFile {
        path: path.to_owned(),
        source: std::io::Error::other(crate::report(&e)),
    })
}

/// A kube client from an admin kubeconfig file.
pub async fn admin_client(kubeconfig: &Path) -> Result<kube::Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).map_err(|source| {
        ControlPlaneError::Kubeconfig {
            path: kubeconfig.to_owned(),
            source,
        }
    })?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .map_err(|source| ControlPlaneError::Kubeconfig {
            path: kubeconfig.to_owned(),
            source,
        })?;
    kube::Client::try_from(config).map_err(|source| ControlPlaneError::Client {
        what: format!("the admin kubeconfig {}", kubeconfig.display()),
        source,
    })
}
