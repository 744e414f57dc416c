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
  command -v kubectl >/dev/null && say "kubectl: $(kubectl version --client 2>/dev/null | head -1)" ||
    say "kubectl: missing (optional; used to poke kube-sim by hand)"
}

need_cargo
need_mariadb
report_kind
