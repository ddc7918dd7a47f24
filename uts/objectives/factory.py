"""Build an objective (and the whole pretraining model) from a frozen config.

The config stays here: objectives and models receive flat arguments only.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from uts.models.decoder import TagDecoder
from uts.models.specaug import SpecAugment
from uts.models.text import TextTower, load_tokenizer
from uts.models.zipformer import Zipformer, ZipformerConfig
from uts.objectives.base import Pretrainer
from uts.objectives.contrastive import Contrastive, Gather, _identity
from uts.objectives.generative import Generative, SpecialTokens
from uts.objectives.mtc import MTC
from uts.objectives.multitask import MultiTask

__all__ = ["OBJECTIVES", "ObjectiveConfig", "build_objective", "build_pretrainer"]

OBJECTIVES = ("mtc", "contrastive", "ar", "par", "multitask")


@dataclass(frozen=True, kw_only=True)
class ObjectiveConfig:
    name: str
    num_tags: int = 1500  # K: the first K tags of the vocabulary
    tokenizer: str = "facebook/bart-base"  # AR/PAR tag strings (any transformers tokenizer)
    text_model: str = "bert-base-uncased"  # contrastive text tower (hub id or local path)
    decoder_dim: int = 768
    decoder_layers: int = 6
    decoder_heads: int = 12
    max_tokens: int = 128
    dropout: float = 0.1
    lam: float = 1.0  # multitask: L_mtc + lam * L_gen
    p_ar: float = 0.25  # multitask: share of clips trained AR (the rest PAR)
    contrastive_dim: int = 512

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise ValueError(
                f"unknown objective {self.name!r}; choose one of {', '.join(OBJECTIVES)}"
            )


def build_objective(
    config: ObjectiveConfig,
    encoder_dim: int,
    *,
    rank: int = 0,
    world_size: int = 1,
    gather: Gather = _identity,
) -> nn.Module:
    """The objective module for `config.name`, its heads sized for `encoder_dim`."""
    if config.name == "mtc":
        return MTC(encoder_dim, config.num_tags, config.dropout)
    if config.name == "contrastive":
        tower = TextTower(config.text_model, max_tokens=config.max_tokens)
        return Contrastive(
            encoder_dim,
            tower,
            dim=config.contrastive_dim,
            rank=rank,
            world_size=world_size,
            gather=gather,
        )
    tokenizer = load_tokenizer(config.tokenizer)
    special = SpecialTokens.from_tokenizer(tokenizer)
    decoder = TagDecoder(
        special.vocab_size, encoder_dim, dim=config.decoder_dim, layers=config.decoder_layers,
        heads=config.decoder_heads, max_tokens=config.max_tokens, dropout=config.dropout, pad_id=special.pad,
    )  # fmt: skip
    if config.name in ("ar", "par"):
        return Generative(decoder, special, config.name)
    generative = Generative(decoder, special, "par")
    return MultiTask(
        MTC(encoder_dim, config.num_tags, config.dropout),
        generative,
        lam=config.lam,
        p_ar=config.p_ar,
    )


def build_pretrainer(
    encoder: ZipformerConfig, objective: ObjectiveConfig, *, specaug: SpecAugment | None = None,
    rank: int = 0, world_size: int = 1, gather: Gather = _identity,
) -> Pretrainer:  # fmt: skip
    """Zipformer + objective (+ SpecAugment, training only)."""
    model = Zipformer(encoder)
    head = build_objective(
        objective, model.output_dim, rank=rank, world_size=world_size, gather=gather
    )
    return Pretrainer(model, head, specaug)
