#!/usr/bin/env bash
# Builds the official control-plane binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl) from the pinned Go modules in tools/ into .upstream/bin (ignored).
# Skips the build when the binaries are newer than the tools' go.mod/go.sum and this script.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${UPSTREAM_BIN_DIR:-$root/.upstream/bin}"
mkdir -p "$out"

k8s_version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$root/tools/k8s/go.mod")"
[[ -n "$k8s_version" ]] || { echo "build-upstream: no k8s.io/kubernetes version in tools/k8s/go.mod" >&2; exit 2; }
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl)

up_to_date() {
  local bin
  for bin in "${binaries[@]}"; do
    [[ -x "$out/$bin" ]] || return 1
    for input in "$root"/tools/*/go.mod "$root"/tools/*/go.sum "$0"; do
      [[ "$out/$bin" -nt "$input" ]] || return 1
    done
  done
}

if up_to_date; then
  echo "build-upstream: up to date ($k8s_version in $out)"
  exit 0
fi

# Stamp the release so /version and `kubectl version` report it, not v0.0.0 (as hack/lib/version.sh does).
IFS=. read -r major minor _ <<<"${k8s_version#v}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

start=$(date +%s)
export CGO_ENABLED=0
echo "build-upstream: building Kubernetes $k8s_version control plane and kubectl into $out"
(cd "$root/tools/k8s" && go build -trimpath -ldflags "$ldflags" -o "$out/" tool)
echo "build-upstream: building etcd"
(cd "$root/tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
touch "${binaries[@]/#/$out/}"
echo "build-upstream: done in $(( $(date +%s) - start )) s"
ls -l "$out"
