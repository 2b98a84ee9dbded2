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
    # Consecutive analog layers sit on their own tiles and stream vectors through each other
    # (HERMES-style layer pipelining): a run of them takes its slowest layer plus one MVM per
    # further layer, instead of the sum of their times. Off by default: attention and other
    # whole-tensor ops between layers break such pipelines.
    pipeline_layers: bool = False

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
    sources: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> HardwareSpec:
        if self.analog is None and not self.digital:
            raise ValueError("a system needs at least one core: set 'analog' or 'digital'")
        names = [core.name for core in self.digital] + (
            [self.analog.name] if self.analog else [])
        if len(set(names)) != len(names):
            raise ValueError(f"core names must be unique, got {names}")
        return self

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
