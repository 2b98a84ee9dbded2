"""Run configuration: YAML validated by pydantic models, `--set` overrides, one-line errors."""

from hetmap.config.analog import analog_for_hardware
from hetmap.config.demo import DEMO_OVERRIDES, demo_config
from hetmap.config.example import example_config
from hetmap.config.load import (
    apply_overrides,
    dump_config,
    format_error,
    load_config,
    parse_override,
    validate_config,
)
from hetmap.config.schema import (
    DriftSection,
    ModelSection,
    RunConfig,
    SearchSection,
    TaskSection,
    parse_duration,
    strategy_names,
)

__all__ = ["DEMO_OVERRIDES", "DriftSection", "ModelSection", "RunConfig", "SearchSection",
           "TaskSection", "analog_for_hardware", "apply_overrides", "demo_config",
           "dump_config", "example_config", "format_error", "load_config", "parse_duration",
           "parse_override", "strategy_names", "validate_config"]
