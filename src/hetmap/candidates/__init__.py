"""One module per hardware target: digital precisions, analog AIMC, skip."""

from hetmap.candidates.base import Candidate, CandidateLayer, Target
from hetmap.candidates.digital import FloatCandidate, IntCandidate
from hetmap.candidates.registry import candidate_names, make_candidate, register_candidate
from hetmap.candidates.skip import SkipCandidate

__all__ = ["Candidate", "CandidateLayer", "FloatCandidate", "IntCandidate", "SkipCandidate",
           "Target", "candidate_names", "make_candidate", "register_candidate"]
