//! The StatefulSet rules on hand-built objects.

use chrono::Utc;
use serde_json::{Value, json};

use super::*;
use crate::controllers::testkit::{created, deleted, replaced};

const STS_UID: &str = "sts-uid";

fn sts(replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "mysql", "namespace": "ns", "uid": STS_UID, "generation": 2, "resourceVersion": "10"},
        "spec": {
            "serviceName": "mysql",
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "mysql"}},
            "template": {"metadata": {"labels": {"app": "mysql"}},
                "spec": {"containers": [{"name": "mysql", "image": "mysql:5.7",
                    "volumeMounts": [{"name": "data", "mountPath": "/var/lib/mysql"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        },
    })
}

fn with(mut v: Value, pointer: &str, value: Value) -> Value {
    obj::set_at(&mut v, pointer, value);
    v
}

#[derive(Clone, Copy)]
enum Health {
    Ready,
    Pending,
    Terminating,
    Failed,
}

fn pod(set: &Value, ord: i64, health: Health) -> Value {
    let revision = revision_name("mysql", set.pointer("/spec/template"));
    let (phase, ready) = match health {
        Health::Ready | Health::Terminating => ("Running", "True"),
        Health::Pending => ("Pending", "False"),
        Health::Failed => ("Failed", "False"),
    };
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("mysql-{ord}"), "namespace": "ns", "uid": format!("pod-uid-{ord}"),
            "resourceVersion": "5",
            "labels": {"app": "mysql", REVISION_LABEL: revision, POD_INDEX_LABEL: ord.to_string()},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "mysql", "uid": STS_UID, "controller": true}]},
        "spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": format!("data-mysql-{ord}")}}]},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]},
    });
    if matches!(health, Health::Terminating) {
        obj::set_at(
            &mut p,
            "/metadata/deletionTimestamp",
            json!("2024-01-01T00:00:00Z"),
        );
    }
    p
}

fn claim(ord: i64) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": format!("data-mysql-{ord}"), "namespace": "ns", "uid": format!("pvc-uid-{ord}"), "resourceVersion": "3"},
        "spec": {}, "status": {"phase": "Bound"}})
}

fn run(set: &Value, pods: Vec<Value>, pvcs: Vec<Value>, faults: &[Fault]) -> Vec<Action> {
    let mut f = Faults::none();
    for fault in faults {
        f.insert(*fault);
    }
    let snap = Snapshot {
        statefulsets: vec![set.clone()],
        pods,
        pvcs,
        ..Default::default()
    };
    reconcile(set, &snap, &f, Utc::now())
}

fn healthy_pods(set: &Value, ordinals: std::ops::Range<i64>) -> Vec<Value> {
    ordinals.map(|i| pod(set, i, Health::Ready)).collect()
}

fn claims(ordinals: std::ops::Range<i64>) -> Vec<Value> {
    ordinals.map(claim).collect()
}

#[test]
fn ordered_ready_creates_ordinal_zero_first_with_its_claim_before_the_pod() {
    let set = sts(3);
    let actions = run(&set, vec![], vec![], &[]);
    assert_eq!(created(&actions, ResourceKind::Pod), vec!["mysql-0"]);
    assert_eq!(
        created(&actions, ResourceKind::PersistentVolumeClaim),
        vec!["data-mysql-0"]
    );
    let claim_at = actions.iter().position(|a| {
        matches!(
            a,
            Action::Create {
                kind: ResourceKind::PersistentVolumeClaim,
                ..
            }
        )
    });
    let pod_at = actions.iter().position(|a| {
        matches!(
            a,
            Action::Create {
                kind: ResourceKind::Pod,
                ..
            }
        )
    });
    assert!(claim_at < pod_at, "claim created before pod");
}

#[test]
fn ordered_ready_waits_until_predecessor_is_running_and_ready() {
    let set = sts(3);
    let actions = run(&set, vec![pod(&set, 0, Health::Pending)], claims(0..1), &[]);
    assert!(created(&actions, ResourceKind::Pod).is_empty());
}

