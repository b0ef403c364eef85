"""MinIO drive layouts: MINIO_VOLUMES and the erasure set sizes MinIO's server would choose.

Expected set sizes follow MinIO's documented examples (docs/distributed/DESIGN.md: dir{1...64}
gives 4 sets of 16; 16 hosts x 64 drives gives 64 sets of 16) and its rules in
cmd/endpoint-ellipses.go.
"""

from __future__ import annotations

import pytest
from ansible_collections.llmops.datacenter.plugins.module_utils.minio_layout import (
    LayoutError,
    expand,
    layout,
)


def sizes(result):
    return [(p["set_size"], p["sets"], p["parity"]) for p in result["pools"]]


@pytest.mark.parametrize(("pools", "expected"), [
    ([{"drives": "/srv/minio/disk{1...64}"}], [(16, 4, 4)]),
    ([{"drives": "/d{1...4}"}], [(4, 1, 2)]),
    ([{"drives": "/d{1...6}"}], [(6, 1, 3)]),
    ([{"drives": "/d{1...2}"}], [(2, 1, 1)]),
    ([{"drives": "/d{1...24}"}], [(12, 2, 4)]),
    ([{"drives": "/srv/minio"}], [(1, 1, 0)]),
    ([{"hosts": "minio{1...16}.lab", "drives": "/export{1...64}"}], [(16, 64, 4)]),
    ([{"hosts": "minio{1...4}.lab", "drives": "/d{1...4}"}], [(16, 1, 4)]),
    # 6 hosts x 2 drives = 12; 12 spreads symmetrically over 6 hosts (12 % 6 == 0).
    ([{"hosts": "minio{1...6}.lab", "drives": "/d{1...2}"}], [(12, 1, 4)]),
    # 3 hosts x 5 drives = 15: 15 divides by 3, 5, 15; all symmetric with 3 hosts -> 15.
    ([{"hosts": "minio{1...3}.lab", "drives": "/d{1...5}"}], [(15, 1, 4)]),
    # Two pools of different shapes: each gets its own set size.
    ([{"hosts": "minio{1...4}.lab", "drives": "/d{1...4}"},
      {"hosts": "minio{5...12}.lab", "drives": "/d{1...8}"}], [(16, 1, 4), (16, 4, 4)]),
])
def test_set_sizes_match_minios_choice(pools, expected):
    node = pools[0].get("hosts") and expand("h", pools[0]["hosts"])[0]
    assert sizes(layout(pools, node or "")) == expected


def test_volumes_string_and_local_drives():
    result = layout([{"hosts": "minio{1...4}.lab", "drives": "/srv/minio/disk{1...4}"},
                     {"hosts": "minio{5...8}.lab", "drives": "/srv/minio/disk{1...4}"}], "minio6.lab", port=9100)
    assert result["volumes"] == ("https://minio{1...4}.lab:9100/srv/minio/disk{1...4} "
                                 "https://minio{5...8}.lab:9100/srv/minio/disk{1...4}")
    assert result["local_drives"] == [f"/srv/minio/disk{i}" for i in range(1, 5)]
    assert result["distributed"]
    plain = layout([{"hosts": "minio{1...4}.lab", "drives": "/d{1...4}"}], "minio1.lab", tls=False)
    assert plain["volumes"].startswith("http://minio{1...4}.lab:9000/")


def test_zero_padding_and_hex_sequences_expand_like_minio():
    assert expand("f", "/disk{01...03}") == ["/disk01", "/disk02", "/disk03"]
    assert expand("f", "/disk{a...c}") == ["/diska", "/diskb", "/diskc"]
    assert expand("f", "/mnt{1...2}/d{1...2}") == ["/mnt1/d1", "/mnt1/d2", "/mnt2/d1", "/mnt2/d2"]


def test_set_drive_count_override_must_divide_the_pool():
    assert sizes(layout([{"drives": "/d{1...16}"}], set_drive_count=8)) == [(8, 2, 4)]
    with pytest.raises(LayoutError) as error:
        layout([{"drives": "/d{1...16}"}], set_drive_count=6)
    assert error.value.field == "minio_erasure_set_drive_count"
    assert "accepted values: [2, 4, 8, 16]" in str(error.value)


@pytest.mark.parametrize(("pools", "kwargs", "field", "message"), [
    ([], {}, "minio_pools", "at least one pool"),
    ([{"drives": "/d{1...17}"}], {}, "minio_pools[0]", "17 drives, divisible by no erasure set size 2..16"),
    ([{"drives": "/d{1...1}"}], {}, "minio_pools[0]", "has 1 drive(s); a pool needs at least 2"),
    ([{"hosts": "minio{1...17}.lab", "drives": "/d"}], {"node_name": "minio1.lab"}, "minio_pools[0]",
     "17 drives, divisible by no erasure set size"),
    ([{"drives": "relative/d{1...4}"}], {}, "minio_pools[0].drives", "must be an absolute path pattern"),
    ([{"drives": "/d{4...1}"}], {}, "minio_pools[0].drives", "counts down"),
    ([{"drives": "/d{1..4}"}], {}, "minio_pools[0].drives", "malformed ellipsis"),
    ([{"drives": "/d{1...4}", "disks": 4}], {}, "minio_pools[0]", "accepted keys: hosts, drives"),
    ([{"drives": "/a{1...4}"}, {"drives": "/b"}], {}, "minio_pools", "every pool needs an ellipsis"),
    ([{"hosts": "minio{1...4}.lab", "drives": "/d{1...4}"}, {"drives": "/e{1...4}"}], {"node_name": "minio1.lab"},
     "minio_pools", "MinIO refuses a mix"),
    ([{"hosts": "minio{1...4}.lab", "drives": "/d{1...4}"}], {"node_name": "other.lab"}, "minio_node_name",
     "'other.lab' is in no pool"),
    ([{"drives": "/d{1...4}"}, {"drives": "/d{3...6}"}], {}, "minio_pools[1]", "is in more than one pool"),
    ([{"drives": "/d{1...4}"}], {"storage_class": "EC:3"}, "minio_storage_class_standard", "EC:0..EC:2"),
    ([{"drives": "/d{1...4}"}], {"storage_class": "RRS"}, "minio_storage_class_standard", "accepted values"),
    ([{"drives": "/d{1...4}"}], {"set_drive_count": 1}, "minio_erasure_set_drive_count", "0 (MinIO chooses) or 2..16"),
])
def test_layouts_minio_refuses_fail_naming_the_field(pools, kwargs, field, message):
    with pytest.raises(LayoutError) as error:
        layout(pools, **kwargs)
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: ")
    assert message in str(error.value)


def test_storage_class_sets_parity():
    assert sizes(layout([{"drives": "/d{1...8}"}], storage_class="EC:2")) == [(8, 1, 2)]
