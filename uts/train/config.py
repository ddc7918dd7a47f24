"""Pretraining configuration and its presets (frozen, keyword-only; a preset is a set of overrides).

- `smoke`: seconds on 2 CPUs, for tests.
- `demo`: the embedded default: a tiny Zipformer on the demo corpus, 2 CPU workers, a few minutes.
- `m`: the paper: Zipformer-M, 640 audio-seconds per step across the cluster, fp16 on GPU.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["PRESETS", "PretrainConfig", "preset"]


@dataclass(frozen=True, kw_only=True)
class PretrainConfig:
    encoder: str = "xs"  # a uts.models.zipformer preset
    encoder_overrides: dict[str, Any] = field(default_factory=dict)
    objective: str = "mtc"
    k: int = 1500
    lam: float = 1.0
    tokenizer: str = "facebook/bart-base"  # ar/par/multitask tag strings
    text_model: str = "bert-base-uncased"  # contrastive text tower
    decoder_dim: int = 768
    decoder_layers: int = 6
    decoder_heads: int = 12
    optimizer: str = "scaled_adam"
    lr: float | None = None  # None: the optimiser's default
    warmup_steps: int = 500
    lr_steps: float = 7500
    lr_epochs: float = 3.5
    batch_seconds: float = 640.0  # audio seconds per step across all workers (padding included)
    bucket_window: int = 1000  # clips sorted by duration together
    max_steps: int = 400_000
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3  # the best by validation loss (the latest is kept as well)
    validate_every: int = 5000
    val_fraction: float = 0.02
    log_every: int = 50
    num_workers: int = 8
    use_gpu: bool = True
    fp16: bool = True  # autocast + GradScaler on GPU (V100: no bf16)
    specaug: bool = True
    cache_features: bool = (
        False  # small corpora: compute features once, keep them in the object store
    )
    data_workers: int | None = (
        None  # featurising actors at most (None: as many as the cluster has CPUs)
    )
    max_failures: int = 3
    seed: int = 0

    def per_worker_seconds(self) -> float:
        return self.batch_seconds / self.num_workers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    "m": {"encoder": "m"},
    "demo": {
        "encoder": "xs", "k": 300, "optimizer": "adamw", "lr": 5e-4, "warmup_steps": 30, "lr_steps": 400,
        "lr_epochs": 6, "batch_seconds": 160.0, "max_steps": 300, "checkpoint_every": 100, "validate_every": 100,
        "val_fraction": 0.05, "log_every": 20, "num_workers": 2, "use_gpu": False, "fp16": False, "cache_features": True,
        "data_workers": 2, "decoder_dim": 64, "decoder_layers": 2, "decoder_heads": 2,
    },
    "smoke": {
        "encoder": "xs", "k": 50, "optimizer": "adamw", "lr": 3e-3, "warmup_steps": 2, "lr_steps": 50,
        "lr_epochs": 2, "batch_seconds": 40.0, "bucket_window": 200, "max_steps": 12, "checkpoint_every": 6,
        "validate_every": 6, "val_fraction": 0.1, "log_every": 3, "num_workers": 2, "use_gpu": False, "cache_features": True,
        "data_workers": 2, "fp16": False, "specaug": False, "decoder_dim": 32, "decoder_layers": 1, "decoder_heads": 2,
    },
}  # fmt: skip


def preset(name: str, **overrides: Any) -> PretrainConfig:
    """A preset with overrides (None values are ignored). Raises KeyError naming the presets."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(PretrainConfig(**PRESETS[name]), **given)
