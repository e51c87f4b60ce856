# Shared shell helpers for hack/ scripts. Source it; do not run it.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HACK_DIR/.." && pwd)"
# shellcheck source=versions.env
source "$HACK_DIR/versions.env"

# Caches live outside the repo so a fresh clone reuses them.
TRADEBOT_CACHE="${TRADEBOT_CACHE:-$HOME/.cache/tradebot}"
# Runtime state (cluster, kubeconfig, logs) lives inside the repo, git-ignored.
TRADEBOT_STATE="${TRADEBOT_STATE:-$REPO_ROOT/.state}"
BIN_CACHE="$TRADEBOT_CACHE/bin"

log() { printf '\033[1;34m[tradebot]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[tradebot] error:\033[0m %s\n' "$*" >&2; exit 1; }

# bin_path NAME: absolute path of a cached binary at its pinned version.
bin_path() {
  case "$1" in
    kube-apiserver|kube-controller-manager|kube-scheduler) echo "$BIN_CACHE/kubernetes-$KUBE_VERSION/$1" ;;
    etcd) echo "$BIN_CACHE/etcd-$ETCD_VERSION/etcd" ;;
    kwok|kwokctl) echo "$BIN_CACHE/kwok-$KWOK_VERSION/$1" ;;
    bao) echo "$BIN_CACHE/openbao-$OPENBAO_VERSION/bao" ;;
    kubectl|helm) echo "$BIN_CACHE/kubectl-layer-$KUBECTL_LAYER_VERSION/$1" ;;
    *) die "unknown binary: $1" ;;
  esac
}
