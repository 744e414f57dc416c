//! A node's registration and heartbeats, as the kubelet does them: the Node object with its
//! labels, capacity, addresses and system info; its status (conditions with heartbeat
//! times) posted every `status_interval`; its Lease in `kube-node-lease` renewed every
//! `lease_interval`. The node-lifecycle controller reads both: when they stop, it marks the
//! node Unknown and taints it.

use std::net::Ipv4Addr;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::podstatus::now_time;

/// Where the kubelet keeps node Leases.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// The kubelet's default `nodeLeaseDurationSeconds`.
pub const LEASE_DURATION_SECONDS: i32 = 40;
/// The port the kubelet's endpoint would listen on (nothing listens: the node is hollow).
pub const KUBELET_PORT: i32 = 10250;

#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    #[error("failed to register node {node}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to post the status of node {node}")]
    Status {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to renew the lease of node {node}")]
    Lease {
        node: String,
        #[source]
        source: kube::Error,
    },
}

/// What the node reports about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    pub ip: Ipv4Addr,
    /// The API server's gitVersion (the kubelet reports its own, which matches the server's).
    pub kubelet_version: String,
    /// Changes at every start of the node, like a machine's boot id.
    pub boot_id: String,
    pub machine_id: String,
    pub kernel_version: String,
    pub cpu: String,
    pub memory: String,
    pub pods: String,
    pub ephemeral_storage: String,
}

/// The architecture as Kubernetes names it (`GOARCH`).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The Node the kubelet registers (status included: nodes may be created with status).
pub fn node_object(facts: &NodeFacts, now: &Time) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": facts.name,
            "labels": {
                "kubernetes.io/hostname": facts.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": go_arch(),
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": go_arch(),
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {},
        "status": node_status(facts, None, now),
    })
}

/// The node's status; conditions keep their `lastTransitionTime` from `current` while their
/// status does not change.
pub fn node_status(facts: &NodeFacts, current: Option<&[NodeCondition]>, now: &Time) -> Value {
    let conditions: Vec<Value> = [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
    ]
    .iter()
    .map(|(type_, status, reason, message)| {
        let transition = current
            .unwrap_or(&[])
            .iter()
            .find(|c| c.type_ == *type_ && c.status == *status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        json!({
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": transition,
        })
    })
    .collect();
    let resources = json!({
        "cpu": facts.cpu,
        "memory": facts.memory,
        "pods": facts.pods,
        "ephemeral-storage": facts.ephemeral_storage,
    });
    json!({
        "capacity": resources,
        "allocatable": resources,
        "conditions": conditions,
        "addresses": [
            {"type": "InternalIP", "address": facts.ip.to_string()},
            {"type": "Hostname", "address": facts.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
        "nodeInfo": {
            "machineID": facts.machine_id,
            "systemUUID": facts.machine_id,
            "bootID": facts.boot_id,
            "kernelVersion": facts.kernel_version,
            "osImage": "hollow node (kube-upstream): pods are mariadbd processes",
            "containerRuntimeVersion": "hollow://0.1.0",
            "kubeletVersion": facts.kubelet_version,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": go_arch(),
        },
    })
}

/// The node's Lease, owned by its Node (so it goes with the Node, as the kubelet sets it).
pub fn lease_object(node: &str, node_uid: &str, renew: &MicroTime) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node,
            "namespace": LEASE_NAMESPACE,
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Node",
                "name": node,
                "uid": node_uid,
            }],
        },
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": LEASE_DURATION_SECONDS,
            "renewTime": renew,
        },
    })
}

fn now_micro() -> MicroTime {
    let micros = chrono::Utc::now().timestamp_micros();
    MicroTime(k8s_openapi::jiff::Timestamp::from_microsecond(micros).unwrap_or_default())
}

/// Creates the Node, or takes over an existing one (labels and status). Returns its uid.
pub async fn register(client: &kube::Client, facts: &NodeFacts) -> Result<String, HeartbeatError> {
    let err = |source| HeartbeatError::Register {
        node: facts.name.clone(),
        source,
    };
    let api: Api<Node> = Api::all(client.clone());
    let object = node_object(facts, &now_time());
    let node: Node =
        serde_json::from_value(object.clone()).map_err(|e| err(kube::Error::SerdeError(e)))?;
    let created = match api.create(&PostParams::default(), &node).await {
        Ok(n) => n,
        Err(kube::Error::Api(ae)) if ae.code == 409 => {
            let metadata = json!({"metadata": object["metadata"]});
            api.patch(
                &facts.name,
                &PatchParams::default(),
                &Patch::Merge(&metadata),
            )
            .await
            .map_err(err)?
        }
        Err(e) => return Err(err(e)),
    };
    // Create may drop the status on some servers; post it explicitly.
    post_status(client, facts).await.map_err(|e| match e {
        HeartbeatError::Status { source, .. } => err(source),
        other => other,
    })?;
    Ok(created.metadata.uid.unwrap_or_default())
}

