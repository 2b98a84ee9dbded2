"""A heterogeneous system as a validated value: one analog core, digital cores, the link.

Everything the cost model needs is a field here, so a YAML file fully describes a system and
its hash keys the on-disk cost cache. Units are in the field names (ns, pJ, bytes, GB/s).
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from hetmap.errors import ConfigError

SKIP = "skip"
ANALOG = "analog"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AnalogCore(_Strict):
    """Weight-stationary crossbar tiles; one MVM per tile per `mvm_latency_ns`."""

    name: str = "analog"
    device: str = "PCM"
    tile_rows: PositiveInt
    tile_cols: PositiveInt
    n_tiles: PositiveInt
    mvm_latency_ns: PositiveFloat
    dac_bits: PositiveInt = 8
    adc_bits: PositiveInt = 8
    dac_energy_pj: NonNegativeFloat  # per input (row) conversion, per tile
    adc_energy_pj: NonNegativeFloat  # per output (column) conversion, per tile
    cell_energy_fj: NonNegativeFloat  # per active device per MVM
    tile_overhead_pj: NonNegativeFloat = 0.0  # fixed per tile MVM (local digital, drivers)
    partial_sum_energy_pj: NonNegativeFloat = 0.0  # per output add across row tiles
    # Whether the ADCs of columns that hold no weights are power-gated. HERMES has one ADC per
    # column and converts all of an active tile's columns, so by default an MVM pays every
    # column's conversion; inputs (PWM rows) and devices are paid only where used.
    column_gating: bool = False
    reprogram_latency_s_per_tile: NonNegativeFloat = 0.0
    reprogram_energy_j_per_tile: NonNegativeFloat = 0.0
    reprogram_amortised_over: PositiveInt = 1  # inferences sharing one reprogramming
    # Local digital post-processing of each analog output (affine correction, activation):
    # energy per output per vector. Its time overlaps the next MVM (HERMES local units).
    postprocess_energy_pj: NonNegativeFloat = 0.0
    # Columns sharing one ADC (HERMES: 1, one per column). An MVM then takes
    # mvm_latency_ns + (adc_share - 1) x adc_conversion_ns; energy per conversion is unchanged.
    adc_share: PositiveInt = 1
    adc_conversion_ns: NonNegativeFloat = 0.0
    # Weight-stationary analog layers sit on their own tiles and stream vectors through each
    # other (HERMES, Dazzi et al. 2021): a layer starts once its producer has delivered one
    # output row (token) and finishes one of its own rows after the producer finishes.
    pipeline_layers: bool = True
    # Copies of analog layers on the tiles a mapping leaves free, chosen greedily by latency
    # saved per extra tile (doubling a layer's copies each step), up to max_replication.
    replicate: bool = True
    max_replication: PositiveInt = 64
    # Grouped/depthwise convs: "pack" them block-diagonally on tiles, or run an analog choice
    # of them on the digital core at `grouped_digital` precision instead.
    grouped_conv: Literal["pack", "digital"] = "pack"
    grouped_digital: str = "int8"

    @property
    def tile(self) -> tuple[int, int]:
        return (self.tile_rows, self.tile_cols)


class Precision(_Strict):
    """One precision a digital core runs: its MAC array shape, MAC energy, operand widths."""

    array_rows: PositiveInt  # MACs per cycle = array_rows x array_cols
    array_cols: PositiveInt
    mac_energy_pj: PositiveFloat
    weight_bits: PositiveInt
    act_bits: PositiveInt
    acc_bits: PositiveInt = 32


class DigitalCore(_Strict):
    """A weight-streaming MAC array with an on-chip SRAM for activations and off-chip DRAM."""

    name: str = "digital"
    clock_ghz: PositiveFloat
    precisions: dict[str, Precision] = Field(min_length=1)
    sram_bytes: PositiveInt
    sram_bandwidth_bytes_per_cycle: PositiveInt
    sram_energy_pj_per_byte: NonNegativeFloat
    offchip_bandwidth_gbps: PositiveFloat  # GB/s
    offchip_energy_pj_per_byte: NonNegativeFloat
    weight_reg_energy_pj: NonNegativeFloat = 0.095  # per weight-register access (ZigZag TPU-like)
    output_reg_energy_pj: NonNegativeFloat = 0.021  # per partial-sum register access
    # SRAM bytes that hold digital weights across inferences (default: all of sram_bytes);
    # weights of a mapping beyond it stream from off-chip memory every inference.
    weight_sram_bytes: PositiveInt | None = None
    # Vector unit for element-wise and reduction work: elements per cycle, energy per op.
    vector_lanes: PositiveInt = 64
    vector_op_energy_pj: NonNegativeFloat = 0.5

    @property
    def weight_capacity_bytes(self) -> int:
        return self.weight_sram_bytes if self.weight_sram_bytes is not None else self.sram_bytes


class Link(_Strict):
    """Moves activations between cores when consecutive layers run on different ones."""

    energy_pj_per_byte: NonNegativeFloat
    bandwidth_gbps: PositiveFloat  # GB/s


class ZigzagOptions(_Strict):
    lpf_limit: PositiveInt = 4  # ZigZag LOMA loop-prime-factor limit: speed vs search depth


class HardwareSpec(_Strict):
    """A heterogeneous system. `HardwareSpec.model_validate(dict)` or `load_hardware(...)`."""

    name: str
    description: str = ""
    analog: AnalogCore | None = None
    digital: tuple[DigitalCore, ...] = ()
    link: Link = Link(energy_pj_per_byte=0.0, bandwidth_gbps=1e6)
    on_tile_overflow: Literal["error", "reprogram"] = "error"
    zigzag: ZigzagOptions = ZigzagOptions()
    # Precision of the first digital core that runs the ops no mapping places (attention
    # matmuls, softmax, norms, pooling, activations, residual adds); None: fp16 where the
    # core has it, else its first precision.
    ops_precision: str | None = None
    sources: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> HardwareSpec:
        if self.analog is None and not self.digital:
            raise ValueError("a system needs at least one core: set 'analog' or 'digital'")
        names = [core.name for core in self.digital] + (
            [self.analog.name] if self.analog else [])
        if len(set(names)) != len(names):
            raise ValueError(f"core names must be unique, got {names}")
        if self.digital and self.ops_precision is not None and \
                self.ops_precision not in self.digital[0].precisions:
            raise ValueError(f"ops_precision {self.ops_precision!r} is not a precision of "
                             f"digital core {self.digital[0].name!r}")
        return self

    @property
    def ops_precision_name(self) -> str:
        """The precision non-mappable ops run at (needs a digital core)."""
        if self.ops_precision is not None:
            return self.ops_precision
        precisions = self.digital[0].precisions
        return "fp16" if "fp16" in precisions else next(iter(precisions))

    # -- routing ---------------------------------------------------------------------------
    def route(self, candidate: str, target: str | None = None) -> tuple[str, str | None]:
        """(core name, precision) that runs `candidate`; ("", None) for skip.

        target: the candidate's `target` ("digital", "analog", "none"); by default inferred
        from the name ("analog", "skip", anything else is a digital precision)."""
        target = target or (ANALOG if candidate == ANALOG else
                            "none" if candidate == SKIP else "digital")
        if target == "none":
            return "", None
        if target == ANALOG:
            if self.analog is None:
                raise ConfigError(f"hardware {self.name!r}: candidate {candidate!r} runs on an "
                                  "analog core but field 'analog' is not set; add an analog "
                                  "core or drop the candidate")
            return self.analog.name, None
        for core in self.digital:
            if candidate in core.precisions:
                return core.name, candidate
        listed = sorted({p for core in self.digital for p in core.precisions})
        raise ConfigError(f"hardware {self.name!r}: no digital core runs candidate "
                          f"{candidate!r}; add it under field 'digital[*].precisions' "
                          f"(listed: {', '.join(listed) or 'none'})")

    def digital_core(self, name: str) -> DigitalCore:
        return next(core for core in self.digital if core.name == name)

    def core_names(self) -> tuple[str, ...]:
        return tuple(core.name for core in self.digital) + (
            (self.analog.name,) if self.analog else ())
