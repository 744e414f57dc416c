//! Identity after a fault: a deleted pod comes back with the same name and claims but a
//! new uid; a crashed container or a restarted node keeps the pod (same uid) with a higher
//! restart count and the same claims. The claims are judged as objects, not names: each is
//! the same PVC (uid) bound to the same PV (name and uid: not a volume replaced under a kept
//! claim), that PV is not marked for deletion while the pod runs on it, and a PV pinned to a
//! node (nodeAffinity) has the pod on that node.

use std::collections::BTreeMap;

use crate::history::{Action, Entry, Event, PodState, PvcState};

use crate::verdict::{CheckResult, Verdict};
use crate::world::{World, describe_pod, pod_observations, pod_ref};

/// What the fault should have done to the pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recreation {
    /// Deleted and recreated by the controller: a new uid.
    NewPod,
    /// Container crash or node restart: the same uid, with a restart count above the one
    /// observed just before the fault (the first recorded `DeletePod` / `CrashContainer`
    /// of the uid, or `StopNode` of the node it ran on).
    Restarted,
}

/// Judges the pod named `pod_name`, whose uid before the fault was `old_uid`, on its last
/// observed state.
pub fn identity_after_recreation(
    entries: &[Entry],
    pod_name: &str,
    old_uid: &str,
    expect: Recreation,
) -> CheckResult {
    let check = match expect {
        Recreation::NewPod => "identity after pod recreation",
        Recreation::Restarted => "identity after restart",
    };
    CheckResult::new(check, verdict(entries, pod_name, old_uid, expect))
}

fn verdict(entries: &[Entry], pod_name: &str, old_uid: &str, expect: Recreation) -> Verdict {
    let Some((old_seq, old)) = last_observation_of(entries, old_uid, u64::MAX) else {
        return Verdict::Unknown {
            reason: format!("pod {pod_name} with uid {old_uid} was never observed"),
        };
    };
    let world = World::last(entries);
    let Some(current) = world.live_pod(pod_name) else {
        let last = world
            .pods
            .get(pod_name)
            .map(|s| format!("{} observed deleted at seq {}", pod_ref(&s.state), s.seq))
            .unwrap_or_else(|| "never observed".into());
        return Verdict::Fail {
            evidence: vec![format!(
                "no pod {pod_name} exists at the end of the history ({last})"
            )],
        };
    };
    let (mut evidence, summary) = match expect {
        Recreation::NewPod => (
            recreated(old, current),
            format!(
                "{pod_name} recreated with uid {} (was {old_uid})",
                current.uid
            ),
        ),
        Recreation::Restarted => {
            let Some((fault_seq, before)) = state_before_fault(entries, old_uid) else {
                return Verdict::Unknown {
                    reason: format!(
                        "no fault on pod {pod_name} (uid {old_uid}) was recorded after it was observed, \
                         so its restart count before the fault is unknown"
                    ),
                };
            };
            (
                restarted(before, fault_seq, current),
                format!(
                    "{pod_name} kept uid {old_uid}, restart count {} before the fault (seq {fault_seq}) -> {}",
                    before.restart_count, current.restart_count
                ),
            )
        }
    };
    evidence.extend(same_claims(old, current));
    if current.node_name.is_some() {
        evidence.extend(on_pinned_nodes(current, &world));
    }
    let claims = same_claim_objects(entries, old_seq, old, &world);
    evidence.extend(claims.evidence);
    Verdict::judge(evidence, claims.unknowns, || {
        format!("{summary}, same claims {}", claim_list(&current.claims))
    })
}

/// The last observation of a uid up to `upto` (its final state, or its state when deleted).
fn last_observation_of<'a>(
    entries: &'a [Entry],
    uid: &str,
    upto: u64,
) -> Option<(u64, &'a PodState)> {
    pod_observations(entries)
        .take_while(|(seq, ..)| *seq <= upto)
        .filter(|(_, _, p)| p.uid == uid)
        .map(|(seq, _, p)| (seq, p))
        .last()
}

