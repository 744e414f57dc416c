//! TODO(workload)
