//! TODO(wait)
