//! Storage: PVC/PV protection, the retroactive default StorageClass, a dynamic provisioner
//! that behaves like kind's `rancher.io/local-path`, binding, and reclaim.
//!
//! local-path is `WaitForFirstConsumer`: a claim stays Pending until the scheduler picks a
//! node for a pod that uses it (annotation `volume.kubernetes.io/selected-node`); then a PV
//! `pvc-<claim uid>` is created with a directory on that node and nodeAffinity pinning it
//! there. With reclaimPolicy Delete, the PV and its directory go once the claim is gone;
//! with Retain the PV stays Released with its directory, turns Available once someone clears
//! its `claimRef`, and then binds to a claim that names it in `spec.volumeName` (the PV
//! controller's pre-bound path), as a restore from a retained volume needs.
//! The sim's `network` class provisions the same way but without nodeAffinity: every node
//! reaches the directory, as every node reaches a cloud disk or an NFS export.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use serde_json::{Value, json};

use super::{
    Action, EventRecord, HOSTNAME_LABEL, LOCAL_PATH_PROVISIONER, PV_PROTECTION, PVC_PROTECTION,
    SELECTED_NODE, SIM_PROVISIONERS, Snapshot, defaults, obj,
};
use crate::config::{Fault, Faults};
use crate::store::ResourceKind;

const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";

/// All storage decisions for one round. `pv_root` is where PV directories live.
pub fn reconcile(snap: &Snapshot, pv_root: &Path, faults: &Faults) -> Vec<Action> {
    let mut actions = Vec::new();
    actions.extend(pvc_protection(snap));
    actions.extend(default_class(snap));
    actions.extend(provision(snap, pv_root));
    actions.extend(bind_named(snap));
    actions.extend(reclaim(snap, pv_root, faults));
    if faults.has(Fault::PvReplacedUnderClaim) {
        actions.extend(replace_unused_bound_pvs(snap));
    }
    actions
}

/// Marks a PV the `pv:replaced-under-claim` fault already replaced.
const REPLACED: &str = "kube-sim/replaced-under-claim";

/// `pv:replaced-under-claim`: a Bound PV whose claim no pod uses (between a pod's
/// deletion and its replacement) is removed and created again under the same name,
/// bound to the same claim, on the same directory: a new PV object (uid) under a claim
/// that looks untouched, as a storage backend that re-imports its volumes. Once per PV.
fn replace_unused_bound_pvs(snap: &Snapshot) -> Vec<Action> {
    let mut actions = Vec::new();
    for pv in &snap.pvs {
        let replaced = obj::string_map(pv, "/metadata/annotations").contains_key(REPLACED);
        if replaced || obj::is_terminating(pv) || obj::pod_phase(pv) != "Bound" {
            continue;
        }
        let (Some(ns), Some(name)) = (
            obj::str_at(pv, "/spec/claimRef/namespace"),
            obj::str_at(pv, "/spec/claimRef/name"),
        ) else {
            continue;
        };
        let Some(claim) = snap
            .pvcs
            .iter()
            .find(|c| obj::namespace(c) == ns && obj::name(c) == name && !obj::is_terminating(c))
        else {
            continue;
        };
        if claim_in_use(snap, claim) {
            continue;
        }
        let mut again = pv.clone();
        for field in ["uid", "resourceVersion", "creationTimestamp"] {
            if let Some(meta) = again.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove(field);
            }
        }
        obj::set_at(
            &mut again,
            &format!("/metadata/annotations/{}", REPLACED.replace('/', "~1")),
            json!("true"),
        );
        tracing::warn!(pv = %obj::name(pv), claim = %name, "fault pv:replaced-under-claim: replacing the PV object under its claim");
        actions.push(Action::Remove {
            kind: ResourceKind::PersistentVolume,
            namespace: None,
            name: obj::name(pv).to_string(),
            uid: obj::uid(pv).to_string(),
        });
        actions.push(Action::create(ResourceKind::PersistentVolume, again));
    }
    actions
}

