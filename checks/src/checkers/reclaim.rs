//! PV reclaim policy and restore from retained volumes: under `Retain` a PV outlives its
//! claim (phase Released, kept with its data) and, once its claimRef is cleared, binds to a
//! new claim that names it; under `Delete` the PV goes with its claim, which the source
//! document's advice ("typically Retain, which ensures that data is not deleted") would have
//! prevented: a finding about the cluster's configuration ([`reclaim_finding`]), not a
//! failure.
//!
//! The claims are the documented StatefulSet's (`mysql-persistent-storage-mysql-<i>`).
//! Absence never passes: a claim or PV not observed at `before` leaves its ordinal
//! unjudged (Unknown, naming it).

use std::time::Duration;

use crate::history::{Change, Entry, Event, PvState, PvcState, Snapshot};
use crate::verdict::{CheckResult, Verdict};
use crate::world::{World, pvc_ref};

use super::retention::DOCUMENTED;

/// "PV pvc-1 (uid u, reclaimPolicy Retain)".
fn pv_ref(pv: &PvState) -> String {
    format!(
        "PV {} (uid {}, reclaimPolicy {})",
        pv.name,
        pv.uid,
        pv.reclaim_policy.as_deref().unwrap_or("unknown")
    )
}

/// The claim of `ordinal` at `before` and the PV it was bound to then.
fn claim_and_volume(
    then: &World,
    ordinal: u32,
    before: u64,
) -> Result<(&PvcState, &PvState), String> {
    let name = DOCUMENTED.claim(ordinal);
    let Some(claim) = then.live_pvc(&name) else {
        return Err(format!(
            "PVC {name} did not exist at seq {before}, so its volume was not judged"
        ));
    };
    let Some(pv_name) = claim.volume_name.as_deref() else {
        return Err(format!(
            "{} was bound to no PV at seq {before}, so its volume was not judged",
            pvc_ref(claim)
        ));
    };
    match then.pvs.get(pv_name).and_then(|s| s.live()) {
        Some(pv) => Ok((claim, pv)),
        None => Err(format!(
            "PV {pv_name} of {} was not observed live by seq {before}, so it was not judged",
            pvc_ref(claim)
        )),
    }
}

/// The seq at which the PV of uid `uid` was observed deleted in `(before, after]`.
fn pv_deleted_between(entries: &[Entry], uid: &str, before: u64, after: u64) -> Option<u64> {
    entries
        .iter()
        .filter(|e| e.seq > before && e.seq <= after)
        .find_map(|e| match &e.event {
            Event::Object {
                change: Change::Deleted,
                object: Snapshot::PersistentVolume(p),
            } if p.uid == uid => Some(e.seq),
            _ => None,
        })
}

/// What became of one PV after its claim was deleted.
enum Fate {
    /// Observed deleted at this seq.
    Deleted(u64),
    /// Still there: its state at `after`.
    Kept(PvState),
    /// Replaced by another PV of the same name.
    Replaced(PvState),
}

fn fate(entries: &[Entry], now: &World, pv: &PvState, before: u64, after: u64) -> Fate {
    if let Some(seq) = pv_deleted_between(entries, &pv.uid, before, after) {
        return Fate::Deleted(seq);
    }
    match now.pvs.get(&pv.name) {
        Some(seen) if seen.gone => Fate::Deleted(seen.seq),
        Some(seen) if seen.state.uid != pv.uid => Fate::Replaced(seen.state.clone()),
        Some(seen) => Fate::Kept(seen.state.clone()),
        // Observed at `before`, so it is in `now` too; kept for completeness.
        None => Fate::Kept(pv.clone()),
    }
}

/// How long a Retain PV must have been observed Released (kept) before the end of the
/// window for its retention to count: a reclaimer that deletes it a moment later must have
/// had the time to do it.
pub const RECLAIM_DWELL: Duration = Duration::from_secs(5);

/// When the PV `uid` was first observed Released after `before`: (seq, time).
fn released_at(entries: &[Entry], uid: &str, before: u64, after: u64) -> Option<(u64, Duration)> {
    entries
        .iter()
        .filter(|e| e.seq > before && e.seq <= after)
        .find_map(|e| match &e.event {
            Event::Object {
                change: Change::Applied,
                object: Snapshot::PersistentVolume(pv),
            } if pv.uid == uid && pv.phase.as_deref() == Some("Released") => Some((e.seq, e.at)),
            _ => None,
        })
}

