"""module_utils.yaml_text: the YAML every generated Prometheus and Grafana file is written with."""

from __future__ import annotations

import pytest
import yaml
from ansible_collections.llmops.datacenter.plugins.module_utils import yaml_text
from hypothesis import given
from hypothesis import strategies as st

yaml_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
yaml_documents = st.recursive(
    yaml_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(min_size=1), children, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(min_size=1), yaml_documents, min_size=1, max_size=5), st.booleans())
def test_yaml_writer_round_trips_through_a_yaml_parser(document, ensure_ascii):
    assert yaml.safe_load(yaml_text.dump(document, ensure_ascii=ensure_ascii)) == document


@pytest.mark.parametrize("ensure_ascii", [False, True])
def test_yaml_writer_keeps_strings_that_look_like_other_types_as_strings(ensure_ascii):
    document = {"a": "yes", "b": "1e3", "c": "null", "d": "0640", "e": "- x", "f": "{{Hostname}}"}
    assert yaml.safe_load(yaml_text.dump(document, ensure_ascii=ensure_ascii)) == document


@pytest.mark.parametrize("ensure_ascii", [False, True])
def test_values_yaml_parsers_misread_when_written_naively_round_trip(ensure_ascii):
    document = {
        "False": 1e-05,
        "null": [float("inf"), float("-inf")],
        "labels\n": {"yes": "\x7f \U0001f600 \u2028"},
        "é" * 600: [{"k" * 1100: {"nested": True}}, {"k" * 1100: 1}],
    }
    assert yaml.safe_load(yaml_text.dump(document, ensure_ascii=ensure_ascii)) == document


def test_ensure_ascii_escapes_what_utf8_output_writes_as_is():
    document = {"description": "GPU above 85 °C"}
    assert yaml_text.dump(document) == 'description: "GPU above 85 °C"\n'
    assert yaml_text.dump(document, ensure_ascii=True) == 'description: "GPU above 85 \\u00b0C"\n'


def test_other_types_need_a_default_that_turns_them_into_scalars():
    with pytest.raises(yaml_text.UnrepresentableValue, match="set"):
        yaml_text.dump({"hosts": {"a", "b"}})
    assert yaml_text.dump({"version": (1, 2)}, default=str) == 'version: "(1, 2)"\n'
