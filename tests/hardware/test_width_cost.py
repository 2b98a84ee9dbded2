"""The cost table under width choices: narrow groups cost what the original model costs,
wide ones what the adapted model costs, and both come from one (N, layers) index array."""

from __future__ import annotations

import pytest
import torch
from tests.width_models import NARROW, WIDE, width_case

from hetmap import Mapping
from hetmap.hardware import cost_of, table_for


@pytest.fixture(scope="module", params=["convhead", "depthwise"])
def case(request):
    return width_case(request.param)


def test_narrow_shapes_equal_the_original_inventory(case) -> None:
    variants = case.sn.variants
    narrow = {g: NARROW for g in case.sn.gate_names}
    v = variants.variant_of(narrow)
    for i, name in enumerate(variants.order):
        assert variants.layers[i][v[i]] == case.base.inventory[name]
        assert variants.layers[i][0] == case.full.inventory[name]


def test_costs_follow_the_widths(case, tiny_hw, tmp_path) -> None:
    sn, base, full = case.sn, case.base, case.full
    table = table_for(sn, tiny_hw, tmp_path)
    tables = {base: table_for(base, tiny_hw, tmp_path), full: table_for(full, tiny_hw, tmp_path)}
    gen = torch.Generator().manual_seed(0)
    for _ in range(4):
        layers = base.sample(gen)
        for width, other in ((NARROW, base), (WIDE, full)):
            mine = cost_of(sn, case.with_widths(layers, width), table=table)
            theirs = cost_of(other, case.layers_of(layers, other), table=tables[other])
            assert mine == theirs
    narrow_analog = case.with_widths(Mapping.uniform(sn, "analog"), NARROW)
    assert cost_of(sn, narrow_analog, table=table).energy_j < \
        cost_of(sn, Mapping.uniform(sn, "analog"), table=table).energy_j


def test_batch_costs_agree_with_single_ones(case, tiny_hw, tmp_path) -> None:
    sn = case.sn
    table = table_for(sn, tiny_hw, tmp_path)
    mappings = [sn.sample(torch.Generator().manual_seed(s)) for s in range(8)]
    batch = table.evaluate_indices(sn.mapping_indices(mappings), check_tiles=False)
    for k, m in enumerate(mappings):
        one = cost_of(sn, m, table=table)
        assert one.energy_j == pytest.approx(batch["energy_j"][k])
        assert one.latency_s == pytest.approx(batch["latency_s"][k])
        assert one.analog_tiles == batch["analog_tiles"][k]
        assert [r.candidate for r in one.layers] == [m[n] for n in table.names]
    # choices without width entries (CostTable.uniform) cost the adapted (wide) model
    assert table.uniform("fp32") == cost_of(sn, Mapping.uniform(sn, "fp32"), table=table)
