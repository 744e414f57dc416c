//! The steps a test drives, each recorded in the History before it acts: deploy, scale,
//! write and read rows, delete pods, crash containers, and the waits that end each step
//! (node steps are in `nodes`).

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;

use checks::history::Action;

use crate::cluster::apply;
use crate::cluster::manifests::Object;
use crate::drive::conditions;
use crate::drive::wait::{self, Progress};

use super::{ScenarioError, TestEnv};

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

impl TestEnv {
    /// Resolves, with the evidence, once the history since `start` shows a deleted pod's
    /// container still acknowledging writes past the stop bound (a zombie); re-judged at
    /// each of `writer`'s outcomes, so it never resolves while the writer is idle.
    pub async fn zombie_evidence(
        &self,
        start: u64,
        writer: &mut crate::drive::workload::Writer,
    ) -> String {
        loop {
            let verdict =
                checks::deleted_pods_stop_serving(&self.entries(), (start, u64::MAX)).verdict;
            if verdict.is_fail() {
                return verdict.evidence().join("; ");
            }
            writer.next_outcome().await;
        }
    }

    /// Waits until the pod of `ordinal` was recreated (a uid other than `old_uid`) and is
    /// Ready; returns it.
    pub async fn wait_recreated(&self, ordinal: u32, old_uid: &str) -> Result<Pod, ScenarioError> {
        let name = self.pod_name(ordinal);
        wait::wait_for(
            &self.pods(),
            &name,
            conditions::pod_recreated(old_uid),
            self.timeouts.pod_ready,
        )
        .await?
        .ok_or_else(|| ScenarioError::Precondition(format!("pod {name} vanished once Ready")))
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
        let object = format!(
            "EndpointSlice objects in namespace {}",
            self.namespace.name()
        );
        let config = watcher::Config::default().labels(&selector);
        wait::wait_until(
            &api,
            config,
            &what,
            &object,
            self.timeouts.pod_ready,
            |slices| {
                let published = ready_hostnames(slices.iter().map(|s| s.as_ref()));
                if published.len() == replicas as usize {
                    Progress::Done
                } else {
                    Progress::Pending(format!("ready hostnames {published:?}"))
                }
            },
        )
        .await?;
        Ok(())
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
        wait::wait_for(
            &self.statefulsets(),
            &name,
            conditions::statefulset_ready(replicas),
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
        if to < from {
            self.gate_on_root_logins(&format!("scale {name} {from}->{to}"))
                .await?;
        }
        self.request_scale(from, to, via).await?;
        let first = self.ordinal_start().await?;
        let removed: Vec<String> = (to.max(0)..from.max(0))
            .map(|i| self.pod_name(first + i as u32))
            .collect();
        let removed: Vec<&str> = removed.iter().map(String::as_str).collect();
        wait::wait_for_absent(&self.pods(), &removed, self.timeouts.statefulset_ready).await?;
        self.wait_ready(to).await
    }

    /// Records and requests a scale of the StatefulSet, without waiting for it.
    pub async fn request_scale(
        &self,
        from: i32,
        to: i32,
        via: ScaleVia,
    ) -> Result<(), ScenarioError> {
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
        Ok(())
    }

    /// Waits until the pod of `ordinal` is observed not Ready.
    pub async fn wait_not_ready(&self, ordinal: u32) -> Result<(), ScenarioError> {
        wait::wait_for(
            &self.pods(),
            &self.pod_name(ordinal),
            conditions::pod_not_ready(),
            self.timeouts.pod_ready,
        )
        .await?;
        Ok(())
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
        let name = self.pod_name(ordinal);
        self.gate_on_root_logins(&format!("delete pod {name}"))
            .await?;
        let old = self.get_pod(ordinal).await?;
        let uid = old.uid().unwrap_or_default();
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
        wait::wait_for(
            &self.pods(),
            &name,
            conditions::pod_recreated(&uid),
            self.timeouts.pod_ready,
        )
        .await?;
        Ok(uid)
    }

    /// Kills the pod's container; returns the pod's uid and restart count before the crash.
    pub async fn crash_container(&self, ordinal: u32) -> Result<(String, i32), ScenarioError> {
        let chaos = self.chaos().map_err(ScenarioError::Precondition)?;
        self.gate_on_root_logins(&format!(
            "crash the container of {}",
            self.pod_name(ordinal)
        ))
        .await?;
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
        wait::wait_for(
            &self.pods(),
            &name,
            conditions::pod_restarted(&uid, restarts + 1),
            self.timeouts.pod_ready,
        )
        .await?;
        Ok((uid, restarts))
    }
}

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

/// uid, restart count, container id and node of a pod's first container.
pub(super) fn container_facts(pod: &Pod) -> (String, i32, String, String) {
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