#[test]
fn ordered_ready_creates_next_ordinal_once_all_lower_are_ready() {
    let set = sts(3);
    let actions = run(&set, healthy_pods(&set, 0..2), claims(0..2), &[]);
    assert_eq!(created(&actions, ResourceKind::Pod), vec!["mysql-2"]);
}

#[test]
fn ordered_ready_blocks_behind_a_terminating_pod() {
    let set = sts(3);
    let pods = vec![
        pod(&set, 0, Health::Ready),
        pod(&set, 1, Health::Terminating),
    ];
    let actions = run(&set, pods, claims(0..2), &[]);
    assert!(created(&actions, ResourceKind::Pod).is_empty());
}

#[test]
fn parallel_creates_every_missing_pod_at_once() {
    let set = with(sts(3), "/spec/podManagementPolicy", json!("Parallel"));
    let actions = run(&set, vec![], vec![], &[]);
    assert_eq!(
        created(&actions, ResourceKind::Pod),
        vec!["mysql-0", "mysql-1", "mysql-2"]
    );
}

#[test]
fn fault_scale_up_parallel_ignores_ordered_ready() {
    let set = sts(3);
    let actions = run(
        &set,
        vec![pod(&set, 0, Health::Pending)],
        claims(0..1),
        &[Fault::ScaleUpParallel],
    );
    assert_eq!(
        created(&actions, ResourceKind::Pod),
        vec!["mysql-1", "mysql-2"]
    );
}

#[test]
fn scale_down_deletes_only_the_highest_ordinal() {
    let set = sts(3);
    let actions = run(&set, healthy_pods(&set, 0..5), claims(0..5), &[]);
    assert_eq!(deleted(&actions, ResourceKind::Pod), vec!["mysql-4"]);
    assert!(
        deleted(&actions, ResourceKind::PersistentVolumeClaim).is_empty(),
        "Retain keeps claims"
    );
}

#[test]
fn scale_down_waits_until_the_terminating_pod_is_gone() {
    let set = sts(3);
    let mut pods = healthy_pods(&set, 0..4);
    pods.push(pod(&set, 4, Health::Terminating));
    let actions = run(&set, pods, claims(0..5), &[]);
    assert!(deleted(&actions, ResourceKind::Pod).is_empty());
}

#[test]
fn scale_down_waits_while_another_pod_is_unhealthy() {
    let set = sts(3);
    let mut pods = healthy_pods(&set, 0..5);
    pods[1] = pod(&set, 1, Health::Pending);
    let actions = run(&set, pods, claims(0..5), &[]);
    assert!(deleted(&actions, ResourceKind::Pod).is_empty());
}

#[test]
fn scale_down_may_delete_the_highest_pod_when_it_is_the_only_unhealthy_one() {
    let set = sts(3);
    let mut pods = healthy_pods(&set, 0..4);
    pods.push(pod(&set, 4, Health::Pending));
    let actions = run(&set, pods, claims(0..5), &[]);
    assert_eq!(deleted(&actions, ResourceKind::Pod), vec!["mysql-4"]);
}

#[test]
fn fault_scale_down_forward_deletes_the_lowest_condemned_first() {
    let set = sts(3);
    let actions = run(
        &set,
        healthy_pods(&set, 0..5),
        claims(0..5),
        &[Fault::ScaleDownForward],
    );
    assert_eq!(deleted(&actions, ResourceKind::Pod), vec!["mysql-3"]);
}

#[test]
fn parallel_scale_down_deletes_every_condemned_pod() {
    let set = with(sts(3), "/spec/podManagementPolicy", json!("Parallel"));
    let mut names = deleted(
        &run(&set, healthy_pods(&set, 0..5), claims(0..5), &[]),
        ResourceKind::Pod,
    );
    names.sort();
    assert_eq!(names, vec!["mysql-3", "mysql-4"]);
}

#[test]
fn deleted_pod_is_recreated_with_the_same_name_reusing_its_claim() {
    let set = sts(3);
    let pods = vec![pod(&set, 0, Health::Ready), pod(&set, 2, Health::Ready)];
    let actions = run(&set, pods, claims(0..3), &[]);
    assert_eq!(created(&actions, ResourceKind::Pod), vec!["mysql-1"]);
    assert!(
        created(&actions, ResourceKind::PersistentVolumeClaim).is_empty(),
        "existing claim reused"
    );
}

