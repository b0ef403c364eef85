#!/usr/bin/env bash
# Builds the Kubernetes 1.20.2 bundle a site mirror serves, once, cached in .cache/kubernetes-1.20.2:
#   bin/         kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubeadm kubectl
#                (Go, from Debian's `kubernetes` source package), etcd (Debian's etcd-server 3.4.23),
#                pause (static C build of the tree's build/pause/linux/pause.c)
#   images/      <name>_<tag>.oci.tar: OCI archives built locally with podman, no registry involved
#   bundle.json  versions, every binary with its sha256, every image archive
# No Kubernetes package or image can be downloaded here, so everything comes from Debian's mirror.
# A second run with everything cached checks the tarball and the stamps and returns in seconds.
#   scripts/kube-build.sh
# Needs golang-1.19-go, golang-github-modern-go-reflect2-dev, gcc, libc6-dev, podman (scripts/setup.sh)
# and the lab image (scripts/build-image.sh, called when missing): kube-proxy runs on it, with iptables.
set -euo pipefail
source "$(dirname "$0")/env.sh"

VERSION=v1.20.2
ETCD_VERSION=3.4.23
ETCD_IMAGE_TAG=3.4.23-0
# kubeadm 1.20.2 asks for pause:3.2; the binary is the 1.20.2 tree's pause.c.
PAUSE_IMAGE_TAG=3.2
CACHE="$LLMOPS_ROOT/.cache/kubernetes-1.20.2"
BIN="$CACHE/bin"
IMAGES="$CACHE/images"
TARBALL_URL="http://deb.debian.org/debian/pool/main/k/kubernetes/kubernetes_1.20.5+really1.20.2.orig.tar.gz"
TARBALL_SHA256="b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc"
GO=/usr/lib/go-1.19/bin/go
REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
GO_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubeadm kubectl)
# The release date of 1.20.2: a fixed build date keeps the binaries reproducible.
BUILD_DATE=2021-01-13T00:00:00Z

started=$SECONDS
phase_start=$SECONDS
phase() {  # phase NAME: print how long the previous phase took, then start timing the next one
  echo "kube-build: $1 (+$((SECONDS - phase_start)) s, $((SECONDS - started)) s total)"
  phase_start=$SECONDS
}

for tool in "$GO" gcc podman; do
  command -v "$tool" >/dev/null || { echo "kube-build: $tool missing: run scripts/setup.sh" >&2; exit 2; }
done
[[ -d "$REFLECT2" ]] || { echo "kube-build: $REFLECT2 missing: run scripts/setup.sh" >&2; exit 2; }

# The cache's earlier name (the control plane alone); moving it keeps its tree and binaries.
if [[ -d "$LLMOPS_ROOT/.cache/kube-control-plane-1.20.2" && ! -e "$CACHE" ]]; then
  mv "$LLMOPS_ROOT/.cache/kube-control-plane-1.20.2" "$CACHE"
fi
mkdir -p "$CACHE/downloads" "$CACHE/tools" "$BIN" "$IMAGES"

tarball="$CACHE/downloads/kubernetes-1.20.2.orig.tar.gz"
if [[ ! -f "$tarball" ]]; then
  curl -sSfo "$tarball.part" "$TARBALL_URL"
  mv "$tarball.part" "$tarball"
fi
echo "$TARBALL_SHA256  $tarball" | sha256sum -c --quiet || {
  echo "kube-build: $tarball does not match sha256 $TARBALL_SHA256; delete it and run again" >&2
  exit 1
}
phase "source tarball verified"

export GOPATH="$CACHE/gopath" GO111MODULE=off GOFLAGS= GOPROXY=off CGO_ENABLED=0 GOCACHE="$CACHE/gocache"
# openapi-gen resolves the standard library (time.Duration, ...) through `go` on PATH or GOROOT;
# Debian's golang-1.19-go puts neither in place, and without them defaults fail as "Unsupported".
export GOROOT="$(dirname "$(dirname "$GO")")" PATH="$(dirname "$GO"):$PATH"
tree="$GOPATH/src/k8s.io/kubernetes"
if [[ ! -f "$tree/.llmops-unpacked" ]]; then
  rm -rf "$tree"
  mkdir -p "$GOPATH/src/k8s.io"
  tar -xzf "$tarball" -C "$GOPATH/src/k8s.io"
  mv "$GOPATH/src/k8s.io/kubernetes-1.20.2" "$tree"
  # reflect2 1.0.1 (vendored) breaks on Go >= 1.18; Debian's 1.0.2 does not.
  rm -rf "$tree/vendor/github.com/modern-go/reflect2"
  cp -r "$REFLECT2" "$tree/vendor/github.com/modern-go/"
  touch "$tree/.llmops-unpacked"
