//! At-most-one: a StatefulSet never runs two pods with the same name at once, not even
//! while a node is dead or a pod was force-deleted and its container's fate is unknown.
//!
//! Two kinds of proof count:
//!
//! - the API's: a pod uid counts as existing from its first observation to its last one
//!   (its `Deleted` event, or its last update when the deletion was never observed). Two
//!   uids of one name overlap when the newer one was observed before the older one's last
//!   observation: a single watch delivers a name's events in resourceVersion order, so
//!   that is proof both existed together. A single API server never shows this.
//! - the workload's: a write acknowledged through a connection to a pod uid that, when the
//!   write was invoked, had already been observed deleted while a newer uid of the same
//!   name was already serving. Both processes served one name at once (the hazard
//!   Kubernetes documents for force-deleting StatefulSet pods). The replacement merely
//!   existing proves nothing: a force deletion removes the object at once and a real
//!   kubelet takes a moment to stop the old container, which may commit meanwhile; the
//!   replacement cannot serve yet. Nor does `Ready` alone: the documented StatefulSet has
//!   no readiness probe, so the replacement is Ready before its mysqld can lock the data
//!   files the old container still holds. The replacement served once it acknowledged a
//!   write itself, or once it was observed Ready and a MySQL handshake with its uid was
//!   recorded ([`crate::history::Connection`]). Judging by invocation, not by
//!   acknowledgement, keeps a write that was in flight when the old container was killed
//!   from counting: only a write begun after both observations is proof.
//!
//! A window in which no pod was replaced and no write was acknowledged judged nothing:
//! it is Unknown, never Pass.

use std::collections::BTreeMap;

use crate::history::{Change, Connection, Entry, Event, PodState, Row, Snapshot, WriteEvent};

use crate::verdict::{CheckResult, Verdict, Window};
use crate::world::{describe_pod, pod_observations};

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
                } else if older.last <= window.to && newer.first >= window.from {
                    replacements += 1;
                }
            }
        }
    }
    let acks = superseded_acks(entries, window);
    evidence.extend(acks.evidence());
    if replacements == 0 && acks.judged == 0 {
        unknowns.push(format!(
            "nothing was judged in {window}: no pod of the {} names observed was replaced \
             and no write was acknowledged",
            lives.len()
        ));
    }
    Verdict::judge(evidence, unknowns, || {
        format!(
            "no name had two pods at once in {window} ({} names, {replacements} replacements observed, \
             {} acknowledged writes each served by the pod holding its name)",
            lives.len(),
            acks.judged
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

// ---- the workload's evidence ---------------------------------------------------------

/// What had been observed of one pod uid so far.
struct Incarnation<'a> {
    name: &'a str,
    first: u64,
    /// Seq of its first `Deleted` observation.
    deleted: Option<u64>,
    /// Seq of its first observation as Ready (and neither terminating nor deleted).
    ready: Option<u64>,
    /// Its first acknowledged write: (seq, row id).
    acknowledged: Option<(u64, u64)>,
}

/// The first proof that a pod uid's container served, and when it was complete.
#[derive(Clone, Copy)]
struct Serving {
    seq: u64,
    proof: ServingProof,
}

#[derive(Clone, Copy)]
enum ServingProof {
    /// Observed Ready at `ready` and a MySQL handshake recorded at `connected`: either
    /// alone is not proof (Ready comes before mysqld holds its files; a handshake says
    /// nothing of what the API shows).
    ReadyAndConnected {
        ready: u64,
        connected: u64,
    },
    Acknowledged(u64),
}

impl std::fmt::Display for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.proof {
            ServingProof::ReadyAndConnected { ready, connected } => write!(
                f,
                "observed Ready at seq {ready} and a MySQL handshake at seq {connected}"
            ),
            ServingProof::Acknowledged(id) => {
                write!(f, "acknowledged row {id} at seq {}", self.seq)
            }
        }
    }
}

/// Why, when a write was invoked, the pod uid serving it no longer held its name.
struct Superseded<'a> {
    name: &'a str,
    deleted: u64,
    successor: &'a str,
    successor_serving: Serving,
}

