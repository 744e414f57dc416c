#!/usr/bin/env bash
# The project's tests: unit and integration tests of every crate, the e2e suites against
# kube-sim, and the self-test that proves every check can fail. This is the README's test
# command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
export E2E_TARGET=sim
export RUST_LOG="${RUST_LOG:-warn}"
start=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
set +e
cargo test --workspace --all-targets --locked --no-fail-fast 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
ignored=$(grep -Eo '[0-9]+ ignored' "$log" | awk '{s+=$1} END {print s+0}')
echo "SUMMARY: ${passed} passed, ${failed} failed, ${ignored} ignored across all test binaries in $(( $(date +%s) - start ))s (E2E_TARGET=sim)"
exit "$rc"
