//! The targets run as a process on this machine: kube-sim (the test double) and
//! kube-upstream (the official control plane with real nodes), each launched, reached
//! through the kubeconfig it writes, and stopped again when it does not answer.

use std::sync::Arc;

use super::{
    Cluster, NodeFacts, REACHABLE_TIMEOUT, TargetError, TargetKind, TargetSettings,
    config_from_file, upstream_bin_dir, upstream_usable, verify_reachable,
};
use crate::cluster::preflight;
use crate::cluster::sim::{self, SimSettings};
use crate::drive::chaos::{ControlServer, SimChaos};
use crate::drive::wait::Timeouts;

pub(super) async fn provision_sim(settings: TargetSettings) -> Result<Cluster, TargetError> {
    let bin = sim::locate_sim_binary(settings.sim_bin.as_deref()).map_err(TargetError::Sim)?;
    let mut sim_settings = SimSettings::new(bin);
    sim_settings.faults = settings.sim_faults.clone();
    sim_settings.keep = settings.keep;
    sim_settings.start_timeout = sim::START_TIMEOUT.mul_f64(settings.timeout_scale);
    let sim = tokio::task::spawn_blocking(move || sim::launch(&sim_settings))
        .await
        .map_err(TargetError::Task)?
        .map_err(TargetError::Sim)?;
    let connected = async {
        let config = config_from_file(&sim.kubeconfig, None).await?;
        verify_reachable(&config, REACHABLE_TIMEOUT.mul_f64(settings.timeout_scale)).await?;
        Ok::<_, TargetError>(config)
    };
    let config = match connected.await {
        Ok(config) => config,
        Err(err) => {
            sim.stop();
            return Err(err);
        }
    };
    let faults = if settings.sim_faults.is_empty() {
        String::new()
    } else {
        format!(" with faults {}", settings.sim_faults.join(","))
    };
    Ok(Cluster {
        kind: TargetKind::Sim,
        description: format!(
            "kube-sim (test double, not a certification) at {}{faults}",
            sim.url
        ),
        endpoint: config.cluster_url.to_string(),
        config,
        kubeconfig: Some(sim.kubeconfig.clone()),
        context: None,
        timeouts: Timeouts::defaults_for(TargetKind::Sim).scaled(settings.timeout_scale),
        chaos: Ok(Arc::new(SimChaos::new(sim.url.clone()))),
        kind_cluster: None,
        cleanups: vec![sim.cleanup],
        sim: Some(sim),
        test_slots: None,
        nodes: None,
    })
}

/// Launches kube-upstream (the official control plane with real nodes). Node stop/start and
/// container crashes go through its control endpoints, as for kube-sim.
pub(super) async fn provision_upstream(settings: TargetSettings) -> Result<Cluster, TargetError> {
    upstream_usable().map_err(TargetError::UpstreamUnusable)?;
    let bin = sim::locate_upstream_binary().map_err(TargetError::Upstream)?;
    let mut launch = SimSettings::upstream(bin);
    launch.keep = settings.keep;
    launch.start_timeout = sim::UPSTREAM_START_TIMEOUT.mul_f64(settings.timeout_scale);
    let process = tokio::task::spawn_blocking(move || sim::launch(&launch))
        .await
        .map_err(TargetError::Task)?
        .map_err(TargetError::Upstream)?;
    let connected = async {
        let config = config_from_file(&process.kubeconfig, None).await?;
        verify_reachable(&config, REACHABLE_TIMEOUT.mul_f64(settings.timeout_scale)).await?;
        Ok::<_, TargetError>(config)
    };
    let config = match connected.await {
        Ok(config) => config,
        Err(err) => {
            process.stop();
            return Err(err);
        }
    };
    let nodes = upstream_node_facts(&process);
    if let Some(n) = &nodes {
        let preflight = async {
            let client =
                kube::Client::try_from(config.clone()).map_err(|source| TargetError::Client {
                    endpoint: config.cluster_url.to_string(),
                    source,
                })?;
            let timeouts =
                Timeouts::defaults_for(TargetKind::Upstream).scaled(settings.timeout_scale);
            preflight::check_open_files(&client, &n.workload_image, timeouts.pod_ready)
                .await
                .map_err(TargetError::Preflight)
        };
        match preflight.await {
            Ok(limit) => eprintln!(
                "sts-conformance: preflight: pods get an open-files limit of {limit} (at most {})",
                preflight::MAX_OPEN_FILES
            ),
            Err(err) => {
                process.stop();
                return Err(err);
            }
        }
    }
    let description = match &nodes {
        Some(n) => format!(
            "the official Kubernetes control plane and real nodes ({}) built from {}, workload image {} in place of mysql:5.7 (no registry), at {}",
            n.runtime,
            upstream_bin_dir().display(),
            n.workload_image,
            config.cluster_url
        ),
        None => format!(
            "the official Kubernetes control plane and real nodes built from {} (their versions and workload image unknown: not on kube-upstream's ready line), at {}",
            upstream_bin_dir().display(),
            config.cluster_url
        ),
    };
    Ok(Cluster {
        kind: TargetKind::Upstream,
        description,
        endpoint: config.cluster_url.to_string(),
        config,
        kubeconfig: Some(process.kubeconfig.clone()),
        context: None,
        timeouts: Timeouts::defaults_for(TargetKind::Upstream).scaled(settings.timeout_scale),
        chaos: Ok(Arc::new(SimChaos::of(
            ControlServer::KubeUpstream,
            process.url.clone(),
        ))),
        kind_cluster: None,
        cleanups: vec![process.cleanup],
        sim: Some(process),
        test_slots: None,
        nodes,
    })
}

/// The real nodes' facts from kube-upstream's ready line (`nodes=real kubelet=...
/// containerd=... image=...`), None when its stdout or those fields cannot be read.
fn upstream_node_facts(process: &sim::SimProcess) -> Option<NodeFacts> {
    let stdout = std::fs::read_to_string(
        process
            .dir
            .join(format!("{}.stdout", process.flavor.name())),
    )
    .ok()?;
    let fields = sim::ready_fields(&stdout, process.flavor);
    if fields.get("nodes").map(String::as_str) != Some("real") {
        return None;
    }
    let field = |k: &str| {
        fields
            .get(k)
            .cloned()
            .unwrap_or_else(|| "unknown".to_owned())
    };
    Some(NodeFacts {
        runtime: format!(
            "kubelet {}, containerd {}, runc, CNI bridge + host-local, kube-proxy, CoreDNS",
            field("kubelet"),
            field("containerd")
        ),
        workload_image: fields.get("image")?.clone(),
    })
}
