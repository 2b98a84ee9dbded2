"""Digital candidates: full precision, reduced float, and integer fake quantization.

Integer candidates quantize weights per output channel (symmetric) and the layer's input per
tensor (affine, observer calibrated on data), with torch's built-in fake-quant ops, whose
gradients are straight-through. `noise_scale` interpolates between the float and the
quantized value so stage 2 can ramp quantization in.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor
from torch.ao.quantization.observer import MovingAverageMinMaxObserver

from hetmap.candidates.base import Candidate
from hetmap.layers import LayerSpec


class FloatCandidate(Candidate):
    """`fp32` (exactly the original layer) or rounding to `fp16`/`bf16` (emulated on CPU)."""

    DTYPES: ClassVar[dict[str, torch.dtype]] = {
        "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

    def __init__(self, name: str, spec: LayerSpec) -> None:
        super().__init__(name, spec)
        self.dtype = self.DTYPES[name]

    @property
    def weight_bits(self) -> int:
        return torch.finfo(self.dtype).bits

    @property
    def bias_bits(self) -> int:
        return self.weight_bits

    def _round(self, t: Tensor) -> Tensor:
        if self.noise_scale == 0.0 or t.dtype == self.dtype:
            return t
        rounded = t.to(self.dtype).to(t.dtype)  # .to() passes gradients straight through
        return rounded if self.noise_scale == 1.0 else t + self.noise_scale * (rounded - t)

    def run(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.dtype == torch.float32:
            return self.spec.forward(x, weight, bias)
        b = None if bias is None else self._round(bias)
        return self._round(self.spec.forward(self._round(x), self._round(weight), b))


class IntCandidate(Candidate):
    """`int8`/`int4`: per-channel symmetric weights, per-tensor affine activations."""

    def __init__(self, name: str, spec: LayerSpec, weight_bits: int, act_bits: int,
                 averaging_constant: float = 0.01) -> None:
        super().__init__(name, spec)
        self._weight_bits = weight_bits
        self.act_bits = act_bits
        self.w_qmax = 2 ** (weight_bits - 1) - 1
        self.observer = MovingAverageMinMaxObserver(
            averaging_constant=averaging_constant, dtype=torch.quint8,
            qscheme=torch.per_tensor_affine, quant_min=0, quant_max=2 ** act_bits - 1)

    @property
    def weight_bits(self) -> int:
        return self._weight_bits

    @property
    def bias_bits(self) -> int:
        return 32  # integer accelerators keep the bias in the 32-bit accumulator

    @property
    def calibrated(self) -> bool:
        return bool(torch.isfinite(self.observer.min_val).item())

    def observe(self, x: Tensor, weight: Tensor) -> None:
        self.observer(x.detach())

    def quantize_weight(self, weight: Tensor) -> Tensor:
        """Per output channel (a transposed convolution's are along its weight's dim 1)."""
        if self.spec.transposed:
            return self.spec.transposed_weight(self._per_channel(self.spec.conv_weight(weight)))
        return self._per_channel(weight)

    def _per_channel(self, weight: Tensor) -> Tensor:
        flat = weight.detach().reshape(weight.shape[0], -1)
        scale = (flat.abs().amax(dim=1) / self.w_qmax).clamp_min(1e-12).float()
        zero = torch.zeros_like(scale, dtype=torch.int32)
        return torch.fake_quantize_per_channel_affine(
            weight, scale, zero, 0, -self.w_qmax, self.w_qmax)

    def quantize_input(self, x: Tensor) -> Tensor:
        if self.training or not self.calibrated:
            self.observer(x.detach())
        scale, zero = self.observer.calculate_qparams()
        return torch.fake_quantize_per_tensor_affine(
            x, scale.item(), int(zero.item()), self.observer.quant_min, self.observer.quant_max)

    def run(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        if self.noise_scale == 0.0:
            return self.spec.forward(x, weight, bias)
        xq, wq = self.quantize_input(x), self.quantize_weight(weight)
        if self.noise_scale < 1.0:
            s = self.noise_scale
            xq, wq = x + s * (xq - x), weight + s * (wq - weight)
        return self.spec.forward(xq, wq, bias)

    def extra_repr(self) -> str:
        return f"{self.name}, w{self._weight_bits}a{self.act_bits}"
