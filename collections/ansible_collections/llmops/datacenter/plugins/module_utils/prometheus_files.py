# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""Write Prometheus configuration files only after promtool has accepted them.

Runs on the target host: standard library only. The contract with the calling module is narrow:
a ``run_command(argv) -> (rc, stdout, stderr)`` callable and a ``check_mode`` flag, so this code is
tested without Ansible.
"""

from __future__ import annotations

import os

from ansible_collections.llmops.datacenter.plugins.module_utils import yaml_text
from ansible_collections.llmops.datacenter.plugins.module_utils.managed_file import ensure_file


class PrometheusFileError(Exception):
    """Bad input or a rejected file; the message names the field or the promtool verdict."""


def dump_yaml(data):
    """Prometheus files as deterministic block YAML (see module_utils.yaml_text), ASCII only.

    A value YAML cannot hold is reported as a PrometheusFileError, so the module fails cleanly.
    """
    try:
        return yaml_text.dump(data, ensure_ascii=True)
    except yaml_text.UnrepresentableValue as error:
        raise PrometheusFileError(str(error)) from None


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
        """Validate and write ``desired``; return a result dict with changed, path and diff."""
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise PrometheusFileError(f"path: directory {directory} does not exist; create it first")
        validate = self._validate if self.validate_argv else None
        result = ensure_file(self.path, desired, self.check_mode, validate=validate, new_file_mode=0o644)
        result["path"] = self.path
        return result

    def _validate(self, candidate):
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
