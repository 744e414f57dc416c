//! TODO(observe)