/// Binds claims that name an Available PV in `spec.volumeName` (the PV controller's
/// pre-bound path; no provisioning, no waiting for a consumer): the PV's `claimRef` gets
/// the claim's uid and both turn Bound. A PV Released to another claim, or of another
/// StorageClass, is left alone and the claim stays Pending, as upstream does.
pub fn bind_named(snap: &Snapshot) -> Vec<Action> {
    let mut actions = Vec::new();
    for claim in &snap.pvcs {
        let Some(pv_name) = obj::str_at(claim, "/spec/volumeName").filter(|v| !v.is_empty()) else {
            continue;
        };
        if obj::is_terminating(claim) || obj::pod_phase(claim) == "Bound" {
            continue;
        }
        let Some(pv) = snap.pv(pv_name).filter(|pv| !obj::is_terminating(pv)) else {
            continue;
        };
        let same_class = obj::str_at(pv, "/spec/storageClassName").unwrap_or_default()
            == obj::str_at(claim, "/spec/storageClassName").unwrap_or_default();
        let free = match pv.pointer("/spec/claimRef").filter(|r| !r.is_null()) {
            None => obj::pod_phase(pv) != "Released",
            Some(r) => {
                obj::str_at(r, "/namespace") == Some(obj::namespace(claim))
                    && obj::str_at(r, "/name") == Some(obj::name(claim))
                    && obj::str_at(r, "/uid").is_none_or(|uid| uid == obj::uid(claim))
            }
        };
        if !same_class || !free {
            continue;
        }
        let mut bound_pv = pv.clone();
        obj::set_at(&mut bound_pv, "/spec/claimRef", claim_ref(claim));
        obj::set_at(&mut bound_pv, "/status/phase", json!("Bound"));
        actions.push(Action::replace(ResourceKind::PersistentVolume, bound_pv));
        let mut bound = claim.clone();
        obj::set_at(
            &mut bound,
            "/metadata/annotations/pv.kubernetes.io~1bind-completed",
            json!("yes"),
        );
        obj::set_at(
            &mut bound,
            "/status",
            json!({"phase": "Bound",
                "accessModes": pv.pointer("/spec/accessModes").cloned().unwrap_or_else(|| json!(["ReadWriteOnce"])),
                "capacity": pv.pointer("/spec/capacity").cloned().unwrap_or_else(|| json!({"storage": request(claim)}))}),
        );
        actions.push(Action::replace(ResourceKind::PersistentVolumeClaim, bound));
    }
    actions
}

/// A PV's `spec.claimRef` to `claim`.
fn claim_ref(claim: &Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "name": obj::name(claim),
        "namespace": obj::namespace(claim),
        "uid": obj::uid(claim),
        "resourceVersion": obj::str_at(claim, "/metadata/resourceVersion").unwrap_or_default(),
    })
}

/// Adds `kubernetes.io/pvc-protection` to claims (as admission does) and removes it from
/// deleted claims once no pod uses them.
pub fn pvc_protection(snap: &Snapshot) -> Vec<Action> {
    let mut actions = Vec::new();
    for claim in &snap.pvcs {
        let has = obj::has_finalizer(claim, PVC_PROTECTION);
        if !obj::is_terminating(claim) && !has {
            actions.push(Action::replace(
                ResourceKind::PersistentVolumeClaim,
                with_finalizer(claim, PVC_PROTECTION, true),
            ));
        } else if obj::is_terminating(claim) && has && !claim_in_use(snap, claim) {
            actions.push(Action::replace(
                ResourceKind::PersistentVolumeClaim,
                with_finalizer(claim, PVC_PROTECTION, false),
            ));
        }
    }
    actions
}

