//! No lost writes, Jepsen's set check: every write MySQL acknowledged is read back intact
//! from its ordinal by that ordinal's last read; nothing is read back that was never
//! attempted (or that the server refused).
//!
//! Outcomes: `ok` must be present; `fail` must be absent; `info` (and an invocation with no
//! recorded outcome) may be either: present is counted as recovered.
//!
//! The workload records exactly one outcome per invocation. A second outcome for one write
//! (ok then info, ok then fail, ...) or a second invocation of one id is a recording
//! defect: the history no longer says what MySQL acknowledged, so it fails, naming the
//! write and both records, instead of passing as an indeterminate write. A history in
//! which no write was acknowledged judged nothing: Unknown.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::history::{Entry, Event, ReadResult, Row, WriteEvent, row_checksum};

use crate::verdict::{CheckResult, Verdict};

/// How many rows of each category the evidence lists before summarising the rest.
const LISTED_PER_CATEGORY: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome<'a> {
    /// Invoked, no outcome recorded (the writer was stopped or died mid-write).
    Pending,
    Ok(u64),
    Fail(u64, &'a str),
    Info(u64, &'a str),
}

struct Attempt<'a> {
    row: &'a Row,
    invoked: u64,
    outcome: Outcome<'a>,
}

impl Attempt<'_> {
    fn describe(&self) -> String {
        format!(
            "row {} (ordinal {}, pod uid {}, invoked at seq {}, {})",
            self.row.id,
            self.row.ordinal,
            self.row.pod_uid,
            self.invoked,
            self.outcome.describe()
        )
    }
}

/// What the history recorded of the workload.
#[derive(Default)]
struct Writes<'a> {
    attempts: BTreeMap<u64, Attempt<'a>>,
    /// The last read of each ordinal and its seq.
    final_reads: BTreeMap<u32, (u64, &'a ReadResult)>,
    /// Outcomes recorded for ids that were never invoked.
    orphans: Vec<String>,
    /// Second outcomes or invocations of one id: the history contradicts itself.
    defects: Vec<String>,
}

fn collect(entries: &[Entry]) -> Writes<'_> {
    let mut w = Writes::default();
    for entry in entries {
        match &entry.event {
            Event::Write(WriteEvent::Invoked { row }) => {
                if let Some(first) = w.attempts.get(&row.id) {
                    // Keep the first: its outcome is the one already recorded against it.
                    w.defects.push(format!(
                        "row {} was invoked again at seq {} (pod uid {}) after {}",
                        row.id,
                        entry.seq,
                        row.pod_uid,
                        first.describe()
                    ));
                    continue;
                }
                w.attempts.insert(
                    row.id,
                    Attempt {
                        row,
                        invoked: entry.seq,
                        outcome: Outcome::Pending,
                    },
                );
            }
            Event::Write(outcome) => w.record_outcome(entry.seq, outcome),
            Event::Read(read) => {
                w.final_reads.insert(read.ordinal, (entry.seq, read));
            }
            _ => {}
        }
    }
    w
}

impl<'a> Writes<'a> {
    fn record_outcome(&mut self, seq: u64, event: &'a WriteEvent) {
        let (id, outcome) = match event {
            WriteEvent::Ok { id } => (*id, Outcome::Ok(seq)),
            WriteEvent::Fail { id, error } => (*id, Outcome::Fail(seq, error)),
            WriteEvent::Info { id, error } => (*id, Outcome::Info(seq, error)),
            WriteEvent::Invoked { .. } => return,
        };
        match self.attempts.get_mut(&id) {
            Some(a) if a.outcome == Outcome::Pending => a.outcome = outcome,
            // The first outcome stays for the classification; the verdict fails anyway.
            Some(a) => self.defects.push(format!(
                "row {id} has a second outcome, {} after {}",
                outcome.describe(),
                a.describe()
            )),
            None => self.orphans.push(format!(
                "outcome at seq {seq} for row {id}, which was never invoked"
            )),
        }
    }
}

