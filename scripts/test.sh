#!/usr/bin/env bash
# The project's tests: unit and integration tests of every crate, the e2e suites against
# kube-sim, the self-test that proves every check can fail, the e2e suites through the
# kubeconfig target, the e2e suites against the official control plane (upstream), least
# privilege, and the certification Job and Sonobuoy plugin (certify-local).
# This is the README's test command and what .ci/run calls. Each phase prints its time.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$(date +%s)
phase_start=$start
phase() {
  local now
  now=$(date +%s)
  echo "PHASE $1: $((now - phase_start)) s (total $((now - start)) s)"
  phase_start=$now
}

bash scripts/setup.sh
phase "setup (packages, official binaries)"
export E2E_TARGET=sim
export RUST_LOG="${RUST_LOG:-warn}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
bash scripts/check-cycles.sh
phase "fmt, clippy, module cycles"
set +e
cargo test --workspace --all-targets --locked --no-fail-fast 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
phase "every crate's tests, e2e and self-test on kube-sim"
# The vendor's way to the same suites: `sts-conformance run`, one line per finished case,
# then the run report with its certification header.
reports="${E2E_REPORT_DIR:-reports}"
"${CARGO_TARGET_DIR:-target}/debug/sts-conformance" run --target sim --report-dir "$reports/run" 2>&1 |
  tee -a "$log"
run_rc=${PIPESTATUS[0]}
[ "$rc" -ne 0 ] || rc=$run_rc
phase "sts-conformance run --target sim"
# The same e2e suites through the kubeconfig target (an "existing cluster": a kube-sim
# reached only through KUBECONFIG, node chaos through E2E_*_CMD templates).
bash scripts/e2e-kubeconfig.sh 2>&1 | tee -a "$log"
kubeconfig_rc=${PIPESTATUS[0]}
[ "$rc" -ne 0 ] || rc=$kubeconfig_rc
phase "e2e through the kubeconfig target"
# The same e2e suites against real Kubernetes: the official control plane built by setup.sh,
# with real nodes (kubelet, containerd, runc, CNI, kube-proxy, CoreDNS) and local images. Once on its default (node-bound) class, once on its `network`
# class for the case where a pod moves off a dead node marked out-of-service.
bash scripts/e2e-upstream.sh 2>&1 | tee -a "$log"
upstream_rc=${PIPESTATUS[0]}
[ "$rc" -ne 0 ] || rc=$upstream_rc
phase "e2e against the official control plane (upstream)"
# Least privilege, proven on the real API server: the suites pass with a ServiceAccount token
# bound only to manifests/certification/rbac.yaml, and fail with "forbidden" without any rule.
bash scripts/least-privilege.sh 2>&1 | tee -a "$log"
least_rc=${PIPESTATUS[0]}
[ "$rc" -ne 0 ] || rc=$least_rc
phase "least privilege (certification RBAC) on the official control plane"
# Certification as a vendor runs it: the image built from the Dockerfile, the Job as a real
# pod with only its RBAC, and the Sonobuoy plugin run by Sonobuoy, on real nodes.
bash scripts/certify-local.sh 2>&1 | tee -a "$log"
certify_rc=${PIPESTATUS[0]}
[ "$rc" -ne 0 ] || rc=$certify_rc
phase "certification Job and Sonobuoy on real nodes (certify-local)"
# One document per run, as a vendor would hand it over (the self-test's reports, which
# fail on purpose, are kept apart in reports/selftest/).
for dir in "$reports" "$reports/kubeconfig" "$reports/upstream" "$reports/upstream-network" \
  "$reports/least-privilege/full" "$reports/certify"; do
  "${CARGO_TARGET_DIR:-target}/debug/sts-conformance" report --dir "$dir" >/dev/null &&
    echo "run report: $dir/index.md ($(grep -E '^[0-9]+ tests:' "$dir/index.md"))"
done
set -e
# The manifest's root password must never reach test output or reports.
secret=$(grep -A1 'name: MYSQL_ROOT_PASSWORD' manifests/mysql/statefulset.yaml |
  sed -n 's/^ *value: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p')
if [ -z "$secret" ]; then
  echo "secret scan: no MYSQL_ROOT_PASSWORD value in manifests/mysql/statefulset.yaml" >&2
  rc=1
elif leaks=$(grep -rlF -- "$secret" "$log" "$reports"); then
  echo "FAIL: the manifest's root password appears in: ${leaks//$'\n'/, }" >&2
  rc=1
else
  echo "secret scan: the root password appears in no test output or report"
fi
# A target that can run a case must not skip it: a skip there would hide a broken path as
# an "ok" test. Each report directory lists the only cases it may skip, and why.
declare -A may_skip=(
  ["$reports/kubeconfig"]="" ["$reports/upstream-network"]="" ["$reports/least-privilege/full"]=""
  # node-bound default class: the pod cannot leave its node; the kubeconfig run (kube-sim's
  # network class) and upstream-network run this case
  ["$reports"]="survival-NodeLostPodMoves" ["$reports/run"]="survival-NodeLostPodMoves"
  ["$reports/upstream"]="survival-NodeLostPodMoves"
  # no node commands inside a pod; least-privilege runs these with the same RBAC
  ["$reports/certify"]="survival-ContainerCrash survival-NodeKill survival-NodeLostPodMoves"
)
for dir in "${!may_skip[@]}"; do
  for junit in "$dir"/*/junit.xml; do
    [ -f "$junit" ] && grep -q '<skipped' "$junit" || continue
    case_name=$(basename "$(dirname "$junit")")
    if [[ " ${may_skip[$dir]} " != *" $case_name "* ]]; then
      echo "FAIL: $case_name was skipped in $dir, a target that can run it: $(grep -o 'message="[^"]*"' "$junit" | head -1)" >&2
      rc=1
    fi
  done
done
# Only the runner's own "test result:" lines: test output may print "N passed" too.
count() { grep -E '^test result:' "$log" | grep -Eo "[0-9]+ $1" | awk '{s+=$1} END {print s+0}'; }
passed=$(count passed)
failed=$(count failed)
ignored=$(count ignored)
echo "SUMMARY: ${passed} passed, ${failed} failed, ${ignored} ignored across all test binaries in $(( $(date +%s) - start ))s (E2E_TARGET=sim, then e2e with E2E_TARGET=kubeconfig, then E2E_TARGET=upstream)"
exit "$rc"
