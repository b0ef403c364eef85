"""Alert descriptions state the thresholds they were rendered with, and nothing that holds only
for the defaults: overriding the GPU temperature threshold must not produce a false sentence."""

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils.monitoring_catalog import builtin_rule_groups


def alert(name, **thresholds):
    (group,) = builtin_rule_groups(["gpu_health"], thresholds)
    return next(rule for rule in group["rules"] if rule.get("alert") == name)


@pytest.mark.parametrize(("celsius", "text"), [(85, "85 C"), (70, "70 C"), (83.5, "83.5 C")])
def test_temperature_alert_names_the_configured_threshold_and_claims_no_throttling_there(celsius, text):
    rule = alert("GpuTemperatureHigh", gpu_temperature_celsius=celsius, gpu_temperature_for="10m")
    description = rule["annotations"]["description"]
    assert rule["expr"] == f"DCGM_FI_DEV_GPU_TEMP > {celsius}"
    assert description.startswith(f"Above the configured threshold of {text} for 10m.")
    # Throttling starts at the GPU's slowdown temperature, whatever threshold the alert uses.
    assert "throttles" not in description and "slowdown temperature" in description


def test_framebuffer_alert_names_the_configured_ratio_as_a_percentage():
    description = alert("GpuFramebufferNearlyFull", gpu_framebuffer_used_ratio=0.9)["annotations"]["description"]
    assert description.startswith("More than 90% of GPU memory (the configured threshold) in use for 10m;")
    default = alert("GpuFramebufferNearlyFull")["annotations"]["description"]
    assert default.startswith("More than 98% of GPU memory")
