//! Deleted pods stop serving: once the API has removed a pod, its container must stop
//! acknowledging writes within a short bound.
//!
//! A graceful deletion is confirmed by the kubelet only after the container stopped, and a
//! force deletion makes the kubelet kill the container within seconds (mysqld drops its
//! clients as soon as it starts shutting down). A container that keeps acknowledging writes
//! long after its pod is gone is a zombie: it serves an identity that the API has already
//! given to a replacement. Unlike at-most-one, this needs no proof that the replacement
//! served: a replacement waiting for the zombie's lock on the data files is exactly what a
//! real mysqld does.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::history::{Entry, Event, PodState, Row, WriteEvent};
use crate::verdict::{CheckResult, Verdict, Window};
use crate::world::pod_observations;

/// How long after its deletion was observed a pod's container may still acknowledge writes
/// invoked before it noticed: the kubelet's reaction to the deletion plus mysqld's shutdown.
pub const STOP_BOUND: Duration = Duration::from_secs(15);

/// Rows listed per zombie in the evidence.
const ROWS_SHOWN: usize = 10;

/// No pod uid whose deletion was observed in `window` acknowledged a write invoked more
/// than [`STOP_BOUND`] after that observation.
pub fn deleted_pods_stop_serving(entries: &[Entry], window: impl Into<Window>) -> CheckResult {
    CheckResult::new("deleted pods stop serving", verdict(entries, window.into()))
}

/// When and as what a pod uid's deletion was first observed.
struct Deletion<'a> {
    seq: u64,
    at: Duration,
    pod: &'a PodState,
}

fn verdict(entries: &[Entry], window: Window) -> Verdict {
    let deletions = deletions(entries, window);
    if deletions.is_empty() {
        return Verdict::Unknown {
            reason: format!("no pod deletion was observed in {window}"),
        };
    }
    let late = late_acks(entries, &deletions);
    let evidence = late
        .iter()
        .filter_map(|(uid, rows)| Some(describe(deletions.get(uid.as_str())?, rows)))
        .collect::<Vec<_>>();
    let judged = acks_by(entries, &deletions);
    Verdict::judge(evidence, Vec::new(), || {
        format!(
            "{} deleted pod(s) ({}) acknowledged no write invoked more than {} s after their deletion \
             ({judged} writes they acknowledged were judged)",
            deletions.len(),
            deletions
                .values()
                .map(|d| format!("{} uid {}", d.pod.name, d.pod.uid))
                .collect::<Vec<_>>()
                .join(", "),
            STOP_BOUND.as_secs()
        )
    })
}

/// Each pod uid whose first `Deleted` observation falls in `window`.
fn deletions(entries: &[Entry], window: Window) -> BTreeMap<&str, Deletion<'_>> {
    let times: BTreeMap<u64, Duration> = entries.iter().map(|e| (e.seq, e.at)).collect();
    let mut deletions = BTreeMap::new();
    for (seq, gone, pod) in pod_observations(entries) {
        if gone && window.contains(seq) {
            deletions.entry(pod.uid.as_str()).or_insert(Deletion {
                seq,
                at: times.get(&seq).copied().unwrap_or_default(),
                pod,
            });
        }
    }
    deletions
}

/// Acknowledged writes of each deleted uid that were invoked after its deletion plus the bound.
fn late_acks<'a>(
    entries: &'a [Entry],
    deletions: &BTreeMap<&str, Deletion<'_>>,
) -> BTreeMap<String, Vec<(&'a Row, Duration)>> {
    let invoked = invocations(entries);
    let mut late: BTreeMap<String, Vec<(&Row, Duration)>> = BTreeMap::new();
    for entry in entries {
        let Event::Write(WriteEvent::Ok { id }) = &entry.event else {
            continue;
        };
        let Some((row, at)) = invoked.get(id) else {
            continue;
        };
        let Some(deletion) = deletions.get(row.pod_uid.as_str()) else {
            continue;
        };
        if *at > deletion.at + STOP_BOUND {
            late.entry(row.pod_uid.clone())
                .or_default()
                .push((row, *at - deletion.at));
        }
    }
    late
}

