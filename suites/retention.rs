//! PVC retention across scale-down and scale-up (cases in `harness::suites::retention`).

use tracing_test::traced_test;

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn pvcs_are_kept_on_scale_down_and_rebound_on_scale_up() -> anyhow::Result<()> {
    common::run_case("retention-5-3-5").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn when_scaled_delete_policy_removes_pvcs_of_removed_ordinals() -> anyhow::Result<()> {
    common::run_case("retention-policy-when-scaled-delete").await
}
