//! The kind target: reuse or create a kind cluster (its generated config, the delete
//! registered before `kind create`), wait for it to be ready, load the workload image into
//! every node and run the open-files preflight.

use std::path::PathBuf;
use std::sync::Arc;

use tracing::{info, warn};

use super::{
    Cluster, KindClusterInfo, REACHABLE_TIMEOUT, TargetError, TargetKind, TargetSettings,
    config_from_file, verify_reachable,
};
use crate::cluster::kind::{self, CreateCluster, KindCli, KindError};
use crate::cluster::kind_setup;
use crate::cluster::manifests::{KIND_CLUSTER_CONFIG, MysqlManifests, Overrides};
use crate::cluster::preflight;
use crate::drive::chaos::KindChaos;
use crate::drive::wait::Timeouts;
use crate::support::cleanup::{self, CleanupHandle};

struct KindPrepared {
    name: String,
    created: bool,
    kubeconfig: PathBuf,
    /// The run's temporary directory (kubeconfig, generated config, image archive).
    dir: PathBuf,
    /// How many nodes the cluster must have Ready (1 for a reused cluster: at least one).
    nodes: usize,
    cleanups: Vec<CleanupHandle>,
}

/// The image of the StatefulSet's first container (after `E2E_IMAGE`), e.g. `mysql:5.7`.
fn workload_image(settings: &TargetSettings) -> Result<String, TargetError> {
    let manifests = MysqlManifests::load_documented(
        &settings.repo_root,
        &Overrides::from_settings(&settings.manifest),
    )
    .map_err(TargetError::Manifests)?;
    Ok(manifests
        .statefulset
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_else(|| "mysql:5.7".to_owned()))
}

pub(super) async fn provision_kind(settings: TargetSettings) -> Result<Cluster, TargetError> {
    let image = settings.kind_image.clone();
    let docker = settings.kind_cli.docker.clone();
    let cli = settings.kind_cli.clone();
    let scale = settings.timeout_scale;
    let workload = workload_image(&settings)?;
    let parallel_tests = settings.kind_parallel_tests;
    let timeouts = Timeouts::defaults_for(TargetKind::Kind).scaled(scale);
    let prepared = tokio::task::spawn_blocking(move || prepare_kind(&settings))
        .await
        .map_err(TargetError::Task)??;
    let context = kind::context_name(&prepared.name);
    let connected = async {
        let config = config_from_file(&prepared.kubeconfig, Some(&context)).await?;
        verify_reachable(&config, REACHABLE_TIMEOUT.mul_f64(scale)).await?;
        ready_for_tests(&config, &cli, &prepared, &workload, &timeouts).await?;
        Ok::<_, TargetError>(config)
    };
    let config = match connected.await {
        Ok(config) => config,
        Err(err) => {
            prepared
                .cleanups
                .iter()
                .rev()
                .for_each(|h| cleanup::run(*h));
            return Err(err);
        }
    };
    let description = if prepared.created {
        format!(
            "kind cluster `{}` (created by this run; node image {})",
            prepared.name,
            image.as_deref().unwrap_or("kind's default")
        )
    } else {
        format!(
            "kind cluster `{}` (reused via E2E_KIND_CLUSTER; never deleted)",
            prepared.name
        )
    };
    Ok(Cluster {
        kind: TargetKind::Kind,
        description,
        endpoint: config.cluster_url.to_string(),
        config,
        kubeconfig: Some(prepared.kubeconfig),
        context: Some(context),
        timeouts,
        chaos: Ok(Arc::new(KindChaos::new(docker))),
        kind_cluster: Some(KindClusterInfo {
            name: prepared.name,
            created: prepared.created,
        }),
        sim: None,
        cleanups: prepared.cleanups,
        test_slots: Some(tokio::sync::Semaphore::new(parallel_tests)),
        nodes: None,
    })
}

