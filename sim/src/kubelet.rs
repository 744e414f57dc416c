//! TODO(kubelet)