/// The time of the last entry at or before `after`.
fn time_at(entries: &[Entry], after: u64) -> Option<Duration> {
    entries
        .iter()
        .take_while(|e| e.seq <= after)
        .last()
        .map(|e| e.at)
}

/// Under reclaimPolicy Retain, the PV of each ordinal's claim (as observed at `before`)
/// outlives the claim's deletion: at `after` the claim is gone and the PV still exists, the
/// same object (uid), phase Released, and has been Released for at least
/// [`RECLAIM_DWELL`] (judged after a dwell, not the moment it turns Released: less is
/// Unknown). Fails naming a PV whose policy is not Retain, a PV deleted or replaced, or a
/// PV not Released.
pub fn volumes_retained(
    entries: &[Entry],
    before: u64,
    after: u64,
    ordinals: &[u32],
) -> CheckResult {
    CheckResult::new(
        "PVs retained (reclaimPolicy Retain)",
        retained(entries, before, after, ordinals),
    )
}

fn retained(entries: &[Entry], before: u64, after: u64, ordinals: &[u32]) -> Verdict {
    judge_volumes(
        entries,
        before,
        after,
        ordinals,
        |now, _, claim, pv| {
            if pv.reclaim_policy.as_deref() != Some("Retain") {
                return Judged::Wrong(format!(
                    "{} of {} does not have reclaimPolicy Retain at seq {before}",
                    pv_ref(pv),
                    pvc_ref(claim)
                ));
            }
            if let Some(unjudged) = claim_still_there(now, claim, after) {
                return unjudged;
            }
            match fate(entries, now, pv, before, after) {
                Fate::Deleted(seq) => Judged::Wrong(format!(
                    "{} of claim {} was deleted at seq {seq} although its reclaimPolicy is Retain",
                    pv_ref(pv),
                    claim.name
                )),
                Fate::Replaced(other) => Judged::Wrong(format!(
                    "{} of claim {} was replaced by uid {} by seq {after}: the retained volume is gone",
                    pv_ref(pv),
                    claim.name,
                    other.uid
                )),
                Fate::Kept(state) if state.phase.as_deref() != Some("Released") => {
                    Judged::Wrong(format!(
                        "{} of claim {} is {} at seq {after}, not Released, after its claim was deleted",
                        pv_ref(pv),
                        claim.name,
                        state.phase.as_deref().unwrap_or("in no phase")
                    ))
                }
                Fate::Kept(_) => kept_long_enough(entries, pv, before, after),
            }
        },
        |kept| {
            format!(
                "PVs {kept} outlived their claims: Released and kept at seq {after}, at least \
                 {} s after they turned Released",
                RECLAIM_DWELL.as_secs()
            )
        },
    )
}

/// A Released Retain PV counts as retained once it stayed so for [`RECLAIM_DWELL`].
fn kept_long_enough(entries: &[Entry], pv: &PvState, before: u64, after: u64) -> Judged {
    let Some((seq, at)) = released_at(entries, &pv.uid, before, after) else {
        return Judged::Unjudged(format!(
            "{} was never observed turning Released between seq {before} and seq {after}",
            pv_ref(pv)
        ));
    };
    let kept_for = time_at(entries, after).unwrap_or(at).saturating_sub(at);
    if kept_for < RECLAIM_DWELL {
        return Judged::Unjudged(format!(
            "{} turned Released at seq {seq}, only {:.1} s before seq {after}: retention is \
             judged after {} s",
            pv_ref(pv),
            kept_for.as_secs_f64(),
            RECLAIM_DWELL.as_secs()
        ));
    }
    Judged::Done(pv.name.clone())
}

/// What one ordinal's volume came to.
enum Judged {
    Done(String),
    Wrong(String),
    Unjudged(String),
}

