# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)
"""Parse what nvidia-smi reports about a host's GPUs into the `llmops_gpus` facts.

Runs on target hosts: standard library only. Every parser takes the text a command printed, so the
unit tests feed real captured outputs through the same functions the module uses; the module's
only job is to run the commands (through a `run_command(argv) -> (rc, stdout, stderr)` callable).
"""

from __future__ import annotations

import re

# The `--query-gpu` fields, in the order the CSV columns come back. Chosen deliberately:
# - identity and placement: index, name, uuid, pci.bus_id, memory.total, compute_cap
#   (compute_cap needs driver >= 510; older drivers reject the whole query, reported as such);
# - how the GPU is run: driver_version, mig.mode.current, persistence_mode, ecc.mode.current;
# - health: ecc.errors.uncorrected.volatile.total, retired_pages.pending (Volta and older; newer
#   GPUs use row remapping, queried separately with --query-remapped-rows), temperature.gpu.
# Utilisation and clocks are left out: they change every second and would make facts noisy.
QUERY_FIELDS = (
    "index",
    "name",
    "uuid",
    "pci.bus_id",
    "memory.total",
    "driver_version",
    "compute_cap",
    "mig.mode.current",
    "persistence_mode",
    "ecc.mode.current",
    "ecc.errors.uncorrected.volatile.total",
    "retired_pages.pending",
    "temperature.gpu",
)
REMAPPED_ROWS_FIELDS = ("gpu_bus_id", "remapped_rows.pending", "remapped_rows.failure")


def query_gpu_argv(nvidia_smi="nvidia-smi"):
    return [nvidia_smi, "--query-gpu=" + ",".join(QUERY_FIELDS), "--format=csv,noheader,nounits"]


def query_remapped_rows_argv(nvidia_smi="nvidia-smi"):
    return [nvidia_smi, "--query-remapped-rows=" + ",".join(REMAPPED_ROWS_FIELDS), "--format=csv,noheader"]


# The planner's GPU type names (src/llmops/catalog/gpus.yaml, the source of truth) keyed by the
# product name nvidia-smi prints. Targets do not have the llmops package, hence this copy;
# tests/gpu/test_gpu_name_mapping.py fails when it drifts from the catalog.
PLANNER_GPU_TYPES = {
    "H100-SXM-80GB": {"nvidia_smi_names": ("NVIDIA H100 80GB HBM3",), "memory_mib": 81559, "compute_cap": "9.0"},
    "H200-SXM-141GB": {"nvidia_smi_names": ("NVIDIA H200",), "memory_mib": 143771, "compute_cap": "9.0"},
    "B200-180GB": {"nvidia_smi_names": ("NVIDIA B200",), "memory_mib": 183359, "compute_cap": "10.0"},
    "A100-SXM-80GB": {"nvidia_smi_names": ("NVIDIA A100-SXM4-80GB",), "memory_mib": 81920, "compute_cap": "8.0"},
    "A100-SXM-40GB": {"nvidia_smi_names": ("NVIDIA A100-SXM4-40GB",), "memory_mib": 40960, "compute_cap": "8.0"},
    "L40S-48GB": {"nvidia_smi_names": ("NVIDIA L40S",), "memory_mib": 46068, "compute_cap": "8.9"},
    "A10G-24GB": {"nvidia_smi_names": ("NVIDIA A10G",), "memory_mib": 23028, "compute_cap": "8.6"},
    "L4-24GB": {"nvidia_smi_names": ("NVIDIA L4",), "memory_mib": 23034, "compute_cap": "8.9"},
}
_TYPE_BY_SMI_NAME = {name: gpu_type for gpu_type, spec in PLANNER_GPU_TYPES.items() for name in spec["nvidia_smi_names"]}

# What nvidia-smi prints instead of a value, in CSV mode with brackets, in tables without.
_NOT_AVAILABLE = {"[N/A]", "N/A", "[Not Supported]", "Not Supported", "[Unknown Error]", "[Insufficient Permissions]"}

# nvidia-smi exits non-zero with one of these when the host has no usable NVIDIA GPU.
_NO_DEVICE_MARKERS = (
    "No devices were found",
    "couldn't communicate with the NVIDIA driver",
    "NVIDIA-SMI has failed",
    "No supported GPUs were found",
)

