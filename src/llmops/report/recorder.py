"""Collect what a playbook run did, event by event, into the run report document.

The `llmops.datacenter.run_report` callback turns Ansible's callback events into plain calls on a
`RunRecorder`; nothing here imports Ansible, so the report's logic is tested with plain dicts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from datetime import UTC, datetime

SCHEMA = "llmops.run_report/1"

# Task results that carry this key (a module's return value, or facts set under this name) publish
# endpoints for the report: a mapping of endpoint name to URL. Roles set `<role>_llmops_endpoints`
# instead, which keeps their facts under the role's prefix (ansible-lint's var-naming rule).
ENDPOINTS_KEY = "llmops_endpoints"


def is_endpoints_key(key) -> bool:
    return isinstance(key, str) and (key == ENDPOINTS_KEY or key.endswith("_" + ENDPOINTS_KEY))

# Modules whose `summary` return value is the placement plan's summary.
PLAN_ACTIONS = frozenset({"llmops.datacenter.placement_plan", "placement_plan"})

# Long module output (stderr, tracebacks) is cut to this many characters in the report.
MESSAGE_LIMIT = 1000

COUNT_FIELDS = ("ok", "changed", "failed", "skipped", "unreachable", "ignored", "rescued")


@dataclasses.dataclass
class Counts:
    """Per-host task counts, with the meaning of Ansible's play recap.

    `ok` includes changed tasks and failures that were ignored; `failed` are failures that stopped
    the host (not ignored, not rescued by a block).
    """

    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    unreachable: int = 0
    ignored: int = 0
    rescued: int = 0

    def add(self, other: Counts) -> None:
        for field in COUNT_FIELDS:
            setattr(self, field, getattr(self, field) + getattr(other, field))

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Phase:
    name: str
    playbook: str
    started: datetime
    ended: datetime | None = None
    hosts: dict[str, Counts] = dataclasses.field(default_factory=dict)

    def counts(self, host: str) -> Counts:
        return self.hosts.setdefault(host, Counts())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _now() -> datetime:
    return datetime.now(UTC)


def _clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def result_message(result: Mapping) -> str:
    """The line a person wants to read about a task result: its msg, else stderr, else a failed item's."""
    if result.get("censored"):
        return str(result["censored"])
    for key in ("msg", "stderr", "reason"):
        value = result.get(key)
        if isinstance(value, str) and value.strip():
            return _clip(value)
    items = result.get("results")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping) and item.get("failed"):
                return result_message(item)
    return ""


