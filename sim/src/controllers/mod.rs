//! The control plane's controllers, as pure decision functions.
//!
//! Each controller reads objects (a [`Snapshot`] of the store) and returns a list of
//! [`Action`]s; the runtime applies them to the store. Keeping the decisions pure lets the
//! upstream rules (ordering, retention, scheduling) be unit-tested on hand-built objects.

pub mod defaults;
pub mod endpoints;
pub mod gc;
pub mod nodes;
pub mod obj;
pub mod scheduler;
pub mod statefulset;
pub mod volumes;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::store::{ResourceKind, Store};

/// Added to event name timestamps so names stay unique and ordered.
static EVENT_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Label the StatefulSet controller puts on every pod it creates.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Label carrying the pod's ordinal (Kubernetes 1.28+).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// Label linking a pod to the StatefulSet revision it was created from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// Finalizer that keeps a PVC while a pod uses it.
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
/// Finalizer that keeps a PV while it is bound.
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";
/// Annotation the scheduler sets on a WaitForFirstConsumer claim.
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// Node label the local-path PVs are pinned to.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
/// Provisioner name of kind's default StorageClass.
pub const LOCAL_PATH_PROVISIONER: &str = "rancher.io/local-path";
/// Provisioner name of the sim's `network` StorageClass: storage every node can reach
/// (PVs without nodeAffinity), like a cloud disk or NFS, so a pod can move between nodes.
pub const NETWORK_PROVISIONER: &str = "kube-sim.local/network";
/// The provisioners the sim's volume controller serves.
pub const SIM_PROVISIONERS: [&str; 2] = [LOCAL_PATH_PROVISIONER, NETWORK_PROVISIONER];

/// One change a controller wants made.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Create {
        kind: ResourceKind,
        namespace: Option<String>,
        object: Value,
    },
    /// Compare-and-swap of the whole object (spec, metadata and status): applied only if
    /// the stored object still has `object`'s uid and resourceVersion.
    Replace {
        kind: ResourceKind,
        namespace: Option<String>,
        object: Value,
    },
    /// An API delete (graceful for pods on a node; finalizers respected).
    Delete {
        kind: ResourceKind,
        namespace: Option<String>,
        name: String,
        /// Precondition: only delete this incarnation.
        uid: Option<String>,
    },
    /// Unconditional removal of one incarnation (namespace finalization, forced pod GC).
    Remove {
        kind: ResourceKind,
        namespace: Option<String>,
        name: String,
        uid: String,
    },
    CreateDir(PathBuf),
    RemoveDir(PathBuf),
    Event(EventRecord),
}

impl Action {
    /// Deletes exactly this object (uid precondition).
    pub fn delete(kind: ResourceKind, obj: &Value) -> Action {
        Action::Delete {
            kind,
            namespace: ns_of(kind, obj),
            name: obj::name(obj).to_string(),
            uid: Some(obj::uid(obj).to_string()),
        }
    }

    pub fn replace(kind: ResourceKind, object: Value) -> Action {
        Action::Replace {
            kind,
            namespace: ns_of(kind, &object),
            object,
        }
    }

    pub fn create(kind: ResourceKind, object: Value) -> Action {
        Action::Create {
            kind,
            namespace: ns_of(kind, &object),
            object,
        }
    }

    /// A short description for logs (never includes object bodies: they may hold secrets).
    pub fn describe(&self) -> String {
        match self {
            Action::Create {
                kind,
                namespace,
                object,
            } => {
                format!(
                    "create {} {}",
                    kind.kind(),
                    qualified(namespace, obj::name(object))
                )
            }
            Action::Replace {
                kind,
                namespace,
                object,
            } => {
                format!(
                    "update {} {}",
                    kind.kind(),
                    qualified(namespace, obj::name(object))
                )
            }
            Action::Delete {
                kind,
                namespace,
                name,
                ..
            } => {
                format!("delete {} {}", kind.kind(), qualified(namespace, name))
            }
            Action::Remove {
                kind,
                namespace,
                name,
                ..
            } => {
                format!("remove {} {}", kind.kind(), qualified(namespace, name))
            }
            Action::CreateDir(p) => format!("create directory {}", p.display()),
            Action::RemoveDir(p) => format!("remove directory {}", p.display()),
            Action::Event(e) => format!("event {} on {}", e.reason, e.involved_name()),
        }
    }
}

fn qualified(namespace: &Option<String>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

fn ns_of(kind: ResourceKind, obj: &Value) -> Option<String> {
    kind.namespaced().then(|| obj::namespace(obj).to_string())
}

/// A core/v1 Event to record.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    /// The object the event is about (apiVersion, kind, name, namespace, uid).
    pub involved: Value,
    pub type_: &'static str,
    pub reason: String,
    pub message: String,
    pub component: &'static str,
    pub host: Option<String>,
}

impl EventRecord {
    pub fn normal(
        involved: &Value,
        component: &'static str,
        reason: &str,
        message: String,
    ) -> Self {
        EventRecord {
            involved: object_reference(involved),
            type_: "Normal",
            reason: reason.to_string(),
            message,
            component,
            host: None,
        }
    }

    pub fn warning(
        involved: &Value,
        component: &'static str,
        reason: &str,
        message: String,
    ) -> Self {
        EventRecord {
            type_: "Warning",
            ..EventRecord::normal(involved, component, reason, message)
        }
    }

    pub fn on_host(mut self, host: &str) -> Self {
        self.host = Some(host.to_string());
        self
    }

