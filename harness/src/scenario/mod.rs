//! Test scenarios: the steps the suites (and the self-test) drive, each recorded in the
//! test's History before it acts. A [`TestEnv`] is one test: a fresh namespace, an
//! observer, the documented manifests and a workload.

mod backup;
mod dns;
mod gates;
mod nodes;
mod probe;
mod reclaim;
mod steps;
mod update;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::api::Api;
use kube::{Client, ResourceExt};

use checks::history::{Entry, History};
use checks::{CheckResult, IdentityExpect, Verdict};

use crate::cluster::manifests::MysqlManifests;
use crate::cluster::namespace::TestNamespace;
use crate::cluster::target::{Cluster, TargetKind};
use crate::drive::chaos::NodeChaos;
use crate::drive::observe::Observer;
use crate::drive::wait::Timeouts;
use crate::drive::workload::{PodReach, Secret, Workload, WorkloadTimeouts};
use crate::report::Report;
use crate::support::settings::{PodReachSetting, Settings, SettingsError};

pub use backup::{BackupError, BackupFile, Drill};
pub use dns::{CLUSTER_DOMAIN, DNS_SETTLE_TIMEOUT, pod_fqdn};
pub use nodes::{
    KilledNode, OUT_OF_SERVICE_TAINT, UNREACHABLE_TOLERATION, downtime_note, patch_out_of_service,
};
pub use reclaim::{DOCUMENT_RECLAIM_CLAIM, RETAIN_CLASS, reclaim_policy_note, retain_copy};
pub use steps::ScaleVia;
pub use update::{ROLLOUT_ANNOTATION, UpdateStrategy, parallel, start_ordinal};

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("failed to read the settings")]
    Settings(#[from] SettingsError),
    #[error("failed to connect to the cluster")]
    Target(#[from] crate::cluster::target::TargetError),
    #[error("failed to set up the test namespace")]
    Namespace(#[from] crate::cluster::namespace::NamespaceError),
    #[error("failed to load the documented manifests")]
    Manifests(#[from] crate::cluster::manifests::ManifestError),
    #[error("failed to apply the manifests")]
    Apply(#[from] crate::cluster::apply::ApplyError),
    #[error("failed to observe the namespace")]
    Observe(#[from] crate::drive::observe::ObserveError),
    #[error(transparent)]
    Wait(#[from] crate::drive::wait::WaitError),
    #[error("workload failed")]
    Workload(#[from] crate::drive::workload::WorkloadError),
    #[error("chaos action failed")]
    Chaos(#[from] crate::drive::chaos::ChaosError),
    #[error("failed to resolve a name from inside the cluster")]
    Exec(#[from] crate::drive::exec::ExecError),
    #[error("failed to {action} {object}")]
    Api {
        action: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("{0}")]
    Precondition(String),
    /// A disruptive step waits until every ordinal accepts a root login: disrupting a
    /// first start still in its init would leave a data dir without root@'%'.
    #[error("failed to {step}: every ordinal must first accept a root login{hint}", hint = gates::root_login_hint(source))]
    RootLoginGate {
        step: String,
        #[source]
        source: crate::drive::workload::WorkloadError,
    },
    #[error("failed to write the report for {test}")]
    Report {
        test: String,
        #[source]
        source: crate::report::ReportError,
    },
}

impl ScenarioError {
    /// Maps a failed API call on `object` (e.g. "read", "StorageClass standard").
    pub fn api(
        action: &'static str,
        object: impl Into<String>,
    ) -> impl FnOnce(kube::Error) -> ScenarioError {
        let object = object.into();
        move |source| ScenarioError::Api {
            action,
            object,
            source,
        }
    }
}

/// One test's environment.
pub struct TestEnv {
    pub test: String,
    pub client: Client,
    pub namespace: TestNamespace,
    pub history: History,
    pub manifests: MysqlManifests,
    pub timeouts: Timeouts,
    pub workload: Workload,
    pub target: String,
    /// Which kind of target this is (what it can do: exec, node chaos).
    pub target_kind: TargetKind,
    observer: Observer,
    chaos: Result<Arc<dyn NodeChaos>, String>,
    /// What the report must say about the target, when it is not a real cluster.
    target_note: Option<&'static str>,
    started: std::time::SystemTime,
    /// Facts the test learnt about the cluster, for its report.
    notes: std::sync::Mutex<Vec<String>>,
    /// Why the test cannot run on this target, once it found out.
    skipped: std::sync::Mutex<Option<String>>,
    /// The run's report directory (`E2E_REPORT_DIR`).
    report_root: std::path::PathBuf,
    /// Where `finish` writes the report: `<report dir>/<test>` unless moved.
    report_dir: std::path::PathBuf,
}

impl TestEnv {
    /// A fresh namespace with the observer already watching it.
    pub async fn start(cluster: &Cluster, test: &str) -> Result<TestEnv, ScenarioError> {
        let report_root = Settings::global()?.report_dir.clone();
        let client = cluster.client().await?;
        let timeouts = cluster.timeouts().clone();
        let namespace = TestNamespace::create(&client, test).await?;
        let overrides = cluster.manifest_overrides()?;
        let manifests =
            MysqlManifests::load_documented(&crate::support::settings::repo_root(), &overrides)?;
        let history = History::new();
        let observer =
            Observer::start(&client, namespace.name(), &history, timeouts.pod_ready).await?;
        let password = Secret::new(manifests.root_password().unwrap_or_default());
        let workload = Workload::new(
            &history,
            &client,
            namespace.name(),
            &manifests.statefulset.name_any(),
            password,
            WorkloadTimeouts {
                connect: timeouts.mysql_ready,
                statement: Duration::from_secs(10),
            },
            pod_reach(cluster.kind(), settings_pod_reach()),
        );
        tracing::info!(test, namespace = namespace.name(), target = %cluster.description(), "test environment ready");
        let server = match client.apiserver_version().await {
            Ok(v) => format!("server: Kubernetes {} ({})", v.git_version, v.platform),
            Err(e) => format!("server: version unreadable ({e})"),
        };
        Ok(TestEnv {
            test: test.to_string(),
            client,
            namespace,
            history,
            manifests,
            timeouts,
            workload,
            target: cluster.description(),
            target_kind: cluster.kind(),
            observer,
            chaos: cluster.chaos().map_err(|e| e.to_string()),
            target_note: target_note(cluster.kind()),
            started: std::time::SystemTime::now(),
            notes: std::sync::Mutex::new(vec![server]),
            skipped: std::sync::Mutex::new(None),
            report_dir: report_root.join(report_folder(test)),
            report_root,
        })
    }

    pub fn statefulset_name(&self) -> String {
        self.manifests.statefulset.name_any()
    }

    pub fn pod_name(&self, ordinal: u32) -> String {
        format!("{}-{ordinal}", self.statefulset_name())
    }

    pub fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), self.namespace.name())
    }

    pub fn statefulsets(&self) -> Api<StatefulSet> {
        Api::namespaced(self.client.clone(), self.namespace.name())
    }

    pub fn pvcs(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.client.clone(), self.namespace.name())
    }

    pub fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// Node chaos for this target, or why there is none (the test then skips).
    pub fn chaos(&self) -> Result<Arc<dyn NodeChaos>, String> {
        self.chaos.clone()
    }

    /// Chaos that can crash a container on this target, or why there is none (the crash
    /// case then skips): an existing cluster may have node commands but no crash command.
    pub fn container_crash_chaos(&self) -> Result<Arc<dyn NodeChaos>, String> {
        crash_capability(&self.chaos)
    }

    /// What ordinal identity means for the loaded manifest (names, size and access mode
    /// follow the overrides, so a real cluster's storage size is judged correctly).
    pub fn identity_expect(&self, replicas: u32) -> IdentityExpect {
        let sts = &self.manifests.statefulset;
        let template = sts
            .spec
            .volume_claim_templates
            .as_ref()
            .and_then(|t| t.first());
        let template_spec = template.and_then(|t| t.spec.as_ref());
        let mut expect = IdentityExpect::documented(replicas);
        expect.statefulset = sts.name_any();
        expect.service = sts.spec.service_name.clone().unwrap_or_default();
        if let Some(name) = template.and_then(|t| t.metadata.name.clone()) {
            expect.claim_template = name;
        }
        if let Some(size) = template_spec
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
        {
            expect.storage = size.0.clone();
        }
        if let Some(mode) = template_spec
            .and_then(|s| s.access_modes.as_ref())
            .and_then(|m| m.first())
        {
            expect.access_mode = mode.clone();
        }
        expect
    }

    /// Writes this test's report under `<report dir>/<group>/` instead, keeping tests
    /// that are not conformance tests (the self-test) out of the run's report.
    pub fn report_under(&mut self, group: &str) {
        self.report_dir = self
            .report_root
            .join(sanitize(group))
            .join(sanitize(&self.test));
    }

    /// Records that the test cannot run on this target and why; its report says SKIPPED
    /// with the reason instead of judging checks it never ran.
    pub fn skip(&self, reason: impl Into<String>) {
        let reason = reason.into();
        tracing::warn!(test = %self.test, %reason, "skipped");
        *self.skipped.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }

    /// Adds a line to this test's report (a fact about the cluster, not a verdict).
    pub fn note(&self, text: impl Into<String>) {
        let text = text.into();
        tracing::info!(test = %self.test, note = %text, "report note");
        self.notes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(text);
    }

    /// Everything recorded so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.history.snapshot()
    }

    /// Finishes a test whose steps failed before its checks ran (a wait timed out, the
    /// API refused): the report fails with the error as evidence under
    /// [`STEPS_CHECK`], and the namespace is kept and dumped for diagnosis.
    pub async fn abandon(self, why: &str) -> Result<Outcome, ScenarioError> {
        let failed = CheckResult::new(
            STEPS_CHECK,
            Verdict::Fail {
                evidence: vec![why.to_string()],
            },
        );
        self.finish(vec![failed]).await
    }

    /// Writes the reports; when every check passed, deletes the namespace, otherwise
    /// returns the diagnostics (evidence and a dump of the namespace) for the test to print.
    pub async fn finish(self, results: Vec<CheckResult>) -> Result<Outcome, ScenarioError> {
        let _ = self.settle().await;
        let entries = self.history.snapshot();
        let secrets: Vec<String> = self.manifests.root_password().into_iter().collect();
        let mut report = Report::new(&self.target, &self.test, results)
            .started_at(self.started)
            .with_steps(checks::history::steps(&entries));
        if let Some(note) = self.target_note {
            report = report.with_note(note);
        }
        let notes = std::mem::take(&mut *self.notes.lock().unwrap_or_else(|e| e.into_inner()));
        for note in notes {
            report = report.with_note(note);
        }
        if let Some(reason) = self
            .skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            report = report.skipped_because(reason);
        }

        report
            .write_all(&self.report_dir, &entries, &secrets)
            .map_err(|source| ScenarioError::Report {
                test: self.test.clone(),
                source,
            })?;
        let summary = report.summary();
        let skipped = report.skip_reason().map(str::to_owned);
        if report.all_passed() {
            self.namespace.delete().await?;
            return Ok(Outcome {
                passed: true,
                skipped,
                summary,
                dump: String::new(),
            });
        }
        let dump = self.namespace.dump(&self.client).await;
        Ok(Outcome {
            passed: false,
            skipped,
            summary,
            dump,
        })
    }
}

/// The report line of a test whose steps failed before its checks could run.
pub const STEPS_CHECK: &str = "test steps completed";

fn crash_capability(
    chaos: &Result<Arc<dyn NodeChaos>, String>,
) -> Result<Arc<dyn NodeChaos>, String> {
    let chaos = chaos.clone()?;
    match chaos.container_crash_unavailable() {
        Some(reason) => Err(format!("container crash unavailable: {reason}")),
        None => Ok(chaos),
    }
}

/// The result of a finished test.
#[derive(Debug)]
pub struct Outcome {
    pub passed: bool,
    /// Why the test cannot run on this target, when it said so (its report says SKIPPED).
    pub skipped: Option<String>,
    pub summary: String,
    pub dump: String,
}

/// The folder (under the run's report directory) a test's report goes to.
pub fn report_folder(test: &str) -> String {
    sanitize(test)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `E2E_POD_REACH` when set; else pods are reached straight at their IP from inside the
/// cluster, and through the API server's port-forward everywhere else (upstream's real
/// nodes serve it through the kubelet and containerd, as kind's do; `pod-ip` stays an
/// option there, since this machine routes to the pods).
fn pod_reach(kind: TargetKind, asked: Option<PodReachSetting>) -> PodReach {
    match (asked, kind) {
        (Some(PodReachSetting::PodIp), _) | (None, TargetKind::InCluster) => PodReach::PodIp,
        (Some(PodReachSetting::PortForward), _)
        | (
            None,
            TargetKind::Kind | TargetKind::Kubeconfig | TargetKind::Sim | TargetKind::Upstream,
        ) => PodReach::PortForward,
    }
}

fn settings_pod_reach() -> Option<PodReachSetting> {
    crate::support::settings::Settings::global()
        .ok()
        .and_then(|s| s.pod_reach)
}

/// The caveat a report carries for a target that is not a real cluster.
fn target_note(kind: TargetKind) -> Option<&'static str> {
    match kind {
        TargetKind::Sim => {
            Some("run against kube-sim, a test double: this is not a certification of any cluster")
        }
        TargetKind::Upstream => Some(
            "run against the official control plane and real nodes built on this machine \
             (kubelet, containerd, runc, CNI, kube-proxy, CoreDNS), with the locally built \
             MariaDB image in place of mysql:5.7 (no registry) and cgroup v1 hybrid nodes: a \
             test of the harness against real Kubernetes, not a certification of any cluster",
        ),
        TargetKind::Kind | TargetKind::Kubeconfig | TargetKind::InCluster => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive::chaos::CommandChaos;
    use crate::support::settings::CONTAINER_CRASH_CMD_ENV;

    fn commands(crash: Option<&str>) -> Result<Arc<dyn NodeChaos>, String> {
        Ok(Arc::new(CommandChaos {
            kill_node: "true {node}".into(),
            start_node: "true {node}".into(),
            crash_container: crash.map(str::to_owned),
        }))
    }

    #[test]
    fn node_commands_without_a_crash_command_skip_the_crash_case_with_the_reason() {
        let reason = crash_capability(&commands(None))
            .err()
            .expect("a skip reason");
        assert!(reason.contains(CONTAINER_CRASH_CMD_ENV), "{reason}");
    }

    #[test]
    fn a_crash_command_or_no_chaos_at_all_keep_their_answer() {
        assert!(crash_capability(&commands(Some("true {pod}"))).is_ok());
        let none = crash_capability(&Err("no node commands".into())).err();
        assert_eq!(none.as_deref(), Some("no node commands"));
    }
}
