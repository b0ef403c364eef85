# Copyright: llmops contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Host-side logic of the vllm_replicas module: roll replicas out one at a time, roll back, prune.

Runs on the target host: standard library only, no Ansible import. The module hands in its
parameters, a `run(argv) -> (rc, stdout, stderr)` callable (module.run_command) and gets back a
result dict or a RolloutError; tests drive it with a fake systemctl and a local HTTP server.

A replica is one systemd unit whose first line is the owner marker. For each wanted replica:
unchanged unit and running -> nothing; otherwise write the unit, restart it, and wait until
`/health` answers 200 AND a real completion returns a choice. A replica that does not get there
(or whose process keeps dying) is rolled back to the unit it had before (and so to the model
version that unit named), and the rollout stops there. Units carrying the marker that are not
wanted any more are drained (no request running) and removed, after the wanted ones are up.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shutil
import time
import urllib.error
import urllib.request

from ansible_collections.llmops.datacenter.plugins.module_utils.managed_file import (
    read_text,
    write_atomically,
)

_PORT_IN_HEADER = re.compile(r"\bport=(\d+)\b")


class RolloutError(Exception):
    """The rollout stopped; `result` says what changed before, and what was rolled back."""

    def __init__(self, message: str, result: dict):
        super().__init__(message)
        self.result = result


