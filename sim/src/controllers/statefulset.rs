//! The StatefulSet controller, following upstream `stateful_set_control.go`.
//!
//! Each pod template is a ControllerRevision `<set>-<hash>` (upstream
//! `getStatefulSetRevisions`), numbered one above the set's highest; `revisionHistoryLimit`
//! is not applied (old revisions stay until the set is deleted and the GC removes them).
//! Pods are `<set>-<ordinal>`; claims `<template>-<set>-<ordinal>` are created before the
//! pod. With OrderedReady (the default, "monotonic") a pod is created only when every lower
//! ordinal is Running and Ready, and condemned pods are deleted highest ordinal first, one at
//! a time, each fully gone before the next. Parallel creates and deletes all at once.
//!
//! The sim's faults bend exactly one of these rules each (see [`crate::config::Fault`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{Map, Value, json};

use super::{
    Action, EventRecord, POD_INDEX_LABEL, POD_NAME_LABEL, PVC_PROTECTION, REVISION_LABEL, Snapshot,
    defaults, obj,
};
use crate::config::{Fault, Faults, ON_DELETE_ROLL_DELAY};
use crate::store::ResourceKind;

const COMPONENT: &str = "statefulset-controller";

/// Decides what the controller does for one StatefulSet.
pub fn reconcile(sts: &Value, snap: &Snapshot, faults: &Faults, now: DateTime<Utc>) -> Vec<Action> {
    let set = Set::parse(sts, snap, faults);
    let mut ctl = Control {
        set: &set,
        snap,
        faults,
        now,
        actions: Vec::new(),
    };
    if !obj::is_terminating(sts) {
        ctl.ensure_update_revision();
    }
    let owned = ctl.claim_pods();
    let (slots, condemned) = set.partition(&owned);
    if !obj::is_terminating(sts) {
        ctl.manage(&slots, &condemned);
    }
    let status = set.status(&owned, now);
    if let Some(updated) = status_update(sts, status) {
        ctl.actions
            .push(Action::replace(ResourceKind::StatefulSet, updated));
    }
    ctl.actions
}

/// `persistentVolumeClaimRetentionPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Retention {
    delete_when_scaled: bool,
    delete_when_deleted: bool,
}

/// The parts of a StatefulSet the controller reads.
struct Set<'a> {
    raw: &'a Value,
    name: &'a str,
    namespace: &'a str,
    uid: &'a str,
    replicas: i64,
    start: i64,
    parallel: bool,
    min_ready_seconds: i64,
    retention: Retention,
    update_revision: String,
    current_revision: String,
    on_delete: bool,
    partition: i64,
    default_class: Option<&'a str>,
    random_names: bool,
    /// `pods:no-hostname`: new pods get neither hostname nor subdomain.
    no_hostname: bool,
    /// `pods:no-ordinal-labels`: new pods get neither the pod-name nor the pod-index label.
    no_ordinal_labels: bool,
}