/// A claim is in use while a pod that refers to it exists and has not finished.
fn claim_in_use(snap: &Snapshot, claim: &Value) -> bool {
    snap.pods_in(obj::namespace(claim)).any(|pod| {
        obj::pod_uses_claim(pod, obj::name(claim))
            && !matches!(obj::pod_phase(pod), "Succeeded" | "Failed")
    })
}

fn with_finalizer(o: &Value, finalizer: &str, present: bool) -> Value {
    let mut finalizers: Vec<Value> = obj::array(o, "/metadata/finalizers")
        .iter()
        .filter(|f| f.as_str() != Some(finalizer))
        .cloned()
        .collect();
    if present {
        finalizers.push(json!(finalizer));
    }
    let mut updated = o.clone();
    obj::set_at(
        &mut updated,
        "/metadata/finalizers",
        Value::Array(finalizers),
    );
    updated
}

/// Unbound claims without a storageClassName get the default class (retroactive default
/// StorageClass assignment, GA in 1.28).
pub fn default_class(snap: &Snapshot) -> Vec<Action> {
    let Some(class) = defaults::default_storage_class(&snap.storageclasses) else {
        return Vec::new();
    };
    snap.pvcs
        .iter()
        .filter(|c| {
            c.pointer("/spec/storageClassName")
                .is_none_or(Value::is_null)
        })
        .filter(|c| obj::str_at(c, "/spec/volumeName").is_none() && !obj::is_terminating(c))
        .map(|c| {
            let mut updated = c.clone();
            obj::set_at(&mut updated, "/spec/storageClassName", json!(class));
            Action::replace(ResourceKind::PersistentVolumeClaim, updated)
        })
        .collect()
}

/// Provisions and binds PVs for pending claims of a local-path class.
pub fn provision(snap: &Snapshot, pv_root: &Path) -> Vec<Action> {
    let mut actions = Vec::new();
    for claim in &snap.pvcs {
        if obj::is_terminating(claim)
            || obj::str_at(claim, "/spec/volumeName").is_some_and(|v| !v.is_empty())
            || obj::pod_phase(claim) == "Bound"
        {
            continue;
        }
        let Some(class) = claim_class(snap, claim) else {
            continue;
        };
        let Some(node) = provisioning_node(snap, claim, class) else {
            continue;
        };
        let pv_name = format!("pvc-{}", obj::uid(claim));
        match snap.pv(&pv_name) {
            // A previous round created the PV but lost the race binding the claim.
            Some(pv) if obj::str_at(pv, "/spec/claimRef/uid") == Some(obj::uid(claim)) => {
                actions.push(Action::replace(
                    ResourceKind::PersistentVolumeClaim,
                    bound_claim(claim, class, &pv_name),
                ));
            }
            Some(_) => {}
            None => {
                let path = pv_root.join(format!(
                    "{pv_name}_{}_{}",
                    obj::namespace(claim),
                    obj::name(claim)
                ));
                actions.push(Action::CreateDir(path.clone()));
                actions.push(Action::create(
                    ResourceKind::PersistentVolume,
                    new_pv(claim, class, &pv_name, &node, &path),
                ));
                actions.push(Action::replace(
                    ResourceKind::PersistentVolumeClaim,
                    bound_claim(claim, class, &pv_name),
                ));
                actions.push(Action::Event(EventRecord::normal(
                    claim,
                    served_provisioner(class),
                    "ProvisioningSucceeded",
                    format!("Successfully provisioned volume {pv_name}"),
                )));
            }
        }
    }
    actions
}

fn claim_class<'a>(snap: &'a Snapshot, claim: &Value) -> Option<&'a Value> {
    let class_name = obj::str_at(claim, "/spec/storageClassName")?;
    snap.storageclasses
        .iter()
        .find(|c| obj::name(c) == class_name)
        .filter(|c| SIM_PROVISIONERS.contains(&provisioner(c)))
}

fn provisioner(class: &Value) -> &str {
    obj::str_at(class, "/provisioner").unwrap_or_default()
}

