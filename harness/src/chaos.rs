//! TODO(chaos)
