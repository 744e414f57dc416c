#!/usr/bin/env bash
# Installs what the harness needs on a Debian/Ubuntu machine, and says how to get what it
# does not install itself. Safe to run again: it only installs what is missing.
set -euo pipefail

say() { printf 'setup: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root to run: $*"; return 1; fi
}

need_cargo() {
  if ! command -v cargo >/dev/null; then
    say "cargo is missing: install Rust from https://rustup.rs (rustup default stable)"
    exit 1
  fi
  say "cargo: $(cargo --version)"
}

# kube-sim runs every pod as a real MariaDB server (Debian's mariadbd).
need_mariadb() {
  if command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; then
    say "mariadbd: $( (command -v mariadbd || echo /usr/sbin/mariadbd) )"
    return
  fi
  if ! command -v apt-get >/dev/null; then
    say "mariadbd is missing and apt-get is not available: install MariaDB server (mariadbd, mariadb-install-db) with your package manager"
    exit 1
  fi
  say "installing mariadb-server (for kube-sim pods)"
  export DEBIAN_FRONTEND=noninteractive
  # The package's service must not start: kube-sim runs its own mariadbd processes.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod +x /usr/sbin/policy-rc.d
    trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  as_root apt-get install -y -q --no-install-recommends mariadb-server >/dev/null ||
    { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q --no-install-recommends mariadb-server >/dev/null; }
  say "mariadbd installed: $(/usr/sbin/mariadbd --version)"
}

# The upstream target's pods get addresses in network namespaces the project creates.
need_iproute2() {
  if command -v ip >/dev/null; then say "ip: $(ip -V)"; return; fi
  if command -v apt-get >/dev/null; then
    say "installing iproute2 (network namespaces for the upstream target's pods)"
    as_root apt-get install -y -q --no-install-recommends iproute2 >/dev/null ||
      { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q --no-install-recommends iproute2 >/dev/null; }
  else
    say "ip (iproute2) is missing: the upstream target needs it; E2E_TARGET=auto falls back to sim"
  fi
}

# The upstream target's real nodes: runc (crun refuses this machine's hybrid cgroups), Debian's
# CNI plugins (bridge, host-local, loopback), iptables for kube-proxy, and what builds the
# images from Debian packages with no registry (debootstrap, umoci, skopeo), and buildah,
# which builds the certification image from the Dockerfile with no Docker engine.
need_node_packages() {
  local missing=() pkg
  for pkg in runc containernetworking-plugins iptables debootstrap umoci skopeo buildah; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -eq 0 ]; then say "real-node packages: installed (runc $(runc --version | head -1 | awk '{print $3}'))"; return; fi
  if ! command -v apt-get >/dev/null; then
    say "missing ${missing[*]} and apt-get is not available: E2E_TARGET=upstream needs them"; return
  fi
  say "installing ${missing[*]} (the upstream target's real nodes and their images)"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
    { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; }
}

# The images the real nodes run, from Debian packages (skipped when up to date; root only).
build_images() {
  if [ "$(id -u)" -ne 0 ]; then say "images: not root, not built (the upstream target needs root anyway)"; return; fi
  local start=$SECONDS
  bash "$(dirname "$0")/build-images.sh"
  say "images ready in $((SECONDS - start)) s"
}

# The upstream target: the official control plane built from the pinned Go modules in tools/
# (skipped when up to date; a cold build takes about 10 minutes on 2 cores).
build_upstream() {
  if ! command -v go >/dev/null; then
    say "go: missing (E2E_TARGET=upstream needs Go 1.26+ to build the official binaries: https://go.dev/dl/); skipping"
    return
  fi
  say "go: $(go version)"
  local start=$SECONDS
  bash "$(dirname "$0")/build-upstream.sh"
  say "upstream binaries ready in $((SECONDS - start)) s"
}

# kind and docker are only needed for E2E_TARGET=kind; we never download binaries.
report_kind() {
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    say "docker engine: reachable"
  else
    say "docker engine: not reachable (E2E_TARGET=kind needs it: https://docs.docker.com/engine/install/)"
  fi
  if command -v kind >/dev/null; then
    say "kind: $(kind version)"
  else
    say "kind: missing (E2E_TARGET=kind needs it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
  fi
  local kubectl
  kubectl="$(cd "$(dirname "$0")/.." && pwd)/.upstream/bin/kubectl"
  [ -x "$kubectl" ] && say "kubectl: $kubectl ($("$kubectl" version --client 2>/dev/null | head -1), built from the official module)" ||
    say "kubectl: not built (scripts/build-upstream.sh builds it)"
}

need_cargo
need_mariadb
need_iproute2
need_node_packages
build_upstream
build_images
report_kind
