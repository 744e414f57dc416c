//! Rows after a restore (from retained volumes or from a backup), and the backup itself:
//! every write acknowledged by the position (the restore's, or each ordinal's backup's) is
//! in the rows judged (a backup's, or the first read of its ordinal at or after
//! `read_from`), intact, and none of those rows is invented (never attempted, refused, or
//! not what was written).
//!
//! Writes acknowledged after the position may be present or not (a backup taken while a
//! writer runs may hold a few more rows than its position promises; they must still be
//! rows that were written).

use std::collections::BTreeMap;

use crate::history::{Backup, Entry, Event, Row, WriteEvent, row_checksum};
use crate::verdict::{CheckResult, Verdict};

/// What the history says of one row id.
struct Written<'a> {
    row: &'a Row,
    /// Seq of the `ok`, if acknowledged.
    acked: Option<u64>,
    refused: bool,
}

/// Every row the workload attempted, by id.
fn written(entries: &[Entry]) -> BTreeMap<u64, Written<'_>> {
    let mut written: BTreeMap<u64, Written<'_>> = BTreeMap::new();
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
            _ => {}
        }
    }
    written
}

/// One ordinal's rows as judged: where they were seen, by which pod, at which seq.
struct Seen<'a> {
    /// `restore` or `backup`: what lost or invented a row.
    stage: &'static str,
    /// `read` or `backup`: what the rows were.
    source: &'static str,
    ordinal: u32,
    pod: &'a str,
    pod_uid: &'a str,
    seq: u64,
    rows: &'a [Row],
}

/// Rows promised by the position and found, and later (or unacknowledged) rows found.
#[derive(Default)]
struct Tally {
    promised: usize,
    extra: usize,
}

/// Judges one ordinal's rows against the writes acknowledged by `position`.
fn judge(
    written: &BTreeMap<u64, Written<'_>>,
    position: u64,
    seen: &Seen<'_>,
    tally: &mut Tally,
    evidence: &mut Vec<String>,
) {
    let Seen {
        stage,
        source,
        ordinal,
        pod,
        pod_uid,
        seq,
        rows,
    } = *seen;
    let by_id: BTreeMap<u64, &Row> = rows.iter().map(|r| (r.id, r)).collect();
    for w in written.values().filter(|w| w.row.ordinal == ordinal) {
        match (w.acked, by_id.get(&w.row.id)) {
            (Some(ack), None) if ack <= position => evidence.push(format!(
                "lost in the {stage}: row {} (ordinal {ordinal}, acknowledged at seq {ack}, by position seq {position}) is missing from the {source} of ordinal {ordinal} (pod {pod}, uid {pod_uid}) at seq {seq}",
                w.row.id
            )),
            (Some(ack), Some(_)) if ack <= position => tally.promised += 1,
            _ => {}
        }
    }
    let place = match source {
        "read" => format!("read from ordinal {ordinal} at seq {seq}"),
        _ => format!("in the {source} of ordinal {ordinal} at seq {seq}"),
    };
    for row in rows {
        let intact = row.checksum == row_checksum(row.id, row.ordinal, &row.payload);
        match written.get(&row.id) {
            None => evidence.push(format!(
                "invented in the {stage}: row {} {place} was never written",
                row.id
            )),
            Some(w) if w.refused => evidence.push(format!(
                "invented in the {stage}: row {} {place} was refused by the server when written",
                row.id
            )),
            Some(w)
                if !intact
                    || row.ordinal != ordinal
                    || w.row.payload != row.payload
                    || w.row.ordinal != row.ordinal =>
            {
                evidence.push(format!(
                    "corrupt in the {stage}: row {} {place} (ordinal {}, checksum {}) is not the row written (ordinal {}, checksum {})",
                    row.id, row.ordinal, row.checksum, w.row.ordinal, w.row.checksum
                ))
            }
            Some(w) if w.acked.is_none_or(|ack| ack > position) => tally.extra += 1,
            Some(_) => {}
        }
    }
}

/// The first read of each of `ordinals` at or after `read_from`, as [`Seen`] rows.
fn first_reads<'a>(
    entries: &'a [Entry],
    read_from: u64,
    ordinals: &[u32],
) -> BTreeMap<u32, Seen<'a>> {
    let mut reads = BTreeMap::new();
    for entry in entries {
        if let Event::Read(read) = &entry.event
            && entry.seq >= read_from
            && ordinals.contains(&read.ordinal)
        {
            reads.entry(read.ordinal).or_insert(Seen {
                stage: "restore",
                source: "read",
                ordinal: read.ordinal,
                pod: &read.pod,
                pod_uid: &read.pod_uid,
                seq: entry.seq,
                rows: &read.rows,
            });
        }
    }
    reads
}

