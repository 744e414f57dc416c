//! StatefulSet conformance harness.
//!
//! observe → record → check: targets give a cluster, `apply` puts the documented
//! manifests into a fresh namespace, `observe` and `workload` record into a
//! [`history::History`], `chaos` breaks things, and pure `checks` judge the history.

pub mod apply;
pub mod chaos;
pub mod checks;
pub mod cleanup;
pub mod errors;
pub mod history;
pub mod kind;
pub mod manifests;
pub mod namespace;
pub mod observe;
pub mod portforward;
pub mod process;
pub mod report;
pub mod runreport;
pub mod scenario;
pub mod simtarget;
pub mod storage;
pub mod target;
pub mod wait;
pub mod workload;