/// Judges the volume of each ordinal's claim as observed at `before`, with `judge` given
/// the world at `after`, the ordinal, that claim and its PV; `summary` gets the joined
/// descriptions of the volumes judged fine.
fn judge_volumes(
    entries: &[Entry],
    before: u64,
    after: u64,
    ordinals: &[u32],
    mut judge: impl FnMut(&World, u32, &PvcState, &PvState) -> Judged,
    summary: impl FnOnce(String) -> String,
) -> Verdict {
    if ordinals.is_empty() {
        return Verdict::Unknown {
            reason: "no ordinal was given, so no PV was judged".into(),
        };
    }
    let then = World::at(entries, before);
    let now = World::at(entries, after);
    let mut evidence = Vec::new();
    let mut unknowns = Vec::new();
    let mut done = Vec::new();
    for &ordinal in ordinals {
        match claim_and_volume(&then, ordinal, before) {
            Err(unjudged) => unknowns.push(unjudged),
            Ok((claim, pv)) => match judge(&now, ordinal, claim, pv) {
                Judged::Done(what) => done.push(what),
                Judged::Wrong(why) => evidence.push(why),
                Judged::Unjudged(why) => unknowns.push(why),
            },
        }
    }
    Verdict::judge(evidence, unknowns, || summary(done.join(", ")))
}

/// Unjudged when the first claim still exists at `after`.
fn claim_still_there(now: &World, claim: &PvcState, after: u64) -> Option<Judged> {
    now.live_pvc(&claim.name)
        .is_some_and(|c| c.uid == claim.uid)
        .then(|| {
            Judged::Unjudged(format!(
                "{} still exists at seq {after}, so what its PV does without it was not judged",
                pvc_ref(claim)
            ))
        })
}

/// Each ordinal's PV (as observed at `before`, in its first life) followed its own
/// reclaimPolicy once its claim was deleted: Delete → the PV is deleted by `after`;
/// Retain → it is still there, Released. A PV with reclaimPolicy Delete still there at
/// `after` fails (the provisioner ignored its class).
pub fn reclaim_policy_followed(
    entries: &[Entry],
    before: u64,
    after: u64,
    ordinals: &[u32],
) -> CheckResult {
    let verdict = judge_volumes(
        entries,
        before,
        after,
        ordinals,
        |now, ordinal, claim, pv| match pv.reclaim_policy.as_deref() {
            Some("Retain") => match retained(entries, before, after, &[ordinal]) {
                Verdict::Fail { evidence } => Judged::Wrong(evidence.join("; ")),
                Verdict::Unknown { reason } | Verdict::Skipped { reason } => {
                    Judged::Unjudged(reason)
                }
                Verdict::Pass { .. } => Judged::Done(format!("{} Released", pv.name)),
            },
            Some("Delete") => {
                if let Some(unjudged) = claim_still_there(now, claim, after) {
                    return unjudged;
                }
                match fate(entries, now, pv, before, after) {
                    Fate::Deleted(_) | Fate::Replaced(_) => {
                        Judged::Done(format!("{} deleted", pv.name))
                    }
                    Fate::Kept(state) => Judged::Wrong(format!(
                        "{} of claim {} still exists at seq {after} ({}) although its claim was deleted",
                        pv_ref(pv),
                        claim.name,
                        state.phase.as_deref().unwrap_or("in no phase")
                    )),
                }
            }
            _ => Judged::Unjudged(format!(
                "{} of claim {}: a reclaimPolicy other than Delete or Retain is not judged",
                pv_ref(pv),
                claim.name
            )),
        },
        |done| format!("after their claims were deleted by seq {after}: {done}"),
    );
    CheckResult::new("PVs follow their reclaimPolicy", verdict)
}

