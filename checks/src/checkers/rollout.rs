//! Template updates: RollingUpdate replaces pods one at a time, highest ordinal first, each
//! deletion beginning only while every other ordinal's pod is Running and Ready at that
//! moment (upstream halts while any pod is unhealthy), never below the partition, and ends
//! with every ordinal at or above the partition held by a new pod (a uid other than the one
//! it had when the window began) made from the new template (it carries the annotation the
//! recorded template change set, not only the update revision's label), and
//! `currentRevision == updateRevision` (once the partition is 0). OnDelete replaces a pod
//! only when someone deletes it: every other ordinal keeps its pod (same uid, old template)
//! through a window that lasts at least [`ON_DELETE_DWELL`] after the change. Judged in
//! observation order (seq), like the scaling checks.
//!
//! The partition in effect at a seq is the one of the last `SetUpdateStrategy` action
//! recorded at or before it (actions are recorded before they act, so the controller
//! cannot have seen a lower one earlier), else the last observed StatefulSet's, else 0.
//! The update revision is the last `status.updateRevision` observed by the end of the
//! window: the test waits for the rollout before it ends its window.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use crate::history::{Action, Entry, Event, PodState, Snapshot, StsState, TemplateAnnotation};
use crate::verdict::{CheckResult, Verdict, Window};
use crate::world::{describe_pod, ordinal_of, pod_ref};

/// The update strategy a test set (`spec.updateStrategy.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    RollingUpdate,
    OnDelete,
}

/// How long after an OnDelete template change the pods nobody deleted must be watched
/// staying untouched: a controller that rolls them "later" (a resync, a retry) must have
/// had the time to do it.
pub const ON_DELETE_DWELL: Duration = Duration::from_secs(10);

/// What the rollout should look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutExpect {
    pub statefulset: String,
    pub replicas: u32,
    /// `spec.ordinals.start` (0 unless set).
    pub start: u32,
    pub strategy: Strategy,
    /// OnDelete: how long after the template change the window must last for the pods
    /// nobody deleted to be judged untouched ([`ON_DELETE_DWELL`] by default).
    pub dwell: Duration,
}

impl RolloutExpect {
    pub fn new(statefulset: &str, replicas: u32, strategy: Strategy) -> Self {
        Self {
            statefulset: statefulset.into(),
            replicas,
            start: 0,
            strategy,
            dwell: match strategy {
                Strategy::OnDelete => ON_DELETE_DWELL,
                Strategy::RollingUpdate => Duration::ZERO,
            },
        }
    }