impl<'a> Set<'a> {
    fn parse(raw: &'a Value, snap: &'a Snapshot, faults: &Faults) -> Set<'a> {
        let ignore_policy = faults.has(Fault::PvcRetainDespitePolicy);
        let policy = |field: &str| {
            !ignore_policy
                && obj::str_at(
                    raw,
                    &format!("/spec/persistentVolumeClaimRetentionPolicy/{field}"),
                ) == Some("Delete")
        };
        let name = obj::name(raw);
        let update_revision = revision_name(name, raw.pointer("/spec/template"));
        remember_template(&update_revision, raw.pointer("/spec/template"));
        let current_revision = obj::str_at(raw, "/status/currentRevision")
            .filter(|r| !r.is_empty())
            .map_or_else(|| update_revision.clone(), str::to_string);
        Set {
            raw,
            name,
            namespace: obj::namespace(raw),
            uid: obj::uid(raw),
            replicas: int_at(raw, "/spec/replicas").unwrap_or(1).max(0),
            start: int_at(raw, "/spec/ordinals/start").unwrap_or(0).max(0),
            parallel: obj::str_at(raw, "/spec/podManagementPolicy") == Some("Parallel"),
            min_ready_seconds: int_at(raw, "/spec/minReadySeconds").unwrap_or(0),
            retention: Retention {
                delete_when_scaled: policy("whenScaled"),
                delete_when_deleted: policy("whenDeleted")
                    && !faults.has(Fault::PvcWhenDeletedIgnored),
            },
            update_revision,
            current_revision,
            on_delete: obj::str_at(raw, "/spec/updateStrategy/type") == Some("OnDelete"),
            partition: int_at(raw, "/spec/updateStrategy/rollingUpdate/partition").unwrap_or(0),
            default_class: defaults::default_storage_class(&snap.storageclasses),
            random_names: faults.has(Fault::NamesRandom),
            no_hostname: faults.has(Fault::PodsNoHostname),
            no_ordinal_labels: faults.has(Fault::PodsNoOrdinalLabels),
        }
    }

    fn in_range(&self, ordinal: i64) -> bool {
        ordinal >= self.start && ordinal < self.start + self.replicas
    }

    /// The pod's ordinal: parsed from `<set>-<n>`, or (names:random) its pod-index label.
    fn ordinal_of(&self, pod: &Value) -> Option<i64> {
        if self.random_names {
            return obj::labels(pod)
                .get(POD_INDEX_LABEL)
                .and_then(|i| i.parse().ok());
        }
        parse_ordinal(self.name, obj::name(pod))
    }

    /// Splits owned pods into the slots `[start, start+replicas)` and the condemned rest.
    /// Pods whose ordinal cannot be parsed are ignored, as upstream does.
    fn partition<'p>(
        &self,
        owned: &[&'p Value],
    ) -> (BTreeMap<i64, &'p Value>, Vec<(i64, &'p Value)>) {
        let mut slots = BTreeMap::new();
        let mut condemned = Vec::new();
        for pod in owned {
            let Some(ord) = self.ordinal_of(pod) else {
                continue;
            };
            if self.in_range(ord) && !slots.contains_key(&ord) {
                slots.insert(ord, *pod);
            } else {
                condemned.push((ord, *pod));
            }
        }
        (slots, condemned)
    }

    fn pod_revision<'p>(&self, pod: &'p Value) -> Option<&'p str> {
        obj::str_at(pod, &format!("/metadata/labels/{REVISION_LABEL}"))
    }

    /// Upstream `isRunningAndAvailable`: ready for at least minReadySeconds.
    fn available(&self, pod: &Value, now: DateTime<Utc>) -> bool {
        if !obj::running_and_ready(pod) {
            return false;
        }
        if self.min_ready_seconds <= 0 {
            return true;
        }
        obj::condition(pod, "Ready")
            .and_then(|c| obj::timestamp(c, "/lastTransitionTime"))
            .is_some_and(|t| (now - t).num_seconds() >= self.min_ready_seconds)
    }

    /// Status computed from the owned pods (upstream `computeReplicaStatus`).
    fn status(&self, owned: &[&Value], now: DateTime<Utc>) -> Value {
        let created: Vec<&&Value> = owned
            .iter()
            .filter(|p| !obj::pod_phase(p).is_empty())
            .collect();
        let replicas = created.len();
        let ready = created.iter().filter(|p| obj::running_and_ready(p)).count();
        let available = created.iter().filter(|p| self.available(p, now)).count();
        let live: Vec<&&&Value> = created.iter().filter(|p| !obj::is_terminating(p)).collect();
        let updated = live
            .iter()
            .filter(|p| self.pod_revision(p) == Some(self.update_revision.as_str()))
            .count();
        let mut current = live
            .iter()
            .filter(|p| self.pod_revision(p) == Some(self.current_revision.as_str()))
            .count();
        let mut current_revision = self.current_revision.clone();
        // Upstream completeRollingUpdate.
        if !self.on_delete && updated == replicas && ready == replicas {
            current = updated;
            current_revision = self.update_revision.clone();
        }
        let mut status = Map::new();
        status.insert(
            "observedGeneration".into(),
            json!(int_at(self.raw, "/metadata/generation").unwrap_or(1)),
        );
        status.insert("replicas".into(), json!(replicas));
        // Go's omitempty: zero counts are left out, like a real API server's output.
        for (field, value) in [
            ("readyReplicas", ready),
            ("currentReplicas", current),
            ("updatedReplicas", updated),
        ] {
            if value > 0 {
                status.insert(field.into(), json!(value));
            }
        }
        status.insert("availableReplicas".into(), json!(available));
        status.insert("currentRevision".into(), json!(current_revision));
        status.insert("updateRevision".into(), json!(self.update_revision));
        status.insert("collisionCount".into(), json!(0));
        Value::Object(status)
    }
}

