"""The gpu_facts module end to end, commands answered by captured nvidia-smi outputs."""

from pathlib import Path

import pytest
from ansible_collections.llmops.datacenter.plugins.modules import gpu_facts as module

FIXTURES = Path(__file__).parents[1] / "module_utils" / "fixtures" / "nvidia_smi"


@pytest.fixture
def run_module(run_module):
    """Run the module and return (failed, result); run_command stands in for the host's commands."""

    def run(args, run_command, nvidia_smi="/usr/bin/nvidia-smi", check_mode=False):
        result = run_module(module, args, check_mode, run_command=run_command, bin_path=nvidia_smi)
        return result.get("failed", False), result

    return run


def h200_host(argv):
    host = FIXTURES / "h200_1x"
    joined = " ".join(argv)
    if "--query-gpu=" in joined:
        return 0, (host / "query_gpu.csv").read_text(), ""
    if "--query-remapped-rows=" in joined:
        return 0, (host / "remapped_rows.csv").read_text(), ""
    if argv[1:] == ["topo", "-m"]:
        return 0, (host / "topo.txt").read_text(), ""
    if argv == ["dmesg"]:
        return 0, "", ""
    return 0, (host / "nvidia_smi.txt").read_text(), ""


def no_device(argv):
    return 6, (FIXTURES / "no_gpu" / "no_devices.txt").read_text(), ""


@pytest.mark.parametrize("check_mode", [False, True])
def test_reports_the_h200_host(run_module, check_mode):
    failed, result = run_module({"expected_type": "H200-SXM-141GB"}, h200_host, check_mode=check_mode)
    facts = result["ansible_facts"]["llmops_gpus"]
    assert not failed and result["changed"] is False
    assert facts["count"] == 1 and facts["gpus"][0]["planner_gpu_type"] == "H200-SXM-141GB"
    assert facts["driver_version"] == "580.159.03" and result["fleet_mismatches"] == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_zero_gpus_is_clean_when_not_declared(run_module, check_mode):
    failed, result = run_module({}, no_device, check_mode=check_mode)
    assert not failed
    assert result["ansible_facts"]["llmops_gpus"]["reason"] == "No devices were found"


@pytest.mark.parametrize(
    ("args", "field"), [({"required": True}, "required"), ({"expected_count": 8}, "expected_count")]
)
def test_zero_gpus_fails_on_a_declared_gpu_host(run_module, args, field):
    failed, result = run_module(args, no_device)
    assert failed
    assert result["msg"] == f"no NVIDIA GPU found (No devices were found) but {field} declares this a GPU host"


def test_missing_nvidia_smi_on_a_required_host(run_module):
    failed, result = run_module({"required": True}, lambda argv: pytest.fail("nothing runs"), nvidia_smi=None)
    assert failed and "nvidia-smi is not installed" in result["msg"]


def test_count_mismatch_warns(run_module):
    failed, result = run_module({"expected_count": 8}, h200_host)
    assert not failed and result["fleet_mismatches"] == ["inventory declares 8 GPUs, host reports 1"]
    assert result["warnings"] == ["inventory declares 8 GPUs, host reports 1"]


def test_simulation_runs_nothing_on_the_host(run_module):
    failed, result = run_module(
        {"simulate": {"count": 2, "type": "L4-24GB"}}, lambda argv: pytest.fail(f"ran {argv}")
    )
    facts = result["ansible_facts"]["llmops_gpus"]
    assert not failed and facts["simulated"] is True and facts["gpu_types"] == {"L4-24GB": 2}


def test_bad_simulation_fails_naming_the_accepted_types(run_module):
    failed, result = run_module({"simulate": [{"type": "H100"}]}, lambda argv: (0, "", ""))
    assert failed and result["msg"].startswith("simulate[0].type must be one of: A100-SXM-40GB, A100-SXM-80GB")