#[test]
fn failed_pod_is_deleted_so_it_can_be_recreated() {
    let set = sts(1);
    let actions = run(&set, vec![pod(&set, 0, Health::Failed)], claims(0..1), &[]);
    assert_eq!(deleted(&actions, ResourceKind::Pod), vec!["mysql-0"]);
    assert!(created(&actions, ResourceKind::Pod).is_empty());
}

#[test]
fn claim_being_deleted_blocks_pod_creation() {
    let set = sts(1);
    let terminating = with(
        claim(0),
        "/metadata/deletionTimestamp",
        json!("2024-01-01T00:00:00Z"),
    );
    let actions = run(&set, vec![], vec![terminating], &[]);
    assert!(created(&actions, ResourceKind::Pod).is_empty());
}

/// The first pod the actions create.
fn created_pod(actions: &[Action]) -> &Value {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Create {
                kind: ResourceKind::Pod,
                object,
                ..
            } => Some(object),
            _ => None,
        })
        .expect("a pod is created")
}

#[test]
fn new_pod_has_stable_identity_labels_owner_and_claim_volume() {
    let set = sts(1);
    let actions = run(&set, vec![], vec![], &[]);
    let p = created_pod(&actions);
    assert_eq!(obj::str_at(p, "/spec/hostname"), Some("mysql-0"));
    assert_eq!(obj::str_at(p, "/spec/subdomain"), Some("mysql"));
    let labels = obj::labels(p);
    assert_eq!(
        labels.get(POD_NAME_LABEL).map(String::as_str),
        Some("mysql-0")
    );
    assert_eq!(labels.get(POD_INDEX_LABEL).map(String::as_str), Some("0"));
    assert_eq!(labels.get("app").map(String::as_str), Some("mysql"));
    assert!(
        labels
            .get(REVISION_LABEL)
            .is_some_and(|r| r.starts_with("mysql-"))
    );
    assert!(obj::controlled_by(p, STS_UID));
    assert_eq!(
        obj::str_at(p, "/metadata/ownerReferences/0/kind"),
        Some("StatefulSet")
    );
    assert_eq!(
        obj::str_at(p, "/spec/volumes/0/persistentVolumeClaim/claimName"),
        Some("data-mysql-0")
    );
    assert_eq!(obj::str_at(p, "/status/phase"), Some("Pending"));
    let Some(Action::Create { object: c, .. }) = actions.iter().find(|a| {
        matches!(
            a,
            Action::Create {
                kind: ResourceKind::PersistentVolumeClaim,
                ..
            }
        )
    }) else {
        panic!("claim created");
    };
    assert_eq!(obj::labels(c).get("app").map(String::as_str), Some("mysql"));
    assert_eq!(obj::finalizers(c), vec![PVC_PROTECTION]);
    assert!(obj::owner_refs(c).is_empty(), "Retain: no owner");
}

#[test]
fn fault_names_random_gives_random_suffix_but_keeps_ordinal_claims() {
    let set = sts(1);
    let actions = run(&set, vec![], vec![], &[Fault::NamesRandom]);
    let names = created(&actions, ResourceKind::Pod);
    let name = names.first().expect("pod created");
    assert!(
        name.starts_with("mysql-") && parse_ordinal("mysql", name).is_none(),
        "{name}"
    );
    assert_eq!(
        created(&actions, ResourceKind::PersistentVolumeClaim),
        vec!["data-mysql-0"]
    );
}

#[test]
fn fault_pods_no_hostname_leaves_out_hostname_and_subdomain_only() {
    let set = sts(1);
    let actions = run(&set, vec![], vec![], &[Fault::PodsNoHostname]);
    let p = created_pod(&actions);
    assert_eq!(obj::name(p), "mysql-0");
    assert_eq!(obj::str_at(p, "/spec/hostname"), None, "{p}");
    assert_eq!(obj::str_at(p, "/spec/subdomain"), None, "{p}");
    assert_eq!(
        obj::labels(p).get(POD_NAME_LABEL).map(String::as_str),
        Some("mysql-0")
    );
}

