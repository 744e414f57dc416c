//! Gates: whether the server is recent enough for a feature a test relies on (and the
//! reason to skip when it is not), and whether the workload is ready to be disrupted.

use kube::ResourceExt;

use super::{ScenarioError, TestEnv};
use crate::drive::workload::WorkloadError;

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

    /// Whether the server honours `spec.ordinals.start` (GA in 1.31); the reason to skip
    /// otherwise.
    pub async fn supports_start_ordinal(&self) -> Result<(), String> {
        self.server_has("spec.ordinals.start", 31).await
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

    /// Waits (each ordinal bounded by the MySQL-ready timeout) until every ordinal of the
    /// StatefulSet accepts a root login over TCP, before `step` disrupts anything.
    /// mysql:5.7's entrypoint gives its first-start init 30 s, ignores SIGTERM meanwhile and
    /// creates root@'%' last: a container killed mid-init restarts on a data dir that
    /// never accepts root over TCP, so disrupting an ordinal still in its init breaks it.
    pub async fn gate_on_root_logins(&self, step: &str) -> Result<(), ScenarioError> {
        let sts = self.deployed_statefulset().await?;
        let replicas = u32::try_from(sts.spec.replicas.unwrap_or(1)).unwrap_or(0);
        let start = super::update::start_of(&sts);
        for ordinal in start..start + replicas {
            self.workload
                .wait_root_login(ordinal, self.timeouts.mysql_ready)
                .await
                .map_err(|source| ScenarioError::RootLoginGate {
                    step: step.to_string(),
                    source,
                })?;
        }
        tracing::debug!(statefulset = %sts.name_any(), replicas, step, "every ordinal accepts a root login");
        Ok(())
    }
}

/// What a refusal most likely means, for the gate's message.
pub(super) fn root_login_hint(source: &WorkloadError) -> &'static str {
    let WorkloadError::Connect { last, .. } = source else {
        return "";
    };
    if last.contains("is not allowed to connect") || last.contains("Access denied") {
        " (root is refused over TCP: the data dir's first-start init never created root@'%', \
         as when mysql:5.7's entrypoint is killed mid-init)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn refused(last: &str) -> ScenarioError {
        ScenarioError::RootLoginGate {
            step: "delete pod mysql-1".into(),
            source: WorkloadError::Connect {
                pod: "mysql-0".into(),
                timeout: Duration::from_secs(10),
                last: last.into(),
            },
        }
    }

    #[test]
    fn the_gate_names_the_step_the_pod_and_why() {
        let err = refused(
            "still refused when the timeout expired: Host '10.0.0.1' is not allowed to connect to this MariaDB server",
        );
        let chain = crate::support::errors::chain(&err);
        assert!(chain.starts_with("failed to delete pod mysql-1: every ordinal must first accept a root login (root is refused over TCP: the data dir's first-start init never created root@'%'"), "{chain}");
        assert!(chain.contains("pod mysql-0 within 10s"), "{chain}");
        assert!(chain.contains("is not allowed to connect"), "{chain}");
        let refused_port = refused("Connection refused (os error 111)").to_string();
        assert!(!refused_port.contains("root@'%'"), "{refused_port}");
    }
}
