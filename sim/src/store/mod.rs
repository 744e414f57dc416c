//! The object store: the sim's etcd, with the kinds it serves (`kinds`) and the generic
//! registry rules of the API server (`rules`: names, namespaces, preconditions, graceful
//! deletion).
//!
//! One global resource-version counter, a ring of recent events so that watchers resuming
//! from a recent resourceVersion never get 410 Gone, and a broadcast channel for live
//! watchers. All methods take `&self`; the interior mutex is never held across an `.await`.
//!
//! Error messages follow the Kubernetes API server's wording (`pods "x" not found`), because
//! they are returned verbatim to clients inside `Status` objects.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

mod kinds;
mod rules;

pub use kinds::ResourceKind;
use rules::*;

/// How many events the store remembers for watch resumption.
pub const HISTORY_LEN: usize = 50_000;
/// Capacity of the live event channel; a lagging watcher recovers from the history ring.
const CHANNEL_CAPACITY: usize = 16_384;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// The watch event type as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

#[derive(Clone, Debug)]
pub struct StoreEvent {
    pub kind: ResourceKind,
    pub event_type: EventType,
    pub object: Value,
    pub resource_version: u64,
}

impl StoreEvent {
    pub fn namespace(&self) -> Option<&str> {
        self.object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
}

/// Result of a delete request.
#[derive(Clone, Debug)]
pub enum DeleteOutcome {
    /// The object is gone; this is its last state.
    Deleted(Value),
    /// `deletionTimestamp` is set; the object still exists until finalizers or the kubelet finish.
    Pending(Value),
}

impl DeleteOutcome {
    pub fn object(&self) -> &Value {
        match self {
            DeleteOutcome::Deleted(v) | DeleteOutcome::Pending(v) => v,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        kind: ResourceKind,
        resource: String,
        name: String,
    },
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        kind: ResourceKind,
        resource: String,
        name: String,
    },
    #[error("Operation cannot be fulfilled on {resource} \"{name}\": {message}")]
    Conflict {
        kind: ResourceKind,
        resource: String,
        name: String,
        message: String,
    },
    #[error("{kind_name} \"{name}\" is invalid: {message}", kind_name = kind.kind())]
    Invalid {
        kind: ResourceKind,
        name: String,
        message: String,
    },
    #[error("{resource} \"{name}\" is forbidden: {message}")]
    Forbidden {
        kind: ResourceKind,
        resource: String,
        name: String,
        message: String,
    },
    #[error("too old resource version: {requested} ({oldest})")]
    Gone { requested: u64, oldest: u64 },
}

impl StoreError {
    fn not_found(kind: ResourceKind, name: &str) -> Self {
        StoreError::NotFound {
            kind,
            resource: kind.qualified_plural(),
            name: name.to_string(),
        }
    }

    fn conflict(kind: ResourceKind, name: &str, message: impl Into<String>) -> Self {
        StoreError::Conflict {
            kind,
            resource: kind.qualified_plural(),
            name: name.to_string(),
            message: message.into(),
        }
    }

    fn invalid(kind: ResourceKind, name: &str, message: impl Into<String>) -> Self {
        StoreError::Invalid {
            kind,
            name: name.to_string(),
            message: message.into(),
        }
    }

    /// HTTP status code a real API server uses for this error.
    pub fn code(&self) -> u16 {
        match self {
            StoreError::NotFound { .. } => 404,
            StoreError::AlreadyExists { .. } | StoreError::Conflict { .. } => 409,
            StoreError::Invalid { .. } => 422,
            StoreError::Forbidden { .. } => 403,
            StoreError::Gone { .. } => 410,
        }
    }

