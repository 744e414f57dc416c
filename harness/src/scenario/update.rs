//! Update steps: change the pod template, set the update strategy (RollingUpdate with a
//! partition, or OnDelete), and the watch-driven waits that end a rollout. Deploying with
//! `podManagementPolicy: Parallel` or `spec.ordinals.start` goes through
//! [`TestEnv::deploy_with`]: see [`parallel`] and [`start_ordinal`].

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetOrdinals};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::watcher;
use serde_json::json;

use checks::history::{Action, TemplateAnnotation};

use crate::drive::conditions;
use crate::drive::wait;

use super::{ScenarioError, TestEnv};

/// The pod-template annotation the harness changes to start a rollout.
pub const ROLLOUT_ANNOTATION: &str = "conformance.sts/rollout";

/// `spec.updateStrategy` as a test sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateStrategy {
    RollingUpdate { partition: i32 },
    OnDelete,
}

/// Makes a StatefulSet manage its pods in parallel (for [`TestEnv::deploy_with`]).
pub fn parallel(sts: &mut StatefulSet) {
    sts.spec.pod_management_policy = Some("Parallel".into());
}

/// Makes a StatefulSet number its pods from `start` (for [`TestEnv::deploy_with`]).
pub fn start_ordinal(start: i32) -> impl FnOnce(&mut StatefulSet) {
    move |sts| sts.spec.ordinals = Some(StatefulSetOrdinals { start: Some(start) })
}

impl TestEnv {
    /// Changes the pod template (the [`ROLLOUT_ANNOTATION`] annotation on
    /// `spec.template.metadata`, a merge patch on top of the documented manifest): a new
    /// revision for the controller to roll out.
    pub async fn change_template(&self, value: &str) -> Result<(), ScenarioError> {
        let name = self.statefulset_name();
        self.history.action(Action::ChangeTemplate {
            statefulset: name.clone(),
            change: format!("annotation {ROLLOUT_ANNOTATION}={value}"),
            annotation: Some(TemplateAnnotation {
                key: ROLLOUT_ANNOTATION.into(),
                value: value.into(),
            }),
        });
        let patch = json!({
            "spec": {"template": {"metadata": {"annotations": {ROLLOUT_ANNOTATION: value}}}}
        });
        self.patch_statefulset("change the pod template of", patch)
            .await
    }

