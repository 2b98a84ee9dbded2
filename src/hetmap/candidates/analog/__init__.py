"""Analog in-memory-computing candidate: config, fast engine, aihwkit-lightning reference."""

from hetmap.candidates.analog.candidate import AnalogCandidate
from hetmap.candidates.analog.config import AnalogConfig

__all__ = ["AnalogCandidate", "AnalogConfig"]
