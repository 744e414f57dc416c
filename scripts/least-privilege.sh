#!/usr/bin/env bash
# Least privilege, proven against the real API server (the upstream target, RBAC on):
#  1. the node-chaos cases pass through the kubeconfig target with a ServiceAccount token bound
#     only to manifests/certification/rbac.yaml (every other case runs with the same
#     permissions as a real pod, the certification Job of scripts/certify-local.sh, which has
#     no node commands and skips these);
#  2. with any one rule of that ClusterRole removed, a test that needs it fails with the API
#     server's forbidden message naming the resource.
# It also checks the certification manifests with `kubectl apply --dry-run=server`.
# Needs root (the upstream target's network namespaces) and the built official binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/upstream.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "least-privilege: SKIPPED: not root; the upstream target creates network namespaces" >&2
  exit 0
fi
bash scripts/build-upstream.sh >/dev/null
kubectl="$PWD/.upstream/bin/kubectl"
cargo build -q --locked -p kube-upstream --bin kube-upstream
e2e=$(cargo test -q --locked --test e2e --no-run --message-format=json |
  grep '"kind":\["test"\]' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -1)
[ -x "$e2e" ] || { echo "least-privilege: could not build the e2e test binary" >&2; exit 1; }

dir=$(mktemp -d)
up_pid=""
stop() {
  upstream_stop
  rm -rf "$dir"
}
trap stop EXIT
upstream_start "$dir"

admin() { "$kubectl" --kubeconfig "$dir/admin" "$@"; }
# The real nodes carry a locally built MariaDB image (no registry): the suites use it, as the
# upstream target does, unless E2E_IMAGE says otherwise.
[ -z "$node_image" ] || export E2E_IMAGE="${E2E_IMAGE:-$node_image}"
# The certification manifests (not the Sonobuoy plugin, which Sonobuoy reads) are valid for
# the real API server.
admin apply --dry-run=server -f manifests/certification/namespace.yaml
admin apply -f manifests/certification/namespace.yaml >/dev/null
admin apply --dry-run=server -f manifests/certification/serviceaccount.yaml \
  -f manifests/certification/rbac.yaml -f manifests/certification/job.yaml
admin apply -f manifests/certification/namespace.yaml -f manifests/certification/serviceaccount.yaml \
  -f manifests/certification/rbac.yaml >/dev/null
token=$(admin -n sts-conformance create token sts-conformance --duration=2h)
server=$(admin config view --raw -o jsonpath='{.clusters[0].cluster.server}')
admin config view --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' |
  base64 -d >"$dir/ca.crt"
sa() { "$kubectl" --kubeconfig "$dir/sa" "$@"; }
sa config set-cluster upstream --server="$server" --certificate-authority="$dir/ca.crt" --embed-certs >/dev/null
sa config set-credentials sts-conformance --token="$token" >/dev/null
sa config set-context sts-conformance --cluster=upstream --user=sts-conformance >/dev/null
sa config use-context sts-conformance >/dev/null

# As the in-cluster Job does: pods are reached at their IPs (this machine routes to them).
export KUBECONFIG="$dir/sa" E2E_TARGET=kubeconfig E2E_STORAGE_CLASS=network E2E_POD_REACH=pod-ip
export E2E_NODE_KILL_CMD="curl -fsS -X POST $control/sim/v1/nodes/{node}/stop"
export E2E_NODE_START_CMD="curl -fsS -X POST $control/sim/v1/nodes/{node}/start"
export E2E_CONTAINER_CRASH_CMD="curl -fsS -X POST $control/sim/v1/namespaces/{namespace}/pods/{pod}/crash"
reports="${E2E_REPORT_DIR:-reports}/least-privilege"
rc=0

echo "least-privilege: the node-chaos cases with only manifests/certification/rbac.yaml's permissions"
if ! E2E_REPORT_DIR="$reports/full" "$e2e" --test-threads=2 container_crash node_kill moving_off_a_dead_node \
  >"$dir/full.log" 2>&1; then
  echo "FAIL: the node-chaos cases do not pass with the certification RBAC:" >&2
  grep -E '^test .* FAILED|forbidden' "$dir/full.log" | head -20 >&2
  rc=1
else
  grep -E '^test result' "$dir/full.log"
fi

# Each rule (by its first resource, or by resource:verbs where one resource has two rules),
# and a test that cannot work without it.
declare -A needs=(
  [namespaces]="identity::"
  [services]="identity::"
  [statefulsets]="identity::"
  [statefulsets/scale]="three_to_five_via_scale_subresource"
  [controllerrevisions]="rolling_update_replaces_pods_highest_ordinal_first"
  [endpointslices]="identity::"
  [pods/exec]="identity::"
  [nodes]="identity::"
  [persistentvolumes]="identity::"
  [storageclasses]="identity::"
  [storageclasses:create,delete]="retained_volumes_outlive_their_claims"
  [persistentvolumes:patch,delete]="retained_volumes_outlive_their_claims"
)
# Rules no test here can prove needed, and why (none today: every rule is proven by removal).
declare -A unprovable=()
rules=$(admin get clusterrole sts-conformance -o jsonpath='{range .rules[*]}{.resources}{" "}{.verbs}{"\n"}{end}')
index=0
while IFS=' ' read -r resources verbs; do
  first=$(sed 's/^\["\([^"]*\)".*/\1/' <<<"$resources")
  names=$(tr -d '[]"' <<<"$resources" | tr ',' '|')
  verbs=$(tr -d '[]"' <<<"$verbs")
  test_filter="${needs[$first:$verbs]:-${needs[$first]:-}}"
  if [ -n "${unprovable[$first]:-}" ]; then
    echo "least-privilege: rule $index ($resources) not provable here: ${unprovable[$first]}"
    index=$((index + 1)); continue
  fi
  if [ -z "$test_filter" ]; then
    echo "FAIL: rule $index ($resources) has no test that needs it: drop it from rbac.yaml or name its test here" >&2
    rc=1; index=$((index + 1)); continue
  fi
  admin apply -f manifests/certification/rbac.yaml >/dev/null
  admin patch clusterrole sts-conformance --type=json -p "[{\"op\":\"remove\",\"path\":\"/rules/$index\"}]" >/dev/null
  log="$dir/rule-$index.log"
  if E2E_REPORT_DIR="$reports/without-rule-$index" "$e2e" --test-threads=2 "$test_filter" >"$log" 2>&1; then
    echo "FAIL: without rule $index ($resources) '$test_filter' still passes" >&2
    rc=1
  elif grep -qE "forbidden.*resource \\\\?\"($names)\\\\?\"" "$log"; then
    echo "least-privilege: without rule $index ($resources): '$test_filter' fails, forbidden on $(grep -oE "resource \\\\?\"($names)\\\\?\"" "$log" | head -1)"
  else
    echo "FAIL: without rule $index ($resources) '$test_filter' fails, but not with a forbidden message naming $names:" >&2
    grep -E 'FAIL|Error' "$log" | head -5 >&2
    rc=1
  fi
  index=$((index + 1))
done <<<"$rules"
admin apply -f manifests/certification/rbac.yaml >/dev/null
exit "$rc"