/// After `kind create` (or for a reused cluster): every node Ready and the local-path
/// provisioner running; the workload image pulled once and loaded into every node (see
/// [`KindCli::load_image`]); then
/// the open-files preflight, in a pod running that image.
async fn ready_for_tests(
    config: &kube::Config,
    cli: &KindCli,
    prepared: &KindPrepared,
    image: &str,
    timeouts: &Timeouts,
) -> Result<(), TargetError> {
    let client = kube::Client::try_from(config.clone()).map_err(|source| TargetError::Client {
        endpoint: config.cluster_url.to_string(),
        source,
    })?;
    kind_setup::wait_until_ready(&client, prepared.nodes, timeouts.node_ready)
        .await
        .map_err(TargetError::KindSetup)?;
    let (cli, name, owned_image) = (cli.clone(), prepared.name.clone(), image.to_owned());
    let dir = prepared.dir.clone();
    tokio::task::spawn_blocking(move || cli.load_image(&name, &owned_image, &dir))
        .await
        .map_err(TargetError::Task)?
        .map_err(TargetError::Kind)?;
    let limit = preflight::check_open_files(&client, image, timeouts.pod_ready)
        .await
        .map_err(TargetError::Preflight)?;
    eprintln!(
        "sts-conformance: preflight: pods get an open-files limit of {limit} (at most {})",
        preflight::MAX_OPEN_FILES
    );
    Ok(())
}

/// Blocking: checks docker and kind, then reuses or creates the cluster and writes its
/// kubeconfig into a temporary directory. A created cluster gets the generated config
/// (`kind_setup`): every node mounts the containerd open-files drop-in. The delete is registered before `kind create`
/// runs, so an interrupted create is cleaned up too.
fn prepare_kind(settings: &TargetSettings) -> Result<KindPrepared, TargetError> {
    let cli = &settings.kind_cli;
    cli.preflight().map_err(TargetError::Kind)?;
    let dir = tempfile::Builder::new()
        .prefix("sts-e2e-kind-")
        .tempdir()
        .map_err(TargetError::TempDir)?
        .keep();
    let kubeconfig = dir.join("kubeconfig");
    let mut cleanups = vec![register_dir_removal(dir.clone(), settings.keep)];
    let fail = |cleanups: &[CleanupHandle], err: KindError| {
        cleanups.iter().rev().for_each(|h| cleanup::run(*h));
        TargetError::Kind(err)
    };
    if let Some(name) = &settings.kind_cluster {
        cli.write_kubeconfig(name, &kubeconfig)
            .map_err(|e| fail(&cleanups, e))?;
        info!(cluster = %name, "reusing kind cluster (it will not be deleted)");
        return Ok(KindPrepared {
            name: name.clone(),
            created: false,
            kubeconfig,
            dir,
            nodes: 1,
            cleanups,
        });
    }
    let name = settings
        .kind_cluster_name
        .clone()
        .unwrap_or_else(kind::random_cluster_name);
    cleanups.push(register_kind_delete(
        cli.clone(),
        name.clone(),
        kubeconfig.clone(),
        settings.keep,
    ));
    let generated =
        kind_setup::write_cluster_config(&settings.repo_root.join(KIND_CLUSTER_CONFIG), &dir);
    let (config, nodes) = match generated {
        Ok(generated) => generated,
        Err(err) => {
            cleanups.iter().rev().for_each(|h| cleanup::run(*h));
            return Err(TargetError::KindSetup(err));
        }
    };
    let spec = CreateCluster {
        name: name.clone(),
        config,
        image: settings.kind_image.clone(),
        kubeconfig: kubeconfig.clone(),
    };
    cli.create_cluster(&spec).map_err(|e| fail(&cleanups, e))?;
    Ok(KindPrepared {
        name,
        created: true,
        kubeconfig,
        dir,
        nodes,
        cleanups,
    })
}

fn register_kind_delete(
    cli: KindCli,
    name: String,
    kubeconfig: PathBuf,
    keep: bool,
) -> CleanupHandle {
    if keep {
        let message = format!(
            "E2E_KEEP=1: kept kind cluster `{name}`\n  reach it:  KUBECONFIG={} kubectl --context {} get nodes\n  delete it: kind delete cluster --name {name}",
            kubeconfig.display(),
            kind::context_name(&name)
        );
        return cleanup::register(format!("report kept kind cluster {name}"), move || {
            eprintln!("{message}");
        });
    }
    cleanup::register(format!("delete kind cluster {name}"), move || {
        if let Err(err) = cli.delete_cluster(&name) {
            warn!("{err}; delete it by hand: kind delete cluster --name {name}");
            eprintln!(
                "sts-conformance: {err}; delete it by hand: kind delete cluster --name {name}"
            );
        }
    })
}

fn register_dir_removal(dir: PathBuf, keep: bool) -> CleanupHandle {
    cleanup::register(format!("remove {}", dir.display()), move || {
        if !keep {
            let _ = std::fs::remove_dir_all(&dir);
        }
    })
}
