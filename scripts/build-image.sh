#!/usr/bin/env bash
# Builds the Debian 12 systemd image locally: debootstrap into a folder, then `podman import`.
# No container registry is needed. The image is cached: a second run returns at once.
# Usage: scripts/build-image.sh [--force]
set -euo pipefail
source "$(dirname "$0")/env.sh"

if [[ "${1:-}" != "--force" ]] && podman image exists "$LLMOPS_IMAGE"; then
  echo "image $LLMOPS_IMAGE already built"
  exit 0
fi

MIRROR="${LLMOPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
rootfs="$(mktemp -d /var/tmp/llmops-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

# python3 and python3-apt: Ansible's modules run inside the hosts.
# systemd-sysv: /sbin/init, so the container runs systemd as PID 1.
packages=systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,curl,gnupg,iproute2,procps,sudo,less
echo "debootstrap bookworm from $MIRROR (a few minutes, once)"
debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$MIRROR" >/dev/null

# Units that cannot work inside a container would only slow boot and add failed units.
for unit in systemd-remount-fs.service systemd-udevd.service systemd-udev-trigger.service \
            systemd-modules-load.service sys-kernel-debug.mount sys-kernel-tracing.mount \
            getty@tty1.service console-getty.service systemd-firstboot.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
echo "llmops-lab" > "$rootfs/etc/hostname"
: > "$rootfs/etc/machine-id"
# Keep apt lean inside the hosts: no recommends, no docs.
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
  > "$rootfs/etc/apt/apt.conf.d/90llmops"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

tar -C "$rootfs" -c . | podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'ENV container=podman' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  - "$LLMOPS_IMAGE" >/dev/null
echo "built $LLMOPS_IMAGE"
