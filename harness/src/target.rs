//! TODO(target)
