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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn retained_volumes_outlive_their_claims_and_restore_every_row() -> anyhow::Result<()> {
    common::run_case("reclaim-retain-and-restore").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn volumes_follow_the_run_class_reclaim_policy() -> anyhow::Result<()> {
    common::run_case("reclaim-policy-of-the-run-class").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn retention_policy_when_scaled_retain_when_deleted_retain() -> anyhow::Result<()> {
    common::run_case("retention-policy-scaled-retain-deleted-retain").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn retention_policy_when_scaled_retain_when_deleted_delete() -> anyhow::Result<()> {
    common::run_case("retention-policy-scaled-retain-deleted-delete").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn retention_policy_when_scaled_delete_when_deleted_retain() -> anyhow::Result<()> {
    common::run_case("retention-policy-scaled-delete-deleted-retain").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn retention_policy_when_scaled_delete_when_deleted_delete() -> anyhow::Result<()> {
    common::run_case("retention-policy-scaled-delete-deleted-delete").await
}