class Host:
    """systemd, files and HTTP on this host; one place for the side effects."""

    def __init__(self, run, unit_dir: str, probe_host: str, sleep=time.sleep, clock=time.monotonic):
        self.run, self.unit_dir, self.probe_host = run, unit_dir, probe_host
        self.sleep, self.clock = sleep, clock

    def systemctl(self, *args: str, check: bool = True) -> str:
        rc, out, err = self.run(["systemctl", *args])
        if check and rc != 0:
            raise RuntimeError(f"systemctl {' '.join(args)} failed ({rc}): {err.strip() or out.strip()}")
        return out

    def unit_state(self, unit: str) -> dict[str, str]:
        out = self.systemctl("show", unit, "--property=ActiveState,SubState,NRestarts,MainPID,UnitFileState",
                             check=False)  # fmt: skip
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal_tail(self, unit: str, lines: int = 15) -> str:
        rc, out, _ = self.run(["journalctl", "--unit", unit, "--lines", str(lines), "--no-pager", "--output", "cat"])
        return out.strip() if rc == 0 else ""

    def http(self, method: str, port: int, path: str, body: dict | None = None, timeout: float = 30.0):
        """(status, text); status 0 when nothing answers."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://{self.probe_host}:{port}{path}", data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError):
            return 0, ""


def owned_units(unit_dir: str, marker: str) -> dict[str, dict]:
    """Replica id -> {path, content, port} for every unit file in unit_dir that carries the marker."""
    found = {}
    for path in sorted(glob.glob(os.path.join(unit_dir, "*.service"))):
        content = read_text(path) or ""
        first = content.split("\n", 1)[0]
        if first.startswith(marker):
            port = _PORT_IN_HEADER.search(content.split("[Unit]", 1)[0])
            found[first[len(marker):].strip()] = {
                "path": path,
                "content": content,
                "port": int(port.group(1)) if port else None,
            }
    return found


def wait_until_serving(host: Host, replica: dict, timeout: float, poll: float = 2.0) -> tuple[bool, str]:
    """(True, '') once /health is 200 and a completion returns a choice; (False, why) otherwise.

    Fails fast when systemd restarts the process (it crashed) or the unit fails.
    """
    unit, port = replica["unit_name"], replica["port"]
    baseline = host.unit_state(unit).get("NRestarts", "0")
    deadline = host.clock() + timeout
    last = "no answer on /health"
    while host.clock() < deadline:
        state = host.unit_state(unit)
        if state.get("ActiveState") == "failed":
            return False, f"unit {unit} failed"
        if state.get("NRestarts", "0") != baseline:
            return False, f"the server process exited and systemd restarted it (NRestarts {state.get('NRestarts')})"
        status, _ = host.http("GET", port, "/health", timeout=5)
        if status == 200:
            body = {"model": replica["model"], "prompt": "The capital of France is", "max_tokens": 4, "temperature": 0}
            status, text = host.http("POST", port, "/v1/completions", body, timeout=60)
            if status == 200:
                try:
                    choices = json.loads(text).get("choices") or []
                except ValueError:
                    choices = []
                if choices and isinstance(choices[0].get("text"), str):
                    return True, ""
            last = f"/health is 200 but /v1/completions answered {status}: {text[:200]}"
        host.sleep(poll)
    return False, f"not serving within {timeout:g} s ({last})"


def running_requests(host: Host, port: int) -> float | None:
    """vllm:num_requests_running summed over engines; None when /metrics does not answer."""
    status, text = host.http("GET", port, "/metrics", timeout=5)
    if status != 200:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith("vllm:num_requests_running"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def drain(host: Host, port: int | None, timeout: float, poll: float = 1.0) -> bool:
    """Wait until the replica runs no request (or stops answering); False when the timeout hit."""
    if port is None:
        return True
    deadline = host.clock() + timeout
    while host.clock() < deadline:
        running = running_requests(host, port)
        if not running:
            return True
        host.sleep(poll)
    return False


def _ensure_state_dir(path: str, user: str, check_mode: bool) -> bool:
    if os.path.isdir(path):
        return False
    if not check_mode:
        os.makedirs(path, mode=0o750)
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return True


def _diff(path: str, before: str | None, after: str | None) -> dict:
    return {
        "before": before or "",
        "after": after or "",
        "before_header": path if before is not None else "(absent)",
        "after_header": path if after is not None else "(absent)",
    }


def apply(params: dict, run, check_mode: bool, sleep=time.sleep, clock=time.monotonic) -> dict:
    """Make this host run exactly params['replicas']; see the module docstring for the order."""
    host = Host(run, params["unit_dir"], params["probe_host"], sleep=sleep, clock=clock)
    marker = params["owner_marker"]
    existing = owned_units(params["unit_dir"], marker)
    wanted = {replica["id"]: replica for replica in params["replicas"]}
    result: dict = {"changed": False, "actions": {}, "rolled_back": [], "diff": []}

    for replica in params["replicas"]:
        rid, unit = replica["id"], replica["unit_name"]
        if not replica["content"].startswith(f"{marker}{rid}"):
            raise RolloutError(f"replicas[{rid}].content: must start with the owner marker '{marker}{rid}'", result)
        path = os.path.join(params["unit_dir"], unit)
        current = read_text(path)
        if current is not None and not current.startswith(marker):
            raise RolloutError(f"replicas[{rid}]: {path} exists and is not managed by llmops; refusing to replace it",
                               result)  # fmt: skip
        state = host.unit_state(unit) if current is not None else {}
        running = state.get("ActiveState") in ("active", "activating", "reloading")
        enabled = state.get("UnitFileState") == "enabled"
        if current == replica["content"] and running and enabled:
            result["actions"][rid] = "unchanged"
            continue

        action = "created" if current is None else ("updated" if current != replica["content"] else "started")
        result["changed"] = True
        result["actions"][rid] = action
        if current != replica["content"]:
            result["diff"].append(_diff(path, current, replica["content"]))
        if check_mode:
            continue

        _ensure_state_dir(replica["state_dir"], params["user"], check_mode)
        if current != replica["content"]:
            write_atomically(path, replica["content"], new_file_mode=0o644)
            host.systemctl("daemon-reload")
        host.systemctl("enable", unit)
        host.systemctl("restart", unit)
        serving, why = wait_until_serving(host, replica, params["health_timeout"])
        if serving:
            continue

        journal = host.journal_tail(unit)
        if current is None or current == replica["content"]:
            # Nothing earlier to return to: take the broken replica out rather than leave it crash-looping.
            if current is None:
                host.systemctl("disable", "--now", unit, check=False)
                os.unlink(path)
                host.systemctl("daemon-reload")
            result["actions"][rid] = "failed"
            raise RolloutError(f"replica {rid}: {why}; rollout stopped\n{journal}", result)
        write_atomically(path, current)
        host.systemctl("daemon-reload")
        host.systemctl("restart", unit)
        previous = dict(replica, port=existing.get(rid, {}).get("port") or replica["port"])
        restored, why_not = wait_until_serving(host, previous, params["health_timeout"])
        result["actions"][rid] = "rolled_back" if restored else "rollback_failed"
        result["rolled_back"].append(rid)
        outcome = "the previous unit is serving again" if restored else f"the previous unit is not serving either: {why_not}"
        raise RolloutError(f"replica {rid}: {why}; rolled back, {outcome}; rollout stopped\n{journal}", result)

    for rid, owned in existing.items():
        if rid in wanted:
            continue
        result["changed"] = True
        result["actions"][rid] = "removed"
        result["diff"].append(_diff(owned["path"], owned["content"], None))
        if check_mode:
            continue
        unit = os.path.basename(owned["path"])
        if not drain(host, owned["port"], params["drain_timeout"]):
            result["actions"][rid] = "removed_undrained"
        host.systemctl("disable", "--now", unit, check=False)
        os.unlink(owned["path"])
        host.systemctl("daemon-reload")
        state_dir = os.path.join(params["state_root"], rid)
        if os.path.isdir(state_dir):
            shutil.rmtree(state_dir)
    return result
