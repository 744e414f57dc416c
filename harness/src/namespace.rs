//! TODO(namespace)
