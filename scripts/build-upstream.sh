#!/usr/bin/env bash
# Builds the official binaries of the upstream target from the pinned Go modules in tools/ into
# .upstream/bin (ignored): the control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler), kubectl, and what its real nodes run (kubelet, kube-proxy, containerd with its
# runc shim and ctr, CoreDNS), and Sonobuoy (scripts/certify-local.sh). Each group is skipped
# when its binaries are newer than its tools module and this script. runc and the CNI plugins come from Debian packages (scripts/setup.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${UPSTREAM_BIN_DIR:-$root/.upstream/bin}"
mkdir -p "$out"
export CGO_ENABLED=0

module_version() { awk -v m="$2" '$1 == m && $2 ~ /^v/ {print $2; exit}' "$root/tools/$1/go.mod"; }
# The module proxy serves no commit hash: gitCommit carries the module's go.sum hash instead of
# the unexpanded `$Format:%H$`, so `version` output still pins the exact source.
module_sum() { awk -v m="$2" -v v="$3" '$1 == m && $2 == v {print $3; exit}' "$root/tools/$1/go.sum"; }

up_to_date() {
  local tool="$1"; shift
  local bin input
  for bin in "$@"; do
    [[ -x "$out/$bin" ]] || return 1
    for input in "$root/tools/$tool/go.mod" "$root/tools/$tool/go.sum" "$0"; do
      [[ "$out/$bin" -nt "$input" ]] || return 1
    done
  done
}

timed() {
  local what="$1"; shift
  local start=$SECONDS
  echo "build-upstream: building $what"
  "$@"
  touch "${built[@]/#/$out/}"
  echo "build-upstream: $what built in $((SECONDS - start)) s"
}

build_kubernetes() {
  local version major minor commit date ldflags pkg
  version="$(module_version k8s k8s.io/kubernetes)"
  [[ -n "$version" ]] || { echo "build-upstream: no k8s.io/kubernetes version in tools/k8s/go.mod" >&2; exit 2; }
  IFS=. read -r major minor _ <<<"${version#v}"
  commit="$(module_sum k8s k8s.io/kubernetes "$version")"
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  # Stamp the release so /version, `kubectl version` and the node's kubeletVersion report it
  # (as hack/lib/version.sh does), not v0.0.0.
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitCommit=$commit -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  (cd "$root/tools/k8s" && go build -trimpath -ldflags "$ldflags" -o "$out/" tool)
}

build_etcd() {
  (cd "$root/tools/etcd" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
}

build_containerd() {
  local version pkg=github.com/containerd/containerd/v2 ldflags
  version="$(module_version containerd $pkg)"
  ldflags="-s -w -X $pkg/version.Version=$version -X $pkg/version.Revision=$(module_sum containerd $pkg "$version")"
  # no_btrfs: its snapshotter needs cgo and kernel headers; overlayfs is what the nodes use.
  (cd "$root/tools/containerd" && go build -trimpath -tags no_btrfs -ldflags "$ldflags" -o "$out/" tool)
}

build_coredns() {
  local version pkg=github.com/coredns/coredns
  version="$(module_version coredns $pkg)"
  (cd "$root/tools/coredns" && go build -trimpath \
    -ldflags "-s -w -X $pkg/coremain.GitCommit=$(module_sum coredns $pkg "$version")" -o "$out/coredns" $pkg)
}

build_sonobuoy() {
  local version pkg=github.com/vmware-tanzu/sonobuoy
  version="$(module_version sonobuoy $pkg)"
  # The module's source says the previous release; its release build stamps the version.
  (cd "$root/tools/sonobuoy" && go build -trimpath -ldflags "-s -w -X $pkg/pkg/buildinfo.Version=$version \
    -X $pkg/pkg/buildinfo.GitSHA=$(module_sum sonobuoy $pkg "$version")" -o "$out/sonobuoy" $pkg)
}

build_group() {
  local tool="$1" what="$2" fn="$3"; shift 3
  built=("$@")
  if up_to_date "$tool" "${built[@]}"; then
    echo "build-upstream: $what up to date in $out"
  else
    timed "$what" "$fn"
  fi
}

start=$SECONDS
build_group k8s "Kubernetes $(module_version k8s k8s.io/kubernetes) (control plane, kubectl, kubelet, kube-proxy)" build_kubernetes \
  kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy
build_group etcd "etcd" build_etcd etcd
build_group containerd "containerd $(module_version containerd github.com/containerd/containerd/v2)" build_containerd \
  containerd containerd-shim-runc-v2 ctr
build_group coredns "CoreDNS $(module_version coredns github.com/coredns/coredns)" build_coredns coredns
build_group sonobuoy "Sonobuoy $(module_version sonobuoy github.com/vmware-tanzu/sonobuoy)" build_sonobuoy sonobuoy
echo "build-upstream: done in $((SECONDS - start)) s"