/// The first recorded fault on a pod uid, and the pod's state observed just before it.
fn state_before_fault<'a>(entries: &'a [Entry], uid: &str) -> Option<(u64, &'a PodState)> {
    entries.iter().find_map(|e| {
        let Event::Action(action) = &e.event else {
            return None;
        };
        let (_, before) = last_observation_of(entries, uid, e.seq)?;
        let hits = match action {
            Action::DeletePod { uid: u, .. } | Action::CrashContainer { uid: u, .. } => u == uid,
            Action::StopNode { node } => before.node_name.as_deref() == Some(node.as_str()),
            _ => false,
        };
        hits.then_some((e.seq, before))
    })
}

fn recreated(old: &PodState, current: &PodState) -> Vec<String> {
    if current.uid == old.uid {
        vec![format!(
            "{} was not recreated: it still has its old uid ({})",
            pod_ref(current),
            describe_pod(current)
        )]
    } else {
        Vec::new()
    }
}

fn restarted(before: &PodState, fault_seq: u64, current: &PodState) -> Vec<String> {
    if current.uid != before.uid {
        return vec![format!(
            "pod {} was recreated (uid {} -> {}) instead of restarted in place",
            current.name, before.uid, current.uid
        )];
    }
    if current.restart_count <= before.restart_count {
        return vec![format!(
            "{} restart count is {}, not above the {} observed before the fault at seq {fault_seq} ({})",
            pod_ref(current),
            current.restart_count,
            before.restart_count,
            describe_pod(current)
        )];
    }
    Vec::new()
}

fn same_claims(old: &PodState, current: &PodState) -> Option<String> {
    (old.claims != current.claims).then(|| {
        format!(
            "{} mounts claims {}, but uid {} mounted {}",
            pod_ref(current),
            claim_list(&current.claims),
            old.uid,
            claim_list(&old.claims)
        )
    })
}

/// What was found of the claim objects.
#[derive(Default)]
struct ClaimFindings {
    evidence: Vec<String>,
    unknowns: Vec<String>,
}

/// Each claim is still the same PVC object (same uid), not one recreated under its name. A
/// claim never observed while the old pod was leaves that unjudged.
fn same_claim_objects(
    entries: &[Entry],
    old_seq: u64,
    old: &PodState,
    now: &World,
) -> ClaimFindings {
    let then = World::at(entries, old_seq);
    let mut found = ClaimFindings::default();
    for claim in old.claims.values() {
        let (Some(before), Some(after)) = (then.pvcs.get(claim), now.pvcs.get(claim)) else {
            found.unknowns.push(format!(
                "PVC {claim} of uid {} was never observed by seq {old_seq}, so whether it is \
                 the same object now was not judged",
                old.uid
            ));
            continue;
        };
        if before.state.uid != after.state.uid || after.gone {
            found.evidence.push(format!(
                "PVC {claim} changed: uid {} at seq {}, {} {} at seq {}",
                before.state.uid,
                before.seq,
                if after.gone { "deleted" } else { "now uid" },
                after.state.uid,
                after.seq
            ));
            continue;
        }
        same_volume(
            claim,
            (before.seq, &before.state),
            (after.seq, &after.state),
            &then,
            now,
            &mut found,
        );
    }
    found
}

