//! The backup and restore drill (case in `harness::suites::backup`).

use tracing_test::traced_test;

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn a_backup_taken_under_writers_restores_every_acknowledged_row() -> anyhow::Result<()> {
    common::run_case("backup-restore-drill").await
}
