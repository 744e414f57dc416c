//! What a hollow node needs from its network: its own address, pod addresses, and a way to
//! run a process inside its network namespace. `netns::NodeNetwork` provides it on this
//! machine; tests may use any other implementation.

use std::net::Ipv4Addr;

/// A node's pod network.
pub trait PodNet: Send + Sync + 'static {
    /// The node's InternalIP.
    fn node_ip(&self) -> Ipv4Addr;
    /// A free pod address on this node (the pod's sandbox), or why there is none.
    fn allocate_pod_ip(&self) -> Result<Ipv4Addr, String>;
    /// Gives a pod address back.
    fn release_pod_ip(&self, ip: Ipv4Addr);
    /// Makes `command` run inside the node's network namespace.
    fn enter(&self, command: &mut std::process::Command) -> Result<(), String>;
}

impl PodNet for crate::netns::NodeNetwork {
    fn node_ip(&self) -> Ipv4Addr {
        crate::netns::NodeNetwork::node_ip(self)
    }

    fn allocate_pod_ip(&self) -> Result<Ipv4Addr, String> {
        crate::netns::NodeNetwork::allocate_pod_ip(self).map_err(|e| crate::report(&e))
    }

    fn release_pod_ip(&self, ip: Ipv4Addr) {
        if let Err(e) = crate::netns::NodeNetwork::release_pod_ip(self, ip) {
            tracing::warn!(node = %self.node_name(), %ip, error = %crate::report(&e), "pod address not released");
        }
    }

    fn enter(&self, command: &mut std::process::Command) -> Result<(), String> {
        crate::netns::NodeNetwork::enter(self, command).map_err(|e| crate::report(&e))
    }
}