/// The claim's PV is the same object before and after (name and uid), not marked for
/// deletion, and, when pinned to a node, holds the pod on that node.
fn same_volume(
    claim: &str,
    (before_seq, before): (u64, &PvcState),
    (after_seq, after): (u64, &PvcState),
    then: &World,
    now: &World,
    found: &mut ClaimFindings,
) {
    let (Some(old_pv), Some(new_pv)) =
        (before.volume_name.as_deref(), after.volume_name.as_deref())
    else {
        found.unknowns.push(format!(
            "PVC {claim} was not bound to a PV at seq {before_seq} and at seq {after_seq}, so its volume's identity was not judged"
        ));
        return;
    };
    let (Some(pv_then), Some(pv_now)) = (then.pvs.get(old_pv), now.pvs.get(new_pv)) else {
        found.unknowns.push(format!(
            "PV {old_pv} or {new_pv} of PVC {claim} was never observed, so its volume's identity was not judged"
        ));
        return;
    };
    if old_pv != new_pv || pv_then.state.uid != pv_now.state.uid || pv_now.gone {
        found.evidence.push(format!(
            "the volume under PVC {claim} (same claim uid {}) was replaced: PV {old_pv} (uid {}) at seq {}, {} PV {new_pv} (uid {}) at seq {}",
            after.uid,
            pv_then.state.uid,
            pv_then.seq,
            if pv_now.gone { "deleted" } else { "now" },
            pv_now.state.uid,
            pv_now.seq
        ));
        return;
    }
    if pv_now.state.terminating {
        found.evidence.push(format!(
            "PV {new_pv} (uid {}) of PVC {claim} is marked for deletion (deletionTimestamp set, observed at seq {}) while a pod of the set runs on it",
            pv_now.state.uid, pv_now.seq
        ));
    }
}

/// The pod runs on the node its claims' PVs are pinned to.
fn on_pinned_nodes(pod: &PodState, world: &World) -> Vec<String> {
    pod.claims
        .values()
        .filter_map(|claim| {
            let pvc = world.live_pvc(claim)?;
            let pv_name = pvc.volume_name.as_deref()?;
            let pv = world.pvs.get(pv_name)?;
            let pinned = pv.state.node.as_deref()?;
            (pod.node_name.as_deref() != Some(pinned)).then(|| {
                format!(
                    "{} runs on node {}, but PV {pv_name} (uid {}) of its claim {claim} is pinned to node {pinned}",
                    pod_ref(pod),
                    pod.node_name.as_deref().unwrap_or("none"),
                    pv.state.uid
                )
            })
        })
        .collect()
}

