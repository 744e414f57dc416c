//! Template updates: RollingUpdate replaces pods one at a time, highest ordinal first, each
//! replacement observed Ready before the next deletion begins, never below the partition,
//! and ends with every pod at or above the partition on the update revision and
//! `currentRevision == updateRevision` (once the partition is 0). OnDelete replaces a pod
//! only when someone deletes it. Judged in observation order (seq), like the scaling checks.
//!
//! The partition in effect at a seq is the one of the last `SetUpdateStrategy` action
//! recorded at or before it (actions are recorded before they act, so the controller
//! cannot have seen a lower one earlier), else the last observed StatefulSet's, else 0.
//! The update revision is the last `status.updateRevision` observed by the end of the
//! window: the test waits for the rollout before it ends its window.

use std::collections::{BTreeMap, HashSet};

use crate::history::{Action, Entry, Event, PodState, Snapshot, StsState};
use crate::verdict::{CheckResult, Verdict, Window};
use crate::world::{describe_pod, ordinal_of, pod_ref};

/// The update strategy a test set (`spec.updateStrategy.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    RollingUpdate,
    OnDelete,
}

/// What the rollout should look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutExpect {
    pub statefulset: String,
    pub replicas: u32,
    /// `spec.ordinals.start` (0 unless set).
    pub start: u32,
    pub strategy: Strategy,
}

impl RolloutExpect {
    pub fn new(statefulset: &str, replicas: u32, strategy: Strategy) -> Self {
        Self {
            statefulset: statefulset.into(),
            replicas,
            start: 0,
            strategy,
        }
    }
}

/// Checks the rollout in `window` against `expect`: "ordered rolling update" for
/// RollingUpdate, "OnDelete update" for OnDelete.
pub fn rollout(
    entries: &[Entry],
    window: impl Into<Window>,
    expect: &RolloutExpect,
) -> CheckResult {
    let window = window.into();
    match expect.strategy {
        Strategy::RollingUpdate => {
            CheckResult::new("ordered rolling update", judge(entries, window, expect))
        }
        Strategy::OnDelete => CheckResult::new("OnDelete update", judge(entries, window, expect)),
    }
}

/// What the check remembers of one ordinal's current pod.
struct Tracked {
    seq: u64,
    gone: bool,
    pod: PodState,
    /// This uid was observed Ready and not terminating.
    ready_seen: bool,
}

/// A pod whose deletion began in the window.
struct Deletion {
    seq: u64,
    pod: PodState,
    by_harness: bool,
}

fn revision(pod: &PodState) -> &str {
    pod.revision().unwrap_or("none")
}

/// The last observed state of the StatefulSet by the end of the window.
fn last_statefulset<'e>(
    entries: &'e [Entry],
    window: Window,
    name: &str,
) -> Option<(u64, &'e StsState)> {
    entries
        .iter()
        .take_while(|e| e.seq <= window.to)
        .filter_map(|e| match &e.event {
            Event::Object {
                object: Snapshot::StatefulSet(s),
                ..
            } if s.name == name => Some((e.seq, s)),
            _ => None,
        })
        .last()
}

/// The partition in effect and where it came from.
#[derive(Clone, Debug)]
struct Partition {
    value: u32,
    source: String,
    /// Set by a recorded action: observed StatefulSets no longer override it.
    from_action: bool,
}