    /// Sets `spec.updateStrategy`.
    pub async fn set_update_strategy(&self, strategy: UpdateStrategy) -> Result<(), ScenarioError> {
        let name = self.statefulset_name();
        let (kind, partition, patch) = match strategy {
            UpdateStrategy::RollingUpdate { partition } => (
                "RollingUpdate",
                Some(partition),
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}),
            ),
            // The API server rejects rollingUpdate with OnDelete: the merge patch clears it.
            UpdateStrategy::OnDelete => (
                "OnDelete",
                None,
                json!({"type": "OnDelete", "rollingUpdate": null}),
            ),
        };
        self.history.action(Action::SetUpdateStrategy {
            statefulset: name,
            strategy: kind.into(),
            partition,
        });
        self.patch_statefulset(
            "set the update strategy of",
            json!({"spec": {"updateStrategy": patch}}),
        )
        .await
    }

    async fn patch_statefulset(
        &self,
        action: &'static str,
        patch: serde_json::Value,
    ) -> Result<(), ScenarioError> {
        let name = self.statefulset_name();
        self.statefulsets()
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .map_err(|source| ScenarioError::Api {
                action,
                object: format!("StatefulSet {}/{name}", self.namespace.name()),
                source,
            })?;
        Ok(())
    }

    /// Watches the pods of `ordinals` for `dwell` (with OnDelete, pods nobody deleted must
    /// stay as they are, however long one waits). Ends early once one of them is replaced,
    /// begins deletion or changes its revision label, returning what changed; `None` when
    /// the dwell passed with nothing changed. Either way the History holds what the
    /// observer saw, for the checks to judge: this only bounds how long they watch.
    pub async fn watch_untouched(
        &self,
        ordinals: &[u32],
        dwell: Duration,
    ) -> Result<Option<String>, ScenarioError> {
        let mut expected = BTreeMap::new();
        for ordinal in ordinals {
            let pod = self.get_pod(*ordinal).await?;
            expected.insert(pod.name_any(), (pod.uid(), revision_of(&pod)));
        }
        let what = format!("a change to the untouched pods {:?}", expected.keys());
        let object = format!("Pod objects in namespace {}", self.namespace.name());
        let mut changed = None;
        let watched = wait::wait_until(
            &self.pods(),
            watcher::Config::default(),
            &what,
            &object,
            dwell,
            |pods| match untouched_change(&expected, pods) {
                Some(change) => {
                    changed = Some(change);
                    wait::Progress::Done
                }
                None => wait::Progress::Pending("untouched".into()),
            },
        )
        .await;
        match watched {
            Ok(()) => Ok(changed),
            Err(e) if e.is_timeout() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until the rollout reached its end for `partition`: the controller observed
    /// the latest spec, every replica is Ready, `replicas - partition` pods are updated
    /// and, with no partition left, `currentRevision == updateRevision`.
    pub async fn wait_rolled_out(
        &self,
        replicas: i32,
        partition: i32,
    ) -> Result<(), ScenarioError> {
        wait::wait_for(
            &self.statefulsets(),
            &self.statefulset_name(),
            conditions::statefulset_rolled_out(replicas, partition),
            self.timeouts.statefulset_ready,
        )
        .await?;
        Ok(())
    }

    /// Waits until the controller observed the latest spec and reports an update
    /// revision it has not rolled out (with OnDelete: nothing replaced yet, by design).
    pub async fn wait_update_pending(&self) -> Result<(), ScenarioError> {
        wait::wait_for(
            &self.statefulsets(),
            &self.statefulset_name(),
            conditions::statefulset_update_pending(),
            self.timeouts.statefulset_ready,
        )
        .await?;
        Ok(())
    }

    /// `spec.ordinals.start` of the deployed StatefulSet (0 when unset).
    pub async fn ordinal_start(&self) -> Result<u32, ScenarioError> {
        let sts = self.deployed_statefulset().await?;
        Ok(start_of(&sts))
    }

    /// The StatefulSet as the API server has it now.
    pub async fn deployed_statefulset(&self) -> Result<StatefulSet, ScenarioError> {
        let name = self.statefulset_name();
        self.statefulsets()
            .get(&name)
            .await
            .map_err(|source| ScenarioError::Api {
                action: "get",
                object: format!("StatefulSet {}/{name}", self.namespace.name()),
                source,
            })
    }
}

/// `spec.ordinals.start` of a StatefulSet (0 when unset).
pub(super) fn start_of(sts: &StatefulSet) -> u32 {
    let start = sts
        .spec
        .ordinals
        .as_ref()
        .and_then(|o| o.start)
        .unwrap_or(0);
    u32::try_from(start).unwrap_or(0)
}

fn revision_of(pod: &Pod) -> Option<String> {
    pod.labels().get(checks::history::REVISION_LABEL).cloned()
}

/// What changed among the `expected` pods (name -> uid and revision label), if anything.
fn untouched_change(
    expected: &BTreeMap<String, (Option<String>, Option<String>)>,
    pods: &[std::sync::Arc<Pod>],
) -> Option<String> {
    expected.iter().find_map(|(name, (uid, revision))| {
        let Some(pod) = pods.iter().find(|p| &p.name_any() == name) else {
            return Some(format!("pod {name} is gone"));
        };
        if &pod.uid() != uid {
            return Some(format!("pod {name} was replaced (uid {:?})", pod.uid()));
        }
        if pod.metadata.deletion_timestamp.is_some() {
            return Some(format!("pod {name} began deletion"));
        }
        let now = revision_of(pod);
        (&now != revision).then(|| format!("pod {name} changed its revision to {now:?}"))
    })
}
