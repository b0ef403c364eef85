#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian/Ubuntu machine, as root:
# podman (runc, cgroupfs), debootstrap, Prometheus' promtool, and a project virtualenv in .venv.
# Idempotent: a second run only checks.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$LLMOPS_ROOT"

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
# golang-github-containernetworking-plugin-dnsname: podman 4.3's CNI backend resolves container
# names on a user network only with it; without it every multi-host lab and scenario fails.
system_packages=(podman runc debootstrap slirp4netns uidmap fuse-overlayfs iproute2
                 golang-github-containernetworking-plugin-dnsname
                 prometheus prometheus-node-exporter prometheus-alertmanager
                 python3-venv python3-dev git curl
                 golang-1.19-go golang-github-modern-go-reflect2-dev gcc libc6-dev
                 busybox-static)
# The last lines: scripts/kube-build.sh (Kubernetes 1.20.2 from Debian's source package, static pause);
# busybox-static: the molecule kubernetes scenario's test workload (an image FROM scratch).
missing=()
for pkg in "${system_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian packages start Prometheus, node exporter and Alertmanager on the host where systemd
# runs; the project only needs their binaries here (promtool, amtool, and servers its tests start).
for svc in prometheus prometheus-node-exporter prometheus-alertmanager; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done

PYTHON="${PYTHON:-python3}"
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -f "$stamp" ]]; then
  [[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# Prove container networking works the way the lab and molecule need it, so a missing piece
# fails here, named, instead of as a down target ten minutes later.
scripts/check-podman-dns.sh
ansible_version=$(.venv/bin/ansible --version 2>/dev/null | sed -n 1p)
echo "setup complete: $ansible_version, $(podman --version)"
