//! Ordered scale-up and reverse-order scale-down.

use futures::FutureExt;

use crate::scenario::{ScaleVia, TestEnv};
use crate::suites::{Case, Checks, Exclusive, Promise};

pub(super) fn cases() -> Vec<Case> {
    let up = [
        (3, 5, ScaleVia::ScaleSubresource),
        (3, 5, ScaleVia::SpecPatch),
        (0, 3, ScaleVia::ScaleSubresource),
    ];
    let down = [
        (5, 3, ScaleVia::ScaleSubresource),
        (5, 1, ScaleVia::SpecPatch),
    ];
    let up = up.into_iter().map(|(from, to, via)| {
        Case::new(
            format!("scale-up-{from}-to-{to}-{via:?}"),
            Promise::OrderedScaling,
            Exclusive::No,
            move |env| scale_up(env, from, to, via).boxed(),
        )
    });
    let down = down.into_iter().map(|(from, to, via)| {
        Case::new(
            format!("scale-down-{from}-to-{to}-{via:?}"),
            Promise::OrderedScaling,
            Exclusive::No,
            move |env| scale_down(env, from, to, via).boxed(),
        )
    });
    up.chain(down).collect()
}

/// MUST: with OrderedReady, scaling up creates ordinal i only after ordinals 0..i-1 are
/// Running and Ready (`kubectl scale` uses the scale subresource; a spec patch must behave
/// the same), and the result has the ordinal identity of the new size.
async fn scale_up(env: &TestEnv, from: i32, to: i32, via: ScaleVia) -> Checks {
    env.deploy(from).await?;
    env.settle().await?;
    let start = env
        .history
        .mark(format!("scale {from} -> {to} via {via:?}"));
    env.scale(from, to, via).await?;
    env.settle().await?;
    let end = env.history.mark("scaled");
    let entries = env.entries();
    Ok(vec![
        checks::ordered_scale_up(&entries, (start, end), &env.statefulset_name()),
        checks::ordinal_identity(&entries, &env.identity_expect(to as u32)),
    ])
}

/// MUST: scaling down terminates the highest ordinal first, each pod fully gone before
/// the next begins, and keeps the PVCs of the removed ordinals (retention Retain).
async fn scale_down(env: &TestEnv, from: i32, to: i32, via: ScaleVia) -> Checks {
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
    Ok(vec![
        checks::reverse_scale_down(&entries, (start, end), &env.statefulset_name()),
        checks::pvc_kept(&entries, start, end, &removed),
        checks::ordinal_identity(&entries, &env.identity_expect(to as u32)),
    ])
}
