"""module_utils.vllm_replicas: rollout order, health gate, rollback, pruning, check mode.

systemctl is replaced at the run_command boundary by a small in-memory systemd; each started
unit runs a real HTTP server on its port that answers like vLLM (/health, /v1/completions,
/metrics) unless its unit names a broken model, whose "process" keeps crashing. The real vLLM is
exercised by the model_serving molecule scenario.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils import vllm_replicas

MARKER = "# Managed by llmops.datacenter.model_serving: replica "


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FakeVllm(BaseHTTPRequestHandler):
    running = 0

    def _send(self, status: int, body: str):
        self.send_response(status)
        self.end_headers()
        self.wfile.write(body.encode())

    def do_GET(self):
        if self.path == "/health":
            self._send(200, "")
        elif self.path == "/metrics":
            self._send(200, f'vllm:num_requests_running{{engine="0"}} {type(self).running}\n')
        else:
            self._send(404, "")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        self._send(200, json.dumps({"model": body["model"], "choices": [{"text": " Paris"}]}))

    def log_message(self, *args):
        pass


class FakeSystemd:
    """Units are 'active' with a live HTTP server, or crash-loop when their unit names /broken."""

    def __init__(self, unit_dir):
        self.unit_dir = unit_dir
        self.units: dict[str, dict] = {}
        self.calls: list[list[str]] = []

    def _content(self, unit):
        path = self.unit_dir / unit
        return path.read_text() if path.exists() else ""

    def _stop(self, unit):
        state = self.units.get(unit)
        if state and state.get("server"):
            state["server"].shutdown()
            state["server"].server_close()
            state["server"] = None
        if state:
            state["ActiveState"] = "inactive"

    def _start(self, unit):
        content = self._content(unit)
        state = self.units.setdefault(unit, {"NRestarts": 0, "UnitFileState": "disabled"})
        port = int(content.split("--port ", 1)[1].split()[0])
        state["ActiveState"] = "active"
        if "/broken" in content:
            state["NRestarts"] += 1  # the process dies at once and systemd restarts it
            state["server"] = None
            return
        server = ThreadingHTTPServer(("127.0.0.1", port), FakeVllm)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        state["server"] = server

    def __call__(self, argv):
        self.calls.append(argv)
        if argv[0] == "journalctl":
            return 0, "last log line\n", ""
        verb, *rest = argv[1:]
        unit = rest[-1] if rest else None
        if verb == "show":
            state = self.units.get(rest[0], {})
            if not state:
                return 0, "ActiveState=inactive\nNRestarts=0\nUnitFileState=\n", ""
            if "/broken" in self._content(rest[0]) and state.get("ActiveState") == "active":
                state["NRestarts"] += 1
            fields = {k: v for k, v in state.items() if k != "server"}
            return 0, "".join(f"{k}={v}\n" for k, v in fields.items()), ""
        if verb == "restart":
            self._stop(unit)
            self._start(unit)
        elif verb == "enable":
            self.units.setdefault(unit, {"NRestarts": 0, "ActiveState": "inactive"})["UnitFileState"] = "enabled"
        elif verb == "disable":
            self._stop(unit)
            self.units.pop(unit, None)
        return 0, "", ""

    def stop_all(self):
        for unit in list(self.units):
            self._stop(unit)


def unit_text(rid: str, port: int, model_path: str) -> str:
    return (
        f"{MARKER}{rid}\n# model=chat artifact=x node=n gpus=0 port={port}\n[Unit]\nDescription=x\n"
        f"[Service]\nExecStart=/opt/vllm/bin/python -m vllm --model {model_path} --port {port}\n"
    )


def replica(tmp_path, rid: str, port: int, model_path: str = "/models/chat/v1") -> dict:
    return {
        "id": rid,
        "unit_name": f"llmops-vllm-{rid}.service",
        "content": unit_text(rid, port, model_path),
        "port": port,
        "model": "chat",
        "state_dir": str(tmp_path / "state" / rid),
    }


@pytest.fixture
def host(tmp_path, monkeypatch):
    (tmp_path / "units").mkdir()
    (tmp_path / "state").mkdir()
    monkeypatch.setattr(vllm_replicas.os, "chown", lambda *args: None)
    systemd = FakeSystemd(tmp_path / "units")
    yield systemd
    systemd.stop_all()


def params(tmp_path, replicas, **extra) -> dict:
    return {
        "replicas": replicas,
        "user": "root",
        "unit_dir": str(tmp_path / "units"),
        "state_root": str(tmp_path / "state"),
        "owner_marker": MARKER,
        "health_timeout": 5,
        "drain_timeout": 2,
        "probe_host": "127.0.0.1",
        **extra,
    }


def apply(tmp_path, host, replicas, check_mode=False):
    return vllm_replicas.apply(params(tmp_path, replicas), host, check_mode, sleep=lambda s: None)


def test_a_new_replica_is_written_started_checked_and_then_left_alone(tmp_path, host):
    wanted = [replica(tmp_path, "chat-n-0", free_port())]
    first = apply(tmp_path, host, wanted)
    assert first["changed"] is True and first["actions"] == {"chat-n-0": "created"}
    assert (tmp_path / "units" / "llmops-vllm-chat-n-0.service").read_text() == wanted[0]["content"]
    assert (tmp_path / "state" / "chat-n-0").is_dir()
    restarts = [call for call in host.calls if call[1:2] == ["restart"]]
    second = apply(tmp_path, host, wanted)
    assert second["changed"] is False and second["actions"] == {"chat-n-0": "unchanged"}
    assert [call for call in host.calls if call[1:2] == ["restart"]] == restarts


def test_check_mode_reports_the_change_and_writes_nothing(tmp_path, host):
    result = apply(tmp_path, host, [replica(tmp_path, "chat-n-0", free_port())], check_mode=True)
    assert result["changed"] is True and result["actions"] == {"chat-n-0": "created"}
    assert result["diff"][0]["before_header"] == "(absent)"
    assert list((tmp_path / "units").iterdir()) == []
    assert not [call for call in host.calls if call[1:2] in (["restart"], ["enable"], ["daemon-reload"])]


def test_a_stopped_replica_is_started_again(tmp_path, host):
    wanted = [replica(tmp_path, "chat-n-0", free_port())]
    apply(tmp_path, host, wanted)
    host._stop("llmops-vllm-chat-n-0.service")
    result = apply(tmp_path, host, wanted)
    assert result["actions"] == {"chat-n-0": "started"} and result["changed"] is True


def test_a_version_that_never_serves_is_rolled_back_and_stops_the_rollout(tmp_path, host):
    good = [replica(tmp_path, "chat-n-0", free_port()), replica(tmp_path, "chat-n-1", free_port())]
    apply(tmp_path, host, good)
    broken = [replica(tmp_path, "chat-n-0", good[0]["port"], "/broken/v2"),
              replica(tmp_path, "chat-n-1", good[1]["port"], "/models/chat/v2")]  # fmt: skip
    with pytest.raises(vllm_replicas.RolloutError) as caught:
        apply(tmp_path, host, broken)
    assert "replica chat-n-0" in str(caught.value) and "rolled back" in str(caught.value)
    assert "the previous unit is serving again" in str(caught.value)
    assert caught.value.result["actions"] == {"chat-n-0": "rolled_back"}
    # The previous unit (and model version) is back and serving; the second replica was never touched.
    assert (tmp_path / "units" / "llmops-vllm-chat-n-0.service").read_text() == good[0]["content"]
    assert (tmp_path / "units" / "llmops-vllm-chat-n-1.service").read_text() == good[1]["content"]
    assert host.units["llmops-vllm-chat-n-0.service"]["server"] is not None


def test_a_new_replica_that_never_serves_is_removed(tmp_path, host):
    with pytest.raises(vllm_replicas.RolloutError) as caught:
        apply(tmp_path, host, [replica(tmp_path, "chat-n-0", free_port(), "/broken/v1")])
    assert caught.value.result["actions"] == {"chat-n-0": "failed"}
    assert list((tmp_path / "units").iterdir()) == []


def test_unwanted_owned_replicas_are_drained_and_removed_and_others_units_are_kept(tmp_path, host):
    keep, drop = replica(tmp_path, "chat-n-0", free_port()), replica(tmp_path, "old-n-1", free_port())
    apply(tmp_path, host, [keep, drop])
    foreign = tmp_path / "units" / "someone-else.service"
    foreign.write_text("[Unit]\nDescription=not ours\n")
    result = apply(tmp_path, host, [keep])
    assert result["actions"] == {"chat-n-0": "unchanged", "old-n-1": "removed"}
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == ["llmops-vllm-chat-n-0.service", "someone-else.service"]
    assert not (tmp_path / "state" / "old-n-1").exists()
    # The drain asked the replica's /metrics before stopping it.
    assert "llmops-vllm-old-n-1.service" not in host.units


def test_a_busy_replica_is_stopped_after_the_drain_timeout(tmp_path, host, monkeypatch):
    keep, drop = replica(tmp_path, "chat-n-0", free_port()), replica(tmp_path, "old-n-1", free_port())
    apply(tmp_path, host, [keep, drop])
    monkeypatch.setattr(FakeVllm, "running", 3)
    clock = iter(range(0, 1000))
    result = vllm_replicas.apply(params(tmp_path, [keep]), host, False, sleep=lambda s: None,
                                 clock=lambda: next(clock))  # fmt: skip
    assert result["actions"]["old-n-1"] == "removed_undrained"


def test_a_unit_file_we_do_not_own_is_never_replaced(tmp_path, host):
    wanted = replica(tmp_path, "chat-n-0", free_port())
    (tmp_path / "units" / wanted["unit_name"]).write_text("[Unit]\nDescription=hand-written\n")
    with pytest.raises(vllm_replicas.RolloutError, match="not managed by llmops"):
        apply(tmp_path, host, [wanted])
    assert (tmp_path / "units" / wanted["unit_name"]).read_text() == "[Unit]\nDescription=hand-written\n"