# Of those, the ones that mean the driver is installed but does not work (module not loaded or
# mismatched, device fallen off the bus): not a GPU-less host but a broken GPU host.
_DRIVER_FAILURE_MARKERS = (
    "couldn't communicate with the NVIDIA driver",
    "NVIDIA-SMI has failed",
)

_CUDA_VERSION_RE = re.compile(r"CUDA Version\s*:\s*([0-9]+(?:\.[0-9]+)*)")
_DRIVER_VERSION_RE = re.compile(r"Driver Version\s*:\s*([0-9]+(?:\.[0-9]+)*)")
# dmesg:   [ 1234.567890] NVRM: Xid (PCI:0000:18:00): 79, pid=0, GPU has fallen off the bus.
# journal: Nov 21 10:00:00 host kernel: NVRM: Xid (PCI:0000:18:00): 48, pid='<unknown>', name=..., ...
_XID_RE = re.compile(r"NVRM: Xid \(PCI:(?P<pci>[0-9A-Fa-f:.]+)\): (?P<code>\d+), ?(?P<detail>.*)$")
_TOPOLOGY_LINK_RE = re.compile(r"^(X|NV\d+|PIX|PXB|PHB|NODE|SYS|SOC)$")


class GpuFactsError(Exception):
    """Output that cannot be trusted; the message says which command and what was wrong."""


def planner_gpu_type(smi_name):
    """The planner's GPU type for a product name, or None when the catalog does not know it."""
    return _TYPE_BY_SMI_NAME.get(smi_name.strip())


def no_device_reason(rc, stdout, stderr):
    """Why nvidia-smi found no GPU, or None when its output is not a 'no device' answer."""
    text = (stdout or "") + "\n" + (stderr or "")
    for marker in _NO_DEVICE_MARKERS:
        if marker in text:
            return next(line.strip() for line in text.splitlines() if marker in line)
    if rc == 0 and not (stdout or "").strip():
        return "nvidia-smi listed no GPUs"
    return None


def _value(raw):
    raw = raw.strip()
    return None if raw in _NOT_AVAILABLE else raw


def _int(raw, field, line_number):
    value = _value(raw)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise GpuFactsError(
            f"nvidia-smi --query-gpu line {line_number}: field {field} is {raw.strip()!r}, expected an integer"
        ) from None


def _enabled(raw):
    value = _value(raw)
    if value is None:
        return None
    return value.lower() in ("enabled", "yes", "on")


def _yes_no(raw):
    value = _value(raw)
    if value is None:
        return None
    # The -q style prints Yes/No; --query-remapped-rows prints 1/0.
    return value.lower() in ("yes", "1", "true")


def parse_query_gpu(text):
    """Parse `nvidia-smi --query-gpu=<QUERY_FIELDS> --format=csv,noheader,nounits` into GPU dicts."""
    gpus = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        # Product names never contain ", " followed by another field, but be strict: the column
        # count must match exactly, or the fields would silently shift.
        columns = [column.strip() for column in line.split(",")]
        if len(columns) != len(QUERY_FIELDS):
            raise GpuFactsError(
                f"nvidia-smi --query-gpu line {line_number} has {len(columns)} columns, "
                f"expected {len(QUERY_FIELDS)} ({', '.join(QUERY_FIELDS)}): {line!r}"
            )
        row = dict(zip(QUERY_FIELDS, columns, strict=False))
        name = row["name"]
        gpus.append(
            {
                "index": _int(row["index"], "index", line_number),
                "name": name,
                "planner_gpu_type": planner_gpu_type(name),
                "uuid": _value(row["uuid"]),
                "pci_bus_id": _value(row["pci.bus_id"]),
                "memory_mib": _int(row["memory.total"], "memory.total", line_number),
                "driver_version": _value(row["driver_version"]),
                "compute_capability": _value(row["compute_cap"]),
                "mig_mode": _value(row["mig.mode.current"]),
                "persistence_mode": _enabled(row["persistence_mode"]),
                "ecc_mode": _value(row["ecc.mode.current"]),
                "temperature_c": _int(row["temperature.gpu"], "temperature.gpu", line_number),
                "health": {
                    "ecc_uncorrected_volatile": _int(
                        row["ecc.errors.uncorrected.volatile.total"], "ecc.errors.uncorrected.volatile.total", line_number
                    ),
                    "retired_pages_pending": _yes_no(row["retired_pages.pending"]),
                    "remapped_rows_pending": None,
                    "remapped_rows_failure": None,
                },
            }
        )
        if gpus[-1]["index"] is None or gpus[-1]["memory_mib"] is None:
            raise GpuFactsError(f"nvidia-smi --query-gpu line {line_number} has no index or memory.total: {line!r}")
    return gpus


