# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""Write Prometheus configuration files only after promtool has accepted them.

Runs on the target host: standard library only. The contract with the calling module is narrow:
a ``run_command(argv) -> (rc, stdout, stderr)`` callable and a ``check_mode`` flag, so this code is
tested without Ansible.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Words YAML 1.1 parsers (PyYAML, Prometheus' go-yaml) read as booleans or null when unquoted.
_YAML_11_WORDS = {"y", "yes", "n", "no", "on", "off", "true", "false", "null"}


class PrometheusFileError(Exception):
    """Bad input or a rejected file; the message names the field or the promtool verdict."""


def dump_yaml(data):
    """Render dicts, lists and scalars as block YAML, deterministically.

    Every string is written JSON-quoted (a valid YAML double-quoted scalar), so label values and
    PromQL expressions never change meaning through YAML's implicit typing ("on", "1e3", "no").
    Key order is kept, so the same input always yields byte-identical output (idempotence).
    """
    return "\n".join(_yaml_lines(data, 0)) + "\n"


def _yaml_scalar(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise PrometheusFileError(f"cannot write a value of type {type(value).__name__} to YAML")


def _yaml_key(key):
    key = str(key)
    if _PLAIN_KEY.match(key) and key.lower() not in _YAML_11_WORDS:
        return key
    return json.dumps(key)


def _is_inline(value):
    return not isinstance(value, (dict, list)) or not value


def _inline(value):
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _yaml_scalar(value)


def _yaml_lines(value, indent):
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return [pad + "{}"]
        lines = []
        for key, item in value.items():
            if _is_inline(item):
                lines.append(f"{pad}{_yaml_key(key)}: {_inline(item)}")
            else:
                lines.append(f"{pad}{_yaml_key(key)}:")
                lines.extend(_yaml_lines(item, indent + 2))
        return lines
    if isinstance(value, list):
        if not value:
            return [pad + "[]"]
        lines = []
        for item in value:
            if _is_inline(item):
                lines.append(f"{pad}- {_inline(item)}")
            else:
                nested = _yaml_lines(item, indent + 2)
                lines.append(f"{pad}- {nested[0][indent + 2 :]}")
                lines.extend(nested[1:])
        return lines
    return [pad + _yaml_scalar(value)]


def read_text(path):
    """The current content of ``path``, or None when it does not exist yet."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


class ValidatedFile:
    """Replace a file atomically, and only with content a validator command accepts.

    ``validate_argv`` is the command with ``{path}`` where the candidate file goes, for example
    ``["promtool", "check", "rules", "{path}"]``. The candidate is written next to the destination
    so that relative paths inside it (rule_files globs, password files) resolve the same way they
    will for the live file.
    """

    def __init__(self, path, run_command, check_mode=False, validate_argv=None):
        self.path = path
        self.run_command = run_command
        self.check_mode = check_mode
        self.validate_argv = validate_argv

    def apply(self, desired):
        """Validate and write ``desired``; return a result dict with changed and diff."""
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise PrometheusFileError(f"path: directory {directory} does not exist; create it first")
        current = read_text(self.path)
        changed = current != desired
        result = {
            "changed": changed,
            "path": self.path,
            "diff": {
                "before_header": self.path,
                "after_header": self.path,
                "before": current or "",
                "after": desired,
            },
        }
        if not changed:
            return result
        # Validation runs in check mode too: a dry run must report a file promtool would reject.
        candidate = self._write_candidate(directory, desired)
        try:
            self._validate(candidate)
            if changed and not self.check_mode:
                self._keep_mode_of_live_file(candidate)
                os.replace(candidate, self.path)
                candidate = None
        finally:
            if candidate is not None:
                os.unlink(candidate)
        return result

    def _write_candidate(self, directory, desired):
        base = os.path.basename(self.path)
        # The suffix keeps the candidate out of rule_files globs such as "*.rules.yml".
        descriptor, candidate = tempfile.mkstemp(prefix=f".{base}.", suffix=".candidate", dir=directory)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(desired)
        return candidate

    def _keep_mode_of_live_file(self, candidate):
        try:
            live = os.stat(self.path)
        except FileNotFoundError:
            os.chmod(candidate, 0o644)
            return
        os.chmod(candidate, live.st_mode & 0o7777)
        # Unprivileged runs keep their own ownership; the module's owner/group options apply after.
        with contextlib.suppress(PermissionError):
            os.chown(candidate, live.st_uid, live.st_gid)

    def _validate(self, candidate):
        if not self.validate_argv:
            return
        argv = [part.replace("{path}", candidate) for part in self.validate_argv]
        rc, stdout, stderr = self.run_command(argv)
        if rc != 0:
            verdict = "\n".join(text.strip() for text in (stdout, stderr) if text and text.strip())
            # promtool names the candidate file; name the file the user asked for instead.
            verdict = verdict.replace(candidate, self.path)
            raise PrometheusFileError(
                f"{' '.join(self.validate_argv[:3])} rejected the new {self.path}; the live file was not "
                f"changed:\n{verdict}"
            )