/// The StatefulSet with `status` if it differs from the stored one (other status fields,
/// such as conditions, are kept).
fn status_update(sts: &Value, status: Value) -> Option<Value> {
    let mut merged = sts.get("status").cloned().unwrap_or_else(|| json!({}));
    for field in ["readyReplicas", "currentReplicas", "updatedReplicas"] {
        obj::remove_at(&mut merged, &format!("/{field}"));
    }
    if let (Some(m), Value::Object(s)) = (merged.as_object_mut(), status) {
        m.extend(s);
    }
    if sts.get("status") == Some(&merged) {
        return None;
    }
    let mut updated = sts.clone();
    obj::set_at(&mut updated, "/status", merged);
    Some(updated)
}

/// What processing one replica slot says about progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Continue,
    /// Monotonic mode must stop here this round.
    Block,
}

struct Control<'a> {
    set: &'a Set<'a>,
    snap: &'a Snapshot,
    faults: &'a Faults,
    now: DateTime<Utc>,
    actions: Vec<Action>,
}

impl<'a> Control<'a> {
    /// The update revision's ControllerRevision exists and has the highest number of the
    /// set's: created one above the highest, or renumbered when the set returns to an
    /// earlier template (upstream `getStatefulSetRevisions`). A name taken by an object the
    /// set does not control is left alone (upstream would bump `collisionCount`).
    /// `update:no-revision-object` creates only the set's first one.
    fn ensure_update_revision(&mut self) {
        let set = self.set;
        let number = |r: &Value| r.get("revision").and_then(Value::as_i64).unwrap_or(0);
        let owned: Vec<&Value> = self
            .snap
            .controllerrevisions
            .iter()
            .filter(|r| obj::namespace(r) == set.namespace && obj::controlled_by(r, set.uid))
            .collect();
        let highest = owned.iter().map(|r| number(r)).max().unwrap_or(0);
        let existing =
            self.snap.controllerrevisions.iter().find(|r| {
                obj::namespace(r) == set.namespace && obj::name(r) == set.update_revision
            });
        match existing {
            Some(r) if obj::controlled_by(r, set.uid) => {
                let stale = owned
                    .iter()
                    .any(|o| obj::uid(o) != obj::uid(r) && number(o) >= number(r));
                if stale {
                    let mut renumbered = r.clone();
                    obj::set_at(&mut renumbered, "/revision", json!(highest + 1));
                    self.actions.push(Action::replace(
                        ResourceKind::ControllerRevision,
                        renumbered,
                    ));
                }
            }
            Some(_) => {}
            None if self.faults.has(Fault::UpdateNoRevisionObject) && !owned.is_empty() => {}
            None => self.actions.push(Action::create(
                ResourceKind::ControllerRevision,
                self.new_revision(highest + 1),
            )),
        }
    }

