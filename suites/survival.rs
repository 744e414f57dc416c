//! Data survival under pod deletion, container crashes and node failure (cases in
//! `harness::suites::survival`).

use rstest::rstest;
use tracing_test::traced_test;

use crate::common;

#[rstest]
#[case::pod_delete_graceful_with_writer("survival-PodDeleteGraceful")]
#[case::pod_delete_force("survival-PodDeleteForce")]
#[case::container_crash("survival-ContainerCrash")]
#[case::node_kill("survival-NodeKill")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn acknowledged_rows_survive(#[case] name: &str) -> anyhow::Result<()> {
    common::run_case(name).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn acknowledged_rows_survive_a_pod_moving_off_a_dead_node() -> anyhow::Result<()> {
    common::run_case("survival-NodeLostPodMoves").await
}