fn judge(entries: &[Entry], window: Window, expect: &RolloutExpect) -> Verdict {
    let name = expect.statefulset.as_str();
    let Some((sts_seq, sts)) = last_statefulset(entries, window, name) else {
        return Verdict::Unknown {
            reason: format!("StatefulSet {name} was never observed by the end of {window}"),
        };
    };
    let Some(update) = sts.update_revision.clone().filter(|r| !r.is_empty()) else {
        return Verdict::Unknown {
            reason: format!(
                "StatefulSet {name} had no status.updateRevision by the end of {window} \
                 (last observed at seq {sts_seq})"
            ),
        };
    };
    let end = expect.start + expect.replicas;
    let mut partition = Partition {
        value: 0,
        source: "the default".into(),
        from_action: false,
    };
    let mut harness_deleted: HashSet<String> = HashSet::new();
    let mut tracked: BTreeMap<u32, Tracked> = BTreeMap::new();
    let mut begun: HashSet<String> = HashSet::new();
    let mut deletions: Vec<Deletion> = Vec::new();
    let mut evidence = Vec::new();
    for entry in entries.iter().take_while(|e| e.seq <= window.to) {
        let seq = entry.seq;
        let (gone, pod) = match &entry.event {
            Event::Action(Action::SetUpdateStrategy {
                statefulset,
                partition: p,
                ..
            }) if statefulset == name => {
                partition = Partition {
                    value: p.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
                    source: format!("set at seq {seq}"),
                    from_action: true,
                };
                continue;
            }
            Event::Action(Action::DeletePod { uid, .. }) => {
                harness_deleted.insert(uid.clone());
                continue;
            }
            Event::Object {
                object: Snapshot::StatefulSet(s),
                ..
            } if s.name == name && !partition.from_action => {
                if let Some(p) = s.partition.and_then(|p| u32::try_from(p).ok()) {
                    partition = Partition {
                        value: p,
                        source: format!("the StatefulSet's, observed at seq {seq}"),
                        from_action: false,
                    };
                }
                continue;
            }
            Event::Object {
                change,
                object: Snapshot::Pod(p),
            } => (*change == crate::history::Change::Deleted, p),
            _ => continue,
        };
        let Some(ordinal) = ordinal_of(&pod.name, name) else {
            continue;
        };
        let begins = (gone || pod.terminating) && begun.insert(pod.uid.clone());
        if begins && window.contains(seq) {
            let by_harness = harness_deleted.contains(&pod.uid);
            let deleted = format!(
                "deletion of {} (revision {}) began at seq {seq}",
                pod_ref(pod),
                revision(pod)
            );
            match expect.strategy {
                Strategy::OnDelete if !by_harness => evidence.push(format!(
                    "{deleted} though the harness did not delete it: with updateStrategy \
                     OnDelete a pod is replaced only once it is deleted"
                )),
                Strategy::RollingUpdate if !by_harness => {
                    let first = expect.start + partition.value;
                    if ordinal < first {
                        evidence.push(format!(
                            "{deleted} though the partition was {} ({}): ordinals below {first} \
                             keep their revision",
                            partition.value, partition.source
                        ));
                    }
                    evidence.extend(
                        tracked
                            .range(ordinal + 1..end)
                            .filter_map(|(h, t)| higher_not_done(*h, t, &update, name))
                            .map(|why| format!("{deleted} {why}")),
                    );
                }
                _ => {}
            }
            deletions.push(Deletion {
                seq,
                pod: pod.clone(),
                by_harness,
            });
        }
        let serving = !gone && pod.ready && !pod.terminating;
        match tracked.get_mut(&ordinal) {
            Some(t) if t.pod.uid == pod.uid => {
                t.ready_seen = !gone && (t.ready_seen || serving);
                t.seq = seq;
                t.gone = gone;
                t.pod = pod.clone();
            }
            _ => {
                tracked.insert(
                    ordinal,
                    Tracked {
                        seq,
                        gone,
                        pod: pod.clone(),
                        ready_seen: serving,
                    },
                );
            }
        }
    }
    let replaced: Vec<&Deletion> = match expect.strategy {
        Strategy::RollingUpdate => deletions.iter().filter(|d| !d.by_harness).collect(),
        Strategy::OnDelete => deletions.iter().filter(|d| d.by_harness).collect(),
    };
    let mut unknowns = Vec::new();
    if replaced.is_empty() {
        unknowns.push(match expect.strategy {
            Strategy::RollingUpdate => {
                format!("no pod of StatefulSet {name} was replaced by its controller in {window}")
            }
            Strategy::OnDelete => {
                format!("the harness deleted no pod of StatefulSet {name} in {window}")
            }
        });
    }
    // The end state: which ordinals must be on the update revision.
    let must_update: Vec<u32> = match expect.strategy {
        Strategy::RollingUpdate => (expect.start + partition.value..end).collect(),
        Strategy::OnDelete => replaced
            .iter()
            .filter_map(|d| ordinal_of(&d.pod.name, name))
            .collect(),
    };
    for ordinal in must_update {
        let pod_name = format!("{name}-{ordinal}");
        match tracked.get(&ordinal) {
            None => evidence.push(format!(
                "{pod_name} was never observed by the end of {window}"
            )),
            Some(t) if t.gone => evidence.push(format!(
                "{pod_name} had no pod at the end of {window} ({} observed deleted at seq {})",
                pod_ref(&t.pod),
                t.seq
            )),
            Some(t) if t.pod.revision() != Some(update.as_str()) => evidence.push(format!(
                "{} ended on revision {}, not the update revision {update} (last observed at \
                 seq {})",
                pod_ref(&t.pod),
                revision(&t.pod),
                t.seq
            )),
            Some(t) if !t.ready_seen || t.pod.terminating => evidence.push(format!(
                "{} on the update revision was not Ready at the end of {window} (last observed \
                 at seq {}: {})",
                pod_ref(&t.pod),
                t.seq,
                describe_pod(&t.pod)
            )),
            Some(_) => {}
        }
    }
    if expect.strategy == Strategy::RollingUpdate {
        evidence.extend(status_at_end(
            sts,
            sts_seq,
            &update,
            partition.value,
            expect,
        ));
        evidence.extend(below_partition_on_update(
            &tracked,
            expect.start..expect.start + partition.value,
            &update,
            &partition,
        ));
    }
    Verdict::judge(evidence, unknowns, || {
        let order: Vec<String> = replaced
            .iter()
            .map(|d| format!("{} (seq {})", d.pod.name, d.seq))
            .collect();
        match expect.strategy {
            Strategy::RollingUpdate => format!(
                "replaced one at a time in order {}, each after the higher ordinals were Ready on \
                 revision {update}, none below partition {}; status revisions consistent at seq \
                 {sts_seq}",
                order.join(", "),
                partition.value
            ),
            Strategy::OnDelete => format!(
                "only the pods the harness deleted were replaced ({}), on revision {update}",
                order.join(", ")
            ),
        }
    })
}

