#!/usr/bin/env bash
# Certification as a vendor runs it, on this machine: the certification image built from the
# repository's Dockerfile (no registry: buildah, the `build` stage replaced by the binary built
# here, BASE by a Debian minbase from scripts/build-images.sh), loaded into the upstream
# target's real nodes as `kind load image-archive` would, then manifests/certification/
# applied as README "Certify your cluster" says, the Job run as a real pod with only its
# ServiceAccount, its log and reports copied out.
# Exits 0 only when the Job succeeded (every case passed or was skipped with its reason, as
# `sts-conformance run` exits) and its reports hold a junit.xml for every catalogue case.
# Needs root (the upstream target) and scripts/setup.sh done.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/upstream.sh

say() { printf 'certify-local: %s\n' "$*"; }
if [ "$(id -u)" -ne 0 ]; then
  say "SKIPPED: not root; the upstream target creates network namespaces and cgroups" >&2
  exit 0
fi
timeout_s="${CERTIFY_TIMEOUT:-2700}"
# What to run in the cluster (default: all three): the Job, the Sonobuoy plugin, and the
# Sonobuoy plugin with too few permissions, whose results must say failed.
steps=",${CERTIFY_STEPS:-job,sonobuoy,sonobuoy-fault},"
image="localhost/sts-conformance/sts-conformance:0.1.0"
reports="${E2E_REPORT_DIR:-reports}/certify"
kubectl="$PWD/.upstream/bin/kubectl"
sonobuoy="$PWD/.upstream/bin/sonobuoy"
target="${CARGO_TARGET_DIR:-target}"
step_start=$SECONDS
step() { say "$1 ($((SECONDS - step_start)) s)"; step_start=$SECONDS; }

bash scripts/build-upstream.sh >/dev/null
bash scripts/build-images.sh >/dev/null
cargo build -q --locked -p kube-upstream --bin kube-upstream -p harness --bin sts-conformance
step "binaries and node images up to date"
expected=$("$target/debug/sts-conformance" run --list | awk '{print $1}')
[ -n "$expected" ] || { say "could not list the catalogue (sts-conformance run --list)" >&2; exit 1; }

