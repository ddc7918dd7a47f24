"""Pretraining configuration and its presets (frozen, keyword-only; a preset is a set of overrides).

- `smoke`: seconds on 2 CPUs, for tests.
- `demo`: the embedded default: a tiny Zipformer on the demo corpus, 2 CPU workers, a few minutes.
- `m`: the paper: Zipformer-M, 640 audio-seconds per step across the cluster, mixed precision on GPU
  (`precision="auto"`: bf16 where the GPU has it, fp16 with a GradScaler on V100).

`precision` is one of PRECISIONS; `resolve_precision` turns it and a device into what a step runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["PRECISIONS", "PRESETS", "PretrainConfig", "preset", "resolve_precision"]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


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
    # ScaledAdam's adaptive clipping (threshold = scale x median of recent gradient norms; icefall
    # and Auden use 2.0). None: clip the global gradient norm at 5.0 instead, before the step.
    clipping_scale: float | None = None
    # AdamW only: the MTC tag classifier's learning rate is lr x head_lr_scale (uts.train.optim).
    head_lr_scale: float = 1.0
    # AdamW only: the encoder's convolutional stem learns at lr x stem_lr_scale (uts.train.optim).
    stem_lr_scale: float = 1.0
    # Every average_period steps the weights are folded into a running uniform average, which is
    # what evaluation, serving and warm starts load (uts.train.averaging); 0: no average.
    average_period: int = 0
    warmup_steps: int = 500
    # The batch count the encoder's training schedules (dropout, layer drop, balancers: Zipformer
    # .set_batch_count) advance per optimiser step. Auden's trainer sets them to its global step
    # (1.0); a short run may pass them faster, so that they end where a long run's would.
    batch_count_scale: float = 1.0
    lr_steps: float = 7500
    lr_epochs: float = 3.5
    batch_seconds: float = 640.0  # audio seconds per step across all workers (padding included)
    bucket_window: int = 1000  # clips sorted by duration together
    max_steps: int = 400_000
    checkpoint_every: int = 5000  # a multiple of validate_every: every checkpoint is validated
    keep_checkpoints: int = 3  # the best by validation loss (the latest is kept as well)
    validate_every: int = 5000  # validation loss (and tag mAP) on the held-out clips
    val_fraction: float = 0.02
    log_every: int = 50
    num_workers: int = 8
    use_gpu: bool = True
    precision: str = "auto"  # one of PRECISIONS; resolved per device by resolve_precision
    specaug: bool = True
    cache_features: bool = (
        False  # small corpora: compute features once, keep them in the object store
    )
    # Reproducible data order (needs cache_features): every rank reads the whole featurised train
    # set each epoch and takes its share of one seeded shuffle by clip id, instead of the blocks
    # Ray Data's streaming split hands out in arrival order. Two runs then see the same batches.
    reproducible: bool = False
    data_workers: int | None = (
        None  # featurising actors at most (None: as many as the cluster has CPUs)
    )
    max_failures: int = 3
    seed: int = 0

    # Lineage written before `precision` existed carries `fp16` instead (True: autocast + GradScaler
    # on GPU, fp32 on CPU, which is what "auto" does on a V100 and on CPU). Read, never written.
    fp16: bool | None = None

    def __post_init__(self) -> None:
        if self.fp16 is not None:  # an old lineage config: derive precision, then forget fp16
            object.__setattr__(self, "precision", "auto" if self.fp16 else "fp32")
            object.__setattr__(self, "fp16", None)
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.validate_every < 1 or self.checkpoint_every % self.validate_every:
            raise ValueError(
                f"checkpoint_every ({self.checkpoint_every}) must be a multiple of validate_every "
                f"({self.validate_every}): a checkpoint is kept or dropped by its validation loss"
            )
        if self.clipping_scale is not None and self.optimizer != "scaled_adam":
            raise ValueError(f"clipping_scale is ScaledAdam's; optimizer is {self.optimizer!r}")
        if self.reproducible and not self.cache_features:
            raise ValueError("reproducible needs cache_features: every rank reads the whole "
                             "featurised train set each epoch")  # fmt: skip
        for name in ("head_lr_scale", "stem_lr_scale"):
            scale = getattr(self, name)
            if scale <= 0 or (scale != 1.0 and self.optimizer != "adamw"):
                raise ValueError(f"{name} must be positive and is AdamW's (optimizer "
                                 f"{self.optimizer!r}), got {scale}")  # fmt: skip
        if self.average_period < 0:
            raise ValueError(
                f"average_period must be 0 (off) or a number of steps, got {self.average_period}"
            )
        if self.batch_count_scale <= 0:
            raise ValueError(f"batch_count_scale must be positive, got {self.batch_count_scale}")

    def per_worker_seconds(self) -> float:
        return self.batch_seconds / self.num_workers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    # Auden's examples/uts recipe: ScaledAdam lr 0.045 with clipping_scale 2.0, Eden 500/7500/3.5,
    # validation every 1000 steps (valid_interval), a checkpoint every 4 validations (save_every_n).
    # The averaged model (use_averaged_model: True, average_period: 200) is what it evaluates.
    "m": {"encoder": "m", "clipping_scale": 2.0, "validate_every": 1000, "checkpoint_every": 4000,
          "average_period": 200},
    "demo": {
        "encoder": "xs", "k": 300, "optimizer": "adamw", "lr": 2.5e-4, "warmup_steps": 30, "lr_steps": 400,
        "lr_epochs": 6, "batch_seconds": 160.0, "max_steps": 150, "checkpoint_every": 50, "validate_every": 50,
        "val_fraction": 0.05, "log_every": 20, "num_workers": 2, "use_gpu": False, "precision": "fp32", "cache_features": True, "reproducible": True,
        "data_workers": 2, "decoder_dim": 64, "decoder_layers": 2, "decoder_heads": 2,
        # 150 steps pass the encoder's 4,000-batch warm-up (layer drop 0.5 -> its final rates)
        # as a long run's first 4,000 do.
        "batch_count_scale": 4000 / 150,
        # The tag head at 30x the encoder's lr: at 1x its weights move ~0.04 in 150 steps and it
        # does not fit its tags (validation tag mAP 0.134; 0.220 at 30x).
        "head_lr_scale": 30.0,
        # The stem at a tenth of it: trained at the full rate it maps away the fine frequency
        # detail the tags barely name (pitch 0.517 random-init, 0.443 trained; 0.487 at 0.1x).
        "stem_lr_scale": 0.1,
        # The paper's averaged model, over the snapshots at steps 50, 100 and 150.
        "average_period": 50,
    },
    "smoke": {
        "encoder": "xs", "k": 50, "optimizer": "adamw", "lr": 3e-3, "warmup_steps": 2, "lr_steps": 50,
        "lr_epochs": 2, "batch_seconds": 40.0, "bucket_window": 200, "max_steps": 12, "checkpoint_every": 6,
        "validate_every": 3, "val_fraction": 0.1, "log_every": 3, "num_workers": 2, "use_gpu": False, "cache_features": True,
        "data_workers": 2, "precision": "fp32", "specaug": False, "decoder_dim": 32, "decoder_layers": 1, "decoder_heads": 2,
        "average_period": 3,
    },
}  # fmt: skip


def preset(name: str, **overrides: Any) -> PretrainConfig:
    """A preset with overrides (None values are ignored). Raises KeyError naming the presets."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(PretrainConfig(**PRESETS[name]), **given)


