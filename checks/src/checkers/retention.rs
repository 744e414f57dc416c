//! PVC retention: one PVC per ordinal (`<template>-<sts>-<ordinal>`), kept on scale-down
//! and mounted again by the same ordinal on scale-up (Retain, the default); or removed
//! with the ordinal when the retention policy says `whenScaled: Delete`.
//!
//! The claims are those of the documented StatefulSet: `mysql-persistent-storage-mysql-<i>`.
//!
//! Absence never passes: a PVC not observed at `before`, a PV that was never observed,
//! and (for [`pvc_retention`]) an ordinal whose pod does not exist at `after` leave their
//! part unjudged, so the verdict is Unknown naming it. [`pvc_kept`] is the check for a
//! point where the ordinals are meant to be gone (right after a scale-down).

use crate::history::{Entry, Event, PvcState, ReadResult, WriteEvent};

use crate::verdict::{CheckResult, Verdict};
use crate::world::{World, pod_ref, pvc_ref};

/// How the StatefulSet names its claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ClaimTemplate {
    statefulset: &'static str,
    template: &'static str,
}

/// `mysql-persistent-storage` of StatefulSet `mysql`.
pub(super) const DOCUMENTED: ClaimTemplate = ClaimTemplate {
    statefulset: "mysql",
    template: "mysql-persistent-storage",
};

impl ClaimTemplate {
    /// The PVC of `ordinal`.
    pub(super) fn claim(&self, ordinal: u32) -> String {
        format!("{}-{}-{ordinal}", self.template, self.statefulset)
    }

    pub(super) fn pod(&self, ordinal: u32) -> String {
        format!("{}-{ordinal}", self.statefulset)
    }
}

/// The PVCs of `ordinals` as observed at `before` still exist at `after` with the same uid
/// and PV, and the pod of each ordinal exists at `after` and mounts its own (Unknown for
/// an ordinal whose pod is not there: use [`pvc_kept`] while the ordinals are scaled away).
pub fn pvc_retention(entries: &[Entry], before: u64, after: u64, ordinals: &[u32]) -> CheckResult {
    CheckResult::new(
        "PVC retention",
        retention(
            entries,
            &DOCUMENTED,
            ordinals,
            before,
            after,
            Remount::Required,
        ),
    )
}

/// The PVCs of `ordinals` as observed at `before` still exist at `after` with the same uid
/// and PV, whether or not their pods exist: the promise of a scale-down, before the
/// ordinals come back.
pub fn pvc_kept(entries: &[Entry], before: u64, after: u64, ordinals: &[u32]) -> CheckResult {
    CheckResult::new(
        "PVC retention on scale-down",
        retention(
            entries,
            &DOCUMENTED,
            ordinals,
            before,
            after,
            Remount::NotJudged,
        ),
    )
}

/// Whether the ordinals' pods must mount their claims again at `after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Remount {
    Required,
    NotJudged,
}

/// The PVCs of `ordinals` observed at `before` are gone by `after` (retention policy
/// `whenScaled: Delete`), each only after its ordinal's pod was gone.
pub fn pvc_deleted(entries: &[Entry], before: u64, after: u64, ordinals: &[u32]) -> CheckResult {
    CheckResult::new(
        "PVC deletion (whenScaled: Delete)",
        deletion(
            entries,
            &DOCUMENTED,
            ordinals,
            before,
            after,
            Policy::WhenScaled,
        ),
    )
}

/// The PVCs of `ordinals` observed at `before` are gone by `after` once the StatefulSet was
/// deleted (retention policy `whenDeleted: Delete`), each only after its ordinal's pod was
/// gone.
pub fn pvc_deleted_with_set(
    entries: &[Entry],
    before: u64,
    after: u64,
    ordinals: &[u32],
) -> CheckResult {
    CheckResult::new(
        "PVC deletion (whenDeleted: Delete)",
        deletion(
            entries,
            &DOCUMENTED,
            ordinals,
            before,
            after,
            Policy::WhenDeleted,
        ),
    )
}

