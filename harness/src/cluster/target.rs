//! Targets: where the conformance run happens (a kind cluster it creates, an existing
//! cluster from a kubeconfig, or kube-sim), chosen by `E2E_TARGET`, provisioned once per
//! process and shared by every test.
//!
//! Every `#[tokio::test]` has its own runtime, so the shared [`Cluster`] keeps only data
//! (the kube `Config`) and hands out a fresh [`kube::Client`] per call.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::OnceCell;
use tracing::{info, warn};

use crate::cluster::kind::{self, CreateCluster, KindCli, KindError};
use crate::cluster::kind_setup::{self, KindSetupError};
use crate::cluster::manifests::{KIND_CLUSTER_CONFIG, ManifestError, MysqlManifests, Overrides};
use crate::cluster::preflight::{self, PreflightError};
use crate::cluster::sim::{self, SimError, SimSettings};
use crate::drive::chaos::{ChaosUnavailable, CommandChaos, KindChaos, NodeChaos, SimChaos};
use crate::drive::wait::Timeouts;
use crate::support::cleanup::{self, CleanupHandle};
use crate::support::settings::{ManifestSettings, Settings, SettingsError};
pub use crate::support::settings::{TargetChoice, TargetKind};

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
            TargetKind::Kind => provision_kind(settings).await,
            TargetKind::Kubeconfig => provision_kubeconfig(settings).await,
            TargetKind::Upstream => provision_upstream(settings).await,
            TargetKind::Sim => provision_sim(settings).await,
            TargetKind::InCluster => provision_in_cluster(settings).await,
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
        TargetKind::Kind => None,
        TargetKind::Sim | TargetKind::Upstream => Some(
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

// ---------------------------------------------------------------------------------------
// kind

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

async fn provision_kind(settings: TargetSettings) -> Result<Cluster, TargetError> {
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

// ---------------------------------------------------------------------------------------
// kubeconfig

async fn provision_kubeconfig(settings: TargetSettings) -> Result<Cluster, TargetError> {
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
    let endpoint = config.cluster_url.to_string();
    let context = settings.kube_context.clone();
    let description = format!(
        "existing cluster at {endpoint} (context {})",
        context.as_deref().unwrap_or("current")
    );
    Ok(Cluster {
        kind: TargetKind::Kubeconfig,
        description,
        endpoint,
        config,
        kubeconfig: settings.kubeconfig.clone(),
        context,
        timeouts: Timeouts::defaults_for(TargetKind::Kubeconfig).scaled(settings.timeout_scale),
        chaos: settings
            .chaos_commands
            .map(|c| Arc::new(c) as Arc<dyn NodeChaos>),
        kind_cluster: None,
        sim: None,
        cleanups: Vec::new(),
        test_slots: None,
    })
}

// ---------------------------------------------------------------------------------------
// in-cluster

/// The cluster this process runs in as a pod: the service account's token, pods reached by
/// IP, node chaos only through the commands a kubeconfig run would use.
async fn provision_in_cluster(settings: TargetSettings) -> Result<Cluster, TargetError> {
    let config = kube::Config::incluster().map_err(TargetError::InCluster)?;
    verify_reachable(&config, REACHABLE_TIMEOUT.mul_f64(settings.timeout_scale)).await?;
    let endpoint = config.cluster_url.to_string();
    Ok(Cluster {
        kind: TargetKind::InCluster,
        description: format!("the cluster this pod runs in, at {endpoint}"),
        endpoint,
        config,
        kubeconfig: None,
        context: None,
        timeouts: Timeouts::defaults_for(TargetKind::InCluster).scaled(settings.timeout_scale),
        chaos: settings
            .chaos_commands
            .map(|c| Arc::new(c) as Arc<dyn NodeChaos>),
        kind_cluster: None,
        sim: None,
        cleanups: Vec::new(),
        test_slots: None,
    })
}

// ---------------------------------------------------------------------------------------
// sim

async fn provision_sim(settings: TargetSettings) -> Result<Cluster, TargetError> {
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

// ---------------------------------------------------------------------------------------
// upstream

/// Launches kube-upstream (the official control plane with hollow nodes). Node stop/start and
/// container crashes go through its control endpoints, as for kube-sim.
async fn provision_upstream(settings: TargetSettings) -> Result<Cluster, TargetError> {
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
        chaos: Ok(Arc::new(SimChaos::new(process.url.clone()))),
        kind_cluster: None,
        cleanups: vec![process.cleanup],
        sim: Some(process),
        test_slots: None,
    })
}

// ---------------------------------------------------------------------------------------
// shared

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
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<TargetSettings, TargetError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TargetSettings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn target_settings_come_from_the_settings() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.choice, TargetChoice::Auto);
        assert!(s.chaos_commands.is_err());
        assert!(s.repo_root.join(KIND_CLUSTER_CONFIG).is_file());
        let s = settings(&[
            ("E2E_TARGET", "Kind"),
            ("E2E_TIMEOUT_SCALE", "0.5"),
            ("E2E_NODE_KILL_CMD", "k {node}"),
            ("E2E_NODE_START_CMD", "s {node}"),
        ])
        .unwrap();
        assert_eq!(s.choice, TargetChoice::Fixed(TargetKind::Kind));
        assert_eq!(s.timeout_scale, 0.5);
        assert_eq!(s.chaos_commands.unwrap().kill_node, "k {node}");
        let err = settings(&[("E2E_TIMEOUT_SCALE", "0")]).unwrap_err();
        assert!(matches!(
            err,
            TargetError::Settings(SettingsError {
                variable: "E2E_TIMEOUT_SCALE",
                ..
            })
        ));
    }

    #[test]
    fn auto_falls_back_to_upstream_then_sim_when_kind_is_missing() {
        let cli = KindCli::new("/nonexistent/kind", "/nonexistent/docker");
        let built = select_with(TargetChoice::Auto, &cli, &|| Ok(()));
        assert_eq!(built.kind, TargetKind::Upstream);
        assert!(built.reason.contains("docker"), "{}", built.reason);
        let not_root = || Err("not root: its pods live in network namespaces".to_owned());
        let s = select_with(TargetChoice::Auto, &cli, &not_root);
        assert_eq!(s.kind, TargetKind::Sim);
        assert!(s.reason.contains("docker"), "{}", s.reason);
        assert!(
            s.reason.contains("neither is upstream (not root"),
            "{}",
            s.reason
        );
        let fixed = select(TargetChoice::Fixed(TargetKind::Kubeconfig), &cli);
        assert_eq!(fixed.kind, TargetKind::Kubeconfig);
    }

    #[tokio::test]
    async fn unreachable_api_server_error_names_the_endpoint() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        let err = verify_reachable(&config, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(err, TargetError::Unreachable { .. }), "{err}");
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
