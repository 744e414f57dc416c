//! Pure checkers over a History.
//!
//! Each checker is a function of the recorded entries (and what the test expects) that
//! returns a [`Verdict`]: `Pass` with a one-line summary, `Fail` with evidence naming the
//! violation (pods and PVCs by name and uid, events by seq, rows by id), or `Unknown`
//! with the reason the history cannot decide. Checkers never talk to a cluster, and
//! order by observation (`seq`), never by timestamps (`creationTimestamp` has a
//! one-second granularity).

mod at_most_one;
mod dns;
mod identity;
mod reclaim;
mod recreation;
mod restore;
mod retention;
mod revisions;
mod rollout;
mod scaling;
mod stopped;
mod writes;

pub use at_most_one::at_most_one;
pub use dns::{DNS_CHECK, dns_resolution};
pub use identity::{IdentityExpect, ordinal_identity};
pub use reclaim::{
    RECLAIM_DWELL, reclaim_finding, reclaim_policy_followed, volumes_restored, volumes_retained,
};
pub use recreation::{Recreation, identity_after_recreation};
pub use restore::{backup_consistent, rows_restored, rows_restored_from_backup};
pub use retention::{pvc_deleted, pvc_deleted_with_set, pvc_fresh, pvc_kept, pvc_retention};
pub use revisions::revisions_consistent;
pub use rollout::{ON_DELETE_DWELL, RolloutExpect, Strategy, rollout};
pub use scaling::{
    ordered_scale_up, ordered_scale_up_from, parallel_scale, reverse_scale_down,
    reverse_scale_down_from,
};
pub use stopped::{STOP_BOUND, deleted_pods_stop_serving};
pub use writes::no_lost_writes;