/// Posts the node's status (a heartbeat).
pub async fn post_status(client: &kube::Client, facts: &NodeFacts) -> Result<(), HeartbeatError> {
    let err = |source| HeartbeatError::Status {
        node: facts.name.clone(),
        source,
    };
    let api: Api<Node> = Api::all(client.clone());
    let current = api.get_status(&facts.name).await.map_err(err)?;
    let conditions = current.status.and_then(|s| s.conditions);
    let status = node_status(facts, conditions.as_deref(), &now_time());
    api.patch_status(
        &facts.name,
        &PatchParams::default(),
        &Patch::Strategic(json!({ "status": status })),
    )
    .await
    .map_err(err)?;
    Ok(())
}

/// Renews the node's Lease, creating it when missing.
pub async fn renew_lease(
    client: &kube::Client,
    node: &str,
    node_uid: &str,
) -> Result<(), HeartbeatError> {
    let err = |source| HeartbeatError::Lease {
        node: node.to_string(),
        source,
    };
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let object = lease_object(node, node_uid, &now_micro());
    let patch = json!({"spec": object["spec"]});
    match api
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(ae)) if ae.code == 404 => {
            let lease: Lease =
                serde_json::from_value(object).map_err(|e| err(kube::Error::SerdeError(e)))?;
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(ae)) if ae.code == 409 => Ok(()),
                Err(e) => Err(err(e)),
            }
        }
        Err(e) => Err(err(e)),
    }
}

/// The running kernel's release (`uname -r`), as the kubelet reports it.
pub fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> NodeFacts {
        NodeFacts {
            name: "upstream-worker".into(),
            ip: Ipv4Addr::new(10, 77, 0, 2),
            kubelet_version: "v1.37.2".into(),
            boot_id: "b1".into(),
            machine_id: "m1".into(),
            kernel_version: "6.1".into(),
            cpu: "4".into(),
            memory: "8Gi".into(),
            pods: "110".into(),
            ephemeral_storage: "100Gi".into(),
        }
    }

    fn t(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + secs).expect("in range"))
    }

    #[test]
    fn the_registered_node_is_a_valid_ready_linux_node() {
        let node: Node = serde_json::from_value(node_object(&facts(), &t(0))).expect("a Node");
        let labels = node.metadata.labels.expect("labels");
        assert_eq!(labels["kubernetes.io/hostname"], "upstream-worker");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["kubernetes.io/arch"], go_arch());
        let status = node.status.expect("status");
        let info = status.node_info.expect("nodeInfo");
        assert_eq!(info.kubelet_version, "v1.37.2");
        assert_eq!(info.boot_id, "b1");
        let addresses = status.addresses.expect("addresses");
        assert_eq!(addresses[0].type_, "InternalIP");
        assert_eq!(addresses[0].address, "10.77.0.2");
        assert_eq!(addresses[1].type_, "Hostname");
        let capacity = status.capacity.expect("capacity");
        for key in ["cpu", "memory", "pods", "ephemeral-storage"] {
            assert!(capacity.contains_key(key), "capacity lacks {key}");
        }
        let conditions = status.conditions.expect("conditions");
        let ready = conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(ready.status, "True");
        assert_eq!(ready.last_heartbeat_time, Some(t(0)));
        for pressure in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
            let c = conditions
                .iter()
                .find(|c| c.type_ == pressure)
                .expect(pressure);
            assert_eq!(c.status, "False", "{pressure}");
        }
        let port = status
            .daemon_endpoints
            .and_then(|d| d.kubelet_endpoint)
            .map(|e| e.port);
        assert_eq!(port, Some(KUBELET_PORT));
    }

    #[test]
    fn heartbeats_move_only_the_heartbeat_time_until_the_status_flips() {
        let first: Node = serde_json::from_value(node_object(&facts(), &t(0))).expect("node");
        let conditions = first.status.and_then(|s| s.conditions).expect("conditions");
        let later = node_status(&facts(), Some(&conditions), &t(10));
        let ready = |v: &Value| {
            v["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready").cloned())
                .expect("Ready")
        };
        let r = ready(&later);
        assert_eq!(r["lastHeartbeatTime"], json!(t(10)));
        assert_eq!(r["lastTransitionTime"], json!(t(0)));
        // The node-lifecycle controller set Unknown while the node was stopped.
        let mut unknown = conditions.clone();
        for c in &mut unknown {
            if c.type_ == "Ready" {
                c.status = "Unknown".into();
            }
        }
        let back = node_status(&facts(), Some(&unknown), &t(20));
        assert_eq!(ready(&back)["lastTransitionTime"], json!(t(20)));
    }

    #[test]
    fn the_lease_is_owned_by_its_node() {
        let renew =
            MicroTime(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).expect("ts"));
        let lease: Lease =
            serde_json::from_value(lease_object("w1", "uid-1", &renew)).expect("a Lease");
        assert_eq!(lease.metadata.namespace.as_deref(), Some(LEASE_NAMESPACE));
        let owner = &lease.metadata.owner_references.expect("owner")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("Node", "w1", "uid-1")
        );
        let spec = lease.spec.expect("spec");
        assert_eq!(spec.holder_identity.as_deref(), Some("w1"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert_eq!(spec.renew_time, Some(renew));
    }
}
