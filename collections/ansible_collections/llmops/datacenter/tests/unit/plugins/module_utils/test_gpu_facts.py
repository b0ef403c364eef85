"""gpu_facts parsing over captured nvidia-smi outputs (fixtures/nvidia_smi/<host>/)."""

from pathlib import Path

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils import gpu_facts

FIXTURES = Path(__file__).parent / "fixtures" / "nvidia_smi"


def read(host, name):
    return (FIXTURES / host / name).read_text()


def fixture_runner(host, calls=None):
    """Answer each nvidia-smi/dmesg invocation with the host's captured output."""

    def run(argv):
        if calls is not None:
            calls.append(argv)
        joined = " ".join(argv)
        if "--query-gpu=" in joined:
            return 0, read(host, "query_gpu.csv"), ""
        if "--query-remapped-rows=" in joined:
            return 0, read(host, "remapped_rows.csv"), ""
        if argv[1:] == ["topo", "-m"]:
            return 0, read(host, "topo.txt"), ""
        if argv == ["/usr/bin/nvidia-smi"]:
            return 0, read(host, "nvidia_smi.txt"), ""
        if argv == ["dmesg"]:
            return 0, read(host, "dmesg.txt"), ""
        raise AssertionError(f"unexpected command {argv}")

    return run


def test_eight_h100_sxm_with_nv18_topology():
    facts = gpu_facts.collect(fixture_runner("h100_sxm_8x"), "/usr/bin/nvidia-smi")
    assert facts["count"] == 8 and facts["present"] and not facts["simulated"]
    assert facts["gpu_types"] == {"H100-SXM-80GB": 8}
    assert (facts["driver_version"], facts["cuda_version"]) == ("565.57.01", "12.7")
    first = facts["gpus"][0]
    assert first["name"] == "NVIDIA H100 80GB HBM3" and first["memory_mib"] == 81559
    assert first["pci_bus_id"] == "00000000:18:00.0"
    assert first["uuid"] == "GPU-b42dd28e-ffdd-8720-1df0-98bd8cdc05b1"
    assert first["compute_capability"] == "9.0" and first["mig_mode"] == "Disabled"
    assert first["persistence_mode"] is True and first["temperature_c"] == 30
    # Hopper reports row remapping, not retired pages.
    assert first["health"]["retired_pages_pending"] is None
    assert first["health"]["remapped_rows_pending"] is False
    topology = facts["topology"]
    assert topology["gpus"] == [f"GPU{i}" for i in range(8)] and topology["nvlink"] is True
    assert all(topology["matrix"]["GPU0"][f"GPU{i}"] == "NV18" for i in range(1, 8))
    assert topology["matrix"]["GPU0"]["NIC0"] == "PXB" and topology["matrix"]["GPU0"]["NIC2"] == "SYS"
    assert topology["affinity"]["GPU0"] == {"cpu_affinity": "0-55,112-167", "numa_affinity": "0", "gpu_numa_id": None}
    assert topology["affinity"]["GPU7"]["cpu_affinity"] == "56-111,168-223"
    assert topology["nics"] == {"NIC0": "mlx5_0", "NIC1": "mlx5_1", "NIC2": "mlx5_2", "NIC3": "mlx5_3"}
    # The Xid 79 at 0000:9a:00 is GPU 4 (00000000:9A:00.0).
    assert facts["health"]["healthy"] is False
    assert facts["health"]["xid"]["events"] == [
        {"pci": "0000:9a:00", "xid": 79, "detail": "pid=0, name=<unknown>, GPU has fallen off the bus."}
    ]
    assert facts["health"]["problems"] == [
        "GPU 4: Xid 79 in the kernel log: pid=0, name=<unknown>, GPU has fallen off the bus."
    ]


