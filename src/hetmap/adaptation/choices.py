"""Which widened groups can become searchable width choices (hetmap.supernet.width).

A group qualifies when `adapt` widened it with init="zero" (fresh units after the
original ones, zero consumer columns: reading the first `old_width` channels is the
original model) and it is not an attention group (extra query/key dims change the scores
and the head layout interleaves old and new units, so a narrow path would not be exact).
"""

from __future__ import annotations

from hetmap.adaptation.adapt import AdaptReport
from hetmap.errors import ConfigError
from hetmap.inventory.variants import WidthGroup


def width_groups(report: AdaptReport) -> tuple[WidthGroup, ...]:
    """The widened groups of `report` as width choices (attention groups stay wide)."""
    if report.policy.init != "zero" and report.widened:
        raise ConfigError(f"searchable widths need AdaptPolicy(init='zero'); this model was "
                          f"widened with init={report.policy.init!r}, whose narrow path is "
                          "not the original model")
    return tuple(WidthGroup(g.producers, g.middles, g.consumers, g.old_width, g.new_width)
                 for g in report.widened if g.kind != "attention")
