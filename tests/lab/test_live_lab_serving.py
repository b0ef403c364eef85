"""The running lab, checked as a user would: run after `scripts/lab.sh up` (skipped without a lab).

A chat completion through the gateway answered by vLLM, a bounded streaming load with no errors,
and every serving expression of the model-serving dashboard and of the serving rules returning data
from the lab's Prometheus, which scrapes the real replicas. Alert conditions (`> threshold`) are
checked through the recording rules they read; a healthy lab does not fire them.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENDPOINTS = ROOT / "out" / "lab" / "endpoints.json"
sys.path.insert(0, str(ROOT / "tests" / "monitoring"))
sys.path.insert(0, str(ROOT / "collections"))
from ansible_collections.llmops.datacenter.plugins.module_utils.grafana import (  # noqa: E402
    build_dashboard,
    render_dashboard,
)
from grafana_provisioning_checks import (  # noqa: E402
    EXAMPLE_VARIABLE_VALUE,
    dashboard_queries,
    load_dashboard_specs,
    query_prometheus,
)


def _lab_answers(endpoints: dict) -> bool:
    try:
        with urllib.request.urlopen(endpoints["openai_base_url"].removesuffix("/v1") + "/v1/models", timeout=3):
            return True
    except urllib.error.HTTPError:
        return True  # 401 without a key: the gateway is there
    except OSError:
        return False


def _endpoints() -> dict:
    if not ENDPOINTS.is_file():
        pytest.skip("needs a running lab: scripts/lab.sh up")
    endpoints = json.loads(ENDPOINTS.read_text())
    if not _lab_answers(endpoints):
        pytest.skip("the lab's gateway does not answer: scripts/lab.sh up")
    return endpoints


@pytest.fixture(scope="module")
def lab() -> dict:
    return _endpoints()


def _tenant(lab: dict) -> tuple[str, str]:
    for tenant in lab["tenants"].values():
        if tenant["models"]:
            return tenant["api_key"], tenant["models"][0]
    pytest.fail("no tenant of the lab may call a model")


def test_a_chat_completion_through_the_gateway_is_answered_by_vllm(lab):
    key, model = _tenant(lab)
    body = json.dumps({"model": model, "max_tokens": 24,
                       "messages": [{"role": "user", "content": "What is the capital of France?"}]}).encode()
    request = urllib.request.Request(lab["openai_base_url"].rstrip("/") + "/chat/completions", data=body,
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.load(response)
    assert answer["model"] == model
    assert answer["system_fingerprint"].startswith("vllm-")
    assert answer["choices"][0]["message"]["content"].strip()


def test_bounded_streaming_load_has_no_errors_and_every_serving_expression_returns_data(lab):
    key, model = _tenant(lab)
    load = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "openai_load.py"), "--url",
         lab["openai_base_url"].removesuffix("/v1"), "--key", key, "--model", model,
         "--concurrency", "4", "--duration", "20", "--max-tokens", "24"],
        capture_output=True, text=True, timeout=300, check=True,
    )
    summary = json.loads(load.stdout.splitlines()[0])
    assert summary["requests"] > 0 and summary["errors"] == 0, summary

    prometheus = lab["prometheus"]
    auth = (prometheus["user"], prometheus["password"])
    time.sleep(20)  # two scrapes after the load
    specs = load_dashboard_specs()
    dashboard = json.loads(render_dashboard(build_dashboard(**specs["model_serving"])))
    expressions = [(f"dashboard: {where}", promql.replace(EXAMPLE_VARIABLE_VALUE, model))
                   for where, promql in dashboard_queries(dashboard)]
    request = urllib.request.Request(prometheus["url"].rstrip("/") + "/api/v1/rules")
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    with urllib.request.urlopen(request, timeout=10) as response:
        groups = json.load(response)["data"]["groups"]
    expressions += [(f"recording rule {rule['name']}", rule["query"])
                    for group in groups for rule in group["rules"]
                    if rule["type"] == "recording" and "vllm:" in rule["query"]]
    assert len(expressions) > 10
    empty = [where for where, promql in expressions
             if not query_prometheus(prometheus["url"], promql, auth=auth)["data"]["result"]]
    assert empty == []
