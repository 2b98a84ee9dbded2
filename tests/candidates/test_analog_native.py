"""The C++ kernels (`native.cpp`) against the torch code they replace, which
test_analog_engine.py holds to aihwkit-lightning (in float64, where only torch runs)."""

from __future__ import annotations

import pytest
import torch
from scipy import stats
from tests.candidates.test_analog_engine import LAYERS, QUIET, _rel, _step

from hetmap.candidates.analog import AnalogCandidate, native
from hetmap.layers import LayerSpec

pytestmark = pytest.mark.skipif(native.load() is None, reason="C++ kernels not buildable here")


def _run(name: str, update: dict, use_native: bool, monkeypatch: pytest.MonkeyPatch
         ) -> tuple[list[torch.Tensor], dict[str, int]]:
    calls = {"adc": 0, "clip_grad": 0}
    with monkeypatch.context() as m:
        if use_native:
            for fn in calls:
                original = getattr(native, fn)

                def counted(*a, _fn=fn, _orig=original):
                    calls[_fn] += 1
                    return _orig(*a)
                m.setattr(native, fn, counted)
        else:
            m.setattr(native, "usable", lambda *t: False)
        torch.manual_seed(0)
        make, shape = LAYERS[name]
        layer = make()
        x = torch.randn(shape) * 2
        cfg = QUIET.model_copy(update=update)
        cand = AnalogCandidate("analog", LayerSpec.from_module(layer), cfg).train()
        _step(cand, x, layer)
        return _step(cand, x * 1.5, layer), calls


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("update", [{}, {"out_bound": 0.4}])
def test_kernels_equal_the_torch_path(name: str, update: dict,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Float32, noise off: outputs, input and weight gradients are identical; the range
    gradient (summed in another order) agrees to 1e-5."""
    got, calls = _run(name, update, True, monkeypatch)
    ref, _ = _run(name, update, False, monkeypatch)
    assert calls["adc"] > 0
    assert (calls["clip_grad"] > 0) == (name.startswith("conv") and "pointwise" not in name)
    y, gx, gw, gr, r = got
    y1, gx1, gw1, gr1, r1 = ref
    assert torch.equal(y, y1) and torch.equal(r, r1)
    assert _rel(gx, gx1) < 1e-6 and _rel(gw, gw1) < 1e-6
    assert _rel(gr, gr1) < 1e-5


def test_output_noise_is_standard_normal_and_seeded() -> None:
    std = torch.tensor([1.0, 3.0])
    torch.manual_seed(5)
    y, keep = native.adc(torch.zeros(50_000, 2), std, None, 0.0, 1)
    assert keep is None
    for ch, s in enumerate((1.0, 3.0)):
        z = y[:, ch] / s
        assert abs(float(z.mean())) < 0.02 and abs(float(z.std()) - 1.0) < 0.02
        assert stats.kstest(z.numpy(), "norm").pvalue > 1e-3
    torch.manual_seed(5)
    again, _ = native.adc(torch.zeros(50_000, 2), std, None, 0.0, 1)
    assert torch.equal(y, again)  # torch.manual_seed fixes the noise
    other, _ = native.adc(torch.zeros(50_000, 2), std, None, 0.0, 1)
    assert not torch.equal(y, other)


def test_noise_does_not_depend_on_the_thread_count() -> None:
    threads = torch.get_num_threads()
    outs = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            torch.manual_seed(3)
            outs.append(native.adc(torch.zeros(4, 3, 100, 100), torch.ones(3), None, 0.0,
                                   10_000)[0])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(*outs)


def test_adc_quantizes_and_bounds_per_channel() -> None:
    y = torch.tensor([[0.26, -0.9, 5.0], [0.01, 0.7, -5.0]])
    bound = torch.tensor([1.0, 0.5, 2.0])
    out, keep = native.adc(y.clone(), None, bound, 4.0, 1)  # steps of 0.5, 0.25, 1.0
    assert torch.equal(out, torch.tensor([[0.5, -0.5, 2.0], [0.0, 0.5, -2.0]]))
    assert keep is not None
    assert torch.equal(native.where_bits(torch.ones(6), keep),
                       torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]))


def test_packed_output_mask_covers_every_output() -> None:
    """The mask is packed a bit an output, across the kernel's chunks and a ragged end."""
    torch.manual_seed(0)
    y = torch.randn(3, 7, 1001)
    bound = torch.rand(7) + 0.5
    _, keep = native.adc(y.clone(), None, bound, 0.0, 1001)
    assert keep is not None and keep.numel() == -(-y.numel() // 8)
    grad = torch.randn_like(y)
    want = torch.where(y.abs() <= bound.view(-1, 1), grad, 0.0)
    assert torch.equal(native.where_bits(grad, keep).view_as(y), want)


def test_disabled_kernels_leave_the_torch_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "_module", None)
    monkeypatch.setattr(native, "_failed", False)
    monkeypatch.setenv("HETMAP_NO_NATIVE", "1")
    assert native.load() is None
    assert not native.usable(torch.zeros(1))


def test_range_gradient_does_not_depend_on_the_thread_count() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 4, 9, 9)
    gout = torch.randn(6, 5, 9, 9).contiguous(memory_format=torch.channels_last)
    wl = torch.randn(9 * 4, 5)
    geo = [9, 9, 9, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    threads = torch.get_num_threads()
    outs = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            gx = torch.full_like(x, float("nan"))
            outs.append((gx, *native.clip_grad(x, torch.ones_like(x), gx, torch.tensor(0.8),
                                               True, gout, wl, None, geo)))
    finally:
        torch.set_num_threads(threads)
    (g1, t1, c1), (g2, t2, c2) = outs
    assert torch.equal(g1, g2) and torch.equal(t1, t2) and torch.equal(c1, c2)
    assert torch.equal(g1, (x.abs() <= 0.8).float())
    assert float(t1) < 0 and float(c1) > 0


def test_adc_rejects_parameters_of_another_width() -> None:
    with pytest.raises(RuntimeError, match="one entry per output channel"):
        native.adc(torch.zeros(2, 8, 4, 4), torch.ones(32), None, 0.0, 16)


def test_every_checkout_builds_from_one_source_path_and_stale_locks_go(tmp_path) -> None:
    import os
    import time

    from hetmap.candidates.analog import native as nat

    copy = nat._stable_source(tmp_path)
    assert copy.parent == tmp_path and copy.read_bytes() == nat.SOURCE.read_bytes()
    stamp = copy.stat().st_mtime_ns
    assert nat._stable_source(tmp_path) == copy and copy.stat().st_mtime_ns == stamp
    lock = tmp_path / "lock"
    lock.touch()
    nat._clear_stale_lock(tmp_path)
    assert lock.exists()  # a build may be running
    old = time.time() - nat.STALE_LOCK_S - 5
    os.utime(lock, (old, old))
    nat._clear_stale_lock(tmp_path)
    assert not lock.exists()
