//! The official Kubernetes control plane on this machine, with real nodes.
//!
//! `controlplane` starts etcd → kube-apiserver → kube-controller-manager → kube-scheduler
//! (official binaries built by scripts/build-upstream.sh) with a PKI from `pki`; `netns` gives
//! each node a network namespace and routes its pods' block; `dns` runs CoreDNS; `realnode`
//! runs the official kubelet, containerd, runc, CNI and kube-proxy per node; `provisioner` is
//! a local-path dynamic provisioner; `control` serves node stop/start and container crash to
//! the harness.

pub mod control;
pub mod controlplane;
pub mod dns;
pub mod netns;
pub mod pki;
pub mod provisioner;
pub mod realnode;

/// An error and its `source()` chain on one line, `outer: inner: ...` (messages never
/// repeat their source, so this is the one place the chain is printed): kube-sim's printer.
pub use kube_sim::errors::chain as report;
