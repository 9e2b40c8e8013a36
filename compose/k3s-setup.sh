#!/bin/sh
# The k3s-setup one-shot of docker-compose.yaml, run in the rancher/k3s image (busybox sh, kubectl).
#
# 1. Rewrites the kubeconfig k3s wrote (server https://127.0.0.1:6443) to /output/config with server
#    https://k3s:6443; the Airflow containers mount that volume read-only as /home/airflow/.kube.
# 2. Waits until the API server answers through that kubeconfig and the node is Ready (pods cannot be
#    scheduled before), applies kpo-demo-rbac.yaml (namespace kpo-demo, a ServiceAccount, a Role, a
#    RoleBinding; kubectl apply, so a second `docker compose up` changes nothing) and waits for the
#    namespace's default ServiceAccount (pods are refused until the controller has made it).
# Every wait is bounded and says what it last saw; the script exits non-zero on any failure, and
# docker-compose.yaml starts no Airflow component unless it completed successfully.
set -eu

SOURCE=${K3S_KUBECONFIG_SOURCE:-/output/kubeconfig.yaml}
TARGET=${K3S_KUBECONFIG_TARGET:-/output/config}
SERVER=${K3S_SERVER_URL:-https://k3s:6443}
NAMESPACE=kpo-demo
here=$(dirname "$0")

# wait_for DESCRIPTION SECONDS COMMAND...: run COMMAND every 2 s until it succeeds, at most SECONDS.
wait_for() {
    description=$1 seconds=$2
    shift 2
    deadline=$(($(date +%s) + seconds))
    until last=$("$@" 2>&1); do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            echo "error: $description: not ready after ${seconds}s; last output: $last" >&2
            exit 1
        fi
        sleep 2
    done
    echo "ok: $description"
}

wait_for "k3s wrote $SOURCE" 120 test -s "$SOURCE"
sh "$here/rewrite-kubeconfig.sh" "$SOURCE" "$TARGET" "$SERVER"
export KUBECONFIG="$TARGET"
wait_for "API server at $SERVER" 120 kubectl get --raw /readyz
# With no node registered yet, kubectl wait fails ("no matching resources found") and is retried.
wait_for "the node is Ready" 180 kubectl wait --for=condition=Ready nodes --all --timeout=10s
kubectl apply -f "$here/kpo-demo-rbac.yaml"
wait_for "ServiceAccount default in $NAMESPACE" 60 kubectl -n "$NAMESPACE" get serviceaccount default
echo "k3s is ready for Airflow: kubeconfig $TARGET, namespace $NAMESPACE"
