# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""Filters that turn the Kubernetes bundle (scripts/kube-build.sh's bundle.json) into site mirror inputs."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError


def _field(entry, key, where):
    try:
        return entry[key]
    except (KeyError, TypeError):
        raise AnsibleFilterError(f"site_mirror_bundle: {where} entry {entry!r} has no {key}") from None


def _bundle_images(bundle, prefix):
    """[{name: <prefix>/<name>, tag, archive}] for every image of the bundle; [] for an empty bundle."""
    return [
        {"name": f"{prefix}/{_field(image, 'name', 'images')}", "tag": str(_field(image, "tag", "images")),
         "archive": _field(image, "archive", "images")}
        for image in (bundle or {}).get("images", [])
    ]


def _bundle_artifacts(bundle, prefix):
    """[{src, dest: <prefix>/<kubernetes_version>/bin/<name>, sha256}] for every binary of the bundle."""
    bundle = bundle or {}
    binaries = bundle.get("binaries", [])
    if binaries and not bundle.get("kubernetes_version"):
        raise AnsibleFilterError("site_mirror_bundle: kubernetes_version is missing")
    return [
        {"src": _field(binary, "path", "binaries"), "sha256": _field(binary, "sha256", "binaries"),
         "dest": f"{prefix}/{bundle['kubernetes_version']}/bin/{_field(binary, 'name', 'binaries')}"}
        for binary in binaries
    ]


class FilterModule:
    def filters(self):
        return {
            "site_mirror_bundle_images": _bundle_images,
            "site_mirror_bundle_artifacts": _bundle_artifacts,
        }
