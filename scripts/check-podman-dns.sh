#!/usr/bin/env bash
# Proves that containers on a podman user network resolve each other by name: a throwaway
# network with two containers, one must resolve the other. Fails fast naming the missing piece.
# Used by setup.sh, the lab start and the molecule create step. A success is remembered per
# boot and per network setup (podman's configuration and the installed CNI/netavark plugins):
# removing the DNS plugin changes the key, so the check runs again.
set -euo pipefail
source "$(dirname "$0")/env.sh"

setup_key=$( { cat "$CONTAINERS_CONF" 2>/dev/null; ls -l /usr/lib/cni /usr/libexec/podman 2>/dev/null || true; } \
             | sha256sum | cut -c1-16)
stamp="/run/llmops-podman-dns-ok-$setup_key"
[[ -f "$stamp" && "${1:-}" != "--force" ]] && exit 0

fail() { echo "podman DNS check FAILED: $*" >&2; exit 1; }
command -v podman >/dev/null || fail "podman is not installed (run scripts/setup.sh)"
podman image exists "$LLMOPS_IMAGE" || scripts/build-image.sh

net="llmops-dnscheck-$$"
cleanup() {
  podman rm --force --ignore "$net-a" "$net-b" >/dev/null 2>&1 || true
  podman network rm --force "$net" >/dev/null 2>&1 || true
}
trap cleanup EXIT
podman network create "$net" >/dev/null
dns=$(podman network inspect "$net" --format '{{.DNSEnabled}}')
if [[ "$dns" != true ]]; then
  backend=$(podman info --format '{{.Host.NetworkBackend}}')
  if [[ "$backend" == cni ]]; then
    fail "network '$net' has dns_enabled=false: podman's CNI backend needs the DNS plugin" \
         "(Debian package golang-github-containernetworking-plugin-dnsname, /usr/lib/cni/dnsname)"
  fi
  fail "network '$net' has dns_enabled=false with backend $backend: install aardvark-dns"
fi
podman run -d --name "$net-a" --network "$net" "$LLMOPS_IMAGE" sleep 60 >/dev/null
podman run -d --name "$net-b" --network "$net" "$LLMOPS_IMAGE" sleep 60 >/dev/null
for _ in 1 2 3 4 5; do
  if podman exec "$net-b" getent hosts "$net-a" >/dev/null 2>&1; then
    touch "$stamp" 2>/dev/null || true
    echo "podman DNS check: containers resolve each other by name"
    exit 0
  fi
  sleep 1
done
fail "container '$net-b' cannot resolve '$net-a' on network '$net' although dns_enabled=true" \
     "(is dnsmasq from the dnsname plugin blocked? see 'podman network inspect')"