#[test]
fn fault_pods_no_ordinal_labels_leaves_out_both_labels_only() {
    let set = sts(1);
    let actions = run(&set, vec![], vec![], &[Fault::PodsNoOrdinalLabels]);
    let p = created_pod(&actions);
    assert_eq!(obj::name(p), "mysql-0");
    let labels = obj::labels(p);
    assert_eq!(labels.get(POD_NAME_LABEL), None, "{p}");
    assert_eq!(labels.get(POD_INDEX_LABEL), None, "{p}");
    assert_eq!(labels.get("app").map(String::as_str), Some("mysql"), "{p}");
    assert_eq!(obj::str_at(p, "/spec/hostname"), Some("mysql-0"), "{p}");
}

#[test]
fn fault_names_random_tracks_ordinals_by_index_label() {
    let set = sts(2);
    let mut p = pod(&set, 0, Health::Ready);
    obj::set_at(&mut p, "/metadata/name", json!("mysql-bcdfg"));
    let actions = run(&set, vec![p], claims(0..1), &[Fault::NamesRandom]);
    let names = created(&actions, ResourceKind::Pod);
    assert_eq!(names.len(), 1, "only ordinal 1 is missing: {names:?}");
}

#[test]
fn retention_when_deleted_delete_makes_the_set_own_new_claims() {
    let set = with(
        sts(1),
        "/spec/persistentVolumeClaimRetentionPolicy",
        json!({"whenDeleted": "Delete", "whenScaled": "Retain"}),
    );
    let actions = run(&set, vec![], vec![], &[]);
    let Some(Action::Create { object: c, .. }) = actions.iter().find(|a| {
        matches!(
            a,
            Action::Create {
                kind: ResourceKind::PersistentVolumeClaim,
                ..
            }
        )
    }) else {
        panic!("claim created");
    };
    assert_eq!(
        obj::str_at(c, "/metadata/ownerReferences/0/uid"),
        Some(STS_UID)
    );
}

#[test]
fn retention_when_scaled_delete_hands_condemned_claims_to_their_pod() {
    let set = with(
        sts(3),
        "/spec/persistentVolumeClaimRetentionPolicy",
        json!({"whenDeleted": "Retain", "whenScaled": "Delete"}),
    );
    let actions = run(&set, healthy_pods(&set, 0..4), claims(0..4), &[]);
    let fixed = replaced(&actions, ResourceKind::PersistentVolumeClaim);
    assert_eq!(fixed.len(), 1);
    assert_eq!(obj::name(&fixed[0]), "data-mysql-3");
    assert_eq!(
        obj::str_at(&fixed[0], "/metadata/ownerReferences/0/uid"),
        Some("pod-uid-3")
    );
    assert_eq!(deleted(&actions, ResourceKind::Pod), vec!["mysql-3"]);
}

#[test]
fn fault_pvc_retain_despite_policy_keeps_condemned_claims_unowned() {
    let set = with(
        sts(3),
        "/spec/persistentVolumeClaimRetentionPolicy",
        json!({"whenDeleted": "Delete", "whenScaled": "Delete"}),
    );
    let actions = run(
        &set,
        healthy_pods(&set, 0..4),
        claims(0..4),
        &[Fault::PvcRetainDespitePolicy],
    );
    assert!(
        replaced(&actions, ResourceKind::PersistentVolumeClaim).is_empty(),
        "no claim is handed to its pod or the set: {actions:?}"
    );
    assert_eq!(deleted(&actions, ResourceKind::Pod), vec!["mysql-3"]);
}

#[test]
fn retention_retain_never_deletes_claims_on_scale_down() {
    let set = sts(1);
    let actions = run(&set, healthy_pods(&set, 0..2), claims(0..2), &[]);
    assert!(replaced(&actions, ResourceKind::PersistentVolumeClaim).is_empty());
    assert!(deleted(&actions, ResourceKind::PersistentVolumeClaim).is_empty());
}