    /// The ControllerRevision of the set's current template (upstream `newRevision`): the
    /// template's labels plus `controller.kubernetes.io/hash`, owned by the set, its data
    /// the strategic-merge patch that replaces the template.
    fn new_revision(&self, revision: i64) -> Value {
        let set = self.set;
        let template = set.raw.pointer("/spec/template");
        let mut labels = template
            .map(|t| obj::string_map(t, "/metadata/labels"))
            .unwrap_or_default();
        let hash = set
            .update_revision
            .strip_prefix(&format!("{}-", set.name))
            .unwrap_or(&set.update_revision);
        labels.insert("controller.kubernetes.io/hash".into(), hash.to_string());
        let mut patch = template.cloned().unwrap_or_else(|| json!({}));
        obj::set_at(&mut patch, "/$patch", json!("replace"));
        json!({
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": set.update_revision,
                "namespace": set.namespace,
                "labels": labels,
                "ownerReferences": [obj::owner_reference(set.raw, true)],
            },
            "data": {"spec": {"template": patch}},
            "revision": revision,
        })
    }

    /// Pods this set controls, adopting matching orphans (upstream ClaimPods).
    fn claim_pods(&mut self) -> Vec<&'a Value> {
        let selector = self
            .set
            .raw
            .pointer("/spec/selector")
            .cloned()
            .unwrap_or(Value::Null);
        let mut owned = Vec::new();
        for pod in self.snap.pods_in(self.set.namespace) {
            if obj::controlled_by(pod, self.set.uid) {
                owned.push(pod);
                continue;
            }
            let orphan = obj::controller_ref(pod).is_none() && !obj::is_terminating(pod);
            if orphan
                && !obj::is_terminating(self.set.raw)
                && obj::selector_matches(&selector, &obj::labels(pod))
                && self.set.ordinal_of(pod).is_some()
                && (self.set.random_names || parse_ordinal(self.set.name, obj::name(pod)).is_some())
            {
                let mut adopted = pod.clone();
                let mut refs = obj::owner_refs(pod).to_vec();
                refs.push(obj::owner_reference(self.set.raw, true));
                obj::set_at(
                    &mut adopted,
                    "/metadata/ownerReferences",
                    Value::Array(refs),
                );
                self.actions
                    .push(Action::replace(ResourceKind::Pod, adopted));
                owned.push(pod);
            }
        }
        owned
    }

    fn manage(&mut self, slots: &BTreeMap<i64, &'a Value>, condemned: &[(i64, &'a Value)]) {
        let monotonic = !self.set.parallel;
        let ordered_scale_up = monotonic && !self.faults.has(Fault::ScaleUpParallel);
        let mut blocked = false;
        for ord in self.set.start..self.set.start + self.set.replicas {
            let step = self.process_replica(ord, slots.get(&ord).copied(), ordered_scale_up);
            if step == Step::Block {
                blocked = true;
                if ordered_scale_up {
                    break;
                }
            }
        }
        // With scale-up:parallel the loop above never stops early, but scale-down and
        // updates still wait as in monotonic mode: the fault breaks only the scale-up rule.
        if blocked && monotonic {
            return;
        }
        for (ord, pod) in condemned {
            self.fix_claims(*ord, Some(pod), false);
        }
        if self.process_condemned(slots, condemned, monotonic) == Step::Block {
            return;
        }
        if !self.set.on_delete || self.rolls_on_delete_set() {
            self.rolling_update(slots);
        }
    }

    /// `update:on-delete-rolls-later`: an OnDelete set whose update revision was first seen
    /// [`ON_DELETE_ROLL_DELAY`] ago or more is rolled as a RollingUpdate would be.
    fn rolls_on_delete_set(&self) -> bool {
        if !self.faults.has(Fault::UpdateOnDeleteRollsLater)
            || self.set.update_revision == self.set.current_revision
        {
            return false;
        }
        let since = first_seen(&self.set.update_revision, self.now);
        let rolls = (self.now - since)
            .to_std()
            .is_ok_and(|waited| waited >= ON_DELETE_ROLL_DELAY);
        if rolls {
            tracing::warn!(set = %self.set.name, revision = %self.set.update_revision, "fault update:on-delete-rolls-later: rolling an OnDelete set by itself");
        }
        rolls
    }

    fn process_replica(&mut self, ord: i64, pod: Option<&Value>, ordered: bool) -> Step {
        let Some(pod) = pod else {
            return self.create_replica(ord, ordered);
        };
        if matches!(obj::pod_phase(pod), "Failed" | "Succeeded") {
            if !obj::is_terminating(pod) {
                self.delete_pod(pod);
            }
            return Step::Block;
        }
        if obj::pod_phase(pod) == "Pending" {
            self.create_missing_claims(ord, pod_name_of(pod));
        }
        if obj::is_terminating(pod) || !self.available_for_scale_up(pod) {
            return Step::Block;
        }
        self.fix_claims(ord, Some(pod), true);
        Step::Continue
    }

    /// Upstream: available now. `scale-up:ready-remembered`: or ever before.
    fn available_for_scale_up(&self, pod: &Value) -> bool {
        let available = self.set.available(pod, self.now);
        if !self.faults.has(Fault::ScaleUpReadyRemembered) {
            return available;
        }
        let mut seen = ever_available().lock().unwrap_or_else(|p| p.into_inner());
        if available {
            seen.insert(obj::uid(pod).to_string());
            return true;
        }
        let remembered = seen.contains(obj::uid(pod));
        if remembered {
            tracing::warn!(pod = %obj::name(pod), "fault scale-up:ready-remembered: a pod that is not Ready now counts as Ready");
        }
        remembered
    }

    fn create_replica(&mut self, ord: i64, ordered: bool) -> Step {
        let claims = self.existing_claims(ord);
        // Upstream PodClaimIsStale: wait until a claim being deleted is gone.
        if claims.iter().any(|c| claim_is_stale(c)) {
            return Step::Block;
        }
        if self.faults.has(Fault::PvcNewOnRecreate) && !claims.is_empty() {
            for claim in claims {
                self.actions
                    .push(Action::delete(ResourceKind::PersistentVolumeClaim, claim));
            }
            return Step::Block;
        }
        let pod = self.new_pod(ord);
        self.create_missing_claims(ord, obj::name(&pod).to_string());
        self.actions.push(Action::Event(EventRecord::normal(
            self.set.raw,
            COMPONENT,
            "SuccessfulCreate",
            format!(
                "create Pod {} in StatefulSet {} successful",
                obj::name(&pod),
                self.set.name
            ),
        )));
        self.actions.push(Action::create(ResourceKind::Pod, pod));
        if ordered { Step::Block } else { Step::Continue }
    }

    fn existing_claims(&self, ord: i64) -> Vec<&'a Value> {
        self.claim_templates()
            .iter()
            .filter_map(|t| {
                self.snap.pvc(
                    self.set.namespace,
                    &claim_name(obj::name(t), self.set.name, ord),
                )
            })
            .collect()
    }

    fn claim_templates(&self) -> &'a [Value] {
        obj::array(self.set.raw, "/spec/volumeClaimTemplates")
    }

    fn create_missing_claims(&mut self, ord: i64, pod_name: String) {
        for template in self.claim_templates() {
            let name = claim_name(obj::name(template), self.set.name, ord);
            if self.snap.pvc(self.set.namespace, &name).is_some() {
                continue;
            }
            let claim = self.new_claim(template, &name);
            self.actions
                .push(Action::create(ResourceKind::PersistentVolumeClaim, claim));
            self.actions.push(Action::Event(EventRecord::normal(
                self.set.raw,
                COMPONENT,
                "SuccessfulCreate",
                format!(
                    "create Claim {name} Pod {pod_name} in StatefulSet {} success",
                    self.set.name
                ),
            )));
        }
    }

    /// Makes the ordinal's claims' ownerReferences match the retention policy.
    fn fix_claims(&mut self, ord: i64, pod: Option<&Value>, in_range: bool) {
        for claim in self.existing_claims(ord) {
            if obj::is_terminating(claim) {
                continue;
            }
            let refs = claim_owner_refs(self.set.raw, self.set.retention, claim, pod, in_range);
            if refs.as_slice() != obj::owner_refs(claim) {
                let mut fixed = claim.clone();
                obj::set_at(&mut fixed, "/metadata/ownerReferences", Value::Array(refs));
                self.actions
                    .push(Action::replace(ResourceKind::PersistentVolumeClaim, fixed));
            }
        }
    }

    /// Scale-down (upstream processCondemned over the sorted condemned list).
    fn process_condemned(
        &mut self,
        slots: &BTreeMap<i64, &'a Value>,
        condemned: &[(i64, &'a Value)],
        monotonic: bool,
    ) -> Step {
        let mut order: Vec<(i64, &'a Value)> = condemned.to_vec();
        order.sort_by_key(|(ord, _)| *ord);
        let first_unhealthy = self.first_unhealthy(slots, &order);
        if !self.faults.has(Fault::ScaleDownForward) {
            order.reverse();
        }
        for (ord, pod) in order {
            if obj::is_terminating(pod) {
                if monotonic {
                    return Step::Block;
                }
                continue;
            }
            let is_first_unhealthy = first_unhealthy.as_deref() == Some(obj::uid(pod));
            if monotonic && !self.set.available(pod, self.now) && !is_first_unhealthy {
                return Step::Block;
            }
            self.delete_pod(pod);
            if self.faults.has(Fault::PvcDeleteOnScaleDown) {
                self.delete_claims_of(ord, pod);
            }
            if monotonic {
                return Step::Block;
            }
        }
        Step::Continue
    }

    /// Uid of the first unavailable pod: in-range slots by ordinal, then condemned
    /// ascending. A missing in-range pod is unavailable but has no uid.
    fn first_unhealthy(
        &self,
        slots: &BTreeMap<i64, &Value>,
        condemned_ascending: &[(i64, &Value)],
    ) -> Option<String> {
        for ord in self.set.start..self.set.start + self.set.replicas {
            match slots.get(&ord) {
                None => return None,
                Some(p) if !self.set.available(p, self.now) => {
                    return Some(obj::uid(p).to_string());
                }
                Some(_) => {}
            }
        }
        condemned_ascending
            .iter()
            .find(|(_, p)| !self.set.available(p, self.now))
            .map(|(_, p)| obj::uid(p).to_string())
    }

    fn delete_claims_of(&mut self, ord: i64, pod: &Value) {
        for claim in self.existing_claims(ord) {
            if obj::is_terminating(claim) {
                continue;
            }
            self.actions
                .push(Action::delete(ResourceKind::PersistentVolumeClaim, claim));
            self.actions.push(Action::Event(EventRecord::normal(
                self.set.raw,
                COMPONENT,
                "SuccessfulDelete",
                format!(
                    "delete Claim {} Pod {} in StatefulSet {} success",
                    obj::name(claim),
                    obj::name(pod),
                    self.set.name
                ),
            )));
        }
    }

    /// RollingUpdate: replace the highest pod not at the update revision, one at a time,
    /// each replacement available before the next deletion; ordinals below the partition
    /// keep their revision. The `update:*` faults bend one of these rules each.
    fn rolling_update(&mut self, slots: &BTreeMap<i64, &Value>) {
        let partition = if self.faults.has(Fault::UpdateIgnorePartition) {
            0
        } else {
            self.set.partition.max(0)
        };
        let first = self.set.start + partition;
        let range = first..self.set.start + self.set.replicas;
        let order: Vec<i64> = if self.faults.has(Fault::UpdateForward) {
            range.collect()
        } else {
            range.rev().collect()
        };
        let parallel = self.faults.has(Fault::UpdateParallel);
        for ord in order {
            let Some(pod) = slots.get(&ord) else {
                return;
            };
            if self.set.pod_revision(pod) != Some(self.set.update_revision.as_str())
                && !obj::is_terminating(pod)
            {
                if self.faults.has(Fault::UpdateRelabelInPlace) {
                    self.relabel(pod);
                    continue;
                }
                self.delete_pod(pod);
                if parallel {
                    continue;
                }
                return;
            }
            if !parallel && !self.set.available(pod, self.now) {
                return;
            }
        }
    }

    /// `update:relabel-in-place`: the pod gets the update revision's label, nothing else.
    fn relabel(&mut self, pod: &Value) {
        let mut relabelled = pod.clone();
        obj::set_at(
            &mut relabelled,
            &format!("/metadata/labels/{REVISION_LABEL}"),
            Value::String(self.set.update_revision.clone()),
        );
        tracing::warn!(pod = %obj::name(pod), revision = %self.set.update_revision, "fault update:relabel-in-place: relabelling an outdated pod instead of replacing it");
        self.actions
            .push(Action::replace(ResourceKind::Pod, relabelled));
    }

    fn delete_pod(&mut self, pod: &Value) {
        self.actions.push(Action::delete(ResourceKind::Pod, pod));
        self.actions.push(Action::Event(EventRecord::normal(
            self.set.raw,
            COMPONENT,
            "SuccessfulDelete",
            format!(
                "delete Pod {} in StatefulSet {} successful",
                obj::name(pod),
                self.set.name
            ),
        )));
    }

    /// The template and revision a new pod of `ord` is made from (upstream
    /// newVersionedStatefulSetPod): below a RollingUpdate partition, the current revision's
    /// template while it is known; otherwise the update revision's.
    fn template_for(&self, ord: i64) -> (Value, String) {
        let set = self.set;
        let below_partition = !set.on_delete && ord < set.start + set.partition.max(0);
        if below_partition
            && set.current_revision != set.update_revision
            && let Some(template) = known_template(&set.current_revision)
        {
            return (template, set.current_revision.clone());
        }
        let template = set
            .raw
            .pointer("/spec/template")
            .cloned()
            .unwrap_or_else(|| json!({}));
        (template, set.update_revision.clone())
    }

    /// A new pod for `ord` from the template (upstream newVersionedStatefulSetPod).
    fn new_pod(&self, ord: i64) -> Value {
        let set = self.set;
        let name = if set.random_names {
            format!("{}-{}", set.name, random_suffix())
        } else {
            format!("{}-{ord}", set.name)
        };
        let (template, revision) = self.template_for(ord);
        let mut labels = obj::string_map(&template, "/metadata/labels");
        if !set.no_ordinal_labels {
            labels.insert(POD_NAME_LABEL.into(), name.clone());
            labels.insert(POD_INDEX_LABEL.into(), ord.to_string());
        }
        labels.insert(REVISION_LABEL.into(), revision);
        let mut metadata = json!({
            "name": name,
            "namespace": set.namespace,
            "labels": labels,
            "ownerReferences": [obj::owner_reference(set.raw, true)],
        });
        if let Some(annotations) = template.pointer("/metadata/annotations") {
            obj::set_at(&mut metadata, "/annotations", annotations.clone());
        }
        let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
        if !set.no_hostname {
            obj::set_at(&mut spec, "/hostname", json!(name));
            if let Some(service) =
                obj::str_at(set.raw, "/spec/serviceName").filter(|s| !s.is_empty())
            {
                obj::set_at(&mut spec, "/subdomain", json!(service));
            }
        }
        self.attach_claims(&mut spec, ord);
        defaults::default_pod_spec(&mut spec);
        let qos = defaults::qos_class(&spec);
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": spec,
            "status": {"phase": "Pending", "qosClass": qos},
        })
    }

    /// Replaces template volumes named like a claim template with the ordinal's claim.
    fn attach_claims(&self, spec: &mut Value, ord: i64) {
        let mut volumes: Vec<Value> = obj::array(spec, "/volumes").to_vec();
        for template in self.claim_templates() {
            let volume_name = obj::name(template);
            volumes.retain(|v| obj::str_at(v, "/name") != Some(volume_name));
            volumes.push(json!({
                "name": volume_name,
                "persistentVolumeClaim": {"claimName": claim_name(volume_name, self.set.name, ord)},
            }));
        }
        if !volumes.is_empty() {
            obj::set_at(spec, "/volumes", Value::Array(volumes));
        }
    }

    fn new_claim(&self, template: &Value, name: &str) -> Value {
        let set = self.set;
        let mut labels = obj::string_map(template, "/metadata/labels");
        labels.extend(obj::string_map(set.raw, "/spec/selector/matchLabels"));
        let mut metadata = json!({
            "name": name,
            "namespace": set.namespace,
            "labels": labels,
            "finalizers": [PVC_PROTECTION],
        });
        if let Some(annotations) = template.pointer("/metadata/annotations") {
            obj::set_at(&mut metadata, "/annotations", annotations.clone());
        }
        let mut claim = json!({"metadata": metadata});
        let refs = claim_owner_refs(set.raw, set.retention, &claim, None, true);
        if !refs.is_empty() {
            obj::set_at(&mut claim, "/metadata/ownerReferences", Value::Array(refs));
        }
        let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
        defaults::default_pvc_spec(&mut spec, set.default_class);
        json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": claim["metadata"],
            "spec": spec,
            "status": {"phase": "Pending"},
        })
    }
}