    /// `Status.reason` a real API server uses for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::NotFound { .. } => "NotFound",
            StoreError::AlreadyExists { .. } => "AlreadyExists",
            StoreError::Conflict { .. } => "Conflict",
            StoreError::Invalid { .. } => "Invalid",
            StoreError::Forbidden { .. } => "Forbidden",
            StoreError::Gone { .. } => "Expired",
        }
    }

    /// The (kind, name) the error is about, for `Status.details`.
    pub fn subject(&self) -> Option<(ResourceKind, &str)> {
        match self {
            StoreError::NotFound { kind, name, .. }
            | StoreError::AlreadyExists { kind, name, .. }
            | StoreError::Conflict { kind, name, .. }
            | StoreError::Invalid { kind, name, .. }
            | StoreError::Forbidden { kind, name, .. } => Some((*kind, name.as_str())),
            StoreError::Gone { .. } => None,
        }
    }
}

type Key = (ResourceKind, String, String);

struct Inner {
    objects: BTreeMap<Key, Value>,
    resource_version: u64,
    history: VecDeque<StoreEvent>,
    history_len: usize,
    /// Highest resource version that fell out of `history`.
    compacted: u64,
}

pub struct Store {
    inner: Mutex<Inner>,
    events: broadcast::Sender<StoreEvent>,
}

impl Store {
    /// An empty store holding the `default` and `kube-system` namespaces.
    pub fn new() -> Arc<Store> {
        Store::with_history_len(HISTORY_LEN)
    }

    /// Like [`Store::new`], remembering only the last `history_len` events (tests of 410).
    pub fn with_history_len(history_len: usize) -> Arc<Store> {
        let (events, _) = broadcast::channel(CHANNEL_CAPACITY);
        let store = Store {
            inner: Mutex::new(Inner {
                objects: BTreeMap::new(),
                resource_version: 0,
                history: VecDeque::new(),
                history_len: history_len.max(1),
                compacted: 0,
            }),
            events,
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let created = store.create(
                ResourceKind::Namespace,
                None,
                json!({"metadata": {"name": ns}}),
            );
            debug_assert!(created.is_ok(), "fresh store cannot hold namespace {ns}");
        }
        Arc::new(store)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the map consistent (every mutation is a
        // single insert/remove), so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, kind: ResourceKind, ns: Option<&str>, name: &str) -> Option<Value> {
        self.lock().objects.get(&key(kind, ns, name)).cloned()
    }

    /// Objects of `kind`, sorted by namespace then name; `ns` None = all namespaces.
    pub fn list(&self, kind: ResourceKind, ns: Option<&str>) -> Vec<Value> {
        self.list_with_version(kind, ns).0
    }

    /// Like [`Store::list`], plus the resource version the list is consistent with.
    pub fn list_with_version(&self, kind: ResourceKind, ns: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        (list_locked(&inner, kind, ns), inner.resource_version)
    }

    pub fn current_resource_version(&self) -> u64 {
        self.lock().resource_version
    }

    /// Creates an object: sets uid, resourceVersion, creationTimestamp, generation and
    /// namespace, expands `metadata.generateName`, emits Added.
    pub fn create(
        &self,
        kind: ResourceKind,
        ns: Option<&str>,
        mut obj: Value,
    ) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let ns = kind.namespaced().then(|| ns.unwrap_or("default"));
        let name = resolve_name(kind, &mut obj)?;
        if let Some(ns) = ns {
            check_namespace_accepts(&inner, kind, ns, &name)?;
        }
        let k = key(kind, ns, &name);
        if inner.objects.contains_key(&k) {
            return Err(StoreError::AlreadyExists {
                kind,
                resource: kind.qualified_plural(),
                name,
            });
        }
        let rv = inner.resource_version + 1;
        fill_type(kind, &mut obj);
        let meta = metadata_mut(&mut obj);
        meta.insert("name".into(), json!(name));
        match ns {
            Some(ns) => meta.insert("namespace".into(), json!(ns)),
            None => meta.remove("namespace"),
        };
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        meta.insert("creationTimestamp".into(), json!(now()));
        meta.insert("generation".into(), json!(1));
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        if kind == ResourceKind::Namespace {
            prepare_namespace(&mut obj);
        }
        inner.objects.insert(k, obj.clone());
        self.emit(&mut inner, kind, EventType::Added, obj.clone());
        Ok(obj)
    }

