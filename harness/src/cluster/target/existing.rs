//! The targets that are an existing cluster: one reached through a kubeconfig (its current
//! or named context), and the one this process runs in as a pod.

use std::sync::Arc;

use kube::config::KubeConfigOptions;

use super::{
    Cluster, REACHABLE_TIMEOUT, TargetError, TargetKind, TargetSettings, verify_reachable,
};
use crate::drive::chaos::NodeChaos;
use crate::drive::wait::Timeouts;

pub(super) async fn provision_kubeconfig(settings: TargetSettings) -> Result<Cluster, TargetError> {
    let config = match &settings.kube_context {
        Some(context) => {
            let options = KubeConfigOptions {
                context: Some(context.clone()),
                ..KubeConfigOptions::default()
            };
            kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|source| TargetError::Kubeconfig {
                    location: settings
                        .kubeconfig
                        .as_ref()
                        .map_or_else(|| "~/.kube/config".to_owned(), |p| p.display().to_string()),
                    source,
                })?
        }
        None => kube::Config::infer().await.map_err(TargetError::Infer)?,
    };
    verify_reachable(&config, REACHABLE_TIMEOUT.mul_f64(settings.timeout_scale)).await?;
    let context = settings.kube_context.clone();
    let description = format!(
        "existing cluster at {} (context {})",
        config.cluster_url,
        context.as_deref().unwrap_or("current")
    );
    let kubeconfig = settings.kubeconfig.clone();
    Ok(Cluster {
        kubeconfig,
        context,
        ..existing(TargetKind::Kubeconfig, description, config, settings)
    })
}

/// The cluster this process runs in as a pod: the service account's token, pods reached by
/// IP, node chaos only through the commands a kubeconfig run would use.
pub(super) async fn provision_in_cluster(settings: TargetSettings) -> Result<Cluster, TargetError> {
    let config = kube::Config::incluster().map_err(TargetError::InCluster)?;
    verify_reachable(&config, REACHABLE_TIMEOUT.mul_f64(settings.timeout_scale)).await?;
    let description = format!("the cluster this pod runs in, at {}", config.cluster_url);
    Ok(existing(
        TargetKind::InCluster,
        description,
        config,
        settings,
    ))
}

/// An existing cluster: nothing provisioned, nothing to clean up, node chaos only through
/// the user's commands.
fn existing(
    kind: TargetKind,
    description: String,
    config: kube::Config,
    settings: TargetSettings,
) -> Cluster {
    Cluster {
        kind,
        description,
        endpoint: config.cluster_url.to_string(),
        config,
        kubeconfig: None,
        context: None,
        timeouts: Timeouts::defaults_for(kind).scaled(settings.timeout_scale),
        chaos: settings
            .chaos_commands
            .map(|c| Arc::new(c) as Arc<dyn NodeChaos>),
        kind_cluster: None,
        sim: None,
        cleanups: Vec::new(),
        test_slots: None,
        nodes: None,
    }
}