def _loop_items(result: Mapping) -> list[Mapping]:
    items = result.get("results")
    return [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []


class RunRecorder:
    """Accumulates one run: phases (plays), per-host counts, changed and failed tasks, plan, endpoints."""

    def __init__(self, *, inventory: str, inventory_sources: list[str] | None = None, check_mode: bool = False):
        self.inventory = inventory
        self.inventory_sources = list(inventory_sources or [])
        self.check_mode = check_mode
        self.playbooks: list[str] = []
        self.started: datetime | None = None
        self.ended: datetime | None = None
        self.phases: list[Phase] = []
        self.changed_tasks: list[dict] = []
        self.failed_tasks: list[dict] = []
        self.plan: dict | None = None
        self.endpoints: list[dict] = []
        self.notes: list[str] = []
        self.recap: dict[str, Counts] | None = None

    # Events -------------------------------------------------------------------------------------

    def start_playbook(self, path: str, at: datetime | None = None) -> None:
        at = at or _now()
        if self.started is None:
            self.started = at
        self.playbooks.append(path)

    def start_phase(self, name: str, at: datetime | None = None) -> None:
        at = at or _now()
        if self.started is None:
            self.started = at
        self._close_phase(at)
        playbook = os.path.basename(self.playbooks[-1]) if self.playbooks else ""
        self.phases.append(Phase(name=name or "(unnamed play)", playbook=playbook, started=at))

    def task_result(
        self,
        *,
        host: str,
        task: str,
        status: str,
        result: Mapping,
        action: str = "",
        ignored: bool = False,
        rescued: bool = False,
        counted: bool = True,
    ) -> None:
        """Record one task's result on one host.

        status: "ok", "failed", "skipped" or "unreachable" (the callback event).
        ignored: the failure (or unreachability) was ignored (ignore_errors / ignore_unreachable).
        rescued: the failure was inside a block with a rescue section.
        counted: False for results the play recap does not count (include_tasks, include_role).
        """
        if status not in {"ok", "failed", "skipped", "unreachable"}:
            raise ValueError(f"status: must be one of ok, failed, skipped, unreachable, got {status!r}")
        phase = self._current_phase()
        counts = phase.counts(host)
        changed = bool(result.get("changed")) or any(item.get("changed") for item in _loop_items(result))
        entry = {"phase": phase.name, "host": host, "task": task}

        if status == "skipped":
            counts.skipped += 1
            return
        if status == "ok":
            if counted:
                counts.ok += 1
                counts.changed += changed
            if changed:
                self._add_changed(entry, result)
            self._collect_published(host, task, action, result)
            return
        if status == "unreachable":
            if ignored:
                counts.ok += 1
                counts.ignored += 1
            else:
                counts.unreachable += 1
        elif ignored:
            counts.ok += 1
            counts.ignored += 1
            counts.changed += changed
        elif rescued:
            counts.rescued += 1
        else:
            counts.failed += 1
        outcome = "unreachable" if status == "unreachable" else "failed"
        if ignored:
            outcome += " (ignored)"
        elif rescued:
            outcome += " (rescued)"
        self.failed_tasks.append({**entry, "outcome": outcome, "message": result_message(result)})

    def finish(self, recap: Mapping[str, Mapping[str, int]] | None = None, at: datetime | None = None) -> None:
        """End of the run. recap: Ansible's per-host totals (ok, changed, failures, ...), authoritative."""
        at = at or _now()
        if self.started is None:
            self.started = at
        self._close_phase(at)
        self.ended = at
        if recap is not None:
            self.recap = {host: _counts_from_recap(values) for host, values in recap.items()}

    # Helpers ------------------------------------------------------------------------------------

    def _current_phase(self) -> Phase:
        if not self.phases:
            self.start_phase("(before the first play)")
        return self.phases[-1]

    def _close_phase(self, at: datetime) -> None:
        if self.phases and self.phases[-1].ended is None:
            self.phases[-1].ended = at

    def _add_changed(self, entry: dict, result: Mapping) -> None:
        items = _loop_items(result)
        if items:
            message = f"{sum(bool(item.get('changed')) for item in items)} of {len(items)} items changed"
        else:
            message = result_message(result)
        for key in ("dest", "path"):
            # File-like modules say nothing else; the file they changed is what a reader wants.
            if not message and isinstance(result.get(key), str):
                message = f"{key}: {result[key]}"
        self.changed_tasks.append({**entry, "message": message})

    def _collect_published(self, host: str, task: str, action: str, result: Mapping) -> None:
        if action in PLAN_ACTIONS and isinstance(result.get("summary"), Mapping):
            self.plan = {"host": host, "task": task, "summary": dict(result["summary"])}
        for source in [result, *_loop_items(result)]:
            facts = source.get("ansible_facts")
            for values in (source, facts if isinstance(facts, Mapping) else {}):
                for key, published in values.items():
                    if is_endpoints_key(key):
                        self._add_endpoints(host, task, key, published)

    def _add_endpoints(self, host: str, task: str, key: str, published) -> None:
        if not isinstance(published, Mapping) or not all(
            isinstance(name, str) and isinstance(url, str) for name, url in published.items()
        ):
            self.notes.append(f"{task} on {host}: {key} must map endpoint names to URL strings; ignored")
            return
        for name, url in published.items():
            if any(known["name"] == name and known["url"] == url for known in self.endpoints):
                continue
            self.endpoints.append({"name": name, "url": url, "host": host, "task": task})

    # The document -------------------------------------------------------------------------------

    def host_totals(self) -> dict[str, Counts]:
        """Per-host totals: Ansible's recap when the run got that far, else the sum of the phases."""
        if self.recap is not None:
            return self.recap
        totals: dict[str, Counts] = {}
        for phase in self.phases:
            for host, counts in phase.hosts.items():
                totals.setdefault(host, Counts()).add(counts)
        return totals

    def report(self) -> dict:
        """The run report as a JSON-ready document (report.json)."""
        started = self.started or _now()
        ended = self.ended or started
        hosts = self.host_totals()
        totals = Counts()
        for counts in hosts.values():
            totals.add(counts)
        phases = []
        for phase in self.phases:
            phase_end = phase.ended or ended
            phase_totals = Counts()
            for counts in phase.hosts.values():
                phase_totals.add(counts)
            phases.append(
                {
                    "name": phase.name,
                    "playbook": phase.playbook,
                    "started": _iso(phase.started),
                    "ended": _iso(phase_end),
                    "offset_seconds": round((phase.started - started).total_seconds(), 3),
                    "duration_seconds": round((phase_end - phase.started).total_seconds(), 3),
                    "hosts": {host: counts.as_dict() for host, counts in sorted(phase.hosts.items())},
                    "totals": phase_totals.as_dict(),
                }
            )
        failed = totals.failed > 0 or totals.unreachable > 0
        return {
            "schema": SCHEMA,
            "result": "failed" if failed else "ok",
            "check_mode": self.check_mode,
            "inventory": self.inventory,
            "inventory_sources": self.inventory_sources,
            "playbooks": self.playbooks,
            "started": _iso(started),
            "ended": _iso(ended),
            "duration_seconds": round((ended - started).total_seconds(), 3),
            "phases": phases,
            "hosts": {host: counts.as_dict() for host, counts in sorted(hosts.items())},
            "totals": totals.as_dict(),
            "changed_tasks": self.changed_tasks,
            "failed_tasks": self.failed_tasks,
            "plan": self.plan,
            "endpoints": self.endpoints,
            "notes": self.notes,
        }


def _counts_from_recap(values: Mapping[str, int]) -> Counts:
    """Ansible's recap names (failures, dark) in the report's names (failed, unreachable)."""
    return Counts(
        ok=int(values.get("ok", 0)),
        changed=int(values.get("changed", 0)),
        failed=int(values.get("failures", values.get("failed", 0))),
        skipped=int(values.get("skipped", 0)),
        unreachable=int(values.get("unreachable", values.get("dark", 0))),
        ignored=int(values.get("ignored", 0)),
        rescued=int(values.get("rescued", 0)),
    )
