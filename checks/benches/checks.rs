//! What the checkers cost on long histories: a writer spread over five ordinals, every pod
//! replaced once mid-run (so at-most-one judges every acknowledged write against a
//! replacement), then a full read of each ordinal. `cargo bench -p checks --bench checks`
//! measures; `cargo test` runs each case once to prove it still runs.

use std::collections::BTreeMap;
use std::hint::black_box;

use checks::history::{
    Change, Connection, Entry, Event, History, PodState, ReadResult, Row, Snapshot, WriteEvent,
    row_checksum,
};
use checks::{at_most_one, no_lost_writes};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const ORDINALS: u32 = 5;

fn pod(ordinal: u32, generation: u32) -> PodState {
    let name = format!("mysql-{ordinal}");
    PodState {
        uid: format!("uid-{ordinal}-{generation}"),
        labels: BTreeMap::from([("app".into(), "mysql".into())]),
        phase: Some("Running".into()),
        ready: true,
        name,
        ..PodState::default()
    }
}

fn observed(change: Change, pod: PodState) -> Event {
    Event::Object {
        change,
        object: Snapshot::Pod(pod),
    }
}

fn row(id: u64, pod: &PodState, ordinal: u32) -> Row {
    let payload = format!("payload-{id:016x}");
    Row {
        id,
        ordinal,
        pod_uid: pod.uid.clone(),
        checksum: row_checksum(id, ordinal, &payload),
        payload,
    }
}

/// `writes` acknowledged writes, the pods replaced half way (each replacement connected
/// to), then one read per ordinal.
fn history(writes: u64) -> Vec<Entry> {
    let mut events = Vec::new();
    let mut serving: Vec<PodState> = (0..ORDINALS).map(|o| pod(o, 0)).collect();
    events.extend(
        serving
            .iter()
            .cloned()
            .map(|p| observed(Change::Applied, p)),
    );
    let mut written: Vec<Vec<Row>> = vec![Vec::new(); ORDINALS as usize];
    for id in 0..writes {
        if id == writes / 2 {
            for (ordinal, old) in serving.iter_mut().enumerate() {
                events.push(observed(Change::Deleted, old.clone()));
                *old = pod(ordinal as u32, 1);
                events.push(observed(Change::Applied, old.clone()));
                // The workload's handshake with the replacement: it serves from here on.
                events.push(Event::Connected(Connection {
                    ordinal: ordinal as u32,
                    pod: old.name.clone(),
                    pod_uid: old.uid.clone(),
                }));
            }
        }
        let ordinal = (id % u64::from(ORDINALS)) as u32;
        let row = row(id, &serving[ordinal as usize], ordinal);
        events.push(Event::Write(WriteEvent::Invoked { row: row.clone() }));
        events.push(Event::Write(WriteEvent::Ok { id }));
        written[ordinal as usize].push(row);
    }
    for (ordinal, rows) in written.into_iter().enumerate() {
        let pod = &serving[ordinal];
        events.push(Event::Read(ReadResult {
            ordinal: ordinal as u32,
            pod: pod.name.clone(),
            pod_uid: pod.uid.clone(),
            rows,
        }));
    }
    History::from_events(events)
}

fn checkers(c: &mut Criterion) {
    let mut group = c.benchmark_group("checks");
    group.sample_size(10);
    for writes in [1_000u64, 10_000, 100_000] {
        let entries = history(writes);
        group.bench_with_input(
            BenchmarkId::new("no_lost_writes", writes),
            &entries,
            |b, e| {
                b.iter(|| {
                    let result = no_lost_writes(black_box(e));
                    assert!(result.is_pass(), "{result:?}");
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("at_most_one", writes), &entries, |b, e| {
            b.iter(|| {
                let result = at_most_one(black_box(e), (0, u64::MAX));
                assert!(result.is_pass(), "{result:?}");
            })
        });
        group.bench_with_input(
            BenchmarkId::new("history_json", writes),
            &entries,
            |b, e| b.iter(|| serde_json::to_vec(black_box(e)).map(|v| v.len())),
        );
    }
    group.finish();
}

criterion_group!(benches, checkers);
criterion_main!(benches);
