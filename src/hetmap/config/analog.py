"""One analog geometry per run: the analog candidate simulates the chip it is costed on."""

from __future__ import annotations

from hetmap.candidates.analog import AnalogConfig
from hetmap.hardware import HardwareSpec, load_hardware


def analog_for_hardware(analog: AnalogConfig, hardware: HardwareSpec | str) -> AnalogConfig:
    """`analog` on the hardware's analog core: its tile rows/columns and DAC/ADC resolution.
    Fields `analog` leaves at their defaults follow the hardware; one it sets to another value
    is a ConfigError naming both. A system without an analog core leaves `analog` as it is."""
    hw = load_hardware(hardware)
    core = hw.analog
    if core is None:
        return analog
    return analog.with_geometry(f"hardware {hw.name!r}", tile=core.tile,
                                dac_bits=core.dac_bits, adc_bits=core.adc_bits)
