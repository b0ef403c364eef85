#!/usr/bin/env bash
# A Kubernetes 1.20.2 control plane without nodes, on loopback, for the rollout's live tests:
# etcd, kube-apiserver and kube-controller-manager (quota status, garbage collection, namespace
# deletion). No kubelet: nothing is scheduled or run, so Ready pods, drains and traffic are out
# of reach; API behaviour (server-side apply, field ownership, dry runs, admission, quotas) is real.
#
#   scripts/kube-apiserver-local.sh build   scripts/kube-build.sh: the binaries, once, into
#                                          .cache/kubernetes-1.20.2/bin (~15 min on 2 cores, 1 GB Go cache)
#   scripts/kube-apiserver-local.sh up      start it; prints the environment for the live tests
#   scripts/kube-apiserver-local.sh down    stop what `up` started
#
# Then:  LLMOPS_TEST_KUBECONFIG=... LLMOPS_TEST_KUBERNETES_VERSION=v1.20.2 \
#          python -m pytest tests/serving/test_kubernetes_live_cluster.py
# The binaries come from scripts/kube-build.sh (Debian's `kubernetes` source package 1.20.2, etcd from
# Debian's etcd-server), the same bundle the site mirror serves.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HOME_DIR="$ROOT/.cache/kubernetes-1.20.2"
BIN="$HOME_DIR/bin"
RUN="$HOME_DIR/run"
TOKEN=llmops-test-token
PORT=16443
ETCD_PORT=23790

build() {
  "$ROOT/scripts/kube-build.sh"
}

up() {
  for binary in etcd kube-apiserver kube-controller-manager; do
    [[ -x "$BIN/$binary" ]] || { echo "$BIN/$binary missing: run '$0 build' first" >&2; exit 2; }
  done
  mkdir -p "$RUN"
  cd "$RUN"
  if [[ ! -f tls.key ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -keyout tls.key -out tls.crt -days 30 -subj "/CN=127.0.0.1" \
      -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    echo "$TOKEN,admin,1,\"system:masters\"" > tokens.csv
  fi
  cat > kubeconfig <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://127.0.0.1:$PORT", certificate-authority: $RUN/tls.crt}
contexts:
- name: local
  context: {cluster: local, user: local}
current-context: local
users:
- name: local
  user: {token: $TOKEN}
EOF
  "$BIN/etcd" --data-dir "$RUN/etcd-data" --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" --listen-peer-urls http://127.0.0.1:23800 > etcd.log 2>&1 &
  echo $! > etcd.pid
  "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$ETCD_PORT" --secure-port=$PORT --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 --tls-cert-file=tls.crt --tls-private-key-file=tls.key --token-auth-file=tokens.csv \
    --service-account-issuer=https://kubernetes.default.svc --service-account-key-file=sa.pub \
    --service-account-signing-key-file=sa.key --service-cluster-ip-range=10.96.0.0/12 \
    --authorization-mode=AlwaysAllow > apiserver.log 2>&1 &
  echo $! > apiserver.pid
  local i
  for i in $(seq 1 120); do
    curl -sfk -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$PORT/healthz" >/dev/null && break
    sleep 1
  done
  "$BIN/kube-controller-manager" --kubeconfig="$RUN/kubeconfig" --service-account-private-key-file=sa.key \
    --root-ca-file=tls.crt --leader-elect=false --port=0 --bind-address=127.0.0.1 --secure-port=10357 \
    --controllers='*' > controller-manager.log 2>&1 &
  echo $! > controller-manager.pid
  curl -sfk -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$PORT/healthz" >/dev/null || {
    echo "the API server did not become healthy; see $RUN/apiserver.log" >&2
    down
    exit 1
  }
  # The tests are told the version explicitly, as they are for any cluster.
  echo "export LLMOPS_TEST_KUBECONFIG=$RUN/kubeconfig LLMOPS_TEST_KUBERNETES_VERSION=v1.20.2"
}

down() {
  local component
  for component in controller-manager apiserver etcd; do
    if [[ -f "$RUN/$component.pid" ]]; then
      kill "$(cat "$RUN/$component.pid")" 2>/dev/null || true
      rm -f "$RUN/$component.pid"
    fi
  done
}

case "${1:-}" in
  build) build ;;
  up) up ;;
  down) down ;;
  *) echo "usage: $0 build|up|down" >&2; exit 2 ;;
esac
