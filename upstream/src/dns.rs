//! Cluster DNS for the real nodes: the official CoreDNS as a process of this machine, bound
//! to the host's address on the node network, serving `cluster.local` from the API (the
//! `kubernetes` plugin) with no `forward` (no route leaves the machine), behind the
//! selector-less Service `kube-system/kube-dns` at 10.96.0.10 and an EndpointSlice naming the
//! host's address, which the nodes' kube-proxy turns into rules. The kubelets'
//! `clusterDNS` points at it, as on kind.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube_sim::process::{Spawner, signal_group};
use serde_json::json;

use crate::realnode::plan::{CLUSTER_DNS_IP, CLUSTER_DOMAIN};

/// How long CoreDNS has to sync with the API and answer `/ready`.
pub const DNS_READY_TIMEOUT: Duration = Duration::from_secs(60);
const FIELD_MANAGER: &str = "kube-upstream-dns";

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("failed to write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to start CoreDNS ({})", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: kube_sim::process::ProcessError,
    },
    #[error("CoreDNS was not ready within {timeout:?}; last seen: {last}; log: {tail}")]
    NotReady {
        timeout: Duration,
        last: String,
        tail: String,
    },
    #[error("failed to apply {what}")]
    Apply {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
}

/// The running CoreDNS.
pub struct ClusterDns {
    child: tokio::process::Child,
    pid: u32,
}

/// The Corefile: `cluster.local` and the reverse zones from the API, a 30 s cache as kind's
/// default Corefile has, readiness on loopback.
pub fn corefile(host_ip: Ipv4Addr, kubeconfig: &Path, ready_port: u16) -> String {
    format!(
        ".:53 {{\n    bind {host_ip}\n    errors\n    ready 127.0.0.1:{ready_port}\n    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{\n        kubeconfig {} upstream\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n    cache 30\n}}\n",
        kubeconfig.display()
    )
}

impl ClusterDns {
    /// Starts CoreDNS, waits until it is ready, then publishes it as `kube-system/kube-dns`.
    pub async fn start(
        spawner: &Spawner,
        coredns: &Path,
        dir: &Path,
        host_ip: Ipv4Addr,
        kubeconfig: &Path,
        client: kube::Client,
    ) -> Result<ClusterDns, DnsError> {
        let write_err = |path: &Path| {
            let path = path.to_owned();
            move |source| DnsError::Write { path, source }
        };
        std::fs::create_dir_all(dir).map_err(write_err(dir))?;
        let ready_port = free_port().map_err(write_err(dir))?;
        let corefile_path = dir.join("Corefile");
        std::fs::write(&corefile_path, corefile(host_ip, kubeconfig, ready_port))
            .map_err(write_err(&corefile_path))?;
        let log = dir.join("coredns.log");
        let out = std::fs::File::create(&log).map_err(write_err(&log))?;
        let err = out.try_clone().map_err(write_err(&log))?;
        let mut command = std::process::Command::new(coredns);
        command
            .arg("-conf")
            .arg(&corefile_path)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = spawner
            .spawn(command)
            .await
            .map_err(|source| DnsError::Spawn {
                program: coredns.to_owned(),
                source,
            })?;
        let pid = child.id().unwrap_or(0);
        let dns = ClusterDns { child, pid };
        dns.wait_ready(ready_port, &log).await?;
        publish(client, host_ip).await?;
        tracing::info!(%host_ip, service = %CLUSTER_DNS_IP, "cluster DNS ready");
        Ok(dns)
    }

    async fn wait_ready(&self, port: u16, log: &Path) -> Result<(), DnsError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let began = Instant::now();
        let mut last = String::from("no answer yet");
        let mut delays = backon::BackoffBuilder::build(
            backon::ExponentialBuilder::new()
                .with_min_delay(Duration::from_millis(100))
                .with_max_delay(Duration::from_secs(1))
                .without_max_times(),
        );
        while began.elapsed() < DNS_READY_TIMEOUT {
            match crate::controlplane::probe::http_get(addr, "/ready").await {
                Ok((200, _)) => return Ok(()),
                Ok((code, body)) => last = format!("HTTP {code}: {}", body.trim()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(1))).await;
        }
        Err(DnsError::NotReady {
            timeout: DNS_READY_TIMEOUT,
            last,
            tail: crate::controlplane::log_tail(log, 8),
        })
    }

    pub async fn stop(mut self) {
        signal_group(self.pid, libc::SIGKILL);
        let _ = self.child.wait().await;
    }
}

/// `kube-system/kube-dns` at 10.96.0.10 (53/UDP, 53/TCP) without a selector, and its
/// EndpointSlice naming the host's address.
async fn publish(client: kube::Client, host_ip: Ipv4Addr) -> Result<(), DnsError> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let services: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns"}},
        "spec": {
            "clusterIP": CLUSTER_DNS_IP.to_string(),
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            ],
        },
    });
    services
        .patch("kube-dns", &params, &Patch::Apply(service))
        .await
        .map_err(|source| DnsError::Apply {
            what: "Service kube-system/kube-dns",
            source,
        })?;
    let slices: Api<EndpointSlice> = Api::namespaced(client, "kube-system");
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "kube-dns-host", "labels": {
            "kubernetes.io/service-name": "kube-dns",
            "endpointslice.kubernetes.io/managed-by": "kube-upstream",
        }},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [host_ip.to_string()], "conditions": {"ready": true}}],
        "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        ],
    });
    slices
        .patch("kube-dns-host", &params, &Patch::Apply(slice))
        .await
        .map_err(|source| DnsError::Apply {
            what: "EndpointSlice kube-system/kube-dns-host",
            source,
        })?;
    Ok(())
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corefile_serves_the_cluster_domain_on_the_host_address_with_no_forward() {
        let text = corefile(Ipv4Addr::new(10, 240, 0, 1), Path::new("/k"), 8181);
        assert!(text.contains("bind 10.240.0.1"));
        assert!(text.contains("kubernetes cluster.local in-addr.arpa ip6.arpa"));
        assert!(text.contains("kubeconfig /k upstream"));
        assert!(!text.contains("forward"), "no route leaves the machine");
    }
}
