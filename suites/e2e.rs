//! End-to-end StatefulSet conformance suites: `cargo test --test e2e`.
//!
//! Each module proves one promise of the source document against the target chosen by
//! `E2E_TARGET` (kind, an existing cluster, or kube-sim). Every test runs in its own fresh
//! namespace, records what it observes in a History, and judges it with pure checkers.

mod common;
mod identity;
mod retention;
mod scaling;
mod survival;
mod update;