def parse_remapped_rows(text):
    """Parse `--query-remapped-rows=gpu_bus_id,remapped_rows.pending,remapped_rows.failure` by bus id."""
    rows = {}
    for line in text.splitlines():
        columns = [column.strip() for column in line.split(",")]
        if len(columns) != len(REMAPPED_ROWS_FIELDS):
            continue
        bus_id, pending, failure = columns
        rows[bus_id.upper()] = {"remapped_rows_pending": _yes_no(pending), "remapped_rows_failure": _yes_no(failure)}
    return rows


def parse_versions(text):
    """Driver and CUDA versions from the header of plain `nvidia-smi` (or `nvidia-smi -q`)."""
    driver = _DRIVER_VERSION_RE.search(text or "")
    cuda = _CUDA_VERSION_RE.search(text or "")
    return (driver.group(1) if driver else None, cuda.group(1) if cuda else None)


def _split_topology_line(line):
    # nvidia-smi separates topology columns with tabs; copies pasted through terminals sometimes
    # turn them into runs of spaces, which still separate columns (cells never contain two spaces).
    if "\t" in line:
        return line.split("\t")
    return re.split(r" {2,}", line)


def parse_topology(text):
    """Parse `nvidia-smi topo -m`: link matrix, CPU/NUMA affinity per GPU, NIC names.

    Returns {"devices", "gpus", "matrix": {row: {column: link}}, "affinity": {gpu: {...}},
    "nics": {"NIC0": "mlx5_0"}, "nvlink": bool}.
    """
    lines = (text or "").splitlines()
    header_index = next((i for i, line in enumerate(lines) if re.match(r"^\s*GPU0\b", line.lstrip("\t"))), None)
    if header_index is None or not lines[header_index].startswith(("\t", " ")):
        raise GpuFactsError("nvidia-smi topo -m: no header row starting with GPU0 found")
    header = [cell.strip() for cell in _split_topology_line(lines[header_index])]
    if header and header[0] == "":
        header = header[1:]
    devices = [cell for cell in header if re.match(r"^(GPU\d+|NIC\d+|mlx\S+)$", cell)]
    attribute_columns = header[len(devices):]
    matrix, affinity = {}, {}
    for line in lines[header_index + 1:]:
        if not line.strip():
            break
        cells = [cell.strip() for cell in _split_topology_line(line)]
        device, links = cells[0], cells[1:]
        if device not in devices:
            raise GpuFactsError(f"nvidia-smi topo -m: row {device!r} is not a column of the header")
        if len(links) < len(devices):
            raise GpuFactsError(
                f"nvidia-smi topo -m: row {device} has {len(links)} cells, expected at least {len(devices)}"
            )
        row = {}
        for column, link in zip(devices, links, strict=False):
            if not _TOPOLOGY_LINK_RE.match(link):
                raise GpuFactsError(f"nvidia-smi topo -m: unknown link {link!r} between {device} and {column}")
            if column != device:
                row[column] = link
        matrix[device] = row
        if device.startswith("GPU"):
            # nvidia-smi pads wide header cells with an extra tab, leaving empty cells in the rows.
            extra = dict(zip(attribute_columns, [cell for cell in links[len(devices):] if cell], strict=False))
            affinity[device] = {
                "cpu_affinity": _value(extra.get("CPU Affinity", "")) or None,
                "numa_affinity": _value(extra.get("NUMA Affinity", "")) or None,
                "gpu_numa_id": _value(extra.get("GPU NUMA ID", "")) or None,
            }
    gpus = [device for device in devices if device.startswith("GPU")]
    missing = [device for device in devices if device not in matrix]
    if missing:
        raise GpuFactsError(f"nvidia-smi topo -m: no row for {', '.join(missing)}")
    nics = {}
    for line in lines:
        match = re.match(r"^\s+(NIC\d+): (\S+)\s*$", line)
        if match:
            nics[match.group(1)] = match.group(2)
    nvlink = any(link.startswith("NV") for gpu in gpus for peer, link in matrix[gpu].items() if peer in gpus)
    return {"devices": devices, "gpus": gpus, "matrix": matrix, "affinity": affinity, "nics": nics, "nvlink": nvlink}


