//! Template updates, Parallel pod management and the start ordinal (cases in
//! `harness::suites::update`).

use tracing_test::traced_test;

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn rolling_update_replaces_pods_highest_ordinal_first() -> anyhow::Result<()> {
    common::run_case("update-rolling").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn partitioned_update_stops_at_the_partition_and_continues_when_lowered() -> anyhow::Result<()>
{
    common::run_case("update-partitioned").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn on_delete_replaces_only_deleted_pods() -> anyhow::Result<()> {
    common::run_case("update-on-delete").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn parallel_pod_management_keeps_names_claims_and_data() -> anyhow::Result<()> {
    common::run_case("parallel-scale").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn start_ordinal_numbers_pods_and_claims_from_it() -> anyhow::Result<()> {
    common::run_case("start-ordinal").await
}