    /// The same expectation with another dwell.
    pub fn with_dwell(mut self, dwell: Duration) -> Self {
        self.dwell = dwell;
        self
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

/// What the check remembers of one ordinal's current pod: its last observation.
struct Tracked {
    seq: u64,
    gone: bool,
    pod: PodState,
}

impl Tracked {
    /// Running and Ready at its last observation (not as once seen: Ready is current
    /// health, and a pod can lose it).
    fn healthy(&self) -> bool {
        !self.gone
            && !self.pod.terminating
            && self.pod.ready
            && self.pod.phase.as_deref() == Some("Running")
    }
}

/// The last template change of the set recorded by the end of the window: its seq, when
/// it was recorded, and the annotation it set (None in histories recorded before it was).
struct TemplateChange<'e> {
    seq: u64,
    at: Duration,
    annotation: Option<&'e TemplateAnnotation>,
}

fn template_change<'e>(
    entries: &'e [Entry],
    window: Window,
    name: &str,
) -> Option<TemplateChange<'e>> {
    entries
        .iter()
        .take_while(|e| e.seq <= window.to)
        .filter_map(|e| match &e.event {
            Event::Action(Action::ChangeTemplate {
                statefulset,
                annotation,
                ..
            }) if statefulset == name => Some(TemplateChange {
                seq: e.seq,
                at: e.at,
                annotation: annotation.as_ref(),
            }),
            _ => None,
        })
        .last()
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
    // Each ordinal's pod when the window began: (seq, pod).
    let mut before: Option<BTreeMap<u32, (u64, PodState)>> = None;
    let mut begun: HashSet<String> = HashSet::new();
    let mut deletions: Vec<Deletion> = Vec::new();
    let mut evidence = Vec::new();
    for entry in entries.iter().take_while(|e| e.seq <= window.to) {
        let seq = entry.seq;
        if before.is_none() && seq >= window.from {
            before = Some(live_pods(&tracked));
        }
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
                    evidence.extend(
                        tracked
                            .range(expect.start..ordinal)
                            .filter_map(|(l, t)| lower_not_healthy(*l, t, name))
                            .map(|why| format!("{deleted} {why}")),
                    );
                    evidence.extend(
                        (expect.start..end)
                            .filter(|o| *o != ordinal && !tracked.contains_key(o))
                            .map(|o| format!("{deleted} while {name}-{o} had never been observed")),
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
        tracked.insert(
            ordinal,
            Tracked {
                seq,
                gone,
                pod: pod.clone(),
            },
        );
    }
    let before = before.unwrap_or_else(|| live_pods(&tracked));
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
    let change = template_change(entries, window, name);
    let annotation = change.as_ref().and_then(|c| c.annotation);
    if annotation.is_none() {
        unknowns.push(format!(
            "no change of StatefulSet {name}'s pod template with the annotation it set was \
             recorded by the end of {window}: no pod can be shown to be made from the new \
             template (its revision label alone proves nothing)"
        ));
    }
    // The end state: which ordinals must be held by a new pod of the new template.
    let must_update: Vec<u32> = match expect.strategy {
        Strategy::RollingUpdate => (expect.start + partition.value..end).collect(),
        Strategy::OnDelete => replaced
            .iter()
            .filter_map(|d| ordinal_of(&d.pod.name, name))
            .collect(),
    };
    for ordinal in &must_update {
        let pod_name = format!("{name}-{ordinal}");
        match tracked.get(ordinal) {
            None => evidence.push(format!(
                "{pod_name} was never observed by the end of {window}"
            )),
            Some(t) if t.gone => evidence.push(format!(
                "{pod_name} had no pod at the end of {window} ({} observed deleted at seq {})",
                pod_ref(&t.pod),
                t.seq
            )),
            Some(t) => evidence.extend(not_updated(t, before.get(ordinal), &update, annotation)),
        }
    }
    match expect.strategy {
        Strategy::RollingUpdate => {
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
                annotation,
                &partition,
            ));
        }
        Strategy::OnDelete => {
            let untouched: Vec<u32> = (expect.start..end)
                .filter(|o| !must_update.contains(o))
                .collect();
            evidence.extend(untouched.iter().filter_map(|o| {
                changed_untouched(*o, name, before.get(o), tracked.get(o), &update, annotation)
            }));
            if let Some(short) = dwell_too_short(entries, window, change.as_ref(), expect.dwell) {
                unknowns.push(short);
            }
        }
    }
    Verdict::judge(evidence, unknowns, || {
        let order: Vec<String> = replaced
            .iter()
            .map(|d| format!("{} (seq {})", d.pod.name, d.seq))
            .collect();
        let made_of = annotation.map_or_else(String::new, |a| format!(", carrying {a}"));
        match expect.strategy {
            Strategy::RollingUpdate => format!(
                "replaced one at a time in order {}, each while every other ordinal was Running \
                 and Ready, by new pods on revision {update}{made_of}, none below partition {}; \
                 status revisions consistent at seq {sts_seq}",
                order.join(", "),
                partition.value
            ),
            Strategy::OnDelete => format!(
                "only the pods the harness deleted were replaced ({}), by new pods on revision \
                 {update}{made_of}; the others kept their pods and template for {:.1} s after \
                 the change",
                order.join(", "),
                expect.dwell.as_secs_f64()
            ),
        }
    })
}

/// Each ordinal's live pod, with the seq it was last observed at.
fn live_pods(tracked: &BTreeMap<u32, Tracked>) -> BTreeMap<u32, (u64, PodState)> {
    tracked
        .iter()
        .filter(|(_, t)| !t.gone)
        .map(|(o, t)| (*o, (t.seq, t.pod.clone())))
        .collect()
}