/// How many acknowledged writes were served by the deleted uids at all.
fn acks_by(entries: &[Entry], deletions: &BTreeMap<&str, Deletion<'_>>) -> usize {
    let invoked = invocations(entries);
    entries
        .iter()
        .filter(|e| match &e.event {
            Event::Write(WriteEvent::Ok { id }) => invoked
                .get(id)
                .is_some_and(|(row, _)| deletions.contains_key(row.pod_uid.as_str())),
            _ => false,
        })
        .count()
}

/// Each write id's row and the time it was invoked.
fn invocations(entries: &[Entry]) -> BTreeMap<u64, (&Row, Duration)> {
    entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Write(WriteEvent::Invoked { row }) => Some((row.id, (row, e.at))),
            _ => None,
        })
        .collect()
}

fn describe(deletion: &Deletion<'_>, rows: &[(&Row, Duration)]) -> String {
    let shown: Vec<String> = rows
        .iter()
        .take(ROWS_SHOWN)
        .map(|(row, after)| format!("{} (+{:.1} s)", row.id, after.as_secs_f64()))
        .collect();
    let more = rows.len().saturating_sub(ROWS_SHOWN);
    format!(
        "pod {} uid {} was deleted at seq {} but its container kept serving: it acknowledged {} \
         write(s) invoked more than {} s later, rows {}{} (a zombie container)",
        deletion.pod.name,
        deletion.pod.uid,
        deletion.seq,
        rows.len(),
        STOP_BOUND.as_secs(),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    /// Entries whose `at` is `seconds[i]` for the i-th event.
    fn timed(events: Vec<(u64, Event)>) -> Vec<Entry> {
        events
            .into_iter()
            .enumerate()
            .map(|(i, (secs, event))| Entry {
                seq: i as u64,
                at: Duration::from_secs(secs),
                event,
            })
            .collect()
    }

    fn row_of(id: u64, uid: &str) -> Row {
        let mut r = row(id, 1);
        r.pod_uid = uid.into();
        r
    }

    #[test]
    fn a_container_serving_long_after_its_deletion_is_named() {
        let zombie = row_of(7, "old");
        let entries = timed(vec![
            (0, applied(pod("mysql-1", "old"))),
            (1, deleted(pod("mysql-1", "old"))),
            (2, applied(pod("mysql-1", "new"))),
            (30, invoked(&zombie)),
            (30, ok(7)),
        ]);
        let result = deleted_pods_stop_serving(&entries, Window::all());
        let evidence = result.verdict.evidence().join("\n");
        assert!(result.verdict.is_fail(), "{}", result.verdict);
        assert!(evidence.contains("pod mysql-1 uid old"), "{evidence}");
        assert!(evidence.contains("rows 7 (+29.0 s)"), "{evidence}");
        assert!(evidence.contains("zombie"), "{evidence}");
    }

    #[test]
    fn writes_in_flight_at_the_deletion_pass() {
        let last = row_of(7, "old");
        let entries = timed(vec![
            (0, applied(pod("mysql-1", "old"))),
            (5, invoked(&last)),
            (6, deleted(pod("mysql-1", "old"))),
            (7, ok(7)),
        ]);
        let result = deleted_pods_stop_serving(&entries, Window::all());
        assert!(result.verdict.is_pass(), "{}", result.verdict);
    }

    #[test]
    fn unacknowledged_late_writes_are_no_proof() {
        let late = row_of(7, "old");
        let entries = timed(vec![
            (1, deleted(pod("mysql-1", "old"))),
            (40, invoked(&late)),
            (41, info(7)),
        ]);
        let result = deleted_pods_stop_serving(&entries, Window::all());
        assert!(result.verdict.is_pass(), "{}", result.verdict);
    }

    #[test]
    fn no_deletion_judges_nothing() {
        let r = row_of(1, "u1");
        let entries = timed(vec![
            (0, applied(pod("mysql-1", "u1"))),
            (1, invoked(&r)),
            (1, ok(1)),
        ]);
        let result = deleted_pods_stop_serving(&entries, Window::all());
        assert!(result.verdict.is_unknown(), "{}", result.verdict);
    }

    #[test]
    fn deletions_outside_the_window_are_not_judged() {
        let zombie = row_of(7, "old");
        let entries = timed(vec![
            (1, deleted(pod("mysql-1", "old"))),
            (30, invoked(&zombie)),
            (30, ok(7)),
        ]);
        let result = deleted_pods_stop_serving(&entries, (2, 10));
        assert!(result.verdict.is_unknown(), "{}", result.verdict);
    }
}
