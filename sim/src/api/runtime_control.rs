//! The real runtime behind the control endpoints.

use super::control::{ControlError, ControlFuture, NodeControl};
use crate::runtime::{RuntimeError, RuntimeHandle};

fn control_error(e: RuntimeError) -> ControlError {
    ControlError {
        not_found: e.is_not_found(),
        message: crate::errors::chain(&e),
    }
}

impl NodeControl for RuntimeHandle {
    fn stop_node<'a>(&'a self, name: &'a str) -> ControlFuture<'a> {
        Box::pin(async move {
            RuntimeHandle::stop_node(self, name)
                .await
                .map_err(control_error)
        })
    }

    fn start_node<'a>(&'a self, name: &'a str) -> ControlFuture<'a> {
        Box::pin(async move {
            RuntimeHandle::start_node(self, name)
                .await
                .map_err(control_error)
        })
    }

    fn crash_pod<'a>(&'a self, namespace: &'a str, name: &'a str) -> ControlFuture<'a> {
        Box::pin(async move {
            RuntimeHandle::crash_pod(self, namespace, name)
                .await
                .map_err(control_error)
        })
    }
}
