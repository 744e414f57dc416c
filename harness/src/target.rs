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

use crate::chaos::{ChaosUnavailable, CommandChaos, KindChaos, NodeChaos, SimChaos};
use crate::cleanup::{self, CleanupHandle};
use crate::kind::{self, CreateCluster, KindCli, KindError};
use crate::manifests::{KIND_CLUSTER_CONFIG, repo_root};
use crate::simtarget::{self, SimError, SimSettings};
use crate::wait::{Timeouts, parse_scale};

/// How long the API server may take to answer `/version` after provisioning.
pub const REACHABLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Kind,
    Kubeconfig,
    Sim,
}

impl TargetKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            TargetKind::Kind => "kind",
            TargetKind::Kubeconfig => "kubeconfig",
            TargetKind::Sim => "sim",
        }
    }
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `E2E_TARGET`: a target, or `auto` (kind when docker and kind work, else sim).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetChoice {
    Auto,
    Fixed(TargetKind),
}

impl std::str::FromStr for TargetChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(TargetChoice::Auto),
            "kind" => Ok(TargetChoice::Fixed(TargetKind::Kind)),
            "kubeconfig" => Ok(TargetChoice::Fixed(TargetKind::Kubeconfig)),
            "sim" => Ok(TargetChoice::Fixed(TargetKind::Sim)),
            _ => Err("expected one of kind, kubeconfig, sim, auto".to_owned()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("failed to read setting {variable}={value:?}: {reason}")]
    InvalidSetting {
        variable: &'static str,
        value: String,
        reason: String,
    },
    #[error("failed to provision the kind target: {0}")]
    Kind(#[source] KindError),
    #[error("failed to provision the kube-sim target: {0}")]
    Sim(#[source] SimError),
    #[error("failed to load the kubeconfig {location}: {source}")]
    Kubeconfig {
        location: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("failed to find a cluster to use (KUBECONFIG, ~/.kube/config or in-cluster): {0}")]
    Infer(#[source] kube::config::InferConfigError),
    #[error("failed to build a Kubernetes client for {endpoint}: {source}")]
    Client {
        endpoint: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "failed to reach the Kubernetes API server at {endpoint} within {}s: {source}",
        timeout.as_secs_f64()
    )]
    Unreachable {
        endpoint: String,
        timeout: Duration,
        #[source]
        source: kube::Error,
    },
    #[error("failed to create a temporary directory for the cluster's kubeconfig: {0}")]
    TempDir(#[source] std::io::Error),
    #[error("failed to provision the target: a provisioning task failed: {0}")]
    Task(String),
    #[error("failed to provision the shared cluster: {0}")]
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
    /// `E2E_TIMEOUT_SCALE`
    pub timeout_scale: f64,
    /// `E2E_NODE_KILL_CMD` / `E2E_NODE_START_CMD` / `E2E_CONTAINER_CRASH_CMD`.
    pub chaos_commands: Result<CommandChaos, ChaosUnavailable>,
}

impl TargetSettings {
    pub fn from_env() -> Result<TargetSettings, TargetError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`TargetSettings::from_env`] with an injectable lookup (empty values mean unset).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<TargetSettings, TargetError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let choice = match get("E2E_TARGET") {
            Some(raw) => raw.parse().map_err(|reason| TargetError::InvalidSetting {
                variable: "E2E_TARGET",
                value: raw.clone(),
                reason,
            })?,
            None => TargetChoice::Auto,
        };
        let timeout_scale = match get("E2E_TIMEOUT_SCALE") {
            Some(raw) => parse_scale(&raw).map_err(|reason| TargetError::InvalidSetting {
                variable: "E2E_TIMEOUT_SCALE",
                value: raw.clone(),
                reason,
            })?,
            None => 1.0,
        };
        let sim_faults = get("E2E_SIM_FAULTS")
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(TargetSettings {
            choice,
            keep: get("E2E_KEEP").is_some_and(|v| cleanup::is_truthy(&v)),
            repo_root: get("E2E_REPO_ROOT")
                .map(PathBuf::from)
                .unwrap_or_else(repo_root),
            kind_cli: KindCli::default(),
            kind_cluster: get("E2E_KIND_CLUSTER"),
            kind_image: get("E2E_KIND_IMAGE"),
            kind_cluster_name: get("E2E_KIND_CLUSTER_NAME"),
            sim_bin: get("E2E_SIM_BIN").map(PathBuf::from),
            sim_faults,
            kube_context: get("E2E_KUBE_CONTEXT"),
            timeout_scale,
            chaos_commands: CommandChaos::from_lookup(&lookup),
        })
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

/// Resolves `auto`: kind when `docker info` and `kind version` succeed, else sim.
pub fn select(choice: TargetChoice, kind_cli: &KindCli) -> Selection {
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
            Err(err) => Selection {
                kind: TargetKind::Sim,
                reason: format!("E2E_TARGET=auto and kind is not usable here ({err})"),
            },
        },
    }
}

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
    sim: Option<simtarget::SimProcess>,
    cleanups: Vec<CleanupHandle>,
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
            .map_err(|e| TargetError::Task(e.to_string()))?;
        eprintln!(
            "sts-conformance: target {}: {}",
            selection.kind, selection.reason
        );
        info!(target_kind = %selection.kind, reason = %selection.reason, "selected target");
        match selection.kind {
            TargetKind::Kind => provision_kind(settings).await,
            TargetKind::Kubeconfig => provision_kubeconfig(settings).await,
            TargetKind::Sim => provision_sim(settings).await,
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

    /// kube-sim's base URL (for its control endpoints), for sim targets.
    pub fn sim_url(&self) -> Option<&str> {
        self.sim.as_ref().map(|s| s.url.as_str())
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    pub fn chaos(&self) -> Result<Arc<dyn NodeChaos>, ChaosUnavailable> {
        self.chaos.clone()
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
                "# kube-sim pid {}, state under {}",
                sim.pid,
                sim.dir.display()
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
    cleanups: Vec<CleanupHandle>,
}

async fn provision_kind(settings: TargetSettings) -> Result<Cluster, TargetError> {
    let image = settings.kind_image.clone();
    let docker = settings.kind_cli.docker.clone();
    let scale = settings.timeout_scale;
    let prepared = tokio::task::spawn_blocking(move || prepare_kind(&settings))
        .await
        .map_err(|e| TargetError::Task(e.to_string()))??;
    let context = kind::context_name(&prepared.name);
    let connected = async {
        let config = config_from_file(&prepared.kubeconfig, Some(&context)).await?;
        verify_reachable(&config, REACHABLE_TIMEOUT.mul_f64(scale)).await?;
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
        timeouts: Timeouts::defaults_for(TargetKind::Kind).scaled(scale),
        chaos: Ok(Arc::new(KindChaos::new(docker))),
        kind_cluster: Some(KindClusterInfo {
            name: prepared.name,
            created: prepared.created,
        }),
        sim: None,
        cleanups: prepared.cleanups,
    })
}

/// Blocking: checks docker and kind, then reuses or creates the cluster and writes its
/// kubeconfig into a temporary directory. The delete is registered before `kind create`
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
    let spec = CreateCluster {
        name: name.clone(),
        config: settings.repo_root.join(KIND_CLUSTER_CONFIG),
        image: settings.kind_image.clone(),
        kubeconfig: kubeconfig.clone(),
    };
    cli.create_cluster(&spec).map_err(|e| fail(&cleanups, e))?;
    Ok(KindPrepared {
        name,
        created: true,
        kubeconfig,
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
                    location: default_kubeconfig_location(),
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
        kubeconfig: std::env::var_os("KUBECONFIG").map(PathBuf::from),
        context,
        timeouts: Timeouts::defaults_for(TargetKind::Kubeconfig).scaled(settings.timeout_scale),
        chaos: settings
            .chaos_commands
            .map(|c| Arc::new(c) as Arc<dyn NodeChaos>),
        kind_cluster: None,
        sim: None,
        cleanups: Vec::new(),
    })
}

