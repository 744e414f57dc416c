//! Version gates: whether the server is recent enough for a feature a test relies on,
//! and the reason to skip when it is not.

use super::TestEnv;

impl TestEnv {
    /// Whether the server honours `persistentVolumeClaimRetentionPolicy` (GA in 1.32,
    /// beta and on by default since 1.27); the reason to skip otherwise.
    pub async fn supports_retention_policy(&self) -> Result<(), String> {
        self.server_has("persistentVolumeClaimRetentionPolicy on by default", 27)
            .await
    }

    /// Whether the server honours the `node.kubernetes.io/out-of-service` taint (GA in
    /// 1.28); the reason to skip otherwise.
    pub async fn supports_out_of_service_taint(&self) -> Result<(), String> {
        self.server_has("the out-of-service taint", 28).await
    }

    /// Ok if the server is Kubernetes 1.`since_minor` or later.
    async fn server_has(&self, feature: &str, since_minor: u32) -> Result<(), String> {
        let info = self
            .client
            .apiserver_version()
            .await
            .map_err(|e| format!("cannot read the server version: {e}"))?;
        let minor: u32 = info
            .minor
            .trim_end_matches('+')
            .parse()
            .map_err(|_| format!("unparseable server minor version {:?}", info.minor))?;
        if info.major == "1" && minor >= since_minor {
            Ok(())
        } else {
            Err(format!(
                "server {}.{} predates {feature} (1.{since_minor})",
                info.major, info.minor
            ))
        }
    }
}
