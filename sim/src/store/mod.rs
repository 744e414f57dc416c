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
mod tests;
