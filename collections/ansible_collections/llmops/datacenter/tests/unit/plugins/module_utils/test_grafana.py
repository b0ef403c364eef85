"""module_utils.grafana: dashboard model and layout, datasource documents, secret masking."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.module_utils import grafana, yaml_text

ROLE_DASHBOARDS = Path(__file__).resolve().parents[4] / "roles" / "grafana" / "files" / "dashboards"
SPECS = {path.stem: yaml.safe_load(path.read_text(encoding="utf-8")) for path in ROLE_DASHBOARDS.glob("*.yml")}


def occupied_cells(panel: dict) -> set[tuple[int, int]]:
    grid = panel["gridPos"]
    return {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_role_dashboards_lay_out_without_overlap_inside_the_grid(name):
    dashboard = grafana.build_dashboard(**SPECS[name])
    taken: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        cells = occupied_cells(panel)
        assert not cells & taken, f"{panel['title']} overlaps an earlier panel"
        assert all(x < grafana.GRID_COLUMNS for x, _ in cells)
        taken |= cells
    assert [panel["id"] for panel in dashboard["panels"]] == list(range(1, len(dashboard["panels"]) + 1))


def test_rows_start_a_new_line_below_everything_before_them():
    dashboard = grafana.build_dashboard(
        "t", [{"title": "a", "expr": "up", "height": 9}, {"title": "r", "kind": "row"}, {"title": "b", "expr": "up"}]
    )
    _first, row, after = dashboard["panels"]
    assert row["gridPos"] == {"x": 0, "y": 9, "w": 24, "h": 1}
    assert after["gridPos"]["y"] == 10 and after["gridPos"]["x"] == 0


def test_same_spec_renders_byte_identically():
    spec = SPECS["gpu_fleet"]
    assert grafana.render_dashboard(grafana.build_dashboard(**spec)) == grafana.render_dashboard(
        grafana.build_dashboard(**yaml.safe_load(yaml.safe_dump(spec)))
    )


def test_thresholds_become_grafana_steps_and_slo_lines():
    panel = grafana.build_dashboard(
        "t", [{"title": "ttft", "expr": "up", "unit": "s", "thresholds": [{"value": 0.5, "color": "red"}]}]
    )["panels"][0]
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults["thresholds"]["steps"] == [{"color": "green", "value": None}, {"color": "red", "value": 0.5}]
    assert defaults["custom"]["thresholdsStyle"] == {"mode": "line"}


@pytest.mark.parametrize(
    ("thresholds", "field"),
    [
        ([{"value": 2, "color": "red"}, {"value": 1, "color": "orange"}], "panels[0].thresholds[1].value"),
        ([{"value": "high", "color": "red"}], "panels[0].thresholds[0].value"),
        ([{"value": 1}], "panels[0].thresholds[0].color"),
        ([{"value": 1, "color": "red", "colour": "x"}], "panels[0].thresholds[0].colour"),
    ],
)
def test_bad_thresholds_name_the_field(thresholds, field):
    with pytest.raises(grafana.SpecError) as raised:
        grafana.build_dashboard("t", [{"title": "x", "expr": "up", "thresholds": thresholds}])
    assert raised.value.field == field


def test_custom_suffix_units_are_accepted_and_unknown_units_list_the_accepted_ones():
    panel = grafana.build_dashboard("t", [{"title": "x", "expr": "up", "unit": "suffix: tok/s"}])["panels"][0]
    assert panel["fieldConfig"]["defaults"]["unit"] == "suffix: tok/s"
    with pytest.raises(grafana.SpecError, match=r"accepted: none, short, percent.*suffix:<text>"):
        grafana.build_dashboard("t", [{"title": "x", "expr": "up", "unit": "suffix:"}])


def test_variables_become_prometheus_query_variables():
    dashboard = grafana.build_dashboard(
        "t",
        [{"title": "x", "expr": 'up{model_name="$model"}'}],
        variables=[{"name": "model", "query": "label_values(up, model_name)", "include_all": True}],
    )
    (variable,) = dashboard["templating"]["list"]
    assert variable["type"] == "query" and variable["allValue"] == ".*"
    assert variable["query"]["query"] == "label_values(up, model_name)"
    assert grafana.dashboard_expressions(dashboard) == ['up{model_name="$model"}', "label_values(up, model_name)"]


def test_uid_defaults_to_a_slug_within_grafanas_limit():
    assert grafana.slugify("GPU fleet: H100 / A100") == "gpu-fleet-h100-a100"
    assert len(grafana.slugify("x" * 80)) == 40
    for bad_uid in ("no spaces allowed", "trailing-newline\n"):
        with pytest.raises(grafana.SpecError) as raised:
            grafana.build_dashboard("t", [{"title": "x", "expr": "up"}], uid=bad_uid)
        assert raised.value.field == "uid"


def test_mask_secrets_hides_secure_json_data_only():
    text = yaml_text.dump(
        grafana.build_datasource_document(
            "Prometheus", "http://p:9090", basic_auth_user="grafana", basic_auth_password="pw",
            json_data={"httpMethod": "POST"}, secure_json_data={"tlsCACert": "PEM"},
        )
    )
    masked = grafana.mask_secrets(text)
    assert "pw" not in masked.replace("httpMethod", "") and "PEM" not in masked
    loaded = yaml.safe_load(masked)["datasources"][0]
    assert loaded["secureJsonData"] == {"basicAuthPassword": grafana.SECRET_MASK, "tlsCACert": grafana.SECRET_MASK}
    assert loaded["jsonData"] == {"httpMethod": "POST"} and loaded["basicAuthUser"] == "grafana"
