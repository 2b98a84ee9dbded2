from __future__ import annotations

import pytest
import torch
from tests.evaluation.helpers import eager_analog
from tests.models_for_tests import TinyMLP
from torch import nn

from hetmap import AnalogConfig, CandidateLayer, Mapping, build_supernet
from hetmap.evaluation import Evaluator
from hetmap.search import Member, search

aihwkit = pytest.importorskip("aihwkit")

from aihwkit.nn import AnalogLinear  # noqa: E402
from aihwkit.nn.conversion import convert_to_analog  # noqa: E402

from hetmap.evaluation import deploy, evaluate_drift, torch_rpu_config  # noqa: E402
from hetmap.search import rescore_drift  # noqa: E402
from hetmap.tasks.image import accuracy  # noqa: E402

TIMES = (1.0, 86400.0, 31536000.0)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = TinyMLP().eval()
    x = torch.randn(96, 8)
    y = model(x).argmax(1)
    sn = build_supernet(model, x[:16], candidates=("fp32", "int8", "analog"),
                        analog=eager_analog())
    return model, sn, [(x[:48], y[:48]), (x[48:], y[48:])]


def _aihwkit_reference(model: nn.Module, rpu, loader, repeats: int, seed: int):
    """aihwkit's own protocol: convert, then per repeat seed, program, drift, evaluate."""
    analog = convert_to_analog(model, rpu).eval()
    values = [[] for _ in TIMES]
    for r in range(repeats):
        torch.manual_seed(seed + r)
        analog.program_analog_weights()
        for i, t in enumerate(TIMES):
            analog.drift_analog_weights(t)
            values[i].append(accuracy(analog, loader))
    return values


@pytest.mark.parametrize("deterministic", [True, False])
def test_all_analog_reproduces_aihwkit(setup, deterministic: bool) -> None:
    model, sn, loader = setup
    rpu = AnalogConfig().to_aihwkit()
    if not deterministic:
        rpu.forward.out_noise = 0.0  # the C++ tile's forward noise cannot be seeded
    ours = evaluate_drift(sn, Mapping.uniform(sn, "analog"), loader, times=TIMES, repeats=2,
                          seed=7, rpu_config=rpu, input_ranges="config",
                          deterministic=deterministic)
    ref_rpu = torch_rpu_config(rpu) if deterministic else rpu
    assert ours.values == _aihwkit_reference(model, ref_rpu, loader, repeats=2, seed=7)
    again = evaluate_drift(sn, Mapping.uniform(sn, "analog"), loader, times=TIMES, repeats=2,
                           seed=7, rpu_config=rpu, input_ranges="config",
                           deterministic=deterministic)
    assert again.values == ours.values
    assert len(ours.mean) == len(ours.std) == 3 and ours.to_dict()["times_s"] == list(TIMES)


def test_digital_deploy_equals_the_supernet_path(setup) -> None:
    _, sn, loader = setup
    mapping = Mapping.uniform(sn, "int8").with_choice("fc1", "fp32")
    model = deploy(sn, mapping)
    assert isinstance(model.fc2, CandidateLayer) and type(model.fc1) is nn.Linear
    x = loader[0][0]
    with torch.no_grad():
        expected = sn.use(mapping)(x)
        assert torch.equal(model(x), expected)
    res = evaluate_drift(sn, mapping, loader, times=(1.0, 31536000.0), repeats=2)
    assert res.std == [0.0, 0.0] and res.mean[0] == res.mean[1]  # nothing drifts
    sn.use(Mapping.uniform(sn, "fp32"))


def test_mixed_deploy_and_learned_input_ranges(setup) -> None:
    _, sn, _ = setup
    mapping = Mapping.uniform(sn, "analog").with_choice("fc3", "int8")
    model = deploy(sn, mapping)
    inner = model.module if hasattr(model, "module") else model
    assert isinstance(inner.fc1, AnalogLinear) and isinstance(inner.fc3, CandidateLayer)
    tile = next(inner.fc1.analog_tiles())
    learned = sn.candidate("fc1", "analog").input_range.detach().abs()
    assert tile.input_range.item() == pytest.approx(learned[0].item())
    w, _ = inner.fc2.get_weights()
    assert torch.allclose(w, sn.choice_layer("fc2").weight.detach(), atol=1e-5)


def test_rescore_front_with_drift(setup) -> None:
    _, sn, loader = setup
    ev = Evaluator(sn, None, objectives=("analog_mac_ratio", "digital_weight_bytes"))
    front = search(sn, ev, strategy="random", budget=6, seed=0)
    # accuracy is no objective here: rescoring adds it to every member
    front = front.with_members([Member(m.mapping, m.scores | {"accuracy": 0.0})
                                for m in front])
    out = rescore_drift(front, sn, loader, time=3600.0, repeats=1, prune=False)
    assert len(out) == len(front)
    for m in out:
        assert m.scores["accuracy_search"] == 0.0 and 0.0 <= m.scores["accuracy"] <= 100.0
        assert m.scores["drift_time_s"] == 3600.0
