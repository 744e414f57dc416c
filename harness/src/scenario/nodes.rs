//! Node steps: kill the node of an ordinal (its restart registered the moment the kill
//! succeeds), start it again (reporting how long it was down), and the out-of-service
//! taint, written with a merge patch.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use k8s_openapi::api::core::v1::{Node, Taint};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use checks::history::Action;

use crate::drive::conditions;
use crate::drive::node_restart::{self, NodeRestart};
use crate::drive::wait;

use super::steps::container_facts;
use super::{ScenarioError, TestEnv};

/// The taint that lets a dead node's pods be force-deleted and start elsewhere.
pub const OUT_OF_SERVICE_TAINT: &str = "node.kubernetes.io/out-of-service";
const OUT_OF_SERVICE_VALUE: &str = "nodeshutdown";

/// How long the node lifecycle controller lets pods stay on an unreachable node before
/// evicting them (the default `tolerationSeconds` of `node.kubernetes.io/unreachable`).
pub const UNREACHABLE_TOLERATION: Duration = Duration::from_secs(300);

/// What `kill_node_of` returns, so the test can restart the node and check the pod.
/// Dropping the last clone of an unrestarted `KilledNode` starts the node at once.
#[derive(Clone, Debug)]
pub struct KilledNode {
    pub node: String,
    pub pod: String,
    pub uid: String,
    pub restarts: i32,
    restart: Arc<tokio::sync::Mutex<NodeRestart>>,
}

impl TestEnv {
    /// Kills the node hosting `ordinal` (the target's abrupt node stop: on kind a
    /// process-level crash of the node container, not a power cut), registers its restart
    /// at once, waits for the Node to go NotReady, and returns the node's name and the
    /// pod's uid and restart count.
    pub async fn kill_node_of(&self, ordinal: u32) -> Result<KilledNode, ScenarioError> {
        let chaos = self.chaos().map_err(ScenarioError::Precondition)?;
        self.gate_on_root_logins(&format!("kill the node of {}", self.pod_name(ordinal)))
            .await?;
        let pod = self.get_pod(ordinal).await?;
        let (uid, restarts, _, node) = container_facts(&pod);
        if node.is_empty() {
            return Err(ScenarioError::Precondition(format!(
                "pod {} has no node to kill",
                pod.name_any()
            )));
        }
        self.history.action(Action::StopNode { node: node.clone() });
        self.note(format!("node kill of {node}: {}", chaos.kill_fidelity()));
        let restart = node_restart::kill_node(chaos, &node).await?;
        let killed = KilledNode {
            node: node.clone(),
            pod: pod.name_any(),
            uid,
            restarts,
            restart: Arc::new(tokio::sync::Mutex::new(restart)),
        };
        wait::wait_for(
            &self.nodes(),
            &node,
            conditions::node_not_ready(),
            self.timeouts.node_not_ready,
        )
        .await?;
        Ok(killed)
    }

    /// Starts a killed node again and waits for it and its pod to be Ready; the report
    /// says how long the node was down (kill to Ready again), against the 300 s after which
    /// the pods of an unreachable node are evicted.
    pub async fn restart_node(&self, killed: &KilledNode) -> Result<(), ScenarioError> {
        self.history.action(Action::StartNode {
            node: killed.node.clone(),
        });
        let mut restart = killed.restart.lock().await;
        restart.start().await?;
        wait::wait_for(
            &self.nodes(),
            &killed.node,
            conditions::node_ready(),
            self.timeouts.node_ready,
        )
        .await?;
        self.note(downtime_note(&killed.node, restart.killed_at().elapsed()));
        wait::wait_for(
            &self.pods(),
            &killed.pod,
            conditions::pod_ready(),
            self.timeouts.pod_ready,
        )
        .await?;
        Ok(())
    }