/// A write invoked through a connection to a pod uid.
struct Invocation<'a> {
    row: &'a Row,
    invoked: u64,
    superseded: Option<Superseded<'a>>,
}

/// The pods the history had observed, as of the entry being folded in.
#[derive(Default)]
struct Incarnations<'a> {
    by_uid: BTreeMap<&'a str, Incarnation<'a>>,
    /// Each name's uids in order of first observation.
    by_name: BTreeMap<&'a str, Vec<&'a str>>,
    /// Seq of the first handshake recorded with each pod uid (kept apart from `by_uid`:
    /// a handshake may be recorded before the watch delivers the pod).
    handshakes: BTreeMap<&'a str, u64>,
}

impl<'a> Incarnations<'a> {
    fn observe(&mut self, seq: u64, gone: bool, pod: &'a PodState) {
        let known = self.by_uid.entry(&pod.uid).or_insert_with(|| Incarnation {
            name: &pod.name,
            first: seq,
            deleted: None,
            ready: None,
            acknowledged: None,
        });
        if gone && known.deleted.is_none() {
            known.deleted = Some(seq);
        }
        if pod.ready && !pod.terminating && !gone && known.ready.is_none() {
            known.ready = Some(seq);
        }
        let uids = self.by_name.entry(&pod.name).or_default();
        if !uids.contains(&pod.uid.as_str()) {
            uids.push(&pod.uid);
        }
    }

    /// The workload completed a MySQL handshake with `connection.pod_uid`.
    fn connected(&mut self, connection: &'a Connection, seq: u64) {
        self.handshakes.entry(&connection.pod_uid).or_insert(seq);
    }

    /// A write through `uid` was acknowledged: its container served.
    fn acknowledged(&mut self, uid: &str, id: u64, seq: u64) {
        if let Some(known) = self.by_uid.get_mut(uid) {
            known.acknowledged.get_or_insert((seq, id));
        }
    }

    /// The earliest complete proof that `uid`'s container served, if there is one.
    fn serving(&self, uid: &str, known: &Incarnation<'_>) -> Option<Serving> {
        let acked = known.acknowledged.map(|(seq, id)| Serving {
            seq,
            proof: ServingProof::Acknowledged(id),
        });
        let handshake =
            known
                .ready
                .zip(self.handshakes.get(uid).copied())
                .map(|(ready, connected)| Serving {
                    seq: ready.max(connected),
                    proof: ServingProof::ReadyAndConnected { ready, connected },
                });
        [acked, handshake]
            .into_iter()
            .flatten()
            .min_by_key(|s| s.seq)
    }

    /// The uid was observed deleted and a newer uid of its name was serving.
    fn superseded(&self, uid: &str) -> Option<Superseded<'a>> {
        let me = self.by_uid.get(uid)?;
        let deleted = me.deleted?;
        let (successor, serving) = self
            .by_name
            .get(me.name)?
            .iter()
            .filter_map(|u| self.by_uid.get(u).map(|i| (*u, i)))
            .filter(|(u, i)| *u != uid && i.first > me.first)
            .find_map(|(u, i)| self.serving(u, i).map(|s| (u, s)))?;
        Some(Superseded {
            name: me.name,
            deleted,
            successor,
            successor_serving: serving,
        })
    }
}

/// A write acknowledged by a pod uid that had lost its name before it was invoked.
#[derive(Clone, Copy)]
struct ZombieAck<'a> {
    row: &'a Row,
    invoked: u64,
    acked: u64,
}

/// The writes one superseded pod uid acknowledged.
struct ZombieAcks<'a> {
    superseded: Superseded<'a>,
    first: ZombieAck<'a>,
    last: ZombieAck<'a>,
    count: usize,
}

/// The acknowledged writes judged, and those served by superseded pods, by pod uid.
#[derive(Default)]
struct AckFindings<'a> {
    judged: usize,
    superseded: BTreeMap<&'a str, ZombieAcks<'a>>,
}

