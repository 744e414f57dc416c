//! Every setting the harness reads from the environment, parsed once into one typed struct.
//!
//! This is the only module that reads `E2E_*` variables (and `KUBECONFIG`). Every value has
//! one rule, and a bad value is an error naming the variable, the value and what was
//! expected. [`Settings::from_lookup`] takes an injectable lookup so tests build settings
//! without touching the process environment; [`Settings::global`] reads the environment once
//! per process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use thiserror::Error;

pub const TARGET_ENV: &str = "E2E_TARGET";
pub const KEEP_ENV: &str = "E2E_KEEP";
pub const TIMEOUT_SCALE_ENV: &str = "E2E_TIMEOUT_SCALE";
pub const NODE_KILL_CMD_ENV: &str = "E2E_NODE_KILL_CMD";
pub const NODE_START_CMD_ENV: &str = "E2E_NODE_START_CMD";
pub const CONTAINER_CRASH_CMD_ENV: &str = "E2E_CONTAINER_CRASH_CMD";
pub const SIM_BIN_ENV: &str = "E2E_SIM_BIN";
pub const REPORT_DIR_ENV: &str = "E2E_REPORT_DIR";
pub const KIND_PARALLEL_TESTS_ENV: &str = "E2E_KIND_PARALLEL_TESTS";
pub const POD_REACH_ENV: &str = "E2E_POD_REACH";
pub const SONOBUOY_RESULTS_DIR_ENV: &str = "SONOBUOY_RESULTS_DIR";
/// Tests that run at once on a kind cluster unless `E2E_KIND_PARALLEL_TESTS` says otherwise:
/// each starts a 3-5 pod mysql:5.7 StatefulSet whose first-start init must finish in 30 s.
pub const DEFAULT_KIND_PARALLEL_TESTS: usize = 2;

/// A setting whose value does not follow its rule.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("invalid {variable}={value:?}: {reason}")]
pub struct SettingsError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

/// The kinds of cluster a run can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetKind {
    Kind,
    Kubeconfig,
    /// The official control plane and real nodes built here (kube-upstream).
    Upstream,
    Sim,
    /// The cluster the harness runs in, as a pod (the certification Job).
    InCluster,
}

impl TargetKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            TargetKind::Kind => "kind",
            TargetKind::Kubeconfig => "kubeconfig",
            TargetKind::Upstream => "upstream",
            TargetKind::Sim => "sim",
            TargetKind::InCluster => "in-cluster",
        }
    }
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `E2E_TARGET`: a target, or `auto` (kind when docker and kind work, else upstream when its
/// binaries are built and this process is root, else sim).
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
            "upstream" => Ok(TargetChoice::Fixed(TargetKind::Upstream)),
            "sim" => Ok(TargetChoice::Fixed(TargetKind::Sim)),
            "in-cluster" => Ok(TargetChoice::Fixed(TargetKind::InCluster)),
            _ => {
                Err("expected one of kind, kubeconfig, upstream, sim, in-cluster, auto".to_owned())
            }
        }
    }
}

/// The user's node and container chaos command templates (kubeconfig target).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChaosCommands {
    /// `E2E_NODE_KILL_CMD`: shell template with `{node}`.
    pub kill_node: Option<String>,
    /// `E2E_NODE_START_CMD`: shell template with `{node}`.
    pub start_node: Option<String>,
    /// `E2E_CONTAINER_CRASH_CMD`: shell template with `{node}`, `{namespace}`, `{pod}`,
    /// `{container_id}`.
    pub crash_container: Option<String>,
}

/// Overrides of the documented manifest for real clusters (the manifest stays the default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestSettings {
    /// `E2E_IMAGE`
    pub image: Option<String>,
    /// `E2E_STORAGE_CLASS`
    pub storage_class: Option<String>,
    /// `E2E_STORAGE_SIZE`: a positive Kubernetes quantity (`1Gi`, `500Mi`).
    pub storage_size: Option<String>,
    /// `E2E_REPLICAS`: a non-negative integer.
    pub replicas: Option<i32>,
}

