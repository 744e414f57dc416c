//! TODO(portforward)