    /// Replaces spec and metadata (PUT). Honours `metadata.resourceVersion` as an optimistic
    /// lock, keeps identity fields and the old `.status`, bumps generation only on spec
    /// changes, and does nothing (no event, same resourceVersion) when nothing changed.
    pub fn update(
        &self,
        kind: ResourceKind,
        ns: Option<&str>,
        obj: Value,
    ) -> Result<Value, StoreError> {
        let name = object_name(kind, &obj)?;
        self.write(kind, ns, &name, &obj, |old, new| {
            let status = old.get("status").cloned();
            *new = obj.clone();
            set_or_remove(new, "status", status);
        })
    }

    /// Replaces only `.status` (the `/status` subresource).
    pub fn update_status(
        &self,
        kind: ResourceKind,
        ns: Option<&str>,
        obj: Value,
    ) -> Result<Value, StoreError> {
        let name = object_name(kind, &obj)?;
        self.write(kind, ns, &name, &obj, |_, new| {
            set_or_remove(new, "status", obj.get("status").cloned());
        })
    }

    /// Atomic read-modify-write under the lock. Generation is bumped if spec changed; no
    /// event if nothing changed. Like a real API server, an update that removes the last
    /// finalizer of an object that has a deletionTimestamp removes the object (Deleted).
    /// A terminating pod without finalizers is removed by [`Store::remove`] (the kubelet).
    pub fn mutate(
        &self,
        kind: ResourceKind,
        ns: Option<&str>,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Result<Value, StoreError> {
        self.write(kind, ns, name, &Value::Null, |_, new| f(new))
    }

    /// Shared body of update, update_status and mutate. `request` carries optimistic-lock
    /// preconditions (resourceVersion, uid) when it is an object.
    fn write(
        &self,
        kind: ResourceKind,
        ns: Option<&str>,
        name: &str,
        request: &Value,
        change: impl FnOnce(&Value, &mut Value),
    ) -> Result<Value, StoreError> {
        let mut inner = self.lock();
        let ns = kind.namespaced().then(|| ns.unwrap_or("default"));
        let k = key(kind, ns, name);
        let old = inner
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| StoreError::not_found(kind, name))?;
        check_write_preconditions(kind, name, &old, request)?;
        let mut new = old.clone();
        change(&old, &mut new);
        if !new.is_object() {
            return Err(StoreError::invalid(
                kind,
                name,
                "object must be a JSON object",
            ));
        }
        keep_identity(kind, &old, &mut new);
        if spec_changed(&old, &new) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            metadata_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }
        if new == old {
            return Ok(old);
        }
        let rv = inner.resource_version + 1;
        metadata_mut(&mut new).insert("resourceVersion".into(), json!(rv.to_string()));
        if finalizers_just_cleared(&old, &new) {
            inner.objects.remove(&k);
            self.emit(&mut inner, kind, EventType::Deleted, new.clone());
        } else {
            inner.objects.insert(k, new.clone());
            self.emit(&mut inner, kind, EventType::Modified, new.clone());
        }
        Ok(new)
    }

    /// Deletes with API semantics (see [`DeleteOutcome`]).
    pub fn delete(
        &self,
        kind: ResourceKind,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<DeleteOutcome, StoreError> {
        let mut inner = self.lock();
        let ns = kind.namespaced().then(|| ns.unwrap_or("default"));
        let k = key(kind, ns, name);
        let old = inner
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| StoreError::not_found(kind, name))?;
        check_delete_preconditions(kind, name, &old, opts)?;
        if opts.propagation_policy.as_deref() == Some("Orphan") {
            self.orphan_dependents(&mut inner, &old);
        }
        match graceful_deletion(kind, &old, opts) {
            Some(marked) if marked == old => Ok(DeleteOutcome::Pending(old)),
            Some(mut marked) => {
                let rv = inner.resource_version + 1;
                metadata_mut(&mut marked).insert("resourceVersion".into(), json!(rv.to_string()));
                inner.objects.insert(k, marked.clone());
                self.emit(&mut inner, kind, EventType::Modified, marked.clone());
                Ok(DeleteOutcome::Pending(marked))
            }
            None => Ok(DeleteOutcome::Deleted(self.remove_locked(&mut inner, k))),
        }
    }

    /// Removal without a grace period (the kubelet confirming a pod is gone); emits
    /// Deleted. Only the object with `uid`: checked under the lock, so a replacement
    /// created with the same name in the meantime is never removed in its place.
    pub fn remove(
        &self,
        kind: ResourceKind,
        ns: Option<&str>,
        name: &str,
        uid: &str,
    ) -> Option<Value> {
        let mut inner = self.lock();
        let ns = kind.namespaced().then(|| ns.unwrap_or("default"));
        let k = key(kind, ns, name);
        let same = inner
            .objects
            .get(&k)
            .and_then(|o| o.pointer("/metadata/uid"))
            .and_then(Value::as_str)
            == Some(uid);
        same.then(|| self.remove_locked(&mut inner, k))
    }

    fn remove_locked(&self, inner: &mut Inner, k: Key) -> Value {
        let kind = k.0;
        let mut obj = inner.objects.remove(&k).unwrap_or(Value::Null);
        let rv = inner.resource_version + 1;
        if obj.is_object() {
            metadata_mut(&mut obj).insert("resourceVersion".into(), json!(rv.to_string()));
        }
        self.emit(inner, kind, EventType::Deleted, obj.clone());
        obj
    }

    /// Drops ownerReferences that point at `owner` (propagationPolicy Orphan).
    fn orphan_dependents(&self, inner: &mut Inner, owner: &Value) {
        let Some(uid) = owner.pointer("/metadata/uid").and_then(Value::as_str) else {
            return;
        };
        let dependents: Vec<Key> = inner
            .objects
            .iter()
            .filter(|(_, v)| owned_by(v, uid))
            .map(|(k, _)| k.clone())
            .collect();
        for k in dependents {
            let Some(mut obj) = inner.objects.get(&k).cloned() else {
                continue;
            };
            let rv = inner.resource_version + 1;
            let meta = metadata_mut(&mut obj);
            if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
            }
            meta.insert("resourceVersion".into(), json!(rv.to_string()));
            inner.objects.insert(k.clone(), obj.clone());
            self.emit(inner, k.0, EventType::Modified, obj);
        }
    }

    /// Live events of every kind, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    /// Remembered events of `kind` (in `ns`, or all namespaces) newer than `rv`.
    /// Gone (410) when `rv` is older than the remembered history.
    pub fn events_since(
        &self,
        kind: ResourceKind,
        ns: Option<&str>,
        rv: u64,
    ) -> Result<Vec<StoreEvent>, StoreError> {
        let inner = self.lock();
        history_since(&inner, kind, ns, rv)
    }

    /// Remembered events newer than `rv`, the current resource version and a live receiver,
    /// taken atomically so that the watcher sees every event exactly once.
    pub fn subscribe_since(
        &self,
        kind: ResourceKind,
        ns: Option<&str>,
        rv: u64,
    ) -> Result<(Vec<StoreEvent>, u64, broadcast::Receiver<StoreEvent>), StoreError> {
        let inner = self.lock();
        let past = history_since(&inner, kind, ns, rv)?;
        Ok((past, inner.resource_version, self.events.subscribe()))
    }

    /// Current objects, their resource version and a live receiver, taken atomically.
    pub fn snapshot_and_subscribe(
        &self,
        kind: ResourceKind,
        ns: Option<&str>,
    ) -> (Vec<Value>, u64, broadcast::Receiver<StoreEvent>) {
        let inner = self.lock();
        let items = list_locked(&inner, kind, ns);
        (items, inner.resource_version, self.events.subscribe())
    }

    /// Records and broadcasts one event; the caller holds the lock, so history order,
    /// broadcast order and resource-version order are the same.
    fn emit(&self, inner: &mut Inner, kind: ResourceKind, event_type: EventType, object: Value) {
        inner.resource_version += 1;
        let event = StoreEvent {
            kind,
            event_type,
            object,
            resource_version: inner.resource_version,
        };
        if inner.history.len() >= inner.history_len
            && let Some(dropped) = inner.history.pop_front()
        {
            inner.compacted = dropped.resource_version;
        }
        inner.history.push_back(event.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
    }
}