/// Everything the harness reads from the environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `E2E_TARGET` (default `auto`).
    pub target: TargetChoice,
    /// `E2E_KEEP`: keep created clusters, sims and namespaces and print how to reach them.
    pub keep: bool,
    /// `E2E_TIMEOUT_SCALE`: multiplies every named timeout (a positive number, default 1).
    pub timeout_scale: f64,
    /// `E2E_REPO_ROOT`: where `manifests/` lives (default: the parent of the harness crate).
    pub repo_root: PathBuf,
    /// `E2E_KIND_CLUSTER`: reuse this kind cluster (never deleted).
    pub kind_cluster: Option<String>,
    /// `E2E_KIND_IMAGE`: node image for a created kind cluster.
    pub kind_image: Option<String>,
    /// `E2E_KIND_CLUSTER_NAME`: name of the cluster the run creates (default: random).
    pub kind_cluster_name: Option<String>,
    /// `E2E_KUBE_CONTEXT`: context for the kubeconfig target (default: current context).
    pub kube_context: Option<String>,
    /// `E2E_NODE_KILL_CMD`, `E2E_NODE_START_CMD`, `E2E_CONTAINER_CRASH_CMD`.
    pub chaos_commands: ChaosCommands,
    /// `E2E_IMAGE`, `E2E_STORAGE_CLASS`, `E2E_STORAGE_SIZE`, `E2E_REPLICAS`.
    pub manifest: ManifestSettings,
    /// `E2E_SIM_FAULTS=a,b`: faults kube-sim injects on purpose.
    pub sim_faults: Vec<String>,
    /// `E2E_SIM_BIN`: the kube-sim binary (default: the one cargo built).
    pub sim_bin: Option<PathBuf>,
    /// `E2E_REPORT_DIR`: where reports go (default `reports/`).
    pub report_dir: PathBuf,
    /// `KUBECONFIG` (kube reads it itself; kept to name it in reports and errors).
    pub kubeconfig: Option<PathBuf>,
    /// `E2E_KIND_PARALLEL_TESTS`: how many tests run at once on the kind target (a positive
    /// integer, default [`DEFAULT_KIND_PARALLEL_TESTS`]).
    pub kind_parallel_tests: usize,
    /// `E2E_POD_REACH`: `port-forward` or `pod-ip`, how the workload reaches mysqld (default:
    /// pod IP on the upstream target, port-forward elsewhere). `pod-ip` is for a harness that
    /// shares the pods' network: in-cluster, or on the machine that runs the upstream target.
    pub pod_reach: Option<PodReachSetting>,
    /// `SONOBUOY_RESULTS_DIR`, set by Sonobuoy in a plugin's pod: `run` hands its results
    /// over there (a tarball and the `done` file naming it).
    pub sonobuoy_results_dir: Option<PathBuf>,
}

/// How the workload reaches a pod's mysqld, as the user asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodReachSetting {
    PortForward,
    PodIp,
}

impl std::str::FromStr for PodReachSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "port-forward" => Ok(PodReachSetting::PortForward),
            "pod-ip" => Ok(PodReachSetting::PodIp),
            _ => Err("expected port-forward or pod-ip".to_owned()),
        }
    }
}

static GLOBAL: OnceLock<Result<Settings, SettingsError>> = OnceLock::new();

