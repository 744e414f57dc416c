//! kube-sim: a Kubernetes API test double for the StatefulSet conformance harness.
//!
//! Test infrastructure only, never a certification target. It serves enough of the
//! Kubernetes API for kube-rs and kubectl, runs the StatefulSet controller's rules over
//! simulated nodes, and runs each pod as a real `mariadbd` process.

pub mod api;
pub mod config;
pub mod controllers;
pub mod errors;
pub mod kubeconfig;
pub mod kubelet;
pub mod mariadb;
pub mod process;
pub mod runtime;
pub mod store;