fn key(kind: ResourceKind, ns: Option<&str>, name: &str) -> Key {
    let ns = if kind.namespaced() {
        ns.unwrap_or("default")
    } else {
        ""
    };
    (kind, ns.to_string(), name.to_string())
}

fn list_locked(inner: &Inner, kind: ResourceKind, ns: Option<&str>) -> Vec<Value> {
    let lo = (kind, String::new(), String::new());
    inner
        .objects
        .range(lo..)
        .take_while(|((k, _, _), _)| *k == kind)
        .filter(|((_, obj_ns, _), _)| !kind.namespaced() || ns.is_none_or(|n| n == obj_ns))
        .map(|(_, v)| v.clone())
        .collect()
}

fn history_since(
    inner: &Inner,
    kind: ResourceKind,
    ns: Option<&str>,
    rv: u64,
) -> Result<Vec<StoreEvent>, StoreError> {
    if rv < inner.compacted {
        return Err(StoreError::Gone {
            requested: rv,
            oldest: inner.compacted + 1,
        });
    }
    // Events are in rv order: skip the old ones by binary search.
    let start = inner.history.partition_point(|e| e.resource_version <= rv);
    Ok(inner
        .history
        .range(start..)
        .filter(|e| e.kind == kind && (ns.is_none() || e.namespace() == ns))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns_obj(name: &str) -> Value {
        json!({"metadata": {"name": name}})
    }

    fn sts(name: &str, replicas: i64) -> Value {
        json!({"metadata": {"name": name, "labels": {"app": "mysql"}}, "spec": {"replicas": replicas}})
    }

    fn bound_pod(name: &str) -> Value {
        json!({"metadata": {"name": name}, "spec": {"nodeName": "sim-worker", "terminationGracePeriodSeconds": 10}})
    }

    fn rv(obj: &Value) -> u64 {
        obj["metadata"]["resourceVersion"]
            .as_str()
            .expect("rv")
            .parse()
            .expect("decimal rv")
    }

    #[test]
    fn create_sets_server_metadata_and_type() {
        let store = Store::new();
        let obj = store
            .create(ResourceKind::StatefulSet, Some("default"), sts("mysql", 3))
            .expect("create");
        assert_eq!(obj["apiVersion"], "apps/v1");
        assert_eq!(obj["kind"], "StatefulSet");
        assert_eq!(obj["metadata"]["namespace"], "default");
        assert_eq!(obj["metadata"]["generation"], 1);
        assert!(
            obj["metadata"]["uid"]
                .as_str()
                .is_some_and(|u| u.len() == 36)
        );
        let ts = obj["metadata"]["creationTimestamp"]
            .as_str()
            .expect("timestamp");
        assert!(
            ts.ends_with('Z') && !ts.contains('.'),
            "second granularity: {ts}"
        );
        assert_eq!(rv(&obj), store.current_resource_version());
        assert_eq!(
            store.get(ResourceKind::StatefulSet, Some("default"), "mysql"),
            Some(obj)
        );
    }

    #[test]
    fn create_rejects_duplicates_missing_namespace_and_bad_names() {
        let store = Store::new();
        store
            .create(ResourceKind::Service, Some("default"), ns_obj("mysql"))
            .expect("first");
        let dup = store.create(ResourceKind::Service, Some("default"), ns_obj("mysql"));
        assert!(
            matches!(dup, Err(StoreError::AlreadyExists { .. })),
            "{dup:?}"
        );
        let missing = store.create(ResourceKind::Service, Some("nope"), ns_obj("mysql"));
        assert!(
            matches!(
                missing,
                Err(StoreError::NotFound {
                    kind: ResourceKind::Namespace,
                    ..
                })
            ),
            "{missing:?}"
        );
        let bad = store.create(ResourceKind::Service, Some("default"), ns_obj("Bad_Name"));
        assert_eq!(bad.expect_err("invalid").code(), 422);
        let nameless = store.create(
            ResourceKind::Service,
            Some("default"),
            json!({"metadata": {}}),
        );
        assert_eq!(nameless.expect_err("invalid").code(), 422);
    }

    #[test]
    fn generate_name_appends_a_suffix() {
        let store = Store::new();
        let obj = store
            .create(
                ResourceKind::Event,
                Some("default"),
                json!({"metadata": {"generateName": "ev-"}}),
            )
            .expect("create");
        let name = obj["metadata"]["name"].as_str().expect("name");
        assert!(name.starts_with("ev-") && name.len() == 8, "{name}");
    }

    #[test]
    fn update_with_stale_resource_version_conflicts() {
        let store = Store::new();
        let created = store
            .create(ResourceKind::StatefulSet, None, sts("mysql", 3))
            .expect("create");
        let mut first = created.clone();
        first["spec"]["replicas"] = json!(4);
        store
            .update(ResourceKind::StatefulSet, None, first)
            .expect("first update");
        let mut stale = created;
        stale["spec"]["replicas"] = json!(5);
        let err = store
            .update(ResourceKind::StatefulSet, None, stale)
            .expect_err("stale");
        assert_eq!(err.code(), 409);
        assert!(
            err.to_string().contains("the object has been modified"),
            "{err}"
        );
    }

    #[test]
    fn generation_bumps_only_on_spec_change() {
        let store = Store::new();
        let created = store
            .create(ResourceKind::StatefulSet, None, sts("mysql", 3))
            .expect("create");
        let labelled = store
            .mutate(ResourceKind::StatefulSet, None, "mysql", |o| {
                o["metadata"]["labels"]["x"] = json!("y")
            })
            .expect("label");
        assert_eq!(labelled["metadata"]["generation"], 1);
        let status = store
            .mutate(ResourceKind::StatefulSet, None, "mysql", |o| {
                o["status"] = json!({"replicas": 3})
            })
            .expect("status");
        assert_eq!(status["metadata"]["generation"], 1);
        let scaled = store
            .mutate(ResourceKind::StatefulSet, None, "mysql", |o| {
                o["spec"]["replicas"] = json!(5)
            })
            .expect("scale");
        assert_eq!(scaled["metadata"]["generation"], 2);
        assert!(
            rv(&scaled) > rv(&status)
                && rv(&status) > rv(&labelled)
                && rv(&labelled) > rv(&created)
        );
    }

    #[test]
    fn update_keeps_status_and_identity_and_skips_no_ops() {
        let store = Store::new();
        let created = store
            .create(ResourceKind::StatefulSet, None, sts("mysql", 3))
            .expect("create");
        let with_status = store
            .mutate(ResourceKind::StatefulSet, None, "mysql", |o| {
                o["status"] = json!({"replicas": 3})
            })
            .expect("status");
        let mut put = created.clone();
        put["status"] = json!({"replicas": 99});
        put["metadata"]["uid"] = Value::Null;
        put["metadata"]["resourceVersion"] = json!("");
        let after = store
            .update(ResourceKind::StatefulSet, None, put)
            .expect("put");
        assert_eq!(
            after, with_status,
            "a PUT with only status changes is a no-op"
        );
        let mut status_put = after.clone();
        status_put["status"] = json!({"replicas": 2});
        status_put["spec"]["replicas"] = json!(7);
        let status_only = store
            .update_status(ResourceKind::StatefulSet, None, status_put)
            .expect("status put");
        assert_eq!(status_only["status"]["replicas"], 2);
        assert_eq!(status_only["spec"]["replicas"], 3, "/status ignores spec");
        assert_eq!(status_only["metadata"]["uid"], created["metadata"]["uid"]);
    }

    #[test]
    fn delete_with_finalizers_is_pending_until_they_are_removed() {
        let store = Store::new();
        let pvc = json!({"metadata": {"name": "data-mysql-0", "finalizers": ["kubernetes.io/pvc-protection"]}});
        store
            .create(ResourceKind::PersistentVolumeClaim, None, pvc)
            .expect("create");
        let outcome = store
            .delete(
                ResourceKind::PersistentVolumeClaim,
                None,
                "data-mysql-0",
                &DeleteOptions::default(),
            )
            .expect("delete");
        let DeleteOutcome::Pending(obj) = outcome else {
            panic!("expected Pending, got {outcome:?}")
        };
        assert!(obj["metadata"]["deletionTimestamp"].is_string());
        let mut rx = store.subscribe();
        store
            .mutate(
                ResourceKind::PersistentVolumeClaim,
                None,
                "data-mysql-0",
                |o| {
                    o["metadata"]["finalizers"] = json!([]);
                },
            )
            .expect("drop finalizer");
        assert!(
            store
                .get(ResourceKind::PersistentVolumeClaim, None, "data-mysql-0")
                .is_none()
        );
        assert_eq!(rx.try_recv().expect("event").event_type, EventType::Deleted);
    }

    #[test]
    fn deleting_a_bound_pod_waits_for_the_kubelet() {
        let store = Store::new();
        store
            .create(ResourceKind::Pod, None, bound_pod("mysql-0"))
            .expect("create");
        let outcome = store
            .delete(
                ResourceKind::Pod,
                None,
                "mysql-0",
                &DeleteOptions::default(),
            )
            .expect("delete");
        let DeleteOutcome::Pending(obj) = outcome else {
            panic!("expected Pending, got {outcome:?}")
        };
        assert_eq!(obj["metadata"]["deletionGracePeriodSeconds"], 10);
        let status = store
            .mutate(ResourceKind::Pod, None, "mysql-0", |o| {
                o["status"] = json!({"phase": "Running"})
            })
            .expect("kubelet status update");
        assert!(
            status["metadata"]["deletionTimestamp"].is_string(),
            "still there while terminating"
        );
        let force = DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        let outcome = store
            .delete(ResourceKind::Pod, None, "mysql-0", &force)
            .expect("force");
        assert!(matches!(outcome, DeleteOutcome::Deleted(_)), "{outcome:?}");
        assert!(store.get(ResourceKind::Pod, None, "mysql-0").is_none());
    }

    #[test]
    fn unbound_pod_and_plain_objects_are_deleted_at_once() {
        let store = Store::new();
        store
            .create(ResourceKind::Pod, None, ns_obj("p"))
            .expect("create");
        let outcome = store
            .delete(ResourceKind::Pod, None, "p", &DeleteOptions::default())
            .expect("delete");
        assert!(matches!(outcome, DeleteOutcome::Deleted(_)));
        let missing = store.delete(ResourceKind::Pod, None, "p", &DeleteOptions::default());
        assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    }

    #[test]
    fn delete_preconditions_conflict() {
        let store = Store::new();
        store
            .create(ResourceKind::Service, None, ns_obj("s"))
            .expect("create");
        let opts = DeleteOptions {
            precondition_uid: Some("other".into()),
            ..Default::default()
        };
        let err = store
            .delete(ResourceKind::Service, None, "s", &opts)
            .expect_err("uid mismatch");
        assert_eq!(err.code(), 409);
        assert!(store.get(ResourceKind::Service, None, "s").is_some());
    }

    #[test]
    fn orphan_delete_strips_owner_references() {
        let store = Store::new();
        let owner = store
            .create(ResourceKind::StatefulSet, None, sts("mysql", 1))
            .expect("owner");
        let uid = owner["metadata"]["uid"].clone();
        let pod = json!({"metadata": {"name": "mysql-0", "ownerReferences": [{"uid": uid, "kind": "StatefulSet", "name": "mysql", "apiVersion": "apps/v1"}]}});
        store.create(ResourceKind::Pod, None, pod).expect("pod");
        let opts = DeleteOptions {
            propagation_policy: Some("Orphan".into()),
            ..Default::default()
        };
        store
            .delete(ResourceKind::StatefulSet, None, "mysql", &opts)
            .expect("delete");
        let pod = store
            .get(ResourceKind::Pod, None, "mysql-0")
            .expect("pod kept");
        assert_eq!(pod["metadata"]["ownerReferences"], json!([]));
    }

    #[test]
    fn events_are_ordered_and_resumable() {
        let store = Store::new();
        let start = store.current_resource_version();
        store
            .create(ResourceKind::Service, None, ns_obj("a"))
            .expect("a");
        store
            .create(ResourceKind::Pod, None, ns_obj("p"))
            .expect("p");
        store
            .mutate(ResourceKind::Service, None, "a", |o| {
                o["spec"] = json!({"x": 1})
            })
            .expect("mod");
        let uid = store
            .get(ResourceKind::Service, None, "a")
            .and_then(|o| {
                o.pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .expect("uid");
        assert!(
            store
                .remove(ResourceKind::Service, None, "a", "another-uid")
                .is_none(),
            "an object with another uid is not removed"
        );
        store
            .remove(ResourceKind::Service, None, "a", &uid)
            .expect("removed");
        let events = store
            .events_since(ResourceKind::Service, None, start)
            .expect("history");
        let types: Vec<_> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(
            types,
            [EventType::Added, EventType::Modified, EventType::Deleted]
        );
        assert!(
            events
                .windows(2)
                .all(|w| w[0].resource_version < w[1].resource_version)
        );
        let later = store
            .events_since(ResourceKind::Service, None, events[1].resource_version)
            .expect("later");
        assert_eq!(later.len(), 1);
        let elsewhere = store
            .events_since(ResourceKind::Service, Some("kube-system"), start)
            .expect("ns filter");
        assert!(elsewhere.is_empty());
    }

    #[test]
    fn history_older_than_the_ring_is_gone() {
        let store = Store::with_history_len(20);
        store
            .create(ResourceKind::Service, None, ns_obj("a"))
            .expect("a");
        for i in 0..30 {
            store
                .mutate(ResourceKind::Service, None, "a", |o| {
                    o["spec"] = json!({"i": i})
                })
                .expect("mod");
        }
        let err = store
            .events_since(ResourceKind::Service, None, 1)
            .expect_err("compacted");
        assert_eq!(err.code(), 410);
        let recent = store.current_resource_version() - 10;
        let events = store
            .events_since(ResourceKind::Service, None, recent)
            .expect("recent");
        assert_eq!(events.len(), 10);
    }

    #[test]
    fn namespace_delete_terminates_and_blocks_new_content() {
        let store = Store::new();
        store
            .create(ResourceKind::Namespace, None, ns_obj("t"))
            .expect("ns");
        let outcome = store
            .delete(
                ResourceKind::Namespace,
                None,
                "t",
                &DeleteOptions::default(),
            )
            .expect("delete");
        let DeleteOutcome::Pending(ns) = outcome else {
            panic!("expected Pending")
        };
        assert_eq!(ns["status"]["phase"], "Terminating");
        let err = store
            .create(ResourceKind::Pod, Some("t"), ns_obj("p"))
            .expect_err("terminating");
        assert_eq!(err.code(), 403);
    }

    #[test]
    fn list_is_sorted_and_namespace_filtered() {
        let store = Store::new();
        store
            .create(ResourceKind::Namespace, None, ns_obj("other"))
            .expect("ns");
        store
            .create(ResourceKind::Pod, Some("other"), ns_obj("b"))
            .expect("b");
        store
            .create(ResourceKind::Pod, Some("default"), ns_obj("c"))
            .expect("c");
        store
            .create(ResourceKind::Pod, Some("default"), ns_obj("a"))
            .expect("a");
        let names = |v: Vec<Value>| -> Vec<String> {
            v.iter()
                .map(|o| {
                    o["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect()
        };
        assert_eq!(
            names(store.list(ResourceKind::Pod, Some("default"))),
            ["a", "c"]
        );
        assert_eq!(names(store.list(ResourceKind::Pod, None)), ["a", "c", "b"]);
        assert!(store.list(ResourceKind::Service, None).is_empty());
    }
}
