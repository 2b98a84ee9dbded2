"""One module per hardware target: digital precisions, analog AIMC, skip; and the hybrid
(analog with its sensitive rows digital, Harmonica)."""

from hetmap.candidates.base import Candidate, CandidateLayer, Target
from hetmap.candidates.digital import FloatCandidate, IntCandidate
from hetmap.candidates.hybrid import HybridCandidate, HybridSplit
from hetmap.candidates.registry import (
    candidate_names,
    make_candidate,
    register_candidate,
    register_hybrid,
)
from hetmap.candidates.skip import SkipCandidate

__all__ = ["Candidate", "CandidateLayer", "FloatCandidate", "HybridCandidate", "HybridSplit",
           "IntCandidate", "SkipCandidate", "Target", "candidate_names", "make_candidate",
           "register_candidate", "register_hybrid"]