    /// Adds (`present`) or removes the `node.kubernetes.io/out-of-service` NoExecute taint
    /// on `node`, as an operator does once a dead node is known to be down for good: its
    /// pods are then force-deleted and may start elsewhere (GA in 1.28). A merge patch of
    /// `spec.taints` (needs `patch` on nodes), see [`patch_out_of_service`].
    pub async fn set_out_of_service(&self, node: &str, present: bool) -> Result<(), ScenarioError> {
        self.history.action(Action::TaintNode {
            node: node.to_string(),
            taint: format!("{OUT_OF_SERVICE_TAINT}={OUT_OF_SERVICE_VALUE}:NoExecute"),
            added: present,
        });
        patch_out_of_service(&self.nodes(), node, present)
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
}

/// "node w2 was down 71 s (kill to Ready again), well under ...".
pub fn downtime_note(node: &str, downtime: Duration) -> String {
    let secs = downtime.as_secs_f64();
    let limit = UNREACHABLE_TOLERATION.as_secs();
    if downtime < UNREACHABLE_TOLERATION {
        format!(
            "node {node} was down {secs:.0} s (kill to Ready again), under the {limit} s \
             unreachable toleration after which its pods would be evicted"
        )
    } else {
        format!(
            "node {node} was down {secs:.0} s (kill to Ready again), OVER the {limit} s \
             unreachable toleration: its pods may have been evicted"
        )
    }
}

/// The node's taints with the out-of-service taint added or removed, or `None` when that
/// changes nothing.
fn taints_with(node: &Node, present: bool) -> Option<Vec<Taint>> {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let had = current.iter().any(|t| t.key == OUT_OF_SERVICE_TAINT);
    if had == present {
        return None;
    }
    let mut taints: Vec<Taint> = current
        .into_iter()
        .filter(|t| t.key != OUT_OF_SERVICE_TAINT)
        .collect();
    if present {
        taints.push(Taint {
            key: OUT_OF_SERVICE_TAINT.into(),
            value: Some(OUT_OF_SERVICE_VALUE.into()),
            effect: "NoExecute".into(),
            time_added: None,
        });
    }
    Some(taints)
}

/// Adds or removes the out-of-service taint with a JSON merge patch of `spec.taints`
/// carrying the node's `metadata.resourceVersion` as a precondition: the API server
/// answers 409 when the node changed since it was read (the node lifecycle controller
/// writes the same list), and the read-patch is retried. Needs `get` and `patch` on nodes,
/// never `update`.
pub async fn patch_out_of_service(
    nodes: &Api<Node>,
    node: &str,
    present: bool,
) -> Result<(), kube::Error> {
    let attempt = || async {
        let current = nodes.get(node).await?;
        let Some(taints) = taints_with(&current, present) else {
            return Ok(());
        };
        let patch = json!({
            "metadata": { "resourceVersion": current.resource_version() },
            "spec": { "taints": if taints.is_empty() { serde_json::Value::Null } else { json!(taints) } },
        });
        nodes
            .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(drop)
    };
    attempt
        .retry(
            ExponentialBuilder::default()
                .with_jitter()
                .with_max_times(5),
        )
        .when(|e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 409))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(taints: &str) -> Node {
        serde_yaml::from_str(&format!(
            "metadata: {{name: w2}}\nspec: {{taints: {taints}}}"
        ))
        .unwrap()
    }

    #[test]
    fn taints_keep_the_others_and_change_only_when_needed() {
        let unreachable = "[{key: node.kubernetes.io/unreachable, effect: NoExecute}]";
        let added = taints_with(&node(unreachable), true).unwrap();
        assert_eq!(added.len(), 2);
        assert_eq!(added[1].key, OUT_OF_SERVICE_TAINT);
        assert!(taints_with(&node(unreachable), false).is_none());
        let both = "[{key: node.kubernetes.io/unreachable, effect: NoExecute}, {key: node.kubernetes.io/out-of-service, value: nodeshutdown, effect: NoExecute}]";
        assert!(taints_with(&node(both), true).is_none());
        let removed = taints_with(&node(both), false).unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!(removed[0].key, "node.kubernetes.io/unreachable");
    }

    #[test]
    fn downtime_is_judged_against_the_toleration() {
        let note = downtime_note("w2", Duration::from_secs(71));
        assert!(
            note.contains("down 71 s") && note.contains("under the 300 s"),
            "{note}"
        );
        let note = downtime_note("w2", Duration::from_secs(301));
        assert!(note.contains("OVER the 300 s"), "{note}");
    }
}
