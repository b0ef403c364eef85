"""Build a model directory's manifest: every file's path, size and sha256, and its architecture."""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from llmops.catalog import architecture_from_hf_dict

MANIFEST_SCHEMA = "llmops.model-manifest/v1"
# Names and versions become S3 key segments and node directory names.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# The node keeps its verified manifest under this name inside the model directory.
RESERVED_PATHS = {".llmops-manifest.json"}
CHUNK = 4 * 1024 * 1024


class ManifestError(ValueError):
    """A model directory that cannot become an artifact; the message names the file or field."""


def check_name(field: str, value: str) -> None:
    if not NAME_PATTERN.match(value or "") or value in (".", ".."):
        raise ManifestError(
            f"{field} {value!r} is not valid: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def model_files(directory: Path) -> list[Path]:
    """Regular files under ``directory``, sorted; hidden files (stamps, caches) are not part of a model."""
    files = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_symlink():
            raise ManifestError(f"{path}: symbolic links are not pushed; copy the file into the model directory")
        if path.is_file():
            files.append(path)
    return files


def architecture_summary(config: dict[str, Any], source: str) -> dict[str, Any]:
    """What the planner needs from config.json, with the parameter count it derives."""
    try:
        arch = architecture_from_hf_dict(config, key=source)
    except ValueError as error:
        raise ManifestError(f"{source}: {error}") from error
    return {
        "architectures": list(config.get("architectures") or []),
        "model_type": arch.model_type,
        "total_params": arch.total_params,
        "hf_config": config,
    }


def build_manifest(directory: str | Path, name: str, version: str, parallel: int = 4) -> dict[str, Any]:
    """The manifest of a model directory; requires config.json (the architecture comes from it)."""
    directory = Path(directory)
    check_name("name", name)
    check_name("version", version)
    if not directory.is_dir():
        raise ManifestError(f"{directory}: not a directory")
    config_path = directory / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ManifestError(f"{config_path}: missing; a model directory needs its Hugging Face config.json") from error
    except json.JSONDecodeError as error:
        raise ManifestError(f"{config_path}: not valid JSON ({error.msg} at line {error.lineno})") from error
    if not isinstance(config, dict):
        raise ManifestError(f"{config_path}: must hold a JSON object")
    files = model_files(directory)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        digests = list(pool.map(sha256_file, files))
    entries = [
        {"path": path.relative_to(directory).as_posix(), "size": path.stat().st_size, "sha256": digest}
        for path, digest in zip(files, digests, strict=True)
    ]
    return {
        "schema": MANIFEST_SCHEMA,
        "name": name,
        "version": version,
        "architecture": architecture_summary(config, str(config_path)),
        "total_bytes": sum(entry["size"] for entry in entries),
        "files": entries,
    }


def same_content(left: dict[str, Any], right: dict[str, Any]) -> bool:
    """Two manifests describe the same files (what a re-push must match to be a no-op)."""
    return left.get("files") == right.get("files")