fn pod_name_of(pod: &Value) -> String {
    obj::name(pod).to_string()
}

/// A claim that must disappear before its pod may be created: it is being deleted, or it
/// still belongs to a previous pod (whenScaled: Delete).
fn claim_is_stale(claim: &Value) -> bool {
    obj::is_terminating(claim)
        || obj::owner_refs(claim)
            .iter()
            .any(|r| obj::str_at(r, "/kind") == Some("Pod"))
}

/// The ownerReferences a claim should carry under the retention policy (upstream
/// updateClaimOwnerRefForSetAndPod): whenDeleted=Delete → owned by the set while its pod is
/// in range; whenScaled=Delete → owned by its pod once the pod is condemned.
fn claim_owner_refs(
    set: &Value,
    retention: Retention,
    claim: &Value,
    pod: Option<&Value>,
    in_range: bool,
) -> Vec<Value> {
    let set_uid = obj::uid(set);
    let pod_uid = pod.map(obj::uid).unwrap_or_default();
    let mut refs: Vec<Value> = obj::owner_refs(claim)
        .iter()
        .filter(|r| {
            let uid = obj::str_at(r, "/uid").unwrap_or_default();
            uid != set_uid && (pod_uid.is_empty() || uid != pod_uid)
        })
        .cloned()
        .collect();
    let scaled_down = !in_range;
    if scaled_down && retention.delete_when_scaled {
        if let Some(pod) = pod {
            refs.push(obj::owner_reference(pod, true));
        }
    } else if retention.delete_when_deleted && !(scaled_down && retention.delete_when_scaled) {
        refs.push(obj::owner_reference(set, true));
    }
    refs
}

