from __future__ import annotations

import json

import pytest

from hetmap import Mapping, MappingError
from hetmap.mapping import SCHEMA_VERSION


def test_mapping_is_immutable_hashable_and_round_trips(tmp_path) -> None:
    m = Mapping({"a": "fp32", "b": "analog"}, model="abc")
    assert hash(m) == hash(Mapping({"b": "analog", "a": "fp32"}))
    assert m == Mapping({"b": "analog", "a": "fp32"}, model="other")  # choices define equality
    assert m.with_choice("a", "int8")["a"] == "int8" and m["a"] == "fp32"
    data = json.loads(m.to_json())
    assert data["schema_version"] == SCHEMA_VERSION and data["model"] == "abc"
    m.save(tmp_path / "m.json")
    assert Mapping.load(tmp_path / "m.json").to_dict() == m.to_dict()
    assert "fp32: 1" in repr(m)


@pytest.mark.parametrize("text, match", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "must be an object"),
    ('{"schema_version": 99, "choices": {}}', "schema_version 99"),
    ('{"schema_version": 1, "choices": {"a": 3}}', "layer name -> candidate"),
])
def test_bad_mapping_files_are_rejected(text: str, match: str) -> None:
    with pytest.raises(MappingError, match=match):
        Mapping.from_json(text)


def test_missing_file_is_a_mapping_error(tmp_path) -> None:
    with pytest.raises(MappingError, match="no mapping file"):
        Mapping.load(tmp_path / "nope.json")