fn default_kubeconfig_location() -> String {
    std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".to_owned())
}

// ---------------------------------------------------------------------------------------
// sim

async fn provision_sim(settings: TargetSettings) -> Result<Cluster, TargetError> {
    let bin =
        simtarget::locate_sim_binary(settings.sim_bin.as_deref()).map_err(TargetError::Sim)?;
    let mut sim_settings = SimSettings::new(bin);
    sim_settings.faults = settings.sim_faults.clone();
    sim_settings.keep = settings.keep;
    sim_settings.start_timeout = simtarget::START_TIMEOUT.mul_f64(settings.timeout_scale);
    let sim = tokio::task::spawn_blocking(move || simtarget::launch(&sim_settings))
        .await
        .map_err(|e| TargetError::Task(e.to_string()))?
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
    fn defaults_to_auto_without_keep() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.choice, TargetChoice::Auto);
        assert!(!s.keep);
        assert_eq!(s.timeout_scale, 1.0);
        assert!(s.sim_faults.is_empty());
        assert!(s.chaos_commands.is_err());
        assert!(s.repo_root.join(KIND_CLUSTER_CONFIG).is_file());
    }

    #[test]
    fn reads_every_setting() {
        let s = settings(&[
            ("E2E_TARGET", "Kind"),
            ("E2E_KEEP", "1"),
            ("E2E_KIND_CLUSTER", "dev"),
            ("E2E_KIND_IMAGE", "kindest/node:v1.31.0"),
            ("E2E_KIND_CLUSTER_NAME", "nightly-1"),
            ("E2E_SIM_BIN", "/x/kube-sim"),
            ("E2E_SIM_FAULTS", "lose-writes, ,slow-start"),
            ("E2E_KUBE_CONTEXT", "prod"),
            ("E2E_TIMEOUT_SCALE", "0.5"),
            ("E2E_NODE_KILL_CMD", "k {node}"),
            ("E2E_NODE_START_CMD", "s {node}"),
        ])
        .unwrap();
        assert_eq!(s.choice, TargetChoice::Fixed(TargetKind::Kind));
        assert!(s.keep);
        assert_eq!(s.kind_cluster.as_deref(), Some("dev"));
        assert_eq!(s.kind_image.as_deref(), Some("kindest/node:v1.31.0"));
        assert_eq!(s.kind_cluster_name.as_deref(), Some("nightly-1"));
        assert_eq!(s.sim_bin, Some(PathBuf::from("/x/kube-sim")));
        assert_eq!(s.sim_faults, ["lose-writes", "slow-start"]);
        assert_eq!(s.kube_context.as_deref(), Some("prod"));
        assert_eq!(s.timeout_scale, 0.5);
        assert_eq!(s.chaos_commands.unwrap().kill_node, "k {node}");
    }

    #[test]
    fn rejects_invalid_settings() {
        let err = settings(&[("E2E_TARGET", "minikube")]).unwrap_err();
        assert!(err.to_string().contains("E2E_TARGET"), "{err}");
        assert!(
            err.to_string().contains("kind, kubeconfig, sim, auto"),
            "{err}"
        );
        let err = settings(&[("E2E_TIMEOUT_SCALE", "0")]).unwrap_err();
        assert!(matches!(
            err,
            TargetError::InvalidSetting {
                variable: "E2E_TIMEOUT_SCALE",
                ..
            }
        ));
    }

    #[test]
    fn auto_falls_back_to_sim_when_kind_is_missing() {
        let cli = KindCli::new("/nonexistent/kind", "/nonexistent/docker");
        let s = select(TargetChoice::Auto, &cli);
        assert_eq!(s.kind, TargetKind::Sim);
        assert!(s.reason.contains("docker"), "{}", s.reason);
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
