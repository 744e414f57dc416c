//! Targets: where the conformance run happens (a kind cluster it creates, an existing
//! cluster from a kubeconfig, or kube-sim), chosen by `E2E_TARGET`, provisioned once per
//! process and shared by every test. Provisioning per kind: `kind_cluster`, `existing`
//! (kubeconfig and in-cluster) and `process` (kube-sim and kube-upstream).
//!
//! Every `#[tokio::test]` has its own runtime, so the shared [`Cluster`] keeps only data
//! (the kube `Config`) and hands out a fresh [`kube::Client`] per call.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::OnceCell;
use tracing::info;

use crate::cluster::kind::{KindCli, KindError};
use crate::cluster::kind_setup::KindSetupError;
use crate::cluster::manifests::ManifestError;
use crate::cluster::preflight::PreflightError;
use crate::cluster::sim::{self, SimError};
use crate::drive::chaos::{ChaosUnavailable, CommandChaos, NodeChaos};
use crate::drive::wait::Timeouts;
use crate::support::cleanup::{self, CleanupHandle};
use crate::support::settings::{ManifestSettings, Settings, SettingsError};
pub use crate::support::settings::{TargetChoice, TargetKind};

mod existing;
mod kind_cluster;
mod process;

/// How long the API server may take to answer `/version` after provisioning.
pub const REACHABLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("failed to read the settings")]
    Settings(#[from] SettingsError),
    #[error("failed to provision the kind target")]
    Kind(#[source] KindError),
    #[error("failed to prepare the kind cluster")]
    KindSetup(#[source] KindSetupError),
    #[error("failed to find the workload image in the documented manifests")]
    Manifests(#[source] ManifestError),
    #[error("the cluster failed its preflight")]
    Preflight(#[source] PreflightError),
    #[error("failed to provision the kube-sim target")]
    Sim(#[source] SimError),
    #[error("the upstream target cannot run here: {0}")]
    UpstreamUnusable(String),
    #[error("failed to provision the upstream target")]
    Upstream(#[source] SimError),
    #[error("failed to load the kubeconfig {location}")]
    Kubeconfig {
        location: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "failed to read the in-cluster configuration (the pod's service account token and KUBERNETES_SERVICE_HOST)"
    )]
    InCluster(#[source] kube::config::InClusterError),
    #[error("failed to find a cluster to use (KUBECONFIG, ~/.kube/config or in-cluster)")]
    Infer(#[source] kube::config::InferConfigError),
    #[error("failed to build a Kubernetes client for {endpoint}")]
    Client {
        endpoint: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "failed to reach the Kubernetes API server at {endpoint} within {}s",
        timeout.as_secs_f64()
    )]
    Unreachable {
        endpoint: String,
        timeout: Duration,
        #[source]
        source: kube::Error,
    },
    #[error("failed to create a temporary directory for the cluster's kubeconfig")]
    TempDir(#[source] std::io::Error),
    #[error("failed to provision the target: a provisioning task failed")]
    Task(#[source] tokio::task::JoinError),
    #[error("failed to provision the shared cluster")]
    Shared(#[source] Arc<TargetError>),
}

/// Everything target provisioning reads from the environment, so tests can build it.
#[derive(Clone, Debug)]
pub struct TargetSettings {
    pub choice: TargetChoice,
    /// `E2E_KEEP=1`: keep created clusters/sims and print how to reach and delete them.
    pub keep: bool,
    pub repo_root: PathBuf,
    pub kind_cli: KindCli,
    /// `E2E_KIND_CLUSTER`: reuse this kind cluster (never deleted).
    pub kind_cluster: Option<String>,
    /// `E2E_KIND_IMAGE`: node image for a created kind cluster.
    pub kind_image: Option<String>,
    /// `E2E_KIND_CLUSTER_NAME`: name for the cluster the run creates (default: random),
    /// so CI can always delete it by name.
    pub kind_cluster_name: Option<String>,
    /// `E2E_SIM_BIN`
    pub sim_bin: Option<PathBuf>,
    /// `E2E_SIM_FAULTS=a,b`
    pub sim_faults: Vec<String>,
    /// `E2E_KUBE_CONTEXT`: context for the kubeconfig target (default: current context).
    pub kube_context: Option<String>,
    /// `KUBECONFIG`, for the kubeconfig target's report (kube reads it itself).
    pub kubeconfig: Option<PathBuf>,
    /// `E2E_TIMEOUT_SCALE`
    pub timeout_scale: f64,
    /// `E2E_NODE_KILL_CMD` / `E2E_NODE_START_CMD` / `E2E_CONTAINER_CRASH_CMD`.
    pub chaos_commands: Result<CommandChaos, ChaosUnavailable>,
    /// `E2E_IMAGE` and the other manifest overrides: the kind target loads the workload
    /// image into its nodes and runs the open-files preflight with it.
    pub manifest: ManifestSettings,
    /// `E2E_KIND_PARALLEL_TESTS`: how many tests may run at once on kind.
    pub kind_parallel_tests: usize,
}

impl TargetSettings {
    /// The process's settings (read once from the environment).
    pub fn from_env() -> Result<TargetSettings, TargetError> {
        Ok(Self::from_settings(Settings::global()?))
    }

    /// [`TargetSettings::from_env`] with an injectable lookup (empty values mean unset).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<TargetSettings, TargetError> {
        Ok(Self::from_settings(&Settings::from_lookup(lookup)?))
    }

    pub fn from_settings(settings: &Settings) -> TargetSettings {
        TargetSettings {
            choice: settings.target,
            keep: settings.keep,
            repo_root: settings.repo_root.clone(),
            kind_cli: KindCli::default(),
            kind_cluster: settings.kind_cluster.clone(),
            kind_image: settings.kind_image.clone(),
            kind_cluster_name: settings.kind_cluster_name.clone(),
            sim_bin: settings.sim_bin.clone(),
            sim_faults: settings.sim_faults.clone(),
            kube_context: settings.kube_context.clone(),
            kubeconfig: settings.kubeconfig.clone(),
            timeout_scale: settings.timeout_scale,
            chaos_commands: CommandChaos::from_settings(&settings.chaos_commands),
            manifest: settings.manifest.clone(),
            kind_parallel_tests: settings.kind_parallel_tests,
        }
    }

    pub fn with_choice(mut self, choice: TargetChoice) -> TargetSettings {
        self.choice = choice;
        self
    }
}

/// The target picked for a run, and why (printed, so a user knows what was certified).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    pub kind: TargetKind,
    pub reason: String,
}

/// Resolves `auto`: kind when `docker info` and `kind version` succeed, else upstream when
/// its official binaries are built and this process can make network namespaces (root),
/// else sim.
pub fn select(choice: TargetChoice, kind_cli: &KindCli) -> Selection {
    select_with(choice, kind_cli, &upstream_usable)
}

/// [`select`] with the upstream probe injected (tests).
pub fn select_with(
    choice: TargetChoice,
    kind_cli: &KindCli,
    upstream: &dyn Fn() -> Result<(), String>,
) -> Selection {
    match choice {
        TargetChoice::Fixed(kind) => Selection {
            kind,
            reason: format!("E2E_TARGET={kind}"),
        },
        TargetChoice::Auto => match kind_cli.preflight() {
            Ok(()) => Selection {
                kind: TargetKind::Kind,
                reason: "E2E_TARGET=auto and `docker info` and `kind version` succeed".to_owned(),
            },
            Err(kind_err) => match upstream() {
                Ok(()) => Selection {
                    kind: TargetKind::Upstream,
                    reason: format!(
                        "E2E_TARGET=auto, kind is not usable here ({kind_err}), and the official control plane is built in {}",
                        upstream_bin_dir().display()
                    ),
                },
                Err(upstream_err) => Selection {
                    kind: TargetKind::Sim,
                    reason: format!(
                        "E2E_TARGET=auto, kind is not usable here ({kind_err}) and neither is upstream ({upstream_err})"
                    ),
                },
            },
        },
    }
}

/// Where scripts/build-upstream.sh puts the official binaries (`UPSTREAM_BIN_DIR` overrides,
/// as for kube-upstream itself).
pub fn upstream_bin_dir() -> PathBuf {
    std::env::var_os("UPSTREAM_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::support::settings::repo_root().join(".upstream/bin"))
}

/// Whether the upstream target can run here: its binaries are built and this process is
/// root (it creates network namespaces for the pods).
pub fn upstream_usable() -> Result<(), String> {
    let dir = upstream_bin_dir();
    let missing: Vec<&str> = UPSTREAM_BINARIES
        .iter()
        .copied()
        .filter(|bin| !dir.join(bin).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} not built in {} (bash scripts/build-upstream.sh)",
            missing.join(", "),
            dir.display()
        ));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root: its pods live in network namespaces it creates".to_owned());
    }
    Ok(())
}

const UPSTREAM_BINARIES: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// A provisioned cluster. Hands out fresh clients; owns the cleanups of what it created.
pub struct Cluster {
    kind: TargetKind,
    description: String,
    config: kube::Config,
    endpoint: String,
    kubeconfig: Option<PathBuf>,
    context: Option<String>,
    timeouts: Timeouts,
    chaos: Result<Arc<dyn NodeChaos>, ChaosUnavailable>,
    kind_cluster: Option<KindClusterInfo>,
    sim: Option<sim::SimProcess>,
    cleanups: Vec<CleanupHandle>,
    /// Bounds how many tests run at once (kind: `E2E_KIND_PARALLEL_TESTS`); `None`: no bound.
    test_slots: Option<tokio::sync::Semaphore>,
    /// What the target's nodes run when they are not the cluster's own (upstream's real
    /// nodes: locally built images, no registry).
    nodes: Option<NodeFacts>,
}

/// The real nodes of a target the harness started, as their launcher reports them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFacts {
    /// e.g. `kubelet v1.37.2, containerd v2.4.2, runc and the CNI bridge plugin`.
    pub runtime: String,
    /// The MySQL-compatible image the nodes carry, used when `E2E_IMAGE` is unset.
    pub workload_image: String,
}

#[derive(Clone, Debug)]
struct KindClusterInfo {
    name: String,
    created: bool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("kind", &self.kind)
            .field("description", &self.description)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Provisions the target `settings` select (printing which and why) and checks that
    /// its API server answers.
    pub async fn provision(settings: TargetSettings) -> Result<Cluster, TargetError> {
        let cli = settings.kind_cli.clone();
        let choice = settings.choice;
        let selection = tokio::task::spawn_blocking(move || select(choice, &cli))
            .await
            .map_err(TargetError::Task)?;
        eprintln!(
            "sts-conformance: target {}: {}",
            selection.kind, selection.reason
        );
        info!(target_kind = %selection.kind, reason = %selection.reason, "selected target");
        if let Some(reason) = open_files_preflight_skipped(selection.kind) {
            eprintln!("sts-conformance: open-files preflight skipped: {reason}");
            info!(reason, "open-files preflight skipped");
        }
        match selection.kind {
            TargetKind::Kind => kind_cluster::provision_kind(settings).await,
            TargetKind::Kubeconfig => existing::provision_kubeconfig(settings).await,
            TargetKind::Upstream => process::provision_upstream(settings).await,
            TargetKind::Sim => process::provision_sim(settings).await,
            TargetKind::InCluster => existing::provision_in_cluster(settings).await,
        }
    }

    /// A new client for the calling test's runtime.
    pub async fn client(&self) -> Result<kube::Client, TargetError> {
        kube::Client::try_from(self.config.clone()).map_err(|source| TargetError::Client {
            endpoint: self.endpoint.clone(),
            source,
        })
    }

    /// The kube configuration clients are built from.
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    /// The manifest overrides of the process's settings on this cluster: without
    /// `E2E_IMAGE`, the image the target's nodes carry in place of the documented one
    /// (upstream's real nodes have no registry).
    pub fn manifest_overrides(
        &self,
    ) -> Result<crate::cluster::manifests::Overrides, crate::support::settings::SettingsError> {
        let mut overrides = crate::cluster::manifests::Overrides::from_env()?;
        if overrides.image.is_none() {
            overrides.image = self.default_workload_image().map(str::to_owned);
        }
        Ok(overrides)
    }

    /// The real nodes' runtime and workload image, when the harness started them.
    pub fn node_facts(&self) -> Option<&NodeFacts> {
        self.nodes.as_ref()
    }

    /// The image the StatefulSet runs on this target when `E2E_IMAGE` is unset: the
    /// documented `mysql:5.7`, except where the nodes carry a substitute (no registry).
    pub fn default_workload_image(&self) -> Option<&str> {
        self.nodes.as_ref().map(|n| n.workload_image.as_str())
    }

    /// What this run certifies, e.g. "kube-sim (test double, not a certification) at ...".
    pub fn description(&self) -> String {
        self.description.clone()
    }

    /// The API server URL.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn kubeconfig_path(&self) -> Option<&Path> {
        self.kubeconfig.as_deref()
    }

    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    /// The kind cluster's name, for kind targets.
    pub fn kind_cluster_name(&self) -> Option<&str> {
        self.kind_cluster.as_ref().map(|k| k.name.as_str())
    }

    /// The base URL of the control endpoints (`/sim/v1/...`), for sim and upstream targets.
    pub fn sim_url(&self) -> Option<&str> {
        self.sim.as_ref().map(|s| s.url.as_str())
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    pub fn chaos(&self) -> Result<Arc<dyn NodeChaos>, ChaosUnavailable> {
        self.chaos.clone()
    }

    /// The slots a test takes before it starts, when this target bounds how many run at
    /// once: on kind, each test's mysql:5.7 pods must finish their first-start init within
    /// 30 s, which a machine running many StatefulSets at once does not give them.
    pub fn test_slots(&self) -> Option<&tokio::sync::Semaphore> {
        self.test_slots.as_ref()
    }

    /// Shell lines that reach the cluster (and delete it, when this run created it).
    pub fn access_instructions(&self) -> String {
        let mut lines = Vec::new();
        match (&self.kubeconfig, &self.context) {
            (Some(path), Some(ctx)) => {
                lines.push(format!("export KUBECONFIG={}", path.display()));
                lines.push(format!("kubectl --context {ctx} get nodes"));
            }
            (Some(path), None) => {
                lines.push(format!("export KUBECONFIG={}", path.display()));
                lines.push("kubectl get nodes".to_owned());
            }
            (None, _) => lines.push("kubectl get nodes   # current kubeconfig context".to_owned()),
        }
        if let Some(k) = self.kind_cluster.as_ref().filter(|k| k.created) {
            lines.push(format!(
                "kind delete cluster --name {}   # to delete it",
                k.name
            ));
        }
        if let Some(nodes) = &self.nodes {
            lines.push(format!(
                "# workload image: {} (no registry here: use it in place of mysql:5.7, e.g.\n#   sed 's#mysql:5.7#{}#' manifests/mysql/statefulset.yaml | kubectl apply -f -)\n# kubectl built here: {}",
                nodes.workload_image,
                nodes.workload_image,
                upstream_bin_dir().join("kubectl").display()
            ));
        }
        if let Some(sim) = &self.sim {
            lines.push(format!(
                "# {} pid {}, state under {}, control endpoints at {}",
                sim.flavor.name(),
                sim.pid,
                sim.dir.display(),
                sim.url
            ));
        }
        lines.join("\n")
    }

    /// Deletes/stops what this cluster's provisioning created, now (idempotent; also
    /// happens at process exit).
    pub fn teardown(&self) {
        for handle in self.cleanups.iter().rev() {
            cleanup::run(*handle);
        }
    }
}

/// Why the open-files preflight (a pod printing `ulimit -n`, its log read back) does not run
/// on a target; `None` for kind, where it runs after the cluster is ready.
pub fn open_files_preflight_skipped(kind: TargetKind) -> Option<&'static str> {
    match kind {
        // Upstream's real nodes run it after their start (a pod of the workload image).
        TargetKind::Kind | TargetKind::Upstream => None,
        TargetKind::Sim => Some(
            "its pods are processes on this machine, not containers: no image to run `ulimit -n` in and no pod logs",
        ),
        TargetKind::Kubeconfig | TargetKind::InCluster => Some(
            "an existing cluster's pods may not run shell commands or serve logs to the harness; \
             on a kind-like runtime check `ulimit -n` in a mysql:5.7 pod by hand (at most 1048576)",
        ),
    }
}

static SHARED: OnceCell<Result<Cluster, Arc<TargetError>>> = OnceCell::const_new();

/// The one cluster of this process, provisioned on first use from the environment.
/// A provisioning failure is remembered, so later tests fail fast with the same error.
pub async fn shared_cluster() -> Result<&'static Cluster, TargetError> {
    let result = SHARED
        .get_or_init(|| async {
            let settings = TargetSettings::from_env().map_err(Arc::new)?;
            Cluster::provision(settings).await.map_err(Arc::new)
        })
        .await;
    result
        .as_ref()
        .map_err(|err| TargetError::Shared(err.clone()))
}

/// The shared cluster's kube config, if it has been provisioned (for cleanup threads
/// that need their own client).
pub fn shared_config() -> Option<kube::Config> {
    SHARED
        .get()
        .and_then(|r| r.as_ref().ok())
        .map(|c| c.config.clone())
}

/// Loads a kubeconfig file, optionally selecting a context.
pub async fn config_from_file(
    path: &Path,
    context: Option<&str>,
) -> Result<kube::Config, TargetError> {
    let location = path.display().to_string();
    let kubeconfig = Kubeconfig::read_from(path).map_err(|source| TargetError::Kubeconfig {
        location: location.clone(),
        source,
    })?;
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|source| TargetError::Kubeconfig { location, source })
}

/// GETs `/version`, retrying with exponential backoff and jitter for up to `timeout`.
pub async fn verify_reachable(config: &kube::Config, timeout: Duration) -> Result<(), TargetError> {
    let endpoint = config.cluster_url.to_string();
    let client = kube::Client::try_from(config.clone()).map_err(|source| TargetError::Client {
        endpoint: endpoint.clone(),
        source,
    })?;
    let backoff = ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_total_delay(Some(timeout))
        .without_max_times();
    let version = (|| async { client.apiserver_version().await })
        .retry(backoff)
        .notify(|err, after| info!(%endpoint, "API server not answering yet ({err}); retrying in {after:?}"))
        .await
        .map_err(|source| TargetError::Unreachable {
            endpoint: endpoint.clone(),
            timeout,
            source,
        })?;
    info!(%endpoint, version = %version.git_version, "API server reachable");
    Ok(())
}

#[cfg(test)]
mod tests;
