//! End-to-end StatefulSet conformance suites: `cargo test --test e2e`.
//!
//! Each module proves one promise of the source document against the target chosen by
//! `E2E_TARGET` (kind, an existing cluster, or kube-sim). Every test runs in its own fresh
//! namespace, records what it observes in a History, and judges it with pure checkers.

mod backup;
mod common;
mod identity;
mod retention;
mod scaling;
mod survival;
mod update;

/// `cargo test --test e2e` must run every case `sts-conformance run` runs: each case of the
/// catalogue is named by a test of these modules.
#[test]
fn every_catalogue_case_has_a_test() {
    let sources = [
        include_str!("backup.rs"),
        include_str!("identity.rs"),
        include_str!("retention.rs"),
        include_str!("scaling.rs"),
        include_str!("survival.rs"),
        include_str!("update.rs"),
    ]
    .concat();
    let missing: Vec<String> = harness::suites::catalogue()
        .into_iter()
        .map(|case| case.name)
        .filter(|name| !sources.contains(&format!("\"{name}\"")))
        .collect();
    assert!(missing.is_empty(), "cases without an e2e test: {missing:?}");
}