/// Why ordinal `h` (above a pod whose deletion just began) was not yet updated and Ready.
fn higher_not_done(h: u32, t: &Tracked, update: &str, name: &str) -> Option<String> {
    if t.gone {
        return Some(format!(
            "while {name}-{h} had no pod ({} observed deleted at seq {})",
            pod_ref(&t.pod),
            t.seq
        ));
    }
    if t.pod.terminating {
        return Some(format!(
            "while the higher {} (revision {}) was still terminating, not yet replaced (last \
             observed at seq {})",
            pod_ref(&t.pod),
            revision(&t.pod),
            t.seq
        ));
    }
    if t.pod.revision() != Some(update) {
        return Some(format!(
            "while the higher {} still ran revision {}, not {update} (last observed at seq {})",
            pod_ref(&t.pod),
            revision(&t.pod),
            t.seq
        ));
    }
    if !t.ready_seen {
        return Some(format!(
            "before the replacement {} was observed Ready (last observed at seq {}: {})",
            pod_ref(&t.pod),
            t.seq,
            describe_pod(&t.pod)
        ));
    }
    None
}

/// Pods below the partition that run the update revision at the end: a pod recreated
/// there must be made from the current revision (upstream newVersionedStatefulSetPod).
fn below_partition_on_update(
    tracked: &BTreeMap<u32, Tracked>,
    below: std::ops::Range<u32>,
    update: &str,
    partition: &Partition,
) -> Vec<String> {
    tracked
        .range(below)
        .filter(|(_, t)| !t.gone && t.pod.revision() == Some(update))
        .map(|(_, t)| {
            format!(
                "{} runs the update revision {update} though it is below the partition {} ({}) \
                 (last observed at seq {})",
                pod_ref(&t.pod),
                partition.value,
                partition.source,
                t.seq
            )
        })
        .collect()
}

