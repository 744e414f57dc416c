#!/usr/bin/env bash
# The e2e suites against the official Kubernetes control plane (E2E_TARGET=upstream): etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler and CoreDNS built from the pinned Go
# modules (scripts/build-upstream.sh), with three real nodes (kubelet, containerd, runc, CNI,
# kube-proxy) running the MariaDB image built by scripts/build-images.sh. Twice: on the default StorageClass `standard` (node-bound, like kind's
# local-path), then the out-of-service case on `network` (PVs no node owns), so no test that
# runs on kube-sim is skipped here. Needs root (network namespaces) and the built binaries.
# Extra arguments go to the test binary.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "e2e-upstream: SKIPPED: not root; the upstream target creates network namespaces for its pods (run as root, or use E2E_TARGET=sim)" >&2
  exit 0
fi
bash scripts/build-upstream.sh
bash scripts/build-images.sh
reports="${E2E_REPORT_DIR:-reports}"
export E2E_TARGET=upstream
rc=0
E2E_REPORT_DIR="$reports/upstream" cargo test --workspace --locked --test e2e -- "$@" || rc=$?
E2E_REPORT_DIR="$reports/upstream-network" E2E_STORAGE_CLASS=network \
  cargo test --workspace --locked --test e2e -- moving_off_a_dead_node "$@" || rc=$?
exit "$rc"