impl Outcome<'_> {
    fn describe(&self) -> String {
        match self {
            Outcome::Pending => "no outcome".to_string(),
            Outcome::Ok(seq) => format!("ok at seq {seq}"),
            Outcome::Fail(seq, e) => format!("fail at seq {seq}: {e}"),
            Outcome::Info(seq, e) => format!("info at seq {seq}: {e}"),
        }
    }
}

/// The classification of every row.
#[derive(Default)]
struct Classified {
    acknowledged: usize,
    failed: usize,
    indeterminate: usize,
    lost: Vec<String>,
    /// By row id: everything wrong with what was read back.
    corrupt: BTreeMap<u64, Vec<String>>,
    unexpected: Vec<String>,
    recovered: Vec<String>,
    indeterminate_absent: usize,
    unknowns: Vec<String>,
}

/// Jepsen's set check over every write and the last read of each ordinal.
pub fn no_lost_writes(entries: &[Entry]) -> CheckResult {
    CheckResult::new("no lost writes", verdict(entries))
}

fn verdict(entries: &[Entry]) -> Verdict {
    let writes = collect(entries);
    if writes.attempts.is_empty() {
        return Verdict::Unknown {
            reason: "no write was invoked".into(),
        };
    }
    let mut c = Classified {
        unknowns: writes.orphans.clone(),
        ..Classified::default()
    };
    for (ordinal, (seq, read)) in &writes.final_reads {
        check_read_rows(&writes, *ordinal, *seq, read, &mut c);
    }
    // Looked up once per attempt: a scan of the read per attempt is quadratic.
    let read_ids: BTreeMap<u32, BTreeSet<u64>> = writes
        .final_reads
        .iter()
        .map(|(ordinal, (_, read))| (*ordinal, read.rows.iter().map(|r| r.id).collect()))
        .collect();
    let mut unread = BTreeSet::new();
    for attempt in writes.attempts.values() {
        classify_attempt(&writes, &read_ids, attempt, &mut c, &mut unread);
    }
    c.unknowns.extend(
        unread
            .iter()
            .map(|o| format!("ordinal {o} has acknowledged writes but was never read")),
    );
    // With acknowledged writes but no read, each unread ordinal is already named above.
    if c.acknowledged == 0 {
        c.unknowns.push(format!(
            "none of the {} writes invoked was acknowledged, so none could be lost",
            writes.attempts.len()
        ));
    }
    let counts = counts(&c, &writes);
    let violated = !(c.lost.is_empty() && c.corrupt.is_empty() && c.unexpected.is_empty());
    if !violated && writes.defects.is_empty() {
        return Verdict::judge(Vec::new(), c.unknowns, || counts);
    }
    let mut evidence = vec![counts];
    listed(&mut evidence, "recording defect", &writes.defects);
    listed(&mut evidence, "lost (acknowledged, not read back)", &c.lost);
    let corrupt: Vec<String> = c
        .corrupt
        .iter()
        .map(|(id, why)| format!("row {id}: {}", why.join("; ")))
        .collect();
    listed(&mut evidence, "corrupt", &corrupt);
    listed(&mut evidence, "unexpected", &c.unexpected);
    Verdict::Fail { evidence }
}

/// Everything in the last read of one ordinal: attempted, not refused, intact, in place.
fn check_read_rows(
    writes: &Writes<'_>,
    ordinal: u32,
    seq: u64,
    read: &ReadResult,
    c: &mut Classified,
) {
    let mut seen = BTreeSet::new();
    let place = format!(
        "read from ordinal {ordinal} (pod {}, uid {}) at seq {seq}",
        read.pod, read.pod_uid
    );
    for row in &read.rows {
        let mut wrong = Vec::new();
        if !seen.insert(row.id) {
            wrong.push(format!("{place} more than once"));
        }
        if row.checksum != row_checksum(row.id, row.ordinal, &row.payload) {
            wrong.push(format!(
                "{place} with a checksum that does not match its contents"
            ));
        }
        match writes.attempts.get(&row.id) {
            None => c
                .unexpected
                .push(format!("row {} {place} was never invoked", row.id)),
            Some(a) => {
                if let Outcome::Fail(..) = a.outcome {
                    c.unexpected
                        .push(format!("{} was refused, yet {place}", a.describe()));
                }
                if a.row.ordinal != ordinal {
                    wrong.push(format!("{} was {place}", a.describe()));
                }
                let diff = differing_fields(a.row, row);
                if !diff.is_empty() {
                    wrong.push(format!("{place} with a different {}", diff.join(", ")));
                }
            }
        }
        if !wrong.is_empty() {
            c.corrupt.entry(row.id).or_default().extend(wrong);
        }
    }
}

