"""The target-side GPU name table (gpu_facts, standard library only) agrees with the planner's catalog."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "collections"))

from ansible_collections.llmops.datacenter.plugins.module_utils.gpu_facts import (
    PLANNER_GPU_TYPES,
    planner_gpu_type,
)

from llmops.catalog import gpu_type_for_smi_name, gpu_types


def test_same_gpu_types_on_both_sides():
    assert sorted(PLANNER_GPU_TYPES) == sorted(gpu_types())


@pytest.mark.parametrize("gpu_type", sorted(gpu_types()))
def test_names_memory_and_compute_capability_agree(gpu_type):
    catalog = gpu_types()[gpu_type]
    table = PLANNER_GPU_TYPES[gpu_type]
    assert tuple(table["nvidia_smi_names"]) == tuple(catalog.nvidia_smi_names)
    for smi_name in catalog.nvidia_smi_names:
        assert planner_gpu_type(smi_name) == gpu_type
        assert gpu_type_for_smi_name(smi_name).name == gpu_type
    # The catalog stores what nvidia-smi reports in GiB to two decimals; the table keeps the MiB.
    assert round(table["memory_mib"] / 1024, 2) == pytest.approx(catalog.memory_gib, abs=0.01)
    assert table["compute_cap"] == catalog.compute_capability