/// Why the pod holding an ordinal at the end is not a new, Ready pod of the new template.
fn not_updated(
    t: &Tracked,
    before: Option<&(u64, PodState)>,
    update: &str,
    annotation: Option<&TemplateAnnotation>,
) -> Vec<String> {
    let mut why = Vec::new();
    let last = format!("last observed at seq {}", t.seq);
    if t.pod.revision() != Some(update) {
        why.push(format!(
            "{} ended on revision {}, not the update revision {update} ({last})",
            pod_ref(&t.pod),
            revision(&t.pod),
        ));
    }
    if let Some((seq, old)) = before.filter(|(_, old)| old.uid == t.pod.uid) {
        why.push(format!(
            "{} was never replaced: the same uid held the name when the window began (observed \
             at seq {seq} on revision {}) and ends labelled revision {} ({last}): relabelled in \
             place, not made from the new template",
            pod_ref(&t.pod),
            revision(old),
            revision(&t.pod),
        ));
    }
    if let Some(a) = annotation.filter(|a| !a.carried_by(&t.pod)) {
        why.push(format!(
            "{} does not carry the template change ({a}; it has {}={}) ({last})",
            pod_ref(&t.pod),
            a.key,
            t.pod.annotations.get(&a.key).map_or("none", String::as_str),
        ));
    }
    if why.is_empty() && !t.healthy() {
        why.push(format!(
            "{} on the update revision was not Running and Ready at the end ({last}: {})",
            pod_ref(&t.pod),
            describe_pod(&t.pod)
        ));
    }
    why
}

/// OnDelete: why an ordinal nobody deleted did not keep its pod and template.
fn changed_untouched(
    ordinal: u32,
    name: &str,
    before: Option<&(u64, PodState)>,
    now: Option<&Tracked>,
    update: &str,
    annotation: Option<&TemplateAnnotation>,
) -> Option<String> {
    let (seq, old) = before?;
    let Some(t) = now else {
        return Some(format!(
            "{name}-{ordinal}, which the harness did not delete, was no longer observed"
        ));
    };
    if t.gone {
        return Some(format!(
            "{} (held by uid {} at seq {seq}), which the harness did not delete, had no pod at \
             the end ({} observed deleted at seq {})",
            pod_ref(old),
            old.uid,
            pod_ref(&t.pod),
            t.seq
        ));
    }
    if t.pod.uid != old.uid {
        return Some(format!(
            "{name}-{ordinal} was replaced though the harness did not delete it: uid {} at seq \
             {seq}, uid {} at seq {} (revision {}): with updateStrategy OnDelete a pod is \
             replaced only once it is deleted",
            old.uid,
            t.pod.uid,
            t.seq,
            revision(&t.pod)
        ));
    }
    let relabelled = t.pod.revision() == Some(update) && old.revision() != Some(update);
    let reannotated = annotation.is_some_and(|a| a.carried_by(&t.pod) && !a.carried_by(old));
    (relabelled || reannotated).then(|| {
        format!(
            "{}, which the harness did not delete, was changed in place to revision {}{} (last \
             observed at seq {}): with updateStrategy OnDelete it keeps its template until it \
             is deleted",
            pod_ref(&t.pod),
            revision(&t.pod),
            annotation
                .filter(|_| reannotated)
                .map_or_else(String::new, |a| format!(" and {a}")),
            t.seq
        )
    })
}

/// OnDelete: Unknown unless the window lasted `dwell` after the template change.
fn dwell_too_short(
    entries: &[Entry],
    window: Window,
    change: Option<&TemplateChange<'_>>,
    dwell: Duration,
) -> Option<String> {
    let Some(change) = change else {
        return Some(format!(
            "no template change was recorded by the end of {window}: pods were not watched \
             staying untouched"
        ));
    };
    let last = entries
        .iter()
        .take_while(|e| e.seq <= window.to)
        .last()
        .map_or(change.at, |e| e.at);
    let watched = last.saturating_sub(change.at);
    (watched < dwell).then(|| {
        format!(
            "the window ended {:.1} s after the template change (seq {}), before the {:.1} s an \
             OnDelete controller must be watched leaving the other pods alone",
            watched.as_secs_f64(),
            change.seq,
            dwell.as_secs_f64()
        )
    })
}

/// Why ordinal `h` (above a pod whose deletion just began) was not yet updated and Ready
/// at that moment.
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
    if !t.healthy() {
        return Some(format!(
            "while the replacement {} was not Running and Ready (last observed at seq {}: {})",
            pod_ref(&t.pod),
            t.seq,
            describe_pod(&t.pod)
        ));
    }
    None
}

