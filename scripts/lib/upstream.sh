# Sourced by scripts that start the upstream target themselves (least-privilege.sh,
# certify-local.sh). Needs root, the built official binaries and images.

# upstream_start <dir> [kube-upstream args...]: starts kube-upstream with its run directory and
# admin kubeconfig under <dir>, and waits (at most 300 s) for its ready line. Sets up_pid,
# control (the node-control URL) and node_image (the workload image the nodes carry). The
# launcher shuts down when fd 9 (its stdin) closes; upstream_stop does that and waits.
upstream_start() {
  local dir="$1" line=""
  shift
  mkfifo "$dir/stdin"
  "${CARGO_TARGET_DIR:-target}/debug/kube-upstream" --run-dir "$dir/run" --kubeconfig "$dir/admin" \
    --exit-on-stdin-close "$@" <"$dir/stdin" >"$dir/stdout" 2>"$dir/stderr" &
  up_pid=$!
  exec 9>"$dir/stdin"
  for _ in $(seq 1 3000); do
    line=$(grep -m1 '^kube-upstream ready: ' "$dir/stdout" || true)
    [ -n "$line" ] && break
    kill -0 "$up_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$line" ]; then
    echo "kube-upstream did not get ready within 300 s; its stderr:" >&2
    tail -20 "$dir/stderr" >&2
    return 1
  fi
  control=$(sed -n 's/.* control=\([^ ]*\).*/\1/p' <<<"$line")
  node_image=$(sed -n 's/.* image=\([^ ]*\).*/\1/p' <<<"$line")
}

upstream_stop() {
  [ -n "${up_pid:-}" ] || return 0
  exec 9>&- || true
  kill "$up_pid" 2>/dev/null || true
  wait "$up_pid" 2>/dev/null || true
  up_pid=""
}
