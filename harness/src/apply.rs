//! TODO(apply)
