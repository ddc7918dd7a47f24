"""The pretraining model of a configuration, and a trained one back from its checkpoint.

Both the training workers and the evaluation build the model here, so a checkpoint's weights always
meet the architecture that produced them, and the random-init encoder of a run (same seed) is the one
its training started from.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from uts.objectives.base import Pretrainer
from uts.objectives.mtc import MTC
from uts.train.config import PretrainConfig

if TYPE_CHECKING:
    from uts.store import Store

__all__ = ["build_model", "latest_checkpoint", "load_checkpoint", "read_checkpoint"]


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


def read_checkpoint(uri: str) -> tuple[Any, str, dict[str, Any]]:
    """(filesystem, path, lineage.json) of a checkpoint folder (local path or any store URI).

    Raises:
        FileNotFoundError: the folder lacks model.pt or lineage.json.
    """
    from uts.store import join_uri, open_fs

    fs, path = open_fs(uri)
    for name in ("model.pt", "lineage.json"):
        if not fs.exists(join_uri(path, name)):
            raise FileNotFoundError(f"{uri} is not a pretraining checkpoint (no {name})")
    with fs.open(join_uri(path, "lineage.json"), "r", encoding="utf-8") as f:
        lineage: dict[str, Any] = json.load(f)
    return fs, path, lineage


def load_checkpoint(uri: str) -> tuple[Pretrainer, PretrainConfig, dict[str, Any]]:
    """(model in eval mode with the checkpoint's weights, its config, its lineage) of a checkpoint
    folder (local path or any store URI).

    Raises:
        FileNotFoundError: the folder lacks model.pt or lineage.json.
    """
    from uts.store import join_uri

    fs, path, lineage = read_checkpoint(uri)
    config = PretrainConfig(**lineage["config"])
    model = build_model(config)
    with fs.open(join_uri(path, "model.pt"), "rb") as f:
        model.load_state_dict(torch.load(f, map_location="cpu"))
    return model.eval(), config, lineage


def latest_checkpoint(store: Store, run: str) -> tuple[str, dict[str, Any]] | None:
    """(URI, state.json) of the run's checkpoint with the most steps, among those with a state.json
    (Ray Train writes it with the weights), or None when the run has none."""
    from uts.store import join_uri

    best: tuple[int, str, dict[str, Any]] | None = None
    for path in store.fs.glob(join_uri(store.path("runs", run), "checkpoint_*", "state.json")):
        with store.fs.open(path, "r", encoding="utf-8") as f:
            state: dict[str, Any] = json.load(f)
        if best is None or int(state["step"]) > best[0]:
            best = (int(state["step"]), str(path).rsplit("/", 1)[0], state)
    if best is None:
        return None
    folder = best[1]
    uri = folder if store.local else store.uri(folder[len(store.root) :].lstrip("/"))
    return uri, best[2]