/// After a scale-down with `whenScaled: Delete` (the claims of `ordinals` live at `before`)
/// and a scale back up by `after`, each ordinal has a fresh claim (another uid than at
/// `before`) and an empty one: no read of its rows after `before` holds a row acknowledged
/// before it.
pub fn pvc_fresh(entries: &[Entry], before: u64, after: u64, ordinals: &[u32]) -> CheckResult {
    CheckResult::new(
        "fresh PVCs after whenScaled: Delete",
        fresh(entries, &DOCUMENTED, ordinals, before, after),
    )
}

/// Which retention rule deleted the claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    WhenScaled,
    WhenDeleted,
}

impl Policy {
    fn field(self) -> &'static str {
        match self {
            Policy::WhenScaled => "whenScaled",
            Policy::WhenDeleted => "whenDeleted",
        }
    }
}

/// The world at `before` and at `after`; Unknown when no ordinal is to be judged.
fn worlds(
    entries: &[Entry],
    ordinals: &[u32],
    before: u64,
    after: u64,
) -> Result<(World, World), Verdict> {
    if ordinals.is_empty() {
        return Err(Verdict::Unknown {
            reason: "no ordinal was given, so no PVC was judged".into(),
        });
    }
    Ok((World::at(entries, before), World::at(entries, after)))
}

fn retention(
    entries: &[Entry],
    claims: &ClaimTemplate,
    ordinals: &[u32],
    before: u64,
    after: u64,
    remount: Remount,
) -> Verdict {
    let (then, now) = match worlds(entries, ordinals, before, after) {
        Ok(worlds) => worlds,
        Err(unjudged) => return unjudged,
    };
    let mut evidence = Vec::new();
    let mut unknowns = Vec::new();
    let mut kept = Vec::new();
    for &ordinal in ordinals {
        let name = claims.claim(ordinal);
        let Some(old) = then.live_pvc(&name) else {
            unknowns.push(match then.pvcs.get(&name) {
                Some(seen) => format!(
                    "PVC {name} did not exist at seq {before} (uid {} observed deleted at seq {})",
                    seen.state.uid, seen.seq
                ),
                None => format!("PVC {name} was never observed by seq {before}"),
            });
            continue;
        };
        let found = retained(entries, &now, old, before, after);
        if found.evidence.is_empty() {
            kept.push(pvc_ref(old));
        }
        evidence.extend(found.evidence);
        unknowns.extend(found.unknowns);
        if remount == Remount::Required {
            match mounted_by_its_ordinal(&now, claims, ordinal, old, after) {
                Ok(wrong) => evidence.extend(wrong),
                Err(unjudged) => unknowns.push(unjudged),
            }
        }
    }
    Verdict::judge(evidence, unknowns, || {
        let mounted = match remount {
            Remount::Required => ", each mounted by its own ordinal",
            Remount::NotJudged => " with their PVs",
        };
        format!(
            "{} kept from seq {before} to seq {after}{mounted}",
            kept.join(", ")
        )
    })
}

fn deletion(
    entries: &[Entry],
    claims: &ClaimTemplate,
    ordinals: &[u32],
    before: u64,
    after: u64,
    policy: Policy,
) -> Verdict {
    let (then, now) = match worlds(entries, ordinals, before, after) {
        Ok(worlds) => worlds,
        Err(unjudged) => return unjudged,
    };
    let mut evidence = Vec::new();
    let mut unknowns = Vec::new();
    let mut removed = Vec::new();
    for &ordinal in ordinals {
        let name = claims.claim(ordinal);
        let Some(old) = then.live_pvc(&name) else {
            unknowns.push(format!("PVC {name} did not exist at seq {before}"));
            continue;
        };
        match now.pvcs.get(&name) {
            Some(seen) if !seen.gone && seen.state.uid == old.uid => evidence.push(format!(
                "{} still exists at seq {after} although {} is Delete (last observed at seq {}: phase {}, {})",
                pvc_ref(old),
                policy.field(),
                seen.seq,
                seen.state.phase.as_deref().unwrap_or("unknown"),
                if seen.state.terminating { "terminating" } else { "not terminating" }
            )),
            _ => {
                removed.push(format!("{} ({})", name, old.uid));
                evidence.extend(gone_before_its_pod(entries, claims, ordinal, old, before, after));
            }
        }
    }
    Verdict::judge(evidence, unknowns, || {
        format!(
            "PVCs {} removed between seq {before} and seq {after} ({} Delete), each after its pod",
            removed.join(", "),
            policy.field()
        )
    })
}

