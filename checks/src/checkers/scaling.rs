//! OrderedReady scaling: on scale-up ordinal i is created only while every lower ordinal's
//! pod is Running and Ready at that moment (its last observation then, not a Ready seen
//! once: upstream halts while any pod is unhealthy); on scale-down pods are removed
//! highest ordinal first, each gone before the next deletion begins. Judged in observation
//! order (seq).
//!
//! The ordinals a scale should touch come from the `Scale` actions recorded in the window:
//! one that never appeared (scale-up) or never began its deletion (scale-down) is named,
//! so a scale that stalls part-way cannot pass on the ordinals that did move.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::history::{Action, Entry, Event, PodState};

use crate::verdict::{CheckResult, Verdict, Window};
use crate::world::{describe_pod, ordinal_of, pod_observations, pod_ref};

/// What the scale-up check remembers of one ordinal: its last observation.
struct Tracked {
    seq: u64,
    gone: bool,
    pod: PodState,
}

impl Tracked {
    fn new(seq: u64, gone: bool, pod: &PodState) -> Self {
        Self {
            seq,
            gone,
            pod: pod.clone(),
        }
    }

    /// Running and Ready at its last observation.
    fn healthy(&self) -> bool {
        !self.gone
            && self.pod.ready
            && !self.pod.terminating
            && self.pod.phase.as_deref() == Some("Running")
    }
}

/// A `Scale` of `statefulset` recorded in `window`: its seq, from and to.
struct ScaleStep {
    seq: u64,
    from: u32,
    to: u32,
}

impl std::fmt::Display for ScaleStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "scale {}->{} at seq {}", self.from, self.to, self.seq)
    }
}

fn scale_steps(entries: &[Entry], window: Window, statefulset: &str) -> Vec<ScaleStep> {
    entries
        .iter()
        .filter(|e| window.contains(e.seq))
        .filter_map(|e| match &e.event {
            Event::Action(Action::Scale {
                statefulset: name,
                from,
                to,
                ..
            }) if name == statefulset => Some(ScaleStep {
                seq: e.seq,
                from: u32::try_from(*from).unwrap_or(0),
                to: u32::try_from(*to).unwrap_or(0),
            }),
            _ => None,
        })
        .collect()
}

/// Each ordinal a scale in the window added (or removed), with the scale that did it;
/// ordinals count from `start` (`spec.ordinals.start`).
fn scaled_ordinals(steps: &[ScaleStep], up: bool, start: u32) -> BTreeMap<u32, &ScaleStep> {
    let mut ordinals = BTreeMap::new();
    for step in steps {
        let range = if up {
            start + step.from..start + step.to
        } else {
            start + step.to..start + step.from
        };
        for ordinal in range {
            ordinals.entry(ordinal).or_insert(step);
        }
    }
    ordinals
}

/// Every ordinal first observed (a new pod uid for its name) inside `window` appeared only
/// while the pod of every lower ordinal was, at its last observation, Running, Ready and not
/// terminating.
pub fn ordered_scale_up(
    entries: &[Entry],
    window: impl Into<Window>,
    statefulset: &str,
) -> CheckResult {
    ordered_scale_up_from(entries, window, statefulset, 0)
}

/// [`ordered_scale_up`] for a StatefulSet whose ordinals begin at `start`
/// (`spec.ordinals.start`): the first ordinal has no predecessor.
pub fn ordered_scale_up_from(
    entries: &[Entry],
    window: impl Into<Window>,
    statefulset: &str,
    start: u32,
) -> CheckResult {
    CheckResult::new(
        "ordered scale-up",
        scale_up(entries, window.into(), statefulset, start),
    )
}

