"""The mirror's bundle.json: which Kubernetes release it holds, its binaries and images.

Written by scripts/kube-build.sh (and by whoever prepares a site's mirror):
{"kubernetes_version": "v1.20.2", "etcd_image_tag": "3.4.23-0", "pause_image_tag": "3.2",
 "binaries": [{"name": "kubelet", "path": "...", "sha256": "..."}],
 "images": [{"name": "kube-apiserver", "tag": "v1.20.2", "archive": "..."}]}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
REQUIRED_BINARIES = ("kubeadm", "kubelet", "kubectl")


@dataclass(frozen=True)
class Bundle:
    path: str
    kubernetes_version: str
    etcd_image_tag: str | None
    pause_image_tag: str | None
    binaries: dict[str, dict[str, str]] = field(default_factory=dict)
    images: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kubernetes_version": self.kubernetes_version,
            "etcd_image_tag": self.etcd_image_tag,
            "pause_image_tag": self.pause_image_tag,
            "binaries": self.binaries,
            "images": self.images,
        }


def read_bundle(path: str) -> tuple[Bundle | None, list[str]]:
    """The bundle and the problems with it (each naming `bundle`, the file and the field)."""
    where = f"bundle: {path}"
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        return None, [f"{where}: cannot be read ({error.strerror or error}); give the bundle.json of the mirror"]
    except json.JSONDecodeError as error:
        return None, [f"{where}: is not JSON ({error.msg} at line {error.lineno})"]
    if not isinstance(document, dict):
        return None, [f"{where}: must be a JSON object with kubernetes_version, binaries and images"]
    problems: list[str] = []
    version = document.get("kubernetes_version")
    if not isinstance(version, str) or not version:
        problems.append(f"{where}: kubernetes_version: missing; a release such as v1.20.2")
    binaries: dict[str, dict[str, str]] = {}
    raw_binaries = document.get("binaries", [])
    if not isinstance(raw_binaries, list):
        problems.append(f"{where}: binaries: must be a list of {{name, path, sha256}}")
        raw_binaries = []
    for index, entry in enumerate(raw_binaries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            problems.append(f"{where}: binaries[{index}]: must have name, path and sha256")
            continue
        sha256 = str(entry.get("sha256", "")).lower()
        if not _SHA256.match(sha256):
            problems.append(f"{where}: binaries[{index}] ({entry['name']}): sha256: must be 64 hex digits")
        binaries[entry["name"]] = {"path": str(entry.get("path", "")), "sha256": sha256}
    missing = [name for name in REQUIRED_BINARIES if name not in binaries]
    if missing and isinstance(document.get("binaries"), list):
        problems.append(f"{where}: binaries: lacks {', '.join(missing)} (a cluster needs {', '.join(REQUIRED_BINARIES)})")
    images = document.get("images", [])
    if not isinstance(images, list) or not all(isinstance(i, dict) and "name" in i and "tag" in i for i in images):
        problems.append(f"{where}: images: must be a list of {{name, tag, archive}}")
        images = []
    if problems:
        return None, problems
    return (
        Bundle(
            path=str(path),
            kubernetes_version=version,
            etcd_image_tag=document.get("etcd_image_tag"),
            pause_image_tag=document.get("pause_image_tag"),
            binaries=binaries,
            images=[{k: str(v) for k, v in image.items()} for image in images],
        ),
        [],
    )