/// The last backup of each ordinal recorded before `before`.
fn backups(entries: &[Entry], before: u64) -> BTreeMap<u32, (u64, &Backup)> {
    entries
        .iter()
        .take_while(|e| e.seq < before)
        .filter_map(|e| match &e.event {
            Event::Backup(backup) => Some((backup.ordinal, (e.seq, backup))),
            _ => None,
        })
        .collect()
}

/// Judges each of `ordinals`' rows (`rows_of`: the position they must hold and the rows,
/// or why that ordinal cannot be judged); `nothing` is the reason for Unknown when no
/// promised row was found and nothing else was said.
fn judge_ordinals<'a>(
    entries: &[Entry],
    ordinals: &[u32],
    mut rows_of: impl FnMut(u32) -> Result<(u64, Seen<'a>), String>,
    nothing: String,
    summary: impl FnOnce(&Tally) -> String,
    check: &'static str,
) -> CheckResult {
    let written = written(entries);
    let mut evidence = Vec::new();
    let mut unknowns = Vec::new();
    let mut tally = Tally::default();
    for &ordinal in ordinals {
        match rows_of(ordinal) {
            Ok((position, seen)) => judge(&written, position, &seen, &mut tally, &mut evidence),
            Err(why) => unknowns.push(why),
        }
    }
    if tally.promised == 0 && evidence.is_empty() && unknowns.is_empty() {
        unknowns.push(nothing);
    }
    CheckResult::new(
        check,
        Verdict::judge(evidence, unknowns, || summary(&tally)),
    )
}

/// Why an ordinal without a read at or after `read_from` was not judged.
fn not_read(ordinal: u32, read_from: u64) -> String {
    format!(
        "ordinal {ordinal} was not read back at or after seq {read_from}, so its rows were not judged"
    )
}

/// Rows acknowledged at or before `position` on `ordinals` are in each ordinal's first read
/// at or after `read_from`, intact; no row of those reads is invented.
pub fn rows_restored(
    entries: &[Entry],
    position: u64,
    read_from: u64,
    ordinals: &[u32],
) -> CheckResult {
    let mut reads = first_reads(entries, read_from, ordinals);
    judge_ordinals(
        entries,
        ordinals,
        |o| {
            let seen = reads.remove(&o).ok_or_else(|| not_read(o, read_from))?;
            Ok((position, seen))
        },
        format!(
            "no write to ordinals {ordinals:?} was acknowledged by seq {position}, so the restore proved nothing"
        ),
        |tally| {
            format!(
                "all {} rows acknowledged by seq {position} read back intact after seq {read_from}; {} later or unacknowledged rows present, none invented",
                tally.promised, tally.extra
            )
        },
        "restored rows",
    )
}

/// After a restore from backups: every row acknowledged by the position of its ordinal's
/// last backup taken before `read_from` is in that ordinal's first read at or after
/// `read_from`, intact; no row of those reads is invented.
pub fn rows_restored_from_backup(
    entries: &[Entry],
    read_from: u64,
    ordinals: &[u32],
) -> CheckResult {
    let taken = backups(entries, read_from);
    let mut reads = first_reads(entries, read_from, ordinals);
    let positions: Vec<String> = taken
        .iter()
        .filter(|(o, _)| ordinals.contains(o))
        .map(|(o, (_, b))| format!("ordinal {o} by seq {}", b.position))
        .collect();
    judge_ordinals(
        entries,
        ordinals,
        |o| {
            let (_, backup) = taken.get(&o).ok_or_else(|| {
                format!("ordinal {o} has no backup before seq {read_from}, so its restore was not judged")
            })?;
            let seen = reads.remove(&o).ok_or_else(|| not_read(o, read_from))?;
            Ok((backup.position, seen))
        },
        format!(
            "no write to ordinals {ordinals:?} was acknowledged by its backup's position, so the restore proved nothing"
        ),
        |tally| {
            format!(
                "all {} rows acknowledged by their backup's position ({}) read back intact after seq {read_from}; {} later or unacknowledged rows present, none invented",
                tally.promised,
                positions.join(", "),
                tally.extra
            )
        },
        "rows restored from the backup",
    )
}