/// The sim's own name for the class's provisioner (events name their source statically).
fn served_provisioner(class: &Value) -> &'static str {
    SIM_PROVISIONERS
        .into_iter()
        .find(|p| *p == provisioner(class))
        .unwrap_or(LOCAL_PATH_PROVISIONER)
}

/// WaitForFirstConsumer: the node the scheduler selected. Immediate: the first Ready
/// schedulable node by name.
fn provisioning_node(snap: &Snapshot, claim: &Value, class: &Value) -> Option<String> {
    if obj::str_at(class, "/volumeBindingMode") == Some("WaitForFirstConsumer") {
        return obj::string_map(claim, "/metadata/annotations").remove(SELECTED_NODE);
    }
    snap.nodes
        .iter()
        .filter(|n| obj::condition_status(n, "Ready") == Some("True"))
        .filter(|n| obj::array(n, "/spec/taints").is_empty())
        .map(|n| obj::name(n).to_string())
        .min()
}

fn request(claim: &Value) -> Value {
    claim
        .pointer("/spec/resources/requests/storage")
        .cloned()
        .unwrap_or_else(|| json!("1Gi"))
}

fn new_pv(claim: &Value, class: &Value, pv_name: &str, node: &str, path: &Path) -> Value {
    let mut pv = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": pv_name,
            "annotations": {
                PROVISIONED_BY: provisioner(class),
                "local.path.provisioner/selected-node": node,
            },
            "finalizers": [PV_PROTECTION],
        },
        "spec": {
            "accessModes": claim.pointer("/spec/accessModes").cloned().unwrap_or_else(|| json!(["ReadWriteOnce"])),
            "capacity": {"storage": request(claim)},
            "claimRef": claim_ref(claim),
            "hostPath": {"path": path.to_string_lossy(), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}
            ]}]}},
            "persistentVolumeReclaimPolicy": obj::str_at(class, "/reclaimPolicy").unwrap_or("Delete"),
            "storageClassName": obj::name(class),
            "volumeMode": "Filesystem",
        },
        "status": {"phase": "Bound"},
    });
    if provisioner(class) != LOCAL_PATH_PROVISIONER
        && let Some(spec) = pv.get_mut("spec").and_then(Value::as_object_mut)
    {
        spec.remove("nodeAffinity");
    }
    pv
}

fn bound_claim(claim: &Value, class: &Value, pv_name: &str) -> Value {
    let mut bound = claim.clone();
    obj::set_at(&mut bound, "/spec/volumeName", json!(pv_name));
    for (key, value) in [
        ("pv.kubernetes.io/bind-completed", "yes"),
        ("pv.kubernetes.io/bound-by-controller", "yes"),
        (
            "volume.beta.kubernetes.io/storage-provisioner",
            provisioner(class),
        ),
        (
            "volume.kubernetes.io/storage-provisioner",
            provisioner(class),
        ),
    ] {
        let pointer = format!("/metadata/annotations/{}", key.replace('/', "~1"));
        obj::set_at(&mut bound, &pointer, json!(value));
    }
    let access_modes = claim
        .pointer("/spec/accessModes")
        .cloned()
        .unwrap_or_else(|| json!(["ReadWriteOnce"]));
    obj::set_at(
        &mut bound,
        "/status",
        json!({"phase": "Bound", "accessModes": access_modes, "capacity": {"storage": request(claim)}}),
    );
    bound
}

