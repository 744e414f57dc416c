#!/usr/bin/env bash
# The e2e suites through the kubeconfig target, the path vendors certify with: a kube-sim
# started here stands in for "an existing cluster", reached only through KUBECONFIG, with
# node and container chaos through the E2E_*_CMD templates (curl to the sim's control
# endpoints), exactly as a user would wire their own cluster. It uses the sim's `network`
# StorageClass (PVs not pinned to a node), so the case where a pod moves off a dead node
# marked out-of-service runs here; the sim-target pass uses node-bound storage like kind.
# Extra arguments go to the test binary. Needs a built kube-sim (cargo build -p kube-sim).
set -euo pipefail
cd "$(dirname "$0")/.."

sim="${CARGO_TARGET_DIR:-target}/debug/kube-sim"
[ -x "$sim" ] || { echo "e2e-kubeconfig: $sim not built (cargo build -p kube-sim)" >&2; exit 1; }
command -v curl >/dev/null || { echo "e2e-kubeconfig: curl is missing (apt-get install curl)" >&2; exit 1; }

dir=$(mktemp -d)
sim_pid=""
stop_sim() {
  if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap stop_sim EXIT

# stdin stays open on a fifo this shell holds: the sim exits when the shell does.
mkfifo "$dir/stdin"
"$sim" --listen 127.0.0.1:0 --kubeconfig "$dir/kubeconfig" --state-dir "$dir/state" \
  --exit-on-stdin-close <"$dir/stdin" >"$dir/stdout" 2>"$dir/stderr" &
sim_pid=$!
exec 9>"$dir/stdin"

url=""
for _ in $(seq 1 100); do
  url=$(grep -Eo 'http://127\.0\.0\.1:[0-9]+' "$dir/stdout" | head -n1 || true)
  [ -n "$url" ] && break
  kill -0 "$sim_pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "e2e-kubeconfig: kube-sim did not print its URL within 10 s; its stderr:" >&2
  cat "$dir/stderr" >&2
  exit 1
fi
echo "e2e-kubeconfig: kube-sim at $url, tests reach it only through KUBECONFIG"

export KUBECONFIG="$dir/kubeconfig"
export E2E_TARGET=kubeconfig
export E2E_NODE_KILL_CMD="curl -fsS -X POST $url/sim/v1/nodes/{node}/stop"
export E2E_NODE_START_CMD="curl -fsS -X POST $url/sim/v1/nodes/{node}/start"
export E2E_CONTAINER_CRASH_CMD="curl -fsS -X POST $url/sim/v1/namespaces/{namespace}/pods/{pod}/crash"
export E2E_STORAGE_CLASS="${E2E_STORAGE_CLASS:-network}"
export E2E_REPORT_DIR="${E2E_REPORT_DIR:-reports}/kubeconfig"
# --workspace resolves features as scripts/test.sh's workspace build did, so the e2e binary
# it built is reused instead of rebuilding harness and kube-sim (2 minutes on 2 cores).
cargo test --workspace --locked --test e2e -- "$@"
