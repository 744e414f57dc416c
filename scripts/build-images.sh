#!/usr/bin/env bash
# Builds the container images the upstream target's real nodes run, from Debian packages and
# with no registry, as image archives the launcher loads into every node's containerd (as
# `kind load image-archive` does):
#   localhost/sts-conformance/pause:catatonit  the pod sandbox (Debian's static catatonit -P)
#   localhost/sts-conformance/mariadb:10.11    the MySQL-compatible workload: Debian bookworm's
#                                              MariaDB with images/mariadb/entrypoint.sh
#   localhost/sts-conformance/debian:bookworm-minbase
#                                              the certification image's base (Dockerfile's
#                                              BASE; stands in for debian:bookworm-slim)
# Rootfs by debootstrap (minbase), layer by tar, image by umoci, archive by skopeo.
# Output: .upstream/images/<name>.tar; skipped when newer than this script and its inputs.
# Needs root (debootstrap, chroot).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${UPSTREAM_IMAGE_DIR:-$root/.upstream/images}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm
mkdir -p "$out"
work="$(mktemp -d "$out/.build.XXXXXX")"
trap 'umount -l "$work/rootfs/proc" 2>/dev/null || true; rm -rf "$work"' EXIT

say() { printf 'build-images: %s\n' "$*"; }

up_to_date() {
  local image="$out/$1.tar" input
  shift
  [[ -s "$image" ]] || return 1
  for input in "$0" "$@"; do [[ "$image" -nt "$input" ]] || return 1; done
}

# One uncompressed layer from a directory tree, numeric owners kept.
layer_from() { tar --numeric-owner --xattrs -C "$1" -cf "$2" .; }

# An OCI layout with one layer and the given config, turned into a docker-archive named $name.
archive() {
  local name="$1" layer="$2" archive="$3"; shift 3
  local layout="$work/oci-$(basename "$archive" .tar)"
  umoci init --layout "$layout"
  umoci new --image "$layout:latest"
  umoci raw add-layer --image "$layout:latest" "$layer"
  umoci config --image "$layout:latest" --author=sts-conformance --os=linux --architecture=amd64 "$@"
  rm -f "$archive.tmp"
  skopeo copy --quiet "oci:$layout:latest" "docker-archive:$archive.tmp:$name"
  mv "$archive.tmp" "$archive"
}

# A Debian minbase root filesystem in $1.
minbase() {
  say "debootstrap $suite (minbase) from $mirror"
  debootstrap --variant=minbase "$suite" "$1" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; exit 1; }
}

build_pause() {
  local image=pause name=localhost/sts-conformance/pause:catatonit
  if up_to_date "$image"; then say "$name up to date"; return; fi
  local start=$SECONDS dir="$work/pause"
  mkdir -p "$dir/rootfs/usr/bin" && (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root catatonit >/dev/null)
  dpkg-deb --fsys-tarfile "$dir"/catatonit_*.deb | tar -xf - -C "$dir/rootfs" ./usr/bin/catatonit
  layer_from "$dir/rootfs" "$dir/layer.tar"
  archive "$name" "$dir/layer.tar" "$out/$image.tar" \
    --config.entrypoint=/usr/bin/catatonit --config.entrypoint=-P
  say "$name built in $((SECONDS - start)) s ($(du -h "$out/$image.tar" | cut -f1))"
}

build_mariadb() {
  local image=mariadb name=localhost/sts-conformance/mariadb:10.11
  local entrypoint="$root/images/mariadb/entrypoint.sh"
  if up_to_date "$image" "$entrypoint"; then say "$name up to date"; return; fi
  local start=$SECONDS rootfs="$work/rootfs"
  minbase "$rootfs"
  # Packages must not start services inside the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d" && chmod +x "$rootfs/usr/sbin/policy-rc.d"
  say "installing mariadb-server into the image"
  chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    mariadb-server mariadb-client >"$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; exit 1; }
  rm -f "$rootfs/usr/sbin/policy-rc.d"
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/{doc,man,info} "$rootfs"/var/log/*.log \
    "$rootfs"/var/lib/mysql/* "$rootfs"/var/cache/debconf/*-old
  install -m 0755 "$entrypoint" "$rootfs/usr/local/bin/docker-entrypoint.sh"
  layer_from "$rootfs" "$work/mariadb-layer.tar"
  archive "$name" "$work/mariadb-layer.tar" "$out/$image.tar" \
    --config.entrypoint=/usr/local/bin/docker-entrypoint.sh --config.cmd=mariadbd \
    --config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.exposedports=3306/tcp --config.volume=/var/lib/mysql
  say "$name built in $((SECONDS - start)) s ($(du -h "$out/$image.tar" | cut -f1))"
}

# What debian:bookworm-slim is, made here: minbase without docs, apt lists or logs. The
# certification image (Dockerfile) builds on it when no registry serves debian:bookworm-slim.
build_certify_base() {
  local image=certify-base name=localhost/sts-conformance/debian:bookworm-minbase
  if up_to_date "$image"; then say "$name up to date"; return; fi
  local start=$SECONDS rootfs="$work/base-rootfs"
  minbase "$rootfs"
  # As the slim images do: apt keeps no package caches and dpkg installs no documentation,
  # so a Dockerfile's `apt-get install` adds only the packages.
  cat >"$rootfs/etc/apt/apt.conf.d/90sts-conformance-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
  printf 'path-exclude /usr/share/%s/*\n' doc man info locale >"$rootfs/etc/dpkg/dpkg.cfg.d/90sts-conformance-nodoc"
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/{doc,man,info} "$rootfs"/var/log/*.log \
    "$rootfs"/var/cache/debconf/*-old
  layer_from "$rootfs" "$work/base-layer.tar"
  archive "$name" "$work/base-layer.tar" "$out/$image.tar" \
    --config.env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.cmd=bash
  say "$name built in $((SECONDS - start)) s ($(du -h "$out/$image.tar" | cut -f1))"
}

[[ "$(id -u)" -eq 0 ]] || { say "needs root (debootstrap and chroot); skipping"; exit 0; }
for tool in debootstrap umoci skopeo; do
  command -v "$tool" >/dev/null || { say "$tool missing: run scripts/setup.sh"; exit 1; }
done
build_pause
build_mariadb
build_certify_base