def parse_xid_events(text, source):
    """Xid lines from the kernel log. Best effort: the ring buffer wraps and dmesg may be restricted."""
    events = []
    for line in (text or "").splitlines():
        match = _XID_RE.search(line)
        if match:
            events.append({"pci": match.group("pci"), "xid": int(match.group("code")), "detail": match.group("detail")})
    return {"source": source, "best_effort": True, "available": True, "events": events}


def _bus_key(bus_id):
    # nvidia-smi prints 00000000:18:00.0; the kernel log prints 0000:18:00.
    if not bus_id:
        return None
    domain, _, rest = bus_id.partition(":")
    return (int(domain, 16), rest.split(".")[0].lower())


def driver_problem(reason):
    """The health problem behind a 'no device' answer, or None when the host simply has no GPU."""
    if reason and any(marker in reason for marker in _DRIVER_FAILURE_MARKERS):
        return f"the NVIDIA driver does not answer: {reason}"
    return None


def summarise_health(gpus, xid, host_problems=()):
    """Problems a user must act on, one sentence each; healthy when there are none."""
    problems = list(host_problems)
    for gpu in gpus:
        health, label = gpu["health"], f"GPU {gpu['index']} ({gpu['pci_bus_id']})"
        if health["ecc_uncorrected_volatile"]:
            problems.append(f"{label}: {health['ecc_uncorrected_volatile']} uncorrected volatile ECC errors")
        if health["retired_pages_pending"]:
            problems.append(f"{label}: retired pages pending, reset the GPU")
        if health["remapped_rows_pending"]:
            problems.append(f"{label}: row remapping pending, reset the GPU")
        if health["remapped_rows_failure"]:
            problems.append(f"{label}: row remapping failed, the GPU needs service")
    by_bus = {_bus_key(gpu["pci_bus_id"]): gpu for gpu in gpus}
    for event in (xid or {}).get("events", []):
        gpu = by_bus.get(_bus_key(event["pci"]))
        where = f"GPU {gpu['index']}" if gpu else f"PCI {event['pci']}"
        problems.append(f"{where}: Xid {event['xid']} in the kernel log: {event['detail']}")
    return {"healthy": not problems, "problems": problems, "xid": xid}


def build_facts(gpus, driver_version=None, cuda_version=None, topology=None, xid=None, reason=None, simulated=False):
    """The `llmops_gpus` fact: what the planner and placement_plan read.

    A host whose driver does not answer reports zero GPUs and is unhealthy, with the reason.
    """
    by_type = {}
    for gpu in gpus:
        key = gpu["planner_gpu_type"] or "unknown"
        by_type[key] = by_type.get(key, 0) + 1
    return {
        "simulated": simulated,
        "present": bool(gpus),
        "count": len(gpus),
        "reason": reason,
        "driver_version": driver_version or (gpus[0]["driver_version"] if gpus else None),
        "cuda_version": cuda_version,
        "gpu_types": by_type,
        "unknown_gpu_names": sorted({gpu["name"] for gpu in gpus if gpu["planner_gpu_type"] is None}),
        "gpus": gpus,
        "topology": topology,
        "health": summarise_health(gpus, xid, [p for p in [driver_problem(reason)] if p]),
    }


