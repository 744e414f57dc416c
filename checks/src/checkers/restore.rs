//! Rows after a restore (from retained volumes or from a backup): every write acknowledged
//! by the restore's position is read back intact from its ordinal by the first read at or
//! after `read_from`, and nothing read back is invented (never attempted, refused, or not
//! what was written).
//!
//! Writes acknowledged after the position may be present or not (a backup taken while a
//! writer runs may hold a few more rows than its position promises; they must still be
//! rows that were written).

use std::collections::BTreeMap;

use crate::history::{Entry, Event, ReadResult, Row, WriteEvent, row_checksum};
use crate::verdict::{CheckResult, Verdict};

/// What the history says of one row id.
struct Written<'a> {
    row: &'a Row,
    /// Seq of the `ok`, if acknowledged.
    acked: Option<u64>,
    refused: bool,
}

/// Rows acknowledged at or before `position` on `ordinals` are in each ordinal's first read
/// at or after `read_from`, intact; no row of those reads is invented.
pub fn rows_restored(
    entries: &[Entry],
    position: u64,
    read_from: u64,
    ordinals: &[u32],
) -> CheckResult {
    let mut written: BTreeMap<u64, Written<'_>> = BTreeMap::new();
    let mut reads: BTreeMap<u32, (u64, &ReadResult)> = BTreeMap::new();
    for entry in entries {
        match &entry.event {
            Event::Write(WriteEvent::Invoked { row }) => {
                written.entry(row.id).or_insert(Written {
                    row,
                    acked: None,
                    refused: false,
                });
            }
            Event::Write(WriteEvent::Ok { id }) => {
                if let Some(w) = written.get_mut(id) {
                    w.acked.get_or_insert(entry.seq);
                }
            }
            Event::Write(WriteEvent::Fail { id, .. }) => {
                if let Some(w) = written.get_mut(id) {
                    w.refused = true;
                }
            }
            Event::Read(read) if entry.seq >= read_from && ordinals.contains(&read.ordinal) => {
                reads.entry(read.ordinal).or_insert((entry.seq, read));
            }
            _ => {}
        }
    }
    let mut evidence = Vec::new();
    let mut unknowns = Vec::new();
    let mut promised = 0usize;
    let mut extra = 0usize;
    for &ordinal in ordinals {
        let Some(&(read_seq, read)) = reads.get(&ordinal) else {
            unknowns.push(format!(
                "ordinal {ordinal} was not read back at or after seq {read_from}, so its rows were not judged"
            ));
            continue;
        };
        let seen: BTreeMap<u64, &Row> = read.rows.iter().map(|r| (r.id, r)).collect();
        for w in written.values().filter(|w| w.row.ordinal == ordinal) {
            match (w.acked, seen.get(&w.row.id)) {
                (Some(ack), None) if ack <= position => evidence.push(format!(
                    "lost in the restore: row {} (ordinal {ordinal}, acknowledged at seq {ack}, by position seq {position}) is missing from the read of ordinal {ordinal} (pod {}, uid {}) at seq {read_seq}",
                    w.row.id, read.pod, read.pod_uid
                )),
                (Some(ack), Some(_)) if ack <= position => promised += 1,
                _ => {}
            }
        }
        for row in &read.rows {
            let intact = row.checksum == row_checksum(row.id, row.ordinal, &row.payload);
            match written.get(&row.id) {
                None => evidence.push(format!(
                    "invented in the restore: row {} read from ordinal {ordinal} at seq {read_seq} was never written",
                    row.id
                )),
                Some(w) if w.refused => evidence.push(format!(
                    "invented in the restore: row {} read from ordinal {ordinal} at seq {read_seq} was refused by the server when written",
                    row.id
                )),
                Some(w)
                    if !intact
                        || row.ordinal != ordinal
                        || w.row.payload != row.payload
                        || w.row.ordinal != row.ordinal =>
                {
                    evidence.push(format!(
                        "corrupt in the restore: row {} read from ordinal {ordinal} at seq {read_seq} (ordinal {}, checksum {}) is not the row written (ordinal {}, checksum {})",
                        row.id, row.ordinal, row.checksum, w.row.ordinal, w.row.checksum
                    ))
                }
                Some(w) if w.acked.is_none_or(|ack| ack > position) => extra += 1,
                Some(_) => {}
            }
        }
    }
    if promised == 0 && evidence.is_empty() && unknowns.is_empty() {
        unknowns.push(format!(
            "no write to ordinals {ordinals:?} was acknowledged by seq {position}, so the restore proved nothing"
        ));
    }
    CheckResult::new(
        "restored rows",
        Verdict::judge(evidence, unknowns, || {
            format!(
                "all {promised} rows acknowledged by seq {position} read back intact after seq {read_from}; {extra} later or unacknowledged rows present, none invented"
            )
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use crate::testkit::*;

    /// Rows 1 and 2 acknowledged on ordinal 0 (position seq 4), row 3 acknowledged later.
    fn written() -> Vec<Event> {
        vec![
            invoked(&row(1, 0)),
            ok(1),
            invoked(&row(2, 0)),
            ok(2),
            mark("position"),
            invoked(&row(3, 0)),
            ok(3),
            invoked(&row(4, 0)),
            fail(4),
            mark("restored"),
        ]
    }

    fn judged(rows: &[Row]) -> CheckResult {
        let mut events = written();
        events.push(read(0, rows));
        rows_restored(&History::from_events(events), 4, 9, &[0])
    }

    #[test]
    fn every_row_by_the_position_back_passes_with_or_without_later_rows() {
        assert!(judged(&[row(1, 0), row(2, 0)]).is_pass());
        let with_later = judged(&[row(1, 0), row(2, 0), row(3, 0)]);
        assert!(with_later.is_pass(), "{with_later}");
    }

    #[test]
    fn a_missing_row_fails_naming_it() {
        let result = judged(&[row(1, 0)]);
        assert_eq!(
            result.verdict.evidence(),
            [
                "lost in the restore: row 2 (ordinal 0, acknowledged at seq 3, by position seq 4) is missing from the read of ordinal 0 (pod mysql-0, uid u0) at seq 10"
            ]
        );
    }

    #[test]
    fn invented_refused_and_corrupt_rows_fail() {
        let mut moved = row(2, 0);
        moved.payload = "other".into();
        let result = judged(&[row(1, 0), moved, row(4, 0), row(99, 0)]);
        let evidence = result.verdict.evidence().join("\n");
        assert!(
            evidence.contains("corrupt in the restore: row 2"),
            "{evidence}"
        );
        assert!(
            evidence.contains("row 4 read from ordinal 0 at seq 10 was refused"),
            "{evidence}"
        );
        assert!(
            evidence.contains("row 99 read from ordinal 0 at seq 10 was never written"),
            "{evidence}"
        );
    }

    #[test]
    fn an_ordinal_not_read_back_or_nothing_acknowledged_is_unknown() {
        let entries = History::from_events(written());
        assert!(rows_restored(&entries, 4, 9, &[0]).verdict.is_unknown());
        let mut events = written();
        events.push(read(0, &[]));
        let nothing = rows_restored(&History::from_events(events), 0, 9, &[0]);
        assert!(nothing.verdict.is_unknown(), "{nothing}");
    }
}
