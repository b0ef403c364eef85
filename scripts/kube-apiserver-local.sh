#!/usr/bin/env bash
# A Kubernetes 1.20.2 control plane without nodes, on loopback, for the rollout's live tests:
# etcd, kube-apiserver and kube-controller-manager (quota status, garbage collection, namespace
# deletion). No kubelet: nothing is scheduled or run, so Ready pods, drains and traffic are out
# of reach; API behaviour (server-side apply, field ownership, dry runs, admission, quotas) is real.
#
#   scripts/kube-apiserver-local.sh build   build the binaries once into .cache/kube-control-plane-1.20.2/bin
#                                          (~12 min on 2 busy cores, 1 GB Go cache)
#   scripts/kube-apiserver-local.sh up      start it; prints the environment for the live tests
#   scripts/kube-apiserver-local.sh down    stop what `up` started
#
# Then:  LLMOPS_TEST_KUBECONFIG=... LLMOPS_TEST_KUBERNETES_VERSION=v1.20.2 \
#          python -m pytest tests/serving/test_kubernetes_live_cluster.py
# Sources: Debian's `kubernetes` source package (1.20.5+really1.20.2, the full tree with vendor/)
# from the Debian mirror, built as ARCHITECTURE.md describes; etcd from Debian's etcd-server.
# Build needs golang-1.19-go and golang-github-modern-go-reflect2-dev (apt-get install them).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HOME_DIR="$ROOT/.cache/kube-control-plane-1.20.2"
BIN="$HOME_DIR/bin"
RUN="$HOME_DIR/run"
TARBALL_URL="http://deb.debian.org/debian/pool/main/k/kubernetes/kubernetes_1.20.5+really1.20.2.orig.tar.gz"
TARBALL_SHA256="b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc"
GO=/usr/lib/go-1.19/bin/go
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
TOKEN=llmops-test-token
PORT=16443
ETCD_PORT=23790

build() {
  [[ -x "$GO" && -d "$REFLECT2" ]] || {
    echo "needs golang-1.19-go and golang-github-modern-go-reflect2-dev: apt-get install -y them" >&2
    exit 2
  }
  mkdir -p "$HOME_DIR/downloads" "$BIN"
  local tarball="$HOME_DIR/downloads/kubernetes-1.20.2.orig.tar.gz"
  [[ -f "$tarball" ]] || curl -sSfo "$tarball" "$TARBALL_URL"
  echo "$TARBALL_SHA256  $tarball" | sha256sum -c --quiet
  if [[ ! -x "$BIN/etcd" ]]; then
    (cd "$HOME_DIR/downloads" && apt-get download etcd-server >/dev/null && dpkg-deb -x etcd-server_*.deb etcd)
    cp "$HOME_DIR/downloads/etcd/usr/bin/etcd" "$BIN/etcd"
  fi
  export GOPATH="$HOME_DIR/gopath" GO111MODULE=off GOFLAGS= GOPROXY=off CGO_ENABLED=0 GOCACHE="$HOME_DIR/gocache"
  local tree="$GOPATH/src/k8s.io/kubernetes"
  if [[ ! -d "$tree" ]]; then
    mkdir -p "$GOPATH/src/k8s.io"
    tar -xzf "$tarball" -C "$GOPATH/src/k8s.io"
    mv "$GOPATH/src/k8s.io/kubernetes-1.20.2" "$tree"
    # reflect2 1.0.1 (vendored) breaks on Go >= 1.18; Debian's 1.0.2 does not.
    rm -rf "$tree/vendor/github.com/modern-go/reflect2"
    cp -r "$REFLECT2" "$tree/vendor/github.com/modern-go/"
  fi
  cd "$tree"
  if [[ ! -f pkg/generated/openapi/zz_generated.openapi.go ]]; then
    "$GO" build -o "$BIN/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
    local dirs
    dirs=$(grep -Rl --include='*.go' '+k8s:openapi-gen=' vendor/k8s.io pkg cmd plugin 2>/dev/null \
      | grep -v -e 'vendor/k8s.io/code-generator' -e 'vendor/k8s.io/sample-apiserver' -e '_test.go' \
      | xargs -n1 dirname | sort -u | sed 's#^#k8s.io/kubernetes/#' | paste -sd,)
    "$BIN/openapi-gen" --logtostderr -i "$dirs" -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
      -h hack/boilerplate/boilerplate.generatego.txt -r "$HOME_DIR/openapi-violations.report" --output-base "$GOPATH/src"
  fi
  for component in kube-apiserver kube-controller-manager; do
    [[ -x "$BIN/$component" ]] || "$GO" build -tags providerless -o "$BIN/$component" "./cmd/$component"
  done
  ls -la "$BIN"
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
  # A source build reports v0.0.0-master as its version: the tests are told the real one.
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
