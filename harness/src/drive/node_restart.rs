//! A killed node is started again whatever happens next: [`kill_node`] registers the
//! restart the moment the kill succeeds, so a step that fails between the kill and the
//! planned restart (a wait that times out, an API error, a panic) never leaves the node
//! dead for the tests that follow.
//!
//! The restart is held twice: by the returned [`NodeRestart`] (dropping it unstarted starts
//! the node at once) and by the process-wide cleanup registry (process exit, Ctrl-C).
//! [`NodeRestart::start`] is the planned restart; it withdraws both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::drive::chaos::{ChaosError, NodeChaos};
use crate::support::cleanup::{self, CleanupHandle};
use crate::support::detached;

/// How long the unplanned restart (drop or exit) may take before it is abandoned.
const UNPLANNED_START_TIMEOUT: Duration = Duration::from_secs(150);

/// A node this run killed and has not started again.
pub struct NodeRestart {
    chaos: Arc<dyn NodeChaos>,
    node: String,
    killed_at: Instant,
    pending: Option<CleanupHandle>,
}

impl std::fmt::Debug for NodeRestart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRestart")
            .field("node", &self.node)
            .field("pending", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}

/// The description under which the restart is registered (see `cleanup::pending`).
pub fn restart_description(node: &str) -> String {
    format!("start node {node} (killed by a test)")
}

/// Kills `node` abruptly ([`NodeChaos::kill_node`]) and, once that succeeded, registers its
/// restart before anything else can fail.
pub async fn kill_node(chaos: Arc<dyn NodeChaos>, node: &str) -> Result<NodeRestart, ChaosError> {
    chaos.kill_node(node).await?;
    let killed_at = Instant::now();
    let pending = {
        let chaos = chaos.clone();
        let node = node.to_owned();
        cleanup::register(restart_description(&node), move || {
            start_from_other_thread(chaos, node)
        })
    };
    Ok(NodeRestart {
        chaos,
        node: node.to_owned(),
        killed_at,
        pending: Some(pending),
    })
}

impl NodeRestart {
    pub fn node(&self) -> &str {
        &self.node
    }

    /// When the kill returned.
    pub fn killed_at(&self) -> Instant {
        self.killed_at
    }

    /// Whether the node still waits for its restart.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The planned restart: starts the node (once; later calls do nothing) and withdraws
    /// the registered one. A failed start stays registered, to be retried at drop or exit.
    pub async fn start(&mut self) -> Result<(), ChaosError> {
        if self.pending.is_none() {
            return Ok(());
        }
        self.chaos.start_node(&self.node).await?;
        if let Some(handle) = self.pending.take() {
            cleanup::forget(handle);
        }
        Ok(())
    }
}

impl Drop for NodeRestart {
    fn drop(&mut self) {
        if let Some(handle) = self.pending.take() {
            warn!(node = %self.node, "a killed node was not restarted by its test; starting it now");
            cleanup::run(handle);
        }
    }
}

/// The caller may be an async task being dropped (or the exit hook): start the node from a
/// fresh thread with its own runtime, bounded.
fn start_from_other_thread(chaos: Arc<dyn NodeChaos>, node: String) {
    let what = format!("start killed node {node}");
    let owned = node.clone();
    let work = move || async move {
        chaos
            .start_node(&owned)
            .await
            .map_err(|e| crate::support::errors::chain(&e))
    };
    match detached::run(
        &format!("start-{node}"),
        &what,
        UNPLANNED_START_TIMEOUT,
        work,
    ) {
        Ok(()) => info!(%node, "started the killed node"),
        Err(err) => {
            let err = crate::support::errors::chain(&err);
            warn!(%node, "{err}");
            eprintln!("sts-conformance: {err}");
        }
    }
}