/// After a restore, each ordinal's claim is a new claim (not the one observed at `before`)
/// bound to the same PV object (name and uid) its first claim had, and that PV is Bound to
/// the new claim. Fails naming an ordinal bound to another PV, a claim not Bound, or a PV
/// that points elsewhere.
pub fn volumes_restored(
    entries: &[Entry],
    before: u64,
    after: u64,
    ordinals: &[u32],
) -> CheckResult {
    let verdict = judge_volumes(
        entries,
        before,
        after,
        ordinals,
        |now, ordinal, old, pv| {
            let Some(new) = now.live_pvc(&old.name) else {
                return Judged::Unjudged(format!(
                    "PVC {} did not exist at seq {after}, so the restore of ordinal {ordinal} was not judged",
                    old.name
                ));
            };
            if new.uid == old.uid {
                return Judged::Unjudged(format!(
                    "{} is still the first claim at seq {after}: ordinal {ordinal} was not restored",
                    pvc_ref(new)
                ));
            }
            let mut wrong = Vec::new();
            if new.volume_name.as_deref() != Some(pv.name.as_str()) {
                wrong.push(format!(
                    "restored ordinal {ordinal}: {} is bound to PV {}, not to its retained {}",
                    pvc_ref(new),
                    new.volume_name.as_deref().unwrap_or("none"),
                    pv_ref(pv)
                ));
            } else if new.phase.as_deref() != Some("Bound") {
                wrong.push(format!(
                    "restored ordinal {ordinal}: {} is {} at seq {after}, not Bound",
                    pvc_ref(new),
                    new.phase.as_deref().unwrap_or("in no phase")
                ));
            }
            match now.pvs.get(&pv.name) {
                Some(seen) if seen.gone || seen.state.uid != pv.uid => wrong.push(format!(
                    "restored ordinal {ordinal}: the retained {} is gone by seq {after} (last observed at seq {}, uid {})",
                    pv_ref(pv),
                    seen.seq,
                    seen.state.uid
                )),
                Some(seen) if seen.state.claim_uid.as_deref() != Some(new.uid.as_str()) => {
                    wrong.push(format!(
                        "restored ordinal {ordinal}: {} is claimed by uid {} at seq {after}, not by {}",
                        pv_ref(&seen.state),
                        seen.state.claim_uid.as_deref().unwrap_or("none"),
                        pvc_ref(new)
                    ))
                }
                Some(seen) if seen.state.phase.as_deref() != Some("Bound") => wrong.push(format!(
                    "restored ordinal {ordinal}: {} is {} at seq {after}, not Bound",
                    pv_ref(&seen.state),
                    seen.state.phase.as_deref().unwrap_or("in no phase")
                )),
                _ => {}
            }
            if wrong.is_empty() {
                Judged::Done(format!("{} -> {}", new.name, pv.name))
            } else {
                Judged::Wrong(wrong.join("; "))
            }
        },
        |restored| format!("new claims bound to the retained PVs at seq {after}: {restored}"),
    );
    CheckResult::new("restore from retained PVs", verdict)
}

