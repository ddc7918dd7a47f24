"""What one deployment of the endpoint serves and how it scales (`DeploymentOptions`), checked and
resolved from plain arguments (`options_from_args`) before anything starts.

The same arguments come from `jobs/serve.py`'s flags and from a Serve config file's `args:` (the
application builder `serve.deployment:app_builder`), so both paths are validated by the same code and
fail with the same messages. No Ray here: a bad argument is reported without starting anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from serve.parsing import ServeSettings

__all__ = [
    "LIMITS",
    "DeploymentOptions",
    "OptionsError",
    "options_from_args",
    "parse_autoscale",
    "read_token",
]

# The ServeSettings fields a deployment may set (everything but model, store and token).
LIMITS = tuple(f.name for f in fields(ServeSettings) if f.name not in ("model", "store", "token"))
ARGS = frozenset({"store", "run", "checkpoint", "model", "token_file", "max_batch", "batch_wait_ms",
                  "replicas", "autoscale", "target_ongoing_requests", "num_cpus", "num_gpus", *LIMITS})  # fmt: skip


class OptionsError(ValueError):
    """A bad deployment argument; the message names it and what was expected."""


@dataclass(frozen=True, kw_only=True)
class DeploymentOptions:
    """One deployment of the endpoint.

    `checkpoint`: the checkpoint folder every replica loads (absolute path or store URI).
    `settings`: the HTTP app's settings (its `store` is also where the vocabulary is looked up).
    `max_batch`, `batch_wait_s`: dynamic batching per replica, in clips (see serve.deployment).
    `replicas` or `autoscale` = (min, max) with `target_ongoing_requests` (default `max_batch`).
    `num_cpus` (also the replica's torch threads) and `num_gpus` (0 or 1) per replica.
    """

    checkpoint: str
    settings: ServeSettings = field(default_factory=ServeSettings)
    max_batch: int = 32
    batch_wait_s: float = 0.025  # measured: 10 ms gave batches of ~2.6 clips at 32 clients, served/raw 0.74; 25 ms: 0.94
    replicas: int = 1
    autoscale: tuple[int, int] | None = None
    target_ongoing_requests: float | None = None
    num_cpus: float = 1.0
    num_gpus: int = 0

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise OptionsError(f"max_batch must be >= 1, got {self.max_batch}")
        if not 0 <= self.batch_wait_s <= 10:
            raise OptionsError(
                f"batch wait must be 0 to 10000 ms, got {self.batch_wait_s * 1000:g}"
            )
        if self.replicas < 1:
            raise OptionsError(f"replicas must be >= 1, got {self.replicas}")
        if self.autoscale is not None:
            low, high = self.autoscale
            if not 0 <= low <= high or high < 1:
                raise OptionsError(
                    f"autoscale needs 0 <= MIN <= MAX and MAX >= 1, got {low},{high}"
                )
        if self.target_ongoing_requests is not None and self.target_ongoing_requests <= 0:
            raise OptionsError("target_ongoing_requests must be > 0")
        if self.num_cpus <= 0:
            raise OptionsError(f"num_cpus must be > 0, got {self.num_cpus}")
        if self.num_gpus not in (0, 1):
            raise OptionsError(f"num_gpus must be 0 or 1, got {self.num_gpus}")

    @property
    def max_ongoing_requests(self) -> int:
        """Requests a replica accepts at once: a batch being run plus a full one filling (its
        clips decoding meanwhile); Serve's default of 5 would cap every batch at 5 requests."""
        return max(2 * self.max_batch, 8)


def parse_autoscale(value: Any) -> tuple[int, int]:
    """Text `MIN,MAX` (or a two-item list) -> (min, max) replicas."""
    parts = value.split(",") if isinstance(value, str) else value
    try:
        low, high = (int(str(p).strip()) for p in parts)
    except (TypeError, ValueError):
        raise OptionsError(f"autoscale must be MIN,MAX (two integers), got {value!r}") from None
    if not 0 <= low <= high or high < 1:
        raise OptionsError(f"autoscale needs 0 <= MIN <= MAX and MAX >= 1, got {value!r}")
    return low, high


def read_token(path: str) -> str:
    """The bearer token: the file's content without surrounding whitespace.

    Raises:
        OptionsError: the file is missing, unreadable, not UTF-8 text, or empty.
    """
    try:
        token = Path(path).read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise OptionsError(f"cannot read the token file {path}: {exc}") from exc
    if not token:
        raise OptionsError(f"the token file {path} is empty")
    return token


def _absolute(uri: str) -> str:
    """A local path made absolute (replicas need not share this process's working directory);
    URIs with a scheme are kept."""
    if "://" in uri and not uri.startswith("file://"):
        return uri
    return str(Path(uri.removeprefix("file://")).expanduser().resolve())


def _number(args: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    """args[key] (or `default` when absent) as an int or a float; None stays None."""
    value = args.get(key)
    if value is None:
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(str(value).strip()) if kind is int else float(value)
    except (TypeError, ValueError):
        expected = "an integer" if kind is int else "a number"
        raise OptionsError(f"{key} must be {expected}, got {value!r}") from None


def options_from_args(args: Mapping[str, Any]) -> DeploymentOptions:
    """Deployment options from plain arguments (flag values or a config file's `args:`).

    Keys: `store` (default ./uts-store), `run` (its latest checkpoint) or `checkpoint`, `model`,
    `token_file`, `max_batch` (32), `batch_wait_ms` (25), `replicas` (1) or `autoscale`
    ("MIN,MAX"), `target_ongoing_requests`, `num_cpus` (1), `num_gpus` (0), and the limits of
    ServeSettings by their field names (`max_items`, `max_seconds`, ...).

    Raises:
        OptionsError: an unknown key, a bad value, no checkpoint for the run, a checkpoint folder
            without model.pt and lineage.json, or an unreadable or empty token file.
    """
    from uts.store import Store
    from uts.train import checkpoint as checkpoints

    unknown = sorted(set(args) - ARGS)
    if unknown:
        raise OptionsError(f"unknown argument(s) {unknown}; known: {sorted(ARGS)}")
    store_uri = _absolute(str(args.get("store") or "./uts-store"))
    run, checkpoint = args.get("run"), args.get("checkpoint")
    if bool(run) == bool(checkpoint):
        raise OptionsError("give exactly one of run (a run under <store>/runs) or checkpoint")
    if run:
        store = Store(store_uri)
        found = checkpoints.latest(store, str(run))
        if found is None:
            raise OptionsError(f"no checkpoint in {store.uri('runs', str(run))}; run "
                               f"jobs/pretrain.py --name {run} first")  # fmt: skip
        checkpoint = found[0]
    checkpoint = _absolute(str(checkpoint))
    try:
        checkpoints.read_lineage(checkpoint)
    except (OSError, ValueError) as exc:
        raise OptionsError(f"checkpoint {checkpoint}: {exc}") from exc
    limits = {}
    for name in LIMITS:
        if args.get(name) is not None:
            kind = type(getattr(ServeSettings(), name))
            limits[name] = _number(args, name, kind, None)
    token_file = args.get("token_file")
    try:
        settings = ServeSettings(
            model=str(args["model"]) if args.get("model") else None, store=store_uri,
            token=read_token(str(token_file)) if token_file else None, **limits,
        )  # fmt: skip
    except ValueError as exc:
        raise OptionsError(str(exc)) from exc
    autoscale = args.get("autoscale")
    if autoscale is not None and args.get("replicas") is not None:
        raise OptionsError("give replicas or autoscale, not both")
    return DeploymentOptions(
        checkpoint=checkpoint, settings=settings,
        max_batch=_number(args, "max_batch", int, 32),
        batch_wait_s=_number(args, "batch_wait_ms", float, 25.0) / 1000,
        replicas=_number(args, "replicas", int, 1),
        autoscale=parse_autoscale(autoscale) if autoscale is not None else None,
        target_ongoing_requests=_number(args, "target_ongoing_requests", float, None),
        num_cpus=_number(args, "num_cpus", float, 1.0),
        num_gpus=_number(args, "num_gpus", int, 0),
    )  # fmt: skip