/// A claim observed gone while the pod of its ordinal still ran: a claim goes only after
/// its pod (upstream makes the pod, or the set, its owner, and the PVC protection finalizer
/// holds it while a pod uses it). The pod's and the claim's events come through different
/// watches, whose relative order is only close to the server's: a pod already terminating
/// (or finished) may be gone on the server before its Deleted event arrives, so only a
/// claim gone while its pod had not even begun its deletion is named.
fn gone_before_its_pod(
    entries: &[Entry],
    claims: &ClaimTemplate,
    ordinal: u32,
    old: &PvcState,
    before: u64,
    after: u64,
) -> Option<String> {
    let gone = deleted_between(entries, old, before, after)?;
    let then = World::at(entries, gone);
    let pod = then.live_pod(&claims.pod(ordinal))?;
    let finished = matches!(pod.phase.as_deref(), Some("Succeeded" | "Failed"));
    if pod.terminating || finished {
        return None;
    }
    let seen = then.pods.get(&pod.name)?;
    Some(format!(
        "{} was observed deleted at seq {gone} while {} still ran, its deletion not begun \
         (last observed at seq {}): a claim goes only after its pod",
        pvc_ref(old),
        pod_ref(pod),
        seen.seq
    ))
}

fn fresh(
    entries: &[Entry],
    claims: &ClaimTemplate,
    ordinals: &[u32],
    before: u64,
    after: u64,
) -> Verdict {
    let (then, now) = match worlds(entries, ordinals, before, after) {
        Ok(worlds) => worlds,
        Err(unjudged) => return unjudged,
    };
    let acknowledged_before = acknowledged_rows(entries, before);
    let mut evidence = Vec::new();
    let mut unknowns = Vec::new();
    let mut fresh = Vec::new();
    for &ordinal in ordinals {
        let name = claims.claim(ordinal);
        let Some(old) = then.live_pvc(&name) else {
            unknowns.push(format!("PVC {name} did not exist at seq {before}"));
            continue;
        };
        let Some(cur) = now.live_pvc(&name) else {
            unknowns.push(format!(
                "PVC {name} did not exist at seq {after}, so its freshness was not judged"
            ));
            continue;
        };
        if cur.uid == old.uid {
            evidence.push(format!(
                "{} at seq {after} is the claim of seq {before}, not a fresh one, although \
                 whenScaled is Delete",
                pvc_ref(cur)
            ));
            continue;
        }
        let reads: Vec<(u64, &ReadResult)> = entries
            .iter()
            .filter(|e| e.seq > before && e.seq <= after)
            .filter_map(|e| match &e.event {
                Event::Read(r) if r.ordinal == ordinal => Some((e.seq, r)),
                _ => None,
            })
            .collect();
        if reads.is_empty() {
            unknowns.push(format!(
                "ordinal {ordinal} was not read between seq {before} and seq {after}, so whether \
                 its fresh {} is empty was not judged",
                pvc_ref(cur)
            ));
            continue;
        }
        let old_rows: Vec<(u64, u64, &str)> = reads
            .iter()
            .flat_map(|(seq, r)| {
                r.rows
                    .iter()
                    .filter(|row| acknowledged_before.contains(&row.id))
                    .map(move |row| (*seq, row.id, r.pod_uid.as_str()))
            })
            .collect();
        match old_rows.first() {
            Some((seq, id, uid)) => evidence.push(format!(
                "the read of ordinal {ordinal} at seq {seq} (pod uid {uid}) holds {} row(s) \
                 acknowledged before seq {before} (first: row {id}): {} is not empty although \
                 whenScaled is Delete",
                old_rows.len(),
                pvc_ref(cur)
            )),
            None => fresh.push(format!("{} (was {})", pvc_ref(cur), old.uid)),
        }
    }
    Verdict::judge(evidence, unknowns, || {
        format!("fresh, empty claims {}", fresh.join(", "))
    })
}