/// The finding of a run whose PVs have reclaimPolicy Delete (or anything but Retain): which
/// PVs of the deleted claims were deleted with them, and that the document's advice would
/// have kept them. Not a verdict: the policy is the cluster's configuration.
pub fn reclaim_finding(entries: &[Entry], before: u64, after: u64, ordinals: &[u32]) -> String {
    let then = World::at(entries, before);
    let now = World::at(entries, after);
    let mut deleted = Vec::new();
    let mut kept = Vec::new();
    let mut policies = std::collections::BTreeSet::new();
    for &ordinal in ordinals {
        let Ok((_, pv)) = claim_and_volume(&then, ordinal, before) else {
            continue;
        };
        policies.insert(pv.reclaim_policy.as_deref().unwrap_or("unknown"));
        match fate(entries, &now, pv, before, after) {
            Fate::Deleted(seq) => deleted.push(format!("{} (seq {seq})", pv.name)),
            Fate::Replaced(_) => deleted.push(pv.name.clone()),
            Fate::Kept(state) => kept.push(format!(
                "{} ({})",
                pv.name,
                state.phase.as_deref().unwrap_or("in no phase")
            )),
        }
    }
    let policies = policies.into_iter().collect::<Vec<_>>().join(", ");
    let mut text = format!("finding: the PVs' reclaimPolicy is {policies}; ");
    if deleted.is_empty() {
        text.push_str("no PV was deleted with its claim");
    } else {
        text.push_str(&format!(
            "deleting the claims deleted PVs {} and the data on them. The source document's \
             advice, a reclaim policy \"typically Retain, which ensures that data is not \
             deleted\", would have kept them",
            deleted.join(", ")
        ));
    }
    if !kept.is_empty() {
        text.push_str(&format!("; still there: {}", kept.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use crate::testkit::*;

    fn retain(mut pv: PvState) -> PvState {
        pv.reclaim_policy = Some("Retain".into());
        pv
    }

    fn released(mut pv: PvState) -> PvState {
        pv.phase = Some("Released".into());
        pv
    }

    /// Ordinals 0 and 1 bound to Retain PVs (seq 4 is `before`), their claims deleted.
    fn claims_deleted() -> Vec<Event> {
        vec![
            applied(pvc(&claim(0), "c0", "pv-0")),
            applied(retain(pv("pv-0", "c0"))),
            applied(pvc(&claim(1), "c1", "pv-1")),
            applied(retain(pv("pv-1", "c1"))),
            mark("claims deleted"),
            deleted(pvc(&claim(0), "c0", "pv-0")),
            deleted(pvc(&claim(1), "c1", "pv-1")),
        ]
    }

    /// `events` and then a mark `after` later than the last of them.
    fn then_after(events: Vec<Event>, after: std::time::Duration) -> Vec<Entry> {
        let mut entries = History::from_events(events.into_iter().chain([mark("watched")]));
        let last = entries.len() - 1;
        entries[last].at = entries[last - 1].at + after;
        entries
    }

    #[test]
    fn released_retain_volumes_pass_once_kept_for_the_dwell() {
        let mut events = claims_deleted();
        events.push(applied(released(retain(pv("pv-0", "c0")))));
        events.push(applied(released(retain(pv("pv-1", "c1")))));
        let entries = then_after(events, RECLAIM_DWELL);
        let result = volumes_retained(&entries, 4, 100, &[0, 1]);
        assert!(result.is_pass(), "{result}");
        assert!(reclaim_policy_followed(&entries, 4, 100, &[0, 1]).is_pass());
    }

    #[test]
    fn a_retain_volume_judged_the_moment_it_turned_released_is_unknown() {
        let mut events = claims_deleted();
        events.push(applied(released(retain(pv("pv-0", "c0")))));
        events.push(applied(released(retain(pv("pv-1", "c1")))));
        let entries = then_after(events, RECLAIM_DWELL / 2);
        let result = volumes_retained(&entries, 4, 100, &[0, 1]);
        assert!(result.verdict.is_unknown(), "{result}");
        assert!(
            result.to_string().contains(
                "PV pv-0 (uid pv-0-uid, reclaimPolicy Retain) turned Released at seq 7, only 2.5 s \
                 before seq 100: retention is judged after 5 s"
            ),
            "{result}"
        );
    }

    #[test]
    fn a_retain_volume_deleted_after_a_delay_fails_once_judged_after_the_dwell() {
        let mut events = claims_deleted();
        events.push(applied(released(retain(pv("pv-0", "c0")))));
        events.push(applied(released(retain(pv("pv-1", "c1")))));
        let mut entries = then_after(events, RECLAIM_DWELL);
        entries.insert(
            9,
            Entry {
                seq: 9,
                at: entries[8].at + RECLAIM_DWELL / 2,
                event: deleted(released(retain(pv("pv-0", "c0")))),
            },
        );
        entries[10].seq = 10;
        let result = volumes_retained(&entries, 4, 100, &[0, 1]);
        assert_eq!(
            result.verdict.evidence(),
            [format!(
                "PV pv-0 (uid pv-0-uid, reclaimPolicy Retain) of claim {} was deleted at seq 9 although its reclaimPolicy is Retain",
                claim(0)
            )],
            "{result}"
        );
    }

    #[test]
    fn a_retain_volume_deleted_with_its_claim_fails_naming_it() {
        let mut events = claims_deleted();
        events.push(applied(released(retain(pv("pv-0", "c0")))));
        events.push(deleted(released(retain(pv("pv-0", "c0")))));
        events.push(applied(released(retain(pv("pv-1", "c1")))));
        let entries = History::from_events(events);
        let result = volumes_retained(&entries, 4, 100, &[0, 1]);
        assert_eq!(
            result.verdict.evidence(),
            [format!(
                "PV pv-0 (uid pv-0-uid, reclaimPolicy Retain) of claim {} was deleted at seq 8 although its reclaimPolicy is Retain",
                claim(0)
            )]
        );
        assert!(
            reclaim_policy_followed(&entries, 4, 100, &[0, 1])
                .verdict
                .is_fail()
        );
    }

    #[test]
    fn a_retain_volume_not_released_fails() {
        let mut events = claims_deleted();
        events.push(applied(released(retain(pv("pv-0", "c0")))));
        let entries = History::from_events(events);
        let result = volumes_retained(&entries, 4, 100, &[0, 1]);
        assert_eq!(
            result.verdict.evidence(),
            [format!(
                "PV pv-1 (uid pv-1-uid, reclaimPolicy Retain) of claim {} is Bound at seq 100, not Released, after its claim was deleted",
                claim(1)
            )]
        );
    }

    #[test]
    fn a_volume_without_retain_fails_and_a_live_claim_is_not_judged() {
        let entries = History::from_events([
            applied(pvc(&claim(0), "c0", "pv-0")),
            applied(pv("pv-0", "c0")),
            applied(pvc(&claim(1), "c1", "pv-1")),
            applied(retain(pv("pv-1", "c1"))),
            mark("before"),
        ]);
        let result = volumes_retained(&entries, 4, 100, &[0, 1]);
        assert_eq!(result.verdict.evidence().len(), 1, "{result}");
        assert!(result.verdict.evidence()[0].contains("does not have reclaimPolicy Retain"));
        let unjudged = volumes_retained(&entries, 4, 100, &[1]);
        assert!(unjudged.verdict.is_unknown(), "{unjudged}");
        assert!(volumes_retained(&entries, 4, 100, &[]).verdict.is_unknown());
        assert!(
            volumes_retained(&entries, 4, 100, &[7])
                .verdict
                .is_unknown()
        );
    }

    #[test]
    fn delete_volumes_must_go_and_the_finding_says_retain_would_have_kept_them() {
        let mut events = vec![
            applied(pvc(&claim(0), "c0", "pv-0")),
            applied(pv("pv-0", "c0")),
            mark("before"),
            deleted(pvc(&claim(0), "c0", "pv-0")),
            deleted(released(pv("pv-0", "c0"))),
        ];
        let entries = History::from_events(events.clone());
        assert!(reclaim_policy_followed(&entries, 2, 100, &[0]).is_pass());
        let finding = reclaim_finding(&entries, 2, 100, &[0]);
        assert!(
            finding.starts_with("finding: the PVs' reclaimPolicy is Delete; deleting the claims deleted PVs pv-0 (seq 4)"),
            "{finding}"
        );
        assert!(finding.contains("typically Retain"), "{finding}");
        events.pop();
        events.push(applied(released(pv("pv-0", "c0"))));
        let entries = History::from_events(events);
        let kept = reclaim_policy_followed(&entries, 2, 100, &[0]);
        assert!(kept.verdict.evidence()[0].contains("still exists at seq 100 (Released)"));
    }

    fn restored(pv_of_0: &str) -> Vec<Entry> {
        let mut events = claims_deleted();
        events.push(applied(released(retain(pv("pv-0", "c0")))));
        events.push(applied(released(retain(pv("pv-1", "c1")))));
        events.push(applied(pvc(&claim(0), "n0", pv_of_0)));
        events.push(applied(retain(pv("pv-0", "n0"))));
        events.push(applied(pvc(&claim(1), "n1", "pv-1")));
        events.push(applied(retain(pv("pv-1", "n1"))));
        History::from_events(events)
    }

    #[test]
    fn new_claims_bound_to_the_retained_volumes_pass() {
        let result = volumes_restored(&restored("pv-0"), 4, 100, &[0, 1]);
        assert!(result.is_pass(), "{result}");
    }

    #[test]
    fn a_restored_ordinal_bound_to_another_volume_fails() {
        let result = volumes_restored(&restored("pv-fresh"), 4, 100, &[0, 1]);
        let evidence = result.verdict.evidence();
        assert_eq!(
            evidence[0],
            format!(
                "restored ordinal 0: PVC {} (uid n0, PV pv-fresh) is bound to PV pv-fresh, not to its retained PV pv-0 (uid pv-0-uid, reclaimPolicy Retain)",
                claim(0)
            )
        );
    }

    #[test]
    fn a_retained_volume_that_points_elsewhere_or_was_never_restored_is_named() {
        let mut entries = restored("pv-0");
        let last = entries.len() as u64;
        entries.push(Entry {
            seq: last,
            at: std::time::Duration::ZERO,
            event: applied(retain(pv("pv-1", "someone-else"))),
        });
        let result = volumes_restored(&entries, 4, u64::MAX, &[0, 1]);
        assert!(
            result.verdict.evidence()[0].contains("is claimed by uid someone-else"),
            "{result}"
        );
        let not_restored = volumes_restored(&History::from_events(claims_deleted()), 4, 4, &[0]);
        assert!(not_restored.verdict.is_unknown(), "{not_restored}");
    }
}
