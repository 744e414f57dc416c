//! The in-cluster DNS step: from inside one Ready pod of the set, look up every ordinal's
//! name under the headless Service (`getent hosts` through exec) and record each answer in
//! the History, for `checks::dns_resolution` to judge. Skipped, with the reason in the
//! report, where the target's nodes serve no exec.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use k8s_openapi::api::core::v1::Pod;

use checks::history::{Event, Resolution};

use crate::drive::conditions;
use crate::drive::exec::{self, EXEC_TIMEOUT, HostLookup};

use super::{ScenarioError, TestEnv};

/// The cluster DNS domain the documented Service's names live under (kubelet's default
/// `clusterDomain`, kind's too).
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// How long the names may take to resolve to their pods' current IPs, for one round of
/// lookups: cluster DNS follows the EndpointSlices a watch later (and may cache an answer
/// for its TTL). Each name's last answer within the bound is recorded, right or wrong.
pub const DNS_SETTLE_TIMEOUT: Duration = Duration::from_secs(15);

/// The documented StatefulSet's container: mysql:5.7 (Oracle Linux) has `getent`.
const CONTAINER: &str = "mysql";

/// The prefix of a node's container runtime that runs pods without containers
/// (kube-upstream's hollow nodes): such a node serves no exec.
const HOLLOW_RUNTIME: &str = "hollow://";

/// Whether the lookups ran, or why they could not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InClusterDns {
    /// Every ordinal's name was looked up and recorded.
    Resolved,
    /// Exec is not available here; the reason is in the report's notes.
    Unavailable(String),
}

impl InClusterDns {
    pub fn resolved(&self) -> bool {
        matches!(self, InClusterDns::Resolved)
    }

    /// The DNS check on `entries`, or the check listed as skipped with the reason the
    /// lookups could not run here (never silently absent).
    pub fn check(
        &self,
        entries: &[checks::history::Entry],
        expect: &checks::IdentityExpect,
    ) -> checks::CheckResult {
        match self {
            InClusterDns::Resolved => checks::dns_resolution(entries, expect),
            InClusterDns::Unavailable(reason) => {
                checks::CheckResult::skipped(checks::DNS_CHECK, reason.clone())
            }
        }
    }
}

/// `<pod>.<service>.<namespace>.svc.<domain>`: the name a headless Service gives a pod
/// whose hostname and subdomain are set.
pub fn pod_fqdn(pod: &str, service: &str, namespace: &str) -> String {
    format!("{pod}.{service}.{namespace}.svc.{CLUSTER_DOMAIN}")
}

impl TestEnv {
    /// Looks up the DNS name of each of the `replicas` ordinals from inside one Ready pod
    /// of the set and records every answer; or says in the report why it cannot.
    pub async fn resolve_names_in_cluster(
        &self,
        replicas: u32,
    ) -> Result<InClusterDns, ScenarioError> {
        let expect = self.identity_expect(replicas);
        let mut pods = Vec::new();
        for ordinal in expect.start..expect.start + replicas {
            pods.push(self.get_pod(ordinal).await?);
        }
        let from = pods
            .iter()
            .find(|p| conditions::is_pod_ready(p))
            .ok_or_else(|| {
                ScenarioError::Precondition(format!(
                    "no pod of {} is Ready to resolve names from",
                    expect.statefulset
                ))
            })?;
        let from_name = from.metadata.name.clone().unwrap_or_default();
        if let Some(reason) = self.hollow_node_of(from).await? {
            return Ok(self.dns_unavailable(reason));
        }
        let namespace = self.namespace.name();
        self.history.mark(format!(
            "resolve the DNS names of {} under Service {} from inside pod {from_name}",
            expect.statefulset, expect.service
        ));
        // One bound for the whole round: a DNS that never settles costs it once.
        let deadline = Instant::now() + DNS_SETTLE_TIMEOUT;
        for pod in &pods {
            let name = pod_fqdn(
                pod.metadata.name.as_deref().unwrap_or_default(),
                &expect.service,
                namespace,
            );
            // A pod that is not Ready must not resolve: wait for that answer instead.
            let ip = pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .filter(|_| conditions::is_pod_ready(pod));
            let answer = self.settled_lookup(&from_name, &name, ip, deadline).await?;
            self.history
                .record(Event::Resolved(resolution(&from_name, name, answer)));
        }
        Ok(InClusterDns::Resolved)
    }

    fn dns_unavailable(&self, reason: String) -> InClusterDns {
        self.note(format!(
            "DNS names not resolved from inside the cluster: {reason}"
        ));
        InClusterDns::Unavailable(reason)
    }

    /// Why the node running `pod` serves no exec, if it runs pods without containers.
    async fn hollow_node_of(&self, pod: &Pod) -> Result<Option<String>, ScenarioError> {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
            return Ok(None);
        };
        let runtime = self
            .nodes()
            .get(node)
            .await
            .map_err(|source| ScenarioError::Api {
                action: "get",
                object: format!("node {node}"),
                source,
            })?
            .status
            .and_then(|s| s.node_info)
            .map(|i| i.container_runtime_version)
            .unwrap_or_default();
        Ok(runtime.starts_with(HOLLOW_RUNTIME).then(|| {
            format!(
                "node {node} runs pods without containers (runtime {runtime}) and serves no exec"
            )
        }))
    }

    /// Looks `name` up from inside `from` until it gives exactly `ip` (no address at all
    /// when `ip` is None) or `deadline` passed, with backoff; returns the last answer.
    async fn settled_lookup(
        &self,
        from: &str,
        name: &str,
        ip: Option<&str>,
        deadline: Instant,
    ) -> Result<HostLookup, ScenarioError> {
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(2))
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            let answer =
                exec::getent_hosts(&self.pods(), from, CONTAINER, name, EXEC_TIMEOUT).await?;
            let settled = match (&answer, ip) {
                (HostLookup::Addresses(a), Some(ip)) => !a.is_empty() && a.iter().all(|a| a == ip),
                (HostLookup::Addresses(a), None) => a.is_empty(),
                (HostLookup::NotFound, ip) => ip.is_none(),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if settled || left.is_zero() {
                return Ok(answer);
            }
            tracing::debug!(name, ?answer, ?ip, "DNS answer not settled yet");
            let delay = delays.next().unwrap_or(left).min(left);
            tokio::time::sleep(delay).await;
        }
    }
}

fn resolution(from_pod: &str, name: String, answer: HostLookup) -> Resolution {
    let (addresses, error) = match answer {
        HostLookup::Addresses(addresses) => (addresses, None),
        HostLookup::NotFound => (Vec::new(), Some("not found (getent exit code 2)".into())),
    };
    Resolution {
        from_pod: from_pod.to_owned(),
        name,
        addresses,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_name_lives_under_its_service_and_namespace() {
        assert_eq!(
            pod_fqdn("mysql-1", "mysql", "sts-identity-abc"),
            "mysql-1.mysql.sts-identity-abc.svc.cluster.local"
        );
    }

    #[test]
    fn an_unresolved_name_is_recorded_with_the_reason() {
        let r = resolution("mysql-0", "n".into(), HostLookup::NotFound);
        assert!(r.addresses.is_empty());
        assert_eq!(r.error.as_deref(), Some("not found (getent exit code 2)"));
    }
}