fn scale_up(entries: &[Entry], window: Window, statefulset: &str, start: u32) -> Verdict {
    let mut ordinals: BTreeMap<u32, Tracked> = BTreeMap::new();
    let mut appeared = Vec::new();
    let mut appeared_ordinals = BTreeSet::new();
    let mut evidence = Vec::new();
    for (seq, gone, pod) in pod_observations(entries).take_while(|(seq, ..)| *seq <= window.to) {
        let Some(ordinal) = ordinal_of(&pod.name, statefulset) else {
            continue;
        };
        let in_window = window.contains(seq);
        let current = ordinals.get(&ordinal);
        let appears = !gone && current.is_none_or(|t| t.gone || t.pod.uid != pod.uid);
        if appears && in_window {
            appeared.push(format!("{} (seq {seq})", pod.name));
            appeared_ordinals.insert(ordinal);
            evidence.extend((start..ordinal).filter_map(|lower| {
                predecessor_not_ready(&ordinals, lower, seq, pod, statefulset)
            }));
        }
        ordinals.insert(ordinal, Tracked::new(seq, gone, pod));
    }
    let mut unknowns = Vec::new();
    let steps = scale_steps(entries, window, statefulset);
    for (ordinal, step) in scaled_ordinals(&steps, true, start) {
        if appeared_ordinals.contains(&ordinal) {
            continue;
        }
        let name = format!("{statefulset}-{ordinal}");
        match ordinals.get(&ordinal) {
            // It existed before the window: there, but its order was not observed.
            Some(t) if !t.gone => unknowns.push(format!(
                "{name}, expected by {step}, already existed before {window} ({} first observed \
                 earlier), so its order was not judged",
                pod_ref(&t.pod)
            )),
            Some(t) => evidence.push(format!(
                "{name}, expected by {step}, did not appear in {window} ({} was last observed \
                 deleted at seq {})",
                pod_ref(&t.pod),
                t.seq
            )),
            None => evidence.push(format!(
                "{name}, expected by {step}, was never observed by the end of {window}"
            )),
        }
    }
    if appeared.is_empty() && evidence.is_empty() {
        unknowns.push(format!(
            "no pod of StatefulSet {statefulset} was first observed in {window}"
        ));
    }
    Verdict::judge(evidence, unknowns, || {
        format!(
            "{} appeared in {window}, each while every lower ordinal was Running and Ready",
            appeared.join(", ")
        )
    })
}

fn predecessor_not_ready(
    ordinals: &BTreeMap<u32, Tracked>,
    prev: u32,
    seq: u64,
    pod: &PodState,
    statefulset: &str,
) -> Option<String> {
    let appeared = format!("{} was first observed at seq {seq}", pod_ref(pod));
    let prev_name = format!("{statefulset}-{prev}");
    let Some(t) = ordinals.get(&prev) else {
        return Some(format!(
            "{appeared} but {prev_name} had never been observed"
        ));
    };
    let last = format!("last observed at seq {}: {}", t.seq, describe_pod(&t.pod));
    if t.gone {
        Some(format!(
            "{appeared} while {prev_name} did not exist ({} observed deleted at seq {})",
            pod_ref(&t.pod),
            t.seq
        ))
    } else if t.pod.terminating {
        Some(format!(
            "{appeared} while {} was terminating ({last})",
            pod_ref(&t.pod)
        ))
    } else if !t.healthy() {
        Some(format!(
            "{appeared} while {} was not Running and Ready ({last})",
            pod_ref(&t.pod)
        ))
    } else {
        None
    }
}

/// A pod whose deletion began in the window.
struct Deletion {
    seq: u64,
    pod: PodState,
    gone_at: Option<u64>,
}

/// Deletions that begin inside `window` (first observation of a pod uid as terminating, or
/// its `Deleted` event if it was never seen terminating) start highest ordinal first, and
/// each one begins only once every higher ordinal is observed gone.
pub fn reverse_scale_down(
    entries: &[Entry],
    window: impl Into<Window>,
    statefulset: &str,
) -> CheckResult {
    reverse_scale_down_from(entries, window, statefulset, 0)
}

/// [`reverse_scale_down`] for a StatefulSet whose ordinals begin at `start`.
pub fn reverse_scale_down_from(
    entries: &[Entry],
    window: impl Into<Window>,
    statefulset: &str,
    start: u32,
) -> CheckResult {
    CheckResult::new(
        "reverse-order scale-down",
        scale_down(entries, window.into(), statefulset, start),
    )
}

