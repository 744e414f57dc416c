//! The kubeconfig kube-sim writes so kubectl and kube-rs can reach it.

use std::path::{Path, PathBuf};

use serde_json::json;

/// Cluster, context and user name in the written kubeconfig.
pub const CONTEXT: &str = "kube-sim";

#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("failed to write kubeconfig {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to render kubeconfig")]
    Render(#[source] serde_yaml::Error),
}

/// The kubeconfig text for a sim serving at `server` (`http://127.0.0.1:PORT`).
pub fn render(server: &str) -> Result<String, KubeconfigError> {
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server}}],
        "users": [{"name": CONTEXT, "user": {"token": "kube-sim-has-no-auth"}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": "default"}}],
        "current-context": CONTEXT,
        "preferences": {},
    });
    serde_yaml::to_string(&config).map_err(KubeconfigError::Render)
}

/// Writes the kubeconfig to `path` (mode 0600, parent directories created).
pub fn write(path: &Path, server: &str) -> Result<(), KubeconfigError> {
    let text = render(server)?;
    let fail = |source| KubeconfigError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    std::fs::write(path, text).map_err(fail)?;
    set_private(path).map_err(fail)
}

#[cfg(unix)]
fn set_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_points_at_the_server_with_current_context() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/kubeconfig");
        write(&path, "http://127.0.0.1:4242").expect("written");
        let parsed: serde_json::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).expect("read")).expect("yaml");
        assert_eq!(parsed["current-context"], CONTEXT);
        assert_eq!(
            parsed["clusters"][0]["cluster"]["server"],
            "http://127.0.0.1:4242"
        );
        assert_eq!(parsed["contexts"][0]["context"]["user"], CONTEXT);
    }
}
