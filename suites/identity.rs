//! Stable, unique ordinal identity (cases in `harness::suites::identity`).

use rstest::rstest;
use tracing_test::traced_test;

use crate::common;

#[rstest]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn documented_statefulset_has_stable_ordinal_identity() -> anyhow::Result<()> {
    common::run_case("identity").await?;
    assert!(
        logs_contain("step seq ") && logs_contain(": apply Service/mysql, StatefulSet/mysql"),
        "each step is logged as it happens"
    );
    Ok(())
}
