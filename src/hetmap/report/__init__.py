"""The run report: plots/*.png and one self-contained report.html from a run directory's
JSON artifacts (schemas in hetmap.report.artifacts and docs/report.md)."""

from hetmap.report.artifacts import SCHEMA_VERSION, ArtifactError
from hetmap.report.build import build_report

__all__ = ["SCHEMA_VERSION", "ArtifactError", "build_report"]
