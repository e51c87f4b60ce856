#!/usr/bin/env bash
# Local Kubernetes control plane: real kube-apiserver, kube-controller-manager,
# kube-scheduler and etcd started by `kwokctl --runtime binary` from the binaries that
# hack/build-binaries.sh built; kwok fakes nodes and pods.
#
#   hack/cluster.sh up       start (or reuse) the cluster; prints the kubeconfig path
#   hack/cluster.sh down     stop it and every process it started
#   hack/cluster.sh status   components and nodes
#
# Never touches ~/.kube/config: the kubeconfig lives in $TRADEBOT_STATE/kubeconfig.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLUSTER_NAME="${TRADEBOT_CLUSTER_NAME:-tradebot}"
NODE_COUNT="${TRADEBOT_NODES:-3}"
NODE_PODS="${TRADEBOT_NODE_PODS:-110}"  # pod capacity per fake node (benchmarks need more)
KUBECONFIG_PATH="$TRADEBOT_STATE/kubeconfig"
export KWOK_WORKDIR="$TRADEBOT_STATE/kwok"
export KWOK_KUBE_VERSION="$KUBE_VERSION" KWOK_RUNTIME=binary
export KWOK_KUBECTL_BINARY; KWOK_KUBECTL_BINARY="$(bin_path kubectl)"
KWOKCTL="$(bin_path kwokctl)"
KUBECTL=("$(bin_path kubectl)" --kubeconfig "$KUBECONFIG_PATH")

kwokctl() { "$KWOKCTL" --name "$CLUSTER_NAME" -c "$HACK_DIR/kwokctl.yaml" -v WARN "$@"; }

cluster_exists() { [[ -d "$KWOK_WORKDIR/clusters/$CLUSTER_NAME" ]]; }

api_healthy() { "${KUBECTL[@]}" get --raw /readyz >/dev/null 2>&1; }

fake_nodes() {
  local i
  for ((i = 0; i < NODE_COUNT; i++)); do
    cat <<YAML
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
    type: kwok
    topology.kubernetes.io/zone: zone-$((i % 3))
spec:
  taints: []
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "$NODE_PODS"}
  capacity: {cpu: "32", memory: 256Gi, pods: "$NODE_PODS"}
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: $KUBE_VERSION
YAML
  done
}

up() {
  "$HACK_DIR/build-binaries.sh" kubernetes etcd kwok kubectl
  mkdir -p "$TRADEBOT_STATE"
  if cluster_exists && api_healthy; then
    log "cluster '$CLUSTER_NAME' already running"
  else
    if cluster_exists; then
      log "cluster '$CLUSTER_NAME' exists but is not healthy: starting it"
      kwokctl start cluster --timeout 3m || { kwokctl delete cluster >/dev/null 2>&1 || true; }
    fi
    if ! api_healthy; then
      log "creating cluster '$CLUSTER_NAME' (kube $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION)"
      local start=$SECONDS
      kwokctl create cluster \
        --runtime binary \
        --kubeconfig "$KUBECONFIG_PATH" \
        --kube-apiserver-binary "$(bin_path kube-apiserver)" \
        --kube-controller-manager-binary "$(bin_path kube-controller-manager)" \
        --kube-scheduler-binary "$(bin_path kube-scheduler)" \
        --etcd-binary "$(bin_path etcd)" \
        --kwok-controller-binary "$(bin_path kwok)" \
        --kube-authorization --kube-admission \
        --disable-qps-limits \
        --timeout 5m --wait 2m >&2
      log "control plane up in $((SECONDS - start))s"
    fi
  fi
  log "registering $NODE_COUNT fake nodes"
  fake_nodes | "${KUBECTL[@]}" apply -f - >/dev/null
  "${KUBECTL[@]}" wait --for=condition=Ready node --all --timeout=120s >/dev/null
  "${KUBECTL[@]}" get nodes >&2
  log "kubeconfig: $KUBECONFIG_PATH"
  log "try: $(bin_path kubectl) --kubeconfig $KUBECONFIG_PATH get nodes"
  echo "$KUBECONFIG_PATH"
}

leftover_pids() { # control-plane processes of this cluster (kwokctl runs copies from its workdir)
  pgrep -f -- "$KWOK_WORKDIR/clusters/$CLUSTER_NAME/" 2>/dev/null || true
}

down() {
  if [[ -x "$KWOKCTL" ]] && cluster_exists; then
    log "deleting cluster '$CLUSTER_NAME'"
    kwokctl delete cluster >&2 || true
  fi
  local pids; pids="$(leftover_pids)"
  if [[ -n "$pids" ]]; then
    log "stopping leftover control-plane processes: $(echo "$pids" | tr '\n' ' ')"
    kill $pids 2>/dev/null || true
    sleep 2
    pids="$(leftover_pids)"; [[ -z "$pids" ]] || kill -9 $pids 2>/dev/null || true
  fi
  rm -f "$KUBECONFIG_PATH"
  log "cluster down; no control-plane process left"
}

status() {
  cluster_exists || { log "no cluster '$CLUSTER_NAME'"; return 1; }
  kwokctl get components >&2 || true
  "${KUBECTL[@]}" get nodes >&2
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: hack/cluster.sh up|down|status" ;;
esac
