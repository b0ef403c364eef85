"""A host whose NVIDIA driver does not answer is unhealthy, with nvidia-smi's reason; a host that
has no GPU (no nvidia-smi, or no devices) is not."""

from pathlib import Path

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils import gpu_facts

NO_GPU = Path(__file__).parent / "fixtures" / "nvidia_smi" / "no_gpu"


def answering(rc, text):
    return lambda argv: (rc, text, "")


def test_a_driver_that_does_not_answer_is_unhealthy_with_the_reason():
    text = (NO_GPU / "driver_not_loaded.txt").read_text()
    facts = gpu_facts.collect(answering(9, text), "/usr/bin/nvidia-smi")
    assert facts["count"] == 0 and facts["present"] is False
    assert facts["health"]["healthy"] is False
    assert facts["health"]["problems"] == [
        "the NVIDIA driver does not answer: NVIDIA-SMI has failed because it couldn't communicate with the "
        "NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."
    ]


def test_the_failure_on_stderr_counts_too():
    facts = gpu_facts.collect(
        lambda argv: (255, "", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n"),
        "/usr/bin/nvidia-smi",
    )
    assert facts["health"]["healthy"] is False
    assert "does not answer" in facts["health"]["problems"][0]


@pytest.mark.parametrize(
    ("nvidia_smi", "runner"),
    [
        (None, None),
        ("/usr/bin/nvidia-smi", answering(6, (NO_GPU / "no_devices.txt").read_text())),
    ],
    ids=["no nvidia-smi", "no devices"],
)
def test_a_host_without_gpus_is_not_unhealthy(nvidia_smi, runner):
    facts = gpu_facts.collect(runner, nvidia_smi)
    assert facts["count"] == 0
    assert facts["health"]["healthy"] is True and facts["health"]["problems"] == []
