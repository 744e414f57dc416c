//! Acting on and watching a cluster through a `kube::Client`: the observer records every
//! change into the History, the workload writes and reads rows, chaos breaks pods and nodes,
//! waits block on watched conditions. Depends on `support` and the `checks` crate's History.

pub mod chaos;
pub mod conditions;
pub mod exec;
pub mod node_restart;
pub mod observe;
pub mod portforward;
pub mod wait;
pub mod workload;
