"""The five pre-training objectives behind one interface (see base.py)."""

from uts.objectives.base import Batch, Objective, Pretrainer
from uts.objectives.contrastive import Contrastive
from uts.objectives.factory import OBJECTIVES, ObjectiveConfig, build_objective, build_pretrainer
from uts.objectives.generative import Generative, SpecialTokens
from uts.objectives.mtc import MTC
from uts.objectives.multitask import MultiTask

__all__ = [
    "MTC",
    "OBJECTIVES",
    "Batch",
    "Contrastive",
    "Generative",
    "MultiTask",
    "Objective",
    "ObjectiveConfig",
    "Pretrainer",
    "SpecialTokens",
    "build_objective",
    "build_pretrainer",
]
