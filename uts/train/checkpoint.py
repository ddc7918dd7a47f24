"""The one place that knows what a pretraining checkpoint looks like in the store.

A run's checkpoints are folders `runs/<run>/checkpoint_<time>/` (Ray Train names and keeps them),
each holding:

    model.pt       the Pretrainer's state_dict (encoder + objective heads) as trained
    averaged.pt    the running average of those weights (uts.train.averaging), in runs that keep
                   one, once it exists: what evaluation, serving and a warm start load when present
                   (model.pt otherwise), as the paper's evaluation takes its averaged model
    training.pt    {"optimizer", "scheduler", "scaler"} state, what a resumed run loads besides
    state.json     the loop's counters (step, epoch, skipped, audio_seconds, history); its
                   presence marks a checkpoint that a finished report wrote
    lineage.json   the run's inputs (corpus, tags, vocabulary at K, config, versions, command) and
                   its validation metrics so far

Everything else (the train loop, evaluation, serving, the sweep, the test helpers) reads and writes
checkpoints through these functions, so the layout can be read, and changed, in one file. The bytes
written are those of the first release: stores trained before this module existed still load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from uts.store import join_uri, open_fs

if TYPE_CHECKING:
    from uts.store import Store

__all__ = [
    "at_step",
    "finished",
    "folder_path",
    "is_checkpoint",
    "latest",
    "load_average",
    "load_training",
    "load_weights",
    "read_lineage",
    "restore",
    "run_of",
    "save",
    "weights_digest",
]

_MODEL = "model.pt"
_AVERAGED = "averaged.pt"
_TRAINING = "training.pt"
_STATE = "state.json"
_LINEAGE = "lineage.json"
_PREFIX = "checkpoint_"  # Ray Train's name for a reported checkpoint inside its run folder


def save(
    folder: Path,
    *,
    model_state: Mapping[str, Any],
    training_state: Mapping[str, Any] | None,
    state: Mapping[str, Any] | None,
    lineage: Mapping[str, Any],
    averaged_state: Mapping[str, Any] | None = None,
) -> None:
    """Write a checkpoint into a local folder (Ray Train then copies it into the run).

    Args:
        folder: an existing local folder.
        model_state: the model's state_dict (unwrapped from DDP).
        training_state: {"optimizer", "scheduler", "scaler"} states for resuming; None writes
            none (a weights-only checkpoint, as the test helpers make).
        state: the loop's counters; None writes none (then `latest` does not see the folder).
        lineage: the run's inputs and metrics (values that JSON cannot hold are written as str).
        averaged_state: the running average of the weights (a state_dict), or None for none.
    """
    # Saved as given: a state_dict is an OrderedDict with module versions in `_metadata`.
    torch.save(model_state, folder / _MODEL)
    if averaged_state is not None:
        torch.save(dict(averaged_state), folder / _AVERAGED)
    if training_state is not None:
        torch.save(training_state, folder / _TRAINING)
    if state is not None:
        (folder / _STATE).write_text(json.dumps(state, indent=2))
    (folder / _LINEAGE).write_text(json.dumps(lineage, indent=2, default=str))


def folder_path(store: Store, run: str, stamp: str) -> str:
    """The path (in the store's filesystem) of run `run`'s checkpoint folder with time stamp
    `stamp`, named as Ray Train names it (for helpers that write checkpoints without Ray)."""
    return store.path("runs", run, _PREFIX + stamp)


def read_lineage(uri: str) -> dict[str, Any]:
    """The lineage of a checkpoint folder (local path or any store URI).

    Raises:
        FileNotFoundError: the folder lacks the weights or the lineage (not a checkpoint).
    """
    fs, path = _checked(uri)
    with fs.open(join_uri(path, _LINEAGE), "r", encoding="utf-8") as f:
        lineage: dict[str, Any] = json.load(f)
    return lineage


def is_checkpoint(uri: str) -> bool:
    """Whether `uri` is a checkpoint folder (it holds the weights and the lineage)."""
    try:
        _checked(uri)
    except FileNotFoundError:
        return False
    return True


def load_weights(uri: str) -> dict[str, Any]:
    """The model's state_dict of a checkpoint folder (local path or any store URI), on the CPU:
    its averaged weights where it holds them, else the weights as trained."""
    fs, path = open_fs(uri)
    with fs.open(_weights_file(fs, path), "rb") as f:
        weights: dict[str, Any] = torch.load(f, map_location="cpu")
    return weights


def restore(model: nn.Module, weights: Mapping[str, Any], source: str) -> None:
    """Load a checkpoint's weights into `model`, or say plainly why they do not fit.

    Raises:
        ValueError: names missing, unexpected and reshaped tensors (a few of each) and `source`:
            the checkpoint was written by another model definition (e.g. before the Zipformer
            matched the paper's, or with other encoder settings).
    """
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    reshaped = [k for k in own if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or reshaped:
        parts = [f"{len(names)} {what} (e.g. {', '.join(names[:3])})"
                 for what, names in (("missing", missing), ("unexpected", unexpected),
                                     ("of another shape", reshaped)) if names]  # fmt: skip
        raise ValueError(
            f"{source}: the checkpoint's weights do not fit this model: {'; '.join(parts)}. It was "
            "written by another model definition (an older uts, or other encoder settings): "
            "train it again, or load it with the version that wrote it"
        )
    model.load_state_dict(weights)


def weights_digest(uri: str) -> str:
    """The sha256 (hex) of the weights file `load_weights` reads: names its embedding space.

    Raises:
        FileNotFoundError: not a checkpoint folder.
    """
    fs, path = _checked(uri)
    digest = hashlib.sha256()
    with fs.open(_weights_file(fs, path), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_training(folder: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(model state_dict, training state, loop counters) of a local checkpoint folder, on the CPU:
    what a resumed run restores."""
    model_state: dict[str, Any] = torch.load(folder / _MODEL, map_location="cpu")
    # The optimiser and scheduler states hold plain Python objects besides tensors.
    training: dict[str, Any] = torch.load(
        folder / _TRAINING, map_location="cpu", weights_only=False
    )
    state: dict[str, Any] = json.loads((folder / _STATE).read_text())
    return model_state, training, state


def load_average(folder: Path) -> dict[str, Any] | None:
    """The averaged weights of a local checkpoint folder, on the CPU (None when it holds none):
    what a resumed run continues its average from."""
    if not (folder / _AVERAGED).exists():
        return None
    averaged: dict[str, Any] = torch.load(folder / _AVERAGED, map_location="cpu")
    return averaged


def latest(store: Store, run: str) -> tuple[str, dict[str, Any]] | None:
    """(URI, loop counters) of the run's checkpoint with the most steps, among those with
    counters (Ray Train writes them with the weights), or None when the run has none."""
    best: tuple[int, str, dict[str, Any]] | None = None
    for step, path, state in _states(store, run):
        if best is None or step > best[0]:  # ties: the first found, as before
            best = (step, path, state)
    return None if best is None else (_uri(store, best[1]), best[2])


def at_step(store: Store, run: str, step: int) -> tuple[str, dict[str, Any]] | None:
    """(URI, loop counters) of the run's first checkpoint at or after `step`, or None."""
    found: tuple[int, str, dict[str, Any]] | None = None
    for at, path, state in _states(store, run):
        if at >= step and (found is None or at < found[0]):
            found = (at, path, state)
    return None if found is None else (_uri(store, found[1]), found[2])


def finished(store: Store, run: str, max_steps: int) -> str | None:
    """The URI of run `run`'s latest checkpoint if it reached `max_steps`, else None."""
    found = latest(store, run)
    return found[0] if found is not None and int(found[1]["step"]) >= max_steps else None


def run_of(uri: str) -> str | None:
    """The name of the run a checkpoint folder belongs to (`.../runs/<run>/checkpoint_<time>`),
    or None when the folder is not named as a run's checkpoint (a copy kept elsewhere)."""
    parts = uri.rstrip("/").rsplit("/", 2)
    return parts[-2] if len(parts) >= 2 and parts[-1].startswith(_PREFIX) else None


def _checked(uri: str) -> tuple[Any, str]:
    fs, path = open_fs(uri)
    for name in (_MODEL, _LINEAGE):
        if not fs.exists(join_uri(path, name)):
            raise FileNotFoundError(f"{uri} is not a pretraining checkpoint (no {name})")
    return fs, path


def _weights_file(fs: Any, path: str) -> str:
    """The weights a checkpoint is evaluated with: the averaged ones where it holds them."""
    averaged = join_uri(path, _AVERAGED)
    return averaged if fs.exists(averaged) else join_uri(path, _MODEL)


def _states(store: Store, run: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(step, folder path, counters) of each of the run's checkpoints that has counters."""
    for path in store.fs.glob(join_uri(store.path("runs", run), _PREFIX + "*", _STATE)):
        with store.fs.open(path, "r", encoding="utf-8") as f:
            state: dict[str, Any] = json.load(f)
        yield int(state["step"]), str(path).rsplit("/", 1)[0], state


def _uri(store: Store, path: str) -> str:
    """A folder path in the store's filesystem as the URI callers pass around."""
    return path if store.local else store.uri(path[len(store.root) :].lstrip("/"))
