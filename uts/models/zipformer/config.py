"""Zipformer configuration and presets (frozen, keyword-only)."""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["PRESETS", "ZipformerConfig", "preset"]


@dataclass(frozen=True, kw_only=True)
class ZipformerConfig:
    """One Zipformer: six (or any number of) stacks at their own frame rates and widths.

    Tuples have one entry per stack. Rates are relative to the stem's 50 Hz output. The defaults are
    Auden's Zipformer defaults (auden/models/zipformer/model_config.py), i.e. the paper's
    Zipformer-M.

    `dropout`: None follows upstream's schedule (0.3 -> 0.1 over 20k batches, for the stem and
    every feed-forward); a number is a constant rate (0.0: off).
    `layer_skip`: None follows upstream's layer-drop schedule (each block's rate falls from 0.5 to
    0.035 * sqrt(downsampling) while `warmup_batches` pass, stack after stack); a number is a
    constant per-clip probability of skipping each block in training (0.0: off).
    `unmasked_dims`: in training, a clip's channels beyond this width are zeroed in a stack with
    probability 0.125 (half of them) or ~0.23 (the rest): upstream's feature masking.
    Schedules read the batch count that `Zipformer.set_batch_count` sets; before one is set they
    hold their defaults (mostly 0: no dropout, no skipping), as upstream's do.
    """

    num_mel_bins: int = 80
    downsampling: tuple[int, ...] = (1, 2, 4, 8, 4, 2)
    num_layers: tuple[int, ...] = (2, 2, 3, 4, 3, 2)
    dims: tuple[int, ...] = (192, 256, 384, 512, 384, 256)
    feedforward: tuple[int, ...] = (576, 768, 1152, 1536, 1152, 768)
    heads: tuple[int, ...] = (4, 4, 4, 8, 4, 4)
    conv_kernels: tuple[int, ...] = (31, 31, 15, 15, 15, 31)
    unmasked_dims: tuple[int, ...] = (192, 192, 256, 256, 256, 192)
    query_head_dim: int = 32
    value_head_dim: int = 12
    pos_head_dim: int = 4
    pos_emb_dim: int = 48
    stem_channels: int = 8  # upstream's 8 / 32 / 128 stem channels
    dropout: float | None = None
    layer_skip: float | None = None
    warmup_batches: float = 4000.0

    def __post_init__(self) -> None:
        per_stack = (
            self.num_layers, self.dims, self.feedforward, self.heads, self.conv_kernels,
            self.unmasked_dims,
        )  # fmt: skip
        if any(len(v) != len(self.downsampling) for v in per_stack):
            raise ValueError("ZipformerConfig: every per-stack tuple needs one entry per stack")
        if any(k % 2 == 0 for k in self.conv_kernels):
            raise ValueError(f"ZipformerConfig: conv kernels must be odd, got {self.conv_kernels}")
        if any(u > d for u, d in zip(self.unmasked_dims, self.dims, strict=True)):
            raise ValueError("ZipformerConfig: unmasked_dims may not exceed dims")

    @property
    def output_dim(self) -> int:
        return max(self.dims)


PRESETS = {
    # Tests and the CPU demo: tiny, fast on CPU (a 2/8/32-channel stem).
    "xs": ZipformerConfig(
        num_layers=(1, 1, 1, 1, 1, 1),
        dims=(48, 64, 96, 128, 96, 64),
        feedforward=(96, 128, 192, 256, 192, 128),
        heads=(2, 2, 2, 4, 2, 2),
        conv_kernels=(15, 15, 7, 7, 7, 15),
        unmasked_dims=(48, 48, 64, 64, 64, 48),
        query_head_dim=16,
        value_head_dim=8,
        pos_emb_dim=16,
        stem_channels=2,
    ),
    # About 22M parameters.
    "s": ZipformerConfig(
        num_layers=(2, 2, 2, 2, 2, 2),
        dims=(192, 256, 256, 256, 256, 256),
        feedforward=(512, 768, 768, 768, 768, 768),
        heads=(4, 4, 4, 8, 4, 4),
    ),
    # The paper's Zipformer-M: Auden's defaults.
    "m": ZipformerConfig(),
}


def preset(name: str, **overrides: object) -> ZipformerConfig:
    """A preset by name, with field overrides. Raises KeyError naming the known presets."""
    if name not in PRESETS:
        raise KeyError(f"unknown Zipformer preset {name!r}; known: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)  # type: ignore[arg-type]
