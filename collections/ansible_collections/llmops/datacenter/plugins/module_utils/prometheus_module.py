# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""The Ansible side shared by the prometheus_* modules: run the backend, report results."""

from __future__ import annotations

from ansible_collections.llmops.datacenter.plugins.module_utils.file_module import exit_with_file_result
from ansible_collections.llmops.datacenter.plugins.module_utils.prometheus_files import (
    PrometheusFileError,
    ValidatedFile,
)

FILE_OPTIONS = {
    "path": {"type": "path", "required": True},
    "promtool": {"type": "path", "default": "promtool"},
    "validate": {"type": "bool", "default": True},
}


def write_validated(module, render, promtool_check):
    """Render the file with ``render()``, validate with ``promtool <promtool_check> {path}``, write, exit.

    ``promtool_check`` is the promtool subcommand, e.g. ``["check", "rules"]``.
    """
    path = module.params["path"]
    validate_argv = None
    if module.params["validate"]:
        promtool = module.get_bin_path(module.params["promtool"], required=True)
        validate_argv = [promtool, *promtool_check, "{path}"]

    def run_command(argv):
        return module.run_command(argv)

    try:
        desired = render()
        result = ValidatedFile(path, run_command, module.check_mode, validate_argv).apply(desired)
    except PrometheusFileError as error:
        module.fail_json(msg=str(error), path=path, changed=False)

    exit_with_file_result(module, result)
