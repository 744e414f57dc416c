//! ControllerRevisions at the end of a rollout: `status.currentRevision` and
//! `status.updateRevision` each name a live ControllerRevision owned by the set, the update
//! revision's number is the highest of the set's, and every live pod's
//! `controller-revision-hash` label names one of the set's ControllerRevisions (the update
//! revision once a RollingUpdate with partition 0 completed).
//!
//! Judged on the world as observed at the `end` seq (the test settles its observer first).
//! A history with no ControllerRevision observed is Unknown, never Pass: a cluster (or an
//! observer) that shows none proves nothing.

use std::collections::BTreeMap;

use crate::history::{ControllerRevisionState, Entry};
use crate::verdict::{CheckResult, Verdict};
use crate::world::{Seen, World, ordinal_of, pod_ref};

use super::rollout::{RolloutExpect, Strategy};

/// Checks the StatefulSet's revisions against its ControllerRevisions at `end`:
/// "ControllerRevisions consistent".
pub fn revisions_consistent(entries: &[Entry], end: u64, expect: &RolloutExpect) -> CheckResult {
    CheckResult::new(
        "ControllerRevisions consistent",
        judge(&World::at(entries, end), end, expect),
    )
}

fn judge(world: &World, end: u64, expect: &RolloutExpect) -> Verdict {
    let name = expect.statefulset.as_str();
    let Some(sts) = world.statefulsets.get(name).and_then(Seen::live) else {
        return Verdict::Unknown {
            reason: format!("StatefulSet {name} was not live at seq {end}"),
        };
    };
    if world.revisions.is_empty() {
        return Verdict::Unknown {
            reason: format!(
                "no ControllerRevision was observed by seq {end}: the revisions of StatefulSet \
                 {name} cannot be judged"
            ),
        };
    }
    // The set's live ControllerRevisions, by name: owned by this very set (its uid).
    let owned: BTreeMap<&str, &Seen<ControllerRevisionState>> = world
        .revisions
        .iter()
        .filter(|(_, s)| !s.gone && owned_by(&s.state, name, &sts.uid))
        .map(|(n, s)| (n.as_str(), s))
        .collect();
    let mut evidence = Vec::new();
    let at = format!("StatefulSet {name} at seq {}", world.statefulsets[name].seq);
    let mut named = |field: &str, revision: Option<&str>| -> Option<String> {
        let Some(revision) = revision.filter(|r| !r.is_empty()) else {
            evidence.push(format!("{at}: status.{field} is not set"));
            return None;
        };
        if let Some(why) = not_the_sets(world, revision, name, &sts.uid) {
            evidence.push(format!("{at}: status.{field} {revision} names {why}"));
            return None;
        }
        Some(revision.to_string())
    };
    let current = named("currentRevision", sts.current_revision.as_deref());
    let update = named("updateRevision", sts.update_revision.as_deref());
    if let Some(update) = &update {
        let number = owned[update.as_str()].state.revision;
        evidence.extend(
            owned
                .iter()
                .filter(|(n, s)| *n != update && s.state.revision >= number)
                .map(|(_, s)| {
                    format!(
                        "the update revision {update} (ControllerRevision revision {number}) is \
                         not the highest of StatefulSet {name}: {} has revision {} (observed at \
                         seq {})",
                        revision_ref(&s.state),
                        s.state.revision,
                        s.seq
                    )
                }),
        );
    }
    let full = expect.strategy == Strategy::RollingUpdate && sts.partition.unwrap_or(0) == 0;
    let mut pods = 0;
    for seen in world.pods.values().filter(|p| !p.gone) {
        let pod = &seen.state;
        if ordinal_of(&pod.name, name).is_none() {
            continue;
        }
        pods += 1;
        let Some(label) = pod.revision() else {
            evidence.push(format!(
                "{} has no controller-revision-hash label (last observed at seq {})",
                pod_ref(pod),
                seen.seq
            ));
            continue;
        };
        if let Some(why) = not_the_sets(world, label, name, &sts.uid) {
            evidence.push(format!(
                "{} has controller-revision-hash {label}, which names {why} (last observed at \
                 seq {})",
                pod_ref(pod),
                seen.seq
            ));
        } else if full && update.as_deref().is_some_and(|u| u != label) {
            evidence.push(format!(
                "{} is on ControllerRevision {label}, not the update revision {} after the \
                 rollout completed (last observed at seq {})",
                pod_ref(pod),
                update.as_deref().unwrap_or_default(),
                seen.seq
            ));
        }
    }
    Verdict::judge(evidence, Vec::new(), || {
        let list: Vec<String> = owned
            .values()
            .map(|s| format!("{} (revision {})", s.state.name, s.state.revision))
            .collect();
        format!(
            "at seq {end} StatefulSet {name}'s currentRevision {} and updateRevision {} are its \
             ControllerRevisions [{}], the update revision the highest; its {pods} live pod(s) \
             are on {}",
            current.as_deref().unwrap_or_default(),
            update.as_deref().unwrap_or_default(),
            list.join(", "),
            if full {
                "the update revision"
            } else {
                "ControllerRevisions of the set"
            }
        )
    })
}

