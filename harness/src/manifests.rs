//! TODO(manifests)