#[test]
fn fault_pvc_delete_on_scale_down_deletes_retained_claims() {
    let set = sts(3);
    let actions = run(
        &set,
        healthy_pods(&set, 0..4),
        claims(0..4),
        &[Fault::PvcDeleteOnScaleDown],
    );
    assert_eq!(
        deleted(&actions, ResourceKind::PersistentVolumeClaim),
        vec!["data-mysql-3"]
    );
}

#[test]
fn fault_pvc_new_on_recreate_replaces_the_claim_before_recreating() {
    let set = sts(1);
    let actions = run(&set, vec![], claims(0..1), &[Fault::PvcNewOnRecreate]);
    assert_eq!(
        deleted(&actions, ResourceKind::PersistentVolumeClaim),
        vec!["data-mysql-0"]
    );
    assert!(created(&actions, ResourceKind::Pod).is_empty());
    let without = run(&set, vec![], claims(0..1), &[]);
    assert!(
        deleted(&without, ResourceKind::PersistentVolumeClaim).is_empty(),
        "without the fault the claim is reused"
    );
}

#[test]
fn status_counts_ready_pods_and_tracks_generation_and_revision() {
    let set = sts(3);
    let pods = vec![pod(&set, 0, Health::Ready), pod(&set, 1, Health::Pending)];
    let actions = run(&set, pods, claims(0..2), &[]);
    let updated = replaced(&actions, ResourceKind::StatefulSet);
    let status = &updated[0]["status"];
    assert_eq!(status["replicas"], 2);
    assert_eq!(status["readyReplicas"], 1);
    assert_eq!(status["availableReplicas"], 1);
    assert_eq!(status["observedGeneration"], 2);
    assert_eq!(status["updatedReplicas"], 2);
    assert_eq!(status["collisionCount"], 0);
    assert_eq!(
        status["updateRevision"],
        revision_name("mysql", set.pointer("/spec/template")).as_str()
    );
}

#[test]
fn status_not_rewritten_when_unchanged() {
    let set = sts(1);
    let pods = healthy_pods(&set, 0..1);
    let first = replaced(
        &run(&set, pods.clone(), claims(0..1), &[]),
        ResourceKind::StatefulSet,
    );
    let settled = first.into_iter().next().expect("status written");
    assert!(
        replaced(
            &run(&settled, pods, claims(0..1), &[]),
            ResourceKind::StatefulSet
        )
        .is_empty()
    );
}

#[test]
fn template_change_rolls_the_highest_ordinal_first() {
    let old = sts(3);
    let pods = healthy_pods(&old, 0..3);
    let new = with(
        old,
        "/spec/template/spec/containers/0/image",
        json!("mysql:8.0"),
    );
    let actions = run(&new, pods, claims(0..3), &[]);
    assert_eq!(deleted(&actions, ResourceKind::Pod), vec!["mysql-2"]);
}

#[test]
fn orphan_pod_matching_the_selector_is_adopted() {
    let set = sts(1);
    let orphan = with(
        pod(&set, 0, Health::Ready),
        "/metadata/ownerReferences",
        json!([]),
    );
    let actions = run(&set, vec![orphan], claims(0..1), &[]);
    let adopted = replaced(&actions, ResourceKind::Pod);
    assert!(obj::controlled_by(&adopted[0], STS_UID));
    assert!(created(&actions, ResourceKind::Pod).is_empty());
}

#[test]
fn deleted_set_does_nothing_but_status() {
    let set = with(
        sts(3),
        "/metadata/deletionTimestamp",
        json!("2024-01-01T00:00:00Z"),
    );
    let actions = run(&set, vec![], vec![], &[]);
    assert!(created(&actions, ResourceKind::Pod).is_empty());
}

#[test]
fn ordinal_parsing_follows_upstream() {
    assert_eq!(parse_ordinal("mysql", "mysql-12"), Some(12));
    assert_eq!(parse_ordinal("mysql", "mysql-x"), None);
    assert_eq!(parse_ordinal("mysql", "other-1"), None);
    assert_eq!(parse_ordinal("my-sql", "my-sql-0"), Some(0));
}