/// Whether `revision` is owned by the StatefulSet `name` with uid `uid`: by the owner
/// reference's uid where it was recorded (a set deleted and created again under the same
/// name is another owner), by name in histories recorded before.
fn owned_by(revision: &ControllerRevisionState, name: &str, uid: &str) -> bool {
    revision.owner.as_deref() == Some(name)
        && revision.owner_uid.as_deref().is_none_or(|o| o == uid)
}

/// Why `revision` is not a live ControllerRevision of StatefulSet `name` (uid `uid`), if
/// it is not.
fn not_the_sets(world: &World, revision: &str, name: &str, uid: &str) -> Option<String> {
    match world.revisions.get(revision) {
        None => Some("no ControllerRevision (never observed)".to_string()),
        Some(s) if s.gone => Some(format!(
            "ControllerRevision {} observed deleted at seq {}",
            revision_ref(&s.state),
            s.seq
        )),
        Some(s) if s.state.owner.as_deref() != Some(name) => Some(format!(
            "ControllerRevision {} owned by {}, not StatefulSet {name}",
            revision_ref(&s.state),
            s.state
                .owner
                .as_deref()
                .map_or("no StatefulSet".to_string(), |o| format!("StatefulSet {o}"))
        )),
        Some(s) if !owned_by(&s.state, name, uid) => Some(format!(
            "ControllerRevision {} owned by StatefulSet {name} uid {}, not this set (uid {uid})",
            revision_ref(&s.state),
            s.state.owner_uid.as_deref().unwrap_or("none")
        )),
        Some(_) => None,
    }
}

