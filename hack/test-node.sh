#!/usr/bin/env bash
# make test-node: the install proven on a real node (root, Linux).
#
#   1. a release of the working tree (install.yaml, chart, images; the
#      plugin for this machine only), and the manager image built a second
#      time, which must have the same digest;
#   2. the node up (hack/tools/cmd/node), the release's images loaded;
#   3. test/node run inside the node's network namespace;
#   4. the node down, checked to have left nothing behind, and the Go
#      module proxy still reachable.
#
# Run by the Makefile with NODE (the harness), NODE_FLAGS and LOCALBIN set.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${NODE:?}" "${NODE_FLAGS:?}" "${LOCALBIN:?}"

# A SemVer version, since the chart is packaged at it; the images' tag.
version="v0.0.0-node"
repo="${IMAGE_REPO:-ghcr.io/partnerops/entitlement-operator}"
release="$LOCALBIN/node-release"
log() { printf '[test-node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
t0=$(date +%s)

log "the tools' own tests (hack/tools)"
(cd hack/tools && go test ./...)

log "release $version into $release"
make -s release VERSION="$version" RELEASE_DIR="$release" IMAGE_REPO="$repo" PLUGIN_PLATFORMS="linux/$(go env GOARCH)" >/dev/null
again="$(mktemp -d)"
make -s image VERSION="$version" IMAGE_DIR="$again" IMAGE_REPO="$repo" >/dev/null
d1="$(cat "$release/entitlement-operator.digest")" d2="$(cat "$again/entitlement-operator.digest")"
rm -rf "$again"
if [[ "$d1" != "$d2" ]]; then
  log "FAIL: make image is not reproducible: $d1, then $d2"
  exit 1
fi
log "make image twice: the same digest $d1"

log "compiling test/node"
go test -c -o "$LOCALBIN/node.test" ./test/node

t1=$(date +%s)
# shellcheck disable=SC2086
"$NODE" up $NODE_FLAGS | tee "$LOCALBIN/node-up.log"
down() {
  # shellcheck disable=SC2086
  "$NODE" down $NODE_FLAGS
}
trap 'down || true' EXIT
"$NODE" load $NODE_FLAGS "$release/entitlement-operator.tar" "$release/entitlement-operator-probe.tar" >/dev/null

log "running test/node on the node"
status=0
# shellcheck disable=SC2086
# In test/node's directory, as go test runs it.
"$NODE" exec $NODE_FLAGS -- env -C test/node \
  NODE_RELEASE="$release" NODE_VERSION="$version" NODE_IMAGE_REPO="$repo" NODE_COMMIT="$(git rev-parse HEAD)" \
  NODE_HELM="$LOCALBIN/helm" NODE_KREW="$LOCALBIN/krew" \
  "$LOCALBIN/node.test" -test.v -test.count=1 -test.timeout=40m 2>&1 | tee "$LOCALBIN/node-test.log" || status=$?
trap - EXIT
down
t2=$(date +%s)

log "the Go module proxy after node down"
modcache="$(mktemp -d)"
if ! GOMODCACHE="$modcache" GOFLAGS=-mod=mod go mod download -json golang.org/x/text@v0.21.0 >/dev/null; then
  log "FAIL: the Go module proxy ($(go env GOPROXY)) cannot be reached after node down"
  status=1
fi
chmod -R u+w "$modcache" && rm -rf "$modcache"
[[ $status != 0 ]] || log "the Go module proxy answers ($(go env GOPROXY))"

log "figures:"
sed -n 's/^node: \(up in [^;]*\).*/  node \1/p' "$LOCALBIN/node-up.log" >&2
grep -h 'FIGURE' "$LOCALBIN/node-test.log" | sed 's/^ *[a-z_]*\.go:[0-9]*: FIGURE /  /' >&2 || true
log "node up to down: $((t2 - t1))s; all of make test-node: $((t2 - t0))s"
exit $status
