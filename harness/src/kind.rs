//! TODO(kind)