def resolve_precision(precision: str, device_type: str, *, bf16_supported: bool = False) -> str:
    """What a step runs: "fp32", "bf16" (autocast, no scaler) or "fp16" (autocast + GradScaler).

    auto: bf16 on CUDA devices that have it, fp16 on those that do not (V100), fp32 elsewhere
    (CPU bf16 is asked for explicitly: it is slower than fp32 on many CPUs). bf16 on CPU is
    torch.autocast("cpu", dtype=torch.bfloat16).

    Args:
        precision: one of PRECISIONS.
        device_type: the training device's type ("cuda", "cpu", ...).
        bf16_supported: whether a CUDA device computes in bf16 (torch.cuda.is_bf16_supported()).

    Raises:
        ValueError: an unknown precision, bf16 on a CUDA device without it, or fp16 off CUDA
            (the GradScaler it needs is a CUDA tool here).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    cuda = device_type == "cuda"
    if precision == "auto":
        return ("bf16" if bf16_supported else "fp16") if cuda else "fp32"
    if precision == "bf16" and cuda and not bf16_supported:
        raise ValueError("precision bf16: this CUDA device has no bf16 (V100?); use fp16 or auto")
    if precision == "fp16" and not cuda:
        raise ValueError(f"precision fp16 needs a CUDA device, got {device_type}; use bf16 or fp32")
    return precision