/// Each of `ordinals`' last backup holds every row acknowledged by its position, intact,
/// and no invented row: a consistent snapshot taken while a writer ran.
pub fn backup_consistent(entries: &[Entry], ordinals: &[u32]) -> CheckResult {
    let taken = backups(entries, u64::MAX);
    judge_ordinals(
        entries,
        ordinals,
        |o| {
            let &(seq, backup) = taken
                .get(&o)
                .ok_or_else(|| format!("ordinal {o} has no backup, so it was not judged"))?;
            let seen = Seen {
                stage: "backup",
                source: "backup",
                ordinal: o,
                pod: &backup.pod,
                pod_uid: &backup.pod_uid,
                seq,
                rows: &backup.rows,
            };
            Ok((backup.position, seen))
        },
        format!(
            "no write to ordinals {ordinals:?} was acknowledged before its backup began, so the backup proved nothing"
        ),
        |tally| {
            format!(
                "the backups of ordinals {ordinals:?} hold all {} rows acknowledged before their snapshot began, intact; {} rows acknowledged during the backup or unacknowledged, none invented",
                tally.promised, tally.extra
            )
        },
        "backup holds every acknowledged row",
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

    /// Ordinal 0: rows 1, 2 acknowledged before its backup began (position seq 4), row 3
    /// during it; ordinal 1: row 5 before its backup began (position seq 11).
    fn backed_up(backup0: &[Row], backup1: &[Row]) -> Vec<Event> {
        vec![
            invoked(&row(1, 0)),
            ok(1),
            invoked(&row(2, 0)),
            ok(2),
            mark("backup of ordinal 0 begins"),
            invoked(&row(3, 0)),
            ok(3),
            backup(0, 4, backup0),
            invoked(&row(5, 1)),
            ok(5),
            invoked(&row(6, 1)),
            mark("backup of ordinal 1 begins"),
            ok(6),
            backup(1, 11, backup1),
            mark("restored"),
        ]
    }

    #[test]
    fn a_backup_with_every_row_by_its_position_passes_with_or_without_later_rows() {
        let events = backed_up(&[row(1, 0), row(2, 0)], &[row(5, 1), row(6, 1)]);
        let result = backup_consistent(&History::from_events(events), &[0, 1]);
        assert!(result.is_pass(), "{result}");
        let events = backed_up(&[row(1, 0), row(2, 0), row(3, 0)], &[row(5, 1)]);
        let result = backup_consistent(&History::from_events(events), &[0, 1]);
        assert!(result.is_pass(), "{result}");
    }

    #[test]
    fn a_backup_missing_or_inventing_a_row_fails_naming_it() {
        let mut other = row(5, 1);
        other.payload = "other".into();
        let events = backed_up(&[row(1, 0), row(99, 0)], &[other]);
        let result = backup_consistent(&History::from_events(events), &[0, 1]);
        assert_eq!(
            result.verdict.evidence(),
            [
                "lost in the backup: row 2 (ordinal 0, acknowledged at seq 3, by position seq 4) is missing from the backup of ordinal 0 (pod mysql-0, uid u0) at seq 7",
                "invented in the backup: row 99 in the backup of ordinal 0 at seq 7 was never written",
                &format!(
                    "corrupt in the backup: row 5 in the backup of ordinal 1 at seq 13 (ordinal 1, checksum {}) is not the row written (ordinal 1, checksum {})",
                    row_checksum(5, 1, "payload-5"),
                    row(5, 1).checksum
                ),
            ]
        );
    }

    #[test]
    fn a_missing_backup_is_unknown() {
        let events = backed_up(&[row(1, 0), row(2, 0)], &[row(5, 1)]);
        let result = backup_consistent(&History::from_events(events), &[0, 2]);
        assert!(result.verdict.is_unknown(), "{result}");
    }

    fn restored(read0: &[Row], read1: &[Row]) -> CheckResult {
        let mut events = backed_up(&[row(1, 0), row(2, 0)], &[row(5, 1), row(6, 1)]);
        events.push(read(0, read0));
        events.push(read(1, read1));
        rows_restored_from_backup(&History::from_events(events), 14, &[0, 1])
    }

    #[test]
    fn a_restore_judges_each_ordinal_by_its_own_backup_position() {
        let result = restored(&[row(1, 0), row(2, 0)], &[row(5, 1)]);
        assert!(result.is_pass(), "{result}");
        assert!(
            result
                .to_string()
                .contains("(ordinal 0 by seq 4, ordinal 1 by seq 11)"),
            "{result}"
        );
    }

    #[test]
    fn a_row_lost_in_the_restore_fails_naming_the_ordinal_and_the_row() {
        let result = restored(&[row(1, 0), row(2, 0)], &[]);
        assert_eq!(
            result.verdict.evidence(),
            [
                "lost in the restore: row 5 (ordinal 1, acknowledged at seq 9, by position seq 11) is missing from the read of ordinal 1 (pod mysql-1, uid u1) at seq 16"
            ]
        );
    }

    #[test]
    fn a_restore_without_a_backup_or_a_read_is_unknown() {
        let events = backed_up(&[row(1, 0), row(2, 0)], &[row(5, 1)]);
        let entries = History::from_events(events);
        assert!(
            rows_restored_from_backup(&entries, 14, &[0, 1])
                .verdict
                .is_unknown()
        );
        let mut events = backed_up(&[row(1, 0), row(2, 0)], &[row(5, 1)]);
        events.push(read(0, &[row(1, 0), row(2, 0)]));
        events.push(read(2, &[]));
        let result = rows_restored_from_backup(&History::from_events(events), 14, &[0, 2]);
        assert!(result.verdict.is_unknown(), "{result}");
    }
}
