# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)
"""Register the NVIDIA container runtime with containerd or CRI-O by editing TOML text.

Targets only have the standard library: Python 3.11's tomllib reads TOML but nothing writes it,
and re-serialising a parsed file would drop the operator's comments and ordering. So this is a
minimal section-aware editor: it finds `[table]` headers, sets `key = value` lines inside the
tables it manages, appends tables that are missing, and leaves every other line as it was. The
result is parsed back with tomllib (when present) and must contain the managed values, or
nothing is written.
"""

from __future__ import annotations

import re

try:
    import tomllib
except ImportError:  # Python < 3.11 on the target: the edit is still made, unverified
    tomllib = None

CONTAINERD_CRI_TABLE = {2: ("plugins", "io.containerd.grpc.v1.cri", "containerd"), 3: ("plugins", "io.containerd.cri.v1.runtime", "containerd")}
CRIO_DROP_IN = "/etc/crio/crio.conf.d/99-nvidia.conf"
CONTAINERD_CONFIG = "/etc/containerd/config.toml"

_HEADER_RE = re.compile(r"^\s*\[(?!\[)(?P<key>[^\]]+)\]\s*(#.*)?$")
_VERSION_RE = re.compile(r"^version\s*=\s*(\d+)\s*(#.*)?$")


class RuntimeConfigError(Exception):
    """A config this editor must not touch; the message says why and what is accepted."""


def split_key(dotted):
    """'plugins."io.containerd.grpc.v1.cri".containerd' -> ('plugins', 'io.containerd.grpc.v1.cri', 'containerd')."""
    parts, current, quote = [], "", None
    for char in dotted.strip():
        if quote:
            if char == quote:
                quote = None
            else:
                current += char
        elif char in "\"'":
            quote = char
        elif char == ".":
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return tuple(parts)


def format_key(parts):
    return ".".join(part if re.match(r"^[A-Za-z0-9_-]+$", part) else f'"{part}"' for part in parts)


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_version(text):
    """The top-level `version` of a containerd config, or None when it has none."""
    for line in text.splitlines():
        if _HEADER_RE.match(line):
            return None
        match = _VERSION_RE.match(line.strip())
        if match:
            return int(match.group(1))
    return None


def _tables(lines):
    """[(key tuple, header line index, end index)] in file order."""
    starts = [(index, split_key(match.group("key"))) for index, line in enumerate(lines) if (match := _HEADER_RE.match(line))]
    tables = []
    for position, (index, key) in enumerate(starts):
        end = starts[position + 1][0] if position + 1 < len(starts) else len(lines)
        tables.append((key, index, end))
    return tables


def set_table_values(text, table, values):
    """Text with `table` holding `values` (key -> python value); other lines untouched."""
    lines = text.splitlines()
    for key, value in values.items():
        wanted = f"{key} = {toml_value(value)}"
        found = next((t for t in _tables(lines) if t[0] == table), None)
        if found is None:
            if lines and lines[-1].strip():
                lines.append("")
            lines += [f"[{format_key(table)}]", f"  {wanted}"]
            continue
        _key, header, end = found
        key_re = re.compile(rf"^(\s*){re.escape(key)}\s*=")
        for index in range(header + 1, end):
            match = key_re.match(lines[index])
            if match:
                lines[index] = f"{match.group(1) or '  '}{wanted}"
                break
        else:
            insert_at = end
            while insert_at > header + 1 and not lines[insert_at - 1].strip():
                insert_at -= 1
            lines.insert(insert_at, f"  {wanted}")
    return "\n".join(lines) + "\n"


def desired_tables(runtime, version, runtime_name, binary_path, set_as_default, register_runtime=True, settings=None):
    """{table key: {key: value}} the runtime needs for the NVIDIA runtime, plus further `settings`.

    settings: {dotted table name: {key: value}} set the same way (e.g. the CRI plugin's
    sandbox_image, runc's SystemdCgroup, a registry's CA); applied after the runtime's own tables.
    """
    tables = _runtime_tables(runtime, version, runtime_name, binary_path, set_as_default) if register_runtime else {}
    for dotted, values in (settings or {}).items():
        if not isinstance(values, dict):
            raise RuntimeConfigError(f"settings: {dotted!r} must map to a table of key: value; got {values!r}")
        tables.setdefault(split_key(dotted), {}).update(values)
    return tables


def _runtime_tables(runtime, version, runtime_name, binary_path, set_as_default):
    if runtime == "crio":
        tables = {("crio", "runtime", "runtimes", runtime_name): {"runtime_path": binary_path, "runtime_type": "oci"}}
        if set_as_default:
            tables[("crio", "runtime")] = {"default_runtime": runtime_name}
        return tables
    base = CONTAINERD_CRI_TABLE[version]
    tables = {
        (*base, "runtimes", runtime_name): {"runtime_type": "io.containerd.runc.v2"},
        (*base, "runtimes", runtime_name, "options"): {"BinaryName": binary_path},
    }
    if set_as_default:
        tables[base] = {"default_runtime_name": runtime_name}
    return tables


def render(current, runtime, requested_version, runtime_name, binary_path, set_as_default, register_runtime=True, settings=None):
    """(new text, config version used). Raises RuntimeConfigError for configs it must not edit."""
    text = current or ""
    version = None
    if runtime == "containerd":
        found = config_version(text)
        has_tables = any(_HEADER_RE.match(line) for line in text.splitlines())
        if found is None and has_tables:
            raise RuntimeConfigError(
                "config_version: the file has tables but no top-level version, i.e. containerd's version 1 "
                "format, whose plugin names differ; accepted: files with version = 2 (containerd 1.x) or 3 (containerd 2.x)"
            )
        if found is not None and found not in CONTAINERD_CRI_TABLE:
            raise RuntimeConfigError(f"config_version: the file declares version = {found}; accepted: 2, 3")
        if found is not None and requested_version not in (None, found):
            raise RuntimeConfigError(
                f"config_version: {requested_version} was requested but the file declares version = {found}; "
                f"accepted: {found} or auto"
            )
        version = found or requested_version or 2
        if found is None:
            text = f"version = {version}\n" + text
    for table, values in desired_tables(runtime, version, runtime_name, binary_path, set_as_default, register_runtime, settings).items():
        text = set_table_values(text, table, values)
    if tomllib is not None:
        try:
            parsed = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise RuntimeConfigError(f"the edited config would not parse as TOML ({error}); nothing was written") from None
        for table, values in desired_tables(runtime, version, runtime_name, binary_path, set_as_default, register_runtime, settings).items():
            node = parsed
            for part in table:
                node = node.get(part, {}) if isinstance(node, dict) else {}
            for key, value in values.items():
                if node.get(key) != value:
                    raise RuntimeConfigError(
                        f"{format_key(table)}.{key} would read {node.get(key)!r}, not {value!r}, after the edit "
                        "(the file defines it in a form this editor does not change); nothing was written"
                    )
    return text, version


def containerd_major_version(version_output):
    """2 for 'containerd containerd.io 2.0.0 ...', 1 for 'containerd github.com/containerd/containerd v1.6.20~ds1 ...'."""
    match = re.search(r"\sv?(\d+)\.\d+\.\d+", version_output or "")
    return int(match.group(1)) if match else None