fn differing_fields(written: &Row, read: &Row) -> Vec<&'static str> {
    [
        ("ordinal", written.ordinal != read.ordinal),
        ("pod uid", written.pod_uid != read.pod_uid),
        ("payload", written.payload != read.payload),
        ("checksum", written.checksum != read.checksum),
    ]
    .into_iter()
    .filter_map(|(field, differs)| differs.then_some(field))
    .collect()
}

fn classify_attempt(
    writes: &Writes<'_>,
    read_ids: &BTreeMap<u32, BTreeSet<u64>>,
    a: &Attempt<'_>,
    c: &mut Classified,
    unread: &mut BTreeSet<u32>,
) {
    match a.outcome {
        Outcome::Ok(_) => c.acknowledged += 1,
        Outcome::Fail(..) => c.failed += 1,
        Outcome::Info(..) | Outcome::Pending => c.indeterminate += 1,
    }
    let Some((read_seq, read)) = writes.final_reads.get(&a.row.ordinal) else {
        if let Outcome::Ok(_) = a.outcome {
            unread.insert(a.row.ordinal);
        }
        return;
    };
    let present = read_ids
        .get(&a.row.ordinal)
        .is_some_and(|ids| ids.contains(&a.row.id));
    match a.outcome {
        Outcome::Ok(ack) if ack > *read_seq => c.unknowns.push(format!(
            "{} was acknowledged after the last read of ordinal {} (seq {read_seq})",
            a.describe(),
            a.row.ordinal
        )),
        Outcome::Ok(_) if !present => c.lost.push(format!(
            "{} is missing from the read of ordinal {} (pod {}, uid {}) at seq {read_seq}",
            a.describe(),
            a.row.ordinal,
            read.pod,
            read.pod_uid
        )),
        Outcome::Info(..) | Outcome::Pending if present => c.recovered.push(a.describe()),
        Outcome::Info(..) | Outcome::Pending => c.indeterminate_absent += 1,
        _ => {}
    }
}

/// "invoked 125, acknowledged 120, lost 0, corrupt 0, unexpected 0, recovered 3 (info), ..."
fn counts(c: &Classified, writes: &Writes<'_>) -> String {
    let ordinals: Vec<String> = writes.final_reads.keys().map(u32::to_string).collect();
    let mut s = format!(
        "invoked {}, acknowledged {}, lost {}, corrupt {}, unexpected {}, recovered {} (info but present), \
         info and absent {}, fail {}",
        writes.attempts.len(),
        c.acknowledged,
        c.lost.len(),
        c.corrupt.len(),
        c.unexpected.len(),
        c.recovered.len(),
        c.indeterminate_absent,
        c.failed,
    );
    let _ = write!(s, "; last reads of ordinals [{}]", ordinals.join(", "));
    s
}

