"""node exporter serves host metrics, and metrics dropped into the textfile directory."""

import time


def test_serves_node_metrics_on_port_9100(host):
    metrics = host.check_output("curl -fsS http://127.0.0.1:9100/metrics")
    assert "node_cpu_seconds_total{" in metrics
    assert "node_memory_MemAvailable_bytes " in metrics
    assert "node_filesystem_avail_bytes{" in metrics
    service = host.service("prometheus-node-exporter")
    assert service.is_running and service.is_enabled


def test_textfile_collector_exposes_a_dropped_prom_file(host):
    directory = "/var/lib/prometheus/node-exporter"
    # Below 1e6 so the exporter prints the value in plain digits, not exponent form.
    stamp = int(time.time()) % 100000
    # Write under a temporary name and rename, as textfile producers must, so no scrape sees half a file.
    host.check_output(
        f"printf 'llmops_molecule_probe{{source=\"textfile\"}} {stamp}\\n' > {directory}/probe.prom.tmp"
        f" && mv {directory}/probe.prom.tmp {directory}/probe.prom"
    )
    try:
        metrics = host.check_output("curl -fsS http://127.0.0.1:9100/metrics")
        assert f'llmops_molecule_probe{{source="textfile"}} {stamp}' in metrics
    finally:
        host.check_output(f"rm -f {directory}/probe.prom")
