//! TODO(simtarget)