#[test]
fn revision_is_stable_and_changes_with_the_template() {
    let set = sts(1);
    let a = revision_name("mysql", set.pointer("/spec/template"));
    assert_eq!(a, revision_name("mysql", set.pointer("/spec/template")));
    let changed = with(set, "/spec/template/metadata/labels/extra", json!("x"));
    assert_ne!(a, revision_name("mysql", changed.pointer("/spec/template")));
}

fn rolled(set: &Value) -> Value {
    with(
        set.clone(),
        "/spec/template/metadata/annotations",
        json!({"conformance/rollout": "1"}),
    )
}

#[test]
fn rolling_update_keeps_ordinals_below_the_partition() {
    let old = sts(3);
    let pods = healthy_pods(&old, 0..3);
    let mut new = rolled(&old);
    obj::set_at(
        &mut new,
        "/spec/updateStrategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
    );
    let mut updated = pods.clone();
    updated[2] = pod(&new, 2, Health::Ready);
    assert_eq!(
        deleted(&run(&new, pods, claims(0..3), &[]), ResourceKind::Pod),
        vec!["mysql-2"]
    );
    assert!(
        deleted(&run(&new, updated, claims(0..3), &[]), ResourceKind::Pod).is_empty(),
        "mysql-0 and mysql-1 are below the partition"
    );
}

#[test]
fn rolling_update_waits_for_the_replacement_to_be_ready() {
    let old = sts(3);
    let new = rolled(&old);
    let mut pods = healthy_pods(&old, 0..3);
    pods[2] = pod(&new, 2, Health::Pending);
    assert!(deleted(&run(&new, pods, claims(0..3), &[]), ResourceKind::Pod).is_empty());
}

#[test]
fn on_delete_replaces_nothing() {
    let old = sts(3);
    let pods = healthy_pods(&old, 0..3);
    let new = with(
        rolled(&old),
        "/spec/updateStrategy",
        json!({"type": "OnDelete"}),
    );
    assert!(deleted(&run(&new, pods, claims(0..3), &[]), ResourceKind::Pod).is_empty());
}

#[test]
fn fault_update_forward_replaces_the_lowest_ordinal_first() {
    let old = sts(3);
    let pods = healthy_pods(&old, 0..3);
    let actions = run(&rolled(&old), pods, claims(0..3), &[Fault::UpdateForward]);
    assert_eq!(deleted(&actions, ResourceKind::Pod), vec!["mysql-0"]);
}

#[test]
fn fault_update_ignore_partition_replaces_below_the_partition() {
    let old = sts(3);
    let mut new = rolled(&old);
    obj::set_at(
        &mut new,
        "/spec/updateStrategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
    );
    let mut pods = healthy_pods(&old, 0..3);
    pods[2] = pod(&new, 2, Health::Ready);
    let actions = run(&new, pods, claims(0..3), &[Fault::UpdateIgnorePartition]);
    assert_eq!(deleted(&actions, ResourceKind::Pod), vec!["mysql-1"]);
}

#[test]
fn fault_update_parallel_deletes_every_outdated_pod_at_once() {
    let old = sts(3);
    let pods = healthy_pods(&old, 0..3);
    let actions = run(&rolled(&old), pods, claims(0..3), &[Fault::UpdateParallel]);
    assert_eq!(
        deleted(&actions, ResourceKind::Pod),
        vec!["mysql-2", "mysql-1", "mysql-0"]
    );
}

#[test]
fn a_pod_recreated_below_the_partition_keeps_the_current_revision() {
    let old = sts(3);
    let old_revision = revision_name("mysql", old.pointer("/spec/template"));
    // The controller saw the old template before the change.
    run(&old, healthy_pods(&old, 0..3), claims(0..3), &[]);
    let mut new = rolled(&old);
    obj::set_at(
        &mut new,
        "/spec/updateStrategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}),
    );
    obj::set_at(&mut new, "/status/currentRevision", json!(old_revision));
    let pods = vec![pod(&old, 0, Health::Ready), pod(&new, 2, Health::Ready)];
    let actions = run(&new, pods, claims(0..3), &[]);
    let recreated = created_pod(&actions);
    assert_eq!(obj::name(recreated), "mysql-1");
    assert_eq!(
        obj::labels(recreated).get(REVISION_LABEL),
        Some(&old_revision)
    );
    assert!(
        recreated
            .pointer("/metadata/annotations/conformance~1rollout")
            .is_none(),
        "made from the old template: {recreated}"
    );
}

