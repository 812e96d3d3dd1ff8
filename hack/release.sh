#!/usr/bin/env bash
# Writes a release into RELEASE_DIR (dist/release, git-ignored); run by
# `make release VERSION=vX.Y.Z`, which passes the variables below.
#
#   install.yaml                              what config/default renders (CRDs, RBAC, manager,
#                                             admission policies), the image pinned by digest
#   entitlement-operator-X.Y.Z.tgz            the Helm chart, version and appVersion VERSION
#   kubectl-entitlements_OS_ARCH[.exe]        the plugin, per PLUGIN_PLATFORMS, and
#   kubectl-entitlements_OS_ARCH.tar.gz       the same with LICENSE, the archives krew installs
#   entitlements.krew.yaml                    the krew manifest (kubectl krew install --manifest=...)
#   entitlement-operator[_OS_ARCH].tar        the manager image, OCI layouts (all platforms; each),
#   entitlement-operator[-probe].digest       and the digests of the all-platform ones
#   entitlement-operator-probe[_OS_ARCH].tar  the helm test image
#   *.spdx.json                               an SBOM per image and platform
#   checksums.txt                             SHA-256 of every file above
#
# To publish: push the two multi-platform image tarballs as they are (the
# digest in install.yaml is theirs), e.g. `crane push entitlement-operator.tar
# ghcr.io/partnerops/entitlement-operator:vX.Y.Z`, then attach the files to
# the GitHub release vX.Y.Z (the krew manifest's URLs point there).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${VERSION:?}" "${COMMIT:?}" "${LDFLAGS:?}" "${IMAGE_REPO:?}" "${IMAGE_PLATFORMS:?}" "${PLUGIN_PLATFORMS:?}"
: "${RELEASE_DIR:?}" "${LOCALBIN:?}" "${SOURCE_DATE_EPOCH:?}"
if [[ ! $VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "release: VERSION=$VERSION is not a release version: make release VERSION=vX.Y.Z" >&2
  exit 1
fi
if [[ -n "$(git status --porcelain 2>/dev/null)" ]]; then
  echo "release: warning: the working tree has uncommitted changes; the release is built from them" >&2
fi
chart_version="${VERSION#v}"
log() { printf '[release %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

rm -rf "$RELEASE_DIR"
mkdir -p "$RELEASE_DIR"
out="$(cd "$RELEASE_DIR" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

log "images $IMAGE_REPO:$VERSION and $IMAGE_REPO-probe:$VERSION ($IMAGE_PLATFORMS)"
make -s image VERSION="$VERSION" IMAGE_DIR="$out" IMAGE_REPO="$IMAGE_REPO" IMAGE_PLATFORMS="$IMAGE_PLATFORMS" \
  SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" >&2
digest="$(cat "$out/entitlement-operator.digest")"

log "install.yaml (config/default, image $IMAGE_REPO@$digest)"
cp -r config "$tmp/config"
(cd "$tmp/config/manager" && "$LOCALBIN/kustomize" edit set image "controller=$IMAGE_REPO@$digest")
"$LOCALBIN/kustomize" build "$tmp/config/default" >"$out/install.yaml"
grep -q "image: $IMAGE_REPO@$digest" "$out/install.yaml" || { echo "release: install.yaml does not pin $digest" >&2; exit 1; }

log "chart $chart_version"
cp -r dist/chart "$tmp/chart"
"$LOCALBIN/helm" package "$tmp/chart" --version "$chart_version" --app-version "$VERSION" --destination "$out" >/dev/null

log "kubectl-entitlements ($PLUGIN_PLATFORMS)"
krew_platforms=""
for p in $PLUGIN_PLATFORMS; do
  os="${p%/*}" arch="${p#*/}" ext=""
  [[ $os == windows ]] && ext=".exe"
  name="kubectl-entitlements_${os}_${arch}"
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" go build -trimpath -ldflags "$LDFLAGS" -o "$out/$name$ext" ./cmd/kubectl-entitlements
  d="$tmp/plugin/$name"; mkdir -p "$d"
  cp "$out/$name$ext" "$d/kubectl-entitlements$ext"; cp LICENSE "$d/"
  # Reproducible archives: fixed order, owners and times; gzip without a name or time.
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -C "$d" -cf - LICENSE "kubectl-entitlements$ext" |
    gzip -9n >"$out/$name.tar.gz"
  sum="$(sha256sum "$out/$name.tar.gz" | cut -d' ' -f1)"
  krew_platforms+="$(sed -e "s|@OS@|$os|g; s|@ARCH@|$arch|g; s|@VERSION@|$VERSION|g; s|@SHA256@|$sum|g; s|@EXT@|$ext|g" hack/krew/platform.yaml.in)"$'\n'
done

log "krew manifest"
{
  echo "# kubectl-entitlements $VERSION: kubectl krew install --manifest=entitlements.krew.yaml"
  while IFS= read -r line; do
    case "$line" in
      "#"*) ;; # the template's own comments
      "@PLATFORMS@") printf '%s' "$krew_platforms" ;;
      *) printf '%s\n' "${line//@VERSION@/$VERSION}" ;;
    esac
  done <hack/krew/entitlements.yaml.in
} >"$out/entitlements.krew.yaml"

(cd "$out" && sha256sum -- * >"$tmp/checksums.txt" && mv "$tmp/checksums.txt" checksums.txt)
log "done: $out"
ls -l "$out" >&2
