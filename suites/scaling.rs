//! Ordered scale-up and reverse-order scale-down.

use harness::scenario::ScaleVia;
use rstest::rstest;
use tracing_test::traced_test;

use crate::common::{self, Exclusive};

/// MUST: with OrderedReady, scaling up creates ordinal i only after ordinals 0..i-1 are
/// Running and Ready (`kubectl scale` uses the scale subresource; a spec patch must behave
/// the same), and the result has the ordinal identity of the new size.
#[rstest]
#[case::three_to_five_via_scale_subresource(3, 5, ScaleVia::ScaleSubresource)]
#[case::three_to_five_via_spec_patch(3, 5, ScaleVia::SpecPatch)]
#[case::zero_to_three_via_scale_subresource(0, 3, ScaleVia::ScaleSubresource)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn scale_up_creates_ordinals_in_order(
    #[case] from: i32,
    #[case] to: i32,
    #[case] via: ScaleVia,
) -> anyhow::Result<()> {
    let test = format!("scale-up-{from}-to-{to}-{via:?}");
    common::run(&test, Exclusive::No, async |env| {
        env.deploy(from).await?;
        env.settle().await?;
        let start = env
            .history
            .mark(format!("scale {from} -> {to} via {via:?}"));
        env.scale(from, to, via).await?;
        env.settle().await?;
        let end = env.history.mark("scaled");
        let entries = env.entries();
        let results = vec![
            checks::ordered_scale_up(&entries, (start, end), &env.statefulset_name()),
            checks::ordinal_identity(&entries, &env.identity_expect(to as u32)),
        ];
        Ok(results)
    })
    .await
}

/// MUST: scaling down terminates the highest ordinal first, each pod fully gone before
/// the next begins, and keeps the PVCs of the removed ordinals (retention Retain).
#[rstest]
#[case::five_to_three_via_scale_subresource(5, 3, ScaleVia::ScaleSubresource)]
#[case::five_to_one_via_spec_patch(5, 1, ScaleVia::SpecPatch)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[traced_test]
async fn scale_down_removes_ordinals_in_reverse_order(
    #[case] from: i32,
    #[case] to: i32,
    #[case] via: ScaleVia,
) -> anyhow::Result<()> {
    let test = format!("scale-down-{from}-to-{to}-{via:?}");
    common::run(&test, Exclusive::No, async |env| {
        env.deploy(from).await?;
        env.settle().await?;
        let start = env
            .history
            .mark(format!("scale {from} -> {to} via {via:?}"));
        env.scale(from, to, via).await?;
        env.settle().await?;
        let end = env.history.mark("scaled");
        let entries = env.entries();
        let removed: Vec<u32> = (to as u32..from as u32).collect();
        let results = vec![
            checks::reverse_scale_down(&entries, (start, end), &env.statefulset_name()),
            checks::pvc_kept(&entries, start, end, &removed),
            checks::ordinal_identity(&entries, &env.identity_expect(to as u32)),
        ];
        Ok(results)
    })
    .await
}