dir=$(mktemp -d /tmp/certify-local.XXXXXX)
up_pid=""
cleanup() {
  upstream_stop
  # buildah's own storage for this build only (vfs layers under $dir): nothing stays behind.
  buildah --root "$dir/buildah" --runroot "$dir/buildah-run" --storage-driver vfs \
    rm --all >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

# build_image <name> <archive> <buildah bud args...>: builds on the local Debian minbase and
# writes a docker-archive the nodes load.
build_image() {
  local name="$1" archive="$2"
  shift 2
  buildah --root "$dir/buildah" --runroot "$dir/buildah-run" --storage-driver vfs \
    bud --quiet --isolation chroot --layers=false \
    --build-arg "BASE=docker-archive:$PWD/.upstream/images/certify-base.tar" \
    -t "$name" "$@" >>"$dir/build.log" 2>&1 || { tail -20 "$dir/build.log" >&2; return 1; }
  buildah --root "$dir/buildah" --runroot "$dir/buildah-run" --storage-driver vfs \
    push --quiet "$name" "docker-archive:$archive:$name" >>"$dir/build.log" 2>&1 ||
    { tail -20 "$dir/build.log" >&2; return 1; }
}

# 1. The image, from the Dockerfile. The vendor's build compiles a release binary in the
# `build` stage; here that stage is the debug binary CI just built, without its debug info.
mkdir -p "$dir/context/src/target/release"
objcopy --strip-debug "$target/debug/sts-conformance" "$dir/context/src/target/release/sts-conformance"
build_image "$image" "$dir/certify.tar" --build-context "build=$dir/context" .
step "built $image from Dockerfile ($(du -h "$dir/certify.tar" | cut -f1) archive)"
# Sonobuoy's aggregator and worker image, from the official binary (images/sonobuoy).
sonobuoy_version=$("$sonobuoy" version --short)
sonobuoy_image="localhost/sts-conformance/sonobuoy:$sonobuoy_version"
mkdir -p "$dir/sonobuoy-context" && cp "$sonobuoy" "$dir/sonobuoy-context/sonobuoy"
build_image "$sonobuoy_image" "$dir/sonobuoy.tar" -f images/sonobuoy/Dockerfile "$dir/sonobuoy-context"
step "built $sonobuoy_image ($(du -h "$dir/sonobuoy.tar" | cut -f1) archive)"

# 2. The cluster: real nodes that also carry the certification image.
upstream_start "$dir" --load-image "$dir/certify.tar" --load-image "$dir/sonobuoy.tar"
step "upstream target ready with real nodes (workload image $node_image)"
admin() { "$kubectl" --kubeconfig "$dir/admin" "$@"; }

# 3-5. The Job: applied as a vendor does, waited for, its reports handed over.
certify_job() {
  # 3. As a vendor: namespace, ServiceAccount, RBAC, then the Job with `image:` set. The
  # workload image is the nodes' MariaDB (no registry serves mysql:5.7), and the reports go to
  # a directory of this machine instead of the pod's emptyDir, so they can be read afterwards.
  admin apply -f manifests/certification/namespace.yaml -f manifests/certification/serviceaccount.yaml \
    -f manifests/certification/rbac.yaml >/dev/null
  mkdir -p "$dir/results" && chmod 0777 "$dir/results"
  admin set image --local -o yaml -f manifests/certification/job.yaml "sts-conformance=$image" |
    admin set env --local -o yaml -f - "E2E_IMAGE=$node_image" |
    admin patch --local -o yaml -f - --type=json -p "[{\"op\":\"replace\",\"path\":\"/spec/template/spec/volumes/0\",
      \"value\":{\"name\":\"results\",\"hostPath\":{\"path\":\"$dir/results\",\"type\":\"Directory\"}}}]" \
      >"$dir/job.yaml"
  admin apply -f "$dir/job.yaml" >/dev/null
  step "applied manifests/certification/ (Job image $image)"

  # 4. Wait for the Job, with progress: its pod's phase and the cases finished so far.
  job_state() {
    admin -n sts-conformance get job sts-conformance \
      -o jsonpath='{.status.succeeded}/{.status.failed}/{.status.active}'
  }
  deadline=$((SECONDS + timeout_s))
  next_progress=$((SECONDS + 60))
  state=""
  while :; do
    state=$(job_state 2>/dev/null || echo "?")
    case "$state" in 1/*|*/1/*) break ;; esac
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "FAIL: the Job did not finish within $timeout_s s (CERTIFY_TIMEOUT); last status succeeded/failed/active: $state" >&2
      admin -n sts-conformance get pods -o wide >&2 || true
      admin -n sts-conformance logs job/sts-conformance --tail=20 >&2 || true
      exit 1
    fi
    if [ "$SECONDS" -ge "$next_progress" ]; then
      done_cases=$(admin -n sts-conformance logs job/sts-conformance 2>/dev/null | grep -cE '^\[' || true)
      pod=$(admin -n sts-conformance get pods -l app.kubernetes.io/name=sts-conformance \
        -o jsonpath='{.items[0].metadata.name} {.items[0].status.phase}' 2>/dev/null || true)
      say "waiting for the Job: pod ${pod:-none yet}, $done_cases case(s) finished"
      next_progress=$((SECONDS + 60))
    fi
    sleep 2
  done
  step "Job finished (succeeded/failed/active: $state)"

  # 5. Hand-over: the log (the run) and the reports.
  rm -rf "$reports" && mkdir -p "$reports"
  admin -n sts-conformance logs job/sts-conformance >"$reports/job.log" 2>&1 || true
  cp -r "$dir/results/." "$reports/"
  case "$state" in
    1/*) say "the Job succeeded: $(grep -E '^sts-conformance: [0-9]+ passed' "$reports/job.log" || echo 'no summary line')" ;;
    *) say "FAIL: the Job failed; its log:" >&2; tail -30 "$reports/job.log" >&2; rc=1 ;;
  esac
  # Every catalogue case reported, each with its junit.
  if [ -n "$expected" ]; then
    missing=$(while read -r case_name; do
      [ -s "$reports/$case_name/junit.xml" ] || echo "$case_name"
    done <<<"$expected")
    if [ -n "$missing" ]; then
      say "FAIL: no junit.xml in the Job's reports for: ${missing//$'\n'/, }" >&2; rc=1
    else
      say "junit.xml for all $(wc -l <<<"$expected") catalogue cases"
    fi
  fi
  say "run report: $reports/index.md; the Job's log: $reports/job.log"
  step "Job reports checked"
}

# Sonobuoy's --kubeconfig belongs to each subcommand that talks to the cluster.
sono() {
  local command="$1"
  shift
  "$sonobuoy" "$command" --kubeconfig "$dir/admin" "$@"
}

# sonobuoy_round <name> <sonobuoy run args...>: runs the plugin in namespace <name>, waits,
# retrieves the tarball into $reports/<name>/ and writes `sonobuoy results` (summary and
# detailed) next to it. Sets tarball. Preflight's DNS check looks for CoreDNS pods in
# kube-system; this target runs CoreDNS on the host behind the kube-dns Service, so that one
# check is skipped.
sonobuoy_round() {
  local name="$1" out="$reports/$1"
  shift
  rm -rf "$out" && mkdir -p "$out"
  if ! sono run --namespace "$name" --plugin manifests/certification/sonobuoy-plugin.yaml \
    --sonobuoy-image "$sonobuoy_image" --plugin-image "sts-conformance:$image" \
    --plugin-env "sts-conformance.E2E_IMAGE=$node_image" "$@" \
    --skip-preflight=dnscheck --wait="$((timeout_s / 60))" --wait-output=progress 2>&1 |
    tee "$out/run.log" | sed -u "s/^/certify-local: $name: /"; then
    say "FAIL: sonobuoy run ($name) failed:" >&2; tail -20 "$out/run.log" >&2; exit 1
  fi
  tarball=$(sono retrieve --namespace "$name" "$out") ||
    { say "FAIL: sonobuoy retrieve ($name) failed" >&2; exit 1; }
  "$sonobuoy" results "$tarball" --plugin sts-conformance | tee "$out/results.txt"
  "$sonobuoy" results "$tarball" --plugin sts-conformance --mode detailed >"$out/detailed.jsonl"
}

# 6. The same run as a Sonobuoy plugin, as README "Certify your cluster" says: every case in
# the results, at the promised layout, and a passed status.
certify_sonobuoy() {
  sonobuoy_round sonobuoy
  step "sonobuoy run and retrieve: $tarball"
  # Sonobuoy unpacks the plugin's tarball: each case's junit.xml is under results/global/.
  local listed status
  listed=$(tar -tzf "$tarball")
  for case_name in $expected; do
    grep -qx "plugins/sts-conformance/results/global/$case_name/junit.xml" <<<"$listed" ||
      { say "FAIL: no $case_name/junit.xml in the plugin's results in $tarball" >&2; rc=1; }
  done
  grep -qx "plugins/sts-conformance/results/global/index.md" <<<"$listed" ||
    { say "FAIL: no index.md in the plugin's results in $tarball" >&2; rc=1; }
  status=$(sed -n 's/^Status: *//p' "$reports/sonobuoy/results.txt" | head -1)
  if [ "$status" != passed ]; then
    say "FAIL: sonobuoy results say the plugin's status is '${status:-none}'" >&2; rc=1
  fi
  step "Sonobuoy results checked (status ${status:-none}): $tarball"
}

# 7. A failed case shows as failed in Sonobuoy's results: the same plugin with Sonobuoy's
# `clusterRead` permissions (its ClusterRole lacks every write rule the harness needs, such
# as creating a namespace), two cases only (E2E_FOCUS). No kube-sim involved.
certify_sonobuoy_fault() {
  # With less than clusterAdmin, Sonobuoy expects its namespace to exist.
  admin create namespace sonobuoy-fault >/dev/null
  sonobuoy_round sonobuoy-fault --aggregator-permissions clusterRead --skip-preflight=existingnamespace \
    --plugin-env "sts-conformance.E2E_FOCUS=identity,scale-up-0-to-3"
  local status failed
  status=$(sed -n 's/^Status: *//p' "$reports/sonobuoy-fault/results.txt" | head -1)
  failed=$(grep -c '"status":"failed"' "$reports/sonobuoy-fault/detailed.jsonl" || true)
  if [ "$status" = failed ] && [ "$failed" -gt 0 ] &&
    grep '"status":"failed"' "$reports/sonobuoy-fault/detailed.jsonl" | grep -q forbidden; then
    step "a ClusterRole missing rules: sonobuoy results say failed ($failed failed checks, forbidden)"
  else
    say "FAIL: with clusterRead permissions, sonobuoy results say '${status:-none}' with $failed failed checks naming forbidden" >&2
    rc=1
  fi
}

rc=0
if [[ "$steps" == *,job,* ]]; then certify_job; fi
if [[ "$steps" == *,sonobuoy,* ]]; then certify_sonobuoy; fi
if [[ "$steps" == *,sonobuoy-fault,* ]]; then certify_sonobuoy_fault; fi
exit "$rc"