def simulated_gpus(simulate):
    """GPU dicts for the lab from `simulate`: {count, type} or a list of {type[, name, memory_mib, ...]}."""
    if isinstance(simulate, dict):
        if "count" not in simulate or "type" not in simulate:
            raise GpuFactsError("simulate: a mapping needs 'count' and 'type' keys, e.g. {count: 2, type: L4-24GB}")
        try:
            count = int(simulate["count"])
        except (TypeError, ValueError):
            raise GpuFactsError(f"simulate.count must be an integer, got {simulate['count']!r}") from None
        entries = [{"type": simulate["type"]} for _ in range(count)]
    elif isinstance(simulate, list):
        entries = simulate
    else:
        raise GpuFactsError("simulate: expected a list of GPU mappings or a mapping with count and type")
    gpus = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("type") not in PLANNER_GPU_TYPES:
            raise GpuFactsError(
                f"simulate[{index}].type must be one of: {', '.join(sorted(PLANNER_GPU_TYPES))}; got {entry!r}"
            )
        spec = PLANNER_GPU_TYPES[entry["type"]]
        gpus.append(
            {
                "index": index,
                "name": entry.get("name", spec["nvidia_smi_names"][0]),
                "planner_gpu_type": entry["type"],
                "uuid": entry.get("uuid", f"GPU-00000000-0000-0000-0000-{index:012d}"),
                "pci_bus_id": entry.get("pci_bus_id", f"00000000:{index + 1:02X}:00.0"),
                "memory_mib": int(entry.get("memory_mib", spec["memory_mib"])),
                "driver_version": entry.get("driver_version"),
                "compute_capability": spec["compute_cap"],
                "mig_mode": entry.get("mig_mode", "Disabled"),
                "persistence_mode": True,
                "ecc_mode": "Enabled",
                "temperature_c": None,
                "health": {
                    "ecc_uncorrected_volatile": 0,
                    "retired_pages_pending": None,
                    "remapped_rows_pending": False,
                    "remapped_rows_failure": False,
                },
            }
        )
    return gpus


def fleet_mismatches(facts, expected_count=None, expected_type=None):
    """Differences between what the inventory declares and what the host has, as sentences."""
    mismatches = []
    if expected_count is not None and facts["count"] != expected_count:
        mismatches.append(f"inventory declares {expected_count} GPUs, host reports {facts['count']}")
    if expected_type is not None:
        wrong = sorted({gpu["planner_gpu_type"] or gpu["name"] for gpu in facts["gpus"]} - {expected_type})
        if wrong:
            mismatches.append(f"inventory declares GPU type {expected_type}, host reports {', '.join(wrong)}")
    return mismatches


def collect(run_command, nvidia_smi, collect_topology=True, xid_source="dmesg"):
    """Run nvidia-smi (and the kernel log reader) through run_command and build the facts.

    nvidia_smi is None when the binary is not installed: that is a host without an NVIDIA driver.
    """
    if nvidia_smi is None:
        return build_facts([], reason="nvidia-smi is not installed")
    rc, out, err = run_command(query_gpu_argv(nvidia_smi))
    reason = no_device_reason(rc, out, err)
    if reason is not None:
        return build_facts([], reason=reason)
    if rc != 0:
        raise GpuFactsError(f"nvidia-smi --query-gpu failed (rc={rc}): {(err or out).strip()}")
    gpus = parse_query_gpu(out)

    rc, out, _err = run_command(query_remapped_rows_argv(nvidia_smi))
    if rc == 0:
        remapped = parse_remapped_rows(out)
        for gpu in gpus:
            gpu["health"].update(remapped.get((gpu["pci_bus_id"] or "").upper(), {}))

    rc, out, _err = run_command([nvidia_smi])
    driver_version, cuda_version = parse_versions(out) if rc == 0 else (None, None)

    topology = None
    if collect_topology:
        rc, out, err = run_command([nvidia_smi, "topo", "-m"])
        if rc != 0:
            raise GpuFactsError(f"nvidia-smi topo -m failed (rc={rc}): {(err or out).strip()}")
        topology = parse_topology(out)

    xid = {"source": xid_source, "best_effort": True, "available": False, "events": []}
    if xid_source != "none":
        argv = ["dmesg"] if xid_source == "dmesg" else ["journalctl", "-k", "-b", "-o", "short", "--no-pager"]
        rc, out, _err = run_command(argv)
        if rc == 0:
            xid = parse_xid_events(out, xid_source)
    return build_facts(gpus, driver_version, cuda_version, topology, xid)