fn listed(evidence: &mut Vec<String>, category: &str, items: &[String]) {
    evidence.extend(
        items
            .iter()
            .take(LISTED_PER_CATEGORY)
            .map(|i| format!("{category}: {i}")),
    );
    if items.len() > LISTED_PER_CATEGORY {
        evidence.push(format!(
            "{category}: ... and {} more",
            items.len() - LISTED_PER_CATEGORY
        ));
    }
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::history::{History, Row};
    use crate::testkit::*;

    /// Rows 1..=3 to ordinal 0 (ok, ok, info) and 4 to ordinal 1 (fail).
    fn writes() -> Vec<Event> {
        vec![
            invoked(&row(1, 0)),
            ok(1),
            invoked(&row(2, 0)),
            ok(2),
            invoked(&row(3, 0)),
            info(3),
            invoked(&row(4, 1)),
            fail(4),
        ]
    }

    fn check(reads: Vec<Event>) -> Verdict {
        let mut events = writes();
        events.extend(reads);
        verdict(&History::from_events(events))
    }

    #[rstest]
    #[case::info_absent(vec![read(0, &[row(1, 0), row(2, 0)]), read(1, &[])], "recovered 0 (info but present), info and absent 1")]
    #[case::info_recovered(vec![read(0, &[row(1, 0), row(2, 0), row(3, 0)]), read(1, &[])], "recovered 1 (info but present)")]
    #[case::only_last_read_counts(
        vec![read(0, &[]), read(0, &[row(1, 0), row(2, 0)]), read(1, &[])],
        "acknowledged 2, lost 0, corrupt 0, unexpected 0"
    )]
    fn every_acknowledged_row_read_back_passes(#[case] reads: Vec<Event>, #[case] expected: &str) {
        let v = check(reads);
        assert!(v.is_pass(), "{v}");
        assert!(
            v.to_string().contains(expected),
            "wanted {expected:?} in {v}"
        );
        assert!(v.to_string().contains("fail 1"), "{v}");
    }

    fn tampered(f: impl FnOnce(&mut Row)) -> Row {
        let mut r = row(2, 0);
        f(&mut r);
        r
    }

    #[rstest]
    #[case::lost(
        vec![read(0, &[row(1, 0)]), read(1, &[])],
        "lost (acknowledged, not read back): row 2 (ordinal 0, pod uid u0, invoked at seq 2, ok at seq 3) is missing from the read of ordinal 0"
    )]
    #[case::payload_changed(
        vec![read(0, &[row(1, 0), tampered(|r| r.payload = "other".into())]), read(1, &[])],
        "corrupt: row 2: read from ordinal 0 (pod mysql-0, uid u0) at seq 8 with a checksum that does not match its contents"
    )]
    #[case::consistent_but_different_payload(
        vec![read(0, &[row(1, 0), tampered(|r| { r.payload = "other".into(); r.checksum = row_checksum(2, 0, "other"); })]), read(1, &[])],
        "with a different payload, checksum"
    )]
    #[case::never_invoked(
        vec![read(0, &[row(1, 0), row(2, 0), row(99, 0)]), read(1, &[])],
        "unexpected: row 99 read from ordinal 0 (pod mysql-0, uid u0) at seq 8 was never invoked"
    )]
    #[case::refused_but_present(
        vec![read(0, &[row(1, 0), row(2, 0)]), read(1, &[row(4, 1)])],
        "unexpected: row 4 (ordinal 1, pod uid u1, invoked at seq 6, fail at seq 7: ERROR 1062: duplicate) was refused"
    )]
    #[case::read_from_another_ordinal(
        vec![read(0, &[row(1, 0)]), read(1, &[row(2, 0)])],
        "corrupt: row 2: row 2 (ordinal 0, pod uid u0, invoked at seq 2, ok at seq 3) was read from ordinal 1"
    )]
    fn violations_are_named_and_counted(#[case] reads: Vec<Event>, #[case] expected: &str) {
        let v = check(reads);
        assert!(v.is_fail(), "{v}");
        assert!(
            v.evidence()[0].starts_with("invoked 4, acknowledged 2, lost "),
            "{v}"
        );
        assert!(
            v.evidence().iter().any(|e| e.contains(expected)),
            "wanted {expected:?} in {v}"
        );
    }

    #[test]
    fn counts_lost_rows_beyond_the_listing() {
        let mut events = Vec::new();
        for id in 1..=25 {
            events.push(invoked(&row(id, 0)));
            events.push(ok(id));
        }
        events.push(read(0, &[]));
        let result = no_lost_writes(&History::from_events(events));
        assert_eq!(result.check, "no lost writes");
        let v = result.verdict;
        assert!(v.evidence()[0].contains("acknowledged 25, lost 25"), "{v}");
        assert!(
            v.evidence()
                .last()
                .expect("evidence")
                .ends_with("... and 5 more"),
            "{v}"
        );
    }

    #[rstest]
    #[case::ordinal_never_read(vec![read(1, &[])], "ordinal 0 has acknowledged writes but was never read")]
    #[case::acknowledged_after_the_last_read(
        vec![read(0, &[row(1, 0), row(2, 0)]), read(1, &[]), invoked(&row(5, 0)), ok(5)],
        "row 5 (ordinal 0, pod uid u0, invoked at seq 10, ok at seq 11) was acknowledged after the last read of ordinal 0 (seq 8)"
    )]
    #[case::outcome_without_invocation(
        vec![read(0, &[row(1, 0), row(2, 0)]), read(1, &[]), ok(77)],
        "outcome at seq 10 for row 77, which was never invoked"
    )]
    fn undecidable_histories_are_unknown(#[case] tail: Vec<Event>, #[case] expected: &str) {
        let v = check(tail);
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string().contains(expected),
            "wanted {expected:?} in {v}"
        );
    }

    #[test]
    fn no_writes_is_unknown() {
        assert!(verdict(&History::from_events([read(0, &[])])).is_unknown());
    }

    #[rstest]
    #[case::ok_then_info(
        info(2),
        "recording defect: row 2 has a second outcome, info at seq 10: connection reset after \
         row 2 (ordinal 0, pod uid u0, invoked at seq 2, ok at seq 3)"
    )]
    #[case::ok_then_fail(
        fail(1),
        "recording defect: row 1 has a second outcome, fail at seq 10: ERROR 1062: duplicate \
         after row 1 (ordinal 0, pod uid u0, invoked at seq 0, ok at seq 1)"
    )]
    #[case::info_then_ok(
        ok(3),
        "recording defect: row 3 has a second outcome, ok at seq 10 after row 3 (ordinal 0, pod \
         uid u0, invoked at seq 4, info at seq 5: connection reset)"
    )]
    #[case::ok_twice(
        ok(1),
        "recording defect: row 1 has a second outcome, ok at seq 10 after row 1 (ordinal 0, pod \
         uid u0, invoked at seq 0, ok at seq 1)"
    )]
    #[case::invoked_twice(
        invoked(&row(2, 1)),
        "recording defect: row 2 was invoked again at seq 10 (pod uid u1) after row 2 (ordinal \
         0, pod uid u0, invoked at seq 2, ok at seq 3)"
    )]
    fn a_second_record_for_one_write_is_a_defect(#[case] second: Event, #[case] expected: &str) {
        // Every acknowledged row was read back: only the defect can fail it.
        let v = check(vec![read(0, &[row(1, 0), row(2, 0)]), read(1, &[]), second]);
        assert!(v.is_fail(), "{v}");
        assert!(
            v.evidence().iter().any(|e| e == expected),
            "wanted {expected:?} in {v}"
        );
    }

    #[test]
    fn no_acknowledged_write_is_unknown() {
        let events = vec![
            invoked(&row(1, 0)),
            info(1),
            invoked(&row(2, 0)),
            fail(2),
            read(0, &[]),
        ];
        let v = verdict(&History::from_events(events));
        assert!(v.is_unknown(), "{v}");
        assert!(
            v.to_string()
                .contains("none of the 2 writes invoked was acknowledged"),
            "{v}"
        );
    }

    #[test]
    fn a_refused_row_read_back_fails_even_without_acknowledged_writes() {
        let events = vec![invoked(&row(1, 0)), fail(1), read(0, &[row(1, 0)])];
        assert!(verdict(&History::from_events(events)).is_fail());
    }
}
