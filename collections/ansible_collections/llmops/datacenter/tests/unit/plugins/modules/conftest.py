"""One way to run a module's main() in-process: the harness every module test uses."""

from __future__ import annotations

import contextlib
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

# Default for bin_path: leave AnsibleModule.get_bin_path searching the real PATH.
REAL_PATH_SEARCH = object()


class AnsibleExit(Exception):
    """The module called exit_json; args[0] is its result."""


class AnsibleFail(Exception):
    """The module called fail_json; args[0] is its result, with failed=True as Ansible adds it."""


def _exit_json(self, **result):
    raise AnsibleExit(result)


def _fail_json(self, **result):
    result["failed"] = True
    raise AnsibleFail(result)


@pytest.fixture
def run_module():
    """run_module(module, args, check_mode=False, diff=False, run_command=None, bin_path=...) -> result.

    Runs ``module.main()`` with ``args`` and returns the dict it passed to exit_json or fail_json
    (fail_json's with failed=True). ``result["warnings"]`` lists what the module warned about.
    ``run_command(argv) -> (rc, stdout, stderr)`` answers for the host's commands; ``bin_path``,
    when given, is what get_bin_path finds for any name (None: not found). Everything patched is
    restored when the call returns, so one test may mix runs with and without fakes.
    """

    def run(module, args, check_mode=False, diff=False, run_command=None, bin_path=REAL_PATH_SEARCH):
        warnings: list[str] = []
        with contextlib.ExitStack() as patches:
            patches.enter_context(patch_module_args(dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)))
            patch = patches.enter_context
            patch(mock.patch.object(basic.AnsibleModule, "exit_json", _exit_json))
            patch(mock.patch.object(basic.AnsibleModule, "fail_json", _fail_json))
            patch(mock.patch.object(basic.AnsibleModule, "warn", lambda self, text: warnings.append(text)))
            # Invocation logging goes to the host's syslog or journal: not this test's business.
            patch(mock.patch.object(basic.AnsibleModule, "_log_invocation", lambda self: None))
            if run_command is not None:
                patch(mock.patch.object(basic.AnsibleModule, "run_command", lambda self, argv, **kw: run_command(argv)))
            if bin_path is not REAL_PATH_SEARCH:
                patch(mock.patch.object(basic.AnsibleModule, "get_bin_path", lambda self, *a, **kw: bin_path))
            try:
                module.main()
            except (AnsibleExit, AnsibleFail) as ended:
                result = ended.args[0]
            else:
                pytest.fail(f"{module.__name__}.main() returned without calling exit_json or fail_json")
        result["warnings"] = warnings
        return result

    return run


class FakePromtool:
    """The run_command boundary: records each check and answers like promtool would."""

    def __init__(self, rc=0, stdout="SUCCESS", stderr=""):
        self.rc, self.stdout, self.stderr = rc, stdout, stderr
        self.calls = []

    def __call__(self, argv, **kwargs):
        with open(argv[-1], encoding="utf-8") as handle:
            self.calls.append((argv, handle.read()))
        return self.rc, self.stdout, self.stderr


@pytest.fixture
def fake_promtool():
    """FakePromtool(rc=0, stdout="SUCCESS", stderr=""): a promtool double for run_module's run_command."""
    return FakePromtool
