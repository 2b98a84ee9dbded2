"""Width choices: an adapted group's original or adapted width as a searchable choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.width_models import NARROW, WIDE, width_case

from hetmap import Mapping, MappingError, UnknownCandidateError, build_supernet
from hetmap.errors import ConfigError
from hetmap.inventory import WidthGroup


@pytest.fixture(scope="module", params=["convhead", "depthwise"])
def case(request):
    return width_case(request.param)


def _run(sn, mapping, x) -> torch.Tensor:
    with torch.no_grad():
        return sn.use(mapping)(x)


def test_gates_are_choices_after_the_layers(case) -> None:
    sn = case.sn
    assert sn.gate_names and all(g.startswith("width:") for g in sn.gate_names)
    assert sn.layer_names == case.full.layer_names + sn.gate_names
    for g in sn.gate_names:
        assert sn.candidates(g) == (NARROW, WIDE)
    assert len(sn.arch_parameters()) == len(sn.layer_names)
    gate_logits = {id(sn.gate(g).logits) for g in sn.gate_names}
    assert not gate_logits & {id(p) for p in sn.weight_parameters()}
    assert set(sn.preferences()) == set(sn.layer_names)
    with pytest.raises(UnknownCandidateError):
        sn.candidate(sn.gate_names[0], NARROW)


def test_plain_supernet_has_no_width_state(case) -> None:
    assert case.full.gate_names == () and case.full.variants is None
    assert not any(k.startswith("width_gates") for k in case.full.state_dict())
    assert case.full.table.macs.shape[1] == case.full.table.width  # one variant
    m = case.full.sample(torch.Generator().manual_seed(0))
    full = case.full.full_choices(m)
    assert np.array_equal(case.full.mapping_indices([m])[0], case.full.table.indices(full))


def test_narrow_path_is_the_original_model_and_wide_the_adapted(case) -> None:
    sn = case.sn
    fp32 = Mapping.uniform(sn, "fp32")
    with torch.no_grad():
        original, adapted = case.model(case.x), case.wide(case.x)
    assert fp32[sn.gate_names[0]] == WIDE  # uniform mappings keep the adapted width
    assert torch.allclose(_run(sn, fp32, case.x), adapted, atol=1e-5)
    narrow = case.with_widths(fp32, NARROW)
    assert torch.allclose(_run(sn, narrow, case.x), original, atol=1e-5)
    # the widened units really are there: perturbing them moves only the wide path
    consumer = sn.choice_layer(sn.gate(sn.gate_names[0]).group.consumers[0])
    with torch.no_grad():
        consumer.weight[:, consumer.narrow:] += 0.5
    try:
        assert torch.allclose(_run(sn, narrow, case.x), original, atol=1e-5)
        assert not torch.allclose(_run(sn, fp32, case.x), adapted, atol=1e-3)
    finally:
        with torch.no_grad():
            consumer.weight[:, consumer.narrow:] -= 0.5


def test_int8_narrow_path_matches_the_original_supernets(case) -> None:
    # narrow consumers hold their own int8 observers, calibrated on the narrow input
    sn, base = case.sn, case.base
    int8 = Mapping.uniform(base, "int8")
    out = _run(sn, case.with_widths(int8, NARROW), case.x)
    assert torch.allclose(out, _run(base, int8, case.x), atol=1e-5)


def test_gradients_reach_the_shared_weights_from_both_paths(case) -> None:
    sn = case.sn
    gate = sn.gate(sn.gate_names[0])
    consumer = sn.choice_layer(gate.group.consumers[0])
    n = consumer.narrow
    fp32 = Mapping.uniform(sn, "fp32")
    for width in (NARROW, WIDE):
        sn.zero_grad()
        sn.use(fp32.with_choice(gate.layer_name, width))(case.x).square().sum().backward()
        grad = consumer.weight.grad
        assert grad[:, :n].abs().sum() > 0
        assert (grad[:, n:].abs().sum() > 0) == (width == WIDE)
    # soft mode: the width preference learns once the two paths differ
    with torch.no_grad():
        consumer.weight[:, n:] += 0.5
    try:
        sn.zero_grad()
        sn.set_mode("soft")
        sn(case.x).square().sum().backward()
        assert gate.logits.grad is not None and gate.logits.grad.abs().sum() > 0
    finally:
        sn.set_mode("single")
        with torch.no_grad():
            consumer.weight[:, n:] -= 0.5
        sn.zero_grad()


def test_sampling_preferences_and_log_prob_cover_the_gates(case) -> None:
    sn = case.sn
    gen = torch.Generator().manual_seed(0)
    samples = [sn.sample(gen) for _ in range(40)]
    for g in sn.gate_names:
        assert {m[g] for m in samples} == {NARROW, WIDE}
    m = samples[0]
    sn.use(m)
    assert sn.current_mapping() == m
    gate = sn.gate(sn.gate_names[0])
    before = float(sn.log_prob(m).detach())
    with torch.no_grad():
        gate.logits[gate.index(m[gate.layer_name])] += 1.0
    try:
        assert float(sn.log_prob(m).detach()) > before
        prefs = sn.preferences()[gate.layer_name]
        assert prefs[m[gate.layer_name]] > 0.5
        drawn = [sn.sample(gen, from_preferences=True)[gate.layer_name] for _ in range(60)]
        assert drawn.count(m[gate.layer_name]) > 30
    finally:
        with torch.no_grad():
            gate.logits.zero_()


def test_mapping_validation_and_uniform_handle_gates(case) -> None:
    sn = case.sn
    g = sn.gate_names[0]
    m = Mapping.uniform(sn, "analog")
    assert all(m[n] == WIDE for n in sn.gate_names)
    with pytest.raises(UnknownCandidateError, match="not offered"):
        m.with_choice(g, "fp32").validate(sn)
    missing = Mapping({n: c for n, c in m.items() if n != g}, sn.fingerprint)
    with pytest.raises(MappingError, match=g):
        missing.validate(sn)
    assert Mapping.uniform(sn, NARROW, fallback="fp32")[g] == NARROW


def test_objectives_follow_the_widths(case) -> None:
    sn, base, full = case.sn, case.base, case.full
    gen = torch.Generator().manual_seed(1)
    for _ in range(6):
        layers = base.sample(gen)
        narrow = case.with_widths(layers, NARROW)
        assert sn.objectives(narrow) == base.objectives(case.layers_of(layers, base))
        wide = case.with_widths(layers, WIDE)
        assert sn.objectives(wide) == full.objectives(case.layers_of(layers, full))
    # the vectorised indices agree with the per-mapping ones
    batch = [sn.sample(gen) for _ in range(10)]
    idx = sn.mapping_indices(batch)
    for row, m in zip(idx, batch):
        assert np.array_equal(row, sn.table.indices(sn.full_choices(m)))
    values = sn.table.evaluate_indices(idx)
    assert values["total_params"][0] == sn.objectives(batch[0]).total_params


def test_mixed_widths_sit_between(case) -> None:
    sn = case.sn
    analog = Mapping.uniform(sn, "analog")
    narrow = case.with_widths(analog, NARROW)
    params = {m: sn.objectives(m).total_params for m in (narrow, analog)}
    one = narrow.with_choice(sn.gate_names[0], WIDE)
    assert params[narrow] < sn.objectives(one).total_params <= params[analog]


def test_materialised_narrow_model_has_the_original_shapes(case) -> None:
    sn = case.sn
    int8 = case.with_widths(Mapping.uniform(sn, "int8"), NARROW)
    model = sn.model_for(int8).eval()
    shapes = {n: p.shape for n, p in model.named_parameters() if not n.endswith("logits")
              and "candidates" not in n}
    original = dict(case.model.named_parameters())
    assert shapes == {n: p.shape for n, p in original.items()}
    with torch.no_grad():
        assert torch.allclose(model(case.x), _run(sn, int8, case.x), atol=1e-6)
    wide = sn.model_for(Mapping.uniform(sn, "fp32"))
    assert {n: p.shape for n, p in wide.named_parameters() if "candidates" not in n
            and not n.endswith("logits")} == {n: p.shape for n, p in case.wide.named_parameters()}


def test_width_groups_are_checked() -> None:
    case = width_case("convhead")
    group = case.sn.gate(case.sn.gate_names[0]).group
    with pytest.raises(ConfigError, match="adapted model"):
        build_supernet(case.model, case.x, widths=[group])
    with pytest.raises(ConfigError, match="not a mappable layer"):
        build_supernet(case.wide, case.x, widths=[WidthGroup(("nope",), (), group.consumers,
                                                             group.narrow, group.wide)])
    with pytest.raises(ConfigError, match="narrow < wide"):
        WidthGroup(group.producers, (), group.consumers, 8, 8)


def test_copies_and_checkpoints_keep_the_gates(case) -> None:
    import copy

    sn = case.sn
    twin = copy.deepcopy(sn)  # mappers train private copies: their consumers must follow
    gate = twin.gate(twin.gate_names[0])  # the copy's gates, not the original's
    assert twin.choice_layer(gate.group.consumers[0]).gate is gate
    with torch.no_grad():
        gate.logits.copy_(torch.tensor([2.0, -1.0]))
    assert sn.gate(sn.gate_names[0]).logits.abs().sum() == 0
    fresh = width_case("convhead" if "conv" in sn.layer_names else "depthwise").sn
    fresh.load_state_dict(twin.state_dict())
    assert torch.equal(fresh.gate(gate.layer_name).logits, gate.logits)


def test_deployed_narrow_model_runs_every_layer_analog() -> None:
    """model_for rebuilds analog tile plans for narrowed producers and depthwise middles."""
    for kind in ("convhead", "dw"):
        case = width_case(kind)
        sn = case.sn
        m = Mapping({n: NARROW if n in sn.gate_names else "analog" for n in sn.layer_names},
                    sn.fingerprint)
        sn.use(m).eval()
        with torch.no_grad():
            assert torch.allclose(sn.model_for(m).eval()(case.x), sn(case.x), atol=1e-6)


def test_scoring_a_mapping_without_widths_is_an_error() -> None:
    sn = width_case("convhead").sn
    layers_only = Mapping({n: "fp32" for n in sn.layer_names if n not in sn.gate_names},
                          sn.fingerprint)
    with pytest.raises(MappingError, match="no width for width:"):
        sn.mapping_indices([layers_only])
