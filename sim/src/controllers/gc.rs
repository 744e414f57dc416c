//! Garbage collection (ownerReferences) and namespace finalization.
//!
//! Background deletion: an object all of whose owners are gone is deleted. Foreground
//! deletion: an owner carrying the `foregroundDeletion` finalizer has its dependents deleted
//! first and loses the finalizer once none remain. A terminating namespace has everything in
//! it deleted and is removed once empty.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{Action, Snapshot, obj};
use crate::store::ResourceKind;

pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";

/// Kinds whose objects the snapshot holds: an owner of another kind is assumed to exist
/// (the sim cannot tell, and a real GC never deletes on an unresolvable owner).
const KNOWN_OWNER_KINDS: [&str; 7] = [
    "StatefulSet",
    "Pod",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "Service",
    "Node",
    "Namespace",
];

fn all_objects(snap: &Snapshot) -> Vec<(ResourceKind, &Value)> {
    let lists: [(ResourceKind, &Vec<Value>); 8] = [
        (ResourceKind::Pod, &snap.pods),
        (ResourceKind::ControllerRevision, &snap.controllerrevisions),
        (ResourceKind::PersistentVolumeClaim, &snap.pvcs),
        (ResourceKind::EndpointSlice, &snap.endpointslices),
        (ResourceKind::PersistentVolume, &snap.pvs),
        (ResourceKind::StatefulSet, &snap.statefulsets),
        (ResourceKind::Service, &snap.services),
        (ResourceKind::Node, &snap.nodes),
    ];
    lists
        .into_iter()
        .flat_map(|(kind, items)| items.iter().map(move |o| (kind, o)))
        .chain(snap.namespaces.iter().map(|o| (ResourceKind::Namespace, o)))
        .collect()
}

pub fn reconcile(snap: &Snapshot) -> Vec<Action> {
    let objects = all_objects(snap);
    let live_uids: BTreeSet<&str> = objects.iter().map(|(_, o)| obj::uid(o)).collect();
    let mut actions = Vec::new();
    for (kind, o) in &objects {
        if obj::is_terminating(o) || obj::owner_refs(o).is_empty() {
            continue;
        }
        let owner_alive = obj::owner_refs(o).iter().any(|r| {
            let kind_known =
                KNOWN_OWNER_KINDS.contains(&obj::str_at(r, "/kind").unwrap_or_default());
            !kind_known || live_uids.contains(obj::str_at(r, "/uid").unwrap_or_default())
        });
        if !owner_alive {
            actions.push(Action::delete(*kind, o));
        }
    }
    actions.extend(foreground(&objects));
    actions
}

/// Owners deleted with propagationPolicy Foreground.
fn foreground(objects: &[(ResourceKind, &Value)]) -> Vec<Action> {
    let mut actions = Vec::new();
    for (kind, owner) in objects {
        if !obj::is_terminating(owner) || !obj::has_finalizer(owner, FOREGROUND_FINALIZER) {
            continue;
        }
        let dependents: Vec<&(ResourceKind, &Value)> = objects
            .iter()
            .filter(|(_, d)| obj::has_owner_uid(d, obj::uid(owner)))
            .collect();
        if dependents.is_empty() {
            let finalizers: Vec<Value> = obj::finalizers(owner)
                .into_iter()
                .filter(|f| *f != FOREGROUND_FINALIZER)
                .map(|f| json!(f))
                .collect();
            let mut done = (*owner).clone();
            obj::set_at(&mut done, "/metadata/finalizers", Value::Array(finalizers));
            actions.push(Action::replace(*kind, done));
        }
        for (dep_kind, dep) in dependents {
            if !obj::is_terminating(dep) {
                actions.push(Action::delete(*dep_kind, dep));
            }
        }
    }
    actions
}

