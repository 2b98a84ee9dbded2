"""Mapping cost: vectorised totals equal the breakdown, transfers, tile budget, pipelining."""

import numpy as np
import pytest

from hetmap.errors import MappingError
from hetmap.hardware import CostTable, HardwareSpec
from hetmap.hardware.cost import transfer_mask
from hetmap.inventory import Inventory
from hetmap.layers import LayerSpec

from .conftest import make_layer


def test_transfer_mask_skips_pass_through():
    core = np.array([[0, 0, 1, -1, 1, 0], [-1, 1, -1, 0, 0, 0]])
    expected = np.array([[0, 0, 1, 0, 0, 1], [0, 0, 0, 1, 0, 0]], dtype=bool)
    assert (transfer_mask(core) == expected).all()
    assert (transfer_mask(core.T, axis=0) == expected.T).all()  # the table's (L, N) layout


@pytest.fixture
def table(tiny_hw, tmp_path) -> CostTable:
    spec = LayerSpec("linear", 300, 16)  # two 256-row tiles per layer when analog
    layers = tuple(make_layer(f"l{i}", spec, (1, 2, 300), (1, 2, 16)) for i in range(3))
    layers = (*layers, make_layer("out", LayerSpec("linear", 16, 300), (1, 2, 16), (1, 2, 300)))
    inv = Inventory(layers, (256, 256), 1)
    offered = {n: ("int8", "analog", "fp32") for n in inv.names}
    return CostTable.build(inv, offered, tiny_hw, cache_dir=tmp_path)


def test_vectorised_totals_match_breakdown(table):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 3, size=(50, 4))
    batch = table.evaluate_indices(idx)
    for k in (0, 7, 49):
        choices = {n: table.offered[n][j] for n, j in zip(table.names, idx[k])}
        one = table.breakdown(choices)
        assert one.energy_j == pytest.approx(batch["energy_j"][k])
        assert one.latency_s == pytest.approx(batch["latency_s"][k])
        assert one.energy_j == pytest.approx(
            sum(r.energy_j + r.transfer_energy_j for r in one.layers))


def test_transfers_cost_only_when_cores_change(table):
    same = table.breakdown({n: "int8" for n in table.names})
    mixed = table.breakdown({"l0": "int8", "l1": "analog", "l2": "analog", "out": "int8"})
    assert same.transfer_energy_j == 0.0
    moved = [r.name for r in mixed.layers if r.transfer_energy_j > 0]
    assert moved == ["l1", "out"]
    l1 = next(r for r in mixed.layers if r.name == "l1")
    assert l1.transfer_energy_j == pytest.approx(2 * 300 * 1 * 2.0e-12)  # 8-bit DAC bytes


def test_tile_budget_error_names_counts_and_reprogram_adds_cost(tiny_hw, table):
    small = tiny_hw.model_copy(update={"analog": tiny_hw.analog.model_copy(
        update={"n_tiles": 5})})
    table.hw = small
    all_analog = np.ones((1, 4), dtype=int)
    with pytest.raises(MappingError, match=r"needs 8 analog tiles.*has 5"):
        table.evaluate_indices(all_analog)
    free = table.evaluate_indices(all_analog, check_tiles=False)
    assert not free["fits"][0] and free["tile_overflow"][0] == 3
    table.hw = HardwareSpec.model_validate({**small.model_dump(), "on_tile_overflow": "reprogram"})
    paid = table.evaluate_indices(all_analog)
    a = small.analog
    assert paid["energy_j"][0] == pytest.approx(
        free["energy_j"][0] + 3 * a.reprogram_energy_j_per_tile)
    assert paid["latency_s"][0] == pytest.approx(
        free["latency_s"][0] + 3 * a.reprogram_latency_s_per_tile)


def test_cost_of_supernet_uses_the_objective_table_index_convention(tiny_hw, tmp_path):
    import torch
    from torch import nn

    from hetmap.hardware import cost_of, table_for
    from hetmap.supernet import build_supernet

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    sn = build_supernet(model, torch.zeros(1, 3, 4, 4), candidates=("fp32", "int8", "analog"),
                        tile=(256, 256), calibrate=False)
    table = table_for(sn, tiny_hw, tmp_path)
    mappings = [sn.sample(torch.Generator().manual_seed(s)) for s in range(4)]
    idx = sn.mapping_indices(mappings)
    batch = table.evaluate_indices(idx)
    for k, mapping in enumerate(mappings):
        one = cost_of(sn, mapping, tiny_hw, table=table)
        assert [r.candidate for r in one.layers] == [mapping[n] for n in table.names]
        assert one.energy_j == pytest.approx(batch["energy_j"][k])
        assert one.analog_tiles == sn.table.evaluate_indices(idx)["analog_tiles"][k]


def test_table_for_traces_the_supernet_when_given_an_input(tiny_hw, tmp_path):
    import torch
    from torch import nn

    from hetmap.hardware import table_for
    from hetmap.supernet import build_supernet

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 4 * 4, 5))
    x = torch.zeros(1, 3, 4, 4)
    sn = build_supernet(model, x, candidates=("fp32", "int8", "analog"), tile=(256, 256),
                        calibrate=False)
    bare = table_for(sn, tiny_hw, tmp_path)
    whole = table_for(sn, tiny_hw, tmp_path, example_input=x)
    assert [n.kind for n in whole.graph.nodes] == ["layer", "vector", "layer"]
    assert whole.uniform("int8").energy_j > bare.uniform("int8").energy_j  # the ReLU