/// ControllerRevision `name` of the test set, numbered `revision`, as the store holds it.
fn controller_revision(name: &str, revision: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": name, "namespace": "ns", "uid": format!("{name}-uid"), "resourceVersion": "4",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "mysql", "uid": STS_UID, "controller": true}]},
        "data": {"spec": {"template": {"$patch": "replace"}}},
        "revision": revision,
    })
}

fn run_with_revisions(set: &Value, revisions: Vec<Value>, faults: &[Fault]) -> Vec<Action> {
    let mut f = Faults::none();
    for fault in faults {
        f.insert(*fault);
    }
    let snap = Snapshot {
        statefulsets: vec![set.clone()],
        pods: healthy_pods(set, 0..1),
        pvcs: claims(0..1),
        controllerrevisions: revisions,
        ..Default::default()
    };
    reconcile(set, &snap, &f, Utc::now())
}

#[test]
fn each_template_gets_a_controller_revision_numbered_above_the_last() {
    let old = sts(1);
    let old_name = revision_name("mysql", old.pointer("/spec/template"));
    let actions = run_with_revisions(&old, vec![], &[]);
    assert_eq!(
        created(&actions, ResourceKind::ControllerRevision),
        vec![old_name.clone()]
    );
    let first = actions
        .iter()
        .find_map(|a| match a {
            Action::Create {
                kind: ResourceKind::ControllerRevision,
                object,
                ..
            } => Some(object.clone()),
            _ => None,
        })
        .expect("a ControllerRevision is created");
    assert_eq!(first["revision"], 1);
    assert!(obj::controlled_by(&first, STS_UID), "{first}");
    assert_eq!(first["data"]["spec"]["template"]["$patch"], "replace");
    assert_eq!(
        first["data"]["spec"]["template"]["metadata"]["labels"]["app"],
        "mysql"
    );
    let stored = vec![controller_revision(&old_name, 1)];
    assert!(
        created(
            &run_with_revisions(&old, stored.clone(), &[]),
            ResourceKind::ControllerRevision
        )
        .is_empty()
    );
    let new = rolled(&old);
    let new_name = revision_name("mysql", new.pointer("/spec/template"));
    let actions = run_with_revisions(&new, stored.clone(), &[]);
    assert_eq!(
        created(&actions, ResourceKind::ControllerRevision),
        vec![new_name.clone()]
    );
    assert!(
        actions.iter().any(|a| matches!(a, Action::Create { kind: ResourceKind::ControllerRevision, object, .. } if object["revision"] == 2))
    );
    // Back to the first template: its revision is renumbered above the second.
    let both = vec![
        controller_revision(&old_name, 1),
        controller_revision(&new_name, 2),
    ];
    let renumbered = replaced(
        &run_with_revisions(&old, both, &[]),
        ResourceKind::ControllerRevision,
    );
    assert_eq!(renumbered.len(), 1);
    assert_eq!(renumbered[0]["metadata"]["name"], old_name.as_str());
    assert_eq!(renumbered[0]["revision"], 3);
}

#[test]
fn no_revision_object_creates_only_the_first_controller_revision() {
    let old = sts(1);
    let fault = [Fault::UpdateNoRevisionObject];
    assert_eq!(
        created(
            &run_with_revisions(&old, vec![], &fault),
            ResourceKind::ControllerRevision
        )
        .len(),
        1
    );
    let old_name = revision_name("mysql", old.pointer("/spec/template"));
    let stored = vec![controller_revision(&old_name, 1)];
    let actions = run_with_revisions(&rolled(&old), stored, &fault);
    assert!(created(&actions, ResourceKind::ControllerRevision).is_empty());
}