/// "mysql-abc (uid u)".
fn revision_ref(state: &ControllerRevisionState) -> String {
    format!("{} (uid {})", state.name, state.uid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, History, PodState, REVISION_LABEL, StsState};
    use crate::testkit::*;

    const OLD: &str = "mysql-old";
    const NEW: &str = "mysql-new";

    fn on(i: u32, revision: &str) -> PodState {
        pod(&format!("mysql-{i}"), &format!("u{i}")).with(|p| {
            p.labels.insert(REVISION_LABEL.into(), revision.into());
        })
    }

    fn status(current: &str, update: &str, partition: Option<i32>) -> Event {
        applied(StsState {
            name: "mysql".into(),
            uid: "sts-uid".into(),
            replicas: 3,
            current_revision: Some(current.into()),
            update_revision: Some(update.into()),
            partition,
            ..StsState::default()
        })
    }

    /// Both revisions, all three pods on `NEW`, the rollout complete.
    fn rolled_out() -> Vec<Event> {
        vec![
            applied(controller_revision(OLD, 1)),
            applied(controller_revision(NEW, 2)),
            applied(on(0, NEW)),
            applied(on(1, NEW)),
            applied(on(2, NEW)),
            status(NEW, NEW, None),
        ]
    }

    fn check(events: Vec<Event>, strategy: Strategy) -> Verdict {
        revisions_consistent(
            &History::from_events(events),
            u64::MAX,
            &RolloutExpect::new("mysql", 3, strategy),
        )
        .verdict
    }

    fn evidence(v: &Verdict) -> String {
        assert!(v.is_fail(), "{v}");
        v.evidence().join("\n")
    }

    #[test]
    fn a_completed_rollout_on_the_highest_revision_passes() {
        let v = check(rolled_out(), Strategy::RollingUpdate);
        assert!(v.is_pass(), "{v}");
        assert!(
            v.to_string()
                .contains("[mysql-new (revision 2), mysql-old (revision 1)]"),
            "{v}"
        );
    }

    #[test]
    fn a_partitioned_rollout_may_keep_pods_on_the_current_revision() {
        let mut events = rolled_out();
        events[2] = applied(on(0, OLD));
        events[5] = status(OLD, NEW, Some(1));
        let v = check(events.clone(), Strategy::RollingUpdate);
        assert!(v.is_pass(), "{v}");
        // With partition 0 the same pod is left behind.
        events[5] = status(OLD, NEW, None);
        let text = evidence(&check(events, Strategy::RollingUpdate));
        assert!(
            text.contains(
                "pod mysql-0 (uid u0) is on ControllerRevision mysql-old, not the update revision \
                 mysql-new after the rollout completed (last observed at seq 2)"
            ),
            "{text}"
        );
    }

    #[test]
    fn an_update_revision_without_its_object_is_named() {
        let mut events = rolled_out();
        events.remove(1);
        let text = evidence(&check(events, Strategy::RollingUpdate));
        assert!(
            text.contains(
                "StatefulSet mysql at seq 4: status.updateRevision mysql-new names no \
                 ControllerRevision (never observed)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "pod mysql-0 (uid u0) has controller-revision-hash mysql-new, which names no \
                 ControllerRevision (never observed) (last observed at seq 1)"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_current_revision_deleted_or_owned_by_another_set_is_named() {
        let mut events = rolled_out();
        events[5] = status(OLD, NEW, Some(1));
        events.push(deleted(controller_revision(OLD, 1)));
        let text = evidence(&check(events, Strategy::RollingUpdate));
        assert!(
            text.contains(
                "status.currentRevision mysql-old names ControllerRevision mysql-old (uid \
                 mysql-old-uid) observed deleted at seq 6"
            ),
            "{text}"
        );
        let mut events = rolled_out();
        events[0] = applied(controller_revision(OLD, 1).with_owner("other"));
        events[5] = status(OLD, NEW, Some(1));
        let text = evidence(&check(events, Strategy::RollingUpdate));
        assert!(
            text.contains(
                "status.currentRevision mysql-old names ControllerRevision mysql-old (uid \
                 mysql-old-uid) owned by StatefulSet other, not StatefulSet mysql"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_revision_of_an_earlier_set_of_the_same_name_is_not_the_sets() {
        let mut events = rolled_out();
        events[0] = applied(ControllerRevisionState {
            owner_uid: Some("earlier-sts-uid".into()),
            ..controller_revision(OLD, 1)
        });
        events[5] = status(OLD, NEW, Some(1));
        let text = evidence(&check(events, Strategy::RollingUpdate));
        assert!(
            text.contains(
                "status.currentRevision mysql-old names ControllerRevision mysql-old (uid \
                 mysql-old-uid) owned by StatefulSet mysql uid earlier-sts-uid, not this set \
                 (uid sts-uid)"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_stale_update_revision_number_is_named() {
        let mut events = rolled_out();
        events[1] = applied(controller_revision(NEW, 1));
        events[0] = applied(controller_revision(OLD, 2));
        let text = evidence(&check(events, Strategy::RollingUpdate));
        assert!(
            text.contains(
                "the update revision mysql-new (ControllerRevision revision 1) is not the highest \
                 of StatefulSet mysql: mysql-old (uid mysql-old-uid) has revision 2 (observed at \
                 seq 0)"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_pod_without_a_revision_of_the_set_is_named() {
        let mut events = rolled_out();
        events.push(applied(on(1, "mysql-elsewhere")));
        events.push(applied(pod("mysql-2", "u2").with(|p| {
            p.labels.remove(REVISION_LABEL);
        })));
        let text = evidence(&check(events, Strategy::OnDelete));
        assert!(
            text.contains(
                "pod mysql-1 (uid u1) has controller-revision-hash mysql-elsewhere, which names no \
                 ControllerRevision (never observed) (last observed at seq 6)"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "pod mysql-2 (uid u2) has no controller-revision-hash label (last observed at seq \
                 7)"
            ),
            "{text}"
        );
    }

    #[test]
    fn no_controller_revision_observed_is_unknown_never_pass() {
        let events: Vec<Event> = rolled_out().into_iter().skip(2).collect();
        let v = check(events, Strategy::RollingUpdate);
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string().contains("no ControllerRevision was observed"),
            "{v}"
        );
    }

    trait Owned {
        fn with_owner(self, owner: &str) -> Self;
    }

    impl Owned for ControllerRevisionState {
        fn with_owner(mut self, owner: &str) -> Self {
            self.owner = Some(owner.into());
            self
        }
    }
}