fi
cd "$tree"
if [[ ! -f pkg/generated/openapi/zz_generated.openapi.go ]]; then
  "$GO" build -trimpath -o "$CACHE/tools/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  dirs=$(grep -Rl --include='*.go' '+k8s:openapi-gen=' vendor/k8s.io pkg cmd plugin 2>/dev/null \
    | grep -v -e 'vendor/k8s.io/code-generator' -e 'vendor/k8s.io/sample-apiserver' -e '_test.go' \
    | xargs -n1 dirname | sort -u | sed 's#^#k8s.io/kubernetes/#' | paste -sd,)
  "$CACHE/tools/openapi-gen" --logtostderr -i "$dirs" -p k8s.io/kubernetes/pkg/generated/openapi \
    -O zz_generated.openapi -h hack/boilerplate/boilerplate.generatego.txt \
    -r "$CACHE/openapi-violations.report" --output-base "$GOPATH/src"
fi
rm -f "$BIN/openapi-gen"  # a build tool, not part of the bundle
phase "source tree ready"

# The version the release scripts stamp in (hack/lib/version.sh): without it every component
# reports v0.0.0-master, and kubeadm's kubelet version check refuses such a node.
ldflags="-s -w"
for pkg in k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version \
           k8s.io/kubernetes/vendor/k8s.io/component-base/version; do
  ldflags+=" -X $pkg.gitVersion=$VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=20"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$BUILD_DATE"
done
go_stamp=$(echo "$("$GO" version) trimpath providerless $ldflags" | sha256sum | cut -c1-16)
stale=()
for component in "${GO_COMPONENTS[@]}"; do
  if [[ ! -x "$BIN/$component" || "$(cat "$BIN/.$component.stamp" 2>/dev/null)" != "$go_stamp" ]]; then
    stale+=("./cmd/$component")
  fi
