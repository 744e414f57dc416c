//! At-most-one: a StatefulSet never runs two pods with the same name at once, not even
//! while a node is dead and its pods' fate is unknown.
//!
//! A pod uid counts as existing from its first observation to its last one (its `Deleted`
//! event, or its last update when the deletion was never observed). Two uids of one name
//! overlap when the newer one was observed before the older one's last observation: a
//! single watch delivers a name's events in resourceVersion order, so that is proof both
//! existed together.

use std::collections::BTreeMap;

use crate::history::{Entry, PodState};

use super::world::{describe_pod, pod_observations};
use super::{CheckResult, Verdict, Window};

/// The observed life of one pod uid.
struct Life<'a> {
    first: u64,
    last: u64,
    deleted: bool,
    last_state: &'a PodState,
    first_state: &'a PodState,
}

/// Never two existing pods with the same name during `window`.
pub fn at_most_one(entries: &[Entry], window: impl Into<Window>) -> CheckResult {
    CheckResult::new("at-most-one", verdict(entries, window.into()))
}

fn verdict(entries: &[Entry], window: Window) -> Verdict {
    let lives = lives_by_name(entries);
    if lives.is_empty() {
        return Verdict::Unknown {
            reason: "no pod was observed".into(),
        };
    }
    let mut evidence = Vec::new();
    let mut unknowns = Vec::new();
    let mut replacements = 0;
    for (name, uids) in &lives {
        for (i, older) in uids.iter().enumerate() {
            for newer in &uids[i + 1..] {
                let overlap = (newer.first, older.last);
                if overlap.0 < overlap.1 {
                    if overlap.0 <= window.to && overlap.1 >= window.from {
                        evidence.push(two_pods(name, older, newer));
                    }
                } else if !older.deleted && window.contains(newer.first) {
                    unknowns.push(format!(
                        "pod {name} uid {} was last observed at seq {} and its deletion was never observed \
                         before uid {} appeared at seq {}",
                        older.last_state.uid, older.last, newer.first_state.uid, newer.first
                    ));
                } else {
                    replacements += 1;
                }
            }
        }
    }
    Verdict::judge(evidence, unknowns, || {
        format!(
            "no name had two pods at once in {window} ({} names, {replacements} replacements observed)",
            lives.len()
        )
    })
}

/// Each name's uids, ordered by first observation.
fn lives_by_name(entries: &[Entry]) -> BTreeMap<&str, Vec<Life<'_>>> {
    let mut lives: BTreeMap<&str, Vec<Life<'_>>> = BTreeMap::new();
    for (seq, gone, pod) in pod_observations(entries) {
        let uids = lives.entry(pod.name.as_str()).or_default();
        match uids.iter_mut().find(|l| l.first_state.uid == pod.uid) {
            Some(life) => {
                life.last = seq;
                life.deleted |= gone;
                life.last_state = pod;
            }
            None => uids.push(Life {
                first: seq,
                last: seq,
                deleted: gone,
                last_state: pod,
                first_state: pod,
            }),
        }
    }
    lives
}

fn two_pods(name: &str, older: &Life<'_>, newer: &Life<'_>) -> String {
    format!(
        "two pods named {name} existed at once: uid {} (observed seq {}..{}{}, last: {}) and uid {} \
         (first observed at seq {}: {})",
        older.first_state.uid,
        older.first,
        older.last,
        if older.deleted { ", then deleted" } else { "" },
        describe_pod(older.last_state),
        newer.first_state.uid,
        newer.first,
        describe_pod(newer.first_state),
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::checks::testkit::*;
    use crate::history::{Event, History};

    fn on(node: &str) -> impl FnOnce(&mut PodState) {
        let node = node.to_string();
        move |p| p.node_name = Some(node)
    }

    #[rstest]
    #[case::clean_replacement(vec![
        applied(pod("mysql-1", "u1")),
        applied(pod("mysql-1", "u1").terminating()),
        deleted(pod("mysql-1", "u1").terminating()),
        applied(pod("mysql-1", "u1b").pending()),
    ])]
    #[case::force_delete(vec![
        applied(pod("mysql-1", "u1")),
        deleted(pod("mysql-1", "u1")),
        applied(pod("mysql-1", "u1b")),
    ])]
    fn one_pod_at_a_time_passes(#[case] events: Vec<Event>) {
        let result = at_most_one(&History::from_events(events), Window::all());
        assert_eq!(result.check, "at-most-one");
        let v = result.verdict;
        assert!(v.is_pass(), "{v}");
        assert!(v.to_string().contains("1 replacements"), "{v}");
    }

    #[test]
    fn second_pod_while_the_first_still_exists_is_named() {
        let events = vec![
            applied(pod("mysql-1", "u1").with(on("w2"))),
            mark("stop node w2"),
            applied(pod("mysql-1", "u1b").pending().with(on("w1"))),
            applied(pod("mysql-1", "u1").not_ready().with(on("w2"))),
            deleted(pod("mysql-1", "u1").not_ready().with(on("w2"))),
        ];
        let v = verdict(&History::from_events(events), Window::new(1, u64::MAX));
        assert!(v.is_fail(), "{v}");
        let e = &v.evidence()[0];
        assert!(
            e.contains(
                "two pods named mysql-1 existed at once: uid u1 (observed seq 0..4, then deleted"
            ),
            "{e}"
        );
        assert!(e.contains("uid u1b (first observed at seq 2"), "{e}");
    }

    #[test]
    fn overlap_outside_the_window_is_not_judged() {
        let events = vec![
            applied(pod("mysql-1", "u1")),
            applied(pod("mysql-1", "u1b")),
            deleted(pod("mysql-1", "u1")),
            mark("window"),
            applied(pod("mysql-1", "u1b")),
        ];
        let v = verdict(&History::from_events(events), Window::new(3, u64::MAX));
        assert!(v.is_pass(), "{v}");
    }

    #[test]
    fn missed_deletion_cannot_prove_anything() {
        let events = vec![
            applied(pod("mysql-1", "u1")),
            applied(pod("mysql-1", "u1b")),
        ];
        let v = verdict(&History::from_events(events), Window::all());
        assert!(v.is_unknown(), "{v}");
    }

    #[test]
    fn no_pods_is_unknown() {
        assert!(verdict(&History::from_events([mark("x")]), Window::all()).is_unknown());
    }
}