/// `<template>-<set>-<ordinal>`.
pub fn claim_name(template: &str, set: &str, ordinal: i64) -> String {
    format!("{template}-{set}-{ordinal}")
}

/// The ordinal of `<set>-<n>`, upstream's `(.*)-([0-9]+)$` with the parent checked.
pub fn parse_ordinal(set: &str, pod: &str) -> Option<i64> {
    let (parent, suffix) = pod.rsplit_once('-')?;
    if parent != set || suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    suffix.parse().ok()
}

/// Five characters from the API server's generateName alphabet, starting with a letter so
/// the name never parses as an ordinal.
fn random_suffix() -> String {
    const LETTERS: &[u8] = b"bcdfghjklmnpqrstvwxz";
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let first = LETTERS[rng.random_range(0..LETTERS.len())] as char;
    std::iter::once(first)
        .chain((0..4).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char))
        .collect()
}

/// Pod templates by revision name: a pod recreated below a partition is made from its
/// current revision's template. The controller remembers every template it saw (the name
/// hashes the template, so one name is one template) rather than reading the
/// ControllerRevisions back, so `update:no-revision-object` breaks only the objects.
fn templates() -> &'static Mutex<HashMap<String, Value>> {
    static TEMPLATES: OnceLock<Mutex<HashMap<String, Value>>> = OnceLock::new();
    TEMPLATES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn remember_template(revision: &str, template: Option<&Value>) {
    let mut known = templates().lock().unwrap_or_else(|p| p.into_inner());
    if !known.contains_key(revision) {
        known.insert(
            revision.to_string(),
            template.cloned().unwrap_or_else(|| json!({})),
        );
    }
}

