"""One error hierarchy: every failure a user can cause is a HetmapError whose message says
what is wrong and how to fix it."""

from __future__ import annotations


class HetmapError(Exception):
    """Base class of every error hetmap raises on purpose."""


class ConfigError(HetmapError, ValueError):
    """A setting, spec or config file is invalid; the message names the field."""


class ModelError(HetmapError, ValueError):
    """The model cannot be scanned or converted (no mappable layer, unsupported layer, ...)."""


class InputShapeError(HetmapError, ValueError):
    """The example input does not fit the model."""


class UnknownCandidateError(HetmapError, KeyError):
    """A candidate name that is not registered or not offered for a layer."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class MappingError(HetmapError, ValueError):
    """A mapping does not fit the supernet it is used with."""


class TrainingError(HetmapError, RuntimeError):
    """Training diverged or cannot continue."""


class DataError(HetmapError, ValueError):
    """A dataset is missing or malformed; the message names the path."""


class ProtocolError(HetmapError, RuntimeError):
    """The evaluation protocol was broken: e.g. the test split was read before final scoring."""
