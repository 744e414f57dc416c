//! The in-cluster DNS step: from inside one Ready pod of the set, look up every ordinal's
//! name under the headless Service (`getent hosts` through exec) and record each answer in
//! the History, for `checks::dns_resolution` to judge.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

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

/// `<pod>.<service>.<namespace>.svc.<domain>`: the name a headless Service gives a pod
/// whose hostname and subdomain are set.
pub fn pod_fqdn(pod: &str, service: &str, namespace: &str) -> String {
    format!("{pod}.{service}.{namespace}.svc.{CLUSTER_DOMAIN}")
}

impl TestEnv {
    /// Looks up the DNS name of each of the `replicas` ordinals from inside one Ready pod
    /// of the set and records every answer.
    pub async fn resolve_names_in_cluster(&self, replicas: u32) -> Result<(), ScenarioError> {
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
        Ok(())
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