done
if ((${#stale[@]})); then
  echo "kube-build: go build ${stale[*]} (about 12 min on 2 cores from scratch)"
  # One go build for all of them: their shared packages compile once, links run in parallel.
  "$GO" build -trimpath -tags providerless -ldflags "$ldflags" -o "$BIN/" "${stale[@]}"
  for target in "${stale[@]}"; do
    echo "$go_stamp" > "$BIN/.${target#./cmd/}.stamp"
  done
fi
phase "Go components built"

if [[ ! -x "$BIN/etcd" || "$("$BIN/etcd" --version 2>/dev/null | sed -n 's/^etcd Version: //p')" != "$ETCD_VERSION" ]]; then
  rm -rf "$CACHE/downloads/etcd" "$CACHE/downloads"/etcd-server_*.deb
  (cd "$CACHE/downloads" && apt-get download etcd-server >/dev/null)
  deb=$(ls "$CACHE/downloads"/etcd-server_*.deb)
  [[ "$(dpkg-deb -f "$deb" Version)" == "$ETCD_VERSION"-* ]] || {
    echo "kube-build: Debian's etcd-server is $(dpkg-deb -f "$deb" Version), the bundle wants $ETCD_VERSION" >&2
    exit 1
  }
  dpkg-deb -x "$deb" "$CACHE/downloads/etcd"
  cp "$CACHE/downloads/etcd/usr/bin/etcd" "$BIN/etcd"
fi
if [[ ! -x "$BIN/pause" || "$BIN/pause" -ot "$tree/build/pause/linux/pause.c" ]]; then
  gcc -Os -Wall -Werror -static -DVERSION=v3.4-llmops -o "$BIN/pause" "$tree/build/pause/linux/pause.c"
fi
phase "etcd and pause ready"

# image NAME TAG BINARY BASE: build localhost/kubernetes/NAME:TAG and save it as an OCI archive.
# Rebuilt only when the binary or the recipe changed (the stamp holds both sha256s).
image() {
  local name="$1" tag="$2" binary="$3" base="$4"
  local archive="$IMAGES/${name}_${tag}.oci.tar" context="$CACHE/image-context/$name"
  rm -rf "$context"
  mkdir -p "$context/rootfs/tmp" "$context/rootfs/usr/local/bin"
  chmod 1777 "$context/rootfs/tmp"
  cp "$BIN/$binary" "$context/rootfs/usr/local/bin/$binary"
  if [[ "$base" == scratch ]]; then
    # A dynamically linked binary (Debian's etcd) brings the libraries and the loader it names;
    # ldd prints nothing usable for the static Go binaries and pause.
    local lib
    for lib in $(ldd "$BIN/$binary" 2>/dev/null | grep -o '/[^ ]*' || true); do
      install -D -m 0755 "$(readlink -f "$lib")" "$context/rootfs$lib"
    done
    cat > "$context/Containerfile" <<EOF
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin
EOF
  else
    # kube-proxy programs iptables (nft backend, as on the Debian 12 nodes) and reads conntrack.
    cat > "$context/Containerfile" <<EOF
FROM $base
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      iptables conntrack >/dev/null && rm -rf /var/lib/apt/lists/*
COPY rootfs/usr/local/bin/ /usr/local/bin/
STOPSIGNAL SIGTERM
CMD []
EOF
  fi
  if [[ "$binary" == pause ]]; then
    printf 'USER 65535:65535\nENTRYPOINT ["/usr/local/bin/pause"]\n' >> "$context/Containerfile"
  else
    printf 'ENTRYPOINT ["/usr/local/bin/%s"]\n' "$binary" >> "$context/Containerfile"
  fi
  local stamp  # size and mtime stand for the binary: hashing them all would cost seconds per run
  stamp=$( (stat -c '%s %Y' "$BIN/$binary"; cat "$context/Containerfile"; cd "$context/rootfs" && find . -type f | sort) \
    | sha256sum | cut -c1-16)
  if [[ -f "$archive" && "$(cat "$archive.stamp" 2>/dev/null)" == "$stamp" ]]; then
    return 0
  fi
  [[ "$base" == scratch ]] || podman image exists "$base" || "$LLMOPS_ROOT/scripts/build-image.sh"
  podman build -q --network=host -t "localhost/kubernetes/$name:$tag" "$context" >/dev/null
  rm -f "$archive"
  podman save -q --format oci-archive -o "$archive.part" "localhost/kubernetes/$name:$tag"
  mv "$archive.part" "$archive"
  echo "$stamp" > "$archive.stamp"
  echo "kube-build: image $name:$tag -> $archive"
}

for component in kube-apiserver kube-controller-manager kube-scheduler; do
  image "$component" "$VERSION" "$component" scratch
done
image kube-proxy "$VERSION" kube-proxy "$LLMOPS_IMAGE"
image etcd "$ETCD_IMAGE_TAG" etcd scratch
image pause "$PAUSE_IMAGE_TAG" pause scratch
phase "images saved"

# bundle.json is rewritten only when a binary or an archive is newer than it.
if [[ -f "$CACHE/bundle.json" && -z "$(find "$BIN" "$IMAGES" -type f -newer "$CACHE/bundle.json" | head -1)" ]]; then
  phase "bundle.json up to date"
  echo "kube-build: $CACHE/bundle.json ready in $((SECONDS - started)) s"
  exit 0
fi
python3 - "$CACHE" "$VERSION" "$ETCD_IMAGE_TAG" "$PAUSE_IMAGE_TAG" <<'EOF'
import hashlib
import json
import os
import sys

cache, version, etcd_tag, pause_tag = sys.argv[1:]


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


names = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubeadm",
         "kubectl", "etcd", "pause"]
images = [(name, version) for name in ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy"]]
images += [("etcd", etcd_tag), ("pause", pause_tag)]
bundle = {
    "kubernetes_version": version,
    "etcd_image_tag": etcd_tag,
    "pause_image_tag": pause_tag,
    "binaries": [{"name": name, "path": os.path.join(cache, "bin", name),
                  "sha256": sha256(os.path.join(cache, "bin", name))} for name in names],
    "images": [{"name": name, "tag": tag, "archive": os.path.join(cache, "images", f"{name}_{tag}.oci.tar")}
               for name, tag in images],
}
path = os.path.join(cache, "bundle.json")
with open(path + ".part", "w", encoding="utf-8") as handle:
    json.dump(bundle, handle, indent=2)
    handle.write("\n")
os.replace(path + ".part", path)
EOF
phase "bundle.json written"
echo "kube-build: $CACHE/bundle.json ready in $((SECONDS - started)) s"