/// PVs whose claim is gone turn Released; Released PVs of the sim's provisioners with
/// reclaimPolicy Delete lose their directory and are deleted (with `pv:delete-on-retain`,
/// Retain ones too); Released PVs whose `claimRef` was cleared turn Available; deleted PVs
/// lose their protection finalizer.
pub fn reclaim(snap: &Snapshot, pv_root: &Path, faults: &Faults) -> Vec<Action> {
    let deletes = |policy: Option<&str>, pv: &Value| match policy {
        Some("Delete") => true,
        Some("Retain") => {
            faults.has(Fault::PvDeleteOnRetain)
                || (faults.has(Fault::PvDeleteOnRetainLater) && released_long_ago(pv))
        }
        _ => false,
    };
    let mut actions = Vec::new();
    for pv in &snap.pvs {
        let phase = obj::pod_phase(pv);
        if obj::is_terminating(pv) {
            if phase != "Bound" && obj::has_finalizer(pv, PV_PROTECTION) {
                actions.push(Action::replace(
                    ResourceKind::PersistentVolume,
                    with_finalizer(pv, PV_PROTECTION, false),
                ));
            }
            continue;
        }
        let claim_ref_cleared = pv.pointer("/spec/claimRef").is_none_or(Value::is_null);
        if phase == "Bound" && !claim_exists(snap, pv) {
            let mut released = pv.clone();
            obj::set_at(&mut released, "/status/phase", json!("Released"));
            actions.push(Action::replace(ResourceKind::PersistentVolume, released));
        } else if phase == "Released" && claim_ref_cleared {
            let mut available = pv.clone();
            obj::set_at(&mut available, "/status/phase", json!("Available"));
            actions.push(Action::replace(ResourceKind::PersistentVolume, available));
        } else if phase == "Released"
            && deletes(obj::str_at(pv, "/spec/persistentVolumeReclaimPolicy"), pv)
            && obj::string_map(pv, "/metadata/annotations")
                .get(PROVISIONED_BY)
                .is_some_and(|p| SIM_PROVISIONERS.contains(&p.as_str()))
        {
            if let Some(dir) = owned_dir(pv, pv_root) {
                actions.push(Action::RemoveDir(dir));
            }
            actions.push(Action::delete(ResourceKind::PersistentVolume, pv));
        }
    }
    actions
}

/// `pv:delete-on-retain-later`: whether this Released PV was first seen Released by the
/// reclaimer [`crate::config::RETAIN_DELETE_DELAY`] ago or more.
fn released_long_ago(pv: &Value) -> bool {
    static RELEASED: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();
    let mut released = RELEASED
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let since = *released
        .entry(obj::uid(pv).to_string())
        .or_insert_with(Instant::now);
    since.elapsed() >= crate::config::RETAIN_DELETE_DELAY
}

fn claim_exists(snap: &Snapshot, pv: &Value) -> bool {
    let (Some(ns), Some(name), Some(uid)) = (
        obj::str_at(pv, "/spec/claimRef/namespace"),
        obj::str_at(pv, "/spec/claimRef/name"),
        obj::str_at(pv, "/spec/claimRef/uid"),
    ) else {
        return false;
    };
    snap.pvc(ns, name).is_some_and(|c| obj::uid(c) == uid)
}