impl<'a> AckFindings<'a> {
    /// Counts an acknowledged write; keeps it as evidence if a superseded pod served it.
    fn judge(&mut self, invocation: Invocation<'a>, acked: u64) {
        self.judged += 1;
        let Some(superseded) = invocation.superseded else {
            return;
        };
        let ack = ZombieAck {
            row: invocation.row,
            invoked: invocation.invoked,
            acked,
        };
        self.superseded
            .entry(invocation.row.pod_uid.as_str())
            .and_modify(|acks| {
                acks.last = ack;
                acks.count += 1;
            })
            .or_insert(ZombieAcks {
                superseded,
                first: ack,
                last: ack,
                count: 1,
            });
    }

    /// One line per superseded pod uid that acknowledged writes.
    fn evidence(&self) -> Vec<String> {
        self.superseded
            .values()
            .map(served_by_superseded_pod)
            .collect()
    }
}

/// Judges every write acknowledged within `window`: it must not have been served by a pod
/// uid that had already lost its name when the write was invoked.
fn superseded_acks(entries: &[Entry], window: Window) -> AckFindings<'_> {
    let mut pods = Incarnations::default();
    let mut pending: BTreeMap<u64, Invocation<'_>> = BTreeMap::new();
    let mut findings = AckFindings::default();
    for entry in entries {
        match &entry.event {
            Event::Object {
                change,
                object: Snapshot::Pod(pod),
            } => pods.observe(entry.seq, *change == Change::Deleted, pod),
            Event::Connected(connection) => pods.connected(connection, entry.seq),
            Event::Write(WriteEvent::Invoked { row }) => {
                let invocation = Invocation {
                    row,
                    invoked: entry.seq,
                    superseded: pods.superseded(&row.pod_uid),
                };
                pending.insert(row.id, invocation);
            }
            Event::Write(WriteEvent::Ok { id }) => {
                let Some(invocation) = pending.remove(id) else {
                    continue;
                };
                pods.acknowledged(&invocation.row.pod_uid, *id, entry.seq);
                if window.contains(entry.seq) {
                    findings.judge(invocation, entry.seq);
                }
            }
            Event::Write(WriteEvent::Fail { id, .. } | WriteEvent::Info { id, .. }) => {
                pending.remove(id);
            }
            _ => {}
        }
    }
    findings
}