fn scale_down(entries: &[Entry], window: Window, statefulset: &str, start: u32) -> Verdict {
    let mut live: BTreeMap<u32, (u64, PodState)> = BTreeMap::new();
    let mut begun: HashSet<String> = HashSet::new();
    let mut deletions: Vec<Deletion> = Vec::new();
    let mut evidence = Vec::new();
    for (seq, gone, pod) in pod_observations(entries).take_while(|(seq, ..)| *seq <= window.to) {
        let Some(ordinal) = ordinal_of(&pod.name, statefulset) else {
            continue;
        };
        let begins = (gone || pod.terminating) && begun.insert(pod.uid.clone());
        if begins && window.contains(seq) {
            evidence.extend(live.range(ordinal + 1..).map(|(_, (last_seq, higher))| {
                format!(
                    "deletion of {} began at seq {seq} while {} still existed (last observed at seq {last_seq}: {})",
                    pod_ref(pod),
                    pod_ref(higher),
                    describe_pod(higher)
                )
            }));
            deletions.push(Deletion {
                seq,
                pod: pod.clone(),
                gone_at: None,
            });
        }
        if gone {
            if live.get(&ordinal).is_some_and(|(_, p)| p.uid == pod.uid) {
                live.remove(&ordinal);
            }
            if let Some(d) = deletions.iter_mut().find(|d| d.pod.uid == pod.uid) {
                d.gone_at = Some(seq);
            }
        } else {
            live.insert(ordinal, (seq, pod.clone()));
        }
    }
    let mut unknowns = Vec::new();
    let steps = scale_steps(entries, window, statefulset);
    for (ordinal, step) in scaled_ordinals(&steps, false, start) {
        let name = format!("{statefulset}-{ordinal}");
        if deletions.iter().any(|d| d.pod.name == name) {
            continue;
        }
        match live.get(&ordinal) {
            Some((last_seq, pod)) => evidence.push(format!(
                "{name}, to be removed by {step}, never began deletion in {window} ({} last \
                 observed at seq {last_seq}: {})",
                pod_ref(pod),
                describe_pod(pod)
            )),
            None => unknowns.push(format!(
                "{name}, to be removed by {step}, did not exist when {window} began, so its \
                 removal was not judged"
            )),
        }
    }
    if deletions.is_empty() && evidence.is_empty() {
        unknowns.push(format!(
            "no pod of StatefulSet {statefulset} began deletion in {window}"
        ));
    }
    evidence.extend(deletions.iter().filter(|d| d.gone_at.is_none()).map(|d| {
        format!(
            "deletion of {} began at seq {} but it was not observed gone by the end of {window}",
            pod_ref(&d.pod),
            d.seq
        )
    }));
    Verdict::judge(evidence, unknowns, || {
        let order: Vec<String> = deletions
            .iter()
            .map(|d| {
                format!(
                    "{} (seq {}, gone at seq {})",
                    d.pod.name,
                    d.seq,
                    d.gone_at.unwrap_or_default()
                )
            })
            .collect();
        format!(
            "deletions began in order {}, each once every higher ordinal was gone",
            order.join(", ")
        )
    })
}

/// With `podManagementPolicy: Parallel` no order is promised, so bursts are fine: every
/// ordinal a scale in `window` added was first observed (a new uid) in the window and is
/// live at its end, and every ordinal a scale removed was observed gone by its end.
/// Ordinals count from `start`.
pub fn parallel_scale(
    entries: &[Entry],
    window: impl Into<Window>,
    statefulset: &str,
    start: u32,
) -> CheckResult {
    CheckResult::new(
        "scale (Parallel)",
        parallel(entries, window.into(), statefulset, start),
    )
}

fn parallel(entries: &[Entry], window: Window, statefulset: &str, start: u32) -> Verdict {
    let steps = scale_steps(entries, window, statefulset);
    if steps.is_empty() {
        return Verdict::Unknown {
            reason: format!("no scale of StatefulSet {statefulset} was recorded in {window}"),
        };
    }
    // Per ordinal: when a new uid was first observed, and when a pod was observed gone.
    let mut appeared: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let mut gone_at: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let mut last: BTreeMap<u32, (u64, &PodState)> = BTreeMap::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for (seq, gone, pod) in pod_observations(entries).take_while(|(seq, ..)| *seq <= window.to) {
        let Some(ordinal) = ordinal_of(&pod.name, statefulset) else {
            continue;
        };
        if seen.insert(pod.uid.as_str()) && !gone {
            appeared.entry(ordinal).or_default().push(seq);
        }
        if gone {
            gone_at.entry(ordinal).or_default().push(seq);
        }
        last.insert(ordinal, (seq, pod));
    }
    let after =
        |seqs: Option<&Vec<u64>>, from: u64| seqs.is_some_and(|s| s.iter().any(|x| *x > from));
    let mut evidence = Vec::new();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for step in &steps {
        let up = step.to > step.from;
        for ordinal in start + step.from.min(step.to)..start + step.from.max(step.to) {
            let name = format!("{statefulset}-{ordinal}");
            let (done, verb) = if up {
                (
                    after(appeared.get(&ordinal), step.seq),
                    "never appeared as a new pod",
                )
            } else {
                (
                    after(gone_at.get(&ordinal), step.seq),
                    "was never observed gone",
                )
            };
            if done {
                if up { &mut added } else { &mut removed }.push(format!("{name} ({step})"));
                continue;
            }
            let last_seen = match last.get(&ordinal) {
                Some((seq, pod)) => format!(
                    "{} last observed at seq {seq}: {}",
                    pod_ref(pod),
                    describe_pod(pod)
                ),
                None => "never observed".into(),
            };
            evidence.push(format!(
                "{name}, {} by {step}, {verb} by the end of {window} ({last_seen})",
                if up { "expected" } else { "to be removed" }
            ));
        }
    }
    Verdict::judge(evidence, Vec::new(), || {
        format!(
            "added {} and removed {} in {window}, in any order (Parallel)",
            if added.is_empty() {
                "none".into()
            } else {
                added.join(", ")
            },
            if removed.is_empty() {
                "none".into()
            } else {
                removed.join(", ")
            }
        )
    })
}

#[cfg(test)]
mod tests;