    /// Narrows the event to a field of the involved object (the kubelet names the
    /// container: `spec.containers{mysql}`).
    pub fn at_field(mut self, field_path: &str) -> Self {
        obj::set_at(
            &mut self.involved,
            "/fieldPath",
            serde_json::json!(field_path),
        );
        self
    }

    pub fn involved_name(&self) -> &str {
        obj::str_at(&self.involved, "/name").unwrap_or_default()
    }

    /// The Event object, named `<involved>.<unique hex>` like client-go's recorder.
    pub fn to_object(&self, now: DateTime<Utc>) -> Value {
        let namespace = obj::str_at(&self.involved, "/namespace")
            .filter(|n| !n.is_empty())
            .unwrap_or("default");
        let ts = obj::rfc3339(now);
        // Time-ordered hex (like client-go), so `kubectl get events` lists an object's events
        // in the order they happened; the counter keeps same-nanosecond names unique.
        let unique = format!(
            "{:x}",
            now.timestamp_nanos_opt().unwrap_or_default() as u64
                + EVENT_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut source = json!({"component": self.component});
        if let Some(host) = &self.host {
            obj::set_at(&mut source, "/host", json!(host));
        }
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": format!("{}.{unique}", self.involved_name()),
                "namespace": namespace,
            },
            "involvedObject": self.involved,
            "reason": self.reason,
            "message": self.message,
            "type": self.type_,
            "source": source,
            "firstTimestamp": ts,
            "lastTimestamp": ts,
            "count": 1,
            "eventTime": null,
            "reportingComponent": self.component,
            "reportingInstance": self.host.clone().unwrap_or_default(),
        })
    }
}

/// An ObjectReference to `obj`.
pub fn object_reference(obj: &Value) -> Value {
    let mut r = json!({
        "apiVersion": obj::str_at(obj, "/apiVersion").unwrap_or("v1"),
        "kind": obj::str_at(obj, "/kind").unwrap_or_default(),
        "name": obj::name(obj),
        "uid": obj::uid(obj),
    });
    if let Some(ns) = obj::str_at(obj, "/metadata/namespace") {
        obj::set_at(&mut r, "/namespace", json!(ns));
    }
    if let Some(rv) = obj::str_at(obj, "/metadata/resourceVersion") {
        obj::set_at(&mut r, "/resourceVersion", json!(rv));
    }
    r
}

/// The objects every controller reads, listed from the store.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub namespaces: Vec<Value>,
    pub nodes: Vec<Value>,
    pub statefulsets: Vec<Value>,
    pub pods: Vec<Value>,
    pub pvcs: Vec<Value>,
    pub pvs: Vec<Value>,
    pub services: Vec<Value>,
    pub endpointslices: Vec<Value>,
    pub storageclasses: Vec<Value>,
    pub controllerrevisions: Vec<Value>,
}

impl Snapshot {
    /// Lists every kind. Dependents are listed before owners so that a dependent created
    /// together with its owner never looks orphaned.
    pub fn read(store: &Store) -> Snapshot {
        let pods = store.list(ResourceKind::Pod, None);
        let pvcs = store.list(ResourceKind::PersistentVolumeClaim, None);
        let endpointslices = store.list(ResourceKind::EndpointSlice, None);
        let pvs = store.list(ResourceKind::PersistentVolume, None);
        let controllerrevisions = store.list(ResourceKind::ControllerRevision, None);
        Snapshot {
            pods,
            pvcs,
            endpointslices,
            pvs,
            controllerrevisions,
            statefulsets: store.list(ResourceKind::StatefulSet, None),
            services: store.list(ResourceKind::Service, None),
            nodes: store.list(ResourceKind::Node, None),
            storageclasses: store.list(ResourceKind::StorageClass, None),
            namespaces: store.list(ResourceKind::Namespace, None),
        }
    }

    pub fn pods_in<'a>(&'a self, ns: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.pods.iter().filter(move |p| obj::namespace(p) == ns)
    }

    pub fn pvc(&self, ns: &str, name: &str) -> Option<&Value> {
        self.pvcs
            .iter()
            .find(|c| obj::namespace(c) == ns && obj::name(c) == name)
    }

    pub fn pv(&self, name: &str) -> Option<&Value> {
        self.pvs.iter().find(|v| obj::name(v) == name)
    }

    pub fn node(&self, name: &str) -> Option<&Value> {
        self.nodes.iter().find(|n| obj::name(n) == name)
    }
}

/// Test helpers shared by the controllers' unit tests.
/// Creates a core/v1 Event (best effort: a terminating namespace refuses it).
pub fn record_event(store: &Store, record: &EventRecord) {
    let event = record.to_object(Utc::now());
    let ns = obj::namespace(&event).to_string();
    if let Err(e) = store.create(ResourceKind::Event, Some(&ns), event) {
        tracing::debug!(reason = %record.reason, error = %e, "event not recorded");
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    use serde_json::{Value, json};

    use super::Action;
    use crate::store::ResourceKind;

    pub fn created(actions: &[Action], kind: ResourceKind) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Create {
                    kind: k, object, ..
                } if *k == kind => Some(super::obj::name(object).to_string()),
                _ => None,
            })
            .collect()
    }

    pub fn deleted(actions: &[Action], kind: ResourceKind) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Delete { kind: k, name, .. } if *k == kind => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn replaced(actions: &[Action], kind: ResourceKind) -> Vec<Value> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Replace {
                    kind: k, object, ..
                } if *k == kind => Some(object.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn node(name: &str, ready: bool) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": "1",
                "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"Unknown"}}]}
        })
    }
}