impl Settings {
    /// The process's settings, read from the environment on first use.
    pub fn global() -> Result<&'static Settings, SettingsError> {
        GLOBAL
            .get_or_init(Settings::from_env)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Makes `settings` (the environment with a command's flags applied) the process's
    /// settings. False when something already read them, so the flags came too late.
    pub fn install(settings: Settings) -> bool {
        GLOBAL.set(Ok(settings)).is_ok()
    }

    /// Reads the environment now (prefer [`Settings::global`]).
    pub fn from_env() -> Result<Settings, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Settings::from_env`] with an injectable lookup. Empty values mean unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingsError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let target = match get(TARGET_ENV) {
            Some(raw) => invalid_unless(TARGET_ENV, &raw, raw.parse())?,
            None => TargetChoice::Auto,
        };
        let keep = match get(KEEP_ENV) {
            Some(raw) => invalid_unless(KEEP_ENV, &raw, parse_bool(&raw))?,
            None => false,
        };
        let timeout_scale = match get(TIMEOUT_SCALE_ENV) {
            Some(raw) => invalid_unless(TIMEOUT_SCALE_ENV, &raw, parse_scale(&raw))?,
            None => 1.0,
        };
        let replicas = match get("E2E_REPLICAS") {
            Some(raw) => Some(invalid_unless("E2E_REPLICAS", &raw, parse_replicas(&raw))?),
            None => None,
        };
        let kind_parallel_tests = match get(KIND_PARALLEL_TESTS_ENV) {
            Some(raw) => invalid_unless(KIND_PARALLEL_TESTS_ENV, &raw, parse_positive(&raw))?,
            None => DEFAULT_KIND_PARALLEL_TESTS,
        };
        let pod_reach = match get(POD_REACH_ENV) {
            Some(raw) => Some(invalid_unless(POD_REACH_ENV, &raw, raw.parse())?),
            None => None,
        };
        let storage_size = match get("E2E_STORAGE_SIZE") {
            Some(raw) => Some(validate_quantity("E2E_STORAGE_SIZE", raw)?),
            None => None,
        };
        Ok(Settings {
            target,
            keep,
            timeout_scale,
            repo_root: get("E2E_REPO_ROOT")
                .map(PathBuf::from)
                .unwrap_or_else(default_repo_root),
            kind_cluster: get("E2E_KIND_CLUSTER"),
            kind_image: get("E2E_KIND_IMAGE"),
            kind_cluster_name: get("E2E_KIND_CLUSTER_NAME"),
            kube_context: get("E2E_KUBE_CONTEXT"),
            chaos_commands: ChaosCommands {
                kill_node: get(NODE_KILL_CMD_ENV),
                start_node: get(NODE_START_CMD_ENV),
                crash_container: get(CONTAINER_CRASH_CMD_ENV),
            },
            manifest: ManifestSettings {
                image: get("E2E_IMAGE"),
                storage_class: get("E2E_STORAGE_CLASS"),
                storage_size,
                replicas,
            },
            sim_faults: get("E2E_SIM_FAULTS")
                .map(|raw| {
                    raw.split(',')
                        .map(str::trim)
                        .filter(|f| !f.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            sim_bin: get(SIM_BIN_ENV).map(PathBuf::from),
            report_dir: get(REPORT_DIR_ENV)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("reports")),
            kubeconfig: get("KUBECONFIG").map(PathBuf::from),
            kind_parallel_tests,
            pod_reach,
            sonobuoy_results_dir: get(SONOBUOY_RESULTS_DIR_ENV).map(PathBuf::from),
        })
    }
}

/// Whether to keep what the run created: the global setting, or false when the settings
/// are invalid (then nothing was created: provisioning fails on the same error first).
pub fn keep_requested() -> bool {
    Settings::global().is_ok_and(|s| s.keep)
}

/// The repository root: `E2E_REPO_ROOT`, else the parent of the harness crate (also when
/// the settings are invalid: the root has a default and provisioning reports the error).
pub fn repo_root() -> PathBuf {
    Settings::global()
        .map(|s| s.repo_root.clone())
        .unwrap_or_else(|_| default_repo_root())
}

fn default_repo_root() -> PathBuf {
    let harness_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    harness_dir.parent().unwrap_or(harness_dir).to_owned()
}

fn invalid_unless<T>(
    variable: &'static str,
    raw: &str,
    parsed: Result<T, String>,
) -> Result<T, SettingsError> {
    parsed.map_err(|reason| SettingsError {
        variable,
        value: raw.to_owned(),
        reason,
    })
}

/// `1`, `true`, `yes` are true; `0`, `false`, `no` are false (any case); nothing else.
pub fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err("expected 1, true, yes, 0, false or no".to_owned()),
    }
}

/// A timeout scale: a finite float > 0.
pub fn parse_scale(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err("expected a positive number such as 0.5 or 2".to_owned()),
    }
}

/// A replica count: a non-negative integer.
pub fn parse_replicas(raw: &str) -> Result<i32, String> {
    match raw.trim().parse::<i32>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err("expected a non-negative integer".to_owned()),
    }
}

/// A count of at least one.
pub fn parse_positive(raw: &str) -> Result<usize, String> {
    match raw.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a positive integer such as 2".to_owned()),
    }
}

/// The shape of a Kubernetes quantity such as `1Gi`, `500Mi` or `2G`, positive.
pub fn check_quantity(raw: &str) -> Result<(), String> {
    const SUFFIXES: &[&str] = &[
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E", "",
    ];
    let trimmed = raw.trim();
    let number_end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, suffix) = trimmed.split_at(number_end);
    let number_ok = !number.is_empty() && number.parse::<f64>().is_ok_and(|n| n > 0.0);
    if number_ok && SUFFIXES.contains(&suffix) {
        Ok(())
    } else {
        Err("expected a positive storage quantity such as 1Gi or 500Mi".to_owned())
    }
}

/// A storage quantity given as `variable` (a flag or a variable), trimmed, or the error.
pub fn validate_quantity(variable: &'static str, value: String) -> Result<String, SettingsError> {
    invalid_unless(variable, &value, check_quantity(&value))?;
    Ok(value.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_to_auto_without_keep() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.target, TargetChoice::Auto);
        assert!(!s.keep);
        assert_eq!(s.timeout_scale, 1.0);
        assert!(s.sim_faults.is_empty());
        assert_eq!(s.chaos_commands, ChaosCommands::default());
        assert_eq!(s.manifest, ManifestSettings::default());
        assert_eq!(s.report_dir, PathBuf::from("reports"));
        assert!(s.repo_root.join("manifests").is_dir());
        assert_eq!(s.kind_parallel_tests, DEFAULT_KIND_PARALLEL_TESTS);
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
            ("E2E_CONTAINER_CRASH_CMD", "c {pod}"),
            ("E2E_IMAGE", "mysql:8.0"),
            ("E2E_STORAGE_CLASS", ""),
            ("E2E_STORAGE_SIZE", "500Mi"),
            ("E2E_REPLICAS", "4"),
            ("E2E_REPORT_DIR", "/tmp/r"),
            ("E2E_REPO_ROOT", "/src"),
            ("E2E_KIND_PARALLEL_TESTS", "3"),
            ("E2E_POD_REACH", "pod-ip"),
        ])
        .unwrap();
        assert_eq!(s.target, TargetChoice::Fixed(TargetKind::Kind));
        assert!(s.keep);
        assert_eq!(s.kind_cluster.as_deref(), Some("dev"));
        assert_eq!(s.kind_image.as_deref(), Some("kindest/node:v1.31.0"));
        assert_eq!(s.kind_cluster_name.as_deref(), Some("nightly-1"));
        assert_eq!(s.sim_bin, Some(PathBuf::from("/x/kube-sim")));
        assert_eq!(s.sim_faults, ["lose-writes", "slow-start"]);
        assert_eq!(s.kube_context.as_deref(), Some("prod"));
        assert_eq!(s.timeout_scale, 0.5);
        assert_eq!(s.chaos_commands.kill_node.as_deref(), Some("k {node}"));
        assert_eq!(s.chaos_commands.start_node.as_deref(), Some("s {node}"));
        assert_eq!(s.chaos_commands.crash_container.as_deref(), Some("c {pod}"));
        assert_eq!(s.manifest.image.as_deref(), Some("mysql:8.0"));
        assert_eq!(s.manifest.storage_class, None, "empty means unset");
        assert_eq!(s.manifest.storage_size.as_deref(), Some("500Mi"));
        assert_eq!(s.manifest.replicas, Some(4));
        assert_eq!(s.report_dir, PathBuf::from("/tmp/r"));
        assert_eq!(s.repo_root, PathBuf::from("/src"));
        assert_eq!(s.kind_parallel_tests, 3);
        assert_eq!(s.pod_reach, Some(PodReachSetting::PodIp));
    }

    #[test]
    fn keep_has_one_rule() {
        for (raw, keep) in [
            ("1", true),
            ("TRUE", true),
            ("yes", true),
            ("0", false),
            ("false", false),
            ("No", false),
        ] {
            assert_eq!(settings(&[("E2E_KEEP", raw)]).unwrap().keep, keep, "{raw}");
        }
    }

    #[test]
    fn rejects_invalid_settings() {
        for (var, value) in [
            ("E2E_TARGET", "minikube"),
            ("E2E_KEEP", "please"),
            ("E2E_TIMEOUT_SCALE", "0"),
            ("E2E_TIMEOUT_SCALE", "-1"),
            ("E2E_TIMEOUT_SCALE", "fast"),
            ("E2E_TIMEOUT_SCALE", "NaN"),
            ("E2E_REPLICAS", "three"),
            ("E2E_REPLICAS", "-1"),
            ("E2E_STORAGE_SIZE", "big"),
            ("E2E_STORAGE_SIZE", "1Gb"),
            ("E2E_STORAGE_SIZE", "0"),
            ("E2E_KIND_PARALLEL_TESTS", "0"),
            ("E2E_KIND_PARALLEL_TESTS", "many"),
        ] {
            let err = settings(&[(var, value)]).unwrap_err();
            assert_eq!(err.variable, var, "{var}={value}: {err}");
            assert!(err.to_string().contains(var), "{err}");
            assert!(err.to_string().contains(value), "{err}");
        }
        let err = settings(&[("E2E_TARGET", "minikube")]).unwrap_err();
        assert!(
            err.to_string().contains("expected one of kind, kubeconfig"),
            "{err}"
        );
    }

    #[test]
    fn scale_and_quantities() {
        assert_eq!(parse_scale("2.5"), Ok(2.5));
        assert_eq!(
            validate_quantity("--storage-size", " 2Gi ".into()),
            Ok("2Gi".into())
        );
        assert!(validate_quantity("--storage-size", "2 GB".into()).is_err());
    }
}