/// Why a lower ordinal was not healthy when a higher one's deletion began: upstream halts
/// a rollout while any pod is not Running and Ready.
fn lower_not_healthy(l: u32, t: &Tracked, name: &str) -> Option<String> {
    if t.gone {
        return Some(format!(
            "while the lower {name}-{l} had no pod ({} observed deleted at seq {})",
            pod_ref(&t.pod),
            t.seq
        ));
    }
    (!t.healthy()).then(|| {
        format!(
            "while the lower {} was not Running and Ready (last observed at seq {}: {})",
            pod_ref(&t.pod),
            t.seq,
            describe_pod(&t.pod)
        )
    })
}

/// Pods below the partition that run the update revision at the end: a pod recreated
/// there must be made from the current revision (upstream newVersionedStatefulSetPod).
fn below_partition_on_update(
    tracked: &BTreeMap<u32, Tracked>,
    below: std::ops::Range<u32>,
    update: &str,
    annotation: Option<&TemplateAnnotation>,
    partition: &Partition,
) -> Vec<String> {
    tracked
        .range(below)
        .filter(|(_, t)| !t.gone)
        .filter_map(|(_, t)| {
            let what = if t.pod.revision() == Some(update) {
                format!("the update revision {update}")
            } else {
                format!(
                    "{} of the new template",
                    annotation.filter(|a| a.carried_by(&t.pod))?
                )
            };
            Some(format!(
                "{} runs {what} though it is below the partition {} ({}) (last observed at seq \
                 {})",
                pod_ref(&t.pod),
                partition.value,
                partition.source,
                t.seq
            ))
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

    /// Made from the changed template: the update revision and the change's annotation.
    fn new(i: u32) -> PodState {
        made_of_new_template(at(pod(&format!("mysql-{i}"), &format!("n{i}")), NEW))
    }

    fn made_of_new_template(p: PodState) -> PodState {
        let a = rollout_annotation();
        p.with(|p| {
            p.annotations.insert(a.key, a.value);
        })
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

    /// Judged from the template change (seq 3) on; OnDelete without a dwell (the events
    /// are a millisecond apart; `the_on_delete_window_must_last_the_dwell` times one).
    fn check(events: Vec<Event>, strategy: Strategy) -> Verdict {
        let expect = RolloutExpect::new("mysql", 3, strategy).with_dwell(Duration::ZERO);
        rollout(&History::from_events(events), (3, u64::MAX), &expect).verdict
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
                "deletion of pod mysql-1 (uid u1) (revision mysql-old) began at seq 7 while the \
                 replacement pod mysql-2 (uid n2) was not Running and Ready"
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
    fn nothing_replaced_never_passes() {
        let v = rolling(vec![done(OLD, 0)]);
        assert!(v.is_unknown() || v.is_fail(), "{v}");
        // Pods already labelled with the update revision when the window began were not
        // replaced in it: the label alone does not make them an update.
        let events = vec![
            applied(new(0)),
            applied(new(1)),
            applied(new(2)),
            change_template(),
            done(NEW, 3),
        ];
        let v = check(events, Strategy::RollingUpdate);
        assert!(v.is_fail(), "{v}");
        assert!(
            v.to_string()
                .contains("pod mysql-0 (uid n0) was never replaced"),
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

    #[test]
    fn a_pod_relabelled_in_place_is_not_an_update() {
        let mut tail = vec![applied(at(old(2), NEW))];
        tail.extend(replace(1));
        tail.extend(replace(0));
        tail.push(done(NEW, 3));
        let v = rolling(tail);
        assert!(v.is_fail(), "{v}");
        let text = v.evidence().join("\n");
        assert!(
            text.contains(
                "pod mysql-2 (uid u2) was never replaced: the same uid held the name when the \
                 window began (observed at seq 2 on revision mysql-old) and ends labelled \
                 revision mysql-new (last observed at seq 4): relabelled in place"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "pod mysql-2 (uid u2) does not carry the template change (annotation \
                 conformance/rollout=1; it has conformance/rollout=none)"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_new_pod_from_the_old_template_is_not_an_update() {
        let mut tail = replace(2);
        tail[3] = applied(at(pod("mysql-2", "n2"), NEW));
        tail.extend(replace(1));
        tail.extend(replace(0));
        tail.push(done(NEW, 3));
        let v = rolling(tail);
        assert_eq!(
            v.evidence(),
            [
                "pod mysql-2 (uid n2) does not carry the template change (annotation \
                 conformance/rollout=1; it has conformance/rollout=none) (last observed at seq 7)"
            ],
            "{v}"
        );
    }

    #[test]
    fn a_rollout_without_the_recorded_template_change_is_unknown() {
        let mut events = start();
        events[3] = Event::Action(Action::ChangeTemplate {
            statefulset: "mysql".into(),
            change: "annotation conformance/rollout=1".into(),
            annotation: None,
        });
        events.extend(in_order());
        let v = check(events, Strategy::RollingUpdate);
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string()
                .contains("its revision label alone proves nothing"),
            "{v}"
        );
    }

    /// Ready is current health, of every ordinal: a pod NotReady when the next deletion
    /// begins halts upstream's rollout, however Ready it was before.
    #[rstest::rstest]
    #[case::a_lower_pod(
        old(0),
        "lower pod mysql-0 (uid u0) was not Running and Ready (last observed at seq 8: phase \
         Running, not ready, restarts 0, node worker)"
    )]
    #[case::the_replacement_once_ready(
        new(2),
        "replacement pod mysql-2 (uid n2) was not Running and Ready (last observed at seq 8: \
         phase Running, not ready, restarts 0, node worker)"
    )]
    fn a_deletion_while_another_pod_is_not_ready_is_named(
        #[case] flapping: PodState,
        #[case] why: &str,
    ) {
        let mut tail = replace(2);
        tail.push(applied(flapping.clone().not_ready()));
        tail.extend(replace(1));
        tail.push(applied(flapping));
        tail.extend(replace(0));
        tail.push(done(NEW, 3));
        let v = rolling(tail);
        assert_eq!(
            v.evidence(),
            [format!(
                "deletion of pod mysql-1 (uid u1) (revision mysql-old) began at seq 9 while the \
                 {why}"
            )],
            "{v}"
        );
    }

    #[test]
    fn on_delete_replacing_an_untouched_pod_unseen_is_named() {
        let mut events = start();
        events.push(done(OLD, 0));
        events.push(delete_pod(1));
        events.extend(replace(1));
        events.push(applied(new(2)));
        let v = check(events, Strategy::OnDelete);
        assert_eq!(
            v.evidence(),
            [
                "mysql-2 was replaced though the harness did not delete it: uid u2 at seq 2, uid \
                 n2 at seq 10 (revision mysql-new): with updateStrategy OnDelete a pod is \
                 replaced only once it is deleted"
            ],
            "{v}"
        );
    }

    #[test]
    fn on_delete_updating_an_untouched_pod_in_place_is_named() {
        let mut events = start();
        events.push(done(OLD, 0));
        events.push(delete_pod(1));
        events.extend(replace(1));
        events.push(applied(made_of_new_template(at(old(2), NEW))));
        let v = check(events, Strategy::OnDelete);
        assert_eq!(
            v.evidence(),
            [
                "pod mysql-2 (uid u2), which the harness did not delete, was changed in place to \
                 revision mysql-new and annotation conformance/rollout=1 (last observed at seq \
                 10): with updateStrategy OnDelete it keeps its template until it is deleted"
            ],
            "{v}"
        );
    }

    #[test]
    fn the_on_delete_window_must_last_the_dwell() {
        let mut events = start();
        events.push(done(OLD, 0));
        events.push(delete_pod(1));
        events.extend(replace(1));
        events.push(mark("watched"));
        let mut entries = History::from_events(events);
        let expect = RolloutExpect::new("mysql", 3, Strategy::OnDelete);
        assert_eq!(expect.dwell, ON_DELETE_DWELL);
        let short = rollout(&entries, (3, u64::MAX), &expect).verdict;
        assert!(short.is_unknown(), "{short}");
        assert!(
            short.to_string().contains(
                "the window ended 0.0 s after the template change (seq 3), before the 10.0 s"
            ),
            "{short}"
        );
        let last = entries.len() - 1;
        entries[last].at = entries[3].at + ON_DELETE_DWELL;
        let long = rollout(&entries, (3, u64::MAX), &expect).verdict;
        assert!(long.is_pass(), "{long}");
        assert!(
            long.to_string()
                .contains("kept their pods and template for 10.0 s"),
            "{long}"
        );
    }
}
