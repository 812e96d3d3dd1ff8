#!/usr/bin/env bash
# Builds the pinned local control plane (etcd, kube-apiserver,
# kube-controller-manager) from Go modules into bin/k8s/ and reuses it.
#
#   hack/k8s-bins.sh [DEST [BINARY...]]   DEST defaults to bin/k8s
#
# BINARY defaults to etcd kube-apiserver kube-controller-manager; the node
# harness (make node-bins) asks for kubelet kube-scheduler kube-proxy
# kubectl, built from the same pinned k8s.io/kubernetes module set.
#
# Each binary asks the kernel to stop it when the process that started it dies
# (PR_SET_PDEATHSIG), so a test binary that panics or is killed never leaves a
# control plane behind. Idempotent: each binary is rebuilt only when missing or
# when its recorded version (pin + recipe) differs. A cold build (empty Go
# caches) takes 8 to 12 minutes on two cores, most of it compiling
# Kubernetes (about 8 within a 14m35s cold `.ci/run`; 12m03s alone on
# 2026-12-05 with an empty build cache, the modules already downloaded);
# with a warm Go build cache, a couple of minutes.
set -euo pipefail

KUBERNETES_VERSION="${KUBERNETES_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
STAGING_VERSION="v0${KUBERNETES_VERSION#v1}"   # v1.37.2 -> v0.37.2
RECIPE="pdeathsig-1"   # bump when the way the binaries are built changes

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$root/bin/k8s}"
shift || true
bins=("$@")
[[ ${#bins[@]} -gt 0 ]] || bins=(etcd kube-apiserver kube-controller-manager)
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
work="$root/bin/.k8s-build/$(basename "$dest")"

log() { printf '[k8s-bins %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# up_to_date NAME VERSION: the binary exists and was built from VERSION.
up_to_date() {
  [[ -x "$dest/$1" && -f "$dest/$1.version" && "$(cat "$dest/$1.version")" == "$2" ]]
}

k8s_bins=()
need_etcd=0
for b in "${bins[@]}"; do
  case "$b" in
    etcd) up_to_date etcd "$ETCD_VERSION+$RECIPE" || need_etcd=1 ;;
    kube-apiserver|kube-controller-manager|kube-scheduler|kubelet|kube-proxy|kubectl)
      up_to_date "$b" "$KUBERNETES_VERSION+$RECIPE" || k8s_bins+=("$b") ;;
    *) log "unknown binary $b"; exit 2 ;;
  esac
done
need_k8s=0
[[ ${#k8s_bins[@]} -eq 0 ]] || need_k8s=1

if [[ $need_k8s == 0 && $need_etcd == 0 ]]; then
  log "up to date in $dest: ${bins[*]} (Kubernetes $KUBERNETES_VERSION, etcd $ETCD_VERSION)"
  exit 0
fi

export GOFLAGS="${GOFLAGS:-} -mod=mod"
export CGO_ENABLED=0

# die_with_parent.go: the same init in every binary.
write_die_with_parent() {
  cat >"$1/die_with_parent.go" <<'GO'
package main

import (
	"os"
	"syscall"
)

// Stop when the process that started us dies, however it died.
func init() {
	const prSetPdeathsig = 1
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetPdeathsig, uintptr(syscall.SIGTERM), 0)
	if os.Getppid() == 1 { // the parent died before prctl took effect
		os.Exit(1)
	}
}
GO
}

if [[ $need_etcd == 1 ]]; then
  log "building etcd $ETCD_VERSION"
  d="$work/etcd"; rm -rf "$d"; mkdir -p "$d"
  cat >"$d/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  write_die_with_parent "$d"
  (
    cd "$d"
    go mod init k8sbins/etcd >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1
    go mod tidy >/dev/null 2>&1
    go build -trimpath -o "$dest/etcd.tmp" .
  )
  mv "$dest/etcd.tmp" "$dest/etcd"
  echo "$ETCD_VERSION+$RECIPE" >"$dest/etcd.version"
  log "etcd done"
fi

if [[ $need_k8s == 1 ]]; then
  d="$work/kubernetes"; rm -rf "$d"; mkdir -p "$d"
  log "resolving k8s.io/kubernetes $KUBERNETES_VERSION"
  modfile="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f "$modfile" ]] || { log "could not download k8s.io/kubernetes $KUBERNETES_VERSION"; exit 1; }
  {
    echo "module k8sbins/kubernetes"
    echo
    grep -E '^go [0-9]' "$modfile"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    # Every staging module kubernetes replaces with ./staging/... is taken
    # from the proxy at the matching v0.x version instead.
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9.-]*\) => ./staging/.*#\t\1 => \1 '"$STAGING_VERSION"'#p' "$modfile"
    echo ")"
  } >"$d/go.mod"
  # Each command's main, as upstream writes it, plus die_with_parent.go
  # (kubectl, a client, without it).
  for b in "${k8s_bins[@]}"; do
    case "$b" in
      kube-apiserver) ctor="NewAPIServerCommand()" ;;
      kube-controller-manager) ctor="NewControllerManagerCommand()" ;;
      kube-scheduler) ctor="NewSchedulerCommand()" ;;
      kube-proxy) ctor="NewProxyCommand()" ;;
      kubelet) ctor="NewKubeletCommand(context.Background())" ;;
      kubectl) continue ;;
    esac
    mkdir -p "$d/$b"
    ctx_import=""; [[ $b == kubelet ]] && ctx_import='"context"'
    cat >"$d/$b/main.go" <<GO
package main

import (
	$ctx_import
	"os"
	_ "time/tzdata"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/$b/app"
)

func main() { os.Exit(cli.Run(app.$ctor)) }
GO
    write_die_with_parent "$d/$b"
  done
  if [[ " ${k8s_bins[*]} " == *" kubectl "* ]]; then
    mkdir -p "$d/kubectl"
    cat >"$d/kubectl/main.go" <<'GO'
package main

import (
	"os"

	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	logs.GlogSetter(cmd.GetLogVerbosity(os.Args)) // nolint:errcheck
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
GO
  fi
  (
    cd "$d"
    log "resolving module graph"
    go mod tidy -e >/dev/null 2>&1 || true
    ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2) -X k8s.io/component-base/version.gitTreeState=clean"
    for b in "${k8s_bins[@]}"; do
      log "building $b $KUBERNETES_VERSION (the slow part on a cold cache)"
      go build -trimpath -ldflags "$ldflags" -o "$dest/$b.tmp" "./$b"
      mv "$dest/$b.tmp" "$dest/$b"
      echo "$KUBERNETES_VERSION+$RECIPE" >"$dest/$b.version"
      log "$b done"
    done
  )
fi

for b in "${bins[@]}"; do
  case "$b" in
    # The first line only, without a pipe into head: under pipefail, etcd
    # writing on after head exits is a SIGPIPE that fails the script (exit 141).
    etcd) v="$("$dest/etcd" --version 2>&1)"; echo "${v%%$'\n'*}" >&2 ;;
    kubectl) "$dest/kubectl" version --client 2>&1 | sed -n 1p >&2 ;;
    *) "$dest/$b" --version >&2 ;;
  esac
done
log "ready in $dest"