fn served_by_superseded_pod(acks: &ZombieAcks<'_>) -> String {
    let describe = |a: &ZombieAck<'_>| {
        format!(
            "row {} (ordinal {}, invoked at seq {}, acknowledged at seq {})",
            a.row.id, a.row.ordinal, a.invoked, a.acked
        )
    };
    let s = &acks.superseded;
    let uid = &acks.first.row.pod_uid;
    let writes = if acks.count == 1 {
        describe(&acks.first)
    } else {
        format!(
            "{} writes invoked after both, first {}, last {}",
            acks.count,
            describe(&acks.first),
            describe(&acks.last)
        )
    };
    format!(
        "two pods named {} served at once: uid {uid} was observed deleted at seq {} and its \
         replacement uid {} was serving ({}), yet uid {uid} acknowledged {writes}",
        s.name, s.deleted, s.successor, s.successor_serving,
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::history::{Event, History};
    use crate::testkit::*;

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
            invoked(&written_by(1, "u1b")),
            ok(1),
        ];
        let v = verdict(&History::from_events(events), Window::new(3, u64::MAX));
        assert!(v.is_pass(), "{v}");
    }

    #[test]
    fn a_window_without_replacements_or_acknowledged_writes_is_unknown() {
        let events = vec![
            applied(pod("mysql-1", "u1")),
            deleted(pod("mysql-1", "u1")),
            applied(pod("mysql-1", "u1b")),
            mark("window"),
            applied(pod("mysql-1", "u1b").restarts(1)),
            invoked(&written_by(1, "u1b")),
            info(1),
        ];
        let v = verdict(&History::from_events(events), Window::new(3, u64::MAX));
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string().contains(
                "nothing was judged in seq 3..end: no pod of the 1 names observed was replaced \
                 and no write was acknowledged"
            ),
            "{v}"
        );
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

    fn written_by(id: u64, pod_uid: &str) -> crate::history::Row {
        let mut r = row(id, 1);
        r.pod_uid = pod_uid.into();
        r
    }

    #[test]
    fn ack_from_a_force_deleted_pod_after_its_replacement_was_ready_and_connected_is_named() {
        let events = vec![
            applied(pod("mysql-1", "u1")),
            invoked(&written_by(1, "u1")),
            ok(1),
            deleted(pod("mysql-1", "u1")),
            applied(pod("mysql-1", "u1b").pending()),
            invoked(&written_by(2, "u1")),
            ok(2),
            applied(pod("mysql-1", "u1b")),
            invoked(&written_by(3, "u1")),
            ok(3),
            connected("mysql-1", "u1b"),
            invoked(&written_by(4, "u1")),
            ok(4),
        ];
        let v = verdict(&History::from_events(events), Window::all());
        assert!(v.is_fail(), "{v}");
        assert_eq!(
            v.evidence(),
            [
                "two pods named mysql-1 served at once: uid u1 was observed deleted at seq 3 and its \
                 replacement uid u1b was serving (observed Ready at seq 7 and a MySQL handshake at \
                 seq 10), yet uid u1 acknowledged row 4 (ordinal 1, invoked at seq 11, \
                 acknowledged at seq 12)"
            ],
            "only the write begun after the replacement was both Ready and connected"
        );
    }

    #[test]
    fn a_handshake_before_ready_counts_once_ready_is_observed() {
        let events = vec![
            applied(pod("mysql-1", "u1")),
            deleted(pod("mysql-1", "u1")),
            applied(pod("mysql-1", "u1b").not_ready()),
            connected("mysql-1", "u1b"),
            invoked(&written_by(1, "u1")),
            ok(1),
            applied(pod("mysql-1", "u1b")),
            invoked(&written_by(2, "u1")),
            ok(2),
        ];
        let v = verdict(&History::from_events(events), Window::all());
        assert_eq!(
            v.evidence(),
            [
                "two pods named mysql-1 served at once: uid u1 was observed deleted at seq 1 and its \
                 replacement uid u1b was serving (observed Ready at seq 6 and a MySQL handshake at \
                 seq 3), yet uid u1 acknowledged row 2 (ordinal 1, invoked at seq 7, acknowledged \
                 at seq 8)"
            ]
        );
    }

    #[test]
    fn ack_from_a_force_deleted_pod_after_its_replacement_acknowledged_is_named() {
        let events = vec![
            applied(pod("mysql-1", "u1")),
            deleted(pod("mysql-1", "u1")),
            applied(pod("mysql-1", "u1b").not_ready()),
            invoked(&written_by(1, "u1b")),
            ok(1),
            invoked(&written_by(2, "u1")),
            ok(2),
        ];
        let v = verdict(&History::from_events(events), Window::all());
        assert_eq!(
            v.evidence(),
            [
                "two pods named mysql-1 served at once: uid u1 was observed deleted at seq 1 and its \
                 replacement uid u1b was serving (acknowledged row 1 at seq 4), yet uid u1 \
                 acknowledged row 2 (ordinal 1, invoked at seq 5, acknowledged at seq 6)"
            ]
        );
    }

    #[test]
    fn many_acks_from_one_superseded_pod_make_one_line() {
        let events = vec![
            applied(pod("mysql-1", "u1")),
            deleted(pod("mysql-1", "u1")),
            applied(pod("mysql-1", "u1b")),
            connected("mysql-1", "u1b"),
            invoked(&written_by(7, "u1")),
            ok(7),
            invoked(&written_by(8, "u1")),
            info(8),
            invoked(&written_by(9, "u1")),
            ok(9),
        ];
        let v = verdict(&History::from_events(events), Window::all());
        assert_eq!(
            v.evidence(),
            [
                "two pods named mysql-1 served at once: uid u1 was observed deleted at seq 1 and its \
                 replacement uid u1b was serving (observed Ready at seq 2 and a MySQL handshake at \
                 seq 3), yet uid u1 acknowledged 2 writes invoked after both, first row 7 (ordinal \
                 1, invoked at seq 4, acknowledged at seq 5), last row 9 (ordinal 1, invoked at seq \
                 8, acknowledged at seq 9)"
            ]
        );
    }

    #[test]
    fn ack_outside_the_window_is_not_judged() {
        let events = vec![
            applied(pod("mysql-1", "u1")),
            deleted(pod("mysql-1", "u1")),
            applied(pod("mysql-1", "u1b")),
            connected("mysql-1", "u1b"),
            invoked(&written_by(2, "u1")),
            ok(2),
            mark("window"),
            invoked(&written_by(3, "u1b")),
            ok(3),
        ];
        let v = verdict(&History::from_events(events), Window::new(6, u64::MAX));
        assert!(v.is_pass(), "{v}");
        assert!(
            v.to_string()
                .contains("0 replacements observed, 1 acknowledged writes"),
            "{v}"
        );
    }

    #[rstest]
    #[case::in_flight_when_deleted(vec![
        applied(pod("mysql-1", "u1")),
        invoked(&written_by(1, "u1")),
        deleted(pod("mysql-1", "u1")),
        applied(pod("mysql-1", "u1b")),
        ok(1),
    ], 1)]
    #[case::deleted_but_no_replacement_yet(vec![
        applied(pod("mysql-1", "u1")),
        deleted(pod("mysql-1", "u1")),
        invoked(&written_by(1, "u1")),
        ok(1),
        applied(pod("mysql-1", "u1b")),
    ], 1)]
    #[case::replacement_not_serving_yet(vec![
        applied(pod("mysql-1", "u1")),
        deleted(pod("mysql-1", "u1")),
        applied(pod("mysql-1", "u1b").pending()),
        invoked(&written_by(1, "u1")),
        ok(1),
        applied(pod("mysql-1", "u1b").not_ready()),
        invoked(&written_by(2, "u1")),
        ok(2),
    ], 2)]
    #[case::replacement_ready_but_never_connected(vec![
        applied(pod("mysql-1", "u1")),
        deleted(pod("mysql-1", "u1")),
        applied(pod("mysql-1", "u1b")),
        invoked(&written_by(1, "u1")),
        ok(1),
    ], 1)]
    #[case::replacement_connected_but_never_ready(vec![
        applied(pod("mysql-1", "u1")),
        deleted(pod("mysql-1", "u1")),
        applied(pod("mysql-1", "u1b").not_ready()),
        connected("mysql-1", "u1b"),
        invoked(&written_by(1, "u1")),
        ok(1),
    ], 1)]
    #[case::handshake_with_the_old_pod_proves_nothing(vec![
        applied(pod("mysql-1", "u1")),
        deleted(pod("mysql-1", "u1")),
        applied(pod("mysql-1", "u1b")),
        connected("mysql-1", "u1"),
        invoked(&written_by(1, "u1")),
        ok(1),
    ], 1)]
    #[case::written_through_the_replacement(vec![
        applied(pod("mysql-1", "u1")),
        deleted(pod("mysql-1", "u1")),
        applied(pod("mysql-1", "u1b")),
        invoked(&written_by(1, "u1b")),
        ok(1),
    ], 1)]
    #[case::older_incarnation_is_no_successor(vec![
        applied(pod("mysql-1", "u0")),
        deleted(pod("mysql-1", "u0")),
        applied(pod("mysql-1", "u1")),
        invoked(&written_by(1, "u1")),
        ok(1),
    ], 1)]
    #[case::unacknowledged_writes_prove_nothing(vec![
        applied(pod("mysql-1", "u1")),
        deleted(pod("mysql-1", "u1")),
        applied(pod("mysql-1", "u1b")),
        invoked(&written_by(1, "u1")),
        info(1),
        invoked(&written_by(2, "u1")),
        fail(2),
    ], 0)]
    fn acks_from_the_pod_holding_the_name_pass(#[case] events: Vec<Event>, #[case] judged: usize) {
        let v = verdict(&History::from_events(events), Window::all());
        assert!(v.is_pass(), "{v}");
        assert!(
            v.to_string()
                .contains(&format!("{judged} acknowledged writes each served")),
            "{v}"
        );
    }
}
