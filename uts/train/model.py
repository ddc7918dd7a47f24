"""The pretraining model of a configuration, and a trained one back from its checkpoint.

Both the training workers and the evaluation build the model here, so a checkpoint's weights always
meet the architecture that produced them, and the random-init encoder of a run (same seed) is the one
its training started from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from uts.objectives.base import Pretrainer
from uts.objectives.mtc import MTC
from uts.train import checkpoint
from uts.train.config import PretrainConfig

__all__ = ["build_model", "load_checkpoint"]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def build_model(
    config: PretrainConfig, *, rank: int = 0, world: int = 1,
    gather: Callable[[torch.Tensor], torch.Tensor] = _identity, tag_prior: Sequence[float] | None = None,
) -> Pretrainer:  # fmt: skip
    """Encoder + objective head(s), seeded by `config.seed` (the same weights on every rank).
    `tag_prior` (K tag priors, uts.tags.Vocabulary.prior) starts an MTC head's bias at their log-odds."""
    from uts.models.zipformer import preset
    from uts.objectives import ObjectiveConfig, build_pretrainer

    torch.manual_seed(config.seed)
    objective = ObjectiveConfig(name=config.objective, num_tags=config.k, tokenizer=config.tokenizer,
                                text_model=config.text_model, decoder_dim=config.decoder_dim,
                                decoder_layers=config.decoder_layers, decoder_heads=config.decoder_heads,
                                lam=config.lam)  # fmt: skip
    encoder = preset(config.encoder, **config.encoder_overrides)
    model = build_pretrainer(encoder, objective, rank=rank, world_size=world, gather=gather)
    if not config.specaug:
        model.specaug.time_masks = model.specaug.freq_masks = 0
    mtc = (
        model.objective
        if isinstance(model.objective, MTC)
        else getattr(model.objective, "mtc", None)
    )
    if tag_prior is not None and isinstance(mtc, MTC):
        mtc.init_prior(tag_prior)
    return model


def load_checkpoint(uri: str) -> tuple[Pretrainer, PretrainConfig, dict[str, Any]]:
    """(model in eval mode with the checkpoint's weights, its config, its lineage) of a checkpoint
    folder (local path or any store URI); the layout is uts.train.checkpoint's.

    Raises:
        FileNotFoundError: not a checkpoint folder.
    """
    lineage = checkpoint.read_lineage(uri)
    config = PretrainConfig(**lineage["config"])
    model = build_model(config)
    checkpoint.restore(model, checkpoint.load_weights(uri), uri)
    return model.eval(), config, lineage
