import pytest

from hetmap.errors import ConfigError
from hetmap.hardware import HardwareSpec, load_hardware, parse_hardware, preset_names


def test_presets_load_and_route_candidates():
    assert {"hermes-pcm", "digital-int8-fp16"} <= set(preset_names())
    hw = load_hardware("hermes-pcm")
    assert hw.analog is not None and hw.analog.tile == (256, 256) and hw.analog.n_tiles == 64
    assert hw.route("int8") == ("digital", "int8")
    assert hw.route("analog") == ("analog", None)
    assert hw.route("skip") == ("", None)
    assert load_hardware("digital-int8-fp16").analog is None


def test_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match=r"unknown hardware 'hermes-x'.*hermes-pcm"):
        load_hardware("hermes-x")


@pytest.mark.parametrize(("path", "value", "field"), [
    (("analog", "tile_rows"), -256, "analog.tile_rows"),
    (("analog", "n_tiles"), 0, "analog.n_tiles"),
    (("link", "bandwidth_gbps"), -1.0, "link.bandwidth_gbps"),
])
def test_bad_sizes_name_the_field(path, value, field):
    data = load_hardware("hermes-pcm").model_dump()
    data[path[0]][path[1]] = value
    with pytest.raises(ConfigError, match=f"field '{field}'"):
        parse_hardware(data)


def test_bad_precision_size_names_nested_field():
    data = load_hardware("hermes-pcm").model_dump()
    data["digital"][0]["precisions"]["int8"]["array_rows"] = -4
    with pytest.raises(ConfigError, match=r"field 'digital.0.precisions.int8.array_rows'"):
        parse_hardware(data)


def test_candidate_without_core_names_the_field():
    data = load_hardware("hermes-pcm").model_dump()
    del data["digital"][0]["precisions"]["int4"]
    hw = HardwareSpec.model_validate(data)
    with pytest.raises(ConfigError, match=r"'int4'.*digital\[\*\]\.precisions"):
        hw.route("int4")
    with pytest.raises(ConfigError, match="field 'analog'"):
        load_hardware("digital-int8-fp16").route("analog")


def test_unknown_field_and_missing_cores_are_rejected():
    data = load_hardware("hermes-pcm").model_dump()
    data["analog"]["tile_size"] = 3
    with pytest.raises(ConfigError, match=r"field 'analog\.tile_size'"):
        parse_hardware(data)
    with pytest.raises(ConfigError, match="at least one core"):
        parse_hardware({"name": "empty"})


def test_yaml_file_round_trip(tmp_path):
    import yaml

    path = tmp_path / "mine.yaml"
    data = load_hardware("hermes-pcm").model_dump(mode="json")
    data["analog"]["n_tiles"] = 8
    path.write_text(yaml.safe_dump(data))
    assert load_hardware(path).analog.n_tiles == 8
