//! The backup and restore drill: a consistent logical backup of every ordinal taken while
//! writers run, the data destroyed, a fresh StatefulSet restored from the backup files.

use futures::FutureExt;

use crate::scenario::TestEnv;
use crate::suites::{Case, Checks, Exclusive, Promise};

/// Two ordinals: each is backed up and restored on its own.
const REPLICAS: u32 = 2;
/// Acknowledged writes each writer makes before the backup, and again during and after it.
const ACKS: u64 = 10;

pub(super) fn cases() -> Vec<Case> {
    vec![Case::new(
        "backup-restore-drill",
        Promise::BackupRestore,
        Exclusive::No,
        |env| drill(env).boxed(),
    )]
}

/// MUST: a consistent backup of each ordinal, taken through the workload's MySQL
/// connection while a writer runs, holds every row acknowledged before its snapshot began;
/// after the StatefulSet and its claims are deleted, a fresh StatefulSet restored from the
/// backup files (and restarted) holds every such row in its ordinal, intact, and no row
/// that was never written. PVs a Retain class kept are removed at the end.
async fn drill(env: &TestEnv) -> Checks {
    let drilled = env.backup_drill(REPLICAS, ACKS).await;
    let cleaned = env.remove_retained(&env.observed_volumes(), None).await;
    let drill = drilled?;
    cleaned?;
    env.note(format!(
        "backup drill: the backups are in {}",
        env.backup_dir().display()
    ));
    let ordinals: Vec<u32> = (0..REPLICAS).collect();
    let entries = env.entries();
    Ok(vec![
        checks::backup_consistent(&entries, &ordinals),
        checks::rows_restored_from_backup(&entries, drill.read_from, &ordinals),
    ])
}
