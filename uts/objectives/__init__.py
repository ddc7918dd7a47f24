"""The five pre-training objectives behind one interface (see base.py)."""

from uts.objectives.base import Batch, Objective, Pretrainer
from uts.objectives.contrastive import Contrastive
from uts.objectives.generative import Generative, SpecialTokens
from uts.objectives.mtc import MTC
from uts.objectives.multitask import MultiTask

__all__ = [
    "MTC",
    "Batch",
    "Contrastive",
    "Generative",
    "MultiTask",
    "Objective",
    "Pretrainer",
    "SpecialTokens",
]