/// The StatefulSet's status at the end of a RollingUpdate window.
fn status_at_end(
    sts: &StsState,
    seq: u64,
    update: &str,
    partition: u32,
    expect: &RolloutExpect,
) -> Vec<String> {
    let mut evidence = Vec::new();
    let at = format!("StatefulSet {} at seq {seq}", sts.name);
    if sts.observed_generation < sts.generation {
        evidence.push(format!(
            "{at}: status.observedGeneration {:?} behind generation {:?}",
            sts.observed_generation, sts.generation
        ));
    }
    let updated = expect.replicas.saturating_sub(partition);
    if u32::try_from(sts.updated_replicas).ok() != Some(updated) {
        evidence.push(format!(
            "{at}: status.updatedReplicas {} where {updated} pods are at or above partition \
             {partition}",
            sts.updated_replicas
        ));
    }
    let current = sts.current_revision.as_deref().unwrap_or("none");
    if partition == 0 && current != update {
        evidence.push(format!(
            "{at}: status.currentRevision {current} differs from updateRevision {update} after \
             the rollout completed"
        ));
    }
    evidence
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use crate::testkit::*;

    const OLD: &str = "mysql-old";
    const NEW: &str = "mysql-new";

    fn at(p: PodState, revision: &str) -> PodState {
        p.with(|p| {
            p.labels
                .insert(crate::history::REVISION_LABEL.into(), revision.into());
        })
    }

    fn old(i: u32) -> PodState {
        at(pod(&format!("mysql-{i}"), &format!("u{i}")), OLD)
    }

    fn new(i: u32) -> PodState {
        at(pod(&format!("mysql-{i}"), &format!("n{i}")), NEW)
    }

    /// The StatefulSet's status once the rollout is done.
    fn done(current: &str, updated: i32) -> Event {
        applied(StsState {
            name: "mysql".into(),
            uid: "sts-uid".into(),
            generation: Some(2),
            observed_generation: Some(2),
            replicas: 3,
            ready_replicas: 3,
            current_revision: Some(current.into()),
            update_revision: Some(NEW.into()),
            updated_replicas: updated,
            ..StsState::default()
        })
    }

    /// Three pods on the old revision, then the template change (the window's start, seq 3).
    fn start() -> Vec<Event> {
        vec![
            applied(old(0)),
            applied(old(1)),
            applied(old(2)),
            change_template(),
        ]
    }

    /// Ordinal `i` replaced: old pod terminating, gone, new pod pending, new pod Ready.
    fn replace(i: u32) -> Vec<Event> {
        vec![
            applied(old(i).terminating()),
            deleted(old(i).terminating()),
            applied(new(i).pending()),
            applied(new(i)),
        ]
    }

    fn check(events: Vec<Event>, strategy: Strategy) -> Verdict {
        let result = rollout(
            &History::from_events(events),
            (3, u64::MAX),
            &RolloutExpect::new("mysql", 3, strategy),
        );
        result.verdict
    }

    fn rolling(tail: Vec<Event>) -> Verdict {
        let mut events = start();
        events.extend(tail);
        check(events, Strategy::RollingUpdate)
    }

    fn in_order() -> Vec<Event> {
        let mut tail = replace(2);
        tail.extend(replace(1));
        tail.extend(replace(0));
        tail.push(done(NEW, 3));
        tail
    }

    #[test]
    fn highest_first_one_at_a_time_passes() {
        let v = rolling(in_order());
        assert!(v.is_pass(), "{v}");
        assert!(
            v.to_string()
                .contains("in order mysql-2 (seq 4), mysql-1 (seq 8), mysql-0 (seq 12)"),
            "{v}"
        );
    }

    #[test]
    fn forward_order_is_named() {
        let mut tail = replace(0);
        tail.extend(replace(1));
        tail.extend(replace(2));
        tail.push(done(NEW, 3));
        let v = rolling(tail);
        assert!(v.is_fail(), "{v}");
        let text = v.evidence().join("\n");
        assert!(
            text.contains(
                "deletion of pod mysql-0 (uid u0) (revision mysql-old) began at seq 4 while the \
                 higher pod mysql-1 (uid u1) still ran revision mysql-old"
            ),
            "{text}"
        );
    }

    #[test]
    fn two_replaced_at_once_is_named() {
        let mut tail = vec![
            applied(old(2).terminating()),
            applied(old(1).terminating()),
            applied(old(0).terminating()),
        ];
        for i in [2, 1, 0] {
            tail.push(deleted(old(i).terminating()));
            tail.push(applied(new(i)));
        }
        tail.push(done(NEW, 3));
        let v = rolling(tail);
        let text = v.evidence().join("\n");
        assert!(
            text.contains(
                "deletion of pod mysql-1 (uid u1) (revision mysql-old) began at seq 5 while the \
                 higher pod mysql-2 (uid u2) (revision mysql-old) was still terminating, not yet \
                 replaced"
            ),
            "{text}"
        );
    }

    #[test]
    fn next_deleted_before_the_replacement_is_ready_is_named() {
        let mut tail = vec![
            applied(old(2).terminating()),
            deleted(old(2).terminating()),
            applied(new(2).pending()),
            applied(old(1).terminating()),
            deleted(old(1).terminating()),
            applied(new(2)),
        ];
        tail.push(applied(new(1)));
        tail.extend(replace(0));
        tail.push(done(NEW, 3));
        let v = rolling(tail);
        let text = v.evidence().join("\n");
        assert!(
            text.contains(
                "deletion of pod mysql-1 (uid u1) (revision mysql-old) began at seq 7 before the \
                 replacement pod mysql-2 (uid n2) was observed Ready"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_partition_keeps_lower_ordinals_and_lowering_it_continues() {
        let mut events = start();
        events.insert(3, set_partition(Some(2)));
        events.extend(replace(2));
        events.push(done(OLD, 1));
        let partial = check(events.clone(), Strategy::RollingUpdate);
        assert!(partial.is_pass(), "{partial}");
        events.push(set_partition(Some(0)));
        events.extend(replace(1));
        events.extend(replace(0));
        events.push(done(NEW, 3));
        let full = check(events, Strategy::RollingUpdate);
        assert!(full.is_pass(), "{full}");
    }

    #[test]
    fn a_pod_deleted_below_the_partition_comes_back_on_the_current_revision() {
        let mut events = start();
        events.insert(3, set_partition(Some(2)));
        events.extend(replace(2));
        events.push(delete_pod(0));
        events.push(applied(old(0).terminating()));
        events.push(deleted(old(0).terminating()));
        events.push(applied(at(pod("mysql-0", "b0"), OLD)));
        events.push(done(OLD, 1));
        let v = check(events.clone(), Strategy::RollingUpdate);
        assert!(v.is_pass(), "{v}");
        let last = events.len() - 2;
        events[last] = applied(at(pod("mysql-0", "b0"), NEW));
        let v = check(events, Strategy::RollingUpdate);
        let text = v.evidence().join("\n");
        assert!(
            text.contains(
                "pod mysql-0 (uid b0) runs the update revision mysql-new though it is below the \
                 partition 2 (set at seq 3)"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_ignored_partition_is_named() {
        let mut events = start();
        events.insert(3, set_partition(Some(2)));
        events.extend(replace(2));
        events.extend(replace(1));
        events.push(done(OLD, 2));
        let v = check(events, Strategy::RollingUpdate);
        let text = v.evidence().join("\n");
        assert!(
            text.contains(
                "deletion of pod mysql-1 (uid u1) (revision mysql-old) began at seq 9 though the \
                 partition was 2 (set at seq 3): ordinals below 2 keep their revision"
            ),
            "{text}"
        );
        assert!(
            text.contains("status.updatedReplicas 2 where 1 pods"),
            "{text}"
        );
    }

    #[test]
    fn an_unfinished_rollout_names_the_old_pod_and_the_status() {
        let mut tail = replace(2);
        tail.extend(replace(1));
        tail.push(done(OLD, 2));
        let v = rolling(tail);
        let text = v.evidence().join("\n");
        assert!(
            text.contains("pod mysql-0 (uid u0) ended on revision mysql-old, not the update revision mysql-new"),
            "{text}"
        );
        assert!(
            text.contains("status.currentRevision mysql-old differs"),
            "{text}"
        );
    }

    #[test]
    fn nothing_replaced_is_unknown_never_pass() {
        let v = rolling(vec![done(OLD, 0)]);
        assert!(v.is_unknown() || v.is_fail(), "{v}");
        let events = vec![
            applied(new(0)),
            applied(new(1)),
            applied(new(2)),
            change_template(),
            done(NEW, 3),
        ];
        let v = check(events, Strategy::RollingUpdate);
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string()
                .contains("no pod of StatefulSet mysql was replaced"),
            "{v}"
        );
    }

    fn delete_pod(i: u32) -> Event {
        Event::Action(Action::DeletePod {
            pod: format!("mysql-{i}"),
            uid: format!("u{i}"),
            grace_seconds: None,
        })
    }

    #[test]
    fn on_delete_replaces_only_the_deleted_pod() {
        let mut events = start();
        events.push(done(OLD, 0));
        events.push(delete_pod(1));
        events.extend(replace(1));
        let v = check(events, Strategy::OnDelete);
        assert!(v.is_pass(), "{v}");
        assert!(v.to_string().contains("mysql-1 (seq 6)"), "{v}");
    }

    #[test]
    fn on_delete_that_rolls_by_itself_is_named() {
        let mut events = start();
        events.extend(replace(2));
        events.push(delete_pod(1));
        events.extend(replace(1));
        events.push(done(OLD, 2));
        let v = check(events, Strategy::OnDelete);
        let text = v.evidence().join("\n");
        assert!(
            text.contains(
                "deletion of pod mysql-2 (uid u2) (revision mysql-old) began at seq 4 though the \
                 harness did not delete it"
            ),
            "{text}"
        );
    }

    #[test]
    fn on_delete_without_a_deletion_is_unknown() {
        let mut events = start();
        events.push(done(OLD, 0));
        let v = check(events, Strategy::OnDelete);
        assert!(v.is_unknown(), "{v}");
    }
}