/// Ids of the writes acknowledged at or before `upto`.
fn acknowledged_rows(entries: &[Entry], upto: u64) -> std::collections::BTreeSet<u64> {
    entries
        .iter()
        .take_while(|e| e.seq <= upto)
        .filter_map(|e| match &e.event {
            Event::Write(WriteEvent::Ok { id }) => Some(*id),
            _ => None,
        })
        .collect()
}

/// What was found of one PVC between `before` and `after`.
#[derive(Default)]
struct Findings {
    evidence: Vec<String>,
    unknowns: Vec<String>,
}

/// Why `old` was not kept until `after`, if it was not.
fn retained(entries: &[Entry], now: &World, old: &PvcState, before: u64, after: u64) -> Findings {
    let who = pvc_ref(old);
    let mut found = Findings::default();
    if let Some(seq) = deleted_between(entries, old, before, after) {
        found
            .evidence
            .push(format!("{who} was observed deleted at seq {seq}"));
        return found;
    }
    let Some(cur) = now.live_pvc(&old.name) else {
        found
            .evidence
            .push(format!("{who} no longer exists at seq {after}"));
        return found;
    };
    if cur.uid != old.uid {
        found.evidence.push(format!(
            "{who} was replaced by uid {} by seq {after}",
            cur.uid
        ));
    }
    if cur.volume_name != old.volume_name {
        found.evidence.push(format!(
            "{who} is bound to PV {} at seq {after}, not its old PV",
            cur.volume_name.as_deref().unwrap_or("none")
        ));
    }
    if cur.terminating {
        found
            .evidence
            .push(format!("{who} is terminating at seq {after}"));
    }
    match volume_kept(now, old) {
        Ok(wrong) => found.evidence.extend(wrong),
        Err(unjudged) => found.unknowns.push(unjudged),
    }
    found
}

fn deleted_between(entries: &[Entry], old: &PvcState, before: u64, after: u64) -> Option<u64> {
    entries
        .iter()
        .filter(|e| e.seq > before && e.seq <= after)
        .find_map(|e| match &e.event {
            crate::history::Event::Object {
                change: crate::history::Change::Deleted,
                object: crate::history::Snapshot::PersistentVolumeClaim(p),
            } if p.uid == old.uid => Some(e.seq),
            _ => None,
        })
}

/// The PV behind the claim still exists and still points at it: Ok with the evidence
/// against it (empty when kept), Err with the reason when that cannot be judged (the PVC
/// had no PV, or its PV was never observed: absence proves nothing).
fn volume_kept(now: &World, old: &PvcState) -> Result<Vec<String>, String> {
    let Some(name) = old.volume_name.as_deref() else {
        return Err(format!(
            "{} was bound to no PV, so its volume was not judged",
            pvc_ref(old)
        ));
    };
    let Some(seen) = now.pvs.get(name) else {
        return Err(format!(
            "PV {name} of {} was never observed, so whether it was kept was not judged",
            pvc_ref(old)
        ));
    };
    let pv = &seen.state;
    if seen.gone {
        return Ok(vec![format!(
            "PV {} of {} was observed deleted at seq {}",
            pv.name,
            pvc_ref(old),
            seen.seq
        )]);
    }
    Ok(match pv.claim_uid.as_deref() {
        Some(uid) if uid != old.uid => vec![format!(
            "PV {} now belongs to claim uid {uid}, not {}",
            pv.name,
            pvc_ref(old)
        )],
        _ => Vec::new(),
    })
}

