//! What the History records of each kind: the fields of a Pod, PVC, PV, StatefulSet, Node,
//! Service, EndpointSlice and ControllerRevision that the checkers judge, read from the
//! typed object.

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;

use checks::history::{
    ControllerRevisionState, EndpointSliceState, EndpointState, NodeState, PodState, PvState,
    PvcState, ServiceState, StsState,
};

pub fn pod_state(pod: &Pod) -> PodState {
    let spec = pod.spec.as_ref();
    let status = pod.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let restart_count = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .map(|c| c.restart_count)
        .sum();
    let claims = spec
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| {
            v.persistent_volume_claim
                .as_ref()
                .map(|c| (v.name.clone(), c.claim_name.clone()))
        })
        .collect();
    let owner_uid = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone());
    PodState {
        name: pod.name_any(),
        uid: pod.uid().unwrap_or_default(),
        labels: pod.labels().clone(),
        hostname: spec.and_then(|s| s.hostname.clone()),
        subdomain: spec.and_then(|s| s.subdomain.clone()),
        node_name: spec.and_then(|s| s.node_name.clone()),
        phase: status.and_then(|s| s.phase.clone()),
        ready,
        terminating: pod.metadata.deletion_timestamp.is_some(),
        restart_count,
        claims,
        owner_uid,
        pod_ip: status.and_then(|s| s.pod_ip.clone()),
        annotations: pod.annotations().clone(),
    }
}

pub fn pvc_state(pvc: &PersistentVolumeClaim) -> PvcState {
    let spec = pvc.spec.as_ref();
    PvcState {
        name: pvc.name_any(),
        uid: pvc.uid().unwrap_or_default(),
        phase: pvc.status.as_ref().and_then(|s| s.phase.clone()),
        volume_name: spec.and_then(|s| s.volume_name.clone()),
        storage_request: spec
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .map(|q| q.0.clone()),
        access_modes: spec
            .and_then(|s| s.access_modes.clone())
            .unwrap_or_default(),
        storage_class: spec.and_then(|s| s.storage_class_name.clone()),
        terminating: pvc.metadata.deletion_timestamp.is_some(),
    }
}

pub fn pv_state(pv: &PersistentVolume) -> PvState {
    let spec = pv.spec.as_ref();
    let claim = spec.and_then(|s| s.claim_ref.as_ref());
    let node = spec
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .and_then(|r| r.node_selector_terms.first())
        .and_then(|t| t.match_expressions.as_ref())
        .and_then(|e| e.iter().find(|e| e.key == "kubernetes.io/hostname"))
        .and_then(|e| e.values.as_ref())
        .and_then(|v| v.first().cloned());
    PvState {
        name: pv.name_any(),
        uid: pv.uid().unwrap_or_default(),
        phase: pv.status.as_ref().and_then(|s| s.phase.clone()),
        claim: claim.map(|c| {
            format!(
                "{}/{}",
                c.namespace.clone().unwrap_or_default(),
                c.name.clone().unwrap_or_default()
            )
        }),
        claim_uid: claim.and_then(|c| c.uid.clone()),
        reclaim_policy: spec.and_then(|s| s.persistent_volume_reclaim_policy.clone()),
        node,
        terminating: pv.metadata.deletion_timestamp.is_some(),
    }
}

pub fn sts_state(sts: &StatefulSet) -> StsState {
    let spec = &sts.spec;
    let status = sts.status.as_ref();
    StsState {
        name: sts.name_any(),
        uid: sts.uid().unwrap_or_default(),
        generation: sts.metadata.generation,
        observed_generation: status.and_then(|s| s.observed_generation),
        replicas: spec.replicas.unwrap_or(1),
        ready_replicas: status.and_then(|s| s.ready_replicas).unwrap_or(0),
        current_replicas: status.and_then(|s| s.current_replicas).unwrap_or(0),
        pod_management_policy: spec.pod_management_policy.clone(),
        service_name: spec.service_name.clone(),
        current_revision: status.and_then(|s| s.current_revision.clone()),
        update_revision: status.and_then(|s| s.update_revision.clone()),
        updated_replicas: status.and_then(|s| s.updated_replicas).unwrap_or(0),
        update_strategy: spec.update_strategy.as_ref().and_then(|u| u.type_.clone()),
        partition: spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.rolling_update.as_ref())
            .and_then(|r| r.partition),
        ordinals_start: spec.ordinals.as_ref().and_then(|o| o.start),
    }
}

pub fn node_state(node: &Node) -> NodeState {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    NodeState {
        name: node.name_any(),
        ready,
    }
}

pub fn service_state(svc: &Service) -> ServiceState {
    let spec = svc.spec.as_ref();
    ServiceState {
        name: svc.name_any(),
        cluster_ip: spec.and_then(|s| s.cluster_ip.clone()),
        selector: spec.and_then(|s| s.selector.clone()).unwrap_or_default(),
        ports: spec
            .and_then(|s| s.ports.as_ref())
            .into_iter()
            .flatten()
            .map(|p| p.port)
            .collect(),
    }
}

pub fn endpoint_slice_state(slice: &EndpointSlice) -> EndpointSliceState {
    let endpoints = slice
        .endpoints
        .iter()
        .flatten()
        .map(|e| EndpointState {
            hostname: e.hostname.clone(),
            ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false),
            target: e.target_ref.as_ref().and_then(|t| t.name.clone()),
            target_ref_uid: e.target_ref.as_ref().and_then(|t| t.uid.clone()),
            addresses: e.addresses.clone(),
        })
        .collect();
    EndpointSliceState {
        name: slice.name_any(),
        service: slice.labels().get("kubernetes.io/service-name").cloned(),
        endpoints,
    }
}

/// The ControllerRevision's name, uid, number and the StatefulSet its controller
/// ownerReference names, by name and uid (another kind of owner, or none, leaves both
/// empty).
pub fn controller_revision_state(revision: &ControllerRevision) -> ControllerRevisionState {
    let owner = revision
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true) && o.kind == "StatefulSet");
    ControllerRevisionState {
        name: revision.name_any(),
        uid: revision.uid().unwrap_or_default(),
        revision: revision.revision.unwrap_or_default(),
        owner: owner.map(|o| o.name.clone()),
        owner_uid: owner.map(|o| o.uid.clone()),
    }
}