fn claim_list(claims: &BTreeMap<String, String>) -> String {
    let names: Vec<&str> = claims.values().map(String::as_str).collect();
    format!("[{}]", names.join(", "))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::history::{Event, History};
    use crate::testkit::*;

    fn delete_pod() -> Event {
        Event::Action(Action::DeletePod {
            pod: "mysql-1".into(),
            uid: "u1".into(),
            grace_seconds: None,
        })
    }

    fn crash() -> Event {
        Event::Action(Action::CrashContainer {
            pod: "mysql-1".into(),
            uid: "u1".into(),
        })
    }

    fn stop_node(node: &str) -> Event {
        Event::Action(Action::StopNode { node: node.into() })
    }

    /// mysql-1 (uid u1, 2 restarts, on node `worker`) and its PVC, then `fault` at seq 2.
    fn history(fault: Event, tail: Vec<Event>) -> Vec<Entry> {
        let mut events = vec![
            applied(pv("pv-1", "c1")),
            applied(pvc(&claim(1), "c1", "pv-1")),
            applied(pod("mysql-1", "u1").restarts(2)),
            fault,
        ];
        events.extend(tail);
        History::from_events(events)
    }

    #[rstest]
    #[case::new_pod_after_delete(
        delete_pod(),
        vec![deleted(pod("mysql-1", "u1")), applied(pod("mysql-1", "u1b"))],
        Recreation::NewPod
    )]
    #[case::restarted_after_crash(crash(), vec![applied(pod("mysql-1", "u1").restarts(3))], Recreation::Restarted)]
    #[case::restarted_after_node_restart(
        stop_node("worker"),
        vec![applied(pod("mysql-1", "u1").not_ready().restarts(2)), applied(pod("mysql-1", "u1").restarts(3))],
        Recreation::Restarted
    )]
    fn expected_identity_passes(
        #[case] fault: Event,
        #[case] tail: Vec<Event>,
        #[case] expect: Recreation,
    ) {
        let v = identity_after_recreation(&history(fault, tail), "mysql-1", "u1", expect).verdict;
        assert!(v.is_pass(), "{v}");
    }

    #[rstest]
    #[case::not_recreated(
        delete_pod(),
        vec![applied(pod("mysql-1", "u1"))],
        Recreation::NewPod,
        "pod mysql-1 (uid u1) was not recreated"
    )]
    #[case::recreated_with_another_claim(
        delete_pod(),
        vec![
            deleted(pod("mysql-1", "u1")),
            applied(pod("mysql-1", "u1b").with(|p| { p.claims.insert(TEMPLATE.into(), claim(2)); })),
        ],
        Recreation::NewPod,
        "pod mysql-1 (uid u1b) mounts claims [mysql-persistent-storage-mysql-2], but uid u1 mounted [mysql-persistent-storage-mysql-1]"
    )]
    #[case::claim_recreated_under_same_name(
        delete_pod(),
        vec![
            deleted(pod("mysql-1", "u1")),
            deleted(pvc(&claim(1), "c1", "pv-1")),
            applied(pvc(&claim(1), "c1new", "pv-7")),
            applied(pod("mysql-1", "u1b")),
        ],
        Recreation::NewPod,
        "PVC mysql-persistent-storage-mysql-1 changed: uid c1 at seq 1, now uid c1new"
    )]
    #[case::gone_for_good(
        delete_pod(),
        vec![deleted(pod("mysql-1", "u1"))],
        Recreation::NewPod,
        "no pod mysql-1 exists at the end of the history (pod mysql-1 (uid u1) observed deleted at seq 4)"
    )]
    #[case::recreated_instead_of_restarted(
        crash(),
        vec![deleted(pod("mysql-1", "u1")), applied(pod("mysql-1", "u1b").restarts(0))],
        Recreation::Restarted,
        "pod mysql-1 was recreated (uid u1 -> u1b)"
    )]
    #[case::restart_count_did_not_grow(
        stop_node("worker"),
        vec![applied(pod("mysql-1", "u1").restarts(2))],
        Recreation::Restarted,
        "pod mysql-1 (uid u1) restart count is 2, not above the 2 observed before the fault at seq 3"
    )]
    fn broken_identity_is_named(
        #[case] fault: Event,
        #[case] tail: Vec<Event>,
        #[case] expect: Recreation,
        #[case] expected: &str,
    ) {
        let v = identity_after_recreation(&history(fault, tail), "mysql-1", "u1", expect).verdict;
        assert!(v.is_fail(), "{v}");
        assert!(
            v.evidence().iter().any(|e| e.contains(expected)),
            "wanted {expected:?} in {v}"
        );
    }

    #[rstest]
    #[case::old_uid_never_observed(
        crash(),
        "nope",
        Recreation::NewPod,
        "uid nope was never observed"
    )]
    #[case::no_fault_recorded(
        mark("nothing"),
        "u1",
        Recreation::Restarted,
        "no fault on pod mysql-1 (uid u1)"
    )]
    #[case::fault_on_another_node(
        stop_node("other"),
        "u1",
        Recreation::Restarted,
        "no fault on pod mysql-1 (uid u1)"
    )]
    fn undecidable_is_unknown(
        #[case] fault: Event,
        #[case] uid: &str,
        #[case] expect: Recreation,
        #[case] expected: &str,
    ) {
        let tail = vec![applied(pod("mysql-1", "u1").restarts(3))];
        let v = identity_after_recreation(&history(fault, tail), "mysql-1", uid, expect).verdict;
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string().contains(expected),
            "wanted {expected:?} in {v}"
        );
    }

    #[rstest]
    #[case::pv_replaced_under_the_kept_claim(
        vec![
            deleted(pod("mysql-1", "u1")),
            deleted(pv("pv-1", "c1")),
            applied(pv("pv-1", "c1")).with_pv_uid("pv-1-new"),
            applied(pod("mysql-1", "u1b")),
        ],
        "the volume under PVC mysql-persistent-storage-mysql-1 (same claim uid c1) was replaced: \
         PV pv-1 (uid pv-1-uid) at seq 0, now PV pv-1 (uid pv-1-new) at seq 6"
    )]
    #[case::claim_rebound_to_another_pv(
        vec![
            deleted(pod("mysql-1", "u1")),
            applied(pv("pv-9", "c1")),
            applied(pvc(&claim(1), "c1", "pv-9")),
            applied(pod("mysql-1", "u1b")),
        ],
        "the volume under PVC mysql-persistent-storage-mysql-1 (same claim uid c1) was replaced: \
         PV pv-1 (uid pv-1-uid) at seq 0, now PV pv-9 (uid pv-9-uid) at seq 5"
    )]
    #[case::pv_marked_for_deletion_under_the_running_pod(
        vec![
            deleted(pod("mysql-1", "u1")),
            applied(crate::history::PvState { terminating: true, ..pv("pv-1", "c1") }),
            applied(pod("mysql-1", "u1b")),
        ],
        "PV pv-1 (uid pv-1-uid) of PVC mysql-persistent-storage-mysql-1 is marked for deletion \
         (deletionTimestamp set, observed at seq 5) while a pod of the set runs on it"
    )]
    #[case::recreated_away_from_its_pinned_pv(
        vec![
            deleted(pod("mysql-1", "u1")),
            applied(pod("mysql-1", "u1b").with(|p| p.node_name = Some("worker2".into()))),
        ],
        "pod mysql-1 (uid u1b) runs on node worker2, but PV pv-1 (uid pv-1-uid) of its claim \
         mysql-persistent-storage-mysql-1 is pinned to node worker"
    )]
    fn a_volume_that_is_not_the_same_is_named(#[case] tail: Vec<Event>, #[case] expected: &str) {
        let v = identity_after_recreation(
            &history(delete_pod(), tail),
            "mysql-1",
            "u1",
            Recreation::NewPod,
        )
        .verdict;
        assert!(
            v.evidence().iter().any(|e| e == expected),
            "wanted {expected:?} in {v}"
        );
    }

    #[test]
    fn a_pv_never_observed_is_unknown() {
        let entries = History::from_events(vec![
            applied(pvc(&claim(1), "c1", "pv-1")),
            applied(pod("mysql-1", "u1")),
            delete_pod(),
            deleted(pod("mysql-1", "u1")),
            applied(pod("mysql-1", "u1b")),
        ]);
        let v = identity_after_recreation(&entries, "mysql-1", "u1", Recreation::NewPod).verdict;
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string().contains(
                "PV pv-1 or pv-1 of PVC mysql-persistent-storage-mysql-1 was never observed"
            ),
            "{v}"
        );
    }

    trait PvUid {
        fn with_pv_uid(self, uid: &str) -> Self;
    }

    impl PvUid for Event {
        fn with_pv_uid(mut self, uid: &str) -> Self {
            if let Event::Object {
                object: crate::history::Snapshot::PersistentVolume(pv),
                ..
            } = &mut self
            {
                pv.uid = uid.into();
            }
            self
        }
    }

    #[test]
    fn a_claim_never_observed_is_unknown() {
        let entries = History::from_events(vec![
            applied(pod("mysql-1", "u1")),
            delete_pod(),
            deleted(pod("mysql-1", "u1")),
            applied(pod("mysql-1", "u1b")),
        ]);
        let v = identity_after_recreation(&entries, "mysql-1", "u1", Recreation::NewPod).verdict;
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string().contains(
                "PVC mysql-persistent-storage-mysql-1 of uid u1 was never observed by seq 2"
            ),
            "{v}"
        );
    }

    #[test]
    fn check_name_says_which_fault() {
        let entries = history(crash(), vec![]);
        assert_eq!(
            identity_after_recreation(&entries, "mysql-1", "u1", Recreation::NewPod).check,
            "identity after pod recreation"
        );
        assert_eq!(
            identity_after_recreation(&entries, "mysql-1", "u1", Recreation::Restarted).check,
            "identity after restart"
        );
    }
}