/// The pod of `ordinal` at `after` mounts `old`: Ok with the evidence against it, Err with
/// the reason when there is no such pod to judge.
fn mounted_by_its_ordinal(
    now: &World,
    claims: &ClaimTemplate,
    ordinal: u32,
    old: &PvcState,
    after: u64,
) -> Result<Option<String>, String> {
    let name = claims.pod(ordinal);
    let Some(pod) = now.live_pod(&name) else {
        let last = match now.pods.get(&name) {
            Some(seen) => format!(
                "uid {} observed deleted at seq {}",
                seen.state.uid, seen.seq
            ),
            None => "never observed".into(),
        };
        return Err(format!(
            "pod {name} did not exist at seq {after} ({last}), so whether it mounts {} again \
             was not judged",
            pvc_ref(old)
        ));
    };
    let mounted = pod.claims.get(claims.template);
    Ok((mounted != Some(&old.name)).then(|| {
        format!(
            "{} mounts claim {mounted:?} as volume {}, not its own {}",
            pod_ref(pod),
            claims.template,
            pvc_ref(old)
        )
    }))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::history::{Event, History};
    use crate::testkit::*;

    /// Ordinals 3 and 4 with their PVCs and PVs, then scaled away (seq 6 is the mark).
    fn scaled_down() -> Vec<Event> {
        vec![
            applied(pvc(&claim(3), "c3", "pv-3")),
            applied(pv("pv-3", "c3")),
            applied(pvc(&claim(4), "c4", "pv-4")),
            applied(pv("pv-4", "c4")),
            applied(pod("mysql-3", "u3")),
            applied(pod("mysql-4", "u4")),
            mark("scale 5->3"),
            deleted(pod("mysql-4", "u4")),
            deleted(pod("mysql-3", "u3")),
        ]
    }

    fn kept(tail: Vec<Event>) -> Verdict {
        let mut events = scaled_down();
        events.extend(tail);
        let entries = History::from_events(events);
        let after = entries.len() as u64 - 1;
        {
            let result = pvc_retention(&entries, 6, after, &[3, 4]);
            assert_eq!(result.check, "PVC retention");
            result.verdict
        }
    }

    #[test]
    fn kept_and_remounted_pvcs_pass() {
        let v = kept(vec![
            applied(pod("mysql-3", "u3b")),
            applied(pod("mysql-4", "u4b")),
            mark("scaled back"),
        ]);
        assert!(v.is_pass(), "{v}");
        assert!(
            v.to_string()
                .contains("mysql-persistent-storage-mysql-3 (uid c3, PV pv-3)"),
            "{v}"
        );
    }

    #[rstest]
    #[case::pvc_deleted(
        vec![deleted(pvc(&claim(4), "c4", "pv-4"))],
        "PVC mysql-persistent-storage-mysql-4 (uid c4, PV pv-4) was observed deleted at seq 9"
    )]
    #[case::pvc_recreated_with_new_uid(
        vec![applied(pvc(&claim(3), "c3new", "pv-3"))],
        "(uid c3, PV pv-3) was replaced by uid c3new"
    )]
    #[case::pvc_rebound_to_another_pv(
        vec![applied(pvc(&claim(3), "c3", "pv-9"))],
        "(uid c3, PV pv-3) is bound to PV pv-9"
    )]
    #[case::pv_deleted(vec![deleted(pv("pv-4", "c4"))], "PV pv-4 of PVC mysql-persistent-storage-mysql-4 (uid c4, PV pv-4) was observed deleted")]
    #[case::pod_mounts_another_claim(
        vec![applied(pod("mysql-4", "u4b").with(|p| { p.claims.insert(TEMPLATE.into(), "other".into()); }))],
        "pod mysql-4 (uid u4b) mounts claim Some(\"other\")"
    )]
    fn lost_retention_is_named(#[case] tail: Vec<Event>, #[case] expected: &str) {
        let v = kept(tail);
        assert!(v.is_fail(), "{v}");
        assert!(
            v.evidence().iter().any(|e| e.contains(expected)),
            "wanted {expected:?} in {v}"
        );
    }

    #[test]
    fn pvc_missing_before_is_unknown() {
        let entries = History::from_events(scaled_down());
        let v = retention(&entries, &DOCUMENTED, &[2], 6, 8, Remount::Required);
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string()
                .contains("PVC mysql-persistent-storage-mysql-2 was never observed by seq 6"),
            "{v}"
        );
    }

    #[test]
    fn an_ordinal_whose_pod_never_came_back_is_unknown() {
        let v = kept(vec![applied(pod("mysql-3", "u3b")), mark("scaled back")]);
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string().contains(
                "pod mysql-4 did not exist at seq 10 (uid u4 observed deleted at seq 7), so whether \
                 it mounts PVC mysql-persistent-storage-mysql-4 (uid c4, PV pv-4) again was not judged"
            ),
            "{v}"
        );
        assert!(!v.to_string().contains("mysql-3 did not exist"), "{v}");
    }

    #[test]
    fn a_pv_never_observed_is_unknown() {
        let events = vec![
            applied(pvc(&claim(3), "c3", "pv-3")),
            applied(pod("mysql-3", "u3")),
            mark("scale 4->3"),
            deleted(pod("mysql-3", "u3")),
            applied(pod("mysql-3", "u3b")),
        ];
        let entries = History::from_events(events);
        let v = pvc_retention(&entries, 2, 4, &[3]).verdict;
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string().contains(
                "PV pv-3 of PVC mysql-persistent-storage-mysql-3 (uid c3, PV pv-3) was never \
                 observed, so whether it was kept was not judged"
            ),
            "{v}"
        );
        let kept = pvc_kept(&entries, 2, 4, &[3]).verdict;
        assert!(kept.is_unknown(), "{kept}");
    }

    #[test]
    fn an_unbound_pvc_leaves_its_volume_unjudged() {
        let mut unbound = pvc(&claim(3), "c3", "pv-3");
        unbound.volume_name = None;
        unbound.phase = Some("Pending".into());
        let entries = History::from_events(vec![applied(unbound), mark("scaled down")]);
        let v = pvc_kept(&entries, 0, 1, &[3]).verdict;
        assert!(v.is_unknown(), "{v}");
        assert!(v.to_string().contains("was bound to no PV"), "{v}");
    }

    #[test]
    fn pvcs_kept_on_scale_down_pass_without_their_pods() {
        let entries = History::from_events(scaled_down());
        let result = pvc_kept(&entries, 6, 8, &[3, 4]);
        assert_eq!(result.check, "PVC retention on scale-down");
        let v = result.verdict;
        assert!(v.is_pass(), "{v}");
        assert!(
            v.to_string()
                .ends_with("kept from seq 6 to seq 8 with their PVs"),
            "{v}"
        );
        assert!(pvc_kept(&entries, 6, 8, &[]).verdict.is_unknown());
        assert!(pvc_retention(&entries, 6, 8, &[]).verdict.is_unknown());
        assert!(pvc_deleted(&entries, 6, 8, &[]).verdict.is_unknown());
    }

    #[test]
    fn pvc_kept_still_names_a_lost_pvc() {
        let mut events = scaled_down();
        events.push(deleted(pv("pv-4", "c4")));
        let v = pvc_kept(&History::from_events(events), 6, 9, &[3, 4]).verdict;
        assert!(v.is_fail(), "{v}");
        assert!(
            v.evidence()[0].contains("PV pv-4 of PVC mysql-persistent-storage-mysql-4"),
            "{v}"
        );
    }

    #[test]
    fn when_scaled_delete_passes_once_pvcs_are_gone() {
        let mut events = scaled_down();
        events.push(deleted(pvc(&claim(4), "c4", "pv-4")));
        events.push(deleted(pvc(&claim(3), "c3", "pv-3")));
        let entries = History::from_events(events);
        let v = deletion(&entries, &DOCUMENTED, &[3, 4], 6, 10, Policy::WhenScaled);
        assert!(v.is_pass(), "{v}");
    }

    #[test]
    fn a_claim_gone_before_its_pod_is_named() {
        let mut events = scaled_down();
        events.insert(7, deleted(pvc(&claim(4), "c4", "pv-4")));
        events.push(deleted(pvc(&claim(3), "c3", "pv-3")));
        let entries = History::from_events(events);
        let v = pvc_deleted(&entries, 6, 10, &[3, 4]).verdict;
        assert_eq!(
            v.evidence(),
            [
                "PVC mysql-persistent-storage-mysql-4 (uid c4, PV pv-4) was observed deleted at seq \
              7 while pod mysql-4 (uid u4) still ran, its deletion not begun (last observed at \
              seq 5): a claim goes only after its pod"
            ],
            "{v}"
        );
    }

    #[test]
    fn a_claim_gone_while_its_pod_terminates_is_not_named() {
        let mut events = scaled_down();
        events.insert(7, applied(pod("mysql-4", "u4").terminating()));
        events.insert(8, deleted(pvc(&claim(4), "c4", "pv-4")));
        events.push(deleted(pvc(&claim(3), "c3", "pv-3")));
        let entries = History::from_events(events);
        let v = pvc_deleted(&entries, 6, 11, &[3, 4]).verdict;
        assert!(v.is_pass(), "{v}");
    }

    #[test]
    fn when_deleted_delete_is_judged_and_named() {
        let mut events = scaled_down();
        events.push(deleted(pvc(&claim(4), "c4", "pv-4")));
        let entries = History::from_events(events);
        let result = pvc_deleted_with_set(&entries, 6, 9, &[3, 4]);
        assert_eq!(result.check, "PVC deletion (whenDeleted: Delete)");
        assert!(
            result.verdict.evidence()[0].contains(
                "PVC mysql-persistent-storage-mysql-3 (uid c3, PV pv-3) still exists at seq 9 \
                 although whenDeleted is Delete"
            ),
            "{}",
            result.verdict
        );
    }

    /// Rows 1 (ordinal 3) acknowledged, ordinal 3 scaled away with its claim deleted, then
    /// back with claim `new_uid`, read with `rows` (the mark before the scale-down is seq 3).
    fn scaled_back(new_uid: &str, rows: &[crate::history::Row]) -> Vec<Entry> {
        let r = row(1, 3);
        History::from_events(vec![
            applied(pvc(&claim(3), "c3", "pv-3")),
            invoked(&r),
            ok(1),
            mark("scale 4 -> 3"),
            deleted(pvc(&claim(3), "c3", "pv-3")),
            applied(pvc(&claim(3), new_uid, "pv-9")),
            read(3, rows),
            mark("scaled back"),
        ])
    }

    #[test]
    fn fresh_empty_claims_pass() {
        let v = pvc_fresh(&scaled_back("c3b", &[]), 3, 7, &[3]).verdict;
        assert!(v.is_pass(), "{v}");
    }

    #[rstest]
    #[case::the_old_claim_kept("c3", vec![], "is the claim of seq 3, not a fresh one")]
    #[case::old_rows_on_the_new_claim(
        "c3b",
        vec![row(1, 3)],
        "holds 1 row(s) acknowledged before seq 3 (first: row 1)"
    )]
    fn a_claim_that_is_not_fresh_is_named(
        #[case] uid: &str,
        #[case] rows: Vec<crate::history::Row>,
        #[case] expected: &str,
    ) {
        let v = pvc_fresh(&scaled_back(uid, &rows), 3, 7, &[3]).verdict;
        assert!(v.is_fail(), "{v}");
        assert!(
            v.evidence()[0].contains(expected),
            "wanted {expected:?} in {v}"
        );
    }

    #[test]
    fn when_scaled_delete_names_the_kept_pvc() {
        let mut events = scaled_down();
        events.push(deleted(pvc(&claim(4), "c4", "pv-4")));
        let entries = History::from_events(events);
        let v = pvc_deleted(&entries, 6, 9, &[3, 4]).verdict;
        assert!(v.is_fail(), "{v}");
        assert_eq!(v.evidence().len(), 1, "{v}");
        assert!(
            v.evidence()[0]
                .contains("PVC mysql-persistent-storage-mysql-3 (uid c3, PV pv-3) still exists"),
            "{v}"
        );
    }
}
