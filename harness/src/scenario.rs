//! Test scenarios: the steps the suites (and the self-test) drive, each recorded in the
//! test's History before it acts. A [`TestEnv`] is one test: a fresh namespace, an
//! observer, the documented manifests and a workload.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy};
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod, Taint};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::apply;
use crate::chaos::NodeChaos;
use crate::manifests::{self, MysqlManifests, Object, Overrides};
use crate::namespace::TestNamespace;
use crate::observe::Observer;
use crate::report::Report;
use crate::storage::StorageFacts;
use crate::target::Cluster;
use crate::wait::{self, Timeouts};
use crate::workload::{Secret, Workload, WorkloadTimeouts};
use checks::history::{Action, Entry, History};
use checks::{CheckResult, IdentityExpect, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("failed to connect to the cluster: {0}")]
    Target(#[from] crate::target::TargetError),
    #[error("failed to set up the test namespace: {0}")]
    Namespace(#[from] crate::namespace::NamespaceError),
    #[error("failed to load the documented manifests: {0}")]
    Manifests(#[from] crate::manifests::ManifestError),
    #[error("failed to apply the manifests: {0}")]
    Apply(#[from] crate::apply::ApplyError),
    #[error("failed to observe the namespace: {0}")]
    Observe(#[from] crate::observe::ObserveError),
    #[error(transparent)]
    Wait(#[from] crate::wait::WaitError),
    #[error("workload failed: {0}")]
    Workload(#[from] crate::workload::WorkloadError),
    #[error("chaos action failed: {0}")]
    Chaos(#[from] crate::chaos::ChaosError),
    #[error("failed to {action} {object}: {source}")]
    Api {
        action: &'static str,
        object: String,
        #[source]
        source: kube::Error,
    },
    #[error("{0}")]
    Precondition(String),
    #[error("failed to write the report for {test}: {source}")]
    Report {
        test: String,
        #[source]
        source: crate::report::ReportError,
    },
    #[error("timed out after {timeout:?} waiting for {what}; last seen: {last}")]
    Timeout {
        what: String,
        timeout: Duration,
        last: String,
    },
}

/// How a scale is requested: like `kubectl scale` (the scale subresource) or by patching
/// `spec.replicas`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleVia {
    ScaleSubresource,
    SpecPatch,
}

impl ScaleVia {
    fn label(self) -> &'static str {
        match self {
            ScaleVia::ScaleSubresource => "scale subresource",
            ScaleVia::SpecPatch => "spec patch",
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
    observer: Observer,
    chaos: Result<Arc<dyn NodeChaos>, String>,
    is_sim: bool,
    started: std::time::SystemTime,
    /// Facts the test learnt about the cluster, for its report.
    notes: std::sync::Mutex<Vec<String>>,
    /// Why the test cannot run on this target, once it found out.
    skipped: std::sync::Mutex<Option<String>>,
    /// Where `finish` writes the report: `<report dir>/<test>` unless moved.
    report_dir: std::path::PathBuf,
}

impl TestEnv {
    /// A fresh namespace with the observer already watching it.
    pub async fn start(cluster: &Cluster, test: &str) -> Result<TestEnv, ScenarioError> {
        let client = cluster.client().await?;
        let timeouts = cluster.timeouts().clone();
        let namespace = TestNamespace::create(&client, test).await?;
        let overrides = Overrides::from_env()?;
        let manifests = MysqlManifests::load_documented(&manifests::repo_root(), &overrides)?;
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
            observer,
            chaos: cluster.chaos().map_err(|e| e.to_string()),
            is_sim: cluster.kind() == crate::target::TargetKind::Sim,
            started: std::time::SystemTime::now(),
            notes: std::sync::Mutex::new(vec![server]),
            skipped: std::sync::Mutex::new(None),
            report_dir: crate::report::report_dir().join(sanitize(test)),
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

    /// Whether the server honours `persistentVolumeClaimRetentionPolicy` (GA in 1.32,
    /// beta and on by default since 1.27); the reason to skip otherwise.
    pub async fn supports_retention_policy(&self) -> Result<(), String> {
        self.server_has("persistentVolumeClaimRetentionPolicy on by default", 27)
            .await
    }

    /// Whether the server honours the `node.kubernetes.io/out-of-service` taint (GA in
    /// 1.28); the reason to skip otherwise.
    pub async fn supports_out_of_service_taint(&self) -> Result<(), String> {
        self.server_has("the out-of-service taint", 28).await
    }

    /// Ok if the server is Kubernetes 1.`since_minor` or later.
    async fn server_has(&self, feature: &str, since_minor: u32) -> Result<(), String> {
        let info = self
            .client
            .apiserver_version()
            .await
            .map_err(|e| format!("cannot read the server version: {e}"))?;
        let minor: u32 = info
            .minor
            .trim_end_matches('+')
            .parse()
            .map_err(|_| format!("unparseable server minor version {:?}", info.minor))?;
        if info.major == "1" && minor >= since_minor {
            Ok(())
        } else {
            Err(format!(
                "server {}.{} predates {feature} (1.{since_minor})",
                info.major, info.minor
            ))
        }
    }

    /// Waits until the pod of `ordinal` was recreated (a uid other than `old_uid`) and is
    /// Ready; returns it.
    pub async fn wait_recreated(&self, ordinal: u32, old_uid: &str) -> Result<Pod, ScenarioError> {
        let name = self.pod_name(ordinal);
        Ok(
            wait::wait_for_pod_recreated(&self.pods(), &name, old_uid, self.timeouts.pod_ready)
                .await?,
        )
    }

    /// Adds (`present`) or removes the `node.kubernetes.io/out-of-service` NoExecute taint
    /// on `node`, as an operator does once a dead node is known to be down for good: its
    /// pods are then force-deleted and may start elsewhere (GA in 1.28). Read-modify-write
    /// of `spec.taints` with the resourceVersion, retried on conflict (the node
    /// controller updates the same list).
    pub async fn set_out_of_service(&self, node: &str, present: bool) -> Result<(), ScenarioError> {
        self.history.action(Action::TaintNode {
            node: node.to_string(),
            taint: format!("{OUT_OF_SERVICE_TAINT}={OUT_OF_SERVICE_VALUE}:NoExecute"),
            added: present,
        });
        let update = || async {
            let mut current = self.nodes().get(node).await?;
            let spec = current.spec.get_or_insert_with(Default::default);
            let mut taints = spec.taints.take().unwrap_or_default();
            taints.retain(|t| t.key != OUT_OF_SERVICE_TAINT);
            if present {
                taints.push(Taint {
                    key: OUT_OF_SERVICE_TAINT.into(),
                    value: Some(OUT_OF_SERVICE_VALUE.into()),
                    effect: "NoExecute".into(),
                    time_added: None,
                });
            }
            spec.taints = (!taints.is_empty()).then_some(taints);
            self.nodes()
                .replace(node, &PostParams::default(), &current)
                .await
        };
        update
            .retry(
                ExponentialBuilder::default()
                    .with_jitter()
                    .with_max_times(5),
            )
            .when(|e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 409))
            .await
            .map_err(|source| ScenarioError::Api {
                action: if present {
                    "taint out-of-service"
                } else {
                    "untaint out-of-service"
                },
                object: format!("node {node}"),
                source,
            })?;
        Ok(())
    }

    /// Writes this test's report under `<report dir>/<group>/` instead, keeping tests
    /// that are not conformance tests (the self-test) out of the run's report.
    pub fn report_under(&mut self, group: &str) {
        self.report_dir = crate::report::report_dir()
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

    /// The storage the StatefulSet's claims got, as observed so far, with their
    /// StorageClass read from the API (left out, and said so, if it cannot be read).
    pub async fn probe_storage(&self) -> StorageFacts {
        let prefix = format!("{}-", self.identity_expect(0).claim_template);
        let entries = self.entries();
        let named = StorageFacts::observed(&entries, &prefix, None);
        let class = match named.classes.first() {
            Some(name) => {
                let api: Api<StorageClass> = Api::all(self.client.clone());
                match api.get_opt(name).await {
                    Ok(class) => class,
                    Err(e) => {
                        tracing::warn!(class = %name, error = %e, "cannot read the StorageClass");
                        None
                    }
                }
            }
            None => None,
        };
        StorageFacts::observed(&entries, &prefix, class.as_ref())
    }

    /// Waits until the PVCs of the given ordinals no longer exist.
    pub async fn wait_pvcs_absent(&self, ordinals: &[u32]) -> Result<(), ScenarioError> {
        let expect = self.identity_expect(0);
        let names: Vec<String> = ordinals
            .iter()
            .map(|i| format!("{}-{}-{i}", expect.claim_template, expect.statefulset))
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        wait::wait_for_absent(&self.pvcs(), &names, self.timeouts.statefulset_ready).await?;
        Ok(())
    }

    /// Waits until the governing Service's EndpointSlices publish `replicas` ready
    /// hostnames (the DNS identity lags pod readiness by one controller round). Which
    /// names they are is for the identity check to judge, not for this wait.
    pub async fn wait_for_endpoint_hostnames(&self, replicas: u32) -> Result<(), ScenarioError> {
        let expect = self.identity_expect(replicas);
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), self.namespace.name());
        let selector = format!("kubernetes.io/service-name={}", expect.service);
        let what = format!(
            "EndpointSlices of service {}/{} to publish {replicas} ready hostnames",
            self.namespace.name(),
            expect.service,
        );
        let timeout = self.timeouts.pod_ready;
        let mut last = String::from("nothing observed yet");
        let watch = async {
            let cfg = watcher::Config::default().labels(&selector);
            let mut stream = std::pin::pin!(watcher(api, cfg).default_backoff());
            let mut slices = std::collections::BTreeMap::new();
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => {
                        slices.insert(s.name_any(), s);
                    }
                    Ok(watcher::Event::Delete(s)) => {
                        slices.remove(&s.name_any());
                    }
                    Ok(watcher::Event::Init) => slices.clear(),
                    Ok(watcher::Event::InitDone) => {}
                    Err(e) => last = format!("{last} (then watch error: {e})"),
                }
                let published = ready_hostnames(slices.values());
                if published.len() == replicas as usize {
                    return true;
                }
                last = format!("ready hostnames {published:?}");
            }
            false
        };
        match tokio::time::timeout(timeout, watch).await {
            Ok(true) => Ok(()),
            _ => Err(ScenarioError::Timeout {
                what,
                timeout,
                last,
            }),
        }
    }

    /// Applies the documented Service and StatefulSet with `replicas` and waits until
    /// every replica is Ready.
    pub async fn deploy(&self, replicas: i32) -> Result<(), ScenarioError> {
        self.deploy_with(replicas, |_| {}).await
    }

    /// Deploys with `persistentVolumeClaimRetentionPolicy` set (`Retain` or `Delete` each).
    pub async fn deploy_with_retention(
        &self,
        replicas: i32,
        when_scaled: &str,
        when_deleted: &str,
    ) -> Result<(), ScenarioError> {
        self.deploy_with(replicas, |sts| {
            sts.spec.persistent_volume_claim_retention_policy =
                Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_scaled: Some(when_scaled.to_string()),
                    when_deleted: Some(when_deleted.to_string()),
                });
        })
        .await
    }

    /// Like [`TestEnv::deploy`], with a change to the StatefulSet (e.g. a retention policy).
    pub async fn deploy_with(
        &self,
        replicas: i32,
        customize: impl FnOnce(&mut StatefulSet),
    ) -> Result<(), ScenarioError> {
        let mut sts = self.manifests.statefulset.clone();
        sts.spec.replicas = Some(replicas);
        customize(&mut sts);
        let objects = vec![
            Object::Service(self.manifests.service.clone()),
            Object::StatefulSet(sts),
        ];
        self.history.action(Action::Apply {
            objects: vec![
                format!("Service/{}", self.manifests.service.name_any()),
                format!(
                    "StatefulSet/{} (replicas {replicas})",
                    self.statefulset_name()
                ),
            ],
        });
        apply::apply_objects(&self.client, self.namespace.name(), &objects).await?;
        self.wait_ready(replicas).await
    }

    /// Waits for `replicas` Ready replicas and for their DNS identities (EndpointSlice
    /// hostnames) to be published.
    pub async fn wait_ready(&self, replicas: i32) -> Result<(), ScenarioError> {
        let name = self.statefulset_name();
        wait::wait_for_statefulset_ready(
            &self.statefulsets(),
            &name,
            replicas,
            self.timeouts.statefulset_ready,
        )
        .await?;
        self.wait_for_endpoint_hostnames(replicas.max(0) as u32)
            .await
    }

    /// Scales like `kubectl scale` (or by a spec patch), then waits for the new size:
    /// every remaining replica Ready and the removed ordinals gone.
    pub async fn scale(&self, from: i32, to: i32, via: ScaleVia) -> Result<(), ScenarioError> {
        let name = self.statefulset_name();
        self.history.action(Action::Scale {
            statefulset: name.clone(),
            from,
            to,
            via: via.label().to_string(),
        });
        let patch = Patch::Merge(json!({ "spec": { "replicas": to } }));
        let params = PatchParams::default();
        let api = self.statefulsets();
        let result = match via {
            ScaleVia::ScaleSubresource => api.patch_scale(&name, &params, &patch).await.map(drop),
            ScaleVia::SpecPatch => api.patch(&name, &params, &patch).await.map(drop),
        };
        result.map_err(|source| ScenarioError::Api {
            action: "scale",
            object: format!("StatefulSet {}/{name}", self.namespace.name()),
            source,
        })?;
        let removed: Vec<String> = (to.max(0)..from.max(0))
            .map(|i| self.pod_name(i as u32))
            .collect();
        let removed: Vec<&str> = removed.iter().map(String::as_str).collect();
        wait::wait_for_absent(&self.pods(), &removed, self.timeouts.statefulset_ready).await?;
        self.wait_ready(to).await
    }

    /// Makes the history catch up with the cluster before a check.
    pub async fn settle(&self) -> Result<(), ScenarioError> {
        Ok(self
            .observer
            .settle(&self.client, self.timeouts.pod_ready)
            .await?)
    }

    /// Creates the rows table on every ordinal and writes `rows` rows to each.
    pub async fn write_everywhere(&self, replicas: u32, rows: u64) -> Result<(), ScenarioError> {
        for ordinal in 0..replicas {
            self.workload.prepare(ordinal).await?;
            let summary = self.workload.write_rows(ordinal, rows).await?;
            tracing::info!(ordinal, ?summary, "rows written");
        }
        Ok(())
    }

    /// Reads every ordinal's rows back (each read is recorded).
    pub async fn read_everywhere(&self, replicas: u32) -> Result<(), ScenarioError> {
        for ordinal in 0..replicas {
            let read = self.workload.read_rows(ordinal).await?;
            tracing::info!(ordinal, rows = read.rows.len(), "rows read back");
        }
        Ok(())
    }

    pub async fn get_pod(&self, ordinal: u32) -> Result<Pod, ScenarioError> {
        let name = self.pod_name(ordinal);
        self.pods()
            .get(&name)
            .await
            .map_err(|source| ScenarioError::Api {
                action: "get",
                object: format!("pod {}/{name}", self.namespace.name()),
                source,
            })
    }

    /// Deletes a pod (grace `None` = the pod's own, `Some(0)` = force) and waits until the
    /// StatefulSet has recreated it, Ready. Returns the old pod's uid.
    pub async fn delete_pod(
        &self,
        ordinal: u32,
        grace: Option<u32>,
    ) -> Result<String, ScenarioError> {
        let old = self.get_pod(ordinal).await?;
        let uid = old.uid().unwrap_or_default();
        let name = self.pod_name(ordinal);
        self.history.action(Action::DeletePod {
            pod: name.clone(),
            uid: uid.clone(),
            grace_seconds: grace.map(i64::from),
        });
        let params = DeleteParams {
            grace_period_seconds: grace,
            ..DeleteParams::default()
        };
        self.pods()
            .delete(&name, &params)
            .await
            .map_err(|source| ScenarioError::Api {
                action: "delete",
                object: format!("pod {}/{name}", self.namespace.name()),
                source,
            })?;
        wait::wait_for_pod_recreated(&self.pods(), &name, &uid, self.timeouts.pod_ready).await?;
        Ok(uid)
    }

    /// Kills the pod's container; returns the pod's uid and restart count before the crash.
    pub async fn crash_container(&self, ordinal: u32) -> Result<(String, i32), ScenarioError> {
        let chaos = self.chaos().map_err(ScenarioError::Precondition)?;
        let pod = self.get_pod(ordinal).await?;
        let (uid, restarts, container_id, node) = container_facts(&pod);
        let name = pod.name_any();
        self.history.action(Action::CrashContainer {
            pod: name.clone(),
            uid: uid.clone(),
        });
        chaos
            .crash_container(self.namespace.name(), &name, &container_id, &node)
            .await?;
        wait::wait_for_pod_restarted(
            &self.pods(),
            &name,
            &uid,
            restarts + 1,
            self.timeouts.pod_ready,
        )
        .await?;
        Ok((uid, restarts))
    }

    /// Kills the node hosting `ordinal` (like pulling its plug), waits for the Node to go
    /// NotReady, and returns the node's name and the pod's uid and restart count.
    pub async fn kill_node_of(&self, ordinal: u32) -> Result<KilledNode, ScenarioError> {
        let chaos = self.chaos().map_err(ScenarioError::Precondition)?;
        let pod = self.get_pod(ordinal).await?;
        let (uid, restarts, _, node) = container_facts(&pod);
        if node.is_empty() {
            return Err(ScenarioError::Precondition(format!(
                "pod {} has no node to kill",
                pod.name_any()
            )));
        }
        self.history.action(Action::StopNode { node: node.clone() });
        chaos.kill_node(&node).await?;
        wait::wait_for_node_not_ready(&self.nodes(), &node, self.timeouts.node_not_ready).await?;
        Ok(KilledNode {
            node,
            pod: pod.name_any(),
            uid,
            restarts,
        })
    }

    /// Starts a killed node again and waits for it and its pod to be Ready.
    pub async fn restart_node(&self, killed: &KilledNode) -> Result<(), ScenarioError> {
        let chaos = self.chaos().map_err(ScenarioError::Precondition)?;
        self.history.action(Action::StartNode {
            node: killed.node.clone(),
        });
        chaos.start_node(&killed.node).await?;
        wait::wait_for_node_ready(&self.nodes(), &killed.node, self.timeouts.node_ready).await?;
        wait::wait_for_pod_ready(&self.pods(), &killed.pod, self.timeouts.pod_ready).await?;
        Ok(())
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
        if self.is_sim {
            report = report.with_note(
                "run against kube-sim, a test double: this is not a certification of any cluster",
            );
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
        if report.all_passed() {
            self.namespace.delete().await?;
            return Ok(Outcome {
                passed: true,
                summary,
                dump: String::new(),
            });
        }
        let dump = self.namespace.dump(&self.client).await;
        Ok(Outcome {
            passed: false,
            summary,
            dump,
        })
    }
}

/// The taint that lets a dead node's pods be force-deleted and start elsewhere.
pub const OUT_OF_SERVICE_TAINT: &str = "node.kubernetes.io/out-of-service";
const OUT_OF_SERVICE_VALUE: &str = "nodeshutdown";

/// The report line of a test whose steps failed before its checks could run.
pub const STEPS_CHECK: &str = "test steps completed";

/// Hostnames of ready endpoints across slices.
fn ready_hostnames<'a>(
    slices: impl Iterator<Item = &'a EndpointSlice>,
) -> std::collections::BTreeSet<String> {
    slices
        .flat_map(|s| s.endpoints.iter().flatten())
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        .filter_map(|e| e.hostname.clone())
        .collect()
}

/// The result of a finished test.
#[derive(Debug)]
pub struct Outcome {
    pub passed: bool,
    pub summary: String,
    pub dump: String,
}

/// What `kill_node_of` returns, so the test can restart the node and check the pod.
#[derive(Clone, Debug)]
pub struct KilledNode {
    pub node: String,
    pub pod: String,
    pub uid: String,
    pub restarts: i32,
}

/// uid, restart count, container id and node of a pod's first container.
fn container_facts(pod: &Pod) -> (String, i32, String, String) {
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first());
    (
        pod.uid().unwrap_or_default(),
        status.map(|c| c.restart_count).unwrap_or(0),
        status
            .and_then(|c| c.container_id.clone())
            .unwrap_or_default(),
        pod.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
    )
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
