"""Export: the saved model loads and runs in a process where hetmap cannot be imported, and
computes what hetmap's deployed model computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

pytest.importorskip("aihwkit", reason="export writes aihwkit analog layers")

from hetmap.candidates.analog import AnalogConfig
from hetmap.candidates.base import CandidateLayer
from hetmap.export import export, portable_layer
from hetmap.mapping import Mapping
from hetmap.supernet import build_supernet

USER_MODEL = '''
import torch
from torch import nn


class UserNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        h = torch.relu(self.conv2(h))
        h = torch.relu(self.conv3(h)) + h
        return self.fc2(torch.relu(self.fc1(h.mean((2, 3)))))
'''

LOADER = '''
import sys
sys.modules["hetmap"] = None  # any import of hetmap now fails
import torch
from aihwkit.nn import AnalogWrapper
loaded = torch.load(sys.argv[1], weights_only=False)
assert type(loaded).__name__ == "UserNet", type(loaded)
model = AnalogWrapper(loaded).eval()
x = torch.load(sys.argv[2])
with torch.no_grad():
    y = model(x)
    model.program_analog_weights()
    model.drift_analog_weights(86400.0)
    drifted = model(x)
assert torch.isfinite(drifted).all()
kinds = sorted({type(m).__name__ for m in model.modules()})
torch.save({"y": y, "kinds": kinds}, sys.argv[3])
'''


@pytest.fixture
def user_net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> torch.nn.Module:
    (tmp_path / "usernet.py").write_text(USER_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    import usernet

    return usernet.UserNet().eval()


def test_exported_model_runs_without_hetmap(user_net: torch.nn.Module, tmp_path: Path) -> None:
    x = torch.randn(4, 1, 8, 8)
    sn = build_supernet(user_net, x, candidates=("fp32", "int8", "int4", "analog", "skip"),
                        analog=AnalogConfig(out_noise=0.0))
    sn.calibrate([torch.randn(16, 1, 8, 8)])
    mapping = Mapping({"conv1": "int8", "conv2": "analog", "conv3": "skip", "fc1": "int4",
                       "fc2": "fp32"}, sn.fingerprint)
    from hetmap.evaluation.drift import deploy

    with torch.no_grad():
        expected = deploy(sn, mapping)(x)
    paths = export(sn, mapping, tmp_path / "export")
    assert Mapping.load(paths["mapping"]) == mapping
    info = json.loads(paths["deploy"].read_text())
    assert info["layers"]["conv2"]["as"] == "aihwkit analog layer"
    assert info["layers"]["conv1"]["weight_bits"] == 8 and info["layers"]["fc1"]["act_bits"] == 4
    assert info["layers"]["conv3"]["as"] == "Identity"
    assert info["analog_config"] is not None  # it was always null: options had no 'analog'
    assert AnalogConfig.model_validate(info["analog_config"]) == sn.options.analog
    assert info["analog_config"]["out_noise"] == 0.0
    assert info["supernet_options"]["tile"] == list(sn.options.tile)
    assert "torch.load" in paths["readme"].read_text()
    state = torch.load(paths["state_dict"], weights_only=False)
    assert any(k.endswith("fc2.weight") for k in state)

    torch.save(x, tmp_path / "x.pt")
    (tmp_path / "load.py").write_text(textwrap.dedent(LOADER))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    proc = subprocess.run([sys.executable, str(tmp_path / "load.py"), str(paths["model"]),
                           str(tmp_path / "x.pt"), str(tmp_path / "out.pt")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = torch.load(tmp_path / "out.pt", weights_only=False)
    assert "AnalogConv2d" in out["kinds"] and "FakeQuantize" in out["kinds"]
    assert "Identity" in out["kinds"]
    torch.testing.assert_close(out["y"], expected, rtol=1e-5, atol=1e-5)


def test_float_layers_round_weights(user_net: torch.nn.Module) -> None:
    sn = build_supernet(user_net, torch.randn(2, 1, 8, 8), candidates=("fp32", "fp16", "bf16"))
    choice = sn.choice_layer("fc1")
    for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        layer, note = portable_layer(CandidateLayer(choice, choice.candidates[name]))
        assert isinstance(layer, torch.nn.Linear) and note["weight_bits"] == 16
        assert torch.equal(layer.weight, choice.weight.detach().to(dtype).float())


def test_narrow_width_choices_export_the_original_shapes(tmp_path: Path) -> None:
    from tests.width_models import NARROW, width_case

    case = width_case("convhead")
    sn = case.sn
    mapping = case.with_widths(Mapping.uniform(sn, "analog"), NARROW).with_choice("fc2", "int8")
    from hetmap.evaluation.drift import deploy

    with torch.no_grad():
        torch.manual_seed(0)  # the same output-noise draws for both models
        expected = deploy(sn, mapping)(case.x)
    paths = export(sn, mapping, tmp_path / "export")
    info = json.loads(paths["deploy"].read_text())
    assert info["widths"] == {g: NARROW for g in sn.gate_names}
    loaded = torch.load(paths["model"], weights_only=False).eval()
    assert (loaded.conv.out_channels, loaded.fc1.in_features, loaded.fc1.out_features) == \
        (case.model.conv.out_channels, case.model.fc1.in_features, case.model.fc1.out_features)
    assert loaded.bn.num_features == case.model.bn.num_features
    from aihwkit.nn import AnalogWrapper

    with torch.no_grad():
        torch.manual_seed(0)
        torch.testing.assert_close(AnalogWrapper(loaded).eval()(case.x), expected,
                                   rtol=1e-5, atol=1e-5)


def test_transposed_and_recurrent_layers_export(tmp_path: Path) -> None:
    """A U-Net's analog ConvTranspose2d exports as torch + aihwkit modules only; an LSTM's
    recurrence is hetmap's MappedRecurrent, which deploy.json and README.txt name."""
    from tests.coverage_models import lstm, unet

    from hetmap.evaluation.drift import deploy

    for build, needs in ((unet, []), (lstm, ["hetmap.inventory.recurrent.MappedRecurrent"])):
        model, x = build()
        sn = build_supernet(model, x, candidates=("fp32", "int8", "analog"),
                            analog=AnalogConfig(out_noise=0.0))
        mapping = Mapping.uniform(sn, "analog").with_choice(sn.layer_names[0], "int8")
        with torch.no_grad():
            expected = deploy(sn, mapping)(x)
        paths = export(sn, mapping, tmp_path / build.__name__)
        info = json.loads(paths["deploy"].read_text())
        assert info["needs_hetmap"] == needs
        assert ("needs hetmap" in paths["readme"].read_text()) == bool(needs)
        if build is unet:
            assert "AnalogConv" in info["layers"]["up"]["as"]
        loaded = torch.load(paths["model"], weights_only=False).eval()
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), expected, rtol=1e-5, atol=1e-5)