def test_eight_a100_with_mig_enabled_and_a_pending_row_remap():
    facts = gpu_facts.collect(fixture_runner("a100_sxm4_80gb_8x_mig"), "/usr/bin/nvidia-smi")
    assert facts["count"] == 8 and facts["gpu_types"] == {"A100-SXM-80GB": 8}
    assert {gpu["mig_mode"] for gpu in facts["gpus"]} == {"Enabled"}
    assert facts["gpus"][3]["pci_bus_id"] == "00000000:4E:00.0" and facts["gpus"][3]["memory_mib"] == 81920
    assert (facts["driver_version"], facts["cuda_version"]) == ("525.105.17", "12.0")
    assert facts["gpus"][3]["health"]["remapped_rows_pending"] is True
    assert facts["health"]["problems"] == ["GPU 3 (00000000:4E:00.0): row remapping pending, reset the GPU"]
    topology = facts["topology"]
    # Older drivers name NICs directly in the header and print no GPU NUMA ID column.
    assert topology["devices"][-4:] == ["mlx5_0", "mlx5_1", "mlx5_2", "mlx5_3"] and topology["nics"] == {}
    assert topology["matrix"]["GPU2"]["GPU5"] == "NV12" and topology["matrix"]["GPU2"]["mlx5_1"] == "PXB"
    assert topology["affinity"]["GPU2"] == {"cpu_affinity": "16-31,144-159", "numa_affinity": "1", "gpu_numa_id": None}
    assert facts["health"]["xid"]["events"] == []


def test_single_l4_without_nvlink():
    facts = gpu_facts.collect(fixture_runner("l4_1x"), "/usr/bin/nvidia-smi")
    assert facts["count"] == 1 and facts["gpu_types"] == {"L4-24GB": 1}
    gpu = facts["gpus"][0]
    assert (gpu["memory_mib"], gpu["compute_capability"], gpu["mig_mode"]) == (23034, "8.9", None)
    assert facts["topology"]["matrix"] == {"GPU0": {}} and facts["topology"]["nvlink"] is False
    assert facts["topology"]["affinity"]["GPU0"]["cpu_affinity"] == "0-23"
    assert facts["health"] == {"healthy": True, "problems": [], "xid": facts["health"]["xid"]}
    assert facts["health"]["xid"]["available"] is True and facts["health"]["xid"]["best_effort"] is True


def test_h200_with_driver_580():
    facts = gpu_facts.collect(fixture_runner("h200_1x"), "/usr/bin/nvidia-smi")
    gpu = facts["gpus"][0]
    assert (gpu["name"], gpu["planner_gpu_type"], gpu["memory_mib"]) == ("NVIDIA H200", "H200-SXM-141GB", 143771)
    assert (facts["driver_version"], facts["cuda_version"]) == ("580.159.03", "13.0")
    assert facts["topology"]["matrix"]["GPU0"] == {"NIC0": "PIX"} and facts["topology"]["nics"] == {"NIC0": "mlx5_0"}


@pytest.mark.parametrize(
    ("rc", "fixture", "reason"),
    [
        (6, "no_devices.txt", "No devices were found"),
        (9, "driver_not_loaded.txt", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."),
    ],
)
def test_host_without_gpu_reports_zero_with_the_reason(rc, fixture, reason):
    calls = []

    def run(argv):
        calls.append(argv)
        return rc, read("no_gpu", fixture), ""

    facts = gpu_facts.collect(run, "/usr/bin/nvidia-smi")
    assert (facts["count"], facts["present"], facts["gpus"], facts["topology"]) == (0, False, [], None)
    assert facts["reason"].startswith(reason)
    assert len(calls) == 1  # nothing else is asked of a host without a device


def test_host_without_nvidia_smi():
    facts = gpu_facts.collect(lambda argv: pytest.fail("nothing to run"), None)
    assert facts["count"] == 0 and facts["reason"] == "nvidia-smi is not installed"


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("query_gpu_truncated.csv", "line 2 has 5 columns, expected 13"),
        ("query_gpu_bad_memory.csv", "field memory.total is '23034 MiB', expected an integer"),
    ],
)
def test_malformed_query_output_is_refused(fixture, message):
    with pytest.raises(gpu_facts.GpuFactsError, match=message):
        gpu_facts.parse_query_gpu(read("malformed", fixture))


