//! Unit tests of the store: server metadata, versions and conflicts, deletion (finalizers,
//! preconditions, bound pods), the event ring and namespaces.

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
        rv(&scaled) > rv(&status) && rv(&status) > rv(&labelled) && rv(&labelled) > rv(&created)
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