/// A terminating namespace: delete what it holds, remove it once empty.
/// `contents` are all objects of every namespaced kind in that namespace.
pub fn namespace_cleanup(namespace: &Value, contents: &[(ResourceKind, Value)]) -> Vec<Action> {
    if !obj::is_terminating(namespace) {
        return Vec::new();
    }
    if contents.is_empty() {
        return vec![Action::Remove {
            kind: ResourceKind::Namespace,
            namespace: None,
            name: obj::name(namespace).to_string(),
            uid: obj::uid(namespace).to_string(),
        }];
    }
    contents
        .iter()
        .filter(|(_, o)| !obj::is_terminating(o))
        .map(|(kind, o)| Action::delete(*kind, o))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::testkit::{deleted, replaced};

    fn sts(uid: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "mysql", "namespace": "ns", "uid": uid}})
    }

    fn owned_pod(name: &str, owner_uid: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "mysql", "uid": owner_uid, "controller": true}]}})
    }

    #[test]
    fn dependents_of_a_gone_owner_are_deleted() {
        let snap = Snapshot {
            pods: vec![owned_pod("mysql-0", "old-uid")],
            statefulsets: vec![sts("new-uid")],
            ..Default::default()
        };
        assert_eq!(
            deleted(&reconcile(&snap), ResourceKind::Pod),
            vec!["mysql-0"]
        );
    }

    #[test]
    fn dependents_of_a_live_owner_are_kept() {
        let snap = Snapshot {
            pods: vec![owned_pod("mysql-0", "sts-uid")],
            statefulsets: vec![sts("sts-uid")],
            ..Default::default()
        };
        assert!(reconcile(&snap).is_empty());
    }

    #[test]
    fn owner_of_unknown_kind_is_assumed_alive() {
        let mut pod = owned_pod("x", "rs-uid");
        obj::set_at(
            &mut pod,
            "/metadata/ownerReferences/0",
            json!({"kind": "ReplicaSet", "uid": "rs-uid"}),
        );
        let snap = Snapshot {
            pods: vec![pod],
            ..Default::default()
        };
        assert!(reconcile(&snap).is_empty());
    }

    #[test]
    fn foreground_owner_waits_for_dependents_then_loses_finalizer() {
        let mut owner = sts("sts-uid");
        obj::set_at(
            &mut owner,
            "/metadata/deletionTimestamp",
            json!("2024-01-01T00:00:00Z"),
        );
        obj::set_at(
            &mut owner,
            "/metadata/finalizers",
            json!([FOREGROUND_FINALIZER]),
        );
        let snap = Snapshot {
            pods: vec![owned_pod("mysql-0", "sts-uid")],
            statefulsets: vec![owner.clone()],
            ..Default::default()
        };
        let actions = reconcile(&snap);
        assert_eq!(deleted(&actions, ResourceKind::Pod), vec!["mysql-0"]);
        assert!(replaced(&actions, ResourceKind::StatefulSet).is_empty());
        let snap = Snapshot {
            statefulsets: vec![owner],
            ..Default::default()
        };
        let done = replaced(&reconcile(&snap), ResourceKind::StatefulSet);
        assert!(obj::finalizers(&done[0]).is_empty());
    }

    #[test]
    fn terminating_namespace_is_emptied_then_removed() {
        let ns = json!({"metadata": {"name": "ns", "uid": "ns-uid", "deletionTimestamp": "2024-01-01T00:00:00Z"}});
        let contents = vec![(
            ResourceKind::Service,
            json!({"metadata": {"name": "mysql", "namespace": "ns", "uid": "s"}}),
        )];
        assert_eq!(
            deleted(&namespace_cleanup(&ns, &contents), ResourceKind::Service),
            vec!["mysql"]
        );
        assert!(matches!(
            namespace_cleanup(&ns, &[]).as_slice(),
            [Action::Remove {
                kind: ResourceKind::Namespace,
                ..
            }]
        ));
        let live = json!({"metadata": {"name": "ns", "uid": "ns-uid"}});
        assert!(namespace_cleanup(&live, &contents).is_empty());
    }
}