def test_a_driver_too_old_for_the_query_fields_fails_naming_it():
    def run(argv):
        return 2, read("malformed", "query_gpu_old_driver.txt"), ""

    with pytest.raises(gpu_facts.GpuFactsError, match='Field "compute_cap" is not a valid field'):
        gpu_facts.collect(run, "/usr/bin/nvidia-smi")


@pytest.mark.parametrize(
    ("fixture", "message"),
    [("topo_missing_row.txt", "no row for GPU1"), ("topo_unknown_link.txt", "unknown link 'NVX' between GPU0 and GPU1")],
)
def test_malformed_topology_is_refused(fixture, message):
    with pytest.raises(gpu_facts.GpuFactsError, match=message):
        gpu_facts.parse_topology(read("malformed", fixture))


def test_topology_without_header_is_refused():
    with pytest.raises(gpu_facts.GpuFactsError, match="no header row"):
        gpu_facts.parse_topology("garbage\n")


def test_unknown_gpu_names_are_listed_not_guessed():
    line = "0, Tesla T4, GPU-1, 00000000:00:1E.0, 15360, 535.104.05, 7.5, [N/A], Disabled, Enabled, 0, No, 40\n"
    facts = gpu_facts.build_facts(gpu_facts.parse_query_gpu(line))
    assert facts["gpus"][0]["planner_gpu_type"] is None
    assert facts["gpu_types"] == {"unknown": 1} and facts["unknown_gpu_names"] == ["Tesla T4"]
    assert facts["gpus"][0]["health"]["retired_pages_pending"] is False


@pytest.mark.parametrize(
    ("simulate", "types"),
    [
        ({"count": 2, "type": "L4-24GB"}, ["L4-24GB", "L4-24GB"]),
        ([{"type": "H100-SXM-80GB"}, {"type": "H200-SXM-141GB", "memory_mib": 143771}], ["H100-SXM-80GB", "H200-SXM-141GB"]),
    ],
)
def test_simulated_gpus_are_flagged(simulate, types):
    facts = gpu_facts.build_facts(gpu_facts.simulated_gpus(simulate), simulated=True)
    assert facts["simulated"] is True and facts["count"] == len(types)
    assert [gpu["planner_gpu_type"] for gpu in facts["gpus"]] == types
    assert facts["gpus"][0]["name"] == gpu_facts.PLANNER_GPU_TYPES[types[0]]["nvidia_smi_names"][0]


@pytest.mark.parametrize(
    ("simulate", "message"),
    [
        ({"count": 2}, "needs 'count' and 'type'"),
        ({"count": "two", "type": "L4-24GB"}, "simulate.count must be an integer"),
        ([{"type": "RTX-4090"}], r"simulate\[0\].type must be one of: A100-SXM-40GB, "),
        ("8xH100", "expected a list of GPU mappings"),
    ],
)
def test_bad_simulation_input_names_the_field(simulate, message):
    with pytest.raises(gpu_facts.GpuFactsError, match=message):
        gpu_facts.simulated_gpus(simulate)


def test_fleet_mismatches_name_both_sides():
    facts = gpu_facts.build_facts(gpu_facts.simulated_gpus({"count": 4, "type": "A100-SXM-40GB"}))
    assert gpu_facts.fleet_mismatches(facts, expected_count=8, expected_type="A100-SXM-80GB") == [
        "inventory declares 8 GPUs, host reports 4",
        "inventory declares GPU type A100-SXM-80GB, host reports A100-SXM-40GB",
    ]
    assert gpu_facts.fleet_mismatches(facts, expected_count=4, expected_type="A100-SXM-40GB") == []
