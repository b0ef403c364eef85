"""Every PromQL expression of every Grafana dashboard runs against a live Prometheus.

The host's Debian prometheus scrapes itself and a prometheus-node-exporter, both started here on
free loopback ports. Each expression (template variables replaced by the values Grafana would
send) must parse; expressions that read only Prometheus and node exporter metrics must also
return data. GPU (DCGM) and vLLM metrics do not exist on this machine: for those, parsing is what
is checked.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

# The suite imports test files by path (--import-mode=importlib): make the shared checks importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "collections"))
from ansible_collections.llmops.datacenter.plugins.module_utils.grafana import (
    build_dashboard,
    render_dashboard,
)
from grafana_provisioning_checks import (
    dashboard_queries,
    load_dashboard_specs,
    metric_names,
    must_return_data,
    query_prometheus,
)

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
NODE_EXPORTER = shutil.which("prometheus-node-exporter") or "/usr/bin/prometheus-node-exporter"
STARTUP_TIMEOUT_S = 30
SCRAPE_INTERVAL_S = 1


def _generated_dashboards() -> dict[str, dict]:
    """The dashboards exactly as the grafana_dashboard module writes them (rendered, then read back)."""
    return {name: json.loads(render_dashboard(build_dashboard(**spec))) for name, spec in load_dashboard_specs().items()}


QUERIES = [
    pytest.param(promql, id=f"{name}: {where}")
    for name, dashboard in _generated_dashboards().items()
    for where, promql in dashboard_queries(dashboard)
]


def _free_ports(count: int) -> list[int]:
    """Distinct free ports: every probe stays bound until all are chosen, so the kernel never
    hands the same port out twice (it did, and Prometheus then failed to bind)."""
    probes = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_for(condition, what: str, timeout: float = STARTUP_TIMEOUT_S):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except OSError as error:
            last_error = error
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last error: {last_error})")


@pytest.fixture(scope="module")
def live_prometheus():
    """Base URL of a Prometheus that has scraped itself and a node exporter at least twice."""
    for binary in (PROMETHEUS, NODE_EXPORTER):
        if not Path(binary).is_file():
            pytest.fail(f"{binary} is missing: install Debian's prometheus and prometheus-node-exporter")
    processes = []
    with tempfile.TemporaryDirectory(prefix="llmops-promql-") as workdir:
        try:
            exporter_port, prometheus_port = _free_ports(2)
            config = Path(workdir, "prometheus.yml")
            config.write_text(
                json.dumps(
                    {
                        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s"},
                        "scrape_configs": [
                            {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{prometheus_port}"]}]},
                            {"job_name": "node", "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]},
                        ],
                    }
                ),
                encoding="utf-8",
            )
            log = open(Path(workdir, "processes.log"), "wb")  # noqa: SIM115 - closed with the directory
            processes.append(
                subprocess.Popen(
                    [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{exporter_port}",
                     f"--collector.textfile.directory={workdir}"],
                    stdout=log, stderr=subprocess.STDOUT,
                )
            )
            processes.append(
                subprocess.Popen(
                    [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={workdir}/data",
                     f"--web.listen-address=127.0.0.1:{prometheus_port}"],
                    stdout=log, stderr=subprocess.STDOUT,
                )
            )
            base_url = f"http://127.0.0.1:{prometheus_port}"

            def scraped_twice():
                for process in processes:
                    if process.poll() is not None:
                        pytest.fail(f"{process.args[0]} exited: {Path(workdir, 'processes.log').read_text()}")
                up = query_prometheus(base_url, "up == 1", timeout=2)["data"]["result"]
                rates = query_prometheus(base_url, "rate(node_cpu_seconds_total[1m])", timeout=2)["data"]["result"]
                return len(up) == 2 and rates

            _wait_for(scraped_twice, "Prometheus to scrape itself and node exporter twice")
            yield base_url
        finally:
            for process in reversed(processes):
                _stop(process)
            if processes:
                log.close()


def test_every_dashboard_has_queries():
    assert len(QUERIES) >= 30, "dashboard specs lost most of their expressions"
    assert sum(must_return_data(param.values[0]) for param in QUERIES) >= 5, "too few host panels return lab data"


@pytest.mark.parametrize("promql", QUERIES)
def test_expression_runs_on_live_prometheus(live_prometheus, promql):
    answer = query_prometheus(live_prometheus, promql)
    assert answer["status"] == "success", f"{promql!r} rejected: {answer.get('errorType')}: {answer.get('error')}"
    if must_return_data(promql):
        assert answer["data"]["result"], f"{promql!r} returned no data from Prometheus and node exporter"


def test_a_broken_expression_is_rejected(live_prometheus):
    # The check must be able to fail: an expression with a syntax error is refused by Prometheus.
    answer = query_prometheus(live_prometheus, "sum(rate(node_cpu_seconds_total[1m])")
    assert answer["status"] == "error" and answer["errorType"] == "bad_data"


# Power draw is plotted but watched by no rule, so the monitoring catalogue does not name it.
DASHBOARD_ONLY_METRICS = {"DCGM_FI_DEV_POWER_USAGE"}


def test_dashboards_use_the_metric_names_the_prometheus_rules_use():
    from ansible_collections.llmops.datacenter.plugins.module_utils import monitoring_catalog

    catalogued = {value for name, value in vars(monitoring_catalog).items() if name.isupper() and isinstance(value, str)}
    catalogued |= {f"{name}{suffix}" for name in catalogued for suffix in ("_bucket", "_count", "_sum")}
    used = {
        metric
        for param in QUERIES
        for metric in metric_names(param.values[0])
        if metric.startswith(("DCGM_", "vllm:"))
    }
    assert used, "no GPU or vLLM metrics found in the dashboards"
    assert not used - catalogued - DASHBOARD_ONLY_METRICS, "metrics the prometheus role does not know"
