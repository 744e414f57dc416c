//! Ordered scale-up and reverse-order scale-down (cases in `harness::suites::scaling`).

use rstest::rstest;
use tracing_test::traced_test;

use crate::common;

#[rstest]
#[case::three_to_five_via_scale_subresource("scale-up-3-to-5-ScaleSubresource")]
#[case::three_to_five_via_spec_patch("scale-up-3-to-5-SpecPatch")]
#[case::zero_to_three_via_scale_subresource("scale-up-0-to-3-ScaleSubresource")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn scale_up_creates_ordinals_in_order(#[case] name: &str) -> anyhow::Result<()> {
    common::run_case(name).await
}

#[rstest]
#[case::five_to_three_via_scale_subresource("scale-down-5-to-3-ScaleSubresource")]
#[case::five_to_one_via_spec_patch("scale-down-5-to-1-SpecPatch")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn scale_down_removes_ordinals_in_reverse_order(#[case] name: &str) -> anyhow::Result<()> {
    common::run_case(name).await
}
