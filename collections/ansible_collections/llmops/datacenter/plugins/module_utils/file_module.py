# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""The Ansible side shared by modules that write one managed file (add_file_common_args=True)."""

from __future__ import annotations

import os


def exit_with_file_result(module, result):
    """Apply the owner/group/mode options to ``result["path"]``, keep the diff only in diff mode, exit.

    ``result`` is what managed_file.ensure_file returned, with ``path`` added.
    """
    path = result["path"]
    if os.path.exists(path):
        file_args = module.load_file_common_arguments(module.params, path=path)
        result["changed"] = module.set_fs_attributes_if_different(file_args, result["changed"])
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)