/// The PV's directory, only if it lies under the sim's own PV root (never delete a path a
/// user's hand-made PV points at).
pub fn owned_dir(pv: &Value, pv_root: &Path) -> Option<PathBuf> {
    let path = PathBuf::from(obj::str_at(pv, "/spec/hostPath/path")?);
    (path.starts_with(pv_root) && path != pv_root).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::NETWORK_PROVISIONER;
    use crate::controllers::testkit::{created, deleted, replaced};

    fn class() -> Value {
        json!({"metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": LOCAL_PATH_PROVISIONER, "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete"})
    }

    fn claim(name: &str, selected: Option<&str>) -> Value {
        let mut c = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"), "resourceVersion": "1",
                "finalizers": [PVC_PROTECTION]},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "standard"},
            "status": {"phase": "Pending"}});
        if let Some(node) = selected {
            obj::set_at(
                &mut c,
                "/metadata/annotations",
                json!({SELECTED_NODE: node}),
            );
        }
        c
    }

    fn pod_using(claim: &str) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "uid": "pod-uid"},
            "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]},
            "status": {"phase": "Running"}})
    }

    #[test]
    fn network_class_provisions_a_pv_any_node_reaches() {
        let mut c = claim("data-0", Some("sim-worker2"));
        obj::set_at(&mut c, "/spec/storageClassName", json!("network"));
        let snap = Snapshot {
            pvcs: vec![c],
            storageclasses: vec![class(), crate::controllers::nodes::network_storage_class()],
            ..Default::default()
        };
        let actions = provision(&snap, Path::new("/state/pvs"));
        let pv = actions
            .iter()
            .find_map(|a| match a {
                Action::Create { object, .. } => Some(object.clone()),
                _ => None,
            })
            .expect("a PV is provisioned for the network class");
        assert_eq!(pv.pointer("/spec/nodeAffinity"), None, "{pv}");
        assert_eq!(obj::str_at(&pv, "/spec/storageClassName"), Some("network"));
        assert_eq!(
            obj::string_map(&pv, "/metadata/annotations")
                .get(PROVISIONED_BY)
                .map(String::as_str),
            Some(NETWORK_PROVISIONER)
        );
    }

    #[test]
    fn wait_for_first_consumer_claim_stays_pending_without_selected_node() {
        let snap = Snapshot {
            pvcs: vec![claim("data-0", None)],
            storageclasses: vec![class()],
            ..Default::default()
        };
        assert!(provision(&snap, Path::new("/state/pvs")).is_empty());
    }

    #[test]
    fn selected_node_provisions_pinned_pv_and_binds_claim() {
        let snap = Snapshot {
            pvcs: vec![claim("data-0", Some("sim-worker2"))],
            storageclasses: vec![class()],
            ..Default::default()
        };
        let actions = provision(&snap, Path::new("/state/pvs"));
        assert_eq!(
            created(&actions, ResourceKind::PersistentVolume),
            vec!["pvc-uid-data-0"]
        );
        let pv = actions
            .iter()
            .find_map(|a| match a {
                Action::Create { object, .. } => Some(object.clone()),
                _ => None,
            })
            .expect("pv");
        assert_eq!(
            pv.pointer(
                "/spec/nodeAffinity/required/nodeSelectorTerms/0/matchExpressions/0/values/0"
            ),
            Some(&json!("sim-worker2"))
        );
        assert_eq!(obj::str_at(&pv, "/spec/claimRef/uid"), Some("uid-data-0"));
        assert_eq!(
            obj::str_at(&pv, "/spec/persistentVolumeReclaimPolicy"),
            Some("Delete")
        );
        assert!(actions.contains(&Action::CreateDir(PathBuf::from(
            "/state/pvs/pvc-uid-data-0_ns_data-0"
        ))));
        let bound = replaced(&actions, ResourceKind::PersistentVolumeClaim);
        assert_eq!(
            obj::str_at(&bound[0], "/spec/volumeName"),
            Some("pvc-uid-data-0")
        );
        assert_eq!(obj::str_at(&bound[0], "/status/phase"), Some("Bound"));
        assert_eq!(
            obj::str_at(&bound[0], "/status/capacity/storage"),
            Some("1Gi")
        );
    }

    #[test]
    fn protection_finalizer_removed_only_when_no_pod_uses_claim() {
        let mut c = claim("data-0", None);
        obj::set_at(
            &mut c,
            "/metadata/deletionTimestamp",
            json!("2024-01-01T00:00:00Z"),
        );
        let in_use = Snapshot {
            pvcs: vec![c.clone()],
            pods: vec![pod_using("data-0")],
            ..Default::default()
        };
        assert!(pvc_protection(&in_use).is_empty());
        let free = Snapshot {
            pvcs: vec![c],
            ..Default::default()
        };
        let released = replaced(&pvc_protection(&free), ResourceKind::PersistentVolumeClaim);
        assert!(obj::finalizers(&released[0]).is_empty());
    }

    #[test]
    fn protection_finalizer_added_to_new_claims() {
        let mut c = claim("data-0", None);
        obj::remove_at(&mut c, "/metadata/finalizers");
        let snap = Snapshot {
            pvcs: vec![c],
            ..Default::default()
        };
        let updated = replaced(&pvc_protection(&snap), ResourceKind::PersistentVolumeClaim);
        assert_eq!(obj::finalizers(&updated[0]), vec![PVC_PROTECTION]);
    }

    fn bound_pv(claim_uid: &str, phase: &str) -> Value {
        json!({"metadata": {"name": "pvc-x", "uid": "pv-uid", "resourceVersion": "3",
                "annotations": {PROVISIONED_BY: LOCAL_PATH_PROVISIONER}, "finalizers": [PV_PROTECTION]},
            "spec": {"claimRef": {"namespace": "ns", "name": "data-0", "uid": claim_uid},
                "hostPath": {"path": "/state/pvs/pvc-x_ns_data-0"}, "persistentVolumeReclaimPolicy": "Delete"},
            "status": {"phase": phase}})
    }

    #[test]
    fn the_replaced_under_claim_fault_recreates_an_unused_bound_pv_once() {
        let mut bound_claim = claim("data-0", None);
        obj::set_at(&mut bound_claim, "/status/phase", json!("Bound"));
        let in_use = Snapshot {
            pvs: vec![bound_pv("uid-data-0", "Bound")],
            pvcs: vec![bound_claim.clone()],
            pods: vec![pod_using("data-0")],
            ..Default::default()
        };
        assert!(replace_unused_bound_pvs(&in_use).is_empty());
        let unused = Snapshot {
            pods: vec![],
            ..in_use
        };
        let actions = replace_unused_bound_pvs(&unused);
        assert!(
            matches!(&actions[0], Action::Remove { name, uid, .. } if name == "pvc-x" && uid == "pv-uid")
        );
        let again = created(&actions, ResourceKind::PersistentVolume);
        assert_eq!(again, vec!["pvc-x"]);
        let Action::Create { object, .. } = &actions[1] else {
            panic!("create expected: {actions:?}")
        };
        assert_eq!(obj::str_at(object, "/metadata/uid"), None);
        assert_eq!(
            obj::str_at(object, "/spec/hostPath/path"),
            Some("/state/pvs/pvc-x_ns_data-0")
        );
        let replaced_once = Snapshot {
            pvs: vec![object.clone()],
            ..unused
        };
        assert!(replace_unused_bound_pvs(&replaced_once).is_empty());
    }

    #[test]
    fn pv_of_deleted_claim_is_released_then_deleted_with_its_directory() {
        let snap = Snapshot {
            pvs: vec![bound_pv("uid-data-0", "Bound")],
            ..Default::default()
        };
        let released = replaced(
            &reclaim(&snap, Path::new("/state/pvs"), &Faults::none()),
            ResourceKind::PersistentVolume,
        );
        assert_eq!(obj::str_at(&released[0], "/status/phase"), Some("Released"));

        let snap = Snapshot {
            pvs: vec![bound_pv("uid-data-0", "Released")],
            ..Default::default()
        };
        let actions = reclaim(&snap, Path::new("/state/pvs"), &Faults::none());
        assert!(actions.contains(&Action::RemoveDir(PathBuf::from(
            "/state/pvs/pvc-x_ns_data-0"
        ))));
        assert_eq!(
            deleted(&actions, ResourceKind::PersistentVolume),
            vec!["pvc-x"]
        );
    }

    fn retain(mut pv: Value) -> Value {
        obj::set_at(
            &mut pv,
            "/spec/persistentVolumeReclaimPolicy",
            json!("Retain"),
        );
        pv
    }

    #[test]
    fn released_retain_pv_is_kept_unless_the_fault_deletes_it() {
        let snap = Snapshot {
            pvs: vec![retain(bound_pv("uid-data-0", "Released"))],
            ..Default::default()
        };
        assert!(reclaim(&snap, Path::new("/state/pvs"), &Faults::none()).is_empty());
        let mut faults = Faults::none();
        faults.insert(Fault::PvDeleteOnRetain);
        let actions = reclaim(&snap, Path::new("/state/pvs"), &faults);
        assert_eq!(
            deleted(&actions, ResourceKind::PersistentVolume),
            vec!["pvc-x"]
        );
        assert!(actions.contains(&Action::RemoveDir(PathBuf::from(
            "/state/pvs/pvc-x_ns_data-0"
        ))));
    }

    #[test]
    fn released_pv_with_its_claim_ref_cleared_turns_available_and_binds_a_claim_naming_it() {
        let mut pv = retain(bound_pv("uid-old", "Released"));
        obj::set_at(&mut pv, "/spec/claimRef", Value::Null);
        obj::set_at(&mut pv, "/spec/storageClassName", json!("standard"));
        let snap = Snapshot {
            pvs: vec![pv.clone()],
            ..Default::default()
        };
        let available = replaced(
            &reclaim(&snap, Path::new("/state/pvs"), &Faults::none()),
            ResourceKind::PersistentVolume,
        );
        assert_eq!(
            obj::str_at(&available[0], "/status/phase"),
            Some("Available")
        );

        let mut named = claim("data-0", None);
        obj::set_at(&mut named, "/spec/volumeName", json!("pvc-x"));
        let released = Snapshot {
            pvs: vec![retain(bound_pv("uid-old", "Released"))],
            pvcs: vec![named.clone()],
            ..Default::default()
        };
        assert!(
            bind_named(&released).is_empty(),
            "Released to another claim"
        );
        let snap = Snapshot {
            pvs: vec![available[0].clone()],
            pvcs: vec![named],
            ..Default::default()
        };
        let actions = bind_named(&snap);
        let pv = &replaced(&actions, ResourceKind::PersistentVolume)[0];
        assert_eq!(obj::str_at(pv, "/spec/claimRef/uid"), Some("uid-data-0"));
        assert_eq!(obj::str_at(pv, "/status/phase"), Some("Bound"));
        let claim = &replaced(&actions, ResourceKind::PersistentVolumeClaim)[0];
        assert_eq!(obj::str_at(claim, "/status/phase"), Some("Bound"));
    }

    #[test]
    fn pv_of_live_claim_is_kept() {
        let snap = Snapshot {
            pvs: vec![bound_pv("uid-data-0", "Bound")],
            pvcs: vec![claim("data-0", None)],
            ..Default::default()
        };
        assert!(reclaim(&snap, Path::new("/state/pvs"), &Faults::none()).is_empty());
    }

    #[test]
    fn directories_outside_the_pv_root_are_never_removed() {
        let mut pv = bound_pv("gone", "Released");
        obj::set_at(&mut pv, "/spec/hostPath/path", json!("/home/user/data"));
        assert_eq!(owned_dir(&pv, Path::new("/state/pvs")), None);
        let snap = Snapshot {
            pvs: vec![pv],
            ..Default::default()
        };
        assert!(
            !reclaim(&snap, Path::new("/state/pvs"), &Faults::none())
                .iter()
                .any(|a| matches!(a, Action::RemoveDir(_)))
        );
    }

    #[test]
    fn claim_without_class_gets_the_default() {
        let mut c = claim("data-0", None);
        obj::remove_at(&mut c, "/spec/storageClassName");
        let snap = Snapshot {
            pvcs: vec![c],
            storageclasses: vec![class()],
            ..Default::default()
        };
        let updated = replaced(&default_class(&snap), ResourceKind::PersistentVolumeClaim);
        assert_eq!(
            obj::str_at(&updated[0], "/spec/storageClassName"),
            Some("standard")
        );
    }
}
