# Copyright: llmops maintainers
# Apache License 2.0 (see galaxy.yml)
"""MinIO drive layouts: MINIO_VOLUMES from inventory pools, checked with MinIO's own erasure rules.

Standard library only. The rules are those of MinIO's server (cmd/endpoint-ellipses.go):

- a pool is one argument with ``{a...b}`` ellipses; its drive count is the product of the
  sequence lengths (hosts x drives per host);
- an erasure set holds 2 to 16 drives and its size divides the pool's drive count;
- MinIO keeps only sizes that spread symmetrically over the leftmost sequence (the hosts in a
  distributed pool): the size divides that sequence's length or the length divides the size;
- of those, it takes the largest (fewest sets); MINIO_ERASURE_SET_DRIVE_COUNT may pick another
  size among the divisors (then without the symmetry filter);
- several pools need ellipses in every pool; a single drive without ellipses is the
  single-node single-drive mode (no erasure coding);
- parity (MINIO_STORAGE_CLASS_STANDARD ``EC:N``) is at most half the set size; its default is
  0 for 1 drive, 1 for 2-3, 2 for 4-5, 3 for 6-7 and 4 for 8 or more.

Errors name the inventory field and what would be accepted, so the role fails in preflight.
"""

from __future__ import annotations

import re

SET_SIZES = tuple(range(2, 17))
_ELLIPSIS = re.compile(r"\{([0-9a-z]*)\.\.\.([0-9a-z]*)\}")
_STORAGE_CLASS = re.compile(r"^EC:([0-9]+)$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


class LayoutError(ValueError):
    """A layout MinIO would refuse; ``field`` names the inventory variable."""

    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field


def _sequence(field, start, end):
    """One ellipsis's labels: decimal (zero padding kept, as MinIO does) or lowercase hex."""
    for base in (10, 16):
        try:
            first, last = int(start, base), int(end, base)
        except ValueError:
            continue
        if first > last:
            raise LayoutError(field, f"{{{start}...{end}}} counts down; the start must not exceed the end")
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        fmt = f"0{width}d" if base == 10 else (f"0{width}x" if width else "x")
        return [format(n, fmt) for n in range(first, last + 1)]
    raise LayoutError(field, f"{{{start}...{end}}} is not a range of decimal or lowercase hex numbers, e.g. {{1...4}}")


def parse(field, text):
    """Split ``text`` into literal parts and sequences, left to right."""
    parts, sequences, position = [], [], 0
    for match in _ELLIPSIS.finditer(text):
        parts.append(text[position:match.start()])
        sequences.append(_sequence(field, match.group(1), match.group(2)))
        position = match.end()
    parts.append(text[position:])
    if "{" in "".join(parts) or "}" in "".join(parts) or "..." in "".join(parts):
        raise LayoutError(field, f"{text!r} has a malformed ellipsis; write {{1...4}} (three dots, no spaces)")
    return parts, sequences


def expand(field, text):
    """Every string the pattern stands for, leftmost sequence varying slowest (MinIO's order)."""
    parts, sequences = parse(field, text)
    results = [parts[0]]
    for sequence, literal in zip(sequences, parts[1:], strict=False):
        results = [prefix + label + literal for prefix in results for label in sequence]
    return results


def default_parity(set_size):
    if set_size == 1:
        return 0
    if set_size <= 3:
        return 1
    if set_size <= 5:
        return 2
    if set_size <= 7:
        return 3
    return 4


def erasure_set_size(field, argument, sequences, set_drive_count=0):
    """The set size MinIO would choose for one pool argument, or LayoutError with the choices."""
    total = 1
    for sequence in sequences:
        total *= len(sequence)
    if total < SET_SIZES[0] or total < set_drive_count:
        raise LayoutError(field, f"{argument!r} has {total} drive(s); a pool needs at least 2 (and at least "
                                 f"minio_erasure_set_drive_count) drives, or exactly one drive without ellipses")
    divisors = [s for s in SET_SIZES if total % s == 0]
    if not divisors:
        raise LayoutError(field, f"{argument!r} has {total} drives, divisible by no erasure set size "
                                 f"{SET_SIZES[0]}..{SET_SIZES[-1]}; use a drive count with such a divisor")
    if set_drive_count:
        if set_drive_count not in divisors:
            raise LayoutError("minio_erasure_set_drive_count",
                              f"{set_drive_count} does not divide the {total} drives of {argument!r}; "
                              f"accepted values: {divisors}")
        return set_drive_count
    if sequences:
        leftmost = len(sequences[0])
        divisors = [s for s in divisors if (leftmost % s == 0 if leftmost > s else s % leftmost == 0)]
    if not divisors:
        raise LayoutError(field, f"{argument!r}: {total} drives cannot be spread symmetrically over "
                                 f"{len(sequences[0])} hosts by any erasure set size {SET_SIZES[0]}..{SET_SIZES[-1]}")
    return divisors[-1]


def pool_argument(index, pool, scheme, port):
    """The MINIO_VOLUMES argument for one inventory pool ({hosts, drives})."""
    field = f"minio_pools[{index}]"
    if not isinstance(pool, dict):
        raise LayoutError(field, "each pool is a mapping {hosts: <pattern or ''>, drives: <pattern>}")
    unknown = sorted(set(pool) - {"hosts", "drives"})
    if unknown:
        raise LayoutError(field, f"unknown keys {unknown}; accepted keys: hosts, drives")
    drives = pool.get("drives")
    hosts = pool.get("hosts") or ""
    if not isinstance(drives, str) or not drives.startswith("/"):
        raise LayoutError(f"{field}.drives", f"{drives!r} must be an absolute path pattern such as /srv/minio/disk{{1...4}}")
    if not isinstance(hosts, str):
        raise LayoutError(f"{field}.hosts", f"{hosts!r} must be a host name pattern such as minio{{1...4}}.example.net")
    if "//" in drives or "/../" in drives + "/" or drives.rstrip("/") != drives:
        raise LayoutError(f"{field}.drives", f"{drives!r} must be a clean absolute path (no //, .., trailing /)")
    drive_sequences = parse(f"{field}.drives", drives)[1]
    drive_paths = expand(f"{field}.drives", drives)
    if not hosts:
        return field, drives, drive_sequences, [""], drive_paths
    host_sequences = parse(f"{field}.hosts", hosts)[1]
    host_names = expand(f"{field}.hosts", hosts)
    for name in host_names:
        if not _HOST.match(name):
            raise LayoutError(f"{field}.hosts", f"{name!r} is not a host name (letters, digits, '.', '-')")
    return field, f"{scheme}://{hosts}:{port}{drives}", host_sequences + drive_sequences, host_names, drive_paths


def layout(pools, node_name="", tls=True, port=9000, set_drive_count=0, storage_class=""):
    """Check the inventory's pools and return what the role writes and creates.

    Returns {volumes, pools: [{argument, hosts, drives_per_host, drives, set_size, sets, parity}],
    local_drives, distributed}. ``local_drives`` are the drive paths on ``node_name`` (all of
    them for a single-node layout).
    """
    if not isinstance(pools, list) or not pools:
        raise LayoutError("minio_pools", "at least one pool {hosts, drives} is required")
    if not isinstance(set_drive_count, int) or isinstance(set_drive_count, bool) or not (
            set_drive_count == 0 or set_drive_count in SET_SIZES):
        raise LayoutError("minio_erasure_set_drive_count",
                          f"{set_drive_count!r}; accepted values: 0 (MinIO chooses) or 2..16")
    scheme = "https" if tls else "http"
    parsed = [pool_argument(i, pool, scheme, port) for i, pool in enumerate(pools)]
    distributed = [hosts != [""] for _, _, _, hosts, _ in parsed]
    if any(distributed) and not all(distributed):
        raise LayoutError("minio_pools", "every pool is distributed (hosts set) or the layout is single-node "
                                         "(hosts empty in every pool); MinIO refuses a mix")
    single_drive = len(parsed) == 1 and not parsed[0][2]
    if len(parsed) > 1 and any(not sequences for _, _, sequences, _, _ in parsed):
        raise LayoutError("minio_pools", "with several pools every pool needs an ellipsis pattern "
                                         "(MinIO expands pools only from {a...b} arguments)")
    seen = set()
    result_pools = []
    for field, argument, sequences, hosts, drives in parsed:
        for host in hosts:
            for drive in drives:
                if (host, drive) in seen:
                    raise LayoutError(field, f"drive {drive} on {host or 'this node'} is in more than one pool")
                seen.add((host, drive))
        set_size = 1 if single_drive else erasure_set_size(field, argument, sequences, set_drive_count)
        total = len(hosts) * len(drives) if hosts != [""] else len(drives)
        result_pools.append({"argument": argument, "hosts": [h for h in hosts if h], "drives": drives,
                             "drives_per_host": len(drives), "set_size": set_size, "sets": total // set_size,
                             "parity": default_parity(set_size)})
    smallest = min(p["set_size"] for p in result_pools)
    if storage_class:
        match = _STORAGE_CLASS.match(storage_class) if isinstance(storage_class, str) else None
        if not match or int(match.group(1)) > smallest // 2:
            raise LayoutError("minio_storage_class_standard",
                              f"{storage_class!r}; accepted values: '' (MinIO's default) or EC:0..EC:{smallest // 2} "
                              f"(at most half the smallest erasure set, {smallest} drives)")
        for pool in result_pools:
            pool["parity"] = int(match.group(1))
    if any(distributed):
        local = [d for p in result_pools if node_name in p["hosts"] for d in p["drives"]]
        if not local:
            names = sorted({h for p in result_pools for h in p["hosts"]})
            raise LayoutError("minio_node_name", f"{node_name!r} is in no pool; the pools' hosts are {names}")
    else:
        local = [d for p in result_pools for d in p["drives"]]
    return {"volumes": " ".join(p["argument"] for p in result_pools), "pools": result_pools,
            "local_drives": sorted(set(local)), "distributed": any(distributed)}