/// The uids of pods once available (for `scale-up:ready-remembered`).
fn ever_available() -> &'static Mutex<std::collections::HashSet<String>> {
    static SEEN: OnceLock<Mutex<std::collections::HashSet<String>>> = OnceLock::new();
    SEEN.get_or_init(|| Mutex::new(std::collections::HashSet::new()))
}

/// When this controller first saw each update revision (for
/// `update:on-delete-rolls-later`).
fn first_seen(revision: &str, now: DateTime<Utc>) -> DateTime<Utc> {
    static SEEN: OnceLock<Mutex<HashMap<String, DateTime<Utc>>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    *seen.entry(revision.to_string()).or_insert(now)
}

fn known_template(revision: &str) -> Option<Value> {
    let known = templates().lock().unwrap_or_else(|p| p.into_inner());
    known.get(revision).cloned()
}

/// `<set>-<hash>`: the ControllerRevision name for a pod template, stable across
/// processes (the template is canonicalised through the typed struct before hashing).
pub fn revision_name(set: &str, template: Option<&Value>) -> String {
    let canonical = template
        .and_then(|t| {
            serde_json::from_value::<k8s_openapi::api::core::v1::PodTemplateSpec>(t.clone()).ok()
        })
        .and_then(|t| serde_json::to_vec(&t).ok())
        .unwrap_or_else(|| {
            template
                .map(|t| t.to_string().into_bytes())
                .unwrap_or_default()
        });
    format!("{set}-{}", safe_encode(&fnv1a32(&canonical).to_string()))
}

fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// apimachinery's SafeEncodeString: maps each byte into a vowel-free alphabet.
fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

fn int_at(obj: &Value, pointer: &str) -> Option<i64> {
    obj.pointer(pointer).and_then(Value::as_i64)
}

#[cfg(test)]
mod tests;
