//! The targets run as a process on this machine: kube-sim (the test double) and
//! kube-upstream (the official control plane with hollow nodes), each launched, reached
//! through the kubeconfig it writes, and stopped again when it does not answer.

use std::sync::Arc;

use super::{
    Cluster, REACHABLE_TIMEOUT, TargetError, TargetKind, TargetSettings, config_from_file,
    upstream_bin_dir, upstream_usable, verify_reachable,
};
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
    })
}

/// Launches kube-upstream (the official control plane with hollow nodes). Node stop/start and
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
    Ok(Cluster {
        kind: TargetKind::Upstream,
        description: format!(
            "the official Kubernetes control plane built from {} with hollow nodes (no containers, images, probes or exec), at {}",
            upstream_bin_dir().display(),
            config.cluster_url
        ),
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
    })
}
