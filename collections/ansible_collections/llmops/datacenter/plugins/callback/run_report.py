# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
from __future__ import annotations

DOCUMENTATION = r"""
name: run_report
type: aggregate
short_description: Write what a playbook run did to report.json, report.md and report.html
version_added: "0.1.0"
author:
  - llmops contributors
description:
  - "After every C(ansible-playbook) run, writes C(<output_dir>/<inventory>/report.json), C(report.md) and
    C(report.html): each play (phase) with its start, end and duration; per host the ok, changed, failed,
    skipped, unreachable, ignored and rescued counts of the play recap; every changed and every failed task
    (host, task, message); the placement plan's summary when M(llmops.datacenter.placement_plan) ran; the
    endpoints the run published; and a short text summary."
  - The HTML page holds the phase timeline as an SVG chart drawn with matplotlib.
  - C(<inventory>) is the name of the first inventory source's folder, as C(playbooks/placement.yml)
    computes it (C(-i inventories/lab) and C(-i inventories/lab/hosts.yml) both give C(lab)); a source that
    is not a path (C(-i host1,host2,)) gives C(inline).
  - "Endpoints: any task result that carries C(llmops_endpoints), a mapping of endpoint name to URL, as a
    module's return value or as facts set under that name (in roles C(<role>_llmops_endpoints)) with
    M(ansible.builtin.set_fact), is listed in the report. See docs/run-report.md in the collection."
  - Output of tasks with C(no_log) is never written; their message is Ansible's censored notice.
  - The reports are replaced atomically at the end of each run; C(--syntax-check) and list options write
    nothing.
  - Enable it with C(callbacks_enabled = llmops.datacenter.run_report) in C(ansible.cfg); it works next to
    any stdout callback.
requirements:
  - the C(llmops) Python package on the controller (C(pip install -e .) in the project)
  - matplotlib on the controller for the timeline chart (without it the HTML page says so and has no chart)
options:
  output_dir:
    description:
      - Folder under which C(<inventory>/report.*) is written.
      - A relative path is resolved against the folder of the C(ansible.cfg) in use (the project root in this
        project, so the report lands next to C(out/<inventory>/plan.json)), or against the current folder when
        no C(ansible.cfg) is in use.
    type: str
    default: out
    env:
      - name: LLMOPS_RUN_REPORT_DIR
    ini:
      - section: callback_run_report
        key: output_dir
"""

import os
from datetime import UTC, datetime

from ansible import constants as C
from ansible import context
from ansible.playbook.task_include import TaskInclude
from ansible.plugins.callback import CallbackBase

try:
    from llmops.report import RunRecorder, write_report

    HAS_LLMOPS = True
    LLMOPS_IMPORT_ERROR = None
except ImportError as exc:
    HAS_LLMOPS = False
    LLMOPS_IMPORT_ERROR = f"{type(exc).__name__}: {exc}"


def inventory_name(sources) -> str:
    """The environment's name from the first inventory source: inventories/<env>[/hosts.yml]."""
    if not sources:
        return "inline"
    first = str(sources[0])
    if "," in first and not os.path.exists(first):
        return "inline"
    folder = first if os.path.isdir(first) else os.path.dirname(first)
    return os.path.basename(os.path.normpath(os.path.abspath(folder))) or "inline"


def _in_rescued_block(task) -> bool:
    """Whether a failure of this task is handled by the rescue section of a block around it."""
    child, parent = task, getattr(task, "_parent", None)
    while parent is not None:
        rescue = getattr(parent, "rescue", None) or []
        always = getattr(parent, "always", None) or []
        # Failures in the rescue or always sections are not rescued by that same block.
        if rescue and not any(getattr(entry, "_uuid", None) == child._uuid for entry in [*rescue, *always]):
            return True
        child, parent = parent, getattr(parent, "_parent", None)
    return False


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "llmops.datacenter.run_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self._recorder = None
        self._inventory_known = False
        self._warned = False

    def _ready(self) -> bool:
        if not HAS_LLMOPS:
            if not self._warned:
                self._display.error(
                    "llmops.datacenter.run_report: the llmops Python package is not importable by the "
                    "controller's Python; install it (pip install -e . in the project, or scripts/setup.sh). "
                    f"No run report is written. ({LLMOPS_IMPORT_ERROR})"
                )
                self._warned = True
            return False
        return True

    def _ensure_recorder(self):
        if self._recorder is None:
            # Until the first play shows the inventory Ansible loaded, the command line's -i.
            sources = list(context.CLIARGS.get("inventory") or [])
            self._recorder = RunRecorder(
                inventory=inventory_name(sources),
                inventory_sources=[str(source) for source in sources],
                check_mode=bool(context.CLIARGS.get("check")),
            )
        return self._recorder

    @staticmethod
    def _now():
        return datetime.now(UTC)

    # Events -------------------------------------------------------------------------------------

    def v2_playbook_on_start(self, playbook):
        if not self._ready():
            return
        self._ensure_recorder().start_playbook(getattr(playbook, "_file_name", "") or "", at=self._now())

    def v2_playbook_on_play_start(self, play):
        if not self._ready():
            return
        recorder = self._ensure_recorder()
        if not self._inventory_known:
            # The inventory the run really loaded (ansible.cfg's default included), absolute paths.
            inventory = getattr(play.get_variable_manager(), "_inventory", None)
            sources = [str(source) for source in getattr(inventory, "_sources", None) or []]
            if sources:
                recorder.inventory = inventory_name(sources)
                recorder.inventory_sources = sources
            self._inventory_known = True
        recorder.start_phase(play.get_name().strip(), at=self._now())

    def _record(self, result, status, ignored=False):
        if not self._ready():
            return
        task = result._task
        self._ensure_recorder().task_result(
            host=result._host.get_name(),
            task=task.get_name(),
            status=status,
            result=result._result,
            action=getattr(task, "resolved_action", None) or task.action,
            ignored=ignored,
            rescued=status == "failed" and not ignored and _in_rescued_block(task),
            counted=not isinstance(task, TaskInclude),
        )

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed", ignored=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable", ignored=bool(getattr(result._task, "ignore_unreachable", False)))

    def v2_playbook_on_stats(self, stats):
        if not self._ready():
            return
        recorder = self._ensure_recorder()
        recap = {host: stats.summarize(host) for host in sorted(stats.processed)}
        recorder.finish(recap, at=self._now())
        directory = os.path.join(self._output_root(), recorder.inventory)
        try:
            report, warnings = write_report(recorder.report(), directory)
        except Exception as exc:  # a report problem must never hide the run's own result
            self._display.warning(f"llmops.datacenter.run_report: could not write the run report: {exc}")
            return
        for warning in warnings:
            self._display.warning(warning)
        self._display.display(f"Run report: {report['files']['html']}")

    def _output_root(self) -> str:
        root = os.path.expanduser(str(self.get_option("output_dir")))
        if os.path.isabs(root):
            return root
        config_file = C.CONFIG_FILE
        base = os.path.dirname(os.path.abspath(config_file)) if config_file else os.getcwd()
        return os.path.join(base, root)
